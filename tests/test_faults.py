"""SIGKILL at many points of a training run: --resume always recovers the uninterrupted result,
and no file of the bundle or checkpoint is ever half-written.  A full disk, a read-only folder, a
killed export or a foreign checkpoint is one line naming the file, never a traceback."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from cli_faults import make_disk_full, make_read_only, run_cli

from apptool.bundle import load_state, read_config, save_state
from apptool.engine.checkpoint import CHECKPOINT
from apptool.errors import BundleError
from apptool.plugins import get_plugins

EPOCHS = 8


def train_command(out: Path, resume: bool, epochs: int = EPOCHS, quiet: bool = True) -> list[str]:
    return [
        sys.executable,
        "-m",
        "apptool",
        "train",
        "digits_demo",
        "--preset",
        "tiny",
        "--epochs",
        str(epochs),
        *(["--quiet"] if quiet else []),
        "--out",
        str(out),
        *(["--resume"] if resume else []),
    ]


def epochs_logged(out: Path) -> int:
    csv = out / "metrics.csv"
    return max(csv.read_text().count("\n") - 1, 0) if csv.exists() else 0


def assert_nothing_half_written(out: Path) -> None:
    """Every file under its real name is whole (a killed write leaves only a hidden .tmp, never a torn file)."""
    if (out / CHECKPOINT).exists():
        load_state(out / CHECKPOINT)  # raises on a truncated file
    if (out / "config.json").exists():
        read_config(out)
        load_state(out / "weights.safetensors")


def test_killed_runs_resume_to_the_uninterrupted_result(scaffold_env, tmp_path):
    subprocess.run(train_command(tmp_path / "whole", False), env=scaffold_env, check=True, capture_output=True, timeout=600)
    out = tmp_path / "killed"
    rng = random.Random(1234)
    kills = 0
    for target_epoch in (1, 3, 5, 7):
        process = subprocess.Popen(
            train_command(out, True),
            env=scaffold_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 300
        while process.poll() is None and epochs_logged(out) < target_epoch and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))  # land anywhere inside the next epoch
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
        assert_nothing_half_written(out)
    assert kills >= 3
    subprocess.run(train_command(out, True), env=scaffold_env, check=True, capture_output=True, timeout=600)
    assert_nothing_half_written(out)
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")], "the resumed run left temporary files"
    whole, _ = load_state(tmp_path / "whole" / "weights.safetensors")
    resumed, _ = load_state(out / "weights.safetensors")
    for key in whole:
        assert torch.equal(whole[key], resumed[key]), key
    assert (out / "metrics.csv").read_text().count("\n") == EPOCHS + 1


# -- file-system failures, killed exports and foreign checkpoints: one line each ------------------
def test_a_full_disk_during_training_is_one_line_naming_the_file(scaffold_task, monkeypatch, capsys, tmp_path):
    make_disk_full(monkeypatch)
    code, _, err = run_cli(monkeypatch, capsys, "train", "digits_demo", "--preset", "tiny", "--quiet", "--out", tmp_path / "b")
    assert code == 2 and "No space left on device" in err and str(tmp_path / "b") in err and "Traceback" not in err
    assert not list((tmp_path / "b").glob(".apptool-*")), "a failed write left its temporary file"


def test_a_read_only_predict_out_is_one_line_and_lists_nothing(scaffold_task, scaffold_bundle, monkeypatch, capsys, tmp_path):
    image = tmp_path / "in" / "road.png"
    image.parent.mkdir()
    cv2.imwrite(str(image), np.full((16, 16, 3), 200, np.uint8))
    (tmp_path / "ro").mkdir()
    make_read_only(monkeypatch, tmp_path / "ro")
    code, out, err = run_cli(monkeypatch, capsys, "predict", scaffold_bundle, image, "--out", tmp_path / "ro", "--json")
    assert code == 2 and f"{tmp_path / 'ro' / 'road.pred.png'}: Read-only file system" in err and out == ""


@pytest.mark.parametrize("fmt", ["onnx", "triton"])
def test_a_read_only_export_target_is_one_line(scaffold_task, scaffold_bundle, monkeypatch, capsys, tmp_path, fmt):
    (tmp_path / "ro").mkdir()
    make_read_only(monkeypatch, tmp_path / "ro")
    code, _, err = run_cli(monkeypatch, capsys, "export", scaffold_bundle, "--format", fmt, "--out", tmp_path / "ro")
    assert code == 2 and f"{tmp_path / 'ro'}" in err and "Read-only file system" in err and "Traceback" not in err


def test_batch_size_and_repeats_below_one_are_one_line(scaffold_task, scaffold_bundle, monkeypatch, capsys, tmp_path):
    for args, message in (
        (("predict", scaffold_bundle, tmp_path, "--batch-size", "-1"), "--batch-size must be at least 1, got -1"),
        (("bench", scaffold_bundle, "--batch", "0"), "--batch must be at least 1, got 0"),
    ):
        code, _, err = run_cli(monkeypatch, capsys, *args)
        assert code == 2 and message in err


def test_export_of_a_bundle_whose_config_names_another_task_is_one_line(
    scaffold_task, scaffold_bundle, monkeypatch, capsys, tmp_path
):
    copy = Path(shutil.copytree(scaffold_bundle, tmp_path / "bundle"))
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "task": "other_task"}))
    monkeypatch.setitem(get_plugins().tasks, "other_task", type("OtherTask", (type(scaffold_task),), {"name": "other_task"})())
    code, _, err = run_cli(monkeypatch, capsys, "export", copy)
    assert code == 2 and "weights of task 'digits_demo', but config.json names task 'other_task'" in err


def test_resume_refuses_a_checkpoint_of_another_task_or_model(scaffold_task, monkeypatch, capsys, tmp_path):
    out = tmp_path / "b"
    train_args = ("train", "digits_demo", "--preset", "tiny", "--quiet", "--out", out, "--resume")
    save_state(out / CHECKPOINT, {"model.x": torch.zeros(1)}, {"progress": {"task": "steering", "model": {}}})
    code, _, err = run_cli(monkeypatch, capsys, *train_args)
    assert code == 2 and "is from a run with task 'steering', this one has 'digits_demo'" in err
    save_state(out / CHECKPOINT, {"model.x": torch.zeros(1)}, {"progress": {"task": "digits_demo", "model": {"width": 16}}})
    code, _, err = run_cli(monkeypatch, capsys, *train_args, "--set", "model.width=8")
    assert code == 2 and "is from a run with model {'width': 16}, this one has {'width': 8}" in err
    save_state(out / CHECKPOINT, {"model.x": torch.zeros(1)}, {"progress": {"epoch": 0}, "param_groups": [], "optim_state": {}})
    code, _, err = run_cli(monkeypatch, capsys, *train_args)  # a checkpoint without the run's identity (older apptool)
    assert code == 2 and "checkpoint.safetensors does not fit this model" in err


KILL_DURING_PARITY = """
import os, signal, sys
import apptool.onnx_export
apptool.onnx_export.parity = lambda graph, path: os.kill(os.getpid(), signal.SIGKILL)
from apptool.cli import main
sys.argv = ["apptool", *sys.argv[1:]]
main()
"""


def test_a_killed_export_leaves_only_tool_named_files_which_the_next_export_removes(
    scaffold_env, scaffold_task, scaffold_bundle, monkeypatch, capsys, tmp_path
):
    out = tmp_path / "exported"
    out.mkdir()
    (out / ".draft.tmp").write_text("the user's")
    killed = subprocess.run(
        [sys.executable, "-c", KILL_DURING_PARITY, "export", str(scaffold_bundle), "--out", str(out)],
        env=scaffold_env,
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL
    assert [p.name.startswith(".apptool-model.onnx.") for p in out.glob(".apptool-*")] == [True]
    with pytest.raises(BundleError, match="config.json: missing"):
        read_config(out)
    code, _, err = run_cli(monkeypatch, capsys, "export", scaffold_bundle, "--out", out)
    assert code == 0, err
    assert not list(out.glob(".apptool-*")) and (out / ".draft.tmp").read_text() == "the user's"


def test_training_without_a_terminal_prints_a_line_per_epoch_as_it_goes(scaffold_env, tmp_path):
    out, epochs = tmp_path / "b", 3
    command = train_command(out, False, epochs, quiet=False)
    process = subprocess.Popen(command, env=scaffold_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first = process.stdout.readline()
        finished_before_first_line = (out / "config.json").exists()
        rest = process.stdout.read()
    finally:
        process.wait(timeout=300)
    assert re.search(rf"train digits_demo · loss [0-9.]+ · val [0-9.]+ · epoch 1/{epochs} · [0-9.]+ s", first), first
    assert not finished_before_first_line, "the first epoch's line came only at the end"
    for epoch in range(2, epochs + 1):
        assert f"epoch {epoch}/{epochs}" in rest
    assert "exporting ONNX and evaluating on" in rest
