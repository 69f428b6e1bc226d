"""``nnloom demo``: the main job, with no arguments.

It trains (or reuses what it trained before, under the nnloom cache) the
shipped digits MLP and LeNet-like CNN on scikit-learn's 8 x 8 digits,
quantizes them to int8, generates an accelerator for each, runs test digits
through its Verilog on Verilator (checked bit for bit against the golden
model, every layer's cycles against the model), and writes a report with
plots.  ``--systolic`` is the small version: one systolic array, one GEMM.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from nnloom import examples
from nnloom.gen.accelerator import build, write_dir
from nnloom.gen.frontend import load_network
from nnloom.gen.train import save_weights, train_digits
from nnloom.sim.accel_models import digits_qnet
from nnloom.sim.accel_sim import TEST_DIGITS, spread, summarize
from nnloom.sim.golden.qnet import predict
from nnloom.sim.runner import cache_root

from .common import Parser, Progress, UsageError
from .simulate import print_summary, run_digits

__all__ = ["run", "NETWORKS"]

NETWORKS = ("digits_mlp", "lenet_digits")


def _trained(name, cache: Path, progress: Progress):
    """The example network trained on the digits (seed 0), or the weights
    trained before: a TOML beside its weights in ``cache``."""
    src = examples.path(name)
    text = src.read_text()
    key = hashlib.sha256(text.encode()).hexdigest()[:12]
    cache.mkdir(parents=True, exist_ok=True)
    weights = cache / f"{name}-{key}.npz"
    toml = cache / f"{name}-{key}.toml"
    if not weights.exists():
        net = load_network(src)
        with progress.bar(f"training {name} on the scikit-learn digits (seed 0), epochs",
                          None) as advance:
            trained = train_digits(net, seed=0, progress=lambda done, total: advance(1, total))
        save_weights(trained, weights)
    else:
        print(f"reusing {name} trained before ({weights})")
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("weights")]
    toml.write_text(f'weights = "{weights.name}"\n' + "\n".join(lines) + "\n")
    return toml


def _plot(summaries) -> bytes:
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(summaries), figsize=(6 * len(summaries), 4))
    axes = np.atleast_1d(axes)
    for ax, (name, s) in zip(axes, summaries.items()):
        rows = [r for r in s["layers"] if r["cycles"]]
        x = np.arange(len(rows))
        ax.bar(x, [r["cycles"] for r in rows], color="tab:blue", label="RTL cycles")
        ax.plot(x, [r["model_cycles"] for r in rows], "k_", markersize=20, label="model")
        ax2 = ax.twinx()
        ax2.plot(x, [100 * r["utilization"] for r in rows], "o-", color="tab:orange")
        ax2.set_ylabel("utilization (%)", color="tab:orange")
        ax.set_xticks(x, [r["name"] for r in rows], rotation=30)
        ax.set_ylabel("cycles")
        ax.set_title(name)
        ax.legend(loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _report(summaries, accs) -> str:
    lines = ["# nnloom demo report", "",
             "Digits (scikit-learn, 8 x 8) classified on the generated accelerator's Verilog "
             "(Verilator, cocotb, cocotbext-axi DRAM); every RTL output bit-exact against the "
             "golden int8 model.", "",
             "| network | float acc. (test split) | int8 golden acc. | RTL acc. (sample) | "
             "cycles / inference | utilization | energy / inference |",
             "|---|---|---|---|---|---|---|"]
    for name, s in summaries.items():
        a = accs[name]
        lines.append(f"| {name} | {a['float']:.1%} | {a['int8']:.1%} | {s['accuracy']:.1%} "
                     f"({s['n']} digits) | {s['cycles']:,.0f} | {s['utilization']:.1%} | "
                     f"{s['energy_pj'] / 1e3:,.1f} nJ |")
    lines += ["", "![per-layer cycles and utilization](layers.png)", ""]
    for name, s in summaries.items():
        lines += [f"## {name}", "", "| layer | type | MACs | RTL cycles | model cycles | utilization |",
                  "|---|---|---|---|---|---|"]
        for r in s["layers"]:
            lines.append(f"| {r['name']} | {r['type']} | {r['macs']:,} | {r['cycles']:,} | "
                         f"{r['model_cycles']:,} | {r['utilization']:.1%} |")
        lines.append("")
    lines += ["Energy uses the Horowitz 45 nm table (nnloom.gen.perf.energy) on the program's "
              "access counts (nnloom.gen.accelerator.energy_estimate).", ""]
    return "\n".join(lines)


def run(argv) -> int:
    ap = Parser(prog="nnloom demo")
    ap.add_argument("-o", "--output", default="nnloom-demo", help="output directory")
    ap.add_argument("--samples", type=int, default=20, help="test digits per network on the RTL")
    ap.add_argument("--systolic", action="store_true",
                    help="only emit and simulate a systolic array on a random GEMM")
    args = ap.parse_args(argv)
    out = Path(args.output)
    if args.systolic:
        from nnloom.sim.demo_systolic import systolic_demo
        summary = systolic_demo(out)
        ok = all(v["exact"] and v["cycles"] == v["formula"] for v in summary.values())
        print(f"demo {'passed' if ok else 'FAILED'}; Verilog in {out}/")
        return 0 if ok else 1
    if not 1 <= args.samples <= TEST_DIGITS:
        raise UsageError(f"demo: --samples: expected 1..{TEST_DIGITS}, got {args.samples}")
    progress = Progress()
    files, summaries, accs = {}, {}, {}
    samples = spread(args.samples)
    for name in NETWORKS:
        toml = _trained(name, cache_root() / "demo", progress)
        net, qnet, xq, y, xf = digits_qnet(str(toml))
        accs[name] = {"float": float(np.mean([np.argmax(net.forward(x)) == t for x, t in zip(xf, y)])),
                      "int8": float(np.mean(predict(qnet, xf) == y))}
        print(f"{name}: float accuracy {accs[name]['float']:.1%}, int8 golden "
              f"{accs[name]['int8']:.1%} on {len(y)} test digits; generating ...")
        with progress.step(f"{name}: compiling and elaborating the accelerator"):
            b = build(toml, network=net, qnet=qnet)
            files.update({f"{name}/{k}": v for k, v in b.files().items()})
        summaries[name] = s = summarize(run_digits(b, samples, progress), b.program)
        print_summary(s, name)
    files["layers.png"] = _plot(summaries)
    files["report.md"] = _report(summaries, accs).encode()
    files["summary.json"] = json.dumps({"summaries": summaries, "accuracy": accs},
                                       indent=2, default=float).encode()
    write_dir(out, files)
    print(f"report: {out / 'report.md'} (plots: {out / 'layers.png'}); accelerators in "
          + ", ".join(f"{out / n}/" for n in NETWORKS))
    return 0
