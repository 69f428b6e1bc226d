"""Our systolic cycle counts beside SCALE-Sim 3.0.0's, for the same GEMMs.

For each array size and dataflow, one SCALE-Sim run (in its own venv, see
bench/scalesim_tool.py) over the three GEMMs of bench/systolic_utilization.py;
ours from :meth:`nnloom.hw.systolic.SystolicConfig.gemm_cycles` (the RTL meets it
exactly).  Also printed: SCALE-Sim's count predicted by the closed form read
off its source (:func:`scalesim_tool.scalesim_cycles_formula`), as a check
that the explanation in docs/systolic.md is the whole story.

    python bench/systolic_scalesim.py
    python bench/systolic_scalesim.py --sizes 8 --dataflows ws --json out.json
    python bench/systolic_scalesim.py --jobs 4     # the four runs in parallel

The first run creates bench/.scalesim-venv (pip install scalesim==3.0.0
"numpy<2"); an 8 x 8 OS run of 1024 x 64 x 1024 takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from nnloom.hw.systolic import SystolicConfig  # noqa: E402
from scalesim_tool import ensure_venv, run_scalesim, scalesim_cycles_formula  # noqa: E402
from systolic_utilization import GEMMS  # noqa: E402


def compare_rows(size: int, dataflow: str, gemms, scalesim_reports: list[dict]) -> list[dict]:
    """Join SCALE-Sim's reports (one per GEMM, in order) with our formula."""
    cfg = SystolicConfig(rows=size, cols=size, dataflow=dataflow)
    out = []
    for (m, k, n), rep in zip(gemms, scalesim_reports, strict=True):
        ours = cfg.gemm_cycles(m, k, n)
        out.append({"m": m, "k": k, "n": n, "rows": size, "cols": size, "dataflow": dataflow,
                    "ours": ours, "scalesim": rep["cycles"],
                    "scalesim_with_prefetch": rep["cycles_with_prefetch"],
                    "scalesim_stalls": rep["stall_cycles"],
                    "scalesim_formula": scalesim_cycles_formula(size, size, dataflow, m, k, n),
                    "ratio": ours / rep["cycles"],
                    "ours_util": cfg.utilization(m, k, n),
                    "scalesim_util": m * k * n / (size * size * rep["cycles"])})
    return out


def format_table(rows: list[dict]) -> str:
    head = ("M x K x N", "array", "flow", "SCALE-Sim", "(+prefetch)", "stalls", "its formula",
            "ours", "ours/SCALE-Sim", "util SCALE-Sim", "util ours")
    lines = [head] + [(f"{r['m']}x{r['k']}x{r['n']}", f"{r['rows']}x{r['cols']}", r["dataflow"],
                       str(r["scalesim"]), str(r["scalesim_with_prefetch"]),
                       str(r["scalesim_stalls"]),
                       "=" if r["scalesim_formula"] == r["scalesim"] else str(r["scalesim_formula"]),
                       str(r["ours"]), f"{r['ratio']:.3f}",
                       f"{100 * r['scalesim_util']:.2f} %", f"{100 * r['ours_util']:.2f} %")
                      for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for idx, line in enumerate(lines):
        out.append("| " + " | ".join(c.rjust(w) for c, w in zip(line, widths)) + " |")
        if idx == 0:
            out.append("|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--dataflows", nargs="+", choices=("ws", "os"), default=["ws", "os"])
    ap.add_argument("--jobs", type=int, default=1, help="SCALE-Sim runs in parallel")
    ap.add_argument("--json", help="write the rows as JSON to this file")
    args = ap.parse_args(argv)
    ensure_venv()
    runs = [(size, df) for size in args.sizes for df in args.dataflows]

    def one(run):
        size, df = run
        out = compare_rows(size, df, GEMMS, run_scalesim(size, size, df, GEMMS))
        print(f"done {size}x{size} {df}", file=sys.stderr)
        return out

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = [row for part in pool.map(one, runs) for row in part]
    rows.sort(key=lambda r: (GEMMS.index((r["m"], r["k"], r["n"])), r["rows"], r["dataflow"]))
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
