"""Saving live indexes: versions, written so that a crash never leaves a reader with half of one.

A crash halfway through writing an index must not leave a reader with half an
index. `IndexStore` never overwrites a file that a reader may use:

1. every save writes a complete new version into a staging folder
   (`.staging-...`), with a `manifest.json` that lists each file's SHA-256, and
   forces the bytes to disk (fsync);
2. it renames the staging folder to `v000007/` (a rename within one folder is
   atomic: the version is there entirely or not at all);
3. it points the `CURRENT` file at the new version, by writing a temporary file
   and renaming it over `CURRENT` (atomic too);
4. it deletes versions older than the last `keep`.

A crash before step 3 leaves `CURRENT` on the previous version, which `load`
reads and checks against its manifest. Nothing is tidied up after a failed
write (a killed process would get no chance either): the next save removes what
a failed one left behind. Lucene commits the same way (new segment files, then a
new `segments_N` file that names them), as do databases with their write-ahead logs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from .errors import CourseError
from .live_bm25 import LiveBM25
from .live_faiss import LiveFaiss
from .tools.store import atomic_write, atomic_write_text, file_sha256

# The on-disk layout. The format's name, written into every manifest, is the module
# that first wrote it: renaming it would make every saved version unloadable.
STORE_FORMAT = "ragutils.live_index"
STORE_FORMAT_VERSION = 1
CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"
VERSION_NAME = re.compile(r"^v(\d{6,})$")
# What a save leaves behind when it fails: cleaned up by the next save.
STAGING_PREFIX = ".staging-"
TRASH_PREFIX = ".trash-"
CURRENT_TEMP_PREFIX = CURRENT_FILE + "."  # atomic_write's temporary file beside CURRENT: CURRENT.<random>.tmp
DEFAULT_KEEP = 3


@dataclass
class StoredIndex:
    """One saved version: its number, its manifest, and the indexes it holds (None if not saved).

    Used in notebook 14.
    """

    version: int
    manifest: dict
    bm25: LiveBM25 | None
    dense: LiveFaiss | None


def _version_name(version: int) -> str:
    """The folder name of a version: v000007."""
    return f"v{version:06d}"


def _fsync_dir(path: Path) -> None:
    """Force a folder's entries (new names, renames) to disk, where the system allows it."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:  # some systems (Windows) cannot open a folder: renames are durable enough there
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _write_json(path: Path, value: Any) -> None:
    """Write `value` as a JSON file, forced to disk."""
    atomic_write_text(path, json.dumps(value, ensure_ascii=False) + "\n", durable=True)


def _read_json(path: Path) -> Any:
    """A JSON file's value; CourseError if it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CourseError(f"cannot read {path}: {error}") from None


def _write_bm25(folder: Path, index: LiveBM25) -> list[str]:
    """Write a BM25 index, compacted, as bm25.json (parameters, terms, ids) and bm25.npz (counts); their names."""
    terms, doc_ids, counts = index.term_counts()
    _write_json(folder / "bm25.json", {**index.parameters(), "terms": terms, "doc_ids": doc_ids})

    def write_arrays(temp: str) -> None:
        with open(temp, "wb") as handle:
            # Plain arrays, no pickle: loading them can never run code.
            np.savez(handle, tf=counts.data.astype(np.int64), term_ids=counts.indices.astype(np.int64),
                     row_starts=counts.indptr.astype(np.int64))

    atomic_write(folder / "bm25.npz", write_arrays, durable=True)
    return ["bm25.json", "bm25.npz"]


def _read_bm25(folder: Path) -> LiveBM25:
    """The BM25 index written by `_write_bm25`."""
    state = _read_json(folder / "bm25.json")
    try:
        parameters = {name: state[name] for name in
                      ("variant", "k1", "b", "delta", "negative_idf", "epsilon", "stopwords")}
        terms, doc_ids = list(state["terms"]), list(state["doc_ids"])
        with np.load(folder / "bm25.npz", allow_pickle=False) as arrays:
            tf, term_ids, row_starts = arrays["tf"], arrays["term_ids"], arrays["row_starts"]
        counts = sparse.csr_array((tf.astype(np.float64), term_ids, row_starts), shape=(len(doc_ids), len(terms)))
        counts.check_format()
        return LiveBM25.from_term_counts(terms, doc_ids, counts, **parameters)
    except (KeyError, TypeError, ValueError, OSError, CourseError) as error:
        raise CourseError(f"the BM25 index in {folder} is corrupt: {error}") from None


def _write_dense(folder: Path, index: LiveFaiss) -> list[str]:
    """Write a Faiss index as dense.faiss (Faiss's own format) and dense.json (the id map); their names."""
    import faiss

    atomic_write(folder / "dense.faiss", lambda temp: faiss.write_index(index.index, temp), durable=True)
    _write_json(folder / "dense.json", {"dim": index.dim, "next_faiss_id": index.next_faiss_id,
                                        "doc_ids": index.doc_ids, "faiss_ids": index.faiss_ids})
    return ["dense.faiss", "dense.json"]


def _read_dense(folder: Path) -> LiveFaiss:
    """The Faiss index written by `_write_dense`, checked against its id map."""
    import faiss

    state = _read_json(folder / "dense.json")
    try:
        dim, next_faiss_id = int(state["dim"]), int(state["next_faiss_id"])
        doc_ids, faiss_ids = list(state["doc_ids"]), [int(i) for i in state["faiss_ids"]]
        stored = faiss.read_index(str(folder / "dense.faiss"))
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CourseError(f"the Faiss index in {folder} is corrupt: {error}") from None
    try:
        if stored.d != dim:
            raise CourseError(f"it holds vectors of {stored.d} numbers, not {dim}")
        return LiveFaiss.from_faiss(stored, doc_ids, faiss_ids, next_faiss_id)
    except CourseError as error:
        raise CourseError(f"the Faiss index in {folder} does not match its id map dense.json: {error}") from None


def _write_manifest(folder: Path, manifest: dict) -> None:
    """Write manifest.json, the last file of a version: it lists every other file and its checksum."""
    _write_json(folder / MANIFEST_FILE, manifest)


def _point_current(folder: Path, name: str) -> None:
    """Make CURRENT name the version folder `name`, atomically: a reader sees the old name or the new one."""
    atomic_write_text(folder / CURRENT_FILE, name + "\n", durable=True)  # the commit point of a save
    _fsync_dir(folder)


class IndexStore:
    """A folder of saved index versions (v000001/, v000002/, ...) and a CURRENT file naming the one to load.

    One writer at a time: two processes saving into the same folder at once
    would clean up each other's staging folders.

    Derived in notebook 14, section 3.
    """

    def __init__(self, folder: str | Path, keep: int = DEFAULT_KEEP) -> None:
        """A store in `folder` (created on the first save) that keeps the last `keep` versions."""
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise CourseError(f"keep must be a whole number of versions >= 1, not {keep!r}")
        self.folder = Path(folder)
        self.keep = keep

    def __repr__(self) -> str:
        return f"IndexStore({str(self.folder)!r}, keep={self.keep})"

    def versions(self) -> list[int]:
        """The version numbers with a folder here, oldest first (an unfinished save may have left the newest)."""
        if not self.folder.is_dir():
            return []
        found = (VERSION_NAME.match(entry.name) for entry in self.folder.iterdir() if entry.is_dir())
        return sorted(int(match.group(1)) for match in found if match)

    def current_version(self) -> int | None:
        """The version CURRENT names, or None if no save has finished here."""
        path = self.folder / CURRENT_FILE
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise CourseError(f"cannot read {path}: {error}") from None
        match = VERSION_NAME.match(text)
        if not match:
            raise CourseError(f"{path} is corrupt: it should name a version folder like v000001, "
                              f"not {text[:40]!r}")
        return int(match.group(1))

    def save(self, bm25: LiveBM25 | None = None, dense: LiveFaiss | None = None) -> int:
        """Save the indexes as a new version, make it current, prune old versions; returns the version number."""
        if bm25 is None and dense is None:
            raise CourseError("nothing to save: give bm25=, dense= or both")
        if bm25 is not None and not isinstance(bm25, LiveBM25):
            raise CourseError(f"bm25 must be a LiveBM25, not {type(bm25).__name__}")
        if dense is not None and not isinstance(dense, LiveFaiss):
            raise CourseError(f"dense must be a LiveFaiss, not {type(dense).__name__}")
        self.folder.mkdir(parents=True, exist_ok=True)
        current = self.current_version()
        self._clean_up(current)
        version = max([current or 0, *self.versions()]) + 1

        # 1. A complete version in a staging folder that no reader looks at.
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.folder))
        files: list[str] = []
        parts: dict[str, dict] = {}
        if bm25 is not None:
            files += _write_bm25(staging, bm25)
            parts["bm25"] = {"documents": len(bm25), "variant": bm25.variant}
        if dense is not None:
            files += _write_dense(staging, dense)
            parts["dense"] = {"documents": len(dense), "dim": dense.dim}
        # Checksums of the bytes as they are on disk, read back after writing.
        manifest = {"format": STORE_FORMAT, "format_version": STORE_FORMAT_VERSION, "version": version,
                    "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "parts": parts,
                    "files": {name: file_sha256(staging / name) for name in files}}
        _write_manifest(staging, manifest)
        _fsync_dir(staging)
        # 2. Publish the folder under its version name: all of it, or none of it.
        os.rename(staging, self.folder / _version_name(version))
        _fsync_dir(self.folder)
        # 3. Move CURRENT: from here on, load() returns the new version.
        _point_current(self.folder, _version_name(version))
        # 4. Only now is it safe to delete the oldest versions.
        self._prune(version)
        return version

    def load(self, version: int | None = None) -> StoredIndex:
        """The current version (or `version`), checked against its manifest; CourseError if missing or corrupt."""
        if not self.folder.is_dir():
            raise CourseError(f"no index folder at {self.folder}: save an index there first")
        if version is None:
            version = self.current_version()
            if version is None:
                raise CourseError(f"no {CURRENT_FILE} file in {self.folder}: no save has finished there")
        path = self.folder / _version_name(version)
        if not path.is_dir():
            raise CourseError(f"version {version} is not in {self.folder} (versions there: {self.versions()})")
        manifest = _read_json(path / MANIFEST_FILE)
        if not (isinstance(manifest, dict) and manifest.get("format") == STORE_FORMAT
                and manifest.get("version") == version and isinstance(manifest.get("files"), dict)
                and isinstance(manifest.get("parts"), dict)):
            raise CourseError(f"{path / MANIFEST_FILE} is not a manifest of version {version}")
        if manifest.get("format_version") != STORE_FORMAT_VERSION:
            raise CourseError(f"{path} was saved in format {manifest.get('format_version')}; "
                              f"this ragutils reads format {STORE_FORMAT_VERSION}")
        for name, checksum in manifest["files"].items():
            file = path / name
            if not file.is_file():
                raise CourseError(f"{file} is missing: version {version} is incomplete")
            if file_sha256(file) != checksum:
                raise CourseError(f"{file} does not match its checksum: the file is corrupt "
                                  f"(an older version may load: load(version=...), versions {self.versions()})")
        parts = manifest["parts"]
        bm25 = _read_bm25(path) if "bm25" in parts else None
        dense = _read_dense(path) if "dense" in parts else None
        for name, index in (("bm25", bm25), ("dense", dense)):
            if index is not None and len(index) != parts[name].get("documents"):
                raise CourseError(f"the {name} index in {path} holds {len(index)} documents, "
                                  f"the manifest says {parts[name].get('documents')}")
        return StoredIndex(version, manifest, bm25, dense)

    def _clean_up(self, current: int | None) -> None:
        """Remove what failed saves left: staging folders, half-deleted versions, CURRENT temp files,
        and version folders newer than CURRENT (renamed into place, but never made current)."""
        for entry in self.folder.iterdir():
            name = entry.name
            match = VERSION_NAME.match(name)
            unpublished = match is not None and current is not None and int(match.group(1)) > current
            if name.startswith((STAGING_PREFIX, TRASH_PREFIX)) or unpublished:
                shutil.rmtree(entry, ignore_errors=True)
            elif name.startswith(CURRENT_TEMP_PREFIX) and entry.is_file():
                entry.unlink(missing_ok=True)

    def _prune(self, current: int) -> None:
        """Delete all but the newest `keep` versions, never the current one."""
        older = [version for version in self.versions() if version < current]
        for version in older[: max(0, len(older) - (self.keep - 1))]:
            # Renamed aside first, so a version folder is either complete or absent,
            # even if the deletion is interrupted.
            trash = Path(tempfile.mkdtemp(prefix=TRASH_PREFIX, dir=self.folder))
            os.rename(self.folder / _version_name(version), trash / "version")
            shutil.rmtree(trash, ignore_errors=True)
