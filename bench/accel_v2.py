"""The v2 accelerator's figures on the RTL (issue 15's targets).

    python bench/accel_v2.py [--runs N] [--json F]

Each case builds what ``nnloom generate`` builds and runs N + 1 inference
runs through the Verilator RTL (cocotbext-axi ``AxiRam`` as DRAM, no pauses):
the first run loads the program (cold), the others keep it (CTRL bit 3:
the steady state of a deployed accelerator).  Every output is compared bit
for bit with the golden int8 model and every layer counter with the
model; the whole run's CYCLES with ``Program.run_cycles``.  Utilization is
MACs / (PEs x CYCLES) over the whole run, DMA included.  Simulated
inferences per second are wall clock on this machine (a figure, not a test).

Cases: lenet_digits 8 x 8; cifar_cnn 8 x 8 (seeded random weights and
inputs); digits_mlp 8 x 8 at batch 16; digits_mlp on the ULX3S-85F plan
(``--board ulx3s-85f``), its RTL cycles against the plan's prediction.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _case(name, source, *, size=None, board=None, batch=1, runs=2):
    from nnloom.gen.accelerator import build
    from nnloom.gen.frontend import load_network
    from nnloom.sim.accel_models import digits_qnet
    from nnloom.sim.accel_sim import is_digits, random_inputs, run_inputs

    net = load_network(source)
    calib = None if is_digits(net) else random_inputs(net, 8)
    b = build(source, size=size, board=board, batch=batch, calibration=calib)
    B = b.config.batch
    n = (runs + 1) * B
    if is_digits(net):
        xq = digits_qnet(source)[2][:n]
    else:
        xq = np.stack([b.qnet.quantize_input(v) for v in random_inputs(net, n, seed=1)])
    run_inputs(b, xq[:B], chunk=B)         # builds (or finds) the simulator: not timed
    t0 = time.time()
    res = run_inputs(b, xq, chunk=n)
    wall = time.time() - t0
    prog = b.program
    P = b.config.size
    macs = sum(L.macs for L in prog.layers)          # per run (all B samples)
    cold = [r for r in res if not r["kept"]][0]["cycles"]
    warm = [r["cycles"] for r in res if r["kept"]]
    row = {"case": name, "design": b.design.to_dict(), "bit_exact": all(r["bit_exact"] for r in res),
           "layers_exact": all(r["layers_exact"] for r in res),
           "cycles_cold": cold, "cycles_warm": warm[0] if warm else None,
           "model_cold": prog.run_cycles(kept=False), "model_warm": prog.run_cycles(kept=True),
           "samples_per_run": B, "macs_per_run": macs,
           "utilization_warm": macs / (P * P * warm[0]) if warm else None,
           "utilization_cold": macs / (P * P * cold),
           "layers": [{"name": L.name, "cycles": L.cycles,
                       "utilization": L.macs / (P * P * L.cycles) if L.cycles else None}
                      for L in prog.layers if L.count],
           "simulated_inferences_per_s": len(res) / wall}
    if b.plan is not None:
        row["plan_cycles"] = b.plan.totals["estimated_cycles"]
        row["rtl_over_plan"] = cold / row["plan_cycles"]
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2, help="warm runs after the cold one")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    cases = [("lenet_digits 8x8", "examples/lenet_digits.toml", dict(size=8)),
             ("cifar_cnn 8x8", "examples/cifar_cnn.toml", dict(size=8)),
             ("digits_mlp 8x8 batch 16", "examples/digits_mlp.toml", dict(size=8, batch=16)),
             ("digits_mlp ulx3s-85f plan", "examples/digits_mlp.toml", dict(board="ulx3s-85f"))]
    rows = []
    for name, src, kw in cases:
        row = _case(name, src, runs=args.runs, **kw)
        rows.append(row)
        util = row["utilization_warm"]
        print(f"{name}: {row['design']['rows']}x{row['design']['cols']} "
              f"{'resident' if row['design']['resident'] else 'streamed'}, "
              f"bit-exact {row['bit_exact']}, layers exact {row['layers_exact']}; "
              f"cycles cold {row['cycles_cold']} (model {row['model_cold']}), warm "
              f"{row['cycles_warm']} (model {row['model_warm']}); utilization warm "
              f"{util:.1%}, cold {row['utilization_cold']:.1%}"
              + (f"; plan {row['plan_cycles']}, RTL / plan {row['rtl_over_plan']:.3f}"
                 if "plan_cycles" in row else "")
              + f"; {row['simulated_inferences_per_s']:.2f} simulated inferences/s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
