"""SCALE-Sim topology files (timing only).

Two layouts, recognised by the header row:

* convolution rows (SCALE-Sim v1/v2 ``topologies/conv_nets``)::

      Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,

* GEMM rows (SCALE-Sim v2 ``topologies/GEMM``), ``A [M x K] @ B [K x N]``::

      Layer, M, N, K,

Rows are independent layers (each brings its own input shape), so the
network carries ``layer_inputs`` and cannot run.  A GEMM row becomes a
1 x 1 convolution over K channels of an M x 1 image with N filters, whose
``gemm_shape`` is exactly ``(M, K, N)``.  SCALE-Sim's convolutions have no
padding (the IFMAP sizes include it).
"""

from __future__ import annotations

import csv
from pathlib import Path

from nnloom.gen.frontend.network import Conv2d, Network, NetworkError

__all__ = ["load_scalesim", "CONV_COLUMNS", "GEMM_COLUMNS"]

CONV_COLUMNS = ("layer name", "ifmap height", "ifmap width", "filter height", "filter width",
                "channels", "num filter", "strides")
GEMM_COLUMNS = ("layer", "m", "n", "k")
_MAX = 1 << 20


def _rows(src, path):
    try:
        with open(path, newline="") as f:
            rows = [[c.strip() for c in row] for row in csv.reader(f)]
    except (OSError, UnicodeDecodeError) as e:
        raise NetworkError(src, "file", f"expected a readable CSV file, got {e.__class__.__name__}") from None
    # SCALE-Sim ends every row with a comma: drop the empty last cells and blank rows.
    out = []
    for row in rows:
        while row and row[-1] == "":
            row.pop()
        if row:
            out.append(row)
    return out


def _num(src, where, text):
    try:
        v = int(text)
    except ValueError:
        v = None
    if v is None or not 1 <= v <= _MAX:
        raise NetworkError(src, where, f"expected an integer 1..{_MAX}, got {text!r}")
    return v


def load_scalesim(path) -> Network:
    src = str(path)
    rows = _rows(src, path)
    if not rows:
        raise NetworkError(src, "header", "expected a SCALE-Sim header row, got an empty file")
    header = tuple(c.lower() for c in rows[0])
    if header == CONV_COLUMNS:
        kind = "conv"
    elif header == GEMM_COLUMNS:
        kind = "gemm"
    else:
        raise NetworkError(src, "header", f"expected '{', '.join(CONV_COLUMNS)}' or "
                           f"'{', '.join(GEMM_COLUMNS)}' (any case), got {', '.join(rows[0])!r}")
    if len(rows) == 1:
        raise NetworkError(src, "rows", "expected at least one layer row, got none")
    layers, inputs = [], []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise NetworkError(src, f"line {n}", f"expected {len(header)} columns, got {len(row)}")
        name = row[0].replace(" ", "_") or f"layer{n - 1}"
        v = [_num(src, f"line {n}: {header[i]}", t) for i, t in enumerate(row[1:], start=1)]
        if kind == "conv":
            h, w, r, s, c, m, stride = v
            layers.append(Conv2d(name, m, (r, s), stride=stride, padding=0, bias=False))
            inputs.append((c, h, w))
        else:
            m, n_, k = v
            layers.append(Conv2d(name, n_, (1, 1), bias=False))
            inputs.append((k, m, 1))
    return Network(Path(src).stem, inputs[0], layers, source=src, layer_inputs=inputs)
