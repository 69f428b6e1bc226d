"""cocotb drivers and monitors for ``amaranth.lib.stream`` ports.

Amaranth flattens a stream member ``act`` into ``act__valid``,
``act__ready`` and ``act__payload`` in the emitted Verilog; payloads are
packed and unpacked with the component's own layouts (:mod:`nnloom.sim.packing`).

Timing convention, the same on every simulator: inputs change on the falling
edge of the clock; handshakes are sampled in the read-only phase after that,
so a transfer recorded in cycle ``n`` happens at the rising edge that ends
cycle ``n``.  Cycle numbers count falling edges since the clock started
(:meth:`Clocked.cycle`).

Back-pressure: a :class:`StreamSource` with ``valid_prob < 1`` inserts random
idle cycles between beats (a beat, once offered, stays offered until taken,
as the stream rules require); a :class:`StreamSink` with ``ready_prob < 1``
drops ready at random.  Both draw from a seeded ``random.Random`` so that a
failure can be replayed from the seed printed in the test log.
"""

from __future__ import annotations

import random
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from nnloom.sim.packing import pack, unpack

__all__ = ["Clocked", "StreamSource", "StreamSink"]


class Clocked:
    """Starts the clock of ``dut`` and numbers its cycles."""

    def __init__(self, dut, *, clk: str = "clk", rst: str = "rst", period_ns: int = 10):
        self.dut = dut
        self.clk = getattr(dut, clk)
        self.rst = getattr(dut, rst, None)
        self.period_ns = period_ns
        Clock(self.clk, period_ns, unit="ns").start(start_high=True)

    def cycle(self) -> int:
        """Index of the current cycle (falling edges seen so far, minus one)."""
        return int(get_sim_time("ns") // self.period_ns)

    async def reset(self, cycles: int = 2):
        if self.rst is not None:
            self.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.clk)
        await FallingEdge(self.clk)
        if self.rst is not None:
            self.rst.value = 0

    async def cycles(self, n: int):
        for _ in range(n):
            await FallingEdge(self.clk)


class _StreamEnd:
    """The three flattened signals of stream ``name`` and a cycle log."""

    def __init__(self, clocked: Clocked, name: str, layout, rng: random.Random):
        dut = clocked.dut
        self.clocked = clocked
        self.layout = layout
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.rng = rng
        self.fired: list[int] = []


class StreamSource(_StreamEnd):
    """Offers beats on stream ``name`` of ``dut``.

    ``layout`` is the payload layout (from the component's config).  Queue
    beats with :meth:`send` (values as :func:`nnloom.sim.packing.pack` takes them);
    ``fired`` lists the cycle of each transfer.
    """

    def __init__(self, clocked: Clocked, name: str, layout, *, valid_prob: float = 1.0,
                 rng: random.Random | None = None):
        super().__init__(clocked, name, layout, rng or random.Random(0))
        self.valid_prob = valid_prob
        self.queue: deque = deque()
        self.valid.value = 0
        self._task = cocotb.start_soon(self._run())

    def send(self, beat) -> None:
        self.queue.append(beat)

    def send_many(self, beats) -> None:
        self.queue.extend(beats)

    @property
    def idle(self) -> bool:
        return not self.queue

    async def _run(self):
        offering = False
        while True:
            await FallingEdge(self.clocked.clk)
            if not offering and self.queue and self.rng.random() < self.valid_prob:
                self.payload.value = pack(self.layout, self.queue[0])
                offering = True
            self.valid.value = int(offering)
            await ReadOnly()
            if offering and int(self.ready.value):
                self.fired.append(self.clocked.cycle())
                self.queue.popleft()
                offering = False


class StreamSink(_StreamEnd):
    """Accepts beats from stream ``name`` of ``dut`` and unpacks them.

    ``beats`` holds the unpacked payloads, ``fired`` their cycles.
    """

    def __init__(self, clocked: Clocked, name: str, layout, *, ready_prob: float = 1.0,
                 rng: random.Random | None = None):
        super().__init__(clocked, name, layout, rng or random.Random(1))
        self.ready_prob = ready_prob
        self.beats: list = []
        self.ready.value = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await FallingEdge(self.clocked.clk)
            ready = self.rng.random() < self.ready_prob
            self.ready.value = int(ready)
            await ReadOnly()
            if ready and int(self.valid.value):
                self.beats.append(unpack(self.layout, self.payload.value.to_unsigned()))
                self.fired.append(self.clocked.cycle())

    async def wait_for(self, count: int, timeout_cycles: int):
        """Wait until ``count`` beats arrived; fail after ``timeout_cycles``."""
        for _ in range(timeout_cycles):
            if len(self.beats) >= count:
                return
            await FallingEdge(self.clocked.clk)
        raise AssertionError(f"timed out after {timeout_cycles} cycles with "
                             f"{len(self.beats)} of {count} beats")
