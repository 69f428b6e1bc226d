"""Fixed-width integer arithmetic shared by the golden models.

Values are numpy integer arrays holding the mathematical value of each word
(two's complement words as negative numbers).  ``int64`` is used while every
intermediate fits; wider accumulators fall back to Python integers
(``dtype=object``), which are exact at any width.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bounds", "wrap", "saturate", "overflow", "acc_dtype", "to_unsigned", "from_unsigned"]


def bounds(width: int, signed: bool) -> tuple[int, int]:
    """Smallest and largest value of a ``width``-bit word."""
    if signed:
        return -(1 << (width - 1)), (1 << (width - 1)) - 1
    return 0, (1 << width) - 1


def acc_dtype(width: int):
    """numpy dtype that holds sums of ``width``-bit words exactly."""
    return np.int64 if width <= 60 else object


def wrap(x, width: int, signed: bool):
    """Reduce ``x`` modulo ``2**width`` into the word's range."""
    x = np.asarray(x)
    if width > 62 and x.dtype != object:
        x = x.astype(object)
    if x.dtype == object:
        mask = (1 << width) - 1
        f = np.vectorize(lambda v: ((int(v) & mask) - ((1 << width) if signed and (int(v) & mask) >> (width - 1) else 0)),
                         otypes=[object])
        return f(x)
    u = x & np.int64((1 << width) - 1)
    if signed:
        u = np.where(u >> (width - 1) != 0, u - (np.int64(1) << width), u)
    return u.astype(x.dtype)


def saturate(x, width: int, signed: bool):
    """Clamp ``x`` to the word's range."""
    lo, hi = bounds(width, signed)
    x = np.asarray(x)
    if x.dtype == object:
        return np.vectorize(lambda v: min(max(int(v), lo), hi), otypes=[object])(x)
    return np.clip(x, lo, hi)


def overflow(x, width: int, signed: bool, mode: str):
    """Apply an overflow rule: ``"wrap"`` or ``"saturate"``."""
    if mode == "wrap":
        return wrap(x, width, signed)
    if mode == "saturate":
        return saturate(x, width, signed)
    raise ValueError(f"overflow must be 'wrap' or 'saturate', not {mode!r}")


def to_unsigned(x, width: int):
    """Two's-complement bit pattern of each word, as a non-negative integer."""
    return np.asarray(x).astype(object) % (1 << width) if width > 62 else np.asarray(x, dtype=np.int64) & ((1 << width) - 1)


def from_unsigned(x, width: int, signed: bool):
    """Inverse of :func:`to_unsigned`."""
    return wrap(np.asarray(x, dtype=np.int64 if width <= 62 else object), width, signed)
