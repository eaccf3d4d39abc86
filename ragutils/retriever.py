"""The retriever interface: what every retriever of the course answers, and how it checks k.

A retriever is anything with ``search(queries, k)`` that returns, for each query, a
ranked list of ``(doc_id, score)`` pairs, best first. BM25 (``bm25.BM25Retriever``),
dense (``dense.DenseRetriever``), hybrid (``hybrid.HybridRetriever``) and engine
(``engines.TantivyRetriever``) retrievers all satisfy it, so the RAG pipeline and the
evaluators never care which one they get. Notebook 04 puts them side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .errors import CourseError

# One query's results: (doc_id, score) pairs, best first.
Ranking = list[tuple[str, float]]


class Retriever(Protocol):
    """Anything with `search(queries, k)` that gives ranked (doc_id, score) lists. Used in notebook 04."""

    def search(self, queries: Sequence[str], k: int) -> list[Ranking]:
        """For each query, up to k (doc_id, score) pairs, best first."""
        ...


def check_k(k: int) -> None:
    """CourseError unless k is a whole number >= 1. Used in notebook 04."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise CourseError(f"k must be a whole number >= 1, not {k!r}")


def query_list(queries: Sequence[str]) -> list[str]:
    """The queries of one search as a list; CourseError for a single string (wrap it as [query]). Used in notebook 04."""
    if isinstance(queries, str):
        raise CourseError("search takes a list of queries: wrap a single query as [query]")
    return list(queries)
