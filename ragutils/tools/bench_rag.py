"""The RAG table: exact match and F1, closed-book against RAG, per retriever, k and answer mode.

``ragutils bench rag`` prints it (the README's RAG table). It runs the same pipeline
as ``ragutils ask`` and ``ragutils eval`` (``wiki_rag``) on a seeded sample of the
QA test split; about half an hour on two cores, so ``ragutils bench all`` leaves it out.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import CourseError
from ..retriever import Retriever
from .bench import format_table


# The rows of the README's RAG table. Free generation scores 0 exact match with every
# retriever and k (the small generator answers in sentences), so it is measured with
# BM25 only; choosing among the retrieved titles is measured with every retriever.
RAG_ROWS = (("bm25", "generate"), ("bm25", "title"), ("dense", "title"), ("hybrid", "title"))


def qa_sample(split: str = "test", n_questions: int | None = 200, seed: int = 0) -> list[dict[str, Any]]:
    """A seeded random sample of n questions of a QA split (all of them for None), in file order."""
    from .. import data

    rows = data.read_jsonl(data.data_dir() / "derived" / "qa" / f"{split}.jsonl")
    if n_questions is None or n_questions >= len(rows):
        return rows
    keep = set(random.Random(seed).sample(range(len(rows)), n_questions))
    return [row for position, row in enumerate(rows) if position in keep]


def bench_rag(split: str = "test", n_questions: int | None = 200, ks: Sequence[int] = (1, 3, 5),
              rows: Sequence[tuple[str, str]] = RAG_ROWS, seed: int = 0, progress: bool = True,
              ) -> list[dict[str, Any]]:
    """Exact match and F1 on QA questions: closed-book, then RAG per (retriever, answer mode) and k.

    One generator and one instance of each retriever serve every row, so the rows
    differ only in what they name. The questions are a seeded sample of the split
    (`n_questions`, None for all): about 2 s of CPU per question and row.
    """
    from .. import data, models, rag
    from . import wiki_rag

    if any(k < 1 for k in ks):
        raise CourseError("every k must be >= 1 (closed-book is its own row)")
    questions = qa_sample(split, n_questions, seed)
    model, tokenizer = models.load("generator")
    generator = rag.ChatGenerator(model, tokenizer)
    records = data.wiki_records()
    documents = rag.wiki_documents(records)

    def measure(name: str, k: int, mode: str, pipeline: rag.RAGPipeline) -> dict[str, Any]:
        result = rag.evaluate(pipeline, questions, progress=progress)
        row = {"retriever": name, "answer": mode, "k": k, "questions": result["questions"],
               "exact_match": result["exact_match"], "f1": result["f1"],
               "recall@k": result.get(f"recall@{k}"), "s_per_question": result["seconds_per_question"]}
        if progress:  # each row as it is done: the whole table takes a while
            print(format_table([row]).splitlines()[-1], file=sys.stderr, flush=True)
        return row

    table = [measure("closed-book", 0, "generate", rag.RAGPipeline(None, generator, documents, k=0))]
    retrievers: dict[str, Retriever] = {}
    for name, mode in rows:
        if name not in retrievers:
            retrievers[name] = rag.make_retriever(name, records)
        for k in ks:
            table.append(measure(name, k, mode, rag.RAGPipeline(retrievers[name], generator, documents, k, mode)))
    return table
