"""The host side of the UART bridge (:mod:`nnloom.hw.uart_bridge`), written once and
run two ways.

Every operation is a generator ("sans-I/O"): it yields :class:`Send` (bytes
to put on the line) and :class:`Recv` (a number of bytes it needs) and is
sent the received bytes back.  :func:`run_sync` drives an operation over a
pyserial port (:mod:`nnloom.fpga.host`); :func:`run_async` drives the *same*
generators over the simulated board top's UART pins
(sim/tb/uart_tb.py), so the protocol the board runs is the protocol the
test checked.

Operations: :func:`write_words`, :func:`read_words` (one request, 1..256
words, either space), :func:`write_bytes`, :func:`read_bytes` (any length,
split into requests), :func:`write_reg`, :func:`read_reg`, and
:func:`infer` (load, input, start, poll, output, counters).
"""

from __future__ import annotations

from dataclasses import dataclass

from nnloom.hw.accel import ERRORS, REGS
from nnloom.hw.uart_bridge import (CMD_MEM_READ, CMD_MEM_WRITE, CMD_REG_READ, CMD_REG_WRITE,
                            MAX_WORDS, NAK)

__all__ = ["Send", "Recv", "LinkError", "AccelError", "request", "write_words", "read_words",
           "write_bytes", "read_bytes", "write_reg", "read_reg", "infer", "run_sync", "run_async",
           "RETRIES"]

RETRIES = 3     # a NAK'd request is repeated this many times before giving up


@dataclass(frozen=True)
class Send:
    data: bytes


@dataclass(frozen=True)
class Recv:
    n: int


class LinkError(RuntimeError):
    """The bridge answered NAK, a bad checksum, or nothing."""


class AccelError(RuntimeError):
    """The accelerator stopped with an error (code and instruction named)."""


def _xor(data: bytes) -> int:
    x = 0
    for b in data:
        x ^= b
    return x


def request(cmd: int, addr: int, count: int, words=()) -> bytes:
    """The request bytes: CMD ADDR[4] COUNT-1 DATA[4]* CHK."""
    if not 1 <= count <= MAX_WORDS:
        raise ValueError(f"count must be 1..{MAX_WORDS} words, not {count}")
    if addr % 4:
        raise ValueError(f"address must be a multiple of 4, not {addr:#x}")
    body = bytes([cmd]) + addr.to_bytes(4, "little") + bytes([count - 1])
    body += b"".join((w & 0xFFFFFFFF).to_bytes(4, "little") for w in words)
    return body + bytes([_xor(body)])


def write_words(addr: int, words, *, space: str = "mem"):
    """Write 1..256 words at byte address ``addr`` (``space``: "mem" or "reg")."""
    words = list(words)
    cmd = CMD_MEM_WRITE if space == "mem" else CMD_REG_WRITE
    req = request(cmd, addr, len(words), words)
    for _ in range(RETRIES):
        yield Send(req)
        ack = (yield Recv(1))[0]
        if ack == cmd:
            return
        if ack != NAK:
            raise LinkError(f"write {addr:#x}: expected ack {cmd:#04x}, got {ack:#04x}")
    raise LinkError(f"write {addr:#x}: NAK {RETRIES} times")


def read_words(addr: int, count: int, *, space: str = "mem"):
    """Read ``count`` (1..256) words from byte address ``addr``; returns a list."""
    cmd = CMD_MEM_READ if space == "mem" else CMD_REG_READ
    req = request(cmd, addr, count)
    for _ in range(RETRIES):
        yield Send(req)
        ack = (yield Recv(1))[0]
        if ack == NAK:
            continue
        if ack != cmd:
            raise LinkError(f"read {addr:#x}: expected ack {cmd:#04x}, got {ack:#04x}")
        body = yield Recv(4 * count + 1)
        if _xor(bytes([ack]) + body) != 0:
            raise LinkError(f"read {addr:#x}: response checksum mismatch")
        return [int.from_bytes(body[4 * i:4 * i + 4], "little") for i in range(count)]
    raise LinkError(f"read {addr:#x}: NAK {RETRIES} times")


def write_bytes(addr: int, data: bytes):
    """Write ``data`` (padded with zeros to whole words) to memory at ``addr``."""
    data = bytes(data) + bytes(-len(data) % 4)
    words = [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]
    for i in range(0, len(words), MAX_WORDS):
        yield from write_words(addr + 4 * i, words[i:i + MAX_WORDS])


def read_bytes(addr: int, n: int):
    """Read ``n`` bytes of memory from ``addr`` (a multiple of 4)."""
    words = []
    total = -(-n // 4)
    for i in range(0, total, MAX_WORDS):
        words += yield from read_words(addr + 4 * i, min(MAX_WORDS, total - i))
    return b"".join(w.to_bytes(4, "little") for w in words)[:n]


def write_reg(name: str, value: int, index: int = 0):
    yield from write_words(REGS[name] + 4 * index, [value], space="reg")


def read_reg(name: str, index: int = 0):
    return (yield from read_words(REGS[name] + 4 * index, 1, space="reg"))[0]


def _run_program(base: int, n: int, max_polls: int):
    """Start the program at DRAM ``base`` (``n`` instructions), poll STATUS
    until done; :class:`AccelError` on an accelerator error."""
    yield from write_reg("PROG_BASE", base)
    yield from write_reg("PROG_LEN", n)
    yield from write_reg("CTRL", 0b101)
    for _ in range(max_polls):
        status = yield from read_reg("STATUS")
        if status & 0b10:
            break
    else:
        raise LinkError(f"the accelerator was not done after {max_polls} polls")
    if status & 0b100:
        code = (status >> 8) & 0xFF
        pc = yield from read_reg("ERR_PC")
        raise AccelError(f"accelerator error {code} ({ERRORS.get(code, '?')}) at instruction {pc}")


def infer(program, x_int, *, load: bool = True, max_polls: int = 100_000):
    """One inference on the board: (int8 output array, counters dict).

    ``load``: write the whole DRAM image first (once per power-up is
    enough), and run the program that loads resident weights, if the build
    has one.  Starts with CTRL = 0b101 (start, interrupt enable: the done
    LED), polls STATUS until done, raises :class:`AccelError` on an
    accelerator error.
    """
    if load:
        yield from write_bytes(0, program.image())
        if program.preload:
            yield from _run_program(program.regions["preload"][0], len(program.preload), max_polls)
            yield from write_reg("CTRL", 0b010)
    addr, _ = program.regions["input"]
    yield from write_bytes(addr, program.input_bytes(x_int))
    yield from _run_program(program.regions["program"][0], len(program.instructions), max_polls)
    oaddr, osize = program.regions["output"]
    y = program.output_from((yield from read_bytes(oaddr, osize)))
    counters = {}
    for name in ("CYCLES", "BEATS", "STALLS"):
        counters[name.lower()] = yield from read_reg(name)
    n = min(len(program.layers), program.config.layers)
    counters["layers"] = []
    for i in range(n):
        counters["layers"].append((yield from read_reg("LAYER0", i)))
    yield from write_reg("CTRL", 0b010)
    return y, counters


def run_sync(op, port):
    """Run an operation over a pyserial-like ``port`` (``write``, ``read(n)``
    with a timeout); returns the operation's result."""
    reply = None
    try:
        while True:
            step = op.send(reply)
            if isinstance(step, Send):
                port.write(step.data)
                reply = None
            else:
                reply = port.read(step.n)
                if len(reply) != step.n:
                    raise LinkError(f"timeout: expected {step.n} bytes, got {len(reply)}")
    except StopIteration as stop:
        return stop.value


async def run_async(op, port):
    """Run an operation over an awaitable port (``await port.write(data)``,
    ``await port.read(n)`` returning fewer bytes on a timeout): the cocotb
    serial adapter of sim/tb/uart_tb.py."""
    reply = None
    try:
        while True:
            step = op.send(reply)
            if isinstance(step, Send):
                await port.write(step.data)
                reply = None
            else:
                reply = await port.read(step.n)
                if len(reply) != step.n:
                    raise LinkError(f"timeout: expected {step.n} bytes, got {len(reply)}")
    except StopIteration as stop:
        return stop.value
