"""Where things live: the repository's data folder and the on-disk cache."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import CourseError

# The repository root when ragutils is installed editable from a clone
# (ragutils/ sits next to data/ and notebooks/).
REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The folder that holds data/<source>/ (override with RAGUTILS_DATA)."""
    root = Path(os.environ.get("RAGUTILS_DATA", REPO_ROOT / "data"))
    if not root.is_dir():
        raise CourseError(
            f"data folder not found: {root} (run from a clone of the course, "
            "or set RAGUTILS_DATA to its data/ folder)"
        )
    return root


def cache_dir(*parts: str) -> Path:
    """A folder under the course cache (RAGUTILS_CACHE, default ~/.cache/ragutils), created on demand."""
    root = Path(os.environ.get("RAGUTILS_CACHE", Path.home() / ".cache" / "ragutils"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
