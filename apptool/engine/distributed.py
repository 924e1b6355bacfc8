"""DDP when launched under torchrun (gloo on CPU, NCCL on CUDA); a no-op otherwise."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def setup() -> torch.device:
    """Join the process group if torchrun started us; return this rank's device."""
    cuda = torch.cuda.is_available()
    if world_size() > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def mean_across_ranks(total: float, count: int) -> float:
    """The mean of per-sample sums over all ranks (``total`` is this rank's sum, ``count`` its samples)."""
    if not (dist.is_available() and dist.is_initialized()):
        return total / max(count, 1)
    pair = torch.tensor([total, float(count)], dtype=torch.float64)
    dist.all_reduce(pair)
    return (pair[0] / pair[1].clamp(min=1)).item()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
