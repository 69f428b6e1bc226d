"""Cycles and dense-equivalent throughput of the EIE benchmark layers (model).

The nine layers of the EIE paper (input, output, weight density, activation
density) run on a 64-PE cluster with queue depth 8 in the cycle model
(:func:`nnloom.gen.perf.eie.simulate_layer`, which the RTL meets exactly), with
random sparsity at the published densities.  Dense-equivalent throughput
counts ``2 x input x output`` operations per layer at ``--mhz`` (800 MHz as
in EIE); "compressed" counts the MACs actually done (2 per issued entry,
fillers included).

    python bench/eie_layers.py
    python bench/eie_layers.py --pes 16 --depth 4
"""

from __future__ import annotations

import argparse
import sys


import numpy as np  # noqa: E402

from nnloom.gen.perf import dense_equivalent_gops, random_counts, simulate_layer  # noqa: E402
from nnloom.hw.eie_config import EIEConfig  # noqa: E402

#: name: (input, output, weight density, activation density), from the EIE paper
LAYERS = {
    "Alex-6": (9216, 4096, 0.09, 0.351), "Alex-7": (4096, 4096, 0.09, 0.353),
    "Alex-8": (4096, 1000, 0.25, 0.375), "VGG-6": (25088, 4096, 0.04, 0.183),
    "VGG-7": (4096, 4096, 0.04, 0.375), "VGG-8": (4096, 1000, 0.23, 0.411),
    "NT-We": (4096, 600, 0.10, 1.0), "NT-Wd": (600, 8791, 0.11, 1.0),
    "NT-LSTM": (1201, 2400, 0.10, 1.0),
}


def layer_rows(pes=64, depth=8, mhz=800.0, seed=0) -> list[dict]:
    rows = []
    for name, (n_in, n_out, wd, ad) in LAYERS.items():
        rng = np.random.default_rng(seed)
        counts = random_counts(rng, n_out, n_in, pes, wd)
        act = (rng.random(n_in) < ad).astype(np.int64)
        cfg = EIEConfig(pes=pes, queue_depth=depth,
                        act_depth=min(1024, -(-max(n_in, n_out) // pes)))
        t = simulate_layer(cfg, counts, act, n_out)
        us = t.cycles / mhz
        rows.append({"layer": name, "shape": f"{n_in}x{n_out}", "wd": wd, "ad": ad,
                     "cycles": t.cycles, "us": us, "efficiency": t.efficiency,
                     "dense_gops": dense_equivalent_gops(n_out, n_in, t.cycles, mhz * 1e6),
                     "actual_gops": 2 * t.entries * mhz * 1e6 / t.cycles / 1e9})
    return rows


def format_table(rows) -> str:
    lines = ["| layer | in x out | weight dens. | act. dens. | cycles | time (us) | "
             "load balance | dense-equiv. GOP/s | compressed GOP/s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['shape']} | {100 * r['wd']:.0f} % | "
                     f"{100 * r['ad']:.1f} % | {r['cycles']} | {r['us']:.1f} | "
                     f"{100 * r['efficiency']:.1f} % | {r['dense_gops']:.0f} | "
                     f"{r['actual_gops']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pes", type=int, default=64)
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--mhz", type=float, default=800.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(f"## EIE benchmark layers, {args.pes} PEs, queue depth {args.depth}, "
          f"{args.mhz:.0f} MHz (cycle model)\n")
    print(format_table(layer_rows(args.pes, args.depth, args.mhz, args.seed)))
    peak = 2 * args.pes * args.mhz / 1e3
    print(f"\npeak on the compressed network: {peak:.1f} GOP/s (2 x {args.pes} x "
          f"{args.mhz:.0f} MHz; EIE: 102 GOP/s at 64 PEs, 800 MHz)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
