"""nnloom.sim.accel_sim's constants agree with the data they describe."""

import numpy as np

from nnloom.gen.train import digits_split
from nnloom.sim.accel_sim import TEST_DIGITS, spread


def test_test_digits_is_the_split_size_and_spread_covers_every_class():
    _, _, x, y = digits_split(0)
    assert TEST_DIGITS == len(y) == len(x)
    idx = spread(20)
    assert len(idx) == 20 and idx[0] == 0 and idx[-1] == TEST_DIGITS - 1
    assert set(np.asarray(y)[idx]) == set(range(10))
