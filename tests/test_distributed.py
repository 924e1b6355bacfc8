"""DDP: `apptool train --nproc-per-node 2` runs two gloo ranks on this CPU and matches one process."""

from __future__ import annotations

import json
import subprocess
import sys

ACCURACY_TOLERANCE = 0.06  # per-rank batch-norm statistics and shuffles differ; the global batch is the same


def test_two_processes_match_one_with_the_same_global_batch(scaffold_env, tmp_path):
    common = ["train", "digits_demo", "--preset", "tiny", "--epochs", "4", "--set", "train.batch_size=64", "--quiet"]
    single = subprocess.run(
        [sys.executable, "-m", "apptool", *common, "--out", str(tmp_path / "one")],
        env=scaffold_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    double = subprocess.run(
        [sys.executable, "-m", "apptool", *common, "--nproc-per-node", "2", "--out", str(tmp_path / "two")],
        env=scaffold_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert double.returncode == 0, double.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["training"]["world_size"] == 2 and one["training"]["world_size"] == 1
    assert abs(one["test"]["accuracy"] - two["test"]["accuracy"]) <= ACCURACY_TOLERANCE
    assert two["test"]["accuracy"] > 0.8
    # every rank saw its half of the data: the epoch count and history are those of one run
    assert (tmp_path / "two" / "metrics.csv").read_text().count("\n") == 5
