"""The planner: the accelerator ``nnloom generate`` builds for a board.

:func:`plan` searches exactly the designs the generator builds.  For every
array side P in :data:`nnloom.gen.accelerator.ARRAY_SIDES` it takes the
square weight-stationary P x P accelerator with the buffer, accumulator and
program depths :func:`nnloom.gen.accelerator.sized` chooses for the network
(and the program compiled for it, once), keeps the designs that pass the
board's fit check (:func:`nnloom.gen.planner.fit.board_fits`, the estimate
``nnloom fpga build`` checks before synthesis), and chooses the one with
the fewest cycles per inference by the compiler's cycle model
(:meth:`nnloom.gen.compiler.Program.predicted_cycles`: each layer's exact
compute cycles, which the RTL's layer counters equal); ties go to the
smaller array.  :func:`nnloom.gen.accelerator.build` with a board builds the
plan's config and program as they are.

The design and its cycles depend on the network's layer shapes only, so a
network without weights (a timing-only TOML) is planned with seeded
placeholder weights of the same shapes; ``nnloom generate`` still needs the
trained ones.  A network that no design can run (a SCALE-Sim topology, an
operator the accelerator lacks, a map too large for any buffer) is a
one-line :class:`~nnloom.hw.errors.InputError`; designs that run it but do
not fit the budget raise :class:`PlanError`, whose ``minimum`` is the
budget raised to what the smallest of them needs.  docs/planner.md
describes the search and the :class:`Plan` fields.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from nnloom.gen.accelerator import (ARRAY_SIDES, DIGITS_SHAPES, Design, energy_estimate,
                                    quantize_network, sized)
from nnloom.gen.compiler import Program
from nnloom.gen.perf import HOROWITZ_45NM, CostTable
from nnloom.gen.planner.boards import BOARDS, Board, Budget
from nnloom.gen.planner.fit import block_bits, board_fits, minimum_budget
from nnloom.hw.accel_core import AccelConfig
from nnloom.hw.accel_isa import Op
from nnloom.hw.errors import InputError

__all__ = ["Plan", "PlanError", "Candidate", "PlannedLayer", "plan", "planning_qnet",
           "PLACEHOLDER_LIMIT"]

#: Most parameters a timing-only network may have to be planned with
#: placeholder weights (a larger one would take seconds and gigabytes).
PLACEHOLDER_LIMIT = 4_000_000


class PlanError(InputError):
    """No buildable design fits.  ``minimum`` is a budget that would fit
    (the hard resources that are short raised to what the smallest design
    that runs the network needs)."""

    def __init__(self, message: str, minimum: Budget | None = None):
        self.minimum = minimum
        super().__init__(message)


@dataclass(frozen=True)
class Candidate:
    """One searched design: the ``size`` x ``size`` array, its compute
    ``cycles`` (``None`` if it cannot run the network), the fit check's
    figures when it fits, else ``error`` (why not: the compiler's or the
    fit check's one line)."""

    size: int
    cycles: int | None = None
    fit: dict | None = None
    error: str = ""
    config: AccelConfig | None = field(default=None, repr=False)
    program: Program | None = field(default=None, repr=False)
    estimate: int | None = None     # Program.estimated_cycles(): compute + fetch + DRAM beats

    @property
    def fits(self) -> bool:
        return self.fit is not None

    def to_json(self) -> dict:
        return {"size": self.size, "cycles": self.cycles, "estimated_cycles": self.estimate,
                "fits": self.fits, "error": self.error or None}


@dataclass(frozen=True)
class PlannedLayer:
    """One layer of the planned program: its compute ``cycles`` (the
    compiler's exact model), useful ``macs``, ``utilization`` (MACs / (PEs x
    cycles)) and the DRAM bytes its instructions move (weights and
    parameters; the input for the first layer, the output for the last)."""

    name: str
    type: str
    macs: int
    cycles: int
    utilization: float
    dram_bytes: int

    @property
    def intensity(self) -> float | None:
        """MACs per DRAM byte (``None`` when the layer moves none)."""
        return self.macs / self.dram_bytes if self.dram_bytes else None

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Plan:
    """The design to build and its predicted performance.

    ``engine``: ``"systolic"``; ``config``: the :class:`~nnloom.gen.accelerator.Design`
    (``config.accel`` is the :class:`AccelConfig`; ``config.to_dict()`` the
    ``config`` object the reports write); ``program``: the program compiled
    for it; ``clock_mhz``: the board's clock; ``budget`` and ``board``;
    ``usage``: the fit check's estimate (and ``lut_mults``, ``mem_depth``,
    ``bram_bits``),
    ``available``: what the device has; ``candidates``: every searched
    :class:`Candidate`; ``reasons``: why, one sentence each; ``layers``:
    :class:`PlannedLayer` per layer of the quantized network; ``totals``:
    macs, cycles (compute, per inference), utilization, dram_bytes,
    instructions, energy_pj, energy, energy_unit; ``placeholder_weights``:
    the network had none (the design depends on the shapes only).
    """

    engine: str
    config: Design
    program: Program
    clock_mhz: float
    budget: Budget
    board: str | None
    usage: dict
    available: dict
    candidates: list[Candidate]
    reasons: list[str]
    layers: list[PlannedLayer]
    totals: dict
    placeholder_weights: bool = False

    @property
    def accel(self) -> AccelConfig:
        return self.config.accel

    @property
    def buffers(self) -> dict[str, int]:
        """Bytes of each on-chip memory (both banks): activations, weights,
        parameters, the accumulator (``out``) and the program memory."""
        a = self.accel
        P = a.size
        return {"act": 2 * a.act_depth * P, "weight": 2 * a.wbuf_depth * P,
                "param": 2 * a.pbuf_depth * 16, "out": a.acc_depth * 4 * P,
                "program": a.imem_depth * 64}

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.budget.dram_bytes_per_cycle

    @property
    def inferences_per_second(self) -> float | None:
        """At the board's clock, by the whole-inference serial estimate
        (``totals["estimated_cycles"]``: a lower bound on the rate)."""
        cycles = self.totals["estimated_cycles"]
        return self.clock_mhz * 1e6 / cycles if cycles else None

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.config.pes

    def to_json(self) -> dict:
        return {"engine": self.engine, "dataflow": self.config.dataflow,
                "config": self.config.to_dict(), "board": self.board,
                "clock_mhz": self.clock_mhz, "cycles": self.totals["cycles"],
                "inferences_per_second": self.inferences_per_second,
                "buffers": self.buffers, "dram_bytes_per_cycle": self.dram_bytes_per_cycle,
                "usage": self.usage, "available": self.available,
                "budget": self.budget.to_json(), "placeholder_weights": self.placeholder_weights,
                "candidates": [c.to_json() for c in self.candidates],
                "reasons": self.reasons, "layers": [lp.to_json() for lp in self.layers],
                "totals": self.totals}


# -- the network the designs are compiled for ---------------------------------------

def _random_inputs(network, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, *network.input_shape))


def planning_qnet(network):
    """``(qnet, placeholder)``: the quantized network the designs are compiled
    for.  With weights: quantized as ``nnloom generate`` does for digits
    networks (the same program), else calibrated on seeded random inputs
    (the design does not depend on the calibration).  Without weights:
    seeded placeholder weights of the network's shapes (``placeholder`` is
    True), up to :data:`PLACEHOLDER_LIMIT` parameters."""
    where = network.source
    if network.layer_inputs is not None:
        raise InputError(f"{where}: layers: expected a network whose layers run one after "
                         "another (what the accelerator runs), got a SCALE-Sim topology of "
                         "independent layers (nnloom plan --array RxC gives its performance model)")
    if network.has_weights:
        if tuple(network.input_shape) in DIGITS_SHAPES:
            return quantize_network(network), False
        return quantize_network(network, _random_inputs(network, 8)), False
    shapes = network.weight_shapes()
    count = sum(int(np.prod(s)) for s in shapes.values())
    if count > PLACEHOLDER_LIMIT:
        raise InputError(f"{where}: weights: expected trained weights, or at most "
                         f"{PLACEHOLDER_LIMIT:,} parameters to plan with placeholder weights, "
                         f"got no weights for {count:,} (nnloom plan --array RxC gives the "
                         "performance model)")
    rng = np.random.default_rng(0)
    weights = {}
    for key, shape in sorted(shapes.items()):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        weights[key] = rng.normal(0.0, 1.0 / math.sqrt(max(1, fan_in)), shape)
    placeholder = dataclasses.replace(network, weights=weights)
    return quantize_network(placeholder, _random_inputs(network, 8)), True


# -- the search -----------------------------------------------------------------------

def _target(board: str | Board | None, budget: Budget) -> Board:
    if isinstance(board, Board):
        return dataclasses.replace(board, budget=budget)
    if board in BOARDS:
        return dataclasses.replace(BOARDS[board], budget=budget)
    return Board(board or "the budget", "", "", budget)


def _layers(prog: Program) -> list[PlannedLayer]:
    P = prog.config.size
    dram = [0] * len(prog.layers)
    for ins in prog.instructions:
        if ins["op"] == Op.LOAD_BLOCK and ins["layer"] < len(dram):
            dram[ins["layer"]] += ins["words"] * P + ins["p_words"] * 16
    if dram:
        dram[0] += prog.regions["input"][1]
        dram[-1] += prog.regions["output"][1]
    return [PlannedLayer(L.name, L.kind, L.macs, L.cycles,
                         L.macs / (P * P * L.cycles) if L.cycles else 0.0, d)
            for L, d in zip(prog.layers, dram)]


def _totals(prog: Program, costs: CostTable) -> dict:
    P = prog.config.size
    macs = sum(L.macs for L in prog.layers)
    cycles = prog.predicted_cycles()
    pj = energy_estimate(prog)
    chosen = pj if costs is HOROWITZ_45NM else energy_estimate(prog, costs)
    return {"macs": macs, "cycles": cycles, "compute_cycles": cycles,
            "utilization": macs / (P * P * cycles) if cycles else 0.0,
            "dram_bytes": sum(n for _, n in prog.regions.values()),
            "instructions": len(prog.instructions),
            "estimated_cycles": prog.estimated_cycles(),
            "energy_pj": pj["energy"], "energy": chosen["energy"], "energy_unit": chosen["unit"]}


def design_candidate(qnet, P: int, fits, batch: int = 1) -> tuple[Candidate, InputError | None]:
    """The P x P design: with resident weights and with streamed ones (each
    as :func:`sized` makes it), the faster of those that fit (else the
    streamed one, which needs the fewest block RAMs, with its reason)."""
    options = []
    for resident in (True, False):
        cand, error = _one_candidate(qnet, P, fits, batch, resident)
        options.append((cand, error))
    fitting = [c for c, e in options if c.fits]
    if fitting:
        return min(fitting, key=_rank), None
    compiled = [(c, e) for c, e in options if c.program is not None]
    if compiled:
        return compiled[-1]
    return options[-1]


def _one_candidate(qnet, P: int, fits, batch: int, resident: bool):
    try:
        cfg, prog = sized(qnet, P, batch=batch, resident=resident)
    except InputError as e:
        text = str(e)
        if text.startswith(f"{qnet.name}:"):
            return Candidate(P, error=text), e
        text = f"{qnet.name}: a {P} x {P} array: {text}"
        return Candidate(P, error=text), InputError(text)
    try:
        fit = dict(fits(cfg, prog) or {})
    except InputError as e:
        return Candidate(P, prog.predicted_cycles(), None, str(e), cfg, prog, prog.estimated_cycles()), None
    return Candidate(P, prog.predicted_cycles(), fit, "", cfg, prog, prog.estimated_cycles()), None


def plan(network, budget: Budget, *, qnet=None, board: str | Board | None = None, fits=None,
         costs: CostTable = HOROWITZ_45NM, sizes=ARRAY_SIDES, progress=None,
         batch: int = 1) -> Plan:
    """The fastest buildable design for ``network`` within ``budget``.

    ``board`` names the board (its fit model's device; with ``budget``
    overriding its figures); ``qnet`` is the quantized network to compile
    for (default :func:`planning_qnet`); ``fits(config, program)`` is the
    fit check (default :func:`nnloom.gen.planner.fit.board_fits` of the
    board), which returns the resource figures or raises an
    :class:`~nnloom.hw.errors.InputError`; ``costs`` is the energy table of
    ``totals["energy"]``; ``sizes`` the array sides searched;
    ``progress(done, total)`` is called as the search advances."""
    target = _target(board, budget)
    placeholder = False
    if qnet is None:
        qnet, placeholder = planning_qnet(network)
    fits = fits or board_fits(target)
    cands, errors = [], []
    for n, P in enumerate(sizes):
        if progress:
            progress(n, len(sizes))
        cand, error = design_candidate(qnet, P, fits, batch)
        cands.append(cand)
        if error is not None:
            errors.append(error)
    if progress:
        progress(len(sizes), len(sizes))
    ok = [c for c in cands if c.fits]
    if not ok:
        compiled = [c for c in cands if c.program is not None]
        if not compiled:
            raise errors[-1]     # the largest array's reason: no design runs the network
        small = min(compiled, key=lambda c: c.size)
        minimum = minimum_budget(small.config, small.program, target)
        short = ", ".join(f"{k} {getattr(budget, k)} < {getattr(minimum, k)}" for k in Budget.HARD
                          if getattr(minimum, k) > getattr(budget, k))
        raise PlanError(f"expected at least {minimum.describe()} (the smallest design that runs "
                        f"the network does not fit: {small.error}"
                        + (f"; short: {short}" if short else "") + f"), got {budget.describe()}",
                        minimum)
    best = min(ok, key=_rank)
    prog = best.program
    design = Design(best.config)
    usage = {k: v for k, v in best.fit.get("estimate", best.fit).items()}
    for key in ("lut_mults", "mem_depth"):
        if key in best.fit:
            usage[key] = best.fit[key]
    if "bram" in usage:
        usage["bram_bits"] = usage["bram"] * block_bits(target.budget)
    available = dict(best.fit.get("available", {}))
    totals = _totals(prog, costs)
    reasons = _reasons(best, cands, target, totals, usage, available, placeholder)
    return Plan("systolic", design, prog, float(budget.clock_mhz), budget,
                target.name if board is not None else None, usage, available, cands, reasons,
                _layers(prog), totals, placeholder)


def _rank(c: Candidate):
    """Designs rank by the whole inference's serial estimate (compute,
    instruction fetch and DRAM beats: a larger array pads weights to more
    lanes, so it can move more bytes than it saves cycles), then compute
    cycles, then the smaller array."""
    return (c.estimate, c.cycles, c.size)


def _reasons(best: Candidate, cands, target: Board, totals, usage, available, placeholder):
    P, cyc = best.size, best.cycles
    clock = target.budget.clock_mhz
    sides = ", ".join(str(c.size) for c in cands)
    runs = [c for c in cands if c.program is not None]
    ok = [c for c in cands if c.fits]
    out = [f"searched the {len(cands)} designs nnloom generate builds (square weight-stationary "
           f"arrays of side {sides}, buffers, accumulator and program memory sized to the "
           f"network); {len(runs)} run the network, {len(ok)} of those fit {target.name}",
           f"{P}x{P} WS takes {cyc:,} compute cycles per inference by the compiler's exact "
           f"per-layer model (utilization {totals['utilization']:.1%}); with instruction fetch and "
           f"DRAM beats counted one after another, at most about {best.estimate:,} cycles "
           f"({clock * 1e6 / best.estimate:,.0f} inferences/s at {clock:g} MHz; nnloom simulate "
           "measures the whole inference), the fewest of the designs that fit"]
    others = sorted((c for c in ok if c is not best), key=_rank)
    if others:
        r = others[0]
        out.append(f"runner-up: {r.size}x{r.size} at about {r.estimate:,} cycles "
                   f"({r.estimate / best.estimate - 1:+.1%}; compute {r.cycles:,})")
    bigger = [c for c in cands if c.size > P]
    if bigger:
        first = bigger[0]
        if not first.fits and first.program is not None:
            out.append(f"a larger array does not fit: {first.error}")
        elif not first.fits:
            out.append(f"a larger array cannot run the network: {first.error}")
        else:
            out.append(f"larger arrays that fit are slower (the {first.size}x{first.size}: about "
                       f"{first.estimate:,} cycles, compute {first.cycles:,}: weights padded to more "
                       "lanes move more DRAM bytes, post-processing takes P cycles per output pixel "
                       "and small layers leave lanes idle)")
    no_run = [c for c in cands if c.program is None]
    if no_run:
        out.append(f"{len(no_run)} array side(s) cannot run the network ({', '.join(str(c.size) for c in no_run)}): "
                   f"{no_run[0].error}")
    a = best.config
    out.append(f"buffers sized to the network: activations 2 x {a.act_depth} words, weights "
               f"2 x {a.wbuf_depth} words, parameters 2 x {a.pbuf_depth} entries, accumulator "
               f"{a.acc_depth} word(s), program memory {a.imem_depth} instructions "
               f"({totals['instructions']} used), {a.data_width}-bit bus")
    if available:
        names = {"luts": "LUT4s", "ffs": "flip-flops", "lcs": "logic cells", "dsps": "DSPs",
                 "bram": "block RAMs", "spram": "SPRAMs"}
        out.append("uses " + ", ".join(f"{usage[k]:,}/{available[k]:,} {names.get(k, k)}"
                                       for k in available if k in usage)
                   + (f"; {usage['lut_mults']} multipliers in LUTs" if usage.get("lut_mults") else "")
                   + " (the board-top estimate of nnloom.gen.planner.fit)")
    if placeholder:
        out.append("the network has no weights: planned with seeded placeholder weights of its "
                   "shapes (the design and its cycles depend on the shapes only); nnloom "
                   "generate needs the trained weights")
    return out
