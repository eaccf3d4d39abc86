"""Metrics of the course: retrieval (recall@k, MRR, nDCG) and answers (exact match, token F1, BLEU, ROUGE).

Retrieval metrics take, per query, the ranked list of retrieved document ids and
the set of relevant ids; `retrieval_scores` gathers them under the one set of names
("recall@10", "MRR", "nDCG@10") that every table of the course uses. Answer metrics follow the SQuAD convention: compare
normalised strings (lower case, no punctuation, no articles, single spaces) and
take the best score over the reference answers.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

from .errors import CourseError

# --- retrieval ------------------------------------------------------------------------


def _check_same_length(ranked: Sequence, relevant: Sequence) -> None:
    """Refuse to average over queries that do not line up."""
    if len(ranked) != len(relevant):
        raise CourseError(f"{len(ranked)} ranked lists for {len(relevant)} sets of relevant documents")
    if not ranked:
        raise CourseError("no queries to evaluate")


def recall_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[Iterable[str]], k: int) -> float:
    """Mean over queries of the share of relevant documents found in the top k. Derived in notebook 02, section 9."""
    _check_same_length(ranked, relevant)
    total = 0.0
    for docs, wanted in zip(ranked, relevant):
        wanted = set(wanted)
        total += len(wanted.intersection(docs[:k])) / len(wanted) if wanted else 0.0
    return total / len(ranked)


def mrr(ranked: Sequence[Sequence[str]], relevant: Sequence[Iterable[str]], k: int | None = None) -> float:
    """Mean reciprocal rank of the first relevant document (0 when none is in the top k).

    Derived in notebook 02, section 9.
    """
    _check_same_length(ranked, relevant)
    total = 0.0
    for docs, wanted in zip(ranked, relevant):
        wanted = set(wanted)
        for rank, doc in enumerate(docs[:k] if k else docs, start=1):
            if doc in wanted:
                total += 1.0 / rank
                break
    return total / len(ranked)


def ndcg_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[Iterable[str]], k: int = 10) -> float:
    """Mean normalised discounted cumulative gain at k, with binary relevance. Derived in notebook 04, section 1."""
    _check_same_length(ranked, relevant)
    total = 0.0
    for docs, wanted in zip(ranked, relevant):
        wanted = set(wanted)
        # A relevant document at rank r adds 1 / log2(r + 1); the ideal ranking puts all first.
        gain = sum(1.0 / math.log2(rank + 1) for rank, doc in enumerate(docs[:k], start=1) if doc in wanted)
        ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(wanted), k) + 1))
        total += gain / ideal if ideal else 0.0
    return total / len(ranked)


def retrieval_scores(ranked: Sequence[Sequence[str]], relevant: Sequence[Iterable[str]],
                     ks: Sequence[int] = (1, 10), ndcg_k: int | None = 10) -> dict[str, float]:
    """The course's retrieval table row: "recall@k" for each k in ks, "MRR", then "nDCG@{ndcg_k}" unless None.

    Used in notebook 02.
    """
    # MRR has no cut-off (as trec_eval's recip_rank): it reads as deep as the ranked lists go.
    scores = {f"recall@{k}": recall_at_k(ranked, relevant, k) for k in ks}
    scores["MRR"] = mrr(ranked, relevant)
    if ndcg_k is not None:
        scores[f"nDCG@{ndcg_k}"] = ndcg_at_k(ranked, relevant, ndcg_k)
    return scores


# --- answers ---------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse white space (SQuAD).

    Derived in notebook 07, section 1.
    """
    text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised reference answer, else 0.0.

    Derived in notebook 07, section 7.
    """
    if not answers:
        raise CourseError("exact match needs at least one reference answer")
    predicted = normalize_answer(prediction)
    return float(any(predicted == normalize_answer(answer) for answer in answers))


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """The best harmonic mean of token precision and recall against the reference answers.

    Used in notebook 11, section 1.
    """
    if not answers:
        raise CourseError("token F1 needs at least one reference answer")
    predicted = normalize_answer(prediction).split()
    best = 0.0
    for answer in answers:
        reference = normalize_answer(answer).split()
        if not predicted or not reference:
            best = max(best, float(predicted == reference))
            continue
        common = sum((Counter(predicted) & Counter(reference)).values())
        if common:
            precision, recall = common / len(predicted), common / len(reference)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def mean_answer_scores(predictions: Sequence[str], aliases: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean exact match ("EM") and token F1 ("F1") of answers, each against its question's aliases.

    Used in notebook 07.
    """
    if len(predictions) != len(aliases):
        raise CourseError(f"{len(predictions)} answers for {len(aliases)} lists of aliases")
    if not predictions:
        raise CourseError("no answers to score")
    return {"EM": sum(map(exact_match, predictions, aliases)) / len(predictions),
            "F1": sum(map(token_f1, predictions, aliases)) / len(predictions)}


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0–100) of predictions against one reference each, via sacrebleu. Used in notebook 13, section 1."""
    import sacrebleu

    _check_same_length(predictions, references)
    return sacrebleu.corpus_bleu(list(predictions), [list(references)]).score


def rouge(predictions: Sequence[str], references: Sequence[str],
          kinds: Sequence[str] = ("rouge1", "rouge2", "rougeL")) -> dict[str, float]:
    """Mean ROUGE F-measures (0–1) of predictions against one reference each, via rouge-score.

    Used in notebook 06, section 8.
    """
    from rouge_score import rouge_scorer

    _check_same_length(predictions, references)
    scorer = rouge_scorer.RougeScorer(list(kinds), use_stemmer=True)
    totals = Counter()
    for prediction, reference in zip(predictions, references):
        for kind, score in scorer.score(reference, prediction).items():
            totals[kind] += score.fmeasure
    return {kind: totals[kind] / len(predictions) for kind in kinds}


# --- rankings compared -------------------------------------------------------------------


def same_ranking(
    positions: Sequence[int], scores: Sequence[float], other_positions: Sequence[int],
    other_scores: Sequence[float], rtol: float = 1e-5,
) -> bool:
    """Whether two ranked lists agree: same scores (to rtol), same documents but for the order of ties.

    Used in notebook 02.
    """
    import numpy as np  # only here: the rest of the module is plain Python

    if len(positions) != len(other_positions) or not np.allclose(scores, other_scores, rtol=rtol, atol=0):
        return False
    # Walk through groups of equal scores: each must hold the same documents, except
    # the last, whose ties may go on past k and be cut differently.
    start = 0
    while start < len(positions):
        end = start + 1
        while end < len(positions) and abs(scores[end] - scores[start]) <= rtol * abs(scores[start]):
            end += 1
        if end < len(positions) and set(positions[start:end]) != set(other_positions[start:end]):
            return False
        start = end
    return True
