"""``nnloom generate``, ``nnloom simulate`` and ``nnloom demo``.

These commands wire the flow end to end (network -> quantize -> compile ->
Verilog -> cocotb on Verilator -> report), so they live at the CLI level,
the one place allowed to import every package.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["cmd_generate", "cmd_simulate", "cmd_demo"]

TEST_DIGITS = 359      # size of nnloom.gen.train.digits.digits_split's test split
DIGITS_NOTE = "simulate feeds the digits test split: the network's input must be [64] or [1, 8, 8]"


def _spread(n: int) -> list[int]:
    """``n`` test-split indices spread over the split (every class appears)."""
    return sorted({int(i) for i in np.linspace(0, TEST_DIGITS - 1, n).round()})


def _parser(prog):
    from nnloom.gen.cli import _Parser
    return _Parser(prog=prog)


def _usage_error(msg):
    from nnloom.gen.cli import UsageError
    return UsageError(msg)


def _load(path):
    from nnloom.gen.frontend.loaders import load_network
    from nnloom.gen.frontend.network import NetworkError

    try:
        return load_network(path)
    except NetworkError as e:
        raise _usage_error(str(e)) from None


def check_size_option(size):
    """``--size``: None or one of :data:`gen.accelerator.SIZES`, else a usage
    error (one line, exit status 2)."""
    from nnloom.gen.accelerator import check_size
    from nnloom.hw.params import ParamError

    if size is not None:
        try:
            check_size(size)
        except ParamError as e:
            raise _usage_error(f"--{e}") from None


def cmd_generate(argv) -> int:
    from nnloom.gen.accelerator import generate
    from nnloom.gen.compiler.compile import CompileError

    ap = _parser("nnloom generate")
    ap.add_argument("network")
    ap.add_argument("-o", "--output", required=True, help="output directory")
    ap.add_argument("--board", help="plan the array size for this board")
    ap.add_argument("--size", type=int, help="array side P (2, or a multiple of 4); default 8")
    ap.add_argument("--engine", default="systolic", choices=["systolic"],
                    help="compute engine (the accelerator integrates the systolic array)")
    args = ap.parse_args(argv)
    check_size_option(args.size)
    net = _load(args.network)
    if not net.has_weights:
        raise _usage_error(f"{args.network}: weights: the network has no weights to generate for")
    try:
        res = generate(args.network, args.output, board=args.board, size=args.size, network=net)
    except (CompileError, ValueError) as e:
        raise _usage_error(str(e)) from None
    cfg, prog = res["config"], res["program"]
    print(f"wrote {args.output}/: accel.v ({cfg.size}x{cfg.size} array), program.bin "
          f"({len(prog.instructions)} instructions), image.bin ({prog.size} bytes), report.json, "
          f"README.md")
    return 0


def _simulate(network_path, samples, *, size=None, sim=None, pause=0.0, echo=print,
              progress=True, chunk=5):
    """Run ``samples`` test digits through the RTL; return (results, program)."""
    from rich.progress import Progress

    from nnloom.gen.accelerator import quantize_network, size_config
    from nnloom.gen.compiler.compile import compile_network
    from nnloom.hw.accel import Accelerator
    from nnloom.sim.runner import run

    net = _load(network_path)
    if tuple(net.input_shape) not in ((64,), (1, 8, 8)):
        raise _usage_error(f"{network_path}: input.shape: {DIGITS_NOTE}, got {list(net.input_shape)}")
    if not net.has_weights:
        raise _usage_error(f"{network_path}: weights: the network has no weights to simulate")
    qnet = quantize_network(net)
    cfg = size_config(qnet, size or 8)
    prog = compile_network(qnet, cfg)
    design = Accelerator(cfg)
    results = []
    chunks = [samples[i:i + chunk] for i in range(0, len(samples), chunk)]
    with tempfile.TemporaryDirectory() as d, Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"RTL inference ({net.name}, {cfg.size}x{cfg.size})", total=len(samples))
        for n, part in enumerate(chunks):
            out = Path(d) / f"res{n}.json"
            run(design, "nnloom.sim.tb.accel_tb", sim=sim,
                params={"config": cfg.to_dict(), "network": str(Path(network_path).resolve()),
                        "samples": part, "pause": pause, "out": str(out)})
            data = json.loads(out.read_text())
            results += data["results"]
            bar.advance(task, len(part))
    return results, prog, qnet, net


def _summary(results, prog, echo=print, title=""):
    from rich.console import Console
    from rich.table import Table

    from nnloom.gen.accelerator import energy_estimate, layer_table

    n = len(results)
    rtl_ok = sum(r["rtl"] == r["label"] for r in results)
    agree = sum(r["rtl"] == r["float"] for r in results)
    layers = results[0]["layers"] if results else []
    rows = layer_table(prog, layers)
    console = Console()
    t = Table(title=title or f"{prog.name}: per-layer cycles (RTL counters vs model)")
    for col in ("layer", "type", "MACs", "RTL cycles", "model", "utilization"):
        t.add_column(col, justify="right" if col not in ("layer", "type") else "left")
    for row in rows:
        t.add_row(row["name"], row["type"], f"{row['macs']:,}", f"{row['cycles']:,}",
                  f"{row['model_cycles']:,}", f"{row['utilization']:.1%}")
    console.print(t)
    cycles = [r["cycles"] for r in results]
    energy = energy_estimate(prog)
    macs = sum(L.macs for L in prog.layers)
    util = macs / (prog.config.size ** 2 * np.mean(cycles)) if cycles else 0.0
    echo(f"{prog.name}: {n} digits on the RTL, every output bit-exact vs the golden int8 model; "
         f"accuracy {rtl_ok}/{n} = {rtl_ok / max(n, 1):.1%} (labels), agreement with float "
         f"{agree}/{n}; {np.mean(cycles):,.0f} cycles per inference (incl. DMA), "
         f"overall utilization {util:.1%}; estimated energy {energy['energy'] / 1e3:,.1f} nJ "
         f"per inference ({energy['table']})")
    return {"n": n, "accuracy": rtl_ok / max(n, 1), "agreement": agree / max(n, 1),
            "cycles": float(np.mean(cycles)) if cycles else 0.0, "utilization": util,
            "energy_pj": energy["energy"], "layers": rows}


def cmd_simulate(argv) -> int:
    ap = _parser("nnloom simulate")
    ap.add_argument("network")
    ap.add_argument("--samples", type=int, default=20, help="test digits to run (default 20)")
    ap.add_argument("--sim", choices=["verilator", "icarus"], default=None)
    ap.add_argument("--size", type=int, help="array side P (2, or a multiple of 4); default 8")
    ap.add_argument("--pause", type=float, default=0.0,
                    help="probability of a pause on every AXI channel each cycle (0..0.9)")
    args = ap.parse_args(argv)
    check_size_option(args.size)
    if not 1 <= args.samples <= TEST_DIGITS:
        raise _usage_error(f"--samples: expected 1..{TEST_DIGITS}, got {args.samples}")
    if not 0 <= args.pause <= 0.9:
        raise _usage_error(f"--pause: expected 0..0.9, got {args.pause}")
    if args.sim == "icarus" and not shutil.which("iverilog"):
        raise _usage_error("--sim: icarus: iverilog is not installed (apt-get install iverilog)")
    results, prog, _, _ = _simulate(args.network, _spread(args.samples), size=args.size,
                                    sim=args.sim, pause=args.pause)
    _summary(results, prog)
    return 0


# -- the demo ---------------------------------------------------------------------

DEMO_NETWORKS = ("digits_mlp", "lenet_digits")


def _trained(name, cache: Path, echo):
    """Train the example network on the digits, or reuse the cached weights."""
    from nnloom.gen.train.digits import save_weights, train_digits
    from nnloom.sim.accel_models import EXAMPLES

    src = EXAMPLES / f"{name}.toml"
    text = src.read_text()
    key = hashlib.sha256(text.encode()).hexdigest()[:12]
    cache.mkdir(parents=True, exist_ok=True)
    weights = cache / f"{name}-{key}.npz"
    toml = cache / f"{name}-{key}.toml"
    if not weights.exists():
        echo(f"training {name} on the scikit-learn digits (seed 0) ...")
        net = _load(src)
        save_weights(train_digits(net, seed=0), weights)
    else:
        echo(f"reusing {name} trained before ({weights})")
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("weights")]
    toml.write_text(f'weights = "{weights.name}"\n' + "\n".join(lines) + "\n")
    return toml


def _plots(summaries, out: Path):
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
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _report(summaries, accs, out_dir: Path):
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
    lines += ["Energy uses the Horowitz 45 nm table (gen/perf/energy.py) on the program's access "
              "counts (gen/accelerator.py: energy_estimate).", ""]
    (out_dir / "report.md").write_text("\n".join(lines))


def cmd_demo(argv) -> int:
    ap = _parser("nnloom demo")
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
        raise _usage_error(f"--samples: expected 1..{TEST_DIGITS}, got {args.samples}")
    from nnloom.gen.accelerator import generate
    from nnloom.sim.accel_models import digits_qnet
    from nnloom.sim.golden.qnet import predict
    from nnloom.sim.runner import cache_root

    out.mkdir(parents=True, exist_ok=True)
    summaries, accs = {}, {}
    samples = _spread(args.samples)
    for name in DEMO_NETWORKS:
        toml = _trained(name, cache_root() / "demo", print)
        net, qnet, xq, y, xf = digits_qnet(str(toml))
        accs[name] = {"float": float(np.mean([np.argmax(net.forward(x)) == t for x, t in zip(xf, y)])),
                      "int8": float(np.mean(predict(qnet, xf) == y))}
        print(f"{name}: float accuracy {accs[name]['float']:.1%}, int8 golden "
              f"{accs[name]['int8']:.1%} on {len(y)} test digits; generating ...")
        generate(toml, out / name, network=net, qnet=qnet)
        results, prog, _, _ = _simulate(str(toml), samples)
        summaries[name] = _summary(results, prog)
    _plots(summaries, out / "layers.png")
    _report(summaries, accs, out)
    (out / "summary.json").write_text(json.dumps({"summaries": summaries, "accuracy": accs},
                                                 indent=2, default=float))
    print(f"report: {out / 'report.md'} (plots: {out / 'layers.png'}); accelerators in "
          + ", ".join(f"{out / n}/" for n in DEMO_NETWORKS))
    return 0
