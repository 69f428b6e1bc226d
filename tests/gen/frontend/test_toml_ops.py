"""TOML depthwise conv, residual add, (global) average pooling and folded
batchnorm: loading and one-line errors, BN folding against conv -> BN in
numpy, the quantized kinds against an independent integer closed form (bit
for bit), int8 against float, and a small ResNet-like network through
``nnloom infer`` / ``plan`` / ``generate``."""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest
import tomllib

from nnloom.gen.cli import main
from nnloom.gen.frontend import QuantizeError, quantize
from nnloom.gen.frontend.loaders.toml_format import load_toml, parse_toml
from nnloom.gen.frontend.network import NetworkError
from nnloom.sim.golden.qnet import run, run_float

# ---------------------------------------------------------------- the network

RESNET_TOML = """\
name = "tiny_resnet"
weights = "net.npz"
[input]
shape = [1, 8, 8]
[[layers]]
type = "conv"
name = "stem"
out_channels = 4
kernel = 3
padding = 1
[[layers]]
type = "batchnorm"
name = "bn"
eps = 0.001
[[layers]]
type = "relu"
name = "r0"
[[layers]]
type = "dwconv"
name = "dw"
kernel = 3
padding = 1
depth_multiplier = 2
[[layers]]
type = "conv"
name = "pw"
out_channels = 4
kernel = 1
bias = false
[[layers]]
type = "batchnorm"
name = "bn2"
[[layers]]
type = "add"
name = "res"
from = "r0"
[[layers]]
type = "relu"
name = "r1"
[[layers]]
type = "gavgpool"
name = "gap"
[[layers]]
type = "flatten"
name = "flat"
[[layers]]
type = "fc"
name = "fc"
out = 10
"""


def _resnet_weights(seed):
    rng = np.random.default_rng(seed)
    return {
        "stem.weight": rng.normal(0, 0.4, (4, 1, 3, 3)), "stem.bias": rng.normal(0, 0.1, 4),
        "bn.gamma": rng.uniform(0.5, 1.5, 4), "bn.beta": rng.normal(0, 0.2, 4),
        "bn.mean": rng.normal(0, 0.2, 4), "bn.var": rng.uniform(0.5, 2.0, 4),
        "dw.weight": rng.normal(0, 0.3, (8, 1, 3, 3)), "dw.bias": rng.normal(0, 0.1, 8),
        "pw.weight": rng.normal(0, 0.4, (4, 8, 1, 1)),
        "bn2.gamma": rng.uniform(0.5, 1.5, 4), "bn2.beta": rng.normal(0, 0.2, 4),
        "bn2.mean": rng.normal(0, 0.2, 4), "bn2.var": rng.uniform(0.5, 2.0, 4),
        "fc.weight": rng.normal(0, 0.5, (10, 4)), "fc.bias": rng.normal(0, 0.1, 10),
    }


def _write(tmp_path, text=RESNET_TOML, weights=None, name="net"):
    (tmp_path / f"{name}.toml").write_text(text)
    if weights is not None:
        np.savez(tmp_path / f"{name}.npz", **{k: np.asarray(v, np.float32) for k, v in weights.items()})
    return tmp_path / f"{name}.toml"


# ------------------------------------------------------- independent float refs

def conv_ref(x, w, b, stride=1, pad=0, dm=None):
    """Direct convolution of one sample [C, H, W]; ``dm``: depthwise with
    depth multiplier ``dm`` (filter m reads channel m // dm)."""
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    m_, _, r, s = w.shape
    e = (xp.shape[1] - r) // stride + 1
    f = (xp.shape[2] - s) // stride + 1
    y = np.zeros((m_, e, f))
    for m in range(m_):
        chans = xp[[m // dm]] if dm else xp
        for i in range(e):
            for j in range(f):
                y[m, i, j] = np.sum(chans[:, i * stride:i * stride + r, j * stride:j * stride + s] * w[m])
        if b is not None:
            y[m] += b[m]
    return y


def bn_ref(y, gamma, beta, mean, var, eps):
    return ((y - mean[:, None, None]) / np.sqrt(var[:, None, None] + eps)) * gamma[:, None, None] \
        + beta[:, None, None]


def resnet_ref(x, w):
    """The TOML network above, unfolded, in float64 numpy (one sample)."""
    w = {k: np.asarray(v, np.float32).astype(np.float64) for k, v in w.items()}
    t = bn_ref(conv_ref(x, w["stem.weight"], w["stem.bias"], pad=1),
               w["bn.gamma"], w["bn.beta"], w["bn.mean"], w["bn.var"], 1e-3)
    r0 = np.maximum(t, 0)
    d = conv_ref(r0, w["dw.weight"], w["dw.bias"], pad=1, dm=2)
    p = bn_ref(conv_ref(d, w["pw.weight"], None), w["bn2.gamma"], w["bn2.beta"], w["bn2.mean"],
               w["bn2.var"], 1e-5)
    r1 = np.maximum(p + r0, 0)
    return w["fc.weight"] @ r1.mean(axis=(1, 2)) + w["fc.bias"]


# ------------------------------------------------------------------- loading

def test_load_resnet_like(tmp_path):
    net = load_toml(_write(tmp_path, weights=_resnet_weights(0)))
    kinds = [layer.kind for layer in net.layers]
    assert kinds == ["conv", "relu", "dwconv", "conv", "add", "relu", "gavgpool", "flatten", "fc"]
    assert [layer.name for layer in net.layers] == ["stem", "r0", "dw", "pw", "res", "r1", "gap", "flat", "fc"]
    # the add reads the previous layer (pw, BN folded) and r0 (index 1)
    assert net.inputs == [[-1], [0], [1], [2], [3, 1], [4], [5], [6], [7]]
    assert net.shapes() == [(4, 8, 8), (4, 8, 8), (8, 8, 8), (4, 8, 8), (4, 8, 8), (4, 8, 8),
                            (4, 1, 1), (4,), (10,)]
    assert net.layers[2].depth_multiplier == 2 and net.layers[2].pads == (1, 1, 1, 1)
    assert net.layers[3].bias                      # pw had bias = false; the fold gives it one
    assert sorted(net.weights) == sorted(["stem.weight", "stem.bias", "dw.weight", "dw.bias",
                                          "pw.weight", "pw.bias", "fc.weight", "fc.bias"])
    assert net.macs() == 4 * 64 * 9 + 8 * 64 * 9 + 4 * 64 * 8 + 40


def test_sequential_stays_sequential_and_add_from_input():
    base = {"input": {"shape": [2, 5, 5]}, "layers": [
        {"type": "dwconv", "name": "d", "kernel": [3, 1], "stride": 2, "padding": 1,
         "depth_multiplier": 3},
        {"type": "avgpool", "kernel": 2, "stride": 1}]}
    net = parse_toml(base)
    assert net.inputs is None
    assert net.shapes() == [(6, 3, 4), (6, 2, 3)]     # (5+2-3)//2+1, (5+2-1)//2+1
    assert net.weight_shapes() == {"d.weight": (6, 1, 3, 1), "d.bias": (6,)}
    doc = {"input": {"shape": [2, 5, 5]}, "layers": [
        {"type": "conv", "name": "c", "out_channels": 2, "kernel": 3, "padding": 1},
        {"type": "add", "from": "input"}]}
    assert parse_toml(doc).inputs == [[-1], [0, -1]]


BASE = {"input": {"shape": [2, 6, 6]}, "layers": [
    {"type": "conv", "name": "c0", "out_channels": 2, "kernel": 3, "padding": 1},
    {"type": "dwconv", "name": "dw", "kernel": 3, "padding": 1},
    {"type": "add", "name": "a", "from": "c0"},
]}


def _doc(edit):
    doc = {"input": dict(BASE["input"]), "layers": [dict(v) for v in BASE["layers"]]}
    edit(doc)
    return doc


def _set(i, **kw):
    def edit(doc):
        for k, v in kw.items():
            if v is None:
                doc["layers"][i].pop(k, None)
            else:
                doc["layers"][i][k] = v
    return edit


def _insert(i, *specs):
    def edit(doc):
        doc["layers"][i:i] = list(specs)
    return edit


LOAD_ERRORS = [
    (_set(1, depth_multiplier=0), "layers[1].depth_multiplier: expected an integer 1..64, got 0"),
    (_set(1, depth_multiplier=2.0), "layers[1].depth_multiplier: expected an integer 1..64, got 2.0"),
    (_set(1, kernel=9, padding=0), "layers[1] (dw): expected a kernel within the padded input 6x6, got 9x9"),
    (_set(1, kernel=[3, 3, 3]), "layers[1].kernel: expected an integer or [R, S], got [3, 3, 3]"),
    (_set(1, out_channels=4), "layers[1].out_channels: expected one of the keys type, name, kernel, "
                              "depth_multiplier, stride, padding, bias for a dwconv layer, got 'out_channels'"),
    (_set(1, stride=9), "layers[1].stride: expected an integer 1..8, got 9"),
    (_set(2, **{"from": None}), "layers[2].from: expected a value (required for add), got nothing"),
    (_set(2, **{"from": "nope"}), "layers[2].from: expected the name of an earlier layer (c0, dw, input), "
                                  "got 'nope'"),
    (_set(2, **{"from": "a"}), "layers[2].from: expected the name of an earlier layer (c0, dw, input), got 'a'"),
    (_set(2, **{"from": 3}), "layers[2].from: expected the name of an earlier layer (or \"input\"), got 3"),
    (lambda d: (d["layers"][1].update(stride=2), d["layers"][2].update({"from": "input"})),
     "layers[2].from: expected a layer whose output has this layer's input shape [2, 3, 3], "
     "got 'input' with [2, 6, 6]"),
    (_set(1, depth_multiplier=2), "layers[2].from: expected a layer whose output has this layer's input "
                                  "shape [4, 6, 6], got 'c0' with [2, 6, 6]"),
    (_set(2, relu=True), "layers[2].relu: expected one of the keys type, name, from for a add layer, "
                         "got 'relu'"),
    (_insert(0, {"type": "batchnorm"}), "layers[0].type: expected batchnorm directly after a conv or "
                                        "dwconv layer (it is folded into it), got it after the network input"),
    (_insert(3, {"type": "batchnorm"}), "layers[3].type: expected batchnorm directly after a conv or "
                                        "dwconv layer (it is folded into it), got it after a add layer"),
    (_insert(1, {"type": "relu"}, {"type": "batchnorm"}),
     "layers[2].type: expected batchnorm directly after a conv or dwconv layer (it is folded into it), "
     "got it after a relu layer"),
    (_insert(1, {"type": "batchnorm", "name": "b"}, {"type": "batchnorm"}),
     "layers[2].type: expected batchnorm directly after a conv or dwconv "
                                   "layer (it is folded into it), got it after a batchnorm layer"),
    (_insert(1, {"type": "batchnorm", "eps": 0}), "layers[1].eps: expected a number > 0 and <= 1, got 0"),
    (_insert(1, {"type": "batchnorm", "eps": "1e-5"}), "layers[1].eps: expected a number > 0 and <= 1, "
                                                       "got '1e-5'"),
    (_insert(1, {"type": "batchnorm", "eps": True}), "layers[1].eps: expected a number > 0 and <= 1, got True"),
    (_insert(1, {"type": "batchnorm", "momentum": 0.9}), "layers[1].momentum: expected one of the keys "
                                                         "type, name, eps for a batchnorm layer, got 'momentum'"),
    (_insert(1, {"type": "batchnorm", "name": "bn"}), "layers[3].from: expected the name of an earlier layer "
                                                      "(bn, dw, input), got 'c0', whose output is folded into "
                                                      "batchnorm 'bn' (name that)"),
    (_insert(1, {"type": "batchnorm", "name": "dw"}), "layers[2].name: expected a unique layer name, got 'dw' twice"),
    (lambda d: d["layers"].extend([{"type": "flatten"}, {"type": "gavgpool", "name": "g"}]),
     "layers[4] (g): expected a (C, H, W) input, got (72,)"),
    (_set(2, type="residual"), "layers[2].type: expected one of conv, dwconv, fc, relu, maxpool, avgpool, "
                               "gavgpool, flatten, add, batchnorm, got 'residual'"),
    (_insert(3, {"type": "gavgpool", "kernel": 2}), "layers[3].kernel: expected one of the keys type, name "
                                                    "for a gavgpool layer, got 'kernel'"),
]


@pytest.mark.parametrize("edit, message", LOAD_ERRORS, ids=[m.split(":")[0] + "-" + str(i)
                                                          for i, (_, m) in enumerate(LOAD_ERRORS)])
def test_load_errors_one_line(edit, message):
    with pytest.raises(NetworkError) as e:
        parse_toml(_doc(edit), "bad.toml")
    text = str(e.value)
    assert "\n" not in text
    assert text == f"bad.toml: {message}"


def _drop(key):
    return lambda w: w.pop(key)


WEIGHT_ERRORS = [
    (_drop("bn.gamma"), "bn.gamma: expected batchnorm weights (gamma, beta, mean, var), got none"),
    (lambda w: w.update({"bn.var": np.ones(5)}), "bn.var: expected shape [4], got [5]"),
    (lambda w: w.update({"bn2.mean": np.ones((4, 1))}), "bn2.mean: expected shape [4], got [4, 1]"),
    (lambda w: w["bn.var"].__setitem__(2, -0.5), "bn.var: expected variances >= 0, got -0.5"),
    (lambda w: w["bn.beta"].__setitem__(0, np.nan), "bn.beta: expected finite values, got inf or nan"),
    (lambda w: w.update({"pw.bias": np.zeros(4)}), "pw.bias: expected no bias (the conv has bias = false), "
                                                   "got one"),
    (_drop("stem.bias"), "stem.bias: expected weights for this layer, got none"),
    (lambda w: w.update({"dw.weight": np.ones((4, 1, 3, 3))}), "dw.weight: expected shape [8, 1, 3, 3], "
                                                              "got [4, 1, 3, 3]"),
    (lambda w: w.update({"gap.weight": np.ones(1)}), "gap.weight: expected weights only for layers, "
                                                     "got these for no layer"),
]


@pytest.mark.parametrize("edit, message", WEIGHT_ERRORS, ids=[m.split(":")[0] for _, m in WEIGHT_ERRORS])
def test_weight_errors_one_line(tmp_path, edit, message):
    w = _resnet_weights(1)
    edit(w)
    path = _write(tmp_path, weights=w)
    with pytest.raises(NetworkError) as e:
        load_toml(path)
    assert str(e.value) == f"{path}: {message}"


def test_bad_layer_through_the_cli_is_one_line_exit_2(tmp_path, capsys):
    path = _write(tmp_path, RESNET_TOML.replace('from = "r0"', 'from = "stem"'), _resnet_weights(0))
    np.save(tmp_path / "x.npy", np.zeros((1, 8, 8), np.float32))
    assert main(["infer", str(path), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"nnloom: {path}: layers[6].from: expected the name of an earlier layer (bn, r0, dw, "
                   f"bn2, input), got 'stem', whose output is folded into batchnorm 'bn' (name that)")


# ------------------------------------------------------------ batchnorm folding

@pytest.mark.parametrize("kind, bias, stride, pad, dm", [
    ("conv", True, 1, 1, 1), ("conv", False, 2, 0, 1), ("conv", True, 2, 2, 1),
    ("dwconv", True, 1, 1, 2), ("dwconv", False, 2, 1, 1)])
def test_batchnorm_folds_exactly(tmp_path, kind, bias, stride, pad, dm):
    rng = np.random.default_rng(hash((kind, bias, stride, pad, dm)) % 2**32)
    c, m, eps = 3, (3 * dm if kind == "dwconv" else 5), 0.01
    spec = {"conv": f'out_channels = {m}', "dwconv": f'depth_multiplier = {dm}'}[kind]
    text = f"""weights = "bn.npz"
[input]
shape = [{c}, 7, 6]
[[layers]]
type = "{kind}"
name = "c"
{spec}
kernel = [3, 2]
stride = {stride}
padding = {pad}
bias = {str(bias).lower()}
[[layers]]
type = "batchnorm"
name = "b"
eps = {eps}
"""
    w = {"c.weight": rng.normal(0, 0.5, (m, 1 if kind == "dwconv" else c, 3, 2)),
         "b.gamma": rng.uniform(-1.5, 1.5, m), "b.beta": rng.normal(0, 1, m),
         "b.mean": rng.normal(0, 1, m), "b.var": rng.uniform(0, 3, m)}
    w["b.var"][0] = 0.0
    if bias:
        w["c.bias"] = rng.normal(0, 1, m)
    net = load_toml(_write(tmp_path, text, w, name="bn"))
    assert [layer.kind for layer in net.layers] == [kind] and net.layers[0].bias
    x = rng.uniform(-1, 1, (3, c, 7, 6))
    w32 = {k: np.asarray(v, np.float32).astype(np.float64) for k, v in w.items()}
    want = np.stack([bn_ref(conv_ref(s, w32["c.weight"], w32.get("c.bias"), stride, pad,
                                     dm if kind == "dwconv" else None),
                            w32["b.gamma"], w32["b.beta"], w32["b.mean"], w32["b.var"], eps) for s in x])
    got = run_float(net, x)[-1]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(net.forward(x[0]), want[0], rtol=0, atol=1e-5)


# --------------------------------------------- quantized kinds, integer closed form

def _round_half_up(v: Fraction) -> int:
    return int((v + Fraction(1, 2)).__floor__())


def _req(acc, mult, shift, zp, qmin, qmax):
    """clamp(zp + round_half_up(acc * mult / 2**shift)) in exact rationals."""
    return min(max(zp + _round_half_up(Fraction(int(acc) * int(mult), 1 << int(shift))), qmin), qmax)


def _wrap32(v):
    return (int(v) + (1 << 31)) % (1 << 32) - (1 << 31)


def closed_dwconv(ql, x):
    c, h, w = ql.in_shape
    m_, e, f = ql.out_shape
    t, b, l, r = ql.pad4
    kr, ks = ql.kernel
    dm = ql.depth_multiplier
    y = np.zeros((m_, e, f), np.int64)
    for m in range(m_):
        for i in range(e):
            for j in range(f):
                acc = int(ql.bias[m])
                for u in range(kr):
                    for v in range(ks):
                        yy, xx = i * ql.stride + u - t, j * ql.stride + v - l
                        if 0 <= yy < h and 0 <= xx < w:     # a padding pixel is in_zp: adds 0
                            acc += (int(x[m // dm, yy, xx]) - ql.in_zp) * int(ql.weight[m, 0, u, v])
                y[m, i, j] = _req(_wrap32(acc), ql.mult[m], ql.shift[m], ql.out_zp, ql.qmin, ql.qmax)
    return y


def closed_add(ql, x1, x2):
    y = np.zeros(x1.shape, np.int64)
    for idx in np.ndindex(x1.shape):
        a, b = int(x1[idx]) - ql.in_zp, int(x2[idx]) - ql.in2_zp
        v = Fraction(a * int(ql.mult[0]) + b * int(ql.mult[1]), 1 << int(ql.shift[0]))
        y[idx] = min(max(ql.out_zp + _round_half_up(v), ql.qmin), ql.qmax)
    return y


def closed_avgpool(ql, x):
    c, e, f = ql.out_shape
    kr, ks = ql.kernel
    y = np.zeros((c, e, f), np.int64)
    for ch in range(c):
        for i in range(e):
            for j in range(f):
                win = x[ch, i * ql.stride:i * ql.stride + kr, j * ql.stride:j * ql.stride + ks]
                total = sum(int(v) - ql.in_zp for v in win.reshape(-1))
                y[ch, i, j] = _req(total, ql.mult[0], ql.shift[0], ql.out_zp, ql.qmin, ql.qmax)
    return y


OPS_TOML = """\
[input]
shape = [3, 9, 8]
[[layers]]
type = "conv"
name = "c"
out_channels = 3
kernel = 3
padding = 1
[[layers]]
type = "dwconv"
name = "dw"
kernel = [3, 2]
stride = 2
padding = 1
depth_multiplier = 2
[[layers]]
type = "avgpool"
kernel = 2
stride = 1
[[layers]]
type = "dwconv"
name = "dw2"
kernel = 1
[[layers]]
type = "add"
name = "a"
from = "avgpool2"
[[layers]]
type = "relu"
[[layers]]
type = "gavgpool"
name = "g"
"""


def _random_net(text, seed, scale=0.5):
    net = parse_toml(tomllib.loads(text), "ops.toml")
    rng = np.random.default_rng(seed)
    net.weights = {k: rng.normal(0, scale, s).astype(np.float32) for k, s in net.weight_shapes().items()}
    net.check_weights()
    return net, rng


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantized_kinds_match_the_integer_closed_form(seed):
    net, rng = _random_net(OPS_TOML, seed)
    x = rng.uniform(-1, 1, (6, 3, 9, 8))
    q = quantize(net, x)
    assert [ql.kind for ql in q.layers] == ["conv", "dwconv", "avgpool", "dwconv", "add", "avgpool"]
    conv, dw, pool, dw2, add, gap = q.layers
    assert add.inputs == [3, 2] and gap.inputs == [4] and add.relu and add.qmin == 0
    assert dw.depth_multiplier == 2 and dw.pad4 == (1, 1, 1, 1) and dw.weight.shape == (6, 1, 3, 2)
    assert dw.out_shape == (6, 5, 5) and pool.out_shape == (6, 4, 4)
    assert gap.kernel == (4, 4) and gap.out_shape == (6, 1, 1)
    # per-channel symmetric dwconv weights, as conv
    wf = net.weights["dw.weight"].astype(np.float64)
    ws = np.abs(wf.reshape(6, -1)).max(axis=1) / 127
    np.testing.assert_allclose(dw.w_scale, ws)
    np.testing.assert_array_equal(dw.weight, np.rint(wf / ws[:, None, None, None]))
    # add: one shift, mult[k] / 2**shift within half a step of s_k / s_out
    sh = int(add.shift[0])
    for mk, sk in zip(add.mult, (add.in_scale, add.in2_scale)):
        assert abs(Fraction(int(mk), 1 << sh) - Fraction(sk / add.out_scale)) <= Fraction(1, 1 << (sh + 1))
    assert max(add.mult) >= 1 << 30 and max(add.mult) < 1 << 31
    assert add.in_scale == dw2.out_scale and add.in2_scale == pool.out_scale
    xq = np.stack([q.quantize_input(s) for s in x])
    outs = run(q, xq)
    for n in range(len(x)):
        np.testing.assert_array_equal(outs[1][n], closed_dwconv(dw, outs[0][n]))
        np.testing.assert_array_equal(outs[2][n], closed_avgpool(pool, outs[1][n]))
        np.testing.assert_array_equal(outs[3][n], closed_dwconv(dw2, outs[2][n]))
        np.testing.assert_array_equal(outs[4][n], closed_add(add, outs[3][n], outs[2][n]))
        np.testing.assert_array_equal(outs[5][n], closed_avgpool(gap, outs[4][n]))
    assert (outs[4] == 0).any() and (outs[4] > 0).any()       # the fused ReLU clamps some


def test_golden_add_and_avgpool_ties_round_half_up():
    """Hand-built layers whose exact results are halves: both round toward +inf."""
    from nnloom.gen.frontend.qtypes import QLayer
    from nnloom.sim.golden.qnet import run_layer

    add = QLayer("a", "add", (1, 2, 3), (1, 2, 3), 1.0, 0, 1.0, 0, mult=np.array([3, 1]),
                 shift=np.array([2, 2]), in2_scale=1.0)
    x1 = np.array([[[[1, 0, -1], [2, -3, 127]]]])
    x2 = np.array([[[[-1, -2, -3], [0, 1, 127]]]])       # 3a+b = 2, -2, -6, 6, -8, 508 -> /4
    want = closed_add(add, x1[0], x2[0])
    # ties toward +inf: 0.5 -> 1, -0.5 -> 0, -1.5 -> -1, 1.5 -> 2; -2 and 127 exact
    np.testing.assert_array_equal(want, [[[1, 0, -1], [2, -2, 127]]])
    np.testing.assert_array_equal(run_layer(add, x1, x2=x2)[0], want)
    pool = QLayer("p", "avgpool", (1, 2, 2), (1, 1, 1), 1.0, 0, 1.0, 0, mult=np.array([1 << 30]),
                  shift=np.array([32]), kernel=(2, 2), stride=2)
    for vals, out in (([1, 0, 0, 1], 1), ([-1, 0, 0, -1], 0), ([-3, 0, 0, 1], 0), ([3, 0, 0, 2], 1)):
        x = np.array(vals).reshape(1, 1, 2, 2)
        assert closed_avgpool(pool, x[0])[0, 0, 0] == out
        assert run_layer(pool, x)[0, 0, 0, 0] == out


def test_gavgpool_on_a_non_square_input_is_the_closed_formula():
    """Global pooling of a 4 x 6 map: one 4 x 6 window, requantized by
    1 / 24 (the integer rule and onnxruntime's float32 rule agree here)."""
    net, rng = _random_net('[input]\nshape = [2, 4, 6]\n[[layers]]\ntype = "gavgpool"\nname = "g"\n'
                           '[[layers]]\ntype = "flatten"\n[[layers]]\ntype = "fc"\nout = 3\n', 0)
    from nnloom.sim.golden.qnet import run_layer

    q = quantize(net, rng.uniform(-1, 1, (8, 2, 4, 6)))
    pool = q.layers[0]
    assert pool.kind == "avgpool" and tuple(pool.kernel) == (4, 6) and tuple(pool.out_shape) == (2, 1, 1)
    x = rng.integers(-128, 128, (5, 2, 4, 6))
    got = run_layer(pool, x)
    for n in range(5):
        np.testing.assert_array_equal(got[n], closed_avgpool(pool, x[n]))
    # It really averages: the float mean of each channel, in the output scale, within one code.
    mean = (x - pool.in_zp).mean(axis=(2, 3)) * pool.in_scale / pool.out_scale + pool.out_zp
    assert np.abs(got[:, :, 0, 0] - np.clip(mean, -128, 127)).max() <= 0.5 + 1e-9


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_int8_tracks_the_float_reference(tmp_path, seed):
    w = _resnet_weights(seed)
    net = load_toml(_write(tmp_path, weights=w))
    rng = np.random.default_rng(seed)
    calib = rng.uniform(0, 1, (32, 1, 8, 8))
    q = quantize(net, calib)
    assert [ql.kind for ql in q.layers] == ["conv", "dwconv", "conv", "add", "avgpool", "flatten", "fc"]
    x = rng.uniform(0, 1, (16, 1, 8, 8))
    want = np.stack([resnet_ref(s[0][None], w) for s in x])
    got = q.dequantize_output(run(q, np.stack([q.quantize_input(s) for s in x]))[-1])
    err = np.abs(got - want) / q.output_scale
    assert err.max() <= 4 and err.mean() <= 1.0, (err.max(), err.mean())


# ------------------------------------------------------- the command line

def test_resnet_like_through_infer_plan_and_generate(tmp_path, capsys):
    w = _resnet_weights(7)
    path = _write(tmp_path, weights=w)
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 1, (12, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    args = ["infer", str(path), "--input", str(tmp_path / "x.npy"), "--calibration", str(tmp_path / "x.npy")]
    assert main(args + ["-o", str(tmp_path / "y.npy")]) == 0
    assert main(args + ["--dequantize", "-o", str(tmp_path / "yd.npy")]) == 0
    err = capsys.readouterr().err
    scale = float(re.findall(r"output scale ([0-9.e+-]+) zero point 0", err)[-1])
    codes, real = np.load(tmp_path / "y.npy"), np.load(tmp_path / "yd.npy")
    assert codes.dtype == np.int8 and codes.shape == (12, 10) and real.dtype == np.float32
    want = np.stack([resnet_ref(s[0][None], w) for s in x.astype(np.float64)])
    np.testing.assert_allclose(scale, np.abs(want).max() / 127, rtol=1e-5)   # calibrated on x itself
    np.testing.assert_allclose(real, codes.astype(np.float64) * scale, rtol=1e-5, atol=0)
    assert np.abs(real - want).max() <= 4 * scale
    assert np.abs(codes.astype(int)).max() >= 127 - 4       # the calibrated maximum is near 127

    assert main(["plan", str(path), "--array", "4x4", "-o", str(tmp_path / "plan.json")]) == 0
    capsys.readouterr()
    assert main(["generate", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err == ("nnloom: tiny_resnet: layers[1] (dw): 'dwconv' layers are not supported by the "
                   "accelerator; supported: conv, fc, maxpool, flatten (ReLU fused into conv/fc)")
    assert not (tmp_path / "out").exists()


def test_add_without_dwconv_is_refused_by_generate(tmp_path, capsys):
    text = RESNET_TOML.replace('type = "dwconv"\nname = "dw"\nkernel = 3\npadding = 1\ndepth_multiplier = 2',
                               'type = "conv"\nname = "dw"\nout_channels = 8\nkernel = 3\npadding = 1')
    w = _resnet_weights(8)
    w["dw.weight"] = np.random.default_rng(8).normal(0, 0.2, (8, 4, 3, 3))
    path = _write(tmp_path, text, w)
    assert main(["plan", str(path), "--array", "4x4", "-o", str(tmp_path / "plan.json")]) == 0
    capsys.readouterr()
    assert main(["generate", str(path), "-o", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == (
        "nnloom: tiny_resnet: layers[3] (res): 'add' layers are not supported by the accelerator; "
        "supported: conv, fc, maxpool, flatten (ReLU fused into conv/fc)")
