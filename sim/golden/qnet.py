"""Golden integer inference of a :class:`gen.qtypes.QuantizedNetwork`.

Exactly the arithmetic of :mod:`gen.qtypes`, layer by layer, on int64 numpy
arrays (never floats):

* conv / fc: ``acc = wrap32(bias + sum((x - in_zp) * w))`` (padding pixels
  hold ``in_zp``, i.e. contribute 0), GEMM via im2col
  (:func:`sim.golden.gemm.gemm`, 32-bit wrapping), then
  :func:`sim.golden.requant.requantize` per output channel with
  ``qmin``/``qmax`` (``qmin = out_zp`` for a fused ReLU);
* maxpool: int8 maximum over the window; avgpool: ``sum(x - in_zp)`` over
  the window, requantized with the layer's single ``mult``/``shift``;
* relu: ``max(x, in_zp)`` when the scales are equal, else
  ``requantize(max(x - in_zp, 0))`` into the output scale;
* flatten: (C, H, W) row-major.

Inputs are one sample (``input_shape``) or a batch (``[N, *input_shape]``);
outputs keep the same convention.  :func:`run_float` is the float reference
beside it: the same layers in float64 on a float :class:`gen.network.Network`.
"""

from __future__ import annotations

import numpy as np

from sim.golden.gemm import gemm
from sim.golden.intarith import wrap
from sim.golden.requant import requantize

__all__ = ["run", "run_layer", "run_float", "predict", "windows", "im2col"]


def windows(x, k: int, stride: int):
    """[k*k, N, C, E, F] views of the pooling windows of ``x`` [N, C, H, W]."""
    e = (x.shape[2] - k) // stride + 1
    f = (x.shape[3] - k) // stride + 1
    return np.stack([x[:, :, i:i + stride * e:stride, j:j + stride * f:stride]
                     for i in range(k) for j in range(k)])


def im2col(x, kernel, stride: int, padding: int):
    """``x`` [N, C, H, W] -> columns [N * E * F, C * R * S] (c, r, s order), E, F.

    Padding adds zeros: callers subtract the zero point first.
    """
    r, s = kernel
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    e = (h + 2 * padding - r) // stride + 1
    f = (w + 2 * padding - s) // stride + 1
    patches = np.stack([xp[:, :, i:i + stride * e:stride, j:j + stride * f:stride]
                        for i in range(r) for j in range(s)], axis=2)   # N, C, R*S, E, F
    cols = patches.reshape(n, c * r * s, e * f).transpose(0, 2, 1).reshape(n * e * f, c * r * s)
    return cols, e, f


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


def _batch(x, shape, what):
    x = np.asarray(x)
    single = x.shape == tuple(shape)
    if single:
        x = x[None]
    if x.shape[1:] != tuple(shape):
        raise ValueError(f"{what}: expected shape {list(shape)} or [N, {', '.join(map(str, shape))}], "
                         f"got {list(x.shape)}")
    return x, single


def run(qnet, x_int) -> list:
    """Per-layer int64 outputs of the golden integer inference."""
    x, single = _batch(x_int, qnet.input_shape, "input")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"input: expected integers, got {x.dtype}")
    if x.size and (x.min() < -128 or x.max() > 127):
        raise ValueError(f"input: expected int8 values -128..127, got {x.min()}..{x.max()}")
    outs, x = [], x.astype(np.int64)
    for ql in qnet.layers:
        x = run_layer(ql, x)
        outs.append(x[0] if single else x)
    return outs


def run_float(network, x) -> list:
    """Per-layer float64 outputs of ``network`` (batched float reference)."""
    x, single = _batch(np.asarray(x, np.float64), network.input_shape, "input")
    outs, w = [], network.weights
    for layer in network.layers:
        if layer.kind == "conv":
            cols, e, f = im2col(x, layer.kernel, layer.stride, layer.padding)
            k = w[f"{layer.name}.weight"].astype(np.float64)
            y = (cols @ k.reshape(k.shape[0], -1).T).reshape(x.shape[0], e, f, -1).transpose(0, 3, 1, 2)
            if f"{layer.name}.bias" in w:
                y = y + w[f"{layer.name}.bias"].astype(np.float64)[None, :, None, None]
            x = y
        elif layer.kind in ("maxpool", "avgpool"):
            win = windows(x, layer.kernel, layer.step)
            x = win.max(axis=0) if layer.kind == "maxpool" else win.mean(axis=0)
        elif layer.kind == "flatten":
            x = x.reshape(x.shape[0], -1)
        elif layer.kind == "fc":
            x = x @ w[f"{layer.name}.weight"].astype(np.float64).T
            if f"{layer.name}.bias" in w:
                x = x + w[f"{layer.name}.bias"].astype(np.float64)
        elif layer.kind == "relu":
            x = np.maximum(x, 0)
        else:
            raise ValueError(f"layer {layer.name}: unsupported kind {layer.kind!r}")
        outs.append(x[0] if single else x)
    return outs


def predict(model, x) -> np.ndarray:
    """Class index per sample: int8 golden for a QuantizedNetwork (float
    input quantized with its input scale), float reference otherwise."""
    from gen.qtypes import QuantizedNetwork

    x = np.asarray(x, np.float64)
    if isinstance(model, QuantizedNetwork):
        xq = np.stack([model.quantize_input(s) for s in x.reshape(-1, *model.input_shape)])
        y = run(model, xq)[-1]
    else:
        y = run_float(model, x.reshape(-1, *model.input_shape))[-1]
    return np.asarray(y).reshape(len(y), -1).argmax(axis=1)
