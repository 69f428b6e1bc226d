"""The integer conv2d golden model against direct loops (an independent model)."""

import numpy as np
import pytest

from nnloom.sim.golden.conv import conv2d, conv_output_size


def _direct(x, w, stride, padding, acc_width, signed, mode):
    n, c, h, wd = x.shape
    m, _, r, s = w.shape
    xp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding), dtype=object)
    xp[:, :, padding:padding + h, padding:padding + wd] = x
    e = (h + 2 * padding - r) // stride + 1
    f = (wd + 2 * padding - s) // stride + 1
    lo, hi = (-(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1) if signed else (0, (1 << acc_width) - 1)
    out = np.zeros((n, m, e, f), dtype=object)
    for b in range(n):
        for mm in range(m):
            for i in range(e):
                for j in range(f):
                    acc = 0
                    for cc in range(c):
                        for rr in range(r):
                            for ss in range(s):
                                acc += int(w[mm, cc, rr, ss]) * int(xp[b, cc, stride * i + rr, stride * j + ss])
                                if mode == "saturate":
                                    acc = min(max(acc, lo), hi)
                    if mode == "wrap":
                        acc &= (1 << acc_width) - 1
                        if signed and acc >> (acc_width - 1):
                            acc -= 1 << acc_width
                    out[b, mm, i, j] = acc
    return out


@pytest.mark.parametrize("stride,padding,r", [(1, 0, 1), (1, 1, 3), (2, 2, 5), (2, 0, 3), (3, 1, 2)])
@pytest.mark.parametrize("acc_width,mode", [(32, "wrap"), (12, "wrap"), (12, "saturate"), (64, "wrap")])
def test_conv_matches_loops(stride, padding, r, acc_width, mode):
    rng = np.random.default_rng(stride * 100 + padding * 10 + r + acc_width)
    x = rng.integers(-(1 << 15), 1 << 15, (2, 3, 7, 8))
    x[rng.random(x.shape) < 0.5] = 0
    w = rng.integers(-(1 << 15), 1 << 15, (2, 3, r, r))
    got = conv2d(x, w, stride=stride, padding=padding, acc_width=acc_width, overflow_mode=mode)
    want = _direct(x, w, stride, padding, acc_width, True, mode)
    assert got.shape == want.shape
    assert [int(v) for v in got.ravel()] == [int(v) for v in want.ravel()]


def test_unsigned_and_3d():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (2, 6, 6))
    w = rng.integers(0, 256, (3, 2, 3, 3))
    got = conv2d(x, w, acc_width=16, signed=False, padding=1)
    want = _direct(x[None], w, 1, 1, 16, False, "wrap")[0]
    assert [int(v) for v in got.ravel()] == [int(v) for v in want.ravel()]


def test_errors():
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv2d(np.zeros((1, 2, 2)), np.zeros((1, 1, 5, 5)), padding=1)
    with pytest.raises(ValueError, match="do not match"):
        conv2d(np.zeros((2, 4, 4)), np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="outside"):
        conv2d(np.full((1, 4, 4), 300), np.zeros((1, 1, 3, 3)), x_width=8)
    assert conv_output_size(227, 11, 4, 0) == 55
    assert conv_output_size(3, 5, 1, 0) == 0
