"""Dense retrieval: an encoder with mean pooling, cached corpus embeddings, and Faiss indexes.

The pipeline of notebook 03, one function per step:

1. ``Encoder`` turns texts into vectors: tokens → the Transformer's hidden states
   → ``mean_pool`` (the average of the token vectors, padding excluded) → unit
   length. With all-MiniLM-L6-v2 this is exactly what ``sentence-transformers``
   computes (the tests check it to 1e-5).
2. ``corpus_embeddings`` encodes every passage of a corpus once and caches the
   matrix on disk, keyed by the model, the data file and the passage format.
3. ``build_index`` puts the vectors into a Faiss index: ``flat`` (exact search),
   ``ivf`` (inverted lists), ``hnsw`` (a navigable graph), ``pq`` (compressed
   codes) or ``ivfpq`` (both). All use the inner product on unit vectors, which
   is the cosine similarity.
4. ``DenseRetriever`` ties an encoder to an index behind the course's retriever
   interface: ``search(queries, k) -> [[(doc_id, score), ...], ...]``.

``scaling_vectors`` builds the 200,000-vector set of the "when does approximate
search pay off" experiment; ``cached_index`` keeps slow-to-build indexes on disk;
``ann_recall``, ``timed_search`` and ``sweep`` measure recall against exact
search and queries per second.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import cache_dir, data_dir, progress_disabled
from .errors import CourseError
from .text import validate_query

if TYPE_CHECKING:  # imported lazily: torch and faiss take a second or two to import
    import faiss
    import torch

# How a record becomes the text we encode. Wiki passages are `data.passage_text`
# ("{title}. {text}"), the passage that BM25 indexes and that prompts show, so every
# retriever of the course searches the same text. The other corpora follow suit.
PASSAGE_FORMATS = {
    "wiki": "{title}. {text}",
    "jargon": "{headword}. {text}",
    "pyfaq": "{question} {answer}",
}
# The field that holds a record's body text (split into sentences for the scaling experiment).
BODY_FIELDS = {"wiki": "text", "jargon": "text", "pyfaq": "answer"}

INDEX_KINDS = ("flat", "ivf", "hnsw", "pq", "ivfpq")

# Faiss's k-means warns (on stderr, from C++) when it gets fewer than 39 training
# points per centroid; we refuse such settings with a clear error instead.
MIN_POINTS_PER_CENTROID = 39
# k-means (IVF's lists, PQ's codebooks) trains on at most this many points per
# centroid, a random sample: Faiss's default of 256 makes training on 200,000
# vectors several times slower, for centroids that are barely better.
TRAIN_POINTS_PER_CENTROID = 64

# Sentences end at . ! or ? followed by space and a capital, digit, quote or bracket.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


# ----------------------------------------------------------------------------
# Encoding
# ----------------------------------------------------------------------------


def mean_pool(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The average of each text's token vectors, padding positions excluded: (batch, dim)."""
    mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)  # (batch, tokens, 1)
    summed = (hidden_states * mask).sum(dim=1)
    counts = mask.sum(dim=1).clamp(min=1e-9)  # a text always has [CLS] and [SEP]; no 0/0
    return summed / counts


def _max_length(model_path: str, tokenizer: Any, config: Any) -> int:
    """The longest input the encoder was trained for: sentence-transformers' max_seq_length if known."""
    from transformers.utils import cached_file

    limit = min(int(tokenizer.model_max_length), int(getattr(config, "max_position_embeddings", 512)))
    try:
        found = cached_file(model_path, "sentence_bert_config.json", local_files_only=True,
                            _raise_exceptions_for_missing_entries=False,
                            _raise_exceptions_for_connection_errors=False)
    except OSError:
        found = None
    if found:
        limit = min(limit, int(json.loads(Path(found).read_text(encoding="utf-8")).get("max_seq_length", limit)))
    return limit


def encoder_identity(profile: str | None = None) -> str:
    """A string that names the encoder of a profile and its version, for cache keys."""
    from . import models

    name = models.resolve_profile(profile)
    model_spec = models.spec("encoder", name)
    if model_spec.source == "package":
        version = importlib.metadata.version(model_spec.name.replace("_", "-"))
        return f"{name}:{model_spec.name}=={version}/{model_spec.file}"
    return f"{name}:{model_spec.source}:{model_spec.name}"


class Encoder:
    """Texts in, unit vectors out: a Transformer with mean pooling (all-MiniLM-L6-v2 by default).

    Inputs longer than ``max_length`` tokens (256 for all-MiniLM-L6-v2, the length
    it was trained on) are truncated: the end of a long passage is simply not seen,
    so its vector describes only its first ~200 words. Split long documents into
    chunks if their ends matter.
    """

    def __init__(self, profile: str | None = None, model: Any = None, tokenizer: Any = None,
                 identity: str | None = None, max_length: int | None = None) -> None:
        """Load the profile's encoder, or wrap a given (model, tokenizer) named by ``identity``."""
        from . import models

        if (model is None) != (tokenizer is None):
            raise CourseError("give both model and tokenizer, or neither (to load the profile's encoder)")
        if model is None:
            self.profile = models.resolve_profile(profile)
            path = models.model_path("encoder", self.profile)
            model, tokenizer = models.load("encoder", self.profile)
            self.identity = identity or encoder_identity(self.profile)
        else:
            if not identity:
                raise CourseError("a custom encoder needs an identity (a name and version) for its caches")
            self.profile = "custom"
            path = getattr(model, "name_or_path", "") or ""
            self.identity = identity
        self.model, self.tokenizer = model, tokenizer
        self.max_length = int(max_length or _max_length(path, tokenizer, model.config))
        if max_length:  # a non-default truncation makes different vectors: say so in the cache keys
            self.identity += f"@max_length={self.max_length}"
        self.dim = int(model.config.hidden_size)

    def __repr__(self) -> str:
        return f"Encoder({self.identity!r}, dim={self.dim}, max_length={self.max_length})"

    def token_lengths(self, texts: Sequence[str]) -> np.ndarray:
        """How many tokens each text has before truncation ([CLS] and [SEP] included)."""
        ids = self.tokenizer(list(texts), truncation=False, verbose=False)["input_ids"]
        return np.array([len(row) for row in ids], dtype=np.int64)

    def encode(self, texts: Sequence[str], batch_size: int = 64, normalize: bool = True,
               show_progress: bool = True) -> np.ndarray:
        """One float32 vector per text, shape (len(texts), dim); unit length if ``normalize``."""
        import torch
        from tqdm.auto import tqdm

        if isinstance(texts, str):
            raise CourseError("encode takes a list of texts: wrap a single text as [text]")
        texts = list(texts)
        if not all(isinstance(text, str) for text in texts):
            raise CourseError("encode takes texts (str) only")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise CourseError(f"batch_size must be a whole number >= 1, not {batch_size!r}")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = self.tokenizer(texts, truncation=True, max_length=self.max_length,
                             return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        lengths = np.array([len(row) for row in ids])
        # Longest first: texts of similar length share a batch, so little compute is
        # spent on padding, and the slowest batches come first (an honest progress bar).
        order = np.argsort(-lengths, kind="stable")
        pad_id = self.tokenizer.pad_token_id or 0
        device = next(self.model.parameters()).device
        with torch.inference_mode(), tqdm(total=len(texts), unit="text", desc="encoding",
                                          disable=progress_disabled(show_progress)) as bar:
            for start in range(0, len(texts), batch_size):
                positions = order[start:start + batch_size]
                width = int(lengths[positions].max())
                input_ids = np.full((len(positions), width), pad_id, dtype=np.int64)
                mask = np.zeros((len(positions), width), dtype=np.int64)
                for row, position in enumerate(positions):
                    input_ids[row, :lengths[position]] = ids[position]
                    mask[row, :lengths[position]] = 1
                input_ids_t = torch.from_numpy(input_ids).to(device)
                mask_t = torch.from_numpy(mask).to(device)
                hidden = self.model(input_ids=input_ids_t, attention_mask=mask_t).last_hidden_state
                pooled = mean_pool(hidden, mask_t)
                if normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[positions] = pooled.float().cpu().numpy()
                bar.update(len(positions))
        return out


# ----------------------------------------------------------------------------
# Cached embeddings
# ----------------------------------------------------------------------------


@dataclass
class Embeddings:
    """Vectors of a list of passages, with their ids, and how long encoding took."""

    doc_ids: list[str]
    vectors: np.ndarray
    texts: list[str]
    key: str  # the cache key (a hash of model, data and passage format)
    seconds: float  # encoding time when the cache was filled (on the machine that filled it)
    from_cache: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def passages_per_second(self) -> float:
        """Passages encoded per second when the cache was filled."""
        return len(self.doc_ids) / self.seconds if self.seconds else float("nan")


def _key(*parts: str) -> str:
    """A short hash of the parts that decide what a cached array holds."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def _atomic_write(path: Path, write: Any, suffix: str) -> None:
    """Write a file through a temporary file in the same folder and rename it into place."""
    handle, temp = tempfile.mkstemp(prefix=path.name + ".", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        write(temp)
        os.chmod(temp, 0o644)  # mkstemp makes the file private; a cache file is an ordinary file
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def _save_array(path: Path, array: np.ndarray, meta: dict) -> None:
    """Save an array as .npy and its metadata as .json next to it, each atomically (json first)."""
    _atomic_write(path.with_suffix(".json"),
                  lambda temp: Path(temp).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8"), ".json")
    _atomic_write(path, lambda temp: np.save(temp, array, allow_pickle=False), ".npy")


def _load_array(path: Path) -> tuple[np.ndarray, dict] | None:
    """The cached array and its metadata, or None if either is missing or unreadable."""
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        return np.load(path, allow_pickle=False), json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def passage_texts(name: str = "wiki", passage_format: str | None = None) -> tuple[list[str], list[str]]:
    """The ids and the texts to encode of a corpus's records (see PASSAGE_FORMATS)."""
    from . import data

    if passage_format is None and name == "wiki":
        doc_ids, _, passages = data.wiki_passages()  # the passages every retriever indexes
        return list(doc_ids), passages
    corpus = data.load_corpus(name)
    fmt = passage_format or PASSAGE_FORMATS[name]
    try:
        texts = [fmt.format(**row) for row in corpus]
    except (KeyError, IndexError) as error:
        raise CourseError(f"passage format {fmt!r} names a field that corpus {name!r} lacks: {error}; "
                          f"its fields are {', '.join(corpus.column_names)}") from None
    return list(corpus["id"]), texts


def corpus_embeddings(name: str = "wiki", passage_format: str | None = None, encoder: Encoder | None = None,
                      batch_size: int = 64, show_progress: bool = True) -> Embeddings:
    """Unit vectors of every passage of a corpus, encoded once and then read from the cache.

    The cache file lives under ``cache_dir("embeddings")``; its name holds a hash of
    the encoder's identity (profile, package and version), the SHA-256 of the
    corpus file and the passage format (and of the passages themselves), so a
    change to any of them re-encodes. It is written to a temporary file and
    renamed into place, so an interrupted run never leaves a broken cache.
    """
    from . import data

    fmt = passage_format or PASSAGE_FORMATS.get(name, "")
    data_path = data_dir() / name / f"{name}.jsonl"
    if name not in data.CORPORA or not data_path.is_file():
        data.load_corpus(name)  # raises the clear error
    identity = encoder.identity if encoder is not None else encoder_identity()
    doc_ids, texts = passage_texts(name, passage_format)
    passages_hash = hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest()
    key = _key("corpus", identity, name, data.file_sha256(data_path), fmt, passages_hash)
    path = cache_dir("embeddings") / f"{name}-{key}.npy"
    cached = _load_array(path)
    if cached is not None and cached[0].shape[0] == len(doc_ids) and cached[1].get("doc_ids") == doc_ids:
        vectors, meta = cached
        return Embeddings(doc_ids, vectors, texts, key, meta["seconds"], True, meta)
    encoder = encoder or Encoder()
    start = time.perf_counter()
    vectors = encoder.encode(texts, batch_size=batch_size, show_progress=show_progress)
    seconds = time.perf_counter() - start
    meta = {"corpus": name, "encoder": identity, "max_length": encoder.max_length, "passage_format": fmt,
            "seconds": seconds, "passages_per_second": len(texts) / seconds, "batch_size": batch_size,
            "torch_threads": _torch_threads(), "doc_ids": doc_ids}
    _save_array(path, vectors, meta)
    return Embeddings(doc_ids, vectors, texts, key, seconds, False, meta)


def encode_cached(texts: Sequence[str], tag: str, encoder: Encoder | None = None, batch_size: int = 64,
                  show_progress: bool = True) -> np.ndarray:
    """Unit vectors of any list of texts, cached under a key made of the encoder and the texts themselves."""
    texts = list(texts)
    identity = encoder.identity if encoder is not None else encoder_identity()
    key = texts_key(texts, encoder)
    path = cache_dir("embeddings") / f"{tag}-{key}.npy"
    cached = _load_array(path)
    if cached is not None and cached[0].shape[0] == len(texts):
        return cached[0]
    encoder = encoder or Encoder()
    start = time.perf_counter()
    vectors = encoder.encode(texts, batch_size=batch_size, show_progress=show_progress)
    seconds = time.perf_counter() - start
    _save_array(path, vectors, {"tag": tag, "encoder": identity, "texts": len(texts), "seconds": seconds,
                                "texts_per_second": len(texts) / seconds, "torch_threads": _torch_threads()})
    return vectors


def texts_key(texts: Sequence[str], encoder: Encoder | None = None) -> str:
    """The cache key of encoding these texts with this encoder (default: the profile's)."""
    identity = encoder.identity if encoder is not None else encoder_identity()
    return _key("texts", identity, hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest())


def _torch_threads() -> int:
    """The number of threads torch computes with."""
    import torch

    return int(torch.get_num_threads())


def split_sentences(text: str) -> list[str]:
    """The sentences of a text (a simple rule: end mark, space, then a capital, digit or quote)."""
    return [part.strip() for part in SENTENCE_END.split(text) if part.strip()]


# ----------------------------------------------------------------------------
# Faiss indexes
# ----------------------------------------------------------------------------


@contextlib.contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    """Run the block with Faiss (OpenMP) limited to n threads, then restore the previous limit."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(n))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def default_nlist(n_vectors: int) -> int:
    """The default number of IVF lists: about 4 * sqrt(n), and at most n / 39 (k-means needs points)."""
    return max(1, min(int(4 * math.sqrt(n_vectors)), n_vectors // MIN_POINTS_PER_CENTROID))


def _as_matrix(vectors: np.ndarray, name: str = "vectors") -> np.ndarray:
    """A C-contiguous float32 (n, d) matrix, or a CourseError."""
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise CourseError(f"{name} must be a 2-d array (n, dim), not of shape {array.shape}")
    return array


def _check_trainable(n: int, centroids: int, what: str) -> None:
    """CourseError unless n vectors are enough to train `centroids` k-means centroids."""
    need = MIN_POINTS_PER_CENTROID * centroids
    if n < need:
        raise CourseError(f"{what} needs at least {need:,} training vectors "
                          f"({MIN_POINTS_PER_CENTROID} per centroid), got {n:,}: lower it")


def build_index(vectors: np.ndarray, kind: str = "flat", *, nlist: int | None = None, nprobe: int = 8,
                M: int = 32, ef_construction: int = 80, ef_search: int = 64, m: int = 48, nbits: int = 8,
                build_threads: int | None = None, seed: int = 1234) -> faiss.Index:
    """A Faiss index over unit vectors, scored by inner product (= cosine similarity).

    kinds and their parameters:

    - ``flat``: exact search, every vector compared with the query (no parameter).
    - ``ivf``: k-means cuts the space into ``nlist`` cells (default about 4·√n);
      a query scans only its ``nprobe`` nearest cells (default 8). More probes:
      better recall, slower.
    - ``hnsw``: a graph in which each vector links to about ``M`` neighbours
      (default 32); ``ef_construction`` (80) is the search width while building,
      ``ef_search`` (64) while querying. Wider: better recall, slower.
      Built single-threaded by default (``build_threads=1``) because Faiss's
      multi-threaded insertion gives a slightly different graph on every run.
    - ``pq``: product quantisation: each vector is cut into ``m`` sub-vectors
      (default 48, so 8 dimensions each) and each sub-vector is replaced by the
      nearest of 2**``nbits`` centroids (default 8 bits): m·nbits/8 bytes per
      vector instead of 4·dim. Scores are approximate.
    - ``ivfpq``: IVF cells whose vectors are stored as PQ codes (nlist, nprobe, m, nbits).

    The same as ``faiss.index_factory(dim, "IVF{nlist},Flat" | "HNSW{M}" | "PQ{m}x{nbits}",
    faiss.METRIC_INNER_PRODUCT)``, spelled out. k-means trains on at most
    TRAIN_POINTS_PER_CENTROID (64) vectors per centroid, a sample that ``seed``
    fixes. ``build_threads`` limits Faiss's threads while building (default: all,
    one for HNSW). Too few vectors for k-means (39 per centroid) is a CourseError.
    """
    import faiss

    if kind not in INDEX_KINDS:
        raise CourseError(f"unknown index kind {kind!r}: choose one of {', '.join(INDEX_KINDS)}")
    vectors = _as_matrix(vectors)
    n, dim = vectors.shape
    if n == 0:
        raise CourseError("cannot build an index from an empty corpus: give at least one vector")
    ip = faiss.METRIC_INNER_PRODUCT
    if kind in ("pq", "ivfpq"):
        if m < 1 or dim % m:
            raise CourseError(f"PQ needs m (sub-vectors) to divide the dimension {dim}; got m={m}")
        if not 1 <= nbits <= 16:
            raise CourseError(f"nbits must be from 1 to 16, not {nbits}")
    if kind in ("ivf", "ivfpq"):
        nlist = default_nlist(n) if nlist is None else int(nlist)
        if nlist < 1 or nprobe < 1:
            raise CourseError(f"nlist and nprobe must be >= 1, got nlist={nlist}, nprobe={nprobe}")
        _check_trainable(n, nlist, f"IVF with nlist={nlist}")
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        if M < 2 or ef_construction < 1 or ef_search < 1:
            raise CourseError(f"HNSW needs M >= 2 and ef >= 1, got M={M}, ef_construction={ef_construction}, "
                              f"ef_search={ef_search}")
        index = faiss.IndexHNSWFlat(dim, M, ip)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
    elif kind == "pq":
        _check_trainable(n, 2 ** nbits, f"PQ with nbits={nbits}")
        index = faiss.IndexPQ(dim, m, nbits, ip)
    elif kind == "ivf":
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, ip)
    else:
        _check_trainable(n, 2 ** nbits, f"PQ with nbits={nbits}")
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, m, nbits, ip)
    if kind in ("pq", "ivfpq"):
        index.pq.cp.seed = seed
        index.pq.cp.max_points_per_centroid = TRAIN_POINTS_PER_CENTROID
    if kind in ("ivf", "ivfpq"):
        index.cp.seed = seed
        index.cp.max_points_per_centroid = TRAIN_POINTS_PER_CENTROID
        index.nprobe = min(nprobe, nlist)
    threads = build_threads if build_threads is not None else (1 if kind == "hnsw" else None)
    with faiss_threads(threads) if threads else contextlib.nullcontext():
        if not index.is_trained:
            index.train(vectors)
        index.add(vectors)
    return index


def set_search_params(index: faiss.Index, nprobe: int | None = None, ef_search: int | None = None) -> faiss.Index:
    """Change an index's search-time knobs in place: nprobe (IVF kinds) or ef_search (HNSW)."""
    import faiss

    if nprobe is not None:
        try:
            ivf = faiss.extract_index_ivf(index)
        except RuntimeError:
            raise CourseError("nprobe is a parameter of IVF indexes only") from None
        ivf.nprobe = int(nprobe)
    if ef_search is not None:
        if not hasattr(index, "hnsw"):
            raise CourseError("ef_search is a parameter of HNSW indexes only")
        index.hnsw.efSearch = int(ef_search)
    return index


def index_bytes(index: faiss.Index) -> int:
    """The size of an index once serialised (vectors or codes, lists, graph): a fair measure of its memory."""
    import faiss

    return int(faiss.serialize_index(index).nbytes)


def search_index(index: faiss.Index, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Faiss's top k for each query vector: (scores, positions), k clamped to the index size; -1 = none found."""
    check_k(k)
    query_vectors = _as_matrix(query_vectors, "query vectors")
    return index.search(query_vectors, min(int(k), index.ntotal))


def brute_force_search(vectors: np.ndarray, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top k by inner product in NumPy, the reference for IndexFlatIP: (scores, positions)."""
    check_k(k)
    vectors, query_vectors = _as_matrix(vectors), _as_matrix(query_vectors, "query vectors")
    k = min(int(k), vectors.shape[0])
    scores = query_vectors @ vectors.T  # (queries, n): every query against every vector
    # Score descending, then position ascending, as Faiss breaks ties.
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < vectors.shape[0] else \
        np.tile(np.arange(vectors.shape[0]), (len(scores), 1))
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -top_scores), axis=1)
    return np.take_along_axis(top_scores, order, axis=1), np.take_along_axis(top, order, axis=1)


def ann_recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Recall@k of an approximate search against exact search: the share of the true top k it found."""
    found, exact = np.asarray(found), np.asarray(exact)
    if found.shape[0] != exact.shape[0]:
        raise CourseError(f"got {found.shape[0]} result rows but {exact.shape[0]} exact ones")
    k = exact.shape[1]
    hits = sum(len(set(row[row >= 0].tolist()) & set(truth.tolist())) for row, truth in zip(found, exact))
    return hits / (k * exact.shape[0]) if exact.size else float("nan")


def timed_search(index: faiss.Index, query_vectors: np.ndarray, k: int = 10, threads: int = 1,
                 repeat: int = 1) -> tuple[float, np.ndarray]:
    """Queries per second of ``index.search`` on one batch (best of ``repeat`` runs), and the positions found."""
    query_vectors = _as_matrix(query_vectors, "query vectors")
    best = float("inf")
    with faiss_threads(threads):
        for _ in range(repeat):
            start = time.perf_counter()
            _, positions = index.search(query_vectors, k)
            best = min(best, time.perf_counter() - start)
    return len(query_vectors) / best, positions


def queries_per_second(index: faiss.Index, query_vectors: np.ndarray, k: int = 10, threads: int = 1,
                       repeat: int = 3) -> float:
    """Queries answered per second by ``index.search`` on one batch of queries (best of ``repeat`` runs)."""
    return timed_search(index, query_vectors, k, threads, repeat)[0]


def sweep(index: faiss.Index, query_vectors: np.ndarray, exact: np.ndarray, param: str, values: Sequence[int],
          threads: int = 1, repeat: int = 1) -> list[dict[str, float]]:
    """Recall@k (against the `exact` positions) and queries/s of an index for each value of one search knob.

    `param` is "nprobe" (IVF kinds) or "ef_search" (HNSW); k is the width of `exact`.
    The index keeps the last value.
    """
    if param not in ("nprobe", "ef_search"):
        raise CourseError(f"sweep takes param 'nprobe' or 'ef_search', not {param!r}")
    rows = []
    for value in values:
        set_search_params(index, **{param: value})
        qps, found = timed_search(index, query_vectors, exact.shape[1], threads, repeat)
        rows.append({param: value, "recall": ann_recall(found, exact), "queries_per_s": qps})
    return rows


def check_k(k: int) -> None:
    """CourseError unless k is a whole number >= 1."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise CourseError(f"k must be a whole number >= 1, not {k!r}")


# ----------------------------------------------------------------------------
# The retriever
# ----------------------------------------------------------------------------


class DenseRetriever:
    """Semantic search: encode the queries, ask a Faiss index, map positions back to doc ids."""

    def __init__(self, encoder: Encoder, doc_ids: Sequence[str], vectors: np.ndarray,
                 index: faiss.Index | None = None) -> None:
        """A retriever over `vectors` (one per id); `index` defaults to exact search (IndexFlatIP)."""
        if isinstance(doc_ids, str):
            raise CourseError("doc_ids must be a list of ids, not one string")
        if len(doc_ids) == 0:
            raise CourseError("cannot search an empty corpus: give at least one document")
        vectors = _as_matrix(vectors)
        if len(doc_ids) != vectors.shape[0]:
            raise CourseError(f"got {len(doc_ids)} ids but {vectors.shape[0]} vectors: give one id per vector")
        if len(set(doc_ids)) != len(doc_ids):
            raise CourseError("document ids must be unique")
        if vectors.shape[1] != encoder.dim:
            raise CourseError(f"the vectors have {vectors.shape[1]} dimensions "
                              f"but the encoder makes {encoder.dim}")
        self.encoder = encoder
        self.doc_ids = list(doc_ids)
        self.vectors = vectors
        self.index = index if index is not None else build_index(vectors, "flat")
        if self.index.ntotal != len(self.doc_ids):
            raise CourseError(f"the index holds {self.index.ntotal} vectors but there are {len(self.doc_ids)} ids")

    @classmethod
    def from_corpus(cls, name: str = "wiki", kind: str = "flat", encoder: Encoder | None = None,
                    **params: Any) -> DenseRetriever:
        """A retriever over a whole corpus, with cached embeddings and a `kind` index (see build_index)."""
        encoder = encoder or Encoder()
        embeddings = corpus_embeddings(name, encoder=encoder)
        index = build_index(embeddings.vectors, kind, **params)
        return cls(encoder, embeddings.doc_ids, embeddings.vectors, index)

    def search(self, queries: Sequence[str], k: int = 10) -> list[list[tuple[str, float]]]:
        """For each query, the k most similar documents as (doc_id, cosine), best first.

        k larger than the corpus is clamped to the corpus size. An approximate
        index can find fewer than k documents (Faiss pads with id -1): those
        slots are dropped, so a list can be shorter than k.
        """
        if isinstance(queries, str):
            raise CourseError("search takes a list of queries: wrap a single query as [query]")
        queries = list(queries)
        check_k(k)
        if not queries:
            return []  # an empty batch finds nothing, as in every retriever of the course
        queries = [validate_query(query) for query in queries]
        query_vectors = self.encoder.encode(queries, show_progress=False)
        scores, positions = search_index(self.index, query_vectors, k)
        ids = self.doc_ids
        return [[(ids[p], float(s)) for p, s in zip(row_p.tolist(), row_s.tolist()) if p >= 0]
                for row_p, row_s in zip(positions, scores)]


# ----------------------------------------------------------------------------
# The scaling experiment: 200,000 vectors
# ----------------------------------------------------------------------------


@dataclass
class ScalingSet:
    """The vectors of the scaling experiment and where each part came from."""

    vectors: np.ndarray
    parts: dict[str, int]  # part name -> number of vectors, in the order they are stacked
    key: str  # a hash of everything that decides the vectors, for caching indexes built on them

    @property
    def real(self) -> int:
        """How many vectors are embeddings of real text."""
        return sum(n for name, n in self.parts.items() if not name.startswith("synthetic"))


def scaling_vectors(n_vectors: int = 200_000, noise: float = 0.03, seed: int = 0, encoder: Encoder | None = None,
                    show_progress: bool = True) -> ScalingSet:
    """At least `n_vectors` unit vectors: every real passage and sentence we have, then noisy copies.

    Real: the embeddings of all wiki, jargon and pyfaq passages and of each of
    their sentences (about 61,000; encoded once and cached). Synthetic: the rest,
    each a randomly chosen real vector plus Gaussian noise (standard deviation
    `noise` per dimension), re-normalised to unit length. A corpus with 200,000
    distinct texts would be better; these are stand-ins with the same dimension
    and roughly the same spread of directions, honest about being copies.
    """
    parts: list[tuple[str, np.ndarray]] = []
    keys = []
    for name in ("wiki", "jargon", "pyfaq"):
        embeddings = corpus_embeddings(name, encoder=encoder, show_progress=show_progress)
        parts.append((f"{name} passages", embeddings.vectors))
        keys.append(embeddings.key)
    from . import data

    for name in ("wiki", "jargon", "pyfaq"):
        bodies = data.load_corpus(name)[BODY_FIELDS[name]]
        sentences = [sentence for text in bodies for sentence in split_sentences(text)]
        vectors = encode_cached(sentences, f"{name}-sentences", encoder=encoder, show_progress=show_progress)
        parts.append((f"{name} sentences", vectors))
        keys.append(texts_key(sentences, encoder))
    real = np.concatenate([vectors for _, vectors in parts])
    missing = max(0, n_vectors - len(real))
    if missing:
        rng = np.random.default_rng(seed)
        sources = rng.integers(0, len(real), size=missing)
        synthetic = real[sources] + rng.normal(0.0, noise, size=(missing, real.shape[1])).astype(np.float32)
        synthetic /= np.linalg.norm(synthetic, axis=1, keepdims=True)
        parts.append(("synthetic (noisy copies)", synthetic))
    counts = {name: len(vectors) for name, vectors in parts}
    key = _key("scaling", *keys, str(n_vectors), str(noise), str(seed))
    return ScalingSet(np.concatenate([vectors for _, vectors in parts]), counts, key)


def cached_index(vectors: np.ndarray, key: str, kind: str, **params: Any) -> tuple[faiss.Index, float]:
    """``build_index(vectors, kind, **params)``, saved in the cache under `key`; also its build time (s).

    The build time is the one measured when the cache was filled. `key` must
    change whenever the vectors do (for example ``ScalingSet.key``).
    """
    import faiss

    name = _key("index", key, kind, json.dumps(params, sort_keys=True), faiss.__version__)
    path = cache_dir("indexes") / f"{kind}-{name}.faiss"
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        try:
            index = faiss.read_index(str(path))
            return index, float(json.loads(meta_path.read_text(encoding="utf-8"))["seconds"])
        except (RuntimeError, ValueError, KeyError):
            pass  # unreadable: build it again
    start = time.perf_counter()
    index = build_index(vectors, kind, **params)
    seconds = time.perf_counter() - start
    meta = {"kind": kind, "params": params, "seconds": seconds, "vectors": int(index.ntotal),
            "faiss": faiss.__version__, "threads": faiss.omp_get_max_threads()}
    _atomic_write(meta_path, lambda temp: Path(temp).write_text(json.dumps(meta) + "\n", encoding="utf-8"),
                  ".json")
    _atomic_write(path, lambda temp: faiss.write_index(index, temp), ".faiss")
    return index, seconds
