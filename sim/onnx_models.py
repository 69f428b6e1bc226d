"""ONNX models of nnloom networks, built with ``onnx.helper`` (no downloads).

For the onnxruntime cross-check and the loader tests:

* :func:`to_onnx` - a float :class:`nnloom.gen.frontend.network.Network` as Conv / Gemm /
  Relu / MaxPool / AveragePool / Flatten;
* :func:`to_qdq` - a :class:`nnloom.gen.frontend.qtypes.QuantizedNetwork` in QDQ form
  (QuantizeLinear / DequantizeLinear around float operators);
* :func:`to_qlinear` - the same in QOperator form (QLinearConv,
  QLinearMatMul, QLinearAveragePool, MaxPool / Relu / Flatten on int8);
* :func:`ort_run` - run a model with onnxruntime.

Quantized models take a float input ``[N, *input_shape]`` and return the
last layer's int8 (or uint8) codes.  ``uint8=True`` stores activations as
uint8 with the zero point moved by +128.  QLinearMatMul has no bias, so
:func:`to_qlinear` requires fc biases of zero.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_onnx", "to_qdq", "to_qlinear", "ort_run", "OPSET"]

OPSET = 17


def _h():
    import onnx.helper as oh
    import onnx.numpy_helper as nh
    from onnx import TensorProto

    return oh, nh, TensorProto


def _model(nodes, inits, in_shape, out_name, out_type, name, ms=False):
    oh, nh, TP = _h()
    x = oh.make_tensor_value_info("x", TP.FLOAT, ["N", *in_shape])
    y = oh.make_tensor_value_info(out_name, out_type, None)
    graph = oh.make_graph(nodes, name, [x], [y], [nh.from_array(v, k) for k, v in inits.items()])
    opsets = [oh.make_opsetid("", OPSET)] + ([oh.make_opsetid("com.microsoft", 1)] if ms else [])
    return oh.make_model(graph, opset_imports=opsets, ir_version=8)


def _pool_attrs(kernel, stride):
    return {"kernel_shape": [kernel, kernel], "strides": [stride, stride]}


def to_onnx(network):
    """Float ONNX model of ``network`` (weights required)."""
    oh, _, TP = _h()
    nodes, inits, cur = [], {}, "x"
    for i, layer in enumerate(network.layers):
        out, n = f"t{i}", layer.name
        w = network.weights.get(f"{n}.weight")
        b = network.weights.get(f"{n}.bias")
        if layer.kind == "conv":
            inits[f"{n}.weight"] = w.astype(np.float32)
            ins = [cur, f"{n}.weight"]
            if b is not None:
                inits[f"{n}.bias"] = b.astype(np.float32)
                ins.append(f"{n}.bias")
            p = layer.padding
            nodes.append(oh.make_node("Conv", ins, [out], name=n, kernel_shape=list(layer.kernel),
                                      strides=[layer.stride] * 2, pads=[p] * 4))
        elif layer.kind == "fc":
            inits[f"{n}.weight"] = w.astype(np.float32)
            ins = [cur, f"{n}.weight"] + ([f"{n}.bias"] if b is not None else [])
            if b is not None:
                inits[f"{n}.bias"] = b.astype(np.float32)
            nodes.append(oh.make_node("Gemm", ins, [out], name=n, transB=1))
        elif layer.kind == "relu":
            nodes.append(oh.make_node("Relu", [cur], [out], name=n))
        elif layer.kind in ("maxpool", "avgpool"):
            op = "MaxPool" if layer.kind == "maxpool" else "AveragePool"
            nodes.append(oh.make_node(op, [cur], [out], name=n, **_pool_attrs(layer.kernel, layer.step)))
        elif layer.kind == "flatten":
            nodes.append(oh.make_node("Flatten", [cur], [out], name=n, axis=1))
        cur = out
    return _model(nodes, inits, network.input_shape, cur, TP.FLOAT, network.name)


class _Q:
    """Activation quantization parameters as initializers."""

    def __init__(self, inits, uint8):
        self.inits, self.uint8, self.n = inits, uint8, 0

    def params(self, scale, zp):
        self.n += 1
        s, z = f"s{self.n}", f"z{self.n}"
        self.inits[s] = np.array(scale, np.float32)
        self.inits[z] = np.array(zp + 128, np.uint8) if self.uint8 else np.array(zp, np.int8)
        return s, z


def _wparams(inits, ql, axis_len):
    n = ql.name
    inits[f"{n}.ws"] = ql.w_scale.astype(np.float32)
    inits[f"{n}.wz"] = np.zeros(axis_len, np.int8)
    return f"{n}.ws", f"{n}.wz"


def to_qdq(qnet, uint8: bool = False):
    """QDQ ONNX model of ``qnet`` (per-channel weights, int32 biases)."""
    oh, _, TP = _h()
    nodes, inits = [], {}
    q = _Q(inits, uint8)
    s, z = q.params(qnet.input_scale, qnet.input_zp)
    nodes += [oh.make_node("QuantizeLinear", ["x", s, z], ["q_in"]),
              oh.make_node("DequantizeLinear", ["q_in", s, z], ["d_in"])]
    cur, last_q = "d_in", "q_in"
    for i, ql in enumerate(qnet.layers):
        n = ql.name
        if ql.kind == "flatten":
            nodes.append(oh.make_node("Flatten", [cur], [f"f{i}"], name=n, axis=1))
            cur = f"f{i}"
            continue
        if ql.kind in ("conv", "fc"):
            w = ql.weight.astype(np.int8)
            inits[f"{n}.w"] = w
            ws, wz = _wparams(inits, ql, w.shape[0])
            inits[f"{n}.b"] = ql.bias.astype(np.int32)
            inits[f"{n}.bs"] = (np.float32(ql.in_scale) * ql.w_scale.astype(np.float32)).astype(np.float32)
            inits[f"{n}.bz"] = np.zeros(w.shape[0], np.int32)
            nodes += [oh.make_node("DequantizeLinear", [f"{n}.w", ws, wz], [f"{n}.wd"], axis=0),
                      oh.make_node("DequantizeLinear", [f"{n}.b", f"{n}.bs", f"{n}.bz"], [f"{n}.bd"], axis=0)]
            if ql.kind == "conv":
                p = ql.padding
                nodes.append(oh.make_node("Conv", [cur, f"{n}.wd", f"{n}.bd"], [f"y{i}"], name=n,
                                          kernel_shape=list(ql.kernel), strides=[ql.stride] * 2, pads=[p] * 4))
            else:
                nodes.append(oh.make_node("Gemm", [cur, f"{n}.wd", f"{n}.bd"], [f"y{i}"], name=n, transB=1))
            if ql.relu:
                nodes.append(oh.make_node("Relu", [f"y{i}"], [f"y{i}r"]))
                y = f"y{i}r"
            else:
                y = f"y{i}"
        elif ql.kind in ("maxpool", "avgpool"):
            op = "MaxPool" if ql.kind == "maxpool" else "AveragePool"
            nodes.append(oh.make_node(op, [cur], [f"y{i}"], name=n, **_pool_attrs(ql.kernel[0], ql.stride)))
            y = f"y{i}"
        elif ql.kind == "relu":
            nodes.append(oh.make_node("Relu", [cur], [f"y{i}"], name=n))
            y = f"y{i}"
        s, z = q.params(ql.out_scale, ql.out_zp)
        nodes += [oh.make_node("QuantizeLinear", [y, s, z], [f"q{i}"]),
                  oh.make_node("DequantizeLinear", [f"q{i}", s, z], [f"d{i}"])]
        cur, last_q = f"d{i}", f"q{i}"
    if nodes[-1].op_type == "DequantizeLinear":
        nodes.pop()
    else:
        raise ValueError("a QDQ test model must end on a quantized layer, not flatten")
    return _model(nodes, inits, qnet.input_shape, last_q, TP.UINT8 if uint8 else TP.INT8, qnet.name)


def to_qlinear(qnet, uint8: bool = False):
    """QOperator ONNX model of ``qnet`` (fused ReLUs become Relu on int8, zero point 0)."""
    oh, _, TP = _h()
    nodes, inits = [], {}
    q = _Q(inits, uint8)
    s, z = q.params(qnet.input_scale, qnet.input_zp)
    nodes.append(oh.make_node("QuantizeLinear", ["x", s, z], ["q_in"]))
    cur, cur_sz = "q_in", (s, z)
    for i, ql in enumerate(qnet.layers):
        n, y = ql.name, f"q{i}"
        if ql.kind in ("conv", "fc"):
            w = ql.weight.astype(np.int8)
            inits[f"{n}.w"] = w if ql.kind == "conv" else np.ascontiguousarray(w.T)
            ws, wz = _wparams(inits, ql, w.shape[0])
            s, z = q.params(ql.out_scale, ql.out_zp)
            if ql.kind == "conv":
                inits[f"{n}.b"] = ql.bias.astype(np.int32)
                p = ql.padding
                nodes.append(oh.make_node("QLinearConv", [cur, *cur_sz, f"{n}.w", ws, wz, s, z, f"{n}.b"],
                                          [y], name=n, kernel_shape=list(ql.kernel),
                                          strides=[ql.stride] * 2, pads=[p] * 4))
            else:
                if np.any(ql.bias != 0):
                    raise ValueError(f"{n}: QLinearMatMul has no bias; use zero biases")
                nodes.append(oh.make_node("QLinearMatMul", [cur, *cur_sz, f"{n}.w", ws, wz, s, z], [y], name=n))
            if ql.relu:
                if ql.out_zp != 0 or uint8:
                    raise ValueError(f"{n}: Relu on a quantized tensor needs int8 with zero point 0")
                nodes.append(oh.make_node("Relu", [y], [f"{y}r"]))
                y = f"{y}r"
            cur_sz = (s, z)
        elif ql.kind == "avgpool":
            s, z = q.params(ql.out_scale, ql.out_zp)
            nodes.append(oh.make_node("QLinearAveragePool", [cur, *cur_sz, s, z], [y], name=n,
                                      domain="com.microsoft", **_pool_attrs(ql.kernel[0], ql.stride)))
            cur_sz = (s, z)
        elif ql.kind == "maxpool":
            nodes.append(oh.make_node("MaxPool", [cur], [y], name=n, **_pool_attrs(ql.kernel[0], ql.stride)))
        elif ql.kind == "relu":
            nodes.append(oh.make_node("Relu", [cur], [y], name=n))
        elif ql.kind == "flatten":
            nodes.append(oh.make_node("Flatten", [cur], [y], name=n, axis=1))
        cur = y
    return _model(nodes, inits, qnet.input_shape, cur, TP.UINT8 if uint8 else TP.INT8, qnet.name, ms=True)


def ort_run(model, x, optimize: bool = True) -> np.ndarray:
    """Output of ``model`` on ``x`` ([N, ...] float) with onnxruntime (CPU)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": np.asarray(x, np.float32)})[0]
