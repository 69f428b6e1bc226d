"""Verilog output: deterministic bytes for a component."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from amaranth.back import verilog

__all__ = ["to_verilog", "write_atomic"]


def to_verilog(component, name: str = "top") -> str:
    """Verilog text of ``component`` with top module ``name``.

    Source-location attributes are left out: they hold absolute paths of the
    installation, and without them the same inputs give the same bytes on
    every machine.
    """
    return verilog.convert(component, name=name, emit_src=False)


def write_atomic(path: str | os.PathLike, text: str | bytes) -> None:
    """Write ``text`` to ``path`` whole or not at all (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(text, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
