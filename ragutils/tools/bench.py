"""Speed benchmarks: the course's own code side by side with the reference libraries.

``ragutils bench bm25|dense|decoding`` (and notebook 02, for BM25) print these tables;
each benchmark says in comments how it makes the comparison fair (same inputs, one
thread, best of several rounds). The RAG quality table is ``bench_rag``.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from ..errors import CourseError
from ..metrics import same_ranking

T = TypeVar("T")
Ranked = list[tuple[np.ndarray, np.ndarray]]  # (document positions, scores), one pair per query


def timed(run: Callable[[], T]) -> tuple[float, T]:
    """The wall-clock seconds one call of `run` takes, and its result."""
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


class BestTimes(dict):
    """The shortest time seen for each named step, over repeated rounds."""

    def run(self, name: str, step: Callable[[], T]) -> T:
        """Time `step` once, keep the time if it is the best for `name`, and return its result."""
        seconds, result = timed(step)
        self[name] = min(self.get(name, float("inf")), seconds)
        return result


def single_thread() -> contextlib.AbstractContextManager:
    """A context in which BLAS and OpenMP pools use one thread (threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a markdown table, columns in order of first appearance."""
    if not rows:
        return ""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            if abs(value) >= 100:
                return f"{value:,.0f}"
            return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# BM25: ragutils.bm25 against bm25s and rank_bm25
# ---------------------------------------------------------------------------


def bm25_queries(descriptions: Sequence[str], n_queries: int, seed: int) -> list[str]:
    """`n_queries` article descriptions drawn at random (with a seed), as benchmark queries."""
    # Descriptions ("Art movement", "Chemical element with atomic number 66") are
    # short, natural queries whose answer is their own article.
    pool = [text for text in descriptions if text.strip()]
    rng = random.Random(seed)
    return rng.sample(pool, n_queries) if n_queries <= len(pool) else rng.choices(pool, k=n_queries)


def bench_bm25(
    n_queries: int = 1000, seed: int = 0, rank_bm25_queries: int = 50, k: int = 10, repeats: int = 3
) -> list[dict[str, Any]]:
    """Index-build time and batch-query speed of ragutils.bm25, bm25s and rank_bm25 on the wiki corpus."""
    # The set-up, so that the numbers compare like with like:
    # - corpus: every wiki article as title + text; queries: article descriptions
    #   (see `bm25_queries`), the same for every library;
    # - the same `\w+` tokens for all, made before the clocks start;
    # - one thread: bm25s on its sequential numpy path, BLAS/OpenMP pools limited to
    #   one thread (the sparse products of ragutils.bm25 are single-threaded anyway);
    # - each time is the best of `repeats` runs; rank_bm25, about 500 times slower,
    #   answers only the first `rank_bm25_queries` queries and its speed is per query;
    # - same_top_k_as_reference: the share of queries whose top k equals the
    #   reference's (bm25s for Lucene, rank_bm25 for Okapi), up to the order of ties.
    # Imported here: the reference libraries are only needed when benchmarking.
    import bm25s
    import rank_bm25

    from ..bm25 import BM25Index
    from ..data import load_corpus
    from ..text import tokenize_many

    if n_queries < 1 or rank_bm25_queries < 1 or repeats < 1:
        raise CourseError("n_queries, rank_bm25_queries and repeats must be >= 1")
    corpus = load_corpus("wiki")
    docs = [f"{title} {text}" for title, text in zip(corpus["title"], corpus["text"])]
    queries = bm25_queries(corpus["description"], n_queries, seed)
    # Every library gets the same tokens: only indexing and scoring are timed.
    docs_tokens = tokenize_many(docs)
    queries_tokens = tokenize_many(queries)
    few_queries = queries_tokens[:rank_bm25_queries]

    def ragutils_index(variant: str, **params: Any) -> BM25Index:
        return BM25Index(docs_tokens, variant, **params)

    def bm25s_index() -> bm25s.BM25:
        model = bm25s.BM25(method="lucene", k1=1.5, b=0.75, backend="numpy")
        model.index(docs_tokens, show_progress=False)
        return model

    def bm25s_search(model: bm25s.BM25) -> Ranked:
        # n_threads=0: bm25s's sequential path; its numba backend is not installed here.
        documents, scores = model.retrieve(
            queries_tokens, k=k, show_progress=False, n_threads=0, backend_selection="numpy"
        )
        # bm25s fills k places with zero-score documents where fewer match; drop them.
        return [(d[s > 0], s[s > 0]) for d, s in zip(documents, scores)]

    def rank_bm25_search(model: rank_bm25.BM25Okapi) -> Ranked:
        # What rank_bm25's get_top_n does (score every document, sort), keeping the scores.
        results = []
        for query in few_queries:
            scores = model.get_scores(query)
            top = np.argsort(scores)[::-1][:k]
            results.append((top[scores[top] > 0], scores[top][scores[top] > 0]))
        return results

    def agreement(ours: Ranked, theirs: Ranked) -> float:
        # The share of queries whose ranked lists are the same, up to the order of ties.
        return float(np.mean([same_ranking(*a, *b) for a, b in zip(ours, theirs)]))

    # Rounds, each timing every library in turn, so that a busy machine slows all
    # of them alike; each step keeps its best time over the rounds.
    best = BestTimes()
    with single_thread():
        for _ in range(repeats):
            lucene = best.run("build lucene", lambda: ragutils_index("lucene"))
            lucene_top = best.run("query lucene", lambda: lucene.top_k(queries_tokens, k))
            bm25s_model = best.run("build bm25s", bm25s_index)
            bm25s_top = best.run("query bm25s", lambda: bm25s_search(bm25s_model))
            okapi = best.run("build okapi", lambda: ragutils_index("okapi", negative_idf="epsilon"))
            okapi_top = best.run("query okapi", lambda: okapi.top_k(queries_tokens, k))
            rank_model = best.run("build rank_bm25", lambda: rank_bm25.BM25Okapi(docs_tokens))
            rank_top = best.run("query rank_bm25", lambda: rank_bm25_search(rank_model))

    # rank_bm25 answers only the first `rank_bm25_queries`: speeds are per query.
    speed = {
        "lucene": n_queries / best["query lucene"],
        "bm25s": n_queries / best["query bm25s"],
        "okapi": n_queries / best["query okapi"],
        "rank_bm25": len(few_queries) / best["query rank_bm25"],
    }
    rows = [
        ("ragutils.bm25", "lucene", best["build lucene"], n_queries, speed["lucene"],
         agreement(lucene_top, bm25s_top)),
        ("bm25s (numpy, n_threads=0)", "lucene", best["build bm25s"], n_queries, speed["bm25s"], None),
        ("ragutils.bm25", "okapi, epsilon floor", best["build okapi"], n_queries, speed["okapi"],
         agreement(okapi_top[: len(few_queries)], rank_top)),
        ("rank_bm25 (BM25Okapi)", "okapi, epsilon floor", best["build rank_bm25"], len(few_queries),
         speed["rank_bm25"], None),
    ]
    return [
        {
            "library": library,
            "variant": variant,
            "build_s": build_s,
            "build_speedup_vs_bm25s": best["build bm25s"] / build_s,
            "queries": n,
            "queries_per_s": queries_per_s,
            "speedup_vs_bm25s": queries_per_s / speed["bm25s"],
            "speedup_vs_rank_bm25": queries_per_s / speed["rank_bm25"],
            "same_top_k_as_reference": same,
        }
        for library, variant, build_s, n, queries_per_s, same in rows
    ]


# ---------------------------------------------------------------------------
# Dense: encoding speed, and exact vs approximate search on 200,000 vectors
# ---------------------------------------------------------------------------


def bench_dense(
    n_vectors: int = 200_000, n_queries: int = 500, k: int = 10, encode_passages: int = 256,
    threads: Sequence[int] = (1, 2), repeats: int = 3, encode_repeats: int = 2, seed: int = 0,
    nprobes: Sequence[int] = (8, 16, 32, 64), ef_searches: Sequence[int] = (16, 32, 64, 128),
) -> list[dict[str, Any]]:
    """Passages encoded per second, and exact vs IVF vs HNSW search (recall@k, queries/s) on n_vectors vectors."""
    # The set-up (the same data and indexes as notebook 03):
    # - encoding: `encode_passages` wiki passages drawn at random (seeded), batches of 64,
    #   truncated at 256 tokens, torch limited to each thread count in turn; best of `encode_repeats`.
    # - search: faiss_scaling.scaling_vectors(n_vectors): real embeddings of every passage and
    #   sentence of the three corpora, topped up with noisy copies of them (see its
    #   docstring). Indexes: IndexFlatIP (exact), IVF (nlist 1024), HNSW (M 32), built
    #   once with one thread and cached; build_s is the time measured when the cache was
    #   filled. Queries: the first `n_queries` retrieval test queries (article descriptions).
    # - recall_at_k: the share of IndexFlatIP's top k that the index also returns.
    # - queries_per_s: one batch of all queries through index.search, best of `repeats`,
    #   with Faiss (OpenMP, and the OpenBLAS it drives) limited to each thread count;
    #   speedup_vs_exact compares with IndexFlatIP at the same thread count.
    # Imported here: torch and faiss are only needed when benchmarking dense retrieval.
    import torch

    from .. import dense, embeddings, faiss_index, faiss_scaling
    from ..data import load_split

    if min(n_queries, encode_passages, repeats, encode_repeats) < 1 or not threads:
        raise CourseError("n_queries, encode_passages and the repeats must be >= 1, "
                          "with at least one thread count")
    rows: list[dict[str, Any]] = []

    encoder = dense.Encoder()
    _, passages = embeddings.passage_texts("wiki")
    sample = random.Random(seed).sample(passages, min(encode_passages, len(passages)))
    torch_threads = torch.get_num_threads()
    try:
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            best = BestTimes()
            for _ in range(encode_repeats):
                best.run("encode", lambda: encoder.encode(sample, batch_size=64, show_progress=False))
            rows.append({"task": "encode wiki passages", "index": "ragutils.dense.Encoder",
                         "setting": f"batch 64, max {encoder.max_length} tokens", "threads": n_threads,
                         "passages_per_s": len(sample) / best["encode"]})
    finally:
        torch.set_num_threads(torch_threads)

    scale = faiss_scaling.scaling_vectors(n_vectors, encoder=encoder)
    queries = embeddings.encode_cached(load_split("retrieval")["test"]["query"], "retrieval-test-queries",
                                  encoder=encoder)[:n_queries]
    built = {
        "flat": faiss_scaling.cached_index(scale.vectors, scale.key, "flat"),
        "ivf": faiss_scaling.cached_index(scale.vectors, scale.key, "ivf", nlist=1024, nprobe=16),
        "hnsw": faiss_scaling.cached_index(scale.vectors, scale.key, "hnsw", M=32, ef_construction=80),
    }
    memory = {kind: faiss_index.index_bytes(index) / index.ntotal for kind, (index, _) in built.items()}
    task = f"search {len(scale.vectors):,} vectors ({scale.real:,} real)"
    with faiss_index.faiss_threads(1):
        _, exact = faiss_index.search_index(built["flat"][0], queries, k)
    knobs = {"flat": ("", [None]), "ivf": ("nprobe", nprobes), "hnsw": ("ef_search", ef_searches)}
    for n_threads in threads:
        exact_qps = None
        for kind, (param, values) in knobs.items():
            index, build_s = built[kind]
            for value in values:
                if value is not None:
                    faiss_index.set_search_params(index, **{param: value})
                qps, found = faiss_index.timed_search(index, queries, k, threads=n_threads, repeat=repeats)
                exact_qps = exact_qps or qps
                rows.append({"task": task, "index": kind, "setting": f"{param}={value}" if param else "exact",
                             "threads": n_threads, "build_s": build_s, "bytes_per_vector": memory[kind],
                             f"recall_at_{k}": faiss_index.ann_recall(found, exact), "queries_per_s": qps,
                             "speedup_vs_exact": qps / exact_qps})
    return rows


# ---------------------------------------------------------------------------
# Decoding: ragutils.decoding against transformers' generate()
# ---------------------------------------------------------------------------


def bench_decoding(new_tokens: int = 64, beam_tokens: int = 32, num_beams: int = 4, repeats: int = 3,
                   seed: int = 0) -> list[dict[str, Any]]:
    """Tokens per second of ragutils.decoding's greedy, beam and sampling loops next to generate() on the generator."""
    # The set-up, so that the numbers compare like with like:
    # - one process, one prompt (a chat prompt that asks for a long story, so that no
    #   run meets the end-of-sequence token early), the offline generator in fp32;
    # - generate() gets every option spelled out (no default of the model or of the
    #   library slips in; top_k=0 when sampling, as ragutils' sample() has no top-k
    #   unless asked), and both sides stop at the same EOS;
    # - rounds, each timing every pair in turn, so that a busy machine slows all alike;
    #   each time is the best of `repeats` rounds, after one warm-up run;
    # - same_tokens: whether ours and generate() produced the same ids (sampling:
    #   our torch.Generator and generate's global generator, seeded alike).
    import torch

    from .. import decoding, models
    from ..rag import chat_text

    if new_tokens < 1 or beam_tokens < 1 or num_beams < 1 or repeats < 1:
        raise CourseError("new_tokens, beam_tokens, num_beams and repeats must be >= 1")
    model, tokenizer = models.load("generator")
    eos = tokenizer.eos_token_id
    messages = [{"role": "user", "content": "Write a long story about a dragon who is afraid of the dark."}]
    prompt = tokenizer(chat_text(tokenizer, messages), return_tensors="pt", add_special_tokens=False)["input_ids"]
    sampling = {"temperature": 0.8, "top_p": 0.9}

    def generate(max_new_tokens: int, **options: Any) -> Any:
        options = {"do_sample": False, "num_beams": 1, "repetition_penalty": 1.0, **options}
        if options["do_sample"]:
            options = {"top_k": 0, **options}
        if options["num_beams"] > 1:
            options = {"length_penalty": 1.0, "early_stopping": False, **options}
        with torch.inference_mode():
            return model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=max_new_tokens,
                                  eos_token_id=eos, pad_token_id=eos, **options)

    def generate_sample() -> Any:
        torch.manual_seed(seed)
        return generate(new_tokens, do_sample=True, **sampling)

    pairs = {
        "greedy": (new_tokens,
                   lambda: decoding.greedy_search(model, prompt, new_tokens, eos_token_id=eos),
                   lambda: generate(new_tokens)),
        f"beam search, {num_beams} beams": (
            beam_tokens,
            lambda: decoding.beam_search(model, prompt, num_beams, beam_tokens, eos_token_id=eos),
            lambda: generate(beam_tokens, num_beams=num_beams)),
        "sampling (T 0.8, top-p 0.9)": (
            new_tokens,
            lambda: decoding.sample(model, prompt, new_tokens, eos_token_id=eos,
                                    generator=torch.Generator().manual_seed(seed), **sampling),
            generate_sample),
    }
    outputs = {name: (ours(), theirs()) for name, (_, ours, theirs) in pairs.items()}  # warm-up
    best = BestTimes()
    for _ in range(repeats):
        for name, (_, ours, theirs) in pairs.items():
            best.run(f"{name} ragutils", ours)
            best.run(f"{name} generate", theirs)
    rows = []
    for name in pairs:
        ours_ids, theirs_ids = outputs[name]
        generated = ours_ids.shape[1] - prompt.shape[1]
        for library in ("ragutils", "generate"):
            seconds = best[f"{name} {library}"]
            rows.append({
                "method": name,
                "implementation": "ragutils.decoding" if library == "ragutils" else "transformers generate()",
                "new_tokens": generated,
                "best_s": seconds,
                "tokens_per_s": generated / seconds,
                "speed_vs_generate": best[f"{name} generate"] / seconds,
                "same_tokens": bool(torch.equal(ours_ids, theirs_ids)) if library == "ragutils" else None,
            })
    return rows
