"""Training the extractive reader on fact QA: examples, null targets, ``Trainer``, and the trained reader's cache.

The span head of ``reader`` is trained here: the pretrained encoder with a fresh
start/end head (``AutoModelForQuestionAnswering``), fine-tuned through ``Trainer`` on
the generated fact-QA questions (data/derived/factqa/generated_train.jsonl, train-split
articles only). Notebook 15 uses:

- ``ReaderRecipe``: every setting of a training run;
- ``load_base_reader``: the encoder with a freshly initialised span head;
- ``reading_examples``: training rows as (question, passage, answer, character start),
  the offset moved from the article text into the passage the reader sees;
- ``balanced_rows``: at most so many questions of each generating rule;
- ``without_answer`` / ``distractor_examples``: the null targets that teach abstention:
  the passage with the answer's sentence taken out (the same subject, no answer), and
  BM25's best passages of other articles (what sits beside the right one at k > 1);
- ``reader_dataset`` / ``train_reader``: the windows (answer windows all, null windows a
  seeded share) and the training run;
- ``reader_name`` / ``reader_key`` / ``load_reader`` / ``ensure_reader``: the trained reader
  in the course's store (``tools.store``), keyed by its recipe and its training data.
- ``gold_passage_answers``: the reader given each question's own article only (reading
  measured apart from retrieval).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .config import TRAINING_THREADS, cache_dir, data_dir, torch_threads
from .errors import CourseError
from .reader import SpanReader, qa_features, reading_scores, sentence_bounds
from .tools import store

if TYPE_CHECKING:  # imported where they are used: `import ragutils.reader_training` stays fast
    import datasets

    from .reader import ReadAnswer

READER_DIR = "reader-factqa"  # its store name; the hub profile adds "-hub"
FACTQA = "factqa"  # the derived data set (data/derived/factqa)
TRAIN_PART = "generated_train"  # the fact-QA file it trains on (data.factqa)
LABELS = ("start_positions", "end_positions")


@dataclass(frozen=True)
class ReaderRecipe:
    """Every setting that shapes the trained reader (saved with it, to tell when to retrain).

    Used in notebook 15.
    """

    steps: int = 300  # optimiser steps: 4,800 windows, most of the training set once (the cold budget)
    batch_size: int = 16
    learning_rate: float = 1e-4  # the head starts random, and a small encoder takes a higher rate
    warmup: float = 0.1  # share of the steps with a linearly rising learning rate
    weight_decay: float = 0.01
    max_length: int = 192  # tokens per window: most leads fit one whole, longer ones take two or three
    stride: int = 64  # tokens shared by neighbouring windows of a longer passage
    null_share: float = 0.5  # share of the windows without the answer kept, as null targets
    rows_per_rule: int | None = 500  # at most this many rows of one generating rule (40% are "nationality")
    distractors: int = 1  # per question, BM25's best passages of other articles, as null targets
    logging_steps: int = 20  # log the mean training loss every this many steps
    seed: int = 0
    threads: int = TRAINING_THREADS  # torch threads while training: the weights depend on it (see config)


DEFAULT_RECIPE = ReaderRecipe()


def load_base_reader(seed: int = 0, profile: str | None = None) -> Any:
    """The course's encoder with a freshly initialised span head (a ``models.LoadedModel``).

    The head (``qa_outputs``: one linear layer, hidden size -> 2, a start and an end
    logit per token) is not in the checkpoint: its weights are random, so the seed is
    set just before they are drawn.

    Used in notebook 15.
    """
    from transformers import AutoModelForQuestionAnswering, set_seed

    from . import models

    set_seed(seed)
    return models.load("classifier_base", profile=profile, model_class=AutoModelForQuestionAnswering)


# --- the examples -------------------------------------------------------------------------------

class ReadingExample(NamedTuple):
    """A question, the passage the reader sees, and the answer (None: not in the passage) with its character start.

    Used in notebook 15.
    """

    question: str
    passage: str
    answer: str | None
    start: int


def reading_examples(rows: Sequence[Mapping[str, Any]],
                     documents: Mapping[str, tuple[str, str]]) -> list[ReadingExample]:
    """Fact-QA rows as examples over the passage ``data.passage_text(title, text)``, the offsets moved to match.

    A row has a ``question``, a ``doc_id``, ``answers`` (the first is the span) and
    ``answer_start`` (its character offset in the article's text); ``documents`` maps
    doc ids to (title, text), as ``rag.wiki_documents()`` does.

    Used in notebook 15.
    """
    from .data import passage_text

    if not rows:
        raise CourseError("no training rows for the reader")
    examples = []
    for number, row in enumerate(rows, start=1):
        if not row.get("answers") or row.get("answer_start") is None:
            raise CourseError(f"training row {number} ({row.get('question', '')!r}) has no answer span")
        if row.get("doc_id") not in documents:
            raise CourseError(f"training row {number} names an unknown article {row.get('doc_id')!r}")
        title, text = documents[row["doc_id"]]
        passage = passage_text(title, text)
        shift = len(passage_text(title, ""))  # the text follows the title and its separator
        if passage[shift:] != text:
            raise CourseError("data.passage_text no longer ends with the article text: fix reading_examples")
        answer, start = row["answers"][0], int(row["answer_start"]) + shift
        if passage[start:start + len(answer)] != answer:
            raise CourseError(f"training row {number}: {answer!r} is not at character {row['answer_start']} "
                              f"of {title!r}")
        examples.append(ReadingExample(row["question"], passage, answer, start))
    return examples


def balanced_rows(rows: Sequence[Mapping[str, Any]], per_rule: int | None, seed: int = 0) -> list[Mapping[str, Any]]:
    """At most ``per_rule`` rows of each generating rule (the row's ``source``), a seeded sample, in file order.

    One rule making most of the questions would teach the reader mostly one kind of
    answer ("What nationality was X?"); rows without a source are all kept.

    Used in notebook 15.
    """
    if per_rule is None:
        return list(rows)
    by_rule: dict[Any, list[int]] = {}
    for i, row in enumerate(rows):
        by_rule.setdefault(row.get("source"), []).append(i)
    rng = random.Random(seed)
    kept = {i for rule, indices in by_rule.items()
            for i in (indices if rule is None or len(indices) <= per_rule else rng.sample(indices, per_rule))}
    return [row for i, row in enumerate(rows) if i in kept]


def distractor_examples(rows: Sequence[Mapping[str, Any]], documents: Mapping[str, tuple[str, str]],
                        retriever: Any, per_question: int = 1, depth: int = 5) -> list[ReadingExample]:
    """Null-target examples: each question over the retriever's best passages of *other* articles.

    These are the passages a reader meets beside the right one at k > 1, and they look
    right (BM25 found them for the question), so the reader must learn to give them the
    null answer. A passage that contains the answer anyway is skipped.

    Used in notebook 15.
    """
    from .data import passage_text

    if per_question < 1:
        return []
    rankings = retriever.search([row["question"] for row in rows], depth)
    examples = []
    for row, ranking in zip(rows, rankings):
        others = [doc for doc, _ in ranking if doc != row["doc_id"] and doc in documents]
        passages = [passage_text(*documents[doc]) for doc in others]
        passages = [p for p in passages if row["answers"][0].lower() not in p.lower()][:per_question]
        examples.extend(ReadingExample(row["question"], passage, None, 0) for passage in passages)
    return examples


def without_answer(example: ReadingExample) -> ReadingExample | None:
    """The example over its passage with the answer's sentence removed (answer None), or None if that cannot be made.

    A passage about the same subject without the answer is what an unanswerable
    question meets. None when the answer also occurs elsewhere in the passage, or
    nothing but the title would be left.

    Used in notebook 15.
    """
    if example.answer is None:
        return None
    begin, end = sentence_bounds(example.passage, example.start, example.start + len(example.answer))
    rest = " ".join(part for part in (example.passage[:begin].strip(), example.passage[end:].strip()) if part)
    if example.answer.lower() in rest.lower() or len(rest.split()) < 8:
        return None
    return ReadingExample(example.question, rest, None, 0)


def reader_dataset(tokenizer: Any, examples: Sequence[ReadingExample],
                   recipe: ReaderRecipe = DEFAULT_RECIPE) -> datasets.Dataset:
    """The training windows of the examples and of the answerless twins of those with an answer (``without_answer``).

    Every window that holds the answer is kept; of the windows that do not (the rest
    of a long passage, the twins, examples whose answer is None), a seeded
    ``recipe.null_share`` is kept, with the null target [CLS]. Only the model's inputs
    and the two labels are columns.

    Used in notebook 15.
    """
    import datasets

    if not examples:
        raise CourseError("no reading examples to train on")
    if not 0.0 <= recipe.null_share <= 1.0:
        raise CourseError(f"null_share must be between 0 and 1, not {recipe.null_share}")
    twins = [twin for twin in map(without_answer, examples) if twin is not None]
    everything = [*examples, *twins]
    features = qa_features(tokenizer, [e.question for e in everything], [e.passage for e in everything],
                           [None if e.answer is None else (e.answer, e.start) for e in everything],
                           recipe.max_length, recipe.stride)
    rng = random.Random(recipe.seed)
    keep = [i for i, start in enumerate(features["start_positions"]) if start or rng.random() < recipe.null_share]
    columns = [key for key in features if key not in ("example", "offset_mapping")]
    return datasets.Dataset.from_dict({key: [features[key][i] for i in keep] for key in columns})


def train_reader(model: Any, tokenizer: Any, rows: Sequence[Mapping[str, Any]],
                 recipe: ReaderRecipe = DEFAULT_RECIPE, documents: Mapping[str, tuple[str, str]] | None = None,
                 output_dir: Path | None = None, retriever: Any = None) -> Any:
    """Train every weight of a question-answering model on fact-QA rows with ``Trainer``; returns the trainer.

    The model comes from ``load_base_reader`` (its span head freshly initialised). Its
    own loss is ``reader.span_loss``. The rows are balanced across rules
    (``balanced_rows``) and joined by distractors (``distractor_examples``) from
    ``retriever`` (default: BM25 over the wiki). ``documents`` defaults to the wiki
    corpus. The loss every ``logging_steps`` steps is in ``trainer.state.log_history``; the model
    is left in eval mode.

    Used in notebook 15.
    """
    from transformers import PrinterCallback, Trainer

    from .finetune import course_training_arguments
    from .rag import make_retriever, wiki_documents

    documents = documents or wiki_documents()
    rows = balanced_rows(rows, recipe.rows_per_rule, recipe.seed)
    examples = reading_examples(rows, documents)
    if recipe.distractors:
        retriever = retriever or make_retriever("bm25")
        examples += distractor_examples(rows, documents, retriever, recipe.distractors)
    dataset = reader_dataset(tokenizer, examples, recipe)
    args = course_training_arguments(recipe, output_dir or cache_dir("trainer", READER_DIR))
    # Batches of windows of similar lengths: passages run from 40 to 250 tokens, and a batch
    # padded to its longest window would spend about a third of its work on padding.
    if hasattr(args, "train_sampling_strategy"):  # transformers 5
        args.train_sampling_strategy = "group_by_length"
    else:
        args.group_by_length = True
    trainer = Trainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    # With progress bars off, Trainer prints every log as a dict; the losses are in log_history.
    trainer.remove_callback(PrinterCallback)
    with torch_threads(recipe.threads):
        trainer.train()
    model.eval()
    return trainer


# --- measuring and the cache ------------------------------------------------------------------------

def gold_passage_answers(reader: SpanReader, rows: Sequence[Mapping[str, Any]],
                         records: list[dict] | None = None) -> list[ReadAnswer]:
    """The reader's answer to each row's question given only its gold article (the row's ``title``) as passage.

    Used in notebook 15.
    """
    from .data import passage_text, wiki_records

    articles = {r["title"]: r["text"] for r in (wiki_records() if records is None else records)}
    missing = sorted({row["title"] for row in rows if row["title"] not in articles})
    if missing:
        raise CourseError(f"no wiki article titled {missing[0]!r}")
    return reader.read([row["question"] for row in rows],
                       [[passage_text(row["title"], articles[row["title"]])] for row in rows])


def reader_name(profile: str | None = None) -> str:
    """The store name of the trained reader (one per profile).

    Used in notebook 15.
    """
    from .models import resolve_profile

    name = resolve_profile(profile)
    return READER_DIR if name == "offline" else f"{READER_DIR}-{name}"


def reader_key(recipe: ReaderRecipe = DEFAULT_RECIPE) -> str:
    """The fingerprint of a recipe and of the training file: a reader trained otherwise is not reused.

    Used in notebook 15.
    """
    path = data_dir() / "derived" / FACTQA / f"{TRAIN_PART}.jsonl"
    if not path.is_file():
        raise CourseError(f"reader training data not found: {path}; rebuild with `ragutils data build`")
    return store.fingerprint({"recipe": asdict(recipe), "data": store.file_sha256(path)})


def load_reader(profile: str | None = None, **settings: Any) -> SpanReader:
    """The trained reader from the store, as a ``SpanReader`` with the recipe's window sizes (``settings`` override).

    Used in notebook 15.
    """
    from transformers import AutoModelForQuestionAnswering

    name = reader_name(profile)
    model, tokenizer = store.load(name, AutoModelForQuestionAnswering,
                                  hint="run notebook 15 or reader_training.ensure_reader()")
    recipe = store.read_meta(name).get("recipe", {})
    windows = {key: recipe[key] for key in ("max_length", "stride") if key in recipe}
    return SpanReader(model, tokenizer, **{**windows, **settings})


def ensure_reader(recipe: ReaderRecipe = DEFAULT_RECIPE, profile: str | None = None) -> Path:
    """The cache folder of the trained reader, training it first if missing (with its dev scores).

    A reader trained with another recipe or other training data is replaced.

    Used in notebook 15.
    """
    from .data import factqa
    from .finetune import loss_curve
    from .models import spec

    name, key = reader_name(profile), reader_key(recipe)
    if store.ready(name, key):
        return store.artefact_dir(name)
    rows = factqa(TRAIN_PART)
    model, tokenizer = load_base_reader(recipe.seed, profile)
    trainer = train_reader(model, tokenizer, rows, recipe)
    dev = factqa("hand_dev")
    reader = SpanReader(model, tokenizer, max_length=recipe.max_length, stride=recipe.stride)
    scores = reading_scores(gold_passage_answers(reader, dev), [row["answers"] for row in dev])
    meta = {"recipe": asdict(recipe), "base": spec("classifier_base", profile).about, "train_rows": len(rows),
            "scores": {"dev_gold_passage": {metric: round(value, 4) for metric, value in scores.items()}}}
    return store.save(model, tokenizer, name, key, meta, loss_curve(trainer.state.log_history)[1])
