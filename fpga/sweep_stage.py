"""The ``fpga`` stage of a sweep: ``nnloom fpga build`` on one point.

:func:`nnloom.fpga.build.build_network` for the point's network, board,
array side and clock (a clock other than the board's takes the ECP5 PLL;
the iCEBreaker runs only at its oscillator's), in a temporary directory on
the worker: the result is the figures (fmax, the clock target, the
resources used, the tool time), not the bitstream.  A design the fit check
refuses stops before any tool runs and is the point's ``error``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from nnloom.gen.planner import BOARDS
from nnloom.gen.sweep import Option, Stage

from .build import build_network

__all__ = ["FPGA", "fpga_stage"]


def fpga_stage(network, config: dict) -> dict:
    """The FPGA row of one point (see docs/sweeps.md)."""
    opts = config["options"]
    board = BOARDS[config["board"]]
    clock = config["clock_mhz"]
    with tempfile.TemporaryDirectory(prefix="nnloom-sweep-fpga-") as d:
        r = build_network(network.source, board.name, Path(d) / "out", size=config["size"],
                          # the point's clock exactly (the board's: its oscillator)
                          clock_mhz=clock,
                          network=network, synth_opts=opts["synth_opts"], abc9=opts["abc9"])
    b = r["build"]
    fmax, target = b["fmax_mhz"], b["target_mhz"]
    out = {"fmax_mhz": fmax, "target_mhz": target,
           "meets": bool(fmax and target and fmax >= target),
           "tool_seconds": b["seconds"], "mem_depth": r["mem_depth"]}
    for name, (used, available) in b["resources"].items():
        out[name] = used
        out[f"{name}_available"] = available
    return out


FPGA = Stage(
    "fpga", fpga_stage, reads=("board", "size", "batch", "clock_mhz"), needs_weights=True,
    options={"synth_opts": Option("", "a string of extra synth_ice40 / synth_ecp5 options",
                                  lambda v: isinstance(v, str)),
             "abc9": Option(True, "true | false (false: classic ABC LUT mapping on ECP5)",
                            lambda v: isinstance(v, bool))},
    columns=("fmax_mhz", "target_mhz", "meets", "luts", "ffs", "dsps", "bram", "spram", "lcs",
             "tool_seconds", "error", "seconds"),
    about="nnloom fpga build with the open toolchain: fmax and the resources used")
