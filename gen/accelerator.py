"""From a network file to a generated accelerator: quantize, size, compile,
emit, and account.

* :func:`quantize_network` quantizes a float network to int8 (calibrating on
  the first 256 digits of the training split for digits-shaped networks, or
  on given samples);
* :func:`size_config` picks the smallest power-of-two buffer depths the
  network needs for a P x P array (or checks a given config);
* :func:`config_for_board` takes the array size from the planner's choice for
  a board (the largest square array with no more PEs than the planner's);
* :func:`generate` writes the output directory (Verilog, program, DRAM image,
  report, integrator's README) whole or not at all;
* :func:`energy_estimate` turns a run's counters into energy with a cost
  table.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from nnloom.gen.compiler.compile import Program, compile_network
from nnloom.gen.perf.energy import HOROWITZ_45NM, CostTable
from nnloom.gen.frontend.loaders import load_network
from nnloom.gen.frontend.quantize import quantize
from nnloom.gen.verilog import to_verilog
from nnloom.hw.accel import ERRORS, REGS, VERSION, Accelerator
from nnloom.hw.accel_core import AccelConfig
from nnloom.hw.params import ParamError

__all__ = ["quantize_network", "size_config", "config_for_board", "square_side", "SIZES", "check_size", "generate",
           "energy_estimate", "layer_table", "DIGITS_SHAPES"]

DIGITS_SHAPES = ((64,), (1, 8, 8))


def quantize_network(network, calibration=None):
    """int8 :class:`~nnloom.gen.frontend.qtypes.QuantizedNetwork` of a float network."""
    if calibration is None:
        if tuple(network.input_shape) not in DIGITS_SHAPES:
            raise ValueError(f"{network.source}: input.shape: calibration data needed for "
                             f"{list(network.input_shape)} (digits networks take [64] or [1, 8, 8])")
        from nnloom.gen.train.digits import digits_split
        calibration = digits_split(0, shape=network.input_shape)[0][:256]
    return quantize(network, calibration)


def _pow2(n: int, lo: int = 16) -> int:
    return max(lo, 1 << max(0, (n - 1).bit_length()))


#: Array sides the generator builds: 2 (on a 16-bit bus, for the smallest
#: FPGAs) and the multiples of 4 up to 32 (on a 32-bit bus).
SIZES = (2, *range(4, 33, 4))


def check_size(size) -> int:
    """``size`` if it is in :data:`SIZES`, else :class:`~hw.params.ParamError`."""
    if size not in SIZES:
        raise ParamError("size", size, "2 or a multiple of 4 in 4..32")
    return size


def size_config(qnet, size: int = 8, data_width: int | None = None) -> AccelConfig:
    """Smallest power-of-two buffers and program memory that hold ``qnet`` on a
    size x size array (``size`` in :data:`SIZES`), with the max-pooling unit
    only if the network pools.  ``data_width`` defaults to
    :meth:`AccelConfig.bus_width_for` (32 bits; 16 for P = 2)."""
    P = check_size(size)
    if data_width is None:
        data_width = AccelConfig.bus_width_for(P)
    maps, weights, pixels = [], [], [1]
    shape = qnet.input_shape if len(qnet.input_shape) == 3 else (qnet.input_shape[0], 1, 1)
    maps.append(shape[1] * shape[2] * math.ceil(shape[0] / P))
    for ql in qnet.layers:
        out = ql.out_shape if len(ql.out_shape) == 3 else (ql.out_shape[0], 1, 1)
        maps.append(out[1] * out[2] * math.ceil(out[0] / P))
        if ql.kind in ("conv", "fc"):
            c = ql.weight.shape[1]
            k = ql.weight.shape[2] * ql.weight.shape[3] if ql.kind == "conv" else 1
            if ql.kind == "fc":   # fc over a map: kernel = whole map, channels of the map
                cin = ql.in_shape if len(ql.in_shape) == 3 else (ql.in_shape[0], 1, 1)
                c, k = cin[0], cin[1] * cin[2]
            weights.append(k * math.ceil(c / P) * P)
            pixels.append(out[1] * out[2])
    cfg = AccelConfig(size=P, act_depth=_pow2(max(maps)), wbuf_depth=_pow2(max(weights, default=16)),
                      pbuf_depth=max(16, P * 2), acc_depth=_pow2(max(pixels), 1),
                      data_width=data_width, layers=max(1, min(64, len(qnet.layers))),
                      maxpool=any(ql.kind == "maxpool" for ql in qnet.layers))
    n = len(compile_network(qnet, replace(cfg, imem_depth=1024)).instructions)
    return replace(cfg, imem_depth=_pow2(n, 2))


def config_for_board(network, qnet, board: str) -> tuple[AccelConfig, object]:
    """Array size from the planner's plan for ``board``: the largest side
    P (2, or a multiple of 4) with P * P no more than the planner's PEs.
    (The planner sizes the array alone; :func:`nnloom.fpga.fit.largest_fit` checks
    the whole board top.)"""
    from nnloom.gen.planner.boards import board as get_board
    from nnloom.gen.planner.plan import plan

    b = get_board(board)
    p = plan(network, b.budget)
    return size_config(qnet, square_side(p.config.rows * p.config.cols)), p


def square_side(pes: int) -> int:
    """The largest array side P in :data:`SIZES` with P * P <= ``pes`` (2 if
    none)."""
    return max([SIZES[0]] + [s for s in SIZES if s * s <= pes])


def layer_table(prog: Program, measured: list | None = None) -> list[dict]:
    P = prog.config.size
    rows = []
    for i, layer in enumerate(prog.layers):
        cyc = measured[i] if measured is not None and i < len(measured) else layer.cycles
        rows.append({"name": layer.name, "type": layer.kind, "macs": layer.macs,
                     "cycles": cyc, "model_cycles": layer.cycles,
                     "utilization": layer.macs / (P * P * cyc) if cyc else 0.0})
    return rows


def energy_estimate(prog: Program, costs: CostTable = HOROWITZ_45NM) -> dict:
    """Energy of one inference from the program's own access counts.

    MACs: every MAC the array performs (padding included).  Buffer accesses
    (words of P bytes or 32-bit accumulators, counted per byte for the
    Horowitz per-byte figures): one activation word and, per tile, P weight
    words per CONV pixel pass; one accumulator read-modify-write per result;
    one output word per pixel.  DRAM: the bytes of the program, weights,
    parameters, input and output moved once.  Register-file and array
    transfers: two operand moves per MAC (activation right, partial sum down).
    """
    P = prog.config.size
    macs = sum(L.array_macs for L in prog.layers)
    buf_bytes = 0
    for L in prog.layers:
        for ins in prog.instructions[L.first:L.first + L.count]:
            kt = ins["kr"] * ins["ks"] * ins["cg"]
            pix = ins["e"] * ins["f"]
            if ins["op"] == 4:     # CONV
                buf_bytes += kt * pix * P + kt * P * P + 2 * kt * pix * 4 * P + pix * P
            else:
                buf_bytes += pix * ins["cg"] * ins["kr"] * ins["kr"] * P + pix * ins["cg"] * P
    dram = sum(n for name, (_, n) in prog.regions.items())
    acc = {"rf": macs, "array": 2 * macs, "buffer": buf_bytes, "dram": dram}
    return {"macs": macs, "accesses": acc, "energy": costs.energy(macs, acc), "unit": costs.unit,
            "table": costs.name, "breakdown": costs.breakdown(macs, acc)}


def _readme(prog: Program, cfg: AccelConfig, name: str) -> str:
    regs = "\n".join(f"| 0x{off:03X} | {reg} |" for reg, off in REGS.items())
    regions = "\n".join(f"| {k} | 0x{a:08X} | {n} |" for k, (a, n) in prog.regions.items())
    errors = "\n".join(f"| {k} | {v} |" for k, v in ERRORS.items())
    return f"""# {name}: generated accelerator (nnloom, version {VERSION})

Top module `nnloom_accel` in `accel.v`: a {cfg.size} x {cfg.size} int8 weight-stationary
systolic array with its buffers, a controller and DMA. See docs/accelerator.md in
nnloom for the instruction set and the data layouts.

## Ports
| port | direction | meaning |
|---|---|---|
| `clk`, `rst` | in | clock; synchronous active-high reset |
| `s_axil__*` | slave | AXI4-Lite, 12-bit byte addresses, 32-bit data: the registers |
| `m_axi__*` | master | AXI4, 32-bit addresses, {cfg.data_width}-bit data, INCR bursts of at most 16 beats: DRAM |
| `irq` | out | `done` and interrupt enable (CTRL bit 2) |

## Registers
| offset | name |
|---|---|
{regs}

CTRL (write): bit 0 start, bit 1 clear done/error, bit 2 interrupt enable.
STATUS: bit 0 busy, bit 1 done, bit 2 error, bits 8..15 error code.
LAYER0 + 4 i: compute cycles of layer i.

## Error codes
| code | meaning |
|---|---|
{errors}

## Memory image (`image.bin`, load at the DRAM base you give PROG_BASE)
| region | offset | bytes |
|---|---|---|
{regions}

All addresses in the program are absolute DRAM byte addresses assuming the image is
loaded at 0; rebuild with another base if needed. The input region takes one sample
in the channels-last int8 layout (`input_bytes` in gen/compiler/compile.py); the output region
holds the result in the same layout.

## Running one inference
1. Load `image.bin` into DRAM at 0 (once).
2. Write the input sample's bytes at the input region.
3. Write PROG_BASE = 0x{prog.regions['program'][0]:08X}, PROG_LEN = {len(prog.instructions)}.
4. Write CTRL = 0x5 (start, interrupt enable); wait for `irq` (or poll STATUS bit 1).
5. Read the output region; write CTRL = 0x2 to clear `done`.
"""


def generate(network_path, out_dir, *, board: str | None = None, size: int | None = None,
             network=None, qnet=None) -> dict:
    """Write the accelerator for a network into ``out_dir`` (whole or not at all)."""
    network = network or load_network(network_path)
    qnet = qnet or quantize_network(network)
    the_plan = None
    if size is not None:
        cfg = size_config(qnet, size)
    elif board is not None:
        cfg, the_plan = config_for_board(network, qnet, board)
    else:
        cfg = size_config(qnet, 8)
    prog = compile_network(qnet, cfg)
    verilog = to_verilog(Accelerator(cfg), name="nnloom_accel")
    energy = energy_estimate(prog)
    report = {
        "network": qnet.name, "board": board, "config": cfg.to_dict(),
        "instructions": len(prog.instructions),
        "regions": {k: {"addr": a, "bytes": n} for k, (a, n) in prog.regions.items()},
        "layers": [dict(row, dram_bytes=0, energy_pj=None) for row in layer_table(prog)],
        "totals": {"macs": sum(L.macs for L in prog.layers),
                   "cycles": prog.predicted_cycles(),
                   "energy_pj": energy["energy"] if energy["unit"] == "pJ" else None},
        "energy": energy,
    }
    if the_plan is not None:
        report["plan"] = {"engine": the_plan.engine, "rows": the_plan.config.rows,
                          "cols": the_plan.config.cols, "reasons": the_plan.reasons}
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (tmp / "accel.v").write_text(verilog)
        (tmp / "program.bin").write_bytes(prog.program_bytes())
        (tmp / "image.bin").write_bytes(prog.image())
        (tmp / "report.json").write_text(json.dumps(report, indent=2, default=_json))
        (tmp / "README.md").write_text(_readme(prog, cfg, qnet.name))
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"config": cfg, "program": prog, "report": report, "qnet": qnet, "network": network}


def _json(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
