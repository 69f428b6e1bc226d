"""Eyeriss row-stationary processing element and the configuration of the array.

The PE (Chen, Emer, Sze, ISCA 2016) runs the row-stationary primitive: the
1-D convolution of filter rows with ifmap rows.  It holds three scratchpads:

* filter spad (``filter_spad`` words of ``data_width`` bits, an
  ``amaranth.lib.memory.Memory``): ``p`` filters x ``q`` channels x ``S``
  weights, at address ``(c*S + s)*p + f`` (filters innermost);
* ifmap spad (``ifmap_spad`` words, registers): the sliding window, ``q``
  channels x ``S`` positions, channel ``c`` at ``c*S + (pos mod S)``; the
  window of output column x starts at slot ``base`` (supplied by the array,
  which writes the new positions of each window);
* psum spad (``psum_spad`` words of ``acc_width`` bits, registers): one
  partial sum per filter for the current output column.

On ``start`` the PE steps through c < q, s < S, f < p, one step per cycle:
``psum[f] += w[c, s, f] * ifmap[c, s]``, the first step (c = s = 0) of each
filter writing the product instead of adding.  The ifmap word is read once
per (c, s) and held for the p filters.  Zero gating: when that word is zero
the filter read and the MAC are skipped (and counted on ``ev_gated``); a
gated first step writes zero.  The MAC is a 2-stage pipeline (spad reads,
then multiply-accumulate), so a run of ``p*q*S`` steps takes
``p*q*S + mac_latency`` cycles from ``start`` to ``busy`` low.

Integer semantics: operands are ``data_width``-bit two's complement (or
unsigned if ``signed`` is false); products are exact; the psum wraps modulo
``2**acc_width`` after every addition (:func:`sim.golden.conv.conv2d` with
``overflow_mode="wrap"`` gives the same words).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .params import Config, ParamError, param

__all__ = ["EyerissConfig", "EyerissPE", "select"]


def select(m: Module, regs, index, name: str):
    """``regs[index]`` as a new signal; zero for an index past the end.

    (A ``Switch`` with a default branch: the emitted ``case`` is complete even
    when the depth is not a power of two.)
    """
    out = Signal.like(regs[0], name=name)
    with m.Switch(index):
        for n, reg in enumerate(regs):
            with m.Case(n):
                m.d.comb += out.eq(reg)
        with m.Default():
            m.d.comb += out.eq(0)
    return out


@dataclass(frozen=True)
class EyerissConfig(Config):
    """Parameters of the Eyeriss PE and PE array (defaults: the Eyeriss chip)."""

    component = "eyeriss-array"

    rows: int = param(12, lo=1, hi=16, help="physical PE rows (H)")
    cols: int = param(14, lo=1, hi=16, help="physical PE columns (W)")
    data_width: int = param(16, lo=2, hi=16, help="ifmap and weight width in bits")
    acc_width: int = param(32, lo=4, hi=48, help="psum width in bits (>= 2*data_width), wraps")
    signed: bool = param(True, help="two's-complement operands (else unsigned)")
    filter_spad: int = param(224, lo=1, hi=1024, help="filter scratchpad words per PE")
    ifmap_spad: int = param(12, lo=1, hi=64, help="ifmap scratchpad words per PE")
    psum_spad: int = param(24, lo=1, hi=64, help="psum scratchpad words per PE")
    glb_ifmap: int = param(4096, lo=16, hi=65536, help="global-buffer ifmap words")
    glb_psum: int = param(2048, lo=16, hi=65536, help="global-buffer psum words")
    dim_width: int = param(8, lo=4, hi=12, help="bits of each runtime layer dimension")
    counter_width: int = param(48, lo=16, hi=64, help="bits of each access counter")

    def validate(self):
        if self.acc_width < 2 * self.data_width:
            raise ParamError("acc_width", self.acc_width,
                             f"{2 * self.data_width}..48 (at least 2 * data_width)")

    def _shape(self, width: int) -> Shape:
        return signed(width) if self.signed else unsigned(width)

    @property
    def data_shape(self) -> Shape:
        return self._shape(self.data_width)

    @property
    def acc_shape(self) -> Shape:
        return self._shape(self.acc_width)

    @property
    def mac_latency(self) -> int:
        """Cycles after the last MAC step until the psums are final (pipeline)."""
        return 1

    def mac_cycles(self, p: int, q: int, s: int) -> int:
        """Cycles of one PE run over one window: ``p*q*S + mac_latency``."""
        return p * q * s + self.mac_latency

    @property
    def layer_layout(self) -> data.StructLayout:
        """The runtime layer descriptor (the ``layer`` port), filled by the mapper
        (:func:`nnloom.gen.compiler.eyeriss_map.layer_fields`)."""
        d = unsigned(self.dim_width)
        return data.StructLayout({
            "c": d, "hp": d, "wp": d,        # ifmap channels, padded height, width
            "m": d, "e": d, "f": d,          # filters, output height, width
            "s": d, "u": d,                  # filter columns, stride
            "p": d, "q": d,                  # filters and channels per PE
            "n_mgroup": d, "n_estrip": d, "n_rpass": d, "n_cpass": d,  # pass loop bounds
            "rv": d, "a_last": d,            # replicas, replicas in the last channel pass
            "wa_last": d,                    # columns used in the last strip
            "rc": d, "r_last": d,            # filter rows per row pass, in the last row pass
            "rstart": d, "rstart_last": d,   # first new row of a column (rc, r_last rows)
            "nnew": d,                       # new positions per window step
            "row_k": data.ArrayLayout(d, self.rows),   # replica of each PE row (rv: unused)
            "row_r": data.ArrayLayout(d, self.rows),   # filter row of each PE row
            "col_y": data.ArrayLayout(d, self.cols),   # u * j: ifmap row offset of each column
        })

    @property
    def counter_names(self) -> tuple[str, ...]:
        """The hardware access counters, in port order (``cnt_<name>``)."""
        return ("macs", "gated", "spad_reads", "spad_writes", "array", "glb_reads", "glb_writes")


class EyerissPE(wiring.Component):
    """One row-stationary PE (see the module docstring).

    Parameters: an :class:`EyerissConfig` (widths, spad depths; ``rows`` and
    ``cols`` do not apply).

    Members:
      ``p``, ``q``, ``s`` (In, ``dim_width`` bits): filters, channels, window width;
      ``base`` (In): spad slot of the window's first position;
      ``start`` (In): begin a run (ignored while ``busy``);
      ``f_we``, ``f_addr``, ``f_data`` (In): filter spad write;
      ``i_we``, ``i_addr``, ``i_data`` (In): ifmap spad write;
      ``psum_sel`` (In), ``psum_out`` (Out, ``acc_width``): psum spad read;
      ``busy`` (Out);
      ``ev_mac``, ``ev_gated``, ``ev_ird``, ``ev_prd``, ``ev_pwr`` (Out): one
      MAC (= one filter spad read), one gated MAC, one ifmap spad read, one
      psum spad read, one psum spad write, this cycle.
    """

    def __init__(self, config: EyerissConfig):
        if not isinstance(config, EyerissConfig):
            raise TypeError(f"config must be an EyerissConfig, not {config!r}")
        self.config = cfg = config
        d = unsigned(cfg.dim_width)
        super().__init__({
            "p": In(d), "q": In(d), "s": In(d), "base": In(range(cfg.ifmap_spad)),
            "start": In(1),
            "f_we": In(1), "f_addr": In(range(cfg.filter_spad)), "f_data": In(cfg.data_shape),
            "i_we": In(1), "i_addr": In(range(cfg.ifmap_spad)), "i_data": In(cfg.data_shape),
            "psum_sel": In(range(cfg.psum_spad)), "psum_out": Out(cfg.acc_shape),
            "busy": Out(1),
            "ev_mac": Out(1), "ev_gated": Out(1), "ev_ird": Out(1), "ev_prd": Out(1),
            "ev_pwr": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()

        fmem = m.submodules.filter_spad = Memory(shape=cfg.data_shape, depth=cfg.filter_spad, init=[])
        fw = fmem.write_port()
        fr = fmem.read_port()
        m.d.comb += [fw.en.eq(self.f_we), fw.addr.eq(self.f_addr), fw.data.eq(self.f_data)]

        ifmap = [Signal(cfg.data_shape, name=f"ifmap_{n}") for n in range(cfg.ifmap_spad)]
        for n, reg in enumerate(ifmap):
            with m.If(self.i_we & (self.i_addr == n)):
                m.d.sync += reg.eq(self.i_data)
        psum = [Signal(cfg.acc_shape, name=f"psum_{n}") for n in range(cfg.psum_spad)]
        m.d.comb += self.psum_out.eq(select(m, psum, self.psum_sel, "psum_rd"))

        # Step counters: channel c, window position s, filter f (innermost).
        run = Signal()
        ch = Signal(unsigned(cfg.dim_width))
        sx = Signal(unsigned(cfg.dim_width))
        fi = Signal(range(cfg.psum_spad))
        fa = Signal(range(cfg.filter_spad))
        ib = Signal(range(cfg.ifmap_spad + 1))        # ch * S
        slot = Signal(range(cfg.ifmap_spad))          # (base + sx) mod S
        hold = Signal(cfg.data_shape)                 # ifmap word held for the p filters

        ival = Signal(cfg.data_shape)
        m.d.comb += ival.eq(Mux(fi == 0, select(m, ifmap, ib + slot, "ifmap_rd"), hold))
        zero = Signal()
        first = Signal()
        m.d.comb += [zero.eq(ival == 0), first.eq((ch == 0) & (sx == 0))]
        m.d.comb += [fr.addr.eq(fa), fr.en.eq(run & ~zero)]
        with m.If(run & (fi == 0)):
            m.d.sync += hold.eq(ival)

        with m.If(~run & self.start & ~self.busy):
            m.d.sync += [run.eq(1), ch.eq(0), sx.eq(0), fi.eq(0), fa.eq(0), ib.eq(0),
                         slot.eq(self.base)]
        with m.Elif(run):
            m.d.sync += fa.eq(fa + 1)
            with m.If(fi + 1 < self.p):
                m.d.sync += fi.eq(fi + 1)
            with m.Else():
                m.d.sync += fi.eq(0)
                with m.If(sx + 1 < self.s):
                    m.d.sync += [sx.eq(sx + 1), slot.eq(Mux(slot + 1 == self.s, 0, slot + 1))]
                with m.Else():
                    m.d.sync += [sx.eq(0), slot.eq(self.base)]
                    with m.If(ch + 1 < self.q):
                        m.d.sync += [ch.eq(ch + 1), ib.eq(ib + self.s)]
                    with m.Else():
                        m.d.sync += run.eq(0)

        # Stage 2: multiply-accumulate into psum[f], wrapping at acc_width.
        v2, z2, first2 = Signal(), Signal(), Signal()
        f2 = Signal(range(cfg.psum_spad))
        i2 = Signal(cfg.data_shape)
        m.d.sync += [v2.eq(run), z2.eq(zero), first2.eq(first), f2.eq(fi), i2.eq(ival)]
        prod = Signal(cfg.acc_shape)
        m.d.comb += prod.eq(i2 * fr.data)
        total = Signal(cfg.acc_shape)
        m.d.comb += total.eq(select(m, psum, f2, "psum_acc") + prod)  # truncation wraps
        for n, reg in enumerate(psum):
            with m.If(v2 & (f2 == n)):
                with m.If(first2):
                    m.d.sync += reg.eq(Mux(z2, 0, prod))
                with m.Elif(~z2):
                    m.d.sync += reg.eq(total)

        m.d.comb += [
            self.busy.eq(run | v2),
            self.ev_mac.eq(run & ~zero),
            self.ev_gated.eq(run & zero),
            self.ev_ird.eq(run & (fi == 0)),
            self.ev_prd.eq(run & ~zero & ~first),
            self.ev_pwr.eq(run & (~zero | first)),
        ]
        return m
