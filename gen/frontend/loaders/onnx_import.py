"""ONNX import: float models and int8 QDQ / QLinear models.

Supported operators (a sequential chain; the batch axis is axis 0):

* float: ``Conv`` (group 1, no dilation, equal strides, equal pads), ``Gemm``
  (alpha = beta = 1, transA = 0), ``MatMul`` (+ ``Add`` of a bias),
  ``Relu``, ``MaxPool`` / ``AveragePool`` (square, no padding, floor mode),
  ``Flatten`` (axis 1), ``Reshape`` to ``[N, -1]``, ``Identity``, ``Dropout``.
* quantized: the above between ``QuantizeLinear`` / ``DequantizeLinear``
  pairs (QDQ), and ``QLinearConv``, ``QLinearMatMul``, ``QGemm`` and
  ``QLinearAveragePool`` (com.microsoft), ``MaxPool`` / ``Relu`` /
  ``Flatten`` / ``Reshape`` on int8 tensors (QOperator).

A quantized model imports as a :class:`nnloom.gen.frontend.qtypes.QuantizedNetwork` with its
own scales and zero points (the interpretation rules are in
:mod:`nnloom.gen.frontend.loaders.onnx_qdq`) and, beside it, the float :class:`Network` with
the dequantized weights (for timing).  Anything else raises
:class:`NetworkError` naming the node and what is supported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnloom.gen.frontend.network import AvgPool, Conv2d, Dense, Flatten, MaxPool, Network, NetworkError, ReLU

__all__ = ["load_onnx", "FLOAT_OPS", "QUANT_OPS", "Importer"]

FLOAT_OPS = ("Conv", "Gemm", "MatMul", "Add", "Relu", "MaxPool", "AveragePool", "Flatten",
             "Reshape", "Identity", "Dropout")
QUANT_OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
             "QGemm", "QLinearAveragePool")


@dataclass
class Const:
    """An initializer (``q`` set when it came through DequantizeLinear)."""

    value: np.ndarray
    q: np.ndarray | None = None
    scale: np.ndarray | None = None
    zp: np.ndarray | None = None


@dataclass
class Act:
    """The activation flowing down the chain.

    ``state``: ``float`` (float model), ``q`` (an int8 tensor), ``dq`` (a
    dequantized int8 tensor) or ``pending`` (a float op on dequantized
    inputs, waiting for its QuantizeLinear).
    """

    shape: tuple
    state: str = "float"
    scale: float = 1.0
    zp: int = 0
    pending: dict = field(default_factory=dict)


class Importer:
    """Walks the graph's nodes in order; one method per operator."""

    def __init__(self, model, src: str):
        import onnx.numpy_helper as nh

        self.src, self.graph = src, model.graph
        self.values: dict = {t.name: Const(nh.to_array(t)) for t in self.graph.initializer}
        self.layers, self.weights, self.qlayers = [], {}, []
        self.input_q = None            # (scale, zp) of the input when quantized
        self.names: set = set()
        inputs = [i for i in self.graph.input if i.name not in self.values]
        if len(inputs) != 1:
            raise NetworkError(src, "graph.input", f"expected exactly one data input, got {len(inputs)}")
        dims = inputs[0].type.tensor_type.shape.dim
        shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if len(shape) not in (2, 4) or any(v is None or v < 1 for v in shape[1:]):
            raise NetworkError(src, f"graph.input ({inputs[0].name})",
                               f"expected a shape [N, C, H, W] or [N, F] with fixed sizes, got {shape}")
        self.input_shape = tuple(shape[1:])
        self.values[inputs[0].name] = Act(self.input_shape)

    # -- helpers ---------------------------------------------------------------

    def fail(self, node, message):
        raise NetworkError(self.src, f"node {node.name or node.output[0]!r} ({node.op_type})", message)

    def attrs(self, node):
        import onnx.helper as oh

        return {a.name: oh.get_attribute_value(a) for a in node.attribute}

    def get(self, node, i, want=None, optional=False):
        """Value of input ``i``; ``want``: Const or Act; a missing input fails unless optional."""
        if i >= len(node.input) or not node.input[i]:
            if optional:
                return None
            self.fail(node, f"expected input {i}, got nothing")
        v = self.values.get(node.input[i])
        if v is None:
            self.fail(node, f"expected input {node.input[i]!r} to be computed earlier, got an unknown tensor")
        if want is not None and not isinstance(v, want):
            kind = "an initializer" if want is Const else "the previous layer's output"
            self.fail(node, f"expected input {i} to be {kind} (a sequential chain), got something else")
        return v

    def name(self, node, kind):
        base = "".join(c if c.isalnum() or c == "_" else "_" for c in (node.name or ""))
        base = base or f"{kind}{len(self.layers)}"
        name, n = base, 1
        while name in self.names:
            name, n = f"{base}_{n}", n + 1
        self.names.add(name)
        return name

    def add_layer(self, layer, shape, weights=None):
        """Append a float layer; return its output shape."""
        try:
            out = layer.out_shape(shape)
        except ValueError as e:
            raise NetworkError(self.src, f"layer {layer.name}", str(e)) from None
        self.layers.append(layer)
        self.weights.update(weights or {})
        return tuple(out)

    def check_conv(self, node, w):
        a = self.attrs(node)
        if a.get("group", 1) != 1:
            self.fail(node, f"expected group = 1, got {a['group']}")
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            self.fail(node, f"expected dilations 1, got {a['dilations']}")
        strides = a.get("strides", [1, 1])
        pads = a.get("pads", [0, 0, 0, 0])
        if len(set(strides)) != 1 or len(set(pads)) != 1:
            self.fail(node, f"expected equal strides and pads, got strides {strides}, pads {pads}")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            self.fail(node, f"expected explicit pads, got auto_pad {a['auto_pad']}")
        if w.ndim != 4:
            self.fail(node, f"expected a 2-D convolution weight [M, C, R, S], got shape {list(w.shape)}")
        return strides[0], pads[0]

    def check_pool(self, node):
        a = self.attrs(node)
        k = a.get("kernel_shape", [])
        strides = a.get("strides", k)
        if len(k) != 2 or k[0] != k[1] or len(set(strides)) != 1:
            self.fail(node, f"expected a square kernel and equal strides, got kernel {k}, strides {strides}")
        if any(a.get("pads", [0])) or a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1])):
            self.fail(node, "expected no pads, no dilation and floor mode")
        return int(k[0]), int(strides[0])

    def flat_reshape(self, node, act):
        if node.op_type == "Flatten":
            if self.attrs(node).get("axis", 1) != 1:
                self.fail(node, f"expected axis = 1, got {self.attrs(node)['axis']}")
            return
        value = self.get(node, 1, Const).value
        flat = int(np.prod(act.shape))
        shape = value.tolist() if value.ndim == 1 and np.issubdtype(value.dtype, np.integer) else value
        if not isinstance(shape, list) or len(shape) != 2 or shape[1] not in (-1, flat) or shape[0] not in (-1, 0, 1):
            self.fail(node, f"expected a reshape to [N, -1] or [N, {flat}], got {shape}")

    # -- float operators -------------------------------------------------------

    def float_op(self, node, act):
        op = node.op_type
        if op == "Conv":
            w = self.get(node, 1, Const)
            b = self.get(node, 2, Const, optional=True)
            stride, pad = self.check_conv(node, w.value)
            layer = Conv2d(self.name(node, "conv"), w.value.shape[0], tuple(w.value.shape[2:]),
                           stride=stride, padding=pad, bias=b is not None)
            if w.value.shape[1] != act.shape[0]:
                self.fail(node, f"expected a weight for {act.shape[0]} input channels, got {list(w.value.shape)}")
            return layer, {"w": w, "b": b}
        if op in ("Gemm", "MatMul"):
            a = self.attrs(node)
            w = self.get(node, 1, Const)
            if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
                self.fail(node, "expected alpha = beta = 1 and transA = 0")
            trans = op == "Gemm" and a.get("transB", 0)
            wt = w.value if trans else w.value.T
            if len(act.shape) != 1 or wt.ndim != 2 or wt.shape[1] != act.shape[0]:
                self.fail(node, f"expected a flat input and a [{act.shape[0] if act.shape else '?'}, out] "
                          f"weight, got input {list(act.shape)} and weight {list(w.value.shape)}")
            b = self.get(node, 2, Const, optional=True)
            layer = Dense(self.name(node, "fc"), wt.shape[0], bias=True)
            return layer, {"w": w, "b": b, "trans": not trans}
        if op == "Relu":
            return ReLU(self.name(node, "relu")), {}
        if op in ("MaxPool", "AveragePool"):
            k, s = self.check_pool(node)
            cls = MaxPool if op == "MaxPool" else AvgPool
            return cls(self.name(node, op.lower()), k, s), {}
        if op in ("Flatten", "Reshape"):
            self.flat_reshape(node, act)
            return Flatten(self.name(node, "flatten")), {}
        self.fail(node, "expected one of the supported operators " + ", ".join(FLOAT_OPS + QUANT_OPS)
                  + f", got {op}")

    def float_weights(self, layer, p):
        """Float weights of a float layer from its Const inputs (dequantized)."""
        out = {}
        if "w" in p:
            w = p["w"].value.astype(np.float32)
            out[f"{layer.name}.weight"] = w.T if p.get("trans") else w
            b = p["b"]
            n = out[f"{layer.name}.weight"].shape[0]
            out[f"{layer.name}.bias"] = (np.zeros(n, np.float32) if b is None
                                         else b.value.astype(np.float32).reshape(n))
        return out

    def step_float(self, node, act):
        op = node.op_type
        if op in ("Identity", "Dropout"):
            return act
        if op == "Add":
            # Bias of a preceding MatMul.
            last = self.layers[-1] if self.layers else None
            b = self.get(node, 1)
            if not (isinstance(last, Dense) and isinstance(b, Const) and self._last_was_matmul
                    and b.value.size == last.out_features):
                self.fail(node, "expected Add only as the bias of a MatMul (residual add is not supported)")
            self.weights[f"{last.name}.bias"] = b.value.astype(np.float32).reshape(-1)
            return act
        layer, p = self.float_op(node, act)
        shape = self.add_layer(layer, act.shape, self.float_weights(layer, p))
        self._last_was_matmul = op == "MatMul"
        return Act(shape)

    # -- the walk --------------------------------------------------------------

    def run(self):
        from nnloom.gen.frontend.loaders import onnx_qdq

        self._last_was_matmul = False
        quant = any(n.op_type in QUANT_OPS for n in self.graph.node)
        last = None
        for node in self.graph.node:
            if node.domain not in ("", "ai.onnx", "com.microsoft"):
                self.fail(node, f"expected the standard ONNX domain, got {node.domain!r}")
            if node.op_type == "Constant":
                import onnx.helper as oh
                import onnx.numpy_helper as nh

                t = oh.get_attribute_value(node.attribute[0])
                self.values[node.output[0]] = Const(nh.to_array(t))
                continue
            if quant:
                out = onnx_qdq.step(self, node)
            else:
                act = self.get(node, 0, Act)
                out = self.step_float(node, act)
            self.values[node.output[0]] = out
            last = node
        outs = [o.name for o in self.graph.output]
        if len(outs) != 1 or not isinstance(self.values.get(outs[0]), Act):
            raise NetworkError(self.src, "graph.output", f"expected one output computed by the chain, got {outs}")
        final = self.values[outs[0]]
        if quant:
            onnx_qdq.finish(self, final, last)
        if not self.layers:
            raise NetworkError(self.src, "graph.node", "expected at least one supported layer, got none")
        return final


def load_onnx(path):
    """``(Network, QuantizedNetwork | None)`` from an ONNX file."""
    import onnx

    src = str(path)
    try:
        model = onnx.load(str(path))
    except FileNotFoundError:
        raise NetworkError(src, "file", "expected an existing ONNX file, got no such file") from None
    except Exception as e:  # protobuf decode errors have no common base class
        raise NetworkError(src, "file", f"expected an ONNX model, got unreadable data ({e.__class__.__name__})") from None
    if not model.graph.node:
        raise NetworkError(src, "graph.node", "expected at least one node, got an empty graph")
    imp = Importer(model, src)
    imp.run()
    name = model.graph.name or Path(src).stem
    net = Network(name, imp.input_shape, imp.layers, imp.weights, source=src)
    qnet = None
    if imp.qlayers:
        from nnloom.gen.frontend.qtypes import QuantizedNetwork

        qnet = QuantizedNetwork(name, imp.input_shape, imp.input_q[0], imp.input_q[1], imp.qlayers)
    return net, qnet
