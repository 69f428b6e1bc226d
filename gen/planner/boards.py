"""Device budgets: what a board gives an accelerator.

A :class:`Budget` is the explicit form (DSPs, LUT4s, flip-flops, block-RAM
bits, clock, DRAM bandwidth); :data:`BOARDS` names the boards nnloom knows,
each tied to its amaranth-boards platform class.  Device figures are the
vendors' data sheets (Lattice iCE40 UltraPlus family data sheet FPGA-DS-02008;
ECP5 family data sheet FPGA-DS-02012, table 1.1); clocks are the boards'
oscillators.  The DRAM figure is the peak of the board's external memory in
bytes per accelerator cycle at that clock (see docs/planner.md):

* iCEBreaker: no DRAM; the 4-bit QSPI flash at the fabric clock, 0.5 B/cycle
  (treated as if it were a writable PSRAM on the same link: a simplification).
* ULX3S: 16-bit SDR SDRAM clocked with the fabric, 2 B/cycle.
* OrangeCrab: 16-bit DDR3 behind a 4:1 LiteDRAM PHY, 16 B/cycle at 48 MHz.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from nnloom.hw.errors import InputError

__all__ = ["Budget", "Board", "BOARDS", "DEFAULT_BOARD", "board", "BoardError"]


class BoardError(InputError):
    """Unknown board name or a bad explicit budget (names the field)."""


@dataclass(frozen=True)
class Budget:
    """Resources an accelerator may use.

    ``family``: ``"ecp5"`` or ``"ice40"`` (selects the resource coefficients
    in :mod:`nnloom.gen.perf.resources`); ``dsps``: hard multipliers (MULT18X18D /
    SB_MAC16); ``luts``: LUT4s; ``ffs``: flip-flops; ``bram_bits``: on-chip
    RAM bits (EBR and SPRAM); ``bram_block_bits``: allocation granule of one
    block (every buffer rounds up to whole blocks); ``clock_mhz``;
    ``dram_bytes_per_cycle``: external memory bandwidth (> 0);
    ``lut_multipliers``: may the planner place PE multipliers beyond
    ``dsps`` in LUTs (Booth multipliers; the build caps DSP inference on
    both families).  The ECP5 boards leave it off: their DSPs already give
    the arrays that meet timing best, and a larger array of LUT multipliers
    costs fmax the planner does not model; ``--budget lut_multipliers=true``
    lets it plan them (``nnloom fpga build --size P`` builds them regardless).
    """

    dsps: int
    luts: int
    ffs: int
    bram_bits: int
    clock_mhz: float
    dram_bytes_per_cycle: float
    family: str = "ecp5"
    bram_block_bits: int = 1
    lut_multipliers: bool = True

    HARD = ("dsps", "luts", "ffs", "bram_bits")

    def __post_init__(self):
        for name in self.HARD + ("bram_block_bits",):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise BoardError(f"budget: {name}: expected an integer >= 0, got {v!r}")
        if self.bram_block_bits < 1:
            raise BoardError(f"budget: bram_block_bits: expected >= 1, got {self.bram_block_bits}")
        for name in ("clock_mhz", "dram_bytes_per_cycle"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise BoardError(f"budget: {name}: expected a number > 0, got {v!r}")
        if not isinstance(self.lut_multipliers, bool):
            raise BoardError(f"budget: lut_multipliers: expected true | false, got {self.lut_multipliers!r}")
        if self.family not in ("ecp5", "ice40"):
            raise BoardError(f"budget: family: expected ecp5 | ice40, got {self.family!r}")

    def replace(self, **changes) -> "Budget":
        return dataclasses.replace(self, **changes)

    def covers(self, usage: dict[str, int]) -> bool:
        """Every hard resource in ``usage`` is within this budget."""
        return all(usage[k] <= getattr(self, k) for k in self.HARD)

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def describe(self) -> str:
        return (f"{self.dsps} DSPs, {self.luts} LUT4, {self.ffs} FFs, "
                f"{self.bram_bits} BRAM bits, {self.clock_mhz:g} MHz, "
                f"{self.dram_bytes_per_cycle:g} B/cycle DRAM")


@dataclass(frozen=True)
class Board:
    name: str
    platform: str       # "module.Class" in amaranth_boards
    device: str
    budget: Budget

    def platform_class(self):
        """The amaranth-boards platform class (needs the ``boards`` extra)."""
        module, cls = self.platform.rsplit(".", 1)
        return getattr(importlib.import_module(f"amaranth_boards.{module}"), cls)


_EBR18, _EBR4, _SPRAM = 18 * 1024, 4 * 1024, 256 * 1024

BOARDS: dict[str, Board] = {b.name: b for b in [
    Board("icebreaker", "icebreaker.ICEBreakerPlatform", "iCE40UP5K",
          Budget(dsps=8, luts=5280, ffs=5280, bram_bits=30 * _EBR4 + 4 * _SPRAM, clock_mhz=12.0,
                 dram_bytes_per_cycle=0.5, family="ice40", bram_block_bits=_EBR4)),
    Board("ulx3s-85f", "ulx3s.ULX3S_85F_Platform", "LFE5U-85F",
          Budget(dsps=156, luts=83640, ffs=83640, bram_bits=208 * _EBR18, clock_mhz=25.0,
                 dram_bytes_per_cycle=2.0, family="ecp5", bram_block_bits=_EBR18,
                 lut_multipliers=False)),
    Board("ulx3s-45f", "ulx3s.ULX3S_45F_Platform", "LFE5U-45F",
          Budget(dsps=72, luts=43848, ffs=43848, bram_bits=108 * _EBR18, clock_mhz=25.0,
                 dram_bytes_per_cycle=2.0, family="ecp5", bram_block_bits=_EBR18,
                 lut_multipliers=False)),
    Board("orangecrab-25f", "orangecrab_r0_2.OrangeCrabR0_2_25FPlatform", "LFE5U-25F",
          Budget(dsps=28, luts=24288, ffs=24288, bram_bits=56 * _EBR18, clock_mhz=48.0,
                 dram_bytes_per_cycle=16.0, family="ecp5", bram_block_bits=_EBR18,
                 lut_multipliers=False)),
]}


#: The board ``nnloom plan`` plans for when none is named: the largest of
#: the boards above (156 DSPs), so the plan shows what the network can use.
DEFAULT_BOARD = "ulx3s-85f"


def board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise BoardError(f"--board: expected one of {', '.join(BOARDS)}, got {name!r}") from None
