"""The platform layer around :class:`nnloom.hw.board_top.BoardTop`: clock, reset and
pins for an amaranth-boards platform.

Clock: when the target clock equals the board's oscillator (the planner's
default clock for every board in :mod:`nnloom.gen.planner.boards`), the design runs from
the oscillator and the platform makes the ``sync`` domain (iCE40: with
amaranth's power-on reset delay).  Otherwise on ECP5 an ``EHXPLLL`` makes the
target (the closest frequency :func:`ecp5_pll` finds, feedback from CLKOP,
VCO 400..800 MHz) and reset is held until the PLL locks.  iCE40 designs run
from the 12 MHz oscillator only: SB_PLL40_PAD needs the clock pad wired to
it directly, and 12 MHz is already the planned clock.

Pins: ``uart`` 0 (the board's USB UART: FTDI on both), and the first three
``led`` resources as busy, done, error; the iCEBreaker has two LEDs on the
main board: red = error, green = done or busy.
"""

from __future__ import annotations

from amaranth.build import ResourceError
from amaranth.lib import io
from amaranth.hdl import (Cat, ClockDomain, ClockSignal, Elaboratable, Instance, Module, Mux,
                          ResetSignal, Signal)
from nnloom.hw.errors import InputError

__all__ = ["BoardDesign", "ecp5_pll", "PllError"]


class PllError(InputError):
    pass


def ecp5_pll(f_in_mhz: float, f_out_mhz: float) -> dict:
    """EHXPLLL dividers for ``f_out_mhz`` from ``f_in_mhz`` (CLKOP feedback):
    ``{"refclk_div", "feedback_div", "output_div", "f_out", "f_vco"}``;
    raises :class:`PllError` if nothing within 1 % exists."""
    best = None
    for ref in range(1, 129):
        pfd = f_in_mhz / ref
        if not 3.125 <= pfd <= 400:
            continue
        for fb in range(1, 81):
            out = pfd * fb
            for op in range(1, 129):
                vco = out * op
                if not 400 <= vco <= 800:
                    continue
                err = abs(out - f_out_mhz)
                if best is None or err < best[0]:
                    best = (err, ref, fb, op, out, vco)
                break  # the first VCO in range is as good as any for this output
    if best is None or best[0] > 0.01 * f_out_mhz:
        raise PllError(f"--clock: {f_out_mhz:g} MHz is not reachable from {f_in_mhz:g} MHz")
    _, ref, fb, op, out, vco = best
    return {"refclk_div": ref, "feedback_div": fb, "output_div": op, "f_out": out, "f_vco": vco}


class BoardDesign(Elaboratable):
    """``top`` (a :class:`~hw.board_top.BoardTop`) on a platform at
    ``clock_mhz`` (None: the oscillator)."""

    def __init__(self, top, *, clock_mhz: float | None = None):
        self.top = top
        self.clock_mhz = clock_mhz
        self.pll = None

    def elaborate(self, platform):
        m = Module()
        m.submodules.top = top = self.top
        osc_mhz = platform.default_clk_frequency / 1e6
        if self.clock_mhz is not None and abs(self.clock_mhz - osc_mhz) > 1e-6:
            if getattr(platform, "family", None) != "ecp5":
                raise PllError(f"--clock: this board runs from its {osc_mhz:g} MHz oscillator")
            self._ecp5_clock(m, platform, osc_mhz)

        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [top.uart_rx.eq(rx.i), tx.o.eq(top.uart_tx)]
        leds = []
        for i in range(3):
            try:
                port = platform.request("led", i, dir="-")
            except ResourceError:
                break
            m.submodules[f"led{i}"] = buf = io.Buffer("o", port)
            leds.append(buf.o)
        if len(leds) >= 3:
            m.d.comb += [leds[0].eq(top.leds[0]), leds[1].eq(top.leds[1]), leds[2].eq(top.leds[2])]
        elif len(leds) == 2:    # iCEBreaker: red, green
            m.d.comb += [leds[0].eq(top.leds[2]), leds[1].eq(top.leds[0] | top.leds[1])]
        return m

    def _ecp5_clock(self, m, platform, osc_mhz):
        self.pll = p = ecp5_pll(osc_mhz, self.clock_mhz)
        m.submodules.clk_in = clk_in = io.Buffer("i", platform.request(platform.default_clk, dir="-"))
        m.domains.sync = ClockDomain("sync")
        clk_out, lock = Signal(name="pll_clk"), Signal(name="pll_lock")
        m.submodules.pll = Instance(
            "EHXPLLL",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=p["refclk_div"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["output_div"],
            p_CLKOP_CPHASE=p["output_div"] - 1, p_CLKOP_FPHASE=0,
            p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=p["feedback_div"],
            i_CLKI=clk_in.i, i_CLKFB=clk_out, i_RST=0, i_STDBY=0, i_PHASESEL0=0,
            i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0,
            i_ENCLKOP=0, o_CLKOP=clk_out, o_LOCK=lock,
            a_FREQUENCY_PIN_CLKI=f"{osc_mhz:g}", a_FREQUENCY_PIN_CLKOP=f"{p['f_out']:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2")
        # reset until the PLL has locked, released synchronously
        rst_sync = Signal(2, init=0b11)
        m.domains.pll_rst = ClockDomain("pll_rst", reset_less=True)
        m.d.comb += [ClockSignal("sync").eq(clk_out), ClockSignal("pll_rst").eq(clk_out),
                     ResetSignal("sync").eq(rst_sync[1])]
        m.d.pll_rst += rst_sync.eq(Mux(lock, Cat(0, rst_sync[0]), 0b11))
        # no constraint on clk_out: nextpnr derives the PLL output's frequency
        # from the oscillator pin's constraint and the dividers (a net name
        # given here does not survive flattening)
