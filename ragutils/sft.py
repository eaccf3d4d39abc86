"""Supervised fine-tuning (SFT) of the generator on retrieved contexts: notebook 11.

The off-the-shelf instruct model reads the retrieved passages and answers in a
sentence ("The capital of Ghana is Accra."), so its exact match is zero even when
the answer is right there. SFT shows it, a few hundred times, what we want instead:

- the **prompt** is exactly the one the RAG pipeline builds at inference
  (``rag.chat_messages``: system rules, the top-k retrieved passages, the question),
  so that nothing changes between training and use;
- the **target** is the short gold answer followed by the number of the retrieved
  passage it comes from, ``"Accra [2]"``, then the end-of-turn token, which teaches
  the model to stop;
- the **loss** counts only the target's tokens: the prompt's labels are -100, the
  value cross-entropy ignores. The model is not asked to learn to write passages.

To fit a CPU, we train a few hundred thousand **LoRA** parameters in the last layers only
(``add_lora``): autograd then stops at the lowest trainable parameter, and a
training step costs a fraction of a full fine-tuning step.

What the notebook derives by hand, this module keeps: ``sft_examples``,
``encode``, ``collate``, ``length_batches``, ``answer_loss``, ``add_lora``,
``train_lora`` (all of it in one call). The trained adapter is kept in the course's
store (``tools.store``, under ``SFT_GENERATOR``); ``load`` puts it back on the base
generator.
"""

from __future__ import annotations

import contextlib
import random
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import CourseError
from .rag import Passage, chat_messages, chat_text

if TYPE_CHECKING:  # imported where used: importing ragutils stays fast
    import torch

    from .models import LoadedModel

# The label that cross-entropy ignores (PyTorch's default `ignore_index`).
IGNORE = -100

# The store name of notebook 11's trained adapter (see tools.store).
SFT_GENERATOR = "generator-sft-course"

# The linear layers of a Llama-style decoder layer (SmolLM2 is one): the attention projections,
# then the MLP's. Notebook 11 adapts all seven: once the backward pass crosses a layer, adapting
# its MLP as well costs little more time and adds capacity.
ATTENTION_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_MODULES = ("gate_proj", "up_proj", "down_proj")


# ---------------------------------------------------------------------------
# The training examples
# ---------------------------------------------------------------------------


@dataclass
class SFTExample:
    """One training example: the chat prompt the pipeline would build, and the answer we want.

    Used in notebook 11, section 2.
    """

    id: str
    question: str
    messages: list[dict[str, str]]  # the prompt, as rag.chat_messages builds it
    target: str  # what the assistant should write, e.g. "Accra [2]"
    answer: str  # the gold answer alone
    gold: int  # the number of the retrieved passage that is the gold article (1 = top)
    passages: list[Passage] = field(default_factory=list)


def target_text(answer: str, number: int | None) -> str:
    """The assistant's reply we train on: the answer, then the cited passage, e.g. "Accra [2]".

    Derived in notebook 11, section 2.
    """
    answer = answer.strip()
    if not answer:
        raise CourseError("an SFT target needs a non-empty answer")
    return answer if number is None else f"{answer} [{number}]"


def sft_examples(rows: Sequence[Mapping[str, Any]], retriever: Any, documents: Mapping[str, tuple[str, str]],
                 k: int = 3, cite: bool = True) -> list[SFTExample]:
    """(prompt, target) examples from QA rows with the retriever's top-k passages; rows whose gold is not retrieved are left out.

    Each row needs "id", "question", "answers" and "doc_id" (the gold article). A
    question whose gold article is not among the k passages is dropped: its target
    would teach the model to answer from passages that do not hold the answer, that
    is, to guess. With ``cite=False`` the target is the answer alone (an exercise).

    Derived in notebook 11, section 2.
    """
    if k < 1:
        raise CourseError(f"SFT on retrieved contexts needs k >= 1 passages, not {k}")
    if not rows:
        raise CourseError("no QA rows to make SFT examples from")
    missing = [key for key in ("id", "question", "answers", "doc_id") if key not in rows[0]]
    if missing:
        raise CourseError(f"QA rows need the fields id, question, answers and doc_id; missing {', '.join(missing)}")
    results = retriever.search([row["question"] for row in rows], k)
    examples = []
    for row, ranked in zip(rows, results):
        passages = [Passage(number, doc_id, *documents[doc_id], score)
                    for number, (doc_id, score) in enumerate(ranked, start=1)]
        gold = next((p.number for p in passages if p.doc_id == row["doc_id"]), None)
        if gold is None:
            continue
        if not row["answers"]:
            raise CourseError(f"QA row {row['id']} has no answer to train on")
        answer = row["answers"][0]
        examples.append(SFTExample(row["id"], row["question"], chat_messages(row["question"], passages),
                                   target_text(answer, gold if cite else None), answer, gold, passages))
    return examples


# ---------------------------------------------------------------------------
# Tokens, labels and batches
# ---------------------------------------------------------------------------


def encode(messages: list[dict[str, str]], target: str, tokenizer: Any) -> tuple[list[int], list[int]]:
    """The token ids of the prompt (with the assistant's turn opened) and of the target (ending with end-of-turn).

    The prompt is rendered exactly as `rag.ChatGenerator` renders it at inference;
    the target is tokenised on its own and closed with the end-of-turn token
    (``<|im_end|>`` for SmolLM2), the token at which generation stops.

    Used in notebook 11, section 3.
    """
    text = chat_text(tokenizer, messages)
    prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    if not target_ids:
        raise CourseError("the target has no tokens")
    return prompt_ids, target_ids + [tokenizer.eos_token_id]


def collate(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """A left-padded batch of prompt + target rows, with labels only on the targets.

    - ``input_ids``: the prompt then the target, padded on the **left**, so that every
      row's target ends at the last position (as in generation, where the answer is
      written at the right end);
    - ``attention_mask``: 0 on the padding;
    - ``position_ids``: 0, 1, 2, ... from each row's first real token, as `generate`
      numbers left-padded rows;
    - ``labels``: the target's ids, -100 (ignored by the loss) on the prompt and the padding.

    Used in notebook 11, section 3.
    """
    import torch

    if not pairs:
        raise CourseError("cannot collate an empty batch")
    if any(not target for _, target in pairs):
        raise CourseError("every example needs at least one target token")
    width = max(len(prompt) + len(target) for prompt, target in pairs)
    input_ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(pairs), width), IGNORE, dtype=torch.long)
    attention_mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, (prompt, target) in enumerate(pairs):
        ids = list(prompt) + list(target)
        start = width - len(ids)
        input_ids[row, start:] = torch.tensor(ids)
        attention_mask[row, start:] = 1
        labels[row, width - len(target):] = torch.tensor(list(target))
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids,
            "labels": labels}


def length_batches(lengths: Sequence[int], batch_size: int, seed: int = 0) -> list[list[int]]:
    """Indices grouped into batches of similar length, the batches in random order.

    A batch is as wide as its longest row; grouping rows of similar length wastes few
    padding tokens, and padding costs as much compute as real tokens. (The `Trainer`
    does the same with `group_by_length=True`.) The order of the batches is shuffled,
    so that training does not see all the short prompts first.

    Used in notebook 11, section 5.
    """
    if batch_size < 1:
        raise CourseError(f"batch_size must be 1 or more, not {batch_size}")
    if not lengths:
        raise CourseError("no examples to batch")
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)  # random among equal lengths
    order.sort(key=lambda i: lengths[i])
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def answer_loss(model: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The mean cross-entropy of the target tokens, computing logits only where a target token is predicted.

    The logits at position t predict token t + 1. With left padding, all targets sit in
    the last `n` positions, so the logits of the last `n + 1` positions are all the loss
    needs (``logits_to_keep``): the output layer (576 x 49,152 for SmolLM2) is applied to
    a handful of positions instead of hundreds, in the forward and in the backward pass.

    Derived in notebook 11, section 3.
    """
    import torch.nn.functional as F

    device = next(model.parameters()).device
    batch = {name: tensor.to(device) for name, tensor in batch.items()}
    labels = batch["labels"]
    answered = (labels != IGNORE).any(dim=0).nonzero()
    if len(answered) == 0:
        raise CourseError("the batch has no target tokens to learn")
    n = labels.shape[1] - int(answered[0])  # the target positions: the last n
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   position_ids=batch["position_ids"], logits_to_keep=n + 1).logits
    return F.cross_entropy(logits[:, :-1].float().flatten(0, 1), labels[:, -n:].flatten(), ignore_index=IGNORE)


# ---------------------------------------------------------------------------
# LoRA in the last layers
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_peft():
    """Silence one harmless warning: peft 0.21 reads `is_gradient_checkpointing`, deprecated in transformers 5."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def add_lora(model: Any, last_layers: int = 8, r: int = 8, alpha: int | None = None,
             modules: Sequence[str] = ATTENTION_MODULES + MLP_MODULES, dropout: float = 0.0) -> Any:
    """The model with LoRA adapters of rank r on `modules` of its last `last_layers` layers, all else frozen.

    Each adapted weight W (d_out x d_in) gets W + (alpha / r) B A, with A (r x d_in)
    random and B (d_out x r) zero at the start, so the wrapped model first computes
    exactly what the base model does. Only A and B train. Adapting only the last
    layers means autograd has nothing to do below them: the backward pass is short.

    Used in notebook 11, section 4.
    """
    from peft import LoraConfig, get_peft_model

    n_layers = model.config.num_hidden_layers
    if not 1 <= last_layers <= n_layers:
        raise CourseError(f"last_layers must be between 1 and {n_layers} (the model's layers), not {last_layers}")
    if r < 1:
        raise CourseError(f"the LoRA rank r must be 1 or more, not {r}")
    if not modules:
        raise CourseError("name at least one module to adapt (for example q_proj)")
    config = LoraConfig(r=r, lora_alpha=alpha if alpha is not None else 2 * r, lora_dropout=dropout,
                        target_modules=list(modules), bias="none", task_type="CAUSAL_LM",
                        layers_to_transform=list(range(n_layers - last_layers, n_layers)))
    with _quiet_peft():
        return get_peft_model(model, config)


def train_lora(model: Any, tokenizer: Any, examples: Sequence[SFTExample], last_layers: int = 8, r: int = 8,
               modules: Sequence[str] = ATTENTION_MODULES + MLP_MODULES, lr: float = 3e-3, warmup: int = 4,
               batch_size: int = 8, seed: int = 0, log_every: int = 8) -> tuple[Any, list[float]]:
    """Wrap `model` in LoRA adapters and train them for one pass over the examples: (the LoRA model, every step's loss).

    The steps of notebook 11 in one function: encode, group by length, collate, seed,
    `add_lora`, then `finetune.train_encoder` (AdamW, warm-up and linear decay,
    gradient clipping) on `answer_loss`. The defaults are notebook 11's settings, chosen
    on the dev split. The model comes back in eval mode.

    Used in notebook 11, section 5.
    """
    from transformers import set_seed

    from .finetune import train_encoder

    if not examples:
        raise CourseError("no SFT examples to train on")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    pairs = [encode(e.messages, e.target, tokenizer) for e in examples]
    batches = [collate([pairs[i] for i in indices], pad_id)
               for indices in length_batches([len(p) + len(t) for p, t in pairs], batch_size, seed=seed)]
    set_seed(seed)  # the adapters' random A matrices
    lora = add_lora(model, last_layers=last_layers, r=r, modules=modules)
    lora.train()
    history = train_encoder(lora.parameters(), batches, lambda batch: answer_loss(lora, batch), lr=lr,
                            warmup=warmup, log_every=log_every)
    lora.eval()
    return lora, history


# ---------------------------------------------------------------------------
# The trained adapter, from the store
# ---------------------------------------------------------------------------


def load(name: str = SFT_GENERATOR, profile: str | None = None, merge: bool = True) -> LoadedModel:
    """The profile's generator with a trained adapter applied (merged into its weights by default), in eval mode.

    The store (``tools.store``) keeps only the adapter, a few MB; the base generator
    comes from its profile, as ``models.load`` gives it.

    Used in notebook 11, section 5.
    """
    from peft import PeftModel

    from . import models
    from .tools import store

    if not store.ready(name):
        raise CourseError(f"no fine-tuned generator named {name!r} in the cache; run notebook 11 first")
    base, tokenizer = models.load("generator", profile)
    with _quiet_peft():
        model = PeftModel.from_pretrained(base, str(store.artefact_dir(name)))
    if merge:  # W + (alpha / r) B A folded into W once: the same function, no extra work per token
        model = model.merge_and_unload()
    model.eval()
    return models.LoadedModel(model, tokenizer)
