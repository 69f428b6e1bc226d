"""Integer GEMM with an accumulator's exact width, signedness and overflow.

``C = A @ W`` where ``A`` is M x K and ``W`` is K x N.  Each output starts at
zero and adds the products ``A[m, k] * W[k, n]`` in increasing k, applying
the overflow rule after every addition:

* ``"wrap"``: the result is the exact sum modulo ``2**acc_width`` (the order
  does not matter);
* ``"saturate"``: after each addition the value is clamped to the
  accumulator's range.

``k_chunk`` models an array that reduces K in chunks (the weight-stationary
systolic array reduces R rows at a time): each chunk is summed from zero with
the rule above, and the chunk sums are then added, in chunk order, with the
same rule.  For ``"wrap"`` this changes nothing.
"""

from __future__ import annotations

import numpy as np

from .intarith import acc_dtype, bounds, overflow

__all__ = ["gemm", "check_operands"]


def check_operands(x, width: int, signed: bool, name: str):
    lo, hi = bounds(width, signed)
    x = np.asarray(x)
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"{name} holds values outside {lo}..{hi} ({width}-bit, "
                         f"{'signed' if signed else 'unsigned'})")
    return x


def _sequential(a, w, acc_width, signed, mode, start=None):
    dtype = acc_dtype(acc_width)
    a = a.astype(dtype)
    w = w.astype(dtype)
    acc = np.zeros((a.shape[0], w.shape[1]), dtype=dtype) if start is None else start
    for k in range(a.shape[1]):
        acc = overflow(acc + a[:, k, None] * w[None, k, :], acc_width, signed, mode)
    return acc


def gemm(a, w, *, acc_width: int = 32, signed: bool = True, overflow_mode: str = "wrap",
         a_width: int | None = None, w_width: int | None = None, k_chunk: int | None = None):
    """Bit-exact integer GEMM (see the module docstring)."""
    a = np.asarray(a)
    w = np.asarray(w)
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
        raise ValueError(f"shapes {a.shape} and {w.shape} do not chain")
    if a_width is not None:
        check_operands(a, a_width, signed, "A")
    if w_width is not None:
        check_operands(w, w_width, signed, "W")
    dtype = acc_dtype(acc_width)
    if overflow_mode == "wrap":
        if dtype is object:
            exact = a.astype(object) @ w.astype(object)
        else:
            exact = a.astype(np.int64) @ w.astype(np.int64)
        return overflow(exact, acc_width, signed, "wrap")
    if k_chunk is None or k_chunk >= a.shape[1]:
        return _sequential(a, w, acc_width, signed, overflow_mode)
    total = np.zeros((a.shape[0], w.shape[1]), dtype=dtype)
    for k0 in range(0, a.shape[1], k_chunk):
        part = _sequential(a[:, k0:k0 + k_chunk], w[k0:k0 + k_chunk], acc_width, signed, overflow_mode)
        total = overflow(total + part, acc_width, signed, overflow_mode)
    return total
