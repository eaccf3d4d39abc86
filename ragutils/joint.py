"""Joint training: the retriever learns from the generator through RAG's marginal likelihood (notebook 12).

RAG (Lewis et al., 2020) treats the retrieved passage z as a hidden variable:
p(y | x) = sum_z p(z | x) p(y | x, z). Notebook 12 builds the two sides and the loss
by hand; this module keeps what it, its exercises and notebook 14 reuse:

- ``answer_token_log_probs`` / ``sequence_log_probs``: log p(answer | prompt) of a causal
  language model, token by token or summed, for a batch of (prompt, answer) pairs;
- ``FrozenIndexRetriever``: p(z | x) from a trainable query encoder over a frozen index;
- ``passage_answer_log_probs``: p(y | x, z) from the generator, one passage at a time;
- ``rag_sequence_loss``: RAG-Sequence's -log sum_z p(z | x) p(y | x, z), whose gradient
  reaches the retriever through p(z | x); ``rag_token_loss``: RAG-Token's, the same
  mixture taken at every token.

The query encoder trains with ``finetune.train_encoder``, the loop of notebook 10.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import CourseError
from .retriever import Ranking, check_k, query_list
from .retriever_training import embed

if TYPE_CHECKING:  # torch is imported where it is used: importing ragutils stays fast
    import torch


# ---------------------------------------------------------------------------
# The generator's side: log p(y | x, z)
# ---------------------------------------------------------------------------


def answer_token_log_probs(model: Any, tokenizer: Any, prompts: Sequence[str], answers: Sequence[str],
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(answer token i | prompt, answer tokens < i) under a causal LM, one row per (prompt, answer) pair.

    Returns `(log_probs, mask)`, both (pairs, longest answer): row r holds the
    log-probabilities of answer r's tokens, left-aligned, and `mask` is 1 where a token
    exists. Prompt and answer are tokenised apart (the answer's tokens are what is
    scored), joined, and padded on the right; position t's logits predict token t + 1.
    Gradients flow if the caller has not turned them off.

    Used in notebook 12.
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
    """log p(answer | prompt) under a causal LM, summed over the answer's tokens, one value per pair.

    Used in notebook 12.
    """
    log_probs, _ = answer_token_log_probs(model, tokenizer, prompts, answers)
    return log_probs.sum(dim=-1)


def passage_answer_log_probs(model: Any, tokenizer: Any, documents: Mapping[str, tuple[str, str]],
                             questions: Sequence[str], answers: Sequence[str],
                             doc_ids: Sequence[Sequence[str]]) -> torch.Tensor:
    """log p(answer | chat prompt with the question and ONE passage z), (len(questions), k): RAG's p(y | x, z).

    `documents` maps a doc_id to (title, text), as `rag.wiki_documents()`; `doc_ids`
    holds the k retrieved passages of each question. The prompt is the course's chat
    prompt (notebook 07) with that single passage.

    Used in notebook 12, section 1.
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


# ---------------------------------------------------------------------------
# The retriever's side: p(z | x)
# ---------------------------------------------------------------------------


class FrozenIndexRetriever:
    """Dense retrieval with a trainable query encoder over a frozen passage index: RAG's training set-up.

    The passages were encoded once (their vectors and the Faiss index never change);
    only the query encoder learns. `retrieve` finds the top k with the current query
    vectors (the search itself needs no gradient) and returns the scores
    q(x) . d(z) / temperature of those k passages, which *are* differentiable in the
    query encoder's weights. `search` is the course's retriever interface, so the
    same object plugs into `rag.RAGPipeline`.

    Derived in notebook 12, section 1.
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

        from .faiss_index import search_index

        check_k(k)
        if k > len(self.doc_ids):  # Faiss would pad the results with position -1
            raise CourseError(f"k = {k} is more than the {len(self.doc_ids)} passages in the index")
        with torch.set_grad_enabled(grad):
            queries = F.normalize(embed(self.model, self.tokenizer, list(questions), self.max_length), dim=-1)
            _, positions = search_index(self.index, queries.detach().cpu().numpy(), k)
            found = self.doc_vectors[torch.from_numpy(positions)]  # (B, k, d): constants, no gradient
            doc_scores = torch.einsum("bd,bkd->bk", queries, found) / self.temperature
        return [[self.doc_ids[p] for p in row] for row in positions.tolist()], doc_scores

    def search(self, queries: Sequence[str], k: int = 10) -> list[Ranking]:
        """For each query, k (doc_id, cosine) pairs, best first: the course's retriever interface."""
        from .text import validate_query

        queries = query_list(queries)
        queries = [validate_query(query) for query in queries]
        if not queries:
            return []
        ids, scores = self.retrieve(queries, k)
        cosines = (scores * self.temperature).tolist()
        return [list(zip(row, values)) for row, values in zip(ids, cosines)]


# ---------------------------------------------------------------------------
# The two losses
# ---------------------------------------------------------------------------


def rag_sequence_loss(doc_scores: torch.Tensor, answer_log_probs: torch.Tensor) -> torch.Tensor:
    """RAG-Sequence's negative marginal log-likelihood, averaged over the batch.

    doc_scores: (B, k) retrieval scores of the top-k passages (query · passage);
    answer_log_probs: (B, k) log p(y | x, z) of the gold answer with each passage.
    p(z | x) = softmax(doc_scores) over the k passages, and
    -log p(y | x) = -logsumexp_z (log p(z | x) + log p(y | x, z)),
    computed in log space so that tiny probabilities do not underflow.

    Used in notebook 12, section 2.
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

    Used in notebook 12.
    """
    import torch

    if (doc_scores.ndim != 2 or token_log_probs.shape[:2] != doc_scores.shape or token_log_probs.ndim != 3
            or mask.shape != (doc_scores.shape[0], token_log_probs.shape[2])):
        raise CourseError(f"need doc_scores (B, k), token_log_probs (B, k, T) and mask (B, T), not "
                          f"{tuple(doc_scores.shape)}, {tuple(token_log_probs.shape)} and {tuple(mask.shape)}")
    log_prior = torch.log_softmax(doc_scores, dim=-1)[:, :, None]
    per_token = torch.logsumexp(log_prior + token_log_probs, dim=1)  # (B, T)
    return -(per_token * mask).sum(dim=-1).mean()
