"""``nnloom fpga build`` and ``nnloom fpga run`` (see docs/boards.md).

Bad input, an unknown board, and a design that does not fit are one line on
stderr and exit status 2 (through :class:`nnloom.gen.cli.UsageError`); a tool that
fails is exit status 1 with the end of its log.
"""

from __future__ import annotations

import json
import sys

__all__ = ["main"]

USAGE = """usage: nnloom fpga build NETWORK --board NAME [-o DIR] [--size P] [--clock MHZ] [--baud N]
                         [--check] [--synth-opts OPTS]
       nnloom fpga run NETWORK --board NAME --port DEVICE [--size P] [--baud N] [--samples N]

boards: {boards}"""


def _usage_error(msg):
    from nnloom.gen.cli import UsageError
    return UsageError(msg)


def _common(ap):
    ap.add_argument("network")
    ap.add_argument("--board", required=True)
    ap.add_argument("--size", type=int, help="array side P (2, or a multiple of 4); default: the "
                                               "planner's, or the largest that fits")
    ap.add_argument("--baud", type=int, default=115200)


def _checked(fn, *args, **kw):
    """Run ``fn``; turn the errors of bad input into one-line usage errors."""
    from nnloom.gen.planner.boards import BoardError
    from nnloom.gen.frontend.network import NetworkError

    from nnloom.fpga.board import PllError
    from nnloom.fpga.fit import FitError

    try:
        return fn(*args, **kw)
    except (FitError, BoardError, NetworkError, PllError) as e:
        raise _usage_error(f"fpga: {e}") from None
    except ValueError as e:          # e.g. an unreachable baud rate
        raise _usage_error(f"fpga: {e}") from None


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
    print(f"bitstream: {b['bitstream']}")
    print(f"report: {r['report']}  (UART {r['baud']} baud, divisor {r['divisor']})")


def cmd_build(argv) -> int:
    from nnloom.gen.cli import _Parser
    from nnloom.gen.cli.accel import check_size_option

    from nnloom.fpga.build import ToolError, build_network

    ap = _Parser(prog="nnloom fpga build")
    _common(ap)
    ap.add_argument("-o", "--output", help="output directory (default build/NETWORK-BOARD)")
    ap.add_argument("--clock", type=float, help="target clock in MHz (ECP5: a PLL); default the board's")
    ap.add_argument("--check", action="store_true", help="fit check only, no synthesis")
    ap.add_argument("--synth-opts", default="", help="extra synth_ice40 / synth_ecp5 options")
    args = ap.parse_args(argv)
    check_size_option(args.size)
    try:
        r = _checked(build_network, args.network, args.board, args.output, size=args.size,
                     clock_mhz=args.clock, baud=args.baud, fit_only=args.check,
                     synth_opts=args.synth_opts)
    except ToolError as e:
        print(f"nnloom: fpga build: {e}", file=sys.stderr)
        return 1
    if args.check:
        print(json.dumps(r["fit"], indent=1))
        return 0
    _print_table(r)
    return 0


def cmd_run(argv) -> int:
    from nnloom.gen.cli import _Parser
    from nnloom.gen.cli.accel import check_size_option

    from nnloom.hw import uart_link as link
    from nnloom.fpga.build import prepare
    from nnloom.fpga.host import check_board, open_port, run_samples

    ap = _Parser(prog="nnloom fpga run")
    _common(ap)
    ap.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB0")
    ap.add_argument("--samples", type=int, default=10, help="test digits to run")
    args = ap.parse_args(argv)
    check_size_option(args.size)
    network, qnet, cfg, prog, _, _ = _checked(prepare, args.network, args.board, size=args.size)
    from nnloom.sim.accel_models import digits_qnet
    from nnloom.sim.golden.qnet import run as golden_run

    _, _, xq, y, _ = digits_qnet(args.network)
    try:
        port = open_port(args.port, args.baud)
    except Exception as e:      # pyserial's SerialException, OSError
        raise _usage_error(f"fpga run: --port: {e}") from None
    with port:
        try:
            check_board(port, cfg)
            rows = run_samples(port, prog, lambda x: golden_run(qnet, x)[-1], xq,
                               range(args.samples))
        except (link.LinkError, link.AccelError) as e:
            print(f"nnloom: fpga run: {e}", file=sys.stderr)
            return 1
    for row in rows:
        print(f"digit {row['sample']}: class {row['class']} (label {y[row['sample']]}), "
              f"{row['cycles']} cycles, {'bit-exact' if row['bit_exact'] else 'DIFFERS from golden'}")
    return 0 if all(r["bit_exact"] for r in rows) else 1


def main(argv) -> int:
    from nnloom.gen.planner.boards import BOARDS

    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.format(boards=", ".join(BOARDS)))
        return 0
    cmds = {"build": cmd_build, "run": cmd_run}
    if argv[0] not in cmds:
        raise _usage_error(f"fpga: unknown subcommand {argv[0]!r}; choose from: build, run")
    return cmds[argv[0]](argv[1:])
