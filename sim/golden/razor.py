"""Razor masking rules and the fault injector, bit for bit as in hw.razor_sram.

Words are ``width``-bit two's-complement bit patterns (non-negative ints,
``0 .. 2**width - 1``); flags are ``width``-bit vectors, bit ``c`` flags
column ``c`` (flag-to-column mapping is the identity: one Razor detector per
bit line, and a word lives in one row, so no banking remap).

Masking (:func:`mask`), applied to the word *as read* with its flags:

* ``"none"``: the word unchanged;
* ``"word"``: any flag set -> the word reads as 0;
* ``"bit"``: every flagged column takes the value of the sign column
  (``width - 1``).  Policy for a flagged sign column: there is nothing
  trustworthy to copy, so the whole word reads as 0 (as word masking).  With
  this policy bit masking never increases ``|value|`` of the read word.

``masked_bits`` (the hardware counter) counts the bits the mask *forces*,
whatever their value: 0 for ``"none"``; ``width`` for a flagged word under
``"word"``, or under ``"bit"`` when the sign column is flagged; otherwise the
number of flags.

Fault injector (:class:`Injector`): every column ``c`` has its own Galois LFSR
of ``k = rate_bits`` bits (taps :data:`TAPS`, maximal length), seeded by
:func:`column_seed`.  A draw advances every column's LFSR by ``k`` steps and
raises flag ``c`` when the new state ``s`` satisfies ``s <= rate``; as
``s`` is uniform over ``1 .. 2**k - 1``, the flag probability is
``rate / (2**k - 1)``.  A flagged bit is inverted in the read data (the
fault) and flagged (Razor detects every faulty bit).  In ``"transient"`` mode
one draw happens per read; in ``"persistent"`` mode one draw per write, kept
in a fault map beside the word (a stuck-at-the-wrong-value cell, re-drawn
when the word is rewritten), and every read of the word sees it.  Draws only
happen while injection is enabled.
"""

from __future__ import annotations

import numpy as np

from nnloom.hw.razor_sram import LFSR_TAPS, RazorSramConfig

__all__ = ["MODES", "TAPS", "mask", "masked_bits", "to_signed", "column_seed", "Injector",
           "rate_code", "flip_faults"]

MODES = ("none", "word", "bit")

#: Galois LFSR taps, from the hardware's config module (one table).
TAPS = LFSR_TAPS


def to_signed(words, width: int):
    """Bit patterns to two's-complement values."""
    w = np.asarray(words, dtype=np.int64)
    return np.where(w >> (width - 1) & 1, w - (1 << width), w)


def _popcount(x, width):
    x = np.asarray(x, dtype=np.int64)
    return sum(((x >> c) & 1) for c in range(width))


def mask(words, flags, width: int, mode: str):
    """Masked bit patterns of ``words`` read with ``flags`` (see module doc)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    w = np.asarray(words, dtype=np.int64)
    f = np.asarray(flags, dtype=np.int64)
    if mode == "none":
        return w.copy()
    if mode == "word":
        return np.where(f != 0, 0, w)
    full = (1 << width) - 1
    sign_col = (w >> (width - 1)) & 1
    sign_flagged = (f >> (width - 1)) & 1
    fill = np.where(sign_col == 1, full, 0)
    out = (w & ~f & full) | (fill & f)
    return np.where(sign_flagged == 1, 0, out)


def masked_bits(flags, width: int, mode: str):
    """Bits forced by the mask for each read (the ``masked_bits`` counter's step)."""
    f = np.asarray(flags, dtype=np.int64)
    if mode == "none":
        return np.zeros_like(f)
    if mode == "word":
        return np.where(f != 0, width, 0)
    return np.where((f >> (width - 1)) & 1, width, _popcount(f, width))


def column_seed(cfg: RazorSramConfig, column: int) -> int:
    """Initial LFSR state of ``column`` (never zero): :meth:`RazorSramConfig.lfsr_seed`."""
    return cfg.lfsr_seed(column)


def rate_code(p: float, k: int) -> int:
    """``rate`` input closest to per-bit probability ``p`` (``p = rate / (2**k - 1)``)."""
    return int(min(max(round(p * ((1 << k) - 1)), 0), (1 << k) - 1))


class Injector:
    """The built-in LFSR injector of one Razor SRAM (see module doc)."""

    def __init__(self, cfg: RazorSramConfig):
        self.width, self.k, self.taps = cfg.width, cfg.rate_bits, TAPS[cfg.rate_bits]
        self.state = [column_seed(cfg, c) for c in range(cfg.width)]

    def _step(self, s: int) -> int:
        return (s >> 1) ^ (self.taps if s & 1 else 0)

    def draw(self, rate: int) -> int:
        """Advance every column by ``k`` single steps (one at a time, unlike the
        hardware's precomputed matrix); the flag vector of this draw."""
        flags = 0
        for c in range(self.width):
            s = self.state[c]
            for _ in range(self.k):
                s = self._step(s)
            self.state[c] = s
            flags |= int(s <= rate) << c
        return flags


def flip_faults(words, width: int, p: float, rng: np.random.Generator):
    """Random independent bit faults at probability ``p`` per bit (the study's
    model): returns ``(faulty_words, flags)`` with flags = flipped bits."""
    w = np.asarray(words, dtype=np.int64)
    bits = rng.random(w.shape + (width,)) < p
    flags = (bits.astype(np.int64) << np.arange(width, dtype=np.int64)).sum(axis=-1)
    return w ^ flags, flags
