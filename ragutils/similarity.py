"""Text as vectors, and three ways to compare vectors: dot product, cosine similarity, Euclidean distance.

Vectors: a bag of words counts each vocabulary word in a text; TF-IDF weighs
those counts by how rare each word is (the same smoothed idf as scikit-learn's
`TfidfVectorizer`); embeddings come from an encoder (notebooks 01 and 03).

Scores, for a query q and a document d:

    dot(q, d)       = sum_i q_i d_i
    cosine(q, d)    = dot(q, d) / (||q|| ||d||)
    euclidean(q, d) = ||q - d|| = sqrt(||q||^2 + ||d||^2 - 2 dot(q, d))

For unit vectors ||q - d||^2 = 2 - 2 cosine(q, d) and dot = cosine, so ranking
by any of the three gives the same order (nearest first).

Conventions, the same in every scoring function of this module:
- Shapes follow the `@` operator: queries (m, dim) and documents (n, dim) give
  an (m, n) matrix; a 1-D input is one vector and drops its axis, so one query
  against n documents gives (n,), and two vectors give one NumPy float.
- Empty inputs are fine: 0 queries or 0 documents give an empty result.
- Scores are computed in float64, whatever the input dtype, so that small
  differences between near-identical vectors survive.
- The zero vector (for example, the bag of words of a query whose words are all
  outside the vocabulary) has no direction: its cosine with anything is defined
  as 0, never NaN, and `l2_normalize` leaves it at zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .errors import CourseError
from .text import tokenize_many

# --- text into vectors -----------------------------------------------------------------


def build_vocabulary(texts: Iterable[str]) -> list[str]:
    """The distinct tokens of `texts`, sorted alphabetically. Derived in notebook 01, section 1.1."""
    # Sorted, as scikit-learn's vectorisers do, so that column j means the same
    # word in both and the notebook can compare them cell for cell.
    return sorted({token for tokens in tokenize_many(texts) for token in tokens})


def bag_of_words(texts: Sequence[str], vocabulary: Sequence[str]) -> np.ndarray:
    """How often each vocabulary word occurs in each text: a (texts, words) count matrix.

    Derived in notebook 01, section 1.1.
    """
    column = {word: j for j, word in enumerate(vocabulary)}
    if len(column) != len(vocabulary):
        raise CourseError("the vocabulary lists a word twice: each word needs one column")
    counts = np.zeros((len(texts), len(vocabulary)), dtype=np.float64)
    for i, tokens in enumerate(tokenize_many(texts)):
        for word, count in Counter(tokens).items():
            # Words outside the vocabulary have no column: a query can only be
            # compared on the words the documents were described with.
            if word in column:
                counts[i, column[word]] = count
    return counts


def idf_weights(counts: ArrayLike) -> np.ndarray:
    """Smoothed inverse document frequency of each column: ln((1 + N) / (1 + df)) + 1.

    Derived in notebook 01, section 1.2.
    """
    counts = _as_matrix(counts, "counts")
    n_docs = counts.shape[0]
    document_frequency = np.count_nonzero(counts, axis=0)
    # The +1s are scikit-learn's `smooth_idf`: as if one extra document held every
    # word once, so no idf divides by zero; the final +1 keeps words found in every
    # document (idf would be 0) from vanishing entirely.
    return np.log((1 + n_docs) / (1 + document_frequency)) + 1


def tfidf_vectors(texts: Sequence[str], vocabulary: Sequence[str],
                  idf: ArrayLike | None = None) -> np.ndarray:
    """Word counts times idf (idf of `texts` themselves unless given); rows are not normalised.

    Derived in notebook 01, section 1.2.
    """
    counts = bag_of_words(texts, vocabulary)
    # A query must be weighed with the idf of the corpus it searches, not its own:
    # pass the documents' idf_weights(...) when vectorising queries.
    weights = idf_weights(counts) if idf is None else np.asarray(idf, dtype=np.float64)
    if weights.shape != (len(vocabulary),):
        raise CourseError(f"idf has shape {weights.shape}; expected one weight per vocabulary word "
                          f"({len(vocabulary)},)")
    return counts * weights


# --- comparing vectors -----------------------------------------------------------------


def l2_normalize(x: ArrayLike) -> np.ndarray:
    """Each vector (the last axis) divided by its Euclidean length; zero vectors stay zero.

    Derived in notebook 01, section 1.2.
    """
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    # A zero vector has no direction to keep. Dividing by 1 instead of 0 leaves it
    # at zero (no NaN), which makes its cosine with anything 0.
    return x / np.where(norms == 0, 1.0, norms)


def dot_scores(queries: ArrayLike, docs: ArrayLike) -> np.ndarray:
    """Dot product of every query with every document. Derived in notebook 01, section 2.2."""
    q, d = _check_pair(queries, docs)
    return q @ d.T


def cosine_scores(queries: ArrayLike, docs: ArrayLike) -> np.ndarray:
    """Cosine similarity of every query with every document; 0 where either is a zero vector.

    Derived in notebook 01, section 1.3.
    """
    q, d = _check_pair(queries, docs)
    # Normalise first, then one matrix product: the same as dividing each dot
    # product by both lengths, but zero vectors are handled once, in l2_normalize.
    # The clip removes rounding just outside [-1, 1] (e.g. 1.0000000000000002).
    return np.clip(l2_normalize(q) @ l2_normalize(d).T, -1.0, 1.0)


def euclidean_distances(queries: ArrayLike, docs: ArrayLike, squared: bool = False) -> np.ndarray:
    """Euclidean distance from every query to every document (squared if asked). Derived in notebook 01, section 2.2."""
    q, d = _check_pair(queries, docs)
    # ||q - d||^2 = ||q||^2 + ||d||^2 - 2 q.d: one matrix product instead of an
    # (m, n, dim) array of differences. Rounding can make a distance that should
    # be 0 come out as -1e-16, so clip at 0 before the square root.
    q_sq = np.sum(q * q, axis=-1)
    d_sq = np.sum(d * d, axis=-1)
    cross = q @ d.T
    if q.ndim == 2 and d.ndim == 2:
        q_sq = q_sq[:, None]  # a column of query norms, broadcast along each row of documents
    distances = np.maximum(q_sq + d_sq - 2 * cross, 0.0)
    return distances if squared else np.sqrt(distances)


def _as_matrix(x: ArrayLike, name: str) -> np.ndarray:
    """`x` as a float64 2-D array, or a clear error."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise CourseError(f"{name} must be a 2-D array (one row per document), not {x.ndim}-D")
    return x


def _check_pair(queries: ArrayLike, docs: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Queries and documents as float64 arrays of 1 or 2 dimensions with the same vector length."""
    q = np.asarray(queries, dtype=np.float64)
    d = np.asarray(docs, dtype=np.float64)
    for name, x in (("queries", q), ("docs", d)):
        if x.ndim not in (1, 2):
            raise CourseError(f"{name} must be one vector (1-D) or one vector per row (2-D), "
                              f"not a {x.ndim}-D array")
    if q.shape[-1] != d.shape[-1]:
        raise CourseError(f"queries have {q.shape[-1]} dimensions but docs have {d.shape[-1]}: "
                          "vectors must come from the same vocabulary or encoder")
    return q, d

