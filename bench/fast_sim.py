"""Simulated cycles per second of the fast harness (sim/fast.py), beside cocotb.

    python bench/fast_sim.py [--network lenet_digits] [--size 8] [--samples 50]
                             [--compare 5] [--json F]

Builds the network's accelerator as ``nnloom simulate`` does (resident
weights at the default plan), runs ``--samples`` inputs (the digits test
split for a digits network, else seeded random samples) on the fast harness
and prints the clock cycles it simulated, the harness's time and their
ratio.  ``--compare N`` also runs the first N inputs on the cocotb path
(the verification reference), checks every output and counter equal and
prints its speed on the same cycles.  Times are machine-dependent: a
figure, never a test.  The Verilator builds are cached; the first run
builds them.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _inputs(network, n):
    from nnloom.sim.accel_sim import digits_inputs, is_digits, random_inputs, spread

    if is_digits(network):
        return digits_inputs(network, spread(n))[0], None
    x = random_inputs(network, n, 0)
    return x, x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default="lenet_digits")
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--compare", type=int, default=0, metavar="N",
                    help="run the first N inputs on cocotb too and compare (default 0)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    from nnloom.gen.accelerator import build
    from nnloom.gen.frontend import load_network
    from nnloom.sim.accel_models import resolve
    from nnloom.sim.accel_sim import run_inputs
    from nnloom.sim.fast import run_inputs_fast

    path = resolve(args.network)
    network = load_network(path)
    x, calibration = _inputs(network, max(args.samples, args.compare))
    b = build(path, network=network, calibration=calibration, size=args.size)
    xq = np.stack([b.qnet.quantize_input(v) for v in x])
    run_inputs_fast(b, xq[:1])                  # the build, outside the figure
    st = {}
    fast = run_inputs_fast(b, xq[:args.samples], stats=st)
    assert all(r["bit_exact"] and r["layers_exact"] for r in fast), "fast: not exact"
    out = {"network": args.network, "size": args.size, "samples": args.samples,
           "cycles_per_inference": float(np.mean([r["cycles"] for r in fast])) / b.program.batch,
           **st}
    print(f"{args.network} at {args.size}x{args.size}: {args.samples} inferences, "
          f"{st['sim_cycles']:,} cycles in {st['seconds']:.2f} s on the fast harness: "
          f"{st['cycles_per_second']:,.0f} cycles/s ({st['wall_seconds']:.1f} s wall with "
          f"Verilog generation and process start)")
    if args.compare:
        n = args.compare
        sub = {}
        run_inputs_fast(b, xq[:n], stats=sub)
        t0 = time.perf_counter()
        ref = run_inputs(b, xq[:n])
        wall = time.perf_counter() - t0
        keys = ("output", "cycles", "beats", "stalls", "kept", "layers")
        same = all(all(np.array_equal(r[k], f[k]) for k in keys) for r, f in zip(ref, fast[:n]))
        out.update(cocotb_seconds=wall, cocotb_cycles_per_second=sub["sim_cycles"] / wall,
                   equal=same)
        print(f"cocotb on the first {n}: {wall:.1f} s wall, about "
              f"{sub['sim_cycles'] / wall:,.0f} cycles/s; outputs and counters "
              f"{'equal' if same else 'DIFFER'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
