"""Text into tokens, sentences and passages: the shared tokeniser, sentence splitting, chunking, lead baselines.

One tokeniser for every keyword method (BM25 here, the `bm25s` and `rank_bm25`
comparisons, the search-engine notebook) so that score differences come from the
formulas, never from two ways of cutting words.

Sentences are cut by three rules, each fixed by what was built with it, so each has
its own name: ``split_sentences`` (an end mark, a space, then a capital, digit or quote:
the sentence encodings of notebook 03, whose cache key hashes the sentences, and the
lead baseline of notebook 13), ``split_dictionary_sentences`` (also a blank line, and a
Jargon File sense number such as "1. n." opens the next sentence: the next-sentence
pairs of notebook 09) and ``first_sentence`` (abbreviations and initials do not end a
sentence: the questions of data/derived/qa). The lead baselines: ``lead_words``, the
first n words (notebook 06); ``lead_sentences``, whole sentences within a word budget
(notebook 13).
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
    """The lower-cased word tokens of `text`, minus any `stopwords`. Derived in notebook 02, section 1."""
    tokens = WORD.findall(text.lower())
    if stopwords:
        drop = stopwords if isinstance(stopwords, (set, frozenset)) else set(stopwords)
        tokens = [token for token in tokens if token not in drop]
    return tokens


def tokenize_many(texts: Iterable[str], stopwords: Iterable[str] | None = None) -> list[list[str]]:
    """The tokens of each text, in order. Derived in notebook 02, section 1."""
    if stopwords:
        drop = frozenset(stopwords)
        return [tokenize(text, drop) for text in texts]
    # The common case without stopwords, kept to one C call per text: it is the
    # inner loop of indexing a corpus.
    findall = WORD.findall
    return [findall(text.lower()) for text in texts]


def validate_query(query: str) -> str:
    """The query stripped of surrounding space; CourseError if it has no word to search for. Used in notebook 02."""
    if not isinstance(query, str):
        raise CourseError(f"a query must be text, not {type(query).__name__}")
    stripped = query.strip()
    if not WORD.search(stripped):
        raise CourseError("empty query: type at least one word to search for")
    return stripped


def chunk_words(text: str, size: int, overlap: int = 0) -> list[str]:
    """Windows of `size` words, each sharing `overlap` words with the one before. Derived in notebook 07, section 1."""
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


# ---------------------------------------------------------------------------
# Sentences
# ---------------------------------------------------------------------------

# An end mark, white space, then a capital, a digit, a quote or a bracket. It splits
# after "e.g. Unix" and "Dr. Smith": good enough to cut passages into pieces to encode.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")

# As above, but a closing quote or bracket stays with its sentence, and a blank line
# (a new paragraph) always ends one. Good enough for the Jargon File's prose; it
# too splits after "e.g. Unix", and keeps "U.S. and" whole.
_DICTIONARY_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]?(?=\s+[A-Z0-9“\"'(\[])|\n\s*\n")
# The Jargon File numbers the senses of a word and names their part of speech
# ("2.", "1. n.", "2. vt."); such a marker is no sentence: it opens the next one.
_SENSE_MARKER = re.compile(r"\d+\.(\s+[a-z]{1,6}\.)*")

# A sentence ends at . ! or ? followed by space and a capital, a digit or an
# opening quote, or at the end of the text, unless the "." closes an abbreviation or an initial.
_FIRST_SENTENCE_END = re.compile(r"[.!?](?=\s+[\"“‘(\[]?[A-Z0-9])|[.!?]$")
_ABBREVIATIONS = frozenset(
    "St Mr Mrs Ms Dr Jr Sr Prof Gen Col Lt Capt Rev Mt Ft vs etc c ca e.g i.e No Co Inc Ltd "
    "U.S U.K approx fl b d Vol al Gov Sen Rep Pres Adm Sgt Maj Brig Hon Fr Bros Corp Dept "
    "Univ Ave Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec op ch p pp cf viz lit".split()
)


def split_sentences(text: str) -> list[str]:
    """The sentences of a text, stripped, in order: each ends at . ! or ? before a capital, digit or quote.

    Used in notebook 02.
    """
    return [part.strip() for part in _SENTENCE_BREAK.split(text) if part.strip()]


def split_dictionary_sentences(text: str) -> list[str]:
    """The sentences of a dictionary entry: also ended by a blank line; a sense number opens the next one.

    Used in notebook 09, section 8.
    """
    pieces, start = [], 0
    for end in _DICTIONARY_SENTENCE_END.finditer(text):
        pieces.append(text[start:end.end()])
        start = end.end()
    pieces.append(text[start:])
    sentences, marker = [], ""
    for piece in (piece.strip() for piece in pieces):
        if _SENSE_MARKER.fullmatch(piece):
            marker = f"{marker} {piece}".strip()
        elif piece:
            sentences.append(f"{marker} {piece}".strip())
            marker = ""
    if marker:
        sentences.append(marker)
    return sentences


def first_sentence(text: str) -> str | None:
    """The first sentence of a text, not ended by an abbreviation or an initial; None if no sentence ends.

    Used in notebook 02.
    """
    for match in _FIRST_SENTENCE_END.finditer(text):
        word = re.search(r"[\w.]*$", text[:match.start()]).group()
        if match.group() == "." and (word in _ABBREVIATIONS or re.fullmatch(r"[A-Z]|(?:\w\.)+\w", word)):
            continue
        return text[:match.end()]
    return None


# ---------------------------------------------------------------------------
# Lead baselines: the start of a text as its summary or answer
# ---------------------------------------------------------------------------


def lead_words(text: str, n_words: int) -> str:
    """The first n_words words of a text. Used in notebook 06, section 8."""
    return " ".join(text.split()[:n_words])


def lead_sentences(text: str, max_words: int) -> str:
    """The first whole sentences of a text within max_words (at least the first sentence, cut to max_words).

    Used in notebook 13, section 1.
    """
    if max_words < 1:
        raise CourseError(f"max_words must be at least 1, not {max_words}")
    chosen: list[str] = []
    used = 0
    for paragraph in text.split("\n\n"):
        for sentence in split_sentences(" ".join(paragraph.split())):
            words = len(sentence.split())
            if used + words > max_words:
                if not chosen:  # a first sentence longer than the budget: its first words
                    return lead_words(sentence, max_words)
                return " ".join(chosen)
            chosen.append(sentence)
            used += words
    return " ".join(chosen)
