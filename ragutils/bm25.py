"""BM25 in five variants: the formulas one by one, a slow reference loop, and a fast sparse index.

BM25 scores a document d for a query q as a sum over the query's terms t:

    score(q, d) = sum over t in q of  idf(t) * tfc(tf(t, d), |d|)

- idf(t) (inverse document frequency) rewards rare terms; n(t) is the number
  of the N documents that contain t.
- tfc (the term-frequency component) grows with the count tf(t, d) but
  saturates (k1 sets how fast), after dividing by the document's length
  relative to the average (b sets how much: b = 0 ignores length, b = 1 fully
  normalises).

The variants differ only in these two parts (names as in Kamphuis et al.,
"Which BM25 do you mean?", ECIR 2020):

    variant  idf(t)                           tfc, for tf > 0 (norm = 1 - b + b |d| / avgdl)
    okapi    ln((N - n + 0.5) / (n + 0.5))    (k1 + 1) tf / (tf + k1 norm)
    lucene   ln(1 + (N - n + 0.5) / (n + 0.5)) tf / (tf + k1 norm)
    bm25l    ln((N + 1) / (n + 0.5))          (k1 + 1)(c + delta) / (k1 + c + delta),  c = tf / norm
    bm25+    ln((N + 1) / n)                  (k1 + 1) tf / (tf + k1 norm) + delta
    atire    ln(N / n)                        (k1 + 1) tf / (tf + k1 norm)

Conventions, the same in every function of this module:
- A term absent from a document (tf = 0) adds nothing to its score, in every
  variant: BM25L's and BM25+'s delta is a bonus for *containing* a term, as in
  Lv and Zhai's papers. The reference libraries differ here, and the tests
  check the exact relations: `bm25s` scores absent terms too, at tf = 0
  (idf x (k1 + 1) delta / (k1 + delta) for BM25L, idf x delta for BM25+);
  `rank_bm25.BM25Plus` adds idf x delta to every document, which is the same
  for all documents of a query, so its ranking is plain BM25's; and
  `rank_bm25.BM25L` multiplies each term's score by tf once more (it agrees
  with BM25L where tf <= 1). Okapi, Lucene and ATIRE agree with both.
- A query term counts once per occurrence: "paris paris" weighs "paris" twice,
  as `rank_bm25` and `bm25s` do. Query terms missing from the vocabulary add 0.
- Negative idf: only Okapi's idf can be negative (for a term in more than half
  of the documents: containing "the" would *lower* a score). `negative_idf`
  chooses what to do: "zero" (default) clips it to 0, so such terms are
  ignored; "epsilon" replaces it by epsilon x the mean idf of the vocabulary,
  exactly as `rank_bm25.BM25Okapi` does; "keep" leaves it negative (classic
  Robertson-Sparck Jones). The epsilon floor ranks a term in 60% of the
  documents far above one in 49%, and on a small corpus the "floor" is itself
  negative (notebook 02, sections 4.3 and 4.4). Lucene, BM25L, BM25+ and ATIRE
  have idf >= 0 by construction, so every mode gives them the same scores.
- Search results are the top k of the full ranking, truncated where scores
  stop being positive: a document that shares no term with the query (score 0)
  is never returned, so a query that matches nothing gets an empty list rather
  than k arbitrary documents. Ties are broken by document position, so equal
  scores come out in corpus order and results are deterministic.

Speed: `BM25Index` computes idf(t) x tfc for every (term, document) pair once, so
a batch of queries is one sparse product, (queries x terms counts) @ (terms x
documents scores), and `top_k` skips most of even that exactly (`_top_k_batch`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy import sparse

from .errors import CourseError
from .retriever import Ranking, check_k, query_list
from .text import tokenize_many, validate_query

VARIANTS = ("okapi", "lucene", "bm25l", "bm25+", "atire")
NEGATIVE_IDF_MODES = ("zero", "epsilon", "keep")
# Lv and Zhai's recommended values, also `rank_bm25`'s defaults.
DEFAULT_DELTA = {"bm25l": 0.5, "bm25+": 1.0}
# Search splits the vocabulary: terms in more than COMMON_SHARE of the documents
# are "common" and get a dense row of scores, at most MAX_COMMON_TERMS rows and
# COMMON_TABLE_CELLS numbers in all (64 MB), so memory stays bounded on big corpora.
COMMON_SHARE = 0.05
MAX_COMMON_TERMS = 256
COMMON_TABLE_CELLS = 8_000_000
# Queries scored per sparse product, to bound its memory.
QUERY_BATCH = 1024


# --- checking parameters --------------------------------------------------------------------------


def check_parameters(
    variant: str, k1: float, b: float, delta: float | None, negative_idf: str, epsilon: float
) -> float:
    """The delta to use for `variant`, after checking every BM25 parameter (CourseError if one is wrong).

    Used in notebook 02.
    """
    if variant not in VARIANTS:
        raise CourseError(f"unknown BM25 variant {variant!r}: choose one of {', '.join(VARIANTS)}")
    if not k1 >= 0:
        raise CourseError(f"k1 must be >= 0, not {k1}")
    if not 0 <= b <= 1:
        raise CourseError(f"b must be between 0 and 1, not {b}")
    if negative_idf not in NEGATIVE_IDF_MODES:
        raise CourseError(
            f"unknown negative_idf {negative_idf!r}: choose one of {', '.join(NEGATIVE_IDF_MODES)}"
        )
    if not epsilon >= 0:
        raise CourseError(f"epsilon must be >= 0, not {epsilon}")
    if variant in DEFAULT_DELTA:
        delta = DEFAULT_DELTA[variant] if delta is None else delta
        if not delta >= 0:
            raise CourseError(f"delta must be >= 0, not {delta}")
        return float(delta)
    if delta is not None:
        raise CourseError(f"delta is a parameter of bm25l and bm25+ only, not of {variant}")
    return 0.0


# --- the formulas, one function per idea (vectorised over numpy arrays) ---------------------------


def idf(doc_freq: np.ndarray | int, n_docs: int, variant: str) -> np.ndarray:
    """The inverse document frequency of terms found in `doc_freq` (>= 1) of `n_docs` documents.

    Derived in notebook 02, section 2.2.
    """
    n = np.asarray(doc_freq, dtype=np.float64)
    N = float(n_docs)
    # Differences of logarithms where `rank_bm25` writes them that way, so that the
    # comparisons in the tests agree to the last digits.
    if variant == "okapi":
        return np.log(N - n + 0.5) - np.log(n + 0.5)
    if variant == "lucene":
        return np.log1p((N - n + 0.5) / (n + 0.5))
    if variant == "bm25l":
        return np.log(N + 1) - np.log(n + 0.5)
    if variant == "bm25+":
        return np.log((N + 1) / n)
    if variant == "atire":
        return np.log(N / n)
    raise CourseError(f"unknown BM25 variant {variant!r}: choose one of {', '.join(VARIANTS)}")


def floor_negative_idf(idf_values: np.ndarray, mode: str = "zero", epsilon: float = 0.25) -> np.ndarray:
    """The idf of a whole vocabulary with negative values clipped to 0, floored as rank_bm25 does, or kept.

    Derived in notebook 02, section 4.1.
    """
    idf_values = np.asarray(idf_values, dtype=np.float64)
    if mode == "keep":
        return idf_values
    if mode == "zero":
        return np.maximum(idf_values, 0.0)
    if mode == "epsilon":
        # rank_bm25: the mean is taken over the whole vocabulary *before* flooring,
        # and only strictly negative values are replaced (an idf of exactly 0 stays 0).
        if idf_values.size == 0:
            return idf_values
        floor = epsilon * idf_values.mean()
        return np.where(idf_values < 0, floor, idf_values)
    raise CourseError(f"unknown negative_idf {mode!r}: choose one of {', '.join(NEGATIVE_IDF_MODES)}")


def length_norm(doc_len: np.ndarray | float, avg_doc_len: float, b: float) -> np.ndarray:
    """How long each document is relative to the average, softened by b: 1 - b + b |d| / avgdl.

    Derived in notebook 02, section 2.4.
    """
    return 1.0 - b + b * np.asarray(doc_len, dtype=np.float64) / avg_doc_len


def term_frequency_component(tf: np.ndarray | float, doc_len: np.ndarray | float, avg_doc_len: float,
                             variant: str, k1: float = 1.5, b: float = 0.75,
                             delta: float | None = None) -> np.ndarray:
    """The saturating term-frequency factor of each (tf, document length) pair; 0 where tf = 0.

    Derived in notebook 02, section 2.5.
    """
    delta = check_parameters(variant, k1, b, delta, "zero", 0.0)
    tf = np.asarray(tf, dtype=np.float64)
    norm = length_norm(doc_len, avg_doc_len, b)
    present = tf > 0
    # Where tf = 0 the formulas below would give 0 (or, for BM25L and BM25+, a
    # delta bonus that this module does not give): the `where` makes that explicit,
    # and `errstate` hides the 0/0 of an empty document, which `where` discards.
    with np.errstate(divide="ignore", invalid="ignore"):
        if variant in ("okapi", "atire"):
            tfc = (k1 + 1) * tf / (tf + k1 * norm)
        elif variant == "lucene":
            # Lucene (since version 8) drops the constant (k1 + 1): rankings do not change.
            tfc = tf / (tf + k1 * norm)
        elif variant == "bm25l":
            # BM25L shifts the length-normalised count c up by delta, so that long
            # documents are not pushed down to almost nothing.
            c = tf / norm
            tfc = (k1 + 1) * (c + delta) / (k1 + c + delta)
        else:  # bm25+
            # BM25+ adds a lower bound delta for containing the term at all.
            tfc = (k1 + 1) * tf / (tf + k1 * norm) + delta
    return np.where(present, tfc, 0.0)


# --- the reference: one query, one document at a time, with the formulas above --------------------


def bm25_scores_loop(query_tokens: Sequence[str], docs_tokens: Sequence[Sequence[str]], variant: str = "lucene",
                     k1: float = 1.5, b: float = 0.75, delta: float | None = None, negative_idf: str = "zero",
                     epsilon: float = 0.25) -> list[float]:
    """The BM25 score of every document for one query, the slow and obvious way: one document at a time.

    Derived in notebook 02, section 5.
    """
    check_parameters(variant, k1, b, delta, negative_idf, epsilon)
    if len(docs_tokens) == 0:
        raise CourseError("cannot score an empty corpus: give at least one document")
    N = len(docs_tokens)
    avgdl = sum(len(doc) for doc in docs_tokens) / N
    # n(t): in how many documents each term occurs (a set counts a document once).
    doc_freq = Counter(term for doc in docs_tokens for term in set(doc))
    floored = floor_negative_idf(idf(list(doc_freq.values()), N, variant), negative_idf, epsilon)
    term_idf = dict(zip(doc_freq, floored.tolist()))
    # Every occurrence of a query term counts; a term in no document weighs nothing.
    weights = [term_idf.get(term, 0.0) for term in query_tokens]

    scores = []
    for doc in docs_tokens:
        counts = Counter(doc)
        tf = [counts[term] for term in query_tokens]
        if not any(tf):
            scores.append(0.0)
            continue
        tfc = term_frequency_component(tf, len(doc), avgdl, variant, k1, b, delta).tolist()
        score = 0.0
        for weight, component in zip(weights, tfc):
            score += weight * component
        scores.append(score)
    return scores


# --- the fast index: every (term, document) score computed once, queries as a matrix product ------


class BM25Index:
    """A BM25 index over tokenised documents: one sparse term x document matrix of precomputed scores.

    Derived in notebook 02, section 6.1.
    """

    def __init__(self, docs_tokens: Sequence[Sequence[str]], variant: str = "lucene", k1: float = 1.5,
                 b: float = 0.75, delta: float | None = None, negative_idf: str = "zero",
                 epsilon: float = 0.25) -> None:
        """Index `docs_tokens` (one list of tokens per document) for one BM25 variant."""
        self.delta = check_parameters(variant, k1, b, delta, negative_idf, epsilon)
        if len(docs_tokens) == 0:
            raise CourseError("cannot build a BM25 index from an empty corpus: give at least one document")
        self.variant, self.k1, self.b = variant, float(k1), float(b)
        self.negative_idf, self.epsilon = negative_idf, float(epsilon)
        self.n_docs = len(docs_tokens)

        # 1. Vocabulary: each distinct term gets a row number, in order of first appearance.
        self.vocab: dict[str, int] = {}
        add = self.vocab.setdefault
        vocab = self.vocab
        term_ids = np.fromiter(
            (add(term, len(vocab)) for doc in docs_tokens for term in doc), dtype=np.int64
        )
        self.doc_len = np.fromiter((len(doc) for doc in docs_tokens), dtype=np.int64, count=self.n_docs)
        self.avg_doc_len = float(self.doc_len.mean())
        n_terms = len(self.vocab)

        # 2. Term counts: one (term, document) entry per token; building the
        #    compressed matrix adds up the duplicates, which gives tf(t, d).
        doc_ids = np.repeat(np.arange(self.n_docs, dtype=np.int64), self.doc_len)
        counts = sparse.csr_array(
            (np.ones(term_ids.size, dtype=np.float64), (term_ids, doc_ids)), shape=(n_terms, self.n_docs)
        )
        counts.sum_duplicates()
        self.term_counts = counts  # the term x document matrix of tf(t, d)

        # 3. Document frequency n(t) is the number of stored entries in term t's row.
        self.doc_freq = np.diff(counts.indptr)
        self.idf = floor_negative_idf(idf(self.doc_freq, self.n_docs, variant), negative_idf, epsilon)

        # 4. The score of every (term, document) pair that occurs, computed once:
        #    queries then only add up rows of this matrix.
        tfc = term_frequency_component(
            counts.data, self.doc_len[counts.indices], self.avg_doc_len, variant, k1, b, delta
        )
        row_idf = np.repeat(self.idf, self.doc_freq)
        self.score_matrix = sparse.csr_array(
            (row_idf * tfc, counts.indices, counts.indptr), shape=(n_terms, self.n_docs)
        )

        # 5. For `top_k`: the common terms' rows as a dense table, and each one's best
        #    score (never below 0: a document without the term gets 0 from it).
        max_common = min(MAX_COMMON_TERMS, COMMON_TABLE_CELLS // self.n_docs)
        by_doc_freq = np.argsort(-self.doc_freq, kind="stable")[:max_common]
        common_terms = np.sort(by_doc_freq[self.doc_freq[by_doc_freq] > COMMON_SHARE * self.n_docs])
        self.common_row = np.full(n_terms, -1, dtype=np.int64)
        self.common_row[common_terms] = np.arange(common_terms.size)
        self.common_scores = self.score_matrix[common_terms].toarray()
        self.common_max_by_term = np.zeros(n_terms)
        self.common_max_by_term[common_terms] = self.common_scores.max(axis=1, initial=0.0)

    def query_matrix(self, queries_tokens: Sequence[Sequence[str]]) -> sparse.csr_array:
        """The queries x vocabulary matrix of query-term counts (terms outside the vocabulary dropped)."""
        vocab = self.vocab
        term_ids = [[vocab[t] for t in tokens if t in vocab] for tokens in queries_tokens]
        indptr = np.zeros(len(term_ids) + 1, dtype=np.int64)
        np.cumsum([len(ids) for ids in term_ids], out=indptr[1:])
        indices = np.fromiter((i for ids in term_ids for i in ids), dtype=np.int64, count=int(indptr[-1]))
        # A repeated query term appears twice in its row; the product then adds its
        # scores twice, which is the "every occurrence counts" convention.
        return sparse.csr_array(
            (np.ones(indices.size), indices, indptr), shape=(len(term_ids), len(vocab))
        )

    def split_query_matrix(
        self, queries_tokens: Sequence[Sequence[str]]
    ) -> tuple[sparse.csr_array, sparse.csr_array]:
        """The query-term counts as two matrices that add up to `query_matrix`: rare terms, common terms."""
        queries = self.query_matrix(queries_tokens)
        query_of_entry = np.repeat(np.arange(queries.shape[0]), np.diff(queries.indptr))
        is_common = self.common_row[queries.indices] >= 0
        return (
            _select_entries(queries, ~is_common, query_of_entry),
            _select_entries(queries, is_common, query_of_entry),
        )

    def sparse_scores(self, queries_tokens: Sequence[Sequence[str]]) -> sparse.csr_array:
        """The queries x documents matrix of scores: query-term counts times the score matrix."""
        # Mathematically one product, query_matrix @ score_matrix. It is computed as
        # rare part + common part, the order of additions `top_k` uses, so that the
        # two agree to the last bit and equal scores tie in both.
        rare, common = self.split_query_matrix(queries_tokens)
        return rare @ self.score_matrix + common @ self.score_matrix

    def scores(self, queries_tokens: Sequence[Sequence[str]]) -> np.ndarray:
        """The dense queries x documents array of BM25 scores."""
        return self.sparse_scores(queries_tokens).toarray()

    def top_k(self, queries_tokens: Sequence[Sequence[str]], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query, the (document positions, scores) of its k best positive-scoring documents."""
        check_k(k)
        results: list[tuple[np.ndarray, np.ndarray]] = []
        # Batches bound the memory of the products.
        for start in range(0, len(queries_tokens), QUERY_BATCH):
            results.extend(self._top_k_batch(queries_tokens[start : start + QUERY_BATCH], k))
        return results

    def top_k_exhaustive(
        self, queries_tokens: Sequence[Sequence[str]], k: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The same as `top_k`, found by scoring every matching document: simpler and slower."""
        check_k(k)
        scores = self.sparse_scores(queries_tokens)
        ptr, docs, values = scores.indptr, scores.indices, scores.data
        return [
            top_k_of(docs[ptr[row] : ptr[row + 1]], values[ptr[row] : ptr[row + 1]], k)
            for row in range(scores.shape[0])
        ]

    def _top_k_batch(
        self, queries_tokens: Sequence[Sequence[str]], k: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """`top_k` for one batch of queries, skipping documents that hold only common query terms.

        Nearly all the work of the full product goes into a few common terms ("the",
        "of", "in" are in most documents) that barely move the ranking. The idea of
        MaxScore (Turtle and Flood, 1995) keeps the answer exact while skipping it:
        1. the candidates are the documents that contain a rare query term: a small product;
        2. each candidate gets its full score, the common terms' part read from a dense table;
        3. a document with only common terms scores at most `bound`, the sum of those
           terms' best scores; if k candidates beat `bound`, nothing else can enter
           the top k. Queries where that fails (say, only common words) are scored in full.
        """
        rare, common = self.split_query_matrix(queries_tokens)
        n_queries = rare.shape[0]
        bound = common @ self.common_max_by_term

        candidates = rare @ self.score_matrix
        ptr, docs = candidates.indptr, candidates.indices
        query_of_candidate = np.repeat(np.arange(n_queries), np.diff(ptr))
        totals = candidates.data + self._common_part(common, query_of_candidate, docs)

        results = []
        unsure = []
        for row in range(n_queries):
            best = top_k_of(docs[ptr[row] : ptr[row + 1]], totals[ptr[row] : ptr[row + 1]], k)
            results.append(best)
            if bound[row] > 0 and (best[1].size < k or best[1][-1] <= bound[row]):
                unsure.append(row)
        if unsure:
            exact = self.top_k_exhaustive([queries_tokens[row] for row in unsure], k)
            for row, best in zip(unsure, exact):
                results[row] = best
        return results

    def _common_part(self, common: sparse.csr_array, query_rows: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """The common query terms' share of the score of each (query row, document) pair."""
        # Laid out flat: one addition per (pair, common term of the pair's query),
        # each pair's additions together and in the query's term order.
        terms_per_pair = np.diff(common.indptr)[query_rows]
        first_addition = np.cumsum(terms_per_pair) - terms_per_pair
        additions = np.arange(int(terms_per_pair.sum()))
        # entry: which stored entry of `common` (a query term and its count) each addition uses.
        entry = np.repeat(common.indptr[query_rows] - first_addition, terms_per_pair) + additions
        table_cell = self.common_row[common.indices[entry]] * self.n_docs + np.repeat(docs, terms_per_pair)
        values = common.data[entry] * self.common_scores.ravel()[table_cell]
        pair = np.repeat(np.arange(query_rows.size), terms_per_pair)
        return np.bincount(pair, weights=values, minlength=query_rows.size)


def _select_entries(matrix: sparse.csr_array, keep: np.ndarray, row_of_entry: np.ndarray) -> sparse.csr_array:
    """The entries of a CSR `matrix` where `keep` is true; the others dropped."""
    indptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_of_entry[keep], minlength=matrix.shape[0]), out=indptr[1:])
    return sparse.csr_array((matrix.data[keep], matrix.indices[keep], indptr), shape=matrix.shape)


def top_k_of(doc_positions: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best positive (position, score) pairs, by score descending then position ascending.

    Used in notebook 02.
    """
    positive = scores > 0
    if not positive.all():
        doc_positions, scores = doc_positions[positive], scores[positive]
    if scores.size > k:
        # argpartition finds the k-th best score in linear time; keeping every score
        # that ties with it, then sorting, makes the cut independent of memory order.
        kth_best = scores[np.argpartition(scores, scores.size - k)[scores.size - k]]
        keep = scores >= kth_best
        doc_positions, scores = doc_positions[keep], scores[keep]
    order = np.lexsort((doc_positions, -scores))[:k]
    return doc_positions[order], scores[order]


class BM25Retriever:
    """Keyword search over a list of texts: `search(queries, k)` gives ranked (doc_id, score) lists.

    Used in notebook 02.
    """

    def __init__(
        self,
        docs: Sequence[str],
        doc_ids: Sequence[str],
        variant: str = "lucene",
        k1: float = 1.5,
        b: float = 0.75,
        delta: float | None = None,
        negative_idf: str = "zero",
        epsilon: float = 0.25,
        stopwords: frozenset[str] | None = None,
    ) -> None:
        """Tokenise and index `docs`, whose identifiers are `doc_ids`."""
        if isinstance(docs, str):
            raise CourseError("docs must be a list of texts, not one string")
        if len(docs) != len(doc_ids):
            raise CourseError(f"got {len(docs)} documents but {len(doc_ids)} ids: give one id per document")
        if len(docs) == 0:
            raise CourseError("cannot build a BM25 index from an empty corpus: give at least one document")
        if len(set(doc_ids)) != len(doc_ids):
            raise CourseError("document ids must be unique")
        self.doc_ids = list(doc_ids)
        self.stopwords = stopwords
        self.index = BM25Index(
            tokenize_many(docs, stopwords), variant, k1, b, delta, negative_idf, epsilon
        )

    def search(self, queries: Sequence[str], k: int = 10) -> list[Ranking]:
        """For each query, up to k (doc_id, score) pairs, best first; [] when no document matches.

        A query with no word to search for raises CourseError.
        """
        queries = query_list(queries)
        # An empty query is a mistake to report, not a search that found nothing
        # (the rule of every retriever in the course).
        queries = [validate_query(query) for query in queries]
        tokens = tokenize_many(queries, self.stopwords)
        ids = self.doc_ids
        return [
            [(ids[position], float(score)) for position, score in zip(positions.tolist(), scores.tolist())]
            for positions, scores in self.index.top_k(tokens, k)
        ]
