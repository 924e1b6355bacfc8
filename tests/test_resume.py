"""Resume is exact: a resumed run starts at the saved epoch, redoes none, and ends bit-identical to an uninterrupted one.

Training is deterministic, so equal final weights alone would not tell a resume
from a silent restart: the epochs each process really trains are recorded too.
Steering on a Udacity folder is the task with augmentation: its random views
must not depend on how many epochs this process has run.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from apptool.bundle import load_state
from apptool.engine.checkpoint import CHECKPOINT
from apptool.engine.trainer import Trainer, seed_everything

EPOCHS = 3
KILLED_AT = 2  # the first process dies as its last epoch starts: two epochs are in its checkpoint


def write_udacity_folder(root: Path, rows: dict[str, int]) -> Path:
    """A tiny Udacity layout (driving_log.csv + IMG/ with centre, left and right frames) of random road-sized images."""
    rng = np.random.default_rng(0)
    for split, n in rows.items():
        (root / split / "IMG").mkdir(parents=True)
        lines = []
        for k in range(n):
            names = [f"IMG/{camera}_{k:03d}.jpg" for camera in ("center", "left", "right")]
            for name in names:
                cv2.imwrite(str(root / split / name), rng.integers(0, 255, (160, 320, 3), dtype=np.uint8))
            lines.append(f"{names[0]}, {names[1]}, {names[2]}, {rng.uniform(-0.5, 0.5):.4f}, 0.5, 0, 30")
        (root / split / "driving_log.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def steering_case(tmp_path_factory):
    from apptool.plugins import get_plugins

    task = get_plugins().task("steering")
    root = write_udacity_folder(tmp_path_factory.mktemp("udacity"), {"train": 12, "test": 2})
    return task, task.config("tiny", {"train": {"epochs": EPOCHS, "batch_size": 8, "val_fraction": 0.25}}), root


@pytest.fixture(scope="module")
def scaffold_case(scaffold_task):
    return scaffold_task, scaffold_task.config("tiny", {"train": {"epochs": EPOCHS, "batch_size": 128}}), None


@pytest.fixture(scope="module")
def dbn_case():
    """dbn_hashing has a Task.prepare stage (greedy RBM pretraining) that a resumed run must not redo."""
    from apptool.plugins import get_plugins

    task = get_plugins().task("dbn_hashing")
    return task, task.config("tiny", {"train": {"epochs": EPOCHS}}), None


def run_process(task, config, data_dir, out: Path, resume: bool, die_at: int | None, monkeypatch) -> list[int]:
    """One training process as ``apptool train`` runs it (fresh data and model); the epochs it really trained.

    ``prepare``, when it runs, is recorded as the epoch -1.
    """
    trained: list[int] = []
    original = Trainer._train_epoch
    original_prepare = type(task).prepare

    def preparing(self, *args, **kwargs):
        trained.append(-1)
        return original_prepare(self, *args, **kwargs)

    def recording(self, *args, **kwargs):
        epoch = inspect.signature(original).bind(self, *args, **kwargs).arguments["epoch"]
        if epoch == die_at:
            raise KeyboardInterrupt  # killed before this epoch's checkpoint
        trained.append(epoch)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_train_epoch", recording)
    monkeypatch.setattr(type(task), "prepare", preparing)
    seed_everything(int(config["seed"]))
    splits = task.load_data(config, data_dir)
    config = {**config, **splits.info}
    model = task.build_model(config)
    try:
        Trainer(task, config, out, progress=False).fit(model, splits.train, resume=resume)
    except KeyboardInterrupt:
        pass
    finally:
        monkeypatch.setattr(Trainer, "_train_epoch", original)
        monkeypatch.setattr(type(task), "prepare", original_prepare)
    return trained


@pytest.mark.parametrize("case", ["scaffold_case", "steering_case", "dbn_case"])
def test_resume_starts_at_the_saved_epoch_and_ends_bit_identical(case, request, tmp_path, monkeypatch):
    task, config, data_dir = request.getfixturevalue(case)
    fresh = [-1, *range(EPOCHS)]  # prepare, then every epoch
    assert run_process(task, config, data_dir, tmp_path / "whole", False, None, monkeypatch) == fresh
    assert run_process(task, config, data_dir, tmp_path / "split", False, KILLED_AT, monkeypatch) == fresh[: KILLED_AT + 1]
    resumed = run_process(task, config, data_dir, tmp_path / "split", True, None, monkeypatch)
    assert resumed == list(range(KILLED_AT, EPOCHS)), "the resumed process must not prepare again nor redo a saved epoch"
    whole, whole_meta = load_state(tmp_path / "whole" / CHECKPOINT)
    split, split_meta = load_state(tmp_path / "split" / CHECKPOINT)
    assert whole.keys() == split.keys() and any(k.startswith("optim.") for k in whole)
    for key in whole:  # last weights, best weights and optimizer moments
        assert torch.equal(whole[key], split[key]), key
    assert [row["train_loss"] for row in whole_meta["progress"]["history"]] == [
        row["train_loss"] for row in split_meta["progress"]["history"]
    ]
    prepared = [meta["progress"]["prepared"] for meta in (whole_meta, split_meta)]
    if case == "dbn_case":  # the greedy stage's log survives the resume (timings aside)
        assert [[layer["n_hidden"] for layer in log["layers"]] for log in prepared] == [[32, 16], [32, 16]]
        assert prepared[0]["train_images"] == prepared[1]["train_images"] > 0
    else:
        assert prepared == [None, None]


def test_steering_augmentation_depends_on_seed_epoch_and_index_only(steering_case):
    from apptool_steering import data

    task, config, root = steering_case
    rows = data.read_driving_log(root / "train", root)
    spec = data.input_spec(config)
    fresh, worn = (data.UdacityFrames(rows, spec, config["data"], train=True, seed=3) for _ in range(2))
    for epoch in range(3):  # this one has served three epochs already
        worn.set_epoch(epoch)
        _ = [worn[i] for i in range(len(worn))]
    fresh.set_epoch(2)
    worn.set_epoch(2)
    assert all(np.array_equal(fresh[i][0], worn[i][0]) and fresh[i][1] == worn[i][1] for i in range(len(fresh)))
    fresh.set_epoch(1)
    assert not all(np.array_equal(fresh[i][0], worn[i][0]) for i in range(len(fresh))), "each epoch draws new views"


def test_resume_without_a_checkpoint_says_it_trains_from_scratch(scaffold_task, tmp_path, capfd, monkeypatch):
    config = scaffold_task.config("tiny", {"train": {"epochs": 1}})
    assert run_process(scaffold_task, config, None, tmp_path / "new", True, None, monkeypatch) == [-1, 0]  # prepare, epoch 0
    lines = [line for line in capfd.readouterr().err.splitlines() if "--resume" in line]
    assert lines == [f"--resume: no {CHECKPOINT} in {tmp_path / 'new'}; training from scratch"]


def test_amp_loss_scale_travels_in_the_checkpoint(tmp_path):
    from torch import nn

    from apptool.engine.checkpoint import load_checkpoint, save_checkpoint

    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=2)
    for _ in range(3):  # the scale doubles after two clean steps; the growth counter stands at one
        optimizer.zero_grad()
        scaler.scale(model(torch.ones(2, 3)).sum()).backward()
        scaler.step(optimizer)
        scaler.update()
    save_checkpoint(tmp_path / "c.safetensors", model, optimizer, {"epoch": 0}, None, scaler)
    fresh = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=2)
    load_checkpoint(tmp_path / "c.safetensors", nn.Linear(3, 1), torch.optim.SGD(nn.Linear(3, 1).parameters(), lr=0.1), fresh)
    assert scaler.state_dict() == fresh.state_dict() and fresh.get_scale() == 2048.0
