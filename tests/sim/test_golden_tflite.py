"""The golden model on imported TFLite models, bit for bit against LiteRT's
reference kernels (``OpResolverType.BUILTIN_REF``), and the new golden ops
(depthwise conv, residual add, TFLite average pooling, TFLite rounding)
against closed forms written here with Python integers."""

from __future__ import annotations

import copy
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from nnloom.gen.frontend import QLayer, QuantizedNetwork, load_model, tflite_multiplier
from nnloom.hw.errors import InputError
from nnloom.sim.golden.qnet import run, run_layer
from nnloom.sim.golden.requant import multiply_by_quantized_multiplier

MODELS = Path(__file__).resolve().parents[2].parent / "shared" / "models" / "mlperf-tiny"
NAMES = ("ad01_int8", "kws_ref_model", "vww_96_int8", "pretrainedResnet_quant")
AD_SAMPLE = MODELS / "ad01_normal_id_01_00000000_hist_librosa.bin"


def _model(name) -> Path:
    path = MODELS / f"{name}.tflite"
    if not path.is_file():
        pytest.skip(f"the MLPerf Tiny models are not at {MODELS} (../shared/models/ absent)")
    return path


def _interpreter(path):
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert not installed")
    it = litert.Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                            experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    return it


def _chw(t):
    t = np.asarray(t, np.int64)[0]
    return t.transpose(2, 0, 1) if t.ndim == 3 else t


def _litert_all(it, x_nhwc):
    """Every operator's output (nnloom layout) for one sample, and the graph output."""
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], x_nhwc[None].astype(np.int8))
    it.invoke()
    ops = it._get_ops_details()
    outs = [(op["op_name"], _chw(it.get_tensor(op["outputs"][0]))) for op in ops]
    final = np.asarray(it.get_tensor(it.get_output_details()[0]["index"]), np.int64).reshape(-1)
    return outs, final


# -- the four MLPerf Tiny models ------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_every_tensor_bit_exact_against_litert(name):
    path = _model(name)
    qnet = load_model(path)
    assert qnet.rounding == "tflite"
    it = _interpreter(path)
    shape = tuple(it.get_input_details()[0]["shape"][1:])
    rng = np.random.default_rng(20240 + NAMES.index(name))
    xs = rng.integers(-128, 128, size=(8, *shape))
    golden = run(qnet, xs.transpose(0, 3, 1, 2) if xs.ndim == 4 else xs)
    assert len(golden) == len(qnet.layers)
    for n in range(len(xs)):
        ops, final = _litert_all(it, xs[n])
        assert ops[-1][0] == "SOFTMAX" if qnet.softmax else ops[-1][0] != "SOFTMAX"
        body = ops[:-1] if qnet.softmax else ops
        assert len(body) == len(qnet.layers)
        for i, ((op, ref), ql) in enumerate(zip(body, qnet.layers)):
            got = golden[i][n]
            assert got.shape == ref.shape, (name, i, op)
            diff = np.flatnonzero(got != ref)
            assert diff.size == 0, (f"{name} sample {n} layer {i} ({op}): {diff.size} of {got.size} "
                                    f"values differ, first golden {got.reshape(-1)[diff[0]]} vs "
                                    f"LiteRT {ref.reshape(-1)[diff[0]]}")
        if qnet.softmax:   # the class: the golden logits' argmax is a top softmax output
            cls = int(np.argmax(golden[-1][n]))
            assert final[cls] == final.max()
        else:
            np.testing.assert_array_equal(golden[-1][n], final)


def test_ad_sample_reconstruction_bit_exact():
    path = _model("ad01_int8")
    if not AD_SAMPLE.is_file():
        pytest.skip(f"the AD input sample is not at {AD_SAMPLE}")
    qnet = load_model(path)
    frames = np.fromfile(AD_SAMPLE, np.float32).reshape(200, 128)
    x = np.stack([frames[i:i + 5].reshape(-1) for i in range(196)])
    # TFLite's quantization of the input: round half away from zero, saturate.
    v = x.astype(np.float64) / qnet.input_scale
    xq = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + qnet.input_zp, -128, 127).astype(np.int64)
    assert 0 < np.mean((xq > -128) & (xq < 127))     # a real input, mostly in range
    got = run(qnet, xq)[-1]
    it = _interpreter(path)
    for n in range(len(xq)):
        ops, final = _litert_all(it, xq[n])
        np.testing.assert_array_equal(got[n], final, err_msg=f"window {n}")
    assert got.shape == (196, 640)


# -- closed forms ---------------------------------------------------------------------

def _half_away(fr: Fraction) -> int:
    return int(math.copysign(math.floor(abs(fr) + Fraction(1, 2)), fr))


def _mbqm_double(x, q, shift):
    """gemmlowp: SRDHM then RoundingDivideByPOT, from their definitions."""
    x = ((x << max(shift, 0)) + 2 ** 31) % 2 ** 32 - 2 ** 31
    if x == q == -2 ** 31:
        high = 2 ** 31 - 1
    else:   # nudge 2**30 or 1 - 2**30, C division: ties go up for either sign
        high = math.floor(Fraction(x * q, 2 ** 31) + Fraction(1, 2))
    return _half_away(Fraction(high, 2 ** max(-shift, 0)))


def _mbqm_single(x, q, shift):
    return math.floor(Fraction(x * q, 2 ** (31 - shift)) + Fraction(1, 2))


def test_multiply_by_quantized_multiplier_closed_forms():
    rng = np.random.default_rng(1)
    xs = np.concatenate([rng.integers(-2 ** 31, 2 ** 31, 300), rng.integers(-3000, 3000, 300),
                         [0, 1, -1, 2 ** 31 - 1, -2 ** 31]])
    qs = rng.integers(2 ** 30, 2 ** 31, xs.size)
    shifts = rng.integers(-20, 1, xs.size)
    shifts[:50] = rng.integers(1, 4, 50)
    xs[:50] //= 16                                       # room for the left shift
    got_d = multiply_by_quantized_multiplier(xs, qs, shifts, double=True)
    got_s = multiply_by_quantized_multiplier(xs, qs, shifts)
    for x, q, s, d, g in zip(xs.tolist(), qs.tolist(), shifts.tolist(), got_d, got_s):
        assert d == _mbqm_double(x, q, s), (x, q, s)
        assert g == (_mbqm_single(x, q, s) + 2 ** 31) % 2 ** 32 - 2 ** 31, (x, q, s)
    # the two forms differ exactly where double rounding crosses a half
    x, q, s = 1548, 1242405367, -8
    assert _mbqm_single(x, q, s) == 3 and _mbqm_double(x, q, s) == 4
    assert multiply_by_quantized_multiplier(x, q, s) == 3
    assert multiply_by_quantized_multiplier(x, q, s, double=True) == 4
    assert multiply_by_quantized_multiplier(-2 ** 31, -2 ** 31, 0, double=True) == 2 ** 31 - 1


def test_tflite_multiplier():
    # std::round: halves away from zero (Python's round would give 2**30)
    assert tflite_multiplier((2 ** 30 + 0.5) / 2 ** 31) == (2 ** 30 + 1, 0)
    assert tflite_multiplier(0.5) == (2 ** 30, 0)
    assert tflite_multiplier(1.0) == (2 ** 30, 1)
    assert tflite_multiplier(0.0) == (0, 0)
    assert tflite_multiplier(2.0 ** -40) == (0, 0)
    assert tflite_multiplier(2.0 ** 40) == (2 ** 31 - 1, 30)
    for real in np.random.default_rng(2).uniform(1e-6, 4, 200):
        q, s = tflite_multiplier(real)
        assert 2 ** 30 <= q < 2 ** 31
        assert abs(q * 2.0 ** (s - 31) - real) <= 2.0 ** (s - 32) * (1 + 1e-12)
    with pytest.raises(InputError):
        tflite_multiplier(-1.0)


def _layer(kind, in_shape, out_shape, **kw):
    base = dict(in_scale=0.05, in_zp=-7, out_scale=0.1, out_zp=5)
    base.update(kw)
    return QLayer(f"t_{kind}", kind, in_shape, out_shape, **base)


@pytest.mark.parametrize("rounding", ["tflite", "onnxruntime"])
def test_dwconv_against_loops(rounding):
    rng = np.random.default_rng(3)
    c, h, w, dm, r, s, st, pads = 3, 7, 6, 2, 3, 2, 2, (0, 1, 1, 0)
    e = (h + pads[0] + pads[1] - r) // st + 1
    f = (w + pads[2] + pads[3] - s) // st + 1
    m = c * dm
    weight = rng.integers(-128, 128, (m, 1, r, s))
    bias = rng.integers(-5000, 5000, m)
    if rounding == "tflite":
        mult, shift = rng.integers(2 ** 30, 2 ** 31, m), rng.integers(-12, -6, m)
    else:
        mult, shift = rng.integers(2 ** 30, 2 ** 31, m), rng.integers(38, 44, m)
    ql = _layer("dwconv", (c, h, w), (m, e, f), weight=weight, bias=bias, mult=mult, shift=shift,
                kernel=(r, s), stride=st, pads=pads, depth_multiplier=dm, qmin=5, qmax=120)
    x = rng.integers(-128, 128, (2, c, h, w))
    got = run_layer(ql, x, rounding)
    for n in range(2):
        for o in range(m):
            for i in range(e):
                for j in range(f):
                    acc = int(bias[o])
                    for a in range(r):
                        for b in range(s):
                            y, z = i * st + a - pads[0], j * st + b - pads[2]
                            if 0 <= y < h and 0 <= z < w:
                                acc += (int(x[n, o // dm, y, z]) + 7) * int(weight[o, 0, a, b])
                    if rounding == "tflite":
                        v = _mbqm_double(acc, int(mult[o]), int(shift[o]))
                    else:
                        v = math.floor(Fraction(acc * int(mult[o]), 2 ** int(shift[o])) + Fraction(1, 2))
                    assert got[n, o, i, j] == min(max(v + 5, 5), 120), (n, o, i, j)


def test_conv_asymmetric_padding_reads_the_zero_point():
    rng = np.random.default_rng(4)
    weight = rng.integers(-128, 128, (2, 3, 3, 3))
    ql = _layer("conv", (3, 4, 5), (2, 2, 3), weight=weight, bias=np.zeros(2, np.int64),
                mult=np.array([2 ** 30] * 2), shift=np.array([0] * 2), kernel=(3, 3), stride=2,
                pads=(0, 1, 1, 1), qmin=-2 ** 40, qmax=2 ** 40, out_zp=0)
    x = rng.integers(-128, 128, (1, 3, 4, 5))
    got = run_layer(ql, x, "tflite")[0]
    xp = np.pad(x[0] + 7, ((0, 0), (0, 1), (1, 1)))          # (x - in_zp), zero padding
    for o in range(2):
        for i in range(2):
            for j in range(3):
                acc = int((xp[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3] * weight[o]).sum())
                assert got[o, i, j] == _mbqm_double(acc, 2 ** 30, 0)


def test_avgpool_tflite_rounding_and_padding():
    # TFLite: raw codes, count of in-bounds pixels, halves away from zero
    ql = _layer("avgpool", (1, 2, 2), (1, 2, 2), kernel=(2, 2), stride=1, pads=(0, 1, 0, 1),
                in_zp=3, out_zp=3, in_scale=0.1, out_scale=0.1)
    x = np.array([[[[-1, -2], [0, 1]]]])
    got = run_layer(ql, x, "tflite")[0, 0]
    # windows: {-1,-2,0,1} -> -2/4 -> -1 ; {-2,1} -> -1/2 -> -1 ; {0,1} -> 1/2 -> 1 ; {1} -> 1
    np.testing.assert_array_equal(got, [[-1, -1], [1, 1]])
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (3, 4, 6, 5))
    ql = _layer("avgpool", (4, 6, 5), (4, 1, 1), kernel=(6, 5), stride=1, pads=(0, 0, 0, 0),
                qmin=-100, qmax=100)
    got = run_layer(ql, x, "tflite")[:, :, 0, 0]
    want = [[min(max(_half_away(Fraction(int(x[n, c].sum()), 30)), -100), 100) for c in range(4)]
            for n in range(3)]
    np.testing.assert_array_equal(got, want)


def _add_tflite(a, b, ql):
    """TFLite's reference integer ADD, from add.cc / add.h, in Python ints."""
    m, s = [int(v) for v in ql.mult], [int(v) for v in ql.shift]
    x1 = _mbqm_double((a - ql.in_zp) << ql.left_shift, m[0], s[0])
    x2 = _mbqm_double((b - ql.in2_zp) << ql.left_shift, m[1], s[1])
    return min(max(_mbqm_double(x1 + x2, m[2], s[2]) + ql.out_zp, ql.qmin), ql.qmax)


def test_add_tflite_and_dag():
    rng = np.random.default_rng(6)
    s1, s2, so = 0.07, 0.031, 0.09
    twice = 2 * max(s1, s2)
    pairs = [tflite_multiplier(v) for v in (s1 / twice, s2 / twice, twice / (2 ** 20 * so))]
    add = _layer("add", (2, 3, 3), (2, 3, 3), in_scale=s1, in_zp=-10, in2_scale=s2, in2_zp=17,
                 out_scale=so, out_zp=-3, left_shift=20, qmin=-3, qmax=127,
                 mult=np.array([p[0] for p in pairs]), shift=np.array([p[1] for p in pairs]),
                 inputs=[-1, 0])
    ident = _layer("fc", (18,), (18,), in_zp=0, out_zp=0, weight=np.eye(18, dtype=np.int64),
                   bias=np.zeros(18, np.int64), mult=np.array([2 ** 30] * 18),
                   shift=np.array([1] * 18))
    flat = _layer("flatten", (2, 3, 3), (18,), inputs=[1])
    x = rng.integers(-128, 128, (4, 2, 3, 3))
    # the second input of the add is the network input passed through an identity
    pre = copy.deepcopy(flat)
    pre.inputs = [-1]
    first = _layer("conv", (2, 3, 3), (2, 3, 3), in_zp=0, out_zp=0, kernel=(1, 1),
                   weight=np.eye(2, dtype=np.int64).reshape(2, 2, 1, 1), bias=np.zeros(2, np.int64),
                   mult=np.array([2 ** 30] * 2), shift=np.array([1] * 2))
    qnet = QuantizedNetwork("dag", (2, 3, 3), 0.07, -10, [first, add, flat, ident],
                            rounding="tflite")
    assert not qnet.sequential and qnet.layer_inputs(1) == [-1, 0]
    outs = run(qnet, x)
    np.testing.assert_array_equal(outs[0], x)                 # the identity conv
    want = np.vectorize(lambda a, b: _add_tflite(int(a), int(b), add))(x, x)
    np.testing.assert_array_equal(outs[1], want)
    np.testing.assert_array_equal(outs[3], want.reshape(4, -1))
    # onnxruntime rounding: one rounding half up, common shift
    add2 = copy.deepcopy(add)
    add2.mult, add2.shift = np.array([3 << 20, 5 << 20]), np.array([24, 24])
    got = run_layer(add2, x, "onnxruntime", x[::-1])
    a, b = x + 10, x[::-1] - 17
    want = np.floor((a * (3 << 20) + b * (5 << 20)) / 2 ** 24 + 0.5) - 3
    np.testing.assert_array_equal(got, np.clip(want, -3, 127))


def test_sequential_networks_unchanged():
    from nnloom.gen.frontend import load_network, quantize
    from nnloom import examples

    net = load_network(examples.path("lenet_digits"))
    calib = np.random.default_rng(7).uniform(0, 1, (16, *net.input_shape))
    qnet = quantize(net, calib)
    assert qnet.rounding == "onnxruntime" and qnet.sequential
    x = np.stack([qnet.quantize_input(s) for s in calib])
    before = run(qnet, x)
    explicit = copy.deepcopy(qnet)
    for i, ql in enumerate(explicit.layers):
        ql.inputs = [i - 1]
    for a, b in zip(before, run(explicit, x)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match="rounding: expected one of onnxruntime, tflite, mlas, got 'x'"):
        QuantizedNetwork("n", (1,), 1.0, 0, [], rounding="x")
