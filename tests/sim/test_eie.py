"""cocotb regression of the EIE cluster on its emitted Verilog: outputs bit-exact
against the golden model on the encoding, cycles equal to the cycle model."""

import pytest

from hw.eie import EIECluster, EIEConfig
from sim.runner import run


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
            (35, 100, big, 2 * N - 1, False, 1.0, 1.0), (50, 100, big // 2, big // 2, False, 0.9, 0.9)]]
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
    run(EIECluster(cfg), "sim.tb.eie_tb", sim=simulator,
        params={"config": cfg.to_dict(), "cases": _cases(cfg), "seed": sum(map(ord, name))})
