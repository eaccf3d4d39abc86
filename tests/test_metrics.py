"""ragutils.metrics against hand-computed values and reference libraries."""

import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from ragutils import metrics
from ragutils.errors import CourseError

RANKED = [["d3", "d1", "d7"], ["d2", "d9", "d4"], ["d5", "d6", "d8"]]
RELEVANT = [{"d1"}, {"d4", "d2"}, {"d0"}]


def test_recall_at_k_by_hand():
    # query 1 finds d1 at rank 2; query 2 finds both by rank 3, one by rank 1; query 3 none.
    assert metrics.recall_at_k(RANKED, RELEVANT, 1) == pytest.approx((0 + 0.5 + 0) / 3)
    assert metrics.recall_at_k(RANKED, RELEVANT, 3) == pytest.approx((1 + 1 + 0) / 3)


def test_mrr_by_hand():
    assert metrics.mrr(RANKED, RELEVANT) == pytest.approx((1 / 2 + 1 / 1 + 0) / 3)
    assert metrics.mrr(RANKED, RELEVANT, k=1) == pytest.approx((0 + 1 + 0) / 3)


def test_ndcg_by_hand_and_against_sklearn():
    # query 2: relevant at ranks 1 and 3; ideal puts them at ranks 1 and 2.
    expected_q2 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert metrics.ndcg_at_k(RANKED[1:2], RELEVANT[1:2], k=3) == pytest.approx(expected_q2)
    docs = ["d2", "d9", "d4", "d1", "d0"]
    truth = np.array([[1, 0, 1, 0, 0]])
    scores = np.array([[5, 4, 3, 2, 1]])  # the ranking of RANKED[1] followed by the rest
    assert metrics.ndcg_at_k([docs], [{"d2", "d4"}], k=3) == pytest.approx(ndcg_score(truth, scores, k=3))


def test_retrieval_scores_name_each_metric_once():
    scores = metrics.retrieval_scores(RANKED, RELEVANT, ks=(1, 3), ndcg_k=3)
    assert list(scores) == ["recall@1", "recall@3", "MRR", "nDCG@3"]
    assert scores == {"recall@1": metrics.recall_at_k(RANKED, RELEVANT, 1),
                      "recall@3": metrics.recall_at_k(RANKED, RELEVANT, 3),
                      "MRR": metrics.mrr(RANKED, RELEVANT), "nDCG@3": metrics.ndcg_at_k(RANKED, RELEVANT, 3)}
    assert list(metrics.retrieval_scores(RANKED, RELEVANT)) == ["recall@1", "recall@10", "MRR", "nDCG@10"]
    assert list(metrics.retrieval_scores(RANKED, RELEVANT, ks=(5,), ndcg_k=None)) == ["recall@5", "MRR"]


def test_mrr_of_retrieval_scores_reads_the_whole_ranking():
    deep = [["d9"] * 9 + ["d1"]]  # the relevant document at rank 10
    assert metrics.retrieval_scores(deep, [{"d1"}], ks=(1,))["MRR"] == pytest.approx(0.1)


def test_retrieval_metrics_refuse_mismatched_or_empty_input():
    with pytest.raises(CourseError, match="2 ranked lists for 3"):
        metrics.recall_at_k(RANKED[:2], RELEVANT, 1)
    with pytest.raises(CourseError, match="no queries"):
        metrics.mrr([], [])


@pytest.mark.parametrize("text, normal", [
    ("The Eiffel Tower!", "eiffel tower"),
    ("  an   apple, a day ", "apple day"),
    ("Théâtre", "théâtre"),
    ("", ""),
])
def test_normalize_answer(text, normal):
    assert metrics.normalize_answer(text) == normal


def test_exact_match_and_f1_by_hand():
    assert metrics.exact_match("the Paris", ["Paris", "City of Light"]) == 1.0
    assert metrics.exact_match("Paris, France", ["Paris"]) == 0.0
    # prediction tokens {paris, france}, reference {paris}: P = 1/2, R = 1, F1 = 2/3
    assert metrics.token_f1("Paris, France", ["Paris"]) == pytest.approx(2 / 3)
    assert metrics.token_f1("London", ["Paris"]) == 0.0
    assert metrics.token_f1("the", ["a"]) == 1.0  # both normalise to nothing
    with pytest.raises(CourseError):
        metrics.exact_match("x", [])


def test_bleu_and_rouge_match_their_libraries():
    import sacrebleu
    from rouge_score import rouge_scorer

    predictions = ["the cat sat on the mat", "a quick brown fox"]
    references = ["the cat is on the mat", "the quick brown fox jumps"]
    assert metrics.bleu(predictions, references) == pytest.approx(
        sacrebleu.corpus_bleu(predictions, [references]).score)
    assert metrics.bleu(references, references) == pytest.approx(100.0)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    expected = np.mean([scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references)])
    assert metrics.rouge(predictions, references, kinds=("rougeL",))["rougeL"] == pytest.approx(expected)
