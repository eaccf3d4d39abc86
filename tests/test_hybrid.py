"""ragutils.hybrid: reciprocal rank fusion by hand, ties, weights, depth, empty inputs, the hybrid retriever."""

import pytest

from ragutils.bm25 import BM25Retriever
from ragutils.errors import CourseError
from ragutils.hybrid import HybridRetriever, reciprocal_rank_fusion


def ranked(*doc_ids):
    """A ranked list with made-up, decreasing scores (RRF never looks at them)."""
    return [(doc_id, 10.0 - rank) for rank, doc_id in enumerate(doc_ids)]


def test_hand_computed_example():
    bm25 = [ranked("a", "b", "c")]
    dense = [ranked("b", "c", "d")]
    fused = reciprocal_rank_fusion([bm25, dense], k_rrf=60)
    expected = {
        "a": 1 / 61,
        "b": 1 / 62 + 1 / 61,
        "c": 1 / 63 + 1 / 62,
        "d": 1 / 63,
    }
    assert [doc for doc, _ in fused[0]] == ["b", "c", "a", "d"]
    for doc, score in fused[0]:
        assert score == pytest.approx(expected[doc], abs=1e-15)


def test_scores_are_ignored_only_ranks_count():
    a = [[("x", 1000.0), ("y", 999.0)]]
    b = [[("y", 0.9), ("x", -5.0)]]
    c = [[("x", 1.0), ("y", 0.5)]]
    d = [[("y", 7.0), ("x", 3.0)]]
    assert reciprocal_rank_fusion([a, b]) == reciprocal_rank_fusion([c, d])


def test_a_document_in_one_list_only():
    fused = reciprocal_rank_fusion([[ranked("a")], [ranked("b", "a")]], k_rrf=0)
    # k_rrf = 0: a = 1/1 + 1/2, b = 1/1
    assert fused == [[("a", 1.5), ("b", 1.0)]]


def test_ties_are_broken_by_best_rank_then_retriever_order():
    # x and y have the same ranks, swapped: exactly equal scores, both with best rank 1.
    fused = reciprocal_rank_fusion([[ranked("x", "y")], [ranked("y", "x")]])
    (first, s1), (second, s2) = fused[0]
    assert s1 == s2
    assert (first, second) == ("x", "y")  # x's rank 1 is in the first list
    fused = reciprocal_rank_fusion([[ranked("y", "x")], [ranked("x", "y")]])
    assert [doc for doc, _ in fused[0]] == ["y", "x"]
    # One list each, same rank: the earlier retriever's document first, whatever the ids.
    fused = reciprocal_rank_fusion([[ranked("b")], [ranked("a")]])
    assert [doc for doc, _ in fused[0]] == ["b", "a"]
    # Equal scores, different best ranks (k_rrf = 0): m at ranks (2, 2) scores 1/2 + 1/2,
    # as much as n and o at rank 1 of one list each; rank 1 beats rank 2.
    fused = reciprocal_rank_fusion([[ranked("n", "m")], [ranked("o", "m")]], k_rrf=0)
    assert fused == [[("n", 1.0), ("o", 1.0), ("m", 1.0)]]


def test_equal_contributions_in_any_order_tie_exactly():
    # Three lists: the same multiset of ranks in different orders must give equal sums.
    lists = [[ranked("a", "b", "c")], [ranked("b", "c", "a")], [ranked("c", "a", "b")]]
    fused = reciprocal_rank_fusion(lists, k_rrf=7)
    scores = [score for _, score in fused[0]]
    assert scores[0] == scores[1] == scores[2]
    assert [doc for doc, _ in fused[0]] == ["a", "b", "c"]  # best rank 1 in lists 0, 1, 2


def test_weights():
    bm25 = [ranked("a", "b")]
    dense = [ranked("b", "a")]
    fused = reciprocal_rank_fusion([bm25, dense], k_rrf=0, weights=[2.0, 1.0])
    assert fused == [[("a", 2.0 + 0.5), ("b", 1.0 + 1.0)]]
    # A weight of 0 switches a retriever off: its documents are not even candidates.
    only_dense = reciprocal_rank_fusion([[ranked("a", "c")], dense], weights=[0, 1])
    assert [doc for doc, _ in only_dense[0]] == ["b", "a"]


def test_depth_and_k():
    bm25 = [ranked("a", "b", "c", "d")]
    dense = [ranked("d", "c", "b", "a")]
    fused = reciprocal_rank_fusion([bm25, dense], k_rrf=0, depth=2)
    assert fused == [[("a", 1.0), ("d", 1.0), ("b", 0.5), ("c", 0.5)]]
    assert reciprocal_rank_fusion([bm25, dense], k_rrf=0, depth=2, k=1) == [[("a", 1.0)]]


def test_a_duplicate_counts_once_at_its_first_place():
    fused = reciprocal_rank_fusion([[ranked("a", "b", "a")]], k_rrf=0)
    assert fused == [[("a", 1.0), ("b", 0.5)]]
    # Ranks count distinct documents: b moves up to rank 2, c to rank 3.
    fused = reciprocal_rank_fusion([[ranked("a", "a", "b", "c")]], k_rrf=0)
    assert fused == [[("a", 1.0), ("b", 0.5), ("c", 1 / 3)]]


def test_several_queries_are_fused_independently():
    bm25 = [ranked("a", "b"), ranked("c")]
    dense = [ranked("b"), ranked("d", "c")]
    fused = reciprocal_rank_fusion([bm25, dense], k_rrf=0)
    assert [[doc for doc, _ in row] for row in fused] == [["b", "a"], ["c", "d"]]


def test_empty_inputs():
    assert reciprocal_rank_fusion([[[]], [[]]]) == [[]]  # a query nobody found anything for
    assert reciprocal_rank_fusion([[[]], [ranked("a")]]) == [[("a", 1 / 61)]]
    assert reciprocal_rank_fusion([[], []]) == []  # no queries
    with pytest.raises(CourseError, match="at least one ranking"):
        reciprocal_rank_fusion([])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k_rrf": -1}, "k_rrf"),
        ({"k_rrf": float("nan")}, "k_rrf"),
        ({"k_rrf": True}, "k_rrf"),
        ({"depth": 0}, "depth"),
        ({"depth": 2.5}, "depth"),
        ({"k": 0}, "k must"),
        ({"weights": [1.0]}, "one weight per retriever"),
        ({"weights": [1.0, -1.0]}, ">= 0"),
        ({"weights": [0, 0]}, "at least one weight"),
    ],
)
def test_bad_parameters_are_clear_errors(kwargs, message):
    with pytest.raises(CourseError, match=message):
        reciprocal_rank_fusion([[ranked("a")], [ranked("b")]], **kwargs)


def test_rankings_for_different_numbers_of_queries_are_refused():
    with pytest.raises(CourseError, match="same queries"):
        reciprocal_rank_fusion([[ranked("a")], [ranked("a"), ranked("b")]])


class FixedRetriever:
    """A retriever that returns fixed lists and remembers the k it was asked for."""

    def __init__(self, lists):
        self.lists = lists
        self.asked = []

    def search(self, queries, k):
        self.asked.append(k)
        return [self.lists[query][:k] for query in queries]


def test_hybrid_retriever_asks_for_depth_and_returns_k():
    bm25 = FixedRetriever({"q": ranked("a", "b", "c", "d")})
    dense = FixedRetriever({"q": ranked("d", "c", "b", "a")})
    hybrid = HybridRetriever([bm25, dense], k_rrf=0, depth=2)
    assert hybrid.search(["q"], k=3) == [[("a", 1.0), ("d", 1.0), ("b", 0.5)]]
    assert bm25.asked == dense.asked == [2]
    assert "depth=2" in repr(hybrid)


def test_hybrid_of_one_retriever_keeps_its_order():
    docs = ["the cat sat", "a dog barked at the cat", "cats and dogs", "birds sing"]
    bm25 = BM25Retriever(docs, ["d0", "d1", "d2", "d3"])
    queries = ["cat", "dog cat", "birds"]
    expected = [[doc for doc, _ in row] for row in bm25.search(queries, 3)]
    for retrievers in ([bm25], [bm25, bm25]):
        fused = HybridRetriever(retrievers, depth=10).search(queries, 3)
        assert [[doc for doc, _ in row] for row in fused] == expected


def test_hybrid_retriever_errors():
    with pytest.raises(CourseError, match="at least one retriever"):
        HybridRetriever([])
    with pytest.raises(CourseError, match="search"):
        HybridRetriever([object()])
    with pytest.raises(CourseError, match="depth"):
        HybridRetriever([FixedRetriever({})], depth=0)
    with pytest.raises(CourseError, match="one weight per retriever"):
        HybridRetriever([FixedRetriever({})], weights=[1, 2])
    with pytest.raises(CourseError, match="k_rrf"):
        HybridRetriever([FixedRetriever({})], k_rrf=-5)
    hybrid = HybridRetriever([FixedRetriever({"q": ranked("a")})])
    with pytest.raises(CourseError, match="wrap a single query"):
        hybrid.search("q", 1)
    with pytest.raises(CourseError, match="k must"):
        hybrid.search(["q"], 0)
