"""Cycle model of one EIE layer: a cycle-level simulation of the scheduling
rules, written independently of the RTL (the cocotb tests hold the two equal).

Rules (per cycle, all decisions on the registers at the start of the cycle):

* Leaf ``k`` scans its local activations ``act[k::pes]`` one per cycle
  whenever its slot is empty or taken, loading a non-zero into the slot.
* LNZD node: when its slot is empty or taken by its parent, it loads the
  lowest-numbered child that offers a beat (and takes it), else empties.
* Broadcast: the root's beat goes to every PE queue when all queues hold
  fewer than ``queue_depth`` columns.
* PE: ``F`` issues one entry per cycle; it can take a new column when idle or
  issuing its last entry.  ``P`` holds the popped column's entry count; it is
  free when empty, when its column is empty (count 0, dropped), or when F
  takes it.  The queue pops into P when P is free.  Entries are written to the
  accumulators two cycles after issue (D, then B); the PE is busy until then.
* The layer's compute phase ends in the first cycle in which every leaf has
  finished, the tree is empty and no PE holds work; write-out then takes
  :meth:`EIEConfig.writeout_cycles`.

``cycles`` = compute cycles + write-out cycles, counted like the cluster's
``cycles`` counter (every cycle ``busy`` is high).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnloom.hw.eie_config import EIEConfig

__all__ = ["LayerTiming", "simulate_layer", "dense_equivalent_gops", "random_counts"]


@dataclass(frozen=True)
class LayerTiming:
    cycles: int            #: whole layer (compute + write-out)
    compute_cycles: int
    writeout_cycles: int
    broadcasts: int        #: non-zero activations broadcast
    entries: int           #: entries issued (MACs, fillers included), all PEs
    pes: int
    stalls: int = 0        #: cycles a broadcast waited for a full queue (back-pressure)

    @property
    def bubbles(self) -> int:
        """PE-cycles of the compute phase in which a PE issued no entry."""
        return self.pes * self.compute_cycles - self.entries

    @property
    def efficiency(self) -> float:
        """Load-balance efficiency, 1 - bubbles / (pes x compute cycles)."""
        return self.entries / (self.pes * self.compute_cycles)


def simulate_layer(cfg: EIEConfig, counts: np.ndarray, act, out_len: int) -> LayerTiming:
    """Timing of one layer.

    ``counts``: ``pes x in_len`` entries per column slice (fillers included,
    e.g. :meth:`nnloom.gen.compiler.csc.CSCMatrix.counts`); ``act``: the input vector (only
    which elements are non-zero matters); ``out_len``: output rows.
    """
    N, D = cfg.pes, cfg.queue_depth
    counts = np.asarray(counts, dtype=np.int64)
    act = np.asarray(act)
    in_len = len(act)
    if counts.shape != (N, in_len):
        raise ValueError(f"counts: expected shape {(N, in_len)}, got {counts.shape}")
    # Leaves: their local non-zero pattern (value does not matter, only index).
    local = [act[k::N] for k in range(N)]
    pos = [0] * N
    leaf = [None] * N          # column index offered, or None
    levels = cfg.lnzd_levels
    nodes = [[None] * len(groups) for groups in levels]

    nz = int(np.count_nonzero(act))
    bl = np.zeros(max(nz, 1), dtype=np.int64)   # broadcast columns, in order
    nb = 0                                     # broadcasts so far
    qh = np.zeros(N, dtype=np.int64)            # per PE: next queue element
    p_valid = np.zeros(N, dtype=bool)
    p_n = np.zeros(N, dtype=np.int64)
    r = np.zeros(N, dtype=np.int64)             # F: entries left to issue
    d = np.zeros(N, dtype=bool)
    b = np.zeros(N, dtype=bool)
    ar = np.arange(N)
    entries = stalls = 0
    cycle = 0
    while True:
        cycle += 1
        qlevel = nb - qh
        busy = (qlevel > 0) | p_valid | (r > 0) | d | b
        leaves_done = all(leaf[k] is None and pos[k] >= len(local[k]) for k in range(N))
        if leaves_done and all(s is None for lvl in nodes for s in lvl) and not busy.any():
            break
        root = nodes[-1][0]
        bcast = root is not None and bool((qlevel < D).all())
        stalls += root is not None and not bcast
        # Tree, top-down: who is taken this cycle.
        taken_below = [bcast]   # per node of the current level
        for lvl in range(len(levels) - 1, -1, -1):
            groups = levels[lvl]
            below = leaf if lvl == 0 else nodes[lvl - 1]
            taken_children = [False] * len(below)
            new = list(nodes[lvl])
            start = 0
            for g, fanin in enumerate(groups):
                free = nodes[lvl][g] is None or taken_below[g]
                if free:
                    new[g] = None
                    for c in range(start, start + fanin):
                        if below[c] is not None:
                            new[g] = below[c]
                            taken_children[c] = True
                            break
                start += fanin
            nodes[lvl] = new
            taken_below = taken_children
        for k in range(N):
            if leaf[k] is None or taken_below[k]:
                if pos[k] < len(local[k]):
                    leaf[k] = pos[k] * N + k if local[k][pos[k]] != 0 else None
                    pos[k] += 1
                else:
                    leaf[k] = None
        # PEs.
        f_can_load = r <= 1
        p_full = p_valid & (p_n > 0)
        p_free = ~p_full | f_can_load
        pop = (qlevel > 0) & p_free
        issue = r > 0
        entries += int(issue.sum())
        load = p_full & f_can_load
        r = np.where(load, p_n, np.where(issue, r - 1, r))
        head = bl[np.minimum(qh, max(nb - 1, 0))]
        new_n = counts[ar, head]
        p_n = np.where(p_free, np.where(pop, new_n, 0), p_n)
        p_valid = np.where(p_free, pop, p_valid)
        qh = qh + pop
        b, d = d, issue
        if bcast:
            bl[nb] = root
            nb += 1
    wo = cfg.writeout_cycles(out_len)
    return LayerTiming(cycle + wo, cycle, wo, nb, entries, N, stalls)


def dense_equivalent_gops(rows: int, cols: int, cycles: int, clock_hz: float) -> float:
    """Dense-equivalent throughput: ``2 * rows * cols`` operations per layer."""
    return 2 * rows * cols * clock_hz / cycles / 1e9


def random_counts(rng: np.random.Generator, rows: int, cols: int, pes: int,
                  density: float) -> np.ndarray:
    """Entry counts (``pes x cols``, fillers included) of a random ``rows x cols``
    matrix with i.i.d. non-zeros of probability ``density``, without building
    its encoding: per column slice, non-zeros plus one filler per 16 zeros of
    each run of more than 15 before a non-zero (the rule of :mod:`nnloom.gen.compiler.csc`)."""
    out = np.zeros((pes, cols), dtype=np.int64)
    for k in range(pes):
        local = rng.random((cols, max(0, (rows - k + pes - 1) // pes))) < density
        col, row = np.nonzero(local)               # sorted by column, then row
        prev = np.where(np.r_[True, col[1:] != col[:-1]], -1, np.r_[-1, row[:-1]])
        fillers = (row - prev - 1) // 16
        np.add.at(out[k], col, 1 + fillers)
    return out
