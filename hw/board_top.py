"""The board top: the accelerator, block RAM as its memory, and a UART host
link; the same RTL is simulated (tests/sim/test_uart_host.py) and built for
boards (:mod:`nnloom.fpga.build`, which adds the clock, reset and pins).

Inside :class:`BoardTop`::

    uart_rx -> UartRx -> UartBridge -> UartTx -> uart_tx
                          |  m_axil      | mem host port
                          v              v
                  Accelerator.s_axil   AxiBram <- Accelerator.m_axi

Status LEDs (``leds``, 3 bits): bit 0 *busy*, the accelerator's memory
master moved data in the last 2**16 cycles or STATUS last read busy; bit 1
*done*, the accelerator's ``irq`` (done with the interrupt enabled, as the
host driver starts it); bit 2 *error*, STATUS last read with its error bit,
or the UART lost a byte (overrun).  The accelerator has no status port, so
the board top watches the bridge's reads of STATUS (0x04): the LEDs show the
host's latest poll.
"""

from __future__ import annotations

import operator

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .accel import REGS, Accelerator
from .accel_core import AccelConfig
from .axi import AxiLiteRegsConfig
from .axi_bram import AxiBram, check_depth
from .axi_lite import AxiLiteRegs
from .uart import UartRx, UartTx, check_divisor
from .uart_bridge import UartBridge

__all__ = ["BoardTop", "mem_depth_for", "LINK_REGS"]

#: The register space the bridge reaches: the accelerator's AXI4-Lite slave
#: (12-bit byte addresses).
LINK_REGS = AxiLiteRegsConfig(addr_width=12)


def mem_depth_for(image_bytes: int) -> int:
    """Words of block RAM for a DRAM image of ``image_bytes``: the next power
    of two, at least 256 words."""
    words = max(256, -(-operator.index(image_bytes) // 4))
    return 1 << (words - 1).bit_length()


class BoardTop(wiring.Component):
    """Accelerator + block RAM + UART bridge.

    Parameters: ``config`` (:class:`~hw.accel_core.AccelConfig`, data_width
    32, or 16 for the 2 x 2 array of small FPGAs: the block RAM's AXI side
    takes the accelerator's width, its host side stays 32 bits; None: a link-only top, no accelerator, the register space one 32-bit
    scratch register, to bring up a board's UART and RAM), ``mem_depth``
    (32-bit words of block RAM), ``divisor`` (clock cycles per UART bit).

    Members: ``uart_rx`` (In, idle high), ``uart_tx`` (Out), ``leds`` (Out,
    3: busy, done, error), ``irq`` (Out).
    """

    def __init__(self, config: AccelConfig | None, *, mem_depth: int, divisor: int,
                 ram_style: str | None = None):
        if config is not None and not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig or None, not {config!r}")
        if config is not None and config.data_width not in (16, 32):
            raise ValueError(f"the board top needs data_width 16 or 32, not {config.data_width}")
        self.config = config
        self.divisor = check_divisor(divisor)
        self.mem_depth = check_depth(mem_depth)
        self.ram_style = ram_style
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1),
                          "leds": Out(3), "irq": Out(1)})

    def elaborate(self, platform):
        m = Module()
        dw = self.config.data_width if self.config is not None else 32
        m.submodules.ram = ram = AxiBram(self.mem_depth, data_width=dw, ram_style=self.ram_style)
        m.submodules.rx = rx = UartRx(self.divisor)
        m.submodules.tx = tx = UartTx(self.divisor)
        m.submodules.bridge = br = UartBridge(addr_width=LINK_REGS.addr_width,
                                              mem_abits=ram.abits)
        if self.config is None:
            return self._link_only(m, br, rx, tx, ram)
        m.submodules.accel = accel = Accelerator(self.config)
        assert accel.lcfg.addr_width == LINK_REGS.addr_width
        wiring.connect(m, accel.m_axi, ram.s_axi)
        wiring.connect(m, br.m_axil, accel.s_axil)
        wiring.connect(m, rx.data, br.rx)
        wiring.connect(m, br.tx, tx.data)
        m.d.comb += self.irq.eq(accel.irq)
        self._link(m, br, rx, tx, ram)

        # LEDs: activity stretch, and the last STATUS the host read
        activity = Signal(16)
        moving = (accel.m_axi.rvalid & accel.m_axi.rready) | \
                 (accel.m_axi.wvalid & accel.m_axi.wready)
        with m.If(moving):
            m.d.sync += activity.eq(~0)
        with m.Elif(activity != 0):
            m.d.sync += activity.eq(activity - 1)
        ax = br.m_axil
        status_ar, status = Signal(), Signal(3)
        with m.If(ax.arvalid & ax.arready):
            m.d.sync += status_ar.eq(ax.araddr == REGS["STATUS"])
        with m.If(ax.rvalid & ax.rready & status_ar):
            m.d.sync += status.eq(ax.rdata[:3])
        m.d.comb += self.leds.eq(Cat(status[0] | (activity != 0), accel.irq,
                                     status[2] | rx.overrun))
        return m

    def _link(self, m, br, rx, tx, ram):
        m.d.comb += [rx.rx.eq(self.uart_rx), self.uart_tx.eq(tx.tx),
                     ram.host_req.eq(br.mem_req), ram.host_we.eq(br.mem_we),
                     ram.host_addr.eq(br.mem_addr), ram.host_wdata.eq(br.mem_wdata),
                     br.mem_rdata.eq(ram.host_rdata), br.mem_ack.eq(ram.host_ack)]

    def _link_only(self, m, br, rx, tx, ram):
        m.submodules.regs = regs = AxiLiteRegs(LINK_REGS)
        wiring.connect(m, br.m_axil, regs.axil)
        wiring.connect(m, rx.data, br.rx)
        wiring.connect(m, br.tx, tx.data)
        self._link(m, br, rx, tx, ram)
        scratch = Signal(32)
        with m.If(regs.bus.w_en):
            m.d.sync += scratch.eq(regs.bus.w_data)
        m.d.sync += regs.bus.r_data.eq(scratch)
        m.d.comb += self.leds.eq(Cat(br.mem_req, 0, rx.overrun))
        return m

