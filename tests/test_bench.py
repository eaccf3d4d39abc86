"""ragutils.tools.bench and bench_rag: the tables' format, the query draw, best times and the QA sample."""

from ragutils import data
from ragutils.config import data_dir
from ragutils.tools import bench, bench_rag


def test_format_table_is_markdown_with_columns_in_order_of_first_appearance():
    rows = [{"library": "ours", "build_s": 0.01234, "queries_per_s": 12345.6},
            {"library": "theirs", "build_s": 2.5, "same": True, "queries_per_s": None}]
    assert bench.format_table(rows).splitlines() == [
        "| library | build_s | queries_per_s | same |",
        "|---|---|---|---|",
        "| ours | 0.0123 | 12,346 |  |",
        "| theirs | 2.50 |  | True |",
    ]
    assert bench.format_table([]) == ""


def test_bm25_queries_are_a_seeded_draw_of_non_empty_descriptions():
    descriptions = ["a", "", "b", "  ", "c"]
    drawn = bench.bm25_queries(descriptions, 2, seed=0)
    assert drawn == bench.bm25_queries(descriptions, 2, seed=0)
    assert len(set(drawn)) == 2 and set(drawn) <= {"a", "b", "c"}
    assert len(bench.bm25_queries(descriptions, 5, seed=0)) == 5  # more than there are: drawn with repeats


def test_best_times_keep_the_shortest_run_and_pass_results_through():
    best = bench.BestTimes()
    assert best.run("step", lambda: 42) == 42
    first = best["step"]
    best.run("step", lambda: None)
    assert best["step"] <= first


def test_qa_sample_is_seeded_in_file_order_and_whole_for_none():
    rows = data.read_jsonl(data_dir() / "derived" / "qa" / "test.jsonl")
    sample = bench_rag.qa_sample("test", 5, seed=0)
    assert sample == bench_rag.qa_sample("test", 5, seed=0)
    assert len(sample) == 5 and sample == [row for row in rows if row in sample]
    assert bench_rag.qa_sample("test", None) == rows
