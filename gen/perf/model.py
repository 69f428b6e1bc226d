"""Performance model: cycles, accesses per storage level, DRAM bytes, energy.

One sample (batch 1) runs layer by layer.  Per layer and engine the model
gives cycles, MACs, utilization, reads and writes at each storage level
(``rf``, ``array``, ``buffer``, ``dram``; see :mod:`gen.energy`), DRAM
bytes, energy and arithmetic intensity (MACs per DRAM byte).  docs/perf.md
states every formula.

Systolic engine (``"systolic"``, WS or OS, :class:`hw.systolic.SystolicConfig`)
    A convolution runs as its im2col GEMM (``Conv2d.gemm_shape``): M = output
    pixels E x F, K = C x R x S, N = filters; a fully connected layer is the
    GEMM M = 1, K = inputs, N = outputs; a SCALE-Sim GEMM row (M, N, K) is
    that GEMM as is.  The array cycles are
    :meth:`SystolicConfig.gemm_cycles`, which the RTL takes exactly.  A layer
    whose DRAM traffic takes longer than its compute at ``dram_bytes_per_cycle``
    stalls: ``cycles = max(array_cycles, ceil(dram_bytes / bandwidth))`` (the
    DMA is double-buffered, so transfers overlap compute).  Without a
    bandwidth (``None``) DRAM is ideal and ``cycles == array_cycles``.
    Buffers and DRAM traffic live in :mod:`nnloom.gen.perf.memory` (re-exported).

Non-MAC layers
    A ReLU right after a conv or fc layer is fused into its output path: no
    cycles, no accesses.  Flatten is an addressing change: nothing.  Pooling
    and a standalone ReLU run on a post-processing vector unit ``cols`` lanes
    wide: ``ceil(window_reads / cols)`` cycles, every window element read
    once from the buffer and every output written once.

Eyeriss RS (``"eyeriss"``) and EIE (``"eie"``)
    Hooks (:data:`ENGINE_HOOKS`, in :mod:`nnloom.gen.perf.engines`) call the
    engines' own models, imported lazily; if a model is absent the engine is
    unavailable and :class:`EngineUnavailable` says so.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field

from nnloom.hw.systolic import SystolicConfig

from nnloom.gen.perf.energy import HOROWITZ_45NM, LEVELS, CostTable
from nnloom.gen.perf.memory import (Memory, Step, bits_to_bytes, elements, buffer_needs, dram_bytes,  # noqa: F401
                          dram_traffic, ideal_buffers, layer_steps, min_buffers, weight_bytes)
from nnloom.hw.errors import InputError

__all__ = ["Memory", "LayerPerf", "NetworkPerf", "EngineUnavailable", "ENGINE_HOOKS", "ENGINES",
           "min_buffers", "ideal_buffers", "weight_bytes", "buffer_needs", "dram_bytes",
           "layer_steps", "systolic_steps", "systolic_layer", "gemm_perf", "network_perf"]

ENGINES = ("systolic", "eyeriss", "eie")
#: engine -> (module, function); the function takes (layer, in_shape, **options)
#: and returns a dict with at least macs, cycles, pes, reads, writes, dram_bytes.
ENGINE_HOOKS = {"eyeriss": ("nnloom.gen.perf.engines", "eyeriss_layer"),
                "eie": ("nnloom.gen.perf.engines", "eie_layer")}


class EngineUnavailable(InputError):
    """An engine whose model module has not landed (or lacks its hook)."""


@dataclass
class LayerPerf:
    """One layer on one engine.  ``reads``/``writes`` count accesses per level:
    ``rf`` and ``array`` in operand accesses, ``buffer`` and ``dram`` in bytes
    (8-bit words, the cost tables' unit).  ``energy`` is in ``energy_unit``
    (the chosen table); ``energy_pj`` always uses :data:`HOROWITZ_45NM`."""

    name: str
    type: str
    engine: str
    macs: int
    cycles: int
    compute_cycles: int
    pes: int
    reads: dict[str, int]
    writes: dict[str, int]
    dram_bytes: int
    energy: float
    energy_unit: str
    energy_pj: float
    gemm: tuple[int, int, int] | None = None
    note: str = ""
    tiling: dict | None = None

    @property
    def stall_cycles(self) -> int:
        return self.cycles - self.compute_cycles

    @property
    def utilization(self) -> float:
        """Useful MACs / (PEs x cycles)."""
        return self.macs / (self.pes * self.cycles) if self.cycles and self.pes else 0.0

    @property
    def intensity(self) -> float | None:
        """MACs per DRAM byte (``None`` when the layer moves no DRAM bytes)."""
        return self.macs / self.dram_bytes if self.dram_bytes else None

    def accesses(self) -> dict[str, int]:
        return {lvl: self.reads.get(lvl, 0) + self.writes.get(lvl, 0) for lvl in LEVELS}

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.type, "engine": self.engine,
                "macs": self.macs, "cycles": self.cycles, "compute_cycles": self.compute_cycles,
                "stall_cycles": self.stall_cycles, "utilization": self.utilization,
                "dram_bytes": self.dram_bytes, "energy_pj": self.energy_pj,
                "energy": self.energy, "energy_unit": self.energy_unit,
                "intensity_macs_per_byte": self.intensity, "gemm_mkn": self.gemm,
                "reads": self.reads, "writes": self.writes, "note": self.note,
                "tiling": self.tiling}


@dataclass
class NetworkPerf:
    layers: list[LayerPerf]
    pes: int
    dram_bytes_per_cycle: float | None
    costs: CostTable
    totals: dict = field(init=False)

    def __post_init__(self):
        self.totals = {
            "macs": sum(lp.macs for lp in self.layers),
            "cycles": sum(lp.cycles for lp in self.layers),
            "compute_cycles": sum(lp.compute_cycles for lp in self.layers),
            "dram_bytes": sum(lp.dram_bytes for lp in self.layers),
            "energy_pj": sum(lp.energy_pj for lp in self.layers),
            "energy": sum(lp.energy for lp in self.layers),
            "energy_unit": self.costs.unit,
        }
        cyc = self.totals["cycles"]
        self.totals["utilization"] = self.totals["macs"] / (self.pes * cyc) if cyc else 0.0


# -- the systolic engine ---------------------------------------------------------

def _energy(costs: CostTable, macs: int, reads: dict, writes: dict) -> float:
    return costs.energy(macs, {lvl: reads.get(lvl, 0) + writes.get(lvl, 0) for lvl in LEVELS})


def _tiles(cfg: SystolicConfig, m: int, k: int, n: int) -> dict:
    """The loop nest the array runs for an M x K x N GEMM."""
    R, C = cfg.rows, cfg.cols
    if cfg.dataflow == "ws":
        return {"order": "for N/C column tiles: for K/R row tiles: load R x C weights, "
                         "stream M activation rows",
                "tiles": [math.ceil(k / R), math.ceil(n / C)], "tile_cycles": cfg.tile_interval(m, k)}
    return {"order": "for M/R row tiles: for N/C column tiles: K steps, then drain",
            "tiles": [math.ceil(m / R), math.ceil(n / C)], "tile_cycles": cfg.tile_interval(m, k)}


def _window(st) -> int:
    """Inputs read per output of a vector-unit step: a pooling window, a
    depthwise filter (R x S multiply-accumulates), a global pool's H x W, an
    add's two operands."""
    kind = st.layer.kind
    if kind in ("maxpool", "avgpool"):
        return st.layer.kernel ** 2
    if kind == "dwconv":
        return st.layer.kernel[0] * st.layer.kernel[1]
    if kind == "gavgpool":
        return st.in_shape[1] * st.in_shape[2]
    if kind == "add":
        return 2
    return 1


def onchip_step(cfg: SystolicConfig, st: Step):
    """(macs, compute cycles, reads, writes) of one step, DRAM excluded."""
    ab, wb, cb = bits_to_bytes(cfg.a_width), bits_to_bytes(cfg.w_width), bits_to_bytes(cfg.acc_width)
    R, C = cfg.rows, cfg.cols
    zero = {lvl: 0 for lvl in LEVELS}
    reads, writes = dict(zero), dict(zero)
    if st.free:
        return 0, 0, reads, writes
    if st.gemm is None:  # pooling or standalone ReLU on the C-lane vector unit
        outs = elements(st.out_shape)
        window = _window(st)
        macs = st.layer.macs(st.in_shape) if st.layer.kind == "dwconv" else 0
        reads["buffer"] = outs * window * ab
        writes["buffer"] = outs * ab
        return macs, math.ceil(outs * window / C), reads, writes
    m, k, n = st.gemm
    macs = m * k * n
    nt, mt, kt = math.ceil(n / C), math.ceil(m / R), math.ceil(k / R)
    if cfg.dataflow == "ws":
        reads["buffer"] = m * k * nt * ab + k * n * wb + (kt - 1) * m * n * cb
        writes["buffer"] = kt * m * n * cb
        reads["rf"], writes["rf"] = macs, k * n          # stationary weight; shadow loads
        reads["array"] = 2 * macs                        # activation and psum hops
    else:
        reads["buffer"] = m * k * nt * ab + k * n * mt * wb
        writes["buffer"] = m * n * cb
        reads["rf"], writes["rf"] = macs, macs           # accumulator read and write
        reads["array"] = 2 * macs + m * n                # operand hops; drain chain
    return macs, cfg.gemm_cycles(m, k, n), reads, writes


def systolic_steps(cfg: SystolicConfig, steps: list[Step], mem: Memory = Memory(),
                   costs: CostTable = HOROWITZ_45NM) -> list[LayerPerf]:
    """Per-layer performance of ``steps`` on a systolic array ``cfg``."""
    out = []
    for st, dram in zip(steps, dram_traffic(cfg, steps, mem)):
        macs, compute, reads, writes = onchip_step(cfg, st)
        note = ""
        if st.free:
            note = "fused" if st.layer.kind == "relu" else "addressing only"
        elif st.gemm is None:
            note = f"vector unit, {cfg.cols} lanes"
        tiling = None if st.gemm is None else {**_tiles(cfg, *st.gemm), **dram["where"]}
        reads["dram"], writes["dram"] = dram["read"], dram["write"]
        dbytes = dram["read"] + dram["write"]
        cycles = compute
        if mem.dram_bytes_per_cycle is not None and dbytes:
            cycles = max(compute, math.ceil(dbytes / mem.dram_bytes_per_cycle))
        out.append(LayerPerf(
            name=st.layer.name, type=st.layer.kind, engine=f"systolic-{cfg.dataflow}",
            macs=macs, cycles=cycles, compute_cycles=compute, pes=cfg.rows * cfg.cols,
            reads=reads, writes=writes, dram_bytes=dbytes,
            energy=_energy(costs, macs, reads, writes), energy_unit=costs.unit,
            energy_pj=_energy(HOROWITZ_45NM, macs, reads, writes), gemm=st.gemm, note=note,
            tiling=tiling))
    return out


def systolic_layer(cfg: SystolicConfig, layer, in_shape, mem: Memory = Memory(),
                   costs: CostTable = HOROWITZ_45NM) -> LayerPerf:
    """One layer alone (its input read from and output written to DRAM)."""
    from nnloom.gen.frontend import Network

    net = Network(layer.name, in_shape, [layer])
    return systolic_steps(cfg, layer_steps(net), mem, costs)[0]


def gemm_perf(cfg: SystolicConfig, m: int, k: int, n: int, mem: Memory = Memory(),
              costs: CostTable = HOROWITZ_45NM, name: str = "gemm") -> LayerPerf:
    """A bare M x K x N GEMM (a SCALE-Sim GEMM row): A (M x K) in, C (M x N) out."""
    from nnloom.gen.frontend import Dense

    st = Step(Dense(name, n, bias=False), (m * k,), (m * n,), (m, k, n), False)
    return systolic_steps(cfg, [st], mem, costs)[0]


# -- every engine ------------------------------------------------------------------

def _hook(engine: str):
    mod_name, fn_name = ENGINE_HOOKS[engine]
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        if e.name != mod_name:
            raise
        raise EngineUnavailable(f"engine {engine!r} is unavailable: its model "
                                f"{mod_name} is not installed yet") from None
    fn = getattr(mod, fn_name, None)
    if fn is None:
        raise EngineUnavailable(f"engine {engine!r} is unavailable: {mod_name} has no "
                                f"{fn_name}(layer, in_shape, **options)")
    return fn


def _hook_layer(engine, fn, st: Step, costs: CostTable, options: dict) -> LayerPerf:
    d = fn(st.layer, st.in_shape, **options)
    reads = {lvl: int(d.get("reads", {}).get(lvl, 0)) for lvl in LEVELS}
    writes = {lvl: int(d.get("writes", {}).get(lvl, 0)) for lvl in LEVELS}
    macs = int(d["macs"])
    return LayerPerf(name=st.layer.name, type=st.layer.kind, engine=engine, macs=macs,
                     cycles=int(d["cycles"]), compute_cycles=int(d.get("compute_cycles", d["cycles"])),
                     pes=int(d["pes"]), reads=reads, writes=writes,
                     dram_bytes=int(d["dram_bytes"]), energy=_energy(costs, macs, reads, writes),
                     energy_unit=costs.unit,
                     energy_pj=_energy(HOROWITZ_45NM, macs, reads, writes), gemm=st.gemm,
                     note=str(d.get("note", "")))


def network_perf(network, engine: str = "systolic", config: SystolicConfig | None = None,
                 memory: Memory = Memory(), costs: CostTable = HOROWITZ_45NM,
                 **options) -> NetworkPerf:
    """Per-layer performance of ``network`` (a :class:`gen.network.Network`).

    ``engine="systolic"`` needs ``config``; other engines pass ``options`` to
    their hook and raise :class:`EngineUnavailable` until their model lands.
    """
    steps = layer_steps(network)
    if engine == "systolic":
        cfg = config or SystolicConfig()
        layers = systolic_steps(cfg, steps, memory, costs)
        return NetworkPerf(layers, cfg.rows * cfg.cols, memory.dram_bytes_per_cycle, costs)
    if engine not in ENGINE_HOOKS:
        raise EngineUnavailable(f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")
    fn = _hook(engine)
    layers = [_hook_layer(engine, fn, st, costs, options) for st in steps]
    pes = max((lp.pes for lp in layers), default=1)
    return NetworkPerf(layers, pes, memory.dram_bytes_per_cycle, costs)
