"""The ``model`` stage: the planner's performance model of one point.

For the point's network, board (with the point's clock) and array side P it
takes the design :func:`nnloom.gen.accelerator.sized` makes (the one
``nnloom generate --size P`` builds, and the candidate the planner scores
for P), its compute cycles by the compiler's exact model
(:meth:`~nnloom.gen.compiler.Program.predicted_cycles`, which the RTL's layer
counters equal), the whole inference's serial estimate that the planner
ranks designs by (:meth:`~nnloom.gen.compiler.Program.estimated_cycles`:
compute, instruction fetch and DRAM beats; the RTL takes fewer), the energy estimate
(:func:`nnloom.gen.accelerator.energy_estimate`), and the board fit check's
resource estimate (:mod:`nnloom.gen.planner.fit`); and it asks the planner
(:func:`nnloom.gen.planner.plan`) which side it chooses for that network and
board, so that every row says whether it is the planner's choice.  The
network is quantized as the planner does (:func:`~nnloom.gen.planner.planning_qnet`:
a network without weights is planned with seeded placeholder weights).
"""

from __future__ import annotations

import dataclasses

from nnloom.gen.accelerator import energy_estimate
from nnloom.gen.perf import TABLES
from nnloom.gen.planner import BOARDS, PlanError, plan, planning_qnet
from nnloom.gen.planner.plan import design_candidate
from nnloom.gen.planner.fit import board_estimate, board_fits
from nnloom.hw.board_top import mem_depth_for
from nnloom.hw.errors import InputError

from .stage import Option, Stage

__all__ = ["MODEL", "model_stage", "RESOURCES"]

#: Resource estimates a model row carries (``lcs`` and ``spram`` on iCE40 only).
RESOURCES = ("luts", "ffs", "dsps", "bram", "lcs", "spram")

# One worker evaluates many points of one network: quantize and plan once per
# process (keyed by the network's digest, not by the object, which comes by value).
_QNETS: dict[str, tuple] = {}
_PLANS: dict[tuple, object] = {}


def _qnet(network, digest: str):
    if digest not in _QNETS:
        _QNETS[digest] = planning_qnet(network)
    return _QNETS[digest]


def _target(config: dict):
    board = BOARDS[config["board"]]
    return dataclasses.replace(board, budget=board.budget.replace(clock_mhz=config["clock_mhz"]))


def _planned(network, config: dict, qnet):
    """The planner's plan for the point's network and board (or its one-line
    refusal), computed once per process."""
    key = (config["network"]["digest"], config["board"], config["clock_mhz"], config["batch"])
    if key not in _PLANS:
        target = _target(config)
        try:
            _PLANS[key] = plan(network, target.budget, qnet=qnet, board=target.name,
                               batch=config["batch"])
        except PlanError as e:
            _PLANS[key] = str(e)
    return _PLANS[key]


def model_stage(network, config: dict) -> dict:
    """The model row of one point (flat values; see docs/sweeps.md).
    ``config``: the point's :meth:`~nnloom.gen.sweep.Point.stage_config`."""
    P, clock = config["size"], config["clock_mhz"]
    qnet, placeholder = _qnet(network, config["network"]["digest"])
    the_plan = _planned(network, config, qnet)
    planned = the_plan.accel.size if not isinstance(the_plan, str) else None
    out = {"planned_size": planned, "planned": planned == P, "placeholder_weights": placeholder}
    target = _target(config)
    # the design plan() would build at this side: resident or streamed weights
    cand, error = design_candidate(qnet, P, board_fits(target), config["batch"])
    if cand.program is None:
        return dict(out, runs=False, fits=False, fit_error=cand.error)
    cfg, prog = cand.config, cand.program
    est = board_estimate(cfg, target, mem_depth_for(prog.size))
    fit, why = (cand.fit, "") if cand.fits else ({}, cand.error)
    cycles = prog.predicted_cycles()
    whole = prog.estimated_cycles()     # what the planner ranks designs by
    macs = sum(L.macs for L in prog.layers)
    horowitz = energy_estimate(prog)
    costs = TABLES[config["options"]["costs"]]
    chosen = energy_estimate(prog, costs)
    out.update(runs=True, fits=not why, fit_error=why, cycles=cycles,
               latency_us=cycles / clock, estimated_cycles=whole,
               estimated_latency_us=whole / clock, inferences_per_s=clock * 1e6 / whole,
               utilization=macs / (P * P * cycles), macs=macs,
               dram_bytes=sum(n for _, n in prog.regions.values()),
               instructions=len(prog.instructions), energy_pj=horowitz["energy"],
               energy=chosen["energy"], energy_unit=chosen["unit"],
               lut_mults=fit.get("lut_mults"))
    out.update({k: est[k] for k in RESOURCES if k in est})
    return out


MODEL = Stage(
    "model", model_stage, reads=("board", "size", "batch", "clock_mhz"),
    options={"costs": Option("horowitz45", " | ".join(TABLES), lambda v: v in TABLES)},
    columns=("fits", "planned", "planned_size", "cycles", "latency_us", "estimated_cycles",
             "estimated_latency_us", "inferences_per_s",
             "utilization", "energy_pj", "energy", "energy_unit", *RESOURCES, "lut_mults",
             "macs", "dram_bytes", "instructions", "runs", "fit_error", "placeholder_weights",
             "error", "seconds"),
    about="the planner's performance model: compute cycles, energy, resource estimate, fit")
