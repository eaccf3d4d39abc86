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
- ``FrozenIndexRetriever`` and ``passage_answer_log_probs``: the two sides of RAG's
  training, p(z | x) from a trainable query encoder over a frozen index, and
  p(y | x, z) from the generator with one passage at a time.
- ``rag_sequence_loss``: RAG-Sequence's marginal likelihood (Lewis et al., 2020),
  -log sum_z p(z | x) p(y | x, z), whose gradient reaches the retriever through p(z | x);
  ``rag_token_loss``: RAG-Token's, the same mixture taken at every token.
- ``train_encoder``: the small training loop shared by the retriever notebooks;
  ``save_trained`` / ``load_trained``: its result in the course cache, reused while the
  settings are the same (so a second run of a notebook skips training).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import TRAINING_THREADS, torch_threads
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


class FrozenIndexRetriever:
    """Dense retrieval with a trainable query encoder over a frozen passage index: RAG's training set-up.

    The passages were encoded once (their vectors and the Faiss index never change);
    only the query encoder learns. `retrieve` finds the top k with the current query
    vectors (the search itself needs no gradient) and returns the scores
    q(x) . d(z) / temperature of those k passages, which *are* differentiable in the
    query encoder's weights. `search` is the course's retriever interface, so the
    same object plugs into `rag.RAGPipeline`.
    """

    def __init__(self, model: Any, tokenizer: Any, index: Any, doc_ids: Sequence[str], doc_vectors: Any,
                 temperature: float = 0.05, max_length: int = 128) -> None:
        """`doc_vectors` are the index's unit-length passage vectors, row i belonging to doc_ids[i]."""
        import torch

        if temperature <= 0:
            raise CourseError(f"temperature must be > 0, not {temperature}")
        if len(doc_ids) != index.ntotal or len(doc_ids) != len(doc_vectors):
            raise CourseError(f"got {len(doc_ids)} doc ids, {len(doc_vectors)} vectors and an index of "
                              f"{index.ntotal}: they must describe the same passages")
        self.model, self.tokenizer, self.index = model, tokenizer, index
        self.doc_ids = list(doc_ids)
        self.doc_vectors = torch.as_tensor(doc_vectors)
        self.temperature, self.max_length = temperature, max_length

    def retrieve(self, questions: Sequence[str], k: int, grad: bool = False) -> tuple[list[list[str]], torch.Tensor]:
        """The top-k doc ids of each question and their scores q . d / temperature, (len(questions), k)."""
        import torch
        import torch.nn.functional as F

        from .dense import check_k, search_index

        check_k(k)
        if k > len(self.doc_ids):  # Faiss would pad the results with position -1
            raise CourseError(f"k = {k} is more than the {len(self.doc_ids)} passages in the index")
        with torch.set_grad_enabled(grad):
            queries = F.normalize(embed(self.model, self.tokenizer, list(questions), self.max_length), dim=-1)
            _, positions = search_index(self.index, queries.detach().cpu().numpy(), k)
            found = self.doc_vectors[torch.from_numpy(positions)]  # (B, k, d): constants, no gradient
            doc_scores = torch.einsum("bd,bkd->bk", queries, found) / self.temperature
        return [[self.doc_ids[p] for p in row] for row in positions.tolist()], doc_scores

    def search(self, queries: Sequence[str], k: int = 10) -> list[list[tuple[str, float]]]:
        """For each query, k (doc_id, cosine) pairs, best first: the course's retriever interface."""
        from .text import validate_query

        if isinstance(queries, str):
            raise CourseError("search takes a list of queries: wrap a single query as [query]")
        queries = [validate_query(query) for query in queries]
        if not queries:
            return []
        ids, scores = self.retrieve(queries, k)
        cosines = (scores * self.temperature).tolist()
        return [list(zip(row, values)) for row, values in zip(ids, cosines)]


def passage_answer_log_probs(model: Any, tokenizer: Any, documents: Any, questions: Sequence[str],
                             answers: Sequence[str], doc_ids: Sequence[Sequence[str]]) -> torch.Tensor:
    """log p(answer | chat prompt with the question and ONE passage z), (len(questions), k): RAG's p(y | x, z).

    `documents` maps a doc_id to (title, text), as `rag.wiki_documents()`; `doc_ids`
    holds the k retrieved passages of each question. The prompt is the course's chat
    prompt (notebook 07) with that single passage.
    """
    from .rag import Passage, chat_messages, chat_text

    if not (len(questions) == len(answers) == len(doc_ids)) or not questions:
        raise CourseError(f"need one answer and one list of doc ids per question, got {len(questions)} questions, "
                          f"{len(answers)} answers and {len(doc_ids)} lists")
    prompts, targets = [], []
    for question, answer, row in zip(questions, answers, doc_ids):
        for doc_id in row:
            messages = chat_messages(question, [Passage(1, doc_id, *documents[doc_id], 0.0)])
            prompts.append(chat_text(tokenizer, messages))
            targets.append(answer)
    return sequence_log_probs(model, tokenizer, prompts, targets).view(len(questions), -1)


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


TRAINING_FILE = "training.json"  # saved next to a trained model: its settings' fingerprint and losses


def settings_fingerprint(settings: dict[str, Any]) -> str:
    """A short, stable hash of everything that decides what training makes (recipe, data, base model)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def save_trained(model: Any, tokenizer: Any, name: str, settings: dict[str, Any], losses: Sequence[float]) -> Path:
    """Save a trained model in the course cache, atomically, with its settings' fingerprint and loss curve."""
    import json

    from .models import save_atomically, trained_dir

    record = {"fingerprint": settings_fingerprint(settings), "losses": [round(x, 6) for x in losses]}
    return save_atomically(model, tokenizer, trained_dir(name), files={TRAINING_FILE: json.dumps(record)})


def load_trained(name: str, settings: dict[str, Any], model_class: Any) -> tuple[Any, Any, list[float]] | None:
    """(model, tokenizer, losses) of a model that `save_trained` saved with these settings; None if there is none.

    A model trained with other settings (another step count, seed or base model) is
    not returned: the notebook trains again instead of showing stale results.
    """
    import json

    from .models import load_saved, trained_dir, trained_ready

    record_path = trained_dir(name) / TRAINING_FILE
    if not (trained_ready(name) and record_path.is_file()):
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if record.get("fingerprint") != settings_fingerprint(settings):
        return None
    model, tokenizer = load_saved(trained_dir(name), model_class)
    return model, tokenizer, list(record["losses"])


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
                  log_every: int = 10, max_grad_norm: float = 1.0,
                  threads: int = TRAINING_THREADS) -> list[float]:
    """One pass of AdamW over `batches`, with warm-up and linear decay; the loss of every step.

    `loss_of_batch` turns one batch into a scalar loss (and is where the model lives),
    so the same loop trains with the contrastive loss (notebook 10) and with the RAG
    loss (notebook 12). Raises CourseError if a loss is not finite: a NaN would
    otherwise silently wreck the weights. Torch runs on ``threads`` threads, a fixed
    count, so that every machine trains the same weights (see config.TRAINING_THREADS).
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
    with torch_threads(threads):
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
