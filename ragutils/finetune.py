"""Training the parts of a RAG system: the retriever's contrastive loss and RAG's joint loss.

Notebook 10 trains the dense retriever on (question, passage) pairs with a
contrastive loss, notebook 12 trains the query encoder from the generator's loss.
Each notebook derives its loss by hand first; this module keeps the versions
that later code reuses:

- ``embed``: mean-pooled sentence vectors with gradients (what ``dense.Encoder`` does
  without them).
- ``contrastive_loss``: InfoNCE with in-batch negatives (and, optionally, mined hard
  negatives): the question must pick its own passage out of the batch.
- ``mine_hard_negatives``: BM25's best-ranked *wrong* passages, the negatives that
  look most like the answer.
- ``answer_token_log_probs`` / ``sequence_log_probs``: log p(answer | prompt) of a causal
  language model, token by token or summed, for a batch of (prompt, answer) pairs.
- ``rag_sequence_loss``: RAG-Sequence's marginal likelihood (Lewis et al., 2020),
  -log sum_z p(z | x) p(y | x, z), whose gradient reaches the retriever through p(z | x);
  ``rag_token_loss``: RAG-Token's, the same mixture taken at every token.
- ``train_encoder``: the small training loop shared by the retriever notebooks.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CourseError

if TYPE_CHECKING:  # torch is imported where it is used: importing ragutils stays fast
    import torch


# ---------------------------------------------------------------------------
# The retriever's loss
# ---------------------------------------------------------------------------


def contrastive_loss(queries: torch.Tensor, passages: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """InfoNCE over in-batch negatives: query i's positive is passage i; every other passage is a negative.

    `queries` is (B, d); `passages` is (B + extra, d): the B positives first, then any
    extra negatives (mined hard negatives) that every query must also rank below its
    positive. Both are normalised here, so the scores are cosines divided by the
    temperature; the loss is the cross-entropy of picking the right passage.
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


# ---------------------------------------------------------------------------
# The generator's side of joint training
# ---------------------------------------------------------------------------


def answer_token_log_probs(model: Any, tokenizer: Any, prompts: Sequence[str], answers: Sequence[str],
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(answer token i | prompt, answer tokens < i) under a causal LM, one row per (prompt, answer) pair.

    Returns `(log_probs, mask)`, both (pairs, longest answer): row r holds the
    log-probabilities of answer r's tokens, left-aligned, and `mask` is 1 where a token
    exists. Prompt and answer are tokenised apart (the answer's tokens are what is
    scored), joined, and padded on the right; position t's logits predict token t + 1.
    Gradients flow if the caller has not turned them off.
    """
    import torch

    if len(prompts) != len(answers) or not prompts:
        raise CourseError(f"need as many answers as prompts (at least one), got {len(prompts)} and {len(answers)}")
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    answer_ids = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
    if any(not ids for ids in answer_ids) or any(not ids for ids in prompt_ids):
        raise CourseError("every prompt and answer must have at least one token")
    width = max(len(p) + len(a) for p, a in zip(prompt_ids, answer_ids))
    answer_width = max(len(a) for a in answer_ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows, attention, positions = [], [], []
    for p, a in zip(prompt_ids, answer_ids):
        filler = width - len(p) - len(a)
        rows.append(p + a + [pad] * filler)
        attention.append([1] * (len(p) + len(a)) + [0] * filler)
        # The logits at position t predict token t + 1: answer token i is predicted from
        # position len(p) - 1 + i. Past the answer's end, any position will do (masked).
        positions.append([len(p) - 1 + min(i, len(a) - 1) for i in range(answer_width)])
    device = next(model.parameters()).device
    input_ids = torch.tensor(rows, device=device)
    logits = model(input_ids=input_ids, attention_mask=torch.tensor(attention, device=device)).logits
    positions = torch.tensor(positions, device=device)
    scored_logits = logits.gather(1, positions[:, :, None].expand(-1, -1, logits.shape[-1]))
    targets = input_ids.gather(1, positions + 1)
    log_probs = torch.log_softmax(scored_logits.float(), dim=-1).gather(-1, targets[:, :, None]).squeeze(-1)
    mask = torch.tensor([[1.0] * len(a) + [0.0] * (answer_width - len(a)) for a in answer_ids], device=device)
    return log_probs * mask, mask


def sequence_log_probs(model: Any, tokenizer: Any, prompts: Sequence[str], answers: Sequence[str],
                       ) -> torch.Tensor:
    """log p(answer | prompt) under a causal LM, summed over the answer's tokens, one value per pair."""
    log_probs, _ = answer_token_log_probs(model, tokenizer, prompts, answers)
    return log_probs.sum(dim=-1)


def rag_sequence_loss(doc_scores: torch.Tensor, answer_log_probs: torch.Tensor) -> torch.Tensor:
    """RAG-Sequence's negative marginal log-likelihood, averaged over the batch.

    doc_scores: (B, k) retrieval scores of the top-k passages (query · passage);
    answer_log_probs: (B, k) log p(y | x, z) of the gold answer with each passage.
    p(z | x) = softmax(doc_scores) over the k passages, and
    -log p(y | x) = -logsumexp_z (log p(z | x) + log p(y | x, z)),
    computed in log space so that tiny probabilities do not underflow.
    """
    import torch

    if doc_scores.shape != answer_log_probs.shape or doc_scores.ndim != 2 or doc_scores.shape[1] == 0:
        raise CourseError(f"doc_scores and answer_log_probs must both be (batch, k) with k >= 1, "
                          f"not {tuple(doc_scores.shape)} and {tuple(answer_log_probs.shape)}")
    log_prior = torch.log_softmax(doc_scores, dim=-1)
    return -torch.logsumexp(log_prior + answer_log_probs, dim=-1).mean()


def rag_token_loss(doc_scores: torch.Tensor, token_log_probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RAG-Token's negative log-likelihood, averaged over the batch: a mixture over passages at every token.

    doc_scores: (B, k); token_log_probs: (B, k, T) log p(y_i | x, z, y_<i) of the answer's
    tokens with each passage; mask: (B, T), 1 where the answer has a token.
    -log p(y | x) = -sum_i logsumexp_z (log p(z | x) + log p(y_i | x, z, y_<i)):
    each token may lean on a different passage, where RAG-Sequence picks one per answer.
    """
    import torch

    if (doc_scores.ndim != 2 or token_log_probs.shape[:2] != doc_scores.shape or token_log_probs.ndim != 3
            or mask.shape != (doc_scores.shape[0], token_log_probs.shape[2])):
        raise CourseError(f"need doc_scores (B, k), token_log_probs (B, k, T) and mask (B, T), not "
                          f"{tuple(doc_scores.shape)}, {tuple(token_log_probs.shape)} and {tuple(mask.shape)}")
    log_prior = torch.log_softmax(doc_scores, dim=-1)[:, :, None]
    per_token = torch.logsumexp(log_prior + token_log_probs, dim=1)  # (B, T)
    return -(per_token * mask).sum(dim=-1).mean()


# ---------------------------------------------------------------------------
# Naming what training made
# ---------------------------------------------------------------------------


def weights_fingerprint(model: Any) -> str:
    """A short hash of every parameter and buffer: the name of a trained model in cache keys.

    Training is deterministic here (fixed seeds, one CPU), so running a notebook again
    gives the same weights, the same fingerprint, and hits the caches (for example the
    corpus embeddings of a trained encoder) instead of recomputing them.
    """
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode("utf-8"))
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------
# A small training loop
# ---------------------------------------------------------------------------


def loss_curve(log_history: Sequence[dict[str, Any]]) -> tuple[list[int], list[float]]:
    """The (step, mean training loss) pairs that ``Trainer`` logged."""
    points = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry]
    return [step for step, _ in points], [loss for _, loss in points]


def course_training_arguments(recipe: Any, output_dir: Path) -> Any:
    """``TrainingArguments`` the course's way, from a recipe with steps, batch_size, learning_rate,
    warmup, weight_decay, logging_steps and seed: a fixed number of steps, the loss logged, nothing
    else (no evaluation, no checkpoints, no trackers, no progress bars)."""
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output_dir),  # under the course cache, never inside the repository
        max_steps=recipe.steps,
        per_device_train_batch_size=recipe.batch_size,
        learning_rate=recipe.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=recipe.warmup,
        weight_decay=recipe.weight_decay,
        logging_strategy="steps",
        logging_steps=recipe.logging_steps,
        eval_strategy="no",  # each notebook evaluates itself, on the splits it chooses
        save_strategy="no",  # no checkpoints: the final model is saved once, atomically
        report_to=[],  # no experiment trackers
        disable_tqdm=True,
        seed=recipe.seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_pin_memory=False,  # pinning only helps copies to a GPU
    )


def linear_warmup_decay(warmup: int, steps: int) -> Callable[[int], float]:
    """The learning-rate factor of step s: up linearly for `warmup` steps, then down linearly to 0."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))
    return factor


def train_encoder(parameters: Sequence[torch.nn.Parameter], batches: Sequence[Any],
                  loss_of_batch: Callable[[Any], torch.Tensor], lr: float = 2e-5, warmup: int = 10,
                  log_every: int = 10, max_grad_norm: float = 1.0) -> list[float]:
    """One pass of AdamW over `batches`, with warm-up and linear decay; the loss of every step.

    `loss_of_batch` turns one batch into a scalar loss (and is where the model lives),
    so the same loop trains with the contrastive loss (notebook 10) and with the RAG
    loss (notebook 12). Raises CourseError if a loss is not finite: a NaN would
    otherwise silently wreck the weights.
    """
    import torch

    parameters = [p for p in parameters if p.requires_grad]
    if not parameters:
        raise CourseError("no trainable parameters: every parameter has requires_grad=False")
    if not batches:
        raise CourseError("no batches to train on")
    optimizer = torch.optim.AdamW(parameters, lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(warmup, len(batches)))
    losses: list[float] = []
    for step, batch in enumerate(batches):
        loss = loss_of_batch(batch)
        if not math.isfinite(loss.item()):
            raise CourseError(f"the loss at step {step} is {loss.item()}: lower the learning rate")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            recent = losses[-log_every:]
            print(f"step {step + 1:4d}  loss {sum(recent) / len(recent):.3f}")
    return losses
