"""cocotb regression of the systolic array on its emitted Verilog."""

import pytest

from nnloom.hw.systolic import SystolicArray, SystolicConfig
from nnloom.sim.runner import run


def _cases(cfg, *extra):
    R, C = cfg.rows, cfg.cols
    cases = [
        # full rate: bit-exact and cycle-exact against the formula
        dict(m=R, k=R, n=C, seed=1, check_cycles=True),
        dict(m=2 * R + 1, k=3 * R - 1, n=2 * C + 1, seed=2, check_cycles=True),  # ragged edges
        dict(m=1, k=1, n=1, seed=3, check_cycles=True),
        dict(m=R + 3, k=2 * R + 2, n=C + 1, seed=4, check_cycles=True),
        # short tiles (fewer rows / steps than R): bubbles the formula predicts
        dict(m=max(1, R - 1), k=max(1, R - 1), n=2 * C, seed=5, check_cycles=True),
        # random valid/ready gaps on every stream
        dict(m=2 * R + 1, k=2 * R + 1, n=C + 2, seed=6, valid_prob=0.6, ready_prob=0.5),
        dict(m=R + 2, k=R + 1, n=2 * C, seed=7, valid_prob=0.9, ready_prob=0.2),
        dict(m=3, k=2 * R, n=C, seed=8, valid_prob=0.3, ready_prob=0.9),
        # extreme operands (overflow with narrow accumulators)
        dict(m=R + 1, k=3 * R + 1, n=C, seed=9, kind="min", check_cycles=True),
        dict(m=R + 1, k=3 * R + 1, n=C, seed=10, kind="max"),
        dict(m=R + 1, k=3 * R + 1, n=C, seed=11, kind="minmax", ready_prob=0.5),
    ]
    if not cfg.result_fifo:     # no FIFO: the consumer must always be ready; the
        # random valid gaps on the inputs stay
        cases = [{**c, "ready_prob": 1.0} for c in cases]
    return cases + list(extra)


CONFIGS = {
    "ws-4x4-s8-wrap": SystolicConfig(rows=4, cols=4, dataflow="ws"),
    "os-4x4-s8-wrap": SystolicConfig(rows=4, cols=4, dataflow="os"),
    "ws-3x5-s8-sat16": SystolicConfig(rows=3, cols=5, dataflow="ws", acc_width=16,
                                      overflow="saturate"),
    "os-5x3-s8-sat16": SystolicConfig(rows=5, cols=3, dataflow="os", acc_width=16,
                                      overflow="saturate"),
    "ws-2x3-u6-wrap13": SystolicConfig(rows=2, cols=3, dataflow="ws", a_width=6, w_width=6,
                                       acc_width=13, signed=False),
    "os-3x2-u8-sat16": SystolicConfig(rows=3, cols=2, dataflow="os", signed=False,
                                      acc_width=16, overflow="saturate"),
    "ws-1x1-s2-sat4": SystolicConfig(rows=1, cols=1, dataflow="ws", a_width=2, w_width=2,
                                     acc_width=4, overflow="saturate"),
    "os-1x1-s16-wrap32": SystolicConfig(rows=1, cols=1, dataflow="os", a_width=16,
                                        w_width=16, acc_width=32),
    # result_fifo=False (as in the accelerator): one output register, same cycles
    "ws-4x3-s8-18-nofifo": SystolicConfig(rows=4, cols=3, dataflow="ws", acc_width=18,
                                          result_fifo=False),
    "os-3x4-s8-nofifo": SystolicConfig(rows=3, cols=4, dataflow="os", result_fifo=False),
    # registered multipliers (the portable description, hw/dsp.py) and the
    # registered edge: latency R + C + MULT_LATENCY + 1, read from the config
    "ws-4x4-s8-wrap-mult": SystolicConfig(rows=4, cols=4, dataflow="ws", multiplier="portable"),
    "os-5x3-s8-sat16-mult": SystolicConfig(rows=5, cols=3, dataflow="os", acc_width=16,
                                           overflow="saturate", multiplier="portable"),
    "ws-1x1-s2-sat4-mult": SystolicConfig(rows=1, cols=1, dataflow="ws", a_width=2, w_width=2,
                                          acc_width=4, overflow="saturate",
                                          multiplier="portable"),
    "os-1x2-u8-wrap-mult": SystolicConfig(rows=1, cols=2, dataflow="os", signed=False,
                                          multiplier="portable"),
    "ws-3x2-u6-wrap13-mult-nofifo": SystolicConfig(rows=3, cols=2, dataflow="ws", a_width=6,
                                                   w_width=6, acc_width=13, signed=False,
                                                   result_fifo=False, multiplier="portable"),
    "os-2x3-s16-mult-nofifo": SystolicConfig(rows=2, cols=3, dataflow="os", a_width=16,
                                             w_width=16, acc_width=40, result_fifo=False,
                                             multiplier="portable"),
}


#: registered-multiplier configurations of the default run (one per
#: dataflow, with the result FIFO and its registered credits); the others
#: run with NNLOOM_EXTENDED=1 (each is a Verilator build of its own)
DEFAULT_MULT = ("ws-4x4-s8-wrap-mult", "os-5x3-s8-sat16-mult")


@pytest.mark.slow
@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.extended)
    if name.endswith(("-mult", "-mult-nofifo")) and name not in DEFAULT_MULT else name
    for name in CONFIGS])
def test_systolic_gemm(name, simulator):
    cfg = CONFIGS[name]
    run(SystolicArray(cfg), "nnloom.sim.tb.systolic_tb", sim=simulator,
        params={"config": cfg.to_dict(), "cases": _cases(cfg), "seed": sum(map(ord, name))})
