"""Inferences on a generated accelerator's Verilog, from Python.

:func:`run_inputs` runs int8 inputs through a
:class:`~nnloom.gen.accelerator.Build`'s RTL with :mod:`nnloom.sim.tb.accel_run_tb`
(Verilator or Icarus, DRAM and host in cocotbext-axi) and compares every
output with the golden int8 model (:mod:`nnloom.sim.golden.qnet`) and every
layer's cycle counter with the compiler's model: each result says whether it
is ``bit_exact`` and ``layers_exact``.  :func:`simulate` does it for test
digits (with labels and the float model's answer), :func:`inputs_for` picks
a network's inputs (the user's samples, the test digits, or seeded random
ones), and :func:`summarize` turns results into cycles, utilization,
energy and, when there are labels, accuracy.  ``nnloom simulate``, ``nnloom
demo`` and bench/accel_digits.py share them.
"""

from __future__ import annotations

import json
import pickle
import tempfile
from pathlib import Path

import numpy as np

from nnloom.gen.accelerator import DIGITS_SHAPES, energy_estimate, layer_table
from nnloom.hw.accel import Accelerator
from nnloom.hw.errors import InputError
from nnloom.sim.runner import SimulationFailed, run

__all__ = ["TEST_DIGITS", "spread", "simulate", "run_inputs", "summarize", "check_digits",
           "is_digits", "digits_inputs", "random_inputs", "load_inputs", "failures", "MAX_RANDOM"]

#: Size of the digits test split (:func:`nnloom.gen.train.digits_split`).
TEST_DIGITS = 359
#: Most seeded random inputs one run takes.
MAX_RANDOM = 1000


def spread(n: int) -> list[int]:
    """``n`` test-split indices spread over the split (every class appears)."""
    return sorted({int(i) for i in np.linspace(0, TEST_DIGITS - 1, n).round()})


def is_digits(network) -> bool:
    """Does the network take the digits ([64] or [1, 8, 8])?"""
    return tuple(network.input_shape) in DIGITS_SHAPES


def check_digits(build) -> None:
    """:class:`InputError` unless the build's network takes the digits."""
    shape = tuple(build.network.input_shape)
    if shape not in DIGITS_SHAPES:
        raise InputError(f"{build.source}: input.shape: the digits test split needs "
                         f"[64] or [1, 8, 8], got {list(shape)}")


def digits_inputs(network, samples):
    """``(x_float, labels)`` of the test digits ``samples`` (test-split indices)."""
    from nnloom.gen.train import digits_split

    _, _, x_test, y_test = digits_split(0, shape=network.input_shape)
    idx = list(samples)
    return np.asarray(x_test)[idx], np.asarray(y_test)[idx]


def random_inputs(network, n: int, seed: int = 0) -> np.ndarray:
    """``n`` seeded random float inputs, uniform in [-1, 1)."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, *network.input_shape))


def load_inputs(path, network) -> np.ndarray:
    """Float samples from ``path`` (.npy): one shaped like the network input,
    or a batch ``[N, *shape]``; anything else is a one-line
    :class:`InputError` naming the file and the expected shape."""
    shape = tuple(network.input_shape)
    want = f"{list(shape)} or [N, {', '.join(map(str, shape))}]"
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: file: expected a readable .npy file of float samples shaped "
                         f"{want}, got {e.__class__.__name__}") from None
    if not isinstance(x, np.ndarray) or not (np.issubdtype(x.dtype, np.floating)
                                             or np.issubdtype(x.dtype, np.integer)):
        raise InputError(f"{path}: samples: expected numbers shaped {want}, got "
                         f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.shape == shape:
        x = x[None]
    if x.shape[1:] != shape or len(x) == 0:
        raise InputError(f"{path}: shape: expected samples shaped {want}, got {list(x.shape)}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise InputError(f"{path}: samples: expected finite numbers, got NaN or infinity")
    return x


def run_inputs(build, xq, *, sim: str | None = None, pause: float = 0.0, seed: int = 0,
               chunk: int = 5, on_chunk=None, build_status=None, engine=None) -> list[dict]:
    """Run the int8 inputs ``xq`` (``[N, *input_shape]``) through ``build``'s
    RTL, ``chunk`` per simulator run (``on_chunk(n)`` after each); one result
    per input: its ``output`` (int8 array), ``golden`` (the golden model's),
    ``bit_exact``, the RTL's ``cycles`` (CYCLES: the whole inference, DMA
    included), ``beats``, ``stalls``, ``layers`` (per-layer compute cycles)
    and ``layers_exact`` (every counter equals the compiler's model).
    ``build_status`` is passed to :func:`nnloom.sim.runner.run`; ``engine``
    (a factory, :mod:`nnloom.hw.engine`) replaces the core's systolic array."""
    plan = run_plan(build, xq, chunk)
    xq, prog, B, jobs, runs, per = plan.xq, plan.prog, plan.B, plan.jobs, plan.runs, plan.per
    design = Accelerator(build.config, engine)
    raw = []
    with tempfile.TemporaryDirectory() as d:
        job = Path(d) / "job.pkl"
        with open(job, "wb") as f:
            pickle.dump({"program": prog, "inputs": jobs}, f)
        for n, first in enumerate(range(0, runs, per)):
            count = min(per, runs - first)
            out = Path(d) / f"res{n}.json"
            run(design, "nnloom.sim.tb.accel_run_tb", sim=sim, testcase="run_inputs",
                build_status=build_status,
                params={"job": str(job), "first": first, "count": count, "pause": pause,
                        "seed": seed, "out": str(out)})
            raw += json.loads(out.read_text())["results"]
            if on_chunk is not None:
                on_chunk(min(count * B, len(xq) - first * B))
    return plan.results(raw)


class RunPlan:
    """How :func:`run_inputs` (cocotb) and :func:`nnloom.sim.fast.run_inputs_fast`
    (the C++ harness) cut ``xq`` into runs of B samples (the last padded
    with copies of the first input) and runs into simulator sessions of
    ``per`` runs (batched runs at least two to a session, so that the second
    keeps the program), and how they turn each run's raw figures into the
    per-input results (compared with the golden model and the layer model)."""

    def __init__(self, build, xq, chunk):
        from nnloom.sim.golden.qnet import run as golden_run

        shape = build.qnet.input_shape
        self.xq = np.asarray(xq, dtype=np.int64).reshape(-1, *shape)
        self.prog = prog = build.program
        self.B = B = prog.batch
        self.want = np.asarray(golden_run(build.qnet, self.xq)[-1]).reshape(len(self.xq), -1)
        self.model = [L.cycles for L in prog.layers[:prog.config.layers]]
        self.runs = -(-len(self.xq) // B)
        padded = np.concatenate([self.xq, np.repeat(self.xq[:1], self.runs * B - len(self.xq),
                                                    axis=0)])
        self.jobs = padded.reshape(self.runs, B, *shape) if B > 1 else padded
        self.per = max(1, chunk // B) if B == 1 else max(2, chunk // B)

    def results(self, raw) -> list[dict]:
        """``raw``: per run ``index``, ``output`` (B samples' int8 values),
        ``cycles``, ``beats``, ``stalls``, ``layers``, ``kept``."""
        B, prog, results = self.B, self.prog, []
        for r in raw:
            outs = np.asarray(r["output"], dtype=np.int64).reshape(B, -1)
            for k in range(B):
                index = r["index"] * B + k
                if index >= len(self.xq):
                    break
                golden = self.want[index].reshape(prog.output_shape)
                output = outs[k].reshape(prog.output_shape)
                results.append({"index": index, "output": output, "golden": golden,
                                "bit_exact": bool(np.array_equal(output, golden)),
                                "cycles": r["cycles"], "batch": B, "beats": r["beats"],
                                "kept": r.get("kept", False),
                                "stalls": r["stalls"], "layers": r["layers"],
                                "layers_exact": list(r["layers"]) == self.model})
        return results


def run_plan(build, xq, chunk: int = 5) -> RunPlan:
    return RunPlan(build, xq, chunk)


def failures(results) -> str:
    bad = [r for r in results if not (r["bit_exact"] and r["layers_exact"])]
    if not bad:
        return ""
    r = bad[0]
    what = ("its output differs from the golden int8 model" if not r["bit_exact"]
            else "a layer's cycle counter differs from the compiler's model")
    return (f"{len(bad)} of {len(results)} inferences on the RTL are wrong (first: input "
            f"{r['index']}: {what})")


def simulate(build, samples, *, sim: str | None = None, pause: float = 0.0, chunk: int = 5,
             on_chunk=None, build_status=None, strict: bool = True) -> list[dict]:
    """Run the test digits ``samples`` (test-split indices) through
    ``build``'s RTL (:func:`run_inputs`); each result also has the digit's
    ``sample`` index, ``label``, ``rtl`` (the RTL's class) and ``float`` (the
    float model's).  With ``strict``, raises
    :class:`~nnloom.sim.runner.SimulationFailed` if any output or cycle
    counter differs from the models."""
    check_digits(build)
    x, y = digits_inputs(build.network, samples)
    xq = np.stack([build.qnet.quantize_input(v) for v in x])
    results = run_inputs(build, xq, sim=sim, pause=pause, chunk=chunk, on_chunk=on_chunk,
                         build_status=build_status)
    for r, s, label, xf in zip(results, samples, y, x):
        r.update(sample=int(s), label=int(label), rtl=int(np.argmax(r["output"])),
                 float=int(np.argmax(build.network.forward(xf))))
    if strict and failures(results):
        raise SimulationFailed(failures(results))
    return results


def summarize(results: list[dict], program) -> dict:
    """``n``; ``bit_exact`` (every output equals the golden model's) and
    ``layers_exact`` (every layer counter the compiler's model); mean
    ``cycles`` per inference (a run's CYCLES, DMA included, over its
    ``batch`` samples), ``run_cycles`` (a run's mean; ``run_cycles_warm``
    over the runs that kept the loaded program) beside ``model_run_cycles``
    and ``model_run_cycles_warm`` (:meth:`Program.run_cycles`, resident
    weights only, else None); overall ``utilization`` (MACs / (PEs x
    cycles)); ``energy_pj`` per inference (Horowitz 45 nm) and
    ``energy_table``; the per-layer rows of
    :func:`~nnloom.gen.accelerator.layer_table` (RTL counters beside the
    model); and, for results with labels (the test digits), ``accuracy``
    and ``agreement`` with the float model."""
    n = len(results)
    B = program.batch
    cycles = [r["cycles"] for r in results]
    warm = [r["cycles"] for r in results if r.get("kept")]
    energy = energy_estimate(program)
    macs = sum(L.macs for L in program.layers)          # of one run (its B samples)
    P = program.config.size
    mean = float(np.mean(cycles)) if cycles else 0.0     # of a run
    out = {"n": n,
           "bit_exact": bool(results) and all(r["bit_exact"] for r in results),
           "layers_exact": bool(results) and all(r["layers_exact"] for r in results),
           "cycles": mean / B, "run_cycles": mean, "batch": B,
           "run_cycles_warm": float(np.mean(warm)) if warm else None,
           "model_run_cycles": program.run_cycles(kept=False),
           "model_run_cycles_warm": program.run_cycles(kept=True),
           "utilization": macs / (P * P * mean) if mean else 0.0,
           "energy_pj": energy["energy"] / B, "energy_table": energy["table"],
           "layers": layer_table(program, results[0]["layers"] if results else None)}
    if results and all("label" in r for r in results):
        out["accuracy"] = sum(r["rtl"] == r["label"] for r in results) / n
        out["agreement"] = sum(r["rtl"] == r["float"] for r in results) / n
    return out
