"""The reading table: the span reader on fact QA, retrieval and reading told apart, beside the no-model rules.

``ragutils bench reading`` prints it (the README's fact-QA tables). Every row reads the
same questions (a ``data.factqa`` part, hand-written) and says:

- what the reader sees: the share of questions with an answer alias in the passages
  ("answer in passages": retrieval's part);
- how it reads: EM and F1 of the reader, and of the two rules a reader must beat
  (``baselines``) on the same passages;
- the position test: the gold article read at position 1, 2 or 3 among BM25's best
  passages of other articles (reading must not depend on where the answer sits);
- abstention: on the unanswerable questions, the share answered "not in the passages",
  and its precision, with the answerable questions of the same split.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import CourseError

READING_K = 1  # passages the reader reads by default (ragutils ask/eval): the best k on fact-QA dev


def answer_in(passages: Sequence[Any], aliases: Sequence[str]) -> bool:
    """Whether any alias occurs (case-insensitively) in the passages' titles and texts."""
    text = " ".join(f"{p.title} {p.text}" for p in passages).lower()
    return any(alias.lower() in text for alias in aliases)


def baseline_answers(rows: Sequence[Mapping[str, Any]], passages: Sequence[Sequence[Any]]) -> dict[str, list[str]]:
    """The answers of the two no-model rules, read from passage 1 of each question."""
    from ..baselines import first_typed_span, title_of_first_passage

    return {
        "title of passage 1": [title_of_first_passage(found) for found in passages],
        "first span of the type in passage 1": [
            first_typed_span(row["question"], found[0].text, row["answer_type"], found[0].title) if found else ""
            for row, found in zip(rows, passages)],
    }


def gold_passages(rows: Sequence[Mapping[str, Any]], documents: Mapping[str, tuple[str, str]]) -> list[Any]:
    """Each row's own article as a ``rag.Passage`` (found by its title)."""
    from ..rag import Passage

    by_title = {title: (doc_id, text) for doc_id, (title, text) in documents.items()}
    missing = sorted({row["title"] for row in rows if row["title"] not in by_title})
    if missing:
        raise CourseError(f"no wiki article titled {missing[0]!r}")
    return [Passage(1, by_title[row["title"]][0], row["title"], by_title[row["title"]][1], 0.0) for row in rows]


def at_position(gold: Any, others: Sequence[Any], position: int, k: int) -> list[Any]:
    """k passages numbered from 1: the gold one at ``position``, the others (not the gold article) around it."""
    from ..rag import Passage

    rest = [p for p in others if p.doc_id != gold.doc_id][:k - 1]
    ordered = rest[:position - 1] + [gold] + rest[position - 1:]
    return [Passage(number, p.doc_id, p.title, p.text, p.score) for number, p in enumerate(ordered, start=1)]


def bench_reading(part: str = "hand_dev", retrievers: Sequence[str] = ("bm25", "dense", "hybrid"),
                  ks: Sequence[int] = (1, 3, 5), reader: Any = None, progress: bool = True) -> list[dict[str, Any]]:
    """The reading table on a fact-QA part: gold passage, position test, RAG per retriever and k, abstention."""
    import sys

    from .. import data, rag
    from ..metrics import mean_answer_scores
    from ..reader_training import load_reader
    from .bench import format_table

    if any(k < 1 for k in ks):
        raise CourseError("every k must be >= 1 (a reader needs passages)")
    rows = data.factqa(part)
    unanswerable = [row for row in data.factqa("hand_unanswerable") if row["split"] == rows[0]["split"]]
    reader = reader or load_reader()
    records = data.wiki_records()
    documents = rag.wiki_documents(records)
    aliases = [row["answers"] for row in rows]
    table: list[dict[str, Any]] = []

    def measure(setting: str, k: int, passages: list[list[Any]]) -> None:
        start = time.perf_counter()
        read = reader.read([row["question"] for row in rows], passages, [[p.score for p in f] for f in passages])
        seconds = (time.perf_counter() - start) / len(rows)
        row = {"setting": setting, "k": k, "questions": len(rows),
               "answer in passages": sum(answer_in(f, r["answers"]) for f, r in zip(passages, rows)) / len(rows),
               **{f"reader {name}": value
                  for name, value in mean_answer_scores([a.answer for a in read], aliases).items()},
               "abstained": sum(a.abstains for a in read) / len(rows)}
        for name, answers in baseline_answers(rows, passages).items():
            row[f"{name} F1"] = mean_answer_scores(answers, aliases)["F1"]
        row["s/question"] = seconds
        table.append(row)
        if progress:
            print(format_table([row]).splitlines()[-1], file=sys.stderr, flush=True)

    gold = gold_passages(rows, documents)
    measure("gold article alone", 1, [[g] for g in gold])
    bm25 = rag.make_retriever("bm25", records)
    questions = [row["question"] for row in rows]
    depth = max(max(ks), 3) + 1
    ranked = rag.RAGPipeline(bm25, reader, documents, k=depth, answer_mode="extract").retrieve(questions)
    for position in (1, 2, 3):
        measure(f"gold at position {position} of 3 (BM25 others)", 3,
                [at_position(g, found, position, 3) for g, found in zip(gold, ranked)])
    for name in retrievers:
        retriever = bm25 if name == "bm25" else rag.make_retriever(name, records)
        found_all = rag.RAGPipeline(retriever, reader, documents, k=max(ks), answer_mode="extract").retrieve(questions)
        for k in ks:
            measure(f"RAG, {name}", k, [found[:k] for found in found_all])
    if unanswerable:  # at the reader's own k of `ragutils ask` and `eval`
        pipeline = rag.RAGPipeline(bm25, reader, documents, k=READING_K, answer_mode="extract")
        result = rag.evaluate(pipeline, [*rows, *unanswerable], progress=False)
        table.append({"setting": f"abstention, BM25 ({len(unanswerable)} unanswerable)", "k": READING_K,
                      "questions": result["questions"], "reader EM": result["exact_match"],
                      "reader F1": result["f1"], "abstained": result["abstained_unanswerable"],
                      "abstained answerable": result["abstained_answerable"],
                      "abstention precision": result["abstention_precision"],
                      "s/question": result["seconds_per_question"]})
    return table
