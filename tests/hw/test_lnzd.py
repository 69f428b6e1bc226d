"""LNZD tree, exhaustively for small N in the Amaranth simulator.

Every leaf offers a queue of beats (a leaf re-offers its next beat in the
cycle after one is taken).  For every assignment of 0, 1 or 2 beats to each
leaf the tree must deliver every beat exactly once, in leaf order (a node
always serves its lowest-numbered offering child), and with an always-ready
consumer one beat per cycle after ``lnzd_depth`` cycles of latency.
"""

import gc
import itertools
import random
import warnings

import pytest
from amaranth.sim import Simulator

from nnloom.hw.eie_config import EIEConfig
from nnloom.hw.lnzd import LNZDNode, LNZDTree


def _run(cfg, patterns, ready_prob, seed):
    dut = LNZDTree(cfg)
    rng = random.Random(seed)
    failures = []

    async def tb(ctx):
        for pattern in patterns:
            queues = [[(k * 10 + n + 1, (k + cfg.pes * n) % cfg.max_len) for n in range(c)]
                      for k, c in enumerate(pattern)]
            want = [b for q in queues for b in q]
            got, first_out, cycles = [], None, 0
            while len(got) < len(want) and cycles < 10 * (len(want) + cfg.lnzd_depth + 2):
                for k, q in enumerate(queues):
                    ctx.set(dut.leaf[k].valid, bool(q))
                    if q:
                        ctx.set(dut.leaf[k].payload.value, q[0][0])
                        ctx.set(dut.leaf[k].payload.index, q[0][1])
                ready = rng.random() < ready_prob
                ctx.set(dut.out.ready, ready)
                taken = [bool(ctx.get(dut.leaf[k].ready)) and bool(q) for k, q in enumerate(queues)]
                if ready and ctx.get(dut.out.valid):
                    got.append((ctx.get(dut.out.payload.value), ctx.get(dut.out.payload.index)))
                    first_out = cycles if first_out is None else first_out
                await ctx.tick()
                cycles += 1
                for k, t in enumerate(taken):
                    if t:
                        queues[k].pop(0)
            for k in range(cfg.pes):
                ctx.set(dut.leaf[k].valid, 0)
            ctx.set(dut.out.ready, 1)
            for _ in range(cfg.lnzd_depth + 1):  # drain so the next pattern starts empty
                await ctx.tick()
            if got != want:
                failures.append(f"pattern {pattern}: got {got}, want {want}")
            elif ready_prob == 1.0 and want and (first_out != cfg.lnzd_depth
                                                 or cycles != cfg.lnzd_depth + len(want)):
                failures.append(f"pattern {pattern}: first beat at {first_out}, "
                                f"{cycles} cycles for {len(want)} beats")
            if ctx.get(dut.empty) != 1:
                failures.append(f"pattern {pattern}: tree not empty after draining")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return failures


@pytest.mark.parametrize("pes", [1, 3, 4, 5])
def test_lnzd_exhaustive(pes):
    cfg = EIEConfig(pes=pes)
    patterns = list(itertools.product(range(3), repeat=pes))
    assert _run(cfg, patterns, 1.0, seed=pes) == []


@pytest.mark.parametrize("pes", [6, 17])
def test_lnzd_two_levels_random_ready(pes):
    cfg = EIEConfig(pes=pes)
    rng = random.Random(pes)
    patterns = [tuple(rng.choice((0, 0, 1, 2)) for _ in range(pes)) for _ in range(40)]
    seed = 100 + pes
    assert _run(cfg, patterns, 0.6, seed=seed) == [], f"seed {seed}"
    assert _run(cfg, patterns, 1.0, seed=seed) == [], f"seed {seed}"


def test_levels_shape():
    assert EIEConfig(pes=1).lnzd_levels == [[1]]
    assert EIEConfig(pes=6).lnzd_levels == [[4, 2], [2]]
    assert EIEConfig(pes=16).lnzd_levels == [[4, 4, 4, 4], [4]]
    assert EIEConfig(pes=64).lnzd_depth == 3
    assert EIEConfig(pes=17).lnzd_levels == [[4, 4, 4, 4, 1], [4, 1], [2]]


def test_node_fanin_checked():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="fanin"):
            LNZDNode(EIEConfig().bcast_layout, 5)
        gc.collect()
