"""Domain adaptation with masked language modelling: data, masking, pseudo-perplexity, training, cache.

Notebook 09 adapts the course's BERT encoder to the Jargon File by continuing its
masked-language-model (MLM) training on the Jargon File's own text, and measures the
gain on held-out entries. It derives each piece by hand first; this module keeps the
versions that the notebook, its solutions and later notebooks reuse:

- ``load_mlm`` / ``loading_report``: the encoder with a masked-language-model head,
  and which of its weights the checkpoint did not have (all-MiniLM-L6-v2 ships
  without one, so the head starts random);
- ``mlm_dataset``: texts tokenised and cut into fixed-length blocks with ``datasets.map``;
- ``masked_lm_loss`` / ``MaskedPositionsTrainer`` / ``make_trainer`` / ``train_mlm``: ``Trainer`` with
  ``DataCollatorForLanguageModeling``, scoring the vocabulary only where a token was
  masked, as the original BERT code did;
- ``token_log_probs`` / ``pseudo_perplexity``: Salazar et al.'s (2020) pseudo-perplexity,
  the perplexity of a model that has no left-to-right order;
- ``fill_mask_top_k``: the model's best guesses for one ``[MASK]``;
- ``mlm_name`` / ``run_key`` / ``load_adapted`` / ``ensure_adapted``: the trained models in
  the course's store (``tools.store``), keyed by their recipes and rebuilt when missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .config import TRAINING_THREADS, cache_dir, torch_threads
from .errors import CourseError
from .finetune import loss_curve  # noqa: F401  (kept here too: the notebooks call it from this module)
from .tools import store

if TYPE_CHECKING:  # imported where they are used: `import ragutils.mlm` stays fast
    import datasets
    import torch

STAGES = ("general", "jargon")  # the two trained models: general-domain (wiki), then domain-adapted
IGNORE = -100  # the label of a position that is not scored (the collator's and PyTorch's convention)


# --- the model ----------------------------------------------------------------------------------

def load_mlm(profile: str | None = None, seed: int = 0) -> Any:
    """The course's ``classifier_base`` encoder with a masked-language-model head, in eval mode.

    A head missing from the checkpoint is drawn at random, so the seed is set just
    before loading. ``models.load`` keeps transformers quiet while it loads: the
    "newly initialized" report it would print is what ``loading_report`` returns.

    Derived in notebook 09, section 1.
    """
    from transformers import AutoModelForMaskedLM, set_seed

    from . import models

    set_seed(seed)
    return models.load("classifier_base", profile=profile, model_class=AutoModelForMaskedLM)


def loading_report(profile: str | None = None) -> dict[str, list[str]]:
    """The weights an MLM model needs but the checkpoint lacks ("missing"), and those it has but the model ignores.

    These are the lists behind transformers' "newly initialized weights" warning,
    which ``models.load`` silences; the model is loaded a second time to get them.

    Derived in notebook 09, section 1.
    """
    from transformers import AutoModelForMaskedLM

    from . import models

    path = models.model_path("classifier_base", profile)
    local_only = models.spec("classifier_base", profile).source != "hub"
    with models.quiet_transformers():
        _, info = AutoModelForMaskedLM.from_pretrained(path, local_files_only=local_only, output_loading_info=True)
    return {"missing": sorted(info["missing_keys"]), "unexpected": sorted(info["unexpected_keys"])}


def _mlm_head(model: Any) -> Any:
    """The module that turns hidden states into vocabulary scores (BERT: ``cls``, RoBERTa: ``lm_head``), or None."""
    for name in ("cls", "lm_head"):
        head = getattr(model, name, None)
        if head is not None:
            return head
    return None


def _scores_at(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               where: torch.Tensor) -> torch.Tensor:
    """Vocabulary scores (n, vocab) at the positions where ``where`` is True, and only there.

    ``BertForMaskedLM`` scores every position: a (batch, length, 30,522) tensor of
    which MLM uses 15%. The projection onto the vocabulary costs as much as the whole
    six-layer encoder of MiniLM, so we run the encoder, pick the positions that
    matter, and apply the head to those (the original BERT code gathered the masked
    positions the same way). Models with an unknown head take the slow path.
    """
    head = _mlm_head(model)
    if head is None:
        return model(input_ids=input_ids, attention_mask=attention_mask).logits[where]
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return head(hidden[where])


def masked_lm_loss(model: Any, input_ids: torch.Tensor, labels: torch.Tensor,
                   attention_mask: torch.Tensor | None = None, **_: Any) -> torch.Tensor:
    """The MLM loss: mean cross-entropy over the labelled (masked) positions, the same number as ``model(...).loss``.

    Other inputs (``token_type_ids``) are ignored: an MLM block is one segment.

    Derived in notebook 09, section 5.
    """
    import torch.nn.functional as F

    if attention_mask is None:
        attention_mask = (input_ids != model.config.pad_token_id).long()
    where = labels != IGNORE
    scores = _scores_at(model, input_ids, attention_mask, where)
    if scores.shape[0] == 0:  # nothing masked in this batch (rare): a zero loss that still has a graph
        return scores.sum() * 0.0
    return F.cross_entropy(scores.float(), labels[where])


# --- the data -----------------------------------------------------------------------------------

def _as_dataset(texts: Any) -> datasets.Dataset:
    """A ``datasets.Dataset`` with a "text" column, from a list of strings or a dataset."""
    import datasets

    if isinstance(texts, datasets.Dataset):
        if "text" not in texts.column_names:
            raise CourseError(f"expected a 'text' column, got {', '.join(texts.column_names)}")
        dataset = texts
    else:
        dataset = datasets.Dataset.from_dict({"text": [str(text) for text in texts]})
    if len(dataset) == 0:
        raise CourseError("no texts to build MLM blocks from")
    return dataset


def mlm_dataset(texts: Any, tokenizer: Any, block_size: int = 64) -> datasets.Dataset:
    """Texts as blocks of exactly ``block_size`` token ids: ``[CLS]`` + a piece of the token stream + ``[SEP]``.

    The texts are tokenised, joined into one stream with ``[SEP]`` after each text,
    and cut into equal pieces ("grouping", as in transformers' ``run_mlm.py``): no
    padding is wasted, and a short entry shares its block with the next one. The
    tail of each ``map`` batch that does not fill a block is dropped. (The collator
    finds ``[CLS]`` and ``[SEP]`` by their ids and never masks them.)

    Derived in notebook 09, section 4.
    """
    if block_size < 3:
        raise CourseError(f"block_size must leave room for [CLS], a token and [SEP], not {block_size}")
    dataset = _as_dataset(texts)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    body = block_size - 2

    def group(batch: dict[str, list]) -> dict[str, list]:
        # verbose=False: long texts are cut into blocks below, so the tokenizer's
        # "longer than the maximum length" warning does not apply.
        pieces = tokenizer(batch["text"], add_special_tokens=False, verbose=False)["input_ids"]
        stream = [token for ids in pieces for token in [*ids, sep]]
        blocks = [[cls, *stream[i:i + body], sep] for i in range(0, len(stream) - body + 1, body)]
        return {"input_ids": blocks}

    return dataset.map(group, batched=True, remove_columns=dataset.column_names)


# --- pseudo-perplexity ----------------------------------------------------------------------------

class TokenScores(NamedTuple):
    """One text's scored tokens and the log-probability of each when it alone is masked. Used in notebook 09."""

    tokens: list[str]
    log_probs: list[float]


def token_log_probs(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int = 64,
                    batch_size: int = 64) -> list[TokenScores]:
    """For each text, log p(token | all the other tokens) of every token, masking one token at a time.

    A text of n tokens becomes n copies, copy i with token i replaced by ``[MASK]``;
    the copies of all texts are scored in batches (of similar lengths, so that
    little padding is wasted). Texts are truncated to ``max_length`` tokens
    (``[CLS]`` and ``[SEP]`` included); special tokens are not scored.

    Derived in notebook 09, section 3.
    """
    import torch

    if not len(texts):
        raise CourseError("no texts to score")
    if batch_size < 1:
        raise CourseError(f"batch_size must be at least 1, not {batch_size}")
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    special = set(tokenizer.all_special_ids)
    jobs = [(t, pos) for t, ids in enumerate(encoded) for pos, token in enumerate(ids) if token not in special]
    if not jobs:
        raise CourseError("the texts have no tokens to score")
    jobs.sort(key=lambda job: len(encoded[job[0]]))  # stable: same-length copies share batches
    scores = [[0.0] * len(ids) for ids in encoded]
    device = next(model.parameters()).device
    pad, mask = tokenizer.pad_token_id, tokenizer.mask_token_id
    model.eval()
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start:start + batch_size]
        width = max(len(encoded[t]) for t, _ in chunk)
        input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (t, pos) in enumerate(chunk):
            ids = encoded[t]
            input_ids[row, :len(ids)] = torch.tensor(ids)
            attention_mask[row, :len(ids)] = 1
            input_ids[row, pos] = mask
        where = torch.zeros_like(input_ids, dtype=torch.bool)
        where[torch.arange(len(chunk)), torch.tensor([pos for _, pos in chunk])] = True
        true_ids = torch.tensor([encoded[t][pos] for t, pos in chunk])
        with torch.inference_mode():
            logits = _scores_at(model, input_ids.to(device), attention_mask.to(device), where.to(device))
            picked = torch.log_softmax(logits.float(), dim=-1).cpu()[torch.arange(len(chunk)), true_ids]
        for (t, pos), value in zip(chunk, picked.tolist()):
            scores[t][pos] = value
    results = []
    for ids, row in zip(encoded, scores):
        kept = [pos for pos, token in enumerate(ids) if token not in special]
        results.append(TokenScores(tokenizer.convert_ids_to_tokens([ids[pos] for pos in kept]),
                                   [row[pos] for pos in kept]))
    return results


def pseudo_perplexity(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int = 64,
                      batch_size: int = 64) -> float:
    """exp(-mean log p(token | rest)) over every token of the texts (Salazar et al., 2020); lower is better.

    The mean runs over all tokens of all texts together (the corpus-level PPPL of the
    paper), so a long text weighs more than a short one.

    Derived in notebook 09, section 3.
    """
    values = [value for scored in token_log_probs(model, tokenizer, texts, max_length, batch_size)
              for value in scored.log_probs]
    return math.exp(-sum(values) / len(values))


# --- fill-mask ------------------------------------------------------------------------------------

def fill_mask_top_k(model: Any, tokenizer: Any, texts: Sequence[str], k: int = 5,
                    max_length: int = 128) -> list[list[tuple[str, float]]]:
    """For each text with exactly one ``[MASK]``, the k likeliest tokens for it and their probabilities.

    Derived in notebook 09, section 3.
    """
    import torch

    if not len(texts):
        raise CourseError("no texts to fill")
    mask = tokenizer.mask_token
    for text in texts:
        if text.count(mask) != 1:
            raise CourseError(f"each text needs exactly one {mask}, got {text.count(mask)} in {text[:60]!r}")
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    where = batch["input_ids"] == tokenizer.mask_token_id
    if int(where.sum()) != len(texts):
        raise CourseError(f"a {mask} was cut off: raise max_length above {max_length}")
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        logits = _scores_at(model, batch["input_ids"].to(device), batch["attention_mask"].to(device),
                            where.to(device))
        probs, ids = torch.softmax(logits.float(), dim=-1).topk(k, dim=-1)
    return [list(zip(tokenizer.convert_ids_to_tokens(row_ids), [round(float(p), 6) for p in row_probs]))
            for row_ids, row_probs in zip(ids.cpu().tolist(), probs.cpu())]


# --- training -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MLMRecipe:
    """Every setting that shapes one MLM training run (saved with the model, to tell when to retrain).

    Used in notebook 09.
    """

    block_size: int = 64  # tokens per training block, [CLS] and [SEP] included
    mlm_probability: float = 0.15  # share of the tokens to predict (BERT's 15%)
    steps: int = 80  # optimiser steps: a CPU-sized budget (about a minute), a fraction of an epoch
    batch_size: int = 16
    learning_rate: float = 3e-4  # higher than for a classifier: the head starts random (1e-3 was worse)
    warmup: int = 8  # steps with a linearly rising learning rate
    weight_decay: float = 0.01
    logging_steps: int = 5  # log the mean training loss every this many steps
    seed: int = 0
    threads: int = TRAINING_THREADS  # torch threads while training: the weights depend on it (see config)


def mask_collator(tokenizer: Any, recipe: MLMRecipe = MLMRecipe()) -> Any:
    """BERT's masking as a data collator: mlm_probability of the tokens become targets, 80/10/10.

    Of the chosen tokens, 80% become ``[MASK]``, 10% a random token and 10% stay as
    they are. Seeded, so that the same batches get the same masks in every run.

    Used in notebook 09.
    """
    from transformers import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(tokenizer, mlm_probability=recipe.mlm_probability, seed=recipe.seed)


def training_arguments(recipe: MLMRecipe = MLMRecipe(), output_dir: Path | None = None) -> Any:
    """The ``TrainingArguments`` of a recipe: a fixed number of steps, loss logged, nothing saved.

    Derived in notebook 09, section 5.
    """
    from .finetune import course_training_arguments

    # We measure pseudo-perplexity ourselves, before and after, so Trainer evaluates nothing.
    return course_training_arguments(recipe, output_dir or cache_dir("trainer", "mlm"))


_TRAINER_CLASS: list[type] = []  # built on first use: defining it imports transformers (seconds)


def _trainer_class() -> type:
    """``Trainer`` with the MLM loss computed at the masked positions only (see ``masked_lm_loss``)."""
    if _TRAINER_CLASS:
        return _TRAINER_CLASS[0]
    from transformers import Trainer

    class MaskedPositionsTrainer(Trainer):
        """A Trainer whose loss scores the vocabulary only where the collator masked a token.

        The same number as ``BertForMaskedLM``'s own loss, for less work.
        """

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if return_outputs:  # evaluation with outputs wants the full logits: the usual path
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            return masked_lm_loss(model, **inputs)

    MaskedPositionsTrainer.__module__ = __name__
    _TRAINER_CLASS.append(MaskedPositionsTrainer)
    return MaskedPositionsTrainer


def __getattr__(name: str) -> Any:
    """``mlm.MaskedPositionsTrainer``, defined on first access so that importing this module stays fast."""
    if name == "MaskedPositionsTrainer":
        return _trainer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_trainer(model: Any, tokenizer: Any, train_dataset: datasets.Dataset, recipe: MLMRecipe = MLMRecipe(),
                 output_dir: Path | None = None) -> Any:
    """A ``Trainer`` for MLM: the recipe's arguments, the masking collator, no console printout. Used in notebook 09."""
    from transformers import PrinterCallback

    if len(train_dataset) == 0:
        raise CourseError("no training blocks")
    trainer = _trainer_class()(model=model, args=training_arguments(recipe, output_dir),
                               train_dataset=train_dataset, data_collator=mask_collator(tokenizer, recipe),
                               processing_class=tokenizer)
    # With progress bars off, Trainer prints every log as a dict, run times included;
    # the loss curve is in trainer.state.log_history, so we drop the printout.
    trainer.remove_callback(PrinterCallback)
    return trainer


def train_mlm(model: Any, tokenizer: Any, train_dataset: datasets.Dataset, recipe: MLMRecipe = MLMRecipe(),
              output_dir: Path | None = None) -> Any:
    """Train every weight of the model on MLM blocks (from ``mlm_dataset``); returns the trainer.

    The mean loss of every ``logging_steps`` steps is in ``trainer.state.log_history``
    (see ``loss_curve``). The model is left in eval mode.

    Derived in notebook 09, section 6.
    """
    trainer = make_trainer(model, tokenizer, train_dataset, recipe, output_dir)
    with torch_threads(recipe.threads):
        trainer.train()
    model.eval()
    return trainer


# --- the course's two runs, and the cache ------------------------------------------------------------

GENERAL_RECIPE = MLMRecipe()
JARGON_RECIPE = MLMRecipe()


def general_texts() -> list[str]:
    """General-domain training text: the train articles of the wiki corpus (title + lead text).

    Derived in notebook 09, section 3.
    """
    from . import data

    return [data.passage_text(row["title"], row["text"]) for row in data.wiki_records()
            if data.article_split(row["title"]) == "train"]


def jargon_texts(split: str = "train") -> list[str]:
    """The Jargon File entries of one split of ``jargon_mlm`` ("train" or "test"): headword, then definition.

    Derived in notebook 09, section 2.
    """
    from . import data

    rows = data.load_split("jargon_mlm")[split]
    return [f"{row['headword']}: {row['text']}" for row in rows]


def mlm_name(stage: str = "jargon", profile: str | None = None) -> str:
    """The store name of a trained MLM model: stage "general" (wiki) or "jargon" (adapted); one per profile.

    Derived in notebook 09, section 5.
    """
    from .models import resolve_profile

    if stage not in STAGES:
        raise CourseError(f"unknown MLM stage {stage!r}; choose one of: {', '.join(STAGES)}")
    name = resolve_profile(profile)
    return f"mlm-{stage}{'' if name == 'offline' else '-' + name}"


def run_key(recipes: Sequence[MLMRecipe]) -> str:
    """The fingerprint of the recipes of every run that led to a model (to tell when to retrain).

    Derived in notebook 09, section 5.
    """
    return store.fingerprint([asdict(recipe) for recipe in recipes])


def load_adapted(stage: str = "jargon", profile: str | None = None) -> Any:
    """A trained MLM model and its tokenizer (a ``models.LoadedModel``), in eval mode.

    Derived in notebook 09, section 9.
    """
    from transformers import AutoModelForMaskedLM

    return store.load(mlm_name(stage, profile), AutoModelForMaskedLM,
                      hint="run notebook 09 (`ragutils course --only 09`) or mlm.ensure_adapted()")


def ensure_adapted(profile: str | None = None, general: MLMRecipe = GENERAL_RECIPE,
                   jargon: MLMRecipe = JARGON_RECIPE) -> dict[str, Path]:
    """The cache folders of both trained models, training them first (as notebook 09 does) if missing.

    Used in notebook 09.
    """
    names = {stage: mlm_name(stage, profile) for stage in STAGES}
    keys = {"general": run_key([general]), "jargon": run_key([general, jargon])}
    if not all(store.ready(names[stage], keys[stage]) for stage in STAGES):
        model, tokenizer = load_mlm(profile, seed=general.seed)
        trainer = train_mlm(model, tokenizer, mlm_dataset(general_texts(), tokenizer, general.block_size), general)
        store.save(model, tokenizer, names["general"], keys["general"],
                   {"recipes": [asdict(general)], "log_history": trainer.state.log_history})
        trainer = train_mlm(model, tokenizer, mlm_dataset(jargon_texts("train"), tokenizer, jargon.block_size), jargon)
        store.save(model, tokenizer, names["jargon"], keys["jargon"],
                   {"recipes": [asdict(general), asdict(jargon)], "log_history": trainer.state.log_history})
    return {stage: store.artefact_dir(name) for stage, name in names.items()}
