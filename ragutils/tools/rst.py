"""The Python FAQ from its reStructuredText sources: each question's answer as the text a reader sees.

``read_pyfaq`` is the ``pyfaq`` corpus of data/: the sections of the FAQ pages whose
titles ask a question, with the reST markup (roles, links, literals, directives)
replaced by what Sphinx shows, and code blocks kept, indented.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import CourseError
from .sources import PYDOC_SOURCES, deb_files

_ADORNMENT = re.compile(r"([=\-#*~^\"'+`:._])\1{2,}\s*")
_QUESTION_WORDS = frozenset(
    "how what why is are can do does where when which who should will would could has have".split()
)


def read_pyfaq(deb: Path) -> tuple[list[dict], list[tuple[str, str, bool]]]:
    """The FAQ question/answer pairs of python3.11-doc, and the skipped sections (page, title, has text)."""
    files = deb_files(deb, lambda p: p.startswith(PYDOC_SOURCES) and p.endswith(".rst.txt"))
    docs = {path.removeprefix(PYDOC_SOURCES): raw.decode("utf-8") for path, raw in files.items()}
    faq = sorted(path for path in docs if path.startswith("faq/") and path != "faq/index.rst.txt")
    if not faq:
        raise CourseError(f"{deb.name} has no faq/*.rst.txt under {PYDOC_SOURCES}")
    # :ref:`label` shows the title of the section the label points to; those
    # may live anywhere in the documentation, so collect them from all of it.
    ref_titles = _rst_ref_titles(docs.values())
    records, skipped = [], []
    for path in faq:
        section = path.removeprefix("faq/").removesuffix(".rst.txt")
        for title, body in rst_sections(docs[path]):
            question = rst_inline(title, ref_titles)
            answer = "\n\n".join(rst_blocks(body, ref_titles)).strip()
            if not is_question(question) or not answer:
                # Page and chapter headings, and the odd entry titled by a statement.
                skipped.append((section, question, bool(answer)))
                continue
            if "?" not in question:
                question += "?"  # "How do you remove multiple items from a list"
            records.append({"id": f"pyfaq-{len(records):03d}", "section": section,
                            "question": question, "answer": answer})
    return records, skipped


def is_question(title: str) -> bool:
    """Whether a section title asks a question (has a '?' or starts with a question word)."""
    return "?" in title or title.split(" ", 1)[0].lower() in _QUESTION_WORDS


def _rst_headings(lines: list[str]) -> Iterator[tuple[int, int, str]]:
    """Each heading as (first line, first line after it, title)."""
    i = 0
    while i < len(lines) - 1:
        line = lines[i]
        # An over- and underlined title: ===== / Title / =====
        if _ADORNMENT.fullmatch(line) and i + 2 < len(lines) and lines[i + 1].strip() \
                and _ADORNMENT.fullmatch(lines[i + 2]):
            yield i, i + 3, lines[i + 1].strip()
            i += 3
        # An underlined title, the underline at least as long as the title.
        elif line.strip() and not line[0].isspace() and _ADORNMENT.fullmatch(lines[i + 1]) \
                and len(lines[i + 1].rstrip()) >= len(line.rstrip()):
            yield i, i + 2, line.strip()
            i += 2
        else:
            i += 1


def rst_sections(text: str) -> list[tuple[str, list[str]]]:
    """Split a reST document into (title, body lines) pairs, one per heading of any level."""
    lines = text.split("\n")
    heads = list(_rst_headings(lines))
    sections = []
    for n, (_, body_start, title) in enumerate(heads):
        body_end = heads[n + 1][0] if n + 1 < len(heads) else len(lines)
        sections.append((title, lines[body_start:body_end]))
    return sections


def _rst_ref_titles(docs: Iterable[str]) -> dict[str, str]:
    """Map every reST label (.. _label:) to the title of the heading that follows it."""
    titles = {}
    for text in docs:
        lines = text.split("\n")
        heads = list(_rst_headings(lines))
        for i, line in enumerate(lines):
            match = re.fullmatch(r"\.\. _([^:]+):\s*", line)
            if match:
                following = [title for start, _, title in heads if start > i]
                if following:
                    titles.setdefault(match.group(1).lower(), following[0])
    return titles


def _indent(line: str) -> int:
    """The number of leading spaces of a line."""
    return len(line) - len(line.lstrip(" "))


def dedent_lines(lines: list[str]) -> list[str]:
    """Remove the common indentation of the non-blank lines."""
    width = min((_indent(line) for line in lines if line.strip()), default=0)
    return [line[width:] for line in lines]


def _indented(block: str, prefix: str) -> str:
    """A block with every non-empty line prefixed."""
    return "\n".join(prefix + line if line else line for line in block.split("\n"))


def _code(lines: list[str]) -> str:
    """A literal block as plain text: dedented, then indented by four spaces."""
    lines = dedent_lines(lines)
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join("    " + line.rstrip() if line.strip() else "" for line in lines)


_CODE_DIRECTIVES = {"code-block", "sourcecode", "code", "doctest", "testcode", "testoutput"}
_ADMONITIONS = {"note": "Note", "warning": "Warning", "seealso": "See also", "tip": "Tip",
                "important": "Important", "caution": "Caution", "hint": "Hint", "attention": "Attention"}
_VERSION_NOTES = {"versionadded": "New in version", "versionchanged": "Changed in version",
                  "deprecated": "Deprecated since version"}


def rst_blocks(lines: list[str], refs: dict[str, str]) -> list[str]:
    """Turn reST body lines into plain-text blocks: reflowed prose, lists, indented code."""
    blocks: list[str] = []
    i, n = 0, len(lines)
    literal_next = False  # the previous paragraph ended with "::"
    compact_list = False  # the previous block is a list of one-paragraph items

    def gather(start: int, width: int) -> int:
        """The end of the lines from `start` that are blank or indented by at least `width`."""
        end = start
        while end < n and (not lines[end].strip() or _indent(lines[end]) >= width):
            end += 1
        return end

    while i < n:
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if _indent(line) > 0:
            # An indented block: literal code after "::", otherwise a block quote.
            j = gather(i, 1)
            if literal_next:
                blocks.append(_code(lines[i:j]))
            else:
                blocks.extend(rst_blocks(dedent_lines(lines[i:j]), refs))
            literal_next = compact_list = False
            i = j
            continue
        literal_next = False
        item = _LIST_ITEM.match(line)
        if item:
            # A list item: its body is everything indented under its text,
            # which may hold several paragraphs and code of its own.
            width = item.end()
            j = gather(i + 1, width)
            body = rst_blocks([line[width:]] + [text[width:] for text in lines[i + 1:j]], refs)
            marker = "- " if item.group().strip() in ("*", "+", "-") else item.group().strip() + " "
            rendered = [marker + body[0] if body else marker.strip()]
            rendered += [_indented(block, "  ") for block in body[1:]]
            if compact_list and len(rendered) == 1 and "\n" not in rendered[0]:
                blocks[-1] += "\n" + rendered[0]  # keep a list of short items together
            else:
                blocks.extend(rendered)
            compact_list = len(rendered) == 1 and "\n" not in rendered[0]
            i = j
            continue
        compact_list = False
        if line.startswith(".. "):
            # Explicit markup: a directive, a comment or a link target, with
            # everything indented below it.
            j = gather(i + 1, 1)
            blocks.extend(_rst_directive(lines[i:j], refs))
            i = j
            continue
        j = i
        while j < n and lines[j].strip():
            j += 1
        paragraph = [text.rstrip() for text in lines[i:j]]
        i = j
        # "text::" introduces a literal block and shows as "text:"; a lone
        # "::" or a trailing " ::" shows as nothing.
        if paragraph[-1].endswith("::"):
            literal_next = True
            last = paragraph[-1][:-2]
            paragraph[-1] = last.rstrip() if last.endswith(" ") or not last.strip() else last + ":"
            paragraph = [text for text in paragraph if text.strip()]
            if not paragraph:
                continue
        text = rst_inline(" ".join(part.strip() for part in paragraph), refs)
        blocks.append(re.sub(r"\s+", " ", text).strip())
    return [block for block in blocks if block.strip()]


# Bullets (* - +) and enumerators (1. 1) #.) followed by the item's text.
_LIST_ITEM = re.compile(r"(?:[*+-]|#\.|\d+[.)])\s+")


def _rst_directive(lines: list[str], refs: dict[str, str]) -> list[str]:
    """Plain-text blocks for one explicit markup block (most directives show nothing)."""
    match = re.match(r"\.\. ([\w:-]+)::\s*(.*)", lines[0])
    if not match:
        return []  # a comment (".. XXX") or a link target (".. _label:")
    name, argument = match.groups()
    content = dedent_lines(lines[1:])
    while content and re.match(r":[\w-]+:", content[0]):  # directive options
        content.pop(0)
    if name in _CODE_DIRECTIVES:
        return [_code(content)]
    if name in _ADMONITIONS or name in _VERSION_NOTES:
        if name in _VERSION_NOTES:
            label = f"{_VERSION_NOTES[name]} {argument}"
            body = rst_blocks(content, refs)
        else:
            label = _ADMONITIONS[name]
            body = rst_blocks(([argument] if argument else []) + content, refs)
        return [f"{label}: {body[0]}", *body[1:]] if body else [label + "."]
    # only, contents, index, highlight, toctree, testsetup, ...: markup for
    # Sphinx's output, not text a reader sees.
    return []


_INLINE = re.compile(
    r":(?P<role>[\w.:+-]+):`(?P<role_text>[^`]+)`"         # :func:`len`
    r"|``(?P<literal>.+?)``"                              # ``code``
    r"|`(?P<link>[^`<]*?)\s*<(?P<url>[^`>]*)>`__?"         # `text <https://...>`_
    r"|`(?P<named>[^`]+)`__?"                             # `named link`_
    r"|`(?P<interpreted>[^`]+)`"                          # `default role`
    r"|(?<![\w*\\])\*\*(?P<strong>\S(?:[^*]*\S)?)\*\*(?![\w*])"
    r"|(?<![\w*\\])\*(?P<emphasis>[^\s*](?:[^*]*[^\s*])?)\*(?![\w*])"
    r"|\\(?P<escaped>.)"
)


def rst_inline(text: str, refs: dict[str, str]) -> str:
    """Replace reST inline markup by the text a reader of the HTML page sees."""

    def replace(match: re.Match) -> str:
        kind = match.lastgroup
        if kind == "role_text":
            return _rst_role(match.group("role"), match.group("role_text"), refs)
        if kind == "url":
            return match.group("link") or match.group("url")
        if kind == "escaped":
            return "" if match.group("escaped") == " " else match.group("escaped")
        return match.group(kind)

    return _INLINE.sub(replace, text)


def _rst_role(role: str, text: str, refs: dict[str, str]) -> str:
    """The text Sphinx shows for one role, e.g. :func:`len` → len()."""
    explicit = re.fullmatch(r"(.+?)\s*<([^<>]+)>", text, re.S)
    if explicit:  # :ref:`the tutorial <tutorial-index>` shows "the tutorial"
        return explicit.group(1)
    target = text.lstrip("!")
    if role == "ref":
        return rst_inline(refs.get(target.lower(), target), {})
    if role == "pep":
        return f"PEP {target}"
    if role == "rfc":
        return f"RFC {target}"
    if role == "menuselection":
        return target.replace("-->", ">")
    if target.startswith("~"):  # :meth:`~str.join` shows just "join()"
        target = target[1:].rsplit(".", 1)[-1]
    if role in {"func", "meth", "c:func", "c:macro"} and not target.endswith(")"):
        target += "()"  # Sphinx adds the call parentheses to function roles
    return target

