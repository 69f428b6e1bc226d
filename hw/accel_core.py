"""The accelerator's compute core: buffers, the systolic engine, feeders,
accumulation, the vector post-processing unit and max pooling.

Data layout (word = P int8 lanes, lane 0 in the low byte):

* activation banks: a feature map of H x W pixels and C channels is stored
  channels-last, ``CG = ceil(C / P)`` words per pixel:
  ``word(h, w, g) = base + (h * W + w) * CG + g``, lane ``i`` of word ``g``
  holding channel ``g * P + i`` (missing channels are zero);
* weight banks: a CONV output group (P filters) is ``KT = KR * KS * CG`` weight
  tiles of P words; tile ``kt = (r * KS + s) * CG + g``, word ``i`` holds the
  P filters' weights for channel ``g * P + i`` at kernel position (r, s);
* parameter banks: one word of P :data:`PARAM_STORE` entries per output
  group (lane j: channel ``group * P + j``).

The core is three decoupled units with an instruction queue each, fed from
one command stream (``cmd``):

* the **weight feeder** streams each CONV's ``KT * P`` weight words into the
  array (weight-stationary: tile t + 1 loads into the shadow registers while
  tile t computes);
* the **activation feeder** streams, for each weight tile, one activation
  word per output pixel of the instruction's tile of output rows (the im2col
  row chunk, read straight from the channels-last map; padding reads as
  zero); with fused pooling the pixels come window by window.  It also runs
  MAXPOOL instructions;
* the **drain** adds each result beat into the accumulator buffer; the last
  tile's beats skip it and go through the **vector post-processing unit**:
  bias, the requantization of :mod:`gen.qtypes` (rounding half up), zero
  point, clamp (fused ReLU) on all P lanes at once, one output pixel per
  cycle, then the optional max over ``pk x pk`` consecutive pixels, into one
  output word.

Consecutive instructions stream through the array with no gap; an
instruction with ``dep`` set (the first of each layer) waits until every
earlier one has written its last output (a dependency token: a count of
finished instructions).  Cycle costs are exact:
:meth:`AccelConfig.layer_cycles`.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .accel_isa import INSTRUCTION, INSTRUCTION_BITS, PARAM_ENTRY, Op
from .params import Config, ParamError, param
from .engine import check_engine, systolic_engine
from .systolic import SystolicConfig

__all__ = ["AccelConfig", "AccelCore", "PARAM_STORE", "SAT_BITS", "SyncRead", "Tile", "POST_LATENCY"]

#: What the parameter bank keeps of a :data:`PARAM_ENTRY` (shift stored minus one).
PARAM_STORE = data.StructLayout({"bias": signed(32), "mult": unsigned(31), "shm1": unsigned(6)})
#: Requantized values are saturated to this many bits before the zero point and
#: the int8 clamp, which gives the same result as the full-width value.
SAT_BITS = 18
#: Cycles from a last-tile result beat to its output word's write: the
#: accumulator read, then seven register stages (bias operands, bias, four
#: partial products, their sum, rounding shift, rounding and saturation,
#: zero point and clamp; the pooling maximum and the write follow).
POST_LATENCY = 8


def _sub(layout, *names, seq=False):
    fields = {n: layout._fields[n].shape for n in names}
    if seq:     # the instruction's number, for the dependency check
        fields["seq"] = unsigned(8)
    return data.StructLayout(fields)


#: What each unit's queue keeps of an instruction (field names).
W_FIELDS = ("wbank", "w_off", "w_words", "dep")
A_FIELDS = ("op", "layer", "bank_in", "bank_out", "dep", "stride", "pad", "kr", "ks", "h", "w",
            "cg", "e", "f", "in_base", "out_base", "a_col", "a_row", "a_line", "a_start", "ih0",
            "pk", "pks", "a_pcol", "a_prow")
D_FIELDS = ("layer", "bank_out", "wbank", "release", "resident", "ng", "ngi", "out_zp", "qmin",
            "qmax", "out_base", "p_off", "kt", "pixels", "pk")


@dataclass(frozen=True)
class Tile:
    """One CONV instruction as the cycle model sees it: ``kt`` weight tiles
    of ``m`` output pixels each."""
    kt: int
    m: int


@dataclass(frozen=True)
class AccelConfig(Config):
    """Accelerator parameters; every derived size and cycle cost is here."""

    component = "accel"

    size: int = param(8, lo=2, hi=32, help="systolic array is size x size int8 PEs (even; "
                                            "a multiple of data_width / 8)")
    act_depth: int = param(1024, lo=16, hi=32768, help="words (of size bytes) per activation bank")
    wbuf_depth: int = param(1024, lo=16, hi=32768, help="words (of size bytes) per weight bank")
    pbuf_depth: int = param(64, lo=4, hi=4096, help="channel entries per parameter bank")
    acc_depth: int = param(256, lo=1, hi=16384, help="accumulator words: most output pixels per CONV")
    data_width: int = param(32, choices=(16, 32, 64), help="AXI data width in bits (16: "
                                                               "for P = 2 on small FPGAs)")
    layers: int = param(16, lo=1, hi=64, help="per-layer cycle counters")
    imem_depth: int = param(64, lo=2, hi=1024, help="instructions the program memory holds")
    maxpool: bool = param(True, help="include the max-pooling unit (else MAXPOOL is an "
                                     "illegal opcode)")
    queue_depth: int = param(2, lo=1, hi=16, help="instructions each core unit's queue (and "
                                                  "the fetch queue) holds")
    multiplier: str = param("auto", choices=("comb", "auto", "portable", "ecp5", "ice40"),
                            help="the array's PE multipliers: comb (one-cycle multiply-add) or "
                                 "registered (hw/dsp.py: auto = by the platform, MULT18X18D on "
                                 "ECP5, SB_MAC16 on iCE40, fabric registers without one; the "
                                 "array's latency grows by 4)")
    post_lanes: int = param(0, lo=0, hi=32, help="lanes of the vector post-processing unit "
                                               "(0: all size lanes; else a divisor of size: "
                                               "each output pixel then takes size / post_lanes "
                                               "cycles, a smaller unit for small FPGAs)")
    # program options (the compiler reads them; the Verilog does not depend on them)
    batch: int = param(1, lo=1, hi=255, help="samples per inference run: fully connected "
                                             "layers stream them through each weight tile")
    resident: bool = param(False, help="weights stay on chip: a preload program loads them "
                                       "once, inferences load none")

    @staticmethod
    def bus_width_for(size: int) -> int:
        """The default ``data_width`` for a ``size`` x ``size`` array: 32
        bits, or 16 when 32 does not divide the word of ``size`` bytes."""
        return 32 if (size * 8) % 32 == 0 else 16

    def validate(self):
        if self.size % 2:
            raise ParamError("size", self.size, "an even number in 2..32")
        if self.post_lanes and self.size % self.post_lanes:
            divs = [d for d in range(1, self.size + 1) if self.size % d == 0]
            raise ParamError("post_lanes", self.post_lanes,
                             "0 or a divisor of size " + str(self.size) + ": "
                             + " | ".join(map(str, divs)))
        if (self.size * 8) % self.data_width:
            fits = [w for w in (16, 32, 64) if (self.size * 8) % w == 0]
            raise ParamError("data_width", self.data_width,
                             f"a divisor of the word width {self.size * 8} bits: "
                             + " | ".join(map(str, fits)))

    @property
    def psum_width(self) -> int:
        """Bits of a column sum of the array: P int8 x int8 products never
        overflow it (at most P * 2**14 in magnitude), so the narrow sums equal
        the 32-bit ones the accumulator buffer adds up."""
        return (self.size * 2 ** 14).bit_length() + 1

    @property
    def systolic(self) -> SystolicConfig:
        return SystolicConfig(rows=self.size, cols=self.size, a_width=8, w_width=8,
                              acc_width=self.psum_width, signed=True, dataflow="ws",
                              overflow="wrap", result_fifo=False, multiplier=self.multiplier)

    @property
    def lanes(self) -> int:
        """Lanes the post-processing unit has (:attr:`post_lanes`, 0 = all)."""
        return self.post_lanes or self.size

    @property
    def post_beat(self) -> int:
        """Cycles an output pixel takes in the post-processing unit:
        ``size / lanes`` (1 with all lanes)."""
        return self.size // self.lanes

    @property
    def field_widths(self) -> dict[str, int]:
        """Bits the hardware keeps of the :data:`INSTRUCTION` fields that
        address on-chip memories: activation-bank word addresses and steps
        (kept modulo the bank, as the core computes them), weight-bank
        offsets and parameter groups.  The compiler's values are within the
        banks, so nothing it emits is cut; the instruction queues and
        registers are that much narrower."""
        ab = max(1, (self.act_depth - 1).bit_length())
        wb = max(1, (self.wbuf_depth - 1).bit_length())
        gb = max(1, (self.pgroups - 1).bit_length())
        widths = {n: ab for n in ("in_base", "out_base", "a_col", "a_row", "a_line", "a_start",
                                  "a_pcol", "a_prow")}
        widths.update(w_off=wb, w_words=self.wbuf_depth.bit_length(), p_off=gb)
        return widths

    @property
    def instruction_layout(self) -> data.StructLayout:
        """:data:`INSTRUCTION` with the fields of :attr:`field_widths`
        narrowed (unsigned) and its reserved bits left out: what the fetch
        queue and the core's units hold."""
        narrow = self.field_widths
        return data.StructLayout({
            n: (unsigned(narrow[n]) if n in narrow else f.shape)
            for n, f in INSTRUCTION._fields.items() if not n.startswith("_")})

    @property
    def pgroups(self) -> int:
        """Parameter words (groups of P channels) per parameter bank: a power of two."""
        g = -(-self.pbuf_depth // self.size)
        return 1 << max(0, (g - 1).bit_length())

    @property
    def memories(self) -> dict[str, tuple[int, int]]:
        """``(depth, width in bits)`` of each on-chip memory: the RTL builds
        these and :mod:`nnloom.fpga.fit` counts their block RAMs.  Activation, weight
        and parameter memories hold two banks; the program memory is
        :attr:`imem_width` bits wide; an accumulator of depth 1 is a register."""
        P, dw = self.size, self.data_width
        return {"imem": (self.imem_depth * INSTRUCTION_BITS // self.imem_width, self.imem_width),
                "act": (2 * self.act_depth, 8 * P), "wbuf": (2 * self.wbuf_depth, 8 * P),
                "pbuf": (2 * self.pgroups, PARAM_STORE.size * P), "acc": (self.acc_depth, 32 * P)}

    @property
    def imem_width(self) -> int:
        """Bits of a program-memory word: 64 (or the bus width if wider), so
        that fetching an instruction takes :attr:`fetch_words` cycles."""
        return max(64, self.data_width)

    @property
    def fetch_words(self) -> int:
        """Program-memory words that hold an instruction's used bits."""
        return -(-INSTRUCTION.size // self.imem_width)

    @property
    def word_bits(self) -> int:
        return self.size * 8

    @property
    def bus_per_word(self) -> int:
        """AXI beats per buffer word."""
        return self.word_bits // self.data_width

    # -- exact cycle costs -------------------------------------------------------
    def layer_cycles(self, tiles) -> int:
        """Cycles of one layer's CONV instructions ``tiles`` (a list of
        :class:`Tile`), run back to back from an idle core.

        Counted from the cycle after the first instruction starts to the
        cycle its last output word is written.  The array takes weights
        tile after tile: the first tile's P weight words preload, then each
        tile takes ``max(m, P)`` cycles (its m activation beats, or the next
        tile's P weight words, whichever is longer), the last tile's m beats,
        the array's latency 2P, and the post-processing pipeline.
        """
        P, r = self.size, self.post_beat
        # an instruction's last tile goes through post-processing: its beats
        # come every r cycles (r = size / lanes), and it takes m * r
        ms = [t.m * (r if k == t.kt - 1 else 1) for t in tiles for k in range(t.kt)]
        if not ms:
            return 0
        return (P + 1 + sum(max(m, P) for m in ms[:-1]) + ms[-1] + self.systolic.latency
                + POST_LATENCY)

    def maxpool_cycles(self, e: int, f: int, cg: int, k: int) -> int:
        """MAXPOOL: one buffer read per window element per channel group, 1
        cycle to set up and 2 of pipeline (read, compare-and-write)."""
        return 1 + e * f * cg * k * k + 2


class _Pooling:
    """Max pooling: lane-wise maximum of kr x kr words per output word.
    Addresses are kept modulo the bank size (``abits`` bits)."""

    def __init__(self, m, ins, act_rp, P, ab):
        self.ins = ins
        pl_e, pl_f, pl_g, pl_i, pl_j = (Signal(8) for _ in range(5))
        pl_pix = Signal(ab)              # in_base + e * a_row + f * a_col
        pl_row = Signal(ab)              # in_base + e * a_row
        pl_c = Signal(ab)                # pl_pix + g
        pl_win = Signal(ab)              # pl_c + i * a_line
        pl_addr = Signal(ab)             # pl_win + j * CG
        pl_left = Signal()
        pl_d_ok, pl_d_first, pl_d_last = Signal(), Signal(), Signal()
        pl_max = Signal(data.ArrayLayout(signed(8), P))
        pl_in = Signal(data.ArrayLayout(signed(8), P))
        pl_new = Signal(data.ArrayLayout(signed(8), P))
        pl_w_ok = Signal()
        pl_out = Signal(ab)
        m.d.comb += pl_in.as_value().eq(act_rp.data)
        for j in range(P):
            m.d.comb += pl_new[j].eq(Mux(pl_d_first | (pl_in[j] > pl_max[j]), pl_in[j], pl_max[j]))
        m.d.sync += [pl_d_ok.eq(pl_left), pl_w_ok.eq(pl_d_ok & pl_d_last)]
        with m.If(pl_d_ok):
            m.d.sync += pl_max.eq(pl_new)
        with m.If(pl_left):
            last_j = pl_j == ins.kr - 1
            last_i = pl_i == ins.kr - 1
            m.d.sync += [pl_d_first.eq((pl_i == 0) & (pl_j == 0)), pl_d_last.eq(last_i & last_j)]
            with m.If(~last_j):
                m.d.sync += [pl_j.eq(pl_j + 1), pl_addr.eq(pl_addr + ins.cg)]
            with m.Elif(~last_i):
                m.d.sync += [pl_j.eq(0), pl_i.eq(pl_i + 1), pl_win.eq(pl_win + ins.a_line),
                             pl_addr.eq(pl_win + ins.a_line)]
            with m.Else():
                m.d.sync += [pl_j.eq(0), pl_i.eq(0)]
                with m.If(pl_g != ins.cg - 1):
                    m.d.sync += [pl_g.eq(pl_g + 1), pl_c.eq(pl_c + 1), pl_win.eq(pl_c + 1),
                                 pl_addr.eq(pl_c + 1)]
                with m.Elif(pl_f != ins.f - 1):
                    nxt = pl_pix + ins.a_col
                    m.d.sync += [pl_g.eq(0), pl_f.eq(pl_f + 1), pl_pix.eq(nxt), pl_c.eq(nxt),
                                 pl_win.eq(nxt), pl_addr.eq(nxt)]
                with m.Elif(pl_e != ins.e - 1):
                    nxt = pl_row + ins.a_row
                    m.d.sync += [pl_g.eq(0), pl_f.eq(0), pl_e.eq(pl_e + 1), pl_row.eq(nxt),
                                 pl_pix.eq(nxt), pl_c.eq(nxt), pl_win.eq(nxt), pl_addr.eq(nxt)]
                with m.Else():
                    m.d.sync += pl_left.eq(0)
        with m.If(pl_w_ok):
            m.d.sync += pl_out.eq(pl_out + 1)
        self._regs = (pl_e, pl_f, pl_g, pl_i, pl_j, pl_row, pl_pix, pl_c, pl_win, pl_addr)
        self.left, self.addr, self.w_ok, self.out, self.max = pl_left, pl_addr, pl_w_ok, pl_out, pl_max
        self._d_ok = pl_d_ok

    def start(self, m, d):
        """Start the MAXPOOL ``d`` (its fields are latched into ``ins`` meanwhile)."""
        pl_e, pl_f, pl_g, pl_i, pl_j, pl_row, pl_pix, pl_c, pl_win, pl_addr = self._regs
        base = d.in_base
        m.d.sync += [pl_e.eq(0), pl_f.eq(0), pl_g.eq(0), pl_i.eq(0), pl_j.eq(0),
                     pl_row.eq(base), pl_pix.eq(base), pl_c.eq(base), pl_win.eq(base),
                     pl_addr.eq(base), self.left.eq(1), self.out.eq(d.out_base)]


class _OneEntry(wiring.Component):
    """A one-entry queue with :class:`amaranth.lib.fifo.SyncFIFO`'s ports and
    timing (a write is readable the next cycle; no write while full); a
    SyncFIFO of depth 1 would emit zero-width address wires."""

    def __init__(self, width):
        self.width, self.depth = width, 1
        super().__init__({"w_data": In(width), "w_en": In(1), "w_rdy": Out(1),
                          "r_data": Out(width), "r_en": In(1), "r_rdy": Out(1),
                          "level": Out(1)})

    def elaborate(self, platform):
        m = Module()
        data_r, full = Signal(self.width), Signal()
        m.d.comb += [self.w_rdy.eq(~full), self.r_rdy.eq(full), self.level.eq(full),
                     self.r_data.eq(data_r)]
        with m.If(self.w_en & ~full):
            m.d.sync += [data_r.eq(self.w_data), full.eq(1)]
        with m.If(self.r_en & full):
            m.d.sync += full.eq(0)
        return m


def _queue(width, depth):
    return fifo.SyncFIFO(width=width, depth=depth) if depth > 1 else _OneEntry(width)


class _Port:
    def __init__(self, width):
        self.addr, self.en, self.data = Signal(1), Signal(), Signal(width)


def _one_word(m, width):
    """A one-word memory with a write port and a transparent read port that
    is always enabled: the read data is the word itself (a write's data
    shows on the next cycle, as the transparent port would return it)."""
    wp, rp = _Port(width), _Port(width)
    word = Signal(width, name="acc_word")
    with m.If(wp.en):
        m.d.sync += word.eq(wp.data)
    m.d.comb += rp.data.eq(word)
    return wp, rp


class SyncRead:
    """A read port with the timing of ``mem.read_port()`` (data one cycle
    after the address, held while ``en`` is low), built as an asynchronous
    read and a register, the pattern Yosys merges into a block RAM's read
    port.  Merged that way, a memory's ``no_rw_check`` attribute lets a read
    of an address written in the same cycle return anything: a synchronous
    Amaranth read port asks for the old data, which the iCE40 and ECP5 block
    RAMs do not give, and Yosys adds registers and multiplexers to emulate
    it.  The memories that use this port never read an address written in
    the same cycle (the DMA fills the bank the core does not read)."""

    def __init__(self, m, mem):
        rp = mem.read_port(domain="comb")
        self.addr = rp.addr
        self.en = Signal(init=1)
        self.data = Signal(mem.shape)
        with m.If(self.en):
            m.d.sync += self.data.eq(rp.data)


def _mem(m, name, depth, width, *, banked=True):
    # banked: the core reads one bank while the DMA writes the other, so a
    # read never meets a write to its address (no read/write-collision logic)
    mem = Memory(shape=unsigned(width), depth=depth, init=[],
                 attrs={"no_rw_check": 1} if banked else None)
    m.submodules[name] = mem
    return mem


class AccelCore(wiring.Component):
    """Compute core (see the module docstring).

    Members:
      ``cmd`` (In stream of :data:`INSTRUCTION`): CONV and MAXPOOL only,
      accepted into the units' queues (the core keeps what it needs);
      ``busy`` (Out): an accepted instruction has not finished;
      ``active`` (Out) and ``layer`` (Out, 8 bits): an instruction of layer
      ``layer`` is running (started and not finished); the controller's
      per-layer cycle counters count these cycles;
      ``release`` (Out stream of 1 bit, always accepted): a CONV with
      ``release`` finished, freeing weight bank ``payload``;
      ``act_w_*`` (In): DMA write port of the activation banks (``addr`` has the
      bank in its top bit); ``act_r_addr``/``act_r_en`` (In), ``act_r_data``
      (Out, one cycle later): DMA read port (used only while not busy);
      ``wbuf_w_*`` (In): DMA write port of the weight banks (bank in the top
      address bit); ``pbuf_w_addr`` (bank in the top bit, then the group),
      ``pbuf_w_lane``, ``pbuf_w_data``, ``pbuf_w_en`` (In): DMA write port of
      the parameter banks, one entry per write;
      ``beats`` (Out, 32 bits): activation beats fed to the array since reset
      (MACs = beats x P x P).
    """

    def __init__(self, config: AccelConfig, engine=None):
        self.config = cfg = config
        # the engine: a factory (config -> component with the engine
        # interface, :mod:`nnloom.hw.engine`); the systolic array by default
        self._engine = engine or systolic_engine
        P = cfg.size
        self._abits = (cfg.act_depth - 1).bit_length()
        self._wbits = (cfg.wbuf_depth - 1).bit_length()
        self._gbits = (cfg.pgroups - 1).bit_length()
        super().__init__({
            "cmd": In(stream.Signature(cfg.instruction_layout)),
            "busy": Out(1), "active": Out(1), "layer": Out(8),
            "release": Out(stream.Signature(1)),
            "act_w_addr": In(self._abits + 1), "act_w_data": In(P * 8), "act_w_en": In(1),
            "act_r_addr": In(self._abits + 1), "act_r_en": In(1), "act_r_data": Out(P * 8),
            "wbuf_w_addr": In(self._wbits + 1), "wbuf_w_data": In(P * 8), "wbuf_w_en": In(1),
            "pbuf_w_addr": In(self._gbits + 1), "pbuf_w_lane": In(range(P)),
            "pbuf_w_data": In(PARAM_ENTRY.size), "pbuf_w_en": In(1),
            "beats": Out(32),
        })

    def elaborate(self, platform):
        cfg = self.config
        P = cfg.size
        ab = self._abits
        m = Module()
        array = self._engine(cfg)
        check_engine(array, P, P, cfg.psum_width, cfg.systolic.latency)
        m.submodules.array = array

        mems = cfg.memories
        act = _mem(m, "act_mem", *mems["act"])
        wbuf = _mem(m, "wbuf_mem", *mems["wbuf"])
        pbuf = Memory(shape=data.ArrayLayout(PARAM_STORE, P), depth=mems["pbuf"][0], init=[],
                      attrs={"no_rw_check": 1})
        m.submodules.pbuf_mem = pbuf
        act_wp, act_rp = act.write_port(), SyncRead(m, act)
        w_wp, w_rp = wbuf.write_port(), SyncRead(m, wbuf)
        p_wp, p_rp = pbuf.write_port(granularity=1), SyncRead(m, pbuf)
        if cfg.acc_depth > 1:
            # a pixel's sum is read again at least P >= 2 cycles after it is
            # written (tiles take max(M, P) cycles), never in the same cycle:
            # no read-during-write logic
            accb = _mem(m, "acc_mem", *mems["acc"])
            a_wp = accb.write_port()
            a_rp = SyncRead(m, accb)
        else:
            a_wp, a_rp = _one_word(m, P * 32)

        # -- dispatch into the three queues; the finished-instruction token -----
        accepted, started, finished = Signal(8), Signal(8), Signal(8)
        qd = cfg.queue_depth
        lay_i = cfg.instruction_layout
        W_DESC = _sub(lay_i, *W_FIELDS, seq=True)
        A_DESC = _sub(lay_i, *A_FIELDS, seq=True)
        D_DESC = _sub(lay_i, *D_FIELDS)
        m.submodules.wq = wq = _queue(W_DESC.size, qd)
        m.submodules.aq = aq = _queue(A_DESC.size, qd)
        m.submodules.dq = dq = _queue(D_DESC.size, qd)
        cin = self.cmd.payload
        is_conv = cin.op == Op.CONV
        m.d.comb += [
            self.cmd.ready.eq(aq.w_rdy & wq.w_rdy & dq.w_rdy),
            aq.w_en.eq(self.cmd.valid & self.cmd.ready),
            wq.w_en.eq(self.cmd.valid & self.cmd.ready & is_conv),
            dq.w_en.eq(self.cmd.valid & self.cmd.ready & is_conv),
        ]
        for q, lay in ((wq, W_DESC), (aq, A_DESC), (dq, D_DESC)):
            v = Signal(lay)
            m.d.comb += q.w_data.eq(v)
            for name, _ in lay:
                m.d.comb += getattr(v, name).eq(accepted if name == "seq" else getattr(cin, name))
        wq_d, aq_d, dq_d = Signal(W_DESC), Signal(A_DESC), Signal(D_DESC)
        m.d.comb += [wq_d.eq(wq.r_data), aq_d.eq(aq.r_data), dq_d.eq(dq.r_data)]

        fin_inc = Signal()          # an instruction finished this cycle
        start_inc = Signal()        # the activation feeder started one
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += accepted.eq(accepted + 1)
        with m.If(fin_inc):
            m.d.sync += finished.eq(finished + 1)
        with m.If(start_inc):
            m.d.sync += started.eq(started + 1)
        busy = Signal()
        idle = Signal()             # every started instruction has finished
        m.d.comb += [busy.eq(accepted != finished), idle.eq(started == finished),
                     self.busy.eq(busy), self.active.eq(~idle)]

        # DMA ports: writes from the DMA go straight in; the core's own
        # activation writes (post-processing, pooling) take over when busy.
        core_act_w_addr = Signal(ab + 1)
        core_act_w_data = Signal(P * 8)
        core_act_w_en = Signal()
        core_act_r_addr = Signal(ab + 1)
        core_act_r_en = Signal()
        m.d.comb += [
            act_wp.addr.eq(Mux(busy, core_act_w_addr, self.act_w_addr)),
            act_wp.data.eq(Mux(busy, core_act_w_data, self.act_w_data)),
            act_wp.en.eq(Mux(busy, core_act_w_en, self.act_w_en)),
            act_rp.addr.eq(Mux(busy, core_act_r_addr, self.act_r_addr)),
            act_rp.en.eq(Mux(busy, core_act_r_en, self.act_r_en)),
            self.act_r_data.eq(act_rp.data),
            w_wp.addr.eq(self.wbuf_w_addr), w_wp.data.eq(self.wbuf_w_data),
            w_wp.en.eq(self.wbuf_w_en),
            p_wp.addr.eq(self.pbuf_w_addr),
        ]
        # the parameter bank keeps only the bits post-processing uses
        p_in, p_keep = Signal(PARAM_ENTRY), Signal(PARAM_STORE)
        m.d.comb += [p_in.eq(self.pbuf_w_data), p_keep.bias.eq(p_in.bias),
                     p_keep.mult.eq(p_in.mult), p_keep.shm1.eq(p_in.shift - 1)]
        for j in range(P):
            m.d.comb += [p_wp.data[j].eq(p_keep),
                         p_wp.en[j].eq(self.pbuf_w_en & (self.pbuf_w_lane == j))]

        beats = Signal(32)
        m.d.comb += self.beats.eq(beats)
        with m.If(array.act.valid & array.act.ready):
            m.d.sync += beats.eq(beats + 1)

        # =====================================================================
        # Weight feeder: w_words words of each CONV, back to back.
        wc = Signal(W_DESC)
        w_idx = Signal(16)
        w_left = Signal()            # words still to issue
        w_ov = Signal()              # a read is in the output register
        w_issue = Signal()
        w_dep_ok = Signal()
        m.d.comb += [
            w_issue.eq(w_left & (~w_ov | array.weight.ready)),
            w_rp.addr.eq(Cat((wc.w_off + w_idx)[:self._wbits], wc.wbank)),
            w_rp.en.eq(w_issue),
            array.weight.valid.eq(w_ov),
            array.weight.payload.as_value().eq(w_rp.data),
            # a dep instruction waits until every earlier one has finished
            w_dep_ok.eq(~wq_d.dep | (finished == wq_d.seq)),
        ]
        with m.If(~w_ov | array.weight.ready):
            m.d.sync += w_ov.eq(w_issue)
        w_take = Signal()
        with m.If(w_issue):
            m.d.sync += w_idx.eq(w_idx + 1)
            with m.If(w_idx + 1 == wc.w_words):
                # the next instruction follows without a gap unless it waits
                m.d.comb += w_take.eq(wq.r_rdy & ~wq_d.dep)
                with m.If(~w_take):
                    m.d.sync += w_left.eq(0)
        with m.If(~w_left & wq.r_rdy & w_dep_ok):
            m.d.comb += w_take.eq(1)
        with m.If(w_take):
            m.d.comb += wq.r_en.eq(1)
            m.d.sync += [wc.eq(wq_d), w_idx.eq(0), w_left.eq(1)]

        # =====================================================================
        # Activation feeder.  Loops, outer to inner: kernel row r, column s,
        # channel group g (one weight tile each); pooled output row pe and
        # column pf of the tile; window row i and column j (pk x pk; 1 x 1
        # without fused pooling).  Addresses are kept modulo the bank size:
        # only their low bits address the bank, and padding reads (which may
        # point anywhere) are zeroed.
        ac = Signal(A_DESC)
        cnt_r, cnt_s, cnt_g = Signal(4), Signal(4), Signal(8)
        cnt_e, cnt_f, cnt_i, cnt_j = Signal(8), Signal(8), Signal(4), Signal(4)
        r_base = Signal(ab)              # a_start + r * a_line
        kt_addr = Signal(ab)             # r_base + s * CG + g
        prow = Signal(ab)                # kt_addr + pe * a_prow
        win = Signal(ab)                 # prow + pf * a_pcol
        wrow = Signal(ab)                # win + i * a_row
        pix_addr = Signal(ab)            # wrow + j * a_col
        ih_r, ih_e, ih = Signal(signed(12)), Signal(signed(12)), Signal(signed(12))
        iw_s, iw_f, iw = Signal(signed(12)), Signal(signed(12)), Signal(signed(12))
        a_left = Signal()
        a_ov = Signal()
        a_issue = Signal()
        a_zero = Signal()
        a_first = Signal()
        inside = Signal()
        # With fewer post-processing lanes than P, an instruction's last-tile
        # beats (the ones post-processing takes) enter the array r cycles
        # apart, and the next beat of any tile r cycles after such a beat.
        r = cfg.post_beat
        gap_ok = Signal(init=1)
        a_lt = Signal()                  # the beat in a_ov is of a last tile
        if r > 1:
            a_gap = Signal(range(r))
            lt_in = Signal()
            m.d.comb += lt_in.eq(a_ov & array.act.ready & a_lt)
            with m.If(lt_in):
                m.d.sync += a_gap.eq(r - 1)
            with m.Elif(a_gap != 0):
                m.d.sync += a_gap.eq(a_gap - 1)
            m.d.comb += gap_ok.eq(~lt_in & ((a_gap == 0) | (a_gap == 1)))
        m.d.comb += [
            inside.eq((ih >= 0) & (ih < ac.h) & (iw >= 0) & (iw < ac.w)),
            a_issue.eq(a_left & (~a_ov | array.act.ready) & gap_ok),
            array.act.valid.eq(a_ov),
            array.act.payload.data.as_value().eq(Mux(a_zero, 0, act_rp.data)),
            array.act.payload.first.eq(a_first),
        ]
        with m.If(~a_ov | array.act.ready):
            m.d.sync += a_ov.eq(a_issue)

        def a_init(d):
            start = d.a_start[:ab]
            return [ac.eq(d), cnt_r.eq(0), cnt_s.eq(0), cnt_g.eq(0), cnt_e.eq(0), cnt_f.eq(0),
                    cnt_i.eq(0), cnt_j.eq(0), r_base.eq(start), kt_addr.eq(start),
                    prow.eq(start), win.eq(start), wrow.eq(start), pix_addr.eq(start),
                    ih_r.eq(d.ih0), ih_e.eq(d.ih0), ih.eq(d.ih0),
                    iw_s.eq(-d.pad), iw_f.eq(-d.pad), iw.eq(-d.pad)]

        a_take = Signal()               # load the queue head into ac this cycle
        a_conv = Signal()               # ac is a CONV being fed
        m.d.comb += a_conv.eq(a_left)
        with m.If(a_issue):
            m.d.sync += a_lt.eq((cnt_g == ac.cg - 1) & (cnt_s == ac.ks - 1) & (cnt_r == ac.kr - 1))
            m.d.sync += [a_zero.eq(~inside),
                         a_first.eq((cnt_e == 0) & (cnt_f == 0) & (cnt_i == 0) & (cnt_j == 0))]
            last_j = cnt_j == ac.pk - 1
            last_i = cnt_i == ac.pk - 1
            last_f = cnt_f == ac.f - 1
            last_e = cnt_e == ac.e - 1
            last_g = cnt_g == ac.cg - 1
            last_s = cnt_s == ac.ks - 1
            last_r = cnt_r == ac.kr - 1
            with m.If(~last_j):
                m.d.sync += [cnt_j.eq(cnt_j + 1), iw.eq(iw + ac.stride),
                             pix_addr.eq(pix_addr + ac.a_col)]
            with m.Elif(~last_i):
                m.d.sync += [cnt_j.eq(0), cnt_i.eq(cnt_i + 1), ih.eq(ih + ac.stride), iw.eq(iw_f),
                             wrow.eq(wrow + ac.a_row), pix_addr.eq(wrow + ac.a_row)]
            with m.Elif(~last_f):
                m.d.sync += [cnt_j.eq(0), cnt_i.eq(0), cnt_f.eq(cnt_f + 1), ih.eq(ih_e),
                             iw_f.eq(iw_f + ac.pks), iw.eq(iw_f + ac.pks),
                             win.eq(win + ac.a_pcol), wrow.eq(win + ac.a_pcol),
                             pix_addr.eq(win + ac.a_pcol)]
            with m.Elif(~last_e):
                nxt = prow + ac.a_prow
                m.d.sync += [cnt_j.eq(0), cnt_i.eq(0), cnt_f.eq(0), cnt_e.eq(cnt_e + 1),
                             ih_e.eq(ih_e + ac.pks), ih.eq(ih_e + ac.pks), iw_f.eq(iw_s),
                             iw.eq(iw_s), prow.eq(nxt), win.eq(nxt), wrow.eq(nxt),
                             pix_addr.eq(nxt)]
            with m.Else():
                m.d.sync += [cnt_j.eq(0), cnt_i.eq(0), cnt_f.eq(0), cnt_e.eq(0)]
                with m.If(~last_g | ~last_s):      # next (s, g): the address moves by one word
                    nxt = kt_addr + 1
                    m.d.sync += [kt_addr.eq(nxt), prow.eq(nxt), win.eq(nxt), wrow.eq(nxt),
                                 pix_addr.eq(nxt), ih_e.eq(ih_r), ih.eq(ih_r)]
                    with m.If(~last_g):
                        m.d.sync += [cnt_g.eq(cnt_g + 1), iw_f.eq(iw_s), iw.eq(iw_s)]
                    with m.Else():
                        m.d.sync += [cnt_g.eq(0), cnt_s.eq(cnt_s + 1), iw_s.eq(iw_s + 1),
                                     iw_f.eq(iw_s + 1), iw.eq(iw_s + 1)]
                with m.Elif(~last_r):
                    nxt = r_base + ac.a_line
                    m.d.sync += [cnt_g.eq(0), cnt_s.eq(0), cnt_r.eq(cnt_r + 1),
                                 r_base.eq(nxt), kt_addr.eq(nxt), prow.eq(nxt), win.eq(nxt),
                                 wrow.eq(nxt), pix_addr.eq(nxt), ih_r.eq(ih_r + 1),
                                 ih_e.eq(ih_r + 1), ih.eq(ih_r + 1),
                                 iw_s.eq(-ac.pad), iw_f.eq(-ac.pad), iw.eq(-ac.pad)]
                with m.Else():
                    # the next CONV follows without a gap unless it waits
                    m.d.comb += a_take.eq(aq.r_rdy & ~aq_d.dep & (aq_d.op == Op.CONV))
                    with m.If(~a_take):
                        m.d.sync += a_left.eq(0)

        # MAXPOOL, run by the same unit on the same read port
        pool = _Pooling(m, ac, act_rp, P, ab) if cfg.maxpool else None
        pool_run = Signal()             # a MAXPOOL is in progress
        if pool is not None:
            with m.If(pool_run & ~pool.left & ~pool._d_ok & ~pool.w_ok):
                m.d.sync += pool_run.eq(0)
                m.d.comb += fin_inc.eq(1)

        a_free = Signal()
        m.d.comb += a_free.eq(~a_left & ~pool_run)
        a_dep_ok = Signal()
        # MAXPOOL always waits: it reads and writes the activation banks alone
        m.d.comb += a_dep_ok.eq((~aq_d.dep & (aq_d.op == Op.CONV)) | (finished == aq_d.seq))
        with m.If(a_free & aq.r_rdy & a_dep_ok):
            if pool is not None:
                with m.If(aq_d.op == Op.MAXPOOL):
                    m.d.comb += [aq.r_en.eq(1), start_inc.eq(1)]
                    m.d.sync += [ac.eq(aq_d), pool_run.eq(1)]
                    pool.start(m, aq_d)
                with m.Else():
                    m.d.comb += a_take.eq(1)
            else:
                m.d.comb += a_take.eq(1)
        with m.If(a_take):
            m.d.comb += [aq.r_en.eq(1), start_inc.eq(1)]
            m.d.sync += a_init(aq_d)
            m.d.sync += a_left.eq(1)
        cur_layer = Signal(8)
        with m.If(aq.r_en):
            m.d.sync += cur_layer.eq(aq_d.layer)
        m.d.comb += self.layer.eq(cur_layer)
        m.d.comb += [core_act_r_addr.eq(Cat(pix_addr, ac.bank_in)), core_act_r_en.eq(a_issue)]
        if pool is not None:
            with m.If(pool.left):
                m.d.comb += [core_act_r_addr.eq(Cat(pool.addr, ac.bank_in)),
                             core_act_r_en.eq(1)]
            with m.If(pool.w_ok):
                m.d.comb += [core_act_w_addr.eq(Cat(pool.out, ac.bank_out)),
                             core_act_w_data.eq(pool.max.as_value()), core_act_w_en.eq(1)]

        # =====================================================================
        # Drain: result beat n of tile k adds into acc[pixel]; the last tile's
        # beats go to post-processing instead.
        dc = Signal(D_DESC)
        d_have = Signal()                # dc holds the instruction whose beats arrive
        r_pix, r_kt = Signal(16), Signal(16)
        wcnt = Signal(8)                 # pixel within the pooling window
        o_addr = Signal(ab)              # output word of the current window
        pk2 = Signal(8)
        m.d.comb += array.result.ready.eq(1)
        res_fire = array.result.valid
        d_take = Signal()
        with m.If(~d_have & dq.r_rdy):
            m.d.comb += d_take.eq(1)
        s1_valid, s1_first, s1_last, s1_out, s1_end = Signal(), Signal(), Signal(), Signal(), Signal()
        s1_pfirst = Signal()
        s1_pix = Signal(range(max(2, cfg.acc_depth)))
        s1_val = Signal(array.result.payload.shape())
        s1_oaddr = Signal(ab)
        is_last = Signal()
        m.d.comb += is_last.eq(r_kt + 1 == dc.kt)
        m.d.comb += [a_rp.addr.eq(r_pix), a_rp.en.eq(1)]
        m.d.sync += [s1_valid.eq(res_fire), s1_first.eq(r_kt == 0), s1_last.eq(is_last),
                     s1_pix.eq(r_pix), s1_val.eq(array.result.payload),
                     s1_pfirst.eq(wcnt == 0), s1_out.eq(res_fire & is_last & (wcnt + 1 == pk2)),
                     s1_end.eq(res_fire & is_last & (r_pix + 1 == dc.pixels)),
                     s1_oaddr.eq(o_addr)]
        # descriptor fields the post pipeline carries along
        carry = data.StructLayout({"zp": signed(8), "qmin": signed(8), "qmax": signed(8),
                                   "bank": unsigned(1), "release": unsigned(1),
                                   "wbank": unsigned(1)})
        s1_c = Signal(carry)
        m.d.sync += [s1_c.zp.eq(dc.out_zp), s1_c.qmin.eq(dc.qmin), s1_c.qmax.eq(dc.qmax),
                     s1_c.bank.eq(dc.bank_out), s1_c.release.eq(dc.release & ~dc.resident),
                     s1_c.wbank.eq(dc.wbank)]
        with m.If(res_fire):
            with m.If(is_last):
                with m.If(wcnt + 1 == pk2):
                    m.d.sync += [wcnt.eq(0), o_addr.eq(o_addr + dc.ng)]
                with m.Else():
                    m.d.sync += wcnt.eq(wcnt + 1)
            with m.If(r_pix + 1 == dc.pixels):
                m.d.sync += [r_pix.eq(0), r_kt.eq(r_kt + 1)]
                with m.If(is_last):
                    m.d.comb += d_take.eq(dq.r_rdy)
                    with m.If(~dq.r_rdy):
                        m.d.sync += d_have.eq(0)
            with m.Else():
                m.d.sync += r_pix.eq(r_pix + 1)
        with m.If(d_take):
            m.d.comb += dq.r_en.eq(1)
            m.d.sync += [dc.eq(dq_d), d_have.eq(1), r_pix.eq(0), r_kt.eq(0), wcnt.eq(0),
                         o_addr.eq(dq_d.out_base + dq_d.ngi), pk2.eq(dq_d.pk * dq_d.pk)]
        # parameters of the beat's group: read now, used at s1
        m.d.comb += [p_rp.addr.eq(Cat(dc.p_off[:self._gbits], dc.wbank)), p_rp.en.eq(1)]

        old = Signal(data.ArrayLayout(signed(32), P))
        new = Signal(data.ArrayLayout(signed(32), P))
        m.d.comb += old.as_value().eq(a_rp.data)
        for j in range(P):
            m.d.comb += new[j].eq(Mux(s1_first, s1_val[j], old[j] + s1_val[j]))
        m.d.comb += [a_wp.addr.eq(s1_pix), a_wp.data.eq(new.as_value()),
                     a_wp.en.eq(s1_valid & ~s1_last)]

        # =====================================================================
        # Vector post-processing, L lanes per cycle (L = cfg.lanes): bias,
        # requantize, clamp, then the running max of the pooling window.  An
        # output pixel's P lanes go through in r = P / L groups, group 0
        # straight from stage 1, the others from a hold register on the next
        # r - 1 cycles (the feeder spaces such beats r cycles apart); the
        # word is written with the last group.
        L, r = cfg.lanes, cfg.post_beat
        par = Signal(data.ArrayLayout(PARAM_STORE, P))
        m.d.comb += par.eq(p_rp.data)
        flags = data.StructLayout({"pfirst": 1, "out": 1, "end": 1, "last": 1})
        g_ok = Signal()
        g_f = Signal(flags)
        g_oaddr = Signal(ab)
        g_c = Signal(carry)
        g_k = Signal(range(max(2, r)))
        g_new = Signal(data.ArrayLayout(signed(32), L))
        g_par = Signal(data.ArrayLayout(PARAM_STORE, L))
        s1_post = Signal()
        m.d.comb += s1_post.eq(s1_valid & s1_last)
        if r == 1:
            m.d.comb += [g_ok.eq(s1_post), g_f.pfirst.eq(s1_pfirst), g_f.out.eq(s1_out),
                         g_f.end.eq(s1_end), g_f.last.eq(1), g_oaddr.eq(s1_oaddr), g_c.eq(s1_c),
                         g_new.eq(new), g_par.eq(par)]
        else:
            # the hold register keeps groups 1 .. r - 1 (group 0 goes at once)
            h_new = Signal(data.ArrayLayout(signed(32), P - L))
            h_par = Signal(data.ArrayLayout(PARAM_STORE, P - L))
            h_f = Signal(flags)
            h_oaddr = Signal(ab)
            h_c = Signal(carry)
            h_k = Signal(range(r))          # next group to take from the hold register
            h_on = Signal()

            def group(arr, k, shape):
                w = Shape.cast(shape).width if not isinstance(shape, data.Layout) else shape.size
                return arr.as_value().word_select(k, w * L)

            def held(arr, k, shape):        # group k (1 .. r - 1) of the hold register
                return group(arr, (k - 1).as_unsigned(), shape) if r > 2 else arr.as_value()

            with m.If(s1_post):
                m.d.sync += [h_new.as_value().eq(new.as_value()[32 * L:]),
                             h_par.as_value().eq(par.as_value()[PARAM_STORE.size * L:]),
                             h_f.pfirst.eq(s1_pfirst),
                             h_f.out.eq(s1_out), h_f.end.eq(s1_end), h_oaddr.eq(s1_oaddr),
                             h_c.eq(s1_c), h_k.eq(1), h_on.eq(1)]
                m.d.comb += [g_ok.eq(1), g_k.eq(0), g_f.pfirst.eq(s1_pfirst), g_f.out.eq(s1_out),
                             g_f.end.eq(s1_end), g_oaddr.eq(s1_oaddr), g_c.eq(s1_c),
                             g_new.as_value().eq(group(new, 0, signed(32))),
                             g_par.as_value().eq(group(par, 0, PARAM_STORE))]
            with m.Elif(h_on):
                m.d.comb += [g_ok.eq(1), g_k.eq(h_k), g_f.eq(h_f), g_oaddr.eq(h_oaddr),
                             g_c.eq(h_c),
                             g_new.as_value().eq(held(h_new, h_k, signed(32))),
                             g_par.as_value().eq(held(h_par, h_k, PARAM_STORE))]
                m.d.sync += h_k.eq(h_k + 1)
                with m.If(h_k == r - 1):
                    m.d.sync += h_on.eq(0)
            m.d.comb += g_f.last.eq(g_k == r - 1)
        # Seven register stages from the group (stage 1) to the output stage:
        # bias operands, bias add, the four 16-bit partial products of the
        # 32 x 31 multiply (one DSP block each), their sum, the rounding
        # shift, rounding and saturation, the output zero point and clamp:
        # each stage one adder, multiplier, shifter or compare deep; the
        # output stage compares with the pooling maximum and writes
        # (POST_LATENCY = 1 + 7).
        meta = data.StructLayout({"ok": 1, "f": flags, "oaddr": unsigned(ab), "c": carry,
                                  "k": g_k.shape()})
        g_meta = Signal(meta)
        m.d.comb += [g_meta.ok.eq(g_ok), g_meta.f.eq(g_f), g_meta.oaddr.eq(g_oaddr),
                     g_meta.c.eq(g_c), g_meta.k.eq(g_k)]
        stages = [g_meta]
        for n in range(POST_LATENCY - 1):
            st = Signal(meta, name=f"post_meta{n}")
            m.d.sync += st.eq(stages[-1])
            stages.append(st)
        s4, s7_c = stages[-1], stages[-2].c
        s4_ok, s4_f, s4_oaddr, s4_c, s4_k = s4.ok, s4.f, s4.oaddr, s4.c, s4.k

        def lanes(shape, name):
            return Signal(data.ArrayLayout(shape, L), name=name)

        p_n, p_b = lanes(signed(32), "post_n"), lanes(signed(32), "post_bias")
        p_m1, p_m2, p_m3 = (lanes(unsigned(31), f"post_mult{i}") for i in range(3))
        p_s = [lanes(unsigned(6), f"post_shift{i}") for i in range(4)]
        p_v = lanes(signed(32), "post_v")
        pp = [lanes(unsigned(32), "post_pp0"), lanes(unsigned(31), "post_pp1"),
              lanes(signed(33), "post_pp2"), lanes(signed(32), "post_pp3")]
        p_p = lanes(signed(63), "post_p")
        p_q = lanes(signed(63), "post_q")
        s4_y = lanes(signed(SAT_BITS), "post_y")
        lim = 1 << (SAT_BITS - 1)
        pmax = Signal(data.ArrayLayout(signed(8), P))
        pm_g = Signal(data.ArrayLayout(signed(8), L))     # the group's lanes of pmax
        res = Signal(data.ArrayLayout(signed(8), L))
        m.d.comb += pm_g.as_value().eq(pmax.as_value().word_select(s4_k, 8 * L) if r > 1
                                       else pmax.as_value())
        for j in range(L):
            v, mlt = p_v[j], p_m2[j]
            vl, vh = v[:16], v[16:].as_signed()
            ml, mh = mlt[:16], mlt[16:31]
            m.d.sync += [
                # stage 2: operands
                p_n[j].eq(g_new[j]), p_b[j].eq(g_par[j].bias), p_m1[j].eq(g_par[j].mult),
                p_s[0][j].eq(g_par[j].shm1),
                # stage 3: bias
                p_v[j].eq(p_n[j] + p_b[j]), p_m2[j].eq(p_m1[j]), p_s[1][j].eq(p_s[0][j]),
                # stage 4: v * mult in 16-bit pieces (v = vh:vl signed, mult = mh:ml)
                pp[0][j].eq(vl * ml), pp[1][j].eq(vl * mh), pp[2][j].eq(vh * ml),
                pp[3][j].eq(vh * mh), p_s[2][j].eq(p_s[1][j]),
                # stage 5: the product (|v * mult| < 2**62)
                p_p[j].eq(pp[0][j] + ((pp[1][j] + pp[2][j]) << 16) + (pp[3][j] << 32)),
                p_s[3][j].eq(p_s[2][j]),
                # stage 6: floor(p / 2**(s-1))
                p_q[j].eq(p_p[j] >> p_s[3][j]),
            ]
            # stage 7: round half up: floor((p + 2**(s-1)) / 2**s) ==
            # (floor(p / 2**(s-1)) + 1) >> 1, saturated to SAT_BITS
            rounding = Signal(signed(63), name=f"rounding{j}")
            m.d.comb += rounding.eq((p_q[j] + 1) >> 1)
            top = rounding[SAT_BITS - 1:]
            fits = (top == 0) | (top == (1 << len(top)) - 1)
            m.d.sync += s4_y[j].eq(Mux(fits, rounding, Mux(rounding < 0, -lim, lim - 1)))
            # stage 8: the output zero point, clamped to the activation's range
            z = Signal(signed(SAT_BITS + 1), name=f"z{j}")
            zc = Signal(signed(8), name=f"zc{j}")
            m.d.comb += z.eq(s4_y[j] + s7_c.zp)
            m.d.sync += zc.eq(Mux(z < s7_c.qmin, s7_c.qmin, Mux(z > s7_c.qmax, s7_c.qmax, z)))
            # output stage: the pooling maximum (a group's lanes), the write
            m.d.comb += res[j].eq(Mux(s4_f.pfirst | (zc > pm_g[j]), zc, pm_g[j]))
        with m.If(s4_ok):
            if r > 1:
                m.d.sync += pmax.as_value().word_select(s4_k, 8 * L).eq(res.as_value())
            else:
                m.d.sync += pmax.eq(res)
        # the word: the earlier groups' lanes (in pmax by now) and the last group's
        word = Cat(pmax.as_value()[:8 * L * (r - 1)], res.as_value()) if r > 1 else res.as_value()
        done = s4_ok & s4_f.last
        with m.If(done & s4_f.out):
            m.d.comb += [core_act_w_addr.eq(Cat(s4_oaddr, s4_c.bank)),
                         core_act_w_data.eq(word), core_act_w_en.eq(1)]
        with m.If(done & s4_f.end):
            m.d.comb += fin_inc.eq(1)
        m.d.comb += [self.release.valid.eq(done & s4_f.end & s4_c.release),
                     self.release.payload.eq(s4_c.wbank)]
        return m
