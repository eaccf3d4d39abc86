"""The ``ragutils`` command line (also ``python -m ragutils``).

Every sub-command turns a problem the user can fix into one line on stderr and
a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import CourseError


def check_question_length(question: str, where: str = "") -> None:
    """Refuse a question longer than the pipeline reads: cut, it would be another question, and get another answer."""
    from ..rag import MAX_QUESTION_WORDS

    words = len(question.split())
    if words > MAX_QUESTION_WORDS:
        raise CourseError(f"{where}question too long: {words:,} words (the pipeline reads at most "
                          f"{MAX_QUESTION_WORDS}); ask it in fewer words")


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer one question with cited passages."""
    from .. import rag
    from . import wiki_rag

    check_question_length(args.question)
    question = rag.clean_question(args.question)  # fails fast, before any model loads
    mode = answer_mode(args)
    pipeline = wiki_rag.make_pipeline(args.retriever, passages_to_read(args, mode), args.closed_book,
                                      answer_mode=mode, milvus_uri=args.milvus_uri)
    answer = pipeline.ask(question)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False))
        return 0
    if answer.abstained:
        print("The retrieved passages do not contain the answer.")
    else:
        print(answer.answer or "(no answer)")
    if answer.sentence:
        print(f"  from [{answer.cited[0]}]: {answer.sentence}")
    for passage in answer.passages:
        mark = "*" if passage.number in answer.cited else " "
        print(f"{mark}[{passage.number}] {passage.title}  (score {passage.score:.2f})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate the RAG pipeline (or the closed-book generator) on a QA file."""
    from .. import rag
    from . import wiki_rag

    rows = read_qa_file(args.qa)  # fails fast, before any model loads
    mode = answer_mode(args)
    pipeline = wiki_rag.make_pipeline(args.retriever, passages_to_read(args, mode), args.closed_book,
                                      answer_mode=mode, milvus_uri=args.milvus_uri)
    result = rag.evaluate(pipeline, rows, progress=not args.json)
    if args.json:
        print(json.dumps({key: round(value, 4) if isinstance(value, float) else value
                          for key, value in result.items()}))
        return 0
    for key, value in result.items():
        print(f"{key:<22} {value:.3f}" if isinstance(value, float) else f"{key:<22} {value}")
    return 0


def read_qa_file(path: str | Path) -> list[dict[str, Any]]:
    """Rows {"id", "question", "answers": [...], optional "title" and "answerable"} from a JSON Lines file, checked."""
    path = Path(path)
    if not path.is_file():
        raise CourseError(f"QA file not found: {path}")
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise CourseError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise CourseError(f"{path}:{number}: a row must be a JSON object")
            missing = [key for key in ("id", "question", "answers") if key not in row]
            if missing:
                raise CourseError(f"{path}:{number}: missing {', '.join(missing)}")
            answers, answerable = row["answers"], row.get("answerable", True)
            if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
                raise CourseError(f"{path}:{number}: answers must be a list of non-empty strings")
            if answerable is not False and not answers:
                raise CourseError(f"{path}:{number}: no answers (an unanswerable row says \"answerable\": false)")
            if answerable is False and answers:
                raise CourseError(f"{path}:{number}: a row with \"answerable\": false has no answers")
            if not isinstance(row["question"], str) or not row["question"].strip():
                raise CourseError(f"{path}:{number}: empty question")
            check_question_length(row["question"], f"{path}:{number}: ")
            rows.append(row)
    if not rows:
        raise CourseError(f"QA file has no rows: {path}")
    return rows


BENCHMARKS = ("bm25", "dense", "decoding", "milvus")  # `ragutils bench all`: minutes each
SLOW_BENCHMARKS = ("rag", "reading")  # by name only: the RAG table takes half an hour, reading minutes


def cmd_bench(args: argparse.Namespace) -> int:
    """Run benchmarks side by side and print their tables (markdown, as in the README)."""
    from . import bench, bench_milvus, bench_rag, bench_reading

    runs = {"bm25": bench.bench_bm25, "dense": bench.bench_dense, "decoding": bench.bench_decoding,
            "milvus": bench_milvus.bench_milvus, "rag": bench_rag.bench_rag, "reading": bench_reading.bench_reading}
    names = BENCHMARKS if args.which == "all" else (args.which,)
    for name in names:
        print(f"## {name}\n")
        print(bench.format_table(runs[name]()))
        print()
    return 0


def cmd_course(args: argparse.Namespace) -> int:
    """Execute the notebooks headless; non-zero exit if any fails."""
    from . import course

    if args.sync_colab:
        chosen = course.notebook_paths(args.only)
        numbers = {path.name[:2] for path in chosen}
        chosen += [path for path in course.solution_paths() if path.name[:2] in numbers]
        changed = [path.name for path in chosen if course.sync_colab_cells(path)]
        print(f"Colab cells updated in {len(changed)} notebook(s): {', '.join(changed) or 'none'}")
        return 0
    runs = course.run_course(only=args.only, inplace=args.inplace, timeout=args.cell_timeout, resume=args.resume)
    return 0 if all(run.ok for run in runs) else 1


def cmd_data_build(args: argparse.Namespace) -> int:
    """Rebuild data/ from its sources."""
    from . import data_build

    counts = data_build.build()
    for name, count in counts.items():
        print(f"{name:<32} {count:>7,}")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    """Print the number of rows of every corpus and derived set."""
    from .. import data

    for name in data.CORPORA:
        print(f"{name:<16} {len(data.load_corpus(name)):>7,}")
    for name in data.DERIVED:
        splits = data.load_split(name)
        print(f"{name:<16} " + "  ".join(f"{split} {len(rows):,}" for split, rows in splits.items()))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """List the models of a profile; with --prepare, load each once to fill the caches."""
    from .. import models

    roles = args.roles or list(models.ROLES)
    specs = {role: models.spec(role, args.profile) for role in roles}  # checks every name first
    for role, model_spec in specs.items():
        print(f"{role:<16} {model_spec.source:<8} {model_spec.name:<40} {model_spec.about}")
    if args.prepare:
        # Only what a fresh clone can load: the seq2seq model appears after notebook 06.
        for role in args.roles or ("encoder", "generator"):
            models.load(role, args.profile)
            print(f"ready: {role}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Do the one-time work that teaches nothing (encodings, the generator's conversion), job by job."""
    from . import prepare

    prepare.prepare(prepare.chosen_jobs(args.only))
    return 0


def answer_mode(args: argparse.Namespace) -> str:
    """The answer mode asked for; by default the reader, or the generator when closed-book (nothing to read)."""
    from ..rag import DEFAULT_ANSWER_MODE

    return args.answer or ("generate" if args.closed_book else DEFAULT_ANSWER_MODE)


def passages_to_read(args: argparse.Namespace, mode: str) -> int:
    """The k asked for; by default 1 for the reader (more passages offer it more wrong spans), 3 for a generator."""
    from .bench_reading import READING_K

    return args.k if args.k is not None else (READING_K if mode == "extract" else 3)


def add_pipeline_options(parser: argparse.ArgumentParser, json_help: str) -> None:
    """The options that choose the RAG pipeline, shared by `ask` and `eval`."""
    from ..rag import ANSWER_MODES, DEFAULT_ANSWER_MODE, RETRIEVERS

    parser.add_argument("--retriever", default="bm25", help=f"one of {', '.join(RETRIEVERS)} (default bm25)")
    parser.add_argument("--milvus-uri", default=None, metavar="URI",
                        help="the Milvus cluster of the milvus-* retrievers, e.g. http://localhost:19530 "
                             "(default: RAGUTILS_MILVUS_URI, else the embedded engine in the course cache)")
    parser.add_argument("--k", type=int, default=None,
                        help="passages to retrieve (default 1 for the reader, the best on fact-QA dev; else 3)")
    parser.add_argument("--closed-book", action="store_true", help="answer without retrieval")
    parser.add_argument("--json", action="store_true", help=json_help)
    parser.add_argument("--answer", choices=ANSWER_MODES, default=None,
                        help="extract: a span reader reads the answer out of the passages (or abstains); "
                             "generate: the generator writes it; title: the generator picks a retrieved "
                             f"title (default {DEFAULT_ANSWER_MODE}, the best on fact-QA dev; "
                             "generate when closed-book)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="ragutils", description="Tools of the course 'RAG and fine-tuning, from first principles'.")
    parser.add_argument("--profile", default=None,
                        help="model profile: offline (default) or hub; also RAGUTILS_PROFILE")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    course = commands.add_parser("course", help="execute the notebooks headless (HTML under build/)")
    course.add_argument("--only", help="comma-separated notebook numbers, e.g. 03,05")
    course.add_argument("--inplace", action="store_true",
                        help="also save the outputs into notebooks/ (how committed outputs are made)")
    course.add_argument("--cell-timeout", type=int, default=None, metavar="SECONDS",
                        help="stop a notebook whose cell runs longer than this (for CI; default: never)")
    course.add_argument("--resume", action="store_true",
                        help="start from the first notebook that failed or did not run last time")
    course.add_argument("--sync-colab", action="store_true",
                        help="rewrite each notebook's Colab badge and install cell from ragutils.REPO")
    course.set_defaults(run=cmd_course)

    ask = commands.add_parser("ask", help="answer a question with cited passages from the wiki")
    ask.add_argument("question")
    add_pipeline_options(ask, json_help="print the answer and passages as JSON")
    ask.set_defaults(run=cmd_ask)

    evaluate = commands.add_parser("eval", help="exact match, F1, recall@k and latency on a QA file")
    evaluate.add_argument("--qa", required=True, help='JSON Lines: {"id", "question", "answers": [...]}')
    add_pipeline_options(evaluate, json_help="print the numbers as one JSON object")
    evaluate.set_defaults(run=cmd_eval)

    bench = commands.add_parser("bench", help="benchmarks: speed beside the reference libraries (all), and the RAG table (rag)")
    bench.add_argument("which", nargs="?", default="all", choices=(*BENCHMARKS, *SLOW_BENCHMARKS, "all"))
    bench.set_defaults(run=cmd_bench)

    data = commands.add_parser("data", help="the course data")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    data_build = data_commands.add_parser("build", help="rebuild data/ from its sources")
    data_build.set_defaults(run=cmd_data_build)
    data_info = data_commands.add_parser("info", help="count the rows of every set")
    data_info.set_defaults(run=cmd_data_info)

    models = commands.add_parser("models", help="list (and with --prepare, cache) the models")
    models.add_argument("roles", nargs="*", metavar="ROLE",
                        help="encoder, generator, seq2seq or classifier_base (default: all)")
    models.add_argument("--prepare", action="store_true", help="load the offline models once")
    models.set_defaults(run=cmd_models)

    prepare = commands.add_parser("prepare", help="the one-time work before the notebooks: encodings, generator")
    prepare.add_argument("--only", help="comma-separated jobs: encoder, generator, wiki, jargon, pyfaq, sentences")
    prepare.set_defaults(run=cmd_prepare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.profile:
        from ..models import resolve_profile

        try:
            os.environ["RAGUTILS_PROFILE"] = resolve_profile(args.profile)
        except CourseError as error:
            parser.exit(2, f"ragutils: error: {error}\n")
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except CourseError as error:
        print(f"ragutils: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ragutils: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The `ragutils` script and `python -m ragutils`: run main, then exit without teardown.

    Once a command has printed its result, tearing down torch and transformers
    (freeing every module and tensor one by one) takes about a second, a fifth of a
    warm `ragutils ask`. Every command writes its files inside `with` blocks, so there
    is nothing left to save: flush the output and leave at once.
    """
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    entry()
