"""ragutils.tools.course: notebook selection, Colab cells written from one place, error lines."""

import nbformat
import pytest

from ragutils import REPO
from ragutils.errors import CourseError
from ragutils.tools import course


def test_notebooks_are_numbered_and_selected_by_number():
    names = [path.name for path in course.notebook_paths()]
    assert names[0] == "00_setup_and_tour.ipynb"
    assert names == sorted(names)
    assert [path.name[:2] for path in course.notebook_paths("00")] == ["00"]


def test_unknown_notebook_number_is_a_clear_error():
    with pytest.raises(CourseError, match="no notebook numbered 99"):
        course.notebook_paths("00,99")


ALL_NOTEBOOKS = course.notebook_paths() + course.solution_paths()


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda path: path.stem)
def test_every_notebook_has_its_badge_and_colab_setup_cell(path):
    notebook = nbformat.read(path, as_version=4)
    assert course.colab_badge(path) in notebook.cells[0].source.splitlines()
    first_code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert course.SETUP_TAG in first_code.metadata.get("tags", [])
    assert first_code.source == course.colab_setup_source()
    assert f"github.com/{REPO}" in first_code.source
    assert "[ -e /content ]" in first_code.source or 'os.path.exists("/content")' in first_code.source
    copies = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source == first_code.source]
    assert len(copies) == 1, "the Colab setup cell appears more than once"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda path: path.stem)
def test_committed_outputs_are_clean(path):
    text = path.read_text(encoding="utf-8")
    notebook = nbformat.reads(text, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    # Executed top to bottom in one kernel, as `ragutils course --inplace` does.
    assert [cell.execution_count for cell in code_cells] == list(range(1, len(code_cells) + 1)), \
        "outputs are not from one top-to-bottom run: run `ragutils course --inplace`"
    for cell in code_cells:
        assert "execution" not in cell.get("metadata", {}), "timing metadata makes outputs vary"
        for output in cell["outputs"]:
            assert output.get("name") != "stderr" or "Warning" not in output.get("text", ""), \
                f"a warning in the committed output of {cell['source'][:60]!r}"
    for private in ("/root/", "/home/", "/work/", "/tmp/"):
        assert private not in text, f"{path.name} output shows a local path ({private})"


@pytest.mark.parametrize("path", course.notebook_paths()[1:], ids=lambda path: path.stem)
def test_every_lesson_ends_with_exercises_and_has_a_solutions_notebook(path):
    notebook = nbformat.read(path, as_version=4)
    markdown = [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]
    exercises = next((text for text in markdown if text.lstrip().startswith("## Exercises")
                      or "\n## Exercises" in text), None)
    assert exercises is not None, f"{path.name} has no Exercises section"
    solutions = path.parent / "solutions" / f"{path.stem}_solutions.ipynb"
    assert solutions.is_file(), f"no solutions notebook for {path.name}"
    assert f"solutions/{solutions.name}" in exercises, "the exercises should link their solutions"
    numbered = [line for line in exercises.splitlines() if line[:3] in {f"{n}. " for n in range(1, 10)}]
    assert 2 <= len(numbered) <= 4, f"{path.name}: {len(numbered)} exercises, expected 2 to 4"


def test_sync_is_idempotent(tmp_path, monkeypatch):
    source = course.notebook_paths("00")[0]
    monkeypatch.setattr(course, "REPO_ROOT", tmp_path)
    copy = tmp_path / "notebooks" / source.name
    copy.parent.mkdir()
    copy.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    assert course.sync_colab_cells(copy) is False  # the committed notebook is already in sync


def test_sync_adds_badge_and_setup_cell(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "REPO_ROOT", tmp_path)
    path = tmp_path / "notebooks" / "solutions" / "99_new.ipynb"
    path.parent.mkdir(parents=True)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 99 · New\n\nText."),
                                               nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(notebook, path)
    assert course.sync_colab_cells(path) is True
    synced = nbformat.read(path, as_version=4)
    badge = course.colab_badge(path)
    assert badge.endswith(f"/{course.REPO}/blob/main/notebooks/solutions/99_new.ipynb)")
    assert synced.cells[0].source.splitlines()[:3] == ["# 99 · New", "", badge]
    assert synced.cells[1].source == course.colab_setup_source()
    assert synced.cells[2].source == "x = 1"
    assert course.sync_colab_cells(path) is False


def test_last_error_line_names_the_exception():
    report = "\x1b[31m---\x1b[0m\nCell In[3], line 1\n----> 1 1/0\n\nZeroDivisionError: division by zero\n"
    assert course.last_error_line(report) == "ZeroDivisionError: division by zero"


def tiny_notebook(tmp_path, *sources):
    path = tmp_path / "98_tiny.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    nbformat.write(notebook, path)
    return path


def test_a_slow_cell_is_not_killed_by_default(tmp_path):
    path = tiny_notebook(tmp_path, "import time", "time.sleep(4)  # a slow machine\nprint('done')")
    run = course.execute_notebook(path, build_dir=tmp_path / "build")
    assert run.ok and run.seconds >= 4
    assert "done" in (tmp_path / "build" / "notebooks" / path.name).read_text(encoding="utf-8")


def test_a_cell_timeout_stops_the_notebook_and_says_where(tmp_path):
    path = tiny_notebook(tmp_path, "x = 1", "import time\ntime.sleep(30)", "print('never')")
    run = course.execute_notebook(path, timeout=2, build_dir=tmp_path / "build")
    assert not run.ok and run.error.startswith("CellTimeoutError")
    assert (run.cell, run.cell_source) == (2, "import time")
    report = run.report()
    assert "code cell 2 ('import time')" in report and "ragutils course --only 98" in report


def test_a_failing_cell_is_reported_with_its_error_line(tmp_path):
    path = tiny_notebook(tmp_path, "x = 1", "\n# load the corpus\n1 / 0")
    run = course.execute_notebook(path, build_dir=tmp_path / "build")
    assert (run.cell, run.cell_source) == (2, "# load the corpus")
    assert run.error.startswith("ZeroDivisionError")


def test_resume_starts_at_the_first_notebook_that_failed_or_did_not_run():
    paths = course.notebook_paths()
    names = [path.name for path in paths]
    assert course.resume_paths(paths, {}) == paths
    assert course.resume_paths(paths, {names[0]: "ok", names[1]: "ok", names[2]: "failed"}) == paths[2:]
    assert course.resume_paths(paths, {names[0]: "ok", names[2]: "ok"}) == paths[1:]  # 01 never ran
    assert course.resume_paths(paths, {name: "ok" for name in names}) == []


def test_the_readme_table_lists_every_notebook_in_order():
    readme = (course.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| ") and "](notebooks/" in line]
    listed = [line.split("](notebooks/", 1)[1].split(")", 1)[0] for line in rows]
    assert listed == [path.name for path in course.notebook_paths()], "the README's notebook table is out of step"
