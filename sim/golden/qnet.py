"""Golden integer inference of a :class:`nnloom.gen.frontend.qtypes.QuantizedNetwork`.

Exactly the arithmetic of :mod:`nnloom.gen.frontend.qtypes`, layer by layer, on int64 numpy
arrays (never floats, but for ``addconst``, whose float32 arithmetic is onnxruntime's):

* conv / fc: ``acc = wrap32(bias + sum((x - in_zp) * w))`` (padding pixels
  hold ``in_zp``, i.e. contribute 0), GEMM via im2col
  (:func:`nnloom.sim.golden.gemm.gemm`, 32-bit wrapping), then
  :func:`nnloom.sim.golden.requant.requantize` per output channel with
  ``qmin``/``qmax`` (``qmin = out_zp`` for a fused ReLU);
* maxpool: int8 maximum over the window; avgpool: ``sum(x - in_zp)`` over
  the R x S window, requantized with the layer's single ``mult``/``shift``;
* relu: ``max(x, in_zp)`` when the scales are equal, else
  ``requantize(max(x - in_zp, 0))`` into the output scale;
* flatten: (C, H, W) row-major;
* dwconv: per input channel ``c // depth_multiplier``, the same accumulator
  and requantization as conv;
* add (``rounding == "tflite"``, TFLite's integer ADD): ``a = (x1 - zp1) <<
  left_shift``, ``b = (x2 - zp2) << left_shift``, each scaled by
  ``MultiplyByQuantizedMultiplier`` with its multiplier, summed (int32),
  scaled by the output multiplier, plus ``out_zp``, clamped; with
  ``rounding == "onnxruntime"``: ``requantize((x1 - zp1) * mult[0] +
  (x2 - zp2) * mult[1])`` with the common ``shift[0]``, rounding half up;
* avgpool with ``rounding == "tflite"``: ``sum(x)`` of the raw codes over the
  in-bounds part of each R x S window, divided by the pixel count and
  rounded half away from zero, clamped (TFLite's reference AveragePool).

* ``w_zp`` (ONNX weight zero points): conv / fc / dwconv accumulate
  ``bias + sum((x - in_zp) * (w - w_zp[c]))`` (None: 0, unchanged);
* addconst: the one layer in float32 (onnxruntime's QLinearAdd on x86-64:
  fused multiply-adds, round half to even, saturation), exactly as
  :mod:`nnloom.gen.frontend.qtypes` states it, each float32 FMA rounded once
  (:func:`nnloom.gen.frontend.qtypes.float32_fma`).

* ``rounding == "mlas"`` (quantized ONNX imports): conv / fc / dwconv and
  avgpool requantize in float32 as onnxruntime's MLAS kernels do
  (``f32(acc) * f32 scale``, clamp, round half to even) and add of two
  tensors is QLinearAdd's float32 arithmetic (as addconst).  The conv / fc
  layers onnxruntime runs with its U8S8 kernel (``ql.u8s8``) add, on CPUs
  where that kernel clamps pair sums to int16 (AVX2 without VNNI:
  :mod:`nnloom.sim.golden.mlas`), the saturation to the exact accumulator;
  ``qdq_fused=False`` models onnxruntime without graph optimizations, which
  keeps QDQ groups (``"qdq"``) in float.

The requantization of conv / fc / dwconv follows the network's
``rounding``: ``"onnxruntime"`` is :func:`nnloom.sim.golden.requant.requantize`
(one rounding, half up); ``"tflite"`` is
:func:`nnloom.sim.golden.requant.requantize_tflite` as LiteRT's reference
kernels compute it: conv, dwconv and add round twice (gemmlowp's
``SaturatingRoundingDoublingHighMul`` then ``RoundingDivideByPOT``), fc
once (``(acc * mult + 2**(30 - shift)) >> (31 - shift)``, the ruy form its
FULLY_CONNECTED uses).  Layers read the outputs their
``inputs`` name (a DAG; by default the previous layer).

Inputs are one sample (``input_shape``) or a batch (``[N, *input_shape]``);
outputs keep the same convention.  :func:`run_float` is the float reference
beside it: the same layers in float64 on a float :class:`nnloom.gen.frontend.network.Network`.
"""

from __future__ import annotations

import numpy as np

from nnloom.gen.frontend import batch, float32_fma, im2col, run_float, windows
from nnloom.sim.golden.gemm import gemm
from nnloom.sim.golden.intarith import wrap
from nnloom.sim.golden.mlas import u8s8_correction, u8s8_saturates
from nnloom.sim.golden.requant import (
    multiply_by_quantized_multiplier, requantize, requantize_tflite,
)

_TFLITE = ("tflite",)

__all__ = ["run", "run_layer", "run_float", "predict", "windows", "im2col"]


def _pad(x, pads, value=0):
    t, b, l, r = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def _taps(x, kernel, stride, e, f):
    """Yield (i, j, view [N, C, E, F]) for every kernel tap of padded ``x``."""
    r, s = kernel
    for i in range(r):
        for j in range(s):
            yield i, j, x[:, :, i:i + stride * (e - 1) + 1:stride, j:j + stride * (f - 1) + 1:stride]


def _mlas(ql, acc, scale):
    """onnxruntime's float32 requantization (``rounding == "mlas"``): the int32
    ``acc`` to float32, times the float32 ``scale`` (one rounding), clamped
    to the codes' range around ``out_zp``, rounded half to even."""
    f = np.float32
    lo, hi = f(ql.qmin - ql.out_zp), f(ql.qmax - ql.out_zp)
    v = np.clip(np.asarray(acc, np.int64).astype(f) * np.asarray(scale, f), lo, hi)
    return np.rint(v).astype(np.int64) + ql.out_zp


def _requant(ql, acc, shape, rounding):
    if rounding == "mlas":
        f = np.float32
        scale = (f(ql.in_scale) * np.asarray(ql.w_scale, f)) / f(ql.out_scale)
        return _mlas(ql, acc, scale.reshape(shape))
    mult = np.asarray(ql.mult).reshape(shape)
    shift = np.asarray(ql.shift).reshape(shape)
    if rounding in _TFLITE:
        return requantize_tflite(acc, mult.astype(np.int64), shift.astype(np.int64),
                                 ql.out_zp, ql.qmin, ql.qmax, double=ql.kind != "fc")
    return requantize(acc, mult, shift, ql.out_zp, ql.qmin, ql.qmax)


def _add(ql, x1, x2, rounding):
    a = np.asarray(x1, np.int64) - ql.in_zp
    b = np.asarray(x2, np.int64) - ql.in2_zp
    m = [int(v) for v in ql.mult]
    sh = [int(v) for v in ql.shift]
    if rounding == "mlas":
        return _add_mlas(ql, x1, x2)
    if rounding in _TFLITE:
        double = True
        a = multiply_by_quantized_multiplier(a << ql.left_shift, m[0], sh[0], double)
        b = multiply_by_quantized_multiplier(b << ql.left_shift, m[1], sh[1], double)
        total = ((a + b + (1 << 31)) & ((1 << 32) - 1)) - (1 << 31)      # int32 sum
        y = multiply_by_quantized_multiplier(total, m[2], sh[2], double) + ql.out_zp
        return np.clip(y, ql.qmin, ql.qmax).astype(np.int64)
    return requantize(a * m[0] + b * m[1], 1, sh[0], ql.out_zp, ql.qmin, ql.qmax)


def _weight(ql):
    """int64 weights minus their zero point per output channel."""
    w = np.asarray(ql.weight, np.int64)
    if ql.w_zp is None:
        return w
    return w - np.asarray(ql.w_zp, np.int64).reshape(-1, *[1] * (w.ndim - 1))


def _qladd_terms(ql):
    """onnxruntime's QLinearAdd constants in float32: ``(rac, rbc, fixed, off)``."""
    f = np.float32
    off = int(ql.raw_offset)
    rac = f(f(ql.in_scale) / f(ql.out_scale))
    rbc = f(f(ql.in2_scale) / f(ql.out_scale))
    za, zb, zc = f(ql.in_zp + off), f(ql.in2_zp + off), f(ql.out_zp + off)
    return rac, rbc, f(zc - float32_fma(rac, za, f(rbc * zb))), off


def _add_mlas(ql, x1, x2):
    """Two tensors as onnxruntime's QLinearAdd computes them (x86-64 MLAS)."""
    f = np.float32
    rac, rbc, fixed, off = _qladd_terms(ql)
    xa = (np.asarray(x1, np.int64) + off).astype(f)
    xb = (np.asarray(x2, np.int64) + off).astype(f)
    y = np.rint(float32_fma(xb, rbc, float32_fma(xa, rac, fixed))).astype(np.int64) - off
    return np.clip(y, ql.qmin, ql.qmax).astype(np.int64)


def _addconst(ql, x):
    f = np.float32
    rac, rbc, fixed, off = _qladd_terms(ql)
    b = (np.asarray(ql.const, np.int64) + off).astype(f)
    t = float32_fma(b, rbc, fixed)                                       # [F]
    xa = (np.asarray(x, np.int64) + off).astype(f)
    y = np.rint(float32_fma(xa, rac, t[None, :])).astype(np.int64) - off   # half to even
    return np.clip(y, ql.qmin, ql.qmax).astype(np.int64)


def _avgpool_tflite(ql, x):
    r, s = ql.kernel
    t, b, l, rt = ql.pad4
    c, e, f = ql.out_shape
    xp = _pad(np.asarray(x, np.int64), ql.pad4)
    ones = _pad(np.ones((1, 1) + x.shape[2:], np.int64), ql.pad4)
    total = sum(v for _, _, v in _taps(xp, (r, s), ql.stride, e, f))
    count = sum(v for _, _, v in _taps(ones, (r, s), ql.stride, e, f))
    half = count // 2
    # C division truncates toward zero: round half away from zero.
    y = np.where(total > 0, (total + half) // count, -((half - total) // count))
    return np.clip(y, ql.qmin, ql.qmax).astype(np.int64)


def _avgpool_sum(ql, x):
    """``sum(x - in_zp)`` over each R x S window (no padding; global pooling
    is the window of the whole input)."""
    if ql.pads is not None and any(ql.pads):
        raise ValueError(f"layer {ql.name}: padded average pooling needs rounding 'tflite'")
    _, e, w = ql.out_shape
    return sum(v for _, _, v in _taps(np.asarray(x, np.int64) - ql.in_zp, tuple(ql.kernel), ql.stride, e, w))


def _avgpool_mlas(ql, x):
    """Average pooling as onnxruntime's QLinearAveragePool /
    QLinearGlobalAveragePool: the int32 window sum requantized by
    :func:`_mlas` with ``in_scale / (out_scale * R * S)``."""
    f = np.float32
    r, s = ql.kernel
    return _mlas(ql, _avgpool_sum(ql, x), f(ql.in_scale) / f(f(ql.out_scale) * f(r * s)))


def _dwconv(ql, xc):
    w = _weight(ql)                                      # [M, 1, R, S]
    dm = int(ql.depth_multiplier)
    xp = _pad(xc, ql.pad4)
    if dm > 1:
        xp = np.repeat(xp, dm, axis=1)                   # channel m reads m // dm
    m, e, f = ql.out_shape
    acc = np.zeros((xc.shape[0], m, e, f), np.int64)
    for i, j, v in _taps(xp, ql.kernel, ql.stride, e, f):
        acc += v * w[None, :, 0, i, j, None, None]
    return acc


def _u8s8_active(ql, rounding, qdq_fused):
    """Whether onnxruntime's saturating U8S8 kernel computes this layer here."""
    if rounding != "mlas" or ql.u8s8 not in ("qlinear", "qdq"):
        return False
    if ql.u8s8 == "qdq" and not qdq_fused:
        return False
    return u8s8_saturates()


def _u8s8(ql, cols, c):
    """The pair saturation of onnxruntime's U8S8 kernel (:mod:`nnloom.sim.golden.mlas`)
    for the columns ``cols`` [P, K] of ``x - in_zp`` (conv: (c, r, s) order; MLAS
    orders K as (r, s, c)); the raw codes are ``x + 128`` (uint8), the raw
    weights ``ql.weight`` (int8)."""
    w = np.asarray(ql.weight, np.int64).reshape(len(ql.weight), -1)
    k = w.shape[1]
    order = None
    if ql.kind == "conv":
        rs = k // c
        order = np.arange(k).reshape(c, rs).T.reshape(-1)      # (r, s, c) -> index into (c, r, s)
    return u8s8_correction(cols + (ql.in_zp + 128), w.T, order)


def run_layer(ql, x, rounding: str = "onnxruntime", x2=None, qdq_fused: bool = True):
    """One quantized layer on a batch ``x`` (int64, [N, *ql.in_shape]);
    ``x2`` is the second input of an ``add``.  ``qdq_fused=False``: as
    onnxruntime without graph optimizations, which leaves QDQ groups
    (``ql.u8s8 == "qdq"``) in float: exact products."""
    n = x.shape[0]
    if ql.kind == "dwconv":
        acc = _dwconv(ql, np.asarray(x, np.int64) - ql.in_zp)
        acc = wrap(acc + np.asarray(ql.bias, np.int64)[None, :, None, None], 32, True)
        return _requant(ql, acc, (1, -1, 1, 1), rounding)
    if ql.kind == "add":
        if x2 is None:
            raise ValueError(f"layer {ql.name}: add needs two inputs")
        return _add(ql, x, x2, rounding)
    if ql.kind == "addconst":
        return _addconst(ql, x)
    if ql.kind == "avgpool" and rounding in _TFLITE:
        return _avgpool_tflite(ql, x)
    if ql.kind == "avgpool" and rounding == "mlas":
        return _avgpool_mlas(ql, x)
    if ql.kind in ("conv", "fc"):
        w = _weight(ql)
        xc = np.asarray(x, np.int64) - ql.in_zp
        if ql.kind == "conv":
            if ql.pads is not None:
                xc = _pad(xc, ql.pad4)
                cols, e, f = im2col(xc, ql.kernel, ql.stride, 0)
            else:
                cols, e, f = im2col(xc, ql.kernel, ql.stride, ql.padding)
            acc = gemm(cols, w.reshape(w.shape[0], -1).T, acc_width=32)
            if _u8s8_active(ql, rounding, qdq_fused):
                acc = acc + _u8s8(ql, cols, xc.shape[1])
            acc = acc.reshape(n, e, f, -1).transpose(0, 3, 1, 2)
            bias = np.asarray(ql.bias, np.int64)[None, :, None, None]
            shape = (1, -1, 1, 1)
        else:
            acc = gemm(xc.reshape(n, -1), w.T, acc_width=32)
            if _u8s8_active(ql, rounding, qdq_fused):
                acc = acc + _u8s8(ql, xc.reshape(n, -1), None)
            bias = np.asarray(ql.bias, np.int64)[None, :]
            shape = (1, -1)
        acc = wrap(acc + bias, 32, True)
        return _requant(ql, acc, shape, rounding)
    if ql.kind == "maxpool":
        return windows(np.asarray(x, np.int64), ql.kernel[0], ql.stride).max(axis=0)
    if ql.kind == "avgpool":
        return requantize(_avgpool_sum(ql, x), int(ql.mult[0]), int(ql.shift[0]), ql.out_zp, ql.qmin, ql.qmax)
    if ql.kind == "relu":
        if ql.mult is None:
            return np.maximum(np.asarray(x, np.int64), ql.in_zp)
        pos = np.maximum(np.asarray(x, np.int64) - ql.in_zp, 0)
        return requantize(pos, int(ql.mult[0]), int(ql.shift[0]), ql.out_zp, ql.out_zp, ql.qmax)
    if ql.kind == "flatten":
        return np.asarray(x, np.int64).reshape(n, -1)
    raise ValueError(f"layer {ql.name}: unsupported kind {ql.kind!r}")


def run(qnet, x_int, qdq_fused: bool = True) -> list:
    """Per-layer int64 outputs of the golden integer inference.

    ``qdq_fused`` (``rounding == "mlas"`` only): True (default) computes
    what onnxruntime computes with its default graph optimizations, which
    fuse QDQ groups into QLinear kernels; False what it computes with them
    off (``ORT_DISABLE_ALL``, or ``ORT_ENABLE_BASIC``), where QDQ groups run
    in float.  The two differ only on CPUs whose U8S8 kernel saturates."""
    x, single = batch(x_int, qnet.input_shape, "input")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"input: expected integers, got {x.dtype}")
    if x.size and (x.min() < -128 or x.max() > 127):
        raise ValueError(f"input: expected int8 values -128..127, got {x.min()}..{x.max()}")
    rounding = getattr(qnet, "rounding", "onnxruntime")
    x = x.astype(np.int64)
    if qnet.sequential:
        outs = []
        for ql in qnet.layers:
            x = run_layer(ql, x, rounding, qdq_fused=qdq_fused)
            outs.append(x[0] if single else x)
        return outs
    vals = []
    for i, ql in enumerate(qnet.layers):
        srcs = [x if j == -1 else vals[j] for j in qnet.layer_inputs(i)]
        vals.append(run_layer(ql, srcs[0], rounding, *srcs[1:2], qdq_fused=qdq_fused))
    return [v[0] for v in vals] if single else vals


def predict(model, x) -> np.ndarray:
    """Class index per sample: int8 golden for a QuantizedNetwork (float
    input quantized with its input scale), float reference otherwise."""
    from nnloom.gen.frontend import QuantizedNetwork

    x = np.asarray(x, np.float64)
    if isinstance(model, QuantizedNetwork):
        xq = np.stack([model.quantize_input(s) for s in x.reshape(-1, *model.input_shape)])
        y = run(model, xq)[-1]
    else:
        y = run_float(model, x.reshape(-1, *model.input_shape))[-1]
    return np.asarray(y).reshape(len(y), -1).argmax(axis=1)
