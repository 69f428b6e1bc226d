"""A FULLY_CONNECTED layer after a flattened H x W > 1 map, bit for bit against
LiteRT's reference kernels.

None of the MLPerf Tiny models flattens a map larger than 1 x 1, so the
importer's permutation of the FC weight columns from TFLite's (h, w, c) order
to nnloom's (c, h, w) order is checked here on small int8 models written at
test time (:mod:`nnloom.sim.tflite_models`: flatbuffers + the ``tflite``
package's builders, no TensorFlow).  Maps are non-square (H != W) or have
several channels, so a wrong permutation cannot agree by symmetry, and
:func:`test_the_unpermuted_weights_disagree_with_litert` shows that the
comparison does fail without the permutation.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytest.importorskip("tflite", reason="the tflite package is not installed")
pytest.importorskip("flatbuffers", reason="the flatbuffers package is not installed")
litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert not installed")

from nnloom.gen.frontend import NetworkError, load_model, load_network, run_float
from nnloom.sim.golden.qnet import run
from nnloom.sim.tflite_models import random_chain, write_tflite

IN_SHAPE, IN_SCALE, IN_ZP = (1, 5, 4, 3), 0.05, -7
N_SAMPLES = 8

# name -> (seed, spec, kinds of the imported layers, (C, H, W) flattened)
MODELS = {
    "conv_same_relu": (11, [("CONV_2D", {"out_channels": 4, "padding": "SAME", "act": "RELU"}),
                            ("RESHAPE", {}), ("FULLY_CONNECTED", {"units": 6})],
                       ["conv", "flatten", "fc"], (4, 5, 4)),
    "conv_valid_relu": (12, [("CONV_2D", {"out_channels": 5, "padding": "VALID", "act": "RELU"}),
                             ("RESHAPE", {}), ("FULLY_CONNECTED", {"units": 7, "act": "RELU"})],
                        ["conv", "flatten", "fc"], (5, 3, 2)),
    "dwconv_dm2": (13, [("DEPTHWISE_CONV_2D", {"depth_multiplier": 2, "padding": "SAME", "act": "RELU"}),
                        ("RESHAPE", {}),
                        ("FULLY_CONNECTED", {"units": 5, "keep_num_dims": False})],
                   ["dwconv", "flatten", "fc"], (6, 5, 4)),
    "conv_avgpool_2x2": (14, [("CONV_2D", {"out_channels": 4, "padding": "SAME", "act": "RELU6"}),
                              ("AVERAGE_POOL_2D", {"filter": (2, 2), "stride": 2}),
                              ("RESHAPE", {}), ("FULLY_CONNECTED", {"units": 6})],
                         ["conv", "avgpool", "flatten", "fc"], (4, 2, 2)),
    "dwconv_avgpool_3x2": (15, [("DEPTHWISE_CONV_2D", {"depth_multiplier": 1, "padding": "VALID",
                                                      "kernel": (2, 2), "act": "RELU"}),
                                ("AVERAGE_POOL_2D", {"filter": (2, 2), "stride": 1}),
                                ("RESHAPE", {}),
                                ("FULLY_CONNECTED", {"units": 4, "per_channel": True})],
                           ["dwconv", "avgpool", "flatten", "fc"], (3, 3, 2)),
}


def _build(tmp_path, name):
    seed, spec, _, _ = MODELS[name]
    rng = np.random.default_rng(seed)
    layers = random_chain(rng, IN_SHAPE, IN_SCALE, IN_ZP, spec)
    path = write_tflite(tmp_path / f"{name}.tflite", IN_SHAPE, IN_SCALE, IN_ZP, layers)
    xs = rng.integers(-128, 128, (N_SAMPLES, *IN_SHAPE[1:]))
    return path, layers, xs


def _interpreter(path):
    it = litert.Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                            experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    return it


def _litert(it, x_nhwc):
    """(op name, raw int64 output without the batch axis) of every operator, and the graph output."""
    it.set_tensor(it.get_input_details()[0]["index"], x_nhwc[None].astype(np.int8))
    it.invoke()
    outs = [(op["op_name"], np.asarray(it.get_tensor(op["outputs"][0]), np.int64)[0])
            for op in it._get_ops_details()]
    final = np.asarray(it.get_tensor(it.get_output_details()[0]["index"]), np.int64).reshape(-1)
    return outs, final


def _to_nnloom(ref, chw_before):
    """A LiteRT tensor in nnloom's layout: NHWC maps -> (C, H, W); a flatten of an
    (h, w, c) map -> the same values in (c, h, w) order."""
    if ref.ndim == 3:
        return ref.transpose(2, 0, 1)
    if chw_before is not None:
        c, h, w = chw_before
        return ref.reshape(h, w, c).transpose(2, 0, 1).reshape(-1)
    return ref


def _litert_all(path, xs):
    it = _interpreter(path)
    return [_litert(it, x) for x in xs]


@pytest.mark.parametrize("name", list(MODELS))
def test_every_layer_bit_exact_against_litert(tmp_path, name):
    path, layers, xs = _build(tmp_path, name)
    _, _, kinds, flat_chw = MODELS[name]
    qnet = load_model(path)
    assert qnet.rounding == "tflite" and not qnet.softmax
    assert [ql.kind for ql in qnet.layers] == kinds
    flat = qnet.layers[-2]
    assert flat.in_shape == flat_chw and flat_chw[1] * flat_chw[2] > 1 and flat_chw[0] > 1
    golden = run(qnet, xs.transpose(0, 3, 1, 2))
    assert len(golden) == len(qnet.layers)
    fc_out = []
    for n, (ops, final) in enumerate(_litert_all(path, xs)):
        assert [op for op, _ in ops] == [layer["op"] for layer in layers]
        for i, ((op, ref), ql) in enumerate(zip(ops, qnet.layers)):
            want = _to_nnloom(ref, ql.in_shape if ql.kind == "flatten" else None)
            got = golden[i][n]
            assert got.shape == want.shape, (name, i, op)
            diff = np.flatnonzero(got != want)
            assert diff.size == 0, (f"{name} sample {n} layer {i} ({op}): {diff.size} of {got.size} "
                                    f"values differ, first golden {got.reshape(-1)[diff[0]]} vs "
                                    f"LiteRT {want.reshape(-1)[diff[0]]}")
        np.testing.assert_array_equal(golden[-1][n], final, err_msg=f"{name} sample {n}")
        fc_out.append(final)
    # the case is not degenerate: the FC outputs mostly lie inside the int8 range and vary
    fc_out = np.stack(fc_out)
    assert np.mean((fc_out > -128) & (fc_out < 127)) > 0.6, fc_out
    assert len({tuple(r) for r in fc_out}) == N_SAMPLES
    feat = golden[-2]
    assert np.mean((feat > -128) & (feat < 127)) > 0.5 and np.unique(feat).size > 20


@pytest.mark.parametrize("name", ["conv_same_relu", "dwconv_dm2", "conv_avgpool_2x2"])
def test_fc_columns_are_permuted_from_hwc_to_chw(tmp_path, name):
    path, layers, _ = _build(tmp_path, name)
    qnet = load_model(path)
    c, h, w = qnet.layers[-2].in_shape
    raw = layers[-1]["weight"].astype(np.int64)          # TFLite's [units, h*w*c] columns
    got = qnet.layers[-1].weight
    assert got.shape == raw.shape
    for ci in range(c):
        for hi in range(h):
            for wi in range(w):
                np.testing.assert_array_equal(got[:, (ci * h + hi) * w + wi],
                                              raw[:, (hi * w + wi) * c + ci])
    assert not np.array_equal(got, raw)


@pytest.mark.parametrize("name", list(MODELS))
def test_the_unpermuted_weights_disagree_with_litert(tmp_path, name):
    """The comparison above can fail: with TFLite's (h, w, c) columns left as they are,
    the golden FC output is not LiteRT's."""
    path, layers, xs = _build(tmp_path, name)
    qnet = load_model(path)
    wrong = copy.deepcopy(qnet)
    wrong.layers[-1].weight = layers[-1]["weight"].astype(np.int64)
    assert not np.array_equal(wrong.layers[-1].weight, qnet.layers[-1].weight)
    bad = run(wrong, xs.transpose(0, 3, 1, 2))[-1]
    good = run(qnet, xs.transpose(0, 3, 1, 2))[-1]
    finals = np.stack([final for _, final in _litert_all(path, xs)])
    np.testing.assert_array_equal(good, finals)
    differ = np.any(bad != finals, axis=1)
    assert differ.all(), f"{name}: {int((~differ).sum())} of {N_SAMPLES} samples agree unpermuted"
    assert np.mean(bad != finals) > 0.25


def test_float_network_tracks_the_golden_model(tmp_path):
    """load_network's float Dense uses the same (c, h, w) columns as the golden model."""
    path, _, xs = _build(tmp_path, "conv_same_relu")
    qnet, net = load_model(path), load_network(path)
    assert net.output_shape == qnet.layers[-1].out_shape
    x = xs.transpose(0, 3, 1, 2)
    yq = qnet.dequantize_output(run(qnet, x)[-1])
    yf = run_float(net, (x - qnet.input_zp) * qnet.input_scale)[-1]
    assert np.corrcoef(yq.reshape(-1), yf.reshape(-1))[0, 1] > 0.98
    # the float network with the unpermuted columns does not track it
    wrong = copy.deepcopy(net)
    key = f"{qnet.layers[-1].name}.weight"
    c, h, w = qnet.layers[-2].in_shape
    wrong.weights[key] = net.weights[key].reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(
        net.weights[key].shape)
    yw = run_float(wrong, (x - qnet.input_zp) * qnet.input_scale)[-1]
    assert np.corrcoef(yq.reshape(-1), yw.reshape(-1))[0, 1] < 0.9


def test_fc_on_an_unflattened_map_is_refused(tmp_path):
    """TFLite's FULLY_CONNECTED also flattens a 4-D input itself (keep_num_dims false);
    the importer asks for the explicit RESHAPE instead of guessing an order."""
    rng = np.random.default_rng(16)
    spec = [("CONV_2D", {"out_channels": 2, "padding": "SAME", "act": "RELU"}), ("RESHAPE", {}),
            ("FULLY_CONNECTED", {"units": 3})]
    layers = random_chain(rng, IN_SHAPE, IN_SCALE, IN_ZP, spec)
    del layers[1]
    path = write_tflite(tmp_path / "fc4d.tflite", IN_SHAPE, IN_SCALE, IN_ZP, layers)
    _, final = _litert(_interpreter(path), rng.integers(-128, 128, IN_SHAPE[1:]))
    assert final.shape == (3,)                         # a valid model for LiteRT
    with pytest.raises(NetworkError, match=r"operator 1 \(FULLY_CONNECTED\): expected a flat input "
                                           r"of 40 values \(add a RESHAPE\), got shape \[2, 5, 4\]"):
        load_model(path)
