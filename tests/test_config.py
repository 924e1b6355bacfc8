"""The one config validator: unknown keys, wrong types and out-of-range values are one line naming the key."""

from __future__ import annotations

import pytest
from cli_faults import run_cli

from apptool.config import check_config
from apptool.errors import ConfigError
from apptool.task import TRAIN_DEFAULTS


@pytest.mark.parametrize(
    "pair, message",
    [
        ("train.lr=abc", "train.lr = 'abc': expected a number"),
        ("train.epochs=abc", "train.epochs = 'abc': expected an integer"),
        ("train.epochs=1.7", "train.epochs = 1.7: expected an integer"),
        ("train.epochs=0", "train.epochs = 0: must be at least 1"),
        ("seed=abc", "seed = 'abc': expected an integer"),
        ("train=5", "train = 5: expected a section"),
        ("train.lr=-1", "train.lr = -1: must be greater than 0"),
        ("train.lr=NaN", "train.lr = nan: must be a finite number"),
        ("train.num_workers=-3", "train.num_workers = -3: must be at least 0"),
        ("train.val_fraction=2", "train.val_fraction = 2: must be in [0, 1)"),
        ("train.shuffle=true", "unknown config key 'train.shuffle'"),
        ("train.lrr=0.1", "unknown config key 'train.lrr'; did you mean 'train.lr'?"),
        ("trian.lr=0.1", "unknown config key 'trian'; did you mean 'train'?"),
        ("model.widht=8", "did you mean 'model.width'?"),
        ("model.width=wide", "model.width = 'wide': expected an integer"),
        ("data.test_fraction=0", "data.test_fraction = 0: must be in (0, 1)"),
        ("train.optimizer=adam", "train.optimizer = 'adam': expected one of adamw, sgd"),
    ],
)
def test_bad_set_values_are_one_line_naming_the_key(scaffold_task, monkeypatch, capsys, tmp_path, pair, message):
    code, _, err = run_cli(
        monkeypatch, capsys, "train", "digits_demo", "--preset", "tiny", "--set", pair, "--out", tmp_path / "b"
    )
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists(), "a refused config must not touch --out"


def test_an_option_clashing_with_a_set_section_is_one_line(scaffold_task, monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(
        monkeypatch, capsys, "train", "digits_demo", "--epochs", "3", "--set", "train=5", "--out", tmp_path / "b"
    )
    assert code == 2 and "'train' was set to a value above" in err and len(err.strip().splitlines()) == 1


def test_nan_loss_is_one_line(scaffold_task, monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "train",
        "digits_demo",
        "--preset",
        "tiny",
        "--set",
        "train.lr=1e6",
        "--quiet",
        "--out",
        tmp_path / "b",
    )
    assert code == 2 and "training loss became nan" in err and "lower train.lr" in err


def test_types_come_from_the_defaults_and_presets(scaffold_task):
    config = scaffold_task.config("tiny", {"train": {"lr": 1, "val_fraction": 0}})  # an int where a float is expected
    assert check_config(scaffold_task, config) is config
    with pytest.raises(ConfigError, match="train.batch_size = True: expected an integer"):
        check_config(scaffold_task, scaffold_task.config("tiny", {"train": {"batch_size": True}}))


def test_every_training_key_is_known_so_new_trainer_keys_need_no_second_list(scaffold_task):
    for key, value in TRAIN_DEFAULTS.items():
        check_config(scaffold_task, scaffold_task.config("tiny", {"train": {key: value}}))


def test_none_default_accepts_any_value_and_lists_check_their_items(scaffold_task, monkeypatch):
    defaults = scaffold_task.default_config()
    monkeypatch.setattr(
        type(scaffold_task),
        "default_config",
        lambda self: {**defaults, "data": {**defaults["data"], "size": None, "mean": [0.5]}},
    )
    check_config(scaffold_task, scaffold_task.config("tiny", {"data": {"size": 8, "mean": [0.1, 0.2]}}))
    check_config(scaffold_task, scaffold_task.config("tiny", {"data": {"size": "auto"}}))
    with pytest.raises(ConfigError, match=r"data.mean = \[0.1, 'x'\]: item 1: expected a number"):
        check_config(scaffold_task, scaffold_task.config("tiny", {"data": {"mean": [0.1, "x"]}}))


def test_task_hook_adds_its_own_checks(scaffold_task, monkeypatch):
    def validate(self, config):
        if config["model"]["width"] % 2:
            raise ConfigError(f"model.width = {config['model']['width']}: must be even")

    monkeypatch.setattr(type(scaffold_task), "validate_config", validate)
    check_config(scaffold_task, scaffold_task.config("tiny", {"model": {"width": 8}}))
    with pytest.raises(ConfigError, match="must be even"):
        check_config(scaffold_task, scaffold_task.config("tiny", {"model": {"width": 7}}))


def test_a_trained_config_may_carry_the_datas_keys_but_a_users_may_not(scaffold_task):
    config = {**scaffold_task.config("tiny"), "labels": ["a", "b"]}
    assert check_config(scaffold_task, config, trained=True) is config
    with pytest.raises(ConfigError, match="unknown config key 'labels'"):
        check_config(scaffold_task, config)


def test_every_installed_task_accepts_its_own_presets():
    from apptool.plugins import get_plugins

    for name, task in get_plugins().tasks.items():
        for preset in task.presets:
            assert check_config(task, task.config(preset))["task"] == name, preset


def test_every_built_in_training_preset_states_a_step_budget():
    """Epochs mean nothing on a user's 50 samples: quick and full must train as many steps there as on the generator."""
    from apptool.plugins import get_plugins

    for name, task in get_plugins().tasks.items():
        if not task.__module__.startswith("apptool_") or name == "digits_demo":
            continue
        for preset in ("quick", "full"):
            train = task.config(preset)["train"]
            assert not train.get("fit", True) or train["steps"] > 0, (name, preset)
