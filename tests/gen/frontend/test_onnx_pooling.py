"""ONNX pooling attributes and exporter forms against onnxruntime; refusals in one line from every command."""

import numpy as np
import onnx
import onnx.helper as oh
import onnx.numpy_helper as nh
import pytest
from onnx import TensorProto

from nnloom.gen.cli import main
from nnloom.gen.frontend import NetworkError, load_network
from nnloom.sim.golden.qnet import run_float
from nnloom.sim.onnx_models import ort_run

RNG = np.random.default_rng(0)
W = RNG.normal(size=(4, 3, 3, 3)).astype(np.float32)


def _model(pool_attrs, op="MaxPool", out_shape=None, conv_bias=True):
    nodes = [oh.make_node("Conv", ["x", "w", "b"] if conv_bias else ["x", "w"], ["c"], pads=[1] * 4),
             oh.make_node(op, ["c"], ["y"], name="pool", **pool_attrs)]
    inits = [nh.from_array(W, "w"), nh.from_array(RNG.normal(size=4).astype(np.float32), "b")]
    g = oh.make_graph(nodes, "p", [oh.make_tensor_value_info("x", TensorProto.FLOAT, [8, 3, 8, 8])],
                      [oh.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    return oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [2, 2]},                                          # strides default 1: [8, 4, 7, 7]
    {"kernel_shape": [3, 3], "strides": [2, 2]},
    {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"},   # 8 / 2: no padding
    {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1},       # ceil adds no window on 8x8
    {"kernel_shape": [3, 3], "strides": [1, 1], "auto_pad": "VALID"},
])
def test_pooling_matches_onnxruntime(tmp_path, op, attrs):
    model = _model(attrs, op)
    onnx.save(model, str(tmp_path / "m.onnx"))
    x = RNG.normal(size=(8, 3, 8, 8)).astype(np.float32)
    want = ort_run(model, x)
    got = run_float(load_network(tmp_path / "m.onnx"), x)[-1]
    assert got.shape == want.shape
    assert np.allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("attrs,field", [
    ({"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, "auto_pad"),  # ort [8,4,4,4]
    ({"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, "ceil_mode"),
    ({"kernel_shape": [2, 2], "pads": [0, 0, 1, 1]}, "pads"),
    ({"kernel_shape": [2, 2], "dilations": [2, 2]}, "dilations"),
    ({"kernel_shape": [2, 3]}, "kernel_shape"),
    ({"kernel_shape": [2, 2], "strides": [1, 2]}, "strides"),
])
@pytest.mark.parametrize("cmd", ["infer", "plan", "generate", "simulate"])
def test_pooling_refusals_are_one_line_everywhere(tmp_path, capsys, attrs, field, cmd):
    p = tmp_path / "m.onnx"
    onnx.save(_model(attrs), str(p))
    with pytest.raises(NetworkError, match=field):
        load_network(p)
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    argv = {"infer": ["infer", str(p), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")],
            "plan": ["plan", str(p)], "generate": ["generate", str(p), "-o", str(tmp_path / "out")],
            "simulate": ["simulate", str(p)]}[cmd]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"nnloom: {p}: node 'pool' (MaxPool): {field}: expected"), err


def test_declared_shape_mismatch_is_refused(tmp_path):
    p = tmp_path / "m.onnx"
    onnx.save(_model({"kernel_shape": [2, 2]}, out_shape=[8, 4, 4, 4]), str(p))
    with pytest.raises(NetworkError, match=r"node 'pool' \(MaxPool\): output 'y': expected the declared shape"):
        load_network(p)


@pytest.mark.parametrize("bias", [(4,), (1, 4), (1,), ()])
@pytest.mark.parametrize("alpha,beta,trans_b", [(1.0, 1.0, 0), (0.5, 2.0, 1)])
def test_gemm_bias_shapes_and_attributes(tmp_path, bias, alpha, beta, trans_b):
    w = RNG.normal(size=(4, 6) if trans_b else (6, 4)).astype(np.float32)
    b = RNG.normal(size=bias).astype(np.float32)
    g = oh.make_graph([oh.make_node("Cast", ["x"], ["xc"], to=TensorProto.FLOAT),
                       oh.make_node("Gemm", ["xc", "w", "b"], ["g"], alpha=alpha, beta=beta, transB=trans_b),
                       oh.make_node("Dropout", ["g"], ["y"])], "g",
                      [oh.make_tensor_value_info("x", TensorProto.FLOAT, [None, 6])],
                      [oh.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
                      [nh.from_array(w, "w"), nh.from_array(b, "b")])
    model = oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(tmp_path / "m.onnx"))
    x = RNG.normal(size=(5, 6)).astype(np.float32)
    assert np.allclose(run_float(load_network(tmp_path / "m.onnx"), x)[-1], ort_run(model, x), atol=1e-4)


def test_float_conv_without_bias(tmp_path):
    model = _model({"kernel_shape": [2, 2]}, conv_bias=False)
    onnx.save(model, str(tmp_path / "m.onnx"))
    x = RNG.normal(size=(8, 3, 8, 8)).astype(np.float32)
    assert np.allclose(run_float(load_network(tmp_path / "m.onnx"), x)[-1], ort_run(model, x), atol=1e-4)
