"""The sweep's fpga stage: ``nnloom fpga build``'s figures per point."""

from __future__ import annotations

import textwrap

from nnloom.fpga import sweep_stage
from nnloom.gen.cli.sweep import STAGES
from nnloom.gen.sweep import load_spec, run_stage


def _points(tmp_path, axes):
    path = tmp_path / "spec.toml"
    path.write_text(textwrap.dedent(f"""
        networks = ["digits_mlp"]
        stages = ["fpga"]
        [axes]
        {axes}
    """))
    return load_spec(path, STAGES).points()


def test_a_design_that_does_not_fit_stops_before_the_tools(tmp_path):
    (p,) = _points(tmp_path, 'board = ["icebreaker"]\nsize = [4]')
    out = run_stage(sweep_stage.fpga_stage, p.network.network, p.stage_config(STAGES["fpga"]))
    assert out["error"].startswith("FitError: digits_mlp on icebreaker (4 x 4 array) does not "
                                   "fit: LUT4s: needs")
    assert out["seconds"] < 30


def test_the_row_is_the_builds_report(tmp_path, monkeypatch):
    calls = []

    def fake_build(path, board, out_dir, **kw):
        calls.append((board, kw["size"], kw["clock_mhz"]))
        return {"mem_depth": 2048, "build": {
            "fmax_mhz": 61.8, "target_mhz": kw["clock_mhz"] or 25.0, "seconds": 74.0,
            "resources": {"luts": [5183, 83640], "ffs": [2947, 83640], "dsps": [20, 156],
                          "bram": [6, 208]}}}

    monkeypatch.setattr(sweep_stage, "build_network", fake_build)
    board, faster = _points(tmp_path, 'board = ["ulx3s-85f"]\nsize = [4]\nclock_mhz = ["board", 75]')
    row = sweep_stage.fpga_stage(board.network.network, board.stage_config(STAGES["fpga"]))
    assert row == {"fmax_mhz": 61.8, "target_mhz": 25.0, "meets": True, "tool_seconds": 74.0,
                   "mem_depth": 2048, "luts": 5183, "luts_available": 83640, "ffs": 2947,
                   "ffs_available": 83640, "dsps": 20, "dsps_available": 156, "bram": 6,
                   "bram_available": 208}
    row = sweep_stage.fpga_stage(faster.network.network, faster.stage_config(STAGES["fpga"]))
    assert row["target_mhz"] == 75.0 and row["meets"] is False
    # each point builds at its own clock exactly (the board's: the oscillator,
    # not the automatic choice of `nnloom fpga build`)
    assert calls == [("ulx3s-85f", 4, 25.0), ("ulx3s-85f", 4, 75.0)]
