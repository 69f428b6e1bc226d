"""Depthwise (grouped) Conv, BatchNormalization, residual Add and
GlobalAveragePool from ONNX: a small ResNet / MobileNet-style float model
(written with ``onnx.helper`` as an exporter writes it: Conv -> BN -> Relu,
a skip connection, a depthwise block) against onnxruntime in float, then
quantized by onnxruntime's ``quantize_static`` (QDQ and QOperator,
per-tensor and per-channel, int8 and uint8 activations) and run by
``nnloom infer``: the output codes equal onnxruntime's bit for bit."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper as oh  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

from nnloom.gen.cli.infer import run_onnx  # noqa: E402
from nnloom.gen.frontend import NetworkError  # noqa: E402
from nnloom.gen.frontend.loaders.onnx_import import read_onnx  # noqa: E402
from nnloom.sim.golden.qnet import run_float  # noqa: E402

IN = (3, 10, 9)        # H != W, so no transposition passes by symmetry


def _bn(rng, name, c, inits):
    for k, v in (("s", rng.uniform(0.5, 1.5, c)), ("b", rng.normal(0, 0.2, c)),
                 ("m", rng.normal(0, 0.2, c)), ("v", rng.uniform(0.5, 2.0, c))):
        inits.append(nh.from_array(v.astype(np.float32), f"{name}.{k}"))
    return [f"{name}.{k}" for k in "sbmv"]


def cnn_model(seed=0, gap=True):
    """x -> conv3x3(8)+BN+Relu -> [dwconv3x3 (SAME_UPPER) + BN + Relu -> conv1x1(8, no bias) + BN]
    + skip -> Relu -> conv 3x3 stride 2 asymmetric pads -> GAP -> Flatten -> Gemm(10)."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def w(name, shape, scale):
        inits.append(nh.from_array(rng.normal(0, scale, shape).astype(np.float32), name))
        return name

    c = 8
    nodes += [oh.make_node("Conv", ["x", w("c1.w", (c, 3, 3, 3), 0.3), w("c1.b", (c,), 0.1)], ["c1"],
                           pads=[1, 1, 1, 1], name="c1"),
              oh.make_node("BatchNormalization", ["c1", *_bn(rng, "bn1", c, inits)], ["b1"], name="bn1"),
              oh.make_node("Relu", ["b1"], ["r1"], name="r1"),
              oh.make_node("Conv", ["r1", w("dw.w", (c, 1, 3, 3), 0.4), w("dw.b", (c,), 0.1)], ["dw"],
                           group=c, auto_pad="SAME_UPPER", name="dw"),
              oh.make_node("BatchNormalization", ["dw", *_bn(rng, "bn2", c, inits)], ["b2"], name="bn2"),
              oh.make_node("Relu", ["b2"], ["r2"], name="r2"),
              oh.make_node("Conv", ["r2", w("pw.w", (c, c, 1, 1), 0.3)], ["pw"], name="pw"),
              oh.make_node("BatchNormalization", ["pw", *_bn(rng, "bn3", c, inits)], ["b3"], name="bn3"),
              oh.make_node("Add", ["b3", "r1"], ["s"], name="add"),
              oh.make_node("Relu", ["s"], ["r3"], name="r3"),
              oh.make_node("Conv", ["r3", w("c2.w", (12, c, 3, 3), 0.2), w("c2.b", (12,), 0.1)], ["c2"],
                           strides=[2, 2], pads=[0, 1, 1, 0], name="c2"),
              oh.make_node("Relu", ["c2"], ["r4"], name="r4")]
    if gap:
        nodes.append(oh.make_node("GlobalAveragePool", ["r4"], ["g"], name="gap"))
        feat = 12
    else:
        nodes.append(oh.make_node("Identity", ["r4"], ["g"]))
        feat = 12 * 5 * 4
    nodes += [oh.make_node("Flatten", ["g"], ["f"], name="flat"),
              oh.make_node("Gemm", ["f", w("fc.w", (10, feat), 0.3), w("fc.b", (10,), 0.1)], ["y"],
                           transB=1, name="fc")]
    g = oh.make_graph(nodes, "cnn", [oh.make_tensor_value_info("x", T.FLOAT, ["N", *IN])],
                      [oh.make_tensor_value_info("y", T.FLOAT, ["N", 10])], inits)
    return oh.make_model(g, opset_imports=[oh.make_opsetid("", 13)], ir_version=8)


def _ort(model, x):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(5).uniform(-1, 1, (48, *IN)).astype(np.float32)


@pytest.fixture(scope="module")
def float_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("cnn") / "float.onnx"
    onnx.save(cnn_model(), str(path))
    return path


@pytest.fixture(scope="module", params=["gap", "flatten"])
def float_models(request, tmp_path_factory):
    """The model with GlobalAveragePool, and without (Flatten of a 12 x 5 x 4 map)."""
    path = tmp_path_factory.mktemp("cnn") / f"float_{request.param}.onnx"
    onnx.save(cnn_model(0 if request.param == "gap" else 1, gap=request.param == "gap"), str(path))
    return path, request.param


def test_float_import_matches_onnxruntime(float_model, data):
    g = read_onnx(str(float_model))
    kinds = [layer.kind for layer in g.net.layers]
    assert kinds == ["conv", "relu", "dwconv", "relu", "conv", "add", "relu", "conv", "relu",
                     "gavgpool", "flatten", "fc"], kinds
    assert g.net.inputs is not None and g.net.inputs[5] == [4, 1]      # the skip reads the first Relu
    assert g.net.layers[7].pads == (0, 1, 1, 0)                         # ONNX [t, l, b, r] -> (t, b, l, r)
    want = _ort(onnx.load(str(float_model)), data)
    got = run_float(g.net, data)[-1]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_batchnorm_folding_changes_the_result(float_model, data):
    """Folding is real: dropping the BN nodes gives another answer."""
    m = cnn_model()
    keep = [n for n in m.graph.node if n.op_type != "BatchNormalization"]
    rename = {"c1": "b1", "dw": "b2", "pw": "b3"}
    for n in keep:
        n.output[:] = [rename.get(o, o) for o in n.output]
    del m.graph.node[:]
    m.graph.node.extend(keep)
    assert not np.allclose(_ort(m, data), _ort(cnn_model(), data), atol=1e-2)


def _quantize(src, dst, x, fmt, per_channel, act):
    """onnxruntime's documented flow: ``quant_pre_process`` (shape inference,
    optimization: Conv + BatchNormalization fused) then ``quantize_static``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": x[i:i + 16]} for i in range(0, len(x), 16)])

        def get_next(self):
            return next(self.it, None)

    logging.disable(logging.WARNING)
    pre = dst.with_name("pre.onnx")
    try:
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)   # sympy is not a dependency
        quantize_static(str(pre), str(dst), Reader(), quant_format=getattr(QuantFormat, fmt),
                        per_channel=per_channel, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QInt8 if act == "int8" else QuantType.QUInt8)
    finally:
        logging.disable(logging.NOTSET)


CASES = list(itertools.product(("QDQ", "QOperator"), (False, True), ("int8", "uint8")))


@pytest.mark.parametrize("fmt,per_channel,act", CASES,
                         ids=[f"{f}-{'pc' if p else 'pt'}-{a}" for f, p, a in CASES])
def test_quantized_cnn_matches_onnxruntime(tmp_path, float_models, data, fmt, per_channel, act):
    """Bit for bit wherever onnxruntime computes the graph with its integer
    kernels: every QOperator graph, and QDQ graphs with uint8 activations
    (it fuses every DQ -> op -> Q).  With int8 activations onnxruntime 1.x on
    x86-64 leaves the first conv, the depthwise conv and the residual Add of
    this model unfused and runs them in float32 (its float GEMM's summation
    order decides ties), so there the codes may differ by one on a few of
    them (docs/quantization.md)."""
    float_model, variant = float_models
    qpath = tmp_path / "q.onnx"
    _quantize(float_model, qpath, data[:32], fmt, per_channel, act)
    qmodel = onnx.load(str(qpath))
    ops = {n.op_type for n in qmodel.graph.node}
    assert "BatchNormalization" not in ops                  # quant_pre_process folded it
    g = read_onnx(str(qpath))
    q = g.qnet
    assert q.rounding == "mlas"
    kinds = [ql.kind for ql in q.layers]
    assert {"dwconv", "add"} | ({"avgpool"} if variant == "gap" else set()) <= set(kinds), kinds
    add = next(ql for ql in q.layers if ql.kind == "add")
    assert add.inputs is not None and len(add.inputs) == 2
    # The output codes of onnxruntime's quantized graph, before the last DequantizeLinear,
    # read back from the graph's own float output (asking for the codes as an extra graph
    # output would change the graph onnxruntime optimizes: see _codes_of).
    ref = _ort(qmodel, data)
    want = _codes_of(qmodel, ref)
    got = np.asarray(run_onnx(g, data, codes=True)[g.outputs[0][0]], np.int64).reshape(want.shape)
    y = run_onnx(g, data)[g.outputs[0][0]]          # the float output, as `nnloom infer` writes it
    assert y.dtype == np.float32
    if fmt == "QOperator" or act == "uint8":
        assert np.array_equal(got, want), int((got != want).sum())
        assert np.array_equal(y, ref)
    else:
        off = got != want
        assert np.abs(got - want).max() <= 1 and off.mean() <= 0.02, (int(off.sum()), want.size)
        np.testing.assert_allclose(y, ref, rtol=0, atol=float(g.out_scale) * 1.001)


def _codes_of_output(model):
    """The integer tensor the graph's float output is dequantized from."""
    out = model.graph.output[0].name
    for n in model.graph.node:
        if out in n.output and n.op_type == "DequantizeLinear":
            return n.input[0]
    raise AssertionError("no DequantizeLinear before the output")


def _codes_of(model, y):
    """The integer codes the graph's float output ``y`` was dequantized from:
    ``rint(y / scale) + zp`` is exact (|codes - zp| <= 255, one float32 rounding),
    and checked.  Making the codes tensor a graph output instead would change
    what onnxruntime computes on x86-64: its QuantizeLinear then stays int8 (a
    graph output is not converted to uint8), so the QGemm before it is no
    longer fused and runs in float (exact products, where the fused U8S8 kernel
    of an AVX2 CPU saturates)."""
    dq = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == _codes_of_output(model))
    init = {t.name: nh.to_array(t) for t in model.graph.initializer}
    scale, zp = init[dq.input[1]], init[dq.input[2]]
    codes = np.rint(y.astype(np.float64) / np.float64(scale)).astype(np.int64) + int(zp)
    assert np.array_equal(((codes - int(zp)) * np.float32(scale)).astype(np.float32), y)
    return codes


def test_quantized_batchnorm_is_refused(tmp_path):
    """A BatchNormalization left between quantized tensors: one line."""
    s, z = nh.from_array(np.float32(0.05), "s"), nh.from_array(np.int8(0), "z")
    c = 2
    bn = [nh.from_array(np.ones(c, np.float32), k) for k in ("g", "b", "m", "v")]
    nodes = [oh.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             oh.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
             oh.make_node("BatchNormalization", ["d", "g", "b", "m", "v"], ["n"], name="bn"),
             oh.make_node("QuantizeLinear", ["n", "s", "z"], ["y"])]
    g = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", T.FLOAT, ["N", c, 4, 4])],
                      [oh.make_tensor_value_info("y", T.INT8, ["N", c, 4, 4])], [s, z, *bn])
    path = tmp_path / "bn.onnx"
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 13)]), str(path))
    with pytest.raises(NetworkError, match=r"node 'bn' \(BatchNormalization\): expected BatchNormalization "
                                           r"folded into the conv .*quant_pre_process") as e:
        read_onnx(str(path))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("group,wshape,match", [
    (2, (4, 2, 3, 3), "group: expected 1 or the input's 3 channels"),
    (3, (4, 1, 3, 3), r"expected a weight \[3 x k, 1, R, S\]"),
])
def test_grouped_conv_other_than_depthwise_is_refused(tmp_path, group, wshape, match):
    w = nh.from_array(np.ones(wshape, np.float32), "w")
    g = oh.make_graph([oh.make_node("Conv", ["x", "w"], ["y"], group=group, name="cv")], "g",
                      [oh.make_tensor_value_info("x", T.FLOAT, ["N", 3, 6, 6])],
                      [oh.make_tensor_value_info("y", T.FLOAT, None)], [w])
    path = tmp_path / "g.onnx"
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 13)]), str(path))
    with pytest.raises(NetworkError, match=match):
        read_onnx(str(path))


def test_broadcasting_add_is_refused(tmp_path):
    nodes = [oh.make_node("GlobalAveragePool", ["x"], ["p"]), oh.make_node("Add", ["x", "p"], ["y"], name="ad")]
    g = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", T.FLOAT, ["N", 3, 6, 6])],
                      [oh.make_tensor_value_info("y", T.FLOAT, None)])
    path = tmp_path / "a.onnx"
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 13)]), str(path))
    with pytest.raises(NetworkError, match=r"node 'ad' \(Add\): expected two tensors of one shape"):
        read_onnx(str(path))
