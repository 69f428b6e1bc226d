"""Deterministic training of small networks on scikit-learn's digits.

The digits data (1,797 8 x 8 images, values 0..16) ships inside
scikit-learn, so no download is needed.  :func:`digits_split` gives a fixed
train / test split scaled to [0, 1]; :func:`train_digits` trains any
sequential :class:`Network` of conv / fc / relu / pool / flatten layers with
a 64-value input and 10 outputs, with a small numpy implementation (im2col
convolution, softmax cross-entropy, Adam), seeded: the same seed gives the
same weights on the same machine.

Committed example weights are made with::

    python -m nnloom.gen.train.digits examples/digits_mlp.toml
    python -m nnloom.gen.train.digits examples/lenet_digits.toml

which write the ``weights`` file the TOML names (``examples/*.npz``).
"""

from __future__ import annotations

import io
import sys

import numpy as np

from nnloom.gen.frontend import Network, NetworkError
from nnloom.gen.frontend import im2col, run_float, windows

__all__ = ["digits_split", "train_digits", "save_weights", "TEST_FRACTION"]

TEST_FRACTION = 0.2


def digits_split(seed: int = 0, shape=(64,)):
    """``(x_train, y_train, x_test, y_test)``; x float32 in [0, 1] shaped
    ``[N, *shape]`` (``(64,)`` or ``(1, 8, 8)``), y int64 labels 0..9.  1,438
    training and 359 test samples, split by a permutation from ``seed``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * TEST_FRACTION))
    test, train = perm[:n_test], perm[n_test:]
    shape = tuple(shape)
    return x[train].reshape(-1, *shape), y[train], x[test].reshape(-1, *shape), y[test]


# -- layers: forward keeps what backward needs ---------------------------------

def _forward(layer, p, x):
    k = layer.kind
    if k == "conv":
        cols, e, f = im2col(x, layer.kernel, layer.stride, layer.padding)
        w = p[f"{layer.name}.weight"]
        y = cols @ w.reshape(w.shape[0], -1).T + p[f"{layer.name}.bias"]
        return y.reshape(x.shape[0], e, f, -1).transpose(0, 3, 1, 2), (x.shape, cols, e, f)
    if k == "fc":
        return x @ p[f"{layer.name}.weight"].T + p[f"{layer.name}.bias"], x
    if k == "relu":
        return np.maximum(x, 0), x > 0
    if k in ("maxpool", "avgpool"):
        win = windows(x, layer.kernel, layer.step)
        if k == "maxpool":
            arg = win.argmax(axis=0)
            return np.take_along_axis(win, arg[None], 0)[0], (x.shape, arg)
        return win.mean(axis=0), (x.shape, None)
    if k == "flatten":
        return x.reshape(x.shape[0], -1), x.shape
    raise NetworkError("<train>", layer.name, f"cannot train a {k} layer")


def _backward(layer, p, cache, dy, grads):
    k = layer.kind
    if k == "conv":
        shape, cols, e, f = cache
        n, c, h, w_ = shape
        w = p[f"{layer.name}.weight"]
        dy2 = dy.transpose(0, 2, 3, 1).reshape(-1, w.shape[0])
        grads[f"{layer.name}.weight"] = (dy2.T @ cols).reshape(w.shape)
        grads[f"{layer.name}.bias"] = dy2.sum(axis=0)
        r, s = layer.kernel
        d = (dy2 @ w.reshape(w.shape[0], -1)).reshape(n, e * f, c, r * s).transpose(0, 2, 3, 1)
        d = d.reshape(n, c, r * s, e, f)
        pd, st = layer.padding, layer.stride
        dxp = np.zeros((n, c, h + 2 * pd, w_ + 2 * pd))
        for i in range(r):
            for j in range(s):
                dxp[:, :, i:i + st * e:st, j:j + st * f:st] += d[:, :, i * s + j]
        return dxp[:, :, pd:pd + h, pd:pd + w_]
    if k == "fc":
        grads[f"{layer.name}.weight"] = dy.T @ cache
        grads[f"{layer.name}.bias"] = dy.sum(axis=0)
        return dy @ p[f"{layer.name}.weight"]
    if k == "relu":
        return dy * cache
    if k in ("maxpool", "avgpool"):
        shape, arg = cache
        kk, st = layer.kernel, layer.step
        e, f = dy.shape[2], dy.shape[3]
        dx = np.zeros(shape)
        for idx in range(kk * kk):
            i, j = divmod(idx, kk)
            part = dy * (arg == idx) if arg is not None else dy / (kk * kk)
            dx[:, :, i:i + st * e:st, j:j + st * f:st] += part
        return dx
    return dy.reshape(cache)


def _init(network: Network, rng):
    p = {}
    for key, shape in network.weight_shapes().items():
        if key.endswith(".bias"):
            p[key] = np.zeros(shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            p[key] = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)   # He init for ReLU nets
    return p


def train_digits(network: Network, seed: int = 0, epochs: int | None = None,
                 lr: float = 2e-3, batch: int = 32, progress=None) -> Network:
    """A copy of ``network`` with weights trained on the digits training split.
    ``progress(done, epochs)`` is called after each epoch."""
    if int(np.prod(network.input_shape)) != 64 or network.output_shape != (10,):
        raise NetworkError(network.source, "input.shape",
                           f"expected 64 inputs and 10 outputs for digits, got {list(network.input_shape)} "
                           f"-> {list(network.output_shape)}")
    if any(not getattr(layer, "bias", True) for layer in network.layers):
        raise NetworkError(network.source, "bias", "expected every conv/fc layer to have a bias for training")
    has_conv = any(layer.kind == "conv" for layer in network.layers)
    epochs = epochs or (12 if has_conv else 30)
    rng = np.random.default_rng(seed)
    xtr, ytr, _, _ = digits_split(seed, network.input_shape)
    p = _init(network, rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    t = 0
    for epoch in range(epochs):
        order = rng.permutation(len(xtr))
        for b0 in range(0, len(order), batch):
            idx = order[b0:b0 + batch]
            x = xtr[idx].astype(np.float64)
            caches = []
            for layer in network.layers:
                x, cache = _forward(layer, p, x)
                caches.append(cache)
            z = x - x.max(axis=1, keepdims=True)
            prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            prob[np.arange(len(idx)), ytr[idx]] -= 1.0
            dy, grads = prob / len(idx), {}
            for layer, cache in zip(reversed(network.layers), reversed(caches)):
                dy = _backward(layer, p, cache, dy, grads)
            t += 1
            for key, g in grads.items():          # Adam
                m[key] = 0.9 * m[key] + 0.1 * g
                v[key] = 0.999 * v[key] + 0.001 * g * g
                mh, vh = m[key] / (1 - 0.9 ** t), v[key] / (1 - 0.999 ** t)
                p[key] -= lr * mh / (np.sqrt(vh) + 1e-8)
        if progress is not None:
            progress(epoch + 1, epochs)
    weights = {k: val.astype(np.float32) for k, val in p.items()}
    return Network(network.name, network.input_shape, list(network.layers), weights, network.source)


def save_weights(network: Network, path) -> None:
    """Write ``network.weights`` as an .npz file, whole or not at all."""
    from nnloom.gen.verilog import write_atomic

    buf = io.BytesIO()
    np.savez(buf, **{k: network.weights[k] for k in sorted(network.weights)})
    write_atomic(path, buf.getvalue())


def main(argv=None) -> int:
    """``python -m nnloom.gen.train.digits NETWORK.toml [--seed N]``: train, write its weights file."""
    import argparse
    import tomllib
    from pathlib import Path

    from nnloom.gen.frontend.loaders.toml_format import parse_toml

    ap = argparse.ArgumentParser(prog="python -m nnloom.gen.train.digits")
    ap.add_argument("network")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    path = Path(args.network)
    doc = tomllib.loads(path.read_text())
    wfile = doc.pop("weights", None)
    if wfile is None:
        print(f"{path}: no 'weights' file named to write", file=sys.stderr)
        return 2
    net = train_digits(parse_toml(doc, str(path), path.parent), seed=args.seed)
    save_weights(net, path.parent / wfile)
    _, _, xte, yte = digits_split(args.seed, net.input_shape)
    acc = float((run_float(net, xte)[-1].argmax(axis=1) == yte).mean())
    print(f"wrote {path.parent / wfile}: float test accuracy {acc:.4f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
