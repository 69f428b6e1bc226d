"""``nnloom fpga build`` and ``nnloom fpga run`` (docs/boards.md).

Bad input, an unknown board, and a design that does not fit are one line on
stderr and exit status 2; a tool that fails is exit status 1 with the end of
its log (``EXIT_CODES`` in :mod:`nnloom.gen.cli`).
"""

from __future__ import annotations

import json

from nnloom.hw.errors import InputError

from .common import Parser, Progress, UsageError, add_design_options, design_options, network_path

__all__ = ["run"]


USAGE = """usage: nnloom fpga build NETWORK --board NAME [-o DIR] [--size P] [--clock MHZ] [--baud N]
                         [--check] [--synth-opts OPTS]
       nnloom fpga run NETWORK --board NAME --port DEVICE [--size P] [--baud N] [--samples N]

boards: {boards}"""


def _common(ap):
    ap.add_argument("network", help="network file (.toml with weights, .onnx) or a shipped example")
    add_design_options(ap, board_required=True)
    ap.add_argument("--baud", type=int, default=115200)


def _checked(fn, *args, **kw):
    """Run ``fn``; bad input becomes a one-line ``fpga: ...`` usage error."""
    try:
        return fn(*args, **kw)
    except InputError as e:
        raise UsageError(f"fpga: {e}") from None


def _print_table(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    b = r["build"]
    print(f"{r['network']} on {r['board']} ({b['device']}), "
          f"{r['config']['size']} x {r['config']['size']} array, {r['mem_depth']} words of board RAM")
    if r.get("plan", {}).get("note"):
        print(f"({r['plan']['note']})")
    t = Table()
    for col in ("resource", "used", "available", "estimate"):
        t.add_column(col, justify="right" if col != "resource" else "left")
    est = r["fit"]["estimate"]
    for name, (used, avail) in b["resources"].items():
        t.add_row(name, f"{used:,}", f"{avail:,}", f"{est[name]:,}" if name in est else "")
    Console().print(t)
    fmax, target = b["fmax_mhz"], b["target_mhz"]
    verdict = "meets" if fmax and target and fmax >= target else "MISSES"
    print(f"fmax {fmax:.1f} MHz, target {target:g} MHz: {verdict} timing" if fmax else
          "fmax: not reported")
    if len(b.get("clock_search", [])) > 1:
        tried = ", ".join(f"{p['clock_mhz']:g} MHz (fmax {p['fmax_mhz']:.1f}"
                          f"{'' if p['met'] else ', missed'})" for p in b["clock_search"])
        print(f"clock {r['clock_mhz']:g} MHz, chosen by building at {tried}")
    print(f"bitstream: {b['bitstream']}")
    print(f"report: {r['report']}  (UART {r['baud']} baud, divisor {r['divisor']})")


def cmd_build(argv) -> int:
    from nnloom.fpga.build import build_network

    ap = Parser(prog="nnloom fpga build")
    _common(ap)
    ap.add_argument("-o", "--output", help="output directory (default build/NETWORK-BOARD)")
    ap.add_argument("--clock", type=float,
                    help="target clock in MHz, exactly (a PLL: EHXPLLL on ECP5, SB_PLL40_PAD on "
                         "iCE40; the oscillator's frequency: none); default: the fastest standard "
                         "clock that meets timing with 10 %% margin (built at the oscillator, "
                         "then with the PLL)")
    ap.add_argument("--check", action="store_true", help="fit check only, no synthesis")
    ap.add_argument("--synth-opts", default="", help="extra synth_ice40 / synth_ecp5 options")
    args = ap.parse_args(argv)
    opts = design_options(args)
    progress = Progress()
    status = (lambda: progress.step(f"fpga build for {args.board}: Yosys, nextpnr and the "
                                    "packer (a minute or more)"))
    r = _checked(build_network, network_path(args.network), opts["board"], args.output,
                 size=opts["size"], clock_mhz=args.clock, baud=args.baud,
                 fit_only=args.check, synth_opts=args.synth_opts, status=status)
    if args.check:
        print(json.dumps(r["fit"], indent=1))
        return 0
    _print_table(r)
    return 0


def cmd_run(argv) -> int:
    from nnloom.fpga.build import prepare
    from nnloom.fpga.host import check_board, open_port, run_samples
    from nnloom.sim.accel_models import digits_qnet
    from nnloom.sim.golden.qnet import run as golden_run

    ap = Parser(prog="nnloom fpga run")
    _common(ap)
    ap.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB0")
    ap.add_argument("--samples", type=int, default=10, help="test digits to run")
    args = ap.parse_args(argv)
    opts = design_options(args)
    path = network_path(args.network)
    the_build, _ = _checked(prepare, path, opts["board"], size=opts["size"])
    _, _, xq, y, _ = digits_qnet(str(path))
    try:
        port = open_port(args.port, args.baud)
    except Exception as e:      # pyserial's SerialException, OSError
        raise UsageError(f"fpga run: --port: {e}") from None
    with port:
        check_board(port, the_build.config)
        rows = run_samples(port, the_build.program,
                           lambda x: golden_run(the_build.qnet, x)[-1], xq, range(args.samples))
    for row in rows:
        print(f"digit {row['sample']}: class {row['class']} (label {y[row['sample']]}), "
              f"{row['cycles']} cycles, {'bit-exact' if row['bit_exact'] else 'DIFFERS from golden'}")
    return 0 if all(r["bit_exact"] for r in rows) else 1


def run(argv) -> int:
    from nnloom.gen.planner import BOARDS

    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.format(boards=", ".join(BOARDS)))
        return 0
    cmds = {"build": cmd_build, "run": cmd_run}
    if argv[0] not in cmds:
        raise UsageError(f"fpga: unknown subcommand {argv[0]!r}; choose from: build, run")
    return cmds[argv[0]](argv[1:])
