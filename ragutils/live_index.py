"""Keeping the knowledge base current: add, update and delete documents without rebuilding the index.

A RAG system answers from its index, so the index must follow the documents:
an article is edited, a page is retracted, a new one appears. Rebuilding from
scratch is the simple answer: BM25 over the 10,033 wiki passages takes a few
tenths of a second. But the cost grows with the corpus (a dense index must also
re-encode every passage, minutes on a laptop CPU), while changing 3 documents
should cost in proportion to 3 documents: updating 10 wiki passages here takes
about a millisecond. This module changes an index in place, and proves it
right: after any sequence of add / update / delete, the results equal those of
a full rebuild on the same documents.

BM25: segments and tombstones, as Lucene does it
-------------------------------------------------
`bm25.BM25Index` precomputes idf(t) x tfc for every (term, document) pair. That
is fast to query but cannot be updated: N (the number of documents), avgdl (their
average length) and n(t) (how many contain t) enter every score, so one new
document changes them all. `LiveBM25` therefore stores what does *not* change
when other documents come and go, and computes the rest at query time:

- Segments. Each `add` writes a new immutable *segment*: the term counts tf(t, d)
  of its documents as a sparse matrix, plus their lengths. Nothing already
  written is ever modified, which is what makes adding cheap.
- Tombstones. A deleted document is not removed from its segment (that would
  rewrite it); it gets a tombstone, a False in the segment's `live` mask, and
  searches skip it. An update is a delete plus an add: the old version gets a
  tombstone, the new one goes into a new segment. A tombstone is never lifted,
  so a deleted or replaced text can never come back.
- Collection statistics, kept current. The index keeps n(t) for every term, the
  number of live documents and their total length: an add adds a document's
  terms and length, a delete subtracts them. At query time, idf and avgdl come
  from these current numbers, and only the query's terms are scored (their
  postings, the documents that contain them). So the scores are exactly those
  of a full rebuild. (Lucene itself leaves deleted documents in its statistics
  until a merge, so its scores drift slightly; subtracting at once costs little
  and keeps the "same as a rebuild" promise testable.)
- Merges. Many small segments make searches slower (one lookup per segment),
  and tombstones waste space. Segments are merged into one, dropping tombstoned
  documents: automatically when the newest segment grows to half the size of
  the one before it (so there are about log2(N) segments), and all at once with
  `compact()`. A merge keeps the documents in order, so results do not change.

Faiss: ids instead of positions
-------------------------------
A plain Faiss index knows vectors by position; deleting one shifts the others.
`LiveFaiss` wraps `IndexFlatIP` in `IndexIDMap2`, which stores a 64-bit id per
vector: `remove_ids` deletes by id, and search returns ids. Our string doc ids
map to integers from a counter that only goes up, and an update removes the old
vector and adds the new one under a *new* integer, so a stale vector can never be
mistaken for the current one. (A flat index compacts its array on removal, so
batch your deletes; IVF indexes remove from their lists; Faiss's HNSW graph
cannot remove at all, which is why systems built on it mark deletions and rebuild
from time to time.)

Saving: versions, written atomically
------------------------------------
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

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from .bm25 import (
    DEFAULT_DELTA,
    check_k,
    check_parameters,
    floor_negative_idf,
    idf,
    term_frequency_component,
    top_k_of,
)
from .dense import _as_matrix, search_index
from .errors import CourseError
from .text import tokenize_many, validate_query

if TYPE_CHECKING:  # imported lazily: faiss takes a moment to import
    import faiss

# The on-disk layout (see IndexStore).
STORE_FORMAT = "ragutils.live_index"
STORE_FORMAT_VERSION = 1
CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"
VERSION_NAME = re.compile(r"^v(\d{6,})$")
# What a save leaves behind when it fails: cleaned up by the next save.
STAGING_PREFIX = ".staging-"
TRASH_PREFIX = ".trash-"
CURRENT_TEMP_PREFIX = CURRENT_FILE + "."
DEFAULT_KEEP = 3


# ----------------------------------------------------------------------------
# Checking inputs (shared by both indexes)
# ----------------------------------------------------------------------------


def _check_ids(doc_ids: Sequence[str], action: str) -> list[str]:
    """The ids as a list, after checking they are strings, each given once; CourseError otherwise."""
    if isinstance(doc_ids, str):
        raise CourseError(f"{action} takes a list of document ids: wrap a single id as [doc_id]")
    ids = list(doc_ids)
    for doc_id in ids:
        if not isinstance(doc_id, str):
            raise CourseError(f"document ids must be strings, not {type(doc_id).__name__} ({doc_id!r})")
    if len(set(ids)) != len(ids):
        repeated = next(doc_id for doc_id, count in Counter(ids).items() if count > 1)
        raise CourseError(f"document id {repeated!r} appears more than once in one {action}: give each id once")
    return ids


def _check_texts(texts: Sequence[str], n_ids: int) -> list[str]:
    """The texts as a list, one string per id; CourseError otherwise."""
    if isinstance(texts, str):
        raise CourseError("texts must be a list of texts, not one string: wrap a single text as [text]")
    texts = list(texts)
    if len(texts) != n_ids:
        raise CourseError(f"got {n_ids} ids but {len(texts)} texts: give one text per id")
    for text in texts:
        if not isinstance(text, str):
            raise CourseError(f"a document must be text, not {type(text).__name__}")
    return texts


def _check_new(ids: Iterable[str], index: LiveBM25 | LiveFaiss) -> None:
    """CourseError if one of the ids is in the index already (add is for new documents)."""
    for doc_id in ids:
        if doc_id in index:
            raise CourseError(f"document {doc_id!r} is already in the index: use update to change it")


def _check_known(ids: Iterable[str], index: LiveBM25 | LiveFaiss, action: str) -> None:
    """CourseError if one of the ids is not in the index (deleted documents count as unknown)."""
    for doc_id in ids:
        if doc_id not in index:
            raise CourseError(f"cannot {action} document {doc_id!r}: it is not in the index "
                              "(never added, or deleted; use add for a new document)")


# ----------------------------------------------------------------------------
# BM25
# ----------------------------------------------------------------------------


@dataclass
class _Segment:
    """A batch of documents written once and never changed, except for its tombstones.

    `doc_terms` (documents x terms) says which terms each document holds: a delete
    reads it to subtract the document from n(t). `postings` (terms x documents) is
    the same counts transposed, the inverted index: a search reads the rows of its
    query's terms. Its rows cover the vocabulary as it was when the segment was
    written; later terms have no postings here.
    """

    doc_ids: list[str]
    doc_terms: sparse.csr_array  # tf(t, d), one row per document
    postings: sparse.csr_array  # tf(t, d), one row per term
    doc_len: np.ndarray  # tokens per document
    live: np.ndarray  # False = tombstone: deleted, or replaced by an update

    @classmethod
    def build(cls, doc_ids: list[str], doc_terms: sparse.csr_array) -> _Segment:
        """A segment of live documents from their term counts."""
        doc_len = np.asarray(doc_terms.sum(axis=1)).reshape(-1).astype(np.int64)  # whole numbers, summed exactly
        postings = sparse.csr_array(doc_terms.T)  # the transpose is CSC; as CSR it is row-per-term
        postings.sort_indices()
        return cls(doc_ids, doc_terms, postings, doc_len, np.ones(len(doc_ids), dtype=bool))

    @property
    def n_docs(self) -> int:
        """Documents written to the segment, tombstoned ones included."""
        return len(self.doc_ids)

    @property
    def n_live(self) -> int:
        """Documents of the segment that are not tombstoned."""
        return int(self.live.sum())


def _widen(matrix: sparse.csr_array, n_columns: int) -> sparse.csr_array:
    """The same CSR matrix with more (empty) columns: the vocabulary has grown since it was written."""
    return sparse.csr_array((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], n_columns))


class LiveBM25:
    """A BM25 index that takes adds, updates and deletes, and scores exactly like `BM25Retriever` rebuilt."""

    def __init__(
        self,
        variant: str = "lucene",
        k1: float = 1.5,
        b: float = 0.75,
        delta: float | None = None,
        negative_idf: str = "zero",
        epsilon: float = 0.25,
        stopwords: Iterable[str] | None = None,
    ) -> None:
        """An empty index with the parameters of `bm25.BM25Retriever` (see `bm25` for what they mean)."""
        resolved_delta = check_parameters(variant, k1, b, delta, negative_idf, epsilon)
        self.variant, self.k1, self.b = variant, float(k1), float(b)
        # delta exists for bm25l and bm25+ only (term_frequency_component refuses it otherwise).
        self.delta: float | None = resolved_delta if variant in DEFAULT_DELTA else None
        self.negative_idf, self.epsilon = negative_idf, float(epsilon)
        self.stopwords = frozenset(stopwords) if stopwords else None
        self.vocab: dict[str, int] = {}  # term -> row; ids in order of first appearance, never reused
        self._doc_freq = np.zeros(0, dtype=np.int64)  # n(t) over live documents, kept current
        self._total_len = 0  # tokens in all live documents, for avgdl
        self._segments: list[_Segment] = []
        self._where: dict[str, tuple[_Segment, int]] = {}  # live doc id -> (segment, column)
        self._idf_table: np.ndarray | None = None  # idf of every term; None = stale, recomputed on search

    @classmethod
    def from_documents(cls, doc_ids: Sequence[str], texts: Sequence[str], **params: Any) -> LiveBM25:
        """An index holding `texts` under `doc_ids` (params as in the constructor)."""
        index = cls(**params)
        index.add(doc_ids, texts)
        return index

    def __len__(self) -> int:
        """The number of live documents."""
        return len(self._where)

    def __contains__(self, doc_id: object) -> bool:
        """Whether `doc_id` is a live document (deleted ones are not)."""
        return doc_id in self._where

    def __repr__(self) -> str:
        return (f"LiveBM25({self.variant!r}, {len(self)} documents in {len(self._segments)} segments, "
                f"{self.n_tombstones} tombstones)")

    @property
    def doc_ids(self) -> list[str]:
        """The live document ids in index order, which breaks exact ties (an update moves a document last)."""
        return [doc_id for segment in self._segments
                for doc_id, alive in zip(segment.doc_ids, segment.live.tolist()) if alive]

    @property
    def n_tombstones(self) -> int:
        """Deleted or replaced documents still stored in segments (a merge drops them)."""
        return sum(segment.n_docs - segment.n_live for segment in self._segments)

    def segment_sizes(self) -> list[tuple[int, int]]:
        """(documents written, documents live) of each segment, oldest first."""
        return [(segment.n_docs, segment.n_live) for segment in self._segments]

    # --- changing the index ------------------------------------------------

    def add(self, doc_ids: Sequence[str], texts: Sequence[str]) -> None:
        """Index new documents; CourseError if an id is already there (use update)."""
        ids = _check_ids(doc_ids, "add")
        texts = _check_texts(texts, len(ids))
        _check_new(ids, self)
        self._write_segment(ids, texts)

    def update(self, doc_ids: Sequence[str], texts: Sequence[str]) -> None:
        """Replace the text of documents already in the index (a delete, then an add)."""
        ids = _check_ids(doc_ids, "update")
        texts = _check_texts(texts, len(ids))
        _check_known(ids, self, "update")
        self._tombstone(ids)
        self._write_segment(ids, texts)

    def delete(self, doc_ids: Sequence[str]) -> None:
        """Remove documents from the index; CourseError if one is not there."""
        ids = _check_ids(doc_ids, "delete")
        _check_known(ids, self, "delete")
        self._tombstone(ids)

    def compact(self) -> None:
        """Merge every segment into one without tombstones, and forget terms no live document uses.

        Lucene calls this a force-merge. Search results do not change; memory and
        the per-segment work of a search go down.
        """
        self._restore(*self._compacted())

    # Every method above checks all of its input before changing anything, so a
    # call that raises CourseError leaves the index as it was.

    def _write_segment(self, ids: list[str], texts: list[str]) -> None:
        """Tokenise `texts` into a new segment and add them to the collection statistics."""
        if not ids:
            return
        tokens = tokenize_many(texts, self.stopwords)
        vocab = self.vocab
        add_term = vocab.setdefault
        term_ids = np.fromiter((add_term(term, len(vocab)) for doc in tokens for term in doc), dtype=np.int64)
        doc_len = np.fromiter((len(doc) for doc in tokens), dtype=np.int64, count=len(tokens))
        rows = np.repeat(np.arange(len(ids), dtype=np.int64), doc_len)
        # One entry per token; building the compressed matrix adds up duplicates into tf(t, d).
        doc_terms = sparse.csr_array(
            (np.ones(term_ids.size, dtype=np.float64), (rows, term_ids)), shape=(len(ids), len(vocab))
        )
        doc_terms.sum_duplicates()
        segment = _Segment.build(ids, doc_terms)

        # Collection statistics: each document adds 1 to n(t) of each distinct term it holds.
        self._grow_doc_freq()
        self._doc_freq += np.bincount(doc_terms.indices, minlength=len(vocab))
        self._total_len += int(segment.doc_len.sum())
        self._segments.append(segment)
        for column, doc_id in enumerate(ids):
            self._where[doc_id] = (segment, column)
        self._changed()
        self._merge_small_segments()

    def _tombstone(self, ids: list[str]) -> None:
        """Mark documents deleted and subtract them from the collection statistics."""
        for doc_id in ids:
            segment, column = self._where.pop(doc_id)
            segment.live[column] = False
            start, end = segment.doc_terms.indptr[column], segment.doc_terms.indptr[column + 1]
            self._doc_freq[segment.doc_terms.indices[start:end]] -= 1  # each term once per row
            self._total_len -= int(segment.doc_len[column])
        # A segment whose documents are all deleted holds nothing: drop it (Lucene does the same).
        self._segments = [segment for segment in self._segments if segment.live.any()]
        self._changed()

    def _grow_doc_freq(self) -> None:
        """Give new vocabulary terms an n(t) of 0."""
        missing = len(self.vocab) - self._doc_freq.size
        if missing:
            self._doc_freq = np.concatenate([self._doc_freq, np.zeros(missing, dtype=np.int64)])

    def _changed(self) -> None:
        """The statistics moved: idf must be recomputed at the next search."""
        self._idf_table = None

    def _merge_small_segments(self) -> None:
        """Merge the newest segments while the last one has at least half the live documents of the one before.

        Sizes then at least double from each segment to the next older one, so a
        corpus of N documents has about log2(N) segments, and each document is
        rewritten about log2(N) times over its life: the "tiered" idea of Lucene's
        merge policy in its simplest form.
        """
        segments = self._segments
        while len(segments) >= 2 and 2 * segments[-1].n_live >= segments[-2].n_live:
            merged = self._merge(segments[-2:])
            segments[-2:] = [merged]
            for column, doc_id in enumerate(merged.doc_ids):
                self._where[doc_id] = (merged, column)

    def _merge(self, segments: Sequence[_Segment]) -> _Segment:
        """One segment with the live documents of `segments`, in order; tombstoned ones dropped."""
        n_terms = len(self.vocab)
        kept = [_widen(segment.doc_terms, n_terms)[np.flatnonzero(segment.live)] for segment in segments]
        doc_terms = (sparse.csr_array(sparse.vstack(kept, format="csr")) if kept
                     else sparse.csr_array((0, n_terms), dtype=np.float64))
        ids = [doc_id for segment in segments
               for doc_id, alive in zip(segment.doc_ids, segment.live.tolist()) if alive]
        return _Segment.build(ids, doc_terms)

    def _compacted(self) -> tuple[list[str], _Segment]:
        """The index as one segment of live documents, and the vocabulary of the terms they use."""
        merged = self._merge(self._segments)
        used = self._doc_freq > 0
        # Old term id -> new one: the used terms keep their order, so rows stay sorted.
        new_term_id = np.cumsum(used) - 1
        terms = [term for term, is_used in zip(self.vocab, used.tolist()) if is_used]
        doc_terms = sparse.csr_array(
            (merged.doc_terms.data, new_term_id[merged.doc_terms.indices], merged.doc_terms.indptr),
            shape=(merged.n_docs, len(terms)),
        )
        return terms, _Segment.build(merged.doc_ids, doc_terms)

    def _restore(self, terms: list[str], segment: _Segment) -> None:
        """Replace the whole state by one segment over the vocabulary `terms` (compact, load)."""
        self.vocab = {term: term_id for term_id, term in enumerate(terms)}
        self._segments = [segment] if segment.n_docs else []
        self._where = {doc_id: (segment, column) for column, doc_id in enumerate(segment.doc_ids)}
        self._doc_freq = np.bincount(segment.doc_terms.indices, minlength=len(terms)).astype(np.int64)
        self._total_len = int(segment.doc_len.sum())
        self._changed()

    # --- searching ---------------------------------------------------------

    def _term_idf(self) -> np.ndarray:
        """idf of every vocabulary term from the current statistics (0 for terms no live document holds)."""
        if self._idf_table is None:
            present = self._doc_freq > 0
            # The epsilon floor of negative_idf="epsilon" averages over the vocabulary of
            # the live documents, so terms of deleted documents must not count.
            values = floor_negative_idf(idf(self._doc_freq[present], len(self), self.variant),
                                        self.negative_idf, self.epsilon)
            table = np.zeros(self._doc_freq.size)
            table[present] = values
            self._idf_table = table
        return self._idf_table

    def search(self, queries: Sequence[str], k: int = 10) -> list[list[tuple[str, float]]]:
        """For each query, up to k (doc_id, score) pairs, best first; [] when no document matches.

        An empty index (nothing added, or everything deleted) finds nothing: [] for
        every query, as for a query that matches no document. A query with no word
        to search for raises CourseError, as in `BM25Retriever`.
        """
        if isinstance(queries, str):
            raise CourseError("search takes a list of queries: wrap a single query as [query]")
        check_k(k)
        queries = [validate_query(query) for query in queries]
        if not self._where:
            return [[] for _ in queries]
        term_idf = self._term_idf()
        avg_doc_len = self._total_len / len(self)
        ids_by_position = [doc_id for segment in self._segments for doc_id in segment.doc_ids]
        results = []
        for tokens in tokenize_many(queries, self.stopwords):
            positions, scores = self._top_k(tokens, k, term_idf, avg_doc_len)
            results.append([(ids_by_position[p], float(s)) for p, s in zip(positions.tolist(), scores.tolist())])
        return results

    def _top_k(self, tokens: list[str], k: int, term_idf: np.ndarray,
               avg_doc_len: float) -> tuple[np.ndarray, np.ndarray]:
        """The k best (position, score) pairs of one query; positions count tombstones too, segment after segment.

        Only the postings of the query's terms are read: the work is proportional to
        how many documents contain those terms, not to the size of the corpus.
        """
        # A query term counts once per occurrence ("paris paris" weighs paris twice).
        query_terms = Counter(self.vocab[term] for term in tokens if term in self.vocab)
        query_terms = {term: count for term, count in query_terms.items() if self._doc_freq[term] > 0}
        positions: list[np.ndarray] = []
        contributions: list[np.ndarray] = []
        offset = 0
        for segment in self._segments:
            postings = segment.postings
            for term, count in query_terms.items():
                if term >= postings.shape[0]:
                    continue  # a term first seen after this segment was written
                start, end = postings.indptr[term], postings.indptr[term + 1]
                columns = postings.indices[start:end]
                alive = segment.live[columns]  # skip tombstones
                columns, tf = columns[alive], postings.data[start:end][alive]
                tfc = term_frequency_component(tf, segment.doc_len[columns], avg_doc_len,
                                               self.variant, self.k1, self.b, self.delta)
                weight = term_idf[term] * tfc
                positions.append(columns.astype(np.int64) + offset)
                contributions.append(weight * count if count > 1 else weight)
            offset += segment.n_docs
        if not positions:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        # Add up each document's contributions in one dense array over all stored
        # positions: for queries with common words that is cheaper than sorting them.
        matched_positions = np.concatenate(positions)
        scores = np.bincount(matched_positions, weights=np.concatenate(contributions), minlength=offset)
        matched = np.zeros(offset, dtype=bool)
        matched[matched_positions] = True
        doc_positions = np.flatnonzero(matched)
        # Ties break by position, so equal scores come out in index order, as in BM25Retriever.
        return top_k_of(doc_positions, scores[doc_positions], k)

    # --- saving ------------------------------------------------------------

    def save(self, folder: str | Path, keep: int = DEFAULT_KEEP) -> int:
        """Save the index as a new version in `folder` (see IndexStore); returns the version number."""
        return IndexStore(folder, keep).save(bm25=self)

    @classmethod
    def load(cls, folder: str | Path, version: int | None = None) -> LiveBM25:
        """The index saved in `folder` (its current version, or `version`)."""
        stored = IndexStore(folder).load(version)
        if stored.bm25 is None:
            raise CourseError(f"version {stored.version} in {folder} holds no BM25 index")
        return stored.bm25

    def _parameters(self) -> dict[str, Any]:
        """The constructor's arguments, as JSON."""
        return {"variant": self.variant, "k1": self.k1, "b": self.b, "delta": self.delta,
                "negative_idf": self.negative_idf, "epsilon": self.epsilon,
                "stopwords": sorted(self.stopwords) if self.stopwords else None}


# ----------------------------------------------------------------------------
# Faiss
# ----------------------------------------------------------------------------


class LiveFaiss:
    """Exact inner-product search over vectors with string ids that can be added, updated and deleted."""

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

    def vectors(self) -> np.ndarray:
        """The stored vectors, one row per id of `doc_ids`."""
        if not self._faiss_id:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.index.reconstruct(faiss_id) for faiss_id in self._faiss_id.values()])

    def _check_vectors(self, vectors: np.ndarray, name: str, n_rows: int | None = None) -> np.ndarray:
        """`vectors` as a C-contiguous float32 (n, dim) matrix of finite numbers; CourseError otherwise."""
        try:
            matrix = _as_matrix(vectors, name)
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

    def add(self, doc_ids: Sequence[str], vectors: np.ndarray) -> None:
        """Index new documents' vectors; CourseError if an id is already there (use update)."""
        ids = _check_ids(doc_ids, "add")
        matrix = self._check_vectors(vectors, "vectors", len(ids))
        _check_new(ids, self)
        self._add(ids, matrix)

    def update(self, doc_ids: Sequence[str], vectors: np.ndarray) -> None:
        """Replace the vectors of documents in the index: the old ones are removed, the new get new Faiss ids."""
        ids = _check_ids(doc_ids, "update")
        matrix = self._check_vectors(vectors, "vectors", len(ids))
        _check_known(ids, self, "update")
        self._remove(ids)
        self._add(ids, matrix)

    def delete(self, doc_ids: Sequence[str]) -> None:
        """Remove documents from the index; CourseError if one is not there."""
        ids = _check_ids(doc_ids, "delete")
        _check_known(ids, self, "delete")
        self._remove(ids)

    def _add(self, ids: list[str], matrix: np.ndarray) -> None:
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

    def search(self, query_vectors: np.ndarray, k: int = 10) -> list[list[tuple[str, float]]]:
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

    def save(self, folder: str | Path, keep: int = DEFAULT_KEEP) -> int:
        """Save the index as a new version in `folder` (see IndexStore); returns the version number."""
        return IndexStore(folder, keep).save(dense=self)

    @classmethod
    def load(cls, folder: str | Path, version: int | None = None) -> LiveFaiss:
        """The index saved in `folder` (its current version, or `version`)."""
        stored = IndexStore(folder).load(version)
        if stored.dense is None:
            raise CourseError(f"version {stored.version} in {folder} holds no Faiss index")
        return stored.dense


# ----------------------------------------------------------------------------
# Versioned, atomic storage
# ----------------------------------------------------------------------------


@dataclass
class StoredIndex:
    """One saved version: its number, its manifest, and the indexes it holds (None if not saved)."""

    version: int
    manifest: dict
    bm25: LiveBM25 | None
    dense: LiveFaiss | None


def _version_name(version: int) -> str:
    """The folder name of a version: v000007."""
    return f"v{version:06d}"


def _sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    """Force a written file's bytes to disk: a rename is only as durable as the data it points to."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


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
    """Write `value` as a JSON file and fsync it."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, ensure_ascii=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _read_json(path: Path) -> Any:
    """A JSON file's value; CourseError if it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CourseError(f"cannot read {path}: {error}") from None


def _write_bm25(folder: Path, index: LiveBM25) -> list[str]:
    """Write a BM25 index, compacted, as bm25.json (parameters, terms, ids) and bm25.npz (counts); their names."""
    terms, segment = index._compacted()
    _write_json(folder / "bm25.json", {**index._parameters(), "terms": terms, "doc_ids": segment.doc_ids})
    counts = segment.doc_terms
    with open(folder / "bm25.npz", "wb") as handle:
        # Plain arrays, no pickle: loading them can never run code.
        np.savez(handle, tf=counts.data.astype(np.int64), term_ids=counts.indices.astype(np.int64),
                 row_starts=counts.indptr.astype(np.int64))
        handle.flush()
        os.fsync(handle.fileno())
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
        doc_terms = sparse.csr_array((tf.astype(np.float64), term_ids, row_starts),
                                     shape=(len(doc_ids), len(terms)))
        doc_terms.check_format()
    except (KeyError, TypeError, ValueError, OSError) as error:
        raise CourseError(f"the BM25 index in {folder} is corrupt: {error}") from None
    index = LiveBM25(**parameters)
    index._restore(terms, _Segment.build(doc_ids, doc_terms))
    return index


def _write_dense(folder: Path, index: LiveFaiss) -> list[str]:
    """Write a Faiss index as dense.faiss (Faiss's own format) and dense.json (the id map); their names."""
    import faiss

    faiss.write_index(index.index, str(folder / "dense.faiss"))
    _fsync_file(folder / "dense.faiss")
    _write_json(folder / "dense.json", {"dim": index.dim, "next_faiss_id": index._next_faiss_id,
                                        "doc_ids": list(index._faiss_id),
                                        "faiss_ids": list(index._faiss_id.values())})
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
    if (not isinstance(stored, faiss.IndexIDMap2) or stored.d != dim or len(doc_ids) != len(faiss_ids)
            or faiss.vector_to_array(stored.id_map).tolist() != faiss_ids):
        raise CourseError(f"the Faiss index in {folder} does not match its id map dense.json")
    index = LiveFaiss(dim)
    index.index = stored
    index._faiss_id = dict(zip(doc_ids, faiss_ids))
    index._doc_id = dict(zip(faiss_ids, doc_ids))
    index._next_faiss_id = next_faiss_id
    return index


def _write_manifest(folder: Path, manifest: dict) -> None:
    """Write manifest.json, the last file of a version: it lists every other file and its checksum."""
    _write_json(folder / MANIFEST_FILE, manifest)


def _point_current(folder: Path, name: str) -> None:
    """Make CURRENT name the version folder `name`, atomically: a reader sees the old name or the new one."""
    handle, temp = tempfile.mkstemp(prefix=CURRENT_TEMP_PREFIX, suffix=".tmp", dir=folder)
    with os.fdopen(handle, "w", encoding="utf-8") as current:
        current.write(name + "\n")
        current.flush()
        os.fsync(current.fileno())
    os.replace(temp, folder / CURRENT_FILE)  # the commit point of a save
    _fsync_dir(folder)


class IndexStore:
    """A folder of saved index versions (v000001/, v000002/, ...) and a CURRENT file naming the one to load.

    One writer at a time: two processes saving into the same folder at once
    would clean up each other's staging folders.
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
                    "files": {name: _sha256(staging / name) for name in files}}
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
            if _sha256(file) != checksum:
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
