"""SIGKILL at many points of a training run: --resume always recovers the uninterrupted result,
and no file of the bundle or checkpoint is ever half-written."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from apptool.bundle import load_state, read_config
from apptool.engine.checkpoint import CHECKPOINT

EPOCHS = 8


def train_command(out: Path, resume: bool) -> list[str]:
    return [
        sys.executable,
        "-m",
        "apptool",
        "train",
        "digits_demo",
        "--preset",
        "tiny",
        "--epochs",
        str(EPOCHS),
        "--quiet",
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
