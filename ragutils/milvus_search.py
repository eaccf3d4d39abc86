"""When one machine is not enough: the course's knowledge base on Milvus, a distributed vector database.

Milvus keeps, per passage, its text, the sparse BM25 vector that its own analyzer and
BM25 function make from the text, and the course encoder's dense vector, in one
*collection*. It searches each field (full-text BM25, dense inner product) and fuses the
two with its own reciprocal rank fusion. The same client code runs on two engines:

- **Milvus Lite** (the default): an embedded engine whose URI is a local path, here a
  folder in the course cache. Nothing to start, nothing on the network.
- **A Milvus cluster**: ``RAGUTILS_MILVUS_URI=http://host:19530`` (or ``--milvus-uri``)
  points the same code at it; the README says how to start one.

``MilvusKnowledgeBase`` builds a collection (once: it is named by what it holds, so a
changed corpus or encoder gets a new one), searches it through the course's
``search(queries, k)`` interface, and changes it in place (add, update = Milvus's
upsert, delete) under the promises of ``live_index.LiveIndex``.

What makes its BM25 comparable with ``bm25.BM25Retriever(variant="lucene")``:

1. The same k1 = 1.5 and b = 0.75, given to the index (Milvus's defaults are 1.2 and 0.75).
2. The same formula: Lucene's idf, ln(1 + (N - n + 0.5) / (n + 0.5)), and exact document
   lengths (no one-byte length code, unlike tantivy in notebook 04). Milvus multiplies
   each term's score by (k1 + 1), so its scores are 2.5 times ours: the order is the same.
3. The same tokens: Milvus Lite's "standard" analyzer is Python's ``\w+`` on lower-cased
   text (``milvus_lite/analyzer/standard.py``), which is ``ragutils.text.tokenize``. A Milvus
   server analyses text with its own compiled code, whose tokens ``client.run_analyzer``
   shows: check them there before trusting a comparison (the tests pin the tricky cases).
4. The sign: Milvus Lite returns BM25 scores negated (as distances to minimise); a BM25
   score is never negative, so its absolute value is the score whichever sign an engine uses.

What differs, measured in notebook 16: Milvus Lite keeps BM25 statistics (N, df, average
length) per segment, deleted and replaced rows included, and merges the segments' hits by
score. The cached copy is built in one batch, so one segment (up to Lite's in-memory
limit, 128 MB by default; beyond it, a bigger corpus is written in several segments,
each with its statistics), and equals ``bm25`` exactly. After adds, updates and deletes a
writable collection finds the same documents as a fresh build, with other BM25 scores:
the live indexes of notebook 14 keep global statistics, Milvus Lite does not. Dense
search does not depend on statistics and stays exact. Ties in a fused (hybrid) list are
broken by document id.

Derived in notebook 16.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import cache_dir
from .errors import CourseError
from .live_index import LiveIndex, check_ids
from .retriever import Ranking, check_k, query_list
from .text import validate_query
from .tools import store

if TYPE_CHECKING:
    from pymilvus import MilvusClient

    from .dense import Encoder

URI_ENV = "RAGUTILS_MILVUS_URI"  # a cluster's URI; unset: the embedded engine in the course cache
SCHEMA_VERSION = "ragutils-milvus-v1"
PREFIX = "ragutils_"  # the collections this module made, and may drop when they are stale
MODES = ("bm25", "dense", "hybrid")
ANALYZER = {"type": "standard"}
K1, B = 1.5, 0.75  # bm25.BM25Retriever's defaults
K_RRF, DEPTH = 10, 100  # rag.HYBRID_SETTINGS' constant and depth (Milvus's RRF has no weights)
MAX_TEXT_BYTES = 65_535  # a VARCHAR field's limit
MAX_ID_BYTES = 512  # the doc_id field's
INSERT_BATCH = 1_000


# ---------------------------------------------------------------------------
# Connecting: the embedded engine or a cluster
# ---------------------------------------------------------------------------


def default_uri() -> str:
    """The cluster named by RAGUTILS_MILVUS_URI, else the embedded engine's folder in the course cache.

    Used in notebook 16, section 1.
    """
    return os.environ.get(URI_ENV) or str(cache_dir("engines") / "milvus.db")


def is_embedded(uri: str) -> bool:
    """Whether `uri` names Milvus Lite (a local path) rather than a server (http, https, tcp).

    Used in notebook 16, section 1.
    """
    return "://" not in uri


def connect(uri: str | None = None, timeout: float = 10.0) -> MilvusClient:
    """A client of the engine at `uri` (default: `default_uri()`); CourseError, one line, if it cannot be reached.

    Used in notebook 16, section 1.
    """
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    uri = uri or default_uri()
    if is_embedded(uri) and not uri.endswith(".db"):
        raise CourseError(f"an embedded Milvus URI is a path ending in .db, not {uri!r}")
    try:
        client = MilvusClient(uri=uri, timeout=timeout)
        client.list_collections()  # a server that accepted the connection but cannot answer fails here
    except MilvusException as error:
        if is_embedded(uri):
            raise CourseError(f"cannot open the embedded Milvus at {uri} ({error.message}): "
                              "give a path in a folder that exists and you can write to") from None
        raise CourseError(f"cannot reach a Milvus server at {uri} ({error.message}); start the cluster "
                          f"(see the README), or leave out the URI ({URI_ENV}, --milvus-uri) to use the "
                          "embedded engine") from None
    return client


# ---------------------------------------------------------------------------
# A collection per corpus and encoder
# ---------------------------------------------------------------------------


def collection_key(docs: Sequence[str], doc_ids: Sequence[str], vectors: np.ndarray) -> str:
    """A hash of what a collection holds and how it is indexed: a changed corpus or encoder names a new one.

    Used in notebook 16, section 1.
    """
    import hashlib
    import importlib.metadata

    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:  # milvus-lite is not needed for a cluster
            return ""

    vector_digest = hashlib.sha256(np.ascontiguousarray(vectors, dtype=np.float32).tobytes()).hexdigest()
    return store.fingerprint([SCHEMA_VERSION, ANALYZER, K1, B, version("pymilvus"), version("milvus-lite"),
                              list(doc_ids), list(docs), vector_digest])


def _check_documents(docs: Sequence[str], doc_ids: Sequence[str], vectors: Any) -> tuple[list, list, np.ndarray]:
    """The documents, ids and vectors as lists and a float32 matrix, one row each; CourseError otherwise."""
    if isinstance(docs, str) or isinstance(doc_ids, str):
        raise CourseError("docs and doc_ids must be lists, not one string: wrap a single one in a list")
    docs, doc_ids = list(docs), list(doc_ids)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or not (len(docs) == len(doc_ids) == len(vectors)):
        raise CourseError(f"got {len(docs)} documents, {len(doc_ids)} ids and vectors of shape {vectors.shape}: "
                          "give one id and one vector (a row) per document")
    if not all(isinstance(doc, str) for doc in docs) or not all(isinstance(i, str) for i in doc_ids):
        raise CourseError("documents and their ids must be text (str)")
    too_long = next((i for i, doc in zip(doc_ids, docs) if len(doc.encode("utf-8")) > MAX_TEXT_BYTES), None)
    if too_long is not None:
        raise CourseError(f"document {too_long!r} is over {MAX_TEXT_BYTES:,} bytes, Milvus's limit for a text "
                          "field: split it into passages (ragutils.text.chunk_words)")
    _check_id_lengths(doc_ids)
    if not np.isfinite(vectors).all():
        raise CourseError("the vectors hold NaN or infinite values")
    return docs, doc_ids, vectors


def _check_id_lengths(doc_ids: Sequence[str]) -> None:
    """CourseError if an id is longer than the id field holds."""
    long_id = next((i for i in doc_ids if len(i.encode("utf-8")) > MAX_ID_BYTES), None)
    if long_id is not None:
        raise CourseError(f"document id {long_id[:40]!r}... is over {MAX_ID_BYTES} bytes, the id field's limit")


def check_mode(mode: str) -> None:
    """CourseError unless `mode` is one of MODES. Used in notebook 16, section 2."""
    if mode not in MODES:
        raise CourseError(f"unknown Milvus search mode {mode!r}; choose one of: {', '.join(MODES)}")


def _create(client: MilvusClient, name: str, dim: int) -> None:
    """An empty collection: id, text (analysed), its BM25 sparse vector (made by Milvus) and a dense vector."""
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False)
    schema.add_field("doc_id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES, enable_analyzer=True,
                     analyzer_params=ANALYZER)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    # The BM25 function turns each text into term frequencies at insert time, and each
    # query text into idf weights at search time: the index keeps the statistics.
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["text"], output_field_names=["sparse"]))
    index = client.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                    params={"bm25_k1": K1, "bm25_b": B})
    index.add_index("dense", index_type="FLAT", metric_type="IP")  # exact, as Faiss's IndexFlatIP
    # Strong consistency: a search sees every write before it (a cluster's default is weaker).
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def _rows(doc_ids: Sequence[str], docs: Sequence[str], vectors: np.ndarray) -> list[dict[str, Any]]:
    return [{"doc_id": i, "text": doc, "dense": vector.tolist()} for i, doc, vector in zip(doc_ids, docs, vectors)]


class MilvusKnowledgeBase(LiveIndex):
    """Passages in a Milvus collection: BM25, dense and hybrid search, and adds, updates and deletes.

    The changes keep `live_index.LiveIndex`'s promises (checked before anything changes;
    deleted documents never come back), but BM25 scores after them follow Milvus's
    per-segment statistics, not a rebuild's (module docstring).

    Without `name`, the collection is the cached copy of these documents: named by
    `collection_key`, built once (in a staging collection renamed into place only when
    complete, so an interrupted build is never used) and reused after; it refuses
    changes, because its name promises what it holds. With `name`, the collection is
    yours to change: built fresh from the documents, replacing any collection of that name.

    Derived in notebook 16.
    """

    def __init__(self, docs: Sequence[str], doc_ids: Sequence[str], vectors: Any, encoder: Encoder | None = None,
                 uri: str | None = None, name: str | None = None, tag: str = "docs") -> None:
        """Index `docs` (ids `doc_ids`, dense `vectors` from `encoder`) on the engine at `uri`.

        `tag` (the corpus's name) begins the cached copy's name: a newer copy of the same
        corpus replaces the older one, and other corpora's copies are left alone.
        """
        docs, doc_ids, vectors = _check_documents(docs, doc_ids, vectors)
        if len(set(doc_ids)) != len(doc_ids):
            raise CourseError("document ids must be unique")
        if name is not None and (not name.replace("_", "").isalnum() or name.startswith(PREFIX)):
            raise CourseError(f"a collection name is letters, digits and _, not starting with {PREFIX!r}: {name!r}")
        self.uri = uri or default_uri()
        self.client = connect(self.uri)
        self._encoder = encoder
        self.dim = vectors.shape[1]
        self.cached = name is None
        if not tag.isalnum():
            raise CourseError(f"a tag is letters and digits, not {tag!r}")
        self.family = f"{PREFIX}{tag}_"
        self.name = name or f"{self.family}{collection_key(docs, doc_ids, vectors)}"
        self.reused = self.cached and self.client.has_collection(self.name)
        if not self.reused:
            self._build(docs, doc_ids, vectors)
        self.client.load_collection(self.name)

    @classmethod
    def from_corpus(cls, name: str = "wiki", encoder: Encoder | None = None, uri: str | None = None,
                    collection: str | None = None) -> MilvusKnowledgeBase:
        """A corpus's passages with their cached embeddings (`embeddings.corpus_embeddings`) in Milvus.

        The encoder is loaded only if the embeddings must be computed or a dense search asks for it.
        """
        from .embeddings import corpus_embeddings

        embeddings = corpus_embeddings(name, encoder=encoder)
        return cls(embeddings.texts, embeddings.doc_ids, embeddings.vectors, encoder=encoder, uri=uri,
                   name=collection, tag=name)

    def _build(self, docs: list[str], doc_ids: list[str], vectors: np.ndarray) -> None:
        """Fill a staging collection, then rename it into place: the name appears only when it is complete."""
        client = self.client
        staging = f"{self.name}_building"
        for old in client.list_collections():
            # A staging collection left by an interrupted build, and (for the cached copy)
            # older copies of the same corpus, made from other texts or another encoder.
            if old == staging or (self.cached and old.startswith(self.family)):
                client.drop_collection(old)
        _create(client, staging, self.dim)
        for start in range(0, len(doc_ids), INSERT_BATCH):
            end = start + INSERT_BATCH
            client.insert(staging, _rows(doc_ids[start:end], docs[start:end], vectors[start:end]))
        client.flush(staging)
        if client.has_collection(self.name):  # a named, writable collection being rebuilt
            client.drop_collection(self.name)
        client.rename_collection(staging, self.name)

    def __repr__(self) -> str:
        engine = "embedded Milvus Lite" if is_embedded(self.uri) else f"Milvus at {self.uri}"
        return f"MilvusKnowledgeBase({len(self):,} documents, collection {self.name!r}, {engine})"

    @property
    def encoder(self) -> Encoder:
        """The encoder of the dense vectors, which also encodes the queries (loaded on first use)."""
        if self._encoder is None:
            from .dense import Encoder

            self._encoder = Encoder()
        return self._encoder

    # -- searching -----------------------------------------------------------

    def search(self, queries: Sequence[str], k: int = 10, mode: str = "bm25", depth: int = DEPTH,
               k_rrf: float = K_RRF) -> list[Ranking]:
        """For each query, up to k (doc_id, score) pairs, best first: BM25, dense (cosine) or hybrid (RRF)."""
        queries = query_list(queries)
        check_k(k)
        check_mode(mode)
        if not queries:
            return []
        queries = [validate_query(query) for query in queries]
        if mode == "bm25":
            hits = self.client.search(self.name, data=queries, anns_field="sparse", limit=k,
                                      search_params={"metric_type": "BM25"}, output_fields=["doc_id"])
        else:
            vectors = self.encoder.encode(queries, show_progress=False).tolist()
            if mode == "dense":
                hits = self.client.search(self.name, data=vectors, anns_field="dense", limit=k,
                                          search_params={"metric_type": "IP"}, output_fields=["doc_id"])
            else:
                hits = self.hybrid(queries, vectors, k, depth, k_rrf)
        # abs: Lite gives BM25 as a negative distance, a cluster as the positive score (module docstring).
        sign = abs if mode == "bm25" else float
        return [[(hit["doc_id"], float(sign(hit["distance"]))) for hit in row] for row in hits]

    def hybrid(self, queries: list[str], vectors: list[list[float]], k: int, depth: int, k_rrf: float) -> Any:
        """Milvus's own fusion: the `depth` best of BM25 and of dense search, fused by RRF(k_rrf) into k."""
        from pymilvus import AnnSearchRequest, RRFRanker

        check_k(depth)
        requests = [AnnSearchRequest(data=queries, anns_field="sparse", param={"metric_type": "BM25"}, limit=depth),
                    AnnSearchRequest(data=vectors, anns_field="dense", param={"metric_type": "IP"}, limit=depth)]
        return self.client.hybrid_search(self.name, requests, RRFRanker(k_rrf), limit=k, output_fields=["doc_id"])

    def retriever(self, mode: str) -> MilvusRetriever:
        """This collection behind the course's `search(queries, k)` interface, in one mode."""
        return MilvusRetriever(self, mode)

    # -- changing: the LiveIndex promises -----------------------------------

    def __len__(self) -> int:
        rows = self.client.query(self.name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and bool(self.client.get(self.name, ids=[doc_id], output_fields=["doc_id"]))

    def texts(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """The stored text of each live document among `doc_ids` (deleted ones are absent)."""
        rows = self.client.get(self.name, ids=list(doc_ids), output_fields=["doc_id", "text"])
        return {row["doc_id"]: row["text"] for row in rows}

    def _check_writable(self) -> None:
        """CourseError on the cached copy of a corpus, whose name promises what it holds."""
        if self.cached:
            raise CourseError(f"collection {self.name!r} is the cached copy of a corpus and is never changed: "
                              "build a writable one with MilvusKnowledgeBase(..., name='my_kb')")

    def _check_contents(self, contents: Any, n_ids: int) -> tuple[list[str], np.ndarray]:
        """(texts, vectors) for `n_ids` documents, checked; refused on the cached copy of a corpus."""
        self._check_writable()
        if not (isinstance(contents, tuple) and len(contents) == 2):
            raise CourseError("a Milvus document is a text and its vector: give contents as (texts, vectors)")
        texts, vectors = contents
        ids = [f"#{i}" for i in range(n_ids)]  # stand-ins: the ids were checked by LiveIndex
        texts, _, vectors = _check_documents(texts, ids, vectors)
        if vectors.shape[1] != self.dim:
            raise CourseError(f"vectors of {vectors.shape[1]} numbers for a collection of dimension {self.dim}")
        return texts, vectors

    def _insert(self, ids: list[str], contents: tuple[list[str], np.ndarray]) -> None:
        texts, vectors = contents
        _check_id_lengths(ids)
        self.client.insert(self.name, _rows(ids, texts, vectors))

    def _remove(self, ids: list[str]) -> None:
        self._check_writable()
        self.client.delete(self.name, ids=ids)

    def update(self, doc_ids: Sequence[str], contents: Any) -> None:
        """Replace documents already in the collection, in one upsert (a delete and an insert inside Milvus)."""
        ids = check_ids(doc_ids, "update")
        texts, vectors = self._check_contents(contents, len(ids))
        self._check_known(ids, "update")
        self.client.upsert(self.name, _rows(ids, texts, vectors))


class MilvusRetriever:
    """A Milvus collection in one search mode, as a course retriever: `search(queries, k)`.

    Used in notebook 16, section 2.
    """

    def __init__(self, knowledge_base: MilvusKnowledgeBase, mode: str = "bm25") -> None:
        """Search `knowledge_base` with BM25, dense vectors or Milvus's hybrid fusion."""
        check_mode(mode)
        self.knowledge_base, self.mode = knowledge_base, mode

    def __repr__(self) -> str:
        return f"MilvusRetriever({self.mode}, collection {self.knowledge_base.name!r})"

    def search(self, queries: Sequence[str], k: int = 10) -> list[Ranking]:
        """For each query, up to k (doc_id, score) pairs, best first."""
        return self.knowledge_base.search(queries, k, mode=self.mode)

