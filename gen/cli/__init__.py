"""The ``nnloom`` command: the one package that imports every room.

One module per command (``emit``, ``infer``, ``plan``, ``generate``,
``simulate``, ``demo``, ``fpga``, ``sweep``), each with ``run(argv) -> int``, loaded
only when its command runs.  :data:`EXIT_CODES` is the one table from errors to exit
statuses: bad input (any :class:`~nnloom.hw.errors.InputError`) is one line
on stderr, ``nnloom: <where>: <what>: expected <allowed>, got <value>``, and
status 2, never a traceback; a design that fails its check in simulation, a
tool that fails and a board that answers wrongly are status 1; Ctrl-C is
130.  Commands write their outputs whole or not at all.
"""

from __future__ import annotations

import importlib
import sys

from nnloom.hw.errors import InputError

from .common import UsageError

__all__ = ["main", "COMMANDS", "EXIT_CODES", "UsageError"]

#: command (and the module of this package that runs it) -> one line of help
COMMANDS = {
    "emit": "write one component's Verilog",
    "infer": "run the golden model (int8 or float) on inputs",
    "plan": "plan the accelerator `generate --board` builds; per-layer cycles",
    "generate": "generate an accelerator for a network",
    "simulate": "run inputs through the generated RTL against the golden model",
    "demo": "the built-in demo (no arguments needed)",
    "fpga": "build for an FPGA board; run over its UART",
    "sweep": "evaluate many design points (model, RTL, FPGA) on Dask",
}


def _exit_codes():
    from nnloom.fpga.build import ToolError
    from nnloom.hw.uart_link import AccelError, LinkError
    from nnloom.sim.runner import SimulationFailed

    # (error classes, exit status, what the one line says before the message)
    return ((InputError, 2, ""),
            (SimulationFailed, 1, "simulation failed: "),
            (ToolError, 1, "fpga build: "),
            ((LinkError, AccelError), 1, "fpga run: "),
            (KeyboardInterrupt, 130, "interrupted"))


#: The table from errors to exit statuses (built when first needed, so that
#: ``nnloom --help`` loads no simulator or toolchain code).
EXIT_CODES = None


def _usage() -> str:
    lines = ["usage: nnloom COMMAND [args]", "", "commands:"]
    lines += [f"  {name:10s} {text}" for name, text in COMMANDS.items()]
    lines += ["", "NETWORK arguments take a file or a shipped example's name (digits_mlp, "
              "lenet_digits, minerva_mlp, alexnet)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    global EXIT_CODES
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] in ("-h", "--help"):
            print(_usage())
            return 0
        if argv[0] not in COMMANDS:
            raise UsageError(f"unknown command {argv[0]!r}; choose from: " + ", ".join(COMMANDS))
        module = importlib.import_module(f"{__name__}.{argv[0]}")
        return module.run(argv[1:]) or 0
    except (Exception, KeyboardInterrupt) as e:
        EXIT_CODES = EXIT_CODES or _exit_codes()
        for classes, status, prefix in EXIT_CODES:
            if isinstance(e, classes):
                text = str(e).strip().splitlines()[0] if str(e).strip() else ""
                print(f"nnloom: {prefix}{text}".rstrip(), file=sys.stderr)
                return status
        raise
