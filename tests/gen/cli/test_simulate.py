"""`nnloom simulate`: generate's design options, any network, the user's
samples, seeded random ones, and a JSON summary whose ``bit_exact`` is
measured.

The simulations are of one design, the 2 x 2 array on a 16-bit bus that
the digits MLP gets for --size 2 or --board icebreaker: the 48-input MLP
below has the same shapes modulo its input, so the same AccelConfig, the
same Verilog and the same cached Verilator build (tests/sim/test_accel.py
builds it too).  Four short runs of two or three inferences each.
"""

import json

import numpy as np
import pytest

from nnloom.gen.accelerator import build
from nnloom.gen.cli import main
from nnloom.gen.frontend import load_network
from nnloom.sim.accel_sim import random_inputs

TOML = """name = "tiny48"
weights = "tiny48.npz"

[input]
shape = [48]

[[layers]]
type = "fc"
name = "fc1"
out = 32

[[layers]]
type = "relu"
name = "relu1"

[[layers]]
type = "fc"
name = "fc2"
out = 16

[[layers]]
type = "relu"
name = "relu2"

[[layers]]
type = "fc"
name = "fc3"
out = 10
"""


@pytest.fixture
def tiny(tmp_path):
    """A non-digits network with seeded weights, and three samples for it."""
    path = tmp_path / "tiny48.toml"
    path.write_text(TOML.replace('weights = "tiny48.npz"\n', ""))
    rng = np.random.default_rng(5)
    shapes = load_network(path).weight_shapes()
    np.savez(tmp_path / "tiny48.npz", **{k: rng.normal(0, 0.3, s) for k, s in shapes.items()})
    path.write_text(TOML)
    x = rng.uniform(0, 1, (3, 48))
    np.save(tmp_path / "x.npy", x)
    return path, x




def test_batch_out_of_range_is_refused_everywhere(one_line_error, tmp_path):
    msg = "nnloom: --batch: expected an integer in 1..255, got 0\n"
    for argv in (["simulate", "digits_mlp", "--batch", "0"],
                 ["generate", "digits_mlp", "--batch", "0", "-o", str(tmp_path / "out")],
                 ["plan", "digits_mlp", "--batch", "0"]):
        assert one_line_error(argv).endswith(msg.split("nnloom: ", 1)[1])
    assert not (tmp_path / "out").exists()


def test_bad_inputs_are_one_line(tiny, tmp_path, one_line_error):
    path, _ = tiny
    np.save(tmp_path / "wrong.npy", np.zeros((3, 64)))
    one_line_error(["simulate", str(path), "--input", str(tmp_path / "wrong.npy")],
              f"--input: {tmp_path / 'wrong.npy'}: shape: expected samples shaped [48] or "
              "[N, 48], got [3, 64]")
    (tmp_path / "text.npy").write_text("not numpy")
    one_line_error(["simulate", str(path), "--input", str(tmp_path / "text.npy")],
              str(tmp_path / "text.npy"), "expected a readable .npy file")
    one_line_error(["simulate", str(path), "--input", str(tmp_path / "x.npy"), "--samples", "4"],
              "--samples: expected 1..3")
    one_line_error(["simulate", str(path), "--samples", "0"], "--samples: expected 1..1000")
    one_line_error(["simulate", "digits_mlp", "--size", "6"], "--size: expected 2 or a multiple")


def test_random_inputs_are_seeded(tiny):
    net = load_network(tiny[0])
    a, b, c = random_inputs(net, 2, 3), random_inputs(net, 2, 3), random_inputs(net, 2, 4)
    assert a.shape == (2, 48) and np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.slow
def test_user_samples_of_any_network(tiny, tmp_path, capsys):
    path, x = tiny
    js = tmp_path / "sim.json"
    assert main(["simulate", str(path), "--size", "2", "--input", str(tmp_path / "x.npy"),
                 "--json", str(js)]) == 0
    s = json.loads(js.read_text())
    b = build(path, size=2, calibration=x)          # as simulate builds it: calibrated on x
    assert s["config"] == b.design.to_dict()
    # the design the digits MLP gets at --size 2 (one cached Verilator build for both)
    assert s["config"] == build("examples/digits_mlp.toml", size=2).design.to_dict()
    assert s["n"] == 3 and s["bit_exact"] is True and s["layers_exact"] is True
    assert "accuracy" not in s and "agreement" not in s          # no labels, none invented
    assert s["inputs"] == f"samples from {tmp_path / 'x.npy'}"
    # whole inference, DMA included, above the compute cycles; utilization from it
    assert s["cycles"] > b.program.predicted_cycles()
    # and within the planner's serial estimate (compute + fetch + every DRAM beat)
    assert s["cycles"] <= b.program.estimated_cycles()
    macs = sum(L.macs for L in b.program.layers)
    assert 0 < s["utilization"] <= 1 and s["utilization"] == pytest.approx(macs / (4 * s["cycles"]))
    assert [(r["name"], r["cycles"]) for r in s["layers"]] == [(L.name, L.cycles) for L in b.program.layers]
    assert all(0 <= r["utilization"] <= 1 for r in s["layers"])
    assert "3 samples from" in capsys.readouterr().out


@pytest.mark.slow
def test_random_samples_on_a_board_plan(tiny, tmp_path):
    path, _ = tiny
    js, plan_json = tmp_path / "sim.json", tmp_path / "plan.json"
    assert main(["simulate", str(path), "--board", "orangecrab-25f", "--samples", "2", "--seed",
                 "3", "--json", str(js)]) == 0
    assert main(["plan", str(path), "--board", "orangecrab-25f", "-o", str(plan_json)]) == 0
    s = json.loads(js.read_text())
    assert s["config"] == json.loads(plan_json.read_text())["config"]
    assert s["n"] == 2 and s["bit_exact"] is True and s["inputs"] == "random samples (seed 3)"
    assert "accuracy" not in s and s["board"] == "orangecrab-25f"


@pytest.mark.slow
def test_digits_by_default_with_labels(tmp_path):
    js = tmp_path / "sim.json"
    assert main(["simulate", "digits_mlp", "--board", "orangecrab-25f", "--samples", "2",
                 "--json", str(js)]) == 0
    s = json.loads(js.read_text())
    assert s["inputs"] == "digits" and s["bit_exact"] is True and 0 <= s["accuracy"] <= 1
    assert [r["sample"] for r in s["results"]] == [0, 358]


@pytest.mark.slow
def test_bit_exact_is_measured(tiny, tmp_path, monkeypatch, capsys):
    """A golden model that disagrees makes ``bit_exact`` false in the JSON
    and the command fail (status 1): the flag is computed, not assumed."""
    from nnloom.sim.golden import qnet as golden

    real = golden.run

    def off_by_one(qnet, x):
        outs = real(qnet, x)
        return outs[:-1] + [np.asarray(outs[-1]) + 1]
    monkeypatch.setattr(golden, "run", off_by_one)
    path, _ = tiny
    js = tmp_path / "sim.json"
    assert main(["simulate", str(path), "--size", "2", "--input", str(tmp_path / "x.npy"),
                 "--samples", "2", "--json", str(js)]) == 1
    s = json.loads(js.read_text())
    assert s["bit_exact"] is False and s["layers_exact"] is True
    assert [r["bit_exact"] for r in s["results"]] == [False, False]
    err = capsys.readouterr().err
    assert "nnloom: simulation failed: simulate: 2 of 2 inferences on the RTL are wrong" in err
