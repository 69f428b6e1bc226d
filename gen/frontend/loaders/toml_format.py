"""nnloom's own network format (TOML); described in docs/network-format.md.

::

    name = "digits_mlp"
    weights = "digits_mlp.npz"      # optional, relative to this file
    [input]
    shape = [64]                    # [C, H, W] or [F], one sample
    [[layers]]
    type = "fc"                     # conv | fc | relu | maxpool | avgpool | flatten
    out = 32

Every key is checked: an unknown key, a wrong type or a value out of range
raises :class:`nnloom.gen.frontend.network.NetworkError` naming the file and the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np

from nnloom.gen.frontend.network import AvgPool, Conv2d, Dense, Flatten, MaxPool, Network, NetworkError, ReLU

__all__ = ["load_toml", "parse_toml", "LAYER_KEYS", "LIMITS"]

# Allowed range of every integer field (inclusive).
LIMITS = {
    "out_channels": (1, 65536), "out": (1, 1 << 20), "kernel": (1, 15),
    "stride": (1, 8), "padding": (0, 8), "shape": (1, 1 << 16),
}

# type -> {key: required}
LAYER_KEYS = {
    "conv": {"out_channels": True, "kernel": True, "stride": False, "padding": False, "bias": False},
    "fc": {"out": True, "bias": False},
    "relu": {},
    "maxpool": {"kernel": True, "stride": False},
    "avgpool": {"kernel": True, "stride": False},
    "flatten": {},
}


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
    net = Network(name, tuple(shape), [_layer(src, i, s) for i, s in enumerate(layers)], source=src)
    wfile = doc.get("weights")
    if wfile is not None:
        if not isinstance(wfile, str):
            raise NetworkError(src, "weights", f"expected a .npz file name, got {wfile!r}")
        path = (base or Path(".")) / wfile
        try:
            with np.load(path, allow_pickle=False) as z:
                weights = {k: z[k].astype(np.float32) for k in z.files}
        except (OSError, ValueError) as e:
            raise NetworkError(src, "weights", f"expected a readable .npz file, got {str(path)!r} "
                               f"({e.__class__.__name__})") from None
        net.weights = weights
        net.check_weights()
    return net


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
