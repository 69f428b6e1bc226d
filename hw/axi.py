"""AXI interface signatures and the configs of the AXI building blocks.

Signatures are *flat*: every AXI signal is a direct member, so that Amaranth
names the member ``m_axi`` with field ``awaddr`` ``m_axi__awaddr`` in the
emitted Verilog, which is what cocotbext-axi binds with
``AxiBus.from_prefix(dut, "m_axi_")`` (it joins prefix and signal name with
``"_"``).  Directions are those of the *master*; a slave takes ``In(sig)``.

Configs (one frozen :class:`~nnloom.hw.params.Config` per component):

* :class:`AxiLiteRegsConfig` -- ``axil-regs``, AXI4-Lite slave to a register bus
  (:mod:`nnloom.hw.axi_lite`);
* :class:`AxiReaderConfig` -- ``axi-reader``, AXI4 read master
  (:mod:`nnloom.hw.axi_master`);
* :class:`AxiWriterConfig` -- ``axi-writer``, AXI4 write master
  (:mod:`nnloom.hw.axi_master`).

The burst splitting rule and the cycle models of the masters live here, so
the hardware, the testbenches and the performance model read the same code.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from amaranth.hdl import unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .params import Config, ParamError, param

__all__ = ["AxiLiteSignature", "Axi4Signature", "RegBusSignature",
           "AxiLiteRegsConfig", "AxiMasterConfig", "AxiReaderConfig", "AxiWriterConfig",
           "RESP_OKAY", "RESP_SLVERR", "ERR_MISALIGNED", "ERR_RESP", "BOUNDARY"]

RESP_OKAY = 0
RESP_SLVERR = 2
#: ``error_code`` bits of the masters (sticky until ``clear``).
ERR_MISALIGNED = 1
ERR_RESP = 2
#: No INCR burst may cross a multiple of this many bytes (AXI4 rule).
BOUNDARY = 4096


def _check_width(name, value, lo, hi=None):
    value = operator.index(value)
    if value < lo or (hi is not None and value > hi):
        raise TypeError(f"{name} must be an integer {lo}..{hi}, not {value!r}")
    return value


class AxiLiteSignature(wiring.Signature):
    """AXI4-Lite, master's view.  ``addr_width`` bits of byte address,
    ``data_width`` (32 or 64) bits of data, ``data_width // 8`` strobes.

    Members: ``awaddr awprot awvalid awready wdata wstrb wvalid wready bresp
    bvalid bready araddr arprot arvalid arready rdata rresp rvalid rready``.
    """

    def __init__(self, addr_width: int, data_width: int = 32):
        self.addr_width = _check_width("addr_width", addr_width, 1, 64)
        if data_width not in (32, 64):
            raise TypeError(f"data_width must be 32 or 64, not {data_width!r}")
        self.data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    def __eq__(self, other):
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __repr__(self):
        return f"AxiLiteSignature({self.addr_width}, {self.data_width})"


class Axi4Signature(wiring.Signature):
    """Full AXI4, master's view, with every signal cocotbext-axi requires
    (ids, lengths, sizes, bursts, last) and the optional ``lock``, ``cache``,
    ``prot`` and ``qos`` (driven with constants by our masters).

    ``addr_width`` bits of byte address, ``data_width`` (16, 32 or 64) bits of
    data, ``id_width`` bits of transaction id.
    """

    def __init__(self, addr_width: int = 32, data_width: int = 32, id_width: int = 1):
        self.addr_width = _check_width("addr_width", addr_width, 1, 64)
        if data_width not in (16, 32, 64):
            raise TypeError(f"data_width must be 16, 32 or 64, not {data_width!r}")
        self.data_width = data_width
        self.id_width = _check_width("id_width", id_width, 1, 16)
        members = {}
        for ch in ("aw", "ar"):
            members.update({
                f"{ch}id": Out(id_width), f"{ch}addr": Out(addr_width), f"{ch}len": Out(8),
                f"{ch}size": Out(3), f"{ch}burst": Out(2), f"{ch}lock": Out(1),
                f"{ch}cache": Out(4), f"{ch}prot": Out(3), f"{ch}qos": Out(4),
                f"{ch}valid": Out(1), f"{ch}ready": In(1)})
        members.update({
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1),
            "wvalid": Out(1), "wready": In(1),
            "bid": In(id_width), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "rid": In(id_width), "rdata": In(data_width), "rresp": In(2), "rlast": In(1),
            "rvalid": In(1), "rready": Out(1),
        })
        super().__init__(members)

    def __eq__(self, other):
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.data_width == self.data_width and other.id_width == self.id_width)

    def __repr__(self):
        return f"Axi4Signature({self.addr_width}, {self.data_width}, {self.id_width})"


class RegBusSignature(wiring.Signature):
    """Simple register bus driven by :class:`nnloom.hw.axi_lite.AxiLiteRegs`.

    Members: ``addr`` (Out, ``addr_width`` bits, *word* address), ``w_data``
    (Out, 32), ``w_strb`` (Out, 4), ``w_en`` (Out, 1-cycle pulse), ``r_en``
    (Out, 1-cycle pulse), ``r_data`` (In, 32, sampled the cycle after ``r_en``).
    """

    def __init__(self, addr_width: int, data_width: int = 32):
        self.addr_width = _check_width("addr_width", addr_width, 1, 64)
        self.data_width = data_width
        super().__init__({
            "addr": Out(addr_width), "w_data": Out(data_width), "w_strb": Out(data_width // 8),
            "w_en": Out(1), "r_en": Out(1), "r_data": In(data_width),
        })

    def __eq__(self, other):
        return (type(other) is type(self) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __repr__(self):
        return f"RegBusSignature({self.addr_width}, {self.data_width})"


@dataclass(frozen=True)
class AxiLiteRegsConfig(Config):
    """AXI4-Lite slave to a register bus (see :mod:`nnloom.hw.axi_lite`)."""

    component = "axil-regs"

    addr_width: int = param(8, lo=4, hi=16, help="AXI-Lite byte-address width in bits")
    data_width: int = param(32, choices=(32,), help="data width in bits")
    size: int = param(0, lo=0, hi=2**14,
                      help="registers (words) that answer OKAY; beyond: SLVERR (0: all)")

    def validate(self):
        if self.size > self.words:
            raise ParamError("size", self.size, f"0..{self.words} (2**(addr_width-2))")

    @property
    def words(self) -> int:
        """Words the address space holds: 2**(addr_width - 2)."""
        return 1 << (self.addr_width - 2)

    @property
    def word_bits(self) -> int:
        """Width of the register bus's word address."""
        return self.addr_width - 2

    @property
    def axil_signature(self) -> AxiLiteSignature:
        return AxiLiteSignature(self.addr_width, self.data_width)

    @property
    def bus_signature(self) -> RegBusSignature:
        return RegBusSignature(self.word_bits, self.data_width)

    def in_range(self, byte_addr: int) -> bool:
        return self.size == 0 or (byte_addr >> 2) % self.words < self.size

    # -- timing (docs/axi.md) ---------------------------------------------------
    @property
    def write_latency(self) -> int:
        """Cycles from the handshake that completes a write's AW + W pair to
        its ``bus.w_en`` pulse."""
        return 1

    @property
    def write_response_latency(self) -> int:
        """Cycles from the handshake that completes a write's AW + W pair to
        ``bvalid``."""
        return 2

    @property
    def read_latency(self) -> int:
        """Cycles from the AR handshake to ``rvalid``: ``bus.r_en`` 1 cycle
        after AR, ``bus.r_data`` sampled 1 cycle after ``r_en``, ``rvalid`` 1
        cycle after that."""
        return 3

    def transaction_cycles(self) -> tuple[int, int]:
        """(write, read) cycles per transaction with a master that offers the
        next one as soon as the previous response is taken: AW/W or AR
        handshake, latency, response handshake."""
        return self.write_response_latency + 1, self.read_latency + 1


@dataclass(frozen=True)
class AxiMasterConfig(Config):
    addr_width: int = param(32, lo=13, hi=64, help="AXI byte-address width in bits")
    data_width: int = param(32, choices=(16, 32, 64), help="AXI data width in bits")
    id_width: int = param(1, lo=1, hi=16, help="AXI id width (our masters use id 0)")
    max_burst: int = param(16, lo=1, hi=256, help="most beats per INCR burst")
    max_outstanding: int = param(2, lo=1, hi=8, help="bursts in flight at once")

    #: Width of the ``beats`` field of a command (1..65535 beats).
    BEATS_WIDTH = 16

    @property
    def bytes_per_beat(self) -> int:
        return self.data_width // 8

    @property
    def size_log2(self) -> int:
        """AxSIZE: log2 of the bytes per beat."""
        return (self.bytes_per_beat - 1).bit_length()

    @property
    def cmd_layout(self) -> data.StructLayout:
        """``addr``: byte address (multiple of data_width/8); ``beats``: words
        to move, 1..65535 (0 is consumed and does nothing)."""
        return data.StructLayout({"addr": unsigned(self.addr_width),
                                  "beats": unsigned(self.BEATS_WIDTH)})

    @property
    def data_shape(self):
        return unsigned(self.data_width)

    @property
    def axi_signature(self) -> Axi4Signature:
        return Axi4Signature(self.addr_width, self.data_width, self.id_width)

    def aligned(self, addr: int) -> bool:
        return addr % self.bytes_per_beat == 0

    def bursts(self, addr: int, beats: int) -> list[tuple[int, int]]:
        """The (byte address, beats) INCR bursts a command is split into: at
        most ``max_burst`` beats, never crossing a 4 KB boundary.  ``addr``
        must be aligned (the hardware issues nothing for a misaligned one)."""
        if not self.aligned(addr):
            raise ValueError(f"addr {addr:#x} is not a multiple of {self.bytes_per_beat} bytes")
        out = []
        mask = (1 << self.addr_width) - 1
        while beats > 0:
            to_boundary = (BOUNDARY - addr % BOUNDARY) // self.bytes_per_beat
            n = min(beats, self.max_burst, to_boundary)
            out.append((addr, n))
            addr = (addr + n * self.bytes_per_beat) & mask
            beats -= n
        return out

    @property
    def cmd_to_addr(self) -> int:
        """Cycles from the cmd handshake to the first AR/AW valid (1)."""
        return 1


@dataclass(frozen=True)
class AxiReaderConfig(AxiMasterConfig):
    """AXI4 read master (see :class:`nnloom.hw.axi_master.AxiReader`)."""

    component = "axi-reader"

    def read_cycles(self, beats: int, addr: int, ram_latency: int) -> int:
        """Cycles from the cmd handshake to the last ``data`` handshake, both
        included, with an always-ready ``data`` consumer and a slave that
        accepts every AR at once and returns the first beat of a burst
        ``ram_latency`` cycles after its AR handshake (or the cycle after the
        previous burst's last beat, if later), one beat per cycle.

        The reader issues AR ``cmd_to_addr`` cycles after the command, then
        one AR per cycle while fewer than ``max_outstanding`` bursts are in
        flight; a burst leaves flight the cycle after its last beat.
        """
        if beats == 0:
            return 0
        c = 0
        ar, last = [], []
        for i, (_, n) in enumerate(self.bursts(addr, beats)):
            a = c + self.cmd_to_addr if i == 0 else ar[-1] + 1
            if i >= self.max_outstanding:
                a = max(a, last[i - self.max_outstanding] + 1)
            first = a + ram_latency if i == 0 else max(a + ram_latency, last[-1] + 1)
            ar.append(a)
            last.append(first + n - 1)
        return last[-1] - c + 1


@dataclass(frozen=True)
class AxiWriterConfig(AxiMasterConfig):
    """AXI4 write master (see :class:`nnloom.hw.axi_master.AxiWriter`)."""

    component = "axi-writer"

    @property
    def aw_to_w(self) -> int:
        """Cycles from a burst's AWVALID rising (its length entering the W
        FIFO) to its first W beat, when the W channel is otherwise idle."""
        return 1

    def write_cycles(self, beats: int, addr: int, ram_latency: int) -> int:
        """Cycles from the cmd handshake to the last B handshake, both
        included, with an always-valid ``data`` source and a slave that
        accepts every AW at once, takes one W beat per cycle and answers a
        burst's B ``ram_latency`` cycles after its last W beat (or the cycle
        after the previous B, if later).

        A burst is offered ``cmd_to_addr`` cycles after the command, or the
        cycle after the previous burst's AW; its AW goes valid (and its length
        enters the W FIFO) once fewer than ``max_outstanding`` bursts await
        their B (a burst stops waiting the cycle after its B) and the FIFO
        (``max_outstanding`` entries, freed the cycle after a burst's last W)
        has room.  W beats start ``aw_to_w`` cycles after the AW and follow
        the previous burst's beats without a gap.
        """
        if beats == 0:
            return 0
        c, depth = 0, self.max_outstanding
        wlast, b = [], []
        aw = c + self.cmd_to_addr - 1
        for i, (_, n) in enumerate(self.bursts(addr, beats)):
            aw += 1  # offered the cycle after the previous AW
            if i >= depth:
                aw = max(aw, b[i - depth] + 1, wlast[i - depth] + 1)
            w0 = aw + self.aw_to_w if i == 0 else max(aw + self.aw_to_w, wlast[-1] + 1)
            wlast.append(w0 + n - 1)
            done = wlast[-1] + ram_latency
            b.append(done if i == 0 else max(done, b[-1] + 1))
        return b[-1] - c + 1
