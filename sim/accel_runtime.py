"""Host runtime for the accelerator, in simulation.

:class:`AccelRuntime` drives the emitted Verilog through cocotbext-axi: an
``AxiRam`` plays the DRAM on ``m_axi`` (optionally with random pauses on every
channel, i.e. back-pressure and variable latency) and an ``AxiLiteMaster``
programs the registers on ``s_axil``.  It loads the compiler's DRAM image,
writes an input, starts the program, waits for the interrupt, and reads the
output and the counters: what a driver on a real board does over its bus.
"""

from __future__ import annotations

import logging
import random

from cocotb.triggers import RisingEdge, with_timeout
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from nnloom.gen.compiler import Program
from nnloom.hw.accel import ERRORS, REGS

__all__ = ["AccelRuntime", "AccelError", "check_inference"]


class AccelError(RuntimeError):
    pass


def pauser(rng: random.Random, prob: float):
    while True:
        yield rng.random() < prob


class AccelRuntime:
    def __init__(self, dut, program: Program, *, pause_prob: float = 0.0, seed: int = 0,
                 base: int = 0):
        self.dut = dut
        self.program = program
        self.base = base
        size = 1 << max(12, (base + program.size + 4095).bit_length())
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi_"), dut.clk, dut.rst, size=size)
        self.ram_size = size        # reads at or beyond it get SLVERR
        self.csr = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil_"), dut.clk, dut.rst)
        for prefix in ("m_axi_", "s_axil_"):    # a log line per burst slows the run
            logging.getLogger(f"cocotb.{dut._name}.{prefix}").setLevel(logging.WARNING)
        if pause_prob:
            rng = random.Random(seed)
            for ch in (self.ram.write_if.aw_channel, self.ram.write_if.w_channel,
                       self.ram.write_if.b_channel, self.ram.read_if.ar_channel,
                       self.ram.read_if.r_channel):
                ch.set_pause_generator(pauser(rng, pause_prob))
        self.ram.write(base, program.image())
        self.loaded = False
        self.last = None            # (region, length) of the program in imem

    async def write_reg(self, name: str, value: int, index: int = 0):
        await self.csr.write_dword(REGS[name] + 4 * index, value)

    async def read_reg(self, name: str, index: int = 0) -> int:
        return await self.csr.read_dword(REGS[name] + 4 * index)

    async def run(self, timeout_cycles: int = 2_000_000, prog_len: int | None = None,
                  region: str = "program") -> dict:
        """Start the loaded program (``region``: ``program``, or ``preload``,
        the resident weights' loader) and wait for ``done``; return the status."""
        seq = self.program.preload if region == "preload" else self.program.instructions
        n = len(seq) if prog_len is None else prog_len
        await self.write_reg("PROG_BASE", self.base + self.program.regions[region][0])
        await self.write_reg("PROG_LEN", n)
        # start, interrupt enable; keep the program in imem when it is the same
        same = self.last == (region, n)
        self.last = (region, n)
        self.kept = same
        await self.write_reg("CTRL", 0b1101 if same else 0b101)
        if not int(self.dut.irq.value):
            await with_timeout(RisingEdge(self.dut.irq), timeout_cycles * 10, "ns")
        status = await self.read_reg("STATUS")
        out = {"busy": status & 1, "done": (status >> 1) & 1, "error": (status >> 2) & 1,
               "code": (status >> 8) & 0xFF}
        out["error_name"] = ERRORS.get(out["code"], "") if out["error"] else ""
        out["err_pc"] = await self.read_reg("ERR_PC")
        await self.write_reg("CTRL", 0b010)          # clear done
        return out

    async def preload(self):
        """Resident weights: run the loading program once."""
        if self.program.preload and not self.loaded:
            status = await self.run(region="preload")
            if status["error"]:
                raise AccelError(f"accelerator error {status['code']} ({status['error_name']}) "
                                 f"at preload instruction {status['err_pc']}")
            self.loaded = True

    async def infer(self, x_int) -> tuple:
        """One inference run (``batch`` samples: ``x_int`` is ``[batch, ...]``
        when the batch is above 1): (int8 output array, counters dict)."""
        await self.preload()
        addr, _ = self.program.regions["input"]
        self.ram.write(self.base + addr, self.program.input_bytes(x_int))
        status = await self.run()
        if status["error"]:
            raise AccelError(f"accelerator error {status['code']} ({status['error_name']}) "
                             f"at instruction {status['err_pc']}")
        oaddr, osize = self.program.regions["output"]
        y = self.program.output_from(self.ram.read(self.base + oaddr, osize))
        counters = {name.lower(): await self.read_reg(name) for name in ("CYCLES", "BEATS", "STALLS")}
        counters["kept"] = self.kept         # the program was already in imem
        counters["layers"] = [await self.read_reg("LAYER0", i)
                              for i in range(min(len(self.program.layers), self.program.config.layers))]
        return y, counters


def check_inference(program: Program, qnet, x_int, out, counters: dict, label: str):
    """Scoreboard of one inference: the output equals the golden int8 model
    bit for bit, and every layer's hardware cycle counter equals the
    compiler's model.  ``label`` names the sample (and seed) in a failure."""
    import numpy as np

    from nnloom.sim.golden.qnet import run as golden_run

    want = np.asarray(golden_run(qnet, x_int)[-1]).reshape(np.shape(out))
    assert np.array_equal(out, want), f"{label}: RTL {out.tolist()} != golden {want.tolist()}"
    got = counters["layers"][:program.config.layers]
    model = [info.cycles for info in program.layers[:program.config.layers]]
    assert got == model, (f"{label}: layer cycle counters {got} != model {model} "
                          f"({[info.name for info in program.layers]})")
