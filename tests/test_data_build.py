"""Tests of ragutils.tools.data_build: data/ rebuilds byte for byte, from its sources or from the corpora."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragutils.config import cache_dir, data_dir
from ragutils.errors import CourseError
from ragutils.tools import data_build
from ragutils.tools.sources import SOURCES

DATA = data_dir()


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root, by relative path, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_same_tree(built: Path, committed: Path) -> None:
    """Two folders hold the same files with the same bytes."""
    new, old = tree(built), tree(committed)
    assert sorted(new) == sorted(old), f"file lists differ: {sorted(set(new) ^ set(old))}"
    differ = [name for name in new if new[name] != old[name]]
    assert not differ, f"files differ from the committed ones: {differ}"


def test_build_derived_reproduces_the_committed_files(tmp_path, capsys):
    counts = data_build.build_derived(DATA, tmp_path)
    assert_same_tree(tmp_path, DATA / "derived")
    assert counts["qa/train"] > 0


def test_full_rebuild_from_cached_sources(tmp_path):
    folder = cache_dir("sources")
    missing = [s.filename for s in SOURCES.values() if not (folder / s.filename).is_file()]
    if missing:
        pytest.skip(f"source archives not in {folder} ({', '.join(missing)}); `ragutils data build` fetches them")
    data_build.build(tmp_path / "data", folder)
    assert_same_tree(tmp_path / "data", DATA)


def test_build_derived_without_corpora_says_not_found(tmp_path):
    with pytest.raises(CourseError, match="not found"):
        data_build.build_derived(tmp_path, tmp_path / "out")
