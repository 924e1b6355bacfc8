"""RBM training defaults, after Hinton's practical guide; here so the config is built without torch."""

from __future__ import annotations

from typing import Any

RBM_DEFAULTS: dict[str, Any] = {
    "steps": 1200,  # CD updates, whatever the data: 30 epochs of the 1,293 digits the stack learns from, 600 of 64
    "epochs": 30,  # used when ``steps`` is 0, and when the user states it
    "batch_size": 32,
    "lr": 0.1,  # Bernoulli visible units
    "gaussian_lr": 0.005,  # Gaussian visible units want a far smaller step
    "cd_k": 1,
    "persistent": False,
    "momentum_start": 0.5,
    "momentum_final": 0.9,
    "momentum_switch_epoch": 5,
    "weight_decay": 2e-4,
    "sparsity_target": 0.1,
    "sparsity_cost": 0.0,
    "sparsity_decay": 0.95,
}
