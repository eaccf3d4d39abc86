"""Where things live (the repository's data folder and the on-disk cache), progress bars and torch threads."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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


def progress_disabled(show: bool = True) -> bool:
    """Whether a progress bar should stay hidden: not asked for, TQDM_DISABLE set (headless runs), or no one to see it.

    tqdm reads TQDM_DISABLE only as a default, which an explicit `disable=False` overrides;
    checking it here keeps bars out of headless notebook runs, so that a cold cache (which
    encodes, and would draw a bar) gives the same outputs as a warm one.
    """
    if not show or os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false"):
        return True
    # A bar is for a person watching: a terminal, or a notebook (which draws it as a widget).
    # In a log file its carriage-return frames are hundreds of lines of noise.
    return not (sys.stderr.isatty() or "ipykernel" in sys.modules)


def set_torch_threads() -> int:
    """Give torch one thread per core this process may run on (RAGUTILS_THREADS overrides); returns the count.

    The course's matrix products split their output rows between threads, not their
    sums, so on the machines we checked one thread and two give the same numbers bit for
    bit, and two are 1.7-2.3x faster on a quiet 2-core machine. On cores that other
    programs keep busy, set RAGUTILS_THREADS=1: OpenMP threads that wait for each other
    can be slower than one.
    """
    import torch

    asked = os.environ.get("RAGUTILS_THREADS", "").strip()
    if asked:
        if not asked.isdigit() or int(asked) < 1:
            raise CourseError(f"RAGUTILS_THREADS must be a whole number >= 1, not {asked!r}")
        threads = int(asked)
    else:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return threads


# Threads while training. Training updates LayerNorm weights, whose gradients are sums over every
# position of a batch, and threads split those sums: the trained weights, and every score printed
# from them, change in their last digits with the thread count. So training uses a fixed count,
# not "every core", and every machine trains the same model. Two: Colab's and CI's core count.
TRAINING_THREADS = 2


@contextmanager
def torch_threads(threads: int) -> Iterator[int]:
    """Run a block with torch on exactly ``threads`` threads, then give back the count it had."""
    import torch

    if threads < 1:
        raise CourseError(f"torch needs at least one thread, not {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)
