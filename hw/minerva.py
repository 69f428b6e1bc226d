"""Minerva fully-connected lanes: pruning by threshold, Razor-masked weights.

``lanes`` parallel lanes compute one fully connected layer
``y = act(W @ x)`` (Reagen et al., ISCA 2016, section 7).  Output neuron
``j`` belongs to lane ``j % lanes``, in output group ``g = j // lanes``;
each lane keeps its weights in its own :class:`~nnloom.hw.razor_sram.RazorSram` at
address ``g * max_inputs + i`` (:meth:`MinervaConfig.weight_address`).

Operation:

1. ``weight`` beats (address, one weight per lane) write the SRAMs; accepted
   while no layer runs.
2. ``act`` beats fill the activation buffer (``x[0]``, ``x[1]``, ...); the
   beat with ``last`` (or the ``max_inputs``-th beat) ends the vector, latches
   ``n_out`` and ``threshold``, and starts the layer.
3. For each output group, for each input ``i`` the lane pipeline runs
   F1: read ``x[i]``, compare ``|x[i]| < threshold`` (skip flag);
   F2: read the weights (the SRAM read is suppressed when skipped: no read,
   no fault draw, no count) and mask them (end of F2, in the Razor SRAM);
   M: ``acc += x[i] * w`` (skipped MACs add nothing);
   A: ReLU and requantization; WB: the group's result into the output FIFO.
4. ``result`` beats, one per output group, carry every lane's raw
   accumulator ``acc`` and activation ``act``.  A group starts only with room
   for its result (credit against the FIFO), so back-pressure loses nothing.

Integer semantics (golden model :mod:`nnloom.sim.golden.minerva`): weights are
``w_int + w_frac``-bit two's complement (Qw_int.w_frac), activations
``a_int + a_frac`` bits (Qa_int.a_frac); products are exact; the accumulator
is ``acc_width`` bits and cannot overflow (checked:
``acc_width >= w_width + a_width + clog2(max_inputs)``).  The output
activation is ``min((max(acc, 0) + 2**(w_frac-1)) >> w_frac, 2**(a_width-1)-1)``
(ReLU, round half up, saturate), in the activation format.
``skipped`` counts skipped MACs: ``lanes`` per skipped input per group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import Config, ParamError, param
from .razor_sram import RazorSram, RazorSramConfig

__all__ = ["MinervaConfig", "MinervaLanes"]


@dataclass(frozen=True)
class MinervaConfig(Config):
    """Parameters of the Minerva FC lanes; derived figures are properties."""

    component = "minerva-lane"

    lanes: int = param(2, lo=1, hi=16, help="parallel lanes (outputs computed at once)")
    max_inputs: int = param(16, lo=1, hi=1024, help="largest layer input size")
    max_outputs: int = param(8, lo=1, hi=1024, help="largest layer output size")
    w_int: int = param(2, lo=1, hi=8, help="weight integer bits incl. sign (Qm.n m)")
    w_frac: int = param(6, lo=0, hi=15, help="weight fractional bits")
    a_int: int = param(2, lo=1, hi=8, help="activation integer bits incl. sign")
    a_frac: int = param(4, lo=0, hi=15, help="activation fractional bits")
    acc_width: int = param(24, lo=4, hi=48, help="accumulator width in bits")
    mode: str = param("bit", choices=("none", "word", "bit", "runtime"),
                      help="Razor masking of the weight SRAMs")
    injector: str = param("persistent", choices=("off", "transient", "persistent"),
                          help="weight SRAMs' built-in fault injector")
    rate_bits: int = param(16, lo=8, hi=20, help="injector LFSR / rate width")
    seed: int = param(1, lo=0, hi=2**32 - 17, help="injector seed (lane l uses seed + l)")

    def validate(self):
        need = self.w_width + self.a_width + max(1, (self.max_inputs - 1).bit_length())
        if self.acc_width < need:
            raise ParamError("acc_width", self.acc_width,
                             f"{need}..48 (w_width + a_width + clog2(max_inputs))")
        if self.w_width < 2:
            raise ParamError("w_frac", self.w_frac, "w_int + w_frac >= 2")
        if self.a_width < 2:
            raise ParamError("a_frac", self.a_frac, "a_int + a_frac >= 2")

    @property
    def w_width(self) -> int:
        return self.w_int + self.w_frac

    @property
    def a_width(self) -> int:
        return self.a_int + self.a_frac

    @property
    def groups_max(self) -> int:
        return math.ceil(self.max_outputs / self.lanes)

    @property
    def depth(self) -> int:
        """Words per lane SRAM."""
        return max(2, self.max_inputs * self.groups_max)

    @property
    def addr_width(self) -> int:
        return max(1, (self.depth - 1).bit_length())

    def groups(self, n_out: int) -> int:
        return math.ceil(n_out / self.lanes)

    def weight_address(self, j: int, i: int) -> tuple[int, int]:
        """(lane, SRAM address) of ``W[j, i]``."""
        return j % self.lanes, (j // self.lanes) * self.max_inputs + i

    def razor_config(self, lane: int) -> RazorSramConfig:
        return RazorSramConfig(width=self.w_width, depth=self.depth, mode=self.mode,
                               injector=self.injector, rate_bits=self.rate_bits,
                               seed=self.seed + lane)

    # -- streams -------------------------------------------------------------
    @property
    def act_layout(self) -> data.StructLayout:
        return data.StructLayout({"data": signed(self.a_width), "last": 1})

    @property
    def weight_layout(self) -> data.StructLayout:
        return data.StructLayout({"addr": unsigned(self.addr_width),
                                  "data": data.ArrayLayout(signed(self.w_width), self.lanes)})

    @property
    def result_layout(self) -> data.StructLayout:
        return data.StructLayout({"acc": data.ArrayLayout(signed(self.acc_width), self.lanes),
                                  "act": data.ArrayLayout(signed(self.a_width), self.lanes)})

    # -- timing --------------------------------------------------------------
    @property
    def latency(self) -> int:
        """Cycles from issuing a group's last input (F1) to its result beat
        being valid: F1, F2, M, A, WB, then the FIFO's output register: 5."""
        return 5

    @property
    def fifo_depth(self) -> int:
        """Result FIFO entries: latency + 1, so that an always-ready consumer
        never stalls the lanes."""
        return self.latency + 1

    def layer_cycles(self, n_in: int, n_out: int) -> int:
        """Cycles from accepting the last ``act`` beat of a vector to accepting
        its last ``result`` beat, with an always-ready consumer:
        ``groups(n_out) * n_in + latency`` (one input per cycle, no bubbles)."""
        return self.groups(n_out) * n_in + self.latency


class MinervaLanes(wiring.Component):
    """``lanes`` Minerva FC lanes sharing one activation buffer.

    Parameters: a :class:`MinervaConfig`.

    Members:
      ``act`` (In, stream of ``act_layout``), ``weight`` (In, stream of
      ``weight_layout``), ``result`` (Out, stream of ``result_layout``);
      ``n_out`` (In, outputs of the layer), ``threshold`` (In, ``a_width``
      bits unsigned, pruning magnitude in activation codes), both latched at
      the vector's last beat; ``mode`` (In, 2 bits, with ``mode="runtime"``),
      ``inj_en``, ``rate`` (In, with an injector), ``clear`` (In: counters
      to zero); ``skipped`` (Out, 32 bits: skipped MACs), ``reads``,
      ``faulty_reads``, ``masked_bits`` (Out, one 32-bit counter per lane);
      ``busy`` (Out: a layer is being issued).
    """

    def __init__(self, config: MinervaConfig):
        if not isinstance(config, MinervaConfig):
            raise TypeError(f"config must be a MinervaConfig, not {config!r}")
        self.config = cfg = config
        counters = data.ArrayLayout(unsigned(32), cfg.lanes)
        members = {
            "act": In(stream.Signature(cfg.act_layout)),
            "weight": In(stream.Signature(cfg.weight_layout)),
            "result": Out(stream.Signature(cfg.result_layout)),
            "n_out": In(range(cfg.max_outputs + 1)),
            "threshold": In(unsigned(cfg.a_width)),
            "clear": In(1), "busy": Out(1), "skipped": Out(32),
            "reads": Out(counters), "faulty_reads": Out(counters), "masked_bits": Out(counters),
        }
        if cfg.mode == "runtime":
            members["mode"] = In(2)
        if cfg.injector != "off":
            members["inj_en"] = In(1)
            members["rate"] = In(cfg.rate_bits)
        super().__init__(members)

    @property
    def latency(self) -> int:
        return self.config.latency

    def elaborate(self, platform):
        cfg = self.config
        L = cfg.lanes
        m = Module()
        m.submodules.act_buf = abuf = memory.Memory(shape=signed(cfg.a_width),
                                                    depth=max(2, cfg.max_inputs), init=[])
        awp, arp = abuf.write_port(), abuf.read_port()
        srams = [RazorSram(cfg.razor_config(lane)) for lane in range(L)]
        for lane, s in enumerate(srams):
            m.submodules[f"sram{lane}"] = s
        out_fifo = m.submodules.out_fifo = fifo.SyncFIFO(
            width=data.Layout.cast(cfg.result_layout).size, depth=cfg.fifo_depth)

        # -- load: activations into the buffer, weights into the SRAMs ---------
        computing = Signal()
        m.d.comb += self.busy.eq(computing)
        i_load = Signal(range(max(2, cfg.max_inputs)))
        last_idx = Signal(range(max(2, cfg.max_inputs)))
        n_out = Signal.like(self.n_out)
        thr = Signal.like(self.threshold)
        m.d.comb += [self.act.ready.eq(~computing), self.weight.ready.eq(~computing)]
        act_fire = self.act.valid & self.act.ready
        w_fire = self.weight.valid & self.weight.ready
        m.d.comb += [awp.addr.eq(i_load), awp.data.eq(self.act.payload.data), awp.en.eq(act_fire)]
        base = Signal(range(cfg.depth + cfg.max_inputs + 1))   # SRAM address of (g, 0)
        j0 = Signal(range(cfg.max_outputs + cfg.lanes + 1))     # first output of group g
        i_run = Signal.like(i_load)
        with m.If(act_fire):
            with m.If(self.act.payload.last | (i_load == cfg.max_inputs - 1)):
                m.d.sync += [last_idx.eq(i_load), i_load.eq(0), n_out.eq(self.n_out),
                             thr.eq(self.threshold), computing.eq(self.n_out != 0),
                             base.eq(0), j0.eq(0), i_run.eq(0)]
            with m.Else():
                m.d.sync += i_load.eq(i_load + 1)

        # -- issue (F1 address): one input per cycle; a group needs FIFO credit -
        outstanding = Signal(range(cfg.fifo_depth + 1))
        pop = self.result.valid & self.result.ready
        issue = Signal()
        group_end = Signal()
        m.d.comb += [issue.eq(computing & ((i_run != 0) | (outstanding < cfg.fifo_depth))),
                     group_end.eq(issue & (i_run == last_idx))]
        m.d.sync += outstanding.eq(outstanding + group_end - pop)
        m.d.comb += [arp.addr.eq(i_run), arp.en.eq(issue)]
        with m.If(issue):
            m.d.sync += i_run.eq(i_run + 1)
            with m.If(group_end):
                m.d.sync += [i_run.eq(0), base.eq(base + cfg.max_inputs), j0.eq(j0 + L)]
                with m.If(j0 + L >= n_out):
                    m.d.sync += computing.eq(0)
        v1, last1 = Signal(), Signal()
        waddr1 = Signal(cfg.addr_width)
        m.d.sync += [v1.eq(issue), last1.eq(group_end), waddr1.eq(base + i_run)]

        # -- F1 compare, F2 weight read (suppressed when skipped) -----------------
        a1 = arp.data
        mag = Signal(cfg.a_width + 1)
        m.d.comb += mag.eq(Mux(a1 < 0, -a1, a1))
        skip1 = Signal()
        m.d.comb += skip1.eq(mag < thr)
        for s in srams:
            m.d.comb += [s.waddr.eq(self.weight.payload.addr), s.wen.eq(w_fire),
                         s.raddr.eq(waddr1), s.ren.eq(v1 & ~skip1), s.ext_flags.eq(0),
                         s.clear.eq(self.clear)]
            if cfg.mode == "runtime":
                m.d.comb += s.mode.eq(self.mode)
            if cfg.injector != "off":
                m.d.comb += [s.inj_en.eq(self.inj_en), s.rate.eq(self.rate)]
        for lane, s in enumerate(srams):
            m.d.comb += [s.wdata.eq(self.weight.payload.data[lane].as_unsigned()),
                         self.reads[lane].eq(s.reads),
                         self.faulty_reads[lane].eq(s.faulty_reads),
                         self.masked_bits[lane].eq(s.masked_bits)]
        v2, skip2, last2 = Signal(), Signal(), Signal()
        a2 = Signal(signed(cfg.a_width))
        m.d.sync += [v2.eq(v1), skip2.eq(skip1), last2.eq(last1), a2.eq(a1)]

        # -- M: multiply-accumulate (F2's masked weights arrive this cycle) -------
        v3 = Signal()
        acc3 = [Signal(signed(cfg.acc_width), name=f"acc3_{lane}") for lane in range(L)]
        m.d.sync += v3.eq(v2 & last2)
        for lane, s in enumerate(srams):
            acc = Signal(signed(cfg.acc_width), name=f"acc{lane}")
            total = Signal(signed(cfg.acc_width), name=f"acc{lane}_next")
            m.d.comb += total.eq(acc + Mux(skip2, 0, a2 * s.rdata.as_signed()))
            with m.If(v2):
                with m.If(last2):
                    m.d.sync += [acc3[lane].eq(total), acc.eq(0)]
                with m.Else():
                    m.d.sync += acc.eq(total)
        with m.If(self.clear):
            m.d.sync += self.skipped.eq(0)
        with m.Elif(v2 & skip2):
            m.d.sync += self.skipped.eq(self.skipped + L)

        # -- A: ReLU, round half up, saturate to the activation format -----------
        res4 = Signal(cfg.result_layout)
        v4 = Signal()
        a_max = (1 << (cfg.a_width - 1)) - 1
        m.d.sync += v4.eq(v3)
        for lane in range(L):
            relu = Mux(acc3[lane] < 0, 0, acc3[lane])
            half = (1 << (cfg.w_frac - 1)) if cfg.w_frac else 0
            scaled = Signal(cfg.acc_width, name=f"scaled{lane}")
            m.d.comb += scaled.eq((relu + half) >> cfg.w_frac)
            m.d.sync += [res4.acc[lane].eq(acc3[lane]),
                         res4.act[lane].eq(Mux(scaled > a_max, a_max, scaled))]

        # -- WB: into the result FIFO -------------------------------------------
        m.d.comb += [out_fifo.w_en.eq(v4), out_fifo.w_data.eq(res4.as_value()),
                     self.result.valid.eq(out_fifo.r_rdy),
                     self.result.payload.eq(out_fifo.r_data), out_fifo.r_en.eq(self.result.ready)]
        return m
