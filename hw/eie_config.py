"""Configuration of the EIE sparse engine (PE, LNZD tree, cluster).

One :class:`EIEConfig` drives the PE (:mod:`nnloom.hw.eie_pe`), the LNZD tree
(:mod:`nnloom.hw.lnzd`), the cluster (:mod:`nnloom.hw.eie`), the memory image builder
(:mod:`nnloom.gen.compiler.eie_image`), the cycle model (:mod:`nnloom.gen.perf.eie`), the golden
model (:mod:`nnloom.sim.golden.eie`) and the testbench.

Number formats (integer semantics, the golden model does the same):

* activations and codebook weights are ``act_width``-bit two's complement
  with ``frac_bits`` fractional bits (Q(act_width - frac_bits).frac_bits);
* a product ``w * a`` is exact (``2 * act_width`` bits, ``2 * frac_bits``
  fractional bits) and is added into an ``acc_width``-bit accumulator that
  wraps modulo ``2**acc_width``;
* on write-out the accumulator is shifted right arithmetically by
  ``frac_bits`` (floor), saturated to ``act_width`` bits, then, if the layer
  asks for it, ReLU sets negatives to 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from .params import Config, ParamError, param

__all__ = ["EIEConfig", "bits_for", "TARGET_PTR", "TARGET_ENTRY", "TARGET_CODEBOOK", "TARGET_ACT",
           "ENTRIES_PER_ROW", "ENTRY_BITS", "CODEBOOK_ENTRIES"]

#: I/O-mode write targets (``io.target``).
TARGET_PTR, TARGET_ENTRY, TARGET_CODEBOOK, TARGET_ACT = 0, 1, 2, 3
ENTRIES_PER_ROW = 8      #: 8-bit entries per 64-bit sparse-matrix row
ENTRY_BITS = 8           #: 4-bit code + 4-bit relative index
CODEBOOK_ENTRIES = 16    #: 4-bit codes


def bits_for(n: int) -> int:
    """Bits of an unsigned number up to ``n`` (at least 1)."""
    return max(1, int(n).bit_length())


@dataclass(frozen=True)
class EIEConfig(Config):
    """Parameters of an EIE cluster; every derived figure is a property."""

    component = "eie"

    pes: int = param(4, lo=1, hi=64, help="processing elements (N)")
    queue_depth: int = param(8, lo=1, hi=64, help="activation queue entries per PE")
    act_width: int = param(16, lo=4, hi=16, help="activation and weight width in bits")
    frac_bits: int = param(8, lo=0, hi=15, help="fractional bits of activations and weights")
    acc_width: int = param(32, lo=8, hi=48, help="accumulator width (>= 2 * act_width), wraps")
    act_depth: int = param(16, lo=1, hi=1024, help="activations (and output rows) per PE")
    entry_rows: int = param(64, lo=1, hi=8192, help="64-bit sparse-matrix rows per PE")
    ptr_depth: int = param(32, lo=1, hi=4096, help="column pointers per bank (even, odd) per PE")
    codebooks: int = param(2, lo=1, hi=16, help="16-entry codebooks held (one per layer)")

    def validate(self):
        if self.frac_bits >= self.act_width:
            raise ParamError("frac_bits", self.frac_bits, f"0..{self.act_width - 1} (< act_width)")
        if self.acc_width < 2 * self.act_width:
            raise ParamError("acc_width", self.acc_width,
                             f"{2 * self.act_width}..48 (at least 2 * act_width)")

    # -- shapes -----------------------------------------------------------------
    @property
    def act_shape(self):
        return signed(self.act_width)

    @property
    def acc_shape(self):
        return signed(self.acc_width)

    @property
    def max_len(self) -> int:
        """Longest input or output vector: ``pes * act_depth``."""
        return self.pes * self.act_depth

    @property
    def len_width(self) -> int:
        return bits_for(self.max_len)

    @property
    def index_width(self) -> int:
        """Bits of a global activation index (0 .. max_len - 1)."""
        return bits_for(self.max_len - 1)

    @property
    def pointers(self) -> int:
        """Column pointers per PE (both banks)."""
        return 2 * self.ptr_depth

    @property
    def ptr_index_width(self) -> int:
        return bits_for(self.pointers - 1)

    @property
    def ptr_width(self) -> int:
        """Bits of a pointer: an entry position 0 .. entry_rows * 8."""
        return bits_for(self.entry_rows * ENTRIES_PER_ROW)

    @property
    def entries(self) -> int:
        """Entries per PE (8 per 64-bit row)."""
        return self.entry_rows * ENTRIES_PER_ROW

    @property
    def bcast_layout(self) -> data.StructLayout:
        """A broadcast activation: its value and global column index."""
        return data.StructLayout({"value": self.act_shape, "index": unsigned(self.index_width)})

    @property
    def io_layout(self) -> data.StructLayout:
        """An I/O-mode access: ``we`` 1 writes ``data`` to (``target``, ``pe``,
        ``addr``); ``we`` 0 reads activation ``addr`` of ``pe`` (source bank).
        Codebook writes go to every PE; ``addr`` = codebook * 16 + code."""
        return data.StructLayout({
            "target": unsigned(2), "pe": unsigned(bits_for(self.pes - 1)),
            "addr": unsigned(16), "data": unsigned(64), "we": 1,
        })

    @property
    def cmd_layout(self) -> data.StructLayout:
        """One layer: input/output length, pointer base, codebook, ReLU."""
        return data.StructLayout({
            "in_len": unsigned(self.len_width), "out_len": unsigned(self.len_width),
            "ptr_base": unsigned(self.ptr_index_width),
            "codebook": unsigned(bits_for(self.codebooks - 1)), "relu": 1,
        })

    # -- LNZD tree --------------------------------------------------------------
    @property
    def lnzd_levels(self) -> list[list[int]]:
        """Fan-in of every 4-input LNZD node, level by level from the leaves:
        inputs are grouped by 4 in order (the last group may be smaller)
        until one root remains.  ``pes == 6`` gives ``[[4, 2], [2]]``."""
        levels, width = [], self.pes
        while True:
            groups = [min(4, width - i) for i in range(0, width, 4)]
            levels.append(groups)
            width = len(groups)
            if width == 1:
                return levels

    @property
    def lnzd_depth(self) -> int:
        return len(self.lnzd_levels)

    # -- timing -----------------------------------------------------------------
    def local_len(self, length: int, pe: int) -> int:
        """Elements ``i < length`` with ``i % pes == pe``."""
        return max(0, math.ceil((length - pe) / self.pes))

    def writeout_cycles(self, out_len: int) -> int:
        """Write-out: one accumulator row per cycle in every PE
        (``ceil(out_len / pes)`` rows) plus one cycle for the last write."""
        return math.ceil(out_len / self.pes) + 1
