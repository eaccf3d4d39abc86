"""The repository's set-up files agree with each other."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
