"""Hamming top-k search over a million 64-bit codes: our numpy index vs faiss's IndexBinaryFlat, one run.

Both search the same random database with the same queries and the same
number of threads; their distances are checked to be identical.  The machine's
memory bandwidth is measured with a numpy copy of an array far larger than the
caches (STREAM convention: bytes read + bytes written per second), and turned
into the bound for a search that streams the whole database once per query:
8 MB of codes per query (1,000,000 × 8 bytes) → at most bandwidth / 8 MB
queries per second.  Both implementations take queries in blocks and reuse
each cache-sized chunk of the database for the whole block, so they can beat
that one-scan-per-query bound.

Run from the repository root::

    python benchmarks/hamming_search.py                   # 1,000,000 codes, 64 bits, top-10
    python benchmarks/hamming_search.py --threads 1 --json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from apptool_dbn_hashing.index import HammingIndex, have_faiss


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
    search(queries[:16])  # warm-up (faiss builds nothing, numpy touches its buffers)
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = search(queries)
        best = min(best, time.perf_counter() - started)
    return len(queries) / best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="database codes")
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--queries", type=int, default=512)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    nbytes = args.bits // 8
    database = rng.integers(0, 256, (args.n, nbytes), dtype=np.uint8)
    queries = rng.integers(0, 256, (args.queries, nbytes), dtype=np.uint8)
    bandwidth = copy_bandwidth()
    scan_bytes = database.nbytes
    report = {
        "n": args.n,
        "bits": args.bits,
        "k": args.k,
        "queries": args.queries,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "copy_bandwidth_gb_s": bandwidth / 1e9,
        "scan_mb_per_query": scan_bytes / 1e6,
        "bandwidth_bound_qps": bandwidth / scan_bytes,
        "index_backend_when_installed": HammingIndex(args.bits).backend,
    }

    ours = HammingIndex(args.bits, "numpy", threads=args.threads)
    ours.add(database)
    report["numpy_qps"], (numpy_dist, _) = queries_per_second(lambda q: ours.search(q, args.k), queries, args.repeats)
    if have_faiss():
        import faiss

        faiss.omp_set_num_threads(args.threads)
        theirs = faiss.IndexBinaryFlat(args.bits)
        theirs.add(database)
        report["faiss_qps"], (faiss_dist, _) = queries_per_second(lambda q: theirs.search(q, args.k), queries, args.repeats)
        report["same_distances"] = bool(np.array_equal(numpy_dist, faiss_dist))
        report["faiss_over_numpy"] = report["faiss_qps"] / report["numpy_qps"]
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"Hamming top-{args.k} over {args.n:,} {args.bits}-bit codes, {args.queries} queries, {args.threads} thread(s) "
        f"of {os.cpu_count()} cores"
    )
    print(
        f"memory bandwidth (numpy copy, read+write): {report['copy_bandwidth_gb_s']:.2f} GB/s → one scan of "
        f"{scan_bytes / 1e6:.0f} MB per query bounds search at {report['bandwidth_bound_qps']:.0f} queries/s"
    )
    print("| index | queries/s | × bandwidth bound |")
    print("|---|---|---|")
    print(
        f"| ours, numpy (XOR + np.bitwise_count) | {report['numpy_qps']:.0f} | {report['numpy_qps'] / report['bandwidth_bound_qps']:.2f} |"
    )
    if "faiss_qps" in report:
        print(
            f"| faiss IndexBinaryFlat | {report['faiss_qps']:.0f} | {report['faiss_qps'] / report['bandwidth_bound_qps']:.2f} |"
        )
        print(f"faiss / numpy = {report['faiss_over_numpy']:.2f}×; identical distances: {report['same_distances']}")
    print(f"HammingIndex uses {report['index_backend_when_installed']} by default in this environment")


if __name__ == "__main__":
    main()
