"""The ``nnloom`` command.

Every command reports bad input as one line on stderr,
``nnloom: <where>: <what>: expected <allowed>, got <value>``, and exits with
status 2; it never prints a traceback for bad input, and it writes its
outputs whole or not at all.
"""

from __future__ import annotations

import argparse
import sys

from nnloom.hw.catalog import COMPONENTS
from nnloom.hw.params import ParamError

__all__ = ["main", "UsageError"]


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2, no usage dump
        raise UsageError(f"{self.prog.split(' ', 1)[-1]}: {message}")


# -- emit --------------------------------------------------------------------

def _list_components() -> str:
    from rich.console import Console
    from rich.table import Table

    import io

    console = Console(width=120, record=True, file=io.StringIO())
    for entry in COMPONENTS.values():
        cfg = entry.config_class()
        table = Table(title=f"{entry.name}: {entry.summary}", title_justify="left",
                      show_edge=False)
        for col in ("parameter", "default", "allowed", "meaning"):
            table.add_column(col)
        for info in cfg.params():
            default = str(info.default).lower() if info.kind is bool else str(info.default)
            table.add_row(info.flag, default, info.allowed, info.help)
        console.print(table)
        console.print()
    return console.export_text()


def _cmd_emit(argv: list[str]) -> int:
    from nnloom.gen.verilog import to_verilog, write_atomic

    if not argv or argv[0] in ("-h", "--help"):
        print("usage: nnloom emit COMPONENT [--param value ...] [-o FILE.v] [--top NAME]\n"
              "       nnloom emit --list\n\ncomponents: " + ", ".join(COMPONENTS))
        return 0
    if argv[0] == "--list":
        sys.stdout.write(_list_components())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMPONENTS:
        raise UsageError(f"emit: unknown component {name!r}; choose from: "
                         + ", ".join(COMPONENTS))
    entry = COMPONENTS[name]
    cfg_cls = entry.config_class()
    infos = {info.flag: info for info in cfg_cls.params()}
    parser = _Parser(prog=f"nnloom emit {name}", add_help=True)
    parser.add_argument("-o", "--output", help="Verilog file to write (default: stdout)")
    parser.add_argument("--top", default="top", help="name of the top module")
    for flag, info in infos.items():
        parser.add_argument(flag, dest=info.name, default=None, metavar=info.allowed.replace(" ", ""),
                            help=f"{info.help} (default {info.default})")
    args = parser.parse_args(rest)
    try:
        values = {}
        for info in infos.values():
            text = getattr(args, info.name)
            if text is not None:
                values[info.name] = info.parse(text)
        cfg = cfg_cls(**values)
    except ParamError as e:
        flag = "--" + e.name.replace("_", "-")
        raise UsageError(f"emit {name}: {flag}: expected {e.allowed}, got {e.value}") from None
    text = to_verilog(entry.build(cfg), name=args.top)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        write_atomic(args.output, text)
        print(f"wrote {args.output} ({name}, {len(text.splitlines())} lines)", file=sys.stderr)
    return 0


# -- plan --------------------------------------------------------------------

_BUDGET_KEYS = ("dsps", "luts", "ffs", "bram_bits", "clock_mhz", "dram_bytes_per_cycle", "family")
_BUDGET_OPTIONAL = ("bram_block_bits", "lut_multipliers")


def _plan_args(argv):
    p = _Parser(prog="nnloom plan")
    p.add_argument("network", help="network description (.toml, .onnx, SCALE-Sim .csv)")
    p.add_argument("--board", help="board name (see gen.boards.BOARDS)")
    p.add_argument("--budget", help="explicit budget KEY=VALUE,... over "
                   + ", ".join(_BUDGET_KEYS + _BUDGET_OPTIONAL) + " (overrides --board's figures)")
    p.add_argument("--engine", default="systolic", help="systolic | eyeriss | eie")
    p.add_argument("--array", help="fixed array size RxC (else planned)")
    p.add_argument("--dataflow", choices=("ws", "os"), help="fixed dataflow (else planned)")
    p.add_argument("--costs", default="horowitz45", help="eyeriss | horowitz45 | FILE.toml")
    p.add_argument("-o", "--output", help="report JSON to write")
    p.add_argument("--roofline", help="roofline PNG to write")
    return p.parse_args(argv)


def _plan_budget(args):
    from nnloom.gen.planner.boards import BoardError, Budget, board

    try:
        budget = board(args.board).budget if args.board else None
        if args.budget:
            values = budget.to_json() if budget else {"family": "ecp5"}
            for item in args.budget.split(","):
                key, _, text = item.partition("=")
                key = key.strip()
                if key not in _BUDGET_KEYS + _BUDGET_OPTIONAL or not text:
                    raise UsageError(f"plan: --budget: {key or item}: expected KEY=VALUE with KEY "
                                     f"in {', '.join(_BUDGET_KEYS + _BUDGET_OPTIONAL)}, got {item!r}")
                text = text.strip()
                if key == "lut_multipliers":
                    if text.lower() not in ("0", "1", "true", "false", "yes", "no"):
                        raise UsageError(f"plan: --budget: {key}: expected true | false, got {text!r}")
                    values[key] = text.lower() in ("1", "true", "yes")
                    continue
                try:
                    values[key] = text if key == "family" else (
                        float(text) if key in ("clock_mhz", "dram_bytes_per_cycle") else int(text))
                except ValueError:
                    raise UsageError(f"plan: --budget: {key}: expected a number, got {text!r}") from None
            missing = [k for k in _BUDGET_KEYS if k not in values]
            if missing:
                raise UsageError(f"plan: --budget: {missing[0]}: expected a value (or --board), got none")
            budget = Budget(**values)
    except BoardError as e:
        raise UsageError(f"plan: {e}") from None
    return budget


def _plan_config(args):
    from nnloom.hw.systolic import SystolicConfig

    if args.array is None:
        return None
    rows, sep, cols = args.array.lower().partition("x")
    if not (sep and rows.isdigit() and cols.isdigit()):
        raise UsageError(f"plan: --array: expected RxC (e.g. 8x8), got {args.array!r}")
    try:
        return SystolicConfig(rows=int(rows), cols=int(cols), dataflow=args.dataflow or "ws")
    except ParamError as e:
        raise UsageError(f"plan: --array: {e.name}: expected {e.allowed}, got {e.value}") from None


def _plan_costs(text):
    from nnloom.gen.perf.energy import TABLES, CostTable, CostTableError

    if text in TABLES:
        return TABLES[text]
    if not text.endswith(".toml"):
        raise UsageError(f"plan: --costs: expected {' | '.join(TABLES)} | FILE.toml, got {text!r}")
    try:
        return CostTable.from_toml(text)
    except CostTableError as e:
        raise UsageError(str(e)) from None


def _print_layers(layers, totals, costs, console):
    from rich.table import Table

    table = Table(show_edge=False)
    other = costs.name != "horowitz45"  # a second energy column in the chosen table's unit
    cols = ["layer", "type", "GEMM MxKxN", "MACs", "cycles", "stall", "util", "DRAM B",
            "energy pJ"] + ([f"energy ({costs.name}, {costs.unit})"] if other else [])
    for col in cols:
        table.add_column(col, justify="left" if col in ("layer", "type") else "right")
    for lp in layers:
        table.add_row(lp.name, lp.type, "x".join(map(str, lp.gemm)) if lp.gemm else lp.note,
                      str(lp.macs), str(lp.cycles), str(lp.stall_cycles),
                      f"{lp.utilization:.1%}", str(lp.dram_bytes), f"{lp.energy_pj:.4g}",
                      *([f"{lp.energy:.4g}"] if other else []))
    t = totals
    table.add_row("total", "", "", str(t["macs"]), str(t["cycles"]),
                  str(t["cycles"] - t["compute_cycles"]), f"{t['utilization']:.1%}",
                  str(t["dram_bytes"]), f"{t['energy_pj']:.4g}",
                  *([f"{t['energy']:.4g}"] if other else []))
    console.print(table)


def _print_plan(result, costs, console):
    cfg = result.config
    head = f"plan: {result.engine} {cfg.rows}x{cfg.cols} {cfg.dataflow.upper()}"
    if result.board:
        head += f" on {result.board}"
    console.print(f"[bold]{head}[/bold]")
    ips = result.inferences_per_second
    clock = f"clock {result.clock_mhz:g} MHz" if result.clock_mhz else "no clock (cycles only)"
    console.print(f"{clock}, buffers "
                  + ", ".join(f"{k} {v} B" for k, v in result.buffers.items())
                  + f", DRAM {result.dram_bytes_per_cycle or 'ideal'} B/cycle"
                  + (f", {ips:.1f} samples/s" if ips else ""))
    for reason in result.reasons:
        console.print(f"  - {reason}")
    _print_layers(result.layers, result.totals, costs, console)


def _cmd_plan(argv: list[str]) -> int:
    import json

    from rich.console import Console
    from rich.progress import Progress

    from nnloom.gen.frontend.network import NetworkError
    from nnloom.gen.verilog import write_atomic

    args = _plan_args(argv)
    if args.engine not in ("systolic", "eyeriss", "eie"):
        raise UsageError(f"plan: --engine: expected systolic | eyeriss | eie, got {args.engine!r}")
    budget, config, costs = _plan_budget(args), _plan_config(args), _plan_costs(args.costs)
    try:
        from nnloom.gen.frontend.loaders import load_network
    except ImportError as e:  # the loaders land separately
        raise UsageError(f"plan: {args.network}: file: expected a format nnloom can read, "
                         f"got none (network loaders unavailable: {e})") from None
    try:
        network = load_network(args.network)
    except NetworkError as e:
        raise UsageError(str(e)) from None
    from nnloom.gen.perf.model import EngineUnavailable, Memory, network_perf
    from nnloom.gen.planner.plan import PlanError, fixed_plan, plan

    console = Console(width=140)
    if args.engine != "systolic":  # no planner for these yet: their model's figures only
        bw = budget.dram_bytes_per_cycle if budget else None
        try:
            perf = network_perf(network, args.engine, memory=Memory(dram_bytes_per_cycle=bw),
                                costs=costs)
        except EngineUnavailable as e:
            raise UsageError(f"plan: --engine: expected systolic, got {args.engine} ({e})") from None
        console.print(f"[bold]{args.engine}: its model's figures (not planned)[/bold]")
        _print_layers(perf.layers, perf.totals, costs, console)
        if args.output:
            write_atomic(args.output, json.dumps({
                "network": network.name, "source": args.network, "engine": args.engine,
                "layers": [lp.to_json() for lp in perf.layers], "totals": perf.totals},
                indent=1) + "\n")
        return 0
    if budget is None:
        if config is None:
            raise UsageError("plan: --board: expected a board name, --budget or --array, got none")
        result = fixed_plan(network, config, costs)
    else:
        dataflows = (args.dataflow,) if args.dataflow else ("ws", "os")
        err = Console(stderr=True)
        with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task("planning", total=None)
            try:
                result = plan(network, budget, config=config, costs=costs, board=args.board,
                              dataflows=dataflows,
                              progress=lambda n, total: bar.update(task, completed=n, total=total))
            except PlanError as e:
                raise UsageError(f"{args.network}: budget: {e}") from None
    _print_plan(result, costs, console)
    outputs = {}
    if args.output:
        report = {"network": network.name, "source": args.network, **result.to_json(),
                  "costs": {"name": costs.name, "unit": costs.unit, "source": costs.source}}
        outputs[args.output] = json.dumps(report, indent=1) + "\n"
    if args.roofline:
        from nnloom.gen.perf.roofline import roofline_png

        outputs[args.roofline] = roofline_png(
            result.layers, result.peak_macs_per_cycle, result.dram_bytes_per_cycle,
            f"{network.name}: {result.config.rows}x{result.config.cols} "
            f"{result.config.dataflow.upper()}" + (f" on {result.board}" if result.board else ""))
    for path, data in outputs.items():
        write_atomic(path, data)
        print(f"wrote {path}", file=sys.stderr)
    return 0


# -- infer -------------------------------------------------------------------

def _cmd_infer(argv: list[str]) -> int:
    """Golden inference; see docs/quantization.md ("nnloom infer")."""
    import io

    import numpy as np

    from nnloom.gen.frontend.network import Network, NetworkError
    from nnloom.gen.verilog import write_atomic

    parser = _Parser(prog="nnloom infer", description="Run the golden model: int8 for quantized "
                     "models, float otherwise. X holds one sample or a batch (batch axis first).")
    parser.add_argument("network", help="network file (.toml with weights, or .onnx)")
    parser.add_argument("--input", required=True, metavar="X.npy", help="input samples")
    parser.add_argument("-o", "--output", required=True, metavar="Y.npy", help="output file")
    parser.add_argument("--float", dest="float_", action="store_true", help="force the float reference")
    parser.add_argument("--format", choices=("int8", "qmn"), default="int8",
                        help="quantization of a float network (default int8)")
    parser.add_argument("--calibration", metavar="C.npy",
                        help="calibration inputs (default: digits training split for digits networks, else X)")
    parser.add_argument("--dequantize", action="store_true", help="write real values instead of int8 codes")
    args = parser.parse_args(argv)
    try:
        from nnloom.gen.frontend.loaders import load_model, load_network
        from nnloom.gen.frontend.quantize import QuantizeError, quantize
        from nnloom.gen.frontend.qtypes import QuantizedNetwork
        from nnloom.sim.golden.qnet import run, run_float

        model = load_model(args.network)
        if isinstance(model, Network) and (not model.has_weights or model.layer_inputs is not None):
            raise NetworkError(args.network, "weights", "expected a network with weights to run, "
                               "got none (timing only)")
        x = _load_npy(args.input, "--input")
        shape = tuple(model.input_shape)
        if x.shape != shape and x.shape[1:] != shape:
            raise UsageError(f"infer: {args.input}: expected shape {list(shape)} or [N, "
                             f"{', '.join(map(str, shape))}], got {list(x.shape)}")
        note = ""
        if args.float_:
            net = load_network(args.network) if isinstance(model, QuantizedNetwork) else model
            y, note = run_float(net, x.astype(np.float64))[-1].astype(np.float32), "float"
        else:
            if isinstance(model, Network):
                calib, note = _calibration(model, x, args.calibration)
                model = quantize(model, calib, args.format)
            if np.issubdtype(x.dtype, np.integer) and not note:
                xq = x.astype(np.int64)          # int8 codes for an imported quantized model
                if xq.size and (xq.min() < -128 or xq.max() > 127):
                    raise UsageError(f"infer: {args.input}: expected int8 codes -128..127, "
                                     f"got {xq.min()}..{xq.max()}")
            else:
                xq = np.stack([model.quantize_input(s) for s in x.reshape(-1, *shape)]).reshape(x.shape)
            y = run(model, xq)[-1]
            y = model.dequantize_output(y).astype(np.float32) if args.dequantize else y.astype(np.int8)
            note = f"{model.fmt}{' ' + note if note else ''}, output scale {model.output_scale:.6g} " \
                   f"zero point {model.output_zp}"
    except (NetworkError, QuantizeError, ValueError) as e:
        raise UsageError(f"{e}") from None
    buf = io.BytesIO()
    np.save(buf, y)
    write_atomic(args.output, buf.getvalue())
    print(f"wrote {args.output}: {y.dtype} {list(y.shape)} ({note})", file=sys.stderr)
    return 0


def _load_npy(path, flag):
    import numpy as np

    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UsageError(f"infer: {flag}: expected a readable .npy file, got {path!r} "
                         f"({e.__class__.__name__})") from None
    if not isinstance(x, np.ndarray) or not (np.issubdtype(x.dtype, np.integer)
                                             or np.issubdtype(x.dtype, np.floating)):
        raise UsageError(f"infer: {flag}: expected a numeric array, got {getattr(x, 'dtype', type(x))}")
    return x


def _calibration(net, x, path):
    """Calibration inputs and a note saying where they came from."""
    import numpy as np

    if path:
        c = _load_npy(path, "--calibration")
        return c.astype(np.float64).reshape(-1, *net.input_shape), f"calibrated on {path}"
    if int(np.prod(net.input_shape)) == 64 and net.output_shape == (10,):
        from nnloom.gen.train.digits import digits_split

        return digits_split(0, net.input_shape)[0], "calibrated on the digits training split"
    return x.astype(np.float64).reshape(-1, *net.input_shape), "calibrated on the input"


# -- entry point ---------------------------------------------------------------

def _accel(name, argv):
    from nnloom.gen import cli_accel
    return getattr(cli_accel, name)(argv)


COMMANDS = {
    "emit": (_cmd_emit, "write one component's Verilog"),
    "infer": (_cmd_infer, "run the golden model (int8 or float) on inputs"),
    "plan": (_cmd_plan, "plan an accelerator for a network; per-layer performance"),
    "generate": (lambda a: _accel("cmd_generate", a), "generate an accelerator for a network"),
    "simulate": (lambda a: _accel("cmd_simulate", a), "run test digits through the generated RTL"),
    "demo": (lambda a: _accel("cmd_demo", a), "the built-in demo (no arguments needed)"),
    "fpga": (lambda a: __import__("nnloom.gen.cli.fpga", fromlist=["main"]).main(a), "build for an FPGA board; run over its UART"),
}


def _usage() -> str:
    lines = ["usage: nnloom COMMAND [args]", "", "commands:"]
    lines += [f"  {name:10s} {help}" for name, (_, help) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] in ("-h", "--help"):
            print(_usage())
            return 0
        cmd = argv[0]
        if cmd not in COMMANDS:
            raise UsageError(f"unknown command {cmd!r}; choose from: " + ", ".join(COMMANDS))
        return COMMANDS[cmd][0](argv[1:]) or 0
    except UsageError as e:
        print(f"nnloom: {e}", file=sys.stderr)
        return 2
    except ParamError as e:
        print(f"nnloom: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        from nnloom.sim.runner import SimulationFailed
        if isinstance(e, SimulationFailed):
            first = str(e).splitlines()[0]
            print(f"nnloom: simulation failed: {first}", file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        print("nnloom: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
