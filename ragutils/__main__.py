"""``python -m ragutils``: the same command line as the ``ragutils`` script."""

from .tools.cli import entry

entry()
