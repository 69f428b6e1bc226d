"""Integer 2-D convolution (NCHW) with an accumulator's exact width and overflow.

``y = conv2d(x, w)`` with ``x`` of shape (N, C, H, W) or (C, H, W) and ``w``
of shape (M, C, R, S).  The input is zero-padded by ``padding`` on every
side; output ``(n, m, e, f)`` is

    sum over c < C, r < R, s < S of  w[m, c, r, s] * xp[n, c, stride*e + r, stride*f + s]

with E = (H + 2*padding - R) // stride + 1 and F likewise for the width.
Operands are integers (two's complement when ``signed``); products are
exact.  The accumulator is ``acc_width`` bits:

* ``overflow_mode="wrap"``: the result is the exact sum reduced modulo
  ``2**acc_width`` into the accumulator's range.  Wrapping commutes with
  addition, so the order of the additions does not matter; every engine that
  wraps (the Eyeriss PE array among them) gives these words.
* ``overflow_mode="saturate"``: the sum is built in the order c, r, s
  (innermost s) and clamped to the accumulator's range after every addition.

Values are ``int64`` while ``acc_width <= 60`` and Python integers above.
"""

from __future__ import annotations

import numpy as np

from .gemm import check_operands
from .intarith import acc_dtype, overflow

__all__ = ["conv2d", "conv_output_size", "pad_input"]


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution along one axis (0 if the kernel does not fit)."""
    span = size + 2 * padding - kernel
    return span // stride + 1 if span >= 0 else 0


def pad_input(x, padding: int):
    """Zero-pad the last two axes of ``x`` by ``padding`` on every side."""
    x = np.asarray(x)
    if padding == 0:
        return x
    widths = [(0, 0)] * (x.ndim - 2) + [(padding, padding)] * 2
    return np.pad(x, widths)


def conv2d(x, w, *, stride: int = 1, padding: int = 0, acc_width: int = 32,
           signed: bool = True, overflow_mode: str = "wrap",
           x_width: int | None = None, w_width: int | None = None):
    """Bit-exact integer convolution (see the module docstring).

    ``x_width`` / ``w_width``, when given, check that the operands fit their
    words.  Returns (N, M, E, F), or (M, E, F) for a 3-D ``x``.
    """
    x = np.asarray(x)
    w = np.asarray(w)
    squeeze = x.ndim == 3
    if squeeze:
        x = x[None]
    if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[1]:
        raise ValueError(f"shapes {x.shape} (N, C, H, W) and {w.shape} (M, C, R, S) do not match")
    if stride < 1 or padding < 0:
        raise ValueError(f"stride must be >= 1 and padding >= 0, got {stride} and {padding}")
    if x_width is not None:
        check_operands(x, x_width, signed, "x")
    if w_width is not None:
        check_operands(w, w_width, signed, "w")
    n, c, h, wd = x.shape
    m, _, r, s = w.shape
    e, f = conv_output_size(h, r, stride, padding), conv_output_size(wd, s, stride, padding)
    if e == 0 or f == 0:
        raise ValueError(f"filter {r}x{s} is larger than the padded input "
                         f"{h + 2 * padding}x{wd + 2 * padding}")
    dtype = acc_dtype(acc_width)
    xp = pad_input(x, padding).astype(dtype)
    wt = w.astype(dtype)
    out = np.zeros((n, m, e, f), dtype=dtype)
    # Window view: (N, C, E, F, R, S) of the padded input.
    win = np.empty((n, c, e, f, r, s), dtype=dtype)
    for i in range(r):
        for j in range(s):
            win[..., i, j] = xp[:, :, i:i + stride * (e - 1) + 1:stride, j:j + stride * (f - 1) + 1:stride]
    if overflow_mode == "wrap":
        if dtype is object:
            out = np.einsum("ncefrs,mcrs->nmef", win, wt)
        else:
            out = np.tensordot(win, wt, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
        out = overflow(out, acc_width, signed, "wrap")
    else:
        for ci in range(c):
            for i in range(r):
                for j in range(s):
                    prod = win[:, None, ci, :, :, i, j] * wt[None, :, ci, i, j, None, None]
                    out = overflow(out + prod, acc_width, signed, overflow_mode)
    return out[0] if squeeze else out
