"""cocotb module behind the systolic demo: one GEMM, results to a JSON file."""

import json
import random

import cocotb
import numpy as np

from nnloom.hw.systolic import SystolicConfig
from nnloom.sim.runner import tb_params
from nnloom.sim.systolic_driver import schedule
from nnloom.sim.tb.streams import Clocked, StreamSink, StreamSource


@cocotb.test()
async def one_gemm(dut):
    p = tb_params()
    cfg = SystolicConfig.from_dict(p["config"])
    a, w = np.array(p["a"]), np.array(p["w"])
    clk = Clocked(dut)
    await clk.reset()
    act = StreamSource(clk, "act", cfg.act_layout, rng=random.Random(0))
    wgt = StreamSource(clk, "weight", cfg.weight_layout, rng=random.Random(1))
    res = StreamSink(clk, "result", cfg.result_layout, rng=random.Random(2))
    sched = schedule(cfg, a, w)
    act.send_many(sched.act)
    wgt.send_many(sched.weight)
    await res.wait_for(sched.results, 100 * (len(sched.act) + len(sched.weight)) + 1000)
    out = sched.assemble(res.beats)
    cycles = res.fired[-1] - min(act.fired[0], wgt.fired[0]) + 1
    with open(p["out"], "w") as f:
        json.dump({"c": out.tolist(), "cycles": cycles}, f)
