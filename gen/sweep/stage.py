"""What a sweep stage is: a function of one point, with checked options.

A :class:`Stage` names the function that evaluates it on a worker
(``run(network, config) -> dict`` of flat values, by value), the point
fields its result depends on (:attr:`Stage.reads`: two points that agree on
them share one evaluation), and its options from the spec's table of the
same name, each an :class:`Option` with a default and a check.  The model
stage lives here (:data:`MODEL`, :mod:`nnloom.gen.sweep.model`); the RTL and
FPGA stages live in the rooms that may run a simulator and a toolchain
(``nnloom.sim.sweep_stage.RTL``, ``nnloom.fpga.sweep_stage.FPGA``), and the
command line hands all three to the engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Option", "Stage", "run_stage", "one_line", "POINT_FIELDS"]

#: The fields of a point (besides the network) that a stage may read.
POINT_FIELDS = ("board", "size", "batch", "clock_mhz")


@dataclass(frozen=True)
class Option:
    """One option of a stage: its ``default``, the allowed values as the
    error line says them (``expected``), and ``check(value) -> bool``."""

    default: object
    expected: str
    check: Callable[[object], bool]


@dataclass(frozen=True)
class Stage:
    """A sweep stage: ``name``; ``run(network, config) -> dict`` (the
    network object, and the point's
    :meth:`~nnloom.gen.sweep.Point.stage_config`: ``network`` name and
    digest, the fields in ``reads``, and ``options``; flat JSON values
    back);
    ``reads``: the point fields (of :data:`POINT_FIELDS`) the result
    depends on; ``options``: name -> :class:`Option`; ``needs_weights``:
    the network must have trained weights; ``columns``: the result fields
    in the order the table shows them (others follow, sorted); ``about``:
    one line for the docs and the report."""

    name: str
    run: Callable[[object, dict], dict]
    reads: tuple[str, ...]
    options: dict[str, Option] = field(default_factory=dict)
    needs_weights: bool = False
    columns: tuple[str, ...] = ()
    about: str = ""

    def __post_init__(self):
        bad = [r for r in self.reads if r not in POINT_FIELDS]
        if bad:
            raise ValueError(f"reads: expected fields of {', '.join(POINT_FIELDS)}, not {bad}")


def one_line(e: BaseException) -> str:
    """An exception as one line: its message's first line, or its class."""
    text = str(e).strip().splitlines()
    return text[0] if text else e.__class__.__name__


def run_stage(run: Callable[[object, dict], dict], network, config: dict) -> dict:
    """``run(network, config)`` with its wall time in ``seconds``; an
    exception becomes ``{"error": one line}`` (a point that fails is a
    result, and the sweep goes on).  Ctrl-C and exits still stop it."""
    start = time.monotonic()
    try:
        out = dict(run(network, config))
    except Exception as e:          # noqa: BLE001 - every failure is the point's result
        out = {"error": f"{e.__class__.__name__}: {one_line(e)}"}
    out["seconds"] = round(time.monotonic() - start, 3)
    return out
