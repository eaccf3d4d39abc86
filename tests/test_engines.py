"""ragutils.engines: tantivy behind the retriever interface, checked against the Lucene variant of ragutils.bm25."""

import numpy as np
import pytest
from scipy import sparse

from ragutils import data
from ragutils.bm25 import BM25Retriever, top_k_of
from ragutils.engines import (
    FIELDNORM_TABLE,
    FINGERPRINT_FILE,
    K1,
    TantivyRetriever,
    course_analyzer,
    default_analyzer,
    fieldnorm_code,
    stored_length,
)
from ragutils.errors import CourseError
from ragutils.text import tokenize, tokenize_many

# Every document has at most 40 tokens, so tantivy stores its length exactly.
TINY = [
    "The cat sat on the mat.",
    "A dog chased the cat around the garden, and the cat ran up a tree.",
    "Dogs and cats are popular pets; a dog is loyal.",
    "Birds sing in the morning.",
    "The C++ programming language and the C language.",
    "Paris is the capital of France. Paris has the Louvre.",
    "A cat, a cat, a cat: three cats in a row.",
    "Ice cream in Paris",
]
TINY_IDS = [f"t{i}" for i in range(len(TINY))]
TINY_QUERIES = ["cat", "dog cat", "paris louvre", "C++ language", "birds morning sing", "the", "cats pets",
                "cat cat tree"]


@pytest.fixture(scope="module")
def tiny():
    return TantivyRetriever(TINY, TINY_IDS)


@pytest.fixture(scope="module")
def wiki():
    ids, _, passages = data.wiki_passages()
    queries = data.load_split("retrieval")["test"]["query"]
    return ids, passages, queries


@pytest.fixture(scope="module")
def wiki_engines(wiki):
    ids, passages, _ = wiki
    lucene = BM25Retriever(passages, ids, variant="lucene", k1=1.2, b=0.75)
    return TantivyRetriever(passages, ids), lucene


# --- tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "Hello, World!", "foo_bar baz-qux", "C++ and C#", "Zürich naïve 東京", "x² ½ Ⅻ", "İzmir ΟΔΥΣΣΕΥΣ",
    "اَلْفُصْحَىٰ", "don't stop", "a" * 60, "",
])
def test_course_analyzer_matches_tokenize(text):
    assert course_analyzer().analyze(text.lower()) == tokenize(text)


def test_course_analyzer_matches_tokenize_on_the_whole_corpus(wiki):
    _, passages, _ = wiki
    analyzer = course_analyzer()
    different = [text[:60] for text in passages if analyzer.analyze(text.lower()) != tokenize(text)]
    assert different == []


def test_tantivy_default_analyzer_differs_from_ours():
    default = default_analyzer()
    assert default.analyze("foo_bar") == ["foo", "bar"]  # the underscore splits
    assert default.analyze("a" * 41 + " b") == ["b"]  # tokens over 40 bytes are dropped
    assert tokenize("foo_bar") == ["foo_bar"]


# --- field norms -----------------------------------------------------------------------


def test_fieldnorm_table():
    assert FIELDNORM_TABLE.shape == (256,)
    assert np.all(np.diff(FIELDNORM_TABLE) > 0)
    assert FIELDNORM_TABLE[:41].tolist() == list(range(41))
    assert FIELDNORM_TABLE[41:50].tolist() == [42, 44, 46, 48, 50, 52, 54, 56, 60]
    assert FIELDNORM_TABLE[-1] == 2013265944
    assert stored_length([0, 40, 41, 42, 57, 59, 60, 100, 311]).tolist() == [0, 40, 40, 42, 56, 56, 60, 96, 280]
    assert fieldnorm_code([0, 40, 41, 2**40]).tolist() == [0, 40, 40, 255]
    with pytest.raises(CourseError):
        fieldnorm_code([-1])


# --- search ------------------------------------------------------------------------------


def test_tiny_corpus_same_ranking_and_scores_as_lucene_bm25(tiny):
    assert max(len(tokenize(doc)) for doc in TINY) <= 40  # lengths are stored exactly
    lucene = BM25Retriever(TINY, TINY_IDS, variant="lucene", k1=1.2, b=0.75)
    for ours, theirs in zip(tiny.search(TINY_QUERIES, 10), lucene.search(TINY_QUERIES, 10)):
        assert [doc for doc, _ in ours] == [doc for doc, _ in theirs]
        # Tantivy multiplies by (k1 + 1) and computes in float32.
        assert [score for _, score in ours] == pytest.approx([(K1 + 1) * s for _, s in theirs], rel=1e-5)


def test_a_repeated_query_word_counts_twice(tiny):
    [[once]], [[twice]] = tiny.search(["tree"], 1), tiny.search(["tree tree"], 1)
    assert twice[0] == once[0]
    assert twice[1] == pytest.approx(2 * once[1], rel=1e-6)


def test_ties_come_out_in_corpus_order():
    engine = TantivyRetriever(["same words", "other", "same words", "same words"], ["a", "b", "c", "d"])
    assert [doc for doc, _ in engine.search(["same"], 2)[0]] == ["a", "c"]
    assert [doc for doc, _ in engine.search(["same"], 3)[0]] == ["a", "c", "d"]


@pytest.mark.parametrize("query", ['C++ "foo', "AND", "OR NOT", "title:cat", "(cat OR", "-cat +dog", "cat^2",
                                   "cat*", "doc_id:t1", "[a TO z]", "cat\\"])
def test_query_syntax_is_plain_text(tiny, query):
    results = tiny.search([query], 5)[0]
    assert results == tiny.search([" ".join(tokenize(query))], 5)[0]


def test_special_characters_do_not_break_search(tiny):
    assert [doc for doc, _ in tiny.search(['C++ "foo'], 1)[0]] == ["t4"]
    assert tiny.search(["AND"], 3) == tiny.search(["and"], 3)


@pytest.mark.parametrize("query", ["", "   ", "?!", '"', "++"])
def test_a_query_without_words_is_a_course_error(tiny, query):
    with pytest.raises(CourseError, match="empty query"):
        tiny.search(["cat", query], 3)


def test_no_match_is_an_empty_list(tiny):
    assert tiny.search(["zebra"], 5) == [[]]


def test_search_input_errors(tiny):
    with pytest.raises(CourseError, match="wrap a single query"):
        tiny.search("cat", 3)
    for k in (0, -1, 2.5, True):
        with pytest.raises(CourseError, match="k must"):
            tiny.search(["cat"], k)
    assert tiny.search([], 3) == []


def test_construction_errors():
    with pytest.raises(CourseError, match="one id per document"):
        TantivyRetriever(["a", "b"], ["x"])
    with pytest.raises(CourseError, match="unique"):
        TantivyRetriever(["a", "b"], ["x", "x"])
    with pytest.raises(CourseError, match="empty corpus"):
        TantivyRetriever([], [])
    with pytest.raises(CourseError, match="not one string"):
        TantivyRetriever("a text", ["x"])


def test_explain_shows_the_stored_length(tiny):
    explanation = tiny.explain("cat", "t1")
    (_, score), = [hit for hit in tiny.search(["cat"], 10)[0] if hit[0] == "t1"]
    assert explanation["value"] == pytest.approx(score, rel=1e-6)
    text = str(explanation)
    assert "dl, length of field" in text and "avgdl" in text
    with pytest.raises(CourseError, match="shares no word"):
        tiny.explain("cat", "t3")
    with pytest.raises(CourseError, match="unknown document"):
        tiny.explain("cat", "nope")


# --- on disk -----------------------------------------------------------------------------


def test_on_disk_index_is_reused_and_rebuilt_when_the_docs_change(tmp_path, tiny):
    folder = tmp_path / "index"
    first = TantivyRetriever(TINY, TINY_IDS, index_dir=folder)
    assert not first.reused and (folder / FINGERPRINT_FILE).is_file()
    again = TantivyRetriever(TINY, TINY_IDS, index_dir=folder)
    assert again.reused
    assert again.search(TINY_QUERIES, 5) == tiny.search(TINY_QUERIES, 5)
    changed = TantivyRetriever(TINY[:3], TINY_IDS[:3], index_dir=folder)
    assert not changed.reused
    assert changed.search(["bird"], 5) == [[]]


def test_a_foreign_folder_is_never_overwritten(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CourseError, match="not empty"):
        TantivyRetriever(TINY, TINY_IDS, index_dir=tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


# --- the wiki corpus: agreement with ragutils.bm25 ------------------------------------------


def overlap_at_10(a, b):
    """Mean share of b's top 10 that a also has."""
    return float(np.mean([len({d for d, _ in x} & {d for d, _ in y}) / max(1, len(y)) for x, y in zip(a, b)]))


def test_top10_agreement_with_lucene_bm25_on_the_test_queries(wiki, wiki_engines):
    _, _, queries = wiki
    engine, lucene = wiki_engines
    # Measured: 0.981 on the 931 test queries (tantivy 0.27); lossy lengths explain the rest.
    assert overlap_at_10(engine.search(queries, 10), lucene.search(queries, 10)) >= 0.97


def test_with_tantivys_stored_lengths_the_lucene_top10_is_identical(wiki, wiki_engines):
    ids, _, queries = wiki
    queries = queries[:300]
    engine, lucene = wiki_engines
    index = lucene.index
    # The Lucene formula again, with each length replaced by the one tantivy stores.
    counts = index.term_counts
    norm = K1 * (1 - 0.75 + 0.75 * stored_length(index.doc_len)[counts.indices] / index.avg_doc_len)
    values = np.repeat(index.idf, index.doc_freq) * counts.data / (counts.data + norm)
    scores = index.query_matrix(tokenize_many(queries)) @ sparse.csr_array((values, counts.indices, counts.indptr),
                                                                          shape=counts.shape)
    expected = []
    for row in range(scores.shape[0]):
        start, end = scores.indptr[row], scores.indptr[row + 1]
        positions, _ = top_k_of(scores.indices[start:end], scores.data[start:end], 10)
        expected.append([ids[p] for p in positions])
    assert [[doc for doc, _ in row] for row in engine.search(queries, 10)] == expected
