"""nnloom.gen.train.digits: the digits split, gradients, determinism, accuracy (fast)."""

import numpy as np
import pytest

from nnloom.gen.frontend import (AvgPool, Conv2d, Dense, Flatten,
    MaxPool, Network, NetworkError, ReLU)
from nnloom.gen.train.digits import _backward, _forward, digits_split, train_digits
from nnloom.sim.golden.qnet import predict


def test_split_is_fixed_and_disjoint():
    a = digits_split(0)
    b = digits_split(0, (1, 8, 8))
    assert a[0].shape == (1438, 64) and a[2].shape == (359, 64) and b[0].shape == (1438, 1, 8, 8)
    assert np.array_equal(a[0].reshape(-1, 1, 8, 8), b[0]) and np.array_equal(a[1], b[1])
    assert 0.0 <= a[0].min() and a[0].max() == 1.0 and a[0].dtype == np.float32
    train = {r.tobytes() for r in a[0]}
    assert sum(r.tobytes() in train for r in a[2]) < 10     # digits has a few duplicate images
    assert not np.array_equal(digits_split(1)[1], a[1])


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    net = Network("g", (2, 6, 6), [Conv2d("c", 3, (3, 3), stride=1, padding=1), ReLU("r"), MaxPool("m", 2),
                                   AvgPool("a", 1), Flatten("f"), Dense("d", 4)])
    p = {k: rng.normal(size=s) for k, s in net.weight_shapes().items()}
    x = rng.normal(size=(3, 2, 6, 6))
    g_out = rng.normal(size=(3, 4))

    def loss(params):
        y = x
        for layer in net.layers:
            y, _ = _forward(layer, params, y)
        return float((y * g_out).sum())

    y, caches = x, []
    for layer in net.layers:
        y, cache = _forward(layer, p, y)
        caches.append(cache)
    grads, dy = {}, g_out
    for layer, cache in zip(reversed(net.layers), reversed(caches)):
        dy = _backward(layer, p, cache, dy, grads)
    for key in ("c.weight", "c.bias", "d.weight"):
        idx = tuple(rng.integers(0, n) for n in p[key].shape)
        q = {k: v.copy() for k, v in p.items()}
        q[key][idx] += 1e-6
        r = {k: v.copy() for k, v in p.items()}
        r[key][idx] -= 1e-6
        numeric = (loss(q) - loss(r)) / 2e-6
        assert abs(numeric - grads[key][idx]) < 1e-4 * max(1, abs(numeric)), key


def test_training_is_deterministic_and_learns():
    net = Network("m", (64,), [Dense("a", 16), ReLU("r"), Dense("b", 10)])
    one = train_digits(net, seed=3, epochs=8)
    two = train_digits(net, seed=3, epochs=8)
    for k in one.weights:
        assert np.array_equal(one.weights[k], two.weights[k])
    _, _, xte, yte = digits_split(3)
    assert (predict(one, xte) == yte).mean() > 0.85


def test_rejects_non_digits_networks():
    with pytest.raises(NetworkError, match="64 inputs and 10 outputs"):
        train_digits(Network("m", (32,), [Dense("a", 10)]))
