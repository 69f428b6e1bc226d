"""A tiny cocotb module that exercises the runner itself (tests/sim/test_runner.py)."""

import cocotb
import pytest
from cocotb.triggers import FallingEdge, ReadOnly

from nnloom.sim.runner import tb_params
from nnloom.sim.tb.streams import Clocked


@cocotb.test()
async def counts(dut):
    p = tb_params()
    clk = Clocked(dut)
    dut.en.value = 0
    await clk.reset()
    dut.en.value = 1
    for _ in range(p["cycles"]):
        await FallingEdge(dut.clk)
    dut.en.value = 0
    await ReadOnly()
    assert int(dut.count.value) == p["expect"], f"count {int(dut.count.value)} != {p['expect']}"


@cocotb.test()
async def always_passes(dut):
    Clocked(dut)
    await FallingEdge(dut.clk)


@cocotb.test()
async def skips_when_asked(dut):
    """Skips itself with the reason in the parameter ``skip``; else checks that
    the counter holds still while ``en`` is low."""
    p = tb_params()
    if p.get("skip"):
        pytest.skip(p["skip"])
    clk = Clocked(dut)
    dut.en.value = 0
    await clk.reset()
    await clk.cycles(3)
    await ReadOnly()
    assert int(dut.count.value) == 0, f"count {int(dut.count.value)} with en low"
