"""Weight zero points other than 0 (QLinearMatMul, QLinearConv with uint8 /
offset int8 weights): the golden model's ``w_zp`` against onnxruntime, bit
for bit; the accelerator compiler refuses them in one line."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper as oh  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402


def _model(op, wdt, rng, per_channel):
    """Input uint8 -> QLinear{MatMul,Conv} with weights of type ``wdt`` and zero point(s) != 0."""
    info = np.iinfo(wdt)
    if op == "QLinearMatMul":
        x_shape, w = [None, 24], rng.integers(info.min, info.max + 1, (24, 6)).astype(wdt)
        m = 6
    else:
        x_shape, w = [None, 3, 6, 6], rng.integers(info.min, info.max + 1, (5, 3, 3, 3)).astype(wdt)
        m = 5
    n = m if per_channel else 1
    ws = rng.uniform(0.002, 0.02, n).astype(np.float32)
    wz = rng.integers(info.min + 20, info.max - 20, n).astype(wdt)
    if not per_channel:
        ws, wz = ws.reshape(()), wz.reshape(())
    inits = [nh.from_array(np.array(v), k) for v, k in (
        (np.float32(0.03), "xs"), (np.uint8(117), "xz"), (np.float32(0.05), "ys"), (np.uint8(98), "yz"))]
    inits += [nh.from_array(w, "w"), nh.from_array(ws, "ws"), nh.from_array(wz, "wz")]
    ins = ["q", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    if op == "QLinearConv":
        inits.append(nh.from_array(rng.integers(-500, 500, m).astype(np.int32), "b"))
        ins.append("b")
    node = oh.make_node(op, ins, ["y"], **({"pads": [1, 1, 1, 1]} if op == "QLinearConv" else {}))
    out = [None, m] if op == "QLinearMatMul" else [None, m, 6, 6]
    g = oh.make_graph([node], "g", [oh.make_tensor_value_info("q", T.UINT8, x_shape)],
                      [oh.make_tensor_value_info("y", T.UINT8, out)], inits)
    return oh.make_model(g, opset_imports=[oh.make_opsetid("", 13)]), x_shape


@pytest.mark.parametrize("op,wdt,per_channel", [
    (op, wdt, pc) for op in ("QLinearMatMul", "QLinearConv") for wdt in (np.uint8, np.int8)
    for pc in (False, True)])
def test_weight_zero_point_matches_onnxruntime(tmp_path, op, wdt, per_channel):
    from nnloom.gen.cli.infer import run_onnx
    from nnloom.gen.compiler import CompileError, compile_network
    from nnloom.gen.frontend.loaders.onnx_import import read_onnx
    from nnloom.hw.accel_core import AccelConfig

    rng = np.random.default_rng(7)
    model, x_shape = _model(op, wdt, rng, per_channel)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    g = read_onnx(str(path))
    ql = g.qnet.layers[0]
    assert ql.w_zp is not None and np.any(ql.w_zp != 0)
    x = rng.integers(0, 256, (64, *x_shape[1:])).astype(np.uint8)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"q": x})[0]
    got = run_onnx(g, x)["y"]
    assert got.dtype == want.dtype and np.array_equal(got, want), int((got != want).sum())
    with pytest.raises(CompileError, match="weight zero point") as e:
        compile_network(g.qnet, AccelConfig())
    assert "\n" not in str(e.value)
