"""``nnloom simulate``: inputs through the generated accelerator's RTL, every
output compared bit for bit with the golden int8 model and every layer's
cycle counter with the compiler's model (docs/simulation.md).

The design options are ``generate``'s (``--board``, ``--size``, ``--batch``).
The inputs: ``--input X.npy`` (the user's float samples), else the digits
test split for a digits network, else seeded random samples.  ``--fast``
runs them on the C++ harness (:mod:`nnloom.sim.fast`: Verilator, no Python
per cycle) instead of cocotb, with the same results.
"""

from __future__ import annotations

import json
import shutil

import numpy as np

from nnloom.gen.accelerator import build
from nnloom.gen.verilog import write_atomic
from nnloom.hw.errors import InputError
from nnloom.sim.accel_sim import (MAX_RANDOM, TEST_DIGITS, failures, digits_inputs, is_digits,
                                  load_inputs, random_inputs, run_inputs, simulate, spread,
                                  summarize)
from nnloom.sim.runner import SimulationFailed

from .common import Parser, Progress, UsageError, add_design_options, design_options, network_path

__all__ = ["run", "run_digits", "print_summary"]

#: Inputs simulated when --samples is not given: test digits, or random samples.
DEFAULT_DIGITS, DEFAULT_RANDOM = 20, 4


def _bar(the_build, n, progress: Progress):
    cfg = the_build.config
    return progress.bar(f"RTL inference ({the_build.qnet.name}, {cfg.size}x{cfg.size})", n)


def run_digits(the_build, samples, progress: Progress, *, sim=None, pause=0.0, strict=True):
    """Simulate the test digits ``samples`` with a progress bar; returns the results."""
    with _bar(the_build, len(samples), progress) as advance:
        return simulate(the_build, samples, sim=sim, pause=pause, on_chunk=advance,
                        build_status=progress.step, strict=strict)


def print_summary(s: dict, name: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{name}: per-layer cycles (RTL counters vs model)")
    for col in ("layer", "type", "MACs", "RTL cycles", "model", "utilization"):
        t.add_column(col, justify="right" if col not in ("layer", "type") else "left")
    for row in s["layers"]:
        t.add_row(row["name"], row["type"], f"{row['macs']:,}", f"{row['cycles']:,}",
                  f"{row['model_cycles']:,}", f"{row['utilization']:.1%}")
    Console().print(t)
    what = s.get("inputs", "digits")
    exact = ("every output bit-exact vs the golden int8 model" if s["bit_exact"]
             else "OUTPUTS DIFFER from the golden int8 model")
    acc = (f"; accuracy {s['accuracy']:.1%} (labels), agreement with float {s['agreement']:.1%}"
           if "accuracy" in s else "")
    batch = f" (runs of {s['batch']}: {s['run_cycles']:,.0f} cycles a run)" if s.get("batch", 1) > 1 else ""
    print(f"{name}: {s['n']} {what} on the RTL, {exact}{acc}; "
          f"{s['cycles']:,.0f} cycles per inference{batch} (incl. DMA), overall utilization "
          f"{s['utilization']:.1%}; estimated energy {s['energy_pj'] / 1e3:,.1f} nJ per inference "
          f"({s['energy_table']})")


def _inputs(args, network):
    """``(x_float, labels or None, what, calibration or None)``."""
    if args.input:
        try:
            x = load_inputs(args.input, network)
        except InputError as e:
            raise UsageError(f"simulate: --input: {e}") from None
        if args.samples is not None:
            if not 1 <= args.samples <= len(x):
                raise UsageError(f"simulate: --samples: expected 1..{len(x)} (the samples in "
                                 f"{args.input}), got {args.samples}")
            x = x[:args.samples]
        # digits networks are calibrated as `generate` does; others on the samples (as `infer`)
        return x, None, f"samples from {args.input}", None if is_digits(network) else x
    if is_digits(network):
        n = DEFAULT_DIGITS if args.samples is None else args.samples
        if not 1 <= n <= TEST_DIGITS:
            raise UsageError(f"simulate: --samples: expected 1..{TEST_DIGITS}, got {n}")
        idx = spread(n)
        x, y = digits_inputs(network, idx)
        return x, (idx, y), "digits", None
    n = DEFAULT_RANDOM if args.samples is None else args.samples
    if not 1 <= n <= MAX_RANDOM:
        raise UsageError(f"simulate: --samples: expected 1..{MAX_RANDOM}, got {n}")
    x = random_inputs(network, n, args.seed)
    return x, None, f"random samples (seed {args.seed})", x


def run(argv) -> int:
    ap = Parser(prog="nnloom simulate",
                description="Run inputs through the generated accelerator's Verilog (the design "
                            "nnloom generate builds with the same options) and compare every "
                            "output with the golden int8 model: the test digits for a digits "
                            "network, --input X.npy, or seeded random samples.")
    ap.add_argument("network", help="network file (.toml with weights, .onnx) or a shipped example")
    ap.add_argument("--input", metavar="X.npy",
                    help="float samples shaped like the network input, or a batch [N, ...] of them")
    ap.add_argument("--samples", type=int, default=None,
                    help=f"inputs to run: test digits (default {DEFAULT_DIGITS}, at most "
                         f"{TEST_DIGITS}), random samples (default {DEFAULT_RANDOM}), or the "
                         "first N of --input (default all)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random samples (default 0)")
    ap.add_argument("--sim", choices=["verilator", "icarus"], default=None)
    add_design_options(ap)
    ap.add_argument("--pause", type=float, default=0.0,
                    help="probability of a pause on every AXI channel each cycle (0..0.9)")
    ap.add_argument("--fast", action="store_true",
                    help="long runs: the same Verilog under a C++ Verilator harness (DRAM modelled "
                         "as cocotb's, no Python per cycle), the same outputs and counters")
    ap.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    args = ap.parse_args(argv)
    opts = design_options(args)
    if not 0 <= args.pause <= 0.9:
        raise UsageError(f"simulate: --pause: expected 0..0.9, got {args.pause}")
    if args.fast and args.pause:
        raise UsageError(f"simulate: --pause: --fast models a DRAM without pauses; expected 0 "
                         f"with --fast, got {args.pause}")
    if args.fast and args.sim == "icarus":
        raise UsageError("simulate: --sim: --fast runs on Verilator; expected verilator with "
                         "--fast, got icarus")
    if args.sim == "icarus" and not shutil.which("iverilog"):
        raise UsageError("simulate: --sim: icarus: iverilog is not installed (apt-get install iverilog)")
    from nnloom.gen.frontend import load_network

    path = network_path(args.network)
    network = load_network(path)
    if not network.has_weights:
        raise InputError(f"{path}: weights: expected a network with weights to build for, "
                         "got none (timing only)")
    x, labels, what, calibration = _inputs(args, network)
    progress = Progress()
    b = build(path, network=network, calibration=calibration, **opts)
    xq = np.stack([b.qnet.quantize_input(v) for v in x])
    speed = {}
    with _bar(b, len(xq), progress) as advance:
        if args.fast:
            from nnloom.sim.fast import run_inputs_fast

            results = run_inputs_fast(b, xq, on_chunk=advance, build_status=progress.step,
                                      stats=speed)
        else:
            results = run_inputs(b, xq, sim=args.sim, pause=args.pause, seed=args.seed,
                                 on_chunk=advance, build_status=progress.step)
    if labels is not None:
        for r, s, label, xf in zip(results, labels[0], labels[1], x):
            r.update(sample=int(s), label=int(label), rtl=int(np.argmax(r["output"])),
                     float=int(np.argmax(network.forward(xf))))
    s = dict(summarize(results, b.program), inputs=what)
    print_summary(s, b.qnet.name)
    if speed:
        print(f"fast harness: {speed['sim_cycles']:,} cycles simulated in {speed['seconds']:.2f} s "
              f"({speed['cycles_per_second']:,.0f} cycles/s)")
        s["fast"] = speed
    if args.json:
        report = dict(s, network=b.qnet.name, source=str(path), board=b.board,
                      config=b.design.to_dict(),
                      results=[{k: r[k] for k in ("index", "sample", "label", "rtl", "float",
                                                   "cycles", "bit_exact", "layers_exact")
                                if k in r} for r in results])
        write_atomic(args.json, json.dumps(report, indent=2) + "\n")
    failed = failures(results)
    if failed:
        raise SimulationFailed(f"simulate: {failed}")
    return 0
