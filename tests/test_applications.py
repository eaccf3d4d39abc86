"""ragutils.applications: prompts, follow-up rewriting, k-nearest-neighbour vote."""

import numpy as np
import pytest

from ragutils import applications as app
from ragutils.errors import CourseError
from ragutils.rag import Passage


def test_long_answer_prompt_numbers_passages_and_falls_back_to_closed_book():
    passages = [Passage(1, "a", "How?", "word " * 300, 1.0), Passage(2, "b", "Why?", "Because.", 0.5)]
    messages = app.long_answer_messages("How do I?", passages, max_words=10)
    assert messages[0]["content"] == app.LONG_ANSWER_SYSTEM_PROMPT
    assert "[1] How?:" in messages[1]["content"] and "[2] Why?: Because." in messages[1]["content"]
    assert messages[1]["content"].count("word") == 10
    closed = app.long_answer_messages("How do I?", [])
    assert closed[0]["content"] == app.LONG_CLOSED_BOOK_SYSTEM_PROMPT and closed[1]["content"] == "How do I?"


def test_summary_prompt_needs_passages():
    with pytest.raises(CourseError):
        app.summary_messages([])
    assert "[1] T: x" in app.summary_messages([Passage(1, "a", "T", "x", 0.0)])[1]["content"]


@pytest.mark.parametrize("question, expected", [
    ("Who directed it?", "Who directed The Godfather?"),
    ("When was he born?", "When was The Godfather born?"),
    ("What is its budget?", "What is The Godfather's budget?"),
    ("Who was her father?", "Who was The Godfather's father?"),
    ("Who married her?", "Who married The Godfather?"),
    ("How many people live there?", "How many people live in The Godfather?"),
    ("Who directed Casablanca?", "Who directed Casablanca?"),  # nothing to resolve
    ("What is Italy?", "What is Italy?"),  # "it" inside a word is no pronoun
])
def test_rewrite_by_rule(question, expected):
    assert app.rewrite_by_rule(question, "The Godfather") == expected


def test_rewrite_prompt_shows_history_and_example():
    messages = app.rewrite_messages([("Which film?", "The Godfather")], "Who directed it?")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "Assistant: The Godfather" in messages[-1]["content"]
    assert messages[-1]["content"].endswith("Last question: Who directed it?")
    with pytest.raises(CourseError):
        app.rewrite_messages([], "Who directed it?")


def test_clean_rewrite():
    assert app.clean_rewrite('"Who directed The Godfather?"\nMore text', "x") == "Who directed The Godfather?"
    assert app.clean_rewrite("Rewritten question: Where is Rome?", "x") == "Where is Rome?"
    assert app.clean_rewrite("  \n ", "fallback") == "fallback"


def test_knn_vote_majority_and_weighted():
    labels = ["a", "a", "b", "c"]
    sims = np.array([[0.9, 0.1, 0.8, 0.2],    # k=3 nearest: a(0.9) b(0.8) c(0.2) -> tie broken by the nearest
                     [0.3, 0.3, 0.95, 0.1]])  # nearest three: b, a, a
    assert app.knn_vote(sims, labels, k=1) == ["a", "b"]
    assert app.knn_vote(sims, labels, k=3, weighted=False) == ["a", "a"]  # two a's outvote one b
    assert app.knn_vote(sims, labels, k=3, weighted=True) == ["a", "b"]  # 0.3 + 0.3 < 0.95


def test_knn_vote_checks_its_input():
    with pytest.raises(CourseError):
        app.knn_vote(np.zeros((2, 3)), ["a", "b"], k=1)
    with pytest.raises(CourseError):
        app.knn_vote(np.zeros((2, 2)), ["a", "b"], k=3)
