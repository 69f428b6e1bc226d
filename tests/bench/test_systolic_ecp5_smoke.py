"""Smoke test of bench/systolic_ecp5.py's pure-Python parts (no tools run,
no timing asserted): sizes, keep-directory names, and the table printed from
kept nextpnr reports."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import systolic_ecp5  # noqa: E402


def test_sizes_and_keep_names():
    assert systolic_ecp5.parse_size("8") == (8, 8)
    assert systolic_ecp5.parse_size("12x13") == (12, 13)
    for bad in ("0", "8x", "axb", "1x2x3"):
        with pytest.raises(Exception):
            systolic_ecp5.parse_size(bad)
    # comb runs keep the directory names they had before the multiplier parameter
    assert systolic_ecp5.keep_name(12, 12, "ws", "comb") == "12x12_ws"
    assert systolic_ecp5.keep_name(12, 13, "os", "ecp5") == "12x13_os_ecp5"


def test_table_from_kept_reports(tmp_path, capsys):
    report = {"utilization": {"MULT18X18D": {"used": 156, "available": 156},
                              "TRELLIS_COMB": {"used": 9000, "available": 83640},
                              "TRELLIS_FF": {"used": 14000, "available": 83640}},
              "fmax": {"clk": {"achieved": 151.5, "constraint": 150.0}},
              "critical_paths": []}
    (tmp_path / "12x13_ws_ecp5").mkdir()
    (tmp_path / "12x13_ws_ecp5" / "report.json").write_text(json.dumps(report))
    rows = systolic_ecp5.rows_from_keep(str(tmp_path), [(12, 13)], ["ws", "os"],
                                        ["ecp5"], 150.0)
    assert len(rows) == 1   # the missing OS report is reported, not invented
    row = rows[0]
    assert row["dsp_per_pe"] and row["meets_target"] and row["latency"] == 12 + 13 + 4
    systolic_ecp5.print_table(rows)
    out = capsys.readouterr().out
    assert "12x13" in out and "151.5" in out and "ecp5" in out
