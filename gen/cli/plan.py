"""``nnloom plan``: the accelerator ``nnloom generate --board`` builds for a
network, and its per-layer cycles (docs/planner.md); ``--array RxC`` (or
``--engine eyeriss|eie``) prints the performance model of one array instead
(docs/perf.md)."""

from __future__ import annotations

import sys

from nnloom.hw.params import ParamError

from .common import Parser, UsageError, check_options_batch, network_path

__all__ = ["run"]


_BUDGET_KEYS = ("dsps", "luts", "ffs", "bram_bits", "clock_mhz", "dram_bytes_per_cycle", "family")
_BUDGET_OPTIONAL = ("bram_block_bits", "lut_multipliers")


def _plan_args(argv):
    p = Parser(prog="nnloom plan",
               description="The accelerator nnloom generate --board builds for a network: of "
                           "the square weight-stationary designs it can build that fit the "
                           "board, the one with the fewest cycles per inference by the serial "
                           "estimate (the compiler's exact compute cycles plus instruction fetch "
                           "plus every DRAM beat).  "
                           "--array RxC prints the performance model of one systolic array "
                           "instead.")
    p.add_argument("network", help="network description (.toml, .onnx, .tflite; SCALE-Sim .csv "
                                   "with --array)")
    p.add_argument("--board", help="board name (see nnloom.gen.planner.BOARDS); default "
                                   "ulx3s-85f")
    p.add_argument("--budget", help="explicit budget KEY=VALUE,... over "
                   + ", ".join(_BUDGET_KEYS + _BUDGET_OPTIONAL) + " (overrides --board's figures)")
    p.add_argument("--batch", type=int, default=1,
                   help="samples per weight tile (1; batching comes with the v2 accelerator)")
    p.add_argument("--engine", default="systolic", help="systolic | eyeriss | eie (the last "
                                                        "two: their models' figures, not planned)")
    p.add_argument("--array", help="the performance model of a fixed RxC systolic array "
                                   "(ideal DRAM; not a design nnloom generate builds)")
    p.add_argument("--dataflow", choices=("ws", "os"),
                   help="dataflow of --array (ws or os); the accelerator is ws")
    p.add_argument("--costs", default="horowitz45", help="eyeriss | horowitz45 | FILE.toml")
    p.add_argument("-o", "--output", help="report JSON to write")
    p.add_argument("--roofline", help="roofline PNG to write")
    return p.parse_args(argv)


def _plan_budget(args):
    from nnloom.gen.planner import BoardError, Budget, board

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
    from nnloom.gen.perf import TABLES, CostTable, CostTableError

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


def _print_model(result, costs, console):
    cfg = result.config
    console.print(f"[bold]model: {result.engine} {cfg.rows}x{cfg.cols} {cfg.dataflow.upper()} "
                  "array (performance model; not a design nnloom generate builds)[/bold]")
    console.print("no clock (cycles only), buffers "
                  + ", ".join(f"{k} {v} B" for k, v in result.buffers.items())
                  + ", DRAM ideal")
    for reason in result.reasons:
        console.print(f"  - {reason}")
    _print_layers(result.layers, result.totals, costs, console)


def _print_plan(result, costs, console):
    from rich.table import Table

    d = result.config
    head = f"plan: {result.engine} {d.describe()}"
    if result.board:
        head += f" on {result.board} (what nnloom generate --board {result.board} builds)"
    console.print(f"[bold]{head}[/bold]")
    t = result.totals
    console.print(f"clock {result.clock_mhz:g} MHz, {t['cycles']:,} compute cycles per inference, "
                  f"about {t['estimated_cycles']:,} with fetch and DMA (at least "
                  f"{result.inferences_per_second:,.1f} samples/s), buffers "
                  + ", ".join(f"{k} {v} B" for k, v in result.buffers.items()))
    for reason in result.reasons:
        console.print(f"  - {reason}")
    table = Table(show_edge=False)
    for col in ("layer", "type", "MACs", "cycles", "util", "DRAM B"):
        table.add_column(col, justify="left" if col in ("layer", "type") else "right")
    for lp in result.layers:
        table.add_row(lp.name, lp.type, f"{lp.macs:,}", f"{lp.cycles:,}",
                      f"{lp.utilization:.1%}", f"{lp.dram_bytes:,}")
    table.add_row("total", "", f"{t['macs']:,}", f"{t['cycles']:,}", f"{t['utilization']:.1%}",
                  f"{t['dram_bytes']:,}")
    console.print(table)
    console.print(f"energy {t['energy_pj'] / 1e3:,.1f} nJ per inference (horowitz45)"
                  + (f", {t['energy']:.4g} {t['energy_unit']} ({costs.name})"
                     if costs.name != "horowitz45" else ""))
    cands = Table(title="designs searched", show_edge=False)
    for col in ("array", "compute cycles", "estimate", ""):
        cands.add_column(col, justify="right" if col in ("compute cycles", "estimate") else "left")
    for c in result.candidates:
        mark = "chosen" if c.size == d.rows else (
            "fits" if c.fits else c.error.replace(f"a {c.size} x {c.size} array on ", "on "))
        cands.add_row(f"{c.size}x{c.size}", f"{c.cycles:,}" if c.cycles is not None else "-",
                      f"{c.estimate:,}" if c.estimate is not None else "-", mark)
    console.print(cands)


def run(argv: list[str]) -> int:
    import json

    from rich.console import Console
    from rich.progress import Progress

    from nnloom.gen.verilog import write_atomic

    args = _plan_args(argv)
    if args.engine not in ("systolic", "eyeriss", "eie"):
        raise UsageError(f"plan: --engine: expected systolic | eyeriss | eie, got {args.engine!r}")
    check_options_batch(args.batch)
    budget, config, costs = _plan_budget(args), _plan_config(args), _plan_costs(args.costs)
    if config is not None and budget is not None:
        given = "--board" if args.board else "--budget"
        raise UsageError(f"plan: --array: expected no --board or --budget (the model of a fixed "
                         f"array assumes ideal DRAM; without --array the plan is the design "
                         f"nnloom generate builds for the board), got {given}")
    if config is None and args.dataflow == "os" and args.engine == "systolic":
        raise UsageError("plan: --dataflow: expected ws (the accelerator is weight-stationary; "
                         "--array RxC --dataflow os gives the model of an output-stationary "
                         "array), got os")
    from nnloom.gen.frontend import load_network
    from nnloom.gen.planner import BOARDS, DEFAULT_BOARD, board

    network = load_network(network_path(args.network))
    if args.engine == "systolic" and budget is None and config is None:
        args.board, budget = DEFAULT_BOARD, board(DEFAULT_BOARD).budget
        print(f"nnloom: plan: no --board, --budget or --array given: planning for the default "
              f"board {DEFAULT_BOARD} (--board picks another: {', '.join(BOARDS)})",
              file=sys.stderr)
    from nnloom.gen.perf import EngineUnavailable, Memory, network_perf
    from nnloom.gen.planner import PlanError, fixed_plan, plan

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
    if config is not None:
        result = fixed_plan(network, config, costs)
        _print_model(result, costs, console)
    else:
        err = Console(stderr=True)
        with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task("planning", total=None)
            try:
                result = plan(network, budget, costs=costs, board=args.board,
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
        from nnloom.gen.perf import roofline_png

        cfg = result.config
        outputs[args.roofline] = roofline_png(
            result.layers, result.peak_macs_per_cycle, result.dram_bytes_per_cycle,
            f"{network.name}: {cfg.rows}x{cfg.cols} "
            f"{cfg.dataflow.upper()}" + (f" on {result.board}" if result.board else ""))
    for path, data in outputs.items():
        write_atomic(path, data)
        print(f"wrote {path}", file=sys.stderr)
    return 0
