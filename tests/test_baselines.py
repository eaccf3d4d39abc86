"""ragutils.baselines: the no-model rules a reader must beat, on sentences written for the test."""

import pytest

from ragutils import baselines, rag
from ragutils.errors import CourseError

TEXT = ("Augusta Ada King, Countess of Lovelace (10 December 1815 – 27 November 1852) was an English "
        "mathematician. In 1843 she translated an article by Luigi Menabrea, adding 7 notes of 19,136 words.")


@pytest.mark.parametrize("answer_type, span", [
    ("date", "10 December 1815"),
    ("year", "1815"),
    ("number", "7"),  # years are not numbers of things
    ("person", "Augusta Ada King"),
    ("place", "Augusta Ada King"),  # the rule knows the type, not what a place is
])
def test_first_typed_span(answer_type, span):
    assert baselines.first_typed_span("Which?", TEXT, answer_type, title="Lovelace") == span


def test_first_typed_span_skips_what_the_question_or_title_names():
    question = "Whose article did Augusta Ada King translate in 1843?"
    assert baselines.first_typed_span(question, TEXT, "person", title="Ada Lovelace") == "Countess of Lovelace"
    assert baselines.first_typed_span("What happened in 1815?", TEXT, "year") == "1852"
    assert baselines.first_typed_span("When?", "No dates here.", "date") == ""


def test_a_date_falls_back_to_a_year_and_names_drop_sentence_openers():
    assert baselines.first_typed_span("When?", "It opened in 1904 to the public.", "date") == "1904"
    assert baselines.first_typed_span("Who?", "The Romans came. After Caesar died, ...", "person") == "Romans"


def test_unknown_answer_type_is_refused():
    with pytest.raises(CourseError, match="unknown answer type 'colour'"):
        baselines.first_typed_span("Which?", TEXT, "colour")


def test_title_of_first_passage():
    passages = [rag.Passage(1, "d1", "Ada Lovelace", TEXT, 9.0), rag.Passage(2, "d2", "Babbage", "", 5.0)]
    assert baselines.title_of_first_passage(passages) == "Ada Lovelace"
    assert baselines.title_of_first_passage([]) == ""
