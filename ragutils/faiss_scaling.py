"""When does approximate search pay off? The 200,000-vector experiment of notebook 03.

The wiki corpus has 10,033 passages: too few for an approximate index to beat exact
search by much. ``scaling_vectors`` makes a set of 200,000 unit vectors, every real
passage and sentence embedding the course has and then noisy copies of them, on which
IVF and HNSW show what they trade. ``cached_index`` keeps the indexes built on it on
disk, since building HNSW over 200,000 vectors takes minutes; ``ragutils bench dense``
measures on the same vectors and indexes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import data
from .config import cache_dir
from .dense import Encoder
from .embeddings import cache_key, corpus_embeddings, encode_cached, texts_key
from .faiss_index import build_index
from .text import split_sentences
from .tools.store import atomic_write, atomic_write_text

if TYPE_CHECKING:  # imported lazily: faiss takes a second or two to import
    import faiss

# The field that holds a record's body text (split into sentences for the scaling experiment).
BODY_FIELDS = {"wiki": "text", "jargon": "text", "pyfaq": "answer"}


@dataclass
class ScalingSet:
    """The vectors of the scaling experiment and where each part came from.

    Used in notebook 03, section 6.
    """

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

    Used in notebook 03, section 6.
    """
    parts: list[tuple[str, np.ndarray]] = []
    keys = []
    for name in ("wiki", "jargon", "pyfaq"):
        embeddings = corpus_embeddings(name, encoder=encoder, show_progress=show_progress)
        parts.append((f"{name} passages", embeddings.vectors))
        keys.append(embeddings.key)
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
    key = cache_key("scaling", *keys, str(n_vectors), str(noise), str(seed))
    return ScalingSet(np.concatenate([vectors for _, vectors in parts]), counts, key)


def cached_index(vectors: np.ndarray, key: str, kind: str, **params: Any) -> tuple[faiss.Index, float]:
    """``build_index(vectors, kind, **params)``, saved in the cache under `key`; also its build time (s).

    The build time is the one measured when the cache was filled. `key` must
    change whenever the vectors do (for example ``ScalingSet.key``).

    Used in notebook 03, section 5.
    """
    import faiss

    name = cache_key("index", key, kind, json.dumps(params, sort_keys=True), faiss.__version__)
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
    atomic_write_text(meta_path, json.dumps(meta) + "\n")
    atomic_write(path, lambda temp: faiss.write_index(index, temp))
    return index, seconds
