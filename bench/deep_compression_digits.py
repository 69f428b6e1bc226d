"""Deep Compression of an MLP on the scikit-learn digits data, run on EIE's model.

A 64-100-10 ReLU MLP without biases (EIE computes ``W a``) is trained with
Adam, pruned to ``--density`` per layer by magnitude and retrained under the
mask, then its weights are shared among 15 k-means centroids per layer (plus
zero; 4-bit codes) with the centroids fine-tuned (the gradient of a shared
weight is the sum over its members).  Accuracy is measured at each step, and
finally through the EIE golden model (:func:`nnloom.sim.golden.eie.spmv`, the
bit-exact integer semantics of the RTL) on 16-bit Q8.8 activations.

Sizes (bits): dense = 32 per weight; pruned = 32-bit weight + 4-bit relative
index per entry (fillers included) + 16-bit column pointers per PE; pruned +
shared = :func:`nnloom.gen.compiler.csc.storage_bits` (4-bit code + 4-bit index per entry,
pointers, 16 x 16-bit codebook).

    python bench/deep_compression_digits.py
    python bench/deep_compression_digits.py --density 0.15 0.3 --pes 1
"""

from __future__ import annotations

import argparse
import sys


import numpy as np  # noqa: E402

from nnloom.gen.compiler import compress_layer, prune  # noqa: E402
from nnloom.gen.compiler import storage_bits  # noqa: E402
from nnloom.hw.eie_config import EIEConfig  # noqa: E402
from nnloom.sim.golden.eie import spmv  # noqa: E402


def data(seed=0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16.0, y, test_size=0.3, random_state=seed, stratify=y)


def forward(ws, x):
    hs = [x]
    for i, w in enumerate(ws):
        z = hs[-1] @ w.T
        hs.append(np.maximum(z, 0) if i < len(ws) - 1 else z)
    return hs


def grads(ws, x, y):
    hs = forward(ws, x)
    logits = hs[-1] - hs[-1].max(axis=1, keepdims=True)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    delta = p / len(y)
    gs = [None] * len(ws)
    for i in range(len(ws) - 1, -1, -1):
        gs[i] = delta.T @ hs[i]
        if i:
            delta = (delta @ ws[i]) * (hs[i] > 0)
    return gs


def train(ws, x, y, epochs, masks=None, lr=2e-3, seed=0, share=None):
    """Adam on the weights (``masks`` keep pruned weights at 0) or, with
    ``share`` = [(codes, centroids)], on the shared centroids only."""
    rng = np.random.default_rng(seed)
    params = [c for _, c in share] if share else ws
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), 32):
            idx = order[s:s + 32]
            gs = grads(ws, x[idx], y[idx])
            if share:
                gs = [np.bincount(codes[codes > 0] - 1, g[codes > 0], minlength=len(c))
                      for (codes, c), g in zip(share, gs)]
            t += 1
            for i, (p, g) in enumerate(zip(params, gs)):
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                p -= lr * (m[i] / (1 - 0.9 ** t)) / (np.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8)
            if masks:
                for w, mk in zip(ws, masks):
                    w *= mk
            if share:
                for w, (codes, c) in zip(ws, share):
                    w[...] = np.where(codes > 0, c[np.maximum(codes - 1, 0)], 0.0)
    return ws


def accuracy(ws, x, y):
    return float((forward(ws, x)[-1].argmax(axis=1) == y).mean())


def eie_accuracy(layers, x, y, cfg):
    """Accuracy with every layer on the EIE golden model (Q8.8, ReLU between)."""
    correct = 0
    for xi, yi in zip(x, y):
        a = np.rint(xi * (1 << cfg.frac_bits)).astype(np.int64)
        for n, cl in enumerate(layers):
            a = spmv(cfg, cl.csc, cl.codebook, a, relu=n < len(layers) - 1)
        correct += int(a.argmax() == yi)
    return correct / len(y)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--density", type=float, nargs=2, default=[0.1, 0.25],
                    help="kept fraction of fc1 and fc2 weights")
    ap.add_argument("--pes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    xtr, xte, ytr, yte = data(args.seed)
    rng = np.random.default_rng(args.seed)
    ws = [rng.normal(0, np.sqrt(2 / 64), (100, 64)), rng.normal(0, np.sqrt(2 / 100), (10, 100))]
    train(ws, xtr, ytr, 60, seed=args.seed)
    acc_ref = accuracy(ws, xte, yte)
    masks = [prune(w, d) for w, d in zip(ws, args.density)]
    ws = [w * mk for w, mk in zip(ws, masks)]
    acc_pruned_raw = accuracy(ws, xte, yte)
    train(ws, xtr, ytr, 40, masks=masks, seed=args.seed + 1)
    acc_pruned = accuracy(ws, xte, yte)
    cls = [compress_layer(w, density=1.0, pes=args.pes, mask=mk) for w, mk in zip(ws, masks)]
    share = [(cl.codes, cl.centroids.copy()) for cl in cls]
    ws_shared = [np.where(c > 0, cent[np.maximum(c - 1, 0)], 0.0) for c, cent in share]
    acc_shared_raw = accuracy(ws_shared, xte, yte)
    train(ws_shared, xtr, ytr, 20, seed=args.seed + 2, share=share)
    acc_shared = accuracy(ws_shared, xte, yte)
    cfg = EIEConfig(pes=args.pes, act_depth=-(-100 // args.pes))
    cls = [compress_layer(w, density=1.0, pes=args.pes, mask=mk, frac_bits=cfg.frac_bits)
           for w, mk in zip(ws_shared, masks)]
    acc_eie = eie_accuracy(cls, xte, yte, cfg)

    dense_bits = sum(w.size for w in ws) * 32
    pruned_bits = shared_bits = 0
    print("## Per layer (digits MLP 64-100-10, %d PEs)\n" % args.pes)
    print("| layer | weights | kept (P) | entries (fillers) | dense | pruned | "
          "pruned + shared | rate |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, cl in zip(("fc1", "fc2"), cls):
        st = storage_bits(cl.csc)
        pb = cl.csc.entries * (32 + 4) + st["pointers"]
        pruned_bits += pb
        shared_bits += st["total"]
        d = cl.codes.size * 32
        print(f"| {name} | {cl.codes.size} | {100 * cl.dense_nonzeros / cl.codes.size:.0f} % | "
              f"{cl.csc.entries} ({cl.csc.fillers}) | {d / 8192:.2f} KB | {pb / 8192:.2f} KB | "
              f"{st['total'] / 8192:.2f} KB | {d / st['total']:.1f}x |")
    print("\n## Deep Compression table format (test set, %d samples)\n" % len(yte))
    print("| network | top-1 error | size | compression rate |")
    print("|---|---:|---:|---:|")
    rows = [("reference (float32)", acc_ref, dense_bits),
            ("pruned, before retraining", acc_pruned_raw, pruned_bits),
            ("pruned + retrained", acc_pruned, pruned_bits),
            ("+ shared, before fine-tuning", acc_shared_raw, shared_bits),
            ("+ shared, centroids fine-tuned", acc_shared, shared_bits),
            ("+ EIE fixed point (golden model)", acc_eie, shared_bits)]
    for name, acc, bits in rows:
        print(f"| {name} | {100 * (1 - acc):.2f} % | {bits / 8192:.2f} KB | "
              f"{dense_bits / bits:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
