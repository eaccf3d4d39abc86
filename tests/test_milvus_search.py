"""The knowledge base on Milvus (embedded Milvus Lite, a temporary folder, no network).

BM25 against the course's Lucene BM25, dense against exact inner products, hybrid
against the course's RRF; adds, updates and deletes against a fresh collection of the
same documents; the cached copy built all or nothing; clear errors.
"""

import numpy as np
import pytest

from ragutils import milvus_search
from ragutils.bm25 import BM25Retriever
from ragutils.errors import CourseError
from ragutils.hybrid import reciprocal_rank_fusion
from ragutils.milvus_search import MilvusKnowledgeBase

DOCS = [
    "the cat sat on the mat",
    "dogs chase the cat around the garden",
    "a bird in the hand is worth two in the bush",
    "cat food and cat toys for every cat",
    "the garden has roses and a small pond",
    "stock markets fell sharply on monday",
    "the pond froze in winter and the birds left",
    "roses are red and violets are blue",
]
IDS = [f"d{i}" for i in range(len(DOCS))]
QUERIES = ["cat", "garden pond", "birds in winter", "red roses", "the cat in the garden"]


@pytest.fixture(scope="module")
def uri(tmp_path_factory):
    return str(tmp_path_factory.mktemp("milvus") / "milvus.db")


@pytest.fixture(scope="module")
def vectors(encoder):
    return encoder.encode(DOCS, show_progress=False)


@pytest.fixture(scope="module")
def cached(uri, vectors, encoder):
    return MilvusKnowledgeBase(DOCS, IDS, vectors, encoder=encoder, uri=uri, tag="tiny")


def ids(ranking):
    return [doc_id for doc_id, _ in ranking]


def test_bm25_ranks_as_lucene_bm25_and_scores_are_k1_plus_1_times_ours(cached):
    ours = BM25Retriever(DOCS, IDS, variant="lucene", k1=milvus_search.K1, b=milvus_search.B).search(QUERIES, 8)
    theirs = cached.search(QUERIES, 8, mode="bm25")
    for mine, milvus in zip(ours, theirs):
        assert ids(milvus) == ids(mine)
        for (_, score), (_, milvus_score) in zip(mine, milvus):
            assert milvus_score == pytest.approx((milvus_search.K1 + 1) * score, rel=1e-5)


TRICKY = ["Ada Lovelace's notes on the engine", "the U.S. army and navy", "pi is 3.14, about 1,000 digits",
          "foo_bar baz", "don't stop the e-mail", "東京 is tokyo", "Zürich and Köln"]


@pytest.mark.parametrize("query", ["lovelace", "s", "u", "3", "14", "1", "000", "foo", "foo_bar", "don", "t",
                                   "mail", "東京", "東", "zürich", "köln", "Lovelace's notes", "U.S."])
def test_milvus_tokens_are_the_course_tokens_on_tricky_text(uri, query):
    # Apostrophes, inner periods, digits with separators, underscores, hyphens, CJK, accents.
    kb = MilvusKnowledgeBase(TRICKY, [f"t{i}" for i in range(len(TRICKY))], np.eye(len(TRICKY), dtype=np.float32),
                             uri=uri, tag="tricky")
    ours = BM25Retriever(TRICKY, [f"t{i}" for i in range(len(TRICKY))], variant="lucene").search([query], 7)[0]
    theirs = kb.search([query], 7)[0]
    assert ids(theirs) == ids(ours)
    assert [s for _, s in theirs] == pytest.approx([(milvus_search.K1 + 1) * s for _, s in ours], rel=1e-5)


def test_dense_is_exact_inner_product_search(cached, vectors, encoder):
    scores = encoder.encode(QUERIES, show_progress=False) @ vectors.T
    for row, found in zip(scores, cached.search(QUERIES, 5, mode="dense")):
        assert ids(found) == [IDS[i] for i in np.argsort(-row, kind="stable")[:5]]
        assert [s for _, s in found] == pytest.approx(sorted(row, reverse=True)[:5], abs=1e-5)


def test_hybrid_is_rrf_of_the_two_lists(cached):
    lists = [cached.search(QUERIES, len(DOCS), mode="bm25"), cached.search(QUERIES, len(DOCS), mode="dense")]
    fused = reciprocal_rank_fusion(lists, k_rrf=milvus_search.K_RRF, k=3)
    for mine, milvus in zip(fused, cached.search(QUERIES, 3, mode="hybrid")):
        # The same fused scores; documents of equal score may come in another order (ties).
        assert [s for _, s in milvus] == pytest.approx([s for _, s in mine], rel=1e-5)
        best = mine[0][1]
        assert {d for d, s in milvus if s == pytest.approx(best)} == {d for d, s in mine if s == pytest.approx(best)}


def test_the_retriever_interface(cached):
    retriever = cached.retriever("bm25")
    assert retriever.search(["cat"], 2) == cached.search(["cat"], 2)
    assert retriever.search([], 3) == []
    with pytest.raises(CourseError, match="wrap a single query"):
        retriever.search("cat", 2)
    with pytest.raises(CourseError, match="k must be"):
        retriever.search(["cat"], 0)
    with pytest.raises(CourseError, match="unknown Milvus search mode"):
        cached.retriever("sparse")
    with pytest.raises(CourseError, match="at least one word"):
        retriever.search(["?!"], 2)


def test_the_cached_copy_is_reused_and_refuses_changes(cached, uri, vectors, encoder):
    again = MilvusKnowledgeBase(DOCS, IDS, vectors, encoder=encoder, uri=uri, tag="tiny")
    assert again.reused and again.name == cached.name and len(again) == len(DOCS)
    with pytest.raises(CourseError, match="cached copy"):
        again.delete(["d0"])
    assert "d0" in again


def test_a_changed_corpus_builds_a_new_copy_and_drops_the_old_one(cached, uri, vectors, encoder):
    changed = MilvusKnowledgeBase(DOCS[:-1], IDS[:-1], vectors[:-1], encoder=encoder, uri=uri, tag="tiny2")
    other = MilvusKnowledgeBase(DOCS[:-1] + ["a new text"], IDS, vectors, encoder=encoder, uri=uri, tag="tiny2")
    assert not other.reused and other.name != changed.name
    names = milvus_search.connect(uri).list_collections()
    assert other.name in names and changed.name not in names  # the stale copy of tag tiny2 is gone
    assert cached.name in names  # another tag's copy is left alone


def test_an_interrupted_build_leaves_no_collection_in_use(uri, vectors, encoder, monkeypatch):
    from pymilvus import MilvusClient

    monkeypatch.setattr(milvus_search, "INSERT_BATCH", 3)
    real_insert = MilvusClient.insert
    calls = []

    def insert_then_fail(self, name, rows, **kwargs):
        calls.append(len(rows))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the learner pressed Ctrl-C in the middle of the build
        return real_insert(self, name, rows, **kwargs)

    monkeypatch.setattr(MilvusClient, "insert", insert_then_fail)
    with pytest.raises(KeyboardInterrupt):
        MilvusKnowledgeBase(DOCS, IDS, vectors, encoder=encoder, uri=uri, tag="broken")
    names = milvus_search.connect(uri).list_collections()
    assert not any(name.startswith("ragutils_broken_") and not name.endswith("_building") for name in names)
    monkeypatch.setattr(MilvusClient, "insert", real_insert)
    complete = MilvusKnowledgeBase(DOCS, IDS, vectors, encoder=encoder, uri=uri, tag="broken")
    assert not complete.reused and len(complete) == len(DOCS)
    assert not any(name.endswith("_building") for name in milvus_search.connect(uri).list_collections())


def test_adds_updates_and_deletes(uri, vectors, encoder):
    # Built from six documents (one segment, sealed by the build), then two added, one
    # replaced and two deleted: the changes land in a second segment.
    live = MilvusKnowledgeBase(DOCS[:6], IDS[:6], vectors[:6], encoder=encoder, uri=uri, name="live")
    live.add(IDS[6:], (DOCS[6:], vectors[6:]))
    new_text = "the cat moved to a garden by the pond"
    new_vector = encoder.encode([new_text], show_progress=False)
    live.update(["d0"], ([new_text], new_vector))
    live.delete(["d3", "d5"])
    assert len(live) == len(DOCS) - 2 and "d3" not in live and "d0" in live
    assert live.texts(["d0", "d3"]) == {"d0": new_text}

    keep = [i for i in range(len(DOCS)) if IDS[i] not in ("d3", "d5")]
    final_ids = [IDS[i] for i in keep]
    final_docs = [new_text if IDS[i] == "d0" else DOCS[i] for i in keep]
    final_vectors = np.stack([new_vector[0] if IDS[i] == "d0" else vectors[i] for i in keep])
    fresh = MilvusKnowledgeBase(final_docs, final_ids, final_vectors, encoder=encoder, uri=uri, name="fresh")
    for mode in milvus_search.MODES:
        changed = live.search(QUERIES, len(DOCS), mode=mode)
        assert all(not {"d3", "d5"} & set(ids(row)) for row in changed)  # deleted documents never come back
        rebuilt = fresh.search(QUERIES, len(DOCS), mode=mode)
        assert [set(ids(row)) for row in changed] == [set(ids(row)) for row in rebuilt]  # the same matches
    for a, b in zip(live.search(QUERIES, 5, mode="dense"), fresh.search(QUERIES, 5, mode="dense")):
        assert ids(a) == ids(b) and [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-6)

    # BM25 scores are not a fresh build's: Milvus keeps BM25 statistics (N, df, avgdl) per
    # segment, deleted rows included, and merges the segments' hits by score. Exactly that,
    # computed with the course's BM25:
    first = BM25Retriever(DOCS[:6], ["d0 (old)"] + IDS[1:6], variant="lucene")
    second = BM25Retriever(DOCS[6:] + [new_text], IDS[6:] + ["d0"], variant="lucene")
    gone = {"d0 (old)", "d3", "d5"}
    for query, found in zip(QUERIES, live.search(QUERIES, len(DOCS), mode="bm25")):
        hits = [(d, (milvus_search.K1 + 1) * s) for part in (first, second) for d, s in part.search([query], 10)[0]]
        expected = dict((d, s) for d, s in hits if d not in gone)
        assert dict(found) == pytest.approx(expected, rel=1e-5)
    fresh_scores = [dict(row) for row in fresh.search(QUERIES, len(DOCS), mode="bm25")]
    changed_scores = [dict(row) for row in live.search(QUERIES, len(DOCS), mode="bm25")]
    assert any(abs(a[d] - b[d]) > 0.1 for a, b in zip(changed_scores, fresh_scores) for d in a)


def test_changes_are_checked_before_anything_changes(uri, vectors, encoder):
    live = MilvusKnowledgeBase(DOCS, IDS, vectors, encoder=encoder, uri=uri, name="checked")
    with pytest.raises(CourseError, match="already in the index"):
        live.add(["d1"], (["x"], vectors[:1]))
    with pytest.raises(CourseError, match="not in the index"):
        live.update(["nope"], (["x"], vectors[:1]))
    with pytest.raises(CourseError, match="not in the index"):
        live.delete(["d1", "nope"])
    with pytest.raises(CourseError, match=r"\(texts, vectors\)"):
        live.add(["d9"], ["x"])
    with pytest.raises(CourseError, match="dimension"):
        live.add(["d9"], (["x"], np.ones((1, 3), dtype=np.float32)))
    with pytest.raises(CourseError, match="one id and one vector"):
        live.add(["d9", "d10"], (["x"], vectors[:1]))
    with pytest.raises(CourseError, match="id field's limit"):
        live.add(["x" * 600], (["x"], vectors[:1]))
    assert len(live) == len(DOCS) and "d1" in live


def test_bad_input_is_one_clear_error(uri, vectors):
    with pytest.raises(CourseError, match="one id and one vector"):
        MilvusKnowledgeBase(DOCS, IDS[:-1], vectors, uri=uri)
    with pytest.raises(CourseError, match="unique"):
        MilvusKnowledgeBase(DOCS[:2], ["a", "a"], vectors[:2], uri=uri)
    with pytest.raises(CourseError, match="bytes"):
        MilvusKnowledgeBase(["x" * 70_000], ["a"], vectors[:1], uri=uri)
    with pytest.raises(CourseError, match="id field's limit"):
        MilvusKnowledgeBase(DOCS[:1], ["x" * 600], vectors[:1], uri=uri)
    with pytest.raises(CourseError, match="a collection name"):
        MilvusKnowledgeBase(DOCS, IDS, vectors, uri=uri, name="no spaces")


def test_an_unreachable_server_or_a_bad_path_is_one_clear_error(tmp_path):
    with pytest.raises(CourseError, match="cannot reach a Milvus server at http://127.0.0.1:1"):
        milvus_search.connect("http://127.0.0.1:1", timeout=2)
    with pytest.raises(CourseError, match="cannot open the embedded Milvus"):
        milvus_search.connect(str(tmp_path / "missing" / "milvus.db"))
    with pytest.raises(CourseError, match="ending in .db"):
        milvus_search.connect(str(tmp_path / "milvus"))


def test_the_default_engine_is_embedded_in_the_cache_unless_a_uri_is_set(monkeypatch, tmp_path):
    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path))
    monkeypatch.delenv(milvus_search.URI_ENV, raising=False)
    assert milvus_search.default_uri() == str(tmp_path / "engines" / "milvus.db")
    assert milvus_search.is_embedded(milvus_search.default_uri())
    monkeypatch.setenv(milvus_search.URI_ENV, "http://milvus.example:19530")
    assert milvus_search.default_uri() == "http://milvus.example:19530"
    assert not milvus_search.is_embedded(milvus_search.default_uri())
