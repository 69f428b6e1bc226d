"""The one base class of nnloom's bad-input errors.

Every error that a user's input can cause (a parameter out of range, a
malformed network file, an unsupported operator, a design that does not fit
a board) derives from :class:`InputError`.  Its message is one line that
names the file or parameter, the field, the allowed values and the value
given; the command line prints it as ``nnloom: <message>`` and exits with
status 2 (``nnloom.gen.cli.EXIT_CODES``).  It is a :class:`ValueError`, so
code that catches ``ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input from a user: a one-line message, exit status 2."""
