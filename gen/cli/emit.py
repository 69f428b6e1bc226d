"""``nnloom emit``: one component's Verilog, or the list of components and their
parameters."""

from __future__ import annotations

import sys

from nnloom.hw.catalog import COMPONENTS
from nnloom.hw.params import ParamError

from .common import Parser, UsageError

__all__ = ["run"]


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


def run(argv: list[str]) -> int:
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
    parser = Parser(prog=f"nnloom emit {name}", add_help=True)
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
