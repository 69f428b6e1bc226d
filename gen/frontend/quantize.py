"""Post-training quantization of a float :class:`Network` with weights.

Two formats, both producing a :class:`nnloom.gen.frontend.qtypes.QuantizedNetwork` whose
arithmetic is the contract in :mod:`nnloom.gen.frontend.qtypes`:

``int8``
    Weights symmetric per output channel: ``w_scale[c] = max|w[c]| / 127``,
    ``q = round_half_even(w / w_scale)`` in ``-127..127``.  Activations
    symmetric per tensor (zero point 0): ``scale = max|a| / 127`` with
    ``max|a|`` the largest magnitude of that tensor over the calibration
    inputs (float reference, ReLU applied when fused).  Biases
    ``round_half_even(b / (in_scale * w_scale[c]))`` saturated to int32.
    Requantization ``(mult, shift) = multiplier_from_real(in_scale *
    w_scale[c] / out_scale)``.

``qmn``
    Per-layer fixed point (Minerva, DNN Weaver): every scale is a power of
    two, ``2**-n``, with the largest ``n`` such that the calibrated maximum
    still fits in int8 (Qm.n with m + n = 7 magnitude bits; n may be
    negative or above 7).  Weights share one format per layer.  The
    requantization multiplier is then exactly ``2**30 / 2**shift``.

A ReLU directly after a conv / fc layer is fused into it (``qmin = out_zp``),
so the quantized network has one layer fewer per such ReLU.  Max pooling and
flatten keep their input's scale; average pooling keeps it too and
requantizes by ``1 / k**2``; a standalone ReLU keeps its scale
(``max(x, 0)``).
"""

from __future__ import annotations

import math

import numpy as np

from nnloom.gen.frontend.network import Network, NetworkError
from nnloom.gen.frontend.qtypes import INT8, QLayer, QuantizedNetwork, multiplier_from_real
from nnloom.hw.errors import InputError

__all__ = ["quantize", "QuantizeError", "FORMATS"]

FORMATS = ("int8", "qmn")
_INT32 = (-(1 << 31), (1 << 31) - 1)


class QuantizeError(InputError):
    """Bad quantizer input (one line)."""


def _scale(maxabs: float, fmt: str) -> float:
    if not maxabs > 0:
        maxabs = 1.0                      # an all-zero tensor: any scale represents it
    if fmt == "int8":
        return maxabs / 127.0
    n = math.floor(math.log2(127.0 / maxabs))
    return 2.0 ** -n


def _frac_bits(scale: float) -> int:
    return -int(round(math.log2(scale)))


def _mults(reals):
    pairs = [multiplier_from_real(r) for r in reals]
    return (np.array([m for m, _ in pairs], np.int64), np.array([s for _, s in pairs], np.int64))


def quantize(network: Network, calibration, fmt: str = "int8") -> QuantizedNetwork:
    """Quantize ``network`` using ``calibration`` inputs ([N, *input_shape], floats)."""
    from nnloom.gen.frontend.float_ref import run_float

    if fmt not in FORMATS:
        raise QuantizeError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if not network.has_weights or network.layer_inputs is not None:
        raise NetworkError(network.source, "weights", "expected a network with weights to quantize, got none")
    calib = np.asarray(calibration, np.float64)
    if calib.ndim == len(network.input_shape):
        calib = calib[None]
    if calib.shape[1:] != network.input_shape or len(calib) == 0:
        raise QuantizeError(f"calibration: expected inputs shaped [N, {', '.join(map(str, network.input_shape))}], "
                            f"got {list(calib.shape)}")
    acts = run_float(network, calib)
    in_shapes, out_shapes = network.in_shapes(), network.shapes()
    in_scale = _scale(float(np.abs(calib).max()), fmt)
    qnet = QuantizedNetwork(network.name, network.input_shape, in_scale, 0, [], fmt=fmt)
    cur = in_scale
    layers = network.layers
    i = 0
    while i < len(layers):
        layer = layers[i]
        fuse = layer.kind in ("conv", "fc") and i + 1 < len(layers) and layers[i + 1].kind == "relu"
        last = i + 1 if fuse else i
        ql = QLayer(layer.name, layer.kind, in_shapes[i], out_shapes[last], cur, 0, cur, 0)
        if layer.kind in ("conv", "fc"):
            out_scale = _scale(float(np.abs(acts[last]).max()), fmt)
            w = network.weights[f"{layer.name}.weight"].astype(np.float64)
            b = network.weights.get(f"{layer.name}.bias")
            flat = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
            if fmt == "int8":
                w_scale = np.where(flat > 0, flat / 127.0, 1.0)
            else:
                w_scale = np.full(w.shape[0], _scale(float(flat.max()), fmt))
            shape = (-1,) + (1,) * (w.ndim - 1)
            ql.weight = np.clip(np.rint(w / w_scale.reshape(shape)), -127, 127).astype(np.int64)
            ql.w_scale = w_scale
            bias = np.zeros(w.shape[0]) if b is None else b.astype(np.float64) / (cur * w_scale)
            ql.bias = np.clip(np.rint(bias), *_INT32).astype(np.int64)
            ql.mult, ql.shift = _mults(cur * w_scale / out_scale)
            ql.out_scale, ql.relu = out_scale, fuse
            ql.qmin = 0 if fuse else INT8[0]
            if layer.kind == "conv":
                ql.kernel, ql.stride, ql.padding = layer.kernel, layer.stride, layer.padding
            if fmt == "qmn":
                qnet.formats[layer.name] = {
                    "input": f"Q{7 - _frac_bits(cur)}.{_frac_bits(cur)}",
                    "weight": f"Q{7 - _frac_bits(w_scale[0])}.{_frac_bits(w_scale[0])}",
                    "output": f"Q{7 - _frac_bits(out_scale)}.{_frac_bits(out_scale)}"}
            cur = out_scale
        elif layer.kind in ("maxpool", "avgpool"):
            ql.kernel, ql.stride = (layer.kernel, layer.kernel), layer.step
            if layer.kind == "avgpool":
                ql.mult, ql.shift = _mults([1.0 / layer.kernel ** 2])
        elif layer.kind == "relu":
            ql.qmin, ql.relu = 0, True
        qnet.layers.append(ql)
        i = last + 1
    return qnet
