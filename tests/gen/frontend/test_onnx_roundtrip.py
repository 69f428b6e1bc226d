"""scikit-learn MLPClassifier -> skl2onnx -> onnxruntime quantize_static ->
``nnloom infer``, against onnxruntime: the integer codes of every quantized
layer and the class exactly, the probabilities within one quantization step
of the (host, float) Softmax."""

from __future__ import annotations

import itertools
import logging
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")
pytest.importorskip("sklearn")

from nnloom.gen.cli import main  # noqa: E402

CASES = list(itertools.product(("QDQ", "QOperator"), ("per_tensor", "per_channel"), ("int8", "uint8")))


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from skl2onnx import to_onnx

    d = load_digits()
    x = (d.data / 16).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=30, random_state=0).fit(x[:1200], d.target[:1200])
    model = to_onnx(clf, x[:1], target_opset={"": 17, "ai.onnx.ml": 3})
    ops = [n.op_type for n in model.graph.node]
    assert ops[:7] == ["Cast", "MatMul", "Add", "Relu", "MatMul", "Add", "Softmax"], ops
    path = tmp_path_factory.mktemp("mlp") / "float.onnx"
    onnx.save(model, str(path))
    return path, x


def _quantize(src, dst, x, fmt, per_channel, act):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"X": x[i:i + 100]} for i in range(0, 400, 100)])

        def get_next(self):
            return next(self.it, None)

    logging.disable(logging.WARNING)
    try:
        quantize_static(str(src), str(dst), Reader(), quant_format=getattr(QuantFormat, fmt),
                        per_channel=per_channel, activation_type=getattr(QuantType, "QInt8" if act == "int8" else "QUInt8"),
                        weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)


def _layer_outputs(model):
    """The quantized tensors onnxruntime computes for nnloom's layers, in order:
    QDQ: every QuantizeLinear output before the Softmax; QOperator: every
    QLinearMatMul / QLinearAdd output, plus the input's QuantizeLinear."""
    names = []
    for n in model.graph.node:
        if n.op_type in ("Softmax", "QLinearSoftmax"):
            break
        if n.op_type in ("QuantizeLinear", "QLinearMatMul", "QLinearAdd"):
            names.append(n.output[0])
    return names[1:]          # the first one quantizes the input


def _softmax_out_scale(model):
    """The scale the model quantizes its Softmax output to (one code)."""
    init = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = list(model.graph.node)
    for i, n in enumerate(nodes):
        if n.op_type == "QLinearSoftmax":
            return float(init[n.input[3]])
        if n.op_type == "Softmax":
            q = next(m for m in nodes if m.op_type == "QuantizeLinear" and m.input[0] == n.output[0])
            return float(init[q.input[1]])
    raise AssertionError("no Softmax")


def _ort(path, x):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, {"X": x})))


def _ort_codes(path, x, name):
    """The codes of the quantized tensor ``name`` as onnxruntime computes them in the
    whole model.  Making ``name`` an extra graph output would change what it computes
    on x86-64 (an int8 QuantizeLinear that is a graph output is not converted to uint8,
    so the layer before it is no longer fused and runs in float, where the fused U8S8
    kernel of an AVX2 CPU saturates), so the graph is cut instead: after the
    DequantizeLinear reading ``name`` (QDQ; its float output read back as codes,
    exactly) or after the node writing it (QOperator).  The MLP is a chain: the cut
    leaves every earlier tensor with its consumers, and onnxruntime fuses as before."""
    m = onnx.load(str(path))
    nodes = list(m.graph.node)
    init = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    dq = next((n for n in nodes if n.op_type == "DequantizeLinear" and n.input[0] == name), None)
    out = dq.output[0] if dq is not None else name
    keep, need = [], {out}
    for n in reversed(nodes):
        if need & set(n.output):
            keep.append(n)
            need |= {i for i in n.input if i}
    del m.graph.node[:]
    m.graph.node.extend(reversed(keep))
    del m.graph.output[:]
    m.graph.output.append(onnx.helper.make_empty_tensor_value_info(out))
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    y = s.run(None, {"X": x})[0]
    if dq is None:
        return y
    scale, zp = init[dq.input[1]], init[dq.input[2]]
    codes = np.rint(y.astype(np.float64) / np.float64(scale)).astype(np.int64) + int(zp)
    assert np.array_equal(((codes - int(zp)) * np.float32(scale)).astype(np.float32), y)
    return codes.astype(zp.dtype)


@pytest.mark.parametrize("fmt,chan,act", CASES, ids=["-".join(c) for c in CASES])
def test_mlp_roundtrip_matches_onnxruntime(mlp, tmp_path, capsys, fmt, chan, act):
    from nnloom.gen.frontend.loaders.onnx_import import read_onnx
    from nnloom.sim.golden.qnet import run

    src, x = mlp
    q = tmp_path / "q.onnx"
    _quantize(src, q, x, fmt, chan == "per_channel", act)
    model = onnx.load(str(q))
    layers = _layer_outputs(model)
    ref = _ort(q, x)
    ref.update({name: _ort_codes(q, x, name) for name in layers})
    xs = x[1200:]
    np.save(tmp_path / "x.npy", xs)

    def infer(*argv):
        assert main(["infer", str(q), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                     *argv]) == 0, capsys.readouterr().err
        return np.load(tmp_path / "y.npy")

    # Every quantized layer's codes, bit for bit (the golden model on the model's own codes).
    g = read_onnx(q)
    kinds = [ql.kind for ql in g.qnet.layers]
    assert kinds == ["fc", "addconst", "fc", "addconst"], kinds
    dt = g.input_dtype
    info = np.iinfo(dt)
    xq = np.clip(np.rint(x / np.float32(g.input_scale)) + g.input_zp, info.min, info.max).astype(np.int64)
    outs = run(g.qnet, xq - (128 if dt == np.uint8 else 0))
    assert len(layers) == len(outs)
    for name, got in zip(layers, outs):
        want = ref[name].astype(np.int64)
        got = np.asarray(got, np.int64) + (128 if ref[name].dtype == np.uint8 else 0)
        assert np.array_equal(got, want), (name, int((got != want).sum()))

    # nnloom infer: the codes before the Softmax, the label, the probabilities.
    last = ref[layers[-1]][1200:]
    codes = infer("--codes")
    assert codes.dtype == last.dtype and np.array_equal(codes, last)
    label = infer()
    want_label = ref["output_label"][1200:]
    assert label.dtype == want_label.dtype and np.array_equal(label.reshape(-1), want_label.reshape(-1))
    probs = infer("--graph-output", "output_probability")
    want_p = np.array([[row[k] for k in range(10)] for row in ref["output_probability"][1200:]], np.float32)
    assert probs.shape == want_p.shape
    step = _softmax_out_scale(model)
    assert np.abs(probs - want_p).max() <= step * 1.001      # at most one code of the Softmax output (float32 products)
