"""Minerva FC lanes: config errors, lint, determinism, the golden model
against float arithmetic, and the cocotb regression (two builds: random
layers on each, the study's network run on one)."""

import json

import numpy as np
import pytest

from nnloom.gen.frontend import MINERVA_ACT, MINERVA_WEIGHT
from nnloom.gen.verilog import to_verilog
from nnloom.hw.minerva import MinervaConfig, MinervaLanes
from nnloom.hw.params import ParamError
from nnloom.sim.golden.minerva import fc_layer
from nnloom.sim.lint import verilator_lint, yosys_check
from nnloom.sim.runner import run


@pytest.mark.parametrize("field,value", [("lanes", 0), ("max_inputs", 0), ("acc_width", 10),
                                         ("mode", "ecc"), ("rate_bits", 7)])
def test_bad_params(field, value):
    with pytest.raises(ParamError, match=field):
        MinervaConfig(**{field: value})


def test_lint_and_determinism():
    cfg = MinervaConfig(lanes=2, max_inputs=8, max_outputs=5, mode="runtime")
    text = to_verilog(MinervaLanes(cfg))
    assert text == to_verilog(MinervaLanes(cfg))
    for check in (verilator_lint, yosys_check):
        ok, out = check(text)
        assert ok, out


def test_golden_fc_matches_real_arithmetic():
    """Codes in Q2.4 x Q2.6: acc * 2**-10 is the exact real dot product of the
    kept inputs; act is its ReLU rounded half up to Q2.4 and saturated."""
    cfg = MinervaConfig(lanes=3, max_inputs=16, max_outputs=8)
    rng = np.random.default_rng(1)
    x = rng.integers(-32, 32, (50, 16))
    w = rng.integers(-128, 128, (7, 16))
    thr = 9
    acc, act, skipped = fc_layer(x, w, thr, cfg)
    xr, wr = MINERVA_ACT.to_float(x), MINERVA_WEIGHT.to_float(w)
    real = (xr * (np.abs(x) >= thr)) @ wr.T
    assert np.array_equal(acc * 2.0 ** -10, real)
    want = np.clip(np.floor(np.maximum(real, 0) * 16 + 0.5), 0, 31)
    assert np.array_equal(act, want)
    assert np.array_equal(skipped, (np.abs(x) < thr).sum(axis=1) * 3 * 3)


def _cases(cfg, modes):
    n = cfg.max_inputs
    c = [
        dict(n_in=n, n_out=cfg.max_outputs, threshold=0, mode=modes[0], check_cycles=True),
        dict(n_in=3, n_out=1, threshold=20, mode=modes[-1], check_cycles=True),
        dict(n_in=1, n_out=cfg.max_outputs, threshold=0, mode=modes[0], vectors=4),
        dict(n_in=n, n_out=cfg.max_outputs, threshold=17, mode=modes[-1], vectors=3,
             valid_prob=0.5, ready_prob=0.3),
        dict(n_in=n - 1, n_out=cfg.lanes + 1, threshold=8, mode=modes[0], vectors=2,
             valid_prob=0.8, ready_prob=0.6),
    ]
    for k, mode in enumerate(modes):  # faults in every mode, with back-pressure
        for rate in (40, 120):
            c.append(dict(n_in=n, n_out=cfg.max_outputs, threshold=6, mode=mode, vectors=3,
                          inj_en=True, rate=rate, valid_prob=0.7, ready_prob=0.5))
    return [dict(case, seed=s) for s, case in enumerate(c)]


CONFIGS = {
    "l2-runtime-persistent": (MinervaConfig(lanes=2, max_inputs=8, max_outputs=5,
                                            mode="runtime", injector="persistent",
                                            rate_bits=8, seed=11), ["none", "word", "bit"]),
    "l3-bit-transient": (MinervaConfig(lanes=3, max_inputs=6, max_outputs=7, mode="bit",
                                       injector="transient", rate_bits=8, seed=4), ["bit"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_minerva_lanes(name, simulator):
    cfg, modes = CONFIGS[name]
    run(MinervaLanes(cfg), "nnloom.sim.tb.minerva_tb", sim=simulator, testcase="layers",
        params={"config": cfg.to_dict(), "cases": _cases(cfg, modes),
                "seed": sum(map(ord, name))})


@pytest.mark.slow
def test_minerva_network_run(simulator, tmp_path):
    """The testbench's ``network`` run (the study's RTL points, bench/minerva_faults.py)
    on a tiny two-layer MLP: faulty weights loaded once per layer, every beat
    bit-exact against the lane model layer after layer, the faults really drawn."""
    name = "l2-runtime-persistent"
    cfg, _ = CONFIGS[name]
    rng = np.random.default_rng(12)
    bias = 1 << cfg.a_frac                       # the constant input 1.0
    wlo, whi = -(1 << (cfg.w_width - 1)), (1 << (cfg.w_width - 1)) - 1
    n_in, hidden, n_out = cfg.max_inputs - 1, cfg.max_outputs, 3
    layers = [rng.integers(wlo, whi + 1, (hidden, n_in + 1)),
              rng.integers(wlo, whi + 1, (n_out, hidden + 1))]
    inputs = rng.integers(0, 1 << (cfg.a_width - 1), (4, n_in))
    out = tmp_path / "rtl.json"
    run(MinervaLanes(cfg), "nnloom.sim.tb.minerva_tb", sim=simulator, testcase="network",
        params={"config": cfg.to_dict(), "seed": sum(map(ord, name)),
                "network": {"layers": [w.tolist() for w in layers], "inputs": inputs.tolist(),
                            "bias": bias, "threshold": 3, "mode": "bit", "rate": 60}},
        extra_env={"NNLOOM_MINERVA_OUT": str(out)})
    res = json.loads(out.read_text())
    assert len(res["pred"]) == len(inputs) and all(0 <= p < n_out for p in res["pred"])
    assert sum(res["faulty_reads"]) > 0 and sum(res["reads"]) > sum(res["faulty_reads"])


def test_cli_emit_default(tmp_path):
    from nnloom.gen.cli import main
    out = tmp_path / "minerva.v"
    assert main(["emit", "minerva-lane", "-o", str(out)]) == 0
    text = out.read_text()
    assert text == to_verilog(MinervaLanes(MinervaConfig()))
    for check in (verilator_lint, yosys_check):
        ok, msg = check(text)
        assert ok, msg
    assert main(["emit", "minerva-lane", "--acc-width", "8"]) == 2
