"""The fast harness (sim/fast.py: Verilator + C++ DRAM and host, no Python
per cycle) against the cocotb path, the verification reference.

digits_mlp at 4 x 4 with resident weights (as ``build`` gives it), four
test digits in sessions of three: a cold run, two kept runs, a cold run
again after the reset.  Every output, CYCLES, BEATS, STALLS, LAYER[i] and
``kept`` must equal the cocotb path's, every output the golden model's.
The same network compiled with streamed weights on the 4 x 4 configuration
of tests/sim/test_accel_v2.py (its Verilator build is shared) stalls on
its weight loads, so CYCLES and STALLS depend on the DRAM's handshake
timing cycle by cycle: they must be equal too.  And ``nnloom simulate
--fast``: the same numbers, and one-line refusals of what it cannot honour.
"""

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from nnloom.gen.accelerator import build
from nnloom.gen.cli import main
from nnloom.gen.compiler import compile_network
from nnloom.hw.accel_core import AccelConfig
from nnloom.sim.accel_sim import digits_inputs, run_inputs, spread
from nnloom.sim.fast import run_inputs_fast

#: tests/sim/test_accel_v2.py's configuration (the same Verilog, one build)
CFG = AccelConfig(size=4, act_depth=1024, wbuf_depth=2048, pbuf_depth=128, acc_depth=32,
                  layers=8, imem_depth=128)
KEYS = ("index", "cycles", "beats", "stalls", "kept", "layers", "batch", "bit_exact",
        "layers_exact")
N = 4


@pytest.fixture(scope="module")
def mlp():
    b = build("examples/digits_mlp.toml", size=4)
    x, _ = digits_inputs(b.network, spread(N))
    return b, np.stack([b.qnet.quantize_input(v) for v in x])


def _same(ref, fast):
    assert len(ref) == len(fast)
    for r, f in zip(ref, fast):
        assert set(r) == set(f), (sorted(r), sorted(f))
        assert np.array_equal(r["output"], f["output"]), (r["index"], r["output"], f["output"])
        assert np.array_equal(f["output"], f["golden"]) and f["bit_exact"], f["index"]
        assert {k: r[k] for k in KEYS} == {k: f[k] for k in KEYS}


@pytest.mark.slow
def test_fast_equals_cocotb_resident(mlp, simulator):
    if simulator != "verilator":
        pytest.skip("the fast harness is a Verilator build; the reference here is too")
    b, xq = mlp
    assert b.config.resident and b.program.preload
    ref = run_inputs(b, xq, sim=simulator, chunk=3)
    stats = {}
    fast = run_inputs_fast(b, xq, chunk=3, stats=stats)
    _same(ref, fast)
    assert [f["kept"] for f in fast] == [False, True, True, False]
    cold, warm = b.program.run_cycles(kept=False), b.program.run_cycles(kept=True)
    assert [f["cycles"] for f in fast] == [cold, warm, warm, cold] and cold > warm
    # BEATS counts from the reset: it grows run by run, and starts again after one
    beats = [f["beats"] for f in fast]
    assert beats[1] == 2 * beats[0] and beats[2] == 3 * beats[0] and beats[3] == beats[0]
    assert stats["sim_cycles"] > sum(f["cycles"] for f in fast) and stats["seconds"] > 0


@pytest.mark.slow
def test_fast_equals_cocotb_streamed_with_stalls(mlp, simulator):
    if simulator != "verilator":
        pytest.skip("the fast harness is a Verilator build; the reference here is too")
    m, xq = mlp
    cfg = replace(CFG, resident=False)
    b = SimpleNamespace(network=m.network, qnet=m.qnet, config=cfg,
                        program=compile_network(m.qnet, cfg))
    ref = run_inputs(b, xq[:2], sim=simulator, chunk=2)
    fast = run_inputs_fast(b, xq[:2], chunk=2)
    _same(ref, fast)
    assert all(f["stalls"] > 0 for f in fast), [f["stalls"] for f in fast]


@pytest.mark.slow
def test_simulate_fast_cli(mlp, tmp_path, capsys):
    b, xq = mlp
    js = tmp_path / "fast.json"
    assert main(["simulate", "examples/digits_mlp.toml", "--size", "4", "--samples", str(N),
                 "--fast", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "fast harness:" in out and "cycles/s" in out
    s = json.loads(js.read_text())
    assert s["bit_exact"] and s["layers_exact"] and s["n"] == N
    assert [r["sample"] for r in s["results"]] == spread(N)
    # one session of N (the CLI's chunk of 5): a cold run, then kept ones
    cold, warm = b.program.run_cycles(kept=False), b.program.run_cycles(kept=True)
    assert [r["cycles"] for r in s["results"]] == [cold] + [warm] * (N - 1)
    assert s["fast"]["sim_cycles"] > 0 and s["fast"]["cycles_per_second"] > 0
    ref = run_inputs_fast(b, xq, chunk=5)
    assert [r["rtl"] for r in s["results"]] == [int(np.argmax(r["output"])) for r in ref]


def test_simulate_fast_refuses_what_it_cannot_honour(one_line_error):
    one_line_error(["simulate", "digits_mlp", "--fast", "--pause", "0.2"],
              "--pause: --fast models a DRAM without pauses", "got 0.2")
    one_line_error(["simulate", "digits_mlp", "--fast", "--sim", "icarus"],
              "--sim: --fast runs on Verilator", "got icarus")
