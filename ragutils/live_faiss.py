"""Exact Faiss search over vectors known by document id, which can be added, updated and deleted.

A plain Faiss index knows vectors by position; deleting one shifts the others.
`LiveFaiss` wraps `IndexFlatIP` in `IndexIDMap2`, which stores a 64-bit id per
vector: `remove_ids` deletes by id, and search returns ids. Our string doc ids
map to integers from a counter that only goes up, and an update removes the old
vector and adds the new one under a *new* integer, so a stale vector can never be
mistaken for the current one. (A flat index compacts its array on removal, so
batch your deletes; IVF indexes remove from their lists; Faiss's HNSW graph
cannot remove at all, which is why systems built on it mark deletions and rebuild
from time to time.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .errors import CourseError
from .faiss_index import as_matrix, search_index
from .live_index import LiveIndex, check_ids
from .retriever import Ranking, check_k

if TYPE_CHECKING:  # imported lazily: faiss takes a moment to import
    import faiss


class LiveFaiss(LiveIndex):
    """Exact inner-product search over vectors with string ids that can be added, updated and deleted.

    An update removes the old vector and adds the new one under a new Faiss id.

    Derived in notebook 14, section 3.
    """

    def __init__(self, dim: int) -> None:
        """An empty index for vectors of `dim` numbers (unit vectors make the inner product the cosine)."""
        import faiss

        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise CourseError(f"dim must be a whole number >= 1, not {dim!r}")
        self.dim = int(dim)
        self.index: faiss.IndexIDMap2 = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        # doc id -> Faiss id. The dict's order is the index's storage order: Faiss
        # appends added vectors and keeps the order of the others on removal.
        self._faiss_id: dict[str, int] = {}
        self._doc_id: dict[int, str] = {}
        self._next_faiss_id = 0  # only ever goes up: a Faiss id is never reused

    @classmethod
    def from_faiss(cls, index: faiss.IndexIDMap2, doc_ids: Sequence[str], faiss_ids: Sequence[int],
                   next_faiss_id: int) -> LiveFaiss:
        """A live index around a Faiss `IndexIDMap2` (a saved one) whose vectors carry `faiss_ids`, those of `doc_ids`.

        CourseError if the Faiss index and the id map do not match.
        """
        import faiss

        ids, faiss_ids = check_ids(doc_ids, "load"), [int(i) for i in faiss_ids]
        if not isinstance(index, faiss.IndexIDMap2):
            raise CourseError(f"a live index wraps a Faiss IndexIDMap2, not {type(index).__name__}")
        if len(ids) != len(faiss_ids) or faiss.vector_to_array(index.id_map).tolist() != faiss_ids:
            raise CourseError(f"the {index.ntotal} vectors of the Faiss index do not carry the "
                              f"{len(faiss_ids)} Faiss ids of the id map")
        if faiss_ids and next_faiss_id <= max(faiss_ids):
            raise CourseError(f"the next Faiss id ({next_faiss_id}) must be above those in use")
        live = cls(index.d)
        live.index = index
        live._faiss_id = dict(zip(ids, faiss_ids))
        live._doc_id = dict(zip(faiss_ids, ids))
        live._next_faiss_id = int(next_faiss_id)
        return live

    def __len__(self) -> int:
        """The number of live documents."""
        return len(self._faiss_id)

    def __contains__(self, doc_id: object) -> bool:
        """Whether `doc_id` is a live document."""
        return doc_id in self._faiss_id

    def __repr__(self) -> str:
        return f"LiveFaiss(dim={self.dim}, {len(self)} documents)"

    @property
    def doc_ids(self) -> list[str]:
        """The live document ids in storage order (an update moves a document last)."""
        return list(self._faiss_id)

    @property
    def faiss_ids(self) -> list[int]:
        """The Faiss id of each live document, in the order of `doc_ids`."""
        return list(self._faiss_id.values())

    @property
    def next_faiss_id(self) -> int:
        """The Faiss id the next added vector gets: above every id ever given, so none is reused."""
        return self._next_faiss_id

    def vectors(self) -> np.ndarray:
        """The stored vectors, one row per id of `doc_ids`."""
        if not self._faiss_id:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.index.reconstruct(faiss_id) for faiss_id in self._faiss_id.values()])

    def search(self, query_vectors: np.ndarray, k: int = 10) -> list[Ranking]:
        """For each query vector, up to k (doc_id, inner product) pairs, best first, as DenseRetriever gives.

        k larger than the index is clamped to its size; an empty index finds nothing.
        """
        check_k(k)
        queries = self._check_vectors(query_vectors, "query vectors")
        if not self._faiss_id or not queries.shape[0]:
            return [[] for _ in range(queries.shape[0])]
        scores, faiss_ids = search_index(self.index, queries, k)
        doc_id = self._doc_id
        return [[(doc_id[i], float(s)) for i, s in zip(row_ids.tolist(), row_scores.tolist()) if i >= 0]
                for row_ids, row_scores in zip(faiss_ids, scores)]

    def _check_vectors(self, vectors: np.ndarray, name: str, n_rows: int | None = None) -> np.ndarray:
        """`vectors` as a C-contiguous float32 (n, dim) matrix of finite numbers; CourseError otherwise."""
        try:
            matrix = as_matrix(vectors, name)
        except (TypeError, ValueError):
            raise CourseError(f"{name} must be an array of numbers, shape (n, {self.dim})") from None
        if matrix.shape[1] != self.dim:
            raise CourseError(f"{name} have {matrix.shape[1]} dimensions but the index holds {self.dim}")
        if n_rows is not None and matrix.shape[0] != n_rows:
            raise CourseError(f"got {n_rows} ids but {matrix.shape[0]} vectors: give one vector per id")
        bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
        if bad.size:
            raise CourseError(f"{name} row {int(bad[0])} holds NaN or infinity")
        return matrix

    def _check_contents(self, vectors: np.ndarray, n_ids: int) -> np.ndarray:
        """The vectors of `n_ids` documents, checked."""
        return self._check_vectors(vectors, "vectors", n_ids)

    def _insert(self, ids: list[str], matrix: np.ndarray) -> None:
        """Add checked vectors under fresh Faiss ids."""
        if not ids:
            return
        faiss_ids = np.arange(self._next_faiss_id, self._next_faiss_id + len(ids), dtype=np.int64)
        self.index.add_with_ids(matrix, faiss_ids)
        self._next_faiss_id += len(ids)
        for doc_id, faiss_id in zip(ids, faiss_ids.tolist()):
            self._faiss_id[doc_id] = faiss_id
            self._doc_id[faiss_id] = doc_id

    def _remove(self, ids: list[str]) -> None:
        """Remove the vectors of live documents, all in one call (each call scans the whole flat index)."""
        import faiss

        if not ids:
            return
        faiss_ids = np.array([self._faiss_id[doc_id] for doc_id in ids], dtype=np.int64)
        removed = self.index.remove_ids(faiss.IDSelectorBatch(faiss_ids))
        if removed != len(ids):  # would mean our id map and Faiss's disagree
            raise RuntimeError(f"Faiss removed {removed} vectors instead of {len(ids)}")
        for doc_id, faiss_id in zip(ids, faiss_ids.tolist()):
            del self._faiss_id[doc_id]
            del self._doc_id[faiss_id]
