"""Retrieval metrics over Hamming ranking, exact under ties (numpy only).

Many database codes share a distance, so a ranking by Hamming distance is a
ranking of tied groups.  Every metric here is the expectation over a uniformly
random order inside each tied group, computed in closed form from per-distance
counts: the figures do not depend on how the database happens to be ordered.
A database item is relevant to a query when it has the query's class.
"""

from __future__ import annotations

import numpy as np

from apptool_dbn_hashing.index import hamming_distances

QUERY_CHUNK = 256


def _group_counts(dist: np.ndarray, relevant: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query and distance d: how many database items lie at d (n) and how many of them are relevant (r)."""
    q = len(dist)
    flat = (dist.astype(np.int64) + (np.arange(q) * (bits + 1))[:, None]).ravel()
    n = np.bincount(flat, minlength=q * (bits + 1)).reshape(q, bits + 1)
    r = np.bincount(flat, weights=relevant.ravel().astype(np.float64), minlength=q * (bits + 1)).reshape(q, bits + 1)
    return n.astype(np.float64), r


def average_precision_from_groups(n: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Expected average precision per query, ties broken at random, from group counts [Q, G] in rank order.

    In a group of n items (r relevant) after Nb items (Rb relevant), the item at
    position p is relevant with probability r/n and then has, on average,
    Rb + 1 + (p-1)(r-1)/(n-1) relevant items at or above it; summing precision
    over p uses harmonic numbers.
    """
    total = int(n.sum(axis=1).max(initial=0))
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, total + 1))])
    nb = np.cumsum(n, axis=1) - n
    rb = np.cumsum(r, axis=1) - r
    end = (nb + n).astype(np.int64)
    s1 = harmonic[end] - harmonic[nb.astype(np.int64)]  # sum over p of 1/(Nb+p)
    s2 = n - (nb + 1) * s1  # sum over p of (p-1)/(Nb+p)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n > 0, r / n, 0.0)
        pair = np.where(n > 1, (r - 1) / (n - 1), 0.0)
    contribution = share * ((rb + 1) * s1 + pair * s2)
    relevant = r.sum(axis=1)
    return np.where(relevant > 0, contribution.sum(axis=1) / np.maximum(relevant, 1), 0.0)


def precision_at_k_from_groups(n: np.ndarray, r: np.ndarray, k: int) -> np.ndarray:
    """Expected precision of the first k results per query, ties broken at random."""
    k = min(k, int(n.sum(axis=1).min(initial=k)))
    nb = np.cumsum(n, axis=1) - n
    overlap = np.clip(k - nb, 0, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n > 0, r / n, 0.0)
    return (overlap * share).sum(axis=1) / max(k, 1)


def precision_within_radius_from_groups(n: np.ndarray, r: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision of everything within ``radius`` per query (0 when nothing is that close), and whether anything was."""
    found = n[:, : radius + 1].sum(axis=1)
    hits = r[:, : radius + 1].sum(axis=1)
    return np.where(found > 0, hits / np.maximum(found, 1), 0.0), found > 0


def retrieval_metrics(
    queries: np.ndarray,
    query_labels: np.ndarray,
    database: np.ndarray,
    database_labels: np.ndarray,
    bits: int,
    k: int = 10,
    radius: int = 2,
) -> dict[str, float]:
    """mAP over the whole database, precision@k and precision within Hamming ``radius`` of packed codes.

    Queries with nothing within the radius count as precision 0 in ``precision_r{radius}``;
    ``r{radius}_found`` is the fraction of queries that found anything there.
    """
    ap, pk, pr, found = [], [], [], []
    for start in range(0, len(queries), QUERY_CHUNK):
        dist = hamming_distances(queries[start : start + QUERY_CHUNK], database)
        relevant = query_labels[start : start + QUERY_CHUNK, None] == database_labels[None, :]
        n, r = _group_counts(dist, relevant, bits)
        ap.append(average_precision_from_groups(n, r))
        pk.append(precision_at_k_from_groups(n, r, k))
        precision, any_found = precision_within_radius_from_groups(n, r, radius)
        pr.append(precision)
        found.append(any_found)
    return {
        "map": float(np.concatenate(ap).mean()),
        f"precision_at_{k}": float(np.concatenate(pk).mean()),
        f"precision_r{radius}": float(np.concatenate(pr).mean()),
        f"r{radius}_found": float(np.concatenate(found).mean()),
    }
