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

A ReLU directly after a conv / fc / dwconv / add layer is fused into it
(``qmin = out_zp``) unless another layer also reads that layer's output, so
the quantized network has one layer fewer per such ReLU.  Max pooling and
flatten keep their input's scale; average pooling keeps it too and
requantizes by ``1 / k**2``; global average pooling is the ``avgpool`` kind
with the whole input (any H x W) as its window, ``1 / (H * W)``; a standalone
ReLU keeps its scale (``max(x, 0)``).

``dwconv`` quantizes as conv (per-channel weights over its ``M = C *
depth_multiplier`` filters).  ``add`` (a DAG: ``QLayer.inputs`` are the
quantized indices of its two sources) gets its own calibrated output scale
``s_out`` and the golden ``onnxruntime`` add:
``y = clamp(((x1 * mult[0] + x2 * mult[1]) + 2**(shift - 1)) >> shift)``
with ``mult[k] / 2**shift ~ s_k / s_out`` and one shift for both (from the
larger ratio).
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
    layers = network.layers
    n = len(layers)
    dag = network.inputs is not None
    srcs = [list(v) for v in network.inputs] if dag else [[i - 1] for i in range(n)]
    readers = {j: [] for j in range(-1, n)}
    for i, src in enumerate(srcs):
        for j in src:
            readers[j].append(i)
    qidx, scale = {-1: -1}, {-1: in_scale}     # float layer index -> quantized index, output scale
    i = 0
    while i < n:
        layer = layers[i]
        # A ReLU is fused into the layer before it when nothing else reads that layer.
        fuse = (layer.kind in _FUSES and i + 1 < n and layers[i + 1].kind == "relu"
                and readers[i] == [i + 1] and srcs[i + 1] == [i])
        last = i + 1 if fuse else i
        cur = scale[srcs[i][0]]
        ql = QLayer(layer.name, layer.kind, in_shapes[i], out_shapes[last], cur, 0, cur, 0)
        if dag:
            ql.inputs = [qidx[j] for j in srcs[i]]
        if layer.kind in ("conv", "fc", "dwconv"):
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
                if layer.pads is not None:
                    ql.pads = tuple(layer.pads)
            elif layer.kind == "dwconv":
                ql.kernel, ql.stride, ql.pads = layer.kernel, layer.stride, tuple(layer.pads)
                ql.padding = layer.pads[0] if len(set(layer.pads)) == 1 else 0
                ql.depth_multiplier = layer.depth_multiplier
            if fmt == "qmn":
                qnet.formats[layer.name] = {
                    "input": f"Q{7 - _frac_bits(cur)}.{_frac_bits(cur)}",
                    "weight": f"Q{7 - _frac_bits(w_scale[0])}.{_frac_bits(w_scale[0])}",
                    "output": f"Q{7 - _frac_bits(out_scale)}.{_frac_bits(out_scale)}"}
        elif layer.kind == "add":
            s1, s2 = scale[srcs[i][0]], scale[srcs[i][1]]
            out_scale = _scale(float(np.abs(acts[last]).max()), fmt)
            ql.mult, ql.shift = _add_mults(s1 / out_scale, s2 / out_scale)
            ql.in2_scale, ql.in2_zp = s2, 0
            ql.out_scale, ql.relu = out_scale, fuse
            ql.qmin = 0 if fuse else INT8[0]
        elif layer.kind in ("maxpool", "avgpool"):
            ql.kernel, ql.stride = (layer.kernel, layer.kernel), layer.step
            if layer.kind == "avgpool":
                ql.mult, ql.shift = _mults([1.0 / layer.kernel ** 2])
        elif layer.kind == "gavgpool":
            c, h, w_ = in_shapes[i]
            ql.kind, ql.kernel, ql.stride = "avgpool", (h, w_), 1
            ql.mult, ql.shift = _mults([1.0 / (h * w_)])
        elif layer.kind == "relu":
            ql.qmin, ql.relu = 0, True
        elif layer.kind != "flatten":
            raise QuantizeError(f"{network.source}: layers[{i}] ({layer.name}): expected one of the "
                                f"kinds {', '.join(_KINDS)} to quantize, got {layer.kind!r}")
        qidx[i] = qidx[last] = len(qnet.layers)
        scale[i] = scale[last] = ql.out_scale
        qnet.layers.append(ql)
        i = last + 1
    return qnet


_FUSES = ("conv", "fc", "dwconv", "add")
_KINDS = ("conv", "dwconv", "fc", "relu", "maxpool", "avgpool", "gavgpool", "flatten", "add")


def _add_mults(r1: float, r2: float):
    """``add``'s ``(mult, shift)``: ``mult[k] / 2**shift ~ r_k`` with one
    common ``shift`` (the golden ``add`` kind shifts once, by ``shift[0]``),
    taken from the larger ratio's :func:`multiplier_from_real`; the other
    multiplier is ``round_half_even(r * 2**shift)``."""
    _, sh = multiplier_from_real(max(r1, r2))
    mult = [min(int(round(r * 2.0 ** sh)), (1 << 31) - 1) for r in (r1, r2)]
    return np.array(mult, np.int64), np.array([sh, sh], np.int64)
