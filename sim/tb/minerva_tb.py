"""cocotb testbench for the Minerva FC lanes (run by tests/sim/test_minerva.py
and by bench/minerva_faults.py for the study's RTL points).

Parameters (``nnloom.sim.runner.tb_params()``): ``config`` (a MinervaConfig as a
dict), ``seed``, and either ``cases`` (random layers: ``n_in``, ``n_out``,
``vectors``, ``threshold``, ``mode``, ``inj_en``, ``rate``,
``valid_prob``, ``ready_prob``, ``check_cycles``, ``seed``) or
``network`` (the study: ``layers`` of weight codes whose last column is
the bias, ``inputs``, ``bias`` (the constant activation appended to every
layer's input), ``threshold``, ``mode``, ``rate``; every layer's weights are loaded once
with the injector enabled, then every input vector runs through it).

Structure: :class:`~nnloom.sim.tb.streams.StreamSource` drivers feed weights and
activations with random gaps, a :class:`~nnloom.sim.tb.streams.StreamSink`
collects result beats with random back-pressure, and the scoreboard holds
every beat and every counter equal to :class:`nnloom.sim.golden.minerva.LaneModel`;
at full rate the cycles equal :meth:`MinervaConfig.layer_cycles`.
``layers`` runs with ``cases`` and ``network`` with ``network``; each skips
itself without its parameter, so callers select one (``testcase=``).
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
import pytest
from amaranth.hdl import unsigned
from amaranth.lib import data

from nnloom.hw.minerva import MinervaConfig
from nnloom.hw.razor_sram import MODE_CODES
from nnloom.sim.golden.minerva import LaneModel, weight_beats
from nnloom.sim.golden.intarith import bounds
from nnloom.sim.packing import unpack
from nnloom.sim.runner import tb_params
from nnloom.sim.tb.streams import Clocked, StreamSink, StreamSource


class Bench:
    def __init__(self, dut, cfg, seed):
        self.dut, self.cfg = dut, cfg
        self.clk = Clocked(dut)
        self.model = LaneModel(cfg)
        self.act = StreamSource(self.clk, "act", cfg.act_layout, rng=random.Random(seed))
        self.wgt = StreamSource(self.clk, "weight", cfg.weight_layout, rng=random.Random(seed + 1))
        self.res = StreamSink(self.clk, "result", cfg.result_layout, rng=random.Random(seed + 2))
        self.counters = data.ArrayLayout(unsigned(32), cfg.lanes)

    async def start(self):
        dut, cfg = self.dut, self.cfg
        dut.clear.value = 0
        dut.n_out.value = 1
        dut.threshold.value = 0
        if cfg.mode == "runtime":
            dut.mode.value = 0
        if cfg.injector != "off":
            dut.inj_en.value, dut.rate.value = 0, 0
        await self.clk.reset()

    async def drain(self, source, limit=100000):
        for _ in range(limit):
            if source.idle:
                await self.clk.cycles(2)
                return
            await self.clk.cycles(1)
        raise AssertionError("stream did not drain")

    async def load(self, w, inj_en, rate, valid_prob=1.0):
        cfg, dut = self.cfg, self.dut
        if cfg.injector != "off":
            dut.inj_en.value, dut.rate.value = int(inj_en), rate
        beats = weight_beats(cfg, w)
        self.wgt.valid_prob = valid_prob
        self.wgt.send_many(beats)
        await self.drain(self.wgt)
        self.model.write(beats, inj_en, rate)
        if cfg.injector != "off":
            dut.inj_en.value = 0

    async def run(self, xs, n_out, threshold, mode, label, inj_en=False, rate=0,
                  valid_prob=1.0, ready_prob=1.0, check_cycles=False):
        """Stream the vectors ``xs`` through the loaded layer; check every beat."""
        cfg, dut = self.cfg, self.dut
        dut.n_out.value, dut.threshold.value = n_out, threshold
        if cfg.mode == "runtime":
            dut.mode.value = MODE_CODES[mode]
        if cfg.injector != "off":
            dut.inj_en.value, dut.rate.value = int(inj_en), rate
        self.act.valid_prob, self.res.ready_prob = valid_prob, ready_prob
        groups = cfg.groups(n_out)
        n0 = len(self.res.beats)
        for x in xs:
            self.act.send_many([{"data": int(v), "last": int(i == len(x) - 1)}
                                for i, v in enumerate(x)])
        total = n0 + groups * len(xs)
        await self.res.wait_for(total, 60 * (sum(map(len, xs)) + 10) * (groups + 1))
        outs = []
        for k, x in enumerate(xs):
            want_acc, want_act = self.model.layer(x, n_out, threshold, mode, inj_en, rate)
            beats = self.res.beats[n0 + k * groups:n0 + (k + 1) * groups]
            got_acc = [v for b in beats for v in b["acc"]]
            got_act = [v for b in beats for v in b["act"]]
            assert got_acc == want_acc.tolist() and got_act == want_act.tolist(), \
                f"{label} vector {k}: acc {got_acc} act {got_act}, golden {want_acc.tolist()} " \
                f"{want_act.tolist()}"
            outs.append((want_acc[:n_out], want_act[:n_out]))
        if check_cycles and len(xs) == 1:
            cycles = self.res.fired[-1] - self.act.fired[-1]
            expect = cfg.layer_cycles(len(xs[0]), n_out)
            assert cycles == expect, f"{label}: {cycles} cycles, formula says {expect}"
        await self.clk.cycles(3)
        if cfg.injector != "off":
            dut.inj_en.value = 0
        assert len(self.res.beats) == total, f"{label}: extra result beats"
        self.check_counters(label)
        return outs

    def check_counters(self, label):
        dut, model = self.dut, self.model
        got = [unpack(self.counters, getattr(dut, n).value.to_unsigned())
               for n in ("reads", "faulty_reads", "masked_bits")]
        want = [model.reads.tolist(), model.faulty.tolist(), model.masked.tolist()]
        assert got == want, f"{label}: counters {got}, golden {want}"
        assert int(dut.skipped.value) == model.skipped, \
            f"{label}: skipped {int(dut.skipped.value)}, golden {model.skipped}"


@cocotb.test()
async def layers(dut):
    p = tb_params()
    if "cases" not in p:
        pytest.skip("random layers need the parameter 'cases'")
    cfg = MinervaConfig.from_dict(p["config"])
    bench = Bench(dut, cfg, p["seed"])
    await bench.start()
    wlo, whi = bounds(cfg.w_width, True)
    alo, ahi = bounds(cfg.a_width, True)
    for case in p["cases"]:
        rng = np.random.default_rng(case["seed"])
        label = f"case {case} (seed {p['seed']})"
        w = rng.integers(wlo, whi + 1, (case["n_out"], case["n_in"]))
        xs = [rng.integers(alo, ahi + 1, case["n_in"]) for _ in range(case.get("vectors", 1))]
        inj = case.get("inj_en", False)
        faulty0 = int(bench.model.faulty.sum())
        await bench.load(w, inj, case.get("rate", 0), case.get("valid_prob", 1.0))
        await bench.run(xs, case["n_out"], case["threshold"], case["mode"], label,
                        inj_en=inj, rate=case.get("rate", 0),
                        valid_prob=case.get("valid_prob", 1.0),
                        ready_prob=case.get("ready_prob", 1.0),
                        check_cycles=case.get("check_cycles", False))
        if inj:  # the case really exercised faults and their masking
            assert bench.model.faulty.sum() > faulty0, f"{label}: no faulty reads"


@cocotb.test()
async def network(dut):
    """The study's RTL points: a whole quantized MLP, layer by layer."""
    p = tb_params()
    if "network" not in p:
        pytest.skip("the study's network run needs the parameter 'network'")
    net = p["network"]
    cfg = MinervaConfig.from_dict(p["config"])
    bench = Bench(dut, cfg, p["seed"])
    await bench.start()
    xs = [np.asarray(x) for x in net["inputs"]]
    for n, w in enumerate(net["layers"]):
        w = np.asarray(w)
        xs = [np.append(x, net["bias"]) for x in xs]  # constant input: W's last column is the bias
        await bench.load(w, True, net["rate"])
        outs = await bench.run(xs, w.shape[0], net["threshold"], net["mode"],
                               f"layer {n} mode {net['mode']} rate {net['rate']}",
                               inj_en=True, rate=net["rate"], valid_prob=0.9, ready_prob=0.8)
        xs = [act for _, act in outs]
        last = [acc for acc, _ in outs]
    # argmax of the last layer's accumulators: the predictions of this RTL run
    out = {"pred": [int(np.argmax(a)) for a in last],
           "faulty_reads": bench.model.faulty.tolist(), "reads": bench.model.reads.tolist()}
    with open(os.environ.get("NNLOOM_MINERVA_OUT", "minerva_rtl.json"), "w") as f:
        json.dump(out, f)
