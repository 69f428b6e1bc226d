"""The float reference of a :class:`nnloom.gen.frontend.network.Network`, batched.

:func:`run_float` runs every layer in float64 on a batch and returns every
layer's output.  The helpers :func:`windows` and :func:`im2col` are shared
with training (:mod:`nnloom.gen.train.digits`) and the integer golden model
(:mod:`nnloom.sim.golden.qnet`), which imports them from here: the flow (``gen``)
does not depend on the simulation package.
"""

from __future__ import annotations

import numpy as np

__all__ = ["run_float", "run_float_layer", "windows", "im2col", "batch"]


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


def batch(x, shape, what):
    x = np.asarray(x)
    single = x.shape == tuple(shape)
    if single:
        x = x[None]
    if x.shape[1:] != tuple(shape):
        raise ValueError(f"{what}: expected shape {list(shape)} or [N, {', '.join(map(str, shape))}], "
                         f"got {list(x.shape)}")
    return x, single


def _pad4(x, pads):
    t, b, l, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r))) if any(pads) else x


def run_float_layer(layer, x, w, x2=None):
    """One float layer on a batch ``x`` [N, ...]; ``x2`` is an add's second input."""
    if layer.kind == "conv":
        if getattr(layer, "pads", None) is not None:
            cols, e, f = im2col(_pad4(x, layer.pads), layer.kernel, layer.stride, 0)
        else:
            cols, e, f = im2col(x, layer.kernel, layer.stride, layer.padding)
        k = w[f"{layer.name}.weight"].astype(np.float64)
        y = (cols @ k.reshape(k.shape[0], -1).T).reshape(x.shape[0], e, f, -1).transpose(0, 3, 1, 2)
        if f"{layer.name}.bias" in w:
            y = y + w[f"{layer.name}.bias"].astype(np.float64)[None, :, None, None]
        return y
    if layer.kind == "dwconv":
        k = w[f"{layer.name}.weight"].astype(np.float64)
        xp = np.repeat(_pad4(x, layer.pads), layer.depth_multiplier, axis=1)
        m, e, f = layer.out_shape(x.shape[1:])
        st = layer.stride
        y = np.zeros((x.shape[0], m, e, f))
        for i in range(layer.kernel[0]):
            for j in range(layer.kernel[1]):
                y += xp[:, :, i:i + st * (e - 1) + 1:st, j:j + st * (f - 1) + 1:st] * k[None, :, 0, i, j, None, None]
        if f"{layer.name}.bias" in w:
            y = y + w[f"{layer.name}.bias"].astype(np.float64)[None, :, None, None]
        return y
    if layer.kind in ("maxpool", "avgpool"):
        win = windows(x, layer.kernel, layer.step)
        return win.max(axis=0) if layer.kind == "maxpool" else win.mean(axis=0)
    if layer.kind == "gavgpool":
        return x.mean(axis=(2, 3), keepdims=True)
    if layer.kind == "flatten":
        return x.reshape(x.shape[0], -1)
    if layer.kind == "fc":
        y = x @ w[f"{layer.name}.weight"].astype(np.float64).T
        if f"{layer.name}.bias" in w:
            y = y + w[f"{layer.name}.bias"].astype(np.float64)
        return y
    if layer.kind == "relu":
        return np.maximum(x, 0)
    if layer.kind == "relu6":
        return np.clip(x, 0, 6)
    if layer.kind == "add":
        return x + x2
    raise ValueError(f"layer {layer.name}: unsupported kind {layer.kind!r}")


def run_float(network, x) -> list:
    """Per-layer float64 outputs of ``network`` (batched float reference)."""
    x, single = batch(np.asarray(x, np.float64), network.input_shape, "input")
    outs, w = [], network.weights
    inputs = getattr(network, "inputs", None)
    for i, layer in enumerate(network.layers):
        if inputs is not None:
            srcs = [x if j == -1 else outs[j] for j in inputs[i]]
            outs.append(run_float_layer(layer, srcs[0], w, *srcs[1:2]))
        else:
            outs.append(run_float_layer(layer, outs[-1] if outs else x, w))
    return [o[0] for o in outs] if single else outs
