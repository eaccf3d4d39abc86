"""Next-sentence prediction, BERT's second pretraining objective: how its sentence pairs are made.

Notebook 09 builds the pairs from the Jargon File's entries (split into sentences by
``text.split_dictionary_sentences``) and shows why the objective is easier than it looks:
a rule that only checks whether A and B share a content word already beats chance.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import NamedTuple

from .errors import CourseError


class SentencePair(NamedTuple):
    """One next-sentence-prediction example: does ``second`` follow ``first`` in the same document?

    Used in notebook 09.
    """

    first: str
    second: str
    label: int  # 0 = IsNext, 1 = NotNext (the labels of BertForNextSentencePrediction)
    first_doc: int  # the index of the document of each sentence
    second_doc: int


IS_NEXT, NOT_NEXT = 0, 1
NSP_LABELS = {IS_NEXT: "IsNext", NOT_NEXT: "NotNext"}


def nsp_pairs(documents: Sequence[Sequence[str]], seed: int = 0) -> list[SentencePair]:
    """BERT's NSP pairs: every sentence that has a successor is a first sentence A.

    Half of the pairs (chosen at random) get A's real successor (IsNext); the other
    half get a random sentence of a random *other* document (NotNext), so that
    "does B follow A?" cannot be answered from A alone. BERT flips a fair coin per
    pair; we shuffle an exactly balanced list, so even a handful of pairs is 50/50
    (with an odd number, IsNext has one pair fewer).

    Derived in notebook 09, section 8.
    """
    docs = [list(sentences) for sentences in documents]
    candidates = [(d, i) for d, sentences in enumerate(docs) for i in range(len(sentences) - 1)]
    if not candidates:
        raise CourseError("no document has two sentences: NSP needs a sentence and its successor")
    partners = [d for d, sentences in enumerate(docs) if sentences]
    if len(partners) < 2:
        raise CourseError("NSP needs at least two documents with sentences: NotNext partners come from another one")
    rng = random.Random(seed)
    labels = [IS_NEXT] * (len(candidates) // 2) + [NOT_NEXT] * (len(candidates) - len(candidates) // 2)
    rng.shuffle(labels)
    pairs = []
    for (d, i), label in zip(candidates, labels):
        if label == IS_NEXT:
            pairs.append(SentencePair(docs[d][i], docs[d][i + 1], IS_NEXT, d, d))
        else:
            other = d
            while other == d:  # any document but A's own (there are at least two to choose from)
                other = rng.choice(partners)
            pairs.append(SentencePair(docs[d][i], rng.choice(docs[other]), NOT_NEXT, d, other))
    return pairs
