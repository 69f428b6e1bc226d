"""AXI4 read and write masters driven by (address, beats) command streams.

Both masters split a command into INCR bursts with :class:`BurstSplitter`
(at most ``max_burst`` beats, never crossing a 4 KB boundary; the same rule
as :meth:`nnloom.hw.axi.AxiMasterConfig.bursts`), keep up to ``max_outstanding``
bursts in flight, use id 0, full-width beats (AxSIZE = log2(data_width/8)),
all-ones write strobes, and constant ``lock=0``, ``cache=0b0011``,
``prot=0``, ``qos=0``.

Errors are sticky bits of ``error_code`` (``ERR_MISALIGNED``: a command
address not a multiple of ``data_width/8``; ``ERR_RESP``: an RRESP/BRESP
other than OKAY); ``error`` is their OR; ``clear`` zeroes them (an error
arriving in the same cycle wins).  Data words are unsigned ``data_width``-bit
values, byte 0 of a word at its lowest address (AXI little-endian lanes).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import (BOUNDARY, ERR_MISALIGNED, ERR_RESP, RESP_OKAY, AxiReaderConfig,
                  AxiWriterConfig, AxiMasterConfig)

__all__ = ["BurstSplitter", "AxiReader", "AxiWriter"]

_INCR = 1
_CACHE = 0b0011  # normal, non-cacheable, bufferable: what most DMA masters send


def _burst_layout(cfg: AxiMasterConfig) -> data.StructLayout:
    return data.StructLayout({"addr": unsigned(cfg.addr_width), "len": unsigned(9),
                              "discard": unsigned(1)})


class BurstSplitter(wiring.Component):
    """Cuts (addr, beats) commands into bursts, one per cycle at most.

    ``keep_misaligned=False`` (reader): a misaligned command is consumed and
    produces nothing.  ``keep_misaligned=True`` (writer): it produces bursts
    of up to ``max_burst`` beats with ``discard`` set, so the writer can drop
    the command's data words and stay in step with its data stream.

    A command is taken while idle or in the cycle its last burst is taken, so
    back-to-back commands leave no gap; a burst is offered the cycle after
    its command.  Members: ``cmd`` (In stream, ``cfg.cmd_layout``), ``burst``
    (Out stream: ``addr``, ``len`` 1..256, ``discard``), ``misaligned`` (Out,
    1-cycle pulse with the offending command's handshake), ``busy`` (Out).
    """

    def __init__(self, config: AxiMasterConfig, *, keep_misaligned: bool):
        self.config = config
        self.keep_misaligned = keep_misaligned
        super().__init__({
            "cmd": In(stream.Signature(config.cmd_layout)),
            "burst": Out(stream.Signature(_burst_layout(config))),
            "misaligned": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        active = Signal()
        addr = Signal(cfg.addr_width)
        remaining = Signal(cfg.BEATS_WIDTH)
        discard = Signal()

        # Beats left before the next 4 KB boundary, a register kept with
        # ``addr`` (off the burst length's path): ``(BOUNDARY - addr[:12]) >>
        # size_log2`` at every cycle.  A burst of n <= to_boundary beats
        # leaves to_boundary - n, or a whole 4 KB page when it ends on the
        # boundary; a discarded command walks from address 0, where this is
        # always >= max_burst.
        page = BOUNDARY // cfg.bytes_per_beat
        to_boundary = Signal(range(page + 1), init=page)
        cap = Signal(range(BOUNDARY // cfg.bytes_per_beat + 1))
        m.d.comb += cap.eq(Mux(to_boundary < cfg.max_burst, to_boundary, cfg.max_burst))
        n = Signal(9)
        last = Signal()
        m.d.comb += [n.eq(Mux(remaining < cap, remaining, cap)), last.eq(remaining <= cap)]

        burst = self.burst
        m.d.comb += [burst.valid.eq(active), burst.payload.addr.eq(addr),
                     burst.payload.len.eq(n), burst.payload.discard.eq(discard),
                     self.cmd.ready.eq(~active | (burst.ready & last)),
                     self.busy.eq(active)]
        with m.If(burst.valid & burst.ready):
            m.d.sync += [addr.eq(addr + (n << cfg.size_log2)), remaining.eq(remaining - n),
                         to_boundary.eq(Mux(to_boundary == n, page, to_boundary - n))]
            with m.If(last):
                m.d.sync += active.eq(0)

        cmd = self.cmd.payload
        mis = Signal()
        m.d.comb += mis.eq(cmd.addr[:cfg.size_log2] != 0 if cfg.size_log2 else 0)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.comb += self.misaligned.eq(mis)
            load = cmd.beats != 0
            if not self.keep_misaligned:
                load = load & ~mis
            m.d.sync += [active.eq(load), remaining.eq(cmd.beats), discard.eq(mis),
                         addr.eq(Mux(mis, 0, cmd.addr)),
                         to_boundary.eq(Mux(mis, page,
                                            (BOUNDARY - cmd.addr[:12]) >> cfg.size_log2))]
        return m


def _master_members(cfg: AxiMasterConfig) -> dict:
    return {
        "cmd": In(stream.Signature(cfg.cmd_layout)),
        "m_axi": Out(cfg.axi_signature),
        "error": Out(1), "error_code": Out(2), "clear": In(1), "busy": Out(1),
    }


def _constants(m, axi, ch: str, cfg: AxiMasterConfig):
    m.d.comb += [getattr(axi, f"{ch}id").eq(0), getattr(axi, f"{ch}size").eq(cfg.size_log2),
                 getattr(axi, f"{ch}burst").eq(_INCR), getattr(axi, f"{ch}lock").eq(0),
                 getattr(axi, f"{ch}cache").eq(_CACHE), getattr(axi, f"{ch}prot").eq(0),
                 getattr(axi, f"{ch}qos").eq(0)]


def _errors(m, comp, mis, bad_resp):
    code = Signal(2)
    with m.If(comp.clear):
        m.d.sync += code.eq(0)
    with m.If(mis):
        m.d.sync += code[0].eq(1)
    with m.If(bad_resp):
        m.d.sync += code[1].eq(1)
    assert ERR_MISALIGNED == 1 and ERR_RESP == 2
    m.d.comb += [comp.error_code.eq(code), comp.error.eq(code != 0)]


class AxiReader(wiring.Component):
    """AXI4 read master: ``cmd`` (addr, beats) in, ``data`` words out in
    address order.

    AR for the first burst is valid ``cfg.cmd_to_addr`` cycles after the
    command; further ARs follow one per cycle while fewer than
    ``max_outstanding`` bursts await their last R beat.  R passes straight
    through: ``data.valid = rvalid``, ``rready = data.ready`` (no buffering,
    no added latency).  A beat with a bad RRESP is still delivered (so the
    consumer's count holds) and sets ``ERR_RESP``.  A misaligned command is
    consumed, issues nothing and sets ``ERR_MISALIGNED``.

    Members: ``cmd`` (In stream, ``cfg.cmd_layout``), ``data`` (Out stream,
    ``data_width`` bits), ``m_axi`` (Out(:class:`~hw.axi.Axi4Signature`)),
    ``error``, ``error_code`` (Out), ``clear`` (In), ``busy`` (Out: a command
    is being split or a burst is in flight).
    """

    def __init__(self, config: AxiReaderConfig):
        if not isinstance(config, AxiReaderConfig):
            raise TypeError(f"config must be an AxiReaderConfig, not {config!r}")
        self.config = config
        super().__init__({**_master_members(config),
                          "data": Out(stream.Signature(config.data_shape))})

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        axi = self.m_axi
        m.submodules.split = split = BurstSplitter(cfg, keep_misaligned=False)
        wiring.connect(m, wiring.flipped(self.cmd), split.cmd)

        outstanding = Signal(range(cfg.max_outstanding + 1))
        can_issue = outstanding < cfg.max_outstanding
        _constants(m, axi, "ar", cfg)
        m.d.comb += [axi.araddr.eq(split.burst.payload.addr),
                     axi.arlen.eq(split.burst.payload.len - 1),
                     axi.arvalid.eq(split.burst.valid & can_issue),
                     split.burst.ready.eq(axi.arready & can_issue)]

        m.d.comb += [self.data.valid.eq(axi.rvalid), self.data.payload.eq(axi.rdata),
                     axi.rready.eq(self.data.ready)]
        r_fire = axi.rvalid & axi.rready
        ar_fire = axi.arvalid & axi.arready
        m.d.sync += outstanding.eq(outstanding + ar_fire - (r_fire & axi.rlast))

        _errors(m, self, split.misaligned, r_fire & (axi.rresp != RESP_OKAY))
        m.d.comb += self.busy.eq(split.busy | (outstanding != 0))
        return m


class AxiWriter(wiring.Component):
    """AXI4 write master: ``cmd`` (addr, beats) and ``data`` words in.

    AW for the first burst is valid ``cfg.cmd_to_addr`` cycles after the
    command; further AWs follow one per cycle while fewer than
    ``max_outstanding`` bursts await their B and the ``max_outstanding``-
    entry burst-length FIFO that paces the W channel has room.  The length
    enters the FIFO in the cycle AWVALID rises, so the first W beat of a
    burst can go ``cfg.aw_to_w`` cycles after AWVALID, whether or not AWREADY
    came (W never waits for AWREADY, as AXI4 requires, and never leads its
    AW); bursts follow each other on W without a gap;
    ``wvalid = data.valid``, ``data.ready = wready`` within a burst.
    ``bready`` is always 1.

    A misaligned command sets ``ERR_MISALIGNED``, issues nothing on AXI and
    *consumes and drops* its ``beats`` data words, so that later commands
    stay paired with their data.  A B with BRESP other than OKAY sets
    ``ERR_RESP``.  ``busy``: a command is being split, its data words are
    still due, or a burst awaits its B; when it falls, every write is done.

    Members: ``cmd`` (In stream), ``data`` (In stream, ``data_width`` bits),
    ``m_axi`` (Out(:class:`~hw.axi.Axi4Signature`)), ``error``,
    ``error_code``, ``busy`` (Out), ``clear`` (In).
    """

    def __init__(self, config: AxiWriterConfig):
        if not isinstance(config, AxiWriterConfig):
            raise TypeError(f"config must be an AxiWriterConfig, not {config!r}")
        self.config = config
        super().__init__({**_master_members(config),
                          "data": In(stream.Signature(config.data_shape))})

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        axi = self.m_axi
        m.submodules.split = split = BurstSplitter(cfg, keep_misaligned=True)
        wiring.connect(m, wiring.flipped(self.cmd), split.cmd)
        entry = data.StructLayout({"len": unsigned(9), "discard": unsigned(1)})
        m.submodules.lens = lens = fifo.SyncFIFO(width=entry.size, depth=cfg.max_outstanding)

        burst = split.burst
        outstanding = Signal(range(cfg.max_outstanding + 1))
        can_issue = outstanding < cfg.max_outstanding
        # A burst's length enters the W FIFO in the cycle its AW first goes
        # valid, so W starts the cycle after AWVALID whether or not AWREADY
        # came (AXI4 A3.3.1: W must not wait for AWREADY), and never leads
        # its AW (slaves differ in how many W beats they take ahead of AW).
        # The burst leaves the splitter once its AW has been accepted.
        aw_done = Signal()
        push_done = Signal()
        go = burst.valid & (burst.payload.discard | can_issue)
        _constants(m, axi, "aw", cfg)
        m.d.comb += [axi.awaddr.eq(burst.payload.addr), axi.awlen.eq(burst.payload.len - 1),
                     axi.awvalid.eq(go & ~aw_done & ~burst.payload.discard
                                    & (push_done | lens.w_rdy)),
                     lens.w_en.eq(go & ~push_done),
                     lens.w_data.eq(Cat(burst.payload.len, burst.payload.discard))]
        aw_now = aw_done | burst.payload.discard | (axi.awvalid & axi.awready)
        push_now = push_done | (lens.w_en & lens.w_rdy)
        m.d.comb += burst.ready.eq(aw_now & push_now)
        with m.If(burst.valid):
            m.d.sync += [aw_done.eq(aw_now & ~burst.ready),
                         push_done.eq(push_now & ~burst.ready)]
        aw_fire = axi.awvalid & axi.awready

        head = data.View(entry, lens.r_data)
        count = Signal(8)
        wlast = Signal()
        m.d.comb += [
            wlast.eq(count == head.len - 1),
            axi.wdata.eq(self.data.payload), axi.wstrb.eq((1 << cfg.bytes_per_beat) - 1),
            axi.wlast.eq(wlast),
            axi.wvalid.eq(lens.r_rdy & ~head.discard & self.data.valid),
            self.data.ready.eq(lens.r_rdy & (head.discard | axi.wready)),
        ]
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += count.eq(Mux(wlast, 0, count + 1))
            m.d.comb += lens.r_en.eq(wlast)

        m.d.comb += axi.bready.eq(1)
        b_fire = axi.bvalid
        m.d.sync += outstanding.eq(outstanding + aw_fire - b_fire)

        _errors(m, self, split.misaligned, b_fire & (axi.bresp != RESP_OKAY))
        m.d.comb += self.busy.eq(split.busy | lens.r_rdy | (outstanding != 0))
        return m
