"""BM25 that takes adds, updates and deletes, and scores exactly like `bm25.BM25Retriever` rebuilt.

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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from .bm25 import DEFAULT_DELTA, check_parameters, floor_negative_idf, idf, term_frequency_component, top_k_of
from .errors import CourseError
from .live_index import LiveIndex, check_ids
from .retriever import Ranking, check_k, query_list
from .text import tokenize_many, validate_query


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


class LiveBM25(LiveIndex):
    """A BM25 index that takes adds, updates and deletes of texts, and scores exactly like `BM25Retriever` rebuilt.

    Derived in notebook 14, section 3.
    """

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

    @classmethod
    def from_term_counts(cls, terms: Sequence[str], doc_ids: Sequence[str], counts: sparse.csr_array,
                         **params: Any) -> LiveBM25:
        """An index holding documents given by their term counts, as `term_counts` returns them (a saved index)."""
        terms, ids = list(terms), check_ids(doc_ids, "load")
        if counts.shape != (len(ids), len(terms)):
            raise CourseError(f"term counts of shape {counts.shape} for {len(ids)} documents "
                              f"and {len(terms)} terms")
        index = cls(**params)
        index._restore(terms, _Segment.build(ids, sparse.csr_array(counts, dtype=np.float64)))
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

    def parameters(self) -> dict[str, Any]:
        """The constructor's arguments, as JSON values."""
        return {"variant": self.variant, "k1": self.k1, "b": self.b, "delta": self.delta,
                "negative_idf": self.negative_idf, "epsilon": self.epsilon,
                "stopwords": sorted(self.stopwords) if self.stopwords else None}

    def term_counts(self) -> tuple[list[str], list[str], sparse.csr_array]:
        """(terms, doc_ids, counts) of the live documents: counts[d, t] is tf(terms[t], doc_ids[d]).

        Only the terms that live documents use are listed, in index order; this is
        all a saved index needs (`from_term_counts` rebuilds it).
        """
        terms, segment = self._compacted()
        return terms, segment.doc_ids, segment.doc_terms

    # --- changing the index ------------------------------------------------

    def compact(self) -> None:
        """Merge every segment into one without tombstones, and forget terms no live document uses.

        Lucene calls this a force-merge. Search results do not change; memory and
        the per-segment work of a search go down.
        """
        self._restore(*self._compacted())

    def _check_contents(self, texts: Sequence[str], n_ids: int) -> list[str]:
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

    def _insert(self, ids: list[str], texts: list[str]) -> None:
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

    def _remove(self, ids: list[str]) -> None:
        """Tombstone documents and subtract them from the collection statistics."""
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

    def search(self, queries: Sequence[str], k: int = 10) -> list[Ranking]:
        """For each query, up to k (doc_id, score) pairs, best first; [] when no document matches.

        An empty index (nothing added, or everything deleted) finds nothing: [] for
        every query, as for a query that matches no document. A query with no word
        to search for raises CourseError, as in `BM25Retriever`.
        """
        queries = query_list(queries)
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
