"""From a network file to a generated accelerator: the one build pipeline.

:func:`build` runs every stage once: load the network, quantize it, take the
array size (``size``, the planner's plan for a ``board``, or the default),
size the buffers and compile the program (one compile), and returns a
:class:`Build`; its :attr:`Build.verilog` elaborates the design once, and
:meth:`Build.write` writes the output directory whole or not at all.
With a ``board`` the design is the planner's (:func:`nnloom.gen.planner.plan`),
which searches the designs :func:`sized` makes for every side in
:data:`ARRAY_SIDES`: what ``nnloom plan --board`` prints is what is built.
``nnloom generate``, ``nnloom simulate``, ``nnloom fpga build`` and the bench
scripts all go through :func:`build`; the size rules live here
(:data:`ARRAY_SIDES`, :func:`check_size`) and nowhere else.

* :func:`quantize_network` quantizes a float network to int8 (calibrating on
  the first 256 digits of the training split for digits-shaped networks, or
  on given samples);
* :func:`sized` picks the smallest power-of-two buffer depths the network
  needs for a P x P array and compiles its program, once;
* :func:`first_fit` walks the array sides down from a start until a given
  fit check passes;
* :class:`Design` is the one ``config`` object that ``plan -o``,
  ``report.json`` and ``simulate --json`` write;
* :func:`energy_estimate` turns a program's access counts into energy with a
  cost table.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np

from nnloom.gen.compiler import CompileError, Program, compile_network
from nnloom.gen.frontend import load_network, quantize
from nnloom.gen.perf import HOROWITZ_45NM, CostTable
from nnloom.gen.verilog import to_verilog
from nnloom.hw.accel import ERRORS, REGS, VERSION, Accelerator
from nnloom.hw.accel_core import AccelConfig
from nnloom.hw.errors import InputError
from nnloom.hw.params import ParamError

__all__ = ["Build", "build", "write_dir", "replace_dir", "quantize_network", "sized", "size_config",
           "first_fit", "Design", "ARRAY_SIDES", "DEFAULT_SIDE", "BATCHES", "check_size",
           "check_batch", "generate", "energy_estimate", "layer_table", "DIGITS_SHAPES", "TOP_NAME"]

DIGITS_SHAPES = ((64,), (1, 8, 8))
#: The Verilog top module of a generated accelerator.
TOP_NAME = "nnloom_accel"
#: Array sides the generator builds: 2 (on a 16-bit bus, for the smallest
#: FPGAs) and the multiples of 4 up to 32 (on a 32-bit bus).
ARRAY_SIDES = (2, *range(4, 33, 4))
#: The array side when neither a size nor a board is given.
DEFAULT_SIDE = 8
#: Batch sizes the generator builds (batching comes with the v2 accelerator).
BATCHES = tuple(range(1, 256))      # the instruction's 8-bit map width holds a batch
#: Program memory the sizing compile allows before the depth is fitted.
_MAX_IMEM = 1024
#: Networks with at most this many weight words (of P bytes) keep them on chip by default.
RESIDENT_WORDS = 8192
#: The accumulator holds at most this many output pixels; larger layers are tiled.
ACC_WORDS = 256


def quantize_network(network, calibration=None):
    """int8 :class:`~nnloom.gen.frontend.QuantizedNetwork` of a float network,
    calibrated on ``calibration`` (float inputs ``[N, *input_shape]``) or,
    for digits-shaped networks, on the first 256 training digits."""
    if calibration is None:
        if tuple(network.input_shape) not in DIGITS_SHAPES:
            raise InputError(f"{network.source}: input.shape: calibration data needed for "
                             f"{list(network.input_shape)} (digits networks take [64] or [1, 8, 8])")
        from nnloom.gen.train import digits_split
        calibration = digits_split(0, shape=network.input_shape)[0][:256]
    return quantize(network, calibration)


def _pow2(n: int, lo: int = 16) -> int:
    return max(lo, 1 << max(0, (n - 1).bit_length()))


def check_size(size) -> int:
    """``size`` if it is in :data:`ARRAY_SIDES`, else :class:`~nnloom.hw.params.ParamError`."""
    if size not in ARRAY_SIDES:
        raise ParamError("size", size, "2 or a multiple of 4 in 4..32")
    return size


def check_batch(batch) -> int:
    """``batch`` if the generator builds it (:data:`BATCHES`), else a one-line
    :class:`~nnloom.hw.errors.InputError` naming ``--batch``."""
    if not isinstance(batch, int) or isinstance(batch, bool) or batch not in BATCHES:
        raise InputError(f"--batch: expected an integer in {BATCHES[0]}..{BATCHES[-1]}, got {batch}")
    return batch


def sized(qnet, size: int = DEFAULT_SIDE, data_width: int | None = None, *,
          batch: int = 1, resident: bool | None = None) -> tuple[AccelConfig, Program]:
    """The smallest power-of-two buffers and program memory that hold ``qnet``
    on a size x size array (``size`` in :data:`ARRAY_SIDES`) for ``batch``
    samples per run, with the max-pooling unit only if the network pools,
    and the program compiled for it (once: the program does not depend on
    the program memory's depth, which the compiled instruction count then
    sets).  ``resident`` keeps every weight on chip (buffers sized to hold
    them all; default: when they take at most :data:`RESIDENT_WORDS` words).
    The accumulator holds at most :data:`ACC_WORDS` pixels: larger layers
    run in tiles of output rows.  ``data_width`` defaults to
    :meth:`AccelConfig.bus_width_for` (32 bits; 16 for P = 2)."""
    P = check_size(size)
    batch = check_batch(batch)
    if data_width is None:
        data_width = AccelConfig.bus_width_for(P)

    def chw(shape):
        return tuple(shape) if len(shape) == 3 else (shape[0], 1, 1)

    # as the compiler walks the network: a flatten moves no data, so a fully
    # connected layer after one reads the map before it (kernel = the whole map)
    cur = chw(qnet.input_shape)
    maps, weights, pixels, rows = [cur[1] * cur[2] * math.ceil(cur[0] / P)], [], [1], [1]
    first = next((ql for ql in qnet.layers if ql.kind != "flatten"), None)
    if first is not None and first.kind == "conv":    # the compiler may pack its columns
        maps.append(cur[1] * chw(first.out_shape)[2] * math.ceil(cur[0] * first.weight.shape[3] / P))
    total, groups = 0, 0
    for ql in qnet.layers:
        if ql.kind == "flatten":
            continue
        out = chw(ql.out_shape)
        maps.append(out[1] * out[2] * math.ceil(out[0] / P))
        if ql.kind in ("conv", "fc"):
            if ql.kind == "conv":
                c, k = ql.weight.shape[1], ql.weight.shape[2] * ql.weight.shape[3]
            else:
                c, k = cur[0], cur[1] * cur[2]
            ng = math.ceil(out[0] / P)
            weights.append(k * math.ceil(c / P) * P)
            total += ng * weights[-1]
            groups += ng
            pixels.append(batch if ql.kind == "fc" else out[1] * out[2])
            rows.append(1 if ql.kind == "fc" else 4 * out[2])    # a row, fused 2 x 2 pooling
        cur = out
    if resident is None:
        resident = total <= RESIDENT_WORDS
    acc = _pow2(max(min(max(pixels), ACC_WORDS), max(rows)), 1)
    # at least one 4-kbit block RAM's worth for the two banks: a deeper bank
    # costs nothing and holds more groups per block (fewer instructions)
    wdepth = _pow2(max(max(weights, default=16), 256 // P))
    pdepth = max(16, P * 2)
    if resident:
        wdepth = max(wdepth, _pow2(-(-total // 2)))
        pdepth = max(pdepth, P * _pow2(-(-groups // 2), 1))
    cfg = AccelConfig(size=P, act_depth=_pow2(batch * max(maps)), wbuf_depth=wdepth,
                      pbuf_depth=pdepth, acc_depth=acc,
                      data_width=data_width, layers=max(1, min(64, len(qnet.layers))),
                      maxpool=any(ql.kind == "maxpool" for ql in qnet.layers),
                      imem_depth=_MAX_IMEM, batch=batch, resident=resident,
                      # the 2 x 2 array is for the iCE40's few logic cells: one
                      # post-processing lane, one-entry queues
                      queue_depth=1 if P == 2 else 2, post_lanes=1 if P == 2 else 0)
    while True:
        try:
            prog = compile_network(qnet, cfg)
            break
        except CompileError as e:
            # packing whole blocks into two banks can need more than half the total
            if (not resident or "resident weights" not in str(e) or cfg.wbuf_depth >= 32768
                    or cfg.pbuf_depth >= 4096):
                raise
            cfg = replace(cfg, wbuf_depth=2 * cfg.wbuf_depth, pbuf_depth=2 * cfg.pbuf_depth)
    cfg = replace(cfg, imem_depth=_pow2(max(len(prog.instructions), len(prog.preload)), 2))
    return cfg, replace(prog, config=cfg)


def size_config(qnet, size: int = DEFAULT_SIDE, data_width: int | None = None) -> AccelConfig:
    """The configuration of :func:`sized` alone."""
    return sized(qnet, size, data_width)[0]


@dataclass(frozen=True)
class Design:
    """What is built, as one object: the engine, its dataflow, the array's
    rows x cols, the batch, and the :class:`AccelConfig` the Verilog is
    elaborated from.  :meth:`to_dict` is the ``config`` that ``nnloom plan
    -o``, ``report.json`` and ``nnloom simulate --json`` write (the
    AccelConfig's parameters plus ``engine``, ``dataflow``, ``rows``,
    ``cols`` and ``batch``); today's accelerator is a square
    weight-stationary array at batch 1."""

    accel: AccelConfig

    engine = "systolic"
    dataflow = "ws"
    _EXTRA = ("engine", "dataflow", "rows", "cols")

    @property
    def batch(self) -> int:
        return self.accel.batch

    @property
    def rows(self) -> int:
        return self.accel.size

    @property
    def cols(self) -> int:
        return self.accel.size

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    def describe(self) -> str:
        return f"{self.rows}x{self.cols} {self.dataflow.upper()}"

    def to_dict(self) -> dict:
        return {"engine": self.engine, "dataflow": self.dataflow, "rows": self.rows,
                "cols": self.cols, **self.accel.to_dict()}

    @classmethod
    def from_dict(cls, values: dict) -> "Design":
        """The design of a ``config`` object (:meth:`to_dict`'s inverse)."""
        accel = AccelConfig.from_dict({k: v for k, v in values.items() if k not in cls._EXTRA})
        design = cls(accel)
        for key in cls._EXTRA:
            if key in values and values[key] != getattr(design, key):
                raise ParamError(key, values[key], f"{getattr(design, key)} for this accelerator")
        return design


def first_fit(qnet, fits: Callable[[AccelConfig, Program], object], *,
              upto: int = ARRAY_SIDES[-1]):
    """The largest array side at most ``upto`` for which ``fits(config,
    program)`` raises no :class:`~nnloom.hw.errors.InputError`:
    ``(config, program, error)``, with the error of the next side up (None
    if that is beyond ``upto``); ``(None, None, error)`` of the smallest side
    when none fits.  Each candidate is sized and compiled by :func:`sized`."""
    error = None          # of the last (smallest) size that did not fit
    for P in sorted((s for s in ARRAY_SIDES if s <= upto), reverse=True):
        cfg, prog = sized(qnet, P)
        try:
            fits(cfg, prog)
        except InputError as e:
            error = e
            continue
        return cfg, prog, error
    return None, None, error


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
    preload_step = ""
    if prog.preload:
        preload_step = (f" Then run the weight-loading program once (resident weights): "
                        f"PROG_BASE = 0x{prog.regions['preload'][0]:08X}, PROG_LEN = "
                        f"{len(prog.preload)}, CTRL = 0x5, wait for `irq`, CTRL = 0x2.")
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

CTRL (write): bit 0 start, bit 1 clear done/error, bit 2 interrupt enable, bit 3 keep
the loaded program (skip its load when PROG_BASE and PROG_LEN are unchanged).
STATUS: bit 0 busy, bit 1 done, bit 2 error, bits 8..15 error code.
LAYER0 + 4 i: cycles layer i ran in the core.

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
1. Load `image.bin` into DRAM at 0 (once).{preload_step}
2. Write the input ({cfg.batch} sample(s)) at the input region.
3. Write PROG_BASE = 0x{prog.regions['program'][0]:08X}, PROG_LEN = {len(prog.instructions)}.
4. Write CTRL = 0x5 (start, interrupt enable; 0xD from the second inference on keeps
   the loaded program); wait for `irq` (or poll STATUS bit 1).
5. Read the output region; write CTRL = 0x2 to clear `done`.
"""


@dataclass(frozen=True)
class Build:
    """One accelerator build: every stage's result, each computed once.

    ``config`` is the :class:`AccelConfig` the Verilog is elaborated from
    and ``program`` the program compiled for it; ``plan`` is the planner's
    :class:`~nnloom.gen.planner.Plan` when the design came from a board (its
    config and program are these), and ``planned_side`` its array side.
    ``note`` is kept for the reports' ``plan.note`` (empty: the plan is
    what is built)."""

    source: str
    network: object
    qnet: object
    config: AccelConfig
    program: Program
    board: str | None = None
    plan: object = None
    planned_side: int | None = None
    note: str = ""
    batch: int = 1

    @property
    def design(self) -> Design:
        """The :class:`Design` (the ``config`` object the reports write)."""
        return Design(self.config)

    @cached_property
    def verilog(self) -> str:
        """The accelerator's Verilog (top :data:`TOP_NAME`), elaborated once."""
        return to_verilog(Accelerator(self.config), name=TOP_NAME)

    def energy(self) -> dict:
        return energy_estimate(self.program)

    def report(self) -> dict:
        """``report.json``: the config the Verilog is built from, the program's
        regions, per-layer cycles and the energy estimate."""
        prog, energy = self.program, self.energy()
        report = {
            "network": self.qnet.name, "source": str(self.source), "board": self.board,
            "config": self.design.to_dict(),
            "instructions": len(prog.instructions),
            "regions": {k: {"addr": a, "bytes": n} for k, (a, n) in prog.regions.items()},
            "layers": [dict(row, dram_bytes=0, energy_pj=None) for row in layer_table(prog)],
            "totals": {"macs": sum(L.macs for L in prog.layers),
                       "cycles": prog.predicted_cycles(),
                       "energy_pj": energy["energy"] if energy["unit"] == "pJ" else None},
            "energy": energy,
        }
        if self.plan is not None:
            report["plan"] = {"engine": self.plan.engine, "rows": self.plan.config.rows,
                              "cols": self.plan.config.cols, "size": self.planned_side,
                              "board": self.plan.board, "cycles": self.plan.totals["cycles"],
                              "reasons": self.plan.reasons}
            if self.note:
                report["plan"]["note"] = self.note
        return report

    def files(self) -> dict[str, bytes]:
        """The output directory's files and their bytes."""
        return {"accel.v": self.verilog.encode(),
                "program.bin": self.program.program_bytes(),
                "image.bin": self.program.image(),
                "report.json": json.dumps(self.report(), indent=2, default=_json).encode(),
                "README.md": _readme(self.program, self.config, self.qnet.name).encode()}

    def write(self, out_dir) -> Path:
        """Write :meth:`files` into ``out_dir``, whole or not at all."""
        return write_dir(out_dir, self.files())


def write_dir(out_dir, files: dict[str, bytes]) -> Path:
    """Write ``files`` (relative name -> bytes) as the directory ``out_dir``,
    whole or not at all: they are written into a temporary directory beside
    it, which then replaces ``out_dir`` (a previous one is removed only once
    the new one is complete)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, data in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(data)
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def replace_dir(new: Path, out_dir: Path) -> None:
    """Move the finished directory ``new`` to ``out_dir``, replacing what is there."""
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(out_dir, old)
        os.replace(new, out_dir)
        shutil.rmtree(old)
    else:
        os.replace(new, out_dir)


def build(source, *, board: str | None = None, size: int | None = None, batch: int = 1,
          network=None, qnet=None, calibration=None,
          fits: Callable[[AccelConfig, Program], object] | None = None) -> Build:
    """Load, quantize, plan and compile, each once.

    The design is the ``size`` x ``size`` array if ``size`` is given; else,
    with a ``board``, the planner's plan for it
    (:func:`nnloom.gen.planner.plan`: the fastest design :func:`sized` makes
    that passes the board's fit check, ``fits`` if given, else
    :func:`nnloom.gen.planner.fit.board_fits`); else :data:`DEFAULT_SIDE`.
    ``batch`` must be in :data:`BATCHES`.  ``network`` and ``qnet`` skip
    loading and quantizing when the caller has them; ``calibration`` (float
    inputs) calibrates networks that do not take the digits.  Bad input
    raises an :class:`~nnloom.hw.errors.InputError` of one line."""
    check_batch(batch)
    if size is not None:
        check_size(size)
    network = network if network is not None else load_network(source)
    if not network.has_weights:
        raise InputError(f"{source}: weights: expected a network with weights to build for, "
                         "got none (timing only)")
    qnet = qnet if qnet is not None else quantize_network(network, calibration)
    the_plan = planned = None
    if size is not None:
        cfg, prog = sized(qnet, size, batch=batch)
    elif board is not None:
        from nnloom.gen.planner import PlanError, plan
        from nnloom.gen.planner import board as get_board

        try:
            the_plan = plan(network, get_board(board).budget, qnet=qnet, board=board, fits=fits,
                            batch=batch)
        except PlanError as e:
            raise PlanError(f"{source}: budget: {e}", e.minimum) from None
        cfg, prog, planned = the_plan.accel, the_plan.program, the_plan.accel.size
    else:
        cfg, prog = sized(qnet, DEFAULT_SIDE, batch=batch)
    return Build(str(source), network, qnet, cfg, prog, board, the_plan, planned, batch=batch)


def generate(network_path, out_dir, *, board: str | None = None, size: int | None = None,
             batch: int = 1, network=None, qnet=None) -> Build:
    """:func:`build` the accelerator for a network and write it into ``out_dir``."""
    b = build(network_path, board=board, size=size, batch=batch, network=network, qnet=qnet)
    b.write(out_dir)
    return b


def _json(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
