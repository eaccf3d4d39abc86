"""``python -m ragutils``: the same command line as the ``ragutils`` script."""

from .cli import entry

entry()
