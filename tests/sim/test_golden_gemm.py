"""The GEMM golden model against a plain Python triple loop."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnloom.sim.golden.gemm import gemm


def _loop(a, w, width, signed, mode, chunk=None):
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)

    def fix(v):
        if mode == "saturate":
            return min(max(v, lo), hi)
        v &= (1 << width) - 1
        return v - (1 << width) if signed and v > hi else v

    m, k = len(a), len(a[0])
    n = len(w[0])
    chunk = chunk or k
    out = [[0] * n for _ in range(m)]
    for i in range(m):
        for j in range(n):
            total = 0
            for k0 in range(0, k, chunk):
                acc = 0
                for kk in range(k0, min(k, k0 + chunk)):
                    acc = fix(acc + int(a[i][kk]) * int(w[kk][j]))
                total = fix(total + acc)
            out[i][j] = total
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(1, 9), st.integers(1, 5), st.sampled_from([8, 12, 16, 40, 64]),
       st.booleans(), st.sampled_from(["wrap", "saturate"]), st.sampled_from([None, 1, 2, 3]),
       st.integers(0, 2**32 - 1))
def test_gemm_matches_loops(m, k, n, width, signed, mode, chunk, seed):
    rng = np.random.default_rng(seed)
    lo, hi = (-128, 127) if signed else (0, 255)
    a = rng.integers(lo, hi + 1, (m, k))
    w = rng.integers(lo, hi + 1, (k, n))
    got = gemm(a, w, acc_width=width, signed=signed, overflow_mode=mode, k_chunk=chunk)
    assert got.tolist() == _loop(a.tolist(), w.tolist(), width, signed, mode, chunk)


def test_gemm_rejects_out_of_range_operands():
    with pytest.raises(ValueError, match="outside"):
        gemm(np.array([[200]]), np.array([[1]]), a_width=8, signed=True)
    with pytest.raises(ValueError, match="chain"):
        gemm(np.ones((2, 3)), np.ones((2, 3)))
