"""Quantized ONNX graphs (QDQ and QLinear) -> :class:`nnloom.gen.frontend.qtypes.QLayer` list.

How an imported graph is read (see docs/quantization.md):

* ``uint8`` activations become int8 by subtracting 128 from the values and
  the zero point (``real = s * (q - zp)`` is unchanged).
* Weights are int8 or uint8 (shifted to int8 with their zero point), per
  tensor or per output channel; a zero point other than 0 becomes the
  layer's ``w_zp`` (exact in the golden model, refused by the accelerator);
  biases int32 in the scale ``x_scale * w_scale`` (a bias in another scale,
  or in float, is rounded half to even into that scale).
* QDQ: ``DequantizeLinear -> float op [-> Relu] -> QuantizeLinear`` is one
  integer layer with the Q's scale and zero point; a Relu before the Q is
  fused (``qmin = out_zp``).  MaxPool, Flatten and Reshape pass scales
  through (a MaxPool whose Q changes them is rejected).
* QLinear: ``QLinearConv``, ``QLinearMatMul`` (no bias), ``QGemm`` and
  ``QLinearAveragePool`` (com.microsoft) map one to one; ``QLinearAdd``
  (com.microsoft) of a constant after a MatMul is an ``addconst`` layer
  (also ``DequantizeLinear -> Add(DequantizeLinear(const)) -> QuantizeLinear``
  in QDQ, which onnxruntime fuses into it; a Relu between is fused); ``MaxPool`` / ``Flatten`` / ``Reshape`` work on the int8
  tensor; ``Relu`` on an int8 tensor needs zero point 0 (it is ``max(q, 0)``).
* Each conv / fc records whether onnxruntime computes it with its U8S8
  kernel (``QLayer.u8s8``: a QLinear operator on uint8 input with int8
  weights, or a QDQ group its graph optimizer fuses into one; the rules are
  above :func:`_ort_u8`), whose products depend on the CPU
  (:mod:`nnloom.gen.frontend.qtypes`, ``"mlas"``).
"""

from __future__ import annotations

import numpy as np

from nnloom.gen.frontend.loaders.onnx_import import Act, Const
from nnloom.gen.frontend.network import ReLU
from nnloom.gen.frontend.qtypes import INT8, QLayer, multiplier_from_real

__all__ = ["step", "finish", "act_params"]

_PASS = ("Flatten", "Reshape", "Identity", "Dropout")


def act_params(imp, node, si, zi):
    """(scale, int8 zero point, was_uint8) of an activation quantization."""
    s = imp.get(node, si, Const)
    if s is None or s.value.size != 1 or not float(s.value.reshape(-1)[0]) > 0:
        imp.fail(node, "expected a positive per-tensor activation scale, got "
                 + ("nothing" if s is None else str(s.value.tolist())))
    z = imp.get(node, zi, Const, optional=True)
    if z is None:
        return float(s.value.reshape(-1)[0]), -128, True   # default zero point: uint8 0
    if z.value.dtype not in (np.int8, np.uint8) or z.value.size != 1:
        imp.fail(node, f"expected an int8 or uint8 per-tensor zero point, got {z.value.dtype} "
                 f"of shape {list(z.value.shape)}")
    u8 = z.value.dtype == np.uint8
    return float(s.value.reshape(-1)[0]), int(z.value.reshape(-1)[0]) - (128 if u8 else 0), u8


def _dequant_const(imp, node, q, scale, zp, axis):
    scale = np.asarray(scale, np.float64)
    zp = np.zeros(1, np.int64) if zp is None else np.asarray(zp).astype(np.int64)
    shape = [1] * q.ndim
    if scale.size > 1:
        if q.ndim == 0 or q.shape[axis] != scale.size:
            imp.fail(node, f"expected {scale.size} values along axis {axis}, got shape {list(q.shape)}")
        shape[axis] = -1
    value = (q.astype(np.float64) - zp.reshape(shape if zp.size > 1 else [])) * scale.reshape(
        shape if scale.size > 1 else [])
    return Const(value.astype(np.float32), q=q, scale=scale.reshape(-1), zp=zp.reshape(-1))


def _weights(imp, node, w, m, trans):
    """int8 weight [M, ...] (fc: [out, in]), per-channel scale [M] and zero
    point [M] (None when every zero point is 0).  uint8 weights are shifted
    to int8 with their zero point (``real = s * (q - zp)`` is unchanged)."""
    if w.q is None:
        imp.fail(node, "expected a quantized weight (through DequantizeLinear), got a float initializer")
    if w.q.dtype not in (np.int8, np.uint8):
        imp.fail(node, f"expected int8 or uint8 weights, got {w.q.dtype}")
    off = 128 if w.q.dtype == np.uint8 else 0
    q = w.q.astype(np.int64) - off
    q = q.T if trans else q
    if w.scale.size not in (1, m):
        imp.fail(node, f"expected 1 or {m} weight scales, got {w.scale.size}")
    zp = np.asarray(w.zp, np.int64).reshape(-1) - off
    if zp.size not in (1, m):
        imp.fail(node, f"expected 1 or {m} weight zero points, got {zp.size}")
    zp = np.broadcast_to(zp, (m,)).astype(np.int64)
    return q, np.broadcast_to(w.scale, (m,)).astype(np.float64), (zp if np.any(zp != 0) else None)


def _bias(imp, node, b, in_scale, w_scale, m):
    if b is None:
        return np.zeros(m, np.int64)
    acc_scale = in_scale * w_scale
    if b.q is not None and b.q.dtype == np.int32 and np.all(b.zp == 0) and b.scale is not None and \
            b.scale.size in (1, m) and \
            np.allclose(np.broadcast_to(b.scale, (m,)), acc_scale, rtol=1e-6, atol=0):
        return imp.bias_vector(node, b.q, m).astype(np.int64)
    return np.rint(imp.bias_vector(node, b.value, m).astype(np.float64) / acc_scale).astype(np.int64)


def _emit(imp, layer, in_act, shape_out, out_scale, out_zp, relu=False, w=None, b=None,
          trans=False, float_weights=None, u8s8=None):
    """Append the float layer and its QLayer (``u8s8``: see :func:`_u8s8_qlinear`)."""
    kind = "avgpool" if layer.kind == "gavgpool" else layer.kind
    ql = QLayer(layer.name, kind, in_act.shape, shape_out, in_act.scale, in_act.zp, out_scale, out_zp,
                relu=relu, qmin=out_zp if relu else INT8[0], u8s8=u8s8 if kind in ("conv", "fc") else None)
    if kind in ("conv", "fc", "dwconv"):
        m = shape_out[0]
        ql.weight, ql.w_scale, ql.w_zp = _weights(imp, imp._node, w, m, trans)
        ql.bias = _bias(imp, imp._node, b, in_act.scale, ql.w_scale, m)
        if kind == "conv":
            ql.kernel, ql.stride, ql.padding = layer.kernel, layer.stride, layer.padding
            ql.pads = None if layer.pads is None else tuple(layer.pads)
        elif kind == "dwconv":
            ql.kernel, ql.stride, ql.pads = layer.kernel, layer.stride, tuple(layer.pads)
            ql.padding = layer.pads[0] if len(set(layer.pads)) == 1 else 0
            ql.depth_multiplier = layer.depth_multiplier
        mults = [multiplier_from_real(in_act.scale * s / out_scale) for s in ql.w_scale]
        ql.mult = np.array([m_ for m_, _ in mults], np.int64)
        ql.shift = np.array([s_ for _, s_ in mults], np.int64)
        bshape = (-1, *[1] * (ql.weight.ndim - 1))
        wzp = 0 if ql.w_zp is None else ql.w_zp.reshape(bshape)
        wf = ((ql.weight - wzp) * ql.w_scale.reshape(bshape)).astype(np.float32)
        float_weights = {f"{layer.name}.weight": wf}
        if getattr(layer, "bias", True):
            float_weights[f"{layer.name}.bias"] = (ql.bias * in_act.scale * ql.w_scale).astype(np.float32)
    elif kind == "avgpool":
        if layer.kind == "gavgpool":        # the window of the whole input
            ql.kernel, ql.stride = tuple(in_act.shape[1:]), 1
        else:
            ql.kernel, ql.stride = (layer.kernel, layer.kernel), layer.step
        m_, s_ = multiplier_from_real(in_act.scale / (out_scale * ql.kernel[0] * ql.kernel[1]))
        ql.mult, ql.shift = np.array([m_], np.int64), np.array([s_], np.int64)
    elif kind == "maxpool":
        ql.kernel, ql.stride = (layer.kernel, layer.kernel), layer.step
    elif kind == "relu" and (in_act.scale, in_act.zp) != (out_scale, out_zp):
        m_, s_ = multiplier_from_real(in_act.scale / out_scale)
        ql.mult, ql.shift = np.array([m_], np.int64), np.array([s_], np.int64)
    imp.add_layer(layer, in_act.shape, float_weights, src=[in_act.fsrc])
    if relu:
        imp.add_layer(ReLU(imp.name(imp._node, "relu")), shape_out)
    return _append(imp, ql, [in_act], shape_out)


def _append(imp, ql, ins, shape_out):
    """Append ``ql`` reading the quantized layers of ``ins``; its output Act
    (the float network's last layer stands for it)."""
    srcs = [a.qsrc for a in ins]
    ql.inputs = None if srcs == [len(imp.qlayers) - 1] else srcs
    imp.qlayers.append(ql)
    return Act(tuple(shape_out), "q", ql.out_scale, ql.out_zp, fsrc=len(imp.layers) - 1,
               qsrc=len(imp.qlayers) - 1)


def _add2(imp, node, a, b, out_scale, out_zp, u8, relu=False):
    """A residual add of two quantized tensors of one shape (QLinearAdd, or
    DequantizeLinear x 2 -> Add -> QuantizeLinear, which onnxruntime fuses
    into it): an ``add`` layer in the model's own codes (``raw_offset``)."""
    from nnloom.gen.frontend.network import Add

    for x in (a, b):
        if bool(x.pending.get("u8")) != u8:
            imp.fail(node, "expected both inputs and the output in one type (int8 or uint8)")
    layer = Add(imp.name(node, "add"))
    ql = QLayer(layer.name, "add", a.shape, a.shape, a.scale, a.zp, out_scale, out_zp, relu=relu,
                qmin=out_zp if relu else INT8[0], in2_scale=b.scale, in2_zp=b.zp,
                raw_offset=128 if u8 else 0)
    mults = [multiplier_from_real(x.scale / out_scale) for x in (a, b)]
    sh = max(s_ for _, s_ in mults)
    ql.mult = np.array([min(int(round(x.scale / out_scale * 2.0 ** sh)), (1 << 31) - 1) for x in (a, b)], np.int64)
    ql.shift = np.array([sh, sh], np.int64)
    imp.add_layer(layer, a.shape, src=[a.fsrc, b.fsrc])
    if relu:
        imp.add_layer(ReLU(imp.name(node, "relu")), a.shape)
    return _u8(_append(imp, ql, [a, b], a.shape), u8)


def _addconst(imp, node, act, c, out_scale, out_zp, u8, relu=False):
    """A constant vector added to a flat quantized tensor and requantized
    (QLinearAdd, or DequantizeLinear -> Add -> QuantizeLinear): the
    ``addconst`` layer, onnxruntime's float32 arithmetic.  The float network
    folds the constant into the bias of the fully connected layer before."""
    if c is None or c.q is None:
        imp.fail(node, "expected Add of a quantized constant (through DequantizeLinear) or of a "
                 "MatMul bias before its QuantizeLinear, got a float tensor (residual add is not supported)")
    if len(act.shape) != 1:
        imp.fail(node, f"expected Add of a constant on a flat [N, F] tensor, got [N, "
                 f"{', '.join(map(str, act.shape))}]")
    f = act.shape[0]
    q, scale, zp = np.asarray(c.q), np.asarray(c.scale).reshape(-1), np.asarray(c.zp).reshape(-1)
    want = np.uint8 if act.pending.get("u8") else np.int8
    if q.dtype != want or scale.size != 1 or zp.size != 1:
        imp.fail(node, f"expected a per-tensor {np.dtype(want).name} constant (the activations' type), got "
                 f"{q.dtype} with {scale.size} scale(s) and {zp.size} zero point(s)")
    if u8 != (want == np.uint8):
        imp.fail(node, "expected the output in the input's type")
    off = 128 if want == np.uint8 else 0
    const = imp.bias_vector(node, q, f).astype(np.int64) - off
    last = imp.layers[-1] if imp.layers else None
    if last is None or last.kind != "fc" or imp.qlayers[-1].kind != "fc" or \
            tuple(imp.qlayers[-1].out_shape) != tuple(act.shape) or act.qsrc != len(imp.qlayers) - 1:
        imp.fail(node, "expected Add of a constant right after a MatMul / Gemm (its bias), got it elsewhere")
    real = ((const - (int(zp[0]) - off)) * np.float32(scale[0])).astype(np.float32)
    key = f"{last.name}.bias"
    imp.weights[key] = (np.asarray(imp.weights.get(key, np.zeros(f, np.float32)), np.float32) + real)
    ql = QLayer(imp.name(node, "add"), "addconst", act.shape, act.shape, act.scale, act.zp, out_scale, out_zp,
                qmin=out_zp if relu else INT8[0], relu=relu, in2_scale=float(scale[0]),
                in2_zp=int(zp[0]) - off, const=const, raw_offset=off)
    out = _append(imp, ql, [act], act.shape)
    return _u8(out.like(fsrc=act.fsrc), u8)


def _out_shape(imp, layer, shape):
    try:
        return tuple(layer.out_shape(shape))
    except ValueError as e:
        imp.fail(imp._node, str(e))


def _on_int8(imp, node, act):
    """MaxPool / Relu / Flatten / Reshape on an int8 tensor (QOperator graphs)."""
    op = node.op_type
    if op in ("Identity", "Dropout"):
        return act
    layer, _ = imp.float_op(node, act)
    if op == "Relu" and act.zp != (-128 if act.pending.get("u8") else 0):
        imp.fail(node, f"expected zero point 0 for Relu on a quantized tensor, got {act.zp}")
    out = _emit(imp, layer, act, _out_shape(imp, layer, act.shape), act.scale, act.zp)
    out.pending = act.pending
    return out


def _qlinear_operands(imp, node, axis):
    """QLinearConv / QLinearMatMul's shared inputs (x, x_scale, x_zp, w,
    w_scale, w_zp, y_scale, y_zp): ``(xs, xz, w, ys, yz, u8)`` with the
    weight dequantized along ``axis`` (its output channels)."""
    xs, xz, _ = act_params(imp, node, 1, 2)
    w = imp.get(node, 3, Const)
    wz = imp.get(node, 5, Const, optional=True)
    w = _dequant_const(imp, node, w.value, imp.get(node, 4, Const).value.reshape(-1),
                       None if wz is None else wz.value, axis)
    ys, yz, u8 = act_params(imp, node, 6, 7)
    return xs, xz, w, ys, yz, u8


def _qlinear(imp, node, act):
    op = node.op_type
    if op == "QLinearAveragePool":
        k, s = imp.check_pool(node, act.shape)
        ys, yz, u8 = act_params(imp, node, 3, 4)
        from nnloom.gen.frontend.network import AvgPool

        layer = AvgPool(imp.name(node, "avgpool"), k, s)
        return _u8(_emit(imp, layer, act, _out_shape(imp, layer, act.shape), ys, yz), u8)
    if op == "QLinearGlobalAveragePool":   # com.microsoft: x, x_s, x_zp, y_s, y_zp
        if imp.attrs(node).get("channels_last", 0):
            imp.fail(node, "channels_last: expected 0 (NCHW), got 1")
        if len(act.shape) != 3:
            imp.fail(node, f"expected a (C, H, W) input, got {list(act.shape)}")
        ys, yz, u8 = act_params(imp, node, 3, 4)
        from nnloom.gen.frontend.network import GlobalAvgPool

        layer = GlobalAvgPool(imp.name(node, "gavgpool"))
        return _u8(_emit(imp, layer, act, _out_shape(imp, layer, act.shape), ys, yz), u8)
    if op == "QLinearAdd":     # com.microsoft: A, a_s, a_zp, B, b_s, b_zp, c_s, c_zp
        xs, xz, _ = act_params(imp, node, 1, 2)
        if (xs, xz) != (act.scale, act.zp):
            imp.fail(node, "expected the input's own scale and zero point")
        b = imp.get(node, 3)
        if isinstance(b, Act):     # a residual add of two tensors
            b = _int_input(imp, node, b)
            bs, bz, _ = act_params(imp, node, 4, 5)
            if b.state != "q" or (bs, bz) != (b.scale, b.zp):
                imp.fail(node, "expected the second input quantized, with its own scale and zero point")
            if tuple(b.shape) != tuple(act.shape):
                imp.fail(node, f"expected two tensors of one shape (no broadcasting), got {list(act.shape)} "
                         f"and {list(b.shape)}")
            ys, yz, u8 = act_params(imp, node, 6, 7)
            return _add2(imp, node, act, b, ys, yz, u8)
        bs, bz, _ = act_params(imp, node, 4, 5)
        bq = np.asarray(b.value)
        zq = imp.get(node, 5, Const, optional=True)
        c = Const(bq.astype(np.float32), q=bq, scale=np.array([bs]),
                  zp=np.array([0 if zq is None else int(zq.value.reshape(-1)[0])]))
        ys, yz, u8 = act_params(imp, node, 6, 7)
        return _addconst(imp, node, act, c, ys, yz, u8)
    if op == "QLinearConv":
        xs, xz, w, ys, yz, u8 = _qlinear_operands(imp, node, 0)
        b = _int32_bias(imp, node, imp.get(node, 8, Const, optional=True), xs, w)
        # node.input[8] (bias) is optional: the float layer has a bias iff the model does.
        layer, _ = imp.float_op(_as(node, "Conv", [node.input[0], node.input[3], *node.input[8:9]]), act)
        if (xs, xz) != (act.scale, act.zp):
            imp.fail(node, "expected the input's own scale and zero point")
        return _u8(_emit(imp, layer, act, _out_shape(imp, layer, act.shape), ys, yz, w=w, b=b,
                         u8s8=_u8s8_qlinear(act, w)), u8)
    if op == "QLinearMatMul":
        xs, xz, w, ys, yz, u8 = _qlinear_operands(imp, node, 1)
        layer, _ = imp.float_op(_as(node, "MatMul", [node.input[0], node.input[3]]), act)
        if (xs, xz) != (act.scale, act.zp):
            imp.fail(node, "expected the input's own scale and zero point")
        return _u8(_emit(imp, layer, act, _out_shape(imp, layer, act.shape), ys, yz, w=w, trans=True,
                         u8s8=_u8s8_qlinear(act, w)), u8)
    if op == "QGemm":       # com.microsoft: A, a_s, a_zp, B, b_s, b_zp, C, y_s, y_zp
        a = imp.attrs(node)
        if a.get("alpha", 1.0) != 1.0 or a.get("transA", 0):
            imp.fail(node, "expected alpha = 1 and transA = 0")
        if len(node.input) < 8 or not node.input[7]:
            imp.fail(node, "expected a quantized output (y_scale), got a float one")
        trans_b = bool(a.get("transB", 0))
        xs, xz, _ = act_params(imp, node, 1, 2)
        w = imp.get(node, 3, Const)
        wz = imp.get(node, 5, Const, optional=True)
        w = _dequant_const(imp, node, w.value, imp.get(node, 4, Const).value.reshape(-1),
                           None if wz is None else wz.value, 0 if trans_b else 1)
        b = _int32_bias(imp, node, imp.get(node, 6, Const, optional=True), xs, w)
        ys, yz, u8 = act_params(imp, node, 7, 8)
        layer, _ = imp.float_op(_as(node, "Gemm", [node.input[0], node.input[3]], ("transB",)), act)
        if (xs, xz) != (act.scale, act.zp):
            imp.fail(node, "expected the input's own scale and zero point")
        return _u8(_emit(imp, layer, act, _out_shape(imp, layer, act.shape), ys, yz, w=w, b=b,
                         trans=not trans_b, u8s8=_u8s8_qlinear(act, w)), u8)
    raise AssertionError(op)


def _u8(act, u8):
    act.pending = {"u8": u8, "ort_u8": u8}
    return act


# -- which layers onnxruntime runs with its U8S8 kernel (QLayer.u8s8) ----------------
#
# onnxruntime's graph optimizations (ORT_ENABLE_EXTENDED and above, the default),
# x86-64: EnsureUniqueDQForNodeUnit gives every consumer of a DequantizeLinear its
# own copy; QDQS8ToU8Transformer turns an int8 QuantizeLinear -> DequantizeLinear
# pair into uint8 (values and zero point + 128) when the Q feeds exactly that one DQ,
# is no graph output and both have the same constant scalar zero point; then the
# selectors fuse DQ -> Conv / Gemm / MatMul [-> Relu] -> Q into QLinearConv / QGemm /
# QLinearMatMul when the input DQ and the output Q have the same type, int8 being
# refused for Conv and MatMul (QDQIsInt8Allowed() is false on x86), the bias (if any)
# comes through an int32 DequantizeLinear (a float initializer bias is given one by
# WeightBiasQuantization; MatMul -> Add(bias) becomes a Gemm first, MatMulAddFusion),
# the input comes from a DequantizeLinear directly or through a Reshape (QDQPropagation
# moves a DQ past Reshape, not past Flatten), and a Relu is only dropped when the Q's
# zero point is its type's minimum (Relu made redundant by the clamp); otherwise
# the group stays float (Relu: FusedConv / FusedGemm).


def _edges(imp, name):
    return imp.consumers.get(name, 0)


def _int8_zp(imp, node):
    if len(node.input) < 3 or not node.input[2]:
        return None
    z = imp.values.get(node.input[2])
    if not isinstance(z, Const) or z.value.dtype != np.int8 or z.value.size != 1:
        return None
    return int(z.value.reshape(-1)[0])


def _ort_u8(imp, q_node, u8):
    """The type onnxruntime computes the output of QuantizeLinear ``q_node``
    in: uint8 for a uint8 model, and for an int8 one that QDQS8ToU8Transformer
    converts (above)."""
    if u8:
        return True
    out = q_node.output[0]
    if out in imp.graph_outputs or _edges(imp, out) != 1:
        return False
    dq = next(n for n in imp.graph.node if out in n.input)
    if dq.op_type != "DequantizeLinear" or dq.input[0] != out:
        return False
    zq, zdq = _int8_zp(imp, q_node), _int8_zp(imp, dq)
    if zq is None or zq != zdq:
        return False
    d = dq.output[0]
    return not (_edges(imp, d) > 1 or (_edges(imp, d) == 1 and d in imp.graph_outputs))


def _u8s8_qlinear(act, w):
    """``"qlinear"`` for QLinearConv / QLinearMatMul / QGemm on uint8
    activations with int8 weights (onnxruntime's U8S8 kernel at every
    optimization level), else None."""
    return "qlinear" if act.pending.get("ort_u8", act.pending.get("u8")) and w.q.dtype == np.int8 else None


def _u8s8_qdq(p, src_act, out_u8, out_zp):
    """``"qdq"`` when onnxruntime fuses the QDQ group of pending ``p`` (read
    ``src_act``, quantized by a Q of type ``out_u8``) into a U8S8 kernel."""
    layer, w, b = p["layer"], p.get("w"), p.get("b")
    if layer.kind not in ("conv", "fc") or w is None or w.q is None or w.q.dtype != np.int8:
        return None
    in_u8 = bool(src_act.pending.get("ort_u8", src_act.pending.get("u8")))
    if not in_u8 or not out_u8 or src_act.pending.get("flatten"):
        return None
    if b is not None and b.q is not None and b.q.dtype != np.int32:
        return None
    if p.get("relu") and out_zp != INT8[0]:
        return None
    return "qdq"


def _int32_bias(imp, node, b, xs, w):
    """A QLinear bias (int32 in scale ``x_scale * w_scale``) as a Const."""
    if b is None:
        return None
    if b.value.dtype != np.int32:
        imp.fail(node, f"expected an int32 bias, got {b.value.dtype}")
    bs = xs * np.broadcast_to(w.scale, b.value.shape)
    return Const((b.value * bs).astype(np.float32), q=b.value, scale=bs, zp=np.zeros(1, np.int64))


def _as(node, op, inputs, keep=None):
    """A copy of ``node`` posing as another operator (to reuse the float checks);
    ``keep``: attribute names to copy (default: all for Conv, none otherwise)."""
    import onnx.helper as oh

    n = oh.make_node(op, inputs, list(node.output), name=node.name)
    n.attribute.extend(a for a in node.attribute
                       if (keep is None and op == "Conv") or (keep is not None and a.name in keep))
    return n


def _int_input(imp, node, act):
    """The graph's own input when it is an int8 / uint8 tensor read by a
    quantized operator (inputs 1, 2: its scale and zero point)."""
    from onnx import TensorProto

    if act.state != "float" or act is not imp.values.get(imp.input_name) or imp.layers:
        return act
    if imp.input_type not in (TensorProto.INT8, TensorProto.UINT8):
        return act
    xs, xz, u8 = act_params(imp, node, 1, 2)
    if u8 != (imp.input_type == TensorProto.UINT8):
        imp.fail(node, f"expected a zero point of the input's type "
                 f"({'uint8' if imp.input_type == TensorProto.UINT8 else 'int8'}), got "
                 f"{'uint8' if u8 else 'int8'}")
    imp.input_q, imp.input_u8, imp.input_codes = (xs, xz), u8, True
    q = Act(act.shape, "q", xs, xz, {"u8": u8, "ort_u8": u8})
    imp.values[imp.input_name] = q
    return q


def step(imp, node):
    """Interpret one node of a quantized graph; return its output value."""
    imp._node = node
    op = node.op_type
    if op == "QuantizeLinear":
        return _quantize_linear(imp, node, imp.get(node, 0))
    return _step(imp, node, op)


def _quantize_linear(imp, node, x):
    """QuantizeLinear of ``x``: a quantized Act whose ``pending`` records the
    model's type (``u8``) and the one onnxruntime computes it in (``ort_u8``)."""
    if isinstance(x, Const):
        s = imp.get(node, 1, Const).value
        z = imp.get(node, 2, Const, optional=True)
        dt = np.uint8 if z is None else z.value.dtype
        lo, hi = np.iinfo(dt).min, np.iinfo(dt).max
        axis = imp.attrs(node).get("axis", 1)
        shape = [1] * x.value.ndim
        if s.size > 1:
            shape[axis] = -1
        zz = 0 if z is None else z.value.astype(np.int64).reshape(shape if z.value.size > 1 else [])
        q = np.clip(np.rint(x.value / s.reshape(shape if s.size > 1 else [])) + zz, lo, hi).astype(dt)
        return Const(x.value, q=q)  # scales are taken from the DequantizeLinear that follows
    ys, yz, u8 = act_params(imp, node, 1, 2)
    types = {"u8": u8, "ort_u8": _ort_u8(imp, node, u8)}
    if x.state == "dq" and (ys, yz) == (x.scale, x.zp):
        # DequantizeLinear -> Flatten -> QuantizeLinear with the same parameters
        # (onnxruntime's quantizer writes this): nothing to compute.
        return x.like(state="q", pending=types)
    if x.state == "float" and not imp.layers and imp.input_q is None:
        imp.input_q, imp.input_u8 = (ys, yz), u8
        return Act(x.shape, "q", ys, yz, types)
    if x.state != "pending":
        imp.fail(node, "expected QuantizeLinear on the input or after a float operator, "
                 f"got it on a {x.state} tensor")
    p = x.pending
    if p["op"] == "AddConst":
        out = _addconst(imp, p["node"], p["in"], p["c"], ys, yz, u8, relu=p.get("relu", False))
    elif p["op"] == "Add2":
        out = _add2(imp, p["node"], p["a"], p["b"], ys, yz, u8, relu=p.get("relu", False))
    else:
        layer, src_act = p["layer"], p["in"]
        if layer.kind == "maxpool" and (ys, yz) != (src_act.scale, src_act.zp):
            imp.fail(node, "expected MaxPool to keep its input's scale and zero point")
        out = _emit(imp, layer, src_act, _out_shape(imp, layer, src_act.shape), ys, yz,
                    relu=p.get("relu", False), w=p.get("w"), b=p.get("b"), trans=p.get("trans", False),
                    u8s8=_u8s8_qdq(p, src_act, types["ort_u8"], yz))
    out.pending = types
    return out


def _step(imp, node, op):
    """Every operator but QuantizeLinear."""
    if op == "DequantizeLinear":
        x = imp.get(node, 0)
        if isinstance(x, Const):
            s = imp.get(node, 1, Const).value.reshape(-1)
            z = imp.get(node, 2, Const, optional=True)
            q = x.q if x.q is not None else x.value
            if not np.issubdtype(q.dtype, np.integer):
                imp.fail(node, f"expected an integer initializer, got {q.dtype}")
            return _dequant_const(imp, node, q, s, None if z is None else z.value,
                                  imp.attrs(node).get("axis", 1))
        x = _int_input(imp, node, x)
        xs, xz, _ = act_params(imp, node, 1, 2)
        if x.state != "q" or (xs, xz) != (x.scale, x.zp):
            imp.fail(node, "expected DequantizeLinear of a quantized tensor with its own scale and zero point")
        return x.like(state="dq", scale=xs, zp=xz, pending=dict(x.pending))
    if op in ("QLinearConv", "QLinearMatMul", "QLinearAveragePool", "QLinearGlobalAveragePool", "QGemm",
              "QLinearAdd"):
        act = _int_input(imp, node, imp.get(node, 0, Act))
        if act.state != "q":
            imp.fail(node, f"expected an int8 input tensor, got a {act.state} one")
        return _qlinear(imp, node, act)
    act = imp.get(node, 0, Act)
    if act.state == "float":
        imp.fail(node, "expected a quantized input (QuantizeLinear first) in a quantized model")
    if act.state == "q":
        return _on_int8(imp, node, act)
    if act.state == "pending":
        p = act.pending
        if op == "Relu" and p["op"] in ("AddConst", "Add2") and not p.get("relu"):
            return act.like(pending={**p, "relu": True})
        if op == "Relu" and p["op"] not in ("AddConst", "Add2") and p["layer"].kind in ("conv", "fc", "dwconv") \
                and not p.get("relu"):
            return act.like(pending={**p, "relu": True})
        if op == "Add" and p["op"] == "MatMul" and p.get("b") is None:
            return act.like(pending={**p, "b": imp.get(node, 1, Const)})
        if op in ("Identity", "Dropout"):
            return act
        imp.fail(node, f"expected QuantizeLinear after {p['op']}, got {op}")
    # act.state == "dq"
    if op in _PASS:
        layer, _ = imp.float_op(node, act) if op in ("Flatten", "Reshape") else (None, None)
        if layer is None:
            return act
        out = _emit(imp, layer, act, _out_shape(imp, layer, act.shape), act.scale, act.zp)
        # onnxruntime moves a DequantizeLinear past a Reshape (QDQPropagation), not past a Flatten.
        return out.like(state="dq", pending={**act.pending, "flatten": op == "Flatten" or
                                             bool(act.pending.get("flatten"))})
    if op == "BatchNormalization":
        imp.fail(node, "expected BatchNormalization folded into the conv before quantization (run "
                 "onnxruntime.quantization.quant_pre_process before quantize_static), got it between "
                 "quantized tensors")
    if op == "Add":
        pair = imp.two_acts(node)
        if pair is not None:
            a, b = pair
            if a.state != "dq" or b.state != "dq":
                imp.fail(node, "expected Add of two dequantized tensors (DequantizeLinear on both inputs)")
            return a.like(state="pending", pending={"op": "Add2", "a": a, "b": b, "node": node, "layer": None})
        others = [imp.values.get(i) for i in node.input if imp.values.get(i) is not act]
        if len(node.input) != 2 or node.input[0] not in imp.values or imp.values[node.input[0]] is not act \
                or len(others) != 1 or not isinstance(others[0], Const):
            imp.fail(node, "expected Add of the previous layer's output and a constant (in that order); "
                     "residual add is not supported")
        if others[0].q is None:
            imp.fail(node, "expected the constant through DequantizeLinear (a quantized bias), got a float one")
        return Act(act.shape, "pending", pending={"op": "AddConst", "in": act, "c": others[0], "node": node,
                                                  "layer": None})
    layer, p = imp.float_op(node, act)
    if op == "Gemm" and (p["alpha"], p["beta"]) != (1.0, 1.0):
        imp.fail(node, f"alpha, beta: expected 1 and 1 in a quantized model, got {p['alpha']:g} and {p['beta']:g}")
    shape = _out_shape(imp, layer, act.shape)
    return Act(shape, "pending", pending={**p, "op": op, "layer": layer, "in": act})


def finish(imp, final, last):
    if imp.input_q is None:
        imp.fail(last, "expected QuantizeLinear on the model's input, got none")
    if final.state not in ("q", "dq"):
        imp.fail(last, f"expected the model to end on a quantized tensor, got a {final.state} one "
                 "(QuantizeLinear missing after the last layer)")
