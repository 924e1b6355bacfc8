"""Exact resume with augmentation: a PoseNet run killed part-way and resumed ends bit-identical to an
uninterrupted one, and the resumed process trains only the epochs the checkpoint had not finished."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from apptool_posenet.data import load_splits

from apptool.bundle import load_state
from apptool.engine import train
from apptool.engine.trainer import Trainer


@pytest.fixture(scope="module")
def task():
    from apptool.plugins import get_plugins

    return get_plugins().task("posenet")


def test_augmentation_draws_depend_on_seed_epoch_and_index_only(task):
    train_set, _, _ = load_splits(task.config("tiny"), None)
    train_set.set_epoch(1)
    first = [train_set[i][0] for i in (0, 5)]
    torch.manual_seed(0)  # no global random state matters
    np.random.seed(0)
    again = [train_set[i][0] for i in (5, 0)][::-1]  # nor the order items are asked for
    train_set.set_epoch(2)
    next_epoch = train_set[0][0]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], next_epoch) and not np.array_equal(first[0], first[1])


def test_killed_run_resumes_at_its_checkpoint_and_ends_bit_identical(task, tmp_path, monkeypatch):
    config = task.config("tiny", {"train": {"epochs": 4}})
    train(task, config, tmp_path / "whole", progress=False)

    validate, calls = Trainer._validate, {"n": 0}

    def die_in_epoch_3(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed after epoch 3's training, before its checkpoint
        return validate(self, *args)

    monkeypatch.setattr(Trainer, "_validate", die_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(task, config, tmp_path / "split", progress=False)
    monkeypatch.setattr(Trainer, "_validate", validate)

    trained, train_epoch = [], Trainer._train_epoch

    def record(self, wrapped, model, optimizer, scaler, dataset, epoch, *rest):
        trained.append(epoch)
        return train_epoch(self, wrapped, model, optimizer, scaler, dataset, epoch, *rest)

    monkeypatch.setattr(Trainer, "_train_epoch", record)
    train(task, config, tmp_path / "split", resume=True, progress=False)
    assert trained == [2, 3]  # epochs 1 and 2 came from the checkpoint, not from training them again
    with open(tmp_path / "split" / "metrics.csv") as rows:
        assert [int(row["epoch"]) for row in csv.DictReader(rows)] == [1, 2, 3, 4]

    whole, _ = load_state(tmp_path / "whole" / "weights.safetensors")
    split, _ = load_state(tmp_path / "split" / "weights.safetensors")
    assert whole.keys() == split.keys()
    for key in whole:
        assert torch.equal(whole[key], split[key]), key
