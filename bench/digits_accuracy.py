"""Float / int8 / Qm.n accuracy on the digits test split (359 images).

    python bench/digits_accuracy.py [--seed 0]

Minerva's MLP is trained here (gen.train, seeded); digits_mlp and
lenet_digits use their committed weights.  Quantization is calibrated on the
training split; int8 and Qm.n are the golden integer model
(sim.golden.qnet), i.e. exactly what the hardware computes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from nnloom.gen.frontend import load_network  # noqa: E402
from nnloom.gen.frontend import quantize  # noqa: E402
from nnloom.gen.train import digits_split, train_digits  # noqa: E402
from nnloom.sim.golden.qnet import predict  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = []
    for name in ("minerva_mlp", "digits_mlp", "lenet_digits"):
        t0 = time.perf_counter()
        net = load_network(ROOT / "examples" / f"{name}.toml")
        trained = not net.has_weights
        if trained:
            net = train_digits(net, seed=args.seed)
        xtr, _, xte, yte = digits_split(args.seed, net.input_shape)
        row = {"network": name, "weights": "trained here" if trained else "committed",
               "macs": net.macs(), "float": float((predict(net, xte) == yte).mean())}
        for fmt in ("int8", "qmn"):
            row[fmt] = float((predict(quantize(net, xtr, fmt), xte) == yte).mean())
        row["seconds"] = round(time.perf_counter() - t0, 2)
        rows.append(row)
    print(f"{'network':14s} {'weights':13s} {'MACs':>8s} {'float':>7s} {'int8':>7s} {'Qm.n':>7s}")
    for r in rows:
        print(f"{r['network']:14s} {r['weights']:13s} {r['macs']:8d} {r['float']:7.2%} {r['int8']:7.2%} {r['qmn']:7.2%}")
    out = ROOT / "bench" / "out" / "digits_accuracy.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
