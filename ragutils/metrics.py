"""Metrics of the course: retrieval (recall@k, MRR, nDCG) and answers (exact match, token F1, BLEU, ROUGE).

Retrieval metrics take, per query, the ranked list of retrieved document ids and
the set of relevant ids. Answer metrics follow the SQuAD convention: compare
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
    """Mean over queries of the share of relevant documents found in the top k."""
    _check_same_length(ranked, relevant)
    total = 0.0
    for docs, wanted in zip(ranked, relevant):
        wanted = set(wanted)
        total += len(wanted.intersection(docs[:k])) / len(wanted) if wanted else 0.0
    return total / len(ranked)


def mrr(ranked: Sequence[Sequence[str]], relevant: Sequence[Iterable[str]], k: int | None = None) -> float:
    """Mean reciprocal rank of the first relevant document (0 when none is in the top k)."""
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
    """Mean normalised discounted cumulative gain at k, with binary relevance."""
    _check_same_length(ranked, relevant)
    total = 0.0
    for docs, wanted in zip(ranked, relevant):
        wanted = set(wanted)
        # A relevant document at rank r adds 1 / log2(r + 1); the ideal ranking puts all first.
        gain = sum(1.0 / math.log2(rank + 1) for rank, doc in enumerate(docs[:k], start=1) if doc in wanted)
        ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(wanted), k) + 1))
        total += gain / ideal if ideal else 0.0
    return total / len(ranked)


# --- answers ---------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse white space (SQuAD)."""
    text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised reference answer, else 0.0."""
    if not answers:
        raise CourseError("exact match needs at least one reference answer")
    predicted = normalize_answer(prediction)
    return float(any(predicted == normalize_answer(answer) for answer in answers))


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """The best harmonic mean of token precision and recall against the reference answers."""
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


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0–100) of predictions against one reference each, via sacrebleu."""
    import sacrebleu

    _check_same_length(predictions, references)
    return sacrebleu.corpus_bleu(list(predictions), [list(references)]).score


def rouge(predictions: Sequence[str], references: Sequence[str],
          kinds: Sequence[str] = ("rouge1", "rouge2", "rougeL")) -> dict[str, float]:
    """Mean ROUGE F-measures (0–1) of predictions against one reference each, via rouge-score."""
    from rouge_score import rouge_scorer

    _check_same_length(predictions, references)
    scorer = rouge_scorer.RougeScorer(list(kinds), use_stemmer=True)
    totals = Counter()
    for prediction, reference in zip(predictions, references):
        for kind, score in scorer.score(reference, prediction).items():
            totals[kind] += score.fmeasure
    return {kind: totals[kind] / len(predictions) for kind in kinds}
