"""ONNX import: float models and int8 QDQ / QLinear models.

Supported operators (one data input; the batch axis is axis 0; a tensor may
feed several nodes, so residual blocks import as a DAG):

* float: ``Conv`` (group 1 or depthwise, no dilation, equal strides,
  ``pads`` / ``auto_pad``), ``BatchNormalization`` folded into the Conv
  before it, ``Add`` of two tensors of one shape (residual) or of a MatMul's
  bias, ``GlobalAveragePool``, ``Gemm`` (transA = 0), ``MatMul``, ``Relu``,
  ``MaxPool`` / ``AveragePool`` (square, no padding, floor mode),
  ``Flatten`` (axis 1), ``Reshape`` to ``[N, -1]``, ``Identity``,
  ``Dropout``, same-type ``Cast``, ``Constant``.
* quantized: the above between ``QuantizeLinear`` / ``DequantizeLinear``
  pairs (QDQ), and ``QLinearConv``, ``QLinearMatMul``, ``QGemm``,
  ``QLinearAveragePool``, ``QLinearGlobalAveragePool`` and ``QLinearAdd``
  (com.microsoft), ``MaxPool`` / ``Relu`` / ``Flatten`` / ``Reshape`` on
  int8 tensors (QOperator); requantized as onnxruntime does
  (``rounding = "mlas"``, :mod:`nnloom.gen.frontend.qtypes`).

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

from nnloom.gen.frontend.network import (Add, AvgPool, Conv2d, Dense, DepthwiseConv2d, Flatten, GlobalAvgPool,
                                         MaxPool, Network, NetworkError, ReLU)

__all__ = ["load_onnx", "read_onnx", "OnnxGraph", "Tail", "FLOAT_OPS", "QUANT_OPS", "TAIL_OPS", "Importer"]

FLOAT_OPS = ("Conv", "Gemm", "MatMul", "Add", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool",
             "BatchNormalization", "Flatten", "Reshape", "Identity", "Dropout")
# After the last layer, computed on the host by ``nnloom infer`` (see OnnxGraph).
TAIL_OPS = ("Softmax", "ArgMax", "ZipMap", "ArrayFeatureExtractor", "QLinearSoftmax")
QUANT_OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul",
             "QGemm", "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearAdd")


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
    inputs, waiting for its QuantizeLinear).  ``fsrc`` / ``qsrc``: the index
    of the float / quantized layer whose output this is (-1: the network
    input), so a layer can read any earlier tensor (a residual DAG).
    """

    shape: tuple
    state: str = "float"
    scale: float = 1.0
    zp: int = 0
    pending: dict = field(default_factory=dict)
    fsrc: int = -1
    qsrc: int = -1

    def like(self, **kw):
        """A copy with the same sources and ``kw`` changed."""
        from dataclasses import replace

        return replace(self, **kw)


@dataclass
class Tail:
    """A value computed from the chain's last output by host operations
    ``ops`` (tuples: ``("softmax",)``, ``("argmax", keepdims, last)``,
    ``("q", scale, zp, dtype)``, ``("dq", scale, zp)``, ``("take", values)``,
    ``("reshape", shape)``, ``("cast", dtype)``, ``("zipmap", labels)``)."""

    ops: tuple = ()


@dataclass
class OnnxGraph:
    """What ``nnloom infer`` needs to answer as onnxruntime does.

    ``input_codes``: the graph input is an integer tensor (int8 / uint8
    codes) rather than float; ``input_dtype`` the numpy type of the codes the
    model quantizes to (``int8`` or ``uint8``, None for a float model).
    ``outputs``: ``(name, kind, tail)`` per graph output, ``kind`` ``float``
    (float model), ``codes`` (the last layer's int8 / uint8 codes) or ``dq``
    (those codes dequantized to float32 as DequantizeLinear does);
    ``out_dtype``: the codes' numpy type, ``out_scale`` / ``out_zp`` (in that
    type) their quantization.
    """

    net: Network
    qnet: object
    input_codes: bool = False
    input_dtype: object = None
    input_scale: float = 1.0
    input_zp: int = 0
    outputs: list = field(default_factory=list)
    out_dtype: object = None
    out_scale: float = 1.0
    out_zp: int = 0


class Importer:
    """Walks the graph's nodes in order; one method per operator."""

    def __init__(self, model, src: str):
        import onnx.numpy_helper as nh

        self.src, self.graph = src, model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.declared = _declared(model)
        self.values: dict = {t.name: Const(nh.to_array(t)) for t in self.graph.initializer}
        self.layers, self.weights, self.qlayers = [], {}, []
        self.finputs = []              # per float layer: the float layers it reads
        self.consumers = {}            # tensor name -> number of nodes reading it
        self.graph_outputs = {o.name for o in self.graph.output}
        for n in self.graph.node:
            for i in n.input:
                self.consumers[i] = self.consumers.get(i, 0) + 1
        self.input_q = None            # (scale, zp) of the input when quantized
        self.input_u8 = False          # the model's activations are uint8
        self.input_codes = False       # the graph input itself is int8 / uint8
        self.head = None               # the chain's last value, when a Tail follows
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
        self.input_name = inputs[0].name
        self.input_type = inputs[0].type.tensor_type.elem_type
        self.values[inputs[0].name] = Act(self.input_shape)

    # -- helpers ---------------------------------------------------------------

    def check_declared(self, node, name, shape):
        """The computed per-sample ``shape`` against the model's own (value_info,
        graph outputs, after ONNX shape inference): a mismatch is refused."""
        dims = self.declared.get(name, (None, None))[1]
        if dims is None:
            return
        got = [None] + list(shape)
        if len(dims) != len(got) or any(d is not None and d != g for d, g in zip(dims[1:], got[1:])):
            shown = ["N" if d is None else d for d in dims]
            self.fail(node, f"output {name!r}: expected the declared shape {shown}, "
                      f"got [N, {', '.join(map(str, shape))}] from nnloom's layers")

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

    def add_layer(self, layer, shape, weights=None, src=None):
        """Append a float layer reading the float layers ``src`` (default:
        the previous one); return its output shape."""
        try:
            out = layer.out_shape(shape)
        except ValueError as e:
            raise NetworkError(self.src, f"layer {layer.name}", str(e)) from None
        self.finputs.append([len(self.layers) - 1] if src is None else [int(j) for j in src])
        self.layers.append(layer)
        self.weights.update(weights or {})
        return tuple(out)

    def float_inputs(self):
        """``Network.inputs``: None for a chain, else the per-layer sources."""
        if all(src == [i - 1] for i, src in enumerate(self.finputs)):
            return None
        return self.finputs

    def check_conv(self, node, w, shape):
        """``(stride, (top, bottom, left, right), group)`` of a 2-D Conv on a
        (C, H, W) input: ``group`` 1 (a conv) or C (depthwise), equal
        strides, no dilation; ``pads`` or ``auto_pad`` (SAME_UPPER,
        SAME_LOWER, VALID) may pad each side differently."""
        a = self.attrs(node)
        if w.ndim != 4:
            self.fail(node, f"expected a 2-D convolution weight [M, C, R, S], got shape {list(w.shape)}")
        if len(shape) != 3:
            self.fail(node, f"expected a (C, H, W) input, got {list(shape)}")
        c = shape[0]
        group = int(a.get("group", 1))
        if group not in (1, c):
            self.fail(node, f"group: expected 1 or the input's {c} channels (depthwise), got {group}")
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            self.fail(node, f"dilations: expected [1, 1], got {list(a['dilations'])}")
        k = list(a.get("kernel_shape", w.shape[2:]))
        if [int(v) for v in k] != list(w.shape[2:]):
            self.fail(node, f"kernel_shape: expected the weight's {list(w.shape[2:])}, got {k}")
        strides = [int(v) for v in a.get("strides", [1, 1])]
        if len(strides) != 2 or strides[0] != strides[1] or strides[0] < 1:
            self.fail(node, f"strides: expected two equal positive strides [s, s], got {strides}")
        st = strides[0]
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = [0, 0, 0, 0]
            for d, (n, kk) in enumerate(zip(shape[1:], w.shape[2:])):
                total = max((-(-n // st) - 1) * st + kk - n, 0)
                small = total // 2
                pads[d], pads[d + 2] = (small, total - small) if auto == "SAME_UPPER" else (total - small, small)
        elif auto == "VALID":
            pads = [0, 0, 0, 0]
        elif auto == "NOTSET":
            pads = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
        else:
            self.fail(node, f"auto_pad: expected one of NOTSET, VALID, SAME_UPPER, SAME_LOWER, got {auto}")
        if len(pads) != 4 or min(pads) < 0:
            self.fail(node, f"pads: expected four non-negative pads, got {pads}")
        want_c = 1 if group > 1 else c
        if w.shape[1] != want_c or (group > 1 and w.shape[0] % c):
            what = (f"[{c} x k, 1, R, S] (depthwise)" if group > 1 else f"[M, {c}, R, S]")
            self.fail(node, f"expected a weight {what} for {c} input channels, got {list(w.shape)}")
        return st, (pads[0], pads[2], pads[1], pads[3]), group

    def check_pool(self, node, shape):
        """``(kernel, stride)`` of a 2-D pooling node on a (C, H, W) input.

        ONNX's attributes and defaults (``strides`` 1, ``pads`` 0, ``auto_pad``
        NOTSET, ``ceil_mode`` 0, ``dilations`` 1): the IR pools a square window
        with equal strides, no padding and floor rounding, so anything that
        changes the result from that is refused; ``auto_pad`` SAME and
        ``ceil_mode`` 1 are taken when, on this input, they add no padding and
        no extra window.  ``count_include_pad`` only matters with padding and
        ``storage_order`` only for the Indices output (refused).
        """
        a = self.attrs(node)
        k = [int(v) for v in a.get("kernel_shape", [])]
        if len(k) != 2 or k[0] != k[1] or k[0] < 1:
            self.fail(node, f"kernel_shape: expected a square 2-D window [k, k], got {k}")
        if len(shape) != 3:
            self.fail(node, f"expected a (C, H, W) input, got {list(shape)}")
        kk = k[0]
        strides = [int(v) for v in a.get("strides", [1, 1])]
        if len(strides) != 2 or strides[0] != strides[1] or strides[0] < 1:
            self.fail(node, f"strides: expected two equal positive strides [s, s], got {strides}")
        s = strides[0]
        dil = [int(v) for v in a.get("dilations", [1, 1])]
        if any(d != 1 for d in dil):
            self.fail(node, f"dilations: expected [1, 1], got {dil}")
        if len([o for o in node.output if o]) != 1:
            self.fail(node, f"expected one output (no Indices), got {len([o for o in node.output if o])}")
        if a.get("storage_order", 0) not in (0, 1):
            self.fail(node, f"storage_order: expected 0 or 1, got {a['storage_order']}")
        if a.get("count_include_pad", 0) not in (0, 1):
            self.fail(node, f"count_include_pad: expected 0 or 1, got {a['count_include_pad']}")
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        h, w = shape[1:]
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            total = [max((-(-n // s) - 1) * s + kk - n, 0) for n in (h, w)]
            if any(total):
                self.fail(node, f"auto_pad: expected NOTSET, VALID, or {auto} that pads nothing on this "
                          f"input (pooling has no padding), got {auto} padding {total[0]}x{total[1]}")
        elif auto == "NOTSET":
            pads = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
            if any(pads):
                self.fail(node, f"pads: expected no pads [0, 0, 0, 0] (pooling has no padding), got {pads}")
        elif auto != "VALID":
            self.fail(node, f"auto_pad: expected one of NOTSET, VALID, SAME_UPPER, SAME_LOWER, got {auto}")
        if kk > h or kk > w:
            self.fail(node, f"kernel_shape: expected a window within the input {h}x{w}, got {k}")
        ceil = a.get("ceil_mode", 0)
        if ceil not in (0, 1):
            self.fail(node, f"ceil_mode: expected 0 or 1, got {ceil}")
        if ceil and auto in ("NOTSET", "VALID"):
            for n in (h, w):
                out = -(-(n - kk) // s) + 1
                if (out - 1) * s >= n:      # ONNX drops a last window that starts outside
                    out -= 1
                if out != (n - kk) // s + 1:
                    self.fail(node, f"ceil_mode: expected 0, or 1 where it adds no window (pooling rounds "
                              f"down), got 1 on an input {h}x{w} with kernel {kk} stride {s}")
        return kk, s

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
            stride, pads, group = self.check_conv(node, w.value, act.shape)
            kernel = tuple(int(v) for v in w.value.shape[2:])
            if group > 1:
                layer = DepthwiseConv2d(self.name(node, "dwconv"), kernel, stride=stride, pads=pads,
                                        depth_multiplier=w.value.shape[0] // act.shape[0], bias=b is not None)
            else:
                even = len(set(pads)) == 1
                layer = Conv2d(self.name(node, "conv"), w.value.shape[0], kernel, stride=stride,
                               padding=pads[0] if even else 0, bias=b is not None,
                               pads=None if even else pads)
            return layer, {"w": w, "b": b}
        if op in ("Gemm", "MatMul"):
            a = self.attrs(node)
            w = self.get(node, 1, Const)
            if a.get("transA", 0):
                self.fail(node, f"transA: expected 0 (batch on axis 0, a fully connected layer), "
                          f"got {a['transA']}")
            trans = op == "Gemm" and a.get("transB", 0)
            wt = w.value if trans else w.value.T
            if len(act.shape) != 1 or wt.ndim != 2 or wt.shape[1] != act.shape[0]:
                self.fail(node, f"expected a flat input and a [{act.shape[0] if act.shape else '?'}, out] "
                          f"weight, got input {list(act.shape)} and weight {list(w.value.shape)}")
            b = self.get(node, 2, Const, optional=True) if op == "Gemm" else None
            layer = Dense(self.name(node, "fc"), wt.shape[0], bias=True)
            return layer, {"w": w, "b": b, "trans": not trans, "alpha": float(a.get("alpha", 1.0)),
                           "beta": float(a.get("beta", 1.0))}
        if op == "Relu":
            return ReLU(self.name(node, "relu")), {}
        if op in ("MaxPool", "AveragePool"):
            k, s = self.check_pool(node, act.shape)
            cls = MaxPool if op == "MaxPool" else AvgPool
            return cls(self.name(node, op.lower()), k, s), {}
        if op in ("Flatten", "Reshape"):
            self.flat_reshape(node, act)
            return Flatten(self.name(node, "flatten")), {}
        if op == "GlobalAveragePool":
            if len(act.shape) != 3:
                self.fail(node, f"expected a (C, H, W) input, got {list(act.shape)}")
            return GlobalAvgPool(self.name(node, "gavgpool")), {}
        self.fail(node, "expected one of the supported operators " + ", ".join(FLOAT_OPS + QUANT_OPS)
                  + f", got {op}")

    def bias_vector(self, node, value, m):
        """A bias of shape [m], [1, m], [1] or a scalar as a vector of ``m``."""
        value = np.asarray(value)
        if value.size == m and (value.ndim == 1 or value.shape[:-1] == (1,) * (value.ndim - 1)):
            return value.reshape(m)
        if value.size == 1:
            return np.broadcast_to(value.reshape(()), (m,)).copy()
        self.fail(node, f"expected a bias of shape [{m}], [1, {m}], [1] or a scalar, "
                  f"got {list(value.shape)}")

    def float_weights(self, layer, p, node):
        """Float weights of a float layer from its Const inputs (dequantized)."""
        out = {}
        if "w" in p:
            w = p["w"].value.astype(np.float32)
            w = w.T if p.get("trans") else w
            n = w.shape[0]
            out[f"{layer.name}.weight"] = (w * np.float32(p["alpha"])) if p.get("alpha", 1.0) != 1.0 else w
            b = p["b"]
            if getattr(layer, "bias", True):
                bias = (np.zeros(n, np.float32) if b is None
                        else self.bias_vector(node, b.value, n).astype(np.float32))
                out[f"{layer.name}.bias"] = bias * np.float32(p["beta"]) if p.get("beta", 1.0) != 1.0 else bias
        return out

    def two_acts(self, node):
        """The two activations of a residual Add (same shape, no broadcast)."""
        if len(node.input) != 2:
            self.fail(node, f"expected two inputs, got {len(node.input)}")
        a, b = self.get(node, 0), self.get(node, 1)
        if not (isinstance(a, Act) and isinstance(b, Act)):
            return None
        if tuple(a.shape) != tuple(b.shape):
            self.fail(node, f"expected two tensors of one shape (no broadcasting), got [N, "
                      f"{', '.join(map(str, a.shape))}] and [N, {', '.join(map(str, b.shape))}]")
        return a, b

    def fold_batchnorm(self, node, act):
        """BatchNormalization (inference) folded into the conv / depthwise
        conv whose output it reads: per output channel ``c``,
        ``w' = w * g``, ``b' = (b - mean) * g + beta`` with
        ``g = scale / sqrt(var + epsilon)``."""
        from dataclasses import replace

        a = self.attrs(node)
        last = self.layers[-1] if self.layers else None
        if last is None or last.kind not in ("conv", "dwconv") or act.fsrc != len(self.layers) - 1 \
                or self.consumers.get(node.input[0], 0) != 1:
            self.fail(node, "expected BatchNormalization directly after a Conv whose output nothing "
                      "else reads (it is folded into the conv)")
        if a.get("training_mode", 0) or a.get("spatial", 1) != 1 or len([o for o in node.output if o]) != 1:
            self.fail(node, "expected inference mode (training_mode 0, spatial 1, one output)")
        m = act.shape[0]
        params = []
        for i, what in enumerate(("scale", "B", "input_mean", "input_var"), start=1):
            v = np.asarray(self.get(node, i, Const).value, np.float64).reshape(-1)
            if v.size != m:
                self.fail(node, f"{what}: expected {m} values (one per channel), got {v.size}")
            params.append(v)
        gamma, beta, mean, var = params
        eps = float(a.get("epsilon", 1e-5))
        if np.any(var + eps <= 0):
            self.fail(node, f"input_var: expected var + epsilon > 0, got a minimum of {float((var + eps).min())}")
        g = gamma / np.sqrt(var + eps)
        wk, bk = f"{last.name}.weight", f"{last.name}.bias"
        w = np.asarray(self.weights[wk], np.float64)
        b = np.asarray(self.weights.get(bk, np.zeros(m)), np.float64)
        self.weights[wk] = (w * g.reshape(-1, 1, 1, 1)).astype(np.float32)
        self.weights[bk] = ((b - mean) * g + beta).astype(np.float32)
        if not last.bias:
            self.layers[-1] = replace(last, bias=True)
        return act.like()

    def step_float(self, node, act):
        op = node.op_type
        if op in ("Identity", "Dropout"):
            return act
        if op == "BatchNormalization":
            return self.fold_batchnorm(node, act)
        if op == "Add":
            pair = self.two_acts(node)
            if pair is not None:            # a residual add
                a, b = pair
                shape = self.add_layer(Add(self.name(node, "add")), a.shape, src=[a.fsrc, b.fsrc])
                return Act(shape, fsrc=len(self.layers) - 1)
            # The bias of the MatMul just before (either operand order).
            last = self.layers[-1] if self.layers else None
            other = [self.values.get(i) for i in node.input if self.values.get(i) is not act]
            b = other[0] if len(other) == 1 else None
            if not (isinstance(last, Dense) and isinstance(b, Const) and self._last_was_matmul
                    and act.fsrc == len(self.layers) - 1):
                self.fail(node, "expected Add of two tensors of one shape (residual) or of a bias "
                          "right after a MatMul, got something else")
            self.weights[f"{last.name}.bias"] = self.bias_vector(node, b.value, last.out_features).astype(np.float32)
            self._last_was_matmul = False
            return act
        layer, p = self.float_op(node, act)
        shape = self.add_layer(layer, act.shape, self.float_weights(layer, p, node), src=[act.fsrc])
        self._last_was_matmul = op == "MatMul"
        return Act(shape, fsrc=len(self.layers) - 1)

    # -- the walk --------------------------------------------------------------

    def constant(self, node):
        """The value of a Constant node (``value`` or ``value_float(s)`` / ``value_int(s)``)."""
        import onnx.numpy_helper as nh

        a = self.attrs(node)
        if len(a) != 1:
            self.fail(node, f"expected one of the attributes value, value_float, value_floats, value_int, "
                      f"value_ints, got {sorted(a) or 'none'}")
        (key, v), = a.items()
        if key == "value":
            return nh.to_array(v)
        if key in ("value_float", "value_floats"):
            return np.asarray(v, np.float32)
        if key in ("value_int", "value_ints"):
            return np.asarray(v, np.int64)
        self.fail(node, f"expected one of the attributes value, value_float, value_floats, value_int, "
                  f"value_ints, got {key}")

    def elem_type(self, name):
        return self.declared.get(name, (None, None))[0]

    def cast(self, node, v):
        import onnx.helper as oh

        to = self.attrs(node).get("to")
        if isinstance(v, Tail):
            return Tail(v.ops + (("cast", oh.tensor_dtype_to_np_dtype(to)),))
        have = self.elem_type(node.input[0])
        if have is None or have != to:
            names = lambda t: "unknown" if t is None else oh.tensor_dtype_to_string(t).replace("TensorProto.", "")
            self.fail(node, f"to: expected the input's own type {names(have)} (a no-op), got {names(to)}")
        return v

    def tail(self, node, v):
        """A host operation after the last layer (Softmax, ArgMax, ZipMap, ...)."""
        from nnloom.gen.frontend.loaders import onnx_qdq

        op, a = node.op_type, self.attrs(node)
        if isinstance(v, Act):
            if self.head is not None and v is not self.head:
                self.fail(node, "expected every output to follow the same last layer, got a second branch")
            if len(v.shape) != 1 or v.state not in ("float", "q", "dq"):
                self.fail(node, f"expected a [N, F] tensor from the last layer, got [N, "
                          f"{', '.join(map(str, v.shape))}] ({v.state})")
            self.head, v = v, Tail()
        if len([o for o in node.output if o]) != 1:
            self.fail(node, "expected one output")
        if op == "Softmax":
            axis = a.get("axis", -1 if self.opset >= 13 else 1)
            if axis not in (1, -1) or len(self.head.shape) != 1:
                self.fail(node, f"axis: expected 1 or -1 on a [N, F] tensor, got {axis}")
            return Tail(v.ops + (("softmax",),))
        if op == "QLinearSoftmax":   # com.microsoft: x, x_scale, x_zp, y_scale, y_zp
            if v.ops or self.head.state != "q":
                self.fail(node, "expected QLinearSoftmax on the last layer's int8 output")
            if a.get("axis", -1) not in (1, -1):
                self.fail(node, f"axis: expected 1 or -1, got {a.get('axis')}")
            xs, xz, xu = onnx_qdq.act_params(self, node, 1, 2)
            if (xs, xz) != (self.head.scale, self.head.zp):
                self.fail(node, "expected the input's own scale and zero point")
            ys, yz, u8 = onnx_qdq.act_params(self, node, 3, 4)
            return Tail((("dq", xs, xz + 128 * xu), ("softmax",),
                         ("q", ys, yz + 128 * u8, np.uint8 if u8 else np.int8)))
        if op == "ArgMax":
            if a.get("axis", 0) not in (1, -1):
                self.fail(node, f"axis: expected 1 or -1 (the feature axis), got {a.get('axis', 0)}")
            return Tail(v.ops + (("argmax", bool(a.get("keepdims", 1)), bool(a.get("select_last_index", 0))),))
        if op == "ZipMap":
            labels = a.get("classlabels_int64s") or [x.decode() for x in a.get("classlabels_strings", [])]
            return Tail(v.ops + (("zipmap", tuple(labels)),))
        if op == "ArrayFeatureExtractor":
            if node.input[1] not in self.values or self.values[node.input[1]] is not v:
                self.fail(node, "expected the indices from the tail, got something else")
            x = self.get(node, 0, Const).value
            if x.ndim != 1:
                self.fail(node, f"expected a 1-D table, got shape {list(x.shape)}")
            return Tail(v.ops + (("take", x),))
        if op == "Reshape":
            return Tail(v.ops + (("reshape", tuple(int(d) for d in self.get(node, 1, Const).value.reshape(-1))),))
        if op in ("Identity", "Dropout"):
            return v
        if op in ("QuantizeLinear", "DequantizeLinear"):
            sc, zp, u8 = onnx_qdq.act_params(self, node, 1, 2)
            if op == "QuantizeLinear":
                return Tail(v.ops + (("q", sc, zp + 128 * u8, np.uint8 if u8 else np.int8),))
            return Tail(v.ops + (("dq", sc, zp + 128 * u8),))
        self.fail(node, f"expected only {', '.join(TAIL_OPS)}, Reshape, Cast, QuantizeLinear, "
                  f"DequantizeLinear after the last layer, got {op}")

    def run(self):
        from nnloom.gen.frontend.loaders import onnx_qdq

        self._last_was_matmul = False
        quant = any(n.op_type in QUANT_OPS for n in self.graph.node)
        from onnx import TensorProto

        if not quant and self.input_type not in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16):
            import onnx.helper as oh

            raise NetworkError(self.src, f"graph.input ({self.input_name})", "expected a float, double or "
                               "float16 tensor in a float model (integer inputs need QuantizeLinear / "
                               f"QLinear operators), got {oh.tensor_dtype_to_string(self.input_type)}")
        last = None
        for node in self.graph.node:
            if node.domain not in ("", "ai.onnx", "com.microsoft") and not (
                    node.domain == "ai.onnx.ml" and node.op_type in ("ZipMap", "ArrayFeatureExtractor")):
                self.fail(node, f"expected the standard ONNX domain, got {node.domain!r}")
            if node.op_type == "Constant":
                self.values[node.output[0]] = Const(self.constant(node))
                continue
            ins = [self.values.get(i) for i in node.input if i]
            if node.op_type == "Cast":
                out = self.cast(node, self.get(node, 0))
            elif node.op_type in TAIL_OPS or any(isinstance(v, Tail) for v in ins):
                out = self.tail(node, self.get(node, 0) if node.op_type != "ArrayFeatureExtractor"
                                else self.get(node, 1))
            elif quant:
                out = onnx_qdq.step(self, node)
            else:
                first = self.get(node, 0)
                if node.op_type == "Add" and isinstance(first, Const) and len(node.input) == 2:
                    act = self.get(node, 1, Act)          # a bias written first
                else:
                    act = self.get(node, 0, Act)
                out = self.step_float(node, act)
            self.values[node.output[0]] = out
            if isinstance(out, Act):
                self.check_declared(node, node.output[0], out.shape)
                last = node
        outs = [o.name for o in self.graph.output]
        vals = [self.values.get(o) for o in outs]
        acts = [v for v in vals if isinstance(v, Act)]
        if not outs or any(not isinstance(v, (Act, Tail)) for v in vals) or len(acts) > 1 or \
                (acts and self.head is not None and acts[0] is not self.head):
            raise NetworkError(self.src, "graph.output", f"expected outputs computed by the chain, got {outs}")
        final = acts[0] if acts else self.head
        if quant:
            onnx_qdq.finish(self, final, last)
        if not self.layers:
            raise NetworkError(self.src, "graph.node", "expected at least one supported layer, got none")
        self.final = final
        return final


def _declared(model):
    """``{tensor name: (elem_type, [dim or None, ...] or None)}`` the model states."""
    import onnx

    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:  # an inconsistent or exotic model: keep what it states
        pass
    out = {}
    g = model.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        t = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if t is None:
            continue
        dims = None
        if t.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        out[vi.name] = (t.elem_type, dims)
    return out


def read_onnx(path, model=None) -> OnnxGraph:
    """Import an ONNX file (or an already loaded ``model`` named ``path``)."""
    import onnx

    src = str(path)
    if model is None:
        try:
            model = onnx.load(str(path))
        except FileNotFoundError:
            raise NetworkError(src, "file", "expected an existing ONNX file, got no such file") from None
        except Exception as e:  # protobuf decode errors have no common base class
            raise NetworkError(src, "file", f"expected an ONNX model, got unreadable data ({e.__class__.__name__})") from None
    if not model.graph.node:
        raise NetworkError(src, "graph.node", "expected at least one node, got an empty graph")
    imp = Importer(model, src)
    final = imp.run()
    name = model.graph.name or Path(src).stem
    net = Network(name, imp.input_shape, imp.layers, imp.weights, source=src, inputs=imp.float_inputs())
    g = OnnxGraph(net, None)
    if imp.qlayers:
        from nnloom.gen.frontend.qtypes import QuantizedNetwork

        g.qnet = QuantizedNetwork(name, imp.input_shape, imp.input_q[0], imp.input_q[1], imp.qlayers,
                                  rounding="mlas")
        u8 = bool(final.pending.get("u8"))
        g.input_codes, g.input_dtype = imp.input_codes, np.dtype(np.uint8 if imp.input_u8 else np.int8)
        g.input_scale, g.input_zp = imp.input_q[0], imp.input_q[1] + 128 * imp.input_u8
        g.out_dtype = np.dtype(np.uint8 if u8 else np.int8)
        g.out_scale, g.out_zp = final.scale, final.zp + 128 * u8
    for o in model.graph.output:
        v = imp.values[o.name]
        kind = "float" if g.qnet is None else ("codes" if final.state == "q" else "dq")
        g.outputs.append((o.name, kind, v.ops if isinstance(v, Tail) else None))
    return g


def load_onnx(path):
    """``(Network, QuantizedNetwork | None)`` from an ONNX file."""
    g = read_onnx(path)
    return g.net, g.qnet
