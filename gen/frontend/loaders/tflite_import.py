"""Import int8 TFLite models (``.tflite`` flatbuffers, read with the ``tflite``
package) as a :class:`nnloom.gen.frontend.qtypes.QuantizedNetwork` with
``rounding = "tflite"``, bit-exact against LiteRT's reference kernels.

Operators: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD,
AVERAGE_POOL_2D, RESHAPE (a flatten), with fused NONE / RELU / RELU6, and
one SOFTMAX as the last operator: the golden model stops before it (its
output is the softmax's int8 input; ``QuantizedNetwork.softmax`` says that
a float softmax follows on the host).  Everything else is one line naming
the operator.

Layouts: TFLite's NHWC tensors become nnloom's (C, H, W); conv filters
[O, H, W, I] become [M, C, R, S], depthwise filters [1, H, W, M] become
[M, 1, R, S]; a fully connected layer after a flatten of an H x W > 1 map
gets its columns permuted from (h, w, c) to (c, h, w) order, so results
are identical.

:func:`to_network` gives the float :class:`Network` (dequantized weights)
of a chain of these layers, for the performance model and the planner.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nnloom.gen.frontend.network import NetworkError
from nnloom.gen.frontend.qtypes import INT8, QLayer, QuantizedNetwork, tflite_multiplier

__all__ = ["load_tflite", "to_network", "SUPPORTED_OPS"]

SUPPORTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "AVERAGE_POOL_2D",
                 "RESHAPE", "SOFTMAX (last)")
_INT8, _INT32 = 9, 2          # tflite.TensorType
_ACTIVATIONS = {0: "NONE", 1: "RELU", 3: "RELU6"}
_SAME, _VALID = 0, 1          # tflite.Padding


def _tflite():
    try:
        import tflite
    except ImportError:
        return None
    return tflite


class _Graph:
    """Subgraph 0 of a model: tensors, buffers, operator names."""

    def __init__(self, path: Path, tfl):
        self.path, self.tfl, self.where = path, tfl, str(path)
        self.buf = path.read_bytes()
        try:
            self.model = tfl.Model.GetRootAsModel(self.buf, 0)
            if self.model.SubgraphsLength() < 1:
                raise ValueError("no subgraph")
            self.g = self.model.Subgraphs(0)
            self.n_ops = self.g.OperatorsLength()
        except Exception as e:   # a corrupt flatbuffer raises anything
            raise NetworkError(self.where, "file", f"expected a TFLite flatbuffer, got unreadable "
                               f"data ({e.__class__.__name__})") from None
        self.op_names = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}

    def op_name(self, op) -> str:
        oc = self.model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code == self.tfl.BuiltinOperator.CUSTOM:
            return f"CUSTOM {oc.CustomCode().decode(errors='replace')}"
        return self.op_names.get(code, f"builtin {code}")

    def tensor(self, t):
        return self.g.Tensors(int(t))

    def shape(self, t) -> tuple:
        return tuple(int(v) for v in self.tensor(t).ShapeAsNumpy())

    def quant(self, t, field: str):
        """(scales [K] float32, zero points [K]) of tensor ``t``."""
        q = self.tensor(t).Quantization()
        if q is None or q.ScaleLength() == 0:
            raise NetworkError(self.where, field, "expected a quantized tensor (scale, zero point), "
                               "got none")
        return (np.asarray(q.ScaleAsNumpy(), np.float32),
                np.asarray(q.ZeroPointAsNumpy(), np.int64))

    def act(self, t, field: str):
        """Per-tensor (scale, zero point) of an int8 activation."""
        T = self.tensor(t)
        if T.Type() != _INT8:
            raise NetworkError(self.where, field, f"expected an int8 tensor, got tensor type {T.Type()} "
                               f"({T.Name().decode(errors='replace')})")
        s, z = self.quant(t, field)
        if s.size != 1:
            raise NetworkError(self.where, field, f"expected per-tensor activation quantization, "
                               f"got {s.size} scales")
        return float(s[0]), int(z[0])

    def data(self, t, dtype, field: str) -> np.ndarray:
        T = self.tensor(t)
        b = self.model.Buffers(T.Buffer())
        raw = b.DataAsNumpy() if b is not None and b.DataLength() else None
        if raw is None or isinstance(raw, int):
            off, size = (b.Offset(), b.Size()) if b is not None else (0, 0)
            if not off or not size:
                raise NetworkError(self.where, field, "expected a constant tensor, got no data")
            raw = np.frombuffer(self.buf, np.uint8, size, off)
        return np.frombuffer(np.asarray(raw, np.uint8).tobytes(), dtype).reshape(self.shape(t))


def _options(graph, op, cls):
    o = cls()
    bo = op.BuiltinOptions()
    if bo is None:
        return None
    o.Init(bo.Bytes, bo.Pos)
    return o


def _same_pads(size, kernel, stride, dilation=1):
    """TFLite's SAME padding (ComputePaddingHeightWidth): (before, after)."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _act_range(graph, where, fused, scale, zp):
    """TFLite's CalculateActivationRangeQuantized for int8."""
    if fused not in _ACTIVATIONS:
        raise NetworkError(graph.where, where, f"expected a fused activation NONE, RELU or RELU6, "
                           f"got activation code {fused}")
    lo, hi = INT8
    if fused in (1, 3):
        lo = max(lo, zp)
    if fused == 3:
        r = float(np.float32(6.0) / np.float32(scale))
        hi = min(hi, zp + int(math.floor(r + 0.5)))     # std::round of a positive value
    return lo, hi, fused != 0


def _chw(shape, graph, where):
    if len(shape) == 4 and shape[0] == 1:
        return (shape[3], shape[1], shape[2])
    if len(shape) == 2 and shape[0] == 1:
        return (shape[1],)
    raise NetworkError(graph.where, where, f"expected a [1, H, W, C] or [1, F] tensor, got {list(shape)}")


def load_tflite(path) -> QuantizedNetwork:
    """The :class:`QuantizedNetwork` of an int8 ``.tflite`` model (``rounding="tflite"``)."""
    path = Path(path)
    tfl = _tflite()
    if tfl is None:
        raise NetworkError(str(path), "file", "expected the 'tflite' package to read .tflite "
                           "files (pip install tflite), got it not installed")
    G = _Graph(path, tfl)
    g = G.g
    if g.InputsLength() != 1 or g.OutputsLength() != 1:
        raise NetworkError(G.where, "graph", f"expected one input and one output, got "
                           f"{g.InputsLength()} inputs and {g.OutputsLength()} outputs")
    x_t = int(g.Inputs(0))
    in_scale, in_zp = G.act(x_t, "input")
    input_shape = _chw(G.shape(x_t), G, "input")
    produced = {x_t: -1}          # tensor -> layer index (-1: the network input)
    layers: list[QLayer] = []
    shapes = {-1: input_shape}
    flat_from = {}                # layer index of a flatten -> the (C, H, W) it flattened
    softmax = False
    out_t = int(g.Outputs(0))

    for k in range(G.n_ops):
        op = g.Operators(k)
        name = G.op_name(op)
        where = f"operator {k} ({name})"
        ins = [int(t) for t in op.InputsAsNumpy()]
        outs = [int(t) for t in op.OutputsAsNumpy()]
        if softmax:
            raise NetworkError(G.where, where, "expected SOFTMAX only as the last operator, got "
                               "an operator after it")
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD",
                        "AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX"):
            raise NetworkError(G.where, where, f"expected one of the supported operators "
                               f"{', '.join(SUPPORTED_OPS)}, got {name}")
        src = ins[0]
        if src not in produced:
            raise NetworkError(G.where, where, "expected its input to be the network input or an "
                               "earlier operator's output, got a constant or unknown tensor")
        if name == "SOFTMAX":
            if k != G.n_ops - 1 or outs[0] != out_t or produced[src] != len(layers) - 1:
                raise NetworkError(G.where, where, "expected SOFTMAX only as the last operator, "
                                   "on the last layer's output")
            softmax = True
            out_t = src
            continue
        si, szp = G.act(src, f"{where}.input")
        so, szo = G.act(outs[0], f"{where}.output")
        ishape = shapes[produced[src]]
        oshape = _chw(G.shape(outs[0]), G, f"{where}.output")
        ql = QLayer(f"op{k}_{name.lower()}", "", ishape, oshape, si, szp, so, szo)
        prev = len(layers) - 1
        srcs = [produced[src]]

        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            dw = name == "DEPTHWISE_CONV_2D"
            o = _options(G, op, tfl.DepthwiseConv2DOptions if dw else tfl.Conv2DOptions)
            if len(ishape) != 3:
                raise NetworkError(G.where, where, f"expected a [1, H, W, C] input, got {list(ishape)}")
            if o.DilationHFactor() != 1 or o.DilationWFactor() != 1:
                raise NetworkError(G.where, where, f"expected dilation 1, got "
                                   f"{o.DilationHFactor()}x{o.DilationWFactor()}")
            if o.StrideH() != o.StrideW():
                raise NetworkError(G.where, where, f"expected equal strides, got "
                                   f"{o.StrideH()}x{o.StrideW()}")
            w_t = ins[1]
            if G.tensor(w_t).Type() != _INT8:
                raise NetworkError(G.where, f"{where}.filter", f"expected int8 weights, got tensor "
                                   f"type {G.tensor(w_t).Type()}")
            w = G.data(w_t, np.int8, f"{where}.filter").astype(np.int64)
            if dw:
                if w.shape[0] != 1:
                    raise NetworkError(G.where, f"{where}.filter", f"expected [1, H, W, M], got {list(w.shape)}")
                weight = w.transpose(3, 0, 1, 2)                 # [M, 1, R, S]
                dm = weight.shape[0] // ishape[0]
                if dm * ishape[0] != weight.shape[0]:
                    raise NetworkError(G.where, where, f"expected output channels a multiple of "
                                       f"{ishape[0]}, got {weight.shape[0]}")
                ql.kind, ql.depth_multiplier = "dwconv", dm
            else:
                weight = w.transpose(0, 3, 1, 2)                 # [M, C, R, S]
                if weight.shape[1] != ishape[0]:
                    raise NetworkError(G.where, f"{where}.filter", f"expected {ishape[0]} input "
                                       f"channels, got {weight.shape[1]}")
                ql.kind = "conv"
            r, s = weight.shape[2], weight.shape[3]
            stride = int(o.StrideH())
            if o.Padding() == _SAME:
                pt, pb = _same_pads(ishape[1], r, stride)
                pl, pr = _same_pads(ishape[2], s, stride)
            else:
                pt = pb = pl = pr = 0
            ql.kernel, ql.stride, ql.pads = (r, s), stride, (pt, pb, pl, pr)
            ql.padding = pt if len({pt, pb, pl, pr}) == 1 else 0
            _weights(G, where, ql, weight, ins, si, so)
            qmin, qmax, ql.relu = _act_range(G, where, o.FusedActivationFunction(), so, szo)
            ql.qmin, ql.qmax = qmin, qmax
            e = (ishape[1] + pt + pb - r) // stride + 1
            f = (ishape[2] + pl + pr - s) // stride + 1
            if oshape != (weight.shape[0], e, f):
                raise NetworkError(G.where, where, f"expected output [1, {e}, {f}, {weight.shape[0]}], "
                                   f"got {list(G.shape(outs[0]))}")
        elif name == "FULLY_CONNECTED":
            o = _options(G, op, tfl.FullyConnectedOptions)
            if o is not None and o.WeightsFormat() != 0:
                raise NetworkError(G.where, where, "expected DEFAULT weights format, got shuffled")
            w_t = ins[1]
            if G.tensor(w_t).Type() != _INT8:
                raise NetworkError(G.where, f"{where}.weights", f"expected int8 weights, got tensor "
                                   f"type {G.tensor(w_t).Type()}")
            weight = G.data(w_t, np.int8, f"{where}.weights").astype(np.int64)
            if len(ishape) != 1 or weight.ndim != 2 or weight.shape[1] != ishape[0]:
                raise NetworkError(G.where, where, f"expected a flat input of {weight.shape[-1]} "
                                   f"values (add a RESHAPE), got shape {list(ishape)}")
            chw = flat_from.get(produced[src])
            if chw is not None and chw[1] * chw[2] > 1:       # (h, w, c) columns -> (c, h, w)
                c, h, w_ = chw
                weight = weight.reshape(-1, h, w_, c).transpose(0, 3, 1, 2).reshape(weight.shape[0], -1)
            ql.kind = "fc"
            _weights(G, where, ql, weight, ins, si, so)
            fused = o.FusedActivationFunction() if o is not None else 0
            ql.qmin, ql.qmax, ql.relu = _act_range(G, where, fused, so, szo)
            if oshape != (weight.shape[0],):
                raise NetworkError(G.where, where, f"expected output [1, {weight.shape[0]}], got "
                                   f"{list(G.shape(outs[0]))}")
        elif name == "ADD":
            o = _options(G, op, tfl.AddOptions)
            src2 = ins[1]
            if src2 not in produced:
                raise NetworkError(G.where, where, "expected two activation inputs, got a constant")
            if shapes[produced[src2]] != ishape or oshape != ishape:
                raise NetworkError(G.where, where, f"expected equal shapes (no broadcasting), got "
                                   f"{list(ishape)} + {list(shapes[produced[src2]])} -> {list(oshape)}")
            s2, z2 = G.act(src2, f"{where}.input2")
            ql.kind, ql.in2_scale, ql.in2_zp, ql.left_shift = "add", s2, z2, 20
            srcs.append(produced[src2])
            # TFLite's add.cc Prepare (int8): scales as float32, arithmetic in double.
            twice_max = 2.0 * float(max(np.float32(si), np.float32(s2)))
            reals = (float(np.float32(si)) / twice_max, float(np.float32(s2)) / twice_max,
                     twice_max / ((1 << 20) * float(np.float32(so))))
            for nm, real in zip(("input1", "input2", "output"), reals):
                if not 0 < real < 1:
                    raise NetworkError(G.where, where, f"expected a {nm} multiplier in (0, 1), got {real}")
            pairs = [tflite_multiplier(v) for v in reals]
            ql.mult = np.array([p[0] for p in pairs], np.int64)
            ql.shift = np.array([p[1] for p in pairs], np.int64)
            fused = o.FusedActivationFunction() if o is not None else 0
            ql.qmin, ql.qmax, ql.relu = _act_range(G, where, fused, so, szo)
        elif name == "AVERAGE_POOL_2D":
            o = _options(G, op, tfl.Pool2DOptions)
            if len(ishape) != 3:
                raise NetworkError(G.where, where, f"expected a [1, H, W, C] input, got {list(ishape)}")
            if (si, szp) != (so, szo):
                raise NetworkError(G.where, where, f"expected the output's scale and zero point to "
                                   f"equal the input's, got {si:g}/{szp} -> {so:g}/{szo}")
            r, s = int(o.FilterHeight()), int(o.FilterWidth())
            # A stride along an axis with one output only never steps (global pooling).
            steps = {int(st) for st, n in ((o.StrideH(), oshape[1]), (o.StrideW(), oshape[2])) if n > 1}
            if len(steps) > 1:
                raise NetworkError(G.where, where, f"expected equal strides, got {o.StrideH()}x{o.StrideW()}")
            stride = steps.pop() if steps else 1
            if o.Padding() == _SAME:
                pt, pb = _same_pads(ishape[1], r, stride)
                pl, pr = _same_pads(ishape[2], s, stride)
            else:
                pt = pb = pl = pr = 0
            ql.kind, ql.kernel, ql.stride, ql.pads = "avgpool", (r, s), stride, (pt, pb, pl, pr)
            ql.qmin, ql.qmax, ql.relu = _act_range(G, where, o.FusedActivationFunction(), so, szo)
            e = (ishape[1] + pt + pb - r) // stride + 1
            f = (ishape[2] + pl + pr - s) // stride + 1
            if oshape != (ishape[0], e, f):
                raise NetworkError(G.where, where, f"expected output [1, {e}, {f}, {ishape[0]}], got "
                                   f"{list(G.shape(outs[0]))}")
        else:  # RESHAPE
            if (si, szp) != (so, szo):
                raise NetworkError(G.where, where, f"expected the output's scale and zero point to "
                                   f"equal the input's, got {si:g}/{szp} -> {so:g}/{szo}")
            if oshape != (math.prod(ishape),):
                raise NetworkError(G.where, where, f"expected a flatten to [1, {math.prod(ishape)}], "
                                   f"got {list(G.shape(outs[0]))}")
            ql.kind = "flatten"
            if len(ishape) == 3:
                flat_from[len(layers)] = ishape
        if srcs != [prev]:
            ql.inputs = srcs
        layers.append(ql)
        produced[outs[0]] = len(layers) - 1
        shapes[len(layers) - 1] = oshape

    if not layers or produced.get(out_t) != len(layers) - 1:
        raise NetworkError(G.where, "graph", "expected the output to be the last layer's output "
                           "(or its SOFTMAX), got another tensor")
    for j, layer in enumerate(layers):
        if layer.kind == "flatten" and j + 1 < len(layers) and len(layer.in_shape) == 3 \
                and layer.in_shape[1] * layer.in_shape[2] > 1:
            readers = [ql for k, ql in enumerate(layers)
                       if (ql.inputs is None and k == j + 1) or (ql.inputs is not None and j in ql.inputs)]
            if any(ql.kind != "fc" for ql in readers):
                raise NetworkError(G.where, layer.name, "expected a RESHAPE of an H x W > 1 map "
                                   "to feed FULLY_CONNECTED only (its order is (h, w, c))")
    return QuantizedNetwork(path.stem, input_shape, in_scale, in_zp, layers, fmt="int8",
                            rounding="tflite", softmax=softmax)


def _weights(G, where, ql, weight, ins, si, so):
    """Weights, per-channel scales, int32 bias and TFLite multipliers of conv / dwconv / fc."""
    m = weight.shape[0]
    ws, wz = G.quant(ins[1], f"{where}.filter")
    if np.any(wz != 0):
        raise NetworkError(G.where, f"{where}.filter", f"expected weight zero point 0, got "
                           f"{int(wz[wz != 0][0])}")
    if ws.size not in (1, m):
        raise NetworkError(G.where, f"{where}.filter", f"expected 1 or {m} scales, got {ws.size}")
    ws = np.broadcast_to(ws, (m,)).astype(np.float32)
    if len(ins) > 2 and ins[2] >= 0:
        if G.tensor(ins[2]).Type() != _INT32:
            raise NetworkError(G.where, f"{where}.bias", f"expected an int32 bias, got tensor "
                               f"type {G.tensor(ins[2]).Type()}")
        bias = G.data(ins[2], np.int32, f"{where}.bias").astype(np.int64).reshape(-1)
        if bias.size != m:
            raise NetworkError(G.where, f"{where}.bias", f"expected {m} values, got {bias.size}")
    else:
        bias = np.zeros(m, np.int64)
    # PopulateConvolutionQuantizationParams: double(input_scale) * double(filter_scale)
    # / double(output_scale), then QuantizeMultiplier per channel.
    pairs = [tflite_multiplier(float(np.float32(si)) * float(v) / float(np.float32(so))) for v in ws]
    ql.weight, ql.bias, ql.w_scale = weight, bias, ws.astype(np.float64)
    ql.mult = np.array([p[0] for p in pairs], np.int64)
    ql.shift = np.array([p[1] for p in pairs], np.int64)


def to_network(qnet: QuantizedNetwork, where: str):
    """The float :class:`Network` of an imported chain (weights dequantized), or a
    one-line :class:`NetworkError` saying why it has none."""
    from nnloom.gen.frontend.network import (
        Add, Conv2d, Dense, DepthwiseConv2d, Flatten, GlobalAvgPool, AvgPool, Network, ReLU, ReLU6,
    )

    layers, inputs, weights = [], [], {}
    index = {-1: -1}              # qnet layer -> index of its last float layer
    for i, ql in enumerate(qnet.layers):
        srcs = [index[j] for j in qnet.layer_inputs(i)]
        name = ql.name
        if ql.kind in ("conv", "dwconv", "fc"):
            w = ql.weight.astype(np.float64) * ql.w_scale.reshape((-1,) + (1,) * (ql.weight.ndim - 1))
            b = ql.bias.astype(np.float64) * ql.in_scale * ql.w_scale
            pads = tuple(int(v) for v in ql.pad4)
            if ql.kind == "conv":
                layer = Conv2d(name, w.shape[0], tuple(ql.kernel), ql.stride, ql.padding,
                               pads=None if len(set(pads)) == 1 else pads)
            elif ql.kind == "dwconv":
                layer = DepthwiseConv2d(name, tuple(ql.kernel), ql.stride, pads, ql.depth_multiplier)
            else:
                layer = Dense(name, w.shape[0])
            weights[f"{name}.weight"] = w.astype(np.float32)
            weights[f"{name}.bias"] = b.astype(np.float32)
        elif ql.kind == "add":
            layer = Add(name, tuple(srcs))
        elif ql.kind == "avgpool":
            c, h, w_ = ql.in_shape
            if tuple(ql.kernel) == (h, w_) and not any(ql.pad4):
                layer = GlobalAvgPool(name)
            elif ql.kernel[0] == ql.kernel[1] and not any(ql.pad4):
                layer = AvgPool(name, ql.kernel[0], ql.stride)
            else:
                raise NetworkError(where, name, "expected a global or unpadded square average pool "
                                   "for the float network, got a padded or rectangular window")
        elif ql.kind == "flatten":
            layer = Flatten(name)
        else:
            raise NetworkError(where, name, f"expected a layer kind of the float network, got {ql.kind!r}")
        layers.append(layer)
        inputs.append(srcs)
        if ql.relu:
            layers.append(ReLU6(f"{name}_relu6") if ql.qmax < 127 else ReLU(f"{name}_relu"))
            inputs.append([len(layers) - 2])
        index[i] = len(layers) - 1
    plain = all(src == [k - 1] for k, src in enumerate(inputs))
    return Network(qnet.name, qnet.input_shape, layers, weights, source=where,
                   inputs=None if plain else inputs)
