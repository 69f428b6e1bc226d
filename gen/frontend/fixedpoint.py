"""Fixed-point Qm.n formats: quantization, saturation and conversion.

``QFormat(m, n)`` is a two's-complement word of ``m + n`` bits with ``m``
integer bits *including the sign* and ``n`` fractional bits (Minerva's
convention).  A real value ``x`` is stored as the integer code
``q = x * 2**n``; the codes range over ``-2**(m+n-1) .. 2**(m+n-1) - 1``, so
the format represents ``-2**(m-1) .. 2**(m-1) - 2**-n`` in steps of
``2**-n``.  Example: Minerva's weights Q2.6 are 8-bit codes for
``-2.0 .. 1.984375``; its activations Q2.4 are 6-bit codes for
``-2.0 .. 1.9375``.

Quantization (:meth:`QFormat.quantize`) is ``saturate(round(x * 2**n))``:

* rounding ``"half_even"`` (default; numpy's ``rint``: ties go to the even
  code), ``"half_away"`` (ties away from zero) or ``"floor"``;
* saturation: codes beyond the range clamp to the nearest end (never wrap).

:func:`requantize` moves integer codes between formats (a right shift with
the same rounding choices, then saturation); the hardware uses
``"half_up"`` there because it is an adder and a shift (on the non-negative
values after ReLU it equals ``"half_away"``).

Used by the Minerva lane (:mod:`nnloom.hw.minerva`), its golden model and the
fault study, and importable by any layer that needs per-layer Qm.n.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["QFormat", "ROUNDINGS", "requantize", "round_shift", "MINERVA_WEIGHT",
           "MINERVA_ACT", "MINERVA_PRODUCT"]

#: Rounding rules understood by :meth:`QFormat.quantize` and :func:`round_shift`.
ROUNDINGS = ("half_even", "half_away", "half_up", "floor")


def _round(x, rounding: str):
    x = np.asarray(x, dtype=np.float64)
    if rounding == "half_even":
        return np.rint(x)
    if rounding == "half_away":
        return np.sign(x) * np.floor(np.abs(x) + 0.5)
    if rounding == "half_up":
        return np.floor(x + 0.5)
    if rounding == "floor":
        return np.floor(x)
    raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, not {rounding!r}")


@dataclass(frozen=True)
class QFormat:
    """A signed Qm.n format: ``m`` integer bits (sign included), ``n`` fractional."""

    m: int
    n: int

    def __post_init__(self):
        for name, v in (("m", self.m), ("n", self.n)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise TypeError(f"{name} must be an integer, not {v!r}")
        if self.m < 1:
            raise ValueError(f"m (integer bits including sign) must be >= 1, got {self.m}")
        if self.n < 0:
            raise ValueError(f"n (fractional bits) must be >= 0, got {self.n}")
        if self.m + self.n > 62:
            raise ValueError(f"Q{self.m}.{self.n}: at most 62 bits, got {self.m + self.n}")

    @classmethod
    def parse(cls, text: str) -> "QFormat":
        """``"Q2.6"`` (or ``"2.6"``) to ``QFormat(2, 6)``."""
        match = re.fullmatch(r"[Qq]?(\d+)\.(\d+)", text.strip())
        if not match:
            raise ValueError(f"expected a format like Q2.6, got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"Q{self.m}.{self.n}"

    @property
    def width(self) -> int:
        """Word width in bits, ``m + n``."""
        return self.m + self.n

    @property
    def scale(self) -> float:
        """Value of one code step, ``2**-n``."""
        return 2.0 ** -self.n

    @property
    def code_min(self) -> int:
        return -(1 << (self.width - 1))

    @property
    def code_max(self) -> int:
        return (1 << (self.width - 1)) - 1

    @property
    def min(self) -> float:
        return self.code_min * self.scale

    @property
    def max(self) -> float:
        return self.code_max * self.scale

    def saturate(self, codes):
        """Clamp integer codes to this format's range."""
        return np.clip(np.asarray(codes, dtype=np.int64), self.code_min, self.code_max)

    def quantize(self, x, rounding: str = "half_even"):
        """Integer codes (``int64``) of the reals ``x``: round, then saturate."""
        return self.saturate(_round(np.asarray(x, dtype=np.float64) * (1 << self.n), rounding)
                             .astype(np.int64))

    def to_float(self, codes):
        """Real values of integer codes."""
        return np.asarray(codes, dtype=np.float64) * self.scale

    def round_trip(self, x, rounding: str = "half_even"):
        """``x`` as this format represents it (quantize, then back to reals)."""
        return self.to_float(self.quantize(x, rounding))

    def product(self, other: "QFormat") -> "QFormat":
        """Exact format of a product: ``Q(m1+m2).(n1+n2)``."""
        return QFormat(self.m + other.m, self.n + other.n)


def round_shift(codes, shift: int, rounding: str = "half_up"):
    """Integer ``codes / 2**shift`` rounded by ``rounding`` (exact integers).

    ``"half_up"`` is ``(c + 2**(shift-1)) >> shift``; ``"floor"`` is
    ``c >> shift``; ``"half_away"`` and ``"half_even"`` as in
    :meth:`QFormat.quantize`.  ``shift <= 0`` multiplies exactly.
    """
    c = np.asarray(codes, dtype=np.int64)
    if shift <= 0:
        return c << -shift
    if rounding == "floor":
        return c >> shift
    if rounding == "half_up":
        return (c + (1 << (shift - 1))) >> shift
    half = np.int64(1) << (shift - 1)
    q = c >> shift
    rem = c - (q << shift)          # 0 .. 2**shift - 1, always non-negative
    up = rem > half
    tie = rem == half
    if rounding == "half_away":
        up |= tie & (c >= 0)
    elif rounding == "half_even":
        up |= tie & ((q & 1) == 1)
    else:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, not {rounding!r}")
    return q + up


def requantize(codes, src: QFormat, dst: QFormat, rounding: str = "half_up"):
    """Codes of ``src`` converted to ``dst``: shift by ``src.n - dst.n`` with
    ``rounding``, then saturate to ``dst``."""
    return dst.saturate(round_shift(codes, src.n - dst.n, rounding))


#: Minerva's formats for MNIST (Reagen et al., ISCA 2016, section 6).
MINERVA_WEIGHT = QFormat(2, 6)
MINERVA_ACT = QFormat(2, 4)
MINERVA_PRODUCT = QFormat(2, 7)
