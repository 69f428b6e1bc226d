"""cocotb regression of the Eyeriss PE array on its emitted Verilog: psums
bit-exact against the golden conv2d, every counter and the cycle count equal
to the mapper's prediction (one build, every case in one run)."""

import pytest

from nnloom.hw.eyeriss import EyerissArray, EyerissConfig
from nnloom.sim.runner import run

# 6 x 3 PEs: R = 3 replicates twice, R = 1 six times; E > 3 folds into strips,
# R = 7 into row passes.
CONFIG = EyerissConfig(rows=6, cols=3, filter_spad=32, ifmap_spad=12, psum_spad=4,
                       glb_ifmap=512, glb_psum=256)

CASES = [
    # R = S = 3, padding, C > 1, M > 1, half zeros; E = 5 folds (3 + 2), rv = 2
    dict(h=5, w=5, c=2, m=2, r=3, s=3, stride=1, padding=1, seed=1),
    # the same layer with q = 1: two replicas, one per channel (replication)
    dict(h=5, w=5, c=2, m=2, r=3, s=3, stride=1, padding=1, seed=2, p=1, q=1),
    # R = S = 1, q = 1: six replicas, channels in passes of 6 + 2; E = 4 folds
    dict(h=4, w=5, c=8, m=3, r=1, s=1, stride=1, padding=0, seed=3, p=3, q=1),
    # R = S = 5, stride 2, padding 2: the PE set (5 x 4) is larger than the array's columns
    dict(h=7, w=7, c=2, m=2, r=5, s=5, stride=2, padding=2, seed=4),
    # R = S = 3, stride 2, no padding, C = 3, M = 4
    dict(h=7, w=6, c=3, m=4, r=3, s=3, stride=2, padding=0, seed=5),
    # R = S = 1, stride 2 (U > S: windows do not overlap)
    dict(h=5, w=5, c=2, m=2, r=1, s=1, stride=2, padding=1, seed=6),
    # a PE set smaller than the array: R = 2, E = 2, C = 6 (three replicas)
    dict(h=3, w=4, c=6, m=2, r=2, s=2, stride=1, padding=0, seed=7, p=2, q=2),
    # the most negative words everywhere: psums wrap at 32 bits
    dict(h=4, w=4, c=2, m=1, r=3, s=3, stride=1, padding=0, seed=8, kind="min"),
    # a CONV2-like layer scaled down (5 x 5 filters, padding 2), as in bench/eyeriss_alexnet.py
    dict(h=7, w=7, c=3, m=4, r=5, s=5, stride=1, padding=2, seed=11),
    # R = S = 7 > 6 rows: the PE set folds in row passes of 6 + 1 filter rows
    dict(h=9, w=9, c=1, m=2, r=7, s=7, stride=1, padding=1, seed=12),
    # random valid/ready gaps on both streams
    dict(h=5, w=5, c=2, m=2, r=3, s=3, stride=1, padding=1, seed=9, valid_prob=0.5, ready_prob=0.4),
    dict(h=7, w=7, c=2, m=2, r=5, s=5, stride=2, padding=2, seed=10, valid_prob=0.7, ready_prob=0.3),
    dict(h=8, w=8, c=2, m=2, r=7, s=7, stride=2, padding=3, seed=13, valid_prob=0.8, ready_prob=0.6),
]


@pytest.mark.slow
def test_eyeriss_layers(simulator):
    run(EyerissArray(CONFIG), "nnloom.sim.tb.eyeriss_tb", sim=simulator,
        params={"config": CONFIG.to_dict(), "cases": CASES, "seed": 31})
