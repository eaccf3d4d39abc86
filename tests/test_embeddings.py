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


class Interrupted(Exception):
    """What the machine does to a long run: stops it."""


class StoppingEncoder:
    """The real encoder, stopped (as a crash or Ctrl-C would) after a number of checkpoints, counting its calls."""

    def __init__(self, encoder, stop_after=None):
        self.encoder, self.stop_after, self.calls = encoder, stop_after, 0
        self.dim, self.token_ids, self.batch_order = encoder.dim, encoder.token_ids, encoder.batch_order

    def encode(self, texts, **options):
        if self.stop_after is not None and self.calls == self.stop_after:
            raise Interrupted
        self.calls += 1
        return self.encoder.encode(texts, **options)


def test_an_interrupted_encoding_resumes_from_its_checkpoints_bit_for_bit(tmp_path, encoder, monkeypatch):
    monkeypatch.setattr(embeddings, "CHECKPOINT_TEXTS", 8)  # checkpoints of two batches of 4
    texts = [f"Passage {i}: " + "many words " * (i % 7) + "the end." for i in range(30)]
    path = tmp_path / "corpus-key.npy"
    stopped = StoppingEncoder(encoder, stop_after=2)
    with pytest.raises(Interrupted):
        embeddings.encode_resumable(stopped, texts, path, batch_size=4, show_progress=False)
    parts = embeddings.checkpoint_dir(path, batch_size=4)
    assert sorted(p.name for p in parts.iterdir()) == ["00000.npy", "00001.npy"]  # 16 of 30 texts kept
    resumed = StoppingEncoder(encoder)
    vectors = embeddings.encode_resumable(resumed, texts, path, batch_size=4, show_progress=False)
    assert resumed.calls == 2  # only the two missing checkpoints (8 + 6 texts) were encoded
    np.testing.assert_array_equal(vectors, encoder.encode(texts, batch_size=4, show_progress=False))
    embeddings.remove_checkpoints(path)
    assert not parts.exists()


def test_a_slow_encoder_is_waited_for_and_its_checkpoints_removed(tiny_corpus, encoder, monkeypatch):
    import time

    class Slow(StoppingEncoder):
        identity, max_length = encoder.identity, encoder.max_length

        def encode(self, texts, **options):
            time.sleep(1.0)  # a busy CPU: nothing may time out
            return super().encode(texts, **options)

    monkeypatch.setattr(embeddings, "CHECKPOINT_TEXTS", 1)
    result = embeddings.corpus_embeddings("wiki", encoder=Slow(encoder), batch_size=1, show_progress=False)
    assert result.seconds >= 3 and result.vectors.shape == (3, encoder.dim)
    folder = tiny_corpus.parent.parent.parent / "cache" / "embeddings"
    assert sorted(path.suffix for path in folder.iterdir()) == [".json", ".npy"]  # the checkpoints are gone
