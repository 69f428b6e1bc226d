"""Systolic MAC array: weight-stationary (WS) or output-stationary (OS).

The array has ``rows`` x ``cols`` processing elements (R x C).  Operands enter
at the array edges through skew registers, so that every PE sees the operands
of one step exactly ``i + j`` cycles after they were accepted; results leave
through deskew registers into an output FIFO.  The PEs never stall: the input
streams are throttled by a credit count against the FIFO's free space, so a
stalled result consumer loses nothing and the array needs no global clock
enable.

Integer semantics (the golden model, :func:`nnloom.sim.golden.gemm.gemm`, implements
the same words):

* operands are ``a_width`` / ``w_width`` bits, both signed (two's complement)
  or both unsigned; products are exact;
* every PE adds its product into an ``acc_width``-bit accumulator, in the
  order of the reduction index, either wrapping modulo ``2**acc_width`` or
  saturating to the accumulator's range after every addition.

Weight stationary (``dataflow="ws"``)
    PE (i, j) holds ``W[i][j]`` of an R x C weight tile.  ``weight`` beats are
    weight-tile rows (row 0 first, exactly R beats per tile); they load into
    shadow registers while the current tile computes.  Each ``act`` beat is
    one row of activations (element i meets weight row i); a beat with
    ``first`` set switches every PE, in step with the activation wavefront,
    to the tile in the shadow registers, and waits until all R of its rows
    have arrived.  Each ``act`` beat yields one ``result`` beat of C partial
    dot products, R + C cycles later.

Output stationary (``dataflow="os"``)
    PE (i, j) accumulates output (i, j) of an R x C output tile.  ``act`` and
    ``weight`` beats are consumed in pairs, one pair per reduction step k:
    ``act`` carries column k of the A tile (R values), ``weight`` row k of the
    B tile (C values).  A pair with ``last`` set ends the tile: each PE moves
    its finished sum into a drain chain and restarts from zero, so the next
    tile starts while the finished one drains.  Each tile yields R ``result``
    beats (tile row 0 first), the first R + C cycles after its last step.  A
    tile shorter than R steps waits for the drain chain (see
    :meth:`SystolicConfig.gemm_cycles`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .params import Config, ParamError, param

__all__ = ["SystolicConfig", "SystolicPE", "SystolicArray"]


@dataclass(frozen=True)
class SystolicConfig(Config):
    """Parameters of a systolic array; every derived figure is a property."""

    component = "systolic"

    rows: int = param(4, lo=1, hi=64, help="PE rows (R)")
    cols: int = param(4, lo=1, hi=64, help="PE columns (C)")
    a_width: int = param(8, lo=2, hi=16, help="activation width in bits")
    w_width: int = param(8, lo=2, hi=16, help="weight width in bits")
    acc_width: int = param(32, lo=4, hi=64, help="accumulator width in bits (>= a_width + w_width)")
    signed: bool = param(True, help="two's-complement operands and accumulators (else unsigned)")
    dataflow: str = param("ws", choices=("ws", "os"), help="weight- or output-stationary")
    overflow: str = param("wrap", choices=("wrap", "saturate"), help="accumulator overflow rule")
    result_fifo: bool = param(True, help="result FIFO with input credits (off: one output "
                                         "register, and result.ready must always be 1)")

    def validate(self):
        if self.acc_width < self.a_width + self.w_width:
            raise ParamError("acc_width", self.acc_width,
                             f"{self.a_width + self.w_width}..64 (at least a_width + w_width)")

    # -- shapes -----------------------------------------------------------------
    def _shape(self, width: int) -> Shape:
        return signed(width) if self.signed else unsigned(width)

    @property
    def a_shape(self) -> Shape:
        return self._shape(self.a_width)

    @property
    def w_shape(self) -> Shape:
        return self._shape(self.w_width)

    @property
    def acc_shape(self) -> Shape:
        return self._shape(self.acc_width)

    @property
    def act_layout(self) -> data.StructLayout:
        flag = "first" if self.dataflow == "ws" else "last"
        return data.StructLayout({"data": data.ArrayLayout(self.a_shape, self.rows), flag: 1})

    @property
    def weight_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(self.w_shape, self.cols)

    @property
    def result_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(self.acc_shape, self.cols)

    # -- timing -----------------------------------------------------------------
    @property
    def latency(self) -> int:
        """Cycles from accepting an ``act`` beat (WS) or a tile's last step (OS)
        to its first result beat being valid at the output: R + C."""
        return self.rows + self.cols

    @property
    def fifo_depth(self) -> int:
        """Result FIFO entries: enough that an always-ready consumer never
        throttles the inputs (R + C + 1 for WS, 2R + C for OS)."""
        if self.dataflow == "ws":
            return self.rows + self.cols + 1
        return 2 * self.rows + self.cols

    def tiles(self, m: int, k: int, n: int) -> int:
        """Number of array tiles an M x K x N GEMM is cut into."""
        if self.dataflow == "ws":
            return math.ceil(k / self.rows) * math.ceil(n / self.cols)
        return math.ceil(m / self.rows) * math.ceil(n / self.cols)

    def tile_interval(self, m: int, k: int) -> int:
        """Cycles between the starts of two back-to-back tiles.

        WS: a tile streams M activation rows; the next tile's R weight rows
        load meanwhile, so tiles start every max(M, R) cycles.  OS: a tile
        takes K steps; the drain chain needs R cycles, so max(K, R).
        """
        return max(m, self.rows) if self.dataflow == "ws" else max(k, self.rows)

    def gemm_cycles(self, m: int, k: int, n: int) -> int:
        """Cycles for an M x K x N GEMM on this array, fed at full rate with an
        always-ready result consumer.

        Counted from the cycle the first input beat is accepted to the cycle
        the last result beat is accepted, both included.  With T tiles:

        * WS: ``R + (T - 1) * max(M, R) + M + L`` (R cycles to preload the
          first weight tile, then one activation row per cycle, L = R + C);
        * OS: ``(T - 1) * max(K, R) + K - 1 + L + R`` (K steps per tile, the
          last tile's R rows drain after L cycles).
        """
        for name, v in (("m", m), ("k", k), ("n", n)):
            if v < 1:
                raise ValueError(f"{name} must be at least 1, not {v}")
        t = self.tiles(m, k, n)
        interval = self.tile_interval(m, k)
        if self.dataflow == "ws":
            return self.rows + (t - 1) * interval + m + self.latency
        return (t - 1) * interval + k - 1 + self.latency + self.rows

    def gemm_macs(self, m: int, k: int, n: int) -> int:
        return m * k * n

    def utilization(self, m: int, k: int, n: int) -> float:
        """Useful MACs / (R x C x cycles)."""
        return self.gemm_macs(m, k, n) / (self.rows * self.cols * self.gemm_cycles(m, k, n))


def _accumulate(cfg: SystolicConfig, acc, prod):
    """``acc + prod`` at the accumulator's width, wrapping or saturating."""
    total = acc + prod  # one bit wider than acc: exact
    if cfg.overflow == "wrap":
        return total.as_unsigned()[:cfg.acc_width].as_signed() if cfg.signed \
            else total[:cfg.acc_width]
    hi = Const((1 << (cfg.acc_width - 1)) - 1 if cfg.signed else (1 << cfg.acc_width) - 1)
    lo = Const(-(1 << (cfg.acc_width - 1)) if cfg.signed else 0)
    return Mux(total > hi, hi, Mux(total < lo, lo, total))[:cfg.acc_width].as_signed() \
        if cfg.signed else Mux(total > hi, hi, total)[:cfg.acc_width]


class SystolicPE(wiring.Component):
    """One processing element.

    Parameters: a :class:`SystolicConfig` (its ``dataflow``, widths,
    signedness and overflow rule apply; ``rows`` and ``cols`` do not).

    Members (WS): ``a_in``, ``first_in``, ``psum_in``, ``w_load``,
    ``w_data`` (In); ``a_out``, ``first_out``, ``psum_out`` (Out, registered).
    ``w_load`` writes ``w_data`` into the shadow register; ``first_in``
    makes the shadow weight active from this cycle on.

    Members (OS): ``a_in``, ``w_in``, ``last_in``, ``d_in`` (In); ``a_out``,
    ``w_out``, ``last_out``, ``d_out`` (Out, registered).  On ``last_in`` the
    finished sum goes to ``d_out`` and the accumulator restarts at zero;
    otherwise ``d_out`` passes the drain chain on (``d_in`` one cycle later).

    Latency: one cycle from any input to the matching output.
    """

    latency = 1

    def __init__(self, config: SystolicConfig):
        self.config = cfg = config
        if cfg.dataflow == "ws":
            members = {
                "a_in": In(cfg.a_shape), "first_in": In(1), "psum_in": In(cfg.acc_shape),
                "w_load": In(1), "w_data": In(cfg.w_shape),
                "a_out": Out(cfg.a_shape), "first_out": Out(1), "psum_out": Out(cfg.acc_shape),
            }
        else:
            members = {
                "a_in": In(cfg.a_shape), "w_in": In(cfg.w_shape), "last_in": In(1),
                "d_in": In(cfg.acc_shape),
                "a_out": Out(cfg.a_shape), "w_out": Out(cfg.w_shape), "last_out": Out(1),
                "d_out": Out(cfg.acc_shape),
            }
        super().__init__(members)

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        if cfg.dataflow == "ws":
            shadow = Signal(cfg.w_shape)
            active = Signal(cfg.w_shape)
            weight = Signal(cfg.w_shape)
            m.d.comb += weight.eq(Mux(self.first_in, shadow, active))
            with m.If(self.first_in):
                m.d.sync += active.eq(shadow)
            with m.If(self.w_load):
                m.d.sync += shadow.eq(self.w_data)
            m.d.sync += [
                self.a_out.eq(self.a_in),
                self.first_out.eq(self.first_in),
                self.psum_out.eq(_accumulate(cfg, self.psum_in, self.a_in * weight)),
            ]
        else:
            acc = Signal(cfg.acc_shape)
            drain = Signal(cfg.acc_shape)
            total = Signal(cfg.acc_shape)
            m.d.comb += total.eq(_accumulate(cfg, acc, self.a_in * self.w_in))
            m.d.sync += [
                self.a_out.eq(self.a_in),
                self.w_out.eq(self.w_in),
                self.last_out.eq(self.last_in),
                drain.eq(self.d_in),
            ]
            with m.If(self.last_in):
                m.d.sync += [self.d_out.eq(total), acc.eq(0)]
            with m.Else():
                m.d.sync += [self.d_out.eq(drain), acc.eq(total)]
        return m


class _OutputRegister:
    """The write side of the result FIFO, for ``result_fifo=False``."""

    def __init__(self, width: int):
        self.w_en = Signal(name="result_w_en")
        self.w_data = Signal(width, name="result_w_data")


def _delay(m: Module, name: str, value, cycles: int):
    """``value`` delayed by ``cycles`` registers (0: combinational)."""
    for n in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{n}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


class SystolicArray(wiring.Component):
    """R x C systolic MAC array with stream interfaces.

    Parameters: a :class:`SystolicConfig`.

    Members:
      ``act`` (In, stream of ``config.act_layout``): ``data`` (R operands)
      and ``first`` (WS) or ``last`` (OS).
      ``weight`` (In, stream of ``config.weight_layout``): C weights.
      ``result`` (Out, stream of ``config.result_layout``): C accumulators.

    See the module docstring for the dataflows and
    :meth:`SystolicConfig.gemm_cycles` for the cycle formula.
    """

    def __init__(self, config: SystolicConfig):
        if not isinstance(config, SystolicConfig):
            raise TypeError(f"config must be a SystolicConfig, not {config!r}")
        self.config = config
        super().__init__({
            "act": In(stream.Signature(config.act_layout)),
            "weight": In(stream.Signature(config.weight_layout)),
            "result": Out(stream.Signature(config.result_layout)),
        })

    @property
    def latency(self) -> int:
        return self.config.latency

    def elaborate(self, platform):
        cfg = self.config
        R, C = cfg.rows, cfg.cols
        m = Module()

        pes = [[SystolicPE(cfg) for _ in range(C)] for _ in range(R)]
        for i in range(R):
            for j in range(C):
                m.submodules[f"pe_{i}_{j}"] = pes[i][j]

        if cfg.result_fifo:
            out_fifo = m.submodules.out_fifo = fifo.SyncFIFO(
                width=C * cfg.acc_width, depth=cfg.fifo_depth)
            m.d.comb += [
                self.result.valid.eq(out_fifo.r_rdy),
                self.result.payload.eq(out_fifo.r_data),
                out_fifo.r_en.eq(self.result.ready),
            ]
        else:
            # Consumer always ready: one register stage in place of the FIFO
            # (same latency as a write into and a read out of the FIFO).
            out_fifo = _OutputRegister(C * cfg.acc_width)
            m.d.sync += [self.result.valid.eq(out_fifo.w_en),
                         self.result.payload.as_value().eq(out_fifo.w_data)]
        pop = self.result.valid & self.result.ready

        # Results accepted at the input but not yet taken from the FIFO
        # (without the FIFO nothing waits: the count stays at zero).
        outstanding = Signal(range(cfg.fifo_depth + 1))
        produced = Signal(range(R + 1))  # results the accepted input will yield
        if cfg.result_fifo:
            m.d.sync += outstanding.eq(outstanding + produced - pop)

        fire = Signal()
        m.d.comb += fire.eq(self.act.valid & self.act.ready)

        if cfg.dataflow == "ws":
            self._elaborate_ws(m, pes, fire, outstanding, produced, out_fifo)
        else:
            self._elaborate_os(m, pes, fire, outstanding, produced, out_fifo)
        return m

    def _elaborate_ws(self, m, pes, fire, outstanding, produced, out_fifo):
        cfg = self.config
        R, C = cfg.rows, cfg.cols
        act, weight = self.act, self.weight

        # Weight rows waiting in the shadow registers for the next tile.
        loaded = Signal(range(R + 1))
        commit = Signal()
        m.d.comb += [
            act.ready.eq((outstanding < cfg.fifo_depth)
                         & (~act.payload.first | (loaded == R))),
            commit.eq(fire & act.payload.first),
            weight.ready.eq((loaded != R) | commit),
            produced.eq(fire),
        ]
        w_fire = weight.valid & weight.ready
        w_row = Signal(range(R))
        m.d.comb += w_row.eq(Mux(commit, 0, loaded))
        with m.If(commit):
            m.d.sync += loaded.eq(w_fire)
        with m.Elif(w_fire):
            m.d.sync += loaded.eq(loaded + 1)

        # Left edge: activation row i is skewed by i cycles; bubbles carry zeros.
        for i in range(R):
            a = Signal(cfg.a_shape, name=f"a_edge_{i}")
            f = Signal(name=f"first_edge_{i}")
            m.d.comb += [a.eq(Mux(fire, act.payload.data[i], 0)), f.eq(commit)]
            m.d.comb += [pes[i][0].a_in.eq(_delay(m, f"a_skew{i}", a, i)),
                         pes[i][0].first_in.eq(_delay(m, f"first_skew{i}", f, i))]
            for j in range(1, C):
                m.d.comb += [pes[i][j].a_in.eq(pes[i][j - 1].a_out),
                             pes[i][j].first_in.eq(pes[i][j - 1].first_out)]

        # Top edge: weight column j is skewed by j cycles, then written into
        # the shadow register of the addressed row.
        for j in range(C):
            wd = Signal(cfg.w_shape, name=f"w_edge_{j}")
            we = Signal(name=f"we_edge_{j}")
            wr = Signal(range(R), name=f"wrow_edge_{j}")
            m.d.comb += [wd.eq(weight.payload[j]), we.eq(w_fire), wr.eq(w_row)]
            wd, we, wr = (_delay(m, f"w_skew{j}", wd, j), _delay(m, f"we_skew{j}", we, j),
                          _delay(m, f"wrow_skew{j}", wr, j))
            for i in range(R):
                m.d.comb += [pes[i][j].w_data.eq(wd), pes[i][j].w_load.eq(we & (wr == i))]
                m.d.comb += pes[i][j].psum_in.eq(pes[i - 1][j].psum_out if i else 0)

        # Bottom edge: deskew column j by C - 1 - j cycles into the FIFO.
        self._bottom_edge(m, [pes[R - 1][j].psum_out for j in range(C)], out_fifo)
        m.d.comb += out_fifo.w_en.eq(_delay(m, "valid_pipe", fire, R + C - 1))

    def _elaborate_os(self, m, pes, fire, outstanding, produced, out_fifo):
        cfg = self.config
        R, C = cfg.rows, cfg.cols
        act, weight = self.act, self.weight

        # A tile's last step needs room for its R results and a drain chain
        # that has finished the previous tile (R cycles between last steps).
        since_last = Signal(range(R + 1), init=R)
        last_ok = Signal()
        m.d.comb += last_ok.eq((outstanding <= cfg.fifo_depth - R) & (since_last == R))
        m.d.comb += [
            act.ready.eq(weight.valid & (~act.payload.last | last_ok)),
            weight.ready.eq(act.valid & (~act.payload.last | last_ok)),
        ]
        last_fire = fire & act.payload.last
        m.d.comb += produced.eq(Mux(last_fire, R, 0))
        with m.If(last_fire):
            m.d.sync += since_last.eq(1)
        with m.Elif(since_last != R):
            m.d.sync += since_last.eq(since_last + 1)

        # Tile row r goes to array row R - 1 - r, so that the drain chain,
        # which empties bottom row first, emits tile row 0 first.
        for i in range(R):
            a = Signal(cfg.a_shape, name=f"a_edge_{i}")
            lst = Signal(name=f"last_edge_{i}")
            m.d.comb += [a.eq(Mux(fire, act.payload.data[R - 1 - i], 0)), lst.eq(last_fire)]
            m.d.comb += [pes[i][0].a_in.eq(_delay(m, f"a_skew{i}", a, i)),
                         pes[i][0].last_in.eq(_delay(m, f"last_skew{i}", lst, i))]
            for j in range(1, C):
                m.d.comb += [pes[i][j].a_in.eq(pes[i][j - 1].a_out),
                             pes[i][j].last_in.eq(pes[i][j - 1].last_out)]
        for j in range(C):
            w = Signal(cfg.w_shape, name=f"w_edge_{j}")
            m.d.comb += w.eq(Mux(fire, weight.payload[j], 0))
            m.d.comb += pes[0][j].w_in.eq(_delay(m, f"w_skew{j}", w, j))
            m.d.comb += pes[0][j].d_in.eq(0)
            for i in range(1, R):
                m.d.comb += [pes[i][j].w_in.eq(pes[i - 1][j].w_out),
                             pes[i][j].d_in.eq(pes[i - 1][j].d_out)]

        self._bottom_edge(m, [pes[R - 1][j].d_out for j in range(C)], out_fifo)
        # R result rows per tile, starting R + C - 1 cycles after its last step.
        start = _delay(m, "drain_pipe", last_fire, R + C - 1)
        burst = Signal(range(R), name="drain_burst")
        with m.If(start):
            m.d.sync += burst.eq(R - 1)
        with m.Elif(burst != 0):
            m.d.sync += burst.eq(burst - 1)
        m.d.comb += out_fifo.w_en.eq(start | (burst != 0))

    def _bottom_edge(self, m, column_outputs, out_fifo):
        cfg = self.config
        C = cfg.cols
        row = Signal(cfg.result_layout)
        for j, value in enumerate(column_outputs):
            m.d.comb += row[j].eq(_delay(m, f"deskew{j}", value, C - 1 - j))
        m.d.comb += out_fifo.w_data.eq(row.as_value())
