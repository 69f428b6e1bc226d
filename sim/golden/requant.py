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


# -- TFLite's fixed-point rules (tensorflow/lite/kernels/internal/common.h) ------
#
# int32 words held in int64 numpy arrays; every intermediate fits int64.
# LiteRT (TFLite 2.x, as built for ai-edge-litert) compiles with
# TFLITE_SINGLE_ROUNDING: one rounding, half up.  The older gemmlowp form
# (TFLite Micro's default) rounds twice, half away from zero.

_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1


def _wrap32(x):
    x = np.asarray(x, np.int64)
    return ((x + (1 << 31)) & ((1 << 32) - 1)) - (1 << 31)


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul``: ``(2 a b) / 2**32`` with
    nudge ``2**30`` (or ``1 - 2**30`` for a negative product) and C division,
    which truncates toward zero: together ``floor(a b / 2**31 + 1/2)``, ties
    up for either sign; ``a == b == INT32_MIN`` saturates to ``INT32_MAX``."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    v = ab + nudge
    q = np.where(v >= 0, v >> 31, -((-v) >> 31))
    return np.where((a == _I32_MIN) & (b == _I32_MIN), np.int64(_I32_MAX), q)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2**exponent`` rounded half away from zero."""
    x = np.asarray(x, np.int64)
    exponent = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, mult, shift, double: bool = False) -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier(x, mult, shift)`` on int32 ``x``.

    Single rounding (LiteRT, ``TFLITE_SINGLE_ROUNDING``):
    ``(x * mult + 2**(30 - shift)) >> (31 - shift)``, half up, the result
    cast to int32.  ``double=True``: gemmlowp's
    ``RoundingDivideByPOT(SRDHM(x * 2**max(shift, 0), mult), max(-shift, 0))``
    (the left shift an int32 multiplication that wraps)."""
    x = np.asarray(x, np.int64)
    shift = np.asarray(shift, np.int64)
    if not double:
        total = 31 - shift
        return _wrap32((x * np.asarray(mult, np.int64) + (np.int64(1) << (total - 1))) >> total)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    x = _wrap32(x << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, mult), right)


def requantize_tflite(acc, mult, shift, zero_point: int, qmin: int, qmax: int,
                      double: bool = False) -> np.ndarray:
    """``clamp(zero_point + MultiplyByQuantizedMultiplier(acc, mult, shift), qmin, qmax)``;
    ``mult`` and ``shift`` broadcast against ``acc``."""
    y = multiply_by_quantized_multiplier(acc, mult, shift, double) + zero_point
    return np.clip(y, qmin, qmax).astype(np.int64)


__all__ += ["saturating_rounding_doubling_high_mul", "rounding_divide_by_pot",
            "multiply_by_quantized_multiplier", "requantize_tflite"]
