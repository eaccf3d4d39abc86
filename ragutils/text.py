"""Text into tokens and passages: the tokeniser every sparse method shares, and word-window chunking.

One tokeniser for every keyword method (BM25 here, the `bm25s` and `rank_bm25`
comparisons, the search-engine notebook) so that score differences come from the
formulas, never from two ways of cutting words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import CourseError

# A token is a maximal run of word characters. In Python 3 `\w` is Unicode-aware,
# so "Zürich", "naïve" and "東京" stay whole words; the underscore counts as a word
# character, punctuation and spaces do not. No stemming: "running" and "run" are
# different terms, which keeps the maths of the notebooks easy to check by hand.
WORD = re.compile(r"\w+")

# A short list of the commonest English function words, for the notebook that shows
# what removing them does to BM25. Off by default: BM25's idf already gives these
# words little weight, and the baseline in the course design keeps them.
ENGLISH_STOPWORDS = frozenset(
    """a an and are as at be but by for from has have he her his in is it its
    of on or she that the their they this to was were which who will with""".split()
)


def tokenize(text: str, stopwords: Iterable[str] | None = None) -> list[str]:
    """The lower-cased word tokens of `text`, minus any `stopwords`."""
    tokens = WORD.findall(text.lower())
    if stopwords:
        drop = stopwords if isinstance(stopwords, (set, frozenset)) else set(stopwords)
        tokens = [token for token in tokens if token not in drop]
    return tokens


def tokenize_many(texts: Iterable[str], stopwords: Iterable[str] | None = None) -> list[list[str]]:
    """The tokens of each text, in order."""
    if stopwords:
        drop = frozenset(stopwords)
        return [tokenize(text, drop) for text in texts]
    # The common case without stopwords, kept to one C call per text: it is the
    # inner loop of indexing a corpus.
    findall = WORD.findall
    return [findall(text.lower()) for text in texts]


def validate_query(query: str) -> str:
    """The query stripped of surrounding space; CourseError if it has no word to search for."""
    if not isinstance(query, str):
        raise CourseError(f"a query must be text, not {type(query).__name__}")
    stripped = query.strip()
    if not WORD.search(stripped):
        raise CourseError("empty query: type at least one word to search for")
    return stripped


def chunk_words(text: str, size: int, overlap: int = 0) -> list[str]:
    """Windows of `size` words, each sharing `overlap` words with the one before."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise CourseError(f"chunk size must be a whole number of words >= 1, not {size!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < size:
        raise CourseError(
            f"chunk overlap must be a whole number of words from 0 to size - 1 = {size - 1}, "
            f"not {overlap!r}"
        )
    # Words are split on white space, so punctuation and case survive: chunks are
    # shown to a reader and given to a generator, not only to the tokeniser.
    words = text.split()
    step = size - overlap
    chunks = []
    for start in range(0, len(words), step):
        chunks.append(" ".join(words[start : start + size]))
        # Stop once a window reaches the end: another one would hold only words
        # that this window already has.
        if start + size >= len(words):
            break
    return chunks
