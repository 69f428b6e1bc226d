"""``python -m nnloom.gen.cli``: the ``nnloom`` command."""

import sys

from nnloom.gen.cli import main

sys.exit(main())
