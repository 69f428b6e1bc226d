"""cocotb testbench for the Eyeriss PE array (run by tests/sim/test_eyeriss.py).

Parameters (``nnloom.sim.runner.tb_params()``): ``config`` (an EyerissConfig as a
dict), ``seed`` and ``cases``, each a layer (``h, w, c, m, r, s, stride,
padding``) with ``seed``, ``zeros`` (fraction of zero ifmap words),
``kind`` (``random`` or ``min``: every word the most negative value, which
overflows the psums), optional ``p``/``q`` (force that mapping),
``valid_prob`` and ``ready_prob``.

Per case: the mapper (:mod:`nnloom.gen.compiler.eyeriss_map`) gives the ``layer`` port, the
``inp`` words and the prediction; a StreamSource feeds the words with random
gaps, a StreamSink takes the psums with random back-pressure; the scoreboard
checks the psums against :func:`nnloom.sim.golden.conv.conv2d` bit for bit, every
counter against the prediction, and, at full rate, ``cnt_cycles`` and the
cycles from ``start`` to the last psum against the predicted cycles.
"""

from __future__ import annotations

import random

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from nnloom.gen.compiler.eyeriss_map import ConvLayer, candidates, choose_mapping, input_words, layer_fields, predict
from nnloom.hw.eyeriss_pe import EyerissConfig
from nnloom.sim.golden.conv import conv2d
from nnloom.sim.golden.intarith import bounds
from nnloom.sim.packing import pack
from nnloom.sim.runner import tb_params
from nnloom.sim.tb.streams import Clocked, StreamSink, StreamSource


def operands(cfg: EyerissConfig, layer: ConvLayer, case: dict):
    rng = np.random.default_rng(case["seed"])
    lo, hi = bounds(cfg.data_width, cfg.signed)
    if case.get("kind", "random") == "min":
        return (np.full((layer.c, layer.h, layer.w), lo),
                np.full((layer.m, layer.c, layer.r, layer.s), lo))
    x = rng.integers(lo, hi + 1, (layer.c, layer.h, layer.w))
    x[rng.random(x.shape) < case.get("zeros", 0.5)] = 0
    w = rng.integers(lo, hi + 1, (layer.m, layer.c, layer.r, layer.s))
    return x, w


def mapping_for(cfg, layer, case):
    if "p" in case:
        for mp in candidates(cfg, layer):
            if (mp.p, mp.q) == (case["p"], case["q"]):
                return mp
        raise ValueError(f"no mapping p={case['p']} q={case['q']} for {layer}")
    return choose_mapping(cfg, layer)


@cocotb.test()
async def layers(dut):
    p = tb_params()
    cfg = EyerissConfig.from_dict(p["config"])
    seed = p.get("seed", 0)
    clk = Clocked(dut)
    dut.start.value = 0
    dut.layer.value = 0
    await clk.reset()
    src = StreamSource(clk, "inp", cfg.data_shape, rng=random.Random(seed))
    sink = StreamSink(clk, "result", cfg.acc_shape, rng=random.Random(seed + 1))
    for n, case in enumerate(p["cases"]):
        layer = ConvLayer(f"case{n}", case["h"], case["w"], case["c"], case["m"], case["r"],
                          case["s"], case.get("stride", 1), case.get("padding", 0))
        label = f"case {n} {case} (seed {seed})"
        mp = mapping_for(cfg, layer, case)
        x, w = operands(cfg, layer, case)
        pred = predict(cfg, layer, mp, x)
        want = conv2d(x, w, stride=layer.stride, padding=layer.padding, acc_width=cfg.acc_width,
                      signed=cfg.signed, overflow_mode="wrap")
        src.valid_prob = case.get("valid_prob", 1.0)
        sink.ready_prob = case.get("ready_prob", 1.0)
        full_rate = src.valid_prob == 1.0 and sink.ready_prob == 1.0

        await FallingEdge(clk.clk)
        dut.layer.value = pack(cfg.layer_layout, layer_fields(cfg, layer, mp))
        dut.start.value = 1
        start_cycle = clk.cycle()
        n_beats = len(sink.beats)
        src.send_many(input_words(cfg, layer, mp, x, w))
        await FallingEdge(clk.clk)
        dut.start.value = 0
        outs = layer.m * layer.e * layer.f
        await sink.wait_for(n_beats + outs, 4 * pred.cycles + 1000)
        got = np.array(sink.beats[n_beats:], dtype=np.int64).reshape(layer.m, layer.e, layer.f)
        if not np.array_equal(got, want):
            bad = np.argwhere(got != want)[:5].tolist()
            raise AssertionError(f"{label} mapping {mp}: psums differ at {bad}: "
                                 f"got {got.tolist()} want {want.tolist()}")
        # The array goes idle in the cycle after the last psum.
        await FallingEdge(clk.clk)
        await ReadOnly()
        assert not int(dut.busy.value), f"{label}: still busy after the last psum"
        assert src.idle, f"{label}: {len(src.queue)} input words left over"
        hw = {name: int(getattr(dut, f"cnt_{name}").value) for name in cfg.counter_names}
        assert hw == pred.counters, f"{label} mapping {mp}: counters {hw} != model {pred.counters}"
        cycles = int(dut.cnt_cycles.value)
        if full_rate:
            assert cycles == pred.cycles, f"{label} mapping {mp}: {cycles} cycles, model {pred.cycles}"
            last = sink.fired[-1] - start_cycle
            assert last == pred.cycles, f"{label}: last psum {last} cycles after start, model {pred.cycles}"
        else:
            assert cycles >= pred.cycles, f"{label}: {cycles} cycles < full-rate model {pred.cycles}"
        dut._log.info("%s: mapping %s, %d cycles (model %d), counters %s", label, mp, cycles,
                      pred.cycles, hw)
        await FallingEdge(clk.clk)
