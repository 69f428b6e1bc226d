"""The example networks that ship with nnloom, with their trained weights.

They are package data, read with :mod:`importlib.resources`, so they are
there after a plain ``pip install`` as well as in a source checkout:
``path("digits_mlp")`` is the TOML file of ``examples/digits_mlp.toml``.
"""

from __future__ import annotations

import atexit
import contextlib
from importlib import resources
from pathlib import Path

__all__ = ["names", "path", "read_text"]

_files = resources.files(__name__)
_stack = contextlib.ExitStack()
atexit.register(_stack.close)


def names() -> list[str]:
    """The example networks (TOML stems), sorted."""
    return sorted(p.name[:-5] for p in _files.iterdir() if p.name.endswith(".toml"))


def path(name: str) -> Path:
    """A filesystem path to an example file: ``name`` is a TOML stem
    (``"digits_mlp"``) or a file name with its extension.  Raises
    :class:`FileNotFoundError` naming the examples there are."""
    fname = name if "." in name else f"{name}.toml"
    res = _files / fname
    if not res.is_file():
        raise FileNotFoundError(f"no example {name!r}; examples: {', '.join(names())}")
    if isinstance(res, Path):
        return res
    # a zipped install: extract the whole folder once, so weights files sit beside the TOML
    return _stack.enter_context(resources.as_file(_files)) / fname


def read_text(name: str) -> str:
    return path(name).read_text()
