"""One RAG pipeline, several jobs: long-answer QA, summaries, dialogue, classification by retrieval.

Notebook 13 derives each piece by hand first; this module keeps the versions it reuses
(its lead baseline, whole sentences within a word budget, is ``text.lead_sentences``):

- ``long_answer_messages``: a chat prompt that asks for a few sentences from numbered
  passages (the short-answer prompt of ``rag`` asks for a name or a phrase);
- ``summary_messages``: a chat prompt that asks for a summary of a group of passages;
- ``rewrite_by_rule`` / ``rewrite_messages`` / ``clean_rewrite``: a follow-up question
  ("Who directed it?") made stand-alone, by substituting the previous turn's entity for
  the pronoun, or by asking the generator;
- ``knn_vote``: classification by retrieval, the k most similar labelled passages vote.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from .errors import CourseError
from .rag import Passage, chat_messages, format_passages

# A passage of a long-answer prompt is cut to this many words: enough for the
# first paragraph of most Python FAQ answers, short enough for two of them to fit.
LONG_PASSAGE_WORDS = 120

LONG_ANSWER_SYSTEM_PROMPT = (
    "You answer questions using the numbered passages. Answer in two or three sentences, "
    "using the passages' own words where you can."
)
LONG_CLOSED_BOOK_SYSTEM_PROMPT = "You answer questions. Answer in two or three sentences."

SUMMARY_SYSTEM_PROMPT = (
    "You summarise the numbered passages. Write one short sentence per passage that says "
    "what its subject is."
)

REWRITE_SYSTEM_PROMPT = (
    "Rewrite the user's last question so that it can be understood without the conversation: "
    "replace words like it, he, she, they or there with the name they stand for. "
    "Reply with the rewritten question only."
)
# One worked example, shown to the generator before the real conversation (a one-shot prompt).
REWRITE_EXAMPLE = (
    "Conversation:\nUser: What is the capital of France?\nAssistant: Paris\n\nLast question: How many people live there?",
    "How many people live in Paris?",
)

# Words that point back to the previous turn's subject. Possessives become "X's";
# "there" becomes "in X". ("her" is both; before a noun it is read as possessive.)
_SUBJECT = ("it", "he", "she", "they", "him", "them")
_POSSESSIVE = ("its", "his", "their", "hers")
_PRONOUN = re.compile(r"\b(" + "|".join(_SUBJECT + _POSSESSIVE + ("her", "there")) + r")\b", re.IGNORECASE)


def long_answer_messages(question: str, passages: Sequence[Passage],
                         max_words: int = LONG_PASSAGE_WORDS) -> list[dict[str, str]]:
    """A chat prompt for an answer of a few sentences from numbered passages (closed-book if none).

    Derived in notebook 13, section 1.
    """
    return chat_messages(question, passages, LONG_ANSWER_SYSTEM_PROMPT, LONG_CLOSED_BOOK_SYSTEM_PROMPT, max_words)


def summary_messages(passages: Sequence[Passage], max_words: int = 64) -> list[dict[str, str]]:
    """A chat prompt that asks for a summary of a group of numbered passages. Derived in notebook 13, section 2."""
    if not passages:
        raise CourseError("nothing to summarise: give at least one passage")
    return [{"role": "system", "content": SUMMARY_SYSTEM_PROMPT},
            {"role": "user", "content": f"Passages:\n{format_passages(passages, max_words)}\n\nSummary:"}]


def rewrite_by_rule(question: str, entity: str) -> str:
    """The question with its first pronoun replaced by the entity (unchanged if it has none).

    Derived in notebook 13, section 3.
    """
    match = _PRONOUN.search(question)
    if not match or not entity.strip():
        return question
    word, after = match.group(1).lower(), question[match.end():]
    if word in _POSSESSIVE or (word == "her" and re.match(r"\s+[a-z]", after)):
        replacement = f"{entity}'s"
    elif word == "there":
        replacement = f"in {entity}"
    else:
        replacement = entity
    return question[:match.start()] + replacement + after


def rewrite_messages(history: Sequence[tuple[str, str]], question: str) -> list[dict[str, str]]:
    """A one-shot chat prompt that asks the generator to make the last question stand-alone.

    `history` holds the earlier (user question, assistant answer) turns, oldest first.

    Derived in notebook 13, section 3.
    """
    if not history:
        raise CourseError("a follow-up question needs at least one earlier turn")
    turns = "\n".join(f"User: {asked}\nAssistant: {answered}" for asked, answered in history)
    example, rewritten = REWRITE_EXAMPLE
    return [{"role": "system", "content": REWRITE_SYSTEM_PROMPT},
            {"role": "user", "content": example},
            {"role": "assistant", "content": rewritten},
            {"role": "user", "content": f"Conversation:\n{turns}\n\nLast question: {question}"}]


def clean_rewrite(text: str, fallback: str) -> str:
    """The first line of a generated rewrite, unquoted; the fallback if it is empty.

    Derived in notebook 13, section 3.
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return fallback
    line = re.sub(r"^(rewritten question|question)\s*:\s*", "", lines[0], flags=re.IGNORECASE)
    return line.strip(" \"'") or fallback


def knn_vote(similarities: np.ndarray, labels: Sequence[str], k: int = 20, weighted: bool = True) -> list[str]:
    """The label of each query row: a vote of its k most similar labelled items (weighted by similarity).

    `similarities` is (queries x items); `labels` names each item. Ties go to the label
    whose best neighbour ranks higher.

    Derived in notebook 13, section 4.
    """
    similarities = np.asarray(similarities, dtype=np.float64)
    if similarities.ndim != 2 or similarities.shape[1] != len(labels):
        raise CourseError(f"similarities must be (queries x {len(labels)} items), not {similarities.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(labels):
        raise CourseError(f"k must be a whole number from 1 to {len(labels)}, not {k!r}")
    predictions = []
    for row in similarities:
        nearest = np.argsort(-row, kind="stable")[:k]
        votes: dict[str, float] = defaultdict(float)
        for item in nearest:  # best first: dict order breaks ties in favour of the nearer label
            votes[labels[item]] += row[item] if weighted else 1.0
        predictions.append(max(votes, key=votes.get))
    return predictions
