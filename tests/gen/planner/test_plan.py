"""nnloom.gen.planner.plan: never over budget, the no-fit error names the smallest budget, best design."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnloom.gen.planner import BOARDS, Budget, BoardError, board
from nnloom.gen.frontend import Conv2d, Dense, Flatten, MaxPool, Network, ReLU
from nnloom.gen.perf import Memory, buffer_needs, layer_steps, network_perf
from nnloom.gen.planner import SEARCH_DIMS, PlanError, plan
from nnloom.gen.perf import estimate
from nnloom.hw.systolic import SystolicConfig

MLP = Network("mlp", (64,), [Dense("fc1", 48), ReLU("r1"), Dense("fc2", 10)])
CNN = Network("cnn", (1, 8, 8), [Conv2d("c1", 4, (3, 3), padding=1), ReLU("r1"), MaxPool("p1", 2),
                                 Flatten("f"), Dense("fc", 10)])
NETS = {"mlp": MLP, "cnn": CNN}


def _check_within(p, budget):
    # recompute the usage from the plan's own config and buffers, independently of the search
    use = estimate(p.config, p.buffers, budget.dsps, budget.bram_block_bits, budget.family)
    assert use == p.usage
    for k in Budget.HARD:
        assert use[k] <= getattr(budget, k), (k, use, budget)


def _amount(small, large):
    """Mostly comfortable amounts, sometimes scarce ones (both branches get exercised)."""
    return st.one_of(st.integers(0, small), st.integers(small, large), st.integers(small, large))


budgets = st.builds(
    Budget, dsps=_amount(2, 200), luts=_amount(1500, 60_000), ffs=_amount(1500, 60_000),
    bram_bits=_amount(80_000, 1 << 21), clock_mhz=st.sampled_from([12.0, 25.0, 100.0]),
    dram_bytes_per_cycle=st.sampled_from([0.25, 2.0, 16.0]),
    family=st.sampled_from(["ecp5", "ice40"]), bram_block_bits=st.sampled_from([1, 4096, 18432]),
    lut_multipliers=st.booleans())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(budget=budgets, net=st.sampled_from(sorted(NETS)))
def test_never_over_budget_and_no_fit_names_smallest(budget, net):
    network = NETS[net]
    try:
        p = plan(network, budget)
    except PlanError as e:
        m = e.minimum
        assert any(getattr(budget, k) < getattr(m, k) for k in Budget.HARD)
        assert str(m.dsps) in str(e) and str(m.luts) in str(e) and str(m.bram_bits) in str(e)
        _check_within(plan(network, m), m)                # the named budget fits
        for k in Budget.HARD:                              # and nothing smaller does
            if getattr(m, k) > 0:
                with pytest.raises(PlanError):
                    plan(network, m.replace(**{k: getattr(m, k) - 1}))
        return
    _check_within(p, budget)
    assert p.totals["cycles"] == sum(lp.cycles for lp in p.layers)


def test_minimum_named_for_a_tiny_budget():
    tiny = Budget(dsps=0, luts=100, ffs=100, bram_bits=0, clock_mhz=12, dram_bytes_per_cycle=1)
    with pytest.raises(PlanError, match=r"expected at least .* got 0 DSPs, 100 LUT4") as info:
        plan(MLP, tiny)
    m = info.value.minimum
    assert m.dsps == 0 and m.luts > 100           # no DSPs: the multiplier goes to LUTs
    assert plan(MLP, m).config.rows * plan(MLP, m).config.cols == 1


def test_plan_is_fastest_with_ideal_buffers():
    """With ample resources the plan beats every searched array at its ideal buffers."""
    big = Budget(dsps=10_000, luts=10**7, ffs=10**7, bram_bits=1 << 26, clock_mhz=100,
                 dram_bytes_per_cycle=64)
    p = plan(CNN, big)
    for df in ("ws", "os"):
        for r in SEARCH_DIMS[::3]:
            for c in SEARCH_DIMS[::3]:
                cfg = SystolicConfig(rows=r, cols=c, dataflow=df)
                needs = buffer_needs(cfg, layer_steps(CNN))
                mem = Memory(**{k: v[-1] for k, v in needs.items()}, dram_bytes_per_cycle=64)
                assert p.totals["cycles"] <= network_perf(CNN, config=cfg, memory=mem).totals["cycles"]


def test_fixed_config_plans_only_buffers():
    cfg = SystolicConfig(rows=4, cols=8, dataflow="os")
    p = plan(CNN, BOARDS["ulx3s-85f"].budget, config=cfg, board="ulx3s-85f")
    assert p.config == cfg and p.board == "ulx3s-85f"
    assert any("fixed" in r for r in p.reasons)
    with pytest.raises(PlanError, match="a 4x8 OS array"):
        plan(CNN, BOARDS["icebreaker"].budget.replace(luts=500), config=cfg)


def test_reasons_and_fields():
    p = plan(MLP, BOARDS["icebreaker"].budget, board="icebreaker")
    assert p.engine == "systolic" and p.clock_mhz == 12.0 and set(p.buffers) == {"act", "weight", "out"}
    assert p.dram_bytes_per_cycle == 0.5 and len(p.reasons) >= 4
    assert f"{p.config.rows}x{p.config.cols}" in " ".join(p.reasons)
    assert p.inferences_per_second == pytest.approx(12e6 / p.totals["cycles"])
    j = p.to_json()
    assert [layer["name"] for layer in j["layers"]] == ["fc1", "r1", "fc2"]


def test_boards():
    assert board("icebreaker").budget.dsps == 8 and board("icebreaker").budget.luts == 5280
    assert board("icebreaker").budget.bram_bits == 30 * 4096 + 4 * 256 * 1024
    ulx = board("ulx3s-85f").budget
    assert (ulx.dsps, ulx.luts, ulx.bram_bits, ulx.clock_mhz) == (156, 83640, 208 * 18432, 25.0)
    for b in BOARDS.values():
        cls = b.platform_class()                  # the amaranth-boards class exists
        assert cls.device.upper() == b.device.upper()
    with pytest.raises(BoardError, match="--board: expected one of"):
        board("de0")
    with pytest.raises(BoardError, match="budget: luts"):
        Budget(dsps=1, luts=-1, ffs=1, bram_bits=1, clock_mhz=1, dram_bytes_per_cycle=1)


def test_resource_estimate():
    from nnloom.gen.perf import COEFFS, array_estimate

    cfg = SystolicConfig(rows=4, cols=6)
    full = array_estimate(cfg, 100)
    short = array_estimate(cfg, 10)
    assert (full["dsps"], full["lut_mults"]) == (24, 0) and (short["dsps"], short["lut_mults"]) == (10, 14)
    assert short["luts"] - full["luts"] == round(14 * COEFFS["lut_per_mult_bit"] * 64)
    # ECP5: the result FIFO in distributed RAM (LUTs); iCE40: in flip-flops
    ice, ecp = array_estimate(cfg, 100, "ice40"), array_estimate(cfg, 100, "ecp5")
    assert ice["ffs"] - ecp["ffs"] == cfg.fifo_depth * 6 * 32
    assert ice["bram_bits"] == ecp["bram_bits"] == 0
    # never below yosys synth_ecp5 of the array (LUT4 + 2 CCU2C + 4 DPR16X4, FFs): docs in nnloom.gen.perf.resources
    for (n, df), (luts, ffs) in {(4, "ws"): (570, 1013), (4, "os"): (1094, 1916),
                                  (8, "ws"): (2908, 4585)}.items():
        est = array_estimate(SystolicConfig(rows=n, cols=n, dataflow=df), 156)
        assert est["dsps"] == n * n and est["luts"] >= luts and est["ffs"] >= ffs
    # and yosys synth_ice40 -dsp (SB_LUT4, every SB_DFF*)
    for (n, df), (luts, ffs) in {(2, "ws"): (220, 370), (4, "ws"): (1259, 2165),
                                  (4, "os"): (1753, 3452)}.items():
        est = array_estimate(SystolicConfig(rows=n, cols=n, dataflow=df), 156, "ice40")
        assert est["dsps"] == n * n and est["luts"] >= luts and est["ffs"] >= ffs


@pytest.mark.parametrize("df", ["ws", "os"])
def test_search_scoring_equals_the_model(df):
    """The search scores every buffer combination by adding per-buffer DRAM
    terms; the chosen one must predict what gen.perf predicts directly."""
    from nnloom.gen.planner.plan import _best_buffers

    budget = BOARDS["icebreaker"].budget.replace(bram_bits=40_000, bram_block_bits=1)
    for r, c in ((1, 1), (2, 3), (4, 4)):
        cfg = SystolicConfig(rows=r, cols=c, dataflow=df)
        for net in NETS.values():
            cycles, dram, bits, bufs = _best_buffers(cfg, layer_steps(net), budget, 30_000)
            perf = network_perf(net, config=cfg, memory=Memory(**bufs, dram_bytes_per_cycle=0.5))
            assert (perf.totals["cycles"], perf.totals["dram_bytes"]) == (cycles, dram)
            assert bits == 8 * sum(bufs.values()) <= 30_000


def test_minimum_respects_the_dataflow_restriction():
    tiny = Budget(dsps=1, luts=10, ffs=10, bram_bits=10, clock_mhz=12, dram_bytes_per_cycle=1)
    for df in ("ws", "os"):
        with pytest.raises(PlanError) as info:
            plan(MLP, tiny, dataflows=(df,))
        m = info.value.minimum
        assert plan(MLP, m, dataflows=(df,)).config.dataflow == df
        with pytest.raises(PlanError):
            plan(MLP, m.replace(luts=m.luts - 1), dataflows=(df,))


def test_without_lut_multipliers_every_pe_has_a_dsp():
    b = BOARDS["icebreaker"].budget.replace(lut_multipliers=False)
    p = plan(CNN, b)
    assert p.usage["lut_mults"] == 0 and p.config.rows * p.config.cols <= b.dsps
    with pytest.raises(PlanError) as info:
        plan(CNN, b.replace(dsps=0))
    assert info.value.minimum.dsps == 1
