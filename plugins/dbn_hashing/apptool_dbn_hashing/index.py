"""A Hamming-distance index over packed binary codes: exact top-k and radius search, saved without pickle.

Codes are packed 8 bits to a byte (``np.packbits`` rows).  Search is exact, on
one of three backends: the numba kernel in ``kernel.py`` (the fastest, when
numba is importable), faiss's ``IndexBinaryFlat``, or numpy, the reference the
others are tested against: XOR of 64-bit words and ``np.bitwise_count``, one
block of queries against cache-sized chunks of the database, then a per-query
distance bound taken from a strided sample, so only a few thousand candidates
need sorting.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save

from apptool.bundle import atomic_write_bytes
from apptool.errors import BundleError, InputError

QUERY_BLOCK = 16
DB_CHUNK = 16384
SAMPLE = 16384
FORMAT = "apptool.hamming_index/1"
INDEX_FILE = "index.safetensors"  # the index inside a bundle
BACKENDS = ("numba", "faiss", "numpy")
NUMBA_MIN_ROWS = 50_000


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """0/1 codes [N, bits] (any dtype, anything > 0.5 is a one) → uint8 rows [N, ceil(bits/8)]."""
    bits = np.asarray(bits)
    if bits.ndim != 2:
        raise InputError(f"codes must be a 2-D array [N, bits], got shape {bits.shape}")
    return np.packbits(bits > 0.5, axis=1)


def unpack_bits(packed: np.ndarray, bits: int) -> np.ndarray:
    """uint8 rows → 0/1 uint8 codes [N, bits]."""
    return np.unpackbits(packed, axis=1, count=bits)


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def have_faiss() -> bool:
    return _importable("faiss")


def have_numba() -> bool:
    return _importable("numba")


def default_backend(rows: int) -> str:
    """The fastest exact backend installed for a database of ``rows`` codes.

    The numba kernel wins from about ten thousand codes on, but compiles for
    seconds on first use in a fresh environment, so small indexes (a demo's)
    stay on faiss or numpy, which answer at once.
    """
    if rows >= NUMBA_MIN_ROWS and have_numba():
        return "numba"
    return "faiss" if have_faiss() else "numpy"


def _words(packed: np.ndarray) -> np.ndarray:
    """Rows padded with zero bytes to whole 64-bit words (zeros add nothing to a Hamming distance)."""
    n, nbytes = packed.shape
    width = -(-nbytes // 8) * 8
    if width != nbytes:
        packed = np.concatenate([packed, np.zeros((n, width - nbytes), np.uint8)], axis=1)
    return np.ascontiguousarray(packed).view(np.uint64)


def hamming_distances(queries: np.ndarray, database: np.ndarray) -> np.ndarray:
    """All distances [Q, N] between packed query and database rows (uint16)."""
    q, db = _words(queries), _words(database)
    out = np.empty((len(q), len(db)), np.uint16)
    for start in range(0, len(db), DB_CHUNK):
        _block_distances(q, db[start : start + DB_CHUNK], out[:, start : start + DB_CHUNK])
    return out


def _block_distances(q: np.ndarray, db: np.ndarray, out: np.ndarray) -> None:
    """out[i, j] = popcount(q[i] XOR db[j]) summed over 64-bit words."""
    np.bitwise_count(q[:, None, 0] ^ db[None, :, 0], out=out, casting="unsafe")
    for w in range(1, q.shape[1]):
        out += np.bitwise_count(q[:, None, w] ^ db[None, :, w])


def _topk_block(q: np.ndarray, db: np.ndarray, k: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest (distance, then index) of a block of queries: bound from a sample, then sort the few below it."""
    n = len(db)
    dtype = np.uint8 if bits < 256 else np.uint16
    dist = np.empty((len(q), n), dtype)
    for start in range(0, n, DB_CHUNK):
        _block_distances(q, db[start : start + DB_CHUNK], dist[:, start : start + DB_CHUNK])
    stride = max(1, n // SAMPLE)
    sample = dist[:, ::stride]
    # the k-th smallest of a subset bounds the k-th smallest of the whole row from above
    bound = np.partition(sample, k - 1, axis=1)[:, k - 1] if sample.shape[1] > k else np.full(len(q), bits, dtype)
    cols = [np.flatnonzero(row <= b) for row, b in zip(dist, bound)]
    rows = np.repeat(np.arange(len(q), dtype=np.int64), [len(c) for c in cols])
    cols = np.concatenate(cols)
    key = (rows * (bits + 1) + dist[rows, cols]) * n + cols
    key.sort()
    rows_sorted = key // ((bits + 1) * n)
    starts = np.searchsorted(rows_sorted, np.arange(len(q)))
    take = key[starts[:, None] + np.arange(k)]
    return ((take // n) % (bits + 1)).astype(np.int32), (take % n).astype(np.int64)


class HammingIndex:
    """Packed binary codes with labels, names and (optionally) their images; exact Hamming search.

    ``backend`` is "numba" (the compiled kernel), "faiss" (``IndexBinaryFlat``), "numpy", or
    "auto" (``default_backend`` for the index's size when it is searched).
    """

    def __init__(self, bits: int, backend: str = "auto", threads: int | None = None):
        if bits < 1:
            raise InputError(f"an index needs at least one bit per code, got {bits}")
        if backend not in ("auto", *BACKENDS):
            raise InputError(f"index backend {backend!r}; expected auto, {', '.join(BACKENDS)}")
        self.bits = int(bits)
        self.nbytes = -(-self.bits // 8)
        self.requested_backend = backend
        self.threads = threads or os.cpu_count() or 1
        self.codes = np.zeros((0, self.nbytes), np.uint8)
        self.labels = np.zeros(0, np.int64)
        self.names: list[str] = []
        self.images: np.ndarray | None = None
        self._faiss = None
        self._words: np.ndarray | None = None
        self._columns: np.ndarray | None = None  # word-major copy of the codes for the numba kernel

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def backend(self) -> str:
        """The backend a search runs on now."""
        return default_backend(len(self)) if self.requested_backend == "auto" else self.requested_backend

    def add(
        self,
        packed: np.ndarray,
        labels: np.ndarray | None = None,
        names: list[str] | None = None,
        images: np.ndarray | None = None,
    ) -> None:
        """Append packed codes (and their labels, names, images) to the index."""
        packed = np.ascontiguousarray(packed, np.uint8)
        if packed.ndim != 2 or packed.shape[1] != self.nbytes:
            raise InputError(
                f"codes to add must be uint8 rows of {self.nbytes} bytes ({self.bits} bits), got shape {packed.shape}"
            )
        n = len(packed)
        labels = np.full(n, -1, np.int64) if labels is None else np.asarray(labels, np.int64)
        names = [f"item{len(self) + i}" for i in range(n)] if names is None else list(names)
        if len(labels) != n or len(names) != n or (images is not None and len(images) != n):
            raise InputError(f"adding {n} codes needs {n} labels, names and images")
        if (images is None) != (self.images is None) and len(self):
            raise InputError(
                "this index "
                + ("stores" if self.images is not None else "does not store")
                + " images: add them with every code or never"
            )
        self.codes = np.concatenate([self.codes, packed])
        self.labels = np.concatenate([self.labels, labels])
        self.names += names
        if images is not None:
            self.images = images.copy() if self.images is None else np.concatenate([self.images, images])
        self._words = self._columns = None
        if self._faiss is not None:
            self._faiss.add(self._faiss_rows(packed))

    def _faiss_rows(self, packed: np.ndarray) -> np.ndarray:
        pad = -(-self.nbytes // 8) * 8 - self.nbytes  # faiss works in whole bytes; zero padding keeps distances
        return np.ascontiguousarray(np.pad(packed, ((0, 0), (0, pad))) if pad else packed)

    def _faiss_index(self):
        if self._faiss is None:
            import faiss

            self._faiss = faiss.IndexBinaryFlat(-(-self.nbytes // 8) * 64)
            if len(self):
                self._faiss.add(self._faiss_rows(self.codes))
        return self._faiss

    def _db_words(self) -> np.ndarray:
        if self._words is None:
            self._words = _words(self.codes)
        return self._words

    def _numba_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import numba  # optional at run time (numpy is the fallback) and slow to import: only when it searches

        from apptool_dbn_hashing.kernel import topk  # compiles with numba on import

        if self._columns is None:
            self._columns = np.ascontiguousarray(self._db_words().T)
        numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
        return topk(_words(queries), self._columns, k, self.bits)

    def _check_queries(self, queries: np.ndarray) -> np.ndarray:
        queries = np.ascontiguousarray(queries, np.uint8)
        if queries.ndim != 2 or queries.shape[1] != self.nbytes:
            raise InputError(f"queries must be uint8 rows of {self.nbytes} bytes ({self.bits} bits), got shape {queries.shape}")
        return queries

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances (int32) and indices (int64) [Q, k] of the k nearest codes, nearest first."""
        queries = self._check_queries(queries)
        k = min(int(k), len(self))
        if k < 1 or not len(queries):
            return np.zeros((len(queries), max(k, 0)), np.int32), np.zeros((len(queries), max(k, 0)), np.int64)
        backend = self.backend
        if backend == "faiss":
            dist, idx = self._faiss_index().search(self._faiss_rows(queries), k)
            return dist.astype(np.int32), idx.astype(np.int64)
        if backend == "numba":
            return self._numba_search(queries, k)
        q, db = _words(queries), self._db_words()
        blocks = [(s, q[s : s + QUERY_BLOCK]) for s in range(0, len(q), QUERY_BLOCK)]
        dist = np.empty((len(q), k), np.int32)
        idx = np.empty((len(q), k), np.int64)

        def run(block):
            start, rows = block
            dist[start : start + len(rows)], idx[start : start + len(rows)] = _topk_block(rows, db, k, self.bits)

        if self.threads > 1 and len(blocks) > 1:
            with ThreadPoolExecutor(self.threads) as pool:
                list(pool.map(run, blocks))
        else:
            for block in blocks:
                run(block)
        return dist, idx

    def radius_search(self, queries: np.ndarray, radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query, (distances, indices) of every code within ``radius``, nearest first."""
        queries = self._check_queries(queries)
        found = []
        if self.backend == "faiss":
            lims, dist, idx = self._faiss_index().range_search(self._faiss_rows(queries), int(radius) + 1)  # faiss: d < radius
            for i in range(len(queries)):
                d, j = dist[lims[i] : lims[i + 1]].astype(np.int32), idx[lims[i] : lims[i + 1]].astype(np.int64)
                order = np.lexsort((j, d))
                found.append((d[order], j[order]))
            return found
        for start in range(0, len(queries), QUERY_BLOCK):
            dist = hamming_distances(queries[start : start + QUERY_BLOCK], self.codes)
            for row in dist:
                j = np.flatnonzero(row <= radius)
                order = np.argsort(row[j], kind="stable")
                found.append((row[j][order].astype(np.int32), j[order]))
        return found

    # -- persistence: safetensors + JSON, never pickle ---------------------------------
    def save(self, path: Path, meta: dict[str, Any] | None = None) -> Path:
        """Write the index as one safetensors file (arrays) with JSON metadata (bits, names, extra fields)."""
        tensors = {"codes": self.codes, "labels": self.labels}
        if self.images is not None:
            tensors["images"] = np.ascontiguousarray(self.images)
        header = {"format": FORMAT, "bits": self.bits, "names": self.names, "meta": meta or {}}
        return atomic_write_bytes(Path(path), save(tensors, metadata={"json": json.dumps(header)}))

    @classmethod
    def load(cls, path: Path, backend: str = "auto") -> tuple["HammingIndex", dict[str, Any]]:
        """An index saved by ``save``, and the extra metadata stored with it."""
        path = Path(path)
        if not path.is_file():
            raise BundleError(f"{path}: missing; the bundle has no Hamming index (train it again or build one with the task)")
        try:
            with safe_open(str(path), framework="np") as handle:
                header = json.loads((handle.metadata() or {}).get("json", "{}"))
                arrays = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (safe_open is no mapping)
        except (SafetensorError, OSError, ValueError) as exc:
            raise BundleError(f"{path}: not a valid index file ({exc})") from None
        if header.get("format") != FORMAT or "codes" not in arrays:
            raise BundleError(f"{path}: not an apptool Hamming index (format {header.get('format')!r})")
        index = cls(int(header["bits"]), backend)
        index.add(arrays["codes"], arrays.get("labels"), header.get("names"), arrays.get("images"))
        return index, header.get("meta", {})
