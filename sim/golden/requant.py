"""Requantization, bit-exact (see :mod:`nnloom.gen.frontend.qtypes` for the contract).

``y = clamp(zp + ((acc * mult + 2**(shift - 1)) >> shift), qmin, qmax)``,
arithmetic shift, so rounding is half up.  ``mult`` and ``shift`` broadcast
against ``acc`` (per channel along axis 0 for conv outputs [M, E, F]).
"""

from __future__ import annotations

import numpy as np

__all__ = ["requantize"]


def requantize(acc, mult, shift, zero_point: int, qmin: int, qmax: int) -> np.ndarray:
    acc = np.asarray(acc, dtype=object)
    mult = np.asarray(mult, dtype=object)
    shift = np.asarray(shift, dtype=object)
    if acc.ndim == 3 and mult.ndim == 1:        # per-channel on [M, E, F]
        mult = mult[:, None, None]
        shift = shift[:, None, None]
    # Python ints: exact for any product width; >> on ints is arithmetic.
    rounded = (acc * mult + (1 << (shift - 1))) >> shift
    y = rounded + zero_point
    return np.clip(y, qmin, qmax).astype(np.int64)
