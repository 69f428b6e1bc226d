"""cocotb regression of the EIE cluster on its emitted Verilog: outputs bit-exact
against the golden model on the encoding, cycles equal to the cycle model."""

import numpy as np
import pytest

from nnloom.gen.compiler import decode, encode
from nnloom.gen.perf import simulate_layer
from nnloom.hw.eie import EIECluster, EIEConfig
from nnloom.sim.golden.eie import dense_reference, spmv
from nnloom.sim.runner import run


def _cases(cfg):
    N = cfg.pes
    big = cfg.max_len
    rnd = [  # random layers: weight density 5..50 %, activation density 10..100 %
        dict(name=f"random-w{wd}-a{ad}",
             layers=[dict(kind="random", rows=rows, cols=cols, density=wd / 100, relu=relu)],
             act=dict(density=ad / 100), valid_prob=vp, ready_prob=rp)
        for wd, ad, rows, cols, relu, vp, rp in [
            (5, 100, big, big, False, 1.0, 1.0), (10, 10, big, big - 3, True, 0.7, 0.5),
            (20, 35, big - 1, big, False, 1.0, 0.3), (50, 60, 3 * N + 1, big, True, 0.5, 1.0),
            (35, 100, big, 2 * N - 1, False, 1.0, 1.0),
            (50, 100, big // 2, big // 2, False, 0.9, 0.9)]]
    return [
        dict(name="worked", layers=[dict(kind="worked", rows=8, cols=4)],
             act=dict(zero=(0, 2))),
        *rnd,
        dict(name="all-zero-act", layers=[dict(kind="codes", rows=big, cols=big, density=0.3)],
             act=dict(density=0.0)),
        dict(name="empty-cols-dead-pe",
             layers=[dict(kind="codes", rows=big, cols=big, density=0.3,
                          empty_cols=(0, 1, 5, big - 1), dead_pe=N - 1)]),
        dict(name="bypass", layers=[dict(kind="codes", rows=big, cols=big, one_row=True)]),
        dict(name="queue-full", layers=[dict(kind="codes", rows=4 * N, cols=big, density=0.05,
                                             hot_pe=0)], valid_prob=0.8, expect_stalls=True),
        dict(name="filler", layers=[dict(kind="codes", rows=big, cols=big, density=0.03)]),
        dict(name="overflow", layers=[dict(kind="codes", rows=big // 2, cols=big // 2,
                                           density=0.5, extreme=True)], act=dict(extreme=True)),
        dict(name="chain-relu", layers=[dict(kind="random", rows=big - 2, cols=big, density=0.2,
                                             relu=True),
                                        dict(kind="random", rows=big, cols=big - 2, density=0.2,
                                             relu=True)],
             act=dict(density=0.7), valid_prob=0.6, ready_prob=0.6),
    ]


CONFIGS = {
    "n4": EIEConfig(pes=4, act_depth=32, entry_rows=256, ptr_depth=128),
    "n6-q2-w12": EIEConfig(pes=6, queue_depth=2, act_width=12, frac_bits=4, acc_width=24,
                           act_depth=16, entry_rows=128, ptr_depth=104),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_eie_cluster(name, simulator):
    cfg = CONFIGS[name]
    run(EIECluster(cfg), "nnloom.sim.tb.eie_tb", sim=simulator,
        params={"config": cfg.to_dict(), "cases": _cases(cfg), "seed": sum(map(ord, name))})


# -- the golden and cycle models on their own (no simulator) -------------------

@pytest.mark.parametrize("seed", range(4))
def test_golden_on_encoding_matches_dense(seed):
    """The encoding walk (fillers, relative indices, wrap) equals a dense
    matrix-vector product on the decoded weights."""
    rng = np.random.default_rng(seed)
    cfg = EIEConfig(pes=1 + seed, act_width=12, frac_bits=3, acc_width=24)
    rows, cols = int(rng.integers(1, 80)), int(rng.integers(1, 40))
    codes = np.where(rng.random((rows, cols)) < 0.2, rng.integers(1, 16, (rows, cols)), 0)
    cb = np.concatenate([[0], rng.integers(-2048, 2048, 15)])
    act = np.where(rng.random(cols) < 0.6, rng.integers(-2048, 2048, cols), 0)
    csc = encode(codes, cfg.pes)
    for relu in (False, True):
        assert (spmv(cfg, csc, cb, act, relu=relu)
                == dense_reference(cfg, cb[decode(csc)], act, relu=relu)).all()


@pytest.mark.parametrize("pes,depth,c", [(1, 1, 2), (1, 8, 3), (4, 2, 1), (6, 1, 2),
                                         (16, 8, 1), (17, 4, 2)])
def test_cycle_model_closed_form(pes, depth, c):
    """Uniform work (every column slice c >= 1 entries, every activation non-zero):
    the PEs never starve after the fill, so compute = lnzd_depth + L * c + 7
    (leaf, tree, queue, pointer read, F load: lnzd_depth + 4 cycles of fill;
    D, B and the done check: 3 of drain) and efficiency -> 1 for long layers."""
    cfg = EIEConfig(pes=pes, queue_depth=depth)
    L = 3 * pes + 1
    t = simulate_layer(cfg, np.full((pes, L), c), np.ones(L, dtype=np.int64), 2 * pes)
    assert t.compute_cycles == cfg.lnzd_depth + L * c + 7
    assert t.cycles == t.compute_cycles + 3
    assert t.entries == pes * L * c and t.broadcasts == L


@pytest.mark.parametrize("pes", [1, 4, 6, 17])
def test_cycle_model_depth_one_queue(pes):
    """A full depth-1 queue cannot take a beat in the cycle it is popped, so
    one-entry columns are broadcast every other cycle: lnzd_depth + 2L + 6."""
    cfg = EIEConfig(pes=pes, queue_depth=1)
    L = 3 * pes + 1
    t = simulate_layer(cfg, np.ones((pes, L), dtype=np.int64), np.ones(L, dtype=np.int64), pes)
    assert t.compute_cycles == cfg.lnzd_depth + 2 * L + 6
