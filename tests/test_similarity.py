"""ragutils.similarity: hand-computed values, scikit-learn as reference, the unit-vector identity, edge cases."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity
from sklearn.metrics.pairwise import euclidean_distances as sk_euclidean_distances

from ragutils import similarity
from ragutils.errors import CourseError

# The worked example of notebook 01: one query, three documents in 2-D.
QUERY = [1.0, 1.0]
DOCS = [[1.0, 1.0], [4.0, 2.0], [0.0, 1.0]]

TEXTS = ["The cat sat on the mat.", "The dog sat on the log.", "Cats and dogs are pets; a cat is a pet."]
# scikit-learn's default token pattern drops 1-letter words; this one matches ragutils.text.tokenize.
TOKEN_PATTERN = r"(?u)\w+"


def random_matrix(rows: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, dim))


# --- hand-computed values ------------------------------------------------------------

def test_scores_of_the_worked_example():
    np.testing.assert_allclose(similarity.dot_scores(QUERY, DOCS), [2, 6, 1])
    np.testing.assert_allclose(similarity.cosine_scores(QUERY, DOCS), [1, 6 / np.sqrt(2 * 20), 1 / np.sqrt(2)])
    np.testing.assert_allclose(similarity.euclidean_distances(QUERY, DOCS), [0, np.sqrt(10), 1], atol=1e-12)
    np.testing.assert_allclose(similarity.euclidean_distances(QUERY, DOCS, squared=True), [0, 10, 1],
                               atol=1e-12)


def test_the_three_scores_rank_raw_vectors_differently():
    dot = similarity.dot_scores(QUERY, DOCS)
    cosine = similarity.cosine_scores(QUERY, DOCS)
    distance = similarity.euclidean_distances(QUERY, DOCS)
    assert list(np.argsort(-dot)) == [1, 0, 2]
    assert list(np.argsort(-cosine)) == [0, 1, 2]
    assert list(np.argsort(distance)) == [0, 2, 1]


def test_l2_normalize_gives_unit_rows_in_the_same_direction():
    x = np.array([[3.0, 4.0], [0.0, -2.0]])
    np.testing.assert_allclose(similarity.l2_normalize(x), [[0.6, 0.8], [0.0, -1.0]])
    np.testing.assert_allclose(similarity.l2_normalize([3.0, 4.0]), [0.6, 0.8])


def test_bag_of_words_counts_tokens_in_vocabulary_columns():
    vocabulary = similarity.build_vocabulary(TEXTS)
    assert vocabulary[:4] == ["a", "and", "are", "cat"]
    assert vocabulary == sorted(set(vocabulary))
    counts = similarity.bag_of_words(TEXTS, vocabulary)
    assert counts.shape == (3, len(vocabulary))
    assert counts[0, vocabulary.index("the")] == 2
    assert counts[2, vocabulary.index("a")] == 2
    assert counts[2, vocabulary.index("cats")] == 1  # no stemming: "cats" is its own word
    # A word outside the vocabulary has no column and is dropped.
    np.testing.assert_array_equal(similarity.bag_of_words(["zebra"], vocabulary), 0)


def test_idf_by_hand():
    counts = np.array([[2, 1, 0], [1, 0, 0], [3, 0, 0]])  # column 0 in all 3 documents, column 1 in one
    np.testing.assert_allclose(similarity.idf_weights(counts),
                               [np.log(4 / 4) + 1, np.log(4 / 2) + 1, np.log(4 / 1) + 1])


# --- scikit-learn as the reference ------------------------------------------------------

def test_bag_of_words_matches_count_vectorizer():
    vectorizer = CountVectorizer(token_pattern=TOKEN_PATTERN)
    expected = vectorizer.fit_transform(TEXTS).toarray()
    vocabulary = similarity.build_vocabulary(TEXTS)
    assert vocabulary == list(vectorizer.get_feature_names_out())
    np.testing.assert_array_equal(similarity.bag_of_words(TEXTS, vocabulary), expected)


def test_tfidf_matches_tfidf_vectorizer():
    vectorizer = TfidfVectorizer(token_pattern=TOKEN_PATTERN)  # smooth idf, l2-normalised rows
    expected = vectorizer.fit_transform(TEXTS).toarray()
    vocabulary = similarity.build_vocabulary(TEXTS)
    ours = similarity.tfidf_vectors(TEXTS, vocabulary)
    np.testing.assert_allclose(similarity.idf_weights(similarity.bag_of_words(TEXTS, vocabulary)),
                               vectorizer.idf_)
    np.testing.assert_allclose(similarity.l2_normalize(ours), expected)
    # Queries are weighed with the documents' idf, as vectorizer.transform does.
    queries = ["a cat on a mat", "pets"]
    idf = similarity.idf_weights(similarity.bag_of_words(TEXTS, vocabulary))
    np.testing.assert_allclose(similarity.l2_normalize(similarity.tfidf_vectors(queries, vocabulary, idf)),
                               vectorizer.transform(queries).toarray())


def test_scores_match_scikit_learn():
    queries, docs = random_matrix(5, seed=1), random_matrix(7, seed=2)
    np.testing.assert_allclose(similarity.dot_scores(queries, docs), queries @ docs.T)
    np.testing.assert_allclose(similarity.cosine_scores(queries, docs), cosine_similarity(queries, docs))
    np.testing.assert_allclose(similarity.euclidean_distances(queries, docs),
                               sk_euclidean_distances(queries, docs))
    np.testing.assert_allclose(similarity.euclidean_distances(queries, docs, squared=True),
                               sk_euclidean_distances(queries, docs, squared=True))


def test_float32_input_is_scored_in_float64():
    queries = random_matrix(3).astype(np.float32)
    for score in (similarity.dot_scores, similarity.cosine_scores, similarity.euclidean_distances):
        assert score(queries, queries).dtype == np.float64
    np.testing.assert_allclose(np.diag(similarity.euclidean_distances(queries, queries)), 0, atol=1e-6)


# --- the identity that makes the three rankings agree -----------------------------------

def test_unit_vectors_squared_distance_is_two_minus_two_cosine():
    queries = similarity.l2_normalize(random_matrix(6, dim=16, seed=3))
    docs = similarity.l2_normalize(random_matrix(40, dim=16, seed=4))
    cosine = similarity.cosine_scores(queries, docs)
    np.testing.assert_allclose(similarity.dot_scores(queries, docs), cosine)
    np.testing.assert_allclose(similarity.euclidean_distances(queries, docs, squared=True), 2 - 2 * cosine,
                               atol=1e-12)


def test_unit_vectors_rank_the_same_by_all_three():
    queries = similarity.l2_normalize(random_matrix(6, dim=16, seed=5))
    docs = similarity.l2_normalize(random_matrix(40, dim=16, seed=6))
    by_dot = np.argsort(-similarity.dot_scores(queries, docs), axis=1, kind="stable")
    by_cosine = np.argsort(-similarity.cosine_scores(queries, docs), axis=1, kind="stable")
    by_distance = np.argsort(similarity.euclidean_distances(queries, docs), axis=1, kind="stable")
    np.testing.assert_array_equal(by_dot, by_cosine)
    np.testing.assert_array_equal(by_distance, by_cosine)


def test_cosine_ignores_length_but_dot_does_not():
    query, doc = random_matrix(1, seed=7)[0], random_matrix(1, seed=8)[0]
    assert similarity.cosine_scores(query, 3 * doc) == pytest.approx(similarity.cosine_scores(query, doc))
    assert similarity.dot_scores(query, 3 * doc) == pytest.approx(3 * similarity.dot_scores(query, doc))


# --- edge cases ---------------------------------------------------------------------------

def test_zero_vector_has_cosine_zero_and_no_nan():
    docs = np.array([[1.0, 2.0], [0.0, 0.0]])
    np.testing.assert_array_equal(similarity.l2_normalize(docs)[1], [0.0, 0.0])
    scores = similarity.cosine_scores(docs, docs)
    assert not np.isnan(scores).any()
    np.testing.assert_allclose(scores, [[1.0, 0.0], [0.0, 0.0]])  # even a zero vector with itself
    assert similarity.cosine_scores([0.0, 0.0], [0.0, 0.0]) == 0.0
    np.testing.assert_allclose(similarity.euclidean_distances(docs, docs), [[0, np.sqrt(5)], [np.sqrt(5), 0]])


def test_one_dimensional_inputs_drop_their_axis():
    docs = np.array(DOCS)
    for score in (similarity.dot_scores, similarity.cosine_scores, similarity.euclidean_distances):
        assert score(QUERY, docs).shape == (3,)
        assert score(docs, QUERY).shape == (3,)
        assert np.ndim(score(QUERY, QUERY)) == 0
        assert score([QUERY], docs).shape == (1, 3)
    assert similarity.dot_scores([1, 2, 3], [4, 5, 6]) == 32
    assert similarity.euclidean_distances([0, 0], [3, 4]) == 5


def test_empty_inputs_give_empty_results():
    docs = random_matrix(4, dim=3)
    no_rows = np.empty((0, 3))
    for score in (similarity.dot_scores, similarity.cosine_scores, similarity.euclidean_distances):
        assert score(no_rows, docs).shape == (0, 4)
        assert score(docs, no_rows).shape == (4, 0)
        assert score(docs[0], no_rows).shape == (0,)
    assert similarity.l2_normalize(no_rows).shape == (0, 3)
    assert similarity.bag_of_words([], ["cat"]).shape == (0, 1)
    assert similarity.build_vocabulary([]) == []


def test_mismatched_or_badly_shaped_inputs_are_clear_errors():
    with pytest.raises(CourseError, match="queries have 2 dimensions but docs have 3"):
        similarity.cosine_scores([1.0, 2.0], [[1.0, 2.0, 3.0]])
    with pytest.raises(CourseError, match="not a 3-D array"):
        similarity.dot_scores(np.ones((2, 2, 2)), np.ones((2, 2)))
    with pytest.raises(CourseError, match="one weight per vocabulary word"):
        similarity.tfidf_vectors(["cat"], ["cat", "dog"], idf=[1.0])
    with pytest.raises(CourseError, match="lists a word twice"):
        similarity.bag_of_words(["cat"], ["cat", "cat"])
