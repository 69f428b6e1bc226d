"""The accelerator's compute core: buffers, the systolic engine, feeders,
accumulation, post-processing and max pooling.

Data layout (word = P int8 lanes, lane 0 in the low byte):

* activation banks: a feature map of H x W pixels and C channels is stored
  channels-last, ``CG = ceil(C / P)`` words per pixel:
  ``word(h, w, g) = base + (h * W + w) * CG + g``, lane ``i`` of word ``g``
  holding channel ``g * P + i`` (missing channels are zero);
* weight banks: a CONV output group (P filters) is ``KT = KR * KS * CG`` weight
  tiles of P words; tile ``kt = (r * KS + s) * CG + g``, word ``i`` holds the
  P filters' weights for channel ``g * P + i`` at kernel position (r, s);
* parameter banks: one :data:`~nnloom.hw.accel_isa.PARAM_ENTRY` per output channel.

A CONV instruction runs one output group as a GEMM on the weight-stationary
array: for each weight tile, one activation word per output pixel (the
im2col row chunk of that tile, read straight from the channels-last map;
padding pixels read as zero).  Tile results are summed per pixel in the
accumulator buffer (32-bit, wrapping), then post-processed one lane per
cycle: ``bias + acc``, the requantization of :mod:`gen.qtypes` (rounding half
up), zero point, clamp, into one output word per pixel.

Cycle costs are exact and given by :meth:`AccelConfig.conv_cycles` and
:meth:`AccelConfig.maxpool_cycles`.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .accel_isa import INSTRUCTION, INSTRUCTION_BITS, PARAM_ENTRY, Op
from .params import Config, ParamError, param
from .systolic import SystolicArray, SystolicConfig

__all__ = ["AccelConfig", "AccelCore", "PARAM_STORE", "SAT_BITS"]


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

    @staticmethod
    def bus_width_for(size: int) -> int:
        """The default ``data_width`` for a ``size`` x ``size`` array: 32
        bits, or 16 when 32 does not divide the word of ``size`` bytes."""
        return 32 if (size * 8) % 32 == 0 else 16

    def validate(self):
        if self.size % 2:
            raise ParamError("size", self.size, "an even number in 2..32")
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
                              overflow="wrap", result_fifo=False)

    @property
    def memories(self) -> dict[str, tuple[int, int]]:
        """``(depth, width in bits)`` of each on-chip memory: the RTL builds
        these and :mod:`nnloom.fpga.fit` counts their block RAMs.  Activation, weight
        and parameter memories hold two banks; the program memory is one bus
        word wide; an accumulator of depth 1 is a register."""
        P, dw = self.size, self.data_width
        return {"imem": (self.imem_depth * INSTRUCTION_BITS // dw, dw),
                "act": (2 * self.act_depth, 8 * P), "wbuf": (2 * self.wbuf_depth, 8 * P),
                "pbuf": (2 * self.pbuf_depth, PARAM_STORE.size), "acc": (self.acc_depth, 32 * P)}

    @property
    def word_bits(self) -> int:
        return self.size * 8

    @property
    def bus_per_word(self) -> int:
        """AXI beats per buffer word."""
        return self.word_bits // self.data_width

    # -- exact cycle costs (from accepting the instruction to idle) -----------
    def conv_cycles(self, kt: int, m: int) -> int:
        """CONV of ``kt`` weight tiles over ``m`` output pixels.

        Counted from the cycle the instruction is accepted to the first idle
        cycle.  The array runs the GEMM ``m x (kt * P) x P``:
        ``SystolicConfig.gemm_cycles`` from the first weight beat to the last
        result, after 3 cycles to start (instruction latch, feeder set-up, first
        buffer read); then 2 cycles to write the last sum and leave the
        accumulate phase, and the post-processing: 1 cycle to read the first
        accumulator word, ``m * P`` lanes, 3 pipeline stages, 1 to return to idle.
        """
        P = self.size
        return 3 + self.systolic.gemm_cycles(m, kt * P, P) + 2 + 1 + m * P + 3 + 1

    def maxpool_cycles(self, e: int, f: int, cg: int, k: int) -> int:
        """MAXPOOL: 2 cycles to start (instruction latch, address set-up), one
        buffer read per window element per channel group, 2 cycles of pipeline
        (read, compare-and-write) and 1 to return to idle."""
        return 2 + e * f * cg * k * k + 2 + 1


#: What the parameter bank keeps of a :data:`PARAM_ENTRY` (shift stored minus one).
PARAM_STORE = data.StructLayout({"bias": signed(32), "mult": unsigned(31), "shm1": unsigned(6)})
#: Requantized values are saturated to this many bits before the zero point and
#: the int8 clamp, which gives the same result as the full-width value.
SAT_BITS = 18


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

    def states(self, m, busy):
        """The POOL_START and POOL states of the core's FSM."""
        ins = self.ins
        pl_e, pl_f, pl_g, pl_i, pl_j, pl_row, pl_pix, pl_c, pl_win, pl_addr = self._regs
        with m.State("POOL_START"):
            m.d.sync += [pl_e.eq(0), pl_f.eq(0), pl_g.eq(0), pl_i.eq(0), pl_j.eq(0),
                         pl_row.eq(ins.in_base), pl_pix.eq(ins.in_base), pl_c.eq(ins.in_base),
                         pl_win.eq(ins.in_base), pl_addr.eq(ins.in_base), self.left.eq(1),
                         self.out.eq(ins.out_base)]
            m.next = "POOL"
        with m.State("POOL"):
            with m.If(~self.left & ~self._d_ok & ~self.w_ok):
                m.d.sync += busy.eq(0)
                m.next = "IDLE"


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


def _mem(m, name, depth, width, *, banked=True):
    # banked: the core reads one bank while the DMA writes the other, so a
    # read never meets a write to its address (no read/write-collision logic)
    mem = Memory(shape=unsigned(width), depth=depth, init=[],
                 attrs={"no_rw_check": 1} if banked else None)
    m.submodules[name] = mem
    return mem


class AccelCore(wiring.Component):
    """Compute core.

    Members:
      ``cmd`` (In stream of :data:`INSTRUCTION`): CONV and MAXPOOL only; the
      payload must stay unchanged until ``busy`` falls (the core reads it
      throughout instead of keeping a copy);
      ``busy`` (Out): an instruction is running;
      ``act_w_*`` (In): DMA write port of the activation banks (``addr`` has the
      bank in its top bit); ``act_r_addr``/``act_r_en`` (In), ``act_r_data``
      (Out, one cycle later): DMA read port (used only while idle);
      ``wbuf_w_*``, ``pbuf_w_*`` (In): DMA write ports of the weight and
      parameter banks (bank in the top address bit);
      ``beats`` (Out, 32 bits): activation beats fed to the array since reset
      (MACs = beats x P x P).
    """

    def __init__(self, config: AccelConfig):
        self.config = cfg = config
        P = cfg.size
        self._abits = (cfg.act_depth - 1).bit_length()
        self._wbits = (cfg.wbuf_depth - 1).bit_length()
        self._pbits = (cfg.pbuf_depth - 1).bit_length()
        super().__init__({
            "cmd": In(stream.Signature(INSTRUCTION)),
            "busy": Out(1),
            "act_w_addr": In(self._abits + 1), "act_w_data": In(P * 8), "act_w_en": In(1),
            "act_r_addr": In(self._abits + 1), "act_r_en": In(1), "act_r_data": Out(P * 8),
            "wbuf_w_addr": In(self._wbits + 1), "wbuf_w_data": In(P * 8), "wbuf_w_en": In(1),
            "pbuf_w_addr": In(self._pbits + 1), "pbuf_w_data": In(PARAM_ENTRY.size),
            "pbuf_w_en": In(1),
            "beats": Out(32),
        })

    def elaborate(self, platform):
        cfg = self.config
        P = cfg.size
        m = Module()
        m.submodules.array = array = SystolicArray(cfg.systolic)

        mems = cfg.memories
        act = _mem(m, "act_mem", *mems["act"])
        wbuf = _mem(m, "wbuf_mem", *mems["wbuf"])
        pbuf = _mem(m, "pbuf_mem", *mems["pbuf"])
        act_wp, act_rp = act.write_port(), act.read_port()
        w_wp, w_rp = wbuf.write_port(), wbuf.read_port()
        p_wp, p_rp = pbuf.write_port(), pbuf.read_port()
        if cfg.acc_depth > 1:
            accb = _mem(m, "acc_mem", *mems["acc"], banked=False)
            a_wp = accb.write_port()
            a_rp = accb.read_port(transparent_for=(a_wp,))
        else:
            a_wp, a_rp = _one_word(m, P * 32)

        # the controller holds cmd.payload until busy falls: no copy here
        ins = Signal(INSTRUCTION)
        busy = Signal()
        m.d.comb += ins.eq(self.cmd.payload)
        m.d.comb += [self.busy.eq(busy), self.cmd.ready.eq(~busy)]

        # DMA ports: writes from the DMA go straight in; the core's own
        # activation writes (post-processing, pooling) take over when busy.
        core_act_w_addr = Signal(self._abits + 1)
        core_act_w_data = Signal(P * 8)
        core_act_w_en = Signal()
        core_act_r_addr = Signal(self._abits + 1)
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
            p_wp.addr.eq(self.pbuf_w_addr), p_wp.en.eq(self.pbuf_w_en),
        ]
        # the parameter bank keeps only the bits post-processing uses
        p_in, p_keep = Signal(PARAM_ENTRY), Signal(PARAM_STORE)
        m.d.comb += [p_in.eq(self.pbuf_w_data), p_keep.bias.eq(p_in.bias),
                     p_keep.mult.eq(p_in.mult), p_keep.shm1.eq(p_in.shift - 1),
                     p_wp.data.eq(p_keep)]

        beats = Signal(32)
        m.d.comb += self.beats.eq(beats)
        with m.If(array.act.valid & array.act.ready):
            m.d.sync += beats.eq(beats + 1)

        # ---------------------------------------------------------------------
        # Loop bounds, precomputed by the compiler
        kt_total, pixels, w_words = ins.kt, ins.pixels, ins.w_words

        # ---------------------------------------------------------------------
        # Weight feeder: KT * P words from the weight bank into the array.
        w_idx = Signal(range(2 * cfg.wbuf_depth + 1))
        w_left = Signal()            # words still to issue
        w_ov = Signal()              # a read is in the output register
        w_issue = Signal()
        m.d.comb += [
            w_issue.eq(w_left & (~w_ov | array.weight.ready)),
            w_rp.addr.eq(Cat((ins.w_off + w_idx)[:self._wbits], ins.wbank)),
            w_rp.en.eq(w_issue),
            array.weight.valid.eq(w_ov),
            array.weight.payload.as_value().eq(w_rp.data),
        ]
        with m.If(~w_ov | array.weight.ready):
            m.d.sync += w_ov.eq(w_issue)
        with m.If(w_issue):
            m.d.sync += w_idx.eq(w_idx + 1)
            with m.If(w_idx + 1 == w_words):
                m.d.sync += w_left.eq(0)

        # ---------------------------------------------------------------------
        # Activation feeder: for each tile (r, s, g), for each pixel (e, f).
        cnt_r, cnt_s, cnt_g = Signal(4), Signal(4), Signal(8)
        cnt_e, cnt_f = Signal(8), Signal(8)
        # Addresses are kept modulo the bank size: only their low bits address
        # the bank, and padding reads (which may point anywhere) are zeroed.
        ab = self._abits
        r_base = Signal(ab)              # a_start + r * a_line
        kt_addr = Signal(ab)             # r_base + s * CG + g
        row_addr = Signal(ab)            # kt_addr + e * a_row
        pix_addr = Signal(ab)            # row_addr + f * a_col
        ih_r, ih = Signal(signed(12)), Signal(signed(12))   # r - pad, + e * stride
        iw_s, iw = Signal(signed(12)), Signal(signed(12))   # s - pad, + f * stride
        a_left = Signal()
        a_ov = Signal()
        a_issue = Signal()
        a_zero = Signal()
        a_first = Signal()
        inside = Signal()
        m.d.comb += [
            inside.eq((ih >= 0) & (ih < ins.h) & (iw >= 0) & (iw < ins.w)),
            a_issue.eq(a_left & (~a_ov | array.act.ready)),
            core_act_r_addr.eq(Cat(pix_addr, ins.bank_in)),
            core_act_r_en.eq(a_issue),
            array.act.valid.eq(a_ov),
            array.act.payload.data.as_value().eq(Mux(a_zero, 0, act_rp.data)),
            array.act.payload.first.eq(a_first),
        ]
        with m.If(~a_ov | array.act.ready):
            m.d.sync += a_ov.eq(a_issue)
        with m.If(a_issue):
            m.d.sync += [a_zero.eq(~inside), a_first.eq((cnt_e == 0) & (cnt_f == 0))]
            last_f = cnt_f == ins.f - 1
            last_e = cnt_e == ins.e - 1
            last_g = cnt_g == ins.cg - 1
            last_s = cnt_s == ins.ks - 1
            last_r = cnt_r == ins.kr - 1
            with m.If(~last_f):
                m.d.sync += [cnt_f.eq(cnt_f + 1), iw.eq(iw + ins.stride),
                             pix_addr.eq(pix_addr + ins.a_col)]
            with m.Elif(~last_e):
                m.d.sync += [cnt_f.eq(0), cnt_e.eq(cnt_e + 1), ih.eq(ih + ins.stride),
                             iw.eq(iw_s), row_addr.eq(row_addr + ins.a_row),
                             pix_addr.eq(row_addr + ins.a_row)]
            with m.Else():
                m.d.sync += [cnt_f.eq(0), cnt_e.eq(0)]
                with m.If(~last_g | ~last_s):      # next (s, g): the address moves by one word
                    m.d.sync += [kt_addr.eq(kt_addr + 1), row_addr.eq(kt_addr + 1),
                                 pix_addr.eq(kt_addr + 1), ih.eq(ih_r)]
                    with m.If(~last_g):
                        m.d.sync += [cnt_g.eq(cnt_g + 1), iw.eq(iw_s)]
                    with m.Else():
                        m.d.sync += [cnt_g.eq(0), cnt_s.eq(cnt_s + 1), iw_s.eq(iw_s + 1),
                                     iw.eq(iw_s + 1)]
                with m.Elif(~last_r):
                    nxt = r_base + ins.a_line
                    m.d.sync += [cnt_g.eq(0), cnt_s.eq(0), cnt_r.eq(cnt_r + 1),
                                 r_base.eq(nxt), kt_addr.eq(nxt), row_addr.eq(nxt),
                                 pix_addr.eq(nxt), ih_r.eq(ih_r + 1), ih.eq(ih_r + 1),
                                 iw_s.eq(-ins.pad), iw.eq(-ins.pad)]
                with m.Else():
                    m.d.sync += a_left.eq(0)

        # ---------------------------------------------------------------------
        # Accumulation: result beat n of tile k adds into acc[pixel].
        m.d.comb += array.result.ready.eq(1)
        r_pix, r_kt = Signal(range(cfg.acc_depth + 1)), Signal(16)
        s1_valid, s1_first = Signal(), Signal()
        s1_pix = Signal(range(max(2, cfg.acc_depth)))
        s1_val = Signal(array.result.payload.shape())
        res_fire = array.result.valid
        m.d.comb += [a_rp.addr.eq(r_pix), a_rp.en.eq(1)]
        m.d.sync += [s1_valid.eq(res_fire), s1_first.eq(r_kt == 0), s1_pix.eq(r_pix),
                     s1_val.eq(array.result.payload)]
        acc_done = Signal()
        with m.If(res_fire):
            with m.If(r_pix + 1 == pixels):
                m.d.sync += [r_pix.eq(0), r_kt.eq(r_kt + 1)]
                with m.If(r_kt + 1 == kt_total):
                    m.d.sync += acc_done.eq(1)
            with m.Else():
                m.d.sync += r_pix.eq(r_pix + 1)
        old = Signal(data.ArrayLayout(signed(32), P))
        new = Signal(data.ArrayLayout(signed(32), P))
        m.d.comb += old.as_value().eq(a_rp.data)
        for j in range(P):
            m.d.comb += new[j].eq(Mux(s1_first, s1_val[j], old[j] + s1_val[j]))
        post_addr = Signal(range(cfg.acc_depth + 1))
        post_rd = Signal()      # the FSM's post-processing states own the read port
        m.d.comb += [a_wp.addr.eq(s1_pix), a_wp.data.eq(new.as_value()), a_wp.en.eq(s1_valid)]
        with m.If(post_rd):
            m.d.comb += a_rp.addr.eq(post_addr)

        # ---------------------------------------------------------------------
        # Post-processing, one lane per cycle: bias, requantize, clamp.
        q_pix, q_lane = Signal(range(cfg.acc_depth + 1)), Signal(range(P))
        q_run = Signal()
        accw = Signal(data.ArrayLayout(signed(32), P))
        fresh = Signal(data.ArrayLayout(signed(32), P))
        m.d.comb += fresh.as_value().eq(a_rp.data)
        x = Signal(signed(32))
        word = Signal(data.ArrayLayout(signed(32), P))
        m.d.comb += word.as_value().eq(Mux(q_lane == 0, fresh.as_value(), accw.as_value()))
        m.d.comb += x.eq(word[q_lane])
        # The parameter entry of lane q_lane is read the cycle before: the
        # address runs one lane ahead (wrapping to lane 0 for the next pixel).
        entry = Signal(PARAM_STORE)
        next_lane = Signal(range(P))
        m.d.comb += [next_lane.eq(Mux(q_run, Mux(q_lane == P - 1, 0, q_lane + 1), q_lane)),
                     p_rp.addr.eq(Cat((ins.p_off + next_lane)[:self._pbits], ins.wbank)),
                     p_rp.en.eq(1), entry.eq(p_rp.data)]
        s2_v, s2_m, s2_s = Signal(signed(32)), Signal(unsigned(31)), Signal(unsigned(6))
        s2_ok, s2_lane = Signal(), Signal(range(P))
        s3_p, s3_s = Signal(signed(63)), Signal(unsigned(6))
        s3_ok, s3_lane = Signal(), Signal(range(P))
        s4_y = Signal(signed(SAT_BITS))  # saturated: the clamp to int8 is unchanged
        s4_ok, s4_lane = Signal(), Signal(range(P))
        out_word = Signal(data.ArrayLayout(signed(8), P))
        out_addr = Signal(ab)
        m.d.sync += [
            s2_v.eq(x + entry.bias), s2_m.eq(entry.mult), s2_s.eq(entry.shm1),
            s2_ok.eq(q_run), s2_lane.eq(q_lane),
            s3_p.eq(s2_v * s2_m), s3_s.eq(s2_s), s3_ok.eq(s2_ok), s3_lane.eq(s2_lane),
            s4_ok.eq(s3_ok), s4_lane.eq(s3_lane),
        ]
        # round half up: floor((p + 2**(s-1)) / 2**s) == (floor(p / 2**(s-1)) + 1) >> 1
        rounding = Signal(signed(63))
        m.d.comb += rounding.eq(((s3_p >> s3_s) + 1) >> 1)
        top = rounding[SAT_BITS - 1:]
        fits = (top == 0) | (top == (1 << len(top)) - 1)
        lim = 1 << (SAT_BITS - 1)
        m.d.sync += s4_y.eq(Mux(fits, rounding, Mux(rounding < 0, -lim, lim - 1)))
        z = Signal(signed(SAT_BITS + 1))
        zc = Signal(signed(8))
        m.d.comb += z.eq(s4_y + ins.out_zp)
        m.d.comb += zc.eq(Mux(z < ins.qmin, ins.qmin, Mux(z > ins.qmax, ins.qmax, z)))
        final = Signal(data.ArrayLayout(signed(8), P))
        m.d.comb += final.eq(out_word)
        for j in range(P):
            with m.If(s4_lane == j):
                m.d.comb += final[j].eq(zc)
        with m.If(s4_ok):
            m.d.sync += out_word.eq(final)
        post_w = Signal()
        m.d.comb += post_w.eq(s4_ok & (s4_lane == P - 1))
        with m.If(q_run):
            with m.If(q_lane == 0):
                m.d.sync += accw.eq(fresh)
            with m.If(q_lane == P - 1):
                m.d.sync += [q_lane.eq(0), q_pix.eq(q_pix + 1)]
                with m.If(q_pix + 1 == pixels):
                    m.d.sync += q_run.eq(0)
            with m.Else():
                m.d.sync += q_lane.eq(q_lane + 1)
        # the next pixel's accumulator word is read while its last lane runs
        m.d.comb += post_addr.eq(Mux(q_run & (q_lane == P - 1), q_pix + 1, q_pix))

        pool = _Pooling(m, ins, act_rp, P, self._abits) if cfg.maxpool else None

        # ---------------------------------------------------------------------
        # Sequencing
        with m.FSM(name="core"):
            with m.State("IDLE"):
                with m.If(self.cmd.valid):
                    m.d.sync += busy.eq(1)
                    if cfg.maxpool:
                        with m.If(self.cmd.payload.op == Op.MAXPOOL):
                            m.next = "POOL_START"
                        with m.Else():
                            m.next = "CONV_START"
                    else:
                        m.next = "CONV_START"
            with m.State("CONV_START"):
                start = ins.a_start
                m.d.sync += [
                    w_idx.eq(0), w_left.eq(1),
                    cnt_r.eq(0), cnt_s.eq(0), cnt_g.eq(0), cnt_e.eq(0), cnt_f.eq(0),
                    r_base.eq(start), kt_addr.eq(start), row_addr.eq(start), pix_addr.eq(start),
                    ih_r.eq(-ins.pad), ih.eq(-ins.pad), iw_s.eq(-ins.pad), iw.eq(-ins.pad),
                    a_left.eq(1), r_pix.eq(0), r_kt.eq(0), acc_done.eq(0),
                    q_pix.eq(0), q_lane.eq(0), out_addr.eq(ins.out_base + ins.ngi),
                ]
                m.next = "CONV_RUN"
            with m.State("CONV_RUN"):
                # the last result's accumulate write happens the cycle after acc_done
                with m.If(acc_done & ~s1_valid):
                    m.next = "POST_PRIME"
            with m.State("POST_PRIME"):
                m.d.comb += post_rd.eq(1)
                m.d.sync += q_run.eq(1)
                m.next = "POST"
            with m.State("POST"):
                m.d.comb += post_rd.eq(1)
                with m.If(~q_run & ~s2_ok & ~s3_ok & ~s4_ok):
                    m.d.sync += busy.eq(0)
                    m.next = "IDLE"
            if pool is not None:
                pool.states(m, busy)

        # Core-side activation accesses: CONV reads through the feeder, pooling
        # reads its windows; post-processing and pooling write results.
        if pool is not None:
            with m.If(pool.left):
                m.d.comb += [core_act_r_addr.eq(Cat(pool.addr, ins.bank_in)),
                             core_act_r_en.eq(1)]
        with m.If(post_w):
            m.d.comb += [core_act_w_addr.eq(Cat(out_addr[:self._abits], ins.bank_out)),
                         core_act_w_data.eq(final.as_value()), core_act_w_en.eq(1)]
            m.d.sync += out_addr.eq(out_addr + ins.ng)
        if pool is not None:
            with m.If(pool.w_ok):
                m.d.comb += [core_act_w_addr.eq(Cat(pool.out, ins.bank_out)),
                             core_act_w_data.eq(pool.max.as_value()), core_act_w_en.eq(1)]
        return m

