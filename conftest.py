"""Shared pytest set-up for tests/ and for nbval's run of notebooks/."""

import os

import pytest

from ragutils.tools.course import KERNEL_ENV

# nbval's kernels inherit this environment: the same one `ragutils course` gives
# its kernels, so that fresh outputs match the committed ones.
os.environ.update(KERNEL_ENV)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by this marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put every notebook cell that nbval collects in the notebook tier (see tests/README.md)."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebook)
