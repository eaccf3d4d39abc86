"""Dense retrieval: an encoder with mean pooling, and the retriever that searches its vectors.

The pipeline of notebook 03, one step per module:

1. ``Encoder`` (here) turns texts into vectors: tokens → the Transformer's hidden
   states → ``mean_pool`` (the average of the token vectors, padding excluded) →
   unit length. With all-MiniLM-L6-v2 this is exactly what ``sentence-transformers``
   computes (the tests check it to 1e-5).
2. ``embeddings.corpus_embeddings`` encodes every passage of a corpus once and
   caches the matrix on disk.
3. ``faiss_index.build_index`` puts the vectors into a Faiss index, exact or
   approximate (``faiss_scaling`` measures when approximation pays off).
4. ``DenseRetriever`` (here) ties an encoder to an index behind the course's
   retriever interface (``retriever.Retriever``):
   ``search(queries, k) -> [[(doc_id, score), ...], ...]``.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import progress_disabled
from .errors import CourseError
from .faiss_index import as_matrix, build_index, search_index
from .retriever import Ranking, check_k, query_list
from .text import validate_query

if TYPE_CHECKING:  # imported lazily: torch and faiss take a second or two to import
    import faiss
    import torch


def mean_pool(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The average of each text's token vectors, padding positions excluded: (batch, dim).

    Derived in notebook 03, section 1.
    """
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
    """A string that names the encoder of a profile and its version, for cache keys.

    Used in notebook 03.
    """
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

    Derived in notebook 03, section 1.
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

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids of each text, cut to the encoder's maximum length."""
        return self.tokenizer(list(texts), truncation=True, max_length=self.max_length,
                              return_attention_mask=False, return_token_type_ids=False)["input_ids"]

    @staticmethod
    def batch_order(lengths: np.ndarray) -> np.ndarray:
        """The order ``encode`` batches texts in: longest first, ties in text order.

        Texts of similar length share a batch, so little compute is spent on padding,
        and the slowest batches come first (an honest progress bar). Texts already in
        this order keep it, which lets an encoding be split into checkpoints that batch
        exactly as one call would (``embeddings.encode_resumable``).
        """
        return np.argsort(-np.asarray(lengths), kind="stable")

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
        ids = self.token_ids(texts)
        lengths = np.array([len(row) for row in ids])
        order = self.batch_order(lengths)
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


class DenseRetriever:
    """Semantic search: encode the queries, ask a Faiss index, map positions back to doc ids.

    Derived in notebook 03, section 4.
    """

    def __init__(self, encoder: Encoder, doc_ids: Sequence[str], vectors: np.ndarray,
                 index: faiss.Index | None = None) -> None:
        """A retriever over `vectors` (one per id); `index` defaults to exact search (IndexFlatIP)."""
        if isinstance(doc_ids, str):
            raise CourseError("doc_ids must be a list of ids, not one string")
        if len(doc_ids) == 0:
            raise CourseError("cannot search an empty corpus: give at least one document")
        vectors = as_matrix(vectors)
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
        from .embeddings import corpus_embeddings  # imported here: embeddings builds on Encoder

        encoder = encoder or Encoder()
        embeddings = corpus_embeddings(name, encoder=encoder)
        index = build_index(embeddings.vectors, kind, **params)
        return cls(encoder, embeddings.doc_ids, embeddings.vectors, index)

    def search(self, queries: Sequence[str], k: int = 10) -> list[Ranking]:
        """For each query, the k most similar documents as (doc_id, cosine), best first.

        k larger than the corpus is clamped to the corpus size. An approximate
        index can find fewer than k documents (Faiss pads with id -1): those
        slots are dropped, so a list can be shorter than k.
        """
        queries = query_list(queries)
        check_k(k)
        if not queries:
            return []  # an empty batch finds nothing, as in every retriever of the course
        queries = [validate_query(query) for query in queries]
        query_vectors = self.encoder.encode(queries, show_progress=False)
        scores, positions = search_index(self.index, query_vectors, k)
        ids = self.doc_ids
        return [[(ids[p], float(s)) for p, s in zip(row_p.tolist(), row_s.tolist()) if p >= 0]
                for row_p, row_s in zip(positions, scores)]


