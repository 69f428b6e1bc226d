"""cocotb testbench for the EIE cluster (run by tests/sim/test_eie.py).

Parameters (``nnloom.sim.runner.tb_params()``): ``config`` (an EIEConfig as a dict),
``seed`` and ``cases``; a case is a list of layer specs run back to back
(the second layer's input is the first layer's output, left in place by the
source/destination swap) plus ``act``/``valid_prob``/``ready_prob``; see
:func:`make_case` for the layer kinds.

Structure: :func:`make_case` builds the layers (:mod:`nnloom.gen.compiler.compress`,
:mod:`nnloom.gen.compiler.eie_image`) and the input; a :class:`StreamSource` loads the memory
image and the input through ``io`` with random valid gaps and starts each
layer on ``cmd``; a :class:`StreamSink` with random ready gaps collects the
read-back on ``resp``; a busy monitor measures each layer's cycles.  The
scoreboard compares the outputs with :func:`nnloom.sim.golden.eie.spmv` bit for bit
and the cycles (monitor and the ``cycles`` counter) with
:func:`nnloom.gen.perf.eie.simulate_layer`.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from nnloom.gen.compiler import compress_layer
from nnloom.gen.compiler import encode
from nnloom.gen.compiler import Layer, build_image
from nnloom.gen.perf import simulate_layer
from nnloom.hw.eie_config import EIEConfig
from nnloom.sim.golden.eie import spmv
from nnloom.sim.runner import tb_params
from nnloom.sim.tb.streams import Clocked, StreamSink, StreamSource

#: The worked example of the spec: 8 x 4, non-zeros by row.
WORKED_NONZEROS = {0: (0, 1, 3), 1: (2,), 2: (1, 3), 4: (2, 3), 5: (0,), 6: (3,), 7: (1,)}


def _codebook(cfg: EIEConfig, rng, extreme=False) -> tuple[int, ...]:
    lo, hi = -(1 << (cfg.act_width - 1)), (1 << (cfg.act_width - 1)) - 1
    if extreme:
        return (0,) + tuple(int(v) for v in rng.choice([lo, hi], 15))
    one = 1 << cfg.frac_bits
    return (0,) + tuple(int(v) for v in rng.integers(max(lo, -2 * one), min(hi, 2 * one) + 1, 15))


def make_layer(cfg: EIEConfig, spec: dict, rng) -> Layer:
    """Layer kinds: ``random`` (float weights through :func:`compress_layer`),
    ``worked`` (the spec's 8 x 4 pattern), ``codes`` (random codes with
    ``density``; ``dead_pe`` empties one PE's rows, ``empty_cols`` clears
    columns, ``hot_pe`` makes one PE's rows dense, ``one_row`` keeps only the
    first row of every PE so adjacent entries hit one accumulator)."""
    kind = spec["kind"]
    rows, cols, relu = spec.get("rows", 8), spec.get("cols", 4), spec.get("relu", False)
    if kind == "random":
        w = rng.normal(0, 1, (rows, cols))
        cl = compress_layer(w, density=spec["density"], pes=cfg.pes, frac_bits=cfg.frac_bits,
                            weight_width=cfg.act_width)
        return Layer(cl.csc, tuple(int(v) for v in cl.codebook), relu)
    codes = np.zeros((rows, cols), dtype=np.int64)
    if kind == "worked":
        for r, cs in WORKED_NONZEROS.items():
            codes[r, list(cs)] = rng.integers(1, 16, len(cs))
    else:
        mask = rng.random((rows, cols)) < spec.get("density", 0.3)
        if "hot_pe" in spec:
            mask[spec["hot_pe"]::cfg.pes] = True
        if "dead_pe" in spec:
            mask[spec["dead_pe"]::cfg.pes] = False
        for j in spec.get("empty_cols", ()):
            mask[:, j] = False
        if spec.get("one_row"):
            mask[cfg.pes:] = False
            mask[:cfg.pes] = True
        codes[mask] = rng.integers(1, 16, int(mask.sum()))
    return Layer(encode(codes, cfg.pes), _codebook(cfg, rng, spec.get("extreme", False)), relu)


def make_act(cfg: EIEConfig, length: int, spec: dict, rng) -> np.ndarray:
    lo, hi = -(1 << (cfg.act_width - 1)), (1 << (cfg.act_width - 1)) - 1
    if spec.get("extreme"):
        vals = rng.choice([lo, hi], length)
    else:
        one = 1 << cfg.frac_bits
        vals = rng.integers(max(lo, -4 * one), min(hi, 4 * one) + 1, length)
    keep = rng.random(length) < spec.get("density", 1.0)
    for i in spec.get("zero", ()):
        keep[i] = False
    vals = np.where(keep & (vals == 0), 1, vals)
    return np.where(keep, vals, 0).astype(np.int64)


def make_case(cfg: EIEConfig, case: dict, seed: int):
    """(image, input vector, [(layer, expected output, expected timing)])."""
    rng = np.random.default_rng(seed)
    layers = [make_layer(cfg, spec, rng) for spec in case["layers"]]
    image = build_image(cfg, layers)
    act = make_act(cfg, layers[0].csc.cols, case.get("act", {}), rng)
    expect, x = [], act
    for layer in layers:
        y = spmv(cfg, layer.csc, layer.codebook, x, relu=layer.relu)
        timing = simulate_layer(cfg, layer.csc.counts(), x, layer.csc.rows)
        expect.append((layer, y, timing))
        x = y
    return image, act, expect


class BusyMonitor:
    """Lengths of the runs of cycles with ``busy`` high (one per layer)."""

    def __init__(self, clk: Clocked):
        self.clk, self.runs = clk, []
        cocotb.start_soon(self._run())

    async def _run(self):
        cur = 0
        while True:
            await FallingEdge(self.clk.clk)
            await ReadOnly()
            if int(self.clk.dut.busy.value):
                cur += 1
            elif cur:
                self.runs.append(cur)
                cur = 0

    async def wait_runs(self, n: int, timeout_cycles: int):
        for _ in range(timeout_cycles):
            if len(self.runs) >= n:
                return
            await FallingEdge(self.clk.clk)
        raise AssertionError(f"layer did not finish in {timeout_cycles} cycles")


@cocotb.test()
async def eie_cases(dut):
    p = tb_params()
    cfg = EIEConfig.from_dict(p["config"])
    seed = p.get("seed", 0)
    clk = Clocked(dut)
    await clk.reset()
    io = StreamSource(clk, "io", cfg.io_layout, rng=random.Random(seed))
    cmd = StreamSource(clk, "cmd", cfg.cmd_layout, rng=random.Random(seed + 1))
    resp = StreamSink(clk, "resp", cfg.act_shape, rng=random.Random(seed + 2))
    busy = BusyMonitor(clk)
    for n, case in enumerate(p["cases"]):
        label = f"case {n} {case.get('name', '')} (seed {seed})"
        image, act, expect = make_case(cfg, case, seed * 1000 + n)
        io.valid_prob = cmd.valid_prob = case.get("valid_prob", 1.0)
        resp.ready_prob = case.get("ready_prob", 1.0)
        io.send_many(image.io_beats() + image.act_beats(act))
        # I/O mode first: the image and the input must be in place.
        for _ in range(20 * len(io.queue) + 100):
            if io.idle:
                break
            await FallingEdge(clk.clk)
        assert io.idle, f"{label}: I/O writes not accepted"
        inputs = [act] + [y for _, y, _ in expect]
        for i, (layer, want, timing) in enumerate(expect):
            runs = len(busy.runs)
            cmd.send(image.cmd(i))
            await busy.wait_runs(runs + 1, 20 * timing.cycles + 200)
            got_cycles, counter = busy.runs[-1], int(dut.cycles.value)
            dut._log.info("%s layer %d: %d cycles (model %d, counter %d), %d broadcasts, "
                          "%d back-pressure stalls, efficiency %.3f", label, i, got_cycles,
                          timing.cycles, counter, timing.broadcasts, timing.stalls,
                          timing.efficiency)
            nonzeros = int(np.count_nonzero(inputs[i]))
            bcasts = int(dut.broadcasts.value)
            assert bcasts == timing.broadcasts == nonzeros, \
                f"{label} layer {i}: {bcasts} broadcasts, model {timing.broadcasts}, " \
                f"{nonzeros} non-zero inputs"
            if case.get("expect_stalls"):
                assert timing.stalls > 0, f"{label}: the queues never filled"
            assert got_cycles == timing.cycles == counter, \
                f"{label} layer {i}: {got_cycles} busy cycles, counter {counter}, " \
                f"model {timing.cycles}"
        want = expect[-1][1]
        n_resp = len(resp.beats)
        io.send_many(image.read_beats(len(want)))
        await resp.wait_for(n_resp + len(want), 50 * len(want) + 200)
        got = np.array(resp.beats[n_resp:], dtype=np.int64)
        if not np.array_equal(got, want):
            bad = np.flatnonzero(got != want)[:8].tolist()
            raise AssertionError(f"{label}: mismatch at rows {bad}: got {got.tolist()} "
                                 f"want {want.tolist()}")
