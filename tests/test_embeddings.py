"""ragutils.embeddings: a corpus encoded once, its vectors cached and keyed by everything that decides them."""

import json

import numpy as np
import pytest

from ragutils import embeddings
from ragutils.errors import CourseError


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
    first = embeddings.corpus_embeddings("wiki", encoder=encoder, show_progress=False)
    assert not first.from_cache and first.doc_ids == ["w1", "w2", "w3"]
    assert first.texts[0] == "Paris. Paris is the capital and largest city of France."
    np.testing.assert_allclose(first.vectors, encoder.encode(first.texts, show_progress=False), atol=1e-6)
    folder = tiny_corpus.parent.parent.parent / "cache" / "embeddings"
    assert sorted(path.suffix for path in folder.iterdir()) == [".json", ".npy"]  # no temporary files left
    second = embeddings.corpus_embeddings("wiki", encoder=encoder, show_progress=False)
    assert second.from_cache and second.key == first.key
    np.testing.assert_array_equal(second.vectors, first.vectors)
    # Another passage format or another data file: another key, encoded afresh.
    assert embeddings.corpus_embeddings("wiki", "{text}", encoder=encoder, show_progress=False).key != first.key
    tiny_corpus.write_text(tiny_corpus.read_text(encoding="utf-8").replace("largest", "biggest"), encoding="utf-8")
    third = embeddings.corpus_embeddings("wiki", encoder=encoder, show_progress=False)
    assert third.key != first.key and not third.from_cache


def test_bad_passage_format_is_a_clear_error(tiny_corpus):
    with pytest.raises(CourseError, match="lacks.*'headword'"):
        embeddings.passage_texts("wiki", "{headword}: {text}")


def test_encode_cached_fills_then_reads_the_cache(tmp_path, monkeypatch, encoder):
    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path))
    texts = ["one sentence", "another sentence"]
    first = embeddings.encode_cached(texts, "demo", encoder=encoder, show_progress=False)
    [path] = (tmp_path / "embeddings").glob("demo-*.npy")
    assert json.loads(path.with_suffix(".json").read_text())["texts"] == 2
    np.testing.assert_array_equal(embeddings.encode_cached(texts, "demo", encoder=encoder), first)
    assert embeddings.texts_key(texts, encoder) != embeddings.texts_key(texts[:1], encoder)
