"""The planner: engine parameters that maximize throughput within a budget.

:func:`plan` searches systolic arrays (rows x cols from :data:`SEARCH_DIMS`, WS
and OS) and, for each array that fits the budget's DSPs, LUTs and
flip-flops (:func:`nnloom.gen.perf.resources.estimate`), the buffer sizes at which some
layer's DRAM traffic drops (:func:`nnloom.gen.perf.model.buffer_needs`) that fit the
remaining block RAM.  It keeps the design with the fewest cycles per sample
(highest throughput at the budget's clock); ties go to fewer DRAM bytes,
then fewer PEs, then fewer LUTs.  With a fixed ``config`` only the buffers
are planned.

A network that cannot fit raises :class:`PlanError`; its ``minimum`` is the
smallest budget that would fit (the 1 x 1 array with the minimum buffers).
docs/planner.md describes the search and the :class:`Plan` fields.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from nnloom.hw.systolic import SystolicConfig

from nnloom.gen.planner.boards import Budget
from nnloom.gen.perf import HOROWITZ_45NM, CostTable
from nnloom.gen.perf.model import (LayerPerf, Memory, onchip_step, buffer_needs, dram_bytes, ideal_buffers,
                   layer_steps, min_buffers, network_perf)
from nnloom.gen.perf import estimate
from nnloom.hw.errors import InputError

__all__ = ["Plan", "PlanError", "plan", "SEARCH_DIMS", "fixed_plan"]

#: Array side lengths the planner tries (SystolicConfig allows 1..64).
SEARCH_DIMS = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64)
_BUFS = ("act", "weight", "out")


class PlanError(InputError):
    """No design fits.  ``minimum`` is the smallest budget that would fit
    (hard resources raised to what the smallest design needs)."""

    def __init__(self, message: str, minimum: Budget | None = None):
        self.minimum = minimum
        super().__init__(message)


@dataclass
class Plan:
    """A chosen accelerator and its predicted performance.

    ``engine``: ``"systolic"``; ``config``: the :class:`SystolicConfig`;
    ``clock_mhz``: fabric clock (``None`` when no board or budget was given);
    ``buffers``: on-chip buffer sizes in bytes (``act``: int8 activations,
    ping-pong between layers; ``weight``: weights; ``out``: partial sums at
    the accumulator width); ``dram_bytes_per_cycle``: the bandwidth the
    model assumed (``None`` = ideal); ``reasons``: why, one sentence each;
    ``layers``: :class:`gen.perf.LayerPerf` in network order; ``totals``:
    macs, cycles, compute_cycles, dram_bytes, energy_pj, energy,
    energy_unit, utilization; ``usage`` and ``budget``: resources used and
    available (dsps, luts, ffs, bram_bits); ``board``: its name or ``None``.
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
                "config": self.config.to_dict(), "board": self.board,
                "clock_mhz": self.clock_mhz, "buffers": self.buffers,
                "dram_bytes_per_cycle": self.dram_bytes_per_cycle,
                "inferences_per_second": self.inferences_per_second,
                "usage": self.usage, "budget": self.budget.to_json() if self.budget else None,
                "reasons": self.reasons,
                "layers": [lp.to_json() for lp in self.layers], "totals": self.totals}


# -- the search ------------------------------------------------------------------

def _dram_tables(cfg, steps, cands):
    """DRAM bytes per step as base + one additive term per buffer choice."""
    base = np.array(dram_bytes(cfg, steps, Memory()), dtype=np.int64)
    terms = {}
    for name in _BUFS:
        cols = [np.array(dram_bytes(cfg, steps, Memory(**{name: v}))) - base for v in cands[name]]
        terms[name] = np.stack(cols)  # [choice, step]
    return base, terms


def _best_buffers(cfg, steps, budget: Budget, bram_left: int):
    """(cycles, dram_bytes, bram_bits, buffers) of the fastest buffer choice
    within ``bram_left`` bits, or ``None``."""
    cands = buffer_needs(cfg, steps)
    blk = budget.bram_block_bits
    bits = {n: np.array([math.ceil(v * 8 / blk) * blk for v in cands[n]]) for n in _BUFS}
    total_bits = bits["act"][:, None, None] + bits["weight"][None, :, None] + bits["out"][None, None, :]
    ok = total_bits <= bram_left
    if not ok.any():
        return None
    compute = np.array([onchip_step(cfg, st)[1] for st in steps], dtype=np.int64)
    base, t = _dram_tables(cfg, steps, cands)
    dram = (base + t["act"][:, None, None, :] + t["weight"][None, :, None, :]
            + t["out"][None, None, :, :])                       # [a, w, o, step]
    stall = np.ceil(dram / budget.dram_bytes_per_cycle).astype(np.int64)
    cycles = np.maximum(compute, np.where(dram > 0, stall, 0)).sum(axis=-1)
    total_dram = dram.sum(axis=-1)
    big = np.iinfo(np.int64).max // 4
    key = np.lexsort((np.where(ok, total_bits, big).ravel(), np.where(ok, total_dram, big).ravel(),
                      np.where(ok, cycles, big).ravel()))[0]
    a, w, o = np.unravel_index(key, ok.shape)
    bufs = {"act": cands["act"][a], "weight": cands["weight"][w], "out": cands["out"][o]}
    return int(cycles[a, w, o]), int(total_dram[a, w, o]), int(total_bits[a, w, o]), bufs


def _usage(cfg, budget: Budget, bufs: dict[str, int]) -> dict[str, int]:
    # without LUT multipliers every PE needs a DSP, and the DSP check rejects the rest
    dsps = budget.dsps if budget.lut_multipliers else max(budget.dsps, cfg.rows * cfg.cols)
    return estimate(cfg, bufs, dsps, budget.bram_block_bits, budget.family)


def _minimum(budget: Budget, base: SystolicConfig, dataflows) -> tuple[Budget, dict]:
    """The smallest budget that fits: the 1 x 1 array with minimum buffers
    (WS when allowed: it needs no more of anything than OS)."""
    uses = [_usage(cfg, budget, min_buffers(cfg))
            for cfg in (base.replace(rows=1, cols=1, dataflow=df) for df in dataflows)]
    use = min(uses, key=lambda u: tuple(u[k] for k in Budget.HARD))
    return budget.replace(**{k: use[k] for k in Budget.HARD}), use


def _configs(base: SystolicConfig, fixed: bool, dataflows=("ws", "os")):
    if fixed:
        yield base
        return
    for df, r, c in itertools.product(dataflows, SEARCH_DIMS, SEARCH_DIMS):
        yield base.replace(rows=r, cols=c, dataflow=df)


def plan(network, budget: Budget, *, config: SystolicConfig | None = None,
         costs: CostTable = HOROWITZ_45NM, board: str | None = None,
         dataflows: tuple[str, ...] = ("ws", "os"), progress=None) -> Plan:
    """The fastest systolic design for ``network`` within ``budget``.

    ``config`` fixes the array (only buffers are planned); otherwise its
    widths, signedness and overflow (default :class:`SystolicConfig`) are kept
    and rows, cols and dataflow (among ``dataflows``) searched.
    ``progress(done, total)`` is called
    as the search advances.
    """
    base = config or SystolicConfig(rows=1, cols=1)
    steps = layer_steps(network)
    cfgs = list(_configs(base, config is not None, dataflows))
    best = runner_up = None
    fitted, over = 0, {k: 0 for k in Budget.HARD}
    for n, cfg in enumerate(cfgs):
        if progress:
            progress(n, len(cfgs))
        fixed_use = _usage(cfg, budget, {})
        short = [k for k in Budget.HARD if fixed_use[k] > getattr(budget, k)]
        if short:
            for k in short:
                over[k] += 1
            continue
        found = _best_buffers(cfg, steps, budget, budget.bram_bits - fixed_use["bram_bits"])
        if found is None:
            over["bram_bits"] += 1
            continue
        fitted += 1
        cycles, dram, _bits, bufs = found
        use = _usage(cfg, budget, bufs)
        key = (cycles, dram, cfg.rows * cfg.cols, use["luts"])
        if best is None or key < best[0]:
            best, runner_up = (key, cfg, bufs, use), best
        elif runner_up is None or key < runner_up[0]:
            runner_up = (key, cfg, bufs, use)
    if progress:
        progress(len(cfgs), len(cfgs))
    if best is None:
        if config is not None:
            need = _usage(config, budget, min_buffers(config))
            minimum = budget.replace(**{k: need[k] for k in Budget.HARD})
            what = f"a {config.rows}x{config.cols} {config.dataflow.upper()} array"
        else:
            minimum, need = _minimum(budget, base, dataflows)
            what = "the smallest design (a 1x1 array with minimum buffers)"
        short = ", ".join(f"{k} {getattr(budget, k)} < {need[k]}" for k in Budget.HARD
                          if need[k] > getattr(budget, k))
        raise PlanError(f"expected at least {minimum.describe()} ({what}; short: {short}), "
                        f"got {budget.describe()}", minimum)
    (_cycles, _dram, _pes, _luts), cfg, bufs, use = best
    mem = Memory(**bufs, dram_bytes_per_cycle=budget.dram_bytes_per_cycle)
    perf = network_perf(network, "systolic", cfg, mem, costs)
    reasons = _reasons(steps, cfg, bufs, use, budget, perf, len(cfgs), fitted, over,
                       config is not None, dataflows)
    if runner_up is not None:
        (cyc2, *_), cfg2, *_ = runner_up
        reasons.insert(3, f"runner-up: {cfg2.rows}x{cfg2.cols} {cfg2.dataflow.upper()} at {cyc2} "
                          f"cycles ({cyc2 / max(1, perf.totals['cycles']) - 1:+.1%})")
    return Plan("systolic", cfg, float(budget.clock_mhz), bufs, budget.dram_bytes_per_cycle,
                reasons, perf.layers, perf.totals, use, budget, board)


def fixed_plan(network, config: SystolicConfig, costs: CostTable = HOROWITZ_45NM) -> Plan:
    """No budget: the given array with buffers large enough for everything and
    ideal DRAM, so every layer takes exactly its array cycles."""
    steps = layer_steps(network)
    bufs = ideal_buffers(config, steps)
    perf = network_perf(network, "systolic", config, Memory(**bufs), costs)
    use = estimate(config, bufs, config.rows * config.cols)
    reasons = [f"array fixed by the user: {config.rows}x{config.cols} "
               f"{config.dataflow.upper()}; no board, so DRAM is ideal and every layer "
               "takes exactly its array cycles (SystolicConfig.gemm_cycles, the RTL's)",
               "buffers sized so that nothing is fetched twice and every weight stays "
               "on chip: "
               + ", ".join(f"{k} {v} B" for k, v in bufs.items())]
    return Plan("systolic", config, None, bufs, None, reasons, perf.layers, perf.totals, use)


def _reasons(steps, cfg, bufs, use, budget, perf, tried, fitted, over, fixed, dataflows):
    R, C = cfg.rows, cfg.cols
    cyc = perf.totals["cycles"]
    out = []
    if fixed:
        out.append(f"array fixed by the user: {R}x{C} {cfg.dataflow.upper()}; buffers planned")
    else:
        out.append(f"searched {tried} arrays (rows, cols in {SEARCH_DIMS[0]}..{SEARCH_DIMS[-1]}, "
                   f"{' and '.join(d.upper() for d in dataflows)}); "
                   f"{fitted} fit the budget")
        binding = max(over, key=over.get)
        if over[binding]:
            out.append(f"{binding} is the scarcest resource: {over[binding]} of the arrays "
                       f"need more {binding} than the budget has")
    out.append(f"{R}x{C} {cfg.dataflow.upper()} takes {cyc} cycles per sample "
               f"({budget.clock_mhz * 1e6 / cyc:.1f} samples/s at {budget.clock_mhz:g} MHz), "
               f"utilization {perf.totals['utilization']:.1%}")
    stalled = [lp for lp in perf.layers if lp.stall_cycles > 0]
    if stalled:
        worst = max(stalled, key=lambda lp: lp.stall_cycles)
        out.append(f"{len(stalled)} layer(s) are DRAM-bound at {budget.dram_bytes_per_cycle:g} "
                   f"B/cycle (worst: {worst.name}, {worst.stall_cycles} stall cycles); "
                   "a larger array would not speed them up")
    ideal = ideal_buffers(cfg, steps)
    blk = budget.bram_block_bits
    for k in ("act", "weight", "out"):
        if bufs[k] >= ideal[k]:
            out.append(f"{k} buffer {bufs[k]} B: nothing is fetched twice"
                       + ("; every weight stays on chip" if k == "weight" else ""))
            continue
        grow = (math.ceil(ideal[k] * 8 / blk) - math.ceil(bufs[k] * 8 / blk)) * blk
        why = ("block RAM is short" if use["bram_bits"] + grow > budget.bram_bits
               else "a larger one would not reduce the cycles")
        out.append(f"{k} buffer {bufs[k]} B, below the {ideal[k]} B at which it stops "
                   f"saving DRAM traffic ({why})")
    out.append("uses " + ", ".join(f"{use[k]}/{getattr(budget, k)} {k}" for k in Budget.HARD)
               + (f"; {use['lut_mults']} multipliers in LUTs" if use["lut_mults"] else ""))
    return out
