"""Will the board top fit?  The estimate before synthesis.

The fit model lives in :mod:`nnloom.gen.planner.fit`, where the planner
plans with it (so ``nnloom plan --board``, ``nnloom generate --board`` and
``nnloom fpga build`` agree on what fits); this module is its name in the
FPGA flow.  See that module for the calibration.
"""

from nnloom.gen.planner.fit import (ICE40_CELLS_PER_FF, OVERHEAD, REQUANT_DSPS, FitError,
                                    requant_dsps,
                                    available, block_bits, board_estimate, board_fits, board_ram_blocks,
                                    as_built, check_fit, largest_fit, lut_multipliers, memory_blocks,
                                    minimum_budget)

__all__ = ["FitError", "board_estimate", "check_fit", "memory_blocks", "available",
           "board_ram_blocks", "largest_fit", "board_fits", "block_bits", "lut_multipliers", "as_built",
           "minimum_budget",
           "OVERHEAD", "REQUANT_DSPS", "requant_dsps", "ICE40_CELLS_PER_FF"]
