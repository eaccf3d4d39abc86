"""ragutils.text: the shared tokeniser, query validation, chunking, sentence splitting and lead baselines."""

import pytest

from ragutils.errors import CourseError
from ragutils.text import (
    ENGLISH_STOPWORDS,
    chunk_words,
    first_sentence,
    lead_sentences,
    lead_words,
    split_dictionary_sentences,
    split_sentences,
    tokenize,
    tokenize_many,
    validate_query,
)


@pytest.mark.parametrize("text, tokens", [
    ("The Eiffel Tower, Paris!", ["the", "eiffel", "tower", "paris"]),
    ("20th-century music (1901–2000)", ["20th", "century", "music", "1901", "2000"]),
    ("snake_case stays whole", ["snake_case", "stays", "whole"]),
    ("Zürich, naïve CAFÉ", ["zürich", "naïve", "café"]),
    ("東京 is Tokyo", ["東京", "is", "tokyo"]),
    ("Dvořák's Ω", ["dvořák", "s", "ω"]),
    ("", []),
    ("  ...  !? ", []),
])
def test_tokenize_lower_cases_unicode_words(text, tokens):
    assert tokenize(text) == tokens


def test_tokenize_keeps_stopwords_unless_asked():
    assert tokenize("the cat and the hat") == ["the", "cat", "and", "the", "hat"]
    assert tokenize("The cat and the hat", stopwords=ENGLISH_STOPWORDS) == ["cat", "hat"]
    assert tokenize("The cat and the hat", stopwords=["cat"]) == ["the", "and", "the", "hat"]


def test_tokenize_many_matches_tokenize():
    texts = ["One two", "", "Ünïcode  TEXT", "a-b_c"]
    assert tokenize_many(texts) == [tokenize(text) for text in texts]
    assert tokenize_many(texts, ENGLISH_STOPWORDS) == [tokenize(t, ENGLISH_STOPWORDS) for t in texts]
    assert tokenize_many([]) == []


def test_validate_query():
    assert validate_query("  who wrote Hamlet? ") == "who wrote Hamlet?"
    for empty in ["", "   ", "?!", "\n\t"]:
        with pytest.raises(CourseError, match="empty query"):
            validate_query(empty)
    with pytest.raises(CourseError, match="must be text"):
        validate_query(None)


WORDS = "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9"


@pytest.mark.parametrize("size, overlap, chunks", [
    (4, 0, ["w0 w1 w2 w3", "w4 w5 w6 w7", "w8 w9"]),
    (4, 1, ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]),
    (4, 2, ["w0 w1 w2 w3", "w2 w3 w4 w5", "w4 w5 w6 w7", "w6 w7 w8 w9"]),
    (3, 2, ["w0 w1 w2", "w1 w2 w3", "w2 w3 w4", "w3 w4 w5", "w4 w5 w6", "w5 w6 w7", "w6 w7 w8",
            "w7 w8 w9"]),
    (10, 3, [WORDS]),
    (50, 0, [WORDS]),
])
def test_chunk_words_windows(size, overlap, chunks):
    assert chunk_words(WORDS, size, overlap) == chunks


def test_chunk_words_covers_every_word_and_never_repeats_a_window():
    text = " ".join(f"w{i}" for i in range(103))
    for size in (1, 5, 16, 103, 200):
        for overlap in range(0, size, max(1, size // 4)):
            chunks = chunk_words(text, size, overlap)
            words = [chunk.split() for chunk in chunks]
            assert all(len(chunk) <= size for chunk in words)
            assert words[0][0] == "w0" and words[-1][-1] == "w102"
            # Neighbours share exactly `overlap` words (or all of the last, shorter one).
            for before, after in zip(words, words[1:]):
                shared = min(overlap, len(after))
                assert before[len(before) - shared:] == after[:shared]
                assert set(after) - set(before)  # every window brings a new word


def test_chunk_words_keeps_punctuation_and_normalises_space():
    assert chunk_words("Hello,   world!\nIt's  me.", 2, 0) == ["Hello, world!", "It's me."]
    assert chunk_words("", 5, 1) == []
    assert chunk_words("   \n ", 5, 1) == []


@pytest.mark.parametrize("size, overlap, message", [
    (0, 0, "chunk size"),
    (-3, 0, "chunk size"),
    (2.5, 0, "chunk size"),
    (True, 0, "chunk size"),
    (4, 4, "chunk overlap"),
    (4, -1, "chunk overlap"),
    (4, 1.0, "chunk overlap"),
])
def test_chunk_words_refuses_bad_arguments(size, overlap, message):
    with pytest.raises(CourseError, match=message):
        chunk_words(WORDS, size, overlap)


# --- sentences: three rules, each with its own name -----------------------------------------


def test_split_sentences():
    text = "Paris is the capital of France. It has 2.1 million people! Does it rain? \"Yes\", often."
    assert split_sentences(text) == [
        "Paris is the capital of France.", "It has 2.1 million people!", "Does it rain?", "\"Yes\", often."]


def test_split_dictionary_sentences():
    assert split_dictionary_sentences("One. Two? “Three!” Four\n\nFive") == \
        ["One.", "Two?", "“Three!”", "Four", "Five"]
    assert split_dictionary_sentences("It costs 3.5 dollars. Cheap.") == ["It costs 3.5 dollars.", "Cheap."]
    assert split_dictionary_sentences("   ") == []
    # A sense number (with its part of speech) opens the next sentence instead of standing alone.
    assert split_dictionary_sentences(
        "cruft: [from crufty]\n\n1. n. A mess. It grows.\n\n2. vt. To mess up.\n\n3.") == \
        ["cruft: [from crufty]", "1. n. A mess.", "It grows.", "2. vt. To mess up.", "3."]


def test_first_sentence_skips_abbreviations_and_initials():
    assert first_sentence("J. R. R. Tolkien was an English writer. He wrote.") == \
        "J. R. R. Tolkien was an English writer."
    assert first_sentence("Dr. Smith arrived in the U.S. Navy. He sat.") == "Dr. Smith arrived in the U.S. Navy."
    assert first_sentence("It costs 3.5 dollars. Cheap.") == "It costs 3.5 dollars."
    assert first_sentence("Ends here.") == "Ends here."
    assert first_sentence("No end mark") is None


@pytest.mark.parametrize("text, simple, dictionary, first", [
    # an abbreviation or an initial: only first_sentence knows them
    ("Dr. Smith arrived. He sat.", ["Dr.", "Smith arrived.", "He sat."], ["Dr.", "Smith arrived.", "He sat."],
     "Dr. Smith arrived."),
    # a closing quote after the end mark, and a curly opening quote: only the dictionary rule splits
    ("One. Two? “Three!” Four", ["One.", "Two? “Three!” Four"], ["One.", "Two?", "“Three!”", "Four"], "One."),
    # a blank line ends a sentence only for the dictionary rule
    ("One\n\nTwo", ["One\n\nTwo"], ["One", "Two"], None),
    # a sense number opens the next sentence only for the dictionary rule
    ("cruft\n\n1. n. A mess. It grows.", ["cruft\n\n1. n.", "A mess.", "It grows."],
     ["cruft", "1. n. A mess.", "It grows."], "cruft\n\n1. n."),
])
def test_the_three_sentence_rules_differ(text, simple, dictionary, first):
    assert split_sentences(text) == simple
    assert split_dictionary_sentences(text) == dictionary
    assert first_sentence(text) == first


# --- lead baselines ---------------------------------------------------------------------------

TEXT = "Python is a language. It was created by Guido van Rossum. It is popular.\n\nA second paragraph."


def test_lead_words():
    assert lead_words("one two three four", 2) == "one two"
    assert lead_words("  one\n two  ", 5) == "one two"


def test_lead_sentences_keeps_whole_sentences_within_the_budget():
    assert lead_sentences(TEXT, 4) == "Python is a language."
    assert lead_sentences(TEXT, 11) == "Python is a language. It was created by Guido van Rossum."
    assert lead_sentences(TEXT, 100).endswith("It is popular. A second paragraph.")


def test_lead_sentences_cuts_a_long_first_sentence_and_refuses_no_budget():
    assert lead_sentences(TEXT, 2) == "Python is"
    with pytest.raises(CourseError):
        lead_sentences(TEXT, 0)
