"""Digits inferences on a generated accelerator's Verilog, from Python.

:func:`simulate` runs test digits through a :class:`~nnloom.gen.accelerator.Build`'s
RTL with :mod:`nnloom.sim.tb.accel_tb` (Verilator or Icarus, DRAM and host in
cocotbext-axi; every output is checked bit for bit against the golden int8
model and every layer's cycles against the compiler's model inside the
testbench) and returns one result per digit; :func:`summarize` turns them into
accuracy, cycles, utilization and energy.  ``nnloom simulate``, ``nnloom demo``
and bench/accel_digits.py share them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from nnloom.gen.accelerator import DIGITS_SHAPES, energy_estimate, layer_table
from nnloom.hw.accel import Accelerator
from nnloom.hw.errors import InputError
from nnloom.sim.runner import run

__all__ = ["TEST_DIGITS", "spread", "simulate", "summarize", "check_digits"]

#: Size of the digits test split (:func:`nnloom.gen.train.digits_split`).
TEST_DIGITS = 359


def spread(n: int) -> list[int]:
    """``n`` test-split indices spread over the split (every class appears)."""
    return sorted({int(i) for i in np.linspace(0, TEST_DIGITS - 1, n).round()})


def check_digits(build) -> None:
    """:class:`InputError` unless the build's network takes the digits."""
    shape = tuple(build.network.input_shape)
    if shape not in DIGITS_SHAPES:
        raise InputError(f"{build.source}: input.shape: simulate feeds the digits test split: "
                         f"expected [64] or [1, 8, 8], got {list(shape)}")


def simulate(build, samples, *, sim: str | None = None, pause: float = 0.0, chunk: int = 5,
             on_chunk=None, build_status=None) -> list[dict]:
    """Run the test digits ``samples`` (test-split indices) through ``build``'s
    RTL, ``chunk`` digits per simulator run; ``on_chunk(n)`` is called after
    each run with the number of digits it did, ``build_status`` is passed to
    :func:`nnloom.sim.runner.run` (a context manager factory shown while the
    simulator builds).  Raises :class:`~nnloom.sim.runner.SimulationFailed`
    if any output or cycle count differs from the golden model's."""
    check_digits(build)
    design = Accelerator(build.config)
    results = []
    with tempfile.TemporaryDirectory() as d:
        for n, first in enumerate(range(0, len(samples), chunk)):
            part = list(samples[first:first + chunk])
            out = Path(d) / f"res{n}.json"
            run(design, "nnloom.sim.tb.accel_tb", sim=sim, testcase="inference_bit_exact",
                build_status=build_status,
                params={"config": build.config.to_dict(),
                        "network": str(Path(build.source).resolve()),
                        "samples": part, "pause": pause, "out": str(out)})
            results += json.loads(out.read_text())["results"]
            if on_chunk is not None:
                on_chunk(len(part))
    return results


def summarize(results: list[dict], program) -> dict:
    """Accuracy (against the labels), agreement with the float model, mean
    cycles per inference (DMA included), overall utilization (MACs / (PEs x
    cycles)), energy per inference (pJ, Horowitz 45 nm) and the per-layer
    rows of :func:`~nnloom.gen.accelerator.layer_table` (RTL counters beside
    the model)."""
    n = len(results)
    cycles = [r["cycles"] for r in results]
    energy = energy_estimate(program)
    macs = sum(L.macs for L in program.layers)
    P = program.config.size
    mean = float(np.mean(cycles)) if cycles else 0.0
    return {"n": n,
            "accuracy": sum(r["rtl"] == r["label"] for r in results) / max(n, 1),
            "agreement": sum(r["rtl"] == r["float"] for r in results) / max(n, 1),
            "cycles": mean, "utilization": macs / (P * P * mean) if mean else 0.0,
            "energy_pj": energy["energy"], "energy_table": energy["table"],
            "layers": layer_table(program, results[0]["layers"] if results else None)}
