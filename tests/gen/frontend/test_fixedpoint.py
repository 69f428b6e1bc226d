"""Qm.n formats: ranges, rounding rules, saturation, requantization."""

from fractions import Fraction

import numpy as np
import pytest

from nnloom.gen.frontend import MINERVA_ACT, MINERVA_WEIGHT, QFormat, requantize, round_shift


def test_minerva_formats():
    assert (MINERVA_WEIGHT.width, MINERVA_WEIGHT.min, MINERVA_WEIGHT.max) == (8, -2.0, 1.984375)
    assert (MINERVA_ACT.width, MINERVA_ACT.min, MINERVA_ACT.max) == (6, -2.0, 1.9375)
    assert MINERVA_WEIGHT.product(MINERVA_ACT) == QFormat(4, 10)
    assert QFormat.parse("Q2.6") == MINERVA_WEIGHT and str(MINERVA_ACT) == "Q2.4"


@pytest.mark.parametrize("bad", [(0, 4), (2, -1), (40, 30)])
def test_bad_formats(bad):
    with pytest.raises(ValueError, match="m|n|bits"):
        QFormat(*bad)
    with pytest.raises(ValueError):
        QFormat.parse("Q2")


def _reference(x, fmt, rounding):
    """Exact rational rounding, independent of numpy."""
    v = Fraction(x) * (1 << fmt.n)
    fl = v.numerator // v.denominator
    frac = v - fl
    if rounding == "floor":
        q = fl
    elif frac != Fraction(1, 2):
        q = fl + (frac > Fraction(1, 2))
    elif rounding == "half_even":
        q = fl + (fl % 2)
    elif rounding == "half_away":
        q = fl + (v > 0)
    else:  # half_up
        q = fl + 1
    return min(max(q, fmt.code_min), fmt.code_max)


@pytest.mark.parametrize("rounding", ["half_even", "half_away", "half_up", "floor"])
def test_quantize_matches_exact_rounding(rounding):
    fmt = QFormat(3, 2)
    rng = np.random.default_rng(5)
    xs = np.concatenate([np.arange(-6, 6, 0.125), rng.uniform(-7, 7, 300), [100.0, -100.0]])
    got = fmt.quantize(xs, rounding)
    want = [_reference(float(x), fmt, rounding) for x in xs]
    assert got.tolist() == want


def test_ties_and_saturation():
    fmt = QFormat(2, 0)  # codes -2..1
    assert fmt.quantize([0.5, 1.5, -0.5, -1.5, 9, -9], "half_even").tolist() == [0, 1, 0, -2, 1, -2]
    assert fmt.quantize([0.5, -0.5, -1.5], "half_away").tolist() == [1, -1, -2]


@pytest.mark.parametrize("rounding", ["half_even", "half_away", "half_up", "floor"])
def test_round_shift_exhaustive(rounding):
    codes = np.arange(-300, 300)
    for shift in (1, 2, 3):
        want = [_reference(Fraction(int(c), 1 << shift), QFormat(40, 0), rounding) for c in codes]
        assert round_shift(codes, shift, rounding).tolist() == want
    assert round_shift(codes, 0).tolist() == codes.tolist()


def test_requantize_product_to_activation():
    prod = MINERVA_WEIGHT.product(MINERVA_ACT)
    codes = np.array([0, 31, 32, 33, 95, 96, 10**6, -10**6])
    # Q4.10 -> Q2.4: shift by 6, half up, saturate to -32..31
    assert requantize(codes, prod, MINERVA_ACT).tolist() == [0, 0, 1, 1, 1, 2, 31, -32]
