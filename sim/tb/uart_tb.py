"""cocotb tests of the board top (:class:`nnloom.hw.board_top.BoardTop`) through its
UART pins only, driven by the host driver's own protocol code
(:mod:`hw.uart_link`, the generators ``nnloom fpga run`` runs over pyserial).

:class:`SimSerial` is a "serial port" for :func:`hw.uart_link.run_async`: it
bit-bangs 8N1 bytes onto ``uart_rx`` (``divisor`` clock cycles per bit, with
random idle gaps between bytes, seeded) and decodes ``uart_tx`` by sampling
each bit in its middle, checking start and stop bits.

Parameters: ``config`` (AccelConfig dict), ``network`` (an examples/ name),
``samples`` (test-split indices), ``divisor``, ``gap`` (probability of an idle
gap before a byte), ``seed``.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import Event, FallingEdge, SimTimeoutError, Timer, with_timeout

from nnloom.hw import uart_link as link
from nnloom.gen.compiler import compile_network
from nnloom.hw.accel import REGS, VERSION
from nnloom.hw.accel_core import AccelConfig
from nnloom.hw.uart_bridge import CMD_MEM_READ, CMD_REG_READ, NAK
from nnloom.sim.accel_models import digits_qnet
from nnloom.sim.accel_runtime import check_inference
from nnloom.sim.runner import tb_params
from nnloom.sim.tb.streams import Clocked

PERIOD_NS = 10


class SimSerial:
    """The board top's UART as an awaitable byte port."""

    def __init__(self, dut, divisor: int, *, gap: float = 0.0, seed: int = 0,
                 timeout_cycles: int = 200_000):
        self.dut, self.div = dut, divisor
        self.rng = random.Random(seed)
        self.gap = gap
        self.timeout_ns = timeout_cycles * PERIOD_NS
        self.buf = bytearray()
        self.event = Event()
        self.framing_errors = 0
        dut.uart_rx.value = 1
        cocotb.start_soon(self._monitor())

    async def write(self, data: bytes):
        for byte in data:
            if self.rng.random() < self.gap:
                await self._bits(self.rng.randint(1, 3 * self.div) / self.div)
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                self.dut.uart_rx.value = bit
                await self._bits(1)

    def _bits(self, n: float):
        # a Timer (one callback), not ClockCycles (one per edge): whole clock
        # periods from a falling edge, so inputs still change on falling edges
        return Timer(round(n * self.div) * PERIOD_NS, "ns")

    async def _monitor(self):
        tx = self.dut.uart_tx
        while True:
            await FallingEdge(tx)
            await Timer(self.div // 2 * PERIOD_NS, "ns")   # middle of the start bit
            assert int(tx.value) == 0, "uart_tx: start bit shorter than half a bit"
            value = 0
            for i in range(8):
                await self._bits(1)
                value |= int(tx.value) << i
            await self._bits(1)
            assert int(tx.value) == 1, f"uart_tx: framing error after byte {value:#04x}"
            self.buf.append(value)
            self.event.set()

    async def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.event.clear()
            try:
                await with_timeout(self.event.wait(), self.timeout_ns, "ns")
            except SimTimeoutError:
                break
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


async def _setup(dut):
    p = tb_params()
    Clocked(dut, period_ns=PERIOD_NS)
    port = SimSerial(dut, p["divisor"], gap=p.get("gap", 0.0), seed=p.get("seed", 0))
    await Clocked.reset(type("C", (), {"rst": dut.rst, "clk": dut.clk})())
    return p, port


@cocotb.test()
async def uart_inference_bit_exact(dut):
    """Digits through the UART host driver, bit-exact against the golden model."""
    p, port = await _setup(dut)
    cfg = AccelConfig.from_dict(p["config"])
    _, qnet, xq, _, _ = digits_qnet(p["network"])
    prog = compile_network(qnet, cfg)
    for k, s in enumerate(p["samples"]):
        y, counters = await link.run_async(link.infer(prog, xq[s], load=k == 0), port)
        check_inference(prog, qnet, xq[s], y, counters,
                        f"sample {s} over UART (seed {p.get('seed', 0)})")
        dut._log.info("sample %d: %s, %d cycles", s, y.tolist(), counters["cycles"])
    assert int(dut.leds.value) & 0b110 == 0, "done/error LEDs lit after CTRL clear"


@cocotb.test()
async def uart_protocol(dut):
    """Burst memory round trip across request boundaries, registers, NAKs, LEDs."""
    p, port = await _setup(dut)
    cfg = AccelConfig.from_dict(p["config"])
    rng = random.Random(p.get("seed", 0) + 1)
    data = bytes(rng.getrandbits(8) for _ in range(4 * 300))     # 300 words: 2 requests
    await link.run_async(link.write_bytes(0x40, data), port)
    back = await link.run_async(link.read_bytes(0x40, len(data)), port)
    assert back == data, f"memory round trip differs (seed {p.get('seed', 0)})"

    info = await link.run_async(link.read_reg("INFO"), port)
    assert info == cfg.size | cfg.data_width << 8 | cfg.layers << 16 | VERSION << 24, hex(info)
    await link.run_async(link.write_reg("PROG_BASE", 0x1234), port)
    assert await link.run_async(link.read_reg("PROG_BASE"), port) == 0x1234

    # a bad checksum and an unknown command are answered NAK; the link goes on
    bad = bytearray(link.request(CMD_MEM_READ, 0x40, 1))
    bad[-1] ^= 1
    await port.write(bytes(bad))
    assert await port.read(1) == bytes([NAK])
    await port.write(b"\x00")
    assert await port.read(1) == bytes([NAK])
    good = link.request(CMD_REG_READ, REGS["PROG_BASE"], 1)
    await port.write(good)
    reply = await port.read(6)
    assert reply[0] == CMD_REG_READ and int.from_bytes(reply[1:5], "little") == 0x1234

    # an accelerator error (PROG_LEN 0) shows in STATUS and on the error LED
    await link.run_async(link.write_reg("PROG_LEN", 0), port)
    await link.run_async(link.write_reg("CTRL", 0b101), port)
    status = await link.run_async(link.read_reg("STATUS"), port)
    assert status & 0b110 == 0b110 and status >> 8 == 4, hex(status)
    assert int(dut.leds.value) == 0b110, f"leds {int(dut.leds.value):03b}, want error and done"
    await link.run_async(link.write_reg("CTRL", 0b010), port)
    status = await link.run_async(link.read_reg("STATUS"), port)
    assert status & 0b110 == 0 and int(dut.leds.value) & 0b110 == 0
