"""cocotb tests of the whole accelerator on its emitted Verilog (run by
tests/sim/test_accel.py and by ``nnloom simulate`` / ``nnloom demo``).

Parameters: ``config`` (AccelConfig dict), ``network`` (an examples/ name),
``samples`` (test-split indices), ``pause`` (AXI pause probability),
``seed``, ``out`` (optional JSON path for the results), ``errors`` (true:
``registers_and_errors`` runs; otherwise it skips itself, as in the digits
runs of ``nnloom simulate``, which select ``inference_bit_exact`` alone).
"""

from __future__ import annotations

import json

import cocotb
import numpy as np
import pytest

from nnloom.gen.compiler import compile_network
from nnloom.hw.accel_core import AccelConfig
from nnloom.hw.accel_isa import Op
from nnloom.sim.accel_models import digits_qnet
from nnloom.sim.accel_runtime import AccelRuntime, check_inference
from nnloom.sim.golden.qnet import run as golden_run
from nnloom.sim.runner import tb_params
from nnloom.sim.tb.streams import Clocked


async def _setup(dut, p):
    cfg = AccelConfig.from_dict(p["config"])
    net, qnet, xq, y, xf = digits_qnet(p["network"])
    prog = compile_network(qnet, cfg)
    clk = Clocked(dut)
    rt = AccelRuntime(dut, prog, pause_prob=p.get("pause", 0.0), seed=p.get("seed", 0))
    await clk.reset()
    return cfg, net, qnet, xq, y, xf, prog, rt


@cocotb.test()
async def inference_bit_exact(dut):
    p = tb_params()
    cfg, net, qnet, xq, y, xf, prog, rt = await _setup(dut, p)
    results = []
    for s in p["samples"]:
        out, counters = await rt.infer(xq[s])
        check_inference(prog, qnet, xq[s], out, counters, f"sample {s} (seed {p.get('seed', 0)})")
        fl = net.forward(xf[s])
        results.append({"sample": int(s), "label": int(y[s]), "rtl": int(np.argmax(out)),
                        "float": int(np.argmax(fl)), "cycles": counters["cycles"],
                        "beats": counters["beats"], "stalls": counters["stalls"],
                        "layers": counters["layers"]})
        dut._log.info("sample %d: label %d rtl %d float %d, %d cycles", s, y[s],
                      results[-1]["rtl"], results[-1]["float"], counters["cycles"])
    if p.get("out"):
        with open(p["out"], "w") as f:
            json.dump({"results": results,
                       "model_layers": [{"name": L.name, "kind": L.kind, "cycles": L.cycles,
                                         "macs": L.macs, "array_macs": L.array_macs}
                                        for L in prog.layers]}, f)


@cocotb.test()
async def registers_and_errors(dut):
    p = tb_params()
    if not p.get("errors"):
        pytest.skip("registers and error codes run only with the parameter 'errors'")
    cfg, net, qnet, xq, y, xf, prog, rt = await _setup(dut, p)
    info = await rt.read_reg("INFO")
    assert info & 0xFF == cfg.size and (info >> 8) & 0xFF == cfg.data_width
    await rt.write_reg("PROG_BASE", 0x1234_5678)
    assert await rt.read_reg("PROG_BASE") == 0x1234_5678
    # PROG_LEN of zero is refused
    st = await rt.run(prog_len=0)
    assert st["error"] and st["code"] == 4, st
    # an illegal opcode stops the controller with code 1 at that instruction
    bad = dict(prog.instructions[1], op=0x7F)
    saved = list(prog.instructions)
    prog.instructions[1] = bad
    rt.ram.write(0, prog.program_bytes())
    rt.last = None              # the program changed: load it again
    st = await rt.run()
    assert st["error"] and st["code"] == 1 and st["err_pc"] == 1, st
    # a misaligned DRAM address: code 2
    prog.instructions[:] = saved
    prog.instructions[0] = dict(saved[0], dram_addr=saved[0]["dram_addr"] + 1)
    rt.ram.write(0, prog.program_bytes())
    rt.last = None              # the program changed: load it again
    st = await rt.run()
    assert st["error"] and st["code"] == 2 and st["err_pc"] == 0, st
    # an AXI error response (SLVERR: DRAM has nothing at the address): code 3
    orig_read = rt.ram.read_if._read

    async def no_dram_beyond(address, length):     # AxiRam answers SLVERR when this raises
        if address >= rt.ram_size:
            raise IndexError(f"no DRAM at 0x{address:x}")
        return await orig_read(address, length)

    rt.ram.read_if._read = no_dram_beyond
    prog.instructions[:] = saved
    prog.instructions[0] = dict(saved[0], dram_addr=rt.ram_size)
    rt.ram.write(0, prog.program_bytes())
    rt.last = None              # the program changed: load it again
    st = await rt.run()
    assert st["error"] and st["code"] == 3 and st["err_pc"] == 0, st
    # a program without END runs off its end: code 5, never a hang
    prog.instructions[:] = [i for i in saved if i["op"] != Op.END]
    rt.ram.write(0, prog.program_bytes())
    rt.last = None              # the program changed: load it again
    st = await rt.run(prog_len=len(saved) - 1)
    assert st["error"] and st["code"] == 5, st
    # and a good program runs again afterwards
    prog.instructions[:] = saved
    rt.ram.write(0, prog.program_bytes())
    rt.last = None              # the program changed: load it again
    out, _ = await rt.infer(xq[0])
    assert np.array_equal(out, golden_run(qnet, xq[0])[-1])
