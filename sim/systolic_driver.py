"""Tiling driver: runs a GEMM of any size through a systolic array.

:func:`schedule` cuts ``C = A @ W`` (A is M x K, W is K x N) into array
tiles and returns the beats to feed the ``act`` and ``weight`` streams, the
number of result beats to expect, and a function that assembles the result
beats into C.

* WS: weight tiles of R x C (n tiles outer, k chunks inner); each streams its
  R weight rows, then the M activation rows (``first`` on the first).  The
  chunk sums over K are added here, with the array's overflow rule, where a
  TPU keeps its accumulator memory.
* OS: output tiles of R x C (m tiles outer, n tiles inner); each streams K
  (A column, W row) pairs, ``last`` on the final one, and yields R rows.

Edge tiles are padded with zeros; padding never changes a result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from nnloom.hw.systolic import SystolicConfig
from nnloom.sim.golden.gemm import check_operands
from nnloom.sim.golden.intarith import acc_dtype, overflow

__all__ = ["GemmSchedule", "schedule"]


@dataclass
class GemmSchedule:
    act: list
    weight: list
    results: int
    assemble: Callable[[list], np.ndarray]


def _pad(x, rows, cols):
    out = np.zeros((rows, cols), dtype=np.int64)
    out[:x.shape[0], :x.shape[1]] = x
    return out


def schedule(cfg: SystolicConfig, a, w) -> GemmSchedule:
    a = check_operands(np.asarray(a, dtype=np.int64), cfg.a_width, cfg.signed, "A")
    w = check_operands(np.asarray(w, dtype=np.int64), cfg.w_width, cfg.signed, "W")
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
        raise ValueError(f"shapes {a.shape} and {w.shape} do not chain")
    m, k = a.shape
    n = w.shape[1]
    R, C = cfg.rows, cfg.cols
    acts, weights = [], []
    if cfg.dataflow == "ws":
        kt, nt = math.ceil(k / R), math.ceil(n / C)
        ap = _pad(a, m, kt * R)
        wp = _pad(w, kt * R, nt * C)
        for j in range(nt):
            for t in range(kt):
                weights += [list(wp[t * R + i, j * C:(j + 1) * C]) for i in range(R)]
                acts += [{"data": list(ap[r, t * R:(t + 1) * R]), "first": int(r == 0)}
                         for r in range(m)]

        def assemble(beats):
            beats = np.asarray(beats, dtype=acc_dtype(cfg.acc_width))
            out = np.zeros((m, nt * C), dtype=beats.dtype)
            pos = 0
            for j in range(nt):
                total = np.zeros((m, C), dtype=beats.dtype)
                for _ in range(kt):
                    total = overflow(total + beats[pos:pos + m], cfg.acc_width, cfg.signed,
                                     cfg.overflow)
                    pos += m
                out[:, j * C:(j + 1) * C] = total
            return out[:, :n]

        return GemmSchedule(acts, weights, m * kt * nt, assemble)

    mt, nt = math.ceil(m / R), math.ceil(n / C)
    ap = _pad(a, mt * R, k)
    wp = _pad(w, k, nt * C)
    for i in range(mt):
        for j in range(nt):
            for s in range(k):
                acts.append({"data": list(ap[i * R:(i + 1) * R, s]), "last": int(s == k - 1)})
                weights.append(list(wp[s, j * C:(j + 1) * C]))

    def assemble(beats):
        beats = np.asarray(beats, dtype=acc_dtype(cfg.acc_width))
        out = np.zeros((mt * R, nt * C), dtype=beats.dtype)
        pos = 0
        for i in range(mt):
            for j in range(nt):
                out[i * R:(i + 1) * R, j * C:(j + 1) * C] = beats[pos:pos + R]
                pos += R
        return out[:m, :n]

    return GemmSchedule(acts, weights, mt * nt * R, assemble)
