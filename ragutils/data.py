"""The course data: load the corpora and the derived sets of data/, through `datasets` or as plain records.

Three corpora from licensed sources (``CORPORA``: Wikipedia lead summaries, the
Jargon File, the Python FAQ) and the training and evaluation sets derived from them
(``DERIVED``), split into train, dev and test by a salted hash (``split_of``); every
set made from the wiki follows its articles' titles (``article_split``), so an article
is in one split everywhere. Every file is JSON Lines, one record per line with sorted
keys. Building data/ from its sources is machinery: ``ragutils.tools.data_build``
(``ragutils data build``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from .config import cache_dir, data_dir, progress_disabled
from .errors import CourseError

if TYPE_CHECKING:  # imported lazily at run time: `datasets` takes seconds to import
    import datasets

CORPORA = ("wiki", "jargon", "pyfaq")
DERIVED = ("retrieval", "qa", "topics", "retriever_pairs", "jargon_mlm")
SPLITS = ("train", "dev", "test")
# Fact QA (data/derived/factqa) is no train/dev/test set of one kind: its files are named for how they were made.
FACTQA_PARTS = ("generated_train", "generated_dev", "hand_dev", "hand_test", "hand_unanswerable")
FACTQA_TYPES = ("date", "year", "number", "person", "place", "organization", "work", "other")

# The split of an item is a hash of a stable key (an article's title, a jargon
# entry's text), salted with this string. A hash, not a shuffle: adding or
# removing one article never moves any other article to another split.
SPLIT_SALT = "ragutils-split-v1"

REBUILD_HINT = "rebuild with `ragutils data build`"


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load_corpus(name: str) -> datasets.Dataset:
    """Load one corpus ("wiki", "jargon" or "pyfaq") as a `datasets.Dataset`. Used in notebook 00, section 2."""
    if name not in CORPORA:
        raise CourseError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}")
    path = data_dir() / name / f"{name}.jsonl"
    if not path.is_file():
        raise CourseError(f"corpus {name!r} not found: {path}; {REBUILD_HINT}")
    return _load_json({"train": path}, split="train")


def passage_text(title: str, text: str) -> str:
    """The passage every retriever indexes and every prompt shows: the title, then the text.

    Used in notebook 06, section 2.
    """
    # The title often names the answer ("Aardvark"), and the lead text rarely
    # repeats it in full, so keyword and dense search both index it.
    return f"{title}. {text}"


def wiki_records() -> list[dict]:
    """The wiki articles as plain dicts, read without `datasets` (whose import alone takes ~1 s).

    The command line (`ragutils ask`) needs only ids, titles and texts; loading them
    this way keeps a warm answer within seconds.

    Used in notebook 07, section 1.
    """
    path = data_dir() / "wiki" / "wiki.jsonl"
    if not path.is_file():
        raise CourseError(f"corpus 'wiki' not found: {path}; {REBUILD_HINT}")
    return read_jsonl(path)


def wiki_passages(records: list[dict] | None = None) -> tuple[list[str], list[str], list[str]]:
    """The wiki corpus as three aligned lists: doc ids, titles and passages (title + text).

    `records` are the rows of `wiki_records()`, if the caller has them already.

    Used in notebook 02, section 4.2.
    """
    records = wiki_records() if records is None else records
    return ([r["id"] for r in records], [r["title"] for r in records],
            [passage_text(r["title"], r["text"]) for r in records])


def article_split(title: str) -> str:
    """The split ("train", "dev" or "test") of a wiki article, from its title: the split of every derived set.

    Used in notebook 09, section 3.
    """
    return split_of(title)


def split_of(key: str, train: int = 80, dev: int = 10) -> str:
    """The split ("train", "dev" or "test") of a key: a salted hash into 100 buckets, the first `train` train.

    Used in notebook 00.
    """
    digest = hashlib.sha256(f"{SPLIT_SALT}:{key}".encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    return "train" if bucket < train else "dev" if bucket < train + dev else "test"


def load_split(name: str) -> datasets.DatasetDict:
    """Load one derived set (see DERIVED) as a `datasets.DatasetDict` of its splits. Used in notebook 00, section 2."""
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


def factqa(part: str) -> list[dict]:
    """The rows of one file of fact QA (see FACTQA_PARTS): questions whose answer is a span inside the article.

    "hand_dev" and "hand_test" are written by hand, the way a person asks, about dev- and
    test-split articles; "hand_unanswerable" asks what no article says (`answers` is
    empty); "generated_train" and "generated_dev" are made from sentence patterns, each
    with the answer's character offset in the article's text (`answer_start`).

    Used in notebook 07.
    """
    if part not in FACTQA_PARTS:
        raise CourseError(f"unknown fact-QA file {part!r}; known files: {', '.join(FACTQA_PARTS)}")
    return read_jsonl(data_dir() / "derived" / "factqa" / f"{part}.jsonl")


def _load_json(files: dict[str, Path], split: str | None = None) -> datasets.Dataset | datasets.DatasetDict:
    """Read JSON Lines files with `datasets`, cached under the course cache."""
    import datasets  # here, so that `import ragutils.data` stays fast for the CLI

    # A first read converts the file to Arrow behind a "Generating split" bar: drawn for
    # someone watching, kept out of logs (config.progress_disabled).
    if progress_disabled():
        datasets.disable_progress_bars()
    else:
        datasets.enable_progress_bars()
    # datasets keys its cache on each local file's path and modification time,
    # so an edited or rebuilt file is read again rather than served stale.
    return datasets.load_dataset(
        "json",
        data_files={key: str(path) for key, path in files.items()},
        split=split,
        cache_dir=str(cache_dir("datasets")),
    )


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON Lines file of data/, or CourseError saying how to rebuild it. Used in notebook 00."""
    if not path.is_file():
        raise CourseError(f"{path.parent.name} not found: {path}; {REBUILD_HINT}")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
