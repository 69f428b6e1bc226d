"""An AXI4 slave backed by block RAM: the board's "DRAM", with a second,
simple port for the host link.

``depth`` words of 32 bits (``amaranth.lib.memory.Memory``, one read and one
write port, so it maps to iCE40 EBR and ECP5 DP16KD alike).  Byte address
``a`` is word ``(a >> 2) % depth`` (addresses wrap; nothing answers SLVERR),
little-endian: byte ``a`` is bits ``8 * (a % 4)`` up of its word.

AXI side (``s_axi``, :class:`~hw.axi.Axi4Signature` with ``data_width`` 32
or 16): one burst at a time, INCR bursts of any length with full-width beats
(AxSIZE = log2(data_width / 8); FIXED and WRAP are treated as INCR; the
address's bits below the beat are ignored), ``wstrb`` honoured per byte,
responses OKAY with the request's id.  With a 16-bit bus a beat is the half
of a word its address names (the write enables only that half's bytes).  A read burst streams one beat per cycle (the read port's
enable is held while ``rready`` is low, so its data waits in the RAM's output
register); a write burst takes one beat per cycle.  Timing: AR handshake to
the first ``rvalid`` 2 cycles; the last W beat to ``bvalid`` 1 cycle.

Host side (``host_*``): ``host_req`` with ``host_we``, ``host_addr`` (word
address) and ``host_wdata`` asks for one access; ``host_ack`` pulses when it
is done (for a read, ``host_rdata`` is valid in that cycle).  The host is
served only between AXI bursts, and an AXI request waiting in the same cycle
wins (the accelerator is never slowed by the host; the host only waits).
"""

from __future__ import annotations

import operator

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .axi import RESP_OKAY, Axi4Signature

__all__ = ["AxiBram", "check_depth"]


def check_depth(depth) -> int:
    """``depth`` as an int, or ``ValueError`` unless a power of two 16..65536."""
    depth = operator.index(depth)
    if depth < 16 or depth > 65536 or depth & (depth - 1):
        raise ValueError(f"depth must be a power of two in 16..65536, not {depth}")
    return depth


class AxiBram(wiring.Component):
    """Block-RAM AXI4 slave with a host port (see the module docstring).

    Parameters: ``depth`` (32-bit words, a power of two, 16..65536),
    ``addr_width``/``data_width`` (32 or 16)/``id_width`` of the AXI bus,
    ``init`` (words).

    Members: ``s_axi`` (In(Axi4Signature(addr_width, data_width, id_width))),
    ``host_req``, ``host_we`` (In), ``host_addr`` (In, log2(depth)),
    ``host_wdata`` (In, 32), ``host_rdata`` (Out, 32), ``host_ack`` (Out).
    """

    def __init__(self, depth: int, *, addr_width: int = 32, data_width: int = 32,
                 id_width: int = 1, init=(), ram_style: str | None = None):
        self.depth = depth = check_depth(depth)
        self.abits = depth.bit_length() - 1
        if data_width not in (16, 32):
            raise ValueError(f"data_width must be 16 or 32, not {data_width!r}")
        self.data_width = data_width
        self.init = list(init)
        self.ram_style = ram_style
        super().__init__({
            "s_axi": In(Axi4Signature(addr_width, data_width, id_width)),
            "host_req": In(1), "host_we": In(1), "host_addr": In(self.abits),
            "host_wdata": In(32), "host_rdata": Out(32), "host_ack": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        ax = self.s_axi
        attrs = {"ram_style": self.ram_style} if self.ram_style else {}
        m.submodules.mem = mem = Memory(shape=32, depth=self.depth, init=self.init, attrs=attrs)
        rp = mem.read_port()
        wp = mem.write_port(granularity=8)
        dw = self.data_width
        sub = (32 // dw).bit_length() - 1          # beat-address bits below the word
        beat = slice(2 - sub, 2 + self.abits)      # the beat address in a byte address
        # One address for both ports (only one is used in any cycle), so that
        # Yosys can map the memory to a single-port RAM (iCE40 SPRAM).
        at = Signal(self.abits)
        m.d.comb += [rp.addr.eq(at), wp.addr.eq(at)]
        # Reads and writes never share a cycle; saying so in the logic lets
        # Yosys prove it (a single-port RAM keeps its output during writes).
        rd_en = Signal()
        m.d.comb += rp.en.eq(rd_en & ~wp.en.any())

        addr = Signal(self.abits + sub)  # next beat of the burst
        lane = Signal(sub) if sub else None  # half of the word on rp.data (16-bit bus)
        left = Signal(9)               # read beats not yet issued to the RAM
        rid = Signal.like(ax.arid)
        rvalid = Signal()
        host_rd = Signal()             # a host read was issued last cycle
        m.d.comb += [ax.rdata.eq(rp.data.word_select(lane, dw) if sub else rp.data),
                     ax.rresp.eq(RESP_OKAY), ax.bresp.eq(RESP_OKAY),
                     ax.rvalid.eq(rvalid), ax.rid.eq(rid), ax.bid.eq(rid),
                     self.host_rdata.eq(rp.data)]
        # host_ack: the cycle after the access (a read's data is then on rp.data)
        host_wack = Signal()
        m.d.sync += [host_rd.eq(0), host_wack.eq(0)]
        m.d.comb += self.host_ack.eq(host_rd | host_wack)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += at.eq(self.host_addr)
                with m.If(ax.arvalid):
                    m.d.comb += ax.arready.eq(1)
                    m.d.sync += [addr.eq(ax.araddr[beat]), left.eq(ax.arlen + 1),
                                 rid.eq(ax.arid)]
                    m.next = "READ"
                with m.Elif(ax.awvalid):
                    m.d.comb += ax.awready.eq(1)
                    m.d.sync += [addr.eq(ax.awaddr[beat]), rid.eq(ax.awid)]
                    m.next = "WRITE"
                with m.Elif(self.host_req & ~host_rd & ~host_wack):
                    with m.If(self.host_we):
                        m.d.comb += [wp.data.eq(self.host_wdata), wp.en.eq(0b1111)]
                        m.d.sync += host_wack.eq(1)
                    with m.Else():
                        m.d.comb += rd_en.eq(1)
                        m.d.sync += host_rd.eq(1)
            with m.State("READ"):
                advance = Signal()
                m.d.comb += [advance.eq(~rvalid | ax.rready), at.eq(addr[sub:]),
                             rd_en.eq(advance), ax.rlast.eq(rvalid & (left == 0))]
                with m.If(advance):
                    with m.If(left != 0):
                        m.d.sync += [addr.eq(addr + 1), left.eq(left - 1), rvalid.eq(1)]
                        if sub:
                            m.d.sync += lane.eq(addr[:sub])
                    with m.Else():
                        m.d.sync += rvalid.eq(0)
                        m.next = "IDLE"
            with m.State("WRITE"):
                m.d.comb += [ax.wready.eq(1), at.eq(addr[sub:]),
                             wp.data.eq(Cat(*[ax.wdata] * (32 // dw)))]
                with m.If(ax.wvalid):
                    m.d.comb += wp.en.eq(ax.wstrb << (addr[:sub] * (dw // 8)) if sub
                                         else ax.wstrb)
                    m.d.sync += addr.eq(addr + 1)
                    with m.If(ax.wlast):
                        m.next = "RESP"
            with m.State("RESP"):
                m.d.comb += ax.bvalid.eq(1)
                with m.If(ax.bready):
                    m.next = "IDLE"
        return m
