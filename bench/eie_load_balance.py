"""EIE load balance against activation-queue depth, from the cycle model.

Efficiency = 1 - bubble cycles / (PEs x compute cycles), where a PE bubbles
in a cycle in which it issues no entry (:class:`nnloom.gen.perf.eie.LayerTiming`).
The layer is Alex-7-like (weight density 9 %, activation density 35.3 %),
at the sizes ``--points`` gives (PEs:size); the cycle model is the one the RTL meets
exactly (tests/sim/test_eie.py).  ``--rtl`` also runs a small layer on the
emitted Verilog of a 16-PE cluster at a few depths and prints its cycles.

    python bench/eie_load_balance.py                 # table + bench/out/eie_load_balance.png
    python bench/eie_load_balance.py --points 32:2048 --rtl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


import numpy as np  # noqa: E402

from nnloom.gen.perf import random_counts, simulate_layer  # noqa: E402
from nnloom.hw.eie_config import EIEConfig  # noqa: E402

DEPTHS = [1, 2, 4, 8, 16, 32]
#: EIE (ISCA 2016, Fig. 11): about half the cycles idle at depth 1, little gain past 8.
PUBLISHED = "EIE paper: ~50 % efficiency at FIFO depth 1, rising, flat past depth 8"


def sweep(pes: int, size: int, depths=DEPTHS, seed: int = 0, w_density=0.09,
          a_density=0.353) -> list[dict]:
    rng = np.random.default_rng(seed)
    counts = random_counts(rng, size, size, pes, w_density)
    act = (rng.random(size) < a_density).astype(np.int64)
    rows = []
    for d in depths:
        cfg = EIEConfig(pes=pes, queue_depth=d, act_depth=max(1, -(-size // pes)))
        t = simulate_layer(cfg, counts, act, size)
        rows.append({"depth": d, "cycles": t.cycles, "compute": t.compute_cycles,
                     "entries": t.entries, "bubbles": t.bubbles, "stalls": t.stalls,
                     "efficiency": t.efficiency})
    return rows


def rtl_points(depths=(1, 8), pes=16, size=128, seed=0) -> list[tuple[int, int, int]]:
    """(depth, RTL cycles, model cycles) on the emitted Verilog (slow: one build each)."""
    import re

    from nnloom.hw.eie import EIECluster
    from nnloom.sim.runner import run

    out = []
    for d in depths:
        cfg = EIEConfig(pes=pes, queue_depth=d, act_depth=size // pes, entry_rows=64,
                        ptr_depth=size // 2 + 1)
        case = dict(name="alex7-like", layers=[dict(kind="codes", rows=size, cols=size,
                                                   density=0.09)], act=dict(density=0.353))
        res = run(EIECluster(cfg), "nnloom.sim.tb.eie_tb",
                  params={"config": cfg.to_dict(), "cases": [case], "seed": seed})
        m = re.search(r"layer 0: (\d+) cycles \(model (\d+)", res.log.read_text())
        out.append((d, int(m.group(1)), int(m.group(2))))
    return out


def format_table(rows) -> str:
    lines = ["| queue depth | cycles | compute | bubbles | stalls | efficiency |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['depth']} | {r['cycles']} | {r['compute']} | {r['bubbles']} | "
                     f"{r['stalls']} | {100 * r['efficiency']:.1f} % |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for label, rows in results.items():
        ax.plot([r["depth"] for r in rows], [100 * r["efficiency"] for r in rows], "o-",
                label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(DEPTHS, [str(d) for d in DEPTHS])
    ax.set_ylim(0, 100)
    ax.set_xlabel("activation queue depth")
    ax.set_ylabel("load-balance efficiency (%)")
    ax.set_title("EIE load balance, Alex-7-like layer (model)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", nargs="+", default=["16:1024", "64:1024", "64:4096"],
                    help="PES:SIZE cluster sizes and square layer sizes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--png", default=str(Path(__file__).resolve().parent / "out"
                                         / "eie_load_balance.png"))
    ap.add_argument("--rtl", action="store_true", help="also run RTL points (slow)")
    args = ap.parse_args(argv)
    results = {}
    for point in args.points:
        pes, size = (int(v) for v in point.split(":"))
        rows = sweep(pes, size, seed=args.seed)
        label = f"{pes} PEs, {size}x{size}"
        results[label] = rows
        print(f"## {label}, weight density 9 %, activation density 35.3 %\n")
        print(format_table(rows) + "\n")
    print(PUBLISHED + "\n")
    plot(results, Path(args.png))
    print(f"wrote {args.png}")
    if args.rtl:
        for d, rtl, model in rtl_points():
            print(f"RTL 16 PEs, 128x128, depth {d}: {rtl} cycles (model {model})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
