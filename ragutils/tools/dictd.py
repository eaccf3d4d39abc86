"""The Jargon File from Debian's dictd files: the index, the compressed entries, each entry as plain text.

``read_jargon`` is the ``jargon`` corpus of data/: one record per entry, its headword
as printed and its definition with prose reflowed and code or tables kept line by line.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from ..errors import CourseError
from .rst import dedent_lines  # the same dedent as a reST literal block: leading spaces only
from .sources import JARGON_MEMBERS, deb_files

# dictd writes offsets and lengths with base64's 64 characters, but as plain
# numbers in base 64 (big-endian digits, "A" = 0), not as encoded bytes:
# "B" is 1, "BA" is 64.
_DICTD_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def dictd_number(text: str) -> int:
    """Decode one dictd base-64 number (big-endian digits)."""
    value = 0
    for char in text:
        value = value * 64 + _DICTD_DIGITS.index(char)
    return value


def read_jargon(deb: Path) -> list[dict]:
    """The Jargon File entries of the dict-jargon package, cleaned to plain text."""
    files = deb_files(deb, lambda p: p in JARGON_MEMBERS)
    if set(files) != set(JARGON_MEMBERS):
        raise CourseError(f"{deb.name} lacks {', '.join(JARGON_MEMBERS)}")
    index = files[JARGON_MEMBERS[0]].decode("utf-8")
    # dict.dz is gzip with a random-access table in the header: gzip reads it whole.
    body = gzip.decompress(files[JARGON_MEMBERS[1]])
    records = []
    for line in index.splitlines():
        headword, offset, length = line.split("\t")
        if headword.startswith("00-database-"):  # dictd's own metadata, not entries
            continue
        start = dictd_number(offset)  # offsets count bytes of the UTF-8 text
        entry = body[start:start + dictd_number(length)].decode("utf-8")
        display, text = jargon_entry(entry)
        records.append({"id": f"jargon-{len(records):04d}", "headword": display, "text": text})
    return records


def jargon_entry(entry: str) -> tuple[str, str]:
    """Split one dictd entry into its headword as printed and its definition as plain text."""
    # An entry is: the headword line, a line of pronunciation and part of
    # speech (" /kluhj/, n.") that may wrap, a blank line, then the definition
    # indented by four spaces, in paragraphs separated by blank lines.
    entry = entry.replace("\u00ad", "")  # soft hyphens: invisible, but they split tokens
    lines = [line.rstrip() for line in entry.split("\n")]
    headword = lines[0].strip()
    start = lines.index("") if "" in lines else len(lines)
    paragraphs, current = [], []
    for line in lines[start:] + [""]:
        if line:
            current.append(line)
        elif current:
            paragraphs.append(_jargon_paragraph(current))
            current = []
    return headword, "\n\n".join(paragraphs)


def _jargon_paragraph(lines: list[str]) -> str:
    """One paragraph as plain text: prose reflowed to one line, a table or code kept line by line."""
    # Prose, even an indented quotation or list item, is wrapped at about 76
    # columns, so all its lines but the last are long. Code, ASCII art and
    # tables have short lines or columns aligned with runs of spaces.
    aligned = sum(1 for line in lines if "  " in line.strip())
    short = any(len(line.strip()) < 40 for line in lines[:-1])
    boxed = any(char in line for line in lines for char in "│─┤├┼")
    if aligned >= 2 or short or boxed:
        # A cross-reference inside such a block is still {word}, but a brace
        # in code is not: only replace braces around plain words.
        lines = [re.sub(r"\{([A-Za-z0-9][^{}();=*]*?)\}", r"\1", line) for line in dedent_lines(lines)]
        return "\n".join(lines)
    text = " ".join(line.strip() for line in lines)
    # {word} marks a cross-reference to another entry: keep the word. A few
    # entries double the braces ({{VAX}}) or wrap inside them ({ management}).
    text = re.sub(r"\{+\s*([^{}]*?)\s*\}+", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()
