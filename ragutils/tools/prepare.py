"""``ragutils prepare`` (``make caches``): the one-time work that teaches nothing, done before any notebook runs.

A fresh clone has empty caches. Some of what fills them is a lesson (a training run a
notebook explains, its loss curve drawn as it goes) and stays in its notebook. The
rest only has to exist: the generator de-quantised from its GGUF file, the corpora
and their sentences encoded (notebook 03 reads them, notebook 03's scaling set and
later notebooks search them). ``prepare`` does that work job by job, each with its own
progress bar and ETA on a terminal, and a line per job saying what it did and how long
it took. Every job is resumable or atomic, so an interrupted ``prepare`` continues
where it stopped (an encoding from its last checkpoint), and a finished job costs
seconds the next time.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from ..errors import CourseError


class Job(NamedTuple):
    """One piece of one-time work: a short name (``--only``), what it makes, and the function that makes it."""

    name: str
    makes: str
    run: Callable[[], object]


def _load_model(role: str) -> Callable[[], object]:
    def run() -> object:
        from .. import models

        return models.load(role)
    return run


def _encode_corpus(name: str) -> Callable[[], object]:
    def run() -> object:
        from ..embeddings import corpus_embeddings

        return corpus_embeddings(name)
    return run


def _scaling_set() -> object:
    from ..faiss_scaling import scaling_vectors

    return scaling_vectors()


JOBS = (
    Job("encoder", "the encoder (all-MiniLM-L6-v2) loaded once", _load_model("encoder")),
    Job("generator", "the generator de-quantised from its GGUF file and saved", _load_model("generator")),
    Job("wiki", "the wiki's passages encoded (notebook 03, and every dense search after it)", _encode_corpus("wiki")),
    Job("jargon", "the Jargon File's entries encoded (notebook 03's scaling set)", _encode_corpus("jargon")),
    Job("pyfaq", "the Python FAQ's entries encoded (notebook 03's scaling set)", _encode_corpus("pyfaq")),
    Job("sentences", "every sentence of the three corpora encoded: the scaling set of notebook 03", _scaling_set),
)


def chosen_jobs(only: str | None = None) -> list[Job]:
    """The jobs to run: all, or those named in a comma-separated ``only`` ("wiki,generator"), in their order."""
    if not only:
        return list(JOBS)
    names = [name.strip() for name in only.split(",") if name.strip()]
    known = [job.name for job in JOBS]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise CourseError(f"no prepare job named {(unknown or [only])[0]!r}; choose from: {', '.join(known)}")
    return [job for job in JOBS if job.name in names]


def prepare(jobs: Sequence[Job] = JOBS, out: object = None) -> dict[str, float]:
    """Run each job in turn, saying what it makes and how long it took; the seconds per job.

    A job that fails stops the run with a CourseError that names it and the command
    that resumes from there; what earlier jobs made stays in the cache.
    """
    out = out or sys.stdout
    seconds: dict[str, float] = {}
    for number, job in enumerate(jobs, start=1):
        print(f"[{number}/{len(jobs)}] {job.name}: {job.makes} ...", file=out, flush=True)
        start = time.perf_counter()
        try:
            job.run()
        except CourseError:
            raise
        except Exception as error:  # one clear line; the cache keeps what is done
            remaining = ",".join(j.name for j in jobs[number - 1:])
            raise CourseError(f"prepare job {job.name!r} failed ({type(error).__name__}: {error}); "
                              f"to continue: ragutils prepare --only {remaining}") from error
        seconds[job.name] = time.perf_counter() - start
        print(f"[{number}/{len(jobs)}] {job.name}: done in {seconds[job.name]:.0f} s", file=out, flush=True)
    print(f"prepared {len(jobs)} job(s) in {sum(seconds.values()):.0f} s", file=out, flush=True)
    return seconds
