"""Fine-tuning a pretrained encoder into a topic classifier: data, metrics, baseline, training, cache.

Notebook 08 walks through the six steps of fine-tuning (choose a pretrained model,
prepare the data, define the task, add a head and choose what to train, train,
evaluate) and derives each piece by hand first; this module keeps the versions
that the notebook and later notebooks reuse:

- ``topic_labels`` / ``label_ids``: the 12 topics and their integer ids;
- ``tokenize_topics``: a ``datasets`` split turned into token ids and integer labels;
- ``confusion_matrix`` / ``classification_scores`` / ``per_label_scores``: accuracy and
  macro-averaged precision, recall and F1, written out so that every number can be
  traced to the confusion matrix (the tests check them against scikit-learn);
- ``tfidf_baseline``: the classical opponent, TF-IDF features and logistic regression;
- ``load_base_classifier`` / ``freeze_lower_layers`` / ``training_arguments`` /
  ``train_topic_classifier``: the pretrained encoder with a fresh head, trained with
  ``Trainer`` on a CPU-sized budget (``Recipe``);
- ``classifier_name`` / ``recipe_key`` / ``load_classifier`` / ``ensure_topic_classifier``:
  the trained model in the course's store (``tools.store``), keyed by its recipe, rebuilt
  when missing (notebook 13 loads it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import TRAINING_THREADS, cache_dir, data_dir, torch_threads
from .errors import CourseError
from .finetune import loss_curve  # noqa: F401  (kept here too: the notebooks call it from this module)
from .tools import store

if TYPE_CHECKING:  # imported where they are used: `import ragutils.classifier` stays fast
    import datasets
    from matplotlib.axes import Axes

CLASSIFIER_DIR = "classifier-topics"  # its store name; the hub profile adds "-hub"
TOPICS = "topics"  # the derived data set (data/derived/topics)


# --- step 2: the labels and the data ------------------------------------------------------

def topic_labels() -> list[str]:
    """The 12 topic names, in the order of data/derived/topics/labels.json (label id = position).

    Derived in notebook 08, section 08.
    """
    path = data_dir() / "derived" / TOPICS / "labels.json"
    if not path.is_file():
        raise CourseError(f"topic labels not found: {path}; rebuild with `ragutils data build`")
    return json.loads(path.read_text(encoding="utf-8"))


def label_ids(names: Sequence[str], labels: Sequence[str]) -> list[int]:
    """The integer id of each label name: its position in ``labels``. Used in notebook 08."""
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({name for name in names if name not in index})
    if unknown:
        raise CourseError(f"unknown label {unknown[0]!r}; known labels: {', '.join(labels)}")
    return [index[name] for name in names]


def tokenize_topics(dataset: datasets.Dataset | datasets.DatasetDict, tokenizer: Any,
                    labels: Sequence[str], max_length: int = 64) -> datasets.Dataset | datasets.DatasetDict:
    """Token ids, attention masks and integer ``labels`` for every passage (via ``datasets.map``).

    The text columns are dropped: ``Trainer`` passes every remaining column to the
    model, and a model cannot take strings. No padding here: the data collator pads
    each batch to its own longest passage, which wastes less than padding everything
    to ``max_length``.

    Derived in notebook 08, section 08.
    """
    if max_length < 2:
        raise CourseError(f"max_length must leave room for [CLS] and [SEP], not {max_length}")
    labels = list(labels)
    splits = dataset.values() if hasattr(dataset, "values") else [dataset]
    columns = sorted({column for split in splits for column in split.column_names})
    if "text" not in columns or "label" not in columns:
        raise CourseError(f"expected 'text' and 'label' columns, got {', '.join(columns)}")

    def encode(batch: dict[str, list]) -> dict[str, list]:
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length)
        encoded["labels"] = label_ids(batch["label"], labels)
        return dict(encoded)

    return dataset.map(encode, batched=True, remove_columns=columns)


# --- step 6: the metrics --------------------------------------------------------------------

def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Counts (len(labels) x len(labels)): row = true label, column = predicted label.

    Derived in notebook 08, section 08.
    """
    if len(y_true) != len(y_pred):
        raise CourseError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if not len(y_true):
        raise CourseError("no predictions to evaluate")
    true_ids, pred_ids = label_ids(y_true, labels), label_ids(y_pred, labels)
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    np.add.at(matrix, (true_ids, pred_ids), 1)
    return matrix


def _per_label(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support of every label, read off a confusion matrix.

    A ratio with nothing to divide by (a label never predicted, or absent from the
    true labels) counts as 0, as scikit-learn does by default.
    """
    hits = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0)  # column sums: how often each label was predicted
    support = matrix.sum(axis=1)  # row sums: how often each label is the truth
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    return precision, recall, f1, support


def classification_scores(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """Accuracy and the macro averages (every label counts the same) of precision, recall and F1.

    Macro-F1 is the mean of the per-label F1 scores, not the F1 of the mean precision
    and mean recall (the two differ; scikit-learn and most papers use the first).

    Derived in notebook 08, section 08.
    """
    matrix = confusion_matrix(y_true, y_pred, labels)
    precision, recall, f1, _ = _per_label(matrix)
    return {"accuracy": float(np.trace(matrix) / matrix.sum()), "precision": float(precision.mean()),
            "recall": float(recall.mean()), "f1": float(f1.mean())}


def per_label_scores(y_true: Sequence[str], y_pred: Sequence[str],
                     labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of every label: {label: {"precision": …, …}}.

    Derived in notebook 08, section 08.
    """
    precision, recall, f1, support = _per_label(confusion_matrix(y_true, y_pred, labels))
    return {label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)}


def confusion_matrix_plot(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str],
                          ax: Axes | None = None, title: str = "", normalize: bool = True) -> Axes:
    """A heat map of the confusion matrix; normalised by row, its diagonal is each label's recall.

    Derived in notebook 08, section 08.
    """
    import matplotlib.pyplot as plt

    from .plots import heatmap

    matrix = confusion_matrix(y_true, y_pred, labels).astype(float)
    if normalize:
        rows = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    ax = ax if ax is not None else plt.subplots(figsize=(10, 8))[1]
    heatmap(matrix, list(labels), ax=ax, title=title, fmt=".2f" if normalize else ".0f",
            cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_ylabel("true topic")
    ax.set_xlabel("predicted topic")
    return ax


# --- the baseline -----------------------------------------------------------------------------

def tfidf_baseline(texts: Sequence[str], labels: Sequence[str], c: float = 10.0, min_df: int = 2,
                   ngram_range: tuple[int, int] = (1, 1), seed: int = 0) -> Any:
    """A fitted scikit-learn pipeline: TF-IDF word features, then multinomial logistic regression.

    ``c`` is the inverse strength of the L2 penalty (choose it on dev). Sub-linear term
    frequency (1 + log tf) keeps a word repeated ten times from weighing ten times as much.
    The newton-cg solver converges in about ten iterations here: seconds, where the
    default lbfgs takes tens of seconds for the same optimum.

    Derived in notebook 08, section 08.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if not len(texts):
        raise CourseError("no training texts for the TF-IDF baseline")
    if len(texts) != len(labels):
        raise CourseError(f"{len(texts)} texts but {len(labels)} labels")
    pipeline = make_pipeline(
        TfidfVectorizer(sublinear_tf=True, min_df=min_df, ngram_range=ngram_range),
        LogisticRegression(C=c, solver="newton-cg", max_iter=1000, random_state=seed))
    return pipeline.fit(list(texts), list(labels))


# --- steps 1, 3, 4 and 5: the model, its head, what to train, the training ----------------------

@dataclass(frozen=True)
class Recipe:
    """Every setting that shapes the trained classifier (saved with it, to tell when to retrain).

    Derived in notebook 08, section 08.
    """

    max_length: int = 64  # tokens per passage: the lead sentence or two, which name the subject
    trainable_layers: int = 2  # the top Transformer layers that train; the ones below stay frozen
    steps: int = 200  # optimiser steps (200 x 16 = 3,200 passages, less than one epoch)
    batch_size: int = 16
    learning_rate: float = 3e-4
    warmup: float = 0.1  # share of the steps with a linearly rising learning rate
    weight_decay: float = 0.01
    logging_steps: int = 10  # log the mean training loss every this many steps
    seed: int = 0
    threads: int = TRAINING_THREADS  # torch threads while training: the weights depend on it (see config)


DEFAULT_RECIPE = Recipe()


def load_base_classifier(labels: Sequence[str], seed: int = 0, profile: str | None = None) -> Any:
    """The pretrained encoder with a freshly initialised classification head for ``labels``.

    The head's weights are random, so the seed is set just before they are drawn.

    Derived in notebook 08, section 08.
    """
    from transformers import AutoModelForSequenceClassification, set_seed

    from . import models

    labels = list(labels)
    set_seed(seed)
    return models.load("classifier_base", profile=profile, model_class=AutoModelForSequenceClassification,
                       num_labels=len(labels), id2label=dict(enumerate(labels)),
                       label2id={label: i for i, label in enumerate(labels)})


def encoder_layers(model: Any) -> Any:
    """The list of Transformer layers of a BERT-like ``…ForSequenceClassification`` model.

    Derived in notebook 08, section 08.
    """
    base = getattr(model, model.base_model_prefix, None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise CourseError(f"cannot find the Transformer layers of {type(model).__name__} (expected encoder.layer)")
    return layers


def freeze_lower_layers(model: Any, trainable_layers: int) -> dict[str, int]:
    """Freeze the embeddings and all but the top ``trainable_layers`` layers; the head always trains.

    Returns the number of trainable and of frozen parameters. A frozen layer still runs
    forward, but needs no gradient and no optimiser state, and back-propagation
    stops below the lowest trainable layer: each step gets cheaper.

    Derived in notebook 08, section 08.
    """
    layers = encoder_layers(model)
    if not 0 <= trainable_layers <= len(layers):
        raise CourseError(f"trainable_layers must be between 0 and {len(layers)}, not {trainable_layers}")
    for parameter in model.parameters():
        parameter.requires_grad = True
    base = getattr(model, model.base_model_prefix)
    frozen = [base.embeddings, *layers[:len(layers) - trainable_layers]]
    for module in frozen:
        for parameter in module.parameters():
            parameter.requires_grad = False
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "frozen": total - trainable}


def training_arguments(recipe: Recipe = DEFAULT_RECIPE, output_dir: Path | None = None) -> Any:
    """The ``TrainingArguments`` of a recipe: a fixed number of steps, loss logged, nothing saved.

    Derived in notebook 08, section 08.
    """
    from .finetune import course_training_arguments

    # We evaluate once, after training, on the splits we choose, so Trainer evaluates nothing.
    return course_training_arguments(recipe, output_dir or cache_dir("trainer", CLASSIFIER_DIR))


def train_topic_classifier(model: Any, tokenizer: Any, train_dataset: datasets.Dataset,
                           recipe: Recipe = DEFAULT_RECIPE, output_dir: Path | None = None,
                           loss_func: Callable[..., Any] | None = None) -> Any:
    """Freeze what the recipe keeps frozen, train with ``Trainer`` and return the trainer.

    ``train_dataset`` comes from ``tokenize_topics``. The loss every ``logging_steps``
    steps is in ``trainer.state.log_history`` (see ``loss_curve``). ``loss_func``, if
    given, replaces the model's cross-entropy: ``Trainer`` calls it as
    ``loss_func(outputs, labels, num_items_in_batch=...)`` (for example a class-weighted loss).

    Used in notebook 08.
    """
    from transformers import PrinterCallback, Trainer

    if len(train_dataset) == 0:
        raise CourseError("no training examples")
    freeze_lower_layers(model, recipe.trainable_layers)
    trainer = Trainer(model=model, args=training_arguments(recipe, output_dir), train_dataset=train_dataset,
                      processing_class=tokenizer, compute_loss_func=loss_func)
    # With progress bars off, Trainer prints every log as a dict, run times included;
    # the loss curve is in trainer.state.log_history, so we drop the printout.
    trainer.remove_callback(PrinterCallback)
    with torch_threads(recipe.threads):
        trainer.train()
    model.eval()
    return trainer


def predict_logits(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int = 64,
                   batch_size: int = 64) -> np.ndarray:
    """The classifier's scores, (len(texts), number of labels), computed in batches of similar lengths.

    Sorting by length before batching means little padding, so less wasted work;
    the rows come back in the order of ``texts``.

    Derived in notebook 08, section 08.
    """
    import torch

    if not len(texts):
        raise CourseError("no texts to classify")
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    order = np.argsort([len(ids) for ids in encoded], kind="stable")
    logits = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    device = next(model.parameters()).device
    model.eval()
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        batch = tokenizer.pad({"input_ids": [encoded[i] for i in rows]}, return_tensors="pt").to(device)
        with torch.inference_mode():
            logits[rows] = model(**batch).logits.float().cpu().numpy()
    return logits


def predict_topics(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int = 64,
                   batch_size: int = 64) -> list[str]:
    """The predicted label name of each text (the highest-scoring one). Derived in notebook 08, section 08."""
    logits = predict_logits(model, tokenizer, texts, max_length, batch_size)
    return [model.config.id2label[int(i)] for i in logits.argmax(axis=1)]


# --- the cache ----------------------------------------------------------------------------------

def classifier_name(profile: str | None = None) -> str:
    """The store name of the trained topic classifier (one per profile). Derived in notebook 08, section 08."""
    from .models import resolve_profile

    suffix = "" if resolve_profile(profile) == "offline" else f"-{resolve_profile(profile)}"
    return f"{CLASSIFIER_DIR}{suffix}"


def recipe_key(recipe: Recipe) -> str:
    """The fingerprint of a training recipe: a cached classifier trained with another recipe is not reused.

    Derived in notebook 08, section 08.
    """
    return store.fingerprint(asdict(recipe))


def load_classifier(profile: str | None = None) -> Any:
    """The trained topic classifier and its tokenizer (a ``models.LoadedModel``), in eval mode.

    Derived in notebook 08, section 08.
    """
    from transformers import AutoModelForSequenceClassification

    return store.load(classifier_name(profile), AutoModelForSequenceClassification,
                      hint="run notebook 08 (`ragutils course --only 08`) or classifier.ensure_topic_classifier()")


def ensure_topic_classifier(recipe: Recipe = DEFAULT_RECIPE, profile: str | None = None) -> Path:
    """The cache folder of the topic classifier, training it first (as notebook 08 does) if missing.

    A cached model trained with another recipe is replaced. On a 2-core CPU, training takes
    about a minute.

    Used in notebook 13, section 4.
    """
    from . import data

    name = classifier_name(profile)
    if store.ready(name, recipe_key(recipe)):
        return store.artefact_dir(name)
    labels = topic_labels()
    splits = data.load_split(TOPICS)
    model, tokenizer = load_base_classifier(labels, seed=recipe.seed, profile=profile)
    train_set = tokenize_topics(splits["train"], tokenizer, labels, recipe.max_length)
    train_topic_classifier(model, tokenizer, train_set, recipe)
    scores = {}
    for split in ("dev", "test"):
        predictions = predict_topics(model, tokenizer, list(splits[split]["text"]), recipe.max_length)
        scores[split] = classification_scores(list(splits[split]["label"]), predictions, labels)
    return store.save(model, tokenizer, name, recipe_key(recipe), classifier_meta(recipe, labels, scores, profile))


def classifier_meta(recipe: Recipe, labels: Sequence[str], scores: dict[str, dict[str, float]],
                    profile: str | None = None) -> dict[str, Any]:
    """The metadata saved with a classifier: its recipe, labels, base model and scores per split.

    Derived in notebook 08, section 08.
    """
    from .models import spec

    return {"recipe": asdict(recipe), "labels": list(labels), "base": spec("classifier_base", profile).about,
            "scores": {split: {metric: round(float(value), 4) for metric, value in by_metric.items()}
                       for split, by_metric in scores.items()}}
