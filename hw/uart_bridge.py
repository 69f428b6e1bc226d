"""A UART bridge: a host reads and writes 32-bit words in two address
spaces, the registers (an AXI4-Lite master) and the memory (the host port of
:class:`nnloom.hw.axi_bram.AxiBram`).

Byte format (every multi-byte field little-endian):

request   ``CMD ADDR[4] COUNT [DATA[4] x (COUNT + 1)] CHK``
response  write: ``ACK``; read: ``ACK DATA[4] x (COUNT + 1) RCHK``, or ``NAK``

* ``CMD``: ``0x77`` 'w' register write, ``0x72`` 'r' register read, ``0x57``
  'W' memory write, ``0x52`` 'R' memory read;
* ``ADDR``: byte address of the first word (a multiple of 4; the two low
  bits are ignored), then ``COUNT + 1`` consecutive words (1..256);
* ``CHK``: the XOR of every earlier byte of the request (so that the XOR of
  the whole request is 0); ``RCHK`` likewise over the response;
* ``ACK`` echoes ``CMD``; ``NAK`` = ``0xEE``: unknown command (sent at once,
  the bridge then waits for the next command byte) or a bad ``CHK``.

Writes take effect as their words arrive, before ``CHK`` is checked, so a
write answered with ``NAK`` must be repeated (every write is idempotent
except a CTRL start, which a host sends alone).  A read checks ``CHK`` before
it reads anything.  Register accesses are AXI4-Lite transactions with
``addr_width`` bits of address; memory accesses use word address ``ADDR >>
2`` of ``mem_abits`` bits.  The Python side is :mod:`hw.uart_link`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import AxiLiteSignature

__all__ = ["UartBridge", "CMD_REG_WRITE", "CMD_REG_READ", "CMD_MEM_WRITE", "CMD_MEM_READ",
           "NAK", "MAX_WORDS"]

CMD_REG_WRITE, CMD_REG_READ, CMD_MEM_WRITE, CMD_MEM_READ = 0x77, 0x72, 0x57, 0x52
NAK = 0xEE
MAX_WORDS = 256


class UartBridge(wiring.Component):
    """Command decoder between a byte stream and two address spaces.

    Members: ``rx`` (In stream of bytes from the UART receiver), ``tx`` (Out
    stream of bytes to the transmitter), ``m_axil`` (Out(AxiLiteSignature
    (addr_width))), ``mem_req``, ``mem_we`` (Out), ``mem_addr`` (Out,
    ``mem_abits``), ``mem_wdata`` (Out, 32), ``mem_rdata`` (In, 32),
    ``mem_ack`` (In): the host port of :class:`hw.axi_bram.AxiBram`.
    """

    def __init__(self, *, addr_width: int = 12, mem_abits: int = 11):
        self.addr_width = addr_width
        self.mem_abits = mem_abits
        super().__init__({
            "rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
            "m_axil": Out(AxiLiteSignature(addr_width)),
            "mem_req": Out(1), "mem_we": Out(1), "mem_addr": Out(mem_abits),
            "mem_wdata": Out(32), "mem_rdata": In(32), "mem_ack": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        ax = self.m_axil
        cmd, addr, count = Signal(8), Signal(32), Signal(8)
        word = Signal(32)
        chk = Signal(8)            # running XOR of the request, then of the response
        nbyte = Signal(2)
        aw_done, w_done, ar_done = Signal(), Signal(), Signal()
        is_mem = cmd[5] == 0       # 'W' / 'R' are upper case
        is_write = cmd[2] == 1     # 'w' 0x77 / 'W' 0x57 have bit 2; 'r' / 'R' do not
        rxb = self.rx.payload

        m.d.comb += [ax.awaddr.eq(addr), ax.araddr.eq(addr), ax.wdata.eq(word),
                     ax.wstrb.eq(0b1111), ax.awprot.eq(0), ax.arprot.eq(0),
                     self.mem_addr.eq(addr[2:]), self.mem_wdata.eq(word)]

        def next_word(m, last_state, more_state):
            with m.If(count == 0):
                m.next = last_state
            with m.Else():
                m.d.sync += [count.eq(count - 1), addr.eq(addr + 4)]
                m.next = more_state

        with m.FSM():
            with m.State("CMD"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    m.d.sync += [cmd.eq(rxb), chk.eq(rxb), nbyte.eq(0)]
                    with m.If((rxb == CMD_REG_WRITE) | (rxb == CMD_REG_READ) |
                              (rxb == CMD_MEM_WRITE) | (rxb == CMD_MEM_READ)):
                        m.next = "ADDR"
                    with m.Else():
                        m.d.sync += word.eq(NAK)
                        m.next = "SEND_LAST"
            with m.State("ADDR"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    m.d.sync += [addr.eq(Cat(addr[8:], rxb)), chk.eq(chk ^ rxb),
                                 nbyte.eq(nbyte + 1)]
                    with m.If(nbyte == 3):
                        m.next = "COUNT"
            with m.State("COUNT"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    m.d.sync += [count.eq(rxb), chk.eq(chk ^ rxb)]
                    with m.If(is_write):
                        m.next = "DATA"
                    with m.Else():
                        m.next = "CHK"
            with m.State("DATA"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    m.d.sync += [word.eq(Cat(word[8:], rxb)), chk.eq(chk ^ rxb),
                                 nbyte.eq(nbyte + 1)]
                    with m.If(nbyte == 3):
                        m.next = "DO_WRITE"
            with m.State("DO_WRITE"):
                with m.If(is_mem):
                    m.d.comb += [self.mem_req.eq(1), self.mem_we.eq(1)]
                    with m.If(self.mem_ack):
                        next_word(m, "CHK", "DATA")
                with m.Else():
                    m.d.comb += [ax.awvalid.eq(~aw_done), ax.wvalid.eq(~w_done),
                                 ax.bready.eq(aw_done & w_done)]
                    with m.If(ax.awvalid & ax.awready):
                        m.d.sync += aw_done.eq(1)
                    with m.If(ax.wvalid & ax.wready):
                        m.d.sync += w_done.eq(1)
                    with m.If(ax.bvalid & ax.bready):
                        m.d.sync += [aw_done.eq(0), w_done.eq(0)]
                        next_word(m, "CHK", "DATA")
            with m.State("CHK"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    ok = (chk ^ rxb) == 0
                    m.d.sync += [word.eq(cmd), chk.eq(cmd)]
                    with m.If(~ok):
                        m.d.sync += word.eq(NAK)
                        m.next = "SEND_LAST"
                    with m.Elif(is_write):
                        m.next = "SEND_LAST"
                    with m.Else():
                        m.next = "SEND_ACK"
            with m.State("SEND_ACK"):      # read: the echo, then the words
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(cmd)]
                with m.If(self.tx.ready):
                    m.next = "DO_READ"
            with m.State("DO_READ"):
                with m.If(is_mem):
                    m.d.comb += self.mem_req.eq(1)
                    with m.If(self.mem_ack):
                        m.d.sync += [word.eq(self.mem_rdata), nbyte.eq(0)]
                        m.next = "SEND_WORD"
                with m.Else():
                    m.d.comb += [ax.arvalid.eq(~ar_done), ax.rready.eq(ar_done)]
                    with m.If(ax.arvalid & ax.arready):
                        m.d.sync += ar_done.eq(1)
                    with m.If(ax.rvalid & ax.rready):
                        m.d.sync += [ar_done.eq(0), word.eq(ax.rdata), nbyte.eq(0)]
                        m.next = "SEND_WORD"
            with m.State("SEND_WORD"):
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(word[:8])]
                with m.If(self.tx.ready):
                    m.d.sync += [word.eq(word >> 8), chk.eq(chk ^ word[:8]),
                                 nbyte.eq(nbyte + 1)]
                    with m.If(nbyte == 3):
                        next_word(m, "SEND_RCHK", "DO_READ")
            with m.State("SEND_RCHK"):
                m.d.sync += word.eq(chk)
                m.next = "SEND_LAST"
            with m.State("SEND_LAST"):     # one byte, then the next command
                m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(word[:8])]
                with m.If(self.tx.ready):
                    m.next = "CMD"
        return m
