"""The fact-QA set of data/derived/factqa: questions generated from the corpus for training, and the hand-written ones.

``factqa_sets`` asks the sentence rules (``tools.factqa_rules``, ``factqa_places``, ``factqa_people``)
about every train and dev article, keeps a question only when it passes every check
(``problem``: the answer is the span it names, it is not the article's title, it is not
in the question, and the question repeats no five words of the article), and returns
the generated sets beside the hand-written evaluation files, which it copies as they
are. Test articles are never asked about: the test questions are all written by hand.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from ..data import FACTQA_PARTS, FACTQA_TYPES, article_split, passage_text, read_jsonl
from ..text import tokenize
from . import factqa_people, factqa_places, factqa_rules
from .derived import _base_title
from .factqa_rules import Question

COPY_RUN = 5  # a question may share no run of this many words with its article
MAX_QUESTION_WORDS = 25
HAND_PARTS = tuple(part for part in FACTQA_PARTS if part.startswith("hand_"))
GENERATED = {"train": "generated_train", "dev": "generated_dev"}  # split of the articles → file
RULES = factqa_rules.RULES + factqa_places.RULES + factqa_people.RULES
_NAMED_TYPES = ("person", "place", "organization")
_WHOLE_NAME = re.compile(factqa_rules.NAME_END)


def shares_run(question: str, passage: str, n: int = COPY_RUN) -> bool:
    """Whether the question repeats n consecutive words (lower-cased word tokens) of the passage."""
    words = tokenize(passage)
    runs = {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
    asked = tokenize(question)
    return any(tuple(asked[i:i + n]) in runs for i in range(len(asked) - n + 1))


def mentions(question: str, answer: str) -> bool:
    """Whether the answer occurs in the question as whole words, ignoring case."""
    return re.search(rf"(?<!\w){re.escape(answer.lower())}(?!\w)", question.lower()) is not None


def problem(q: Question, article: dict) -> str | None:
    """Why a generated question cannot be kept, or None if it passes every check."""
    text, title = article["text"], article["title"]
    if not q.answer or text[q.start:q.start + len(q.answer)] != q.answer:
        return "answer is not the span at its offset"
    if re.match(r"\.\w", text[q.start + len(q.answer):q.start + len(q.answer) + 2]):
        return "answer cut at an abbreviation"  # "U" of "U.S."
    if q.answer_type in _NAMED_TYPES and not _WHOLE_NAME.match(text, q.start + len(q.answer)):
        return "part of a longer name, or an adjective"  # "Indian" of "the Indian subcontinent"
    if q.answer_type in _NAMED_TYPES and re.search(r"\b[A-Z]$", q.answer):
        return "name cut at an initial"  # "A" of "A. A. Milne"
    if q.answer_type not in FACTQA_TYPES:
        return "unknown answer type"
    if q.answer.lower() in {title.lower(), _base_title(title).lower()}:
        return "answer is the article's title"
    if mentions(q.question, q.answer):
        return "answer in the question"
    if shares_run(q.question, passage_text(title, text)):
        return f"question shares {COPY_RUN} words with the article"
    if len(q.question.split()) > MAX_QUESTION_WORDS:
        return f"question longer than {MAX_QUESTION_WORDS} words"
    return None


def article_questions(article: dict) -> list[Question]:
    """Every question the rules ask about one article, in sentence order, before the checks."""
    subject = factqa_rules.subject_of(article)
    found = []
    for n, (offset, sentence) in enumerate(factqa_rules.sentences(article["text"])):
        for rule, ask in RULES:
            for question, match, group, answer_type in ask(subject, sentence, n == 0):
                span = match.group(group)
                answer = span.strip(" \"'“”‘’")
                start = offset + match.start(group) + span.index(answer)
                found.append(Question(rule, question[0].upper() + question[1:], answer, start, answer_type))
    return found


def _key(question: str) -> str:
    """A question as compared for duplicates: lower-cased, spaces collapsed."""
    return " ".join(question.lower().split())


def generated_rows(articles: list[dict]) -> tuple[dict[str, list[dict]], Counter, Counter]:
    """The generated questions of the train and dev articles by file, the kept ones per rule, and the drop reasons."""
    kept: list[tuple[dict, Question]] = []
    dropped: Counter = Counter()
    for article in articles:
        if article_split(article["title"]) not in GENERATED:
            continue
        asked, spans = set(), set()
        for q in article_questions(article):
            reason = (problem(q, article) or ("same question twice about one article" if _key(q.question) in asked
                                              else "same answer asked twice about one article"
                                              if q.start in spans else None))
            if reason:
                dropped[reason] += 1
            else:
                asked.add(_key(q.question))
                spans.add(q.start)
                kept.append((article, q))
    # "When was the Globe Theatre built?" asked of two articles has two right answers: drop every copy.
    copies = Counter(_key(q.question) for _, q in kept)
    dropped["same question about several articles"] = sum(n for n in copies.values() if n > 1)
    rows: dict[str, list[dict]] = {part: [] for part in GENERATED.values()}
    per_rule: Counter = Counter()
    for article, q in kept:
        if copies[_key(q.question)] > 1:
            continue
        split = article_split(article["title"])
        part = GENERATED[split]
        rows[part].append({"id": f"factqa-gen-{split}-{len(rows[part]):05d}", "split": split,
                           "title": article["title"], "doc_id": article["id"], "question": q.question,
                           "answers": [q.answer], "answer_start": q.start, "answer_type": q.answer_type,
                           "answerable": True, "source": q.rule})
        per_rule[(part, q.rule)] += 1
    return rows, per_rule, +dropped


def read_hand(folder: Path) -> dict[str, list[dict]]:
    """The hand-written files of factqa (dev, test, unanswerable), sorted by id."""
    return {part: sorted(read_jsonl(folder / f"{part}.jsonl"), key=lambda row: row["id"]) for part in HAND_PARTS}


def factqa_sets(articles: list[dict], hand: dict[str, list[dict]]) -> tuple[dict[str, list[dict]], dict]:
    """Every file of factqa as {part: rows}, and the numbers its README reports."""
    generated, per_rule, dropped = generated_rows(articles)
    parts = {**generated, **hand}
    parts = {part: parts[part] for part in FACTQA_PARTS}
    types = {part: Counter(row["answer_type"] for row in rows) for part, rows in parts.items()}
    stats = {"per_rule": per_rule, "dropped": dropped, "types": types,
             "articles": {part: len({row["title"] for row in rows}) for part, rows in parts.items()}}
    return parts, stats
