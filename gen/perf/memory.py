"""Steps, buffers and DRAM traffic of the systolic performance model.

:func:`layer_steps` turns a network into costed steps (conv/fc as GEMMs,
fused ReLU and flatten free); :class:`Memory` holds the buffer sizes and the
DRAM bandwidth; :func:`dram_bytes` gives each step's DRAM traffic under
them (the rules are in docs/perf.md, "DRAM bytes"); :func:`min_buffers`,
:func:`buffer_needs` and :func:`ideal_buffers` give the sizes the planner
tries.  :mod:`nnloom.gen.perf.model` re-exports all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nnloom.hw.systolic import SystolicConfig

__all__ = ["Memory", "Step", "layer_steps", "min_buffers", "buffer_needs", "weight_bytes",
           "ideal_buffers", "dram_traffic", "dram_bytes"]

def bits_to_bytes(bits: int) -> int:
    return (bits + 7) // 8


@dataclass(frozen=True)
class Memory:
    """On-chip buffers (bytes; ``None`` = large enough for anything) and the
    DRAM bandwidth (bytes per accelerator cycle; ``None`` = ideal).

    ``act``: activations (ping-pong between layers); ``weight``: weights;
    ``out``: partial sums at the accumulator width.  ``None`` holds any one
    layer's working set but keeps nothing across samples; a weight buffer of
    at least :func:`weight_bytes` keeps every weight on chip (loaded once,
    not counted per sample).
    """

    act: int | None = None
    weight: int | None = None
    out: int | None = None
    dram_bytes_per_cycle: float | None = None

    def fits(self, name: str, need: int) -> bool:
        size = getattr(self, name)
        return size is None or size >= need

    def as_dict(self) -> dict[str, int | None]:
        return {"act": self.act, "weight": self.weight, "out": self.out}


# -- the network as steps --------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """A layer with its shapes and role: ``gemm`` (M, K, N) for conv/fc,
    ``free`` for fused ReLU and flatten (no cost of their own)."""

    layer: object
    in_shape: tuple
    out_shape: tuple
    gemm: tuple[int, int, int] | None
    free: bool
    chained: bool = True   # reads the previous step's output (False: SCALE-Sim rows)


def layer_steps(network) -> list[Step]:
    steps, prev_mac = [], False
    chained = getattr(network, "layer_inputs", None) is None
    for layer, ins, outs in zip(network.layers, network.in_shapes(), network.shapes()):
        gemm = layer.gemm_shape(ins) if layer.kind in ("conv", "fc") else None
        free = chained and (layer.kind == "flatten" or (layer.kind == "relu" and prev_mac))
        steps.append(Step(layer, ins, outs, gemm, free, chained))
        prev_mac = gemm is not None or (free and prev_mac)
    return steps


def elements(shape) -> int:
    return math.prod(shape)


# -- buffers -----------------------------------------------------------------------

def min_buffers(cfg: SystolicConfig) -> dict[str, int]:
    """The smallest buffers that run anything (double-buffered operand beats
    and, for WS, one weight tile; the rest streams from DRAM)."""
    ab, wb, cb = bits_to_bytes(cfg.a_width), bits_to_bytes(cfg.w_width), bits_to_bytes(cfg.acc_width)
    R, C = cfg.rows, cfg.cols
    if cfg.dataflow == "ws":
        return {"act": 2 * R * ab, "weight": 2 * R * C * wb, "out": 2 * C * cb}
    return {"act": 2 * R * ab, "weight": 2 * C * wb, "out": 2 * R * C * cb}


def buffer_needs(cfg: SystolicConfig, steps: list[Step]) -> dict[str, list[int]]:
    """Per buffer, the sizes at which some layer's DRAM traffic drops
    (the planner's candidates); every list starts with the minimum."""
    ab, wb, cb = bits_to_bytes(cfg.a_width), bits_to_bytes(cfg.w_width), bits_to_bytes(cfg.acc_width)
    lo = min_buffers(cfg)
    out = {k: {v} for k, v in lo.items()}
    for st in steps:
        if st.free:
            continue
        i, o = elements(st.in_shape) * ab, elements(st.out_shape) * ab
        out["act"] |= {i, i + o}
        if st.gemm and cfg.dataflow == "os":       # OS refetches A row tiles and weights
            m, k, n = st.gemm
            out["act"].add(cfg.rows * k * ab)
            out["weight"].add(k * n * wb)
        elif st.gemm and st.gemm[1] > cfg.rows:     # WS spills partial sums
            out["out"].add(st.gemm[0] * cfg.cols * cb)
    out["weight"].add(weight_bytes(cfg, steps))      # every weight resident
    return {name: sorted(v for v in vals if v >= lo[name]) for name, vals in out.items()}


def weight_bytes(cfg: SystolicConfig, steps: list[Step]) -> int:
    """Weights of every conv/fc step (bytes; biases at the accumulator width):
    a weight buffer this large keeps them on chip across samples."""
    wb, cb = bits_to_bytes(cfg.w_width), bits_to_bytes(cfg.acc_width)
    return sum(st.gemm[1] * st.gemm[2] * wb + (st.gemm[2] * cb if getattr(st.layer, "bias", False)
                                               else 0) for st in steps if st.gemm)


def ideal_buffers(cfg: SystolicConfig, steps: list[Step]) -> dict[str, int]:
    """Buffers at which no layer refetches or spills anything."""
    return {name: vals[-1] for name, vals in buffer_needs(cfg, steps).items()}


# -- DRAM traffic -----------------------------------------------------------------

def _resident(steps: list[Step], mem: Memory, ab: int) -> tuple[list[bool], list[bool]]:
    """Per step: does its input / output stay on chip?  A boundary between two
    costed steps stays on chip when the act buffer holds input + output of
    both; the network's input and output always cross DRAM."""
    idx = [i for i, st in enumerate(steps) if not st.free]
    need = {i: (elements(steps[i].in_shape) + elements(steps[i].out_shape)) * ab for i in idx}
    in_res, out_res = [False] * len(steps), [False] * len(steps)
    for a, b in zip(idx, idx[1:]):
        if steps[b].chained:
            in_res[b] = out_res[a] = mem.fits("act", max(need[a], need[b]))
    return in_res, out_res


def _dram(cfg, st: Step, mem: Memory, in_res: bool, out_res: bool,
          w_res: bool = False) -> dict:
    """DRAM bytes of one costed step, read and written (see docs/perf.md),
    with where its input, weights, partial sums and output live."""
    ab, wb, cb = bits_to_bytes(cfg.a_width), bits_to_bytes(cfg.w_width), bits_to_bytes(cfg.acc_width)
    in_b, out_b = elements(st.in_shape) * ab, elements(st.out_shape) * ab
    rd = wr = 0
    where = {"input": "on chip" if in_res else "DRAM once",
             "output": "on chip" if out_res else "DRAM"}
    if st.gemm is None:
        rd += 0 if in_res else in_b
    else:
        m, k, n = st.gemm
        R, C = cfg.rows, cfg.cols
        nt, mt, kt = math.ceil(n / C), math.ceil(m / R), math.ceil(k / R)
        if not in_res:
            if mem.fits("act", in_b):
                rd += in_b
            elif cfg.dataflow == "os" and mem.fits("act", R * k * ab):
                rd += m * k * ab                      # im2col rows, once per row tile
                where["input"] = "DRAM, im2col rows once"
            else:
                rd += m * k * ab * nt                 # re-streamed for every column tile
                where["input"] = f"DRAM, im2col rows {nt}x"
        bias = n * cb if getattr(st.layer, "bias", False) else 0
        if w_res:
            where["weights"] = "resident"             # loaded once, before the first sample
        elif cfg.dataflow == "ws" or mem.fits("weight", k * n * wb):
            rd += k * n * wb + bias
            where["weights"] = "DRAM once"
        else:
            rd += k * n * wb * mt + bias
            where["weights"] = f"DRAM {mt}x"
        where["psums"] = "in the array"
        if cfg.dataflow == "ws" and kt > 1:
            where["psums"] = "out buffer"
            if not mem.fits("out", m * C * cb):
                spill = (kt - 1) * m * n * cb         # partial sums out and back in
                rd += spill
                wr += spill
                where["psums"] = "spilled to DRAM"
    wr += 0 if out_res else out_b
    return {"read": rd, "write": wr, "where": where}


def dram_traffic(cfg: SystolicConfig, steps: list[Step], mem: Memory) -> list[dict[str, int]]:
    """``{"read": bytes, "write": bytes, "where": {...}}`` of DRAM for every
    step under ``mem`` (``where``: input, weights, psums, output placement)."""
    in_res, out_res = _resident(steps, mem, bits_to_bytes(cfg.a_width))
    w_res = mem.weight is not None and mem.weight >= weight_bytes(cfg, steps)
    return [{"read": 0, "write": 0, "where": {}} if st.free
            else _dram(cfg, st, mem, in_res[i], out_res[i], w_res) for i, st in enumerate(steps)]


def dram_bytes(cfg: SystolicConfig, steps: list[Step], mem: Memory) -> list[int]:
    """DRAM bytes (read + written) of every step (the planner calls this often)."""
    return [d["read"] + d["write"] for d in dram_traffic(cfg, steps, mem)]
