"""The ``rtl`` stage of a sweep: ``nnloom simulate`` on one point.

It builds the point's accelerator as ``nnloom generate --size P`` does
(:func:`nnloom.gen.accelerator.build`), runs ``samples`` inputs through its
Verilog (:func:`nnloom.sim.accel_sim.run_inputs`: the test digits spread
over the split for a digits network, else seeded random samples, on which
the network is also calibrated, as ``nnloom simulate`` does), checks every
output bit for bit against the golden int8 model and every layer's cycle
counter against the compiler's model, and returns the summary
(:func:`nnloom.sim.accel_sim.summarize`).  A mismatch is a result
(``bit_exact`` or ``layers_exact`` false), not an exception.  The RTL does
not depend on the board or the clock, so points that differ only there
share one simulation (``reads``); Verilator builds are cached by the
Verilog's hash (docs/simulation.md).
"""

from __future__ import annotations

import numpy as np

from nnloom.gen.accelerator import build
from nnloom.gen.sweep import Option, Stage

from .accel_sim import (TEST_DIGITS, digits_inputs, is_digits, random_inputs, run_inputs, spread,
                        summarize)

__all__ = ["RTL", "rtl_stage"]


def rtl_stage(network, config: dict) -> dict:
    """The RTL row of one point (see docs/sweeps.md); ``config`` is the
    point's stage config (``size``, ``batch``, ``options``)."""
    opts = config["options"]
    n = opts["samples"]
    labels = None
    if is_digits(network):
        idx = spread(n)
        x, labels = digits_inputs(network, idx)
        calibration = None
    else:
        x = random_inputs(network, n, opts["seed"])
        calibration = x
    b = build(network.source, size=config["size"], batch=config["batch"], network=network,
              calibration=calibration)
    xq = np.stack([b.qnet.quantize_input(v) for v in x])
    results = run_inputs(b, xq, sim=opts["sim"], pause=opts["pause"], seed=opts["seed"])
    if labels is not None:
        for r, label, xf in zip(results, labels, x):
            r.update(label=int(label), rtl=int(np.argmax(r["output"])),
                     float=int(np.argmax(network.forward(xf))))
    s = summarize(results, b.program)
    out = {"samples": s["n"], "bit_exact": s["bit_exact"], "layers_exact": s["layers_exact"],
           "cycles": s["cycles"], "model_cycles": b.program.predicted_cycles(),
           "utilization": s["utilization"], "energy_pj": s["energy_pj"]}
    if "accuracy" in s:
        out.update(accuracy=s["accuracy"], agreement=s["agreement"])
    return out


def _number(lo, hi):
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi


RTL = Stage(
    "rtl", rtl_stage, reads=("size", "batch"), needs_weights=True,
    options={
        "samples": Option(2, f"an integer in 1..{TEST_DIGITS}",
                          lambda v: isinstance(v, int) and not isinstance(v, bool)
                          and 1 <= v <= TEST_DIGITS),
        "sim": Option("verilator", "verilator | icarus", lambda v: v in ("verilator", "icarus")),
        "pause": Option(0.0, "a number in 0..0.9 (probability of an AXI pause per cycle)",
                        _number(0, 0.9)),
        "seed": Option(0, "an integer >= 0",
                       lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    },
    columns=("bit_exact", "layers_exact", "cycles", "model_cycles", "samples", "accuracy",
             "agreement", "utilization", "energy_pj", "error", "seconds"),
    about="nnloom simulate on the point's RTL: bit-exact check, cycles per inference (DMA included)")
