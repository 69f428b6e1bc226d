"""nnloom.gen.frontend.quantize: the int8 and Qm.n rules, checked against their definitions."""

import math

import numpy as np
import pytest

from nnloom.gen.frontend import Conv2d, Dense, Flatten, MaxPool, Network, NetworkError, ReLU
from nnloom.gen.frontend import multiplier_from_real
from nnloom.gen.frontend import QuantizeError, quantize
from nnloom.sim.golden.qnet import run, run_float


def _net(seed=0):
    rng = np.random.default_rng(seed)
    net = Network("q", (2, 6, 6), [Conv2d("c", 4, (3, 3), padding=1), ReLU("r"), MaxPool("p", 2),
                                   Flatten("f"), Dense("d", 5)])
    net.weights = {k: rng.normal(0, 0.4, s).astype(np.float32) for k, s in net.weight_shapes().items()}
    return net, rng.normal(0, 1, (64, 2, 6, 6))


def test_int8_rules():
    net, calib = _net()
    q = quantize(net, calib)
    assert [l.kind for l in q.layers] == ["conv", "maxpool", "flatten", "fc"]   # ReLU fused
    assert math.isclose(q.input_scale, np.abs(calib).max() / 127)
    conv = q.layers[0]
    w = net.weights["c.weight"].astype(np.float64)
    w_scale = np.abs(w).reshape(4, -1).max(axis=1) / 127
    assert np.allclose(conv.w_scale, w_scale)
    assert np.array_equal(conv.weight, np.rint(w / w_scale[:, None, None, None]))
    assert np.abs(conv.weight).max() == 127 and conv.weight.min() >= -127
    assert np.array_equal(conv.bias, np.rint(net.weights["c.bias"] / (q.input_scale * w_scale)))
    relu_out = run_float(net, calib)[1]
    assert math.isclose(conv.out_scale, np.abs(relu_out).max() / 127)
    assert conv.relu and conv.qmin == 0 and conv.out_zp == 0 and q.input_zp == 0
    for c in range(4):
        assert (conv.mult[c], conv.shift[c]) == multiplier_from_real(q.input_scale * w_scale[c] / conv.out_scale)
    assert q.layers[1].in_scale == q.layers[1].out_scale == conv.out_scale


def test_int8_close_to_float_reference():
    net, calib = _net(1)
    q = quantize(net, calib)
    x = calib[:16]
    y = q.dequantize_output(run(q, np.stack([q.quantize_input(s) for s in x]))[-1])
    ref = run_float(net, x)[-1]
    assert np.abs(y - ref).max() < 0.05 * np.abs(ref).max()


def test_qmn_scales_are_powers_of_two():
    net, calib = _net(2)
    q = quantize(net, calib, "qmn")
    assert q.fmt == "qmn"
    for l in q.layers:
        for s in (l.in_scale, l.out_scale, *(l.w_scale if l.w_scale is not None else [])):
            assert math.log2(s) == round(math.log2(s))
        if l.mult is not None and l.kind in ("conv", "fc"):
            assert np.all(l.mult == 2 ** 30)          # exact power-of-two requantization
    # largest n whose range holds the calibrated maximum
    n = -round(math.log2(q.input_scale))
    assert np.abs(calib).max() * 2 ** n <= 127 < np.abs(calib).max() * 2 ** (n + 1)
    assert q.formats["c"]["input"] == f"Q{7 - n}.{n}"
    assert len(set(q.layers[0].w_scale)) == 1        # one format per layer


def test_errors():
    net, calib = _net()
    with pytest.raises(QuantizeError, match="format"):
        quantize(net, calib, "int4")
    with pytest.raises(QuantizeError, match="calibration"):
        quantize(net, np.zeros((3, 5)))
    with pytest.raises(NetworkError, match="weights"):
        quantize(Network("n", (4,), [Dense("d", 2)]), np.zeros((1, 4)))


def test_digits_accuracy_survives_quantization():
    from nnloom.gen.frontend import load_network
    from nnloom.gen.train import digits_split
    from nnloom.sim.golden.qnet import predict

    net = load_network("examples/digits_mlp.toml")
    xtr, _, xte, yte = digits_split(0, net.input_shape)
    acc = {"float": (predict(net, xte) == yte).mean()}
    for fmt in ("int8", "qmn"):
        acc[fmt] = (predict(quantize(net, xtr, fmt), xte) == yte).mean()
    assert acc["float"] > 0.93
    assert acc["int8"] > acc["float"] - 0.02 and acc["qmn"] > acc["float"] - 0.03, acc
