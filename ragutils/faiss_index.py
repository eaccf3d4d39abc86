"""Faiss indexes over unit vectors: exact and approximate search, and how to measure what approximation costs.

Notebook 03 builds each kind by hand and compares it with exact search:

- ``build_index`` puts vectors into a Faiss index: ``flat`` (exact search), ``ivf``
  (inverted lists), ``hnsw`` (a navigable graph), ``pq`` (compressed codes) or
  ``ivfpq`` (both). All use the inner product on unit vectors, which is the cosine
  similarity. ``set_search_params`` turns their search-time knobs.
- ``search_index`` asks an index for the top k; ``brute_force_search`` is the same
  in NumPy, the reference that exact search must equal.
- ``ann_recall``, ``timed_search``, ``queries_per_second`` and ``sweep`` measure
  recall against exact search and queries per second, the two sides of the trade.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .errors import CourseError
from .retriever import check_k

if TYPE_CHECKING:  # imported lazily: faiss takes a second or two to import
    import faiss

INDEX_KINDS = ("flat", "ivf", "hnsw", "pq", "ivfpq")

# Faiss's k-means warns (on stderr, from C++) when it gets fewer than 39 training
# points per centroid; we refuse such settings with a clear error instead.
MIN_POINTS_PER_CENTROID = 39
# k-means (IVF's lists, PQ's codebooks) trains on at most this many points per
# centroid, a random sample: Faiss's default of 256 makes training on 200,000
# vectors several times slower, for centroids that are barely better.
TRAIN_POINTS_PER_CENTROID = 64


@contextlib.contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    """Run the block with Faiss (OpenMP) limited to n threads, then restore the previous limit.

    Used in notebook 03.
    """
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(n))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def default_nlist(n_vectors: int) -> int:
    """The default number of IVF lists: about 4 * sqrt(n), and at most n / 39 (k-means needs points).

    Used in notebook 03.
    """
    return max(1, min(int(4 * math.sqrt(n_vectors)), n_vectors // MIN_POINTS_PER_CENTROID))


def as_matrix(vectors: np.ndarray, name: str = "vectors") -> np.ndarray:
    """Vectors as the C-contiguous float32 (n, dim) matrix Faiss takes; CourseError if not 2-d.

    Used in notebook 03.
    """
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise CourseError(f"{name} must be a 2-d array (n, dim), not of shape {array.shape}")
    return array


def _check_trainable(n: int, centroids: int, what: str) -> None:
    """CourseError unless n vectors are enough to train `centroids` k-means centroids."""
    need = MIN_POINTS_PER_CENTROID * centroids
    if n < need:
        raise CourseError(f"{what} needs at least {need:,} training vectors "
                          f"({MIN_POINTS_PER_CENTROID} per centroid), got {n:,}: lower it")


def build_index(vectors: np.ndarray, kind: str = "flat", *, nlist: int | None = None, nprobe: int = 8,
                M: int = 32, ef_construction: int = 80, ef_search: int = 64, m: int = 48, nbits: int = 8,
                build_threads: int | None = None, seed: int = 1234) -> faiss.Index:
    """A Faiss index over unit vectors, scored by inner product (= cosine similarity).

    kinds and their parameters:

    - ``flat``: exact search, every vector compared with the query (no parameter).
    - ``ivf``: k-means cuts the space into ``nlist`` cells (default about 4·√n);
      a query scans only its ``nprobe`` nearest cells (default 8). More probes:
      better recall, slower.
    - ``hnsw``: a graph in which each vector links to about ``M`` neighbours
      (default 32); ``ef_construction`` (80) is the search width while building,
      ``ef_search`` (64) while querying. Wider: better recall, slower.
      Built single-threaded by default (``build_threads=1``) because Faiss's
      multi-threaded insertion gives a slightly different graph on every run.
    - ``pq``: product quantisation: each vector is cut into ``m`` sub-vectors
      (default 48, so 8 dimensions each) and each sub-vector is replaced by the
      nearest of 2**``nbits`` centroids (default 8 bits): m·nbits/8 bytes per
      vector instead of 4·dim. Scores are approximate.
    - ``ivfpq``: IVF cells whose vectors are stored as PQ codes (nlist, nprobe, m, nbits).

    The same as ``faiss.index_factory(dim, "IVF{nlist},Flat" | "HNSW{M}" | "PQ{m}x{nbits}",
    faiss.METRIC_INNER_PRODUCT)``, spelled out. k-means trains on at most
    TRAIN_POINTS_PER_CENTROID (64) vectors per centroid, a sample that ``seed``
    fixes. ``build_threads`` limits Faiss's threads while building (default: all,
    one for HNSW). Too few vectors for k-means (39 per centroid) is a CourseError.

    Used in notebook 03, section 5.
    """
    import faiss

    if kind not in INDEX_KINDS:
        raise CourseError(f"unknown index kind {kind!r}: choose one of {', '.join(INDEX_KINDS)}")
    vectors = as_matrix(vectors)
    n, dim = vectors.shape
    if n == 0:
        raise CourseError("cannot build an index from an empty corpus: give at least one vector")
    ip = faiss.METRIC_INNER_PRODUCT
    if kind in ("pq", "ivfpq"):
        if m < 1 or dim % m:
            raise CourseError(f"PQ needs m (sub-vectors) to divide the dimension {dim}; got m={m}")
        if not 1 <= nbits <= 16:
            raise CourseError(f"nbits must be from 1 to 16, not {nbits}")
    if kind in ("ivf", "ivfpq"):
        nlist = default_nlist(n) if nlist is None else int(nlist)
        if nlist < 1 or nprobe < 1:
            raise CourseError(f"nlist and nprobe must be >= 1, got nlist={nlist}, nprobe={nprobe}")
        _check_trainable(n, nlist, f"IVF with nlist={nlist}")
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        if M < 2 or ef_construction < 1 or ef_search < 1:
            raise CourseError(f"HNSW needs M >= 2 and ef >= 1, got M={M}, ef_construction={ef_construction}, "
                              f"ef_search={ef_search}")
        index = faiss.IndexHNSWFlat(dim, M, ip)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    elif kind == "pq":
        _check_trainable(n, 2 ** nbits, f"PQ with nbits={nbits}")
        index = faiss.IndexPQ(dim, m, nbits, ip)
    elif kind == "ivf":
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, ip)
    else:
        _check_trainable(n, 2 ** nbits, f"PQ with nbits={nbits}")
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, m, nbits, ip)
    if kind in ("pq", "ivfpq"):
        index.pq.cp.seed = seed
        index.pq.cp.max_points_per_centroid = TRAIN_POINTS_PER_CENTROID
    if kind in ("ivf", "ivfpq"):
        index.cp.seed = seed
        index.cp.max_points_per_centroid = TRAIN_POINTS_PER_CENTROID
        index.nprobe = min(nprobe, nlist)
    threads = build_threads if build_threads is not None else (1 if kind == "hnsw" else None)
    with faiss_threads(threads) if threads else contextlib.nullcontext():
        if not index.is_trained:
            index.train(vectors)
        index.add(vectors)
    return index


def set_search_params(index: faiss.Index, nprobe: int | None = None, ef_search: int | None = None) -> faiss.Index:
    """Change an index's search-time knobs in place: nprobe (IVF kinds) or ef_search (HNSW).

    Used in notebook 03, section 6.
    """
    import faiss

    if nprobe is not None:
        try:
            ivf = faiss.extract_index_ivf(index)
        except RuntimeError:
            raise CourseError("nprobe is a parameter of IVF indexes only") from None
        ivf.nprobe = int(nprobe)
    if ef_search is not None:
        if not hasattr(index, "hnsw"):
            raise CourseError("ef_search is a parameter of HNSW indexes only")
        index.hnsw.efSearch = int(ef_search)
    return index


def index_bytes(index: faiss.Index) -> int:
    """The size of an index once serialised (vectors or codes, lists, graph): a fair measure of its memory.

    Used in notebook 03, section 5.
    """
    import faiss

    return int(faiss.serialize_index(index).nbytes)


def search_index(index: faiss.Index, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Faiss's top k for each query vector: (scores, positions), k clamped to the index size; -1 = none found.

    Used in notebook 12.
    """
    check_k(k)
    query_vectors = as_matrix(query_vectors, "query vectors")
    return index.search(query_vectors, min(int(k), index.ntotal))


def brute_force_search(vectors: np.ndarray, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top k by inner product in NumPy, the reference for IndexFlatIP: (scores, positions).

    Derived in notebook 03, section 4.
    """
    check_k(k)
    vectors, query_vectors = as_matrix(vectors), as_matrix(query_vectors, "query vectors")
    k = min(int(k), vectors.shape[0])
    scores = query_vectors @ vectors.T  # (queries, n): every query against every vector
    # Score descending, then position ascending, as Faiss breaks ties.
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < vectors.shape[0] else \
        np.tile(np.arange(vectors.shape[0]), (len(scores), 1))
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -top_scores), axis=1)
    return np.take_along_axis(top_scores, order, axis=1), np.take_along_axis(top, order, axis=1)


def ann_recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Recall@k of an approximate search against exact search: the share of the true top k it found.

    Used in notebook 03, section 5.
    """
    found, exact = np.asarray(found), np.asarray(exact)
    if found.shape[0] != exact.shape[0]:
        raise CourseError(f"got {found.shape[0]} result rows but {exact.shape[0]} exact ones")
    k = exact.shape[1]
    hits = sum(len(set(row[row >= 0].tolist()) & set(truth.tolist())) for row, truth in zip(found, exact))
    return hits / (k * exact.shape[0]) if exact.size else float("nan")


def timed_search(index: faiss.Index, query_vectors: np.ndarray, k: int = 10, threads: int = 1,
                 repeat: int = 1) -> tuple[float, np.ndarray]:
    """Queries per second of ``index.search`` on one batch (best of ``repeat`` runs), and the positions found.

    Used in notebook 03, section 5.
    """
    query_vectors = as_matrix(query_vectors, "query vectors")
    best = float("inf")
    with faiss_threads(threads):
        for _ in range(repeat):
            start = time.perf_counter()
            _, positions = index.search(query_vectors, k)
            best = min(best, time.perf_counter() - start)
    return len(query_vectors) / best, positions


def queries_per_second(index: faiss.Index, query_vectors: np.ndarray, k: int = 10, threads: int = 1,
                       repeat: int = 3) -> float:
    """Queries answered per second by ``index.search`` on one batch of queries (best of ``repeat`` runs).

    Used in notebook 03, section 6.
    """
    return timed_search(index, query_vectors, k, threads, repeat)[0]


def sweep(index: faiss.Index, query_vectors: np.ndarray, exact: np.ndarray, param: str, values: Sequence[int],
          threads: int = 1, repeat: int = 1) -> list[dict[str, float]]:
    """Recall@k (against the `exact` positions) and queries/s of an index for each value of one search knob.

    `param` is "nprobe" (IVF kinds) or "ef_search" (HNSW); k is the width of `exact`.
    The index keeps the last value.

    Used in notebook 03, section 5.
    """
    if param not in ("nprobe", "ef_search"):
        raise CourseError(f"sweep takes param 'nprobe' or 'ef_search', not {param!r}")
    rows = []
    for value in values:
        set_search_params(index, **{param: value})
        qps, found = timed_search(index, query_vectors, exact.shape[1], threads, repeat)
        rows.append({param: value, "recall": ann_recall(found, exact), "queries_per_s": qps})
    return rows

