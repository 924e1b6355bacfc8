"""The trainer: schedules, fine-tuning modes, early stopping, and exact resume from a checkpoint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from apptool.bundle import load_state
from apptool.engine.checkpoint import load_checkpoint, save_checkpoint
from apptool.engine.trainer import Trainer, lr_factor, split_validation
from apptool.errors import ConfigError


def test_lr_schedules():
    assert lr_factor(0, 100, 10, "cosine") == pytest.approx(0.1)
    assert lr_factor(10, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(100, 100, 10, "cosine") == pytest.approx(0.0)
    assert [lr_factor(s, 90, 0, "step") for s in (0, 31, 61)] == pytest.approx([1.0, 0.1, 0.01])
    assert lr_factor(50, 100, 0, "constant") == 1.0


def test_validation_split_is_seeded_and_disjoint():
    train_a, val_a = split_validation(list(range(100)), 0.2, seed=3)
    train_b, val_b = split_validation(list(range(100)), 0.2, seed=3)
    assert list(val_a) == list(val_b) and len(val_a) == 20
    assert not set(train_a) & set(val_a) and len(set(train_a) | set(val_a)) == 100


def test_optimizer_checkpoint_round_trip(tmp_path):
    model = nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    save_checkpoint(tmp_path / "c.safetensors", model, optimizer, {"epoch": 2, "history": []}, None)
    fresh, fresh_opt = nn.Linear(3, 2), torch.optim.AdamW(nn.Linear(3, 2).parameters(), lr=0.5)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=0.5)
    progress, best = load_checkpoint(tmp_path / "c.safetensors", fresh, fresh_opt)
    assert progress["epoch"] == 2 and best is None
    assert torch.equal(fresh.weight, model.weight)
    assert fresh_opt.param_groups[0]["lr"] == 0.1
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_unknown_options_are_refused(scaffold_task, tmp_path):
    config = scaffold_task.config("tiny", {"train": {"schedule": "linear"}})
    with pytest.raises(ConfigError, match="train.schedule = 'linear'"):
        Trainer(scaffold_task, config, tmp_path)


def test_resume_continues_exactly_like_an_uninterrupted_run(scaffold_task, tmp_path, monkeypatch):
    from apptool.engine import train

    config = scaffold_task.config("tiny", {"train": {"epochs": 4}})
    train(scaffold_task, config, tmp_path / "whole", progress=False)

    original, calls = Trainer._validate, {"n": 0}

    def validate_then_die_in_epoch_3(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as if the process were killed before epoch 3's checkpoint
        return original(self, *args)

    monkeypatch.setattr(Trainer, "_validate", validate_then_die_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(scaffold_task, config, tmp_path / "split", progress=False)
    assert not (tmp_path / "split" / "config.json").exists()
    monkeypatch.setattr(Trainer, "_validate", original)
    train(scaffold_task, config, tmp_path / "split", resume=True, progress=False)

    whole, _ = load_state(tmp_path / "whole" / "weights.safetensors")
    split, _ = load_state(tmp_path / "split" / "weights.safetensors")
    assert whole.keys() == split.keys()
    for key in whole:
        assert torch.equal(whole[key], split[key]), key


def test_frozen_mode_leaves_the_encoder_untouched(scaffold_task, tmp_path):
    from apptool.task import Splits

    class WithEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16))
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            return self.head(self.encoder(x))

    config = scaffold_task.config("tiny", {"train": {"finetune": "frozen", "epochs": 1}})
    model = WithEncoder()
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    data = scaffold_task.load_data(config, None)
    Trainer(scaffold_task, config, tmp_path, progress=False).fit(model, data.train)
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert isinstance(data, Splits)


def test_a_step_budget_becomes_epochs_for_the_data_at_hand(scaffold_task, tmp_path, capsys):
    from apptool.engine.trainer import epochs_for_budget

    config = scaffold_task.config("tiny", {"train": {"steps": 60, "max_epochs": 6, "batch_size": 64, "val_fraction": 0.1}})
    data = scaffold_task.load_data(config, None)
    small = [data.train[i] for i in range(50)]  # 45 train after validation: 1 step per epoch
    large = [data.train[i % len(data.train)] for i in range(5000)]  # 4,500: 71 steps per epoch
    epochs = {}
    for name, samples in (("small", small), ("large", large)):
        trainer = Trainer(scaffold_task, config, tmp_path / name, progress=False)
        _, history = trainer.fit(scaffold_task.build_model(config), samples)
        epochs[name] = (trainer.epochs, len(history))
    assert epochs == {"small": (6, 6), "large": (1, 1)}
    log = capsys.readouterr().err
    assert "budget 60 steps / 1 steps per epoch -> 6 epochs (max 6)" in log
    assert "budget 60 steps / 71 steps per epoch -> 1 epochs" in log
    assert epochs_for_budget({"steps": 100, "min_epochs": 5, "max_epochs": 50, "epochs": 3}, 40) == (
        5,
        "budget 100 steps / 40 steps per epoch -> 5 epochs (min 5)",
    )


def test_stated_epochs_win_over_a_presets_step_budget(scaffold_task, tmp_path, monkeypatch):
    import json

    from apptool.engine import train

    monkeypatch.setattr(scaffold_task, "presets", {**scaffold_task.presets, "budget": {"train": {"steps": 10_000}}})
    assert scaffold_task.config("budget")["train"]["steps"] == 10_000
    config = scaffold_task.config("budget", {"train": {"epochs": 2}})  # what `--epochs 2` passes
    train(scaffold_task, config, tmp_path, progress=False)
    training = json.loads((tmp_path / "metrics.json").read_text())["training"]
    assert training["epochs"] == training["epochs_run"] == 2
    assert training["budget"].startswith("budget 2 epochs")


def test_a_budget_for_a_preset_that_trains_nothing_is_refused(scaffold_task, monkeypatch):
    from apptool.errors import ConfigError

    monkeypatch.setattr(scaffold_task, "presets", {**scaffold_task.presets, "ready": {"train": {"fit": False}}})
    assert scaffold_task.config("ready", {"seed": 3})["train"]["fit"] is False
    for budget in ({"epochs": 3}, {"steps": 100}):
        with pytest.raises(ConfigError, match=f"train.{next(iter(budget))}: .* preset 'ready' trains nothing"):
            scaffold_task.config("ready", {"train": budget})


class _Labelled(torch.utils.data.Dataset):
    def __init__(self, targets):
        self.targets = targets

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        return index


def test_validation_split_is_stratified_by_class_and_keeps_every_class_in_training():
    targets = [0] * 40 + [1] * 8 + [2] * 2 + [3]  # skewed, with a pair and a singleton
    train, val = split_validation(_Labelled(targets), 0.1, seed=0)
    counts = lambda part: {c: sum(targets[i] == c for i in part.indices) for c in range(4)}  # noqa: E731
    assert counts(val) == {0: 4, 1: 1, 2: 1, 3: 0}
    assert counts(train) == {0: 36, 1: 7, 2: 1, 3: 1}
    assert not set(train.indices) & set(val.indices)
    assert split_validation(_Labelled(targets), 0.1, seed=0)[1].indices == val.indices
    assert split_validation(_Labelled(targets), 0.1, seed=1)[1].indices != val.indices
    float_targets = _Labelled([0.5] * 20)  # regression targets are not classes: a plain random split
    assert len(split_validation(float_targets, 0.1, seed=0)[1]) == 2


def test_skewed_classes_are_drawn_equally_often_and_balanced_ones_untouched():
    from collections import Counter

    from apptool.engine.trainer import balanced_sampler

    skewed = _Labelled([0] * 90 + [1] * 10)
    part = torch.utils.data.Subset(skewed, list(range(0, 100, 2)) + [91, 93])  # 45 of class 0, 7 of class 1
    drawn = Counter(skewed.targets[part.indices[i]] for i in balanced_sampler(part, torch.Generator().manual_seed(0)))
    assert sum(drawn.values()) == len(part) and abs(drawn[0] - drawn[1]) <= 12
    assert balanced_sampler(_Labelled([0] * 12 + [1] * 8), torch.Generator()) is None
    assert balanced_sampler(_Labelled([0.5] * 20), torch.Generator()) is None


def test_calibrate_runs_after_training_on_the_held_out_part_and_its_change_is_exported(scaffold_task, tmp_path, monkeypatch):
    import json

    from apptool.engine import train

    seen = {}

    def calibrate(model, train_part, val_part, config):
        name, parameter = next(iter(model.named_parameters()))
        seen.update(training=model.training, device=parameter.device.type, sizes=(len(train_part), len(val_part)))
        parameter.data.fill_(0.25)  # what a calibration changes must reach the bundle
        return {"changed": name}

    monkeypatch.setattr(scaffold_task, "calibrate", calibrate)
    config = scaffold_task.config("tiny", {"train": {"epochs": 1, "val_fraction": 0.25}})
    train(scaffold_task, config, tmp_path, progress=False)
    n = len(scaffold_task.load_data(config, None).train)
    assert seen == {"training": False, "device": "cpu", "sizes": (n - n // 4, n // 4)}
    changed = json.loads((tmp_path / "metrics.json").read_text())["calibrate"]["changed"]
    weights, _ = load_state(tmp_path / "weights.safetensors")
    assert (weights[changed] == 0.25).all()
