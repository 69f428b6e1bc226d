"""nnloom's own network format (TOML); described in docs/network-format.md.

::

    name = "digits_mlp"
    weights = "digits_mlp.npz"      # optional, relative to this file; or { seed = N }:
                                    # seeded random weights of the layers' shapes
    [input]
    shape = [64]                    # [C, H, W] or [F], one sample
    [[layers]]
    type = "fc"                     # conv | dwconv | fc | relu | maxpool | avgpool |
    out = 32                        # gavgpool | flatten | add | batchnorm

Every key is checked: an unknown key, a wrong type or a value out of range
raises :class:`nnloom.gen.frontend.network.NetworkError` naming the file and the field.

Two layer types are not layers of the :class:`Network` itself:

* ``add`` (``from = "<earlier layer>"``, or ``"input"``) adds the output of
  that earlier layer to the previous layer's output: the network becomes a
  DAG (``Network.inputs``), the add reading ``[previous, from]``.
* ``batchnorm`` (``eps``, default 1e-5) directly after a conv or dwconv is
  folded into it at load time, per output channel ``c``:
  ``W'[c] = W[c] * gamma[c] / sqrt(var[c] + eps)``,
  ``b'[c] = (b[c] - mean[c]) * gamma[c] / sqrt(var[c] + eps) + beta[c]``
  (``b = 0`` for a conv without bias; the folded conv always has one).  Its
  weights are ``<bn>.gamma``, ``<bn>.beta``, ``<bn>.mean``, ``<bn>.var``
  (``[M]``); its name then stands for the folded conv's output.

Errors name the TOML layer index (``layers[i]``), counting add and
batchnorm tables.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from nnloom.gen.frontend.network import (
    Add, AvgPool, Conv2d, Dense, DepthwiseConv2d, Flatten, GlobalAvgPool, MaxPool, Network,
    NetworkError, ReLU,
)

__all__ = ["load_toml", "parse_toml", "LAYER_KEYS", "LIMITS"]

# Allowed range of every integer field (inclusive).
LIMITS = {
    "out_channels": (1, 65536), "out": (1, 1 << 20), "kernel": (1, 15),
    "stride": (1, 8), "padding": (0, 8), "shape": (1, 1 << 16), "depth_multiplier": (1, 64),
}
EPS_RANGE = (0.0, 1.0)          # batchnorm eps: 0 < eps <= 1
BN_PARAMS = ("gamma", "beta", "mean", "var")

# type -> {key: required}
LAYER_KEYS = {
    "conv": {"out_channels": True, "kernel": True, "stride": False, "padding": False, "bias": False},
    "dwconv": {"kernel": True, "depth_multiplier": False, "stride": False, "padding": False,
               "bias": False},
    "fc": {"out": True, "bias": False},
    "relu": {},
    "maxpool": {"kernel": True, "stride": False},
    "avgpool": {"kernel": True, "stride": False},
    "gavgpool": {},
    "flatten": {},
    "add": {"from": True},
    "batchnorm": {"eps": False},
}


@dataclass(frozen=True)
class _AddSpec:
    """A TOML ``add`` before its ``from`` is resolved to a layer index."""
    name: str
    src: str


@dataclass(frozen=True)
class _BatchNormSpec:
    """A TOML ``batchnorm``: folded into the conv before it, never a layer."""
    name: str
    eps: float


def _int(src, field, value, key):
    lo, hi = LIMITS[key]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise NetworkError(src, field, f"expected an integer {lo}..{hi}, got {value!r}")
    return value


def _kernel(src, field, value, square=False):
    if isinstance(value, list) and not square:
        if len(value) != 2:
            raise NetworkError(src, field, f"expected an integer or [R, S], got {value!r}")
        return tuple(_int(src, f"{field}[{i}]", v, "kernel") for i, v in enumerate(value))
    if isinstance(value, list):
        raise NetworkError(src, field, f"expected an integer (square window), got {value!r}")
    k = _int(src, field, value, "kernel")
    return k if square else (k, k)


def _layer(src, i, spec):
    where = f"layers[{i}]"
    if not isinstance(spec, dict):
        raise NetworkError(src, where, f"expected a table, got {spec!r}")
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in LAYER_KEYS:
        raise NetworkError(src, f"{where}.type",
                           f"expected one of {', '.join(LAYER_KEYS)}, got {kind!r}")
    keys = LAYER_KEYS[kind]
    for key in spec:
        if key not in keys and key not in ("type", "name"):
            allowed = ", ".join(["type", "name", *keys])
            raise NetworkError(src, f"{where}.{key}", f"expected one of the keys {allowed} "
                               f"for a {kind} layer, got {key!r}")
    for key, required in keys.items():
        if required and key not in spec:
            raise NetworkError(src, f"{where}.{key}", f"expected a value (required for {kind}), got nothing")
    name = spec.get("name", f"{kind}{i}")
    if not isinstance(name, str) or not name or not name.replace("_", "").isalnum():
        raise NetworkError(src, f"{where}.name", f"expected a name of letters, digits and _, got {name!r}")
    bias = spec.get("bias", True)
    if not isinstance(bias, bool):
        raise NetworkError(src, f"{where}.bias", f"expected true or false, got {bias!r}")
    if kind == "conv":
        return Conv2d(name, _int(src, f"{where}.out_channels", spec["out_channels"], "out_channels"),
                      _kernel(src, f"{where}.kernel", spec["kernel"]),
                      stride=_int(src, f"{where}.stride", spec.get("stride", 1), "stride"),
                      padding=_int(src, f"{where}.padding", spec.get("padding", 0), "padding"),
                      bias=bias)
    if kind == "dwconv":
        p = _int(src, f"{where}.padding", spec.get("padding", 0), "padding")
        return DepthwiseConv2d(name, _kernel(src, f"{where}.kernel", spec["kernel"]),
                               stride=_int(src, f"{where}.stride", spec.get("stride", 1), "stride"),
                               pads=(p, p, p, p),
                               depth_multiplier=_int(src, f"{where}.depth_multiplier",
                                                     spec.get("depth_multiplier", 1), "depth_multiplier"),
                               bias=bias)
    if kind == "add":
        frm = spec["from"]
        if not isinstance(frm, str) or not frm:
            raise NetworkError(src, f"{where}.from", f"expected the name of an earlier layer "
                               f"(or \"input\"), got {frm!r}")
        return _AddSpec(name, frm)
    if kind == "batchnorm":
        eps = spec.get("eps", 1e-5)
        lo, hi = EPS_RANGE
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not lo < eps <= hi:
            raise NetworkError(src, f"{where}.eps", f"expected a number > {lo:g} and <= {hi:g}, got {eps!r}")
        return _BatchNormSpec(name, float(eps))
    if kind == "gavgpool":
        return GlobalAvgPool(name)
    if kind == "fc":
        return Dense(name, _int(src, f"{where}.out", spec["out"], "out"), bias=bias)
    if kind in ("maxpool", "avgpool"):
        k = _kernel(src, f"{where}.kernel", spec["kernel"], square=True)
        stride = spec.get("stride")
        if stride is not None:
            stride = _int(src, f"{where}.stride", stride, "stride")
        return (MaxPool if kind == "maxpool" else AvgPool)(name, k, stride)
    return ReLU(name) if kind == "relu" else Flatten(name)


def parse_toml(doc: dict, src: str = "<toml>", base: Path | None = None) -> Network:
    """A :class:`Network` from a parsed TOML document (``base``: folder for ``weights``)."""
    for key in doc:
        if key not in ("name", "input", "layers", "weights", "description"):
            raise NetworkError(src, key, "expected one of the keys name, description, input, "
                               f"layers, weights, got {key!r}")
    name = doc.get("name", Path(src).stem)
    if not isinstance(name, str) or not name:
        raise NetworkError(src, "name", f"expected a non-empty string, got {name!r}")
    inp = doc.get("input")
    if not isinstance(inp, dict) or "shape" not in inp:
        raise NetworkError(src, "input.shape", f"expected [C, H, W] or [F], got {inp!r}")
    shape = inp["shape"]
    if not isinstance(shape, list) or len(shape) not in (1, 3):
        raise NetworkError(src, "input.shape", f"expected [C, H, W] or [F], got {shape!r}")
    shape = [_int(src, f"input.shape[{i}]", v, "shape") for i, v in enumerate(shape)]
    layers = doc.get("layers")
    if not isinstance(layers, list) or not layers:
        raise NetworkError(src, "layers", f"expected one or more [[layers]] tables, got {layers!r}")
    specs = [_layer(src, i, s) for i, s in enumerate(layers)]
    net_layers, inputs, folds = _build(src, tuple(shape), specs)
    net = Network(name, tuple(shape), net_layers, source=src, inputs=inputs)
    wfile = doc.get("weights")
    if isinstance(wfile, dict):
        # weights = { seed = N }: seeded random weights of the network's shapes
        if set(wfile) != {"seed"} or not isinstance(wfile["seed"], int) or isinstance(
                wfile["seed"], bool) or not 0 <= wfile["seed"] < 2 ** 32:
            raise NetworkError(src, "weights", "expected a .npz file name or { seed = N } "
                               f"(N in 0..2**32-1), got {wfile!r}")
        rng = np.random.default_rng(wfile["seed"])
        weights = {}
        for key, wshape in sorted(net.weight_shapes().items()):
            fan_in = int(np.prod(wshape[1:])) if len(wshape) > 1 else 1
            weights[key] = rng.normal(0.0, 1.0 / np.sqrt(max(1, fan_in)), wshape).astype(np.float32)
        net.weights = _fold(src, net, weights, folds)
        net.check_weights()
    elif wfile is not None:
        if not isinstance(wfile, str):
            raise NetworkError(src, "weights", f"expected a .npz file name, got {wfile!r}")
        path = (base or Path(".")) / wfile
        try:
            with np.load(path, allow_pickle=False) as z:
                weights = {k: z[k].astype(np.float32) for k in z.files}
        except (OSError, ValueError) as e:
            raise NetworkError(src, "weights", f"expected a readable .npz file, got {str(path)!r} "
                               f"({e.__class__.__name__})") from None
        net.weights = _fold(src, net, weights, folds)
        net.check_weights()
    return net


def _build(src, input_shape, specs):
    """Network layers, their inputs (None: a chain) and the batchnorm folds
    ``[(conv index, conv had a bias, batchnorm spec)]`` from the parsed TOML
    layers; every shape checked, errors naming the TOML index."""
    layers, inputs, shapes, folds = [], [], [], []
    index = {}                     # name -> network layer index (its output)
    folded = {}                    # conv name -> the batchnorm folded into it
    seen = set()
    shape = tuple(input_shape)
    for i, spec in enumerate(specs):
        where = f"layers[{i}]"
        if spec.name in seen:
            raise NetworkError(src, f"{where}.name", f"expected a unique layer name, got {spec.name!r} twice")
        seen.add(spec.name)
        if isinstance(spec, _BatchNormSpec):
            prev = specs[i - 1] if i else None
            if not isinstance(prev, (Conv2d, DepthwiseConv2d)):
                got = f"a {_kind(prev)} layer" if prev is not None else "the network input"
                raise NetworkError(src, f"{where}.type", f"expected batchnorm directly after a conv or "
                                   f"dwconv layer (it is folded into it), got it after {got}")
            k = len(layers) - 1
            folds.append((k, layers[k].bias, spec))
            layers[k] = replace(layers[k], bias=True)
            folded[layers[k].name] = spec.name
            del index[layers[k].name]
            index[spec.name] = k
            continue
        if isinstance(spec, _AddSpec):
            if spec.src in index:
                j = index[spec.src]
            elif spec.src == "input":
                j = -1
            else:
                if spec.src in folded:
                    why = f"{spec.src!r}, whose output is folded into batchnorm {folded[spec.src]!r} (name that)"
                else:
                    why = repr(spec.src)
                allowed = ", ".join([*index, "input"])
                raise NetworkError(src, f"{where}.from", f"expected the name of an earlier layer "
                                   f"({allowed}), got {why}")
            other = tuple(input_shape) if j == -1 else shapes[j]
            if other != shape:
                raise NetworkError(src, f"{where}.from", f"expected a layer whose output has this "
                                   f"layer's input shape {list(shape)}, got {spec.src!r} with {list(other)}")
            layer = Add(spec.name, (len(layers) - 1, j))
            inputs.append([len(layers) - 1, j])
        else:
            layer = spec
            inputs.append([len(layers) - 1])
        try:
            shape = tuple(int(v) for v in layer.out_shape(shape))
        except ValueError as e:
            raise NetworkError(src, f"{where} ({layer.name})", str(e)) from None
        if min(shape) < 1:
            raise NetworkError(src, f"{where} ({layer.name})", f"expected a non-empty output, got shape {shape}")
        index[layer.name] = len(layers)
        layers.append(layer)
        shapes.append(shape)
    dag = any(layer.kind == "add" for layer in layers)
    return layers, (inputs if dag else None), folds


def _kind(layer):
    return "batchnorm" if isinstance(layer, _BatchNormSpec) else "add" if isinstance(layer, _AddSpec) \
        else layer.kind


def _fold(src, net, weights, folds):
    """``weights`` with each batchnorm folded into its conv (float64, stored float32)."""
    weights = dict(weights)
    want = net.weight_shapes()
    for k, had_bias, bn in folds:
        conv = net.layers[k]
        m = want[f"{conv.name}.weight"][0]
        wkey, bkey = f"{conv.name}.weight", f"{conv.name}.bias"
        if wkey not in weights:
            raise NetworkError(src, wkey, "expected weights for this layer, got none")
        if tuple(np.shape(weights[wkey])) != want[wkey]:
            raise NetworkError(src, wkey, f"expected shape {list(want[wkey])}, got {list(np.shape(weights[wkey]))}")
        if not had_bias and bkey in weights:
            raise NetworkError(src, bkey, "expected no bias (the conv has bias = false), got one")
        if had_bias and bkey not in weights:
            raise NetworkError(src, bkey, "expected weights for this layer, got none")
        p = {}
        for part in BN_PARAMS:
            key = f"{bn.name}.{part}"
            if key not in weights:
                raise NetworkError(src, key, "expected batchnorm weights (gamma, beta, mean, var), got none")
            v = np.asarray(weights.pop(key), np.float64)
            if v.shape != (m,):
                raise NetworkError(src, key, f"expected shape [{m}], got {list(v.shape)}")
            if not np.all(np.isfinite(v)):
                raise NetworkError(src, key, "expected finite values, got inf or nan")
            p[part] = v
        if np.any(p["var"] < 0):
            raise NetworkError(src, f"{bn.name}.var", f"expected variances >= 0, got {p['var'].min():g}")
        g = p["gamma"] / np.sqrt(p["var"] + bn.eps)
        w = np.asarray(weights[wkey], np.float64)
        b = np.asarray(weights[bkey], np.float64) if had_bias else np.zeros(m)
        weights[wkey] = (w * g.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
        weights[bkey] = ((b - p["mean"]) * g + p["beta"]).astype(np.float32)
    return weights


def load_toml(path) -> Network:
    path = Path(path)
    src = str(path)
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise NetworkError(src, "syntax", f"expected valid TOML, got an error: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise NetworkError(src, "file", f"expected a readable text file, got {e.__class__.__name__}") from None
    return parse_toml(doc, src, path.parent)
