"""cocotb testbench for the Razor SRAM (run by tests/sim/test_razor.py).

Parameters (``nnloom.sim.runner.tb_params()``): ``config`` (a RazorSramConfig as a
dict), ``seed``, ``cycles`` (length of the random sequence), ``rate`` (the
injector's rate input for the random sequence).

Structure: a driver applies one operation per cycle (write, read, external
flags, mode, injector enable) on the falling edge; the scoreboard keeps a
transaction-level model (a Python list as the memory, the fault map, and
:class:`nnloom.sim.golden.razor.Injector` for the LFSR draws) and checks, in every
read-data cycle ``read_latency`` cycles after a read, ``rdata`` and
``rflags`` against :func:`sim.golden.razor.mask`, and the three counters
after every cycle.  ``read_latency`` comes from the config.
``exhaustive_masking`` needs a small build (width <= 6, every word
addressable) and skips itself on others: select it only there.
"""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.triggers import FallingEdge, ReadOnly

from nnloom.hw.razor_sram import MODE_CODES, RazorSramConfig
from nnloom.sim.golden.razor import Injector, mask, masked_bits, to_signed
from nnloom.sim.runner import tb_params
from nnloom.sim.tb.streams import Clocked


class Model:
    """Cycle-level reference built from the golden rules."""

    def __init__(self, cfg: RazorSramConfig):
        self.cfg = cfg
        self.mem = [0] * cfg.depth
        self.fmap = [0] * cfg.depth
        self.inj = Injector(cfg) if cfg.injector != "off" else None
        self.held = (0, 0)              # (word as stored, injected flags) on the read port
        self.reads = self.faulty = self.masked = 0

    def output(self, ext, mode):
        word, inj = self.held
        flags = inj | ext
        raw = word ^ inj
        return int(mask(raw, flags, self.cfg.width, mode)), flags

    def count(self, ext, mode):
        flags = self.held[1] | ext
        mod = 1 << self.cfg.counter_width
        self.reads = (self.reads + 1) % mod
        self.faulty = (self.faulty + (flags != 0)) % mod
        self.masked = (self.masked + int(masked_bits(flags, self.cfg.width, mode))) % mod

    def edge(self, op, rate):
        """State change at the rising edge that ends a cycle with inputs ``op``."""
        cfg = self.cfg
        if op["ren"]:
            inj = 0
            if cfg.injector == "transient" and op["inj_en"]:
                inj = self.inj.draw(rate)
            elif cfg.injector == "persistent":
                inj = self.fmap[op["raddr"]]
            self.held = (self.mem[op["raddr"]], inj)
        if op["wen"]:
            self.mem[op["waddr"]] = op["wdata"]
            if cfg.injector == "persistent":
                self.fmap[op["waddr"]] = self.inj.draw(rate) if op["inj_en"] else 0


class Driver:
    def __init__(self, dut, cfg):
        self.dut, self.cfg = dut, cfg
        self.clk = Clocked(dut)
        self.model = Model(cfg)
        self.rate = 0
        self.data_cycle = False

    async def start(self, rate):
        """Reset, then bring the memory (which reset does not clear, and which
        earlier tests in this run wrote) to a known state: every word 0, read
        port holding word 0, counters cleared.  Unchecked cycles."""
        dut, cfg = self.dut, self.cfg
        self.rate = rate
        await self.clk.reset()
        if cfg.injector != "off":
            dut.rate.value = rate
            dut.inj_en.value = 0
        if cfg.mode == "runtime":
            dut.mode.value = 0
        dut.ext_flags.value = 0
        dut.ren.value = 0
        for a in range(cfg.depth):
            dut.wen.value, dut.waddr.value, dut.wdata.value, dut.clear.value = 1, a, 0, 1
            await FallingEdge(self.clk.clk)
        dut.wen.value, dut.ren.value, dut.raddr.value = 0, 1, 0
        await FallingEdge(self.clk.clk)
        dut.ren.value = 0
        await FallingEdge(self.clk.clk)
        dut.clear.value = 0
        self.model = Model(cfg)
        self.data_cycle = False

    async def cycle(self, op, label):
        """Apply ``op`` for one cycle; check this cycle's outputs and counters."""
        dut, cfg, model = self.dut, self.cfg, self.model
        mode = op.get("mode") or modes(cfg)[0]
        dut.wen.value, dut.waddr.value, dut.wdata.value = op["wen"], op["waddr"], op["wdata"]
        dut.ren.value, dut.raddr.value = op["ren"], op["raddr"]
        dut.ext_flags.value = op["ext"]
        dut.clear.value = op.get("clear", 0)
        if cfg.mode == "runtime":
            dut.mode.value = MODE_CODES[mode]
        if cfg.injector != "off":
            dut.inj_en.value = op["inj_en"]
        await ReadOnly()
        want, flags = model.output(op["ext"], mode)
        got = dut.rdata.value.to_unsigned()
        got_flags = dut.rflags.value.to_unsigned()
        assert (got, got_flags) == (want, flags), \
            f"{label}: rdata {got:#x} flags {got_flags:#x}, golden {want:#x} {flags:#x} (mode {mode})"
        counters = (dut.reads.value.to_unsigned(), dut.faulty_reads.value.to_unsigned(),
                    dut.masked_bits.value.to_unsigned())
        assert counters == (model.reads, model.faulty, model.masked), \
            f"{label}: counters {counters}, golden {(model.reads, model.faulty, model.masked)}"
        # State changes at the coming rising edge: counters of this data cycle, then the port.
        if op.get("clear"):
            model.reads = model.faulty = model.masked = 0
        elif self.data_cycle:
            model.count(op["ext"], mode)
        self.data_cycle = bool(op["ren"])
        model.edge(op, self.rate)
        await FallingEdge(self.clk.clk)
        return got


def idle(**kw):
    op = dict(wen=0, waddr=0, wdata=0, ren=0, raddr=0, ext=0, inj_en=0)
    op.update(kw)
    return op


def modes(cfg):
    return ["none", "word", "bit"] if cfg.mode == "runtime" else [cfg.mode]


@cocotb.test()
async def random_sequence(dut):
    """Random writes, reads, external flags, modes and injector: golden every cycle."""
    p = tb_params()
    cfg = RazorSramConfig.from_dict(p["config"])
    rng = random.Random(p["seed"])
    drv = Driver(dut, cfg)
    await drv.start(p.get("rate", 0))
    full = (1 << cfg.width) - 1
    for n in range(p["cycles"]):
        ext = 0 if rng.random() < 0.5 else rng.randrange(full + 1) & rng.randrange(full + 1)
        op = idle(wen=int(rng.random() < 0.3), waddr=rng.randrange(cfg.depth),
                  wdata=rng.randrange(full + 1), ren=int(rng.random() < 0.6),
                  raddr=rng.randrange(cfg.depth), ext=ext,
                  inj_en=int(rng.random() < 0.8), mode=rng.choice(modes(cfg)),
                  clear=int(rng.random() < 0.01))
        await drv.cycle(op, f"cycle {n} (seed {p['seed']})")
    assert drv.model.reads > 0 and drv.model.faulty > 0 and drv.model.masked > 0


@cocotb.test()
async def latency_and_hold(dut):
    """rdata shows a read's word exactly ``read_latency`` cycles after ``ren``
    (never earlier) and holds it while ``ren`` is low."""
    p = tb_params()
    cfg = RazorSramConfig.from_dict(p["config"])
    drv = Driver(dut, cfg)
    await drv.start(0)
    mode = modes(cfg)[0]
    for a in range(4):
        await drv.cycle(idle(wen=1, waddr=a, wdata=(a * 5 + 3) & ((1 << cfg.width) - 1)), "fill")
    for a in (1, 3, 0, 2):
        before = await drv.cycle(idle(ren=1, raddr=a, mode=mode), f"issue {a}")
        word = (a * 5 + 3) & ((1 << cfg.width) - 1)
        assert before != word, "test words must differ from the previous read"
        for n in range(1, cfg.read_latency):
            got = await drv.cycle(idle(mode=mode), f"wait {a}")
            assert got == before, "data arrived early"
        for n in range(3):
            got = await drv.cycle(idle(mode=mode), f"hold {a}")
            assert got == word, f"read {a}: not valid/held {n} cycles after latency {cfg.read_latency}"


@cocotb.test()
async def exhaustive_masking(dut):
    """Every word x every flag vector (small widths), each mode: golden rules,
    and bit masking never increases |value| (checked by the closed property,
    not only against the golden model)."""
    p = tb_params()
    cfg = RazorSramConfig.from_dict(p["config"])
    if cfg.width > 6 or cfg.depth < (1 << cfg.width):
        pytest.skip(f"exhaustive masking needs width <= 6 and depth >= 2**width; this build "
                    f"has width {cfg.width}, depth {cfg.depth}")
    drv = Driver(dut, cfg)
    await drv.start(0)
    n = 1 << cfg.width
    for w in range(n):
        await drv.cycle(idle(wen=1, waddr=w, wdata=w), "fill")
    for mode in modes(cfg):
        prev = None
        for f in range(n):
            for w in range(n + 1):
                # a read of word w issued while the previous read's flags are applied
                op = idle(ren=int(w < n), raddr=w % n, mode=mode, ext=f if prev is not None else 0)
                got = await drv.cycle(op, f"word {prev} flags {f:#x} mode {mode}")
                if prev is not None and mode == "bit":
                    assert abs(int(to_signed(got, cfg.width))) <= abs(int(to_signed(prev, cfg.width))), \
                        f"bit masking grew |{prev:#x}| to |{got:#x}| with flags {f:#x}"
                prev = w if w < n else None
