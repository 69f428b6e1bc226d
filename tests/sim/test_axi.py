"""cocotb regression of the AXI building blocks against cocotbext-axi models.

One Verilator build per configuration; every case of a configuration runs in
one simulation (see sim/tb/axi_tb.py for the case format).
"""

import random

import pytest

from nnloom.hw.axi import (BOUNDARY, ERR_MISALIGNED, ERR_RESP, AxiLiteRegsConfig, AxiReaderConfig,
                    AxiWriterConfig)
from nnloom.hw.axi_lite import AxiLiteRegs
from nnloom.hw.axi_master import AxiReader, AxiWriter
from nnloom.sim.runner import run

RAM = 1 << 16


def _random_cmds(cfg, rng, count, max_beats=100):
    """Aligned commands of 1..max_beats beats, half of them across a 4 KB line."""
    nb = cfg.bytes_per_beat
    cmds = []
    for _ in range(count):
        beats = rng.randint(1, max_beats)
        if rng.random() < 0.5:
            line = rng.randrange(1, RAM // BOUNDARY - 1) * BOUNDARY
            addr = line - rng.randint(1, beats) * nb  # straddles the line
        else:
            addr = rng.randrange(0, RAM - beats * nb) // nb * nb
        cmds.append([addr, beats])
    return cmds


def master_cases(cfg, seed, runs=5):
    rng = random.Random(seed)
    nb = cfg.bytes_per_beat
    cases = []
    # exact cycles against a pause-free AxiRam, full-rate streams
    for addr, beats in [(0, 1), (BOUNDARY, cfg.max_burst), (2 * BOUNDARY, 3 * cfg.max_burst + 1),
                        (3 * BOUNDARY, 100), (4 * BOUNDARY - 5 * nb, 40), (5 * BOUNDARY + nb, 7)]:
        cases.append(dict(cmds=[[addr, beats]], check_cycles=True))
    # random commands, random gaps on our streams and pauses on every AXI channel
    for valid_prob, ready_prob, pause in [(1.0, 1.0, 0.0), (0.5, 0.3, 0.5), (0.7, 0.5, 0.0),
                                          (1.0, 1.0, 0.4), (0.9, 0.8, 0.2)][:runs]:
        cases.append(dict(cmds=_random_cmds(cfg, rng, 6), valid_prob=valid_prob,
                          ready_prob=ready_prob, pause=pause))
    # misaligned: error, nothing on AXI; the next command still works
    cases.append(dict(cmds=[[nb * 10 + 1, 5]], expect_error=ERR_MISALIGNED))
    cases.append(dict(cmds=[[nb * 20, 3], [BOUNDARY + nb // 2, 9], [nb * 40, 4]],
                      expect_error=ERR_MISALIGNED, ready_prob=0.6, pause=0.3))
    # SLVERR from a window of the RAM
    cases.append(dict(cmds=[[6 * BOUNDARY - 8 * nb, 20]], err=[6 * BOUNDARY, 6 * BOUNDARY + 16],
                      expect_error=ERR_RESP, pause=0.3))
    cases.append(dict(cmds=_random_cmds(cfg, rng, 3), ready_prob=0.7))
    return cases


READER = AxiReaderConfig(data_width=32, max_burst=16, max_outstanding=2)
# many short bursts, one at a time: the AR-after-RLAST path and its cycle gaps
READER1 = AxiReaderConfig(data_width=16, max_burst=4, max_outstanding=1)
WRITER = AxiWriterConfig(data_width=64, max_burst=8, max_outstanding=3)
REGS = AxiLiteRegsConfig(addr_width=8, size=40)


@pytest.mark.slow
def test_axi_reader(simulator):
    run(AxiReader(READER), "nnloom.sim.tb.axi_tb", sim=simulator,
        params={"kind": "reader", "config": READER.to_dict(), "seed": 11,
                "cases": master_cases(READER, 11)})


@pytest.mark.slow
def test_axi_reader_one_outstanding(simulator):
    run(AxiReader(READER1), "nnloom.sim.tb.axi_tb", sim=simulator,
        params={"kind": "reader", "config": READER1.to_dict(), "seed": 14,
                "cases": master_cases(READER1, 14, runs=2)})


@pytest.mark.slow
def test_axi_writer(simulator):
    run(AxiWriter(WRITER), "nnloom.sim.tb.axi_tb", sim=simulator,
        params={"kind": "writer", "config": WRITER.to_dict(), "seed": 12,
                "cases": master_cases(WRITER, 12)})


@pytest.mark.slow
def test_axil_regs(simulator):
    cases = [dict(ops=40), dict(ops=40, pause=0.4), dict(ops=30, burst=True),
             dict(ops=30, burst=True, pause=0.5), dict(ops=40, mixed=True),
             dict(ops=40, mixed=True, pause=0.3), dict(ops=60, pause=0.2)]
    run(AxiLiteRegs(REGS), "nnloom.sim.tb.axi_tb", sim=simulator,
        params={"kind": "regs", "config": REGS.to_dict(), "seed": 13, "cases": cases})
