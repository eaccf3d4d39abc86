"""The training loops the course shares: a plain AdamW loop, ``Trainer``'s arguments, and names for trained weights.

Notebooks 10 to 12 train with ``train_encoder``, a small loop written out so that every
step is visible: the retriever with its contrastive loss (``retriever_training``), the
generator's LoRA adapters (``sft``) and the query encoder with RAG's loss (``joint``).
Notebooks 07 to 09 train with transformers' ``Trainer``, set up by
``course_training_arguments``; ``loss_curve`` reads back what it logged. What training
makes is kept in the course's store (``tools.store``); ``weights_fingerprint`` names a
trained model by its weights, for the caches built from it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import TRAINING_THREADS, torch_threads
from .errors import CourseError

if TYPE_CHECKING:  # torch is imported where it is used: importing ragutils stays fast
    import torch


# ---------------------------------------------------------------------------
# Training with transformers' Trainer (notebooks 07 to 09)
# ---------------------------------------------------------------------------


def loss_curve(log_history: Sequence[dict[str, Any]]) -> tuple[list[int], list[float]]:
    """The (step, mean training loss) pairs that ``Trainer`` logged.

    Used in notebook 08.
    """
    points = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry]
    return [step for step, _ in points], [loss for _, loss in points]


def course_training_arguments(recipe: Any, output_dir: Path) -> Any:
    """``TrainingArguments`` the course's way, from a recipe with steps, batch_size, learning_rate,
    warmup, weight_decay, logging_steps and seed: a fixed number of steps, the loss logged, nothing
    else (no evaluation, no checkpoints, no trackers, no progress bars).

    Used in notebook 08.
    """
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


# ---------------------------------------------------------------------------
# A small training loop of our own (notebooks 10 to 12)
# ---------------------------------------------------------------------------


def linear_warmup_decay(warmup: int, steps: int) -> Callable[[int], float]:
    """The learning-rate factor of step s: up linearly for `warmup` steps, then down linearly to 0.

    Used in notebook 10.
    """
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
    so the same loop trains the retriever with the contrastive loss (notebook 10), LoRA
    adapters with the answer loss (notebook 11) and the query encoder with the RAG loss
    (notebook 12). Raises CourseError if a loss is not finite: a NaN would otherwise
    silently wreck the weights. Torch runs on ``threads`` threads, a fixed
    count, so that every machine trains the same weights (see config.TRAINING_THREADS).

    Used in notebook 10, section 4.
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


# ---------------------------------------------------------------------------
# Naming what training made
# ---------------------------------------------------------------------------


def weights_fingerprint(model: Any) -> str:
    """A short hash of every parameter and buffer: the name of a trained model in cache keys.

    Training is deterministic here (fixed seeds, a fixed thread count), so running a
    notebook again gives the same weights, the same fingerprint, and hits the caches
    (for example the corpus embeddings of a trained encoder) instead of recomputing them.
    Settings, not weights, are hashed by ``tools.store.fingerprint``.

    Used in notebook 10, section 4.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode("utf-8"))
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
