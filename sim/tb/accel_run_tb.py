"""cocotb test that runs given int8 inputs through a generated accelerator's
emitted Verilog and records what the RTL did (run by
:func:`nnloom.sim.accel_sim.run_inputs`, hence ``nnloom simulate``).

Parameters: ``job`` (a pickle written by :func:`nnloom.sim.accel_sim.run_inputs`:
the compiled :class:`~nnloom.gen.compiler.Program` and the int8 inputs in the
network's input shape), ``first`` and ``count`` (the inputs of this run),
``pause`` (AXI pause probability), ``seed``, ``out`` (JSON path for the
results: each inference's output values and its CYCLES, BEATS, STALLS and
per-layer counters).  The scoreboard (outputs against the golden int8 model,
layer counters against the compiler's model) is the caller's, so that a
difference is reported, not only raised.
"""

from __future__ import annotations

import json
import pickle

import cocotb
import numpy as np

from nnloom.sim.accel_runtime import AccelRuntime
from nnloom.sim.runner import tb_params
from nnloom.sim.tb.streams import Clocked


@cocotb.test()
async def run_inputs(dut):
    p = tb_params()
    with open(p["job"], "rb") as f:
        job = pickle.load(f)
    prog = job["program"]
    first = int(p.get("first", 0))
    xs = np.asarray(job["inputs"])[first:first + int(p.get("count", len(job["inputs"])))]
    clk = Clocked(dut)
    rt = AccelRuntime(dut, prog, pause_prob=p.get("pause", 0.0), seed=p.get("seed", 0))
    await clk.reset()
    results = []
    for n, x in enumerate(xs):
        out, counters = await rt.infer(x)
        results.append({"index": first + n, "output": np.asarray(out).astype(int).ravel().tolist(),
                        **counters})
        dut._log.info("input %d: %d cycles", first + n, counters["cycles"])
    with open(p["out"], "w") as f:
        json.dump({"results": results}, f)
