"""MiniRocket's fixed parts, in numpy: kernels, dilations, channel subsets, state sizes, and its ridge classifier.

The torch module that applies them is ``rocket.MiniRocket``; this module is
what the numpy-only side (streaming state shapes) needs, and what fits the
classifier on the features the module computed.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

KERNEL_LENGTH = 9
#: The 84 kernels: -1 everywhere but three positions of 2 (weights sum to 0, so an offset does not matter).
KERNELS = np.full((84, KERNEL_LENGTH), -1.0, np.float32)
for _k, _positions in enumerate(combinations(range(KERNEL_LENGTH), 3)):
    KERNELS[_k, list(_positions)] = 2.0
MAX_DILATIONS = 32
GOLDEN = (np.sqrt(5) + 1) / 2  # bias quantiles: the golden-ratio low-discrepancy sequence


def dilations_for(length: int, num_features: int) -> tuple[list[int], list[int]]:
    """MiniRocket's dilations for series of ``length`` frames and how many biases each gets per kernel."""
    per_kernel = max(1, num_features // len(KERNELS))
    count = min(per_kernel, MAX_DILATIONS)
    exponent = max(np.log2(max(length - 1, 1) / (KERNEL_LENGTH - 1)), 0.0)
    dilations, repeats = np.unique(np.logspace(0, exponent, count, base=2).astype(np.int64), return_counts=True)
    biases = (repeats * per_kernel / count).astype(np.int64)
    for i in range(per_kernel - int(biases.sum())):
        biases[i % len(biases)] += 1
    return [int(d) for d in dilations], [int(b) for b in biases]


def channel_masks(n_channels: int, n_pairs: int, seed: int) -> np.ndarray:
    """(n_pairs, C) 0/1: the random channel subset each kernel/dilation pair sums (all of them when univariate)."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n_pairs, n_channels), np.float32)
    most = np.log2(min(n_channels, KERNEL_LENGTH) + 1)
    for pair in range(n_pairs):
        size = int(2 ** rng.uniform(0, most))
        masks[pair, rng.choice(n_channels, min(size, n_channels), replace=False)] = 1.0
    return masks


def state_sizes(length: int, num_features: int) -> tuple[int, int]:
    """(past input frames a streaming step needs, number of features) of MiniRocket fitted to ``length``-frame series."""
    dilations, biases = dilations_for(length, num_features)
    return (KERNEL_LENGTH - 1) * dilations[-1], len(KERNELS) * sum(biases)


def fit_ridge(features: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """MiniRocket's classifier on (N, F) proportions: (C, F) weights and (C,) biases of calibrated log-odds, and a summary.

    Ridge regression on standardised features, the penalty chosen by
    leave-one-out error (scikit-learn's efficient LOO); its one-vs-rest scores
    are then scaled by the temperature that makes the leave-one-out scores
    the most likely, so the classes' softmax is a probability that can be
    averaged with the network's.  Standardisation and temperature are folded
    into the returned weights.
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(features)
    standardised = scaler.transform(features)
    ridge = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)).fit(standardised, labels)  # penalty by LOO squared error
    # with a scorer, scikit-learn keeps the leave-one-out scores themselves (the chosen penalty only: nothing to choose)
    loo = RidgeClassifierCV(alphas=[ridge.alpha_], scoring="accuracy", store_cv_results=True).fit(standardised, labels)
    loo = loo.cv_results_[:, :, 0]
    coef, intercept = np.atleast_2d(ridge.coef_), np.atleast_1d(ridge.intercept_)
    if len(ridge.classes_) == 2:  # scikit-learn keeps one column, the second class's score; the first's is its negative
        loo, coef, intercept = (
            np.concatenate([-loo, loo], 1),
            np.concatenate([-coef, coef]),
            np.concatenate([-intercept, intercept]),
        )
    rows, present = np.arange(len(labels)), np.searchsorted(ridge.classes_, labels)
    temperature = minimize_scalar(
        lambda t: -log_softmax(t * loo, 1)[rows, present].mean(), bounds=(1e-2, 1e3), method="bounded"
    ).x
    weight = np.zeros((n_classes, features.shape[1]))
    bias = np.full(n_classes, -1e4)  # a class the fitted part lacks (all its series held out) is never this head's answer
    weight[ridge.classes_] = temperature * coef / scaler.scale_
    bias[ridge.classes_] = temperature * intercept - weight[ridge.classes_] @ scaler.mean_
    summary = {
        "alpha": float(ridge.alpha_),
        "loo_accuracy": float((loo.argmax(1) == present).mean()),
        "temperature": float(temperature),
    }
    return weight.astype(np.float32), bias.astype(np.float32), summary
