"""Networks: typed layers with shape inference.

A :class:`Network` is a named, sequential list of layers applied to an input
of shape ``(C, H, W)`` (images) or ``(F,)`` (feature vectors).  Shapes are
inferred layer by layer; an inconsistent network raises
:class:`NetworkError`, whose message names the source file, the field and
what is allowed, e.g.
``examples/lenet.toml: layers[2].kernel: expected 1..11, got 0``.

Weights, when the description carries them, live in ``Network.weights`` as
float32 arrays keyed by layer name: ``"<name>.weight"`` (conv: ``[M, C, R,
S]``, fc: ``[out, in]``) and ``"<name>.bias"`` (``[M]`` / ``[out]``).  A
network without weights is still good for timing (the performance model and
the planner).

Loaders (TOML, ONNX, SCALE-Sim CSV) build networks from files; see
:mod:`nnloom.gen.frontend.loaders`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Union

import numpy as np
from nnloom.hw.errors import InputError

__all__ = ["NetworkError", "Conv2d", "Dense", "ReLU", "MaxPool", "AvgPool", "Flatten",
           "DepthwiseConv2d", "GlobalAvgPool", "ReLU6", "Add", "Layer", "Network", "LAYER_KINDS"]


class NetworkError(InputError):
    """Bad network description: one line naming the file, field and allowed values."""

    def __init__(self, where: str, field_: str, message: str):
        self.where, self.field, self.message = where, field_, message
        super().__init__(f"{where}: {field_}: {message}" if field_ else f"{where}: {message}")


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class _Weightless:
    """A layer with no weights and no MACs (the vector unit's work)."""

    def macs(self, shape):
        return 0

    def weight_shapes(self, shape):
        return {}


@dataclass(frozen=True)
class Conv2d:
    """2-D convolution, NCHW, ``out_channels`` filters of ``kernel`` (R x S),
    zero ``padding`` on every side, ``stride`` in both directions."""

    name: str
    out_channels: int
    kernel: tuple[int, int]
    stride: int = 1
    padding: int = 0
    bias: bool = True
    pads: tuple | None = None   # (top, bottom, left, right), overrides padding (TFLite SAME)
    kind = "conv"

    @property
    def pad4(self):
        return tuple(self.pads) if self.pads is not None else (self.padding,) * 4

    def out_shape(self, shape):
        if len(shape) != 3:
            raise ValueError(f"expected a (C, H, W) input, got {shape}")
        c, h, w = shape
        r, s = self.kernel
        t, b, l, rt = self.pad4
        if r > h + t + b or s > w + l + rt:
            raise ValueError(f"expected a kernel within the padded input "
                             f"{h + t + b}x{w + l + rt}, got {r}x{s}")
        return (self.out_channels, (h + t + b - r) // self.stride + 1,
                (w + l + rt - s) // self.stride + 1)

    def macs(self, shape):
        m, e, f = self.out_shape(shape)
        return m * e * f * shape[0] * self.kernel[0] * self.kernel[1]

    def gemm_shape(self, shape):
        """(M, K, N) of the layer as a GEMM (im2col): output pixels x
        (C x R x S) x filters."""
        m, e, f = self.out_shape(shape)
        return e * f, shape[0] * self.kernel[0] * self.kernel[1], m

    def weight_shapes(self, shape):
        out = {f"{self.name}.weight": (self.out_channels, shape[0], *self.kernel)}
        if self.bias:
            out[f"{self.name}.bias"] = (self.out_channels,)
        return out


@dataclass(frozen=True)
class Dense:
    """Fully connected: ``out_features`` outputs from a flat input."""

    name: str
    out_features: int
    bias: bool = True
    kind = "fc"

    def out_shape(self, shape):
        if len(shape) != 1:
            raise ValueError(f"expected a flat input (add a flatten layer), got {shape}")
        return (self.out_features,)

    def macs(self, shape):
        return shape[0] * self.out_features

    def gemm_shape(self, shape):
        return 1, shape[0], self.out_features

    def weight_shapes(self, shape):
        out = {f"{self.name}.weight": (self.out_features, shape[0])}
        if self.bias:
            out[f"{self.name}.bias"] = (self.out_features,)
        return out


@dataclass(frozen=True)
class ReLU(_Weightless):
    name: str
    kind = "relu"

    def out_shape(self, shape):
        return tuple(shape)


@dataclass(frozen=True)
class _Pool(_Weightless):
    name: str
    kernel: int
    stride: int | None = None  # default: kernel

    @property
    def step(self):
        return self.kernel if self.stride is None else self.stride

    def out_shape(self, shape):
        if len(shape) != 3:
            raise ValueError(f"expected a (C, H, W) input, got {shape}")
        c, h, w = shape
        if self.kernel > h or self.kernel > w:
            raise ValueError(f"expected a window within the input {h}x{w}, got {self.kernel}")
        return (c, (h - self.kernel) // self.step + 1, (w - self.kernel) // self.step + 1)


@dataclass(frozen=True)
class MaxPool(_Pool):
    kind = "maxpool"


@dataclass(frozen=True)
class AvgPool(_Pool):
    kind = "avgpool"


@dataclass(frozen=True)
class Flatten(_Weightless):
    name: str
    kind = "flatten"

    def out_shape(self, shape):
        return (int(math.prod(shape)),)


@dataclass(frozen=True)
class DepthwiseConv2d:
    """Depthwise convolution: each input channel ``c`` gives ``depth_multiplier``
    output channels ``c * depth_multiplier + k`` from its own R x S filter;
    weight ``[C * depth_multiplier, 1, R, S]``."""

    name: str
    kernel: tuple[int, int]
    stride: int = 1
    pads: tuple = (0, 0, 0, 0)      # (top, bottom, left, right)
    depth_multiplier: int = 1
    bias: bool = True
    kind = "dwconv"

    def out_shape(self, shape):
        if len(shape) != 3:
            raise ValueError(f"expected a (C, H, W) input, got {shape}")
        c, h, w = shape
        r, s = self.kernel
        t, b, l, rt = self.pads
        if r > h + t + b or s > w + l + rt:
            raise ValueError(f"expected a kernel within the padded input {h + t + b}x{w + l + rt}, "
                             f"got {r}x{s}")
        return (c * self.depth_multiplier, (h + t + b - r) // self.stride + 1,
                (w + l + rt - s) // self.stride + 1)

    def macs(self, shape):
        m, e, f = self.out_shape(shape)
        return m * e * f * self.kernel[0] * self.kernel[1]

    def weight_shapes(self, shape):
        m = shape[0] * self.depth_multiplier
        out = {f"{self.name}.weight": (m, 1, *self.kernel)}
        if self.bias:
            out[f"{self.name}.bias"] = (m,)
        return out


@dataclass(frozen=True)
class GlobalAvgPool(_Weightless):
    """Mean over H x W: (C, H, W) -> (C, 1, 1)."""

    name: str
    kind = "gavgpool"

    def out_shape(self, shape):
        if len(shape) != 3:
            raise ValueError(f"expected a (C, H, W) input, got {shape}")
        return (shape[0], 1, 1)


@dataclass(frozen=True)
class ReLU6(ReLU):
    """min(max(x, 0), 6): shapes and costs as :class:`ReLU`."""

    kind = "relu6"


@dataclass(frozen=True)
class Add(_Weightless):
    """Element-wise sum of the outputs of the layers ``sources`` (indices into
    ``Network.layers``, -1 the network input); needs ``Network.inputs``."""

    name: str
    sources: tuple = ()
    kind = "add"

    def out_shape(self, shape):
        return tuple(shape)


Layer = Union[Conv2d, Dense, ReLU, MaxPool, AvgPool, Flatten, DepthwiseConv2d, GlobalAvgPool,
              ReLU6, Add]
LAYER_KINDS = {cls.kind: cls for cls in (Conv2d, Dense, ReLU, MaxPool, AvgPool, Flatten,
                                         DepthwiseConv2d, GlobalAvgPool, ReLU6, Add)}


@dataclass
class Network:
    """A sequential network; ``source`` names the file it came from (for errors)."""

    name: str
    input_shape: tuple[int, ...]
    layers: list
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = "<network>"
    # Timing-only topologies (SCALE-Sim CSV) list independent layers, each
    # with its own input shape; then layer i reads layer_inputs[i] instead of
    # the previous layer's output, and the network cannot run.
    layer_inputs: list | None = None
    # A DAG (residual adds): layer i reads the outputs of the layers inputs[i]
    # (-1: the network input; an add reads two).  None: each layer reads the
    # previous one.
    inputs: list | None = None

    def __post_init__(self):
        self.input_shape = tuple(int(v) for v in self.input_shape)
        if len(self.input_shape) not in (1, 3) or min(self.input_shape, default=0) < 1:
            raise NetworkError(self.source, "input.shape",
                               f"expected [C, H, W] or [F] of positive sizes, got {list(self.input_shape)}")
        if self.layer_inputs is not None and len(self.layer_inputs) != len(self.layers):
            raise NetworkError(self.source, "layer_inputs",
                               f"expected one input shape per layer ({len(self.layers)}), "
                               f"got {len(self.layer_inputs)}")
        if self.inputs is not None:
            if len(self.inputs) != len(self.layers):
                raise NetworkError(self.source, "inputs", f"expected one input list per layer "
                                   f"({len(self.layers)}), got {len(self.inputs)}")
            for i, src in enumerate(self.inputs):
                want = 2 if self.layers[i].kind == "add" else 1
                if len(src) != want or any(not -1 <= j < i for j in src):
                    raise NetworkError(self.source, f"inputs[{i}]", f"expected {want} earlier layer "
                                       f"indices (-1: the input), got {list(src)}")
        elif any(layer.kind == "add" for layer in self.layers):
            raise NetworkError(self.source, "inputs", "expected the layers' inputs for a residual "
                               "add, got a sequential network")
        names = set()
        for i, layer in enumerate(self.layers):
            if layer.name in names:
                raise NetworkError(self.source, f"layers[{i}].name",
                                   f"expected a unique layer name, got {layer.name!r} twice")
            names.add(layer.name)
        self.shapes()  # check now, fail early
        if self.weights:
            self.check_weights()

    def shapes(self) -> list[tuple[int, ...]]:
        """Output shape of every layer (inputs of layer i are shapes()[i-1])."""
        out, shape = [], self.input_shape
        for i, layer in enumerate(self.layers):
            if self.layer_inputs is not None:
                shape = tuple(self.layer_inputs[i])
            if self.inputs is not None:
                srcs = [self.input_shape if j == -1 else out[j] for j in self.inputs[i]]
                if any(tuple(v) != tuple(srcs[0]) for v in srcs):
                    raise NetworkError(self.source, f"layers[{i}] ({layer.name})",
                                       f"expected inputs of one shape, got {[list(v) for v in srcs]}")
                shape = srcs[0]
            try:
                shape = layer.out_shape(shape)
            except ValueError as e:
                raise NetworkError(self.source, f"layers[{i}] ({layer.name})", str(e)) from None
            if min(shape) < 1:
                raise NetworkError(self.source, f"layers[{i}] ({layer.name})",
                                   f"expected a non-empty output, got shape {shape}")
            out.append(tuple(int(v) for v in shape))
        return out

    def in_shapes(self) -> list[tuple[int, ...]]:
        if self.layer_inputs is not None:
            self.shapes()
            return [tuple(int(v) for v in s) for s in self.layer_inputs]
        if self.inputs is not None:
            out = self.shapes()
            return [self.input_shape if src[0] == -1 else out[src[0]] for src in self.inputs]
        return [self.input_shape] + self.shapes()[:-1]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shapes()[-1] if self.layers else self.input_shape

    def macs(self) -> int:
        return sum(layer.macs(s) for layer, s in zip(self.layers, self.in_shapes()))

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        out = {}
        for layer, s in zip(self.layers, self.in_shapes()):
            out.update(layer.weight_shapes(s))
        return out

    def check_weights(self) -> None:
        want = self.weight_shapes()
        for key, shape in want.items():
            if key not in self.weights:
                raise NetworkError(self.source, key, "expected weights for this layer, got none")
            got = tuple(np.shape(self.weights[key]))
            if got != shape:
                raise NetworkError(self.source, key, f"expected shape {list(shape)}, got {list(got)}")
        extra = sorted(set(self.weights) - set(want))
        if extra:
            raise NetworkError(self.source, extra[0], "expected weights only for layers, got these for no layer")

    @property
    def has_weights(self) -> bool:
        return bool(self.weights)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Float reference inference of one input (float64)."""
        if not self.has_weights or self.layer_inputs is not None:
            raise NetworkError(self.source, "weights", "the network has no weights to run")
        x = np.asarray(x, dtype=np.float64).reshape(self.input_shape)
        if self.inputs is not None or any(l.kind not in _SEQUENTIAL for l in self.layers):
            from nnloom.gen.frontend.float_ref import run_float

            return run_float(self, x)[-1]
        for layer in self.layers:
            x = _float_layer(layer, x, self.weights)
        return x


_SEQUENTIAL = ("conv", "fc", "relu", "maxpool", "avgpool", "flatten")


def _float_layer(layer, x, weights):
    if layer.kind == "conv" and layer.pads is not None:
        from nnloom.gen.frontend.float_ref import run_float_layer

        return run_float_layer(layer, x[None], weights)[0]
    if layer.kind == "conv":
        w = weights[f"{layer.name}.weight"].astype(np.float64)
        b = weights.get(f"{layer.name}.bias")
        p = layer.padding
        xp = np.pad(x, ((0, 0), (p, p), (p, p)))
        m, e, f = layer.out_shape(x.shape)
        r, s = layer.kernel
        cols = np.empty((x.shape[0] * r * s, e * f))
        idx = 0
        for c in range(x.shape[0]):
            for i in range(r):
                for j in range(s):
                    cols[idx] = xp[c, i:i + layer.stride * e:layer.stride,
                                   j:j + layer.stride * f:layer.stride].reshape(-1)
                    idx += 1
        y = w.reshape(m, -1) @ cols
        if b is not None:
            y += b.astype(np.float64)[:, None]
        return y.reshape(m, e, f)
    if layer.kind == "fc":
        y = weights[f"{layer.name}.weight"].astype(np.float64) @ x
        b = weights.get(f"{layer.name}.bias")
        return y + b if b is not None else y
    if layer.kind == "relu":
        return np.maximum(x, 0)
    if layer.kind in ("maxpool", "avgpool"):
        c, e, f = layer.out_shape(x.shape)
        k, st = layer.kernel, layer.step
        win = np.stack([x[:, i:i + st * e:st, j:j + st * f:st] for i in range(k) for j in range(k)])
        return win.max(axis=0) if layer.kind == "maxpool" else win.mean(axis=0)
    if layer.kind == "flatten":
        return x.reshape(-1)
    raise NetworkError("<network>", layer.name, f"unsupported layer kind {layer.kind!r}")
