"""Small int8 TFLite models written at test time (no TensorFlow): the flatbuffer
is built with ``flatbuffers`` and the ``tflite`` package's generated builder
functions (``tflite.ModelStart`` ...).

For the LiteRT cross-checks of :mod:`nnloom.gen.frontend.loaders.tflite_import`:

* layer specs, in TFLite's own layouts (NHWC activations, conv filters
  [O, H, W, I], depthwise filters [1, H, W, M], fully connected weights
  [units, inputs] whose columns are in the (h, w, c) order of the flattened
  NHWC map): :func:`conv2d`, :func:`depthwise_conv2d`,
  :func:`average_pool2d`, :func:`reshape`, :func:`fully_connected`;
* :func:`write_tflite` - a chain of such layers on a ``[1, H, W, C]`` (or
  ``[1, F]``) int8 input as a ``.tflite`` file (shapes inferred);
* :func:`random_chain` - seeded random weights with the output quantization
  of every layer calibrated on random inputs (a float forward pass), so the
  int8 outputs use their range without saturating everywhere.

Quantization follows TFLite's int8 spec: activations per tensor (scale, zero
point); conv / depthwise filters per output channel (quantized dimension 0,
resp. 3), fully connected weights per tensor (or per channel); weight zero
points 0; int32 biases with scale ``float32(in_scale) * float32(w_scale)``
and zero point 0.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = [
    "average_pool2d",
    "conv2d",
    "depthwise_conv2d",
    "fully_connected",
    "layer_shapes",
    "random_chain",
    "reshape",
    "write_tflite",
]

_ACT = {"NONE": 0, "RELU": 1, "RELU6": 3}
_PAD = {"SAME": 0, "VALID": 1}
# (builtin code, op version) - versions within LiteRT's registered ranges
_OPS = {"CONV_2D": (3, 3), "DEPTHWISE_CONV_2D": (4, 3), "FULLY_CONNECTED": (9, 4),
        "AVERAGE_POOL_2D": (1, 2), "RESHAPE": (22, 1)}
_INT32, _INT8 = 2, 9


# -- layer specs ------------------------------------------------------------------------

def conv2d(weight, bias, w_scale, out_scale, out_zp, padding="SAME", stride=1, act="NONE"):
    """CONV_2D: ``weight`` int8 [O, KH, KW, I], ``bias`` int32 [O], ``w_scale`` [O]."""
    return {"op": "CONV_2D", "weight": np.asarray(weight, np.int8), "bias": np.asarray(bias, np.int32),
                "w_scale": np.asarray(w_scale, np.float32).reshape(-1), "out_scale": float(out_scale),
                "out_zp": int(out_zp), "padding": padding, "stride": int(stride), "act": act}


def depthwise_conv2d(weight, bias, w_scale, out_scale, out_zp, padding="SAME", stride=1,
                     act="NONE", depth_multiplier=1):
    """DEPTHWISE_CONV_2D: ``weight`` int8 [1, KH, KW, C * depth_multiplier]."""
    d = conv2d(weight, bias, w_scale, out_scale, out_zp, padding, stride, act)
    d.update(op="DEPTHWISE_CONV_2D", depth_multiplier=int(depth_multiplier))
    return d


def average_pool2d(filter_hw, stride=1, padding="VALID", act="NONE"):
    """AVERAGE_POOL_2D (output quantization = input quantization)."""
    return {"op": "AVERAGE_POOL_2D", "filter": tuple(int(v) for v in filter_hw), "stride": int(stride),
                "padding": padding, "act": act}


def reshape(shape=(1, -1)):
    """RESHAPE with a constant int32 shape tensor (and ``new_shape`` option)."""
    return {"op": "RESHAPE", "shape": tuple(int(v) for v in shape)}


def fully_connected(weight, bias, w_scale, out_scale, out_zp, act="NONE", keep_num_dims=False):
    """FULLY_CONNECTED: ``weight`` int8 [units, inputs], ``w_scale`` [1] or [units]."""
    return {"op": "FULLY_CONNECTED", "weight": np.asarray(weight, np.int8),
                "bias": None if bias is None else np.asarray(bias, np.int32),
                "w_scale": np.asarray(w_scale, np.float32).reshape(-1), "out_scale": float(out_scale),
                "out_zp": int(out_zp), "act": act, "keep_num_dims": bool(keep_num_dims)}


# -- shapes -----------------------------------------------------------------------------

def _spatial(n, k, stride, padding):
    return (n + stride - 1) // stride if padding == "SAME" else (n - k) // stride + 1


def _out_shape(layer, shape):
    op = layer["op"]
    if op in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = layer["weight"]
        _, h, wd, _ = shape
        k = (w.shape[1], w.shape[2])
        m = w.shape[0] if op == "CONV_2D" else w.shape[3]
        return (1, _spatial(h, k[0], layer["stride"], layer["padding"]),
                _spatial(wd, k[1], layer["stride"], layer["padding"]), m)
    if op == "AVERAGE_POOL_2D":
        _, h, wd, c = shape
        k = layer["filter"]
        return (1, _spatial(h, k[0], layer["stride"], layer["padding"]),
                _spatial(wd, k[1], layer["stride"], layer["padding"]), c)
    if op == "RESHAPE":
        s = list(layer["shape"])
        if -1 in s:
            s[s.index(-1)] = math.prod(shape) // -math.prod(s)
        return tuple(s)
    units, n_in = layer["weight"].shape          # FULLY_CONNECTED
    if layer["keep_num_dims"]:
        return tuple(shape[:-1]) + (units,)
    return (math.prod(shape) // n_in, units)


def layer_shapes(input_shape, layers):
    """The NHWC (or [1, F]) output shape of every layer."""
    shapes, shape = [], tuple(input_shape)
    for layer in layers:
        shape = _out_shape(layer, shape)
        shapes.append(shape)
    return shapes


# -- the flatbuffer ---------------------------------------------------------------------

class _Writer:
    def __init__(self):
        import flatbuffers
        import tflite

        self.t = tflite
        self.b = flatbuffers.Builder(4096)
        self.buffers = [b""]            # buffer 0: empty (TFLite's convention)
        self.tensors = []               # (name, shape, type, buffer, quant)
        self.opcodes = {}               # op name -> index
        self.ops = []                   # (opcode index, inputs, outputs, options type, builder fn)

    def tensor(self, name, shape, ttype, quant=None, data=None):
        buf = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data).tobytes())
            buf = len(self.buffers) - 1
        self.tensors.append((name, tuple(int(v) for v in shape), ttype, buf, quant))
        return len(self.tensors) - 1

    def op(self, name, inputs, outputs, opt_type, opt_fn):
        idx = self.opcodes.setdefault(name, len(self.opcodes))
        self.ops.append((idx, inputs, outputs, opt_type, opt_fn))

    # helpers
    def _vec(self, start, values, prepend):
        start(self.b, len(values))
        for v in reversed(values):
            prepend(v)
        return self.b.EndVector()

    def _ints(self, start, values):
        return self._vec(start, [int(v) for v in values], self.b.PrependInt32)

    def _quant(self, q):
        t, b = self.t, self.b
        scale, zp, dim = q
        sv = self._vec(t.QuantizationParametersStartScaleVector, [float(v) for v in scale],
                       b.PrependFloat32)
        zv = self._vec(t.QuantizationParametersStartZeroPointVector, [int(v) for v in zp],
                       b.PrependInt64)
        t.QuantizationParametersStart(b)
        t.QuantizationParametersAddScale(b, sv)
        t.QuantizationParametersAddZeroPoint(b, zv)
        t.QuantizationParametersAddQuantizedDimension(b, dim)
        return t.QuantizationParametersEnd(b)

    def finish(self, inputs, outputs) -> bytes:
        t, b = self.t, self.b
        # buffers (data 16-byte aligned)
        buf_offs = []
        for data in self.buffers:
            dv = None
            if data:
                b.StartVector(1, len(data), 16)
                b.head = b.head - len(data)
                b.Bytes[b.head:b.head + len(data)] = data
                dv = b.EndVector()
            t.BufferStart(b)
            if dv is not None:
                t.BufferAddData(b, dv)
            buf_offs.append(t.BufferEnd(b))
        # tensors
        ten_offs = []
        for name, shape, ttype, buf, quant in self.tensors:
            nm = b.CreateString(name)
            sh = self._ints(t.TensorStartShapeVector, shape)
            qo = self._quant(quant) if quant is not None else None
            t.TensorStart(b)
            t.TensorAddShape(b, sh)
            t.TensorAddType(b, ttype)
            t.TensorAddBuffer(b, buf)
            t.TensorAddName(b, nm)
            if qo is not None:
                t.TensorAddQuantization(b, qo)
            ten_offs.append(t.TensorEnd(b))
        # operators
        op_offs = []
        for idx, ins, outs, opt_type, opt_fn in self.ops:
            iv = self._ints(t.OperatorStartInputsVector, ins)
            ov = self._ints(t.OperatorStartOutputsVector, outs)
            oo = opt_fn(b)
            t.OperatorStart(b)
            t.OperatorAddOpcodeIndex(b, idx)
            t.OperatorAddInputs(b, iv)
            t.OperatorAddOutputs(b, ov)
            t.OperatorAddBuiltinOptionsType(b, opt_type)
            t.OperatorAddBuiltinOptions(b, oo)
            op_offs.append(t.OperatorEnd(b))
        # subgraph
        tv = self._vec(t.SubGraphStartTensorsVector, ten_offs, b.PrependUOffsetTRelative)
        iv = self._ints(t.SubGraphStartInputsVector, inputs)
        ov = self._ints(t.SubGraphStartOutputsVector, outputs)
        opv = self._vec(t.SubGraphStartOperatorsVector, op_offs, b.PrependUOffsetTRelative)
        nm = b.CreateString("main")
        t.SubGraphStart(b)
        t.SubGraphAddTensors(b, tv)
        t.SubGraphAddInputs(b, iv)
        t.SubGraphAddOutputs(b, ov)
        t.SubGraphAddOperators(b, opv)
        t.SubGraphAddName(b, nm)
        sg = t.SubGraphEnd(b)
        # operator codes
        oc_offs = []
        for name in sorted(self.opcodes, key=self.opcodes.get):
            code, version = _OPS[name]
            t.OperatorCodeStart(b)
            t.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            t.OperatorCodeAddBuiltinCode(b, code)
            t.OperatorCodeAddVersion(b, version)
            oc_offs.append(t.OperatorCodeEnd(b))
        ocv = self._vec(t.ModelStartOperatorCodesVector, oc_offs, b.PrependUOffsetTRelative)
        sgv = self._vec(t.ModelStartSubgraphsVector, [sg], b.PrependUOffsetTRelative)
        bv = self._vec(t.ModelStartBuffersVector, buf_offs, b.PrependUOffsetTRelative)
        desc = b.CreateString("nnloom.sim.tflite_models")
        t.ModelStart(b)
        t.ModelAddVersion(b, 3)
        t.ModelAddOperatorCodes(b, ocv)
        t.ModelAddSubgraphs(b, sgv)
        t.ModelAddDescription(b, desc)
        t.ModelAddBuffers(b, bv)
        b.Finish(t.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _conv_options(t, layer):
    act, pad, st = _ACT[layer["act"]], _PAD[layer["padding"]], layer["stride"]
    if layer["op"] == "CONV_2D":
        def fn(b):
            t.Conv2DOptionsStart(b)
            t.Conv2DOptionsAddPadding(b, pad)
            t.Conv2DOptionsAddStrideW(b, st)
            t.Conv2DOptionsAddStrideH(b, st)
            t.Conv2DOptionsAddFusedActivationFunction(b, act)
            t.Conv2DOptionsAddDilationWFactor(b, 1)
            t.Conv2DOptionsAddDilationHFactor(b, 1)
            return t.Conv2DOptionsEnd(b)
        return t.BuiltinOptions.Conv2DOptions, fn
    dm = layer["depth_multiplier"]

    def fn(b):
        t.DepthwiseConv2DOptionsStart(b)
        t.DepthwiseConv2DOptionsAddPadding(b, pad)
        t.DepthwiseConv2DOptionsAddStrideW(b, st)
        t.DepthwiseConv2DOptionsAddStrideH(b, st)
        t.DepthwiseConv2DOptionsAddDepthMultiplier(b, dm)
        t.DepthwiseConv2DOptionsAddFusedActivationFunction(b, act)
        t.DepthwiseConv2DOptionsAddDilationWFactor(b, 1)
        t.DepthwiseConv2DOptionsAddDilationHFactor(b, 1)
        return t.DepthwiseConv2DOptionsEnd(b)
    return t.BuiltinOptions.DepthwiseConv2DOptions, fn


def write_tflite(path, input_shape, in_scale, in_zp, layers) -> Path:
    """Write the chain ``layers`` on an int8 input ``input_shape`` (NHWC, batch 1) with
    quantization (``in_scale``, ``in_zp``) to ``path``; the last layer's output is the
    graph output.  Returns the path."""
    w = _Writer()
    t = w.t
    shape = tuple(input_shape)
    qs, qz = np.float32(in_scale), int(in_zp)
    cur = w.tensor("input", shape, _INT8, ([qs], [qz], 0))
    first = cur
    for k, layer in enumerate(layers):
        op = layer["op"]
        oshape = _out_shape(layer, shape)
        if op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            ws = layer["w_scale"].astype(np.float32)
            wt = layer["weight"]
            qdim = 3 if op == "DEPTHWISE_CONV_2D" else 0
            wi = w.tensor(f"op{k}/weight", wt.shape, _INT8, (ws, [0] * ws.size, qdim), wt)
            ins = [cur, wi]
            if layer["bias"] is not None:
                bs = (np.float32(qs) * ws).astype(np.float32)
                bi = w.tensor(f"op{k}/bias", layer["bias"].shape, _INT32, (bs, [0] * bs.size, 0),
                              layer["bias"].astype("<i4"))
                ins.append(bi)
            else:
                ins.append(-1)
            os_, oz = np.float32(layer["out_scale"]), layer["out_zp"]
            out = w.tensor(f"op{k}/out", oshape, _INT8, ([os_], [oz], 0))
            if op == "FULLY_CONNECTED":
                act, keep = _ACT[layer["act"]], layer["keep_num_dims"]

                def fn(b, act=act, keep=keep):
                    t.FullyConnectedOptionsStart(b)
                    t.FullyConnectedOptionsAddFusedActivationFunction(b, act)
                    t.FullyConnectedOptionsAddWeightsFormat(b, 0)
                    t.FullyConnectedOptionsAddKeepNumDims(b, keep)
                    return t.FullyConnectedOptionsEnd(b)
                w.op(op, ins, [out], t.BuiltinOptions.FullyConnectedOptions, fn)
            else:
                w.op(op, ins, [out], *_conv_options(t, layer))
            qs, qz = os_, oz
        elif op == "AVERAGE_POOL_2D":
            out = w.tensor(f"op{k}/out", oshape, _INT8, ([qs], [qz], 0))
            fh, fw = layer["filter"]
            pad, st, act = _PAD[layer["padding"]], layer["stride"], _ACT[layer["act"]]

            def fn(b, pad=pad, st=st, fh=fh, fw=fw, act=act):
                t.Pool2DOptionsStart(b)
                t.Pool2DOptionsAddPadding(b, pad)
                t.Pool2DOptionsAddStrideW(b, st)
                t.Pool2DOptionsAddStrideH(b, st)
                t.Pool2DOptionsAddFilterWidth(b, fw)
                t.Pool2DOptionsAddFilterHeight(b, fh)
                t.Pool2DOptionsAddFusedActivationFunction(b, act)
                return t.Pool2DOptionsEnd(b)
            w.op(op, [cur], [out], t.BuiltinOptions.Pool2DOptions, fn)
        elif op == "RESHAPE":
            new = list(layer["shape"])
            si = w.tensor(f"op{k}/shape", (len(new),), _INT32, None, np.asarray(new, "<i4"))
            out = w.tensor(f"op{k}/out", oshape, _INT8, ([qs], [qz], 0))

            def fn(b, new=new):
                nv = w._ints(t.ReshapeOptionsStartNewShapeVector, new)
                t.ReshapeOptionsStart(b)
                t.ReshapeOptionsAddNewShape(b, nv)
                return t.ReshapeOptionsEnd(b)
            w.op(op, [cur, si], [out], t.BuiltinOptions.ReshapeOptions, fn)
        else:
            raise ValueError(f"layers[{k}]: unsupported op {op!r}")
        cur, shape = out, oshape
    path = Path(path)
    path.write_bytes(w.finish([first], [cur]))
    return path


# -- seeded random chains -----------------------------------------------------------------

def _float_conv(x, w, b, stride, padding, depthwise, dm=1):
    """NHWC float conv (batch first): x [N, H, W, C]; w [O, KH, KW, I] or [1, KH, KW, M]."""
    n, h, wd, _c = x.shape
    kh, kw = w.shape[1], w.shape[2]
    oh, ow = _spatial(h, kh, stride, padding), _spatial(wd, kw, stride, padding)
    if padding == "SAME":
        th = max((oh - 1) * stride + kh - h, 0)
        tw = max((ow - 1) * stride + kw - wd, 0)
        x = np.pad(x, ((0, 0), (th // 2, th - th // 2), (tw // 2, tw - tw // 2), (0, 0)))
    m = w.shape[3] if depthwise else w.shape[0]
    y = np.zeros((n, oh, ow, m))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + (oh - 1) * stride + 1:stride, j:j + (ow - 1) * stride + 1:stride, :]
            if depthwise:
                y += np.repeat(patch, dm, axis=3) * w[0, i, j, :]
            else:
                y += patch @ w[:, i, j, :].T
    return y + b


def _float_pool(x, k, stride, padding):
    n, h, wd, c = x.shape
    oh, ow = _spatial(h, k[0], stride, padding), _spatial(wd, k[1], stride, padding)
    if padding != "VALID":
        raise ValueError("random_chain: only VALID average pools")
    y = np.zeros((n, oh, ow, c))
    for i in range(k[0]):
        for j in range(k[1]):
            y += x[:, i:i + (oh - 1) * stride + 1:stride, j:j + (ow - 1) * stride + 1:stride, :]
    return y / (k[0] * k[1])


def _calibrate(y, lo_pct=0.5, hi_pct=99.5):
    """Output (scale, zero point) covering the bulk of ``y`` (pre-activation, real units)."""
    lo, hi = min(np.percentile(y, lo_pct), 0.0), max(np.percentile(y, hi_pct), 0.0)
    scale = max(hi - lo, 1e-6) / 255.0
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return float(np.float32(scale)), zp


def _fake_quant(y, scale, zp, act):
    q = np.clip(np.round(y / scale) + zp, -128, 127)
    if act in ("RELU", "RELU6"):
        q = np.maximum(q, zp)
    if act == "RELU6":
        q = np.minimum(q, zp + round(6.0 / scale))
    return (q - zp) * scale


def random_chain(rng, input_shape, in_scale, in_zp, spec, n_calib=64):
    """Layer specs for ``spec`` with seeded random weights and calibrated quantization.

    ``spec`` is a list of ``(op, options)``:

    * ``("CONV_2D", dict(out_channels, kernel=(3, 3), padding, stride, act))``
    * ``("DEPTHWISE_CONV_2D", dict(depth_multiplier, kernel, padding, stride, act))``
    * ``("AVERAGE_POOL_2D", dict(filter, stride))`` (VALID)
    * ``("RESHAPE", {})`` (to ``[1, -1]``)
    * ``("FULLY_CONNECTED", dict(units, act, keep_num_dims, per_channel=False))``

    Weights are uniform int8 codes, per-channel weight scales are drawn around
    ``1 / 128``, biases are a fraction of the accumulator's spread, and each
    output's (scale, zero point) covers the 0.5 - 99.5 percentiles of its
    pre-activation value on ``n_calib`` random input codes.
    """
    x = (rng.integers(-128, 128, (n_calib, *input_shape[1:])) - in_zp) * float(np.float32(in_scale))
    layers, shape, s_in = [], tuple(input_shape), float(np.float32(in_scale))
    for op, o in spec:
        if op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            if op == "CONV_2D":
                kh, kw = o.get("kernel", (3, 3))
                m = o["out_channels"]
                wq = rng.integers(-127, 128, (m, kh, kw, shape[3]))
            elif op == "DEPTHWISE_CONV_2D":
                kh, kw = o.get("kernel", (3, 3))
                m = shape[3] * o.get("depth_multiplier", 1)
                wq = rng.integers(-127, 128, (1, kh, kw, m))
            else:
                m = o["units"]
                n_in = math.prod(shape) if not o.get("keep_num_dims") else shape[-1]
                wq = rng.integers(-127, 128, (m, n_in))
            per_channel = op != "FULLY_CONNECTED" or o.get("per_channel", False)
            ws = (rng.uniform(0.5, 2.0, m if per_channel else 1) / 128).astype(np.float32)
            wsm = np.broadcast_to(ws, (m,)).astype(np.float64)
            wf = wq * (wsm if op == "DEPTHWISE_CONV_2D" else
                       wsm.reshape((-1,) + (1,) * (wq.ndim - 1)))
            if op == "FULLY_CONNECTED":
                acc = x.reshape(len(x), -1) @ wf.T
            else:
                acc = _float_conv(x, wf, 0.0, o.get("stride", 1), o.get("padding", "SAME"),
                                  op == "DEPTHWISE_CONV_2D", o.get("depth_multiplier", 1))
            spread = acc.reshape(-1, m).std(axis=0) + 1e-9
            bscale = np.float32(s_in) * np.broadcast_to(ws, (m,)).astype(np.float32)
            bias = np.round(rng.uniform(-0.5, 0.5, m) * spread / bscale).astype(np.int32)
            y = acc + bias * bscale.astype(np.float64)
            act = o.get("act", "NONE")
            os_, oz = _calibrate(y)
            if op == "CONV_2D":
                layer = conv2d(wq, bias, ws, os_, oz, o.get("padding", "SAME"), o.get("stride", 1), act)
            elif op == "DEPTHWISE_CONV_2D":
                layer = depthwise_conv2d(wq, bias, ws, os_, oz, o.get("padding", "SAME"),
                                         o.get("stride", 1), act, o.get("depth_multiplier", 1))
            else:
                layer = fully_connected(wq, bias, ws, os_, oz, act, o.get("keep_num_dims", False))
            x = _fake_quant(y, os_, oz, act)
            if op == "FULLY_CONNECTED":
                x = x.reshape(len(x), *_out_shape(layer, shape)[1:])
            s_in = os_
        elif op == "AVERAGE_POOL_2D":
            layer = average_pool2d(o["filter"], o.get("stride", 1), "VALID", o.get("act", "NONE"))
            x = _float_pool(x, layer["filter"], layer["stride"], "VALID")
        elif op == "RESHAPE":
            layer = reshape(o.get("shape", (1, -1)))
            x = x.reshape(len(x), -1)
        else:
            raise ValueError(f"random_chain: unsupported op {op!r}")
        shape = _out_shape(layer, shape)
        layers.append(layer)
    return layers
