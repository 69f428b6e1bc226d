"""RTL accuracy of the generated accelerator on the digits test split.

    python bench/accel_digits.py [--samples N] [--networks digits_mlp lenet_digits] [--json F]

For each network: accuracy of the RTL (Verilator) on N test digits (default:
all 359), agreement with the float model, cycles per inference, utilization
per layer, and simulated inferences per second (wall clock of the cocotb
run, machine-dependent: a figure, never a test).  Every output is checked
bit for bit against the golden int8 model by the testbench.
"""

from __future__ import annotations

import argparse
import json
import time



def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=359)
    ap.add_argument("--networks", nargs="+", default=["digits_mlp", "lenet_digits"])
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    from nnloom.gen.accelerator import build
    from nnloom.sim.accel_models import resolve
    from nnloom.sim.accel_sim import simulate, summarize

    out = {}
    for name in args.networks:
        samples = list(range(args.samples))
        t0 = time.time()
        b = build(resolve(name), size=args.size)
        results = simulate(b, samples, chunk=40)
        wall = time.time() - t0
        s = summarize(results, b.program)
        s["inferences_per_second"] = len(results) / wall
        print(f"{name}: {len(results)} RTL inferences in {wall:.0f} s "
              f"({s['inferences_per_second']:.2f} simulated inferences/s, build included)")
        out[name] = s
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2, default=float)


if __name__ == "__main__":
    main()
