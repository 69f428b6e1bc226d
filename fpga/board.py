"""The platform layer around :class:`nnloom.hw.board_top.BoardTop`: clock, reset and
pins for an amaranth-boards platform.

Clock: when the target clock equals the board's oscillator (the planner's
default clock for every board in :mod:`nnloom.gen.planner.boards`), the design runs from
the oscillator and the platform makes the ``sync`` domain (iCE40: with
amaranth's power-on reset delay).  Otherwise on ECP5 an ``EHXPLLL`` makes the
target (the closest frequency :func:`ecp5_pll` finds, feedback from CLKOP,
VCO 400..800 MHz); on iCE40 an ``SB_PLL40_PAD`` (:func:`ice40_pll`, simple
feedback, VCO 533..1066 MHz), fed by the oscillator's pin requested raw
(``dir="-"``: no input buffer between the pad and the PLL, as SB_PLL40_PAD
requires; the iCEBreaker's 12 MHz clock is on a PLL pad).  Either way reset
is held until the PLL locks and released synchronously.

Pins: ``uart`` 0 (the board's USB UART: FTDI on both), and the first three
``led`` resources as busy, done, error; the iCEBreaker has two LEDs on the
main board: red = error, green = done or busy.
"""

from __future__ import annotations

from amaranth.build import ResourceError
from amaranth.lib import io
from amaranth.hdl import (Cat, ClockDomain, Const, ClockSignal, Elaboratable, Instance, Module, Mux,
                          ResetSignal, Signal)
from nnloom.hw.errors import InputError

__all__ = ["BoardDesign", "BoardError", "check_host_link", "ecp5_pll", "ice40_pll", "pll_for", "PllError"]


class PllError(InputError):
    pass


class BoardError(InputError):
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


def ice40_pll(f_in_mhz: float, f_out_mhz: float) -> dict:
    """SB_PLL40 dividers (``FEEDBACK_PATH = "SIMPLE"``) for ``f_out_mhz``
    from ``f_in_mhz``, as Project IceStorm's ``icepll`` computes them:
    ``f_pfd = f_in / (DIVR + 1)`` in 10..133 MHz, ``f_vco = f_pfd * (DIVF +
    1)`` in 533..1066 MHz, ``f_out = f_vco / 2**DIVQ`` (DIVQ 1..6) in
    16..275 MHz; FILTER_RANGE from ``f_pfd``.  Returns ``{"divr", "divf",
    "divq", "filter_range", "f_out", "f_vco"}``; raises :class:`PllError` if
    nothing within 1 % exists."""
    best = None
    for divr in range(16):
        pfd = f_in_mhz / (divr + 1)
        if not 10 <= pfd <= 133:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533 <= vco <= 1066:
                continue
            for divq in range(1, 7):
                out = vco / 2 ** divq
                if not 16 <= out <= 275:
                    continue
                err = abs(out - f_out_mhz)
                if best is None or err < best[0] - 1e-12:
                    best = (err, divr, divf, divq, out, vco, pfd)
    if best is None or best[0] > 0.01 * f_out_mhz:
        raise PllError(f"--clock: {f_out_mhz:g} MHz is not reachable from {f_in_mhz:g} MHz "
                       "(iCE40 PLL: 16..275 MHz)")
    _, divr, divf, divq, out, vco, pfd = best
    filter_range = next(i for i, top in enumerate((17, 26, 44, 66, 101, float("inf")), 1)
                        if pfd < top)
    return {"divr": divr, "divf": divf, "divq": divq, "filter_range": filter_range,
            "f_out": out, "f_vco": vco}


def pll_for(family: str):
    """The divider search for a family's PLL (``"ecp5"``, ``"ice40"``)."""
    return {"ecp5": ecp5_pll, "ice40": ice40_pll}[family.lower()]


def _has_host_link(platform) -> bool:
    return ("uart", 0) in platform.resources


def check_host_link(platform) -> None:
    """Refuse (:class:`BoardError`, one line naming the boards that have
    one) a platform without the ``uart 0`` resource the board top's host
    link uses."""
    if not _has_host_link(platform):
        from nnloom.gen.planner.boards import BOARDS
        ok = [name for name, b in BOARDS.items() if _has_host_link(b.platform_class()())]
        raise BoardError(f"--board: {type(platform).__name__} has no uart 0 resource (the "
                         f"host link needs one): expected {' | '.join(ok)}")


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
            family = str(getattr(platform, "family", "")).lower()
            if family == "ecp5":
                self._ecp5_clock(m, platform, osc_mhz)
            elif family == "ice40":
                self._ice40_clock(m, platform, osc_mhz)
            else:
                raise PllError(f"--clock: this board runs from its {osc_mhz:g} MHz oscillator")

        check_host_link(platform)
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
        self._reset_until_lock(m, clk_out, lock)

    def _ice40_clock(self, m, platform, osc_mhz):
        self.pll = p = ice40_pll(osc_mhz, self.clock_mhz)
        pad = platform.request(platform.default_clk, dir="-")
        m.domains.sync = ClockDomain("sync")
        clk_out, lock = Signal(name="pll_clk"), Signal(name="pll_lock")
        m.submodules.pll = Instance(
            "SB_PLL40_PAD",
            p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
            p_DIVR=Const(p["divr"], 4), p_DIVF=Const(p["divf"], 7), p_DIVQ=Const(p["divq"], 3),
            p_FILTER_RANGE=Const(p["filter_range"], 3),
            i_PACKAGEPIN=pad.io, i_RESETB=1, i_BYPASS=0,
            o_PLLOUTGLOBAL=clk_out, o_LOCK=lock)
        self._reset_until_lock(m, clk_out, lock)

    @staticmethod
    def _reset_until_lock(m, clk_out, lock):
        # reset until the PLL has locked, released synchronously
        rst_sync = Signal(2, init=0b11)
        m.domains.pll_rst = ClockDomain("pll_rst", reset_less=True)
        m.d.comb += [ClockSignal("sync").eq(clk_out), ClockSignal("pll_rst").eq(clk_out),
                     ResetSignal("sync").eq(rst_sync[1])]
        m.d.pll_rst += rst_sync.eq(Mux(lock, Cat(0, rst_sync[0]), 0b11))
        # no constraint on clk_out: nextpnr derives the PLL output's frequency
        # from the oscillator pin's constraint and the dividers (a net name
        # given here does not survive flattening)
