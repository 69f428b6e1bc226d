"""The registered multiplier (hw/dsp.py): values and latency in the Amaranth
simulator, parameter checks, the lowering each platform gets, and the
primitives' parameters in the emitted Verilog."""

import random
import re

import pytest
from amaranth.hdl import ClockDomain, Module, signed, unsigned
from amaranth.sim import Simulator

from nnloom.gen.verilog import to_verilog
from nnloom.hw.dsp import LOWERINGS, MULT_LATENCY, RegisteredMultiplier, lowering_for
from nnloom.sim.golden.intarith import bounds


@pytest.mark.parametrize("a_shape,b_shape", [(signed(8), signed(8)), (unsigned(8), unsigned(8)),
                                             (signed(16), signed(16)), (unsigned(2), unsigned(5)),
                                             (signed(18), signed(3))])
def test_portable_product_and_latency(a_shape, b_shape):
    mult = RegisteredMultiplier(a_shape, b_shape, lowering="portable")
    assert mult.latency == MULT_LATENCY == 3
    assert mult.p_shape.width == a_shape.width + b_shape.width
    rng = random.Random(a_shape.width * 31 + b_shape.width)
    alo, ahi = bounds(a_shape.width, a_shape.signed)
    blo, bhi = bounds(b_shape.width, b_shape.signed)

    async def bench(ctx):
        sent = []
        for cycle in range(200):
            a = rng.choice([alo, ahi, rng.randint(alo, ahi)])
            b = rng.choice([blo, bhi, rng.randint(blo, bhi)])
            ctx.set(mult.a, a)
            ctx.set(mult.b, b)
            sent.append(a * b)
            # the product of the operands of cycle t is at p in cycle t + latency
            want = sent[cycle - MULT_LATENCY] if cycle >= MULT_LATENCY else 0
            assert ctx.get(mult.p) == want, f"cycle {cycle}"
            await ctx.tick()

    sim = Simulator(mult)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_reset_clears_the_pipeline():
    mult = RegisteredMultiplier(signed(8), signed(8), lowering="portable")
    top = Module()
    top.domains.sync = cd = ClockDomain()
    top.submodules.mult = mult

    async def bench(ctx):
        ctx.set(mult.a, -128)
        ctx.set(mult.b, -128)
        await ctx.tick().repeat(MULT_LATENCY)
        assert ctx.get(mult.p) == 16384
        ctx.set(mult.a, 5)
        ctx.set(mult.b, 7)
        await ctx.tick().repeat(MULT_LATENCY - 1)   # 35 in flight
        ctx.set(mult.a, 0)
        # reset with products in flight: p reads 0 until new operands come through
        ctx.set(cd.rst, 1)
        await ctx.tick()
        ctx.set(cd.rst, 0)
        for _ in range(MULT_LATENCY + 1):
            assert ctx.get(mult.p) == 0
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("kwargs,message", [
    (dict(a_shape=signed(8), b_shape=unsigned(8)), "b_shape"),
    (dict(a_shape=signed(19), b_shape=signed(8)), "a_shape"),
    (dict(a_shape=unsigned(8), b_shape=unsigned(0)), "b_shape"),
    (dict(a_shape=signed(8), b_shape=signed(8), lowering="xilinx"), "lowering"),
    (dict(a_shape=signed(17), b_shape=signed(8), lowering="ice40"), "lowering"),
])
def test_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RegisteredMultiplier(**kwargs)


def test_lowering_follows_the_platform():
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    assert lowering_for(None) == "portable"
    assert lowering_for(ULX3S_85F_Platform()) == "ecp5"
    assert lowering_for(ICEBreakerPlatform()) == "ice40"
    assert LOWERINGS == ("auto", "portable", "ecp5", "ice40")
    auto = RegisteredMultiplier(signed(8), signed(8))
    assert auto.resolved_lowering(ULX3S_85F_Platform()) == "ecp5"
    assert auto.resolved_lowering(None) == "portable"
    # operands too wide for the iCE40 block: the portable description
    wide = RegisteredMultiplier(signed(18), signed(18))
    assert wide.resolved_lowering(ICEBreakerPlatform()) == "portable"
    assert wide.resolved_lowering(ULX3S_85F_Platform()) == "ecp5"


def _params(text: str, cell: str) -> dict:
    block = re.search(rf"{cell} #\((.*?)\)\s*\w+ \(", text, re.S).group(1)
    return dict(re.findall(r"\.(\w+)\(([^()]*)\)", block))


def test_ecp5_instance_registers_inputs_and_output():
    text = to_verilog(RegisteredMultiplier(signed(8), signed(8), lowering="ecp5"))
    assert text.count("MULT18X18D") == 1
    p = _params(text, "MULT18X18D")
    for reg in ("INPUTA", "INPUTB", "OUTPUT"):
        assert p[f"REG_{reg}_CLK"] == '"CLK0"'
        assert p[f"REG_{reg}_CE"] == '"CE0"' and p[f"REG_{reg}_RST"] == '"RST0"'
    assert p["REG_PIPELINE_CLK"] == '"NONE"' and p["REG_INPUTC_CLK"] == '"NONE"'
    assert p["RESETMODE"] == '"SYNC"' and p["GSR"] == '"DISABLED"'
    assert re.search(r"\.CLK0\(clk\)", text) and re.search(r"\.RST0\(rst\)", text)
    assert re.search(r"\.CE0\(1'h1\)", text)
    assert text == to_verilog(RegisteredMultiplier(signed(8), signed(8), lowering="ecp5"))


def test_ice40_instance_registers_inputs_and_product():
    text = to_verilog(RegisteredMultiplier(unsigned(8), unsigned(8), lowering="ice40"))
    assert text.count("SB_MAC16") == 1
    p = _params(text, "SB_MAC16")
    assert p["A_REG"] == p["B_REG"] == p["PIPELINE_16x16_MULT_REG2"] == "1'h1"
    assert p["TOPOUTPUT_SELECT"] == p["BOTOUTPUT_SELECT"] == "2'h3"
    assert p["MODE_8x8"] == "1'h0" and p["A_SIGNED"] == p["B_SIGNED"] == "1'h0"
    assert re.search(r"\.CLK\(clk\)", text) and re.search(r"\.IRSTBOT\(rst\)", text)

