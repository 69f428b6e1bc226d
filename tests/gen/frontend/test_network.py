"""nnloom.gen.frontend.network: shape inference, MACs, weights checks, float reference."""

import numpy as np
import pytest

from nnloom.gen.frontend import (AvgPool, Conv2d, Dense, Flatten,
    MaxPool, Network, NetworkError, ReLU)
from nnloom.sim.golden.qnet import run_float


@pytest.mark.parametrize("c,h,w,m,k,stride,pad", [(1, 8, 8, 6, 3, 1, 1), (3, 227, 227, 96, 11, 4, 0),
                                                  (4, 9, 7, 5, 2, 2, 1), (2, 5, 5, 3, 5, 1, 0)])
def test_conv_shape_and_macs_closed_form(c, h, w, m, k, stride, pad):
    layer = Conv2d("c", m, (k, k), stride=stride, padding=pad)
    e, f = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    assert layer.out_shape((c, h, w)) == (m, e, f)
    assert layer.macs((c, h, w)) == m * e * f * c * k * k
    assert layer.gemm_shape((c, h, w)) == (e * f, c * k * k, m)


def test_network_shapes_chain():
    net = Network("n", (1, 8, 8), [Conv2d("c", 4, (3, 3), padding=1), ReLU("r"), MaxPool("p", 2),
                                   AvgPool("a", 2, 1), Flatten("f"), Dense("d", 10)])
    assert net.shapes() == [(4, 8, 8), (4, 8, 8), (4, 4, 4), (4, 3, 3), (36,), (10,)]
    assert net.in_shapes()[0] == (1, 8, 8) and net.output_shape == (10,)
    assert net.macs() == 4 * 64 * 9 + 36 * 10
    assert net.weight_shapes() == {"c.weight": (4, 1, 3, 3), "c.bias": (4,), "d.weight": (10, 36), "d.bias": (10,)}


@pytest.mark.parametrize("shape,layers,field", [
    ((0,), [ReLU("r")], "input.shape"),
    ((8, 8), [ReLU("r")], "input.shape"),
    ((16,), [Dense("a", 3), Dense("a", 3)], "layers[1].name"),
    ((1, 4, 4), [Dense("d", 3)], "layers[0] (d)"),
    ((1, 4, 4), [Conv2d("c", 2, (5, 5))], "layers[0] (c)"),
    ((1, 4, 4), [MaxPool("p", 5)], "layers[0] (p)"),
])
def test_network_errors_name_the_field(shape, layers, field):
    with pytest.raises(NetworkError) as e:
        Network("n", shape, layers, source="f.toml")
    assert str(e.value).startswith(f"f.toml: {field}: expected")


def test_weights_are_checked():
    layers = [Flatten("f"), Dense("d", 3)]
    with pytest.raises(NetworkError, match="d.bias: expected weights"):
        Network("n", (1, 2, 2), layers, {"d.weight": np.zeros((3, 4))})
    with pytest.raises(NetworkError, match=r"d.weight: expected shape \[3, 4\]"):
        Network("n", (1, 2, 2), layers, {"d.weight": np.zeros((4, 3)), "d.bias": np.zeros(3)})
    with pytest.raises(NetworkError, match="x.weight: expected weights only"):
        Network("n", (1, 2, 2), layers, {"d.weight": np.zeros((3, 4)), "d.bias": np.zeros(3), "x.weight": 0})


def _direct_conv(x, w, b, stride, pad):
    """Six nested loops: the definition of a convolution."""
    c, h, wd = x.shape
    m, _, r, s = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    e, f = (h + 2 * pad - r) // stride + 1, (wd + 2 * pad - s) // stride + 1
    y = np.zeros((m, e, f))
    for o in range(m):
        for i in range(e):
            for j in range(f):
                y[o, i, j] = b[o] + sum(xp[ci, i * stride + ri, j * stride + si] * w[o, ci, ri, si]
                                        for ci in range(c) for ri in range(r) for si in range(s))
    return y


def test_forward_and_batched_reference_agree_with_definitions():
    rng = np.random.default_rng(0)
    net = Network("n", (2, 7, 7), [Conv2d("c", 3, (3, 2), stride=2, padding=1), ReLU("r"), AvgPool("a", 2),
                                   MaxPool("m", 1), Flatten("f"), Dense("d", 4)])
    net.weights = {k: rng.normal(size=s).astype(np.float32) for k, s in net.weight_shapes().items()}
    x = rng.normal(size=(3, 2, 7, 7))
    conv = _direct_conv(x[0], net.weights["c.weight"], net.weights["c.bias"], 2, 1)
    outs = run_float(net, x)
    assert np.allclose(outs[0][0], conv)
    pooled = np.maximum(conv, 0).reshape(3, 2, 2, 2, 2).mean(axis=(2, 4))  # 2x2 windows
    assert np.allclose(outs[2][0], pooled)
    for n in range(3):
        assert np.allclose(net.forward(x[n]), outs[-1][n])


def test_layer_inputs_for_timing_only_networks():
    net = Network("t", (3, 10, 10), [Conv2d("a", 4, (3, 3), bias=False), Conv2d("b", 8, (1, 1), bias=False)],
                  layer_inputs=[(3, 10, 10), (16, 5, 5)])
    assert net.in_shapes() == [(3, 10, 10), (16, 5, 5)]
    assert net.shapes() == [(4, 8, 8), (8, 5, 5)]
    assert net.macs() == 4 * 64 * 27 + 8 * 25 * 16
    with pytest.raises(NetworkError, match="layer_inputs"):
        Network("t", (3, 10, 10), [Conv2d("a", 4, (3, 3))], layer_inputs=[])
