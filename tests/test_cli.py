"""The command line: bad input gives one clear line on stderr and a non-zero exit."""

import os
import subprocess
import sys

import pytest


def ragutils(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python -m ragutils ARGS` and capture its output."""
    return subprocess.run([sys.executable, "-m", "ragutils", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    """A non-zero exit with one line on stderr that contains every needle, and no traceback."""
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_unknown_profile():
    assert_one_line_error(ragutils("--profile", "gpu", "models"), "unknown profile 'gpu'", "offline")


def test_unknown_profile_from_environment():
    assert_one_line_error(ragutils("models", env={"RAGUTILS_PROFILE": "gpu"}), "unknown profile 'gpu'")


def test_unknown_role():
    assert_one_line_error(ragutils("models", "decoder"), "unknown model role 'decoder'")


def test_missing_data_folder(tmp_path):
    missing = tmp_path / "no-data-here"
    assert_one_line_error(ragutils("data", "info", env={"RAGUTILS_DATA": str(missing)}),
                          "data folder not found", str(missing))


def test_missing_data_set(tmp_path):
    (tmp_path / "wiki").mkdir()
    assert_one_line_error(ragutils("data", "info", env={"RAGUTILS_DATA": str(tmp_path)}),
                          "not found", "ragutils data build")


def test_unknown_notebook_number():
    assert_one_line_error(ragutils("course", "--only", "77"), "no notebook numbered 77")


def test_models_lists_every_role():
    result = ragutils("models")
    assert result.returncode == 0, result.stderr
    for role in ("encoder", "generator", "seq2seq", "classifier_base"):
        assert role in result.stdout


@pytest.mark.parametrize("entry", [["ragutils"], [sys.executable, "-m", "ragutils"]])
def test_console_script_and_module_both_work(entry):
    if entry == ["ragutils"]:
        entry = [os.path.join(os.path.dirname(sys.executable), "ragutils")]
    result = subprocess.run([*entry, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "course" in result.stdout


@pytest.mark.parametrize("question", ["", "   ", "?!"])
def test_empty_question(question):
    assert_one_line_error(ragutils("ask", question), "empty query")


def test_a_ten_thousand_word_question_is_refused_before_any_model_loads():
    assert_one_line_error(ragutils("ask", "why " * 10_000), "question too long: 10,000 words")


def test_unknown_retriever():
    assert_one_line_error(ragutils("ask", "Who painted the Mona Lisa?", "--retriever", "grep"),
                          "unknown retriever 'grep'")


def test_an_unreachable_milvus_cluster_is_one_line_before_any_model_loads():
    assert_one_line_error(ragutils("ask", "Who painted the Mona Lisa?", "--retriever", "milvus-hybrid",
                                   "--milvus-uri", "http://127.0.0.1:1"),
                          "cannot reach a Milvus server at http://127.0.0.1:1", "README")


def test_a_milvus_path_in_a_missing_folder_is_one_line(tmp_path):
    assert_one_line_error(ragutils("ask", "Who painted the Mona Lisa?", "--retriever", "milvus-bm25",
                                   env={"RAGUTILS_MILVUS_URI": str(tmp_path / "missing" / "milvus.db")}),
                          "cannot open the embedded Milvus")


def test_a_reader_needs_passages():
    assert_one_line_error(ragutils("ask", "Who painted the Mona Lisa?", "--closed-book", "--answer", "extract"),
                          "an extractive reader needs passages to read")


def test_negative_k():
    assert_one_line_error(ragutils("ask", "Who painted the Mona Lisa?", "--k", "-1"), "k must be 0 or more")


@pytest.mark.parametrize("content, needle", [
    ('{"id": 1, "question": "Who?", "answers": ["x"]}\n{not json\n', ":2: not valid JSON"),
    ('{"id": 1, "question": "Who?"}\n', ":1: missing answers"),
    ('{"id": 1, "question": "Who?", "answers": []}\n', ":1: no answers"),
    ('{"id": 1, "question": "Who?", "answers": [""]}\n', ":1: answers must be a list of non-empty strings"),
    ('{"id": 1, "question": "Who?", "answers": ["x"], "answerable": false}\n', ":1: a row with"),
    ('{"id": 1, "question": " ", "answers": ["x"]}\n', ":1: empty question"),
    ('{"id": 1, "question": "Who?", "answers": ["x"]}\n{"id": 2, "question": "%s", "answers": ["x"]}\n' % ("why " * 200),
     ":2: question too long: 200 words"),
    ("\n", "has no rows"),
])
def test_malformed_qa_file_names_the_bad_line(tmp_path, content, needle):
    path = tmp_path / "qa.jsonl"
    path.write_text(content, encoding="utf-8")
    assert_one_line_error(ragutils("eval", "--qa", str(path)), needle)


def test_missing_qa_file(tmp_path):
    assert_one_line_error(ragutils("eval", "--qa", str(tmp_path / "nope.jsonl")), "QA file not found")
