"""Tests of data/derived/factqa: every hand-written and generated question keeps the set's promises.

The checks are written here from scratch, not taken from the builder
(ragutils.tools.factqa_build), so that a mistake in one is caught by the other.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from ragutils import data
from ragutils.config import data_dir
from ragutils.errors import CourseError
from ragutils.tools.factqa_build import RULES

FOLDER = data_dir() / "derived" / "factqa"
HAND = ("hand_dev", "hand_test", "hand_unanswerable")
GENERATED = {"generated_train": "train", "generated_dev": "dev"}
RUN = 5


def read(part: str) -> list[dict]:
    """The rows of one file, read straight from disk."""
    with (FOLDER / f"{part}.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return re.findall(r"\w+", text.lower())


def shared_run(question: str, passage: str, n: int = RUN) -> tuple[str, ...] | None:
    """The first run of n words that the question shares with the passage, if any."""
    passage_words = words(passage)
    runs = {tuple(passage_words[i:i + n]) for i in range(len(passage_words) - n + 1)}
    question_words = words(question)
    return next((tuple(question_words[i:i + n]) for i in range(len(question_words) - n + 1)
                 if tuple(question_words[i:i + n]) in runs), None)


def in_question(answer: str, question: str) -> bool:
    """Whether the answer occurs in the question as whole words, ignoring case."""
    return re.search(r"(?<!\w)" + re.escape(answer.lower()) + r"(?!\w)", question.lower()) is not None


def base_title(title: str) -> str:
    """A title without its disambiguation: "Cell (biology)" → "Cell"."""
    return re.sub(r"\s*\([^()]*\)$", "", title)


@pytest.fixture(scope="module")
def articles() -> dict[str, dict]:
    """The wiki articles by title."""
    return {a["title"]: a for a in data.wiki_records()}


@pytest.fixture(scope="module")
def parts() -> dict[str, list[dict]]:
    """Every file of factqa, by part."""
    return {part: read(part) for part in data.FACTQA_PARTS}


# --- the files ---------------------------------------------------------------


def test_files_counts_and_loader(parts):
    assert sorted(p.stem for p in FOLDER.glob("*.jsonl")) == sorted(data.FACTQA_PARTS)
    counts = json.loads((FOLDER / "COUNTS.json").read_text(encoding="utf-8"))
    readme = (FOLDER / "README.md").read_text(encoding="utf-8")
    assert counts == {part: len(rows) for part, rows in parts.items()}
    for part, n in counts.items():
        assert f"| `{part}` | `{part}.jsonl` | {n:,} |" in readme
    assert data.factqa("hand_test") == parts["hand_test"]
    with pytest.raises(CourseError, match="known files: generated_train, generated_dev, hand_dev"):
        data.factqa("test")


def test_ids_are_unique_and_types_known(parts):
    ids = [row["id"] for rows in parts.values() for row in rows]
    assert len(ids) == len(set(ids))
    for rows in parts.values():
        for row in rows:
            assert row["answer_type"] in data.FACTQA_TYPES, row
            assert row["question"].strip() and row["question"].endswith("?"), row


# --- the hand-written questions -------------------------------------------------


def test_hand_written_minimums(parts):
    assert len(parts["hand_dev"]) >= 100
    assert len(parts["hand_test"]) >= 200
    assert len(parts["hand_unanswerable"]) >= 60
    for part in HAND:
        for row in parts[part]:
            assert set(row) == {"answer_type", "answerable", "answers", "id", "question", "split", "title"}, row


@pytest.mark.parametrize("part", ["hand_dev", "hand_test"])
def test_every_hand_written_answer_is_read_from_its_article(part, parts, articles):
    for row in parts[part]:
        article = articles[row["title"]]
        assert row["answerable"] is True and row["answers"], row
        passage = data.passage_text(article["title"], article["text"])
        assert row["answers"][0] in passage, row
        for answer in row["answers"]:
            assert not in_question(answer, row["question"]), (answer, row)


@pytest.mark.parametrize("part", HAND)
def test_no_hand_written_question_copies_its_article(part, parts, articles):
    for row in parts[part]:
        article = articles[row["title"]]
        run = shared_run(row["question"], data.passage_text(article["title"], article["text"]))
        assert run is None, (" ".join(run), row)


@pytest.mark.parametrize("part", ["hand_dev", "hand_test"])
def test_hand_written_answers_are_mostly_not_the_title(part, parts):
    rows = parts[part]
    titles = sum(row["answers"][0].lower() in {row["title"].lower(), base_title(row["title"]).lower()}
                 for row in rows)
    assert titles / len(rows) <= 0.30


@pytest.mark.parametrize("part", HAND)
def test_hand_written_questions_are_about_articles_of_their_split(part, parts, articles):
    expected = {"hand_dev": {"dev"}, "hand_test": {"test"}, "hand_unanswerable": {"dev", "test"}}[part]
    for row in parts[part]:
        assert row["title"] in articles, row
        assert data.article_split(row["title"]) == row["split"], row
        assert row["split"] in expected, row


def test_unanswerable_rows_have_no_answer(parts):
    # Their shape: answerable false and no answers; that the corpus does not hold the
    # answer was checked by hand when each question was written.
    rows = parts["hand_unanswerable"]
    assert all(row["answerable"] is False and row["answers"] == [] for row in rows)
    assert Counter(row["split"] for row in rows)["test"] >= 30


# --- the generated questions ------------------------------------------------------


@pytest.mark.parametrize("part", GENERATED)
def test_generated_rows_keep_every_promise(part, parts, articles):
    rows = parts[part]
    assert rows
    rules = {name for name, _ in RULES}
    by_id = {a["id"]: a for a in articles.values()}
    for row in rows:
        article = by_id[row["doc_id"]]
        assert article["title"] == row["title"] and data.article_split(row["title"]) == GENERATED[part] == row["split"]
        assert len(row["answers"]) == 1 and row["answerable"] is True and row["source"] in rules, row
        answer, start = row["answers"][0], row["answer_start"]
        assert article["text"][start:start + len(answer)] == answer, row
        assert answer.lower() not in {row["title"].lower(), base_title(row["title"]).lower()}, row
        assert not in_question(answer, row["question"]), row
        assert shared_run(row["question"], data.passage_text(article["title"], article["text"])) is None, row


def test_generated_training_set_is_large_and_varied(parts):
    rows = parts["generated_train"]
    assert len(rows) > 4000
    by_rule = Counter(row["source"] for row in rows)
    assert len(by_rule) >= 20 and max(by_rule.values()) / len(rows) < 0.5
    assert len({row["answer_type"] for row in rows}) == len(data.FACTQA_TYPES)


def test_no_evaluation_question_is_trained_on(parts):
    def key(text: str) -> str:
        return " ".join(words(text))

    trained = {key(row["question"]) for row in parts["generated_train"]}
    trained_articles = {row["title"] for row in parts["generated_train"]}
    for part in HAND:
        for row in parts[part]:
            assert key(row["question"]) not in trained, row
            assert row["title"] not in trained_articles, row
