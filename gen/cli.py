"""The ``nnloom`` command.

Every command reports bad input as one line on stderr,
``nnloom: <where>: <what>: expected <allowed>, got <value>``, and exits with
status 2; it never prints a traceback for bad input, and it writes its
outputs whole or not at all.
"""

from __future__ import annotations

import argparse
import sys

from hw.catalog import COMPONENTS
from hw.params import ParamError

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
    from gen.verilog import to_verilog, write_atomic

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


# -- demo --------------------------------------------------------------------

def _cmd_demo(argv: list[str]) -> int:
    parser = _Parser(prog="nnloom demo")
    parser.add_argument("-o", "--output", default="nnloom-demo", help="output directory")
    parser.add_argument("--systolic", action="store_true",
                        help="only emit and simulate a systolic array on a random GEMM")
    args = parser.parse_args(argv)
    from sim.demo_systolic import systolic_demo

    summary = systolic_demo(args.output)
    ok = all(v["exact"] and v["cycles"] == v["formula"] for v in summary.values())
    print(f"demo {'passed' if ok else 'FAILED'}; Verilog in {args.output}/")
    return 0 if ok else 1


# -- entry point ---------------------------------------------------------------

COMMANDS = {
    "emit": (_cmd_emit, "write one component's Verilog"),
    "demo": (_cmd_demo, "the built-in demo (no arguments needed)"),
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
    except KeyboardInterrupt:
        print("nnloom: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
