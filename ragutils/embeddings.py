"""Embeddings on disk: encode a corpus once, then read its vectors from the cache.

Encoding the 10,033 wiki passages takes minutes on a laptop CPU, and every notebook
from 03 on needs them, so ``corpus_embeddings`` encodes a corpus once and caches the
matrix, keyed by everything that decides it: the encoder (profile, package, version),
the SHA-256 of the data file, the passage format and the passages themselves. A
change to any of them re-encodes; nothing stale is ever read. ``encode_cached`` does
the same for any list of texts (queries, sentences).

Each cache entry is a ``.npy`` array with a ``.json`` of metadata beside it (how long
encoding took, on how many threads), both under ``cache_dir("embeddings")`` and both
written all or nothing (``tools.store.atomic_write``). A long encoding is saved in
checkpoints as it goes (``encode_resumable``), so a slow or interrupted machine
continues where it stopped instead of starting again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import cache_dir, data_dir
from .dense import Encoder, encoder_identity
from .errors import CourseError
from .tools.store import atomic_write, atomic_write_text, file_sha256, fingerprint

# Texts per checkpoint of a long encoding (rounded down to whole batches): an interrupted
# run loses at most this much work, about half a minute of the 2-core CPU.
CHECKPOINT_TEXTS = 2048

# How a record becomes the text we encode. Wiki passages are `data.passage_text`
# ("{title}. {text}"), the passage that BM25 indexes and that prompts show, so every
# retriever of the course searches the same text. The other corpora follow suit.
PASSAGE_FORMATS = {
    "wiki": "{title}. {text}",
    "jargon": "{headword}. {text}",
    "pyfaq": "{question} {answer}",
}


@dataclass
class Embeddings:
    """Vectors of a list of passages, with their ids, and how long encoding took.

    Used in notebook 03, section 3.
    """

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


def cache_key(*parts: str) -> str:
    """The short cache key of an array or index that these parts decide.

    Used in notebook 03.
    """
    return fingerprint("\x1f".join(parts))


def _texts_digest(texts: Sequence[str]) -> str:
    """The SHA-256 of a list of texts, so that changing any of them changes the key."""
    return hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest()


def _save_array(path: Path, array: np.ndarray, meta: dict) -> None:
    """Save an array as .npy and its metadata as .json next to it, each atomically (json first)."""
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=1) + "\n")
    atomic_write(path, lambda temp: np.save(temp, array, allow_pickle=False))


def _load_array(path: Path) -> tuple[np.ndarray, dict] | None:
    """The cached array and its metadata, or None if either is missing or unreadable."""
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        return np.load(path, allow_pickle=False), json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _checkpoint(path: Path, rows: int) -> np.ndarray | None:
    """A saved checkpoint of an encoding, or None if it is missing, unreadable or of another size."""
    try:
        chunk = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return chunk if chunk.shape[0] == rows else None


def encode_resumable(encoder: Encoder, texts: Sequence[str], path: Path, batch_size: int = 64,
                     show_progress: bool = True) -> np.ndarray:
    """Unit vectors of texts, encoded in checkpoints beside ``path``: an interrupted run continues from the last one.

    The texts are put in the encoder's batch order first (``Encoder.batch_order``) and
    cut into checkpoints of whole batches, so every batch holds the same texts, padded
    to the same width, as in one call to ``encode``: the vectors are the same bit for
    bit however often the run was stopped. The checkpoints live in a folder named after
    ``path`` (the cache key), the batch size and the checkpoint size; the caller removes
    it once the whole array is saved (``remove_checkpoints``).

    Used in notebook 03.
    """
    from tqdm.auto import tqdm

    from .config import progress_disabled

    if isinstance(texts, str):
        raise CourseError("encode takes a list of texts: wrap a single text as [text]")
    texts = list(texts)
    size = _checkpoint_size(batch_size)
    parts = checkpoint_dir(path, batch_size)
    order = encoder.batch_order(np.array([len(ids) for ids in encoder.token_ids(texts)] if texts else [], int))
    chunks = []
    with tqdm(total=len(texts), unit="text", desc="encoding", disable=progress_disabled(show_progress)) as bar:
        for number, begin in enumerate(range(0, len(texts), size)):
            positions = order[begin:begin + size]
            chunk_path = parts / f"{number:05d}.npy"
            chunk = _checkpoint(chunk_path, len(positions))
            if chunk is None:
                chunk = encoder.encode([texts[i] for i in positions], batch_size=batch_size, show_progress=False)
                parts.mkdir(parents=True, exist_ok=True)
                atomic_write(chunk_path, lambda temp, chunk=chunk: np.save(temp, chunk, allow_pickle=False))
            chunks.append(chunk)
            bar.update(len(positions))
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    if texts:
        out[order] = np.concatenate(chunks)
    return out


def checkpoint_dir(path: Path, batch_size: int) -> Path:
    """The folder of an encoding's checkpoints: one per cache file, batch size and checkpoint size.

    Used in notebook 03.
    """
    return path.with_name(f"{path.stem}.parts-b{batch_size}-c{_checkpoint_size(batch_size)}")


def _checkpoint_size(batch_size: int) -> int:
    """Texts per checkpoint: CHECKPOINT_TEXTS rounded down to whole batches (at least one)."""
    return batch_size * max(1, CHECKPOINT_TEXTS // batch_size)


def remove_checkpoints(path: Path) -> None:
    """Delete every checkpoint folder of a cache file, once the file itself is saved.

    Used in notebook 03.
    """
    import shutil

    for folder in path.parent.glob(f"{path.stem}.parts-*"):
        shutil.rmtree(folder, ignore_errors=True)


def _torch_threads() -> int:
    """The number of threads torch computes with (saved with the timings)."""
    import torch

    return int(torch.get_num_threads())


def passage_texts(name: str = "wiki", passage_format: str | None = None) -> tuple[list[str], list[str]]:
    """The ids and the texts to encode of a corpus's records (see PASSAGE_FORMATS).

    Used in notebook 03, section 2.
    """
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

    Derived in notebook 03, section 3.
    """
    from . import data

    fmt = passage_format or PASSAGE_FORMATS.get(name, "")
    data_path = data_dir() / name / f"{name}.jsonl"
    if name not in data.CORPORA or not data_path.is_file():
        data.load_corpus(name)  # raises the clear error
    identity = encoder.identity if encoder is not None else encoder_identity()
    doc_ids, texts = passage_texts(name, passage_format)
    key = cache_key("corpus", identity, name, file_sha256(data_path), fmt, _texts_digest(texts))
    path = cache_dir("embeddings") / f"{name}-{key}.npy"
    cached = _load_array(path)
    if cached is not None and cached[0].shape[0] == len(doc_ids) and cached[1].get("doc_ids") == doc_ids:
        vectors, meta = cached
        return Embeddings(doc_ids, vectors, texts, key, meta["seconds"], True, meta)
    encoder = encoder or Encoder()
    start = time.perf_counter()
    vectors = encode_resumable(encoder, texts, path, batch_size, show_progress)
    seconds = time.perf_counter() - start
    meta = {"corpus": name, "encoder": identity, "max_length": encoder.max_length, "passage_format": fmt,
            "seconds": seconds, "passages_per_second": len(texts) / seconds, "batch_size": batch_size,
            "torch_threads": _torch_threads(), "doc_ids": doc_ids}
    _save_array(path, vectors, meta)
    remove_checkpoints(path)
    return Embeddings(doc_ids, vectors, texts, key, seconds, False, meta)


def texts_key(texts: Sequence[str], encoder: Encoder | None = None) -> str:
    """The cache key of encoding these texts with this encoder (default: the profile's).

    Used in notebook 03.
    """
    identity = encoder.identity if encoder is not None else encoder_identity()
    return cache_key("texts", identity, _texts_digest(texts))


def encode_cached(texts: Sequence[str], tag: str, encoder: Encoder | None = None, batch_size: int = 64,
                  show_progress: bool = True) -> np.ndarray:
    """Unit vectors of any list of texts, cached under a key made of the encoder and the texts themselves.

    Used in notebook 03, section 5.
    """
    texts = list(texts)
    identity = encoder.identity if encoder is not None else encoder_identity()
    key = texts_key(texts, encoder)
    path = cache_dir("embeddings") / f"{tag}-{key}.npy"
    cached = _load_array(path)
    if cached is not None and cached[0].shape[0] == len(texts):
        return cached[0]
    encoder = encoder or Encoder()
    start = time.perf_counter()
    vectors = encode_resumable(encoder, texts, path, batch_size, show_progress)
    seconds = time.perf_counter() - start
    _save_array(path, vectors, {"tag": tag, "encoder": identity, "texts": len(texts), "seconds": seconds,
                                "texts_per_second": len(texts) / seconds, "torch_threads": _torch_threads()})
    remove_checkpoints(path)
    return vectors
