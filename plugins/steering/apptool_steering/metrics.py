"""Steering metrics (numpy): open-loop RMSE and Bojarski et al.'s closed-loop autonomy."""

from __future__ import annotations

import numpy as np

#: Seconds PilotNet's evaluation charged for each human intervention.
INTERVENTION_PENALTY_S = 6.0


def rmse(predicted, target) -> float:
    """Root-mean-square error between predicted and recorded steering commands."""
    predicted, target = np.asarray(predicted, np.float64).ravel(), np.asarray(target, np.float64).ravel()
    if predicted.shape != target.shape or predicted.size == 0:
        raise ValueError(f"rmse needs two equal, non-empty arrays, got {predicted.shape} and {target.shape}")
    return float(np.sqrt(np.mean((predicted - target) ** 2)))


def autonomy(interventions: int, elapsed_s: float, penalty_s: float = INTERVENTION_PENALTY_S) -> float:
    """(1 - interventions * 6 s / elapsed s) * 100, floored at 0 (more penalty than driving time)."""
    if elapsed_s <= 0:
        raise ValueError(f"autonomy needs a positive elapsed time, got {elapsed_s}")
    return float(max(0.0, (1.0 - interventions * penalty_s / elapsed_s) * 100.0))
