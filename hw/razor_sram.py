"""Razor-masked SRAM: a Memory whose reads carry per-bit fault flags, masked.

Minerva (Reagen et al., ISCA 2016) runs its weight SRAMs at a voltage where
bitcells fail, detects the faulty bits with Razor double-sampling on every
column, and masks them at the end of the weight-fetch stage instead of
correcting them.  This wrapper models that around
``amaranth.lib.memory.Memory``:

* read latency is the plain memory's (one cycle, synchronous read port with
  enable, not transparent to the write port): masking is combinational on the
  read data, at the end of the read stage, adding no cycle;
* the flags of a read are the external ``ext_flags`` input (driven, in the
  read-data cycle, by a real Razor circuit or a testbench) OR-ed with the
  built-in injector's flags; the injector also inverts its flagged bits
  (the fault itself), Razor flags never change data;
* masking mode ``none`` / ``word`` / ``bit`` fixed at generation, or
  ``runtime`` (the ``mode`` input, :data:`MODE_CODES`);
* a flagged sign column under bit masking zeroes the word (documented
  policy: nothing trustworthy to copy); bit masking then never increases
  ``|value|``;
* counters ``reads``, ``faulty_reads`` (reads with any flag) and
  ``masked_bits`` (bits the mask forced), ``counter_width`` bits, wrapping;
  ``clear`` zeroes them.

The rules, the injector's exact LFSR sequence and the counters are specified
(and modelled bit for bit) in :mod:`nnloom.sim.golden.razor`.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .params import Config, param

__all__ = ["RazorSramConfig", "RazorSram", "MODE_CODES", "LFSR_TAPS", "lfsr_matrix"]

#: Encoding of the ``mode`` input in ``runtime`` mode (3 also means bit).
MODE_CODES = {"none": 0, "word": 1, "bit": 2}

#: Galois LFSR taps (right-shifting form), period ``2**k - 1``, k = 8..20.
LFSR_TAPS = {8: 0xB8, 9: 0x110, 10: 0x240, 11: 0x500, 12: 0xE08, 13: 0x1C80, 14: 0x3802,
             15: 0x6000, 16: 0xD008, 17: 0x12000, 18: 0x20400, 19: 0x72000, 20: 0x90000}


def lfsr_matrix(k: int) -> list[int]:
    """Row ``b``: bitmask of the state bits whose XOR is bit ``b`` after ``k``
    Galois steps (the step is linear over GF(2), so ``k`` steps are one XOR
    layer in hardware)."""
    taps = LFSR_TAPS[k]

    def steps(s):
        for _ in range(k):
            s = (s >> 1) ^ (taps if s & 1 else 0)
        return s

    images = [steps(1 << j) for j in range(k)]
    return [sum(1 << j for j in range(k) if images[j] >> b & 1) for b in range(k)]


@dataclass(frozen=True)
class RazorSramConfig(Config):
    """Parameters of a Razor-masked SRAM; derived figures are properties."""

    component = "razor-sram"

    width: int = param(8, lo=2, hi=64, help="word width in bits")
    depth: int = param(256, lo=2, hi=65536, help="words")
    mode: str = param("bit", choices=("none", "word", "bit", "runtime"),
                      help="masking: none, word, bit, or chosen at run time by the mode input")
    injector: str = param("transient", choices=("off", "transient", "persistent"),
                          help="built-in LFSR fault injector: per-read or per-write (stuck) faults")
    rate_bits: int = param(16, lo=8, hi=20, help="LFSR and rate width k: p = rate / (2**k - 1)")
    seed: int = param(1, lo=0, hi=2**32 - 1, help="injector seed (per-column LFSR states)")
    counter_width: int = param(32, lo=8, hi=48, help="width of the event counters (wrap)")

    @property
    def read_latency(self) -> int:
        """Cycles from ``raddr``/``ren`` to ``rdata``: 1, as the plain Memory."""
        return 1

    @property
    def addr_width(self) -> int:
        return max(1, (self.depth - 1).bit_length())

    def lfsr_seed(self, column: int) -> int:
        """Initial LFSR state of ``column`` (never zero)."""
        k = self.rate_bits
        s = ((self.seed * 0x9E3779B1) ^ ((column + 1) * 0x85EBCA77)) & ((1 << k) - 1)
        return s or 1


class RazorSram(wiring.Component):
    """Single-port-read, single-port-write SRAM with Razor flags and masking.

    Parameters: a :class:`RazorSramConfig`.

    Members:
      ``waddr``, ``wdata`` (``width`` bits), ``wen`` (In): write port.
      ``raddr``, ``ren`` (In): read port; ``rdata`` (Out, ``width`` bits,
      masked) and ``rflags`` (Out, the read's flags) are valid
      ``read_latency`` cycles after ``ren`` and hold while ``ren`` is low.
      ``ext_flags`` (In, ``width``): external flags of the word on ``rdata``.
      ``mode`` (In, 2 bits; only with ``mode="runtime"``).
      ``inj_en`` (In), ``rate`` (In, ``rate_bits``; only with an injector).
      ``clear`` (In): zero the counters.
      ``reads``, ``faulty_reads``, ``masked_bits`` (Out, ``counter_width``).
    """

    def __init__(self, config: RazorSramConfig):
        if not isinstance(config, RazorSramConfig):
            raise TypeError(f"config must be a RazorSramConfig, not {config!r}")
        self.config = cfg = config
        cw = cfg.counter_width
        members = {
            "waddr": In(range(cfg.depth)), "wdata": In(cfg.width), "wen": In(1),
            "raddr": In(range(cfg.depth)), "ren": In(1),
            "rdata": Out(cfg.width), "rflags": Out(cfg.width),
            "ext_flags": In(cfg.width), "clear": In(1),
            "reads": Out(cw), "faulty_reads": Out(cw), "masked_bits": Out(cw),
        }
        if cfg.mode == "runtime":
            members["mode"] = In(2)
        if cfg.injector != "off":
            members["inj_en"] = In(1)
            members["rate"] = In(cfg.rate_bits)
        super().__init__(members)

    @property
    def read_latency(self) -> int:
        return self.config.read_latency

    def _injector(self, m: Module, draw):
        """Flag vector of a draw made this cycle (LFSR states advance on ``draw``)."""
        cfg = self.config
        k = cfg.rate_bits
        rows = lfsr_matrix(k)
        flags = Signal(cfg.width, name="inj_draw")
        for c in range(cfg.width):
            state = Signal(k, init=cfg.lfsr_seed(c), name=f"lfsr{c}")
            nxt = Signal(k, name=f"lfsr{c}_next")
            for b, row in enumerate(rows):
                bit = Const(0, 1)
                for j in range(k):
                    if row >> j & 1:
                        bit = bit ^ state[j]
                m.d.comb += nxt[b].eq(bit)
            with m.If(draw):
                m.d.sync += state.eq(nxt)
            m.d.comb += flags[c].eq(draw & (nxt <= self.rate))
        return flags

    def elaborate(self, platform):
        cfg = self.config
        W = cfg.width
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=unsigned(W), depth=cfg.depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port(domain="sync")
        m.d.comb += [wp.addr.eq(self.waddr), wp.data.eq(self.wdata), wp.en.eq(self.wen),
                     rp.addr.eq(self.raddr), rp.en.eq(self.ren)]

        # Injected fault vector of the word now on rp.data.
        inj = Signal(W)
        if cfg.injector == "transient":
            draw = self._injector(m, self.ren & self.inj_en)
            with m.If(self.ren):  # held with the read data while ren is low
                m.d.sync += inj.eq(draw)
        elif cfg.injector == "persistent":
            m.submodules.fault_map = fmap = memory.Memory(shape=unsigned(W), depth=cfg.depth,
                                                          init=[])
            fwp = fmap.write_port()
            frp = fmap.read_port(domain="sync")
            draw = self._injector(m, self.wen & self.inj_en)
            m.d.comb += [fwp.addr.eq(self.waddr), fwp.data.eq(draw), fwp.en.eq(self.wen),
                         frp.addr.eq(self.raddr), frp.en.eq(self.ren), inj.eq(frp.data)]

        raw = Signal(W)
        flags = Signal(W)
        m.d.comb += [raw.eq(rp.data ^ inj), flags.eq(self.ext_flags | inj)]

        # Masking at the end of the read stage (combinational).
        any_flag = flags.any()
        sign_flag = flags[W - 1]
        fill = Mux(raw[W - 1], Const((1 << W) - 1, W), Const(0, W))
        bit_masked = Signal(W)
        m.d.comb += bit_masked.eq(Mux(sign_flag, 0, (raw & ~flags) | (fill & flags)))
        popcount = sum((flags[c] for c in range(W)), Const(0, range(W + 1)))
        forced_bit = Mux(sign_flag, W, popcount)
        forced_word = Mux(any_flag, W, 0)
        forced = Signal(range(W + 1))
        if cfg.mode == "runtime":
            with m.If(self.mode[1]):
                m.d.comb += [self.rdata.eq(bit_masked), forced.eq(forced_bit)]
            with m.Elif(self.mode[0]):
                m.d.comb += [self.rdata.eq(Mux(any_flag, 0, raw)), forced.eq(forced_word)]
            with m.Else():
                m.d.comb += [self.rdata.eq(raw), forced.eq(0)]
        elif cfg.mode == "bit":
            m.d.comb += [self.rdata.eq(bit_masked), forced.eq(forced_bit)]
        elif cfg.mode == "word":
            m.d.comb += [self.rdata.eq(Mux(any_flag, 0, raw)), forced.eq(forced_word)]
        else:
            m.d.comb += [self.rdata.eq(raw), forced.eq(0)]
        m.d.comb += self.rflags.eq(flags)

        # Counters step in the read-data cycle of every read.
        data_cycle = Signal()
        m.d.sync += data_cycle.eq(self.ren)
        cw = cfg.counter_width
        with m.If(self.clear):
            m.d.sync += [self.reads.eq(0), self.faulty_reads.eq(0), self.masked_bits.eq(0)]
        with m.Elif(data_cycle):
            m.d.sync += [self.reads.eq((self.reads + 1)[:cw]),
                         self.faulty_reads.eq((self.faulty_reads + any_flag)[:cw]),
                         self.masked_bits.eq((self.masked_bits + forced)[:cw])]
        return m
