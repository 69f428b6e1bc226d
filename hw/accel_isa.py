"""The accelerator's instruction set.

Every instruction is 512 bits (sixteen little-endian 32-bit words in DRAM) laid
out as :data:`INSTRUCTION`; fields an opcode does not use are zero.  The
compiler (:mod:`nnloom.gen.compiler.compile`) packs instructions with this layout and the
controller decodes them with it, so the encoding is written down once.

=====  ===========  ========================================================
code   name         effect
=====  ===========  ========================================================
0x00   END          stop; raise ``done`` (and the interrupt if enabled)
0x01   LOAD_ACT     DRAM ``dram_addr`` -> activation bank ``bank_in`` at
                    ``in_base``, ``words`` buffer words (blocking)
0x02   STORE_ACT    activation bank ``bank_in`` at ``in_base`` -> DRAM
                    ``dram_addr``, ``words`` buffer words (blocking: waits
                    until DRAM acknowledged every write)
0x03   LOAD_BLOCK   DRAM ``dram_addr`` -> weight bank ``wbank`` at word
                    ``w_off`` (``words`` words of P bytes), then DRAM
                    ``p_dram_addr`` -> parameter bank ``wbank`` at group
                    ``p_off`` (``p_words`` entries of bias, multiplier,
                    shift).  Non-blocking: runs in the background once the
                    bank is free (``resident``: at once); the bank becomes
                    *full* when done
0x04   CONV         one output-channel group of a convolution over a tile
                    of ``e`` output rows (a fully connected layer is a
                    convolution over a 1 x 1 or H x W map, or a 1 x 1 one
                    over a 1 x B map of B samples); waits until ``wbank`` is
                    full (``resident``: no wait); ``release`` frees it at the
                    end; ``dep``: starts once every earlier instruction has
                    finished; ``pk``: fused pk x pk max pooling
0x05   MAXPOOL      lane-wise int8 maximum over ``kr`` x ``kr`` windows (waits
                    for every earlier instruction)
=====  ===========  ========================================================

Any other opcode, or a DRAM address that is not a multiple of the bus width
in bytes, sets the error status and stops the controller.
"""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

__all__ = ["Op", "INSTRUCTION", "INSTRUCTION_BITS", "INSTRUCTION_WORDS", "PARAM_ENTRY"]


class Op:
    END = 0x00
    LOAD_ACT = 0x01
    STORE_ACT = 0x02
    LOAD_BLOCK = 0x03
    CONV = 0x04
    MAXPOOL = 0x05
    NAMES = {0: "END", 1: "LOAD_ACT", 2: "STORE_ACT", 3: "LOAD_BLOCK", 4: "CONV", 5: "MAXPOOL"}


INSTRUCTION = data.StructLayout({
    "op": unsigned(8),
    "layer": unsigned(8),        # layer number, selects the per-layer cycle counter
    "bank_in": unsigned(1),      # activation bank read (CONV, MAXPOOL, STORE_ACT, LOAD_ACT)
    "bank_out": unsigned(1),     # activation bank written (CONV, MAXPOOL)
    "wbank": unsigned(1),        # weight/parameter bank (LOAD_BLOCK, CONV)
    "release": unsigned(1),      # CONV: free wbank when done
    "dep": unsigned(1),          # CONV / MAXPOOL: wait until every earlier one has finished
    "resident": unsigned(1),     # LOAD_BLOCK: no bank wait (weights stay on chip);
                                 # CONV: its weight bank is resident (no wait, no release)
    "_flags": unsigned(2),
    "stride": unsigned(4),
    "pad": unsigned(4),
    "kr": unsigned(4),           # kernel rows (CONV, MAXPOOL window)
    "ks": unsigned(4),           # kernel columns
    "h": unsigned(8),            # input height, width, channel groups (words per pixel)
    "w": unsigned(8),
    "cg": unsigned(8),
    "e": unsigned(8),            # output height and width
    "f": unsigned(8),
    "ng": unsigned(8),           # output channel groups (words per output pixel)
    "ngi": unsigned(8),          # this instruction's output group
    "out_zp": signed(8),
    "qmin": signed(8),
    "qmax": signed(8),
    "in_base": unsigned(16),     # activation word addresses
    "out_base": unsigned(16),
    "w_off": unsigned(16),       # weight-bank word offset of this group's K tiles
    "p_off": unsigned(16),       # parameter-bank entry offset of this group's P channels
    "words": unsigned(16),       # DMA length in buffer words
    "p_words": unsigned(16),     # LOAD_BLOCK: parameter entries
    "dram_addr": unsigned(32),   # byte address
    "p_dram_addr": unsigned(32),
    # Address steps of the input feature map, precomputed by the compiler
    # (word addresses; CG = words per pixel, W = input width):
    "a_col": unsigned(16),       # stride * CG        (next output column)
    "a_row": unsigned(16),       # stride * W * CG    (next output row)
    "a_line": unsigned(16),      # W * CG             (next kernel row)
    "a_start": signed(24),       # in_base - pad * (W * CG + CG)  (kernel origin of pixel 0)
    # CONV loop bounds, precomputed by the compiler (no multipliers in the core):
    "kt": unsigned(16),          # weight tiles KR * KS * CG
    "pixels": unsigned(16),      # output pixels E * F
    "w_words": unsigned(16),     # weight words KT * P
    # Output-pixel tiles and fused max pooling (CONV):
    "ih0": signed(12),           # input row of the tile's first output row: e0 * stride - pad
    "pk": unsigned(4),           # fused max pooling: pk x pk windows, stride pk (1: none)
    "pks": unsigned(8),          # pk * stride
    "a_pcol": unsigned(16),      # pk * a_col         (next pooled column)
    "a_prow": unsigned(16),      # pk * a_row         (next pooled row)
})

INSTRUCTION_BITS = 512
INSTRUCTION_WORDS = INSTRUCTION_BITS // 32
assert INSTRUCTION.size <= INSTRUCTION_BITS, INSTRUCTION.size

#: One parameter-bank entry: four 32-bit DRAM words (16 bytes) per output channel.
PARAM_ENTRY = data.StructLayout({
    "bias": signed(32),
    "mult": unsigned(32),        # < 2**31
    "shift": unsigned(32),       # 1..62
    "_pad": unsigned(32),
})
