"""A small end-to-end run: emit a systolic array, simulate a GEMM on its
Verilog with Verilator, and check it against the golden model and the cycle
formula.  ``nnloom demo --systolic`` runs it."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from nnloom.gen.verilog import to_verilog, write_atomic
from nnloom.hw.systolic import SystolicArray, SystolicConfig
from nnloom.sim.golden.gemm import gemm
from nnloom.sim.runner import run

__all__ = ["systolic_demo"]


def systolic_demo(out_dir: Path, *, rows=8, cols=8, m=24, k=40, n=20, seed=0, echo=print) -> dict:
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    summary = {}
    for df in ("ws", "os"):
        cfg = SystolicConfig(rows=rows, cols=cols, dataflow=df)
        array = SystolicArray(cfg)
        vpath = out_dir / f"systolic_{rows}x{cols}_{df}.v"
        write_atomic(vpath, to_verilog(array))
        a = rng.integers(-128, 128, (m, k))
        w = rng.integers(-128, 128, (k, n))
        with tempfile.TemporaryDirectory() as d:
            res_path = Path(d) / "res.json"
            echo(f"[{df}] simulating a {m}x{k}x{n} int8 GEMM on the {rows}x{cols} array "
                 f"({vpath.name}) with Verilator ...")
            run(array, "nnloom.sim.tb.systolic_demo_tb",
                params={"config": cfg.to_dict(), "a": a.tolist(), "w": w.tolist(),
                        "out": str(res_path)})
            res = json.loads(res_path.read_text())
        want = gemm(a, w, acc_width=cfg.acc_width, signed=cfg.signed, overflow_mode=cfg.overflow)
        exact = np.array_equal(np.array(res["c"]), want)
        formula = cfg.gemm_cycles(m, k, n)
        util = m * k * n / (rows * cols * res["cycles"])
        echo(f"[{df}] bit-exact vs golden: {'yes' if exact else 'NO'}; cycles {res['cycles']} "
             f"(formula {formula}); utilization {util:.1%}")
        summary[df] = {"exact": exact, "cycles": res["cycles"], "formula": formula,
                       "utilization": util, "verilog": str(vpath)}
    return summary
