"""Razor SRAM at the Amaranth level: config errors, read timing equal to an
unwrapped Memory's, the LFSR matrix, lint and determinism of the Verilog."""

import random

import pytest
from amaranth.hdl import Elaboratable, Module, Signal, unsigned
from amaranth.lib import memory
from amaranth.sim import Simulator

from nnloom.gen.verilog import to_verilog
from nnloom.hw.params import ParamError
from nnloom.hw.razor_sram import LFSR_TAPS, MODE_CODES, RazorSram, RazorSramConfig, lfsr_matrix
from nnloom.sim.lint import assert_emits_clean


@pytest.mark.parametrize("field,value", [("width", 1), ("depth", 1), ("mode", "parity"),
                                         ("injector", "always"), ("rate_bits", 21),
                                         ("counter_width", 4)])
def test_bad_params(field, value):
    with pytest.raises(ParamError, match=field):
        RazorSramConfig(**{field: value})


def test_lfsr_matrix_equals_k_single_steps():
    rng = random.Random(3)
    for k, taps in LFSR_TAPS.items():
        rows = lfsr_matrix(k)
        for _ in range(20):
            s = rng.randrange(1, 1 << k)
            want = s
            for _ in range(k):
                want = (want >> 1) ^ (taps if want & 1 else 0)
            got = sum((bin(s & row).count("1") & 1) << b for b, row in enumerate(rows))
            assert got == want, (k, s)


class _Pair(Elaboratable):
    """A RazorSram beside a plain Memory, driven by the same ports."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.razor = RazorSram(cfg)
        self.waddr, self.raddr = Signal(range(cfg.depth)), Signal(range(cfg.depth))
        self.wdata, self.wen, self.ren = Signal(cfg.width), Signal(), Signal()
        self.plain = Signal(cfg.width)

    def elaborate(self, platform):
        m = Module()
        m.submodules.razor = r = self.razor
        m.submodules.mem = mem = memory.Memory(shape=unsigned(self.cfg.width),
                                               depth=self.cfg.depth, init=[])
        wp, rp = mem.write_port(), mem.read_port()
        m.d.comb += [wp.addr.eq(self.waddr), wp.data.eq(self.wdata), wp.en.eq(self.wen),
                     rp.addr.eq(self.raddr), rp.en.eq(self.ren), self.plain.eq(rp.data),
                     r.waddr.eq(self.waddr), r.wdata.eq(self.wdata), r.wen.eq(self.wen),
                     r.raddr.eq(self.raddr), r.ren.eq(self.ren)]
        return m


@pytest.mark.parametrize("mode", ["none", "word", "bit", "runtime"])
def test_read_timing_equals_plain_memory(mode):
    """With no flags the wrapper's rdata equals a plain Memory's rdata in every
    cycle of a random read/write sequence: no added latency, same hold and
    read-during-write behaviour."""
    cfg = RazorSramConfig(width=6, depth=8, mode=mode, injector="transient")
    dut = _Pair(cfg)
    rng = random.Random(11)
    seen = []

    async def tb(ctx):
        ctx.set(dut.razor.inj_en, 0)
        if mode == "runtime":
            ctx.set(dut.razor.mode, MODE_CODES["bit"])
        for cycle in range(300):
            ctx.set(dut.wen, rng.random() < 0.4)
            ctx.set(dut.waddr, rng.randrange(cfg.depth))
            ctx.set(dut.wdata, rng.randrange(1 << cfg.width))
            ctx.set(dut.ren, rng.random() < 0.6)
            ctx.set(dut.raddr, rng.randrange(cfg.depth))
            await ctx.tick()
            got, want = ctx.get(dut.razor.rdata), ctx.get(dut.plain)
            assert got == want, f"cycle {cycle}: razor {got} != plain {want} (seed 11)"
            seen.append(want)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert len(set(seen)) > 10  # the sequence really moved data
    assert cfg.read_latency == 1


@pytest.mark.parametrize("cfg", [RazorSramConfig(width=8, depth=256, mode="bit"),
                                 RazorSramConfig(width=5, depth=32, mode="runtime",
                                                 injector="persistent", rate_bits=8),
                                 RazorSramConfig(width=4, depth=4, mode="word", injector="off")])
def test_verilog_lint_and_determinism(cfg):
    assert_emits_clean(lambda: RazorSram(cfg))


def test_cli_emit(tmp_path, capsys):
    from nnloom.gen.cli import main
    out = tmp_path / "razor.v"
    assert main(["emit", "razor-sram", "--width", "8", "--depth", "256", "--mode", "bit",
                 "-o", str(out)]) == 0
    text = out.read_text()
    assert text == to_verilog(RazorSram(RazorSramConfig(width=8, depth=256, mode="bit")))
    assert main(["emit", "razor-sram", "--mode", "parity"]) == 2
    assert "--mode: expected" in capsys.readouterr().err
