"""Golden integer inference of a :class:`nnloom.gen.frontend.qtypes.QuantizedNetwork`.

Exactly the arithmetic of :mod:`nnloom.gen.frontend.qtypes`, layer by layer, on int64 numpy
arrays (never floats):

* conv / fc: ``acc = wrap32(bias + sum((x - in_zp) * w))`` (padding pixels
  hold ``in_zp``, i.e. contribute 0), GEMM via im2col
  (:func:`nnloom.sim.golden.gemm.gemm`, 32-bit wrapping), then
  :func:`nnloom.sim.golden.requant.requantize` per output channel with
  ``qmin``/``qmax`` (``qmin = out_zp`` for a fused ReLU);
* maxpool: int8 maximum over the window; avgpool: ``sum(x - in_zp)`` over
  the window, requantized with the layer's single ``mult``/``shift``;
* relu: ``max(x, in_zp)`` when the scales are equal, else
  ``requantize(max(x - in_zp, 0))`` into the output scale;
* flatten: (C, H, W) row-major.

Inputs are one sample (``input_shape``) or a batch (``[N, *input_shape]``);
outputs keep the same convention.  :func:`run_float` is the float reference
beside it: the same layers in float64 on a float :class:`nnloom.gen.frontend.network.Network`.
"""

from __future__ import annotations

import numpy as np

from nnloom.gen.frontend import batch, im2col, run_float, windows
from nnloom.sim.golden.gemm import gemm
from nnloom.sim.golden.intarith import wrap
from nnloom.sim.golden.requant import requantize

__all__ = ["run", "run_layer", "run_float", "predict", "windows", "im2col"]


def run_layer(ql, x):
    """One quantized layer on a batch ``x`` (int64, [N, *ql.in_shape])."""
    n = x.shape[0]
    if ql.kind in ("conv", "fc"):
        w = np.asarray(ql.weight, np.int64)
        xc = np.asarray(x, np.int64) - ql.in_zp
        if ql.kind == "conv":
            cols, e, f = im2col(xc, ql.kernel, ql.stride, ql.padding)
            acc = gemm(cols, w.reshape(w.shape[0], -1).T, acc_width=32)
            acc = acc.reshape(n, e, f, -1).transpose(0, 3, 1, 2)
            bias = np.asarray(ql.bias, np.int64)[None, :, None, None]
            shape = (1, -1, 1, 1)
        else:
            acc = gemm(xc.reshape(n, -1), w.T, acc_width=32)
            bias = np.asarray(ql.bias, np.int64)[None, :]
            shape = (1, -1)
        acc = wrap(acc + bias, 32, True)
        return requantize(acc, np.asarray(ql.mult).reshape(shape), np.asarray(ql.shift).reshape(shape),
                          ql.out_zp, ql.qmin, ql.qmax)
    if ql.kind == "maxpool":
        return windows(np.asarray(x, np.int64), ql.kernel[0], ql.stride).max(axis=0)
    if ql.kind == "avgpool":
        total = windows(np.asarray(x, np.int64) - ql.in_zp, ql.kernel[0], ql.stride).sum(axis=0)
        return requantize(total, int(ql.mult[0]), int(ql.shift[0]), ql.out_zp, ql.qmin, ql.qmax)
    if ql.kind == "relu":
        if ql.mult is None:
            return np.maximum(np.asarray(x, np.int64), ql.in_zp)
        pos = np.maximum(np.asarray(x, np.int64) - ql.in_zp, 0)
        return requantize(pos, int(ql.mult[0]), int(ql.shift[0]), ql.out_zp, ql.out_zp, ql.qmax)
    if ql.kind == "flatten":
        return np.asarray(x, np.int64).reshape(n, -1)
    raise ValueError(f"layer {ql.name}: unsupported kind {ql.kind!r}")


def run(qnet, x_int) -> list:
    """Per-layer int64 outputs of the golden integer inference."""
    x, single = batch(x_int, qnet.input_shape, "input")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"input: expected integers, got {x.dtype}")
    if x.size and (x.min() < -128 or x.max() > 127):
        raise ValueError(f"input: expected int8 values -128..127, got {x.min()}..{x.max()}")
    outs, x = [], x.astype(np.int64)
    for ql in qnet.layers:
        x = run_layer(ql, x)
        outs.append(x[0] if single else x)
    return outs


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
