"""Shared pytest set-up for tests/ and for nbval's run of notebooks/."""

import os

from ragutils.course import KERNEL_ENV

# nbval's kernels inherit this environment: the same one `ragutils course` gives
# its kernels, so that fresh outputs match the committed ones.
os.environ.update(KERNEL_ENV)
