"""Amaranth-simulator unit tests of the systolic PE, and config checks."""

import random

import pytest
from amaranth.sim import Simulator

from nnloom.hw.dsp import MULT_LATENCY
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


MULTIPLIERS = ["comb", "portable"]


@pytest.mark.parametrize("multiplier", MULTIPLIERS)
@pytest.mark.parametrize("signed,mode,acc", [(True, "wrap", 16), (True, "saturate", 16),
                                             (False, "saturate", 17), (False, "wrap", 32)])
def test_ws_pe_matches_model(signed, mode, acc, multiplier):
    cfg = SystolicConfig(dataflow="ws", signed=signed, overflow=mode, acc_width=acc,
                         multiplier=multiplier)
    pe = SystolicPE(cfg)
    assert pe.latency == 1 + cfg.mult_latency
    rng = random.Random(7)
    alo, ahi = bounds(cfg.a_width, signed)
    plo, phi = bounds(acc, signed)
    ml = cfg.mult_latency

    async def bench(ctx):
        shadow = active = 0
        products = []   # the product of each step's operands; it reaches the adder ml steps later
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
            products.append(a * weight)
            expect = _ref_add(cfg, psum, products[step - ml] if step >= ml else 0)
            await ctx.tick()
            if first:
                active = shadow
            if load:
                shadow = w
            assert ctx.get(pe.psum_out) == expect, f"step {step}"
            assert ctx.get(pe.a_out) == a and ctx.get(pe.first_out) == first
    _run(pe, bench)


@pytest.mark.parametrize("multiplier", MULTIPLIERS)
@pytest.mark.parametrize("mode", ["wrap", "saturate"])
def test_os_pe_accumulates_and_drains(mode, multiplier):
    cfg = SystolicConfig(dataflow="os", overflow=mode, acc_width=16, multiplier=multiplier)
    pe = SystolicPE(cfg)
    rng = random.Random(3)
    ml = cfg.mult_latency

    async def bench(ctx):
        acc, drain_reg, d_out = 0, 0, 0
        products, lasts = [], []   # both meet the accumulator ml steps later
        for step in range(400):
            a, w = rng.randint(-128, 127), rng.randint(-128, 127)
            d_in = rng.randint(-30000, 30000)
            last_in = rng.random() < 0.15
            ctx.set(pe.a_in, a)
            ctx.set(pe.w_in, w)
            ctx.set(pe.d_in, d_in)
            ctx.set(pe.last_in, last_in)
            valid = True
            if multiplier != "comb":   # a bubble (valid_in low) adds 0
                valid = rng.random() < 0.8
                ctx.set(pe.valid_in, valid)
            products.append(a * w if valid else 0)
            lasts.append(last_in)
            prod, last = (products[step - ml], lasts[step - ml]) if step >= ml else (0, False)
            if multiplier == "comb":
                total = _ref_add(cfg, acc, prod)
            else:
                # the accumulator takes every sum; the step after the last
                # product, d_out takes the finished sum and the adder restarts
                restart = step > ml and lasts[step - ml - 1]
                total = _ref_add(cfg, 0 if restart else acc, prod)
            await ctx.tick()
            if multiplier == "comb":
                d_out, drain_reg, acc = (total if last else drain_reg), d_in, (0 if last else total)
            else:
                d_out, drain_reg, acc = (acc if restart else drain_reg), d_in, total
            assert ctx.get(pe.d_out) == d_out, f"step {step}"
            assert ctx.get(pe.w_out) == w and ctx.get(pe.last_out) == last_in
            if multiplier != "comb":
                assert ctx.get(pe.valid_out) == valid
    _run(pe, bench)


@pytest.mark.parametrize("kwargs,name", [
    (dict(rows=0), "rows"), (dict(cols=65), "cols"), (dict(a_width=99), "a_width"),
    (dict(w_width=1), "w_width"), (dict(dataflow="xy"), "dataflow"),
    (dict(overflow="clip"), "overflow"), (dict(signed="yes"), "signed"),
    (dict(multiplier="dsp48"), "multiplier"), (dict(multiplier=True), "multiplier"),
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


@pytest.mark.parametrize("df", ["ws", "os"])
@pytest.mark.parametrize("multiplier", ["portable", "auto", "ecp5", "ice40"])
def test_registered_multiplier_latency_is_in_the_formula(df, multiplier):
    """A registered multiplier adds MULT_LATENCY + 1 (the edge register) to
    L, and OS one more (the finished sum leaves from the accumulator
    register); the formulas read ``latency``, so each term moves by exactly
    that."""
    comb = SystolicConfig(rows=8, cols=6, dataflow=df)
    reg = SystolicConfig(rows=8, cols=6, dataflow=df, multiplier=multiplier)
    assert comb.mult_latency == comb.edge_latency == comb.acc_latency == 0
    assert comb.latency == 14
    extra = MULT_LATENCY + 1 + (df == "os")
    assert reg.mult_latency == MULT_LATENCY and reg.edge_latency == 1
    assert reg.acc_latency == (df == "os")
    assert reg.latency == 8 + 6 + extra
    assert reg.fifo_depth == reg.latency + (1 if df == "ws" else 8)
    for m, k, n in [(8, 8, 6), (64, 64, 64), (3, 5, 7), (1, 1, 1)]:
        assert reg.gemm_cycles(m, k, n) == comb.gemm_cycles(m, k, n) + extra
        assert reg.tiles(m, k, n) == comb.tiles(m, k, n)


def test_default_is_the_combinational_pe():
    """The accelerator's SystolicConfig (no ``multiplier`` given) keeps the
    one-cycle multiply-add, its latency and its cycle counts."""
    assert SystolicConfig().multiplier == "comb"
    assert SystolicConfig(rows=8, cols=8).gemm_cycles(64, 64, 64) == 8 + 63 * 64 + 64 + 16


@pytest.mark.parametrize("multiplier,rows,df,fifo", [
    # each lowering in both dataflows, with and without the result FIFO, one
    # row (the narrowest counters) and several (the combinational array is
    # linted through ``nnloom emit`` in tests/gen/cli/test_cli.py)
    ("portable", 3, "ws", True), ("portable", 1, "os", False),
    ("ecp5", 3, "ws", True), ("ecp5", 2, "os", False), ("ecp5", 1, "ws", False),
    ("ice40", 1, "os", True), ("ice40", 2, "ws", False),
])
def test_array_is_deterministic_and_lint_clean(multiplier, rows, df, fifo):
    """Every lowering: the same bytes twice, Verilator lint and Yosys check.
    The vendor lowerings are linted against Yosys's own declarations of the
    primitives (ECP5: MULT18X18D from cells_bb.v, less the shift-cascade
    inputs the lowering leaves unconnected on purpose, and FD1S3IX's ports;
    iCE40: the SB_MAC16 model and SB_DFFSR's ports)."""
    from nnloom.gen.verilog import to_verilog
    from nnloom.hw.dsp import ECP5_UNCONNECTED
    from nnloom.sim.lint import verilator_lint, yosys_check
    from nnloom.sim.postsynth import primitive_module

    cfg = SystolicConfig(rows=rows, cols=2, dataflow=df, result_fifo=fifo, multiplier=multiplier)
    text = to_verilog(SystolicArray(cfg))
    assert text == to_verilog(SystolicArray(cfg))
    if multiplier == "ecp5":
        ffs = primitive_module("FD1S3IX", "ecp5", body=False)
        decl = primitive_module("MULT18X18D", "ecp5", omit=ECP5_UNCONNECTED) + ffs
        full = primitive_module("MULT18X18D", "ecp5") + ffs
    elif multiplier == "ice40":
        decl = full = (primitive_module("SB_MAC16", "ice40")
                       + primitive_module("SB_DFFSR", "ice40", body=False))
    else:
        decl = full = ""
    ok, out = verilator_lint(text + decl)
    assert ok, out
    ok, out = yosys_check(text + full)
    assert ok, out
