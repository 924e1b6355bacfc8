"""Resumable training checkpoints in safetensors: model, optimizer, AMP loss scale and progress.

The optimizer's tensors go into the safetensors body and its plain values
(and the GradScaler's, all plain numbers) into the JSON metadata, so a
checkpoint never needs pickle to load.  With the scale and its growth counter
saved, an AMP run resumes on the very loss scale it stopped at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from apptool.bundle import load_state, save_state

CHECKPOINT = "checkpoint.safetensors"


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    progress: dict[str, Any],
    best_state: dict[str, torch.Tensor] | None,
    scaler: torch.amp.GradScaler | None = None,
) -> Path:
    """Write everything needed to continue training after ``progress['epoch']``."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if best_state is not None:
        tensors.update({f"best.{k}": v for k, v in best_state.items()})
    opt = optimizer.state_dict()
    plain_state: dict[str, dict[str, Any]] = {}
    for index, state in opt["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value
            else:
                plain_state.setdefault(str(index), {})[key] = value
    meta = {"progress": progress, "param_groups": opt["param_groups"], "optim_state": plain_state}
    if scaler is not None and scaler.is_enabled():
        meta["grad_scaler"] = scaler.state_dict()
    return save_state(path, tensors, meta)


def load_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None = None
):
    """Restore model, optimizer and (when both sides have one) the AMP scaler in place; return (progress, best_state or None)."""
    tensors, meta = load_state(path)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    state: dict[int, dict[str, Any]] = {int(i): dict(v) for i, v in meta["optim_state"].items()}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    if scaler is not None and scaler.is_enabled() and "grad_scaler" in meta:
        scaler.load_state_dict(meta["grad_scaler"])
    return meta["progress"], best
