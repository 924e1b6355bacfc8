"""DDP: each rank trains on its own shard of every epoch, on one node (torchrun standalone) and on two.

A probe task (the scaffold's digits, with a training set that records the
indices each rank reads, epoch by epoch) runs under `apptool train` with gloo on
this CPU; the shards of an epoch must be disjoint and cover the training set.
The NCCL and GPU-count paths are checked with a mocked backend.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from apptool.engine import distributed
from apptool.errors import ConfigError

TRAIN_SAMPLES = 1348  # scikit-learn's 1797 digits less the scaffold's 25 % test split
PROBE = '''
"""digits_demo whose training set appends each index it serves to $PROBE_DIR/rank<RANK>-epoch<E>.txt."""
import os
from pathlib import Path

import apptool
from apptool_digits_demo.plugin import apptool_tasks as digits_tasks

APPTOOL_API = 1
Digits = type(digits_tasks()[0])


class Recording:
    def __init__(self, samples, folder):
        self.samples, self.folder, self.epoch = samples, Path(folder), 0

    def __len__(self):
        return len(self.samples)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __getitem__(self, i):
        with open(self.folder / f"rank{os.environ.get('RANK', '0')}-epoch{self.epoch}.txt", "a") as log:
            log.write(f"{i}\\n")
        return self.samples[i]


class IndexProbe(Digits):
    name = "index_probe"

    def load_data(self, config, data_dir):
        splits = super().load_data(config, None)
        return type(splits)(Recording(splits.train, os.environ["PROBE_DIR"]), splits.test, splits.info)


@apptool.hookimpl
def apptool_tasks():
    return [IndexProbe()]
'''
PROBE_TRAIN = [
    "train",
    "index_probe",
    "--preset",
    "tiny",
    "--set",
    "train.val_fraction=0",
    "--set",
    "train.batch_size=64",
    "--quiet",
]


@pytest.fixture(scope="module")
def probe_env(scaffold_env, tmp_path_factory):
    from conftest import make_discoverable

    root = tmp_path_factory.mktemp("probe")
    (root / "index_probe_plugin.py").write_text(PROBE)
    make_discoverable(root, "apptool-index-probe", {"index_probe": "index_probe_plugin"})
    return {**scaffold_env, "PYTHONPATH": os.pathsep.join([str(root), scaffold_env["PYTHONPATH"]]), "OMP_NUM_THREADS": "1"}


def apptool(env: dict, probe_dir: Path, *args: str) -> subprocess.Popen:
    probe_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "apptool", *map(str, args)],
        env={**env, "PROBE_DIR": str(probe_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]


def shards(probe_dirs: list[Path], epoch: int, ranks: int) -> list[list[int]]:
    """The indices each rank read in ``epoch``, wherever (on whichever node) it wrote them."""
    found = []
    for rank in range(ranks):
        logs = [d / f"rank{rank}-epoch{epoch}.txt" for d in probe_dirs if (d / f"rank{rank}-epoch{epoch}.txt").exists()]
        assert len(logs) == 1, f"rank {rank} epoch {epoch}: {logs}"
        found.append([int(line) for line in logs[0].read_text().split()])
    return found


def assert_disjoint_and_covering(per_rank: list[list[int]]) -> None:
    for indices in per_rank:
        assert len(indices) == len(set(indices)) == TRAIN_SAMPLES // len(per_rank), "a rank read a sample twice or too many"
    union = set().union(*map(set, per_rank))
    assert len(union) == TRAIN_SAMPLES and union == set(range(TRAIN_SAMPLES)), "the shards overlap or miss samples"


def test_two_ranks_read_disjoint_shards_that_cover_every_epoch(probe_env, tmp_path):
    finish(
        apptool(probe_env, tmp_path / "probe", *PROBE_TRAIN, "--epochs", "2", "--nproc-per-node", "2", "--out", tmp_path / "b")
    )
    epochs = [shards([tmp_path / "probe"], epoch, 2) for epoch in (0, 1)]
    for per_rank in epochs:
        assert_disjoint_and_covering(per_rank)
    assert set(epochs[0][0]) != set(epochs[1][0]), "each epoch deals new shards"
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["training"]["world_size"] == 2 and metrics["training"]["epochs_run"] == 2
    assert metrics["test"]["accuracy"] > 0.8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_of_one_process_each_share_the_epoch_and_node_0_writes_the_bundle(probe_env, tmp_path):
    rendezvous = f"127.0.0.1:{free_port()}"
    nodes = [
        apptool(probe_env, tmp_path / f"probe{r}", *PROBE_TRAIN, "--epochs", "1", "--nnodes", "2", "--node-rank", r,
                "--rdzv-endpoint", rendezvous, "--out", tmp_path / f"node{r}")
        for r in (0, 1)
    ]  # fmt: skip
    for node in nodes:
        finish(node)
    assert_disjoint_and_covering(shards([tmp_path / "probe0", tmp_path / "probe1"], 0, 2))
    assert (tmp_path / "probe0" / "rank0-epoch0.txt").exists() and (tmp_path / "probe1" / "rank1-epoch0.txt").exists()
    assert json.loads((tmp_path / "node0" / "metrics.json").read_text())["training"]["world_size"] == 2
    assert not (tmp_path / "node1" / "weights.safetensors").exists()


def test_several_nodes_need_a_node_rank_and_an_endpoint(scaffold_env, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "apptool", "train", "digits_demo", "--nnodes", "2", "--rdzv-endpoint", "127.0.0.1:29400"]
        + ["--out", str(tmp_path / "x")],
        env=scaffold_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "--node-rank" in done.stderr


def test_nccl_reduces_a_tensor_on_the_ranks_gpu(monkeypatch):
    created, reduced = [], []
    real_tensor = torch.tensor

    def tensor_on_cpu(*args, device=None, **kwargs):  # this machine has no GPU: note where it was asked for
        created.append(torch.device(device) if device is not None else torch.device("cpu"))
        return real_tensor(*args, **kwargs)

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_backend", lambda group=None: "nccl")
    monkeypatch.setattr(dist, "all_reduce", lambda tensor, *a, **k: reduced.append(tensor))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch, "tensor", tensor_on_cpu)
    assert distributed.mean_across_ranks(6.0, 3) == 2.0
    assert len(reduced) == 1 and created == [torch.device("cuda", 1)]
    monkeypatch.setattr(dist, "get_backend", lambda group=None: "gloo")
    distributed.mean_across_ranks(6.0, 3)
    assert created[-1] == torch.device("cpu")


def test_more_ranks_on_a_host_than_gpus_are_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # rank 0 refuses too, rather than wait for rank 1 forever
    with pytest.raises(ConfigError, match=r"--nproc-per-node 2: this host has 1 CUDA device\(s\)"):
        distributed.setup()
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    with pytest.raises(ConfigError, match="--nproc-per-node 2"):
        distributed.setup()


@pytest.mark.parametrize(("here", "elsewhere", "same"), [(True, True, True), (False, False, True), (True, False, False)])
def test_ranks_compare_whether_they_have_a_checkpoint(monkeypatch, here, elsewhere, same):
    def all_reduce_with_one_more_rank(tensor, *args, **kwargs):
        tensor += torch.tensor([float(elsewhere), 1.0], dtype=tensor.dtype)

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_backend", lambda group=None: "gloo")
    monkeypatch.setattr(dist, "all_reduce", all_reduce_with_one_more_rank)
    assert distributed.same_on_every_rank(here) is same
