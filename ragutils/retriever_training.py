"""Training the dense retriever: contrastive learning with in-batch and hard negatives (notebook 10).

Notebook 10 fine-tunes the encoder of notebook 03 on (question, passage) pairs. It
derives the loss by hand first; this module keeps what the later notebooks reuse:

- ``embed``: mean-pooled sentence vectors with gradients (what ``dense.Encoder`` does
  without them);
- ``contrastive_loss``: InfoNCE with in-batch negatives (and, optionally, mined hard
  negatives): the question must pick its own passage out of the batch;
- ``mine_hard_negatives``: BM25's best-ranked *wrong* passages, the negatives that look
  most like the answer.

The training loop itself (``finetune.train_encoder``) is shared with notebooks 11 and
12; the trained encoder is kept in the course's store (``tools.store``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import CourseError

if TYPE_CHECKING:  # torch is imported where it is used: importing ragutils stays fast
    import torch


def contrastive_loss(queries: torch.Tensor, passages: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """InfoNCE over in-batch negatives: query i's positive is passage i; every other passage is a negative.

    `queries` is (B, d); `passages` is (B + extra, d): the B positives first, then any
    extra negatives (mined hard negatives) that every query must also rank below its
    positive. Both are normalised here, so the scores are cosines divided by the
    temperature; the loss is the cross-entropy of picking the right passage.

    Derived in notebook 10, section 3.
    """
    import torch
    import torch.nn.functional as F

    if queries.ndim != 2 or passages.ndim != 2 or queries.shape[1] != passages.shape[1]:
        raise CourseError(f"queries and passages must be (batch, dim) matrices of the same dim, "
                          f"not {tuple(queries.shape)} and {tuple(passages.shape)}")
    if queries.shape[0] == 0 or passages.shape[0] < queries.shape[0]:
        raise CourseError(f"need a positive passage for each of the {queries.shape[0]} queries, "
                          f"got {passages.shape[0]} passages")
    if temperature <= 0:
        raise CourseError(f"temperature must be > 0, not {temperature}")
    scores = F.normalize(queries, dim=-1) @ F.normalize(passages, dim=-1).T / temperature
    targets = torch.arange(queries.shape[0], device=queries.device)
    return F.cross_entropy(scores, targets)


def embed(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int = 128) -> torch.Tensor:
    """Mean-pooled vectors of `texts`, (len(texts), dim), *with* gradients: the training twin of Encoder.encode.

    The same recipe as `dense.Encoder.encode` (truncate, mean over the real tokens),
    so that a model trained through this function is used the same way afterwards;
    not normalised, because `contrastive_loss` normalises.

    Used in notebook 10, section 3.
    """
    from .dense import mean_pool

    if not texts:
        raise CourseError("no texts to embed")
    device = next(model.parameters()).device
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt").to(device)
    hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    return mean_pool(hidden, batch["attention_mask"])


def mine_hard_negatives(retriever: Any, queries: Sequence[str], positive_ids: Sequence[str],
                        depth: int = 10, per_query: int = 1, seed: int = 0) -> list[list[str]]:
    """For each query, `per_query` doc ids that the retriever ranks high but that are not its positive.

    Picked at random among the top `depth` wrong documents (not always the first):
    the very top "negatives" are sometimes unlabelled positives (another article on
    the same subject), and always training against them teaches the wrong lesson.

    Used in notebook 10, section 5.
    """
    if len(queries) != len(positive_ids):
        raise CourseError(f"got {len(queries)} queries but {len(positive_ids)} positives")
    if per_query < 1 or depth < per_query:
        raise CourseError(f"need 1 <= per_query <= depth, got per_query={per_query}, depth={depth}")
    rng = random.Random(seed)
    negatives = []
    for hits, positive in zip(retriever.search(list(queries), depth + 1), positive_ids):
        wrong = [doc_id for doc_id, _ in hits if doc_id != positive][:depth]
        negatives.append(rng.sample(wrong, min(per_query, len(wrong))))
    return negatives
