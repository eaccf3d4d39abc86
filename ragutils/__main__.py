"""``python -m ragutils``: the same command line as the ``ragutils`` script."""

import sys

from .cli import main

sys.exit(main())
