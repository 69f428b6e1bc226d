"""The quantized network: the contract between the quantizer, the golden
model, the compiler and the hardware.

Integer semantics (every part implements exactly these words):

* Activations are int8 (``-128..127``) with a per-tensor ``scale`` and
  ``zero_point``: ``real = scale * (q - zero_point)``.  nnloom's own
  quantizer makes them symmetric (zero point 0); imported ONNX models may
  carry other zero points.
* Weights are int8 in ``-127..127``, symmetric, one scale per output channel
  (``w_scale[c]``), zero point 0.
* Biases are int32 in the accumulator's scale ``in_scale * w_scale[c]``.
* Conv and fc accumulate ``acc = bias[c] + sum((x - in_zp) * w)`` in a 32-bit
  two's-complement accumulator that wraps (the quantizer keeps real layers
  far from it).  Padding pixels hold ``in_zp`` (a real zero).
* Requantization, per output channel ``c``::

      y = clamp(out_zp + ((acc * mult[c] + 2**(shift[c] - 1)) >> shift[c]), qmin, qmax)

  with ``0 <= mult < 2**31``, ``1 <= shift <= 62``, ``>>`` an arithmetic
  shift: rounding is half up (toward +infinity).  A fused ReLU raises
  ``qmin`` to ``out_zp``.
* Max pooling takes the int8 maximum (scale and zero point pass through).
  Average pooling sums ``x - in_zp`` over the window and requantizes with
  ``mult/2**shift ~ in_scale / (out_scale * k * k)``.
* Flatten reorders nothing: (C, H, W) row-major.

Per-layer Qm.n formats (Minerva, DNN Weaver) are the special case of
power-of-two scales: ``mult = 2**30`` and a shift that aligns the binary
points; :func:`multiplier_from_real` returns exactly that for powers of two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from nnloom.hw.errors import InputError

__all__ = ["QLayer", "QuantizedNetwork", "multiplier_from_real", "INT8", "ACC_WIDTH"]

INT8 = (-128, 127)
ACC_WIDTH = 32


def multiplier_from_real(real: float) -> tuple[int, int]:
    """(mult, shift) with ``mult / 2**shift`` closest to ``real`` and ``mult``
    in ``[2**30, 2**31)`` (31 significant bits), ``1 <= shift <= 62``.

    ``real`` must be positive and below 2**29; values too small for the shift
    range return ``(0, 1)`` (the layer outputs its zero point).
    """
    if not real > 0 or not math.isfinite(real):
        raise InputError(f"requantization scale must be a positive number, not {real}")
    if real >= 2 ** 29:
        raise InputError(f"requantization scale {real} too large (max 2**29)")
    mant, exp = math.frexp(real)          # real = mant * 2**exp, 0.5 <= mant < 1
    mult = round(mant * (1 << 31))
    shift = 31 - exp
    if mult == 1 << 31:                   # rounding carried into the next power
        mult //= 2
        shift -= 1
    if shift > 62:
        return 0, 1
    while shift < 1:                      # keep at least one fractional bit
        mult //= 2
        shift += 1
    return int(mult), int(shift)


@dataclass
class QLayer:
    """One quantized layer (see the module docstring for the arithmetic).

    ``kind`` is ``conv``, ``fc``, ``maxpool``, ``avgpool``, ``relu`` or
    ``flatten``; shapes are per sample ((C, H, W) or (F,)).
    """

    name: str
    kind: str
    in_shape: tuple
    out_shape: tuple
    in_scale: float
    in_zp: int
    out_scale: float
    out_zp: int
    weight: np.ndarray | None = None      # int8: conv [M, C, R, S], fc [out, in]
    bias: np.ndarray | None = None        # int32 [M]
    w_scale: np.ndarray | None = None     # float [M]
    mult: np.ndarray | None = None        # int64 [M] (or [1] for avgpool)
    shift: np.ndarray | None = None       # int64 [M]
    qmin: int = INT8[0]
    qmax: int = INT8[1]
    relu: bool = False                    # fused: qmin raised to out_zp
    kernel: tuple = (1, 1)
    stride: int = 1
    padding: int = 0

    @property
    def has_weights(self) -> bool:
        return self.weight is not None


@dataclass
class QuantizedNetwork:
    """Quantized layers plus the input's quantization.

    ``fmt`` is ``"int8"`` (per-channel int8, calibrated scales) or ``"qmn"``
    (per-layer power-of-two formats); ``formats`` records each layer's Qm.n
    for the latter.
    """

    name: str
    input_shape: tuple
    input_scale: float
    input_zp: int
    layers: list
    fmt: str = "int8"
    formats: dict = field(default_factory=dict)

    @property
    def output_scale(self) -> float:
        return self.layers[-1].out_scale if self.layers else self.input_scale

    @property
    def output_zp(self) -> int:
        return self.layers[-1].out_zp if self.layers else self.input_zp

    def quantize_input(self, x) -> np.ndarray:
        """Float input -> int8, round half to even, saturating."""
        q = np.rint(np.asarray(x, dtype=np.float64) / self.input_scale) + self.input_zp
        return np.clip(q, *INT8).astype(np.int64).reshape(self.input_shape)

    def dequantize_output(self, y) -> np.ndarray:
        return (np.asarray(y, dtype=np.float64) - self.output_zp) * self.output_scale
