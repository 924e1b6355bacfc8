"""Hamming top-k search over a million 64-bit codes: our index vs faiss's binary indexes, one run.

Every exact search runs on the same random database with the same queries and
the same number of threads, and its distances are checked against the numpy
reference: ours (the numba kernel, ``backend="numba"``), the numpy reference
itself and faiss's ``IndexBinaryFlat``.  faiss's sublinear indexes
(``IndexBinaryHash``, ``IndexBinaryMultiHash``) are approximate unless they
flip enough bits: each is swept over ``nflip`` until its recall@k reaches
``--recall`` (ties counted by distance), and its speed at that point is
reported.  The machine's memory bandwidth (a numpy copy of an array far larger
than the caches, read + write) gives the bound for a search that streams the
whole database once per query; blocked searches reuse cached tiles and beat it.

Run from the repository root (faiss: ``pip install -e 'plugins/dbn_hashing[faiss]'``)::

    python benchmarks/hamming_search.py --threads 1
    python benchmarks/hamming_search.py --threads 2 --json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from apptool_dbn_hashing.index import HammingIndex, have_faiss, have_numba


def copy_bandwidth(megabytes: int = 512, repeats: int = 5) -> float:
    """Bytes per second moved by a large numpy copy (read + write), best of ``repeats``."""
    src = np.ones(megabytes * 2**20 // 8, np.float64)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - started)
    return 2 * src.nbytes / best


def queries_per_second(search, queries: np.ndarray, repeats: int) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    search(queries[:16])  # warm-up: compiles the numba kernel, touches buffers
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = search(queries)
        best = min(best, time.perf_counter() - started)
    return len(queries) / best, result


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact k-th-distance neighbourhood found: found distances <= the true k-th distance."""
    return float(np.mean(found <= exact[:, -1:]))


def sublinear(database, queries, exact_dist, args) -> list[dict]:
    """faiss's hash indexes, each at the smallest nflip that reaches the target recall."""
    import faiss

    rows = []
    for name, make in (
        ("faiss IndexBinaryHash (b=24)", lambda: faiss.IndexBinaryHash(args.bits, 24)),
        ("faiss IndexBinaryMultiHash (4 × 16 bits)", lambda: faiss.IndexBinaryMultiHash(args.bits, 4, 16)),
    ):
        index = make()
        index.add(database)
        for nflip in range(0, 9):
            index.nflip = nflip
            qps, (dist, _) = queries_per_second(lambda q, index=index: index.search(q, args.k), queries, 1)
            got = recall(dist, exact_dist)
            if got >= args.recall:
                rows.append({"index": name, "nflip": nflip, "qps": qps, "recall": got})
                break
        else:
            rows.append({"index": name, "nflip": nflip, "qps": qps, "recall": got})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="database codes")
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--queries", type=int, default=512)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--recall", type=float, default=0.99, help="recall the sublinear indexes must reach")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    nbytes = args.bits // 8
    database = rng.integers(0, 256, (args.n, nbytes), dtype=np.uint8)
    queries = rng.integers(0, 256, (args.queries, nbytes), dtype=np.uint8)
    bandwidth = copy_bandwidth()
    report = {
        "n": args.n,
        "bits": args.bits,
        "k": args.k,
        "queries": args.queries,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "bandwidth_bound_qps": bandwidth / database.nbytes,
        "rows": [],
    }
    reference = HammingIndex(args.bits, "numpy", threads=args.threads)
    reference.add(database)
    exact = reference.search(queries, args.k)
    contenders = [("ours, numba kernel", "numba")] if have_numba() else []
    contenders.append(("numpy reference (XOR + np.bitwise_count)", "numpy"))
    if have_faiss():
        import faiss

        faiss.omp_set_num_threads(args.threads)
        contenders.append(("faiss IndexBinaryFlat", "faiss"))
    for name, backend in contenders:
        index = HammingIndex(args.bits, backend, threads=args.threads)
        index.add(database)
        qps, (dist, idx) = queries_per_second(lambda q, index=index: index.search(q, args.k), queries, args.repeats)
        report["rows"].append(
            {"index": name, "qps": qps, "recall": recall(dist, exact[0]), "same_distances": bool(np.array_equal(dist, exact[0]))}
        )
    if have_faiss():
        report["rows"] += sublinear(database, queries, exact[0], args)
    by_name = {row["index"]: row["qps"] for row in report["rows"]}
    if "ours, numba kernel" in by_name and "faiss IndexBinaryFlat" in by_name:
        report["ours_over_faiss_flat"] = by_name["ours, numba kernel"] / by_name["faiss IndexBinaryFlat"]
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"Hamming top-{args.k} over {args.n:,} {args.bits}-bit codes, {args.queries} queries, "
        f"{args.threads} thread(s) of {os.cpu_count()} cores; one database scan per query is bounded by memory "
        f"bandwidth at {report['bandwidth_bound_qps']:.0f} queries/s"
    )
    print("| index | queries/s | × ours | recall@k | exact distances |")
    print("|---|---|---|---|---|")
    ours = by_name.get("ours, numba kernel")
    for row in report["rows"]:
        ratio = f"{row['qps'] / ours:.2f}" if ours else "-"
        exact_col = row.get("same_distances", f"nflip={row.get('nflip')}")
        print(f"| {row['index']} | {row['qps']:.0f} | {ratio} | {row['recall']:.3f} | {exact_col} |")
    if "ours_over_faiss_flat" in report:
        print(f"ours / faiss IndexBinaryFlat = {report['ours_over_faiss_flat']:.2f}×")


if __name__ == "__main__":
    main()
