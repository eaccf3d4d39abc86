"""ragutils.dense: mean pooling, the encoder against sentence-transformers, the dense retriever."""

import numpy as np
import pytest
import torch

from ragutils import dense, faiss_index, models
from ragutils.embeddings import passage_texts
from ragutils.errors import CourseError


pytestmark = pytest.mark.usefixtures("one_faiss_thread")


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


@pytest.mark.reference
def test_encoder_matches_sentence_transformers(encoder, sbert):
    ids, texts = passage_texts("wiki")
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
    index = faiss_index.build_index(vectors, "ivf", nlist=2, nprobe=1)
    retriever = dense.DenseRetriever(encoder, ids, vectors, index)
    [row] = retriever.search(["anything at all"], k=100)
    assert 0 < len(row) < 100 and all(doc in ids for doc, _ in row)
