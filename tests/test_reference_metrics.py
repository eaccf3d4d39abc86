"""Reference tier: the course's retrieval metrics against trec_eval, and its rank fusion against ranx.

trec_eval (through pytrec-eval-terrier) and ranx are the field's own implementations.
Both read a run as {query: {doc: score}} and rank by score, breaking ties their own way
(trec_eval by doc id). So every run handed to them here scores a document by its rank
(n, n - 1, ..., 1): no ties, and the order they rank is exactly the list the course's
functions read. The runs are real (BM25 on the retrieval test split, as in notebooks 02
and 04) and random (many relevant documents, short and long lists, misses).
"""

import math
import random

import pytest
import pytrec_eval

from ragutils import data, hybrid, metrics
from ragutils.bm25 import BM25Retriever

DEPTH = 100  # as notebook 04's candidate lists


def as_run(ranked):
    """{query: {doc: score}} with scores that fall with the rank and never tie."""
    return {f"q{i}": {doc: float(len(docs) - rank) for rank, doc in enumerate(docs)} for i, docs in enumerate(ranked)}


def as_qrels(relevant):
    """{query: {doc: 1}}: binary judgements, as the course's metrics assume."""
    return {f"q{i}": {doc: 1 for doc in wanted} for i, wanted in enumerate(relevant)}


def trec_eval_means(ranked, relevant, measures):
    """trec_eval's per-query values of `measures`, averaged over every query."""
    per_query = pytrec_eval.RelevanceEvaluator(as_qrels(relevant), set(measures)).evaluate(as_run(ranked))
    assert len(per_query) == len(ranked)  # trec_eval skips queries it cannot score: none may be skipped
    return {name: math.fsum(values[name] for values in per_query.values()) / len(per_query)
            for name in next(iter(per_query.values()))}


def random_lists(seed, n_queries=60, n_docs=40):
    """Random ranked lists (1 to 30 distinct documents) and relevant sets (1 to 4 documents)."""
    rng = random.Random(seed)
    pool = [f"d{i:02d}" for i in range(n_docs)]
    ranked = [rng.sample(pool, rng.randint(1, 30)) for _ in range(n_queries)]
    relevant = [set(rng.sample(pool, rng.randint(1, 4))) for _ in range(n_queries)]
    return ranked, relevant


@pytest.fixture(scope="module")
def bm25_test_runs():
    """BM25 (Lucene, then BM25+) top-100 lists on the retrieval test split, and its relevant sets."""
    doc_ids, _, passages = data.wiki_passages()
    test = data.load_split("retrieval")["test"]
    queries = list(test["query"])
    runs = [BM25Retriever(passages, doc_ids, variant=variant).search(queries, DEPTH) for variant in ("lucene", "bm25+")]
    return runs, [{doc_id} for doc_id in test["doc_id"]]


def check_against_trec_eval(ranked, relevant):
    """recall@k, MRR (uncut, and cut at 10) and nDCG@k of `metrics` equal trec_eval's."""
    ks, ndcg_ks = (1, 3, 5, 10), (3, 10)
    expected = trec_eval_means(ranked, relevant, {"recall." + ",".join(map(str, ks)), "recip_rank",
                                                  "ndcg_cut." + ",".join(map(str, ndcg_ks))})
    for k in ks:
        assert metrics.recall_at_k(ranked, relevant, k) == pytest.approx(expected[f"recall_{k}"], rel=1e-12), k
    for k in ndcg_ks:
        assert metrics.ndcg_at_k(ranked, relevant, k) == pytest.approx(expected[f"ndcg_cut_{k}"], rel=1e-12), k
    assert metrics.mrr(ranked, relevant) == pytest.approx(expected["recip_rank"], rel=1e-12)
    scores = metrics.retrieval_scores(ranked, relevant, ks=ks)
    assert scores == pytest.approx({**{f"recall@{k}": expected[f"recall_{k}"] for k in ks},
                                    "MRR": expected["recip_rank"], "nDCG@10": expected["ndcg_cut_10"]}, rel=1e-12)
    # trec_eval's recip_rank has no cut-off: MRR@10 is recip_rank on the lists cut at 10.
    top_10 = [docs[:10] for docs in ranked]
    cut = trec_eval_means(top_10, relevant, {"recip_rank"})["recip_rank"]
    assert metrics.mrr(ranked, relevant, k=10) == pytest.approx(cut, rel=1e-12)


def test_retrieval_metrics_equal_trec_eval_on_bm25_test_runs(bm25_test_runs):
    (lucene, _), relevant = bm25_test_runs
    ranked = [[doc_id for doc_id, _ in hits] for hits in lucene]
    check_against_trec_eval(ranked, relevant)
    assert metrics.recall_at_k(ranked, relevant, 10) > 0.8  # a real run: most queries find their article


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrieval_metrics_equal_trec_eval_on_random_runs(seed):
    ranked, relevant = random_lists(seed)
    assert any(len(wanted) > 1 for wanted in relevant) and any(not wanted & set(docs)
                                                                for docs, wanted in zip(ranked, relevant))
    check_against_trec_eval(ranked, relevant)


# ranx compiles its fusion with numba, which warns about an integer cast inside ranx itself.
@pytest.mark.filterwarnings("ignore::numba.core.errors.NumbaTypeSafetyWarning")
def test_reciprocal_rank_fusion_equals_ranx(bm25_test_runs):
    import ranx

    (lucene, bm25_plus), _ = bm25_test_runs
    rng = random.Random(3)
    pool = [f"d{i:02d}" for i in range(40)]
    random_runs = [[[(doc, 0.0) for doc in rng.sample(pool, rng.randint(1, 30))] for _ in range(60)]
                   for _ in range(3)]
    # The first 200 test queries: enough real lists, and ranx's numba code is slow on a busy CPU.
    cases = {"BM25 and BM25+ on the test split": [lucene[:200], bm25_plus[:200]], "three random runs": random_runs}
    for name, rankings in cases.items():
        for k_rrf in (None, 10):  # None: each library's default constant (60 in both)
            ours = (hybrid.reciprocal_rank_fusion(rankings) if k_rrf is None
                    else hybrid.reciprocal_rank_fusion(rankings, k_rrf=k_rrf))
            # RRF reads only ranks: no score normalisation (ranx's default is min-max).
            runs = [ranx.Run(as_run([[doc for doc, _ in hits] for hits in ranking])) for ranking in rankings]
            theirs = ranx.fuse(runs, norm=None, method="rrf", params={} if k_rrf is None else {"k": k_rrf})
            theirs = theirs.to_dict()
            assert len(theirs) == len(ours), name
            for query, fused in enumerate(ours):
                expected = theirs[f"q{query}"]
                assert dict(fused) == pytest.approx(expected, abs=1e-12), (name, k_rrf, query)  # same docs, scores
                best_first = sorted(expected.values(), reverse=True)
                assert [score for _, score in fused] == pytest.approx(best_first, abs=1e-12), (name, k_rrf, query)
