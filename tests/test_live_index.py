"""ragutils.live_bm25, live_faiss and index_store: incremental BM25 and Faiss against full rebuilds,
and crash-safe versioned saves."""

import os
import random
from pathlib import Path
from types import SimpleNamespace

import faiss
import numpy as np
import pytest

from ragutils import data, faiss_index, index_store
from ragutils.bm25 import BM25Retriever
from ragutils.errors import CourseError
from ragutils.index_store import IndexStore
from ragutils.live_bm25 import LiveBM25
from ragutils.live_faiss import LiveFaiss
from ragutils.text import ENGLISH_STOPWORDS

# Every BM25 variant, with default and non-default parameters, and every negative-idf mode.
BM25_SETTINGS = [
    ("lucene", {}),
    ("lucene", {"k1": 0.9, "b": 0.4, "stopwords": ENGLISH_STOPWORDS}),
    ("okapi", {}),
    ("okapi", {"negative_idf": "epsilon", "epsilon": 0.25}),
    ("okapi", {"negative_idf": "keep"}),
    ("bm25l", {}),
    ("bm25l", {"delta": 0.3, "k1": 1.2, "b": 0.5}),
    ("bm25+", {}),
    ("bm25+", {"delta": 0.7}),
    ("atire", {"b": 1.0}),
]


pytestmark = pytest.mark.usefixtures("one_faiss_thread")


@pytest.fixture(scope="module")
def wiki():
    """The whole wiki corpus and 50 queries about its first 600 articles (descriptions and titles)."""
    records = data.wiki_records()
    ids, titles, passages = data.wiki_passages(records)
    rng = random.Random(0)
    descriptions = [r["description"] for r in records[:600] if r["description"].strip()]
    queries = rng.sample(descriptions, 40) + rng.sample(titles[:600], 10)
    return SimpleNamespace(ids=ids, titles=titles, passages=passages, queries=queries)


def history(wiki, index: LiveBM25) -> SimpleNamespace:
    """Put the first 600 passages through a realistic life in `index`; the documents that should be left.

    400 added, 200 more added, 50 updated with the text of other passages, 80
    deleted (some of them updated ones). Returns the expected final texts in the
    expected order (an update moves a document last), and what was deleted.
    """
    ids, passages = wiki.ids[:600], wiki.passages[:600]
    rng = random.Random(1)
    index.add(ids[:400], passages[:400])
    index.add(ids[400:], passages[400:])
    texts = dict(zip(ids, passages))

    updated = rng.sample(ids, 50)
    new_texts = [passages[(ids.index(doc_id) + rng.randrange(1, 600)) % 600] for doc_id in updated]
    index.update(updated, new_texts)
    for doc_id, text in zip(updated, new_texts):
        del texts[doc_id]  # re-inserted at the end: an update is a delete plus an add
        texts[doc_id] = text

    deleted = rng.sample(ids, 80)
    index.delete(deleted)
    for doc_id in deleted:
        del texts[doc_id]
    assert set(deleted) & set(updated), "the history should delete some updated documents"
    return SimpleNamespace(ids=list(texts), texts=list(texts.values()), deleted=deleted, updated=updated)


def assert_same_results(got: list, expected: list, rtol: float = 1e-9) -> None:
    """Same ranked lists: scores equal to rtol, ids equal except where scores tie."""
    assert len(got) == len(expected)
    for got_row, expected_row in zip(got, expected):
        assert len(got_row) == len(expected_row)
        np.testing.assert_allclose([s for _, s in got_row], [s for _, s in expected_row], rtol=rtol, atol=0)
        got_scores, expected_scores = dict(got_row), dict(expected_row)
        for doc_id in got_scores.keys() & expected_scores.keys():
            assert got_scores[doc_id] == pytest.approx(expected_scores[doc_id], rel=rtol)
        # A document in one list only must tie with the last one kept (the cut fell inside a tie).
        for doc_id, score in {**got_scores, **expected_scores}.items():
            if (doc_id in got_scores) != (doc_id in expected_scores):
                assert score == pytest.approx(expected_row[-1][1], rel=rtol), doc_id


# ---------------------------------------------------------------------------
# BM25: incremental equals rebuilt
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant, params", BM25_SETTINGS, ids=lambda p: str(p))
def test_bm25_add_update_delete_equals_rebuild(wiki, variant, params):
    live = LiveBM25(variant, **params)
    final = history(wiki, live)
    assert live.doc_ids == final.ids and len(live) == 520
    assert live.n_tombstones > 0  # the deletes really are tombstones, not rewrites
    rebuilt = BM25Retriever(final.texts, final.ids, variant, **params)
    expected = rebuilt.search(wiki.queries, k=10)
    got = live.search(wiki.queries, k=10)
    assert sum(len(row) for row in expected) > 300  # the queries do find documents
    assert_same_results(got, expected)

    # Compaction (a merge) drops the tombstones and changes no result, not even a bit.
    live.compact()
    assert live.segment_sizes() == [(520, 520)] and live.n_tombstones == 0
    assert live.doc_ids == final.ids
    assert live.search(wiki.queries, k=10) == got


def test_bm25_on_the_whole_wiki_update_ten(wiki):
    live = LiveBM25.from_documents(wiki.ids, wiki.passages)
    rng = random.Random(2)
    changed = rng.sample(wiki.ids, 10)
    new_texts = [f"{wiki.passages[rng.randrange(len(wiki.ids))]} Revised in 2025." for _ in changed]
    live.update(changed, new_texts)
    live.delete(changed[:3])
    texts = dict(zip(wiki.ids, wiki.passages))
    for doc_id, text in zip(changed, new_texts):
        del texts[doc_id]
        texts[doc_id] = text
    for doc_id in changed[:3]:
        del texts[doc_id]
    assert live.doc_ids == list(texts)
    rebuilt = BM25Retriever(list(texts.values()), list(texts))
    queries = wiki.queries[:20] + ["revised in 2025"]
    assert_same_results(live.search(queries, 10), rebuilt.search(queries, 10))
    found = [doc_id for doc_id, _ in live.search(["revised 2025"], k=len(live))[0]]
    assert set(found[:7]) == set(changed[3:])  # the updated texts, found first
    assert not set(found) & set(changed[:3])  # the deleted ones, nowhere


def test_bm25_one_document_at_a_time_merges_segments(wiki):
    ids, passages = wiki.ids[:300], wiki.passages[:300]
    live = LiveBM25("okapi", negative_idf="epsilon")
    for doc_id, text in zip(ids, passages):
        live.add([doc_id], [text])
    # Without merges there would be 300 segments; the policy keeps about log2(300).
    assert len(live.segment_sizes()) <= 9
    sizes = [n for n, _ in live.segment_sizes()]
    assert all(older > newer for older, newer in zip(sizes, sizes[1:]))
    rebuilt = BM25Retriever(passages, ids, "okapi", negative_idf="epsilon")
    assert_same_results(live.search(wiki.queries, 10), rebuilt.search(wiki.queries, 10))


def test_update_changes_the_answer():
    live = LiveBM25.from_documents(
        ["aardvark", "heron", "oak"],
        ["The aardvark digs burrows at night.", "The grey heron hunts fish.", "The oak is a tree."],
    )
    assert [doc for doc, _ in live.search(["burrows"])[0]] == ["aardvark"]
    live.update(["aardvark"], ["The quokka smiles on Rottnest Island."])
    assert live.search(["burrows", "aardvark night"]) == [[], []]  # the old text is gone
    assert [doc for doc, _ in live.search(["quokka"])[0]] == ["aardvark"]  # the new text is found
    assert live.doc_ids == ["heron", "oak", "aardvark"]


def test_deleted_documents_never_come_back(wiki, tmp_path):
    live = LiveBM25()
    final = history(wiki, live)
    passages = dict(zip(wiki.ids, wiki.passages))
    own_texts = [passages[doc_id] for doc_id in final.deleted]  # each deleted document's own text

    def found() -> set[str]:
        return {doc for row in live.search(own_texts, k=len(live)) for doc, _ in row}

    assert not found() & set(final.deleted)
    assert all(doc_id not in live for doc_id in final.deleted)
    IndexStore(tmp_path).save(bm25=live)
    live = IndexStore(tmp_path).load().bm25
    assert not found() & set(final.deleted)
    live.compact()
    assert not found() & set(final.deleted)
    # Adding more documents (new segments, merges) does not revive them either.
    live.add(wiki.ids[600:700], wiki.passages[600:700])
    assert not found() & set(final.deleted)
    assert len(found()) > 400  # the texts do match many documents


def test_empty_index_finds_nothing(wiki):
    live = LiveBM25()
    assert live.search(["paris"]) == [[]]
    live.add(wiki.ids[:3], wiki.passages[:3])
    assert live.search([wiki.titles[1]])[0][0][0] == wiki.ids[1]
    live.delete(wiki.ids[:3])
    assert len(live) == 0 and live.doc_ids == [] and live.segment_sizes() == []
    assert live.search(["paris", wiki.titles[1]]) == [[], []]
    with pytest.raises(CourseError, match="empty query"):
        live.search(["  "])
    live.add(wiki.ids[:1], wiki.passages[:1])  # a deleted id may be added again, explicitly
    assert wiki.ids[0] in live and len(live) == 1


@pytest.mark.parametrize("call, message", [
    (lambda live: live.add(["wiki-00000"], ["again"]), "already in the index: use update"),
    (lambda live: live.add(["new"], ["a", "b"]), "1 ids but 2 texts"),
    (lambda live: live.add(["x", "y", "x"], ["a", "b", "c"]), "'x' appears more than once"),
    (lambda live: live.add("new", ["text"]), "list of document ids"),
    (lambda live: live.add(["new"], "text"), "not one string"),
    (lambda live: live.add([7], ["text"]), "must be strings"),
    (lambda live: live.add(["new"], [None]), "must be text"),
    (lambda live: live.update(["nope"], ["text"]), "cannot update document 'nope'"),
    (lambda live: live.update(["wiki-00001", "wiki-00001"], ["a", "b"]), "more than once"),
    (lambda live: live.delete(["nope"]), "cannot delete document 'nope'"),
    (lambda live: live.delete(["wiki-00001", "wiki-00001"]), "more than once"),
    (lambda live: live.search(["paris", ""]), "empty query"),
    (lambda live: live.search("paris"), r"wrap a single query as \[query\]"),
    (lambda live: live.search(["paris"], k=0), "k must be"),
    (lambda live: LiveBM25("bm26"), "unknown BM25 variant"),
    (lambda live: LiveBM25("lucene", delta=0.5), "delta is a parameter of bm25l and bm25\\+ only"),
])
def test_bm25_errors(wiki, call, message):
    live = LiveBM25.from_documents(wiki.ids[:5], wiki.passages[:5])
    before = live.search([wiki.titles[2]])
    with pytest.raises(CourseError, match=message):
        call(live)
    # A refused call changes nothing (here: a deleted id, if the delete went half way).
    assert live.doc_ids == wiki.ids[:5] and live.search([wiki.titles[2]]) == before


def test_delete_of_a_deleted_document_is_an_error(wiki):
    live = LiveBM25.from_documents(wiki.ids[:5], wiki.passages[:5])
    live.delete([wiki.ids[0]])
    with pytest.raises(CourseError, match="never added, or deleted"):
        live.delete([wiki.ids[0]])
    with pytest.raises(CourseError, match="cannot update"):
        live.update([wiki.ids[0]], ["new text"])


# ---------------------------------------------------------------------------
# Faiss: incremental equals rebuilt
# ---------------------------------------------------------------------------


def unit_vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture()
def faiss_history():
    """2,000 vectors added in two batches, 300 updated, 400 deleted; the index and what it should hold."""
    ids = [f"doc-{i:04d}" for i in range(2000)]
    vectors = unit_vectors(2000, seed=0)
    live = LiveFaiss(32)
    live.add(ids[:1500], vectors[:1500])
    live.add(ids[1500:], vectors[1500:])
    expected = dict(zip(ids, vectors))
    rng = random.Random(3)
    updated = rng.sample(ids, 300)
    new_vectors = unit_vectors(300, seed=1)
    live.update(updated, new_vectors)
    for doc_id, vector in zip(updated, new_vectors):
        del expected[doc_id]
        expected[doc_id] = vector
    deleted = rng.sample(ids, 400)
    live.delete(deleted)
    for doc_id in deleted:
        del expected[doc_id]
    return SimpleNamespace(live=live, ids=list(expected), vectors=np.stack(list(expected.values())),
                           old_vectors=dict(zip(ids, vectors)), updated=updated, deleted=deleted,
                           queries=unit_vectors(50, seed=2))


def test_faiss_add_update_delete_equals_rebuild(faiss_history):
    h = faiss_history
    assert h.live.doc_ids == h.ids and len(h.live) == h.live.index.ntotal == len(h.ids)
    np.testing.assert_array_equal(h.live.vectors(), h.vectors)
    got = h.live.search(h.queries, k=10)

    rebuilt = faiss.IndexFlatIP(32)
    rebuilt.add(h.vectors)
    scores, positions = rebuilt.search(h.queries, 10)
    brute_scores, brute_positions = faiss_index.brute_force_search(h.vectors, h.queries, 10)
    np.testing.assert_array_equal(brute_positions, positions)
    for row, score_row, position_row in zip(got, scores, positions):
        assert [doc for doc, _ in row] == [h.ids[p] for p in position_row]
        np.testing.assert_allclose([s for _, s in row], score_row, atol=1e-5)
    np.testing.assert_allclose([[s for _, s in row] for row in got], brute_scores, atol=1e-5)


def test_faiss_stale_vectors_never_come_back(faiss_history):
    h = faiss_history
    # A deleted document's own vector would find it first, with score 1.
    for row in h.live.search(np.stack([h.old_vectors[d] for d in h.deleted]), k=10):
        assert not {doc for doc, _ in row} & set(h.deleted)
    # An updated document is found by its new vector, and not by its old one (score 1 would be the old).
    kept_updates = [d for d in h.updated if d not in h.deleted]
    for doc_id, row in zip(kept_updates, h.live.search(np.stack([h.old_vectors[d] for d in kept_updates]), 1)):
        assert row[0][1] < 0.99
    new_vectors = h.vectors[[h.ids.index(d) for d in kept_updates]]
    assert [row[0][0] for row in h.live.search(new_vectors, 1)] == kept_updates
    # Updated vectors live under new Faiss ids: no id was ever given twice.
    faiss_ids = faiss.vector_to_array(h.live.index.id_map)
    assert len(set(faiss_ids.tolist())) == faiss_ids.size == len(h.ids)
    faiss_id_of = dict(zip(h.live.doc_ids, h.live.faiss_ids))
    assert all(faiss_id_of[d] >= 2000 for d in kept_updates) and h.live.next_faiss_id == 2300


def test_faiss_k_larger_than_the_index_and_empty_index():
    live = LiveFaiss(4)
    assert live.search(np.eye(4, dtype=np.float32), 3) == [[], [], [], []]
    live.add(["a", "b"], np.eye(4, dtype=np.float64)[:2])  # float64 is converted
    assert live.search(np.eye(4, dtype=np.float32)[:1], k=10) == [[("a", 1.0), ("b", 0.0)]]
    live.delete(["a", "b"])
    assert live.search(np.eye(4, dtype=np.float32)[:1], k=10) == [[]]


@pytest.mark.parametrize("call, message", [
    (lambda live: live.add(["c"], np.ones((1, 5))), "5 dimensions but the index holds 4"),
    (lambda live: live.add(["c"], np.ones(4)), "2-d array"),
    (lambda live: live.add(["c", "d"], np.ones((1, 4))), "2 ids but 1 vectors"),
    (lambda live: live.add(["c"], np.array([[0, np.nan, 0, 1]])), "NaN or infinity"),
    (lambda live: live.add(["c"], [["x", "y", "z", "w"]]), "array of numbers"),
    (lambda live: live.add(["a"], np.ones((1, 4))), "already in the index: use update"),
    (lambda live: live.add("c", np.ones((1, 4))), "list of document ids"),
    (lambda live: live.add(["c", "c"], np.ones((2, 4))), "more than once"),
    (lambda live: live.update(["zz"], np.ones((1, 4))), "cannot update document 'zz'"),
    (lambda live: live.update(["a"], np.full((1, 4), np.inf)), "NaN or infinity"),
    (lambda live: live.delete(["zz"]), "cannot delete document 'zz'"),
    (lambda live: live.search(np.ones((1, 3)), 1), "3 dimensions"),
    (lambda live: live.search(np.ones((1, 4)), 0), "k must be"),
    (lambda live: LiveFaiss(0), "dim must be"),
])
def test_faiss_errors(call, message):
    live = LiveFaiss(4)
    live.add(["a", "b"], np.eye(4, dtype=np.float32)[:2])
    with pytest.raises(CourseError, match=message):
        call(live)
    assert live.doc_ids == ["a", "b"] and live.index.ntotal == 2


# ---------------------------------------------------------------------------
# Saving: versions, checksums, crashes
# ---------------------------------------------------------------------------


@pytest.fixture()
def two_states(wiki):
    """A BM25 and a Faiss index, and a function that changes both (state A -> state B)."""
    bm25 = LiveBM25.from_documents(wiki.ids[:200], wiki.passages[:200], variant="bm25+")
    vectors = unit_vectors(200, dim=16, seed=4)
    faiss_index = LiveFaiss(16)
    faiss_index.add(wiki.ids[:200], vectors)

    def change() -> None:
        bm25.update(wiki.ids[:5], wiki.passages[300:305])
        bm25.delete(wiki.ids[5:20])
        bm25.add(wiki.ids[200:230], wiki.passages[200:230])
        faiss_index.update(wiki.ids[:5], unit_vectors(5, dim=16, seed=5))
        faiss_index.delete(wiki.ids[5:20])

    queries = [wiki.titles[i] for i in range(0, 300, 6)]
    query_vectors = np.concatenate([vectors[:20], unit_vectors(20, dim=16, seed=6)])

    def results(bm25_index: LiveBM25, faiss_index_: LiveFaiss) -> tuple[list, list]:
        return bm25_index.search(queries, 10), faiss_index_.search(query_vectors, 10)

    return SimpleNamespace(bm25=bm25, faiss=faiss_index, change=change, results=results)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not (p.name == "CURRENT" or p.name.startswith("v")))


def test_save_load_round_trip(two_states, tmp_path):
    s = two_states
    s.change()  # tombstones and several segments, saved compacted
    store = IndexStore(tmp_path / "kb")
    assert store.save(bm25=s.bm25, dense=s.faiss) == 1
    loaded = store.load()
    assert loaded.version == 1 and loaded.manifest["parts"]["bm25"]["documents"] == len(s.bm25)
    assert loaded.bm25.doc_ids == s.bm25.doc_ids and loaded.dense.doc_ids == s.faiss.doc_ids
    assert s.results(loaded.bm25, loaded.dense) == s.results(s.bm25, s.faiss)  # to the last bit
    assert (loaded.bm25.variant, loaded.bm25.delta) == ("bm25+", 1.0)
    # The loaded indexes go on living: a stale Faiss id is still never reused.
    loaded.dense.update([s.faiss.doc_ids[0]], unit_vectors(1, dim=16, seed=7))
    assert dict(zip(loaded.dense.doc_ids, loaded.dense.faiss_ids))[s.faiss.doc_ids[0]] == s.faiss.next_faiss_id
    assert sorted(p.name for p in (tmp_path / "kb" / "v000001").iterdir()) == [
        "bm25.json", "bm25.npz", "dense.faiss", "dense.json", "manifest.json"]


def test_one_index_alone_round_trip(wiki, tmp_path):
    bm25 = LiveBM25.from_documents(wiki.ids[:50], wiki.passages[:50], stopwords=ENGLISH_STOPWORDS)
    assert IndexStore(tmp_path).save(bm25=bm25) == 1
    stored = IndexStore(tmp_path).load()
    assert stored.dense is None and stored.bm25.stopwords == ENGLISH_STOPWORDS
    assert stored.bm25.search(wiki.titles[:10]) == bm25.search(wiki.titles[:10])
    assert sorted(stored.manifest["parts"]) == ["bm25"]


def test_indexes_rebuilt_from_their_saved_state(two_states):
    s = two_states
    s.change()
    bm25 = LiveBM25.from_term_counts(*s.bm25.term_counts(), **s.bm25.parameters())
    assert bm25.doc_ids == s.bm25.doc_ids and bm25.segment_sizes() == [(len(s.bm25), len(s.bm25))]
    dense = LiveFaiss.from_faiss(faiss.clone_index(s.faiss.index), s.faiss.doc_ids, s.faiss.faiss_ids,
                                 s.faiss.next_faiss_id)
    assert s.results(bm25, dense) == s.results(s.bm25, s.faiss)
    with pytest.raises(CourseError, match="do not carry"):
        LiveFaiss.from_faiss(s.faiss.index, s.faiss.doc_ids[1:], s.faiss.faiss_ids[1:], s.faiss.next_faiss_id)
    with pytest.raises(CourseError, match="next Faiss id"):
        LiveFaiss.from_faiss(s.faiss.index, s.faiss.doc_ids, s.faiss.faiss_ids, 0)
    with pytest.raises(CourseError, match="term counts of shape"):
        LiveBM25.from_term_counts(["only"], *s.bm25.term_counts()[1:])


def flip_a_byte(path) -> None:
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))


@pytest.mark.parametrize("damage, message", [
    (lambda v: flip_a_byte(v / "bm25.npz"), "does not match its checksum"),
    (lambda v: flip_a_byte(v / "bm25.json"), "does not match its checksum"),
    (lambda v: v.joinpath("dense.faiss").write_bytes(b"garbage"), "does not match its checksum"),
    (lambda v: v.joinpath("dense.json").unlink(), "dense.json is missing"),
    (lambda v: v.joinpath("manifest.json").write_text("{", encoding="utf-8"), "cannot read"),
    (lambda v: v.parent.joinpath("CURRENT").write_text("latest\n", encoding="utf-8"), "CURRENT is corrupt"),
    (lambda v: v.parent.joinpath("CURRENT").unlink(), "no CURRENT file"),
    (lambda v: v.parent.joinpath("CURRENT").write_text("v000009\n", encoding="utf-8"), "version 9 is not in"),
])
def test_corrupt_store_is_a_clear_error(two_states, tmp_path, damage, message):
    store = IndexStore(tmp_path)
    store.save(bm25=two_states.bm25, dense=two_states.faiss)
    store.save(bm25=two_states.bm25, dense=two_states.faiss)
    damage(tmp_path / "v000002")
    with pytest.raises(CourseError, match=message) as error:
        store.load()
    assert "\n" not in str(error.value)
    assert store.load(version=1).version == 1  # the previous version still loads


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CourseError, match="no index folder"):
        IndexStore(tmp_path / "nothing").load()
    with pytest.raises(CourseError, match="nothing to save"):
        IndexStore(tmp_path).save()
    with pytest.raises(CourseError, match="keep must be"):
        IndexStore(tmp_path, keep=0)


class SimulatedCrash(Exception):
    pass


def crash(*args, **kwargs):
    raise SimulatedCrash("the power went out")


def crash_when_replacing(name: str):
    """os.replace that fails when it would move a file onto `name`, and works for every other file."""
    replace = os.replace

    def replace_or_crash(source, target, *args, **kwargs):
        if Path(target).name == name:
            crash()
        return replace(source, target, *args, **kwargs)

    return replace_or_crash


# Each step of a save, replaced by a function that fails in the middle of it.
CRASH_POINTS = {
    "bm25 arrays": (np, "savez", crash),
    "faiss file": (faiss, "write_index", crash),
    "manifest": (index_store, "_write_manifest", crash),
    "fsync of the staging folder": (index_store, "_fsync_dir", crash),
    "rename into place": (os, "rename", crash),
    "CURRENT replaced": (os, "replace", crash_when_replacing(index_store.CURRENT_FILE)),
}


@pytest.mark.parametrize("crash_point", CRASH_POINTS)
def test_a_crash_mid_save_leaves_the_previous_version(two_states, tmp_path, monkeypatch, crash_point):
    s = two_states
    store = IndexStore(tmp_path)
    store.save(bm25=s.bm25, dense=s.faiss)
    before = s.results(s.bm25, s.faiss)
    s.change()
    after = s.results(s.bm25, s.faiss)
    assert after != before

    with monkeypatch.context() as patch:
        patch.setattr(*CRASH_POINTS[crash_point])
        with pytest.raises(SimulatedCrash):
            store.save(bm25=s.bm25, dense=s.faiss)
    assert leftovers(tmp_path) or store.versions() == [1, 2]  # the crash left something behind
    assert store.current_version() == 1
    loaded = store.load()
    assert loaded.version == 1 and s.results(loaded.bm25, loaded.dense) == before

    # The next save succeeds, cleans up after the failed one, and becomes current.
    assert store.save(bm25=s.bm25, dense=s.faiss) == 2
    assert leftovers(tmp_path) == [] and store.versions() == [1, 2]
    loaded = store.load()
    assert s.results(loaded.bm25, loaded.dense) == after


def test_a_crash_while_pruning_keeps_the_new_version(two_states, tmp_path, monkeypatch):
    store = IndexStore(tmp_path, keep=1)
    store.save(bm25=two_states.bm25)
    with monkeypatch.context() as patch:
        patch.setattr(index_store.shutil, "rmtree", crash)  # deleting the old version fails
        with pytest.raises(SimulatedCrash):
            store.save(bm25=two_states.bm25)
    assert store.load().version == 2 and store.versions() == [2]  # v1 was moved aside first
    assert leftovers(tmp_path)  # ... into a trash folder, removed by the next save
    store.save(bm25=two_states.bm25)
    assert leftovers(tmp_path) == [] and store.versions() == [3]


def test_a_killed_save_is_ignored_then_cleaned(two_states, tmp_path):
    store = IndexStore(tmp_path)
    store.save(dense=two_states.faiss)
    # What a process killed mid-save leaves: a half-written staging folder, a CURRENT
    # temp file, and a version folder renamed into place but never made current.
    (tmp_path / ".staging-x1y2").mkdir()
    (tmp_path / ".staging-x1y2" / "dense.faiss").write_bytes(b"half")
    (tmp_path / "CURRENT.abc.tmp").write_text("v000002\n", encoding="utf-8")
    (tmp_path / "v000002").mkdir()
    assert store.load().version == 1
    assert store.save(dense=two_states.faiss) == 2
    assert leftovers(tmp_path) == [] and store.versions() == [1, 2]
    assert store.load().dense.doc_ids == two_states.faiss.doc_ids


def test_old_versions_are_pruned(two_states, tmp_path):
    store = IndexStore(tmp_path, keep=2)
    sizes = []
    for i in range(5):
        two_states.bm25.delete([two_states.bm25.doc_ids[0]])
        sizes.append(len(two_states.bm25))
        assert store.save(bm25=two_states.bm25) == i + 1
    assert store.versions() == [4, 5] and store.current_version() == 5
    assert [len(store.load(version).bm25) for version in (4, 5)] == sizes[3:]
    with pytest.raises(CourseError, match="version 3 is not in"):
        store.load(version=3)
