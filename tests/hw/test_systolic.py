"""Amaranth-simulator unit tests of the systolic PE, and config checks."""

import random

import pytest
from amaranth.sim import Simulator

from nnloom.hw.params import ParamError
from nnloom.hw.systolic import SystolicArray, SystolicConfig, SystolicPE
from nnloom.sim.golden.intarith import bounds, overflow


def _ref_add(cfg, acc, prod):
    return int(overflow(acc + prod, cfg.acc_width, cfg.signed, cfg.overflow))


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("signed,mode,acc", [(True, "wrap", 16), (True, "saturate", 16),
                                             (False, "saturate", 17), (False, "wrap", 32)])
def test_ws_pe_matches_model(signed, mode, acc):
    cfg = SystolicConfig(dataflow="ws", signed=signed, overflow=mode, acc_width=acc)
    pe = SystolicPE(cfg)
    rng = random.Random(7)
    alo, ahi = bounds(cfg.a_width, signed)
    plo, phi = bounds(acc, signed)

    async def bench(ctx):
        shadow = active = 0
        for step in range(300):
            a, w = rng.randint(alo, ahi), rng.randint(alo, ahi)
            psum = rng.choice([plo, phi, rng.randint(plo, phi)])
            load, first = rng.random() < 0.3, rng.random() < 0.2
            ctx.set(pe.a_in, a)
            ctx.set(pe.psum_in, psum)
            ctx.set(pe.w_load, load)
            ctx.set(pe.w_data, w)
            ctx.set(pe.first_in, first)
            weight = shadow if first else active
            expect = _ref_add(cfg, psum, a * weight)
            await ctx.tick()
            if first:
                active = shadow
            if load:
                shadow = w
            assert ctx.get(pe.psum_out) == expect, f"step {step}"
            assert ctx.get(pe.a_out) == a and ctx.get(pe.first_out) == first
    _run(pe, bench)


@pytest.mark.parametrize("mode", ["wrap", "saturate"])
def test_os_pe_accumulates_and_drains(mode):
    cfg = SystolicConfig(dataflow="os", overflow=mode, acc_width=16)
    pe = SystolicPE(cfg)
    rng = random.Random(3)

    async def bench(ctx):
        acc, drain_reg, d_out = 0, 0, 0
        for step in range(400):
            a, w = rng.randint(-128, 127), rng.randint(-128, 127)
            d_in = rng.randint(-30000, 30000)
            last = rng.random() < 0.15
            ctx.set(pe.a_in, a)
            ctx.set(pe.w_in, w)
            ctx.set(pe.d_in, d_in)
            ctx.set(pe.last_in, last)
            total = _ref_add(cfg, acc, a * w)
            await ctx.tick()
            d_out, drain_reg, acc = (total if last else drain_reg), d_in, (0 if last else total)
            assert ctx.get(pe.d_out) == d_out, f"step {step}"
            assert ctx.get(pe.w_out) == w and ctx.get(pe.last_out) == last
    _run(pe, bench)


@pytest.mark.parametrize("kwargs,name", [
    (dict(rows=0), "rows"), (dict(cols=65), "cols"), (dict(a_width=99), "a_width"),
    (dict(w_width=1), "w_width"), (dict(dataflow="xy"), "dataflow"),
    (dict(overflow="clip"), "overflow"), (dict(signed="yes"), "signed"),
    (dict(a_width=16, w_width=16, acc_width=31), "acc_width"),
])
def test_config_rejects(kwargs, name):
    with pytest.raises(ParamError) as e:
        SystolicConfig(**kwargs)
    assert e.value.name == name


def test_array_rejects_wrong_config_type():
    with pytest.raises(TypeError):
        SystolicArray({"rows": 4})


@pytest.mark.parametrize("df", ["ws", "os"])
def test_formula_closed_forms(df):
    cfg = SystolicConfig(rows=8, cols=8, dataflow=df)
    # one tile, exactly the array: WS R + M + (R + C); OS K - 1 + (R + C) + R
    if df == "ws":
        assert cfg.gemm_cycles(8, 8, 8) == 8 + 8 + 16
        assert cfg.gemm_cycles(64, 64, 64) == 8 + 63 * 64 + 64 + 16
    else:
        assert cfg.gemm_cycles(8, 8, 8) == 7 + 16 + 8
        assert cfg.gemm_cycles(64, 64, 64) == 63 * 64 + 63 + 16 + 8
    assert 0 < cfg.utilization(64, 64, 64) <= 1
    with pytest.raises(ValueError):
        cfg.gemm_cycles(0, 1, 1)
