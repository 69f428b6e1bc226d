"""The sweep's rtl stage is ``nnloom simulate`` on the point's design."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow


def test_the_rtl_stage_is_nnloom_simulate(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(textwrap.dedent("""
        networks = ["digits_mlp"]
        stages = ["model", "rtl"]
        [axes]
        board = ["icebreaker", "orangecrab-25f"]
        size = [2]
        [rtl]
        samples = 2
    """))
    cli = [sys.executable, "-m", "nnloom.gen.cli"]
    sweep = subprocess.run([*cli, "sweep", str(spec), "-o", str(tmp_path / "out"), "--serial"],
                           capture_output=True, text=True)
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    sim = subprocess.run([*cli, "simulate", "digits_mlp", "--size", "2", "--samples", "2",
                          "--json", str(tmp_path / "s.json")], capture_output=True, text=True)
    assert sim.returncode == 0, sim.stderr[-2000:]
    want = json.loads((tmp_path / "s.json").read_text())
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for row in rows:
        assert row["rtl_bit_exact"] == "true" and row["rtl_layers_exact"] == "true"
        assert int(row["rtl_samples"]) == want["n"] == 2
        assert float(row["rtl_cycles"]) == want["cycles"]
        assert float(row["rtl_accuracy"]) == want["accuracy"]
        # the compiler's model, which the RTL's layer counters equal, is the model stage's cycles
        assert int(row["rtl_model_cycles"]) == int(row["model_cycles"])
        assert float(row["rtl_latency_us"]) == float(row["rtl_cycles"]) / float(row["clock_mhz"])
    # the RTL does not depend on the board: the two points share one simulation
    assert rows[0]["rtl_seconds"] == rows[1]["rtl_seconds"]
