"""Hybrid search: fuse the rankings of several retrievers with reciprocal rank fusion (RRF).

Keyword search (BM25) and semantic search (dense vectors) fail on different
queries, so combining them usually finds more than either alone. Their scores
live on different scales (BM25 is unbounded, cosine lies in [-1, 1]), so RRF
ignores scores and fuses *ranks* (Cormack, Clarke and Buettcher, SIGIR 2009):

    rrf(d) = sum over retrievers r of  w_r / (k_rrf + rank_r(d))

rank_r(d) counts from 1 in retriever r's list; a document missing from a list
(or ranked below `depth`) gets nothing from that list. The constant k_rrf
(60 in the paper) flattens the curve: with a large k_rrf, rank 1 and rank 10
weigh almost the same, so a document found by both retrievers at modest ranks
beats one found by a single retriever at the top.

Conventions:
- A document listed twice by the same retriever counts once, at its first
  place, and the documents after it move up (ranks count distinct documents,
  as when passages of one document are mapped to the document's id).
- A retriever with weight 0 is switched off: its documents are not candidates.
- Equal fused scores are broken deterministically: the better best rank
  first, then the earlier retriever (in the order given) of that best rank
  (no two documents share both). Scores are added with `math.fsum`, so the
  same contributions in any order give exactly the same sum: ties are real ties.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from itertools import zip_longest

from .errors import CourseError
from .retriever import Ranking, Retriever, check_k, query_list

_MISSING = object()  # fills the shorter lists when ranks are walked in step


def _check_depth(depth: object) -> None:
    """CourseError unless depth is a whole number >= 1 (the rule of k, under its own name)."""
    try:
        check_k(depth)
    except CourseError:
        raise CourseError(f"depth must be a whole number >= 1, not {depth!r}") from None


def _check_k_rrf(k_rrf: object) -> None:
    """CourseError unless k_rrf is a finite number >= 0."""
    if isinstance(k_rrf, bool) or not isinstance(k_rrf, numbers.Real) or not (k_rrf >= 0 and math.isfinite(k_rrf)):
        raise CourseError(f"k_rrf must be a number >= 0, not {k_rrf!r}")


def _check_weights(weights: Sequence[float] | None, n_lists: int) -> list[float]:
    """The weights to use, one per ranking (all 1 by default); CourseError if they make no sense."""
    if weights is None:
        return [1.0] * n_lists
    weights = [float(w) for w in weights]
    if len(weights) != n_lists:
        raise CourseError(f"got {len(weights)} weights for {n_lists} rankings: give one weight per retriever")
    if not all(w >= 0 and math.isfinite(w) for w in weights):
        raise CourseError(f"weights must be finite and >= 0, not {weights}")
    if not any(w > 0 for w in weights):
        raise CourseError("at least one weight must be > 0")
    return weights


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Ranking]],
    k_rrf: float = 60,
    weights: Sequence[float] | None = None,
    depth: int | None = None,
    k: int | None = None,
) -> list[Ranking]:
    """Fuse, query by query, several retrievers' ranked lists into one: (doc_id, RRF score), best first.

    `rankings[r][q]` is retriever r's ranked (doc_id, score) list for query q;
    only its first `depth` entries count (all if None); `k` keeps the k best of
    each fused list (all if None).

    Derived in notebook 04, section 2.
    """
    if isinstance(rankings, (str, bytes)) or len(rankings) == 0:
        raise CourseError("give at least one ranking to fuse (one list of results per retriever)")
    n_queries = len(rankings[0])
    if any(len(ranking) != n_queries for ranking in rankings):
        sizes = ", ".join(str(len(ranking)) for ranking in rankings)
        raise CourseError(f"every retriever must answer the same queries: got result lists for {sizes} queries")
    _check_k_rrf(k_rrf)
    if depth is not None:
        _check_depth(depth)
    if k is not None:
        check_k(k)
    weights = _check_weights(weights, len(rankings))

    active = [(ranking, weight) for ranking, weight in zip(rankings, weights) if weight > 0]
    fused: list[Ranking] = []
    for query in range(n_queries):
        # Each list's distinct doc ids, in rank order (a duplicate keeps its first place).
        lists = [list(dict.fromkeys(doc_id for doc_id, _score in ranking[query][:depth])) for ranking, _ in active]
        parts: dict[str, list[float]] = {}  # doc -> its contributions, one per list that has it
        # Walk rank 1 of every list, then rank 2, ...: a doc enters `parts` at its best rank,
        # from the earliest retriever with that rank, which is the tie-break order.
        for rank, row in enumerate(zip_longest(*lists, fillvalue=_MISSING), start=1):
            for doc_id, (_, weight) in zip(row, active):
                if doc_id is not _MISSING:
                    parts.setdefault(doc_id, []).append(weight / (k_rrf + rank))
        # fsum is exactly rounded: equal contributions give equal sums, whatever their order.
        scores = {doc_id: math.fsum(values) for doc_id, values in parts.items()}
        order = sorted(scores, key=lambda doc_id: -scores[doc_id])  # stable: ties keep the walk's order
        fused.append([(doc_id, scores[doc_id]) for doc_id in order[:k]])
    return fused


class HybridRetriever:
    """Several retrievers behind one `search`: each returns `depth` candidates, RRF fuses them.

    Used in notebook 04, section 2.
    """

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        k_rrf: float = 60,
        depth: int = 100,
        weights: Sequence[float] | None = None,
    ) -> None:
        """Fuse `retrievers` (in this order) with RRF constant `k_rrf`, `depth` candidates each."""
        if isinstance(retrievers, (str, bytes)) or len(retrievers) == 0:
            raise CourseError("a hybrid retriever needs at least one retriever")
        if not all(callable(getattr(retriever, "search", None)) for retriever in retrievers):
            raise CourseError("every retriever must have a search(queries, k) method")
        _check_depth(depth)
        self.retrievers = list(retrievers)
        self.weights = _check_weights(weights, len(self.retrievers))
        _check_k_rrf(k_rrf)
        self.k_rrf = k_rrf
        self.depth = depth

    def __repr__(self) -> str:
        names = ", ".join(type(retriever).__name__ for retriever in self.retrievers)
        return f"HybridRetriever([{names}], k_rrf={self.k_rrf}, depth={self.depth}, weights={self.weights})"

    def candidates(self, queries: Sequence[str]) -> list[list[Ranking]]:
        """Each retriever's `depth` best (doc_id, score) lists for the queries, in retriever order."""
        queries = query_list(queries)
        return [retriever.search(queries, self.depth) for retriever in self.retrievers]

    def search(self, queries: Sequence[str], k: int = 10) -> list[Ranking]:
        """For each query, the k best documents by fused RRF score, as (doc_id, score), best first."""
        check_k(k)
        return reciprocal_rank_fusion(self.candidates(queries), self.k_rrf, self.weights, self.depth, k)
