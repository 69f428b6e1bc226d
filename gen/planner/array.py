"""The performance model of one systolic array, for ``nnloom plan --array``.

:func:`fixed_plan` is not a plan of something ``nnloom generate`` builds: it
predicts every layer of a network on an R x C array of either dataflow
(:class:`nnloom.hw.systolic.SystolicConfig`) with buffers that hold
everything and ideal DRAM, so that every layer takes exactly its array
cycles (:meth:`SystolicConfig.gemm_cycles`, which the systolic RTL takes).
It takes any network the performance model reads, SCALE-Sim topologies and
timing-only networks included (docs/perf.md).  The accelerator's planner is
:func:`nnloom.gen.planner.plan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnloom.gen.perf import HOROWITZ_45NM, CostTable, estimate
from nnloom.gen.perf.model import LayerPerf, Memory, ideal_buffers, layer_steps, network_perf
from nnloom.gen.planner.boards import Budget
from nnloom.hw.systolic import SystolicConfig

__all__ = ["ArrayModel", "fixed_plan"]


@dataclass
class ArrayModel:
    """The performance model's prediction for one array.

    ``engine``: ``"systolic"``; ``config``: the :class:`SystolicConfig`;
    ``clock_mhz``: ``None`` (cycles only); ``buffers``: on-chip buffer sizes
    in bytes (``act``, ``weight``, ``out``: everything held);
    ``dram_bytes_per_cycle``: ``None`` (ideal); ``reasons``: what was
    assumed, one sentence each; ``layers``: :class:`gen.perf.LayerPerf` in
    network order; ``totals``: macs, cycles, compute_cycles, dram_bytes,
    energy_pj, energy, energy_unit, utilization; ``usage``: the resource
    estimate of the array alone (:func:`nnloom.gen.perf.estimate`).
    """

    engine: str
    config: SystolicConfig
    clock_mhz: float | None
    buffers: dict[str, int]
    dram_bytes_per_cycle: float | None
    reasons: list[str]
    layers: list[LayerPerf]
    totals: dict
    usage: dict[str, int] = field(default_factory=dict)
    budget: Budget | None = None
    board: str | None = None

    @property
    def inferences_per_second(self) -> float | None:
        if self.clock_mhz is None or not self.totals["cycles"]:
            return None
        return self.clock_mhz * 1e6 / self.totals["cycles"]

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.config.rows * self.config.cols

    def to_json(self) -> dict:
        return {"engine": self.engine, "dataflow": self.config.dataflow,
                "config": self.config.to_dict(), "model": "array", "board": self.board,
                "clock_mhz": self.clock_mhz, "buffers": self.buffers,
                "dram_bytes_per_cycle": self.dram_bytes_per_cycle,
                "inferences_per_second": self.inferences_per_second,
                "usage": self.usage, "budget": self.budget.to_json() if self.budget else None,
                "reasons": self.reasons,
                "layers": [lp.to_json() for lp in self.layers], "totals": self.totals}


def fixed_plan(network, config: SystolicConfig, costs: CostTable = HOROWITZ_45NM) -> ArrayModel:
    """The given array with buffers large enough for everything and ideal
    DRAM, so every layer takes exactly its array cycles."""
    steps = layer_steps(network)
    bufs = ideal_buffers(config, steps)
    perf = network_perf(network, "systolic", config, Memory(**bufs), costs)
    use = estimate(config, bufs, config.rows * config.cols)
    reasons = [f"array fixed by the user: {config.rows}x{config.cols} "
               f"{config.dataflow.upper()}; no board, so DRAM is ideal and every layer "
               "takes exactly its array cycles (SystolicConfig.gemm_cycles, the RTL's)",
               "buffers sized so that nothing is fetched twice and every weight stays "
               "on chip: "
               + ", ".join(f"{k} {v} B" for k, v in bufs.items()),
               "the performance model of this array, not a design nnloom generate builds "
               "(drop --array for the accelerator's plan)"]
    return ArrayModel("systolic", config, None, bufs, None, reasons, perf.layers, perf.totals, use)
