"""Plans for iCEBreaker (iCE40 UP5K) and ULX3S 85F (ECP5), with roofline PNGs.

For every network (the examples/ files by default) and board: the planned
array, buffers, cycles per sample, samples/s at the board clock, DRAM bytes,
energy (Horowitz 45 nm, pJ) and resource use; the roofline of each plan goes
to bench/out/roofline_<network>_<board>.png.

    python bench/plan_boards.py
    python bench/plan_boards.py --boards icebreaker --networks examples/minerva_mlp.toml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from nnloom.gen.planner import BOARDS  # noqa: E402
from nnloom.gen.frontend import load_network  # noqa: E402
from nnloom.gen.planner import PlanError, plan  # noqa: E402
from nnloom.hw.errors import InputError  # noqa: E402
from nnloom.gen.perf import roofline_png  # noqa: E402
from nnloom.gen.verilog import write_atomic  # noqa: E402

NETWORKS = ["minerva_mlp.toml", "digits_mlp.toml", "lenet_digits.toml", "alexnet.toml"]


def _rate(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.3g}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", nargs="+", default=["icebreaker", "ulx3s-85f"], choices=list(BOARDS))
    ap.add_argument("--networks", nargs="+", default=[str(ROOT / "examples" / n) for n in NETWORKS])
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = ap.parse_args(argv)
    head = ("network", "board", "array", "buffers act/weight/out B", "cycles", "samples/s",
            "util", "DRAM B", "energy uJ", "DSP", "LUT4", "FF", "BRAM kbit")
    rows = [head]
    for path in args.networks:
        net = load_network(path)
        for name in args.boards:
            b = BOARDS[name]
            try:
                p = plan(net, b.budget, board=name)
            except PlanError as e:
                print(f"{net.name} on {name}: does not fit: {e}")
                continue
            except InputError as e:        # no design nnloom generate builds runs it
                print(f"{net.name} on {name}: cannot be built: {e}")
                continue
            t, u, c = p.totals, p.usage, p.config
            rows.append((net.name, name, f"{c.rows}x{c.cols} {c.dataflow.upper()}",
                         "/".join(str(p.buffers[k]) for k in ("act", "weight", "out")),
                         str(t["cycles"]), _rate(p.inferences_per_second),
                         f"{t['utilization']:.1%}", str(t["dram_bytes"]),
                         f"{t['energy_pj'] / 1e6:.2f}", f"{u['dsps']}/{b.budget.dsps}",
                         f"{u['luts']}/{b.budget.luts}", f"{u['ffs']}/{b.budget.ffs}",
                         f"{u['bram_bits'] / 1024:.0f}/{b.budget.bram_bits / 1024:.0f}"))
            png = Path(args.out) / f"roofline_{net.name}_{name}.png"
            write_atomic(png, roofline_png(p.layers, p.peak_macs_per_cycle, p.dram_bytes_per_cycle,
                                           f"{net.name}: {c.rows}x{c.cols} {c.dataflow.upper()} on {name}"))
            print(f"{net.name} on {name}: " + "; ".join(p.reasons[1:3]), file=sys.stderr)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for n, r in enumerate(rows):
        print("| " + " | ".join(v.rjust(w) for v, w in zip(r, widths)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    print(f"\nroofline PNGs in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
