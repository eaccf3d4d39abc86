"""Milvus beside the course's own engines: index build and queries per second, one run each.

``ragutils bench milvus`` prints one table: the 10k wiki passages in Milvus Lite (BM25,
dense, hybrid) beside ``ragutils.bm25`` and Faiss's exact index, and the 200k-vector
scaling set of notebook 03 in Milvus beside Faiss. The set-up keeps the comparison fair:

- the same queries (the retrieval test split, 931 article descriptions), one batch each;
  dense queries are encoded once beforehand, so the rows time the engines, not the encoder;
- exact search on both sides (Milvus FLAT, Faiss IndexFlatIP), the same k;
- build: from texts (and vectors) in memory to a searchable index; Milvus's includes
  writing its segments to a temporary folder, as an embedded engine must;
- Milvus Lite 3 is Python: a gRPC server on a thread of this process, which the client
  calls like a remote one, so every request crosses that boundary, which an in-process
  library never pays. A cluster is compiled code on other machines: a network round trip
  per request, and the work spread over them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .bench import timed

N_SCALING = 200_000
K = 10


def _milvus_vectors_only(uri: str, vectors: np.ndarray, batch: int = 10_000) -> tuple[Any, str, float]:
    """A Milvus collection holding only dense vectors (FLAT, inner product): its client, name and build seconds."""
    from pymilvus import DataType

    from ..milvus_search import connect

    client, name = connect(uri), "scaling"
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
    index = client.prepare_index_params()
    index.add_index("dense", index_type="FLAT", metric_type="IP")

    def build() -> None:
        client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
        for start in range(0, len(vectors), batch):
            rows = vectors[start:start + batch]
            client.insert(name, [{"id": start + i, "dense": row.tolist()} for i, row in enumerate(rows)])
        client.flush(name)
        client.load_collection(name)

    seconds, _ = timed(build)
    return client, name, seconds


def bench_milvus(n_scaling: int = N_SCALING, k: int = K) -> list[dict[str, Any]]:
    """Build seconds and queries/s: Milvus Lite against ragutils.bm25 and Faiss, on 10k passages and 200k vectors."""
    from .. import faiss_index, faiss_scaling
    from ..bm25 import BM25Retriever
    from ..data import load_split, wiki_passages
    from ..dense import Encoder
    from ..embeddings import corpus_embeddings, encode_cached
    from ..milvus_search import MilvusKnowledgeBase

    encoder = Encoder()
    doc_ids, _, passages = wiki_passages()
    vectors = corpus_embeddings("wiki", encoder=encoder).vectors
    queries = list(load_split("retrieval")["test"]["query"])
    query_vectors = encode_cached(queries, "retrieval-test-queries", encoder=encoder)
    rows: list[dict[str, Any]] = []

    def row(data: str, engine: str, search: str, build_s: float | None, seconds: float) -> None:
        rows.append({"data": data, "engine": engine, "search": search, "build_s": build_s,
                     "queries_per_s": len(queries) / seconds})

    corpus = f"wiki, {len(passages):,} passages"
    build_s, bm25 = timed(lambda: BM25Retriever(passages, doc_ids, variant="lucene"))
    row(corpus, "ragutils.bm25", "BM25", build_s, timed(lambda: bm25.search(queries, k))[0])
    build_s, flat = timed(lambda: faiss_index.build_index(vectors, "flat"))
    row(corpus, "Faiss IndexFlatIP", "dense", build_s, timed(lambda: faiss_index.search_index(flat, query_vectors, k))[0])

    with tempfile.TemporaryDirectory() as folder:
        uri = str(Path(folder) / "milvus.db")
        build_s, kb = timed(lambda: MilvusKnowledgeBase(passages, doc_ids, vectors, encoder=encoder, uri=uri))
        as_lists = query_vectors.tolist()
        row(corpus, "Milvus Lite", "BM25", build_s, timed(lambda: kb.search(queries, k, mode="bm25"))[0])
        row(corpus, "Milvus Lite", "dense", None,
            timed(lambda: kb.client.search(kb.name, data=as_lists, anns_field="dense", limit=k,
                                           search_params={"metric_type": "IP"}, output_fields=["doc_id"]))[0])
        row(corpus, "Milvus Lite", "hybrid (RRF)", None,
            timed(lambda: kb.hybrid(queries, as_lists, k, depth=100, k_rrf=10))[0])
        kb.client.close()

        scale = faiss_scaling.scaling_vectors(n_scaling, encoder=encoder)
        vectors_set = f"{len(scale.vectors):,} vectors ({scale.real:,} real)"
        build_s, flat = timed(lambda: faiss_index.build_index(scale.vectors, "flat"))
        row(vectors_set, "Faiss IndexFlatIP", "dense", build_s,
            timed(lambda: faiss_index.search_index(flat, query_vectors, k))[0])
        client, name, build_s = _milvus_vectors_only(str(Path(folder) / "scaling.db"), scale.vectors)
        row(vectors_set, "Milvus Lite", "dense", build_s,
            timed(lambda: client.search(name, data=as_lists, anns_field="dense", limit=k,
                                        search_params={"metric_type": "IP"}))[0])
        client.close()
    return rows
