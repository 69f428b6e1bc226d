"""Utilization of the systolic array on three GEMMs, from the cycle formula.

Utilization = MACs / (R x C x cycles), cycles from
:meth:`nnloom.hw.systolic.SystolicConfig.gemm_cycles`, which the RTL meets exactly
(tests/sim/test_systolic.py asserts the measured counts equal it).

    python bench/systolic_utilization.py
    python bench/systolic_utilization.py --json bench/out/systolic_utilization.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


from nnloom.hw.systolic import SystolicConfig  # noqa: E402

GEMMS = [(64, 64, 64), (256, 256, 256), (1024, 64, 1024)]  # (M, K, N)
SIZES = [8, 16]
DATAFLOWS = ["ws", "os"]


def utilization_rows(gemms=GEMMS, sizes=SIZES, dataflows=DATAFLOWS) -> list[dict]:
    """One row per (GEMM, array size, dataflow): tiles, tile interval,
    cycles, MACs and utilization, all from :class:`SystolicConfig`."""
    rows = []
    for m, k, n in gemms:
        for size in sizes:
            for df in dataflows:
                cfg = SystolicConfig(rows=size, cols=size, dataflow=df)
                rows.append({"m": m, "k": k, "n": n, "rows": size, "cols": size,
                             "dataflow": df, "tiles": cfg.tiles(m, k, n),
                             "tile_interval": cfg.tile_interval(m, k),
                             "cycles": cfg.gemm_cycles(m, k, n),
                             "macs": cfg.gemm_macs(m, k, n),
                             "utilization": cfg.utilization(m, k, n)})
    return rows


def format_table(rows: list[dict]) -> str:
    head = ("M x K x N", "array", "flow", "tiles", "interval", "cycles", "utilization")
    lines = [head] + [(f"{r['m']}x{r['k']}x{r['n']}", f"{r['rows']}x{r['cols']}", r["dataflow"],
                       str(r["tiles"]), str(r["tile_interval"]), str(r["cycles"]),
                       f"{100 * r['utilization']:.3f} %") for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for idx, line in enumerate(lines):
        out.append("| " + " | ".join(c.rjust(w) for c, w in zip(line, widths)) + " |")
        if idx == 0:
            out.append("|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the rows as JSON to this file")
    args = ap.parse_args(argv)
    rows = utilization_rows()
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
