"""ragutils.dense: mean pooling, the encoder against sentence-transformers, Faiss against NumPy, the retriever."""

import json

import numpy as np
import pytest
import torch

from ragutils import dense, models
from ragutils.errors import CourseError


@pytest.fixture(autouse=True, scope="module")
def one_faiss_thread():
    # Tiny indexes train faster on one thread: OpenMP's start-up and barriers cost more
    # than the work, badly so when other processes share the cores.
    with dense.faiss_threads(1):
        yield


@pytest.fixture(scope="module")
def encoder():
    return dense.Encoder("offline")


@pytest.fixture(scope="module")
def sbert():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(models.model_path("encoder", "offline"), device="cpu")


def unit_vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# --- mean pooling and the encoder ----------------------------------------------------


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],
                           [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    pooled = dense.mean_pool(hidden, mask)
    assert torch.allclose(pooled, torch.tensor([[2.0, 3.0], [7.0, 8.0]]))


def test_encoder_matches_sentence_transformers(encoder, sbert):
    ids, texts = dense.passage_texts("wiki")
    lengths = encoder.token_lengths(texts)
    # Short and long passages, one beyond the 256-token limit (truncated by both), in mixed order.
    chosen = [texts[i] for i in [int(np.argmax(lengths)), int(np.argmin(lengths)), 0, 1, 2, 500, 4000]]
    chosen += ["The cat sat on the mat.", "", "Faiss"]
    assert lengths.max() > encoder.max_length == sbert.max_seq_length == 256
    ours = encoder.encode(chosen, batch_size=3, show_progress=False)
    theirs = sbert.encode(chosen, batch_size=4, normalize_embeddings=True)
    assert ours.dtype == np.float32 and ours.shape == (len(chosen), 384)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # Without normalising, the vectors point the same way but are longer than 1.
    raw = encoder.encode(chosen[:4], normalize=False, show_progress=False)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    assert (norms > 1.5).all()
    np.testing.assert_allclose(raw / norms, theirs[:4], atol=1e-5)


def test_encoder_keeps_input_order_whatever_the_batching(encoder):
    texts = ["a long sentence about the history of the Roman Empire and its fall", "Paris", "x y", "Tokyo is big"]
    one_by_one = np.vstack([encoder.encode([text], show_progress=False) for text in texts])
    np.testing.assert_allclose(encoder.encode(texts, batch_size=2, show_progress=False), one_by_one, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(one_by_one, axis=1), 1.0, atol=1e-6)


def test_encoder_edge_cases(encoder):
    assert encoder.encode([], show_progress=False).shape == (0, 384)
    with pytest.raises(CourseError, match="list of texts"):
        encoder.encode("one string")
    with pytest.raises(CourseError, match="batch_size"):
        encoder.encode(["a"], batch_size=0)
    with pytest.raises(CourseError, match="identity"):
        dense.Encoder(model=encoder.model, tokenizer=encoder.tokenizer)
    custom = dense.Encoder(model=encoder.model, tokenizer=encoder.tokenizer, identity="mine-v1", max_length=32)
    assert custom.max_length == 32 and "max_length=32" in custom.identity


def test_tqdm_disable_hides_the_encoding_bar_even_when_asked_for(encoder, capsys, monkeypatch):
    # A cold cache encodes and a warm one does not: with TQDM_DISABLE set (as for headless
    # notebook runs) both must print the same, nothing.
    monkeypatch.setenv("TQDM_DISABLE", "1")
    encoder.encode(["one text", "another text"], show_progress=True)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("TQDM_DISABLE", "0")
    encoder.encode(["one text", "another text"], show_progress=True)
    assert "encoding" in capsys.readouterr().err


def test_split_sentences():
    text = "Paris is the capital of France. It has 2.1 million people! Does it rain? \"Yes\", often."
    assert dense.split_sentences(text) == [
        "Paris is the capital of France.", "It has 2.1 million people!", "Does it rain?", "\"Yes\", often."]


# --- cached corpus embeddings ---------------------------------------------------------------


@pytest.fixture()
def tiny_corpus(tmp_path, monkeypatch):
    """A three-article wiki corpus in a temporary data folder, with an empty cache."""
    folder = tmp_path / "data" / "wiki"
    folder.mkdir(parents=True)
    rows = [
        {"id": "w1", "title": "Paris", "text": "Paris is the capital and largest city of France.",
         "description": "Capital of France", "topic": "Geography"},
        {"id": "w2", "title": "Python", "text": "Python is a high-level programming language.",
         "description": "Programming language", "topic": "Technology"},
        {"id": "w3", "title": "Tiger", "text": "The tiger is the largest living cat species.",
         "description": "Large cat", "topic": "Biology"},
    ]
    (folder / "wiki.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    monkeypatch.setenv("RAGUTILS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path / "cache"))
    return folder / "wiki.jsonl"


def test_corpus_embeddings_are_cached_and_keyed_by_data(tiny_corpus, encoder):
    first = dense.corpus_embeddings("wiki", encoder=encoder, show_progress=False)
    assert not first.from_cache and first.doc_ids == ["w1", "w2", "w3"]
    assert first.texts[0] == "Paris. Paris is the capital and largest city of France."
    np.testing.assert_allclose(first.vectors, encoder.encode(first.texts, show_progress=False), atol=1e-6)
    folder = tiny_corpus.parent.parent.parent / "cache" / "embeddings"
    assert sorted(path.suffix for path in folder.iterdir()) == [".json", ".npy"]  # no temporary files left
    second = dense.corpus_embeddings("wiki", encoder=encoder, show_progress=False)
    assert second.from_cache and second.key == first.key
    np.testing.assert_array_equal(second.vectors, first.vectors)
    # Another passage format or another data file: another key, encoded afresh.
    assert dense.corpus_embeddings("wiki", "{text}", encoder=encoder, show_progress=False).key != first.key
    tiny_corpus.write_text(tiny_corpus.read_text(encoding="utf-8").replace("largest", "biggest"), encoding="utf-8")
    third = dense.corpus_embeddings("wiki", encoder=encoder, show_progress=False)
    assert third.key != first.key and not third.from_cache


def test_bad_passage_format_is_a_clear_error(tiny_corpus):
    with pytest.raises(CourseError, match="lacks.*'headword'"):
        dense.passage_texts("wiki", "{headword}: {text}")


# --- Faiss against NumPy --------------------------------------------------------------------


def test_flat_index_equals_numpy_brute_force():
    vectors, queries = unit_vectors(3000, seed=1), unit_vectors(60, seed=2)
    index = dense.build_index(vectors, "flat")
    scores, positions = dense.search_index(index, queries, 10)
    ref_scores, ref_positions = dense.brute_force_search(vectors, queries, 10)
    np.testing.assert_array_equal(positions, ref_positions)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    # The scores are the cosine similarities of the unit vectors.
    np.testing.assert_allclose(scores[:, 0], np.einsum("ij,ij->i", queries, vectors[positions[:, 0]]), atol=1e-5)


def test_flat_index_equals_numpy_on_real_embeddings(encoder):
    ids, texts = dense.passage_texts("wiki")
    vectors = encoder.encode(texts[:120], show_progress=False)
    queries = encoder.encode(["capital of France", "a programming language", "a big cat"], show_progress=False)
    scores, positions = dense.search_index(dense.build_index(vectors, "flat"), queries, 5)
    ref_scores, ref_positions = dense.brute_force_search(vectors, queries, 5)
    np.testing.assert_array_equal(positions, ref_positions)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)


def test_brute_force_clamps_k_and_breaks_ties_by_position():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    scores, positions = dense.brute_force_search(vectors, np.array([[1.0, 0.0]]), 10)
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
    _, exact = dense.brute_force_search(vectors, queries, 10)
    index = dense.build_index(vectors, kind, **params)
    assert index.ntotal == len(vectors)
    _, found = dense.search_index(index, queries, 10)
    assert dense.ann_recall(found, exact) >= floor


def test_index_memory_follows_the_kind():
    vectors = unit_vectors(2000, dim=32)
    flat = dense.index_bytes(dense.build_index(vectors, "flat"))
    pq = dense.index_bytes(dense.build_index(vectors, "pq", m=8, nbits=4))
    hnsw = dense.index_bytes(dense.build_index(vectors, "hnsw", M=16))
    assert flat >= 2000 * 32 * 4 and pq < flat / 4 < flat < hnsw


def test_search_params_and_index_errors():
    vectors = unit_vectors(1000)
    ivf = dense.build_index(vectors, "ivf", nlist=10, nprobe=2)
    assert dense.set_search_params(ivf, nprobe=5).nprobe == 5
    hnsw = dense.build_index(vectors, "hnsw", M=8)
    assert dense.set_search_params(hnsw, ef_search=99).hnsw.efSearch == 99
    with pytest.raises(CourseError, match="IVF indexes only"):
        dense.set_search_params(hnsw, nprobe=3)
    with pytest.raises(CourseError, match="HNSW indexes only"):
        dense.set_search_params(ivf, ef_search=3)
    with pytest.raises(CourseError, match="unknown index kind 'lsh'"):
        dense.build_index(vectors, "lsh")
    with pytest.raises(CourseError, match="empty corpus"):
        dense.build_index(np.zeros((0, 32), dtype=np.float32), "flat")
    with pytest.raises(CourseError, match="at least 3,900 training vectors"):
        dense.build_index(vectors, "ivf", nlist=100)
    with pytest.raises(CourseError, match="m .* divide"):
        dense.build_index(vectors, "pq", m=5)
    assert dense.default_nlist(10_000) == 256 and dense.default_nlist(200_000) == 1788


def test_ann_recall():
    exact = np.array([[1, 2, 3], [4, 5, 6]])
    assert dense.ann_recall(np.array([[3, 2, 1], [4, -1, -1]]), exact) == pytest.approx(4 / 6)


def test_cached_index_is_built_once(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path))
    vectors, queries = unit_vectors(1000), unit_vectors(5, seed=9)
    index, seconds = dense.cached_index(vectors, "test-vectors", "hnsw", M=8)
    again, same_seconds = dense.cached_index(vectors, "test-vectors", "hnsw", M=8)
    assert same_seconds == seconds and again is not index
    np.testing.assert_array_equal(index.search(queries, 5)[1], again.search(queries, 5)[1])
    assert len(list((tmp_path / "indexes").iterdir())) == 2  # the index and its metadata


# --- the retriever --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_retriever(encoder):
    texts = ["Paris is the capital of France.", "Python is a programming language.",
             "The tiger is a large cat.", "Berlin is the capital of Germany."]
    return dense.DenseRetriever(encoder, ["paris", "python", "tiger", "berlin"],
                                encoder.encode(texts, show_progress=False))


def test_retriever_ranks_by_cosine(tiny_retriever, encoder):
    results = tiny_retriever.search(["Which city is the capital of France?", "snakes and code"], k=2)
    assert [doc for doc, _ in results[0]] == ["paris", "berlin"]
    assert results[1][0][0] == "python"
    query = encoder.encode(["Which city is the capital of France?"], show_progress=False)[0]
    assert results[0][0][1] == pytest.approx(float(query @ tiny_retriever.vectors[0]), abs=1e-5)
    assert all(isinstance(score, float) for row in results for _, score in row)


def test_retriever_clamps_k_to_the_corpus(tiny_retriever):
    [row] = tiny_retriever.search(["cats"], k=50)
    assert len(row) == 4 and row[0][0] == "tiger"
    assert [score for _, score in row] == sorted((score for _, score in row), reverse=True)


def test_retriever_errors(tiny_retriever, encoder):
    assert tiny_retriever.search([], k=3) == []  # no queries, no results (as BM25 and tantivy)
    with pytest.raises(CourseError, match="wrap a single query"):
        tiny_retriever.search("cats", k=3)
    with pytest.raises(CourseError, match="k must be a whole number >= 1"):
        tiny_retriever.search(["cats"], k=0)
    with pytest.raises(CourseError, match="empty query"):
        tiny_retriever.search(["   "], k=3)
    with pytest.raises(CourseError, match="empty corpus"):
        dense.DenseRetriever(encoder, [], np.zeros((0, 384), dtype=np.float32))
    with pytest.raises(CourseError, match="one id per vector"):
        dense.DenseRetriever(encoder, ["a", "b"], np.zeros((1, 384), dtype=np.float32))


def test_retriever_drops_missing_results(encoder):
    # Two IVF lists, one probed: a query sees only the vectors of one list, fewer than k,
    # and Faiss pads the rest with id -1, which the retriever drops.
    rng = np.random.default_rng(0)
    centres = unit_vectors(2, dim=384, seed=5)
    vectors = np.vstack([centres[i] + 0.05 * rng.normal(size=(60, 384)) for i in (0, 1)]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"d{i}" for i in range(len(vectors))]
    index = dense.build_index(vectors, "ivf", nlist=2, nprobe=1)
    retriever = dense.DenseRetriever(encoder, ids, vectors, index)
    [row] = retriever.search(["anything at all"], k=100)
    assert 0 < len(row) < 100 and all(doc in ids for doc, _ in row)


def test_encode_cached_fills_then_reads_the_cache(tmp_path, monkeypatch, encoder):
    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path))
    texts = ["one sentence", "another sentence"]
    first = dense.encode_cached(texts, "demo", encoder=encoder, show_progress=False)
    [path] = (tmp_path / "embeddings").glob("demo-*.npy")
    assert json.loads(path.with_suffix(".json").read_text())["texts"] == 2
    np.testing.assert_array_equal(dense.encode_cached(texts, "demo", encoder=encoder), first)
    assert dense.texts_key(texts, encoder) != dense.texts_key(texts[:1], encoder)
