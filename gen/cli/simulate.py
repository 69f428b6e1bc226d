"""``nnloom simulate``: test digits through the generated accelerator's RTL,
every output bit-exact against the golden model and every layer's cycles
against the compiler's model (docs/simulation.md)."""

from __future__ import annotations

import json
import shutil

from nnloom.gen.accelerator import build
from nnloom.gen.verilog import write_atomic
from nnloom.sim.accel_sim import TEST_DIGITS, check_digits, simulate, spread, summarize

from .common import Parser, Progress, UsageError, add_design_options, design_options, network_path

__all__ = ["run", "run_digits", "print_summary"]


def run_digits(the_build, samples, progress: Progress, *, sim=None, pause=0.0):
    """Simulate ``samples`` with a progress bar; returns the results."""
    cfg = the_build.config
    with progress.bar(f"RTL inference ({the_build.qnet.name}, {cfg.size}x{cfg.size})",
                      len(samples)) as advance:
        return simulate(the_build, samples, sim=sim, pause=pause, on_chunk=advance,
                        build_status=progress.step)


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
    print(f"{name}: {s['n']} digits on the RTL, every output bit-exact vs the golden int8 model; "
          f"accuracy {s['accuracy']:.1%} (labels), agreement with float {s['agreement']:.1%}; "
          f"{s['cycles']:,.0f} cycles per inference (incl. DMA), overall utilization "
          f"{s['utilization']:.1%}; estimated energy {s['energy_pj'] / 1e3:,.1f} nJ per inference "
          f"({s['energy_table']})")


def run(argv) -> int:
    ap = Parser(prog="nnloom simulate")
    ap.add_argument("network", help="a digits network file (.toml, .onnx) or a shipped example")
    ap.add_argument("--samples", type=int, default=20, help="test digits to run (default 20)")
    ap.add_argument("--sim", choices=["verilator", "icarus"], default=None)
    add_design_options(ap)
    ap.add_argument("--pause", type=float, default=0.0,
                    help="probability of a pause on every AXI channel each cycle (0..0.9)")
    ap.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    args = ap.parse_args(argv)
    opts = design_options(args)
    if not 1 <= args.samples <= TEST_DIGITS:
        raise UsageError(f"simulate: --samples: expected 1..{TEST_DIGITS}, got {args.samples}")
    if not 0 <= args.pause <= 0.9:
        raise UsageError(f"simulate: --pause: expected 0..0.9, got {args.pause}")
    if args.sim == "icarus" and not shutil.which("iverilog"):
        raise UsageError("simulate: --sim: icarus: iverilog is not installed (apt-get install iverilog)")
    progress = Progress()
    b = build(network_path(args.network), **opts)
    check_digits(b)
    results = run_digits(b, spread(args.samples), progress, sim=args.sim, pause=args.pause)
    s = summarize(results, b.program)
    print_summary(s, b.qnet.name)
    if args.json:
        write_atomic(args.json, json.dumps(dict(s, network=b.qnet.name, bit_exact=True,
                                                config=b.config.to_dict()), indent=2) + "\n")
    return 0
