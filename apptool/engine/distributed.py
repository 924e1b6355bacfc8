"""DDP when launched under torchrun (gloo on CPU, NCCL on CUDA); a no-op otherwise.

NCCL gives every rank a GPU of its own and reduces CUDA tensors only.  More
ranks on a host than it has GPUs is refused with one line rather than run on
the CPU behind the user's back: gloo on the CPU of a GPU host would be silently
tens of times slower.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from apptool.errors import ConfigError


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def check_gpus_per_node(nproc: int) -> None:
    """Refuse ``nproc`` ranks on this host when CUDA is there but has fewer GPUs than that."""
    if torch.cuda.is_available() and nproc > (gpus := torch.cuda.device_count()):
        raise ConfigError(f"--nproc-per-node {nproc}: this host has {gpus} CUDA device(s); NCCL needs one GPU per process")


def setup() -> torch.device:
    """Join the process group if torchrun started us; return this rank's device."""
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:  # every rank checks the whole node, so all refuse together instead of hanging in init
        check_gpus_per_node(max(local + 1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    if world_size() > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def reduction_device() -> torch.device:
    """Where a collective's tensor must live: this rank's GPU under NCCL, the CPU under gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def mean_across_ranks(total: float, count: int) -> float:
    """The mean of per-sample sums over all ranks (``total`` is this rank's sum, ``count`` its samples)."""
    if not (dist.is_available() and dist.is_initialized()):
        return total / max(count, 1)
    pair = torch.tensor([total, float(count)], dtype=torch.float64, device=reduction_device())
    dist.all_reduce(pair)
    return (pair[0] / pair[1].clamp(min=1)).item()


def same_on_every_rank(flag: bool) -> bool:
    """Whether ``flag`` has one value on all ranks (always true outside a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return True
    votes = torch.tensor([float(flag), 1.0], dtype=torch.float64, device=reduction_device())
    dist.all_reduce(votes)
    return votes[0].item() in (0.0, votes[1].item())


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
