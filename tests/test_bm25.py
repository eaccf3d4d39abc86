"""ragutils.bm25: formulas by hand, edge cases, and the full wiki corpus against rank_bm25 and bm25s."""

import math
import random
from types import SimpleNamespace

import bm25s
import numpy as np
import pytest
import rank_bm25

from ragutils.bm25 import (
    NEGATIVE_IDF_MODES,
    VARIANTS,
    BM25Index,
    BM25Retriever,
    bm25_scores_loop,
    floor_negative_idf,
    idf,
    term_frequency_component,
)
from ragutils.data import load_corpus
from ragutils.errors import CourseError
from ragutils.text import tokenize, tokenize_many

K1, B = 1.5, 0.75  # the defaults of ragutils.bm25, rank_bm25 and bm25s alike

SMALL_DOCS = [
    "Paris is the capital of France.",
    "",  # an empty document counts in N and in the average length
    "The Seine flows through Paris, Paris, Paris.",
    "Zürich and Genève are Swiss cities; 東京 is not.",
    "France borders Spain and Italy and the Alps.",
    "the the the the the the the the",
]
SMALL_QUERIES = ["paris", "paris france", "paris paris", "the", "zürich 東京", "alps spain italy the",
                 "nothing here", ""]


# ---------------------------------------------------------------------------
# The wiki corpus and the reference libraries (built once per module)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wiki():
    """The wiki corpus as title + text, tokenised, with 200 queries: descriptions and a few special ones."""
    corpus = load_corpus("wiki")
    docs = [f"{title} {text}" for title, text in zip(corpus["title"], corpus["text"])]
    descriptions = [d for d in corpus["description"] if d.strip()]
    special = ["Paris Paris France", "zzzunknownzzz", "", "the of and in", "Zürich Dvořák 東京"]
    queries = random.Random(0).sample(descriptions, 200 - len(special)) + special
    return SimpleNamespace(
        ids=list(corpus["id"]), titles=list(corpus["title"]), docs=docs, tokens=tokenize_many(docs),
        queries=queries, query_tokens=tokenize_many(queries),
    )


def bm25s_scores(model: bm25s.BM25, queries_tokens: list[list[str]], n_docs: int) -> np.ndarray:
    """bm25s's score of every document for each query (its get_scores fails on an empty query)."""
    return np.array([model.get_scores(q) if q else np.zeros(n_docs) for q in queries_tokens])


def bm25s_model(tokens: list[list[str]], method: str, **params) -> bm25s.BM25:
    """A bm25s index of the same tokens, numpy backend."""
    model = bm25s.BM25(method=method, k1=K1, b=B, backend="numpy", **params)
    model.index(tokens, show_progress=False)
    return model


def assert_same_ranking_up_to_ties(ours, reference, rtol):
    """Two ranked [(doc, score)] lists agree, except for the order inside groups of equal scores."""
    assert len(ours) == len(reference)
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in reference], rtol=rtol)
    # Group our positions by equal score; each group must hold the same documents,
    # except the last one, whose ties may continue beyond k in either list.
    start = 0
    while start < len(ours):
        end = start + 1
        while end < len(ours) and math.isclose(ours[end][1], ours[start][1], rel_tol=rtol):
            end += 1
        if end < len(ours):
            assert {d for d, _ in ours[start:end]} == {d for d, _ in reference[start:end]}
        start = end


# ---------------------------------------------------------------------------
# The formulas, by hand
# ---------------------------------------------------------------------------


def test_idf_by_hand():
    # A term in n = 2 of N = 10 documents.
    assert idf(2, 10, "okapi") == pytest.approx(math.log(8.5 / 2.5))
    assert idf(2, 10, "lucene") == pytest.approx(math.log(1 + 8.5 / 2.5))
    assert idf(2, 10, "bm25l") == pytest.approx(math.log(11 / 2.5))
    assert idf(2, 10, "bm25+") == pytest.approx(math.log(11 / 2))
    assert idf(2, 10, "atire") == pytest.approx(math.log(5))
    # Rarer terms weigh more, in every variant.
    for variant in VARIANTS:
        values = idf(np.arange(1, 11), 10, variant)
        assert np.all(np.diff(values) < 0)


@pytest.mark.parametrize("n_docs", [1, 2, 5, 100, 10_033])
def test_only_okapi_idf_can_be_negative(n_docs):
    doc_freq = np.arange(1, n_docs + 1)
    # Okapi's idf is negative exactly for terms in more than half of the documents.
    np.testing.assert_array_equal(idf(doc_freq, n_docs, "okapi") < 0, doc_freq > n_docs / 2)
    for variant in ("lucene", "bm25l", "bm25+", "atire"):
        assert np.all(idf(doc_freq, n_docs, variant) >= 0)


def test_negative_idf_modes():
    raw = idf(np.array([1, 5, 9]), 10, "okapi")  # positive, zero, negative
    assert raw[0] > 0 and raw[1] == 0 and raw[2] < 0
    np.testing.assert_array_equal(floor_negative_idf(raw, "keep"), raw)
    np.testing.assert_array_equal(floor_negative_idf(raw, "zero"), [raw[0], 0, 0])
    # rank_bm25: strictly negative values become epsilon x the mean idf (taken before flooring).
    np.testing.assert_array_equal(floor_negative_idf(raw, "epsilon", 0.25), [raw[0], 0, 0.25 * raw.mean()])
    with pytest.raises(CourseError, match="negative_idf"):
        floor_negative_idf(raw, "clip")


def test_epsilon_floor_misbehaves():
    # 1. It reverses the order of common terms: in 60 of 100 documents, a term gets
    #    epsilon x mean idf, far more than a term in 49 documents (idf close to 0).
    doc_freq = np.array([1] * 50 + [49, 60])
    floored = floor_negative_idf(idf(doc_freq, 100, "okapi"), "epsilon")
    assert 0 < floored[-2] < 0.05 < 1 < floored[-1]
    # 2. On a small corpus the mean idf is negative, so the "floor" is negative too:
    #    with one document, every match lowers the score, exactly as in rank_bm25.
    tokens = [["paris", "france"]]
    index = BM25Index(tokens, "okapi", negative_idf="epsilon")
    assert np.all(index.idf < 0)
    reference = rank_bm25.BM25Okapi(tokens).get_scores(["paris"])
    np.testing.assert_allclose(index.scores([["paris"]])[0], reference, rtol=1e-12)
    assert reference[0] < 0


def test_term_frequency_component():
    tf = np.array([0.0, 1, 2, 5, 50, 5000])
    for variant in VARIANTS:
        tfc = term_frequency_component(tf, 10, 10, variant)
        assert tfc[0] == 0  # an absent term adds nothing, in every variant
        assert np.all(np.diff(tfc[1:]) > 0)  # more occurrences, more score ...
    # ... up to a ceiling: saturation. Okapi and ATIRE approach k1 + 1, Lucene 1.
    okapi = term_frequency_component(tf, 10, 10, "okapi")
    assert okapi[-1] < K1 + 1 and okapi[-1] == pytest.approx(K1 + 1, rel=1e-3)
    np.testing.assert_allclose(term_frequency_component(tf, 10, 10, "lucene") * (K1 + 1), okapi)
    np.testing.assert_array_equal(term_frequency_component(tf, 10, 10, "atire"), okapi)
    # BM25+ adds delta to every present term; at tf = 1 and average length Okapi gives 1.
    plus = term_frequency_component(tf, 10, 10, "bm25+", delta=1.0)
    np.testing.assert_allclose(plus[1:], okapi[1:] + 1.0)
    assert okapi[1] == pytest.approx(1.0)
    # Longer documents get less per occurrence, unless b = 0.
    lengths = np.array([5, 10, 20, 40])
    assert np.all(np.diff(term_frequency_component(3, lengths, 10, "okapi")) < 0)
    assert np.all(np.diff(term_frequency_component(3, lengths, 10, "okapi", b=0)) == 0)
    # BM25L lifts long documents: at four times the average length it scores more than Okapi.
    assert term_frequency_component(1, 40, 10, "bm25l") > term_frequency_component(1, 40, 10, "okapi")


# ---------------------------------------------------------------------------
# Three ways to the same scores: the loop, the index, the search
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("k1, b", [(1.5, 0.75), (1.2, 0.0), (0.9, 1.0)])
def test_loop_and_index_agree_on_small_corpus(variant, k1, b):
    docs_tokens = tokenize_many(SMALL_DOCS)
    for negative_idf in NEGATIVE_IDF_MODES:
        index = BM25Index(docs_tokens, variant, k1, b, negative_idf=negative_idf)
        queries_tokens = tokenize_many(SMALL_QUERIES)
        expected = [bm25_scores_loop(q, docs_tokens, variant, k1, b, negative_idf=negative_idf)
                    for q in queries_tokens]
        np.testing.assert_allclose(index.scores(queries_tokens), expected, rtol=1e-12, atol=1e-15)


def test_loop_and_index_agree_on_wiki_sample(wiki):
    docs_tokens = wiki.tokens[:400]
    queries_tokens = wiki.query_tokens[:15] + wiki.query_tokens[-5:]
    for variant in VARIANTS:
        index = BM25Index(docs_tokens, variant)
        expected = [bm25_scores_loop(q, docs_tokens, variant) for q in queries_tokens]
        np.testing.assert_allclose(index.scores(queries_tokens), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("variant", VARIANTS)
def test_top_k_is_exact(wiki, variant):
    # top_k skips documents with only common query terms; it must give exactly
    # what scoring everything and sorting (score descending, position ascending) gives.
    index = BM25Index(wiki.tokens, variant, negative_idf="epsilon" if variant == "okapi" else "zero")
    dense = index.scores(wiki.query_tokens)
    for k in (1, 10, 100):
        fast = index.top_k(wiki.query_tokens, k)
        full = index.top_k_exhaustive(wiki.query_tokens, k)
        for row, (positions, scores) in enumerate(fast):
            np.testing.assert_array_equal(positions, full[row][0])
            np.testing.assert_array_equal(scores, full[row][1])
            order = np.lexsort((np.arange(index.n_docs), -dense[row]))[:k]
            order = order[dense[row][order] > 0]
            np.testing.assert_array_equal(positions, order)
            np.testing.assert_allclose(scores, dense[row][order], rtol=1e-12)


# ---------------------------------------------------------------------------
# Against the reference libraries, on the full wiki corpus (title + text)
# ---------------------------------------------------------------------------


def test_okapi_with_epsilon_floor_equals_rank_bm25(wiki):
    reference = rank_bm25.BM25Okapi(wiki.tokens, k1=K1, b=B, epsilon=0.25)
    expected = np.array([reference.get_scores(q) for q in wiki.query_tokens])
    index = BM25Index(wiki.tokens, "okapi", K1, B, negative_idf="epsilon", epsilon=0.25)
    # Common words ("the", "of", "in", ...) have negative Robertson idf on this corpus:
    # the floor is what makes the two agree ...
    negative = idf(index.doc_freq, index.n_docs, "okapi") < 0
    assert negative.sum() >= 5
    np.testing.assert_allclose(index.idf[negative], 0.25 * reference.average_idf, rtol=1e-12)
    # ... and it makes "the" (in nearly every document) weigh more than the rarer terms
    # found in just under half of them.
    assert index.idf[index.vocab["the"]] > 5 * index.idf[~negative].min()
    np.testing.assert_allclose(index.scores(wiki.query_tokens), expected, rtol=1e-6, atol=1e-12)


def test_okapi_clipped_at_zero_equals_bm25s_robertson(wiki):
    # bm25s's "robertson" clips negative idf at 0 too, and leaves out Okapi's constant factor k1 + 1.
    model = bm25s_model(wiki.tokens, "robertson")
    expected = bm25s_scores(model, wiki.query_tokens, len(wiki.tokens)) * (K1 + 1)
    index = BM25Index(wiki.tokens, "okapi", K1, B, negative_idf="zero")
    np.testing.assert_allclose(index.scores(wiki.query_tokens), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", ["lucene", "atire"])
def test_lucene_and_atire_equal_bm25s(wiki, variant):
    model = bm25s_model(wiki.tokens, variant)
    index = BM25Index(wiki.tokens, variant, K1, B)
    expected = bm25s_scores(model, wiki.query_tokens, len(wiki.tokens))  # float32 in bm25s
    np.testing.assert_allclose(index.scores(wiki.query_tokens), expected, rtol=1e-5, atol=1e-6)


def test_lucene_top10_equals_bm25s(wiki):
    model = bm25s_model(wiki.tokens, "lucene")
    docs, scores = model.retrieve(wiki.query_tokens, k=10, show_progress=False, n_threads=0,
                                  backend_selection="numpy")
    retriever = BM25Retriever(wiki.docs, wiki.ids, "lucene", K1, B)
    searchable = [row for row, query in enumerate(wiki.queries) if query.strip()]  # "" is refused
    ours = retriever.search([wiki.queries[row] for row in searchable], k=10)
    for row, ranked in zip(searchable, ours):
        # bm25s fills its 10 places with zero-score documents; ragutils stops at the last match.
        reference = [(wiki.ids[d], float(s)) for d, s in zip(docs[row], scores[row]) if s > 0]
        assert_same_ranking_up_to_ties(ranked, reference, rtol=1e-5)
    assert sum(len(ranked) == 10 for ranked in ours) >= 190


@pytest.fixture(scope="module")
def tf_of_query_terms(wiki):
    """For 30 queries: tf(t, d) over all documents d, for each known query term t (every occurrence)."""
    index = BM25Index(wiki.tokens, "lucene")
    counts = index.term_counts
    return [[counts[[index.vocab[t]]].toarray()[0] for t in q if t in index.vocab]
            for q in wiki.query_tokens[:30]]


def test_bm25l_against_rank_bm25(wiki, tf_of_query_terms):
    # rank_bm25's BM25L multiplies each term's score by tf once more: it agrees with
    # BM25L (Lv and Zhai) where tf <= 1, and is tf times it in general.
    queries_tokens = wiki.query_tokens[:30]
    reference = rank_bm25.BM25L(wiki.tokens, k1=K1, b=B, delta=0.5)
    expected = np.array([reference.get_scores(q) for q in queries_tokens])
    index = BM25Index(wiki.tokens, "bm25l", K1, B, delta=0.5)
    np.testing.assert_allclose(index.idf, [reference.idf[t] for t in index.vocab], rtol=1e-12)
    ours = index.scores(queries_tokens)
    per_term = [[index.score_matrix[[index.vocab[t]]].toarray()[0] for t in q if t in index.vocab]
                for q in queries_tokens]
    tf_rows = tf_of_query_terms
    for row in range(len(queries_tokens)):
        times_tf = sum((tf * s for tf, s in zip(tf_rows[row], per_term[row])), np.zeros(index.n_docs))
        np.testing.assert_allclose(times_tf, expected[row], rtol=1e-9, atol=1e-12)
        at_most_once = np.all([tf <= 1 for tf in tf_rows[row]], axis=0) if tf_rows[row] else True
        np.testing.assert_allclose(ours[row][at_most_once], expected[row][at_most_once], rtol=1e-9)


def test_bm25plus_against_rank_bm25(wiki, tf_of_query_terms):
    # rank_bm25's BM25Plus gives delta x idf for a query term to *every* document,
    # also those without the term; ragutils (like Lv and Zhai) only to those with it.
    queries_tokens = wiki.query_tokens[:30]
    reference = rank_bm25.BM25Plus(wiki.tokens, k1=K1, b=B, delta=1.0)
    expected = np.array([reference.get_scores(q) for q in queries_tokens])
    index = BM25Index(wiki.tokens, "bm25+", K1, B, delta=1.0)
    ours = index.scores(queries_tokens)
    tf_rows = tf_of_query_terms
    for row, q in enumerate(queries_tokens):
        term_idf = [index.idf[index.vocab[t]] for t in q if t in index.vocab]
        bonus = sum((1.0 * w * (tf == 0) for w, tf in zip(term_idf, tf_rows[row])), np.zeros(index.n_docs))
        np.testing.assert_allclose(ours[row] + bonus, expected[row], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("variant, delta", [("bm25l", 0.5), ("bm25+", 1.0)])
def test_bm25l_and_bm25plus_against_bm25s(wiki, tf_of_query_terms, variant, delta):
    # bm25s also scores absent terms, at tf = 0: idf x (k1 + 1) delta / (k1 + delta)
    # for BM25L, idf x delta for BM25+. Same formulas otherwise.
    queries_tokens = wiki.query_tokens[:30]
    model = bm25s_model(wiki.tokens, variant, delta=delta)
    expected = bm25s_scores(model, queries_tokens, len(wiki.tokens))
    index = BM25Index(wiki.tokens, variant, K1, B, delta=delta)
    ours = index.scores(queries_tokens)
    absent_tfc = (K1 + 1) * delta / (K1 + delta) if variant == "bm25l" else delta
    tf_rows = tf_of_query_terms
    for row, q in enumerate(queries_tokens):
        term_idf = [index.idf[index.vocab[t]] for t in q if t in index.vocab]
        absent = sum((w * absent_tfc * (tf == 0) for w, tf in zip(term_idf, tf_rows[row])),
                     np.zeros(index.n_docs))
        np.testing.assert_allclose(ours[row] + absent, expected[row], rtol=1e-5, atol=1e-5)


def test_retriever_finds_articles_by_their_words(wiki):
    retriever = BM25Retriever(wiki.docs, wiki.ids)
    title_of = dict(zip(wiki.ids, wiki.titles))
    ranked = retriever.search(["Albert Einstein relativity physicist", "capital of Japan Tokyo"], k=3)
    assert title_of[ranked[0][0][0]] == "Albert Einstein"
    assert title_of[ranked[1][0][0]] == "Tokyo"
    assert all(isinstance(doc_id, str) and isinstance(score, float) for doc_id, score in ranked[0])


# ---------------------------------------------------------------------------
# Edge cases
# ---------------------------------------------------------------------------


def small_retriever(variant="lucene", **params) -> BM25Retriever:
    """A retriever over SMALL_DOCS with ids d0, d1, ..."""
    return BM25Retriever(SMALL_DOCS, [f"d{i}" for i in range(len(SMALL_DOCS))], variant, **params)


def test_empty_document_counts_but_is_never_found():
    tokens = tokenize_many(SMALL_DOCS)
    index = BM25Index(tokens, "okapi", negative_idf="epsilon")
    assert index.n_docs == 6 and index.avg_doc_len == pytest.approx(sum(map(len, tokens)) / 6)
    reference = rank_bm25.BM25Okapi(tokens)
    for query in SMALL_QUERIES:
        np.testing.assert_allclose(index.scores([tokenize(query)])[0], reference.get_scores(tokenize(query)),
                                   rtol=1e-12, atol=1e-15)
    for variant in VARIANTS:
        results = small_retriever(variant).search([q for q in SMALL_QUERIES if q], k=10)
        assert all(doc_id != "d1" for ranked in results for doc_id, _ in ranked)


def test_empty_query_and_unknown_terms_find_nothing():
    retriever = small_retriever()
    assert retriever.search(["zzz unknown words"], k=3) == [[]]
    assert retriever.search([], k=3) == []
    # A query without a word is the user's mistake, reported rather than answered with nothing.
    for empty in ["", "  ?! "]:
        with pytest.raises(CourseError, match="empty query"):
            retriever.search(["paris", empty], k=3)
    assert BM25Index(tokenize_many(SMALL_DOCS)).top_k([[]], k=3)[0][0].size == 0
    # Unknown words add nothing to the known ones.
    assert retriever.search(["paris zzz"], k=6) == retriever.search(["paris"], k=6)
    reference = rank_bm25.BM25Okapi(tokenize_many(SMALL_DOCS))
    np.testing.assert_array_equal(reference.get_scores(["paris", "zzz"]), reference.get_scores(["paris"]))


def test_repeated_query_terms_count_every_time():
    tokens = tokenize_many(SMALL_DOCS)
    for variant in VARIANTS:
        index = BM25Index(tokens, variant)
        once, twice = index.scores([["paris"], ["paris", "paris"]])
        np.testing.assert_array_equal(twice, 2 * once)
        assert bm25_scores_loop(["paris", "paris"], tokens, variant) == pytest.approx(list(2 * once))
    reference = rank_bm25.BM25Okapi(tokens)
    np.testing.assert_allclose(reference.get_scores(["paris", "paris"]), 2 * reference.get_scores(["paris"]))


def test_one_document_corpus():
    docs = ["Paris is the capital of France"]
    # Lucene's idf stays positive: the one document is found.
    (ranked,) = BM25Retriever(docs, ["only"], "lucene").search(["paris"], k=5)
    assert [doc_id for doc_id, _ in ranked] == ["only"] and ranked[0][1] > 0
    # Okapi's idf is ln(0.5 / 1.5) < 0 for every term: clipped to 0 nothing scores,
    # and with rank_bm25's floor the match scores below zero; neither is returned.
    for negative_idf in NEGATIVE_IDF_MODES:
        assert BM25Retriever(docs, ["only"], "okapi", negative_idf=negative_idf).search(["paris"]) == [[]]
    index = BM25Index(tokenize_many(docs), "okapi", negative_idf="keep")
    assert index.scores([["paris"]])[0, 0] < 0


def test_non_ascii_text():
    retriever = small_retriever()
    assert retriever.search(["ZÜRICH"], k=1)[0][0][0] == "d3"
    assert retriever.search(["東京"], k=1)[0][0][0] == "d3"
    assert retriever.search(["genève"], k=1)[0][0][0] == "d3"
    assert retriever.search(["geneve"], k=1) == [[]]  # no accent folding: a different word


def test_ties_are_broken_by_document_position():
    docs = ["red apple", "green apple", "red apple", "apple red", "pear"]
    retriever = BM25Retriever(docs, ["a", "b", "c", "d", "e"])
    (ranked,) = retriever.search(["red"], k=2)
    assert [doc_id for doc_id, _ in ranked] == ["a", "c"]
    (ranked,) = retriever.search(["red"], k=10)
    assert [doc_id for doc_id, _ in ranked] == ["a", "c", "d"]
    assert ranked[0][1] == ranked[1][1] == ranked[2][1]


def test_k_larger_than_corpus_and_corpus_of_empty_documents():
    assert len(small_retriever().search(["paris france the"], k=1000)[0]) == 4
    assert BM25Retriever(["", " "], ["a", "b"]).search(["anything"]) == [[]]


def test_empty_corpus_is_refused():
    with pytest.raises(CourseError, match="empty corpus"):
        BM25Index([])
    with pytest.raises(CourseError, match="empty corpus"):
        BM25Retriever([], [])
    with pytest.raises(CourseError, match="empty corpus"):
        bm25_scores_loop(["paris"], [])


@pytest.mark.parametrize("params, message", [
    ({"variant": "bm26"}, "unknown BM25 variant"),
    ({"variant": "lucene", "delta": 0.5}, "delta is a parameter of bm25l and bm25+"),
    ({"variant": "bm25+", "delta": -1.0}, "delta must be >= 0"),
    ({"b": 1.5}, "b must be between 0 and 1"),
    ({"k1": -0.1}, "k1 must be >= 0"),
    ({"negative_idf": "floor"}, "unknown negative_idf"),
])
def test_bad_parameters_are_refused(params, message):
    with pytest.raises(CourseError, match=message):
        small_retriever(**params)


def test_bad_search_calls_are_refused():
    retriever = small_retriever()
    with pytest.raises(CourseError, match="list of queries"):
        retriever.search("paris")
    for k in (0, -1, 2.5, True):
        with pytest.raises(CourseError, match="k must be"):
            retriever.search(["paris"], k=k)
    with pytest.raises(CourseError, match="one id per document"):
        BM25Retriever(["a", "b"], ["only"])
    with pytest.raises(CourseError, match="unique"):
        BM25Retriever(["a", "b"], ["x", "x"])
