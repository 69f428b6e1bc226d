"""Eyeriss PE and array: config errors, the PE's 1-D convolution in the Amaranth
simulator, and the emitted Verilog (lint, Yosys check, determinism)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from nnloom.gen.cli import main
from nnloom.gen.verilog import to_verilog
from nnloom.hw.catalog import lookup
from nnloom.hw.eyeriss import EyerissArray, EyerissConfig, EyerissPE
from nnloom.hw.params import ParamError
from nnloom.sim.lint import assert_lint_clean


def test_config_errors():
    with pytest.raises(ParamError, match="acc_width"):
        EyerissConfig(data_width=16, acc_width=24)
    with pytest.raises(ParamError, match="rows"):
        EyerissConfig(rows=0)
    with pytest.raises(ParamError, match="ifmap_spad"):
        EyerissConfig(ifmap_spad=100)
    with pytest.raises(TypeError):
        EyerissPE({"rows": 3})
    assert EyerissConfig().to_dict()["filter_spad"] == 224


def _run_pe(cfg, p, q, s, base, filt, window):
    """Write ``filt`` (q, S, p) and ``window`` (q, S: slot order) into a PE, run
    it once; return psums, cycles from start to not busy, and event counts."""
    pe = EyerissPE(cfg)
    out = {}

    async def bench(ctx):
        ctx.set(pe.p, p)
        ctx.set(pe.q, q)
        ctx.set(pe.s, s)
        ctx.set(pe.base, base)
        for c in range(q):
            for x in range(s):
                for f in range(p):
                    ctx.set(pe.f_we, 1)
                    ctx.set(pe.f_addr, (c * s + x) * p + f)
                    ctx.set(pe.f_data, int(filt[c, x, f]))
                    await ctx.tick()
                ctx.set(pe.f_we, 0)
                ctx.set(pe.i_we, 1)
                ctx.set(pe.i_addr, c * s + x)
                ctx.set(pe.i_data, int(window[c, x]))
                await ctx.tick()
                ctx.set(pe.i_we, 0)
        ctx.set(pe.start, 1)
        await ctx.tick()
        ctx.set(pe.start, 0)
        events = dict(mac=0, gated=0, ird=0, prd=0, pwr=0)
        cycles = 0
        while ctx.get(pe.busy):
            for name in events:
                events[name] += ctx.get(getattr(pe, f"ev_{name}"))
            cycles += 1
            await ctx.tick()
        psums = []
        for f in range(p):
            ctx.set(pe.psum_sel, f)
            psums.append(ctx.get(pe.psum_out))
        out.update(psums=psums, cycles=cycles, events=events)

    sim = Simulator(pe)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("p,q,s,base,signed", [(2, 2, 3, 1, True), (1, 1, 1, 0, True),
                                                (3, 1, 5, 4, True), (2, 3, 2, 1, False)])
def test_pe_row_convolution(p, q, s, base, signed):
    """One window: psum[f] = sum over c, k of w[c, k, f] * ifmap at slot
    (base + k) mod S, wrapped to 16 bits; zero words are gated; p*q*S +
    latency cycles."""
    cfg = EyerissConfig(filter_spad=32, ifmap_spad=12, psum_spad=4, data_width=8, acc_width=16,
                        signed=signed)
    rng = np.random.default_rng(p * 100 + q * 10 + s)
    lo, hi = (-128, 128) if signed else (0, 256)
    filt = rng.integers(lo, hi, (q, s, p))
    window = rng.integers(lo, hi, (q, s))
    window[rng.random(window.shape) < 0.5] = 0
    got = _run_pe(cfg, p, q, s, base, filt, window)
    order = [(base + k) % s for k in range(s)]
    for f in range(p):
        exact = sum(int(filt[c, k, f]) * int(window[c, order[k]]) for c in range(q) for k in range(s))
        want = ((exact + (1 << 15)) % (1 << 16)) - (1 << 15) if signed else exact % (1 << 16)
        assert got["psums"][f] == want, (f, got["psums"], want)
    zeros = int((window == 0).sum())
    assert got["cycles"] == cfg.mac_cycles(p, q, s)
    ev = got["events"]
    assert ev["mac"] == p * (q * s - zeros) and ev["gated"] == p * zeros
    assert ev["ird"] == q * s
    # The first step of a run (c = 0, s = 0) writes the psum without reading it.
    first_zero = int(window[0, order[0]] == 0)
    assert ev["prd"] == p * (q * s - zeros) - p * (1 - first_zero)
    assert ev["pwr"] == p * (q * s - zeros) + p * first_zero


_lint = assert_lint_clean


def test_pe_verilog_lint_and_determinism():
    cfg = EyerissConfig()
    a = to_verilog(EyerissPE(cfg))
    assert a == to_verilog(EyerissPE(cfg))
    _lint(a)


def test_array_verilog_deterministic():
    cfg = EyerissConfig(rows=2, cols=2, filter_spad=8, ifmap_spad=4, psum_spad=2,
                        glb_ifmap=64, glb_psum=32)
    assert to_verilog(EyerissArray(cfg)) == to_verilog(EyerissArray(cfg))


@pytest.mark.slow
def test_emit_array_3x4_lint(tmp_path, capsys):
    """Acceptance: ``nnloom emit eyeriss-array --rows 3 --cols 4`` is lint-clean."""
    out = tmp_path / "eyeriss.v"
    assert main(["emit", "eyeriss-array", "--rows", "3", "--cols", "4", "-o", str(out)]) == 0
    _lint(out.read_text())
    assert lookup("eyeriss-pe").component_class() is EyerissPE


def test_emit_bad_param(capsys):
    assert main(["emit", "eyeriss-pe", "--acc-width", "8"]) == 2
    assert "--acc-width" in capsys.readouterr().err
