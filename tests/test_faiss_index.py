"""ragutils.faiss_index and faiss_scaling: Faiss against NumPy, approximate indexes, indexes kept on disk."""

import numpy as np
import pytest

from ragutils import faiss_index, faiss_scaling
from ragutils.embeddings import passage_texts
from ragutils.errors import CourseError


pytestmark = pytest.mark.usefixtures("one_faiss_thread")


def unit_vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# --- Faiss against NumPy --------------------------------------------------------------------


@pytest.mark.reference
def test_flat_index_equals_numpy_brute_force():
    vectors, queries = unit_vectors(3000, seed=1), unit_vectors(60, seed=2)
    index = faiss_index.build_index(vectors, "flat")
    scores, positions = faiss_index.search_index(index, queries, 10)
    ref_scores, ref_positions = faiss_index.brute_force_search(vectors, queries, 10)
    np.testing.assert_array_equal(positions, ref_positions)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    # The scores are the cosine similarities of the unit vectors.
    np.testing.assert_allclose(scores[:, 0], np.einsum("ij,ij->i", queries, vectors[positions[:, 0]]), atol=1e-5)


@pytest.mark.reference
def test_flat_index_equals_numpy_on_real_embeddings(encoder):
    ids, texts = passage_texts("wiki")
    vectors = encoder.encode(texts[:120], show_progress=False)
    queries = encoder.encode(["capital of France", "a programming language", "a big cat"], show_progress=False)
    scores, positions = faiss_index.search_index(faiss_index.build_index(vectors, "flat"), queries, 5)
    ref_scores, ref_positions = faiss_index.brute_force_search(vectors, queries, 5)
    np.testing.assert_array_equal(positions, ref_positions)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)


def test_brute_force_clamps_k_and_breaks_ties_by_position():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    scores, positions = faiss_index.brute_force_search(vectors, np.array([[1.0, 0.0]]), 10)
    assert positions.tolist() == [[0, 2, 1]] and scores.tolist() == [[1.0, 1.0, 0.0]]


@pytest.mark.parametrize("kind, params, floor", [
    ("ivf", {"nlist": 16, "nprobe": 16}, 1.0),   # probing every list is exact search
    ("ivf", {"nlist": 16, "nprobe": 4}, 0.5),
    ("hnsw", {"M": 16, "ef_search": 64}, 0.9),
    ("pq", {"m": 8, "nbits": 4}, 0.2),
    ("ivfpq", {"nlist": 8, "nprobe": 8, "m": 8, "nbits": 4}, 0.2),
])
def test_approximate_indexes_find_most_true_neighbours(kind, params, floor):
    vectors, queries = unit_vectors(2000, seed=3), unit_vectors(50, seed=4)
    _, exact = faiss_index.brute_force_search(vectors, queries, 10)
    index = faiss_index.build_index(vectors, kind, **params)
    assert index.ntotal == len(vectors)
    _, found = faiss_index.search_index(index, queries, 10)
    assert faiss_index.ann_recall(found, exact) >= floor


def test_index_memory_follows_the_kind():
    vectors = unit_vectors(2000, dim=32)
    flat = faiss_index.index_bytes(faiss_index.build_index(vectors, "flat"))
    pq = faiss_index.index_bytes(faiss_index.build_index(vectors, "pq", m=8, nbits=4))
    hnsw = faiss_index.index_bytes(faiss_index.build_index(vectors, "hnsw", M=16))
    assert flat >= 2000 * 32 * 4 and pq < flat / 4 < flat < hnsw


def test_search_params_and_index_errors():
    vectors = unit_vectors(1000)
    ivf = faiss_index.build_index(vectors, "ivf", nlist=10, nprobe=2)
    assert faiss_index.set_search_params(ivf, nprobe=5).nprobe == 5
    hnsw = faiss_index.build_index(vectors, "hnsw", M=8)
    assert faiss_index.set_search_params(hnsw, ef_search=99).hnsw.efSearch == 99
    with pytest.raises(CourseError, match="IVF indexes only"):
        faiss_index.set_search_params(hnsw, nprobe=3)
    with pytest.raises(CourseError, match="HNSW indexes only"):
        faiss_index.set_search_params(ivf, ef_search=3)
    with pytest.raises(CourseError, match="unknown index kind 'lsh'"):
        faiss_index.build_index(vectors, "lsh")
    with pytest.raises(CourseError, match="empty corpus"):
        faiss_index.build_index(np.zeros((0, 32), dtype=np.float32), "flat")
    with pytest.raises(CourseError, match="at least 3,900 training vectors"):
        faiss_index.build_index(vectors, "ivf", nlist=100)
    with pytest.raises(CourseError, match="m .* divide"):
        faiss_index.build_index(vectors, "pq", m=5)
    assert faiss_index.default_nlist(10_000) == 256 and faiss_index.default_nlist(200_000) == 1788


def test_ann_recall():
    exact = np.array([[1, 2, 3], [4, 5, 6]])
    assert faiss_index.ann_recall(np.array([[3, 2, 1], [4, -1, -1]]), exact) == pytest.approx(4 / 6)


# --- faiss_scaling: indexes built once, kept in the cache -------------------------------------


def test_cached_index_is_built_once(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path))
    vectors, queries = unit_vectors(1000), unit_vectors(5, seed=9)
    index, seconds = faiss_scaling.cached_index(vectors, "test-vectors", "hnsw", M=8)
    again, same_seconds = faiss_scaling.cached_index(vectors, "test-vectors", "hnsw", M=8)
    assert same_seconds == seconds and again is not index
    np.testing.assert_array_equal(index.search(queries, 5)[1], again.search(queries, 5)[1])
    assert len(list((tmp_path / "indexes").iterdir())) == 2  # the index and its metadata
