"""nnloom.gen.planner.plan: it searches exactly the designs the generator
builds, never over the fit check, with the compiler's cycles; a budget that
nothing fits names one that would."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnloom.gen.accelerator import ARRAY_SIDES, Design, quantize_network, sized
from nnloom.gen.frontend import Conv2d, Dense, Flatten, MaxPool, Network, ReLU, load_network
from nnloom.gen.perf import estimate
from nnloom.gen.planner import BOARDS, Board, BoardError, Budget, PlanError, board, plan
from nnloom.gen.planner.fit import board_fits
from nnloom.gen.planner.plan import PLACEHOLDER_LIMIT, planning_qnet
from nnloom.hw.errors import InputError
from nnloom.hw.systolic import SystolicConfig

MLP = Network("mlp", (64,), [Dense("fc1", 48), ReLU("r1"), Dense("fc2", 10)])
CNN = Network("cnn", (1, 8, 8), [Conv2d("c1", 4, (3, 3), padding=1), ReLU("r1"), MaxPool("p1", 2),
                                 Flatten("f"), Dense("fc", 10)])
NETS = {"mlp": MLP, "cnn": CNN}
QNETS = {name: planning_qnet(net)[0] for name, net in NETS.items()}


def _target(budget):
    return Board("the budget", "", "", budget)


def test_plan_is_the_fastest_buildable_design_that_fits():
    """Every candidate is sized() for its side, as generate builds it, with
    resident or streamed weights: the faster of those that fit, else the
    streamed one; the plan is the fitting one with the fewest estimated
    cycles (ties: smaller)."""
    for name, net in NETS.items():
        for bname, b in BOARDS.items():
            if bname == "icebreaker":       # refused: test_the_icebreaker_is_refused
                continue
            p = plan(net, b.budget, board=bname)
            assert [c.size for c in p.candidates] == list(ARRAY_SIDES)
            fits = board_fits(b)
            for c in p.candidates:
                options, fitting = [], []
                for resident in (True, False):
                    cfg, prog = sized(QNETS[name], c.size, resident=resident)
                    options.append((cfg, prog))
                    try:
                        fits(cfg, prog)
                        fitting.append((prog.estimated_cycles(), prog.predicted_cycles(), cfg,
                                        prog))
                    except InputError as e:
                        error = str(e)
                if fitting:
                    est, cyc, cfg, prog = min(fitting, key=lambda t: (t[0], t[1]))
                    assert c.fits
                else:
                    cfg, prog = options[-1]
                    assert not c.fits and c.error == error
                assert (c.config, c.cycles, c.estimate) == (cfg, prog.predicted_cycles(),
                                                            prog.estimated_cycles())
            ok = [c for c in p.candidates if c.fits]
            best = min(ok, key=lambda c: (c.estimate, c.cycles, c.size))
            assert isinstance(p.config, Design) and p.accel == best.config
            assert p.config.rows == p.config.cols == best.size and p.config.dataflow == "ws"
            assert p.totals["cycles"] == p.program.predicted_cycles() == best.cycles
            assert p.totals["cycles"] == sum(lp.cycles for lp in p.layers)
            assert p.inferences_per_second == pytest.approx(b.budget.clock_mhz * 1e6 / best.estimate)
            assert p.placeholder_weights and any("placeholder" in r for r in p.reasons)


def test_the_fit_is_the_fpga_flows():
    """The planner plans with the check nnloom fpga build makes before synthesis."""
    from nnloom.fpga import fit as fpga_fit
    from nnloom.gen.planner import fit

    assert fpga_fit.check_fit is fit.check_fit and fpga_fit.board_estimate is fit.board_estimate


budgets = st.builds(
    Budget, dsps=st.integers(0, 200), luts=st.integers(0, 40_000), ffs=st.integers(0, 40_000),
    bram_bits=st.integers(0, 1 << 22), clock_mhz=st.sampled_from([12.0, 25.0, 100.0]),
    dram_bytes_per_cycle=st.sampled_from([0.5, 2.0, 16.0]),
    family=st.sampled_from(["ecp5", "ice40"]), bram_block_bits=st.sampled_from([4096, 18432]),
    lut_multipliers=st.booleans())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(budget=budgets, net=st.sampled_from(sorted(NETS)))
def test_never_over_the_fit_and_no_fit_names_a_budget_that_fits(budget, net):
    qnet, fits = QNETS[net], board_fits(_target(budget))
    try:
        p = plan(NETS[net], budget, qnet=qnet)
    except PlanError as e:
        m = e.minimum
        assert any(getattr(budget, k) < getattr(m, k) for k in Budget.HARD)
        assert m.describe() in str(e) and budget.describe() in str(e)
        # the named budget fits the smallest design, so it has a plan
        board_fits(_target(m))(*sized(qnet, ARRAY_SIDES[0], resident=False))
        plan(NETS[net], m, qnet=qnet)
        return
    fits(p.accel, p.program)          # raises if over
    assert p.usage["dsps"] <= budget.dsps and p.usage["luts"] <= budget.luts


def test_nothing_fits_is_one_plan_error():
    tiny = Budget(dsps=8, luts=500, ffs=5280, bram_bits=30 * 4096 + 4 * 262144, clock_mhz=12,
                  dram_bytes_per_cycle=0.5, family="ice40", bram_block_bits=4096)
    with pytest.raises(PlanError, match=r"^expected at least 8 DSPs, \d+ LUT4.* got 8 DSPs, 500 LUT4") as e:
        plan(MLP, tiny, qnet=QNETS["mlp"])
    assert "\n" not in str(e.value) and "LUT4s: needs" in str(e.value)
    assert plan(MLP, e.value.minimum, qnet=QNETS["mlp"]).config.rows == 2


#: an iCE40 budget with the UP5K's DSPs and block RAM but room for the v2
#: accelerator's logic (the UP5K itself is refused: about 5,800 logic cells)
BIG_ICE40 = BOARDS["icebreaker"].budget.replace(luts=9000, ffs=9000)


def test_without_lut_multipliers_every_pe_has_a_dsp():
    b = BIG_ICE40
    # the 2 x 2 has one post-processing lane (4 SB_MAC16): the other 4 take the PEs
    p = plan(MLP, b, board="icebreaker", qnet=QNETS["mlp"])
    assert p.config.rows == 2 and p.config.accel.lanes == 1
    assert p.usage["lut_mults"] == 0 and p.usage["dsps"] == 8
    with pytest.raises(PlanError, match="allows no LUT multipliers"):
        plan(MLP, b.replace(dsps=7, lut_multipliers=False), board="icebreaker", qnet=QNETS["mlp"])
    p = plan(MLP, b.replace(dsps=7), board="icebreaker", qnet=QNETS["mlp"])
    assert p.usage["lut_mults"] == 1


def test_the_icebreaker_is_refused():
    """The UP5K's 5,280 logic cells hold no v2 design (the 2 x 2 needs about 5,800)."""
    with pytest.raises(PlanError, match=r"a 2 x 2 array on icebreaker does not fit: logic cells"):
        plan(MLP, BOARDS["icebreaker"].budget, board="icebreaker", qnet=QNETS["mlp"])


def test_networks_no_design_runs_are_one_line_errors(tmp_path):
    csv = tmp_path / "g.csv"
    csv.write_text("Layer, M, N, K,\ng1, 64, 16, 27,\n")
    with pytest.raises(InputError, match="SCALE-Sim topology"):
        plan(load_network(csv), BOARDS["ulx3s-85f"].budget)
    with pytest.raises(InputError, match=r"at most 4,000,000 parameters .*got no weights for 62,378,344"):
        plan(load_network("examples/alexnet.toml"), BOARDS["ulx3s-85f"].budget)
    assert PLACEHOLDER_LIMIT == 4_000_000
    # a map larger than any activation bank: every side refuses it
    big = Network("big", (512, 64, 64), [Conv2d("c", 8, (1, 1)), ReLU("r")])
    with pytest.raises(InputError, match=r"^big: a 32 x 32 array: act_depth: expected 16\.\.32768"):
        plan(big, BOARDS["ulx3s-85f"].budget)


def test_placeholder_weights_plan_the_trained_design():
    """The design depends on the shapes only: digits_mlp without its weights
    plans the same design and cycles as with them."""
    trained = load_network("examples/digits_mlp.toml")
    bare = Network(trained.name, trained.input_shape, trained.layers, source=trained.source)
    for name in ("ulx3s-45f", "ulx3s-85f"):
        a, b = plan(trained, BOARDS[name].budget, board=name), plan(bare, BOARDS[name].budget, board=name)
        assert a.config == b.config and a.totals["cycles"] == b.totals["cycles"]
        assert not a.placeholder_weights and b.placeholder_weights
        # with weights the program is generate's own
        q = quantize_network(trained)
        assert a.program.image() == sized(q, a.accel.size, resident=a.accel.resident)[1].image()


def test_reasons_and_fields():
    p = plan(MLP, BIG_ICE40, board="icebreaker", qnet=QNETS["mlp"])
    assert p.engine == "systolic" and p.clock_mhz == 12.0 and p.board == "icebreaker"
    assert set(p.buffers) == {"act", "weight", "param", "out", "program"}
    assert f"{p.config.rows}x{p.config.cols} WS" in " ".join(p.reasons)
    j = p.to_json()
    assert j["config"] == p.config.to_dict() == Design(p.accel).to_dict()
    assert Design.from_dict(j["config"]) == p.config
    assert [layer["name"] for layer in j["layers"]] == [L.name for L in p.program.layers]
    assert j["cycles"] == p.totals["cycles"]


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
    assert estimate(cfg, {"act": 100}, 100)["bram_bits"] == 800
