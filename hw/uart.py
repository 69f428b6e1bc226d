"""UART receiver and transmitter, 8N1 (one start bit, 8 data bits LSB first,
no parity, one stop bit), ``divisor`` clock cycles per bit.

The structure is the usual one (as in the Glasgow and LiteX UARTs): the
receiver synchronizes ``rx`` through two flip-flops, waits for a falling edge
(the start bit), checks the line again half a bit later (a glitch shorter
than half a bit is ignored), then samples each data bit and the stop bit in
the middle of its bit time.  A byte whose stop bit reads 0 is a framing error
and is dropped.  The transmitter shifts out start, data and stop bits, one
every ``divisor`` cycles.

Both sides are streams of bytes (``amaranth.lib.stream``, ``payload`` 8
bits).  The transmitter honours back-pressure by design (``ready`` is high
only when idle).  A serial line cannot be paused, so the receiver holds one
byte: if the consumer has not taken it when the next byte's stop bit is
sampled, the new byte is dropped and ``overrun`` (sticky until ``clear``)
rises.  ``divisor`` = clock frequency / baud rate, at least 4 (the half-bit
check needs two cycles).
"""

from __future__ import annotations

import operator

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out
from .errors import InputError

__all__ = ["UartRx", "UartTx", "check_divisor", "divisor_for"]


def check_divisor(divisor) -> int:
    divisor = operator.index(divisor)
    if not 4 <= divisor <= 1 << 20:
        raise InputError(f"divisor must be 4..{1 << 20} clock cycles per bit, not {divisor}")
    return divisor


def divisor_for(clk_hz: float, baud: int) -> int:
    """Nearest integer divisor; raises :class:`~nnloom.hw.errors.InputError` (a ``ValueError``) if the baud rate it gives
    is off by more than 2 % (8N1 tolerates about 4 % between both ends)."""
    div = round(clk_hz / baud)
    if div < 4 or abs(clk_hz / div - baud) / baud > 0.02:
        raise InputError(f"baud rate {baud} is not reachable within 2 % from {clk_hz:g} Hz")
    return div


class UartRx(wiring.Component):
    """8N1 receiver.

    Members: ``rx`` (In, the line, idle high), ``data`` (Out stream of bytes),
    ``overrun`` (Out, sticky), ``clear`` (In, clears ``overrun``).
    """

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__({"rx": In(1, init=1), "data": Out(stream.Signature(8)),
                          "overrun": Out(1), "clear": In(1)})

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(div))
        bits = Signal(range(10))
        shreg = Signal(8)
        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        with m.If(self.clear):
            m.d.sync += self.overrun.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):              # a glitch, not a start bit
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(div - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [timer.eq(div - 1), bits.eq(bits + 1)]
                    with m.If(bits == 8):   # the stop bit
                        with m.If(line):
                            with m.If(self.data.valid & ~self.data.ready):
                                m.d.sync += self.overrun.eq(1)
                            with m.Else():
                                m.d.sync += [self.data.payload.eq(shreg), self.data.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += shreg.eq(Cat(shreg[1:], line))
        return m


class UartTx(wiring.Component):
    """8N1 transmitter.

    Members: ``data`` (In stream of bytes; ``ready`` while idle), ``tx`` (Out,
    the line, idle high), ``busy`` (Out).
    """

    def __init__(self, divisor: int):
        self.divisor = check_divisor(divisor)
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1),
                          "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        timer = Signal(range(div))
        shreg = Signal(10, init=0x3FF)
        left = Signal(range(11))
        m.d.comb += [self.tx.eq(shreg[0]), self.busy.eq(left != 0),
                     self.data.ready.eq(left == 0)]
        with m.If(left == 0):
            with m.If(self.data.valid):
                # stop bit (1), data LSB first, start bit (0) in bit 0
                m.d.sync += [shreg.eq(Cat(0, self.data.payload, 1)), left.eq(10),
                             timer.eq(div - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), left.eq(left - 1), timer.eq(div - 1)]
        return m
