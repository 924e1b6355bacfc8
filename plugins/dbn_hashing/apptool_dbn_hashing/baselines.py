"""Linear hashing baselines, measured by the same evaluation code as the DBN: random-projection LSH and PCA-ITQ.

Both are a centring, a projection and a sign: code = (x − mean) W > 0.
LSH draws W at random (Charikar's SimHash); ITQ (Gong & Lazebnik, CVPR 2011)
takes the top principal directions and rotates them to minimise the
quantisation loss ||B − VR||², alternating B = sign(VR) with an orthogonal
Procrustes step for R.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from apptool_dbn_hashing.index import pack_bits


@dataclass
class LinearHash:
    """code = (x − mean) @ projection > 0, packed."""

    mean: np.ndarray
    projection: np.ndarray

    def encode(self, features: np.ndarray) -> np.ndarray:
        return pack_bits((features - self.mean) @ self.projection > 0)


def fit_lsh(features: np.ndarray, bits: int, seed: int) -> LinearHash:
    """Random Gaussian hyperplanes through the data mean."""
    rng = np.random.default_rng(seed)
    return LinearHash(features.mean(axis=0), rng.standard_normal((features.shape[1], bits)))


def fit_itq(features: np.ndarray, bits: int, seed: int, iterations: int = 50) -> LinearHash | None:
    """PCA to ``bits`` dimensions, then the rotation that best fits the binary hypercube (None if bits > rank)."""
    mean = features.mean(axis=0)
    centred = features - mean
    if bits > min(centred.shape):
        return None
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    pca = vt[:bits].T
    projected = centred @ pca
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((bits, bits)))
    for _ in range(iterations):
        binary = np.where(projected @ rotation >= 0, 1.0, -1.0)
        u, _, wt = np.linalg.svd(projected.T @ binary)
        rotation = u @ wt
    return LinearHash(mean, pca @ rotation)
