"""cocotb testbench of the board's block-RAM AXI slave (run by
tests/hw/test_axi_bram.py).

cocotbext-axi's ``AxiMaster`` (a model nobody here wrote) writes and reads
random bursts of random lengths and byte offsets (its unaligned and partial
accesses become byte strobes), with random pauses on every channel; the
host port reads and writes whole 32-bit words in between.  Scoreboard: a
``bytearray`` model of the RAM, little-endian words.

Parameters: ``depth`` (32-bit words), ``data_width`` (16 or 32), ``seed``,
``ops``.
"""

from __future__ import annotations

import logging
import random

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly
from cocotbext.axi import AxiBus, AxiMaster

from nnloom.sim.accel_runtime import pauser
from nnloom.sim.runner import tb_params
from nnloom.sim.tb.streams import Clocked


async def _host(dut, we: bool, word: int, value: int = 0) -> int:
    """One host-port access (at a falling edge); returns the read word."""
    dut.host_req.value, dut.host_we.value = 1, int(we)
    dut.host_addr.value, dut.host_wdata.value = word, value
    while True:
        await ReadOnly()
        if dut.host_ack.value:
            data = int(dut.host_rdata.value)
            await FallingEdge(dut.clk)
            dut.host_req.value = 0
            return data
        await FallingEdge(dut.clk)


@cocotb.test()
async def axi_and_host_against_a_byte_model(dut):
    p = tb_params()
    rng = random.Random(p["seed"])
    size = 4 * p["depth"]
    model = bytearray(size)
    clk = Clocked(dut)
    dut.host_req.value = 0
    logging.getLogger(f"cocotb.{dut._name}.s_axi_").setLevel(logging.WARNING)
    axi = AxiMaster(AxiBus.from_prefix(dut, "s_axi_"), dut.clk, dut.rst)
    await clk.reset()
    for ch in (axi.write_if.aw_channel, axi.write_if.w_channel, axi.write_if.b_channel,
               axi.read_if.ar_channel, axi.read_if.r_channel):
        ch.set_pause_generator(pauser(rng, 0.3))
    for op in range(p["ops"]):
        kind = rng.choice(("axi_write", "axi_read", "host_write", "host_read"))
        if kind.startswith("axi"):
            n = rng.randint(1, 70)
            addr = rng.randrange(0, size - n)
            if kind == "axi_write":
                data = bytes(rng.getrandbits(8) for _ in range(n))
                await axi.write(addr, data)
                model[addr:addr + n] = data
            else:
                got = (await axi.read(addr, n)).data
                assert got == model[addr:addr + n], \
                    f"op {op}: AXI read of {n} bytes at {addr:#x} (seed {p['seed']})"
        else:
            word = rng.randrange(p["depth"])
            await FallingEdge(dut.clk)
            if kind == "host_write":
                value = rng.getrandbits(32)
                await _host(dut, True, word, value)
                model[4 * word:4 * word + 4] = value.to_bytes(4, "little")
            else:
                got = await _host(dut, False, word)
                want = int.from_bytes(model[4 * word:4 * word + 4], "little")
                assert got == want, f"op {op}: host read of word {word}: {got:#x} != {want:#x}"
