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
    dot products, L = :attr:`SystolicConfig.latency` cycles later.

Output stationary (``dataflow="os"``)
    PE (i, j) accumulates output (i, j) of an R x C output tile.  ``act`` and
    ``weight`` beats are consumed in pairs, one pair per reduction step k:
    ``act`` carries column k of the A tile (R values), ``weight`` row k of the
    B tile (C values).  A pair with ``last`` set ends the tile: each PE moves
    its finished sum into a drain chain and restarts from zero, so the next
    tile starts while the finished one drains.  Each tile yields R ``result``
    beats (tile row 0 first), the first L cycles after its last step.  A
    tile shorter than R steps waits for the drain chain (see
    :meth:`SystolicConfig.gemm_cycles`).

Multiplier (``multiplier``)
    ``"comb"`` (the default, and the accelerator's): each PE multiplies and
    adds in one cycle; L = R + C.  Any other value is the pipelined array for
    fast clocks: each PE's product comes from a
    :class:`nnloom.hw.dsp.RegisteredMultiplier` (``MULT_LATENCY`` = 3
    cycles; ``"ecp5"`` MULT18X18D, ``"ice40"`` SB_MAC16, ``"portable"``
    fabric registers, ``"auto"`` by the platform), row 0 and column 0 get an
    input register like the other skew stages (``edge_latency`` = 1), the
    handshake reads registered flags (FIFO room, weights loaded, drain chain
    free), the result FIFO's write side comes from registers and OS sums
    leave from the accumulator register (``acc_latency`` = 1); L = R + C + 4
    (WS) or R + C + 5 (OS).  Same results and the same cycle formulas with
    the larger L.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .dsp import LOWERINGS, MULT_LATENCY, RegisteredMultiplier, lowering_for, unshared_register
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
    multiplier: str = param("comb", choices=("comb",) + LOWERINGS,
                            help="comb: the PE's one-cycle multiply-add; else a registered "
                                 "multiplier (hw/dsp.py) and registered edges, latency + 4 "
                                 "(WS) or + 5 (OS): "
                                 "portable, ecp5 (MULT18X18D), ice40 (SB_MAC16), auto (by the "
                                 "platform)")

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
    def mult_latency(self) -> int:
        """Cycles the PE's multiplier adds: 0 for ``multiplier="comb"`` (the
        product is part of the one-cycle multiply-add), else
        :data:`nnloom.hw.dsp.MULT_LATENCY` (operand and product registers)."""
        return 0 if self.multiplier == "comb" else MULT_LATENCY

    @property
    def edge_latency(self) -> int:
        """1 with a registered multiplier, else 0: row 0 and column 0 get an
        input register too (the edge skews are i + 1 and j + 1 registers), so
        the handshake logic drives registers only, never a PE."""
        return 0 if self.multiplier == "comb" else 1

    @property
    def acc_latency(self) -> int:
        """1 for OS with a registered multiplier, else 0: a finished sum
        enters the drain chain from the accumulator register, a cycle after
        the adder produced it (so that the adder feeds only its own
        register)."""
        return int(self.multiplier != "comb" and self.dataflow == "os")

    @property
    def latency(self) -> int:
        """Cycles from accepting an ``act`` beat (WS) or a tile's last step (OS)
        to its first result beat being valid at the output: R + C +
        ``mult_latency`` + ``edge_latency`` + ``acc_latency`` (R + C with
        ``multiplier="comb"``; with a registered multiplier R + C + 4 for
        WS, R + C + 5 for OS)."""
        return (self.rows + self.cols + self.mult_latency + self.edge_latency
                + self.acc_latency)

    @property
    def fifo_depth(self) -> int:
        """Result FIFO entries: enough that an always-ready consumer never
        throttles the inputs (L + 1 for WS, L + R for OS, L = ``latency``)."""
        if self.dataflow == "ws":
            return self.latency + 1
        return self.latency + self.rows

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
          first weight tile, then one activation row per cycle, L =
          :attr:`latency`);
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
    With a registered multiplier, OS also has ``valid_in`` (In) and
    ``valid_out`` (Out, registered): ``a_in`` counts only with ``valid_in``
    set (a bubble adds 0); the bit travels along the row with ``a``.

    Latency: one cycle from ``psum_in`` / ``d_in`` to ``psum_out`` /
    ``d_out`` and from an operand to its copy at ``a_out``, ``w_out``,
    ``first_out``, ``last_out``; :attr:`latency` = ``1 +
    config.mult_latency`` cycles from the operands (and ``first_in`` /
    ``last_in``) to their product's sum at ``psum_out`` (WS) or in the
    accumulator (OS).  With a registered multiplier (``config.multiplier``
    not ``"comb"``) the product reaches the adder ``mult_latency`` cycles
    after its operands, and the psum chain still advances one PE per cycle,
    in step with the operands: the product of the operands a PE saw at cycle
    t meets the partial sum the PE above produced from its operands of cycle
    t - 1.  OS (registered multiplier): the accumulator takes every sum; the
    cycle after the tile's last product reached the adder (``last_in``
    delayed by ``mult_latency + 1`` inside the PE), ``d_out`` takes the
    finished sum from the accumulator and the adder restarts from zero, so
    the sum reaches ``d_out`` ``latency + 1`` cycles after the last operands
    (``config.acc_latency``).
    """

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
            if cfg.multiplier != "comb":
                members.update(valid_in=In(1), valid_out=Out(1))
        super().__init__(members)

    @property
    def latency(self) -> int:
        """Cycles from the operands to their product's sum: 1 + ``mult_latency``."""
        return 1 + self.config.mult_latency

    def _product(self, m, a, w):
        """``a * w``: combinational, or through a :class:`RegisteredMultiplier`
        (``config.mult_latency`` cycles later)."""
        cfg = self.config
        if cfg.multiplier == "comb":
            return a * w
        mult = m.submodules.mult = RegisteredMultiplier(cfg.a_shape, cfg.w_shape,
                                                        lowering=cfg.multiplier)
        m.d.comb += [mult.a.eq(a), mult.b.eq(w)]
        return mult.p

    def _control(self, m, platform, value, name: str, cycles: int = 1):
        """``value`` (the one-bit ``first`` / ``last`` pulse) delayed by
        ``cycles`` registers.  With a DSP lowering these are
        :func:`nnloom.hw.dsp.unshared_register`: every PE of an
        anti-diagonal holds the same pulse, and merged into one register it
        would have to reach all of them."""
        cfg = self.config
        if cfg.multiplier == "comb":
            return _delay(m, name, value, cycles)
        low = lowering_for(platform) if cfg.multiplier == "auto" else cfg.multiplier
        for n in range(cycles):
            value = unshared_register(m, value, low if low in ("ecp5", "ice40") else "portable",
                                      name=f"{name}_d{n}")
        return value

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
            if cfg.multiplier == "comb":
                m.d.sync += [
                    self.a_out.eq(self.a_in),
                    self.first_out.eq(self.first_in),
                    self.psum_out.eq(_accumulate(cfg, self.psum_in, self.a_in * weight)),
                ]
            else:
                m.d.comb += self.first_out.eq(self._control(m, platform, self.first_in, "first"))
                m.d.sync += [
                    self.a_out.eq(self.a_in),
                    self.psum_out.eq(_accumulate(cfg, self.psum_in,
                                                 self._product(m, self.a_in, weight))),
                ]
        elif cfg.multiplier == "comb":
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
        else:
            # Pipelined OS: the accumulator always takes the adder's sum; the
            # cycle after a tile's last product reached the adder
            # (``restart``, ``last_in`` delayed by mult_latency + 1), the
            # finished sum moves from the accumulator register into the
            # drain chain and the adder starts again from zero.  The adder
            # then feeds only its own register (``config.acc_latency``: one
            # cycle more than ``d_out <= total``).
            acc = Signal(cfg.acc_shape)
            drain = Signal(cfg.acc_shape)
            restart = self._control(m, platform, self.last_in, "last_mult", cfg.mult_latency + 1)
            product = self._product(m, Mux(self.valid_in, self.a_in, 0), self.w_in)
            m.d.comb += [
                self.last_out.eq(self._control(m, platform, self.last_in, "last")),
                self.valid_out.eq(self._control(m, platform, self.valid_in, "valid")),
            ]
            m.d.sync += [
                self.a_out.eq(self.a_in),
                self.w_out.eq(self.w_in),
                drain.eq(self.d_in),
                acc.eq(_accumulate(cfg, Mux(restart, 0, acc), product)),
                self.d_out.eq(Mux(restart, acc, drain)),
            ]
        return m


class _ResultFIFO(wiring.Component):
    """The result FIFO of the pipelined array (``edge_latency`` 1): the ports
    and timing of ``amaranth.lib.fifo.SyncFIFO`` (a write is readable the next
    cycle), but the write is not gated by the FIFO's level: the array's
    credits never let it overflow, so the write enable and address go from
    registers straight to every column of the memory (distributed RAM)
    instead of through the level comparison.  ``depth`` is rounded up to a
    power of two so that the pointers wrap by themselves."""

    def __init__(self, width: int, depth: int):
        self.width = width
        self.depth = 1 << (depth - 1).bit_length()
        super().__init__({"w_en": In(1), "w_data": In(width), "r_en": In(1),
                          "r_rdy": Out(1), "r_data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = storage = memory.Memory(shape=self.width, depth=self.depth,
                                                       init=[])
        wp = storage.write_port()
        rp = storage.read_port(domain="comb")
        w_ptr = Signal(range(self.depth))
        r_ptr = Signal(range(self.depth))
        level = Signal(range(self.depth + 1))
        pop = Signal()
        m.d.comb += [wp.en.eq(self.w_en), wp.addr.eq(w_ptr), wp.data.eq(self.w_data),
                     rp.addr.eq(r_ptr), self.r_data.eq(rp.data),
                     self.r_rdy.eq(level != 0), pop.eq(self.r_en & self.r_rdy)]
        m.d.sync += level.eq(level + self.w_en - pop)
        with m.If(self.w_en):
            m.d.sync += w_ptr.eq(w_ptr + 1)
        with m.If(pop):
            m.d.sync += r_ptr.eq(r_ptr + 1)
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


def _registered_at_most(m: Module, count, limit: int, steps) -> Signal:
    """A register equal to ``count <= limit`` (the credit check against the
    result FIFO, for the pipelined array).

    ``count`` is a register that starts at 0 and moves each cycle by the sum
    of the ``d`` of the ``steps`` ``(condition, d)`` whose condition holds.
    The flag is loaded with the comparison for the count's next value, chosen
    by the conditions among comparisons of the current count made in
    parallel, so the handshake that reads it never waits for an adder and a
    comparator in series."""
    ok = Signal(init=1, name=f"room_{limit}")
    conds = [c for c, _ in steps]
    with m.Switch(Cat(*conds)):
        for sel in range(1 << len(steps)):
            delta = sum(d for n, (_, d) in enumerate(steps) if sel >> n & 1)
            with m.Case(sel):
                m.d.sync += ok.eq(count <= limit - delta)
    return ok


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
                width=C * cfg.acc_width, depth=cfg.fifo_depth) if not cfg.edge_latency \
                else _ResultFIFO(C * cfg.acc_width, cfg.fifo_depth)
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
            self._elaborate_ws(m, pes, fire, outstanding, produced, out_fifo, pop)
        else:
            self._elaborate_os(m, pes, fire, outstanding, produced, out_fifo, pop)
        return m

    def _elaborate_ws(self, m, pes, fire, outstanding, produced, out_fifo, pop):
        cfg = self.config
        R, C = cfg.rows, cfg.cols
        act, weight = self.act, self.weight

        # Weight rows waiting in the shadow registers for the next tile.
        loaded = Signal(range(R + 1))
        commit = Signal()
        if not cfg.edge_latency:
            room = outstanding < cfg.fifo_depth
        elif cfg.result_fifo:
            room = _registered_at_most(m, outstanding, cfg.fifo_depth - 1,
                                       [(fire, 1), (pop, -1)])
        else:
            room = Const(1)
        if cfg.edge_latency:
            # pipelined: ``loaded == R`` kept in a register of its own
            full = Signal(name="weights_full")
        else:
            full = loaded == R
        m.d.comb += [
            act.ready.eq(room & (~act.payload.first | full)),
            commit.eq(fire & act.payload.first),
            weight.ready.eq((~full if cfg.edge_latency else loaded != R) | commit),
            produced.eq(fire),
        ]
        w_fire = weight.valid & weight.ready
        # pipelined: one bit at R = 1 (no zero-width wires through its skew
        # registers); the combinational array keeps its Verilog as it was
        rows_range = range(max(R, 2) if cfg.edge_latency else R)
        w_row = Signal(rows_range)
        m.d.comb += w_row.eq(Mux(commit, 0, loaded))
        with m.If(commit):
            m.d.sync += loaded.eq(w_fire)
            if cfg.edge_latency:
                m.d.sync += full.eq(w_fire & (R == 1))
        with m.Elif(w_fire):
            m.d.sync += loaded.eq(loaded + 1)
            if cfg.edge_latency:
                m.d.sync += full.eq(loaded == R - 1)

        # Left edge: activation row i is skewed by i (+ edge) cycles; bubbles
        # carry zeros (in the pipelined array, whatever was on the port: a
        # bubble's products stay in its own wavefront, whose result is never
        # written, so the operands need no gating by ``fire``).
        e = cfg.edge_latency
        for i in range(R):
            a = Signal(cfg.a_shape, name=f"a_edge_{i}")
            f = Signal(name=f"first_edge_{i}")
            m.d.comb += [a.eq(act.payload.data[i] if e else Mux(fire, act.payload.data[i], 0)),
                         f.eq(commit)]
            m.d.comb += [pes[i][0].a_in.eq(_delay(m, f"a_skew{i}", a, i + e)),
                         pes[i][0].first_in.eq(_delay(m, f"first_skew{i}", f, i + e))]
            for j in range(1, C):
                m.d.comb += [pes[i][j].a_in.eq(pes[i][j - 1].a_out),
                             pes[i][j].first_in.eq(pes[i][j - 1].first_out)]

        # Top edge: weight column j is skewed by j (+ edge) cycles, then
        # written into the shadow register of the addressed row.
        for j in range(C):
            wd = Signal(cfg.w_shape, name=f"w_edge_{j}")
            we = Signal(name=f"we_edge_{j}")
            wr = Signal(rows_range, name=f"wrow_edge_{j}")
            m.d.comb += [wd.eq(weight.payload[j]), we.eq(w_fire), wr.eq(w_row)]
            wd, we, wr = (_delay(m, f"w_skew{j}", wd, j + e),
                          _delay(m, f"we_skew{j}", we, j + e),
                          _delay(m, f"wrow_skew{j}", wr, j + e))
            for i in range(R):
                m.d.comb += [pes[i][j].w_data.eq(wd), pes[i][j].w_load.eq(we & (wr == i))]
                m.d.comb += pes[i][j].psum_in.eq(pes[i - 1][j].psum_out if i else 0)

        # Bottom edge: deskew column j by C - 1 - j cycles into the FIFO.
        self._bottom_edge(m, [pes[R - 1][j].psum_out for j in range(C)], out_fifo)
        m.d.comb += out_fifo.w_en.eq(_delay(m, "valid_pipe", fire, cfg.latency - 1))

    def _elaborate_os(self, m, pes, fire, outstanding, produced, out_fifo, pop):
        cfg = self.config
        R, C = cfg.rows, cfg.cols
        act, weight = self.act, self.weight

        # A tile's last step needs room for its R results and a drain chain
        # that has finished the previous tile (R cycles between last steps).
        since_last = Signal(range(R + 1), init=R)
        last_ok = Signal()
        room = Signal(name="room") if cfg.edge_latency else outstanding <= cfg.fifo_depth - R
        # pipelined: ``since_last == R`` kept in a register of its own
        drained = Signal(init=1, name="drained") if cfg.edge_latency else since_last == R
        m.d.comb += last_ok.eq(room & drained)
        m.d.comb += [
            act.ready.eq(weight.valid & (~act.payload.last | last_ok)),
            weight.ready.eq(act.valid & (~act.payload.last | last_ok)),
        ]
        last_fire = fire & act.payload.last
        if cfg.edge_latency:
            m.d.comb += room.eq(_registered_at_most(m, outstanding, cfg.fifo_depth - R,
                                                    [(last_fire, R), (pop, -1)])
                                if cfg.result_fifo else 1)
        m.d.comb += produced.eq(Mux(last_fire, R, 0))
        with m.If(last_fire):
            m.d.sync += since_last.eq(1)
            if cfg.edge_latency:
                m.d.sync += drained.eq(R == 1)
        with m.Elif(~drained if cfg.edge_latency else since_last != R):
            m.d.sync += since_last.eq(since_last + 1)
            if cfg.edge_latency:
                m.d.sync += drained.eq(since_last == R - 1)

        # Tile row r goes to array row R - 1 - r, so that the drain chain,
        # which empties bottom row first, emits tile row 0 first.  Skews: i
        # and j registers (+ edge).
        e = cfg.edge_latency
        for i in range(R):
            a = Signal(cfg.a_shape, name=f"a_edge_{i}")
            lst = Signal(name=f"last_edge_{i}")
            if e:
                # Pipelined: the operands enter ungated and a valid bit (a
                # copy of ``fire``) travels with the activations, through
                # the skew like ``last`` and then from PE to PE; each PE
                # zeroes a bubble's activation (the accumulators add every
                # cycle: a bubble must add 0).  So ``fire`` drives one
                # register (the rows' first skew registers are equal, and
                # Yosys merges them), not every operand bit.
                m.d.comb += a.eq(act.payload.data[R - 1 - i])
                m.d.comb += pes[i][0].valid_in.eq(_delay(m, f"valid_skew{i}", fire, i + e))
                for j in range(1, C):
                    m.d.comb += pes[i][j].valid_in.eq(pes[i][j - 1].valid_out)
            else:
                m.d.comb += a.eq(Mux(fire, act.payload.data[R - 1 - i], 0))
            m.d.comb += lst.eq(last_fire)
            m.d.comb += [pes[i][0].a_in.eq(_delay(m, f"a_skew{i}", a, i + e)),
                         pes[i][0].last_in.eq(_delay(m, f"last_skew{i}", lst, i + e))]
            for j in range(1, C):
                m.d.comb += [pes[i][j].a_in.eq(pes[i][j - 1].a_out),
                             pes[i][j].last_in.eq(pes[i][j - 1].last_out)]
        for j in range(C):
            w = Signal(cfg.w_shape, name=f"w_edge_{j}")
            m.d.comb += w.eq(weight.payload[j] if e else Mux(fire, weight.payload[j], 0))
            m.d.comb += pes[0][j].w_in.eq(_delay(m, f"w_skew{j}", w, j + e))
            m.d.comb += pes[0][j].d_in.eq(0)
            for i in range(1, R):
                m.d.comb += [pes[i][j].w_in.eq(pes[i - 1][j].w_out),
                             pes[i][j].d_in.eq(pes[i - 1][j].d_out)]

        self._bottom_edge(m, [pes[R - 1][j].d_out for j in range(C)], out_fifo)
        # R result rows per tile, starting L - 1 = R + C - 1 + mult_latency
        # cycles after its last step.
        pre = _delay(m, "drain_pipe", last_fire, cfg.latency - 2)
        start = Signal(name=f"drain_pipe_d{cfg.latency - 2}")
        m.d.sync += start.eq(pre)
        burst = Signal(range(max(R, 2) if cfg.edge_latency else R), name="drain_burst")
        with m.If(start):
            m.d.sync += burst.eq(R - 1)
        with m.Elif(burst != 0):
            m.d.sync += burst.eq(burst - 1)
        if cfg.edge_latency:
            # The write enable as a register: its next value from ``pre``
            # and ``burst`` (a start never overlaps a burst: last steps are
            # at least R cycles apart).
            w_en = Signal(name="drain_w_en")
            m.d.sync += w_en.eq(pre | (start & (R > 1)) | ((burst > 1) if R > 2 else 0))
            m.d.comb += out_fifo.w_en.eq(w_en)
        else:
            m.d.comb += out_fifo.w_en.eq(start | (burst != 0))

    def _bottom_edge(self, m, column_outputs, out_fifo):
        cfg = self.config
        C = cfg.cols
        row = Signal(cfg.result_layout)
        for j, value in enumerate(column_outputs):
            m.d.comb += row[j].eq(_delay(m, f"deskew{j}", value, C - 1 - j))
        m.d.comb += out_fifo.w_data.eq(row.as_value())
