"""The one store of what the course computes once and reuses: trained models, LoRA adapters, encodings, indexes.

Layout on disk, under the course cache (``config.cache_dir``, default ``~/.cache/ragutils``):

- ``models/<name>/``: one folder per trained model or adapter, holding the files that
  ``save_pretrained`` writes plus ``META_FILE``: ``{"fingerprint": ..., "losses": [...], ...}``.
  ``ready(name, key)`` is true only when the folder is complete and was made with the
  settings whose ``fingerprint`` is ``key``; a model trained with other settings is trained
  again, never shown stale.
- single files (embedding arrays, Faiss indexes) are written with ``atomic_write``.

Every write goes to a temporary file or folder beside its target and is renamed into place
in one step, so an interrupted run leaves the old artefact or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..config import cache_dir
from ..errors import CourseError

META_FILE = "ragutils-meta.json"  # written last into the staging folder: its presence means "complete"


# ---------------------------------------------------------------------------
# Names: fingerprints and checksums
# ---------------------------------------------------------------------------


def fingerprint(value: Any) -> str:
    """A short, stable hash naming what decides an artefact (a string as it is; anything else as sorted JSON)."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_sha256(path: str | Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# Writing all or nothing
# ---------------------------------------------------------------------------


def atomic_write(path: str | Path, write: Callable[[str], Any], durable: bool = False) -> Path:
    """Make the file ``path`` by calling ``write(temp_path)`` on a temporary file beside it, then renaming it in.

    ``durable=True`` also forces the bytes to disk before the rename (for stores whose
    commit point is a later rename, as the live index's versions).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(handle)
    try:
        write(temp)
        os.chmod(temp, 0o644)  # mkstemp makes the file private; a cache file is an ordinary file
        if durable:
            with open(temp, "rb") as written:
                os.fsync(written.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    return path


def atomic_write_text(path: str | Path, text: str, durable: bool = False) -> Path:
    """Write a text file (UTF-8) all or nothing."""
    return atomic_write(path, lambda temp: Path(temp).write_text(text, encoding="utf-8"), durable)


@contextlib.contextmanager
def staged_folder(target: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder beside ``target``; when the block ends without error, it replaces ``target``.

    A replaced folder is moved aside first and deleted after, so a crash at any point
    leaves the old folder or the new one in place, never half of one.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        yield staging
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=target.name + ".old.", dir=target.parent))
            os.replace(target, old / "folder")
            shutil.rmtree(old, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------
# Trained models and adapters: ready / save / load
# ---------------------------------------------------------------------------


def artefact_dir(name: str) -> Path:
    """The cache folder of the trained model or adapter called ``name``."""
    if not name or "/" in name or name.startswith("."):
        raise CourseError(f"not a valid artefact name: {name!r}")
    return cache_dir("models") / name


def read_meta(name: str) -> dict[str, Any]:
    """The metadata saved with an artefact ({} when there is none, or it is unreadable)."""
    path = artefact_dir(name) / META_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        return {}


def ready(name: str, key: str | None = None) -> bool:
    """Whether the artefact is in the store, complete (and, given ``key``, made with that fingerprint)."""
    meta = read_meta(name)
    if not meta:
        return False
    return key is None or meta.get("fingerprint") == key


def save(model: Any, tokenizer: Any, name: str, key: str, meta: dict[str, Any] | None = None,
         losses: Sequence[float] | None = None) -> Path:
    """Save a model (or adapter) and its tokenizer under ``name``, with its fingerprint, losses and metadata, all or nothing."""
    from ..models import quiet_transformers

    record = {**(meta or {}), "fingerprint": key}
    if losses is not None:
        record["losses"] = [round(float(x), 6) for x in losses]
    target = artefact_dir(name)
    with staged_folder(target) as staging:
        with quiet_transformers():  # no per-shard progress bar
            model.save_pretrained(staging)
            if tokenizer is not None:
                tokenizer.save_pretrained(staging)
        (staging / META_FILE).write_text(json.dumps(record, indent=1, sort_keys=True), encoding="utf-8")
    return target


def losses(name: str) -> list[float]:
    """The per-step training losses saved with an artefact."""
    meta = read_meta(name)
    if "losses" not in meta:
        raise CourseError(f"no training losses saved with {name!r} in the cache; train it first")
    return list(meta["losses"])


def load(name: str, model_class: Any, hint: str = "") -> Any:
    """A model saved by ``save`` (from this machine's cache, never the Hub) and its tokenizer, in eval mode."""
    from transformers import AutoTokenizer

    from ..models import LoadedModel, quiet_transformers

    if not ready(name):
        raise CourseError(f"{name!r} is not in the cache yet" + (f"; {hint}" if hint else ""))
    folder = artefact_dir(name)
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = model_class.from_pretrained(folder, local_files_only=True)
    model.eval()
    return LoadedModel(model, tokenizer)
