"""The extractive reader: the encoder with a start/end head reads the answer out of the passages as a span.

A span reader (the reader of BERT on SQuAD and of DPR) scores every token of a
passage twice: how likely the answer starts there, and how likely it ends there.
The answer is the best-scoring span, so it is always a piece of a passage, and it
cites that passage by construction. This module keeps the pieces that notebook 15
derives:

- ``qa_features``: (question, passage) pairs as model windows: a long passage is cut
  into overlapping windows (a stride), each token keeps its character offsets, and a
  known answer becomes its start and end token (or token 0, [CLS], when a window does
  not hold it: the "null" target);
- ``span_loss``: the training loss, written out (the mean of the start and end
  cross-entropies): the one ``AutoModelForQuestionAnswering`` computes;
- ``best_spans``: n-best decoding of one window: every span with start <= end, inside
  the passage, at most ``max_answer_tokens`` long, scored start logit + end logit,
  beside the window's null score (the score of the empty answer at [CLS]);
  ``sentence_bounds``: the sentence an answer came from;
- ``SpanReader`` / ``ReadAnswer``: batched reading of the top-k passages of many
  questions, spans ranked across passages, with abstention ("not in the passages");
- ``reading_scores``: EM, F1 and the abstention rate of a list of answers.

Training the head is in ``reader_training``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .errors import CourseError
from .metrics import mean_answer_scores
from .text import split_sentences

if TYPE_CHECKING:  # imported where they are used: `import ragutils.reader` stays fast
    import torch

NOT_IN_PASSAGES = "not in the passages"  # what the reader says when it abstains
MAX_QUESTION_TOKENS = 64  # a question is never longer; a longer one is cut so that the passage fits
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Abstain when the best span beats the empty answer by less than this (see SpanReader). Chosen on
# fact-QA dev (README, "Reading"): at 0 the reader abstained on 39% of answerable questions read
# from their own article; at -2, on 27%, and still on 72% of the unanswerable ones.
NULL_THRESHOLD = -2.0


# --- windows, offsets and labels --------------------------------------------------------------

def _checked_text(value: Any, what: str) -> str:
    """A question or passage as a non-blank string, or CourseError in one line."""
    if not isinstance(value, str):
        raise CourseError(f"a {what} must be text, not {type(value).__name__}")
    if not value.strip():
        raise CourseError(f"empty {what}: the reader needs {'a question' if what == 'question' else 'passage text'}")
    return value


def _fit_questions(tokenizer: Any, questions: Sequence[str], budget: int) -> list[str]:
    """The questions, each cut after its ``budget``-th token (with a warning) so the passage still fits."""
    pieces = tokenizer(list(questions), add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    fitted = []
    for question, offsets in zip(questions, pieces):
        if len(offsets) > budget:
            warnings.warn(f"question cut from {len(offsets)} to {budget} tokens", stacklevel=3)
            question = question[:offsets[budget - 1][1]]
        fitted.append(question)
    return fitted


def qa_features(tokenizer: Any, questions: Sequence[str], contexts: Sequence[str],
                answers: Sequence[tuple[str, int] | None] | None = None, max_length: int = 256,
                stride: int = 64) -> dict[str, list]:
    """Tokenise (question, context) pairs into model windows, labelled with the answer's tokens if given.

    A context longer than a window is cut into several, each sharing ``stride`` tokens
    with the one before, so an answer cut by one window's edge is whole in the next.
    Returns lists, one item per window: the model inputs, ``example`` (the pair it came
    from), ``offset_mapping`` (each token's (start, end) characters in its context, or
    None for the question's and the special tokens: the reader may only answer from
    the context) and, with ``answers`` ((text, character start) or None per pair),
    ``start_positions`` / ``end_positions``: the answer's first and last token, or 0
    ([CLS], the null answer) when the window does not hold the whole answer.

    Derived in notebook 15, section 2.
    """
    questions = [_checked_text(q, "question") for q in questions]
    contexts = [_checked_text(c, "passage") for c in contexts]
    if len(questions) != len(contexts) or (answers is not None and len(answers) != len(questions)):
        raise CourseError(f"{len(questions)} questions, {len(contexts)} contexts"
                          + ("" if answers is None else f" and {len(answers)} answers") + ": they must pair up")
    if not questions:
        raise CourseError("no questions to read")
    if not 0 < stride < max_length // 2:
        raise CourseError(f"stride must be between 1 and half of max_length ({max_length}), not {stride}")
    # The question, [CLS] and two [SEP] must leave more context tokens than the stride.
    questions = _fit_questions(tokenizer, questions, min(MAX_QUESTION_TOKENS, max_length - stride - 4))
    encoded = tokenizer(questions, contexts, truncation="only_second", max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
    features = {key: encoded[key] for key in MODEL_INPUTS if key in encoded}
    features["example"] = list(encoded["overflow_to_sample_mapping"])
    features["offset_mapping"] = [
        [tuple(offset) if sequence == 1 else None for offset, sequence in zip(offsets, encoded.sequence_ids(i))]
        for i, offsets in enumerate(encoded["offset_mapping"])]
    if answers is not None:
        spans = [_checked_answer(answer, contexts[i]) for i, answer in enumerate(answers)]
        labels = [_token_span(offsets, spans[example])
                  for offsets, example in zip(features["offset_mapping"], features["example"])]
        features["start_positions"] = [start for start, _ in labels]
        features["end_positions"] = [end for _, end in labels]
    return features


def _checked_answer(answer: tuple[str, int] | None, context: str) -> tuple[int, int] | None:
    """The answer's (start, end) characters in its context; CourseError if it is not there."""
    if answer is None:
        return None
    text, start = answer
    if not text or context[start:start + len(text)] != text:
        raise CourseError(f"answer {text!r} is not at character {start} of its passage")
    return start, start + len(text)


def _token_span(offsets: Sequence[tuple[int, int] | None], span: tuple[int, int] | None) -> tuple[int, int]:
    """The first and last token of a character span in one window, or (0, 0) if the window lacks part of it."""
    inside = [i for i, offset in enumerate(offsets) if offset is not None]
    if span is None or not inside:
        return 0, 0
    start, end = span
    if offsets[inside[0]][0] > start or offsets[inside[-1]][1] < end:
        return 0, 0
    first = next(i for i in inside if offsets[i][1] > start)  # the token the answer starts in
    last = next(i for i in reversed(inside) if offsets[i][0] < end)  # the token it ends in
    return first, last


# --- the loss ---------------------------------------------------------------------------------

def span_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, start_positions: torch.Tensor,
              end_positions: torch.Tensor) -> torch.Tensor:
    """The span loss: the mean of two cross-entropies, picking the start token and picking the end token.

    Logits are (batch, tokens); positions are token indices (0, [CLS], for no answer).
    A position past the last token is ignored, as transformers does.

    Derived in notebook 15, section 3.
    """
    import torch.nn.functional as F

    ignored = start_logits.size(1)
    start = F.cross_entropy(start_logits, start_positions.clamp(0, ignored), ignore_index=ignored)
    end = F.cross_entropy(end_logits, end_positions.clamp(0, ignored), ignore_index=ignored)
    return (start + end) / 2


# --- decoding ---------------------------------------------------------------------------------

class Span(NamedTuple):
    """A candidate answer: its characters [start, end) in the passage, its text and score.

    Used in notebook 15.
    """

    start: int
    end: int
    text: str
    score: float  # start logit + end logit


class WindowSpans(NamedTuple):
    """The n best spans of one window, best first, and the window's null score (start[0] + end[0]).

    Used in notebook 15.
    """

    spans: list[Span]
    null_score: float


def best_spans(start_logits: Sequence[float], end_logits: Sequence[float],
               offsets: Sequence[tuple[int, int] | None], context: str, n_best: int = 20,
               max_answer_tokens: int = 30) -> WindowSpans:
    """The ``n_best`` highest-scoring answer spans of one window, as character spans of ``context``.

    Every pair (start token i, end token j) with i <= j < i + ``max_answer_tokens``, both
    inside the context (``offsets`` not None), is scored start[i] + end[j]: the log of
    p(start) p(end) up to a constant shared by the window. All pairs are scored at once
    as a matrix, so the n best are exact. Logits may be longer than ``offsets`` (padding).

    Derived in notebook 15, section 4.
    """
    n = len(offsets)
    start = np.asarray(start_logits, dtype=np.float64)[:n]
    end = np.asarray(end_logits, dtype=np.float64)[:n]
    inside = np.array([offset is not None for offset in offsets])
    first, last = np.indices((n, n))
    allowed = inside[:, None] & inside[None, :] & (last >= first) & (last - first < max_answer_tokens)
    scores = start[:, None] + end[None, :]
    candidates = np.flatnonzero(allowed)
    best = candidates[np.argsort(-scores.flat[candidates], kind="stable")[:n_best]]
    spans = []
    for flat in best:
        i, j = divmod(int(flat), n)
        begin, finish = offsets[i][0], offsets[j][1]
        spans.append(Span(begin, finish, context[begin:finish], float(scores.flat[flat])))
    return WindowSpans(spans, float(start[0] + end[0]))


def sentence_bounds(passage: str, start: int, end: int) -> tuple[int, int]:
    """The characters [begin, end) of the sentence (or sentences) of ``passage`` that the span [start, end) lies in.

    Used in notebook 15.
    """
    found, cursor = [], 0
    for sentence in split_sentences(passage):
        begin = passage.find(sentence, cursor)
        if begin < 0:
            continue
        cursor = begin + len(sentence)
        if begin < end and start < cursor:
            found.append((begin, cursor))
    return (found[0][0], found[-1][1]) if found else (0, len(passage))


# --- the reader -------------------------------------------------------------------------------

@dataclass
class ReadAnswer:
    """What the reader read for one question: the best span, where it is, and whether to trust it.

    ``passage`` is the index of the passage in the list given (-1 when there was no
    span at all); ``start``/``end`` are characters of that passage; ``score`` ranks the
    spans across passages; ``margin`` is the span's reader score minus the null score.

    Used in notebook 15.
    """

    question: str
    text: str
    passage: int
    start: int
    end: int
    sentence: str
    score: float
    span_score: float
    null_score: float
    abstains: bool

    @property
    def answer(self) -> str:
        """The span, or "not in the passages" when the reader abstains."""
        return NOT_IN_PASSAGES if self.abstains else self.text

    @property
    def margin(self) -> float:
        """How far the best span's reader score beats the empty answer's."""
        return self.span_score - self.null_score


def _passage_string(passage: Any) -> str:
    """A passage as the reader sees it: a string as it is, an object with title and text as the retrievers index it."""
    if isinstance(passage, str):
        return _checked_text(passage, "passage")
    if hasattr(passage, "title") and hasattr(passage, "text"):
        from .data import passage_text

        return passage_text(passage.title, _checked_text(passage.text, "passage"))
    raise CourseError(f"a passage must be text or have a title and text, not {type(passage).__name__}")


class SpanReader:
    """A question-answering model (start/end logits) reading the passages of many questions in batches.

    Every window of every passage is scored; the spans of all passages of a question
    are ranked together by ``score = span score + retriever_weight * retriever score``
    (BERTserini, Yang et al. 2019; with the default 0 only the reader decides, as the
    retriever's scores have another scale: BM25 tens, cosines below 1; choose the
    weight on dev). The reader abstains when the best span's reader score minus the
    null score is below ``null_threshold``; the null score is the lowest over the
    question's windows, since one window holding the answer is enough.

    Derived in notebook 15, section 4.
    """

    def __init__(self, model: Any, tokenizer: Any, max_length: int = 256, stride: int = 64,
                 n_best: int = 20, max_answer_tokens: int = 30, null_threshold: float = NULL_THRESHOLD,
                 retriever_weight: float = 0.0, batch_size: int = 32) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.stride, self.batch_size = max_length, stride, batch_size
        self.n_best, self.max_answer_tokens = n_best, max_answer_tokens
        self.null_threshold, self.retriever_weight = null_threshold, retriever_weight

    def logits(self, features: Mapping[str, list]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The start and end logits of every window, computed in batches of similar lengths (no padding kept)."""
        import torch

        lengths = [len(ids) for ids in features["input_ids"]]
        order = np.argsort(lengths, kind="stable")
        starts: list[np.ndarray] = [np.empty(0)] * len(lengths)
        ends: list[np.ndarray] = [np.empty(0)] * len(lengths)
        device = next(self.model.parameters()).device
        self.model.eval()
        for begin in range(0, len(order), self.batch_size):
            rows = order[begin:begin + self.batch_size]
            batch = self.tokenizer.pad({key: [features[key][i] for i in rows] for key in MODEL_INPUTS
                                        if key in features}, return_tensors="pt").to(device)
            with torch.inference_mode():
                output = self.model(**batch)
            start, end = output.start_logits.float().cpu().numpy(), output.end_logits.float().cpu().numpy()
            for row, i in enumerate(rows):
                starts[i], ends[i] = start[row, :lengths[i]], end[row, :lengths[i]]
        return starts, ends

    def read(self, questions: Sequence[str], passages_per_question: Sequence[Sequence[Any]],
             retriever_scores: Sequence[Sequence[float]] | None = None) -> list[ReadAnswer]:
        """One ``ReadAnswer`` per question, read from its passages (strings, or passages with title and text).

        Used in notebook 15.
        """
        if len(questions) != len(passages_per_question):
            raise CourseError(f"{len(questions)} questions but {len(passages_per_question)} lists of passages")
        if retriever_scores is not None and [len(s) for s in retriever_scores] != [len(p) for p in
                                                                                  passages_per_question]:
            raise CourseError("retriever_scores must give one score per passage of every question")
        questions = [_checked_text(q, "question") for q in questions]
        pairs = [(q, p) for q, passages in enumerate(passages_per_question) for p in range(len(passages))]
        texts = [[_passage_string(p) for p in passages] for passages in passages_per_question]
        if not pairs:
            return [self._answer(q, [], None, texts[i]) for i, q in enumerate(questions)]
        features = qa_features(self.tokenizer, [questions[q] for q, _ in pairs], [texts[q][p] for q, p in pairs],
                               max_length=self.max_length, stride=self.stride)
        starts, ends = self.logits(features)
        found: list[list[tuple[float, int, Span]]] = [[] for _ in questions]
        nulls: list[float | None] = [None] * len(questions)
        for window, example in enumerate(features["example"]):
            q, p = pairs[example]
            decoded = best_spans(starts[window], ends[window], features["offset_mapping"][window], texts[q][p],
                                 self.n_best, self.max_answer_tokens)
            nulls[q] = decoded.null_score if nulls[q] is None else min(nulls[q], decoded.null_score)
            found[q].extend((span.score + self._bonus(retriever_scores, q, p), p, span) for span in decoded.spans)
        return [self._answer(question, found[q], nulls[q], texts[q]) for q, question in enumerate(questions)]

    def _bonus(self, retriever_scores: Sequence[Sequence[float]] | None, q: int, p: int) -> float:
        """What the retriever adds to the score of a span of passage p of question q."""
        if retriever_scores is None or not self.retriever_weight:
            return 0.0
        return self.retriever_weight * float(retriever_scores[q][p])

    def _answer(self, question: str, found: list[tuple[float, int, Span]], null: float | None,
                texts: list[str]) -> ReadAnswer:
        """The best-ranked span of one question, or an abstention when there is none worth giving."""
        if not found:
            return ReadAnswer(question, "", -1, 0, 0, "", float("-inf"), float("-inf"),
                              0.0 if null is None else null, True)
        score, p, span = max(found, key=lambda item: item[0])  # the first of equal scores: the higher passage
        null = float(null)
        sentence = texts[p][slice(*sentence_bounds(texts[p], span.start, span.end))]
        return ReadAnswer(question, span.text, p, span.start, span.end, sentence, score, span.score, null,
                          span.score - null < self.null_threshold)


def reading_scores(answers: Sequence[ReadAnswer], aliases: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean exact match and token F1 against each question's aliases (an abstention scores 0), and the abstention rate.

    Used in notebook 15.
    """
    # An abstention is scored as the empty answer: 0 against any alias.
    means = mean_answer_scores(["" if a.abstains else a.text for a in answers], aliases)
    return {**means, "abstained": sum(a.abstains for a in answers) / len(answers)}
