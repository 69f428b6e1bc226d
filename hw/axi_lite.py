"""AXI4-Lite slave that turns transactions into a simple register bus.

One transaction at a time.  A write needs both its AW and its W beat, which
may arrive in either order (each is accepted as soon as it is offered and
held); the cycle after the handshake that completes the pair, ``bus.w_en``
pulses with ``bus.addr``, ``bus.w_data`` and ``bus.w_strb``; the cycle
after that ``bvalid`` rises and stays until ``bready``.  A read is accepted
only while no write half is held or offered (writes win ties); ``bus.r_en``
pulses the cycle after the AR handshake, ``bus.r_data`` is sampled the
cycle after ``r_en`` and presented on ``rdata`` with ``rvalid`` the cycle
after that, held until ``rready``.

Addresses are byte addresses; the bus carries the *word* address
(``addr >> 2``, ``addr_width - 2`` bits; the two low bits are ignored).  With
``size > 0``, a word address ``>= size`` answers SLVERR and produces no bus
pulse (reads return 0).  ``awprot``/``arprot`` are ignored.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import RESP_OKAY, RESP_SLVERR, AxiLiteRegsConfig

__all__ = ["AxiLiteRegs"]


class AxiLiteRegs(wiring.Component):
    """AXI4-Lite slave -> register bus.

    Members: ``axil`` (In(:class:`~hw.axi.AxiLiteSignature`)), ``bus``
    (Out(:class:`~nnloom.hw.axi.RegBusSignature`)).
    """

    def __init__(self, config: AxiLiteRegsConfig):
        if not isinstance(config, AxiLiteRegsConfig):
            raise TypeError(f"config must be an AxiLiteRegsConfig, not {config!r}")
        self.config = config
        super().__init__({"axil": In(config.axil_signature), "bus": Out(config.bus_signature)})

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        axil, bus = self.axil, self.bus

        have_aw = Signal()
        have_w = Signal()
        addr = Signal(cfg.word_bits)
        w_data = Signal(cfg.data_width)
        w_strb = Signal(cfg.data_width // 8)
        r_data = Signal(cfg.data_width)
        ok = Signal()

        if cfg.size:
            m.d.comb += ok.eq(addr < cfg.size)
        else:
            m.d.comb += ok.eq(1)
        m.d.comb += [
            bus.addr.eq(addr), bus.w_data.eq(w_data), bus.w_strb.eq(w_strb),
            axil.rdata.eq(r_data),
        ]

        # If/Elif on a state register, not m.FSM or m.Switch: Amaranth emits
        # those as case statements without default, which verilator
        # --lint-only flags (CASEINCOMPLETE).
        state = Signal(range(6))
        IDLE, WRITE, BRESP, READ, SAMPLE, RRESP = range(6)
        with m.If(state == IDLE):
            m.d.comb += [axil.awready.eq(~have_aw), axil.wready.eq(~have_w)]
            aw_fire = axil.awvalid & ~have_aw
            w_fire = axil.wvalid & ~have_w
            with m.If(aw_fire):
                m.d.sync += [have_aw.eq(1), addr.eq(axil.awaddr[2:])]
            with m.If(w_fire):
                m.d.sync += [have_w.eq(1), w_data.eq(axil.wdata), w_strb.eq(axil.wstrb)]
            with m.If((have_aw | aw_fire) & (have_w | w_fire)):
                m.d.sync += state.eq(WRITE)
            with m.Elif(~have_aw & ~have_w & ~axil.awvalid & ~axil.wvalid):
                m.d.comb += axil.arready.eq(1)
                with m.If(axil.arvalid):
                    m.d.sync += addr.eq(axil.araddr[2:])
                    m.d.sync += state.eq(READ)
        with m.Elif(state == WRITE):
            m.d.comb += bus.w_en.eq(ok)
            m.d.sync += [have_aw.eq(0), have_w.eq(0)]
            m.d.sync += state.eq(BRESP)
        with m.Elif(state == BRESP):
            m.d.comb += [axil.bvalid.eq(1), axil.bresp.eq(RESP_OKAY)]
            with m.If(~ok):
                m.d.comb += axil.bresp.eq(RESP_SLVERR)
            with m.If(axil.bready):
                m.d.sync += state.eq(IDLE)
        with m.Elif(state == READ):
            m.d.comb += bus.r_en.eq(ok)
            m.d.sync += state.eq(SAMPLE)
        with m.Elif(state == SAMPLE):
            m.d.sync += r_data.eq(Mux(ok, bus.r_data, 0))
            m.d.sync += state.eq(RRESP)
        with m.Else():  # RRESP
            m.d.comb += [axil.rvalid.eq(1), axil.rresp.eq(RESP_OKAY)]
            with m.If(~ok):
                m.d.comb += axil.rresp.eq(RESP_SLVERR)
            with m.If(axil.rready):
                m.d.sync += state.eq(IDLE)
        return m
