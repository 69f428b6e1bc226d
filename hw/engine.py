"""The compute core's engine interface, and a second engine behind it.

The accelerator's core (:mod:`nnloom.hw.accel_core`) feeds its engine and
drains it through three streams, whatever the engine is
(:class:`EngineSignature`):

* ``weight`` (In): words of ``cols`` int8 weights, ``rows`` words per weight
  tile (word i: the weights of input lane i for the ``cols`` outputs), tile
  after tile;
* ``act`` (In): ``data``, ``rows`` int8 activations of one pixel, and
  ``first``, set on a tile's first pixel; a pixel with ``first`` switches
  the engine to the tile whose ``rows`` weight words it has received last;
* ``result`` (Out, always accepted: ``ready`` is tied high): ``cols`` signed
  sums ``sum_i act[i] * w[i][j]`` of ``psum_width`` bits, one per pixel, in
  pixel order.

and the engine's timing contract, which the cycle model
(:meth:`~nnloom.hw.accel_core.AccelConfig.layer_cycles`) reads:

* ``act.ready`` is low only on a ``first`` pixel whose tile's ``rows``
  weight words have not all arrived; ``weight.ready`` is low only while a
  complete next tile waits for its ``first`` pixel;
* a pixel's result is valid ``latency`` cycles after the pixel is accepted.

So a tile of M pixels takes ``max(M, rows)`` cycles when the weight words
stream at one per cycle.  :class:`~nnloom.hw.systolic.SystolicArray`
(weight-stationary, ``result_fifo=False``) is the first engine;
:class:`DotEngine` is a second one: no systolic skew, one dot product per
output lane in a single stage, delayed to the same latency, so that the
core, its cycle model and the tests run unchanged on either.
:func:`check_engine` holds an engine's ports and latency to the interface.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["EngineSignature", "DotEngine", "check_engine", "systolic_engine"]


class EngineSignature(wiring.Signature):
    """The three streams of the engine interface (see the module docstring),
    from the engine's side."""

    def __init__(self, rows: int, cols: int, psum_width: int):
        self.rows, self.cols, self.psum_width = rows, cols, psum_width
        super().__init__({
            "act": In(stream.Signature(data.StructLayout(
                {"data": data.ArrayLayout(signed(8), rows), "first": 1}))),
            "weight": In(stream.Signature(data.ArrayLayout(signed(8), cols))),
            "result": Out(stream.Signature(data.ArrayLayout(signed(psum_width), cols))),
        })


def check_engine(engine, rows: int, cols: int, psum_width: int, latency: int) -> None:
    """Raise :class:`TypeError` unless ``engine`` has the interface's ports
    (:class:`EngineSignature` with these sizes) and ``latency``."""
    want = EngineSignature(rows, cols, psum_width).members
    have = engine.signature.members
    for name in want:
        if name not in have or have[name] != want[name]:
            raise TypeError(f"engine {type(engine).__name__}: port {name} is "
                            f"{have[name] if name in have else 'missing'}, the engine interface "
                            f"needs {want[name]}")
    if engine.latency != latency:
        raise TypeError(f"engine {type(engine).__name__}: latency {engine.latency}, the core's "
                        f"cycle model needs {latency}")


def systolic_engine(cfg):
    """The default engine of an :class:`~nnloom.hw.accel_core.AccelConfig`:
    its weight-stationary systolic array (``cfg.systolic``)."""
    from .systolic import SystolicArray

    return SystolicArray(cfg.systolic)


class DotEngine(wiring.Component):
    """A weight-stationary engine without a systolic array: ``rows`` x
    ``cols`` multipliers summed per output lane in one stage, the result
    delayed to ``latency`` cycles.  It keeps the interface's timing contract
    (a shadow weight tile loads while the current one computes)."""

    def __init__(self, rows: int, cols: int, psum_width: int, latency: int):
        if latency < 1:
            raise ValueError(f"latency must be at least 1, not {latency}")
        self.rows, self.cols, self.psum_width, self.latency = rows, cols, psum_width, latency
        super().__init__(EngineSignature(rows, cols, psum_width))

    @classmethod
    def for_config(cls, cfg) -> "DotEngine":
        """The engine an :class:`~nnloom.hw.accel_core.AccelConfig`'s core
        (and cycle model) expects: P x P, its column-sum width and latency."""
        return cls(cfg.size, cfg.size, cfg.psum_width, cfg.systolic.latency)

    def elaborate(self, platform):
        R, C, W = self.rows, self.cols, self.psum_width
        m = Module()
        act, weight, result = self.act, self.weight, self.result
        shadow = Signal(data.ArrayLayout(data.ArrayLayout(signed(8), C), R))
        active = Signal.like(shadow)
        loaded = Signal(range(R + 1))       # shadow rows received for the next tile
        fire, commit = Signal(), Signal()
        m.d.comb += [
            act.ready.eq(~act.payload.first | (loaded == R)),
            fire.eq(act.valid & act.ready),
            commit.eq(fire & act.payload.first),
            weight.ready.eq((loaded != R) | commit),
        ]
        w_fire = weight.valid & weight.ready
        row = Mux(commit, 0, loaded)
        with m.If(w_fire):
            m.d.sync += shadow.as_value().word_select(row, 8 * C).eq(weight.payload.as_value())
        with m.If(commit):
            m.d.sync += [active.eq(shadow), loaded.eq(w_fire)]
        with m.Elif(w_fire):
            m.d.sync += loaded.eq(loaded + 1)
        # a tile's first pixel already uses the tile it switches to
        use = Signal.like(shadow)
        m.d.comb += use.eq(Mux(commit, shadow, active))
        sums = Signal(data.ArrayLayout(signed(W), C))
        for j in range(C):
            m.d.comb += sums[j].eq(sum(act.payload.data[i] * use[i][j] for i in range(R)))
        # latency stages: valid and sums, the first one takes the product
        valid, value = fire, sums.as_value()
        for k in range(self.latency):
            v, d = Signal(name=f"valid_d{k}"), Signal(len(value), name=f"sums_d{k}")
            m.d.sync += [v.eq(valid), d.eq(value)]
            valid, value = v, d
        m.d.comb += [result.valid.eq(valid), result.payload.as_value().eq(value)]
        return m
