"""Rules with no model that a reader must beat: the title of passage 1, and the first span of the asked type in it.

A reading number means something only beside what a rule reaches without reading.
On fact questions two rules are the ones to beat:

- ``title_of_first_passage``: the retriever's top title (what "title" answer mode and
  the course's first QA set rewarded);
- ``first_typed_span``: the first span of passage 1 that has the answer's type: a date,
  a year, a number, or a capitalised name that the question and the title do not
  already contain (the type is given, so the rule knows more than a reader is told).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .errors import CourseError

MONTHS = ("January|February|March|April|May|June|July|August|September|October|November|December")
DATE = re.compile(rf"\b(?:\d{{1,2}} (?:{MONTHS}) \d{{3,4}}|(?:{MONTHS}) \d{{1,2}}, \d{{3,4}}|(?:{MONTHS}) \d{{3,4}})\b")
YEAR = re.compile(r"\b(?:1\d{3}|20\d{2}|\d{2,3}(?= (?:AD|BC|BCE|CE)\b))\b")
NUMBER = re.compile(r"\b\d[\d,]*(?:\.\d+)?(?: (?:million|billion|thousand|hundred))?\b")
# A name: capitalised words, joined by a few lower-case links ("Tao Te Ching", "Bay of Bengal").
NAME = re.compile(r"\b[A-Z][\w'’-]*(?:(?: (?:of|the|de|von|van|al|bin|des|del|la|le|du))* [A-Z][\w'’-]*)*")
# Capitalised words that start sentences and name nothing.
NOT_NAMES = {"The", "A", "An", "In", "It", "He", "She", "They", "This", "These", "Its", "His", "Her", "On", "At",
             "As", "After", "Before", "During", "From", "By", "For", "With", "Although", "While", "When", "Since"}
TYPED_PATTERNS = {"date": DATE, "year": YEAR, "number": NUMBER}


def title_of_first_passage(passages: Sequence[Any]) -> str:
    """The title of the top passage, or "" when there is none. Used in notebook 15."""
    return passages[0].title if passages else ""


def _names(text: str) -> list[str]:
    """The capitalised names of a text, in order, sentence-initial function words dropped."""
    names = []
    for match in NAME.finditer(text):
        words = match.group().split()
        while words and words[0] in NOT_NAMES:
            words = words[1:]
        if words:
            names.append(" ".join(words))
    return names


def first_typed_span(question: str, text: str, answer_type: str, title: str = "") -> str:
    """The first span of ``text`` of the answer's type that neither the question nor the title contains, or "".

    Dates, years and numbers by pattern (a date falls back to a year, a number skips
    years); every other type (person, place, organization, work, other) is the first
    capitalised name. Numbers inside dates are skipped.

    Used in notebook 15.
    """
    from .data import FACTQA_TYPES

    if answer_type not in FACTQA_TYPES:
        raise CourseError(f"unknown answer type {answer_type!r}; choose one of: {', '.join(FACTQA_TYPES)}")
    asked = f"{question} {title}".lower()
    if answer_type in TYPED_PATTERNS:
        patterns = [TYPED_PATTERNS[answer_type]] + ([YEAR] if answer_type == "date" else [])
        if answer_type == "number":  # the day of a date is no count of anything
            text = DATE.sub(lambda date: " " * len(date.group()), text)
        for pattern in patterns:
            for match in pattern.finditer(text):
                span = match.group()
                if span.lower() in asked or (answer_type == "number" and YEAR.fullmatch(span)):
                    continue
                return span
        return ""
    return next((name for name in _names(text) if name.lower() not in asked), "")
