"""RTL of the board top's parts: the UART in an Amaranth simulation (tx
looped back to rx, random valid/ready gaps, seeded; overrun), and lint and
determinism of the emitted Verilog."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from nnloom.hw.accel_core import AccelConfig
from nnloom.hw.axi_bram import AxiBram, check_depth
from nnloom.hw.board_top import BoardTop, mem_depth_for
from nnloom.hw.uart import UartRx, UartTx, check_divisor, divisor_for
from nnloom.hw.uart_bridge import UartBridge
from nnloom.sim.lint import assert_emits_clean


def _loop(divisor):
    m = Module()
    m.submodules.tx = tx = UartTx(divisor)
    m.submodules.rx = rx = UartRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    return m, tx, rx


@pytest.mark.parametrize("divisor,seed", [(4, 1), (7, 2), (16, 3)])
def test_uart_loopback_with_gaps(divisor, seed):
    rng = random.Random(seed)
    data = [rng.getrandbits(8) for _ in range(24)] + [0x00, 0xFF]
    m, tx, rx = _loop(divisor)
    got = []

    async def source(ctx):
        for b in data:
            for _ in range(rng.randint(0, 3 * divisor)):
                await ctx.tick()
            ctx.set(tx.data.valid, 1)
            ctx.set(tx.data.payload, b)
            await ctx.tick().until(tx.data.ready)
            ctx.set(tx.data.valid, 0)

    async def sink(ctx):
        sink_rng = random.Random(seed + 100)
        while len(got) < len(data):
            ready = sink_rng.random() < 0.5      # slow, but faster than a byte time
            ctx.set(rx.data.ready, ready)
            _, _, valid, payload, overrun = await ctx.tick().sample(
                rx.data.valid, rx.data.payload, rx.overrun)
            assert not overrun, f"overrun (seed {seed})"
            if ready and valid:
                got.append(payload)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run_until(1e-6 * (len(data) * 10 * divisor * 3 + 1000))
    assert got == data, f"seed {seed}"


def test_uart_overrun_keeps_the_first_byte():
    m, tx, rx = _loop(4)

    async def tb(ctx):
        for b in (0x5A, 0xC3):
            ctx.set(tx.data.valid, 1)
            ctx.set(tx.data.payload, b)
            await ctx.tick().until(tx.data.ready)
            ctx.set(tx.data.valid, 0)
        await ctx.tick().repeat(60)
        assert ctx.get(rx.overrun) == 1 and ctx.get(rx.data.valid) == 1
        assert ctx.get(rx.data.payload) == 0x5A
        ctx.set(rx.clear, 1)
        await ctx.tick()
        assert ctx.get(rx.overrun) == 0

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


def test_divisor_rules():
    assert divisor_for(12e6, 115200) == 104
    assert divisor_for(25e6, 115200) == 217
    with pytest.raises(ValueError, match="not reachable"):
        divisor_for(12e6, 4_000_000)
    with pytest.raises(ValueError, match="divisor must be"):
        check_divisor(3)
    with pytest.raises(ValueError, match="power of two"):
        check_depth(1000)
    assert mem_depth_for(5952) == 2048 and mem_depth_for(10) == 256


@pytest.mark.parametrize("make", [
    lambda: UartBridge(),
    lambda: AxiBram(256),
    lambda: BoardTop(None, mem_depth=256, divisor=4),
    lambda: BoardTop(AccelConfig(size=4, act_depth=16, wbuf_depth=64, pbuf_depth=16,
                                 acc_depth=4, layers=3), mem_depth=2048, divisor=4),
], ids=["bridge", "bram", "link-top", "board-top"])
def test_lint_clean_and_deterministic(make):
    assert_emits_clean(make)


def test_ecp5_pll_dividers():
    from nnloom.fpga.board import PllError, ecp5_pll

    for f_out in (25.0, 40.0, 50.0, 62.5):
        p = ecp5_pll(25.0, f_out)
        assert abs(p["f_out"] - f_out) <= 0.01 * f_out
        # CLKOP feedback: f_out = f_in / CLKI_DIV * CLKFB_DIV; VCO = f_out * CLKOP_DIV
        assert p["f_out"] == 25.0 / p["refclk_div"] * p["feedback_div"]
        assert 400 <= p["f_out"] * p["output_div"] <= 800
    with pytest.raises(PllError):
        ecp5_pll(25.0, 1000.0)


def test_ice40_pll_dividers():
    from nnloom.fpga.board import PllError, ice40_pll

    # SB_PLL40 simple feedback (iCE40 sysCLOCK PLL guide; icepll):
    # f_out = f_in * (DIVF + 1) / ((DIVR + 1) * 2**DIVQ), PFD 10..133 MHz, VCO 533..1066 MHz
    for f_out in (16.0, 24.0, 30.0, 36.0, 48.0):
        p = ice40_pll(12.0, f_out)
        pfd = 12.0 / (p["divr"] + 1)
        assert 10 <= pfd <= 133 and 533 <= pfd * (p["divf"] + 1) <= 1066 and 1 <= p["divq"] <= 6
        assert p["f_out"] == pfd * (p["divf"] + 1) / 2 ** p["divq"]
        assert abs(p["f_out"] - f_out) <= 0.01 * f_out
    # 24 MHz from 12 MHz has one solution: VCO 768 MHz = 12 * 64, / 32; PFD 12 MHz: range 1
    assert ice40_pll(12.0, 24.0) == {"divr": 0, "divf": 63, "divq": 5, "filter_range": 1,
                                     "f_out": 24.0, "f_vco": 768.0}
    for bad in (8.0, 400.0):
        with pytest.raises(PllError, match="iCE40 PLL: 16..275 MHz"):
            ice40_pll(12.0, bad)


def test_icebreaker_pll_is_fed_by_the_raw_clock_pad():
    """The iCEBreaker's clk12 pin (35) goes to SB_PLL40_PAD's PACKAGEPIN with
    no SB_IO or SB_GB in between, and the PLL's dividers reach the netlist."""
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    from nnloom.fpga.board import BoardDesign

    platform = ICEBreakerPlatform()
    design = BoardDesign(BoardTop(None, mem_depth=256, divisor=208), clock_mhz=24.0)
    files = platform.prepare(design, name="top").files
    text = files["top.il"]
    assert design.pll["f_out"] == 24.0
    assert "cell \\SB_PLL40_PAD" in text
    pll = text[text.index("cell \\SB_PLL40_PAD"):]
    pll = pll[:pll.index("\n  end")]
    assert "parameter \\DIVF 7'0111111" in pll and "parameter \\DIVQ 3'101" in pll
    assert "connect \\PACKAGEPIN" in pll
    assert "set_io clk12_0__io 35" in files["top.pcf"]
    assert "SB_GB" not in text
