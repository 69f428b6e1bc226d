"""Reading the tools' reports: nextpnr's ``--report`` JSON and log, Yosys's
``stat`` table.

:func:`summarize` turns them into the figures ``nnloom fpga build`` prints:
LUT4s, flip-flops, DSPs and block RAMs used and available, fmax of every
clock against its constraint.  Resource names per family (nextpnr bels):

=========  ==============  ============  ==========  =======================
family     LUTs            FFs           DSPs        block RAM
=========  ==============  ============  ==========  =======================
ice40      SB_LUT4 (Yosys) SB_DFF* (Y.)  ICESTORM_DSP ICESTORM_RAM (+ SPRAM)
ecp5       TRELLIS_COMB    TRELLIS_FF    MULT18X18D  DP16KD
=========  ==============  ============  ==========  =======================

On iCE40 nextpnr counts logic cells (ICESTORM_LC, a LUT4 and a flip-flop
each), so LUTs and flip-flops come from Yosys's cell counts and the logic
cells used / available are reported beside them.
"""

from __future__ import annotations

import re

__all__ = ["parse_nextpnr_report", "parse_nextpnr_log", "parse_yosys_stat", "summarize", "BELS"]

BELS = {
    "ice40": {"lcs": "ICESTORM_LC", "dsps": "ICESTORM_DSP", "bram": "ICESTORM_RAM",
              "spram": "ICESTORM_SPRAM"},
    "ecp5": {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D",
             "bram": "DP16KD"},
}

_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz \((PASS|FAIL) at ([\d.]+) MHz\)")
_STAT = re.compile(r"^\s+(\d+)\s+(?:[\d.]+\s+)?([$A-Za-z_][\w$]*)\s*$"
                   r"|^\s+([$A-Za-z_][\w$]*)\s+(\d+)\s*$")


def parse_nextpnr_report(report: dict) -> dict:
    """``{"cells": {bel: (used, available)}, "fmax": {clock: (achieved, constraint)}}``."""
    cells = {bel: (int(v["used"]), int(v["available"]))
             for bel, v in report.get("utilization", {}).items()}
    fmax = {clk: (float(v["achieved"]), float(v.get("constraint", 0.0)))
            for clk, v in report.get("fmax", {}).items()}
    return {"cells": cells, "fmax": fmax}


def parse_nextpnr_log(text: str) -> dict[str, tuple[float, float, bool]]:
    """The last "Max frequency for clock" line of each clock:
    ``{clock: (achieved MHz, target MHz, passed)}`` (nextpnr prints one set
    after placement and a final one after routing; the last wins)."""
    out = {}
    for clk, got, verdict, want in _FMAX.findall(text):
        out[clk] = (float(got), float(want), verdict == "PASS")
    return out


def parse_yosys_stat(text: str) -> dict[str, int]:
    """Cell counts of the last ``stat`` section of a Yosys log (the part
    after its last ``=== ... ===`` header): both the "count name" layout of
    Yosys 0.4x+ (indented under "cells", as in its design-hierarchy table)
    and the older "name count".  Only cell types are kept (names starting
    with an upper-case letter or ``$``), not "wires", "cells" and the like."""
    sections = re.split(r"^=== .* ===$", text, flags=re.M)
    if len(sections) < 2:
        return {}
    counts = {}
    for line in sections[-1].splitlines():
        mt = _STAT.match(line)
        if mt is None:
            continue
        name, n = (mt.group(2), mt.group(1)) if mt.group(1) else (mt.group(3), mt.group(4))
        if name[0].isupper() or name[0] == "$":
            counts[name] = int(n)
    return counts


def summarize(family: str, report: dict, yosys_stat: dict[str, int] | None = None) -> dict:
    """Used/available figures and timing from a parsed nextpnr report (and
    Yosys counts for iCE40): ``{"resources": {name: [used, available]},
    "fmax_mhz": float | None, "target_mhz": float | None, "clocks": {...}}``."""
    cells = report["cells"]
    res = {}
    for name, bel in BELS[family].items():
        if bel in cells:
            res[name] = list(cells[bel])
    if family == "ice40":
        stat = yosys_stat or {}
        lcs = cells.get("ICESTORM_LC", (0, 0))[1]
        res["luts"] = [stat.get("SB_LUT4", 0), lcs]
        res["ffs"] = [sum(n for c, n in stat.items() if c.startswith("SB_DFF")), lcs]
    clocks = report["fmax"]
    slow = min(clocks, key=lambda c: clocks[c][0]) if clocks else None
    return {"resources": res, "clocks": {c: {"achieved": a, "constraint": t}
                                          for c, (a, t) in clocks.items()},
            "fmax_mhz": clocks[slow][0] if slow else None,
            "target_mhz": clocks[slow][1] if slow else None}
