"""cocotb testbench for the systolic array (run by tests/sim/test_systolic.py).

Parameters (``nnloom.sim.runner.tb_params()``): ``config`` (a SystolicConfig as a
dict) and ``cases``, each with ``m``, ``k``, ``n``, ``kind`` (``random``,
``min``, ``max``, ``minmax``), ``seed``, ``valid_prob``, ``ready_prob``,
``check_cycles`` and ``cycles`` (the count ``check_cycles`` expects; default
:meth:`SystolicConfig.gemm_cycles`).

Structure: the tiling driver (:mod:`nnloom.sim.systolic_driver`) turns a GEMM into
stream beats; :class:`~nnloom.sim.tb.streams.StreamSource` drivers feed them with
random gaps; a :class:`~nnloom.sim.tb.streams.StreamSink` monitor collects results
with random back-pressure; the scoreboard compares the assembled result with
the golden model (:func:`nnloom.sim.golden.gemm.gemm`) bit for bit and, at full
rate, the measured cycles with :meth:`SystolicConfig.gemm_cycles` (or the
case's ``cycles``: tests/bench/test_systolic_bench_smoke.py gives counts
derived from SCALE-Sim's output).
"""

from __future__ import annotations

import random

import cocotb
import numpy as np

from nnloom.hw.systolic import SystolicConfig
from nnloom.sim.golden.gemm import gemm
from nnloom.sim.golden.intarith import bounds
from nnloom.sim.runner import tb_params
from nnloom.sim.systolic_driver import schedule
from nnloom.sim.tb.streams import Clocked, StreamSink, StreamSource


def operands(cfg: SystolicConfig, case: dict):
    rng = np.random.default_rng(case["seed"])
    m, k, n = case["m"], case["k"], case["n"]
    alo, ahi = bounds(cfg.a_width, cfg.signed)
    wlo, whi = bounds(cfg.w_width, cfg.signed)
    kind = case.get("kind", "random")
    if kind == "random":
        return rng.integers(alo, ahi + 1, (m, k)), rng.integers(wlo, whi + 1, (k, n))
    if kind == "min":
        return np.full((m, k), alo), np.full((k, n), wlo)
    if kind == "max":
        return np.full((m, k), ahi), np.full((k, n), whi)
    if kind == "minmax":
        return np.full((m, k), alo), np.full((k, n), whi)
    raise ValueError(kind)


@cocotb.test()
async def gemm_cases(dut):
    p = tb_params()
    cfg = SystolicConfig.from_dict(p["config"])
    clk = Clocked(dut)
    await clk.reset()
    seed = p.get("seed", 0)
    act = StreamSource(clk, "act", cfg.act_layout, rng=random.Random(seed))
    wgt = StreamSource(clk, "weight", cfg.weight_layout, rng=random.Random(seed + 1))
    res = StreamSink(clk, "result", cfg.result_layout, rng=random.Random(seed + 2))
    for case in p["cases"]:
        a, w = operands(cfg, case)
        sched = schedule(cfg, a, w)
        act.valid_prob = wgt.valid_prob = case.get("valid_prob", 1.0)
        res.ready_prob = case.get("ready_prob", 1.0)
        n_act, n_w, n_res = len(act.fired), len(wgt.fired), len(res.beats)
        act.send_many(sched.act)
        wgt.send_many(sched.weight)
        budget = 50 * (len(sched.act) + len(sched.weight) + sched.results + cfg.latency) + 200
        await res.wait_for(n_res + sched.results, budget)
        got = sched.assemble(res.beats[n_res:])
        want = gemm(a, w, acc_width=cfg.acc_width, signed=cfg.signed,
                    overflow_mode=cfg.overflow,
                    k_chunk=cfg.rows if cfg.dataflow == "ws" else None)
        label = f"case {case} (seed {seed})"
        assert act.idle and wgt.idle, f"{label}: inputs left over"
        if not np.array_equal(got, want):
            bad = np.argwhere(got != want)[:5].tolist()
            raise AssertionError(f"{label}: mismatch at {bad}: got {got.tolist()} want {want.tolist()}")
        if case.get("check_cycles"):
            first = min(act.fired[n_act], wgt.fired[n_w])
            cycles = res.fired[-1] - first + 1
            expect = case.get("cycles", cfg.gemm_cycles(case["m"], case["k"], case["n"]))
            source = "expected" if "cycles" in case else "formula"
            assert cycles == expect, f"{label}: {cycles} cycles, {source} {expect}"
            dut._log.info("%s: %d cycles (%s %d)", label, cycles, source, expect)
        await clk.cycles(3)
        assert len(res.beats) == n_res + sched.results, f"{label}: extra result beats"
