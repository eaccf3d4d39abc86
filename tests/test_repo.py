"""The repository agrees with itself: set-up files, the package's map, one home per helper, docstrings that cite the course."""

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ragutils"


def requirement_lines(text: str) -> dict[str, str]:
    """Package name → version spec, from requirement lines (comments dropped)."""
    specs = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip().lstrip("- ").strip()
        match = re.match(r"^([A-Za-z0-9_.\-]+)\s*((?:[<>=!~]=?|===?)[^\s]+)?$", line)
        if match and line:
            specs[match.group(1).lower()] = match.group(2) or ""
    return specs


def test_requirements_and_environment_list_the_same_packages():
    requirements = requirement_lines((ROOT / "requirements.txt").read_text())
    environment_text = (ROOT / "environment.yml").read_text()
    pip_section = environment_text.split("- pip:", 1)[1]
    environment = requirement_lines(pip_section)
    environment.pop("torch")  # installed on its own by the Makefile, see requirements.txt
    assert requirements == environment


def test_requirements_use_lower_bounds_with_a_reason():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        assert ">=" in line, f"use a lower bound, not a pin: {line}"
        assert "#" in line, f"say which notebooks need it: {line}"


def test_ci_runs_the_readme_test_command_only():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in ci.splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]
    assert "make test" in (ROOT / "README.md").read_text()


# --- the package: its map, one home per helper, where the course derives each function ---------

# Top-level modules that teach nothing, so their functions name no notebook: where
# things live and thread counts (config), and the one error class (errors).
NOT_CONCEPTS = {"config", "errors"}
CONCEPT_MODULES = sorted(path.stem for path in PACKAGE.glob("*.py")
                         if not path.stem.startswith("_") and path.stem not in NOT_CONCEPTS)

# The one phrase a public function's or class's docstring uses to say where the course
# derives it (builds it by hand first) or uses it (takes it from the package as it is):
#   "Derived in notebook 02, section 2.5."   "Used in notebook 07."
COURSE_PHRASE = re.compile(r"\b(Derived|Used) in notebook (\d\d)(?:, section (\d+(?:\.\d+)*))?\.")

# Helpers that once had twins: each must have exactly one definition in ragutils/.
ONE_HOME = ("check_k", "split_sentences", "lead", "count_parameters", "Retriever", "chat_text", "read_meta",
            "settings_fingerprint", "fingerprint", "file_sha256", "save_atomically")


def module_tree(path: Path) -> ast.Module:
    """The parsed source of one module."""
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def public_definitions(module: str) -> dict[str, str]:
    """Each public top-level function and class of a ragutils module, and its docstring ("" if none)."""
    tree = module_tree(PACKAGE / f"{module}.py")
    return {node.name: ast.get_docstring(node) or "" for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and not node.name.startswith("_")}


def definitions_of(name: str) -> list[str]:
    """Where `name` is defined in ragutils/ ("path:line"): a def or class at any depth, a module-level
    assignment, or an import under that alias."""
    places = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = module_tree(path)
        nodes = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                       ast.ClassDef)) and node.name == name]
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                nodes += [node for target in targets if isinstance(target, ast.Name) and target.id == name]
        nodes += [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                  and any(alias.asname == name for alias in node.names)]
        places += [f"{path.relative_to(ROOT)}:{node.lineno}" for node in nodes]
    return places


def notebook_headings(number: str) -> list[str]:
    """The markdown headings of course notebook `number` ("02")."""
    (path,) = sorted((ROOT / "notebooks").glob(f"{number}_*.ipynb"))
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [line for cell in cells if cell["cell_type"] == "markdown"
            for line in "".join(cell["source"]).splitlines() if line.startswith("#")]


def test_the_package_docstring_maps_every_module_and_the_tools_docstring_every_tool():
    import ragutils
    import ragutils.tools

    named = set(re.findall(r"``(\w+)``", ragutils.__doc__))
    assert set(CONCEPT_MODULES) | NOT_CONCEPTS | {"tools"} <= named, "add the missing modules to the map"
    tools = {path.stem for path in (PACKAGE / "tools").glob("*.py") if not path.stem.startswith("_")}
    assert tools <= set(re.findall(r"``(\w+)``", ragutils.tools.__doc__)), "add the missing modules to the list"


@pytest.mark.parametrize("name", ONE_HOME)
def test_each_shared_helper_has_one_home(name):
    places = definitions_of(name)
    assert len(places) <= 1, f"{name} is defined {len(places)} times: {', '.join(places)}"


@pytest.mark.parametrize("module", CONCEPT_MODULES)
def test_every_public_function_and_class_names_where_the_course_derives_it(module):
    missing = [name for name, doc in public_definitions(module).items() if not COURSE_PHRASE.search(doc)]
    assert not missing, (f"ragutils.{module}: no 'Derived in notebook NN[, section S].' or 'Used in notebook NN.' "
                         f"in the docstring of {', '.join(missing)}")


@pytest.mark.parametrize("module", CONCEPT_MODULES)
def test_the_notebooks_and_sections_the_docstrings_name_exist(module):
    numbers = {path.name[:2] for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    wrong = []
    for name, doc in public_definitions(module).items():
        for _, number, section in COURSE_PHRASE.findall(doc):
            if number not in numbers:
                wrong.append(f"{name}: no notebook {number}")
            elif section and not any(re.match(rf"#+ {re.escape(section)}[.\s]", heading)
                                     for heading in notebook_headings(number)):
                wrong.append(f"{name}: notebook {number} has no section {section}")
    assert not wrong, f"ragutils.{module}: " + "; ".join(wrong)
