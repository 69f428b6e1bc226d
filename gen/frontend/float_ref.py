"""The float reference of a :class:`nnloom.gen.frontend.network.Network`, batched.

:func:`run_float` runs every layer in float64 on a batch and returns every
layer's output.  The helpers :func:`windows` and :func:`im2col` are shared
with training (:mod:`nnloom.gen.train.digits`) and the integer golden model
(:mod:`nnloom.sim.golden.qnet`), which imports them from here: the flow (``gen``)
does not depend on the simulation package.
"""

from __future__ import annotations

import numpy as np

__all__ = ["run_float", "windows", "im2col", "batch"]


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


def run_float(network, x) -> list:
    """Per-layer float64 outputs of ``network`` (batched float reference)."""
    x, single = batch(np.asarray(x, np.float64), network.input_shape, "input")
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
