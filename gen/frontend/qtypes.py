"""The quantized network: the contract between the quantizer, the golden
model, the compiler and the hardware.

Integer semantics (every part implements exactly these words):

* Activations are int8 (``-128..127``) with a per-tensor ``scale`` and
  ``zero_point``: ``real = scale * (q - zero_point)``.  nnloom's own
  quantizer makes them symmetric (zero point 0); imported ONNX models may
  carry other zero points.
* Weights are int8 in ``-127..127``, symmetric, one scale per output channel
  (``w_scale[c]``), zero point 0.
* Biases are int32 in the accumulator's scale ``in_scale * w_scale[c]``.
* Conv and fc accumulate ``acc = bias[c] + sum((x - in_zp) * w)`` in a 32-bit
  two's-complement accumulator that wraps (the quantizer keeps real layers
  far from it).  Padding pixels hold ``in_zp`` (a real zero).
* Requantization, per output channel ``c``::

      y = clamp(out_zp + ((acc * mult[c] + 2**(shift[c] - 1)) >> shift[c]), qmin, qmax)

  with ``0 <= mult < 2**31``, ``1 <= shift <= 62``, ``>>`` an arithmetic
  shift: rounding is half up (toward +infinity).  A fused ReLU raises
  ``qmin`` to ``out_zp``.
* Max pooling takes the int8 maximum (scale and zero point pass through).
  Average pooling sums ``x - in_zp`` over the window and requantizes with
  ``mult/2**shift ~ in_scale / (out_scale * k * k)``.
* Flatten reorders nothing: (C, H, W) row-major.

Added for imported TFLite models (see docs/quantization.md, "TFLite"):

* ``dwconv``: depthwise convolution, ``weight`` [M, 1, R, S] with
  ``M = C * depth_multiplier``; output channel ``m`` reads input channel
  ``m // depth_multiplier``; accumulation and requantization as conv.
* ``add``: two inputs (``inputs``), the second's quantization in
  ``in2_scale``/``in2_zp``; ``mult``/``shift`` hold three multipliers
  (input 1, input 2, output) and ``left_shift`` the pre-shift (20 for
  TFLite int8).
* ``avgpool`` with ``rounding == "tflite"``: any R x S window (global
  pooling is the window of the whole input), ``pads``; the sum of the raw
  codes over the in-bounds pixels divided by their count, rounded half away
  from zero; input and output share scale and zero point.
* ``pads = (top, bottom, left, right)`` overrides ``padding`` (TFLite's
  SAME padding may be asymmetric); padding pixels hold ``in_zp``.
* ``inputs``: indices of the layers a layer reads (-1 the network input);
  ``None`` means the previous layer, so a sequential network needs none.
* ``QuantizedNetwork.rounding``: ``"onnxruntime"`` (the rule above, the
  default) or ``"tflite"``: ``mult`` is then TFLite's Q31 multiplier and
  ``shift`` its signed exponent (positive: left), applied as LiteRT's
  reference kernels do: conv, dwconv and add by ``MultiplyByQuantizedMultiplier``
  (``SaturatingRoundingDoublingHighMul``, rounding ties up, then
  ``RoundingDivideByPOT``, ties away from zero), fc by one rounding half up,
  ``(acc * mult + 2**(30 - shift)) >> (31 - shift)``.

Added for imported ONNX models (see docs/quantization.md, "ONNX"):

* ``w_zp``: integer weight zero point per output channel (None: 0, the
  default; every other network is unchanged): conv / fc / dwconv then
  accumulate ``acc = bias[c] + sum((x - in_zp) * (w - w_zp[c]))``, ``weight``
  holding the raw codes (int8, or uint8 shifted to int8 by -128 with its
  zero point).
* ``addconst``: a constant vector added to a flat tensor and requantized, as
  onnxruntime computes its QLinearAdd on x86-64 CPUs (and the fused
  ``DequantizeLinear -> Add -> QuantizeLinear`` of a QDQ model): in
  float32, with fused multiply-adds (each ``fma`` rounds once)::

      rac = f32(in_scale / out_scale);  rbc = f32(in2_scale / out_scale)
      fixed = f32(zc - fma(rac, za, f32(rbc * zb)))
      y = clamp(rint_even(fma(xa, rac, fma(b, rbc, fixed))), lo, hi)

  where ``xa``, ``b`` (the constant ``const``), ``za = in_zp``,
  ``zb = in2_zp``, ``zc = out_zp`` and ``lo..hi`` are the model's own codes:
  int8 values plus ``raw_offset`` (128 for a uint8 model, 0 for int8); the
  result is shifted back by ``-raw_offset``.  A fused ReLU raises ``qmin``
  to ``out_zp``.  The accelerator refuses it.
* ``QuantizedNetwork.rounding == "mlas"`` (every quantized ONNX import):
  onnxruntime's own float32 requantization (MLAS, x86-64), measured bit
  for bit against onnxruntime:

  - conv / fc / dwconv: ``scale[c] = f32(f32(in_scale * w_scale[c]) / out_scale)``,
    ``y = out_zp + rint_even(clamp(f32(acc) * scale[c], qmin - out_zp, qmax - out_zp))``
    (``f32(acc)`` rounds an int32 to float32, the product rounds once);
  - avgpool (any R x S window, global pooling included): ``acc`` the sum of
    ``x - in_zp`` over the window, ``scale = f32(in_scale / f32(out_scale * f32(R * S)))``,
    then as conv;
  - add (two tensors): as ``addconst`` with the second tensor's codes ``xb``
    in place of the constant: ``y = rint_even(fma(xb, rbc, fma(xa, rac, fixed)))``,
    clamped, in the model's own codes (``raw_offset``).

  The accumulator ``acc`` of conv / fc depends on the CPU where onnxruntime
  multiplies uint8 activations by int8 weights with its U8S8 kernels, which
  MLAS picks from the CPU at run time.  ``QLayer.u8s8`` marks those layers:
  ``"qlinear"`` (a QLinearConv / QLinearMatMul / QGemm on uint8 input with
  int8 weights: at every optimization level) or ``"qdq"`` (a QDQ group that
  onnxruntime's graph optimizations fuse into one, uint8 or int8 activations
  alike: int8 ones are converted to uint8 first; the importer decides as
  onnxruntime's optimizer does, :mod:`nnloom.gen.frontend.loaders.onnx_qdq`;
  not fused below ``ORT_ENABLE_EXTENDED``, and then computed in float with
  exact products: the golden model's ``run(..., qdq_fused=False)``); None
  elsewhere (int8 x int8, uint8 weights, depthwise conv, float paths: exact
  products).  Per CPU variant (``nnloom.sim.golden.mlas``, selected
  from the ``/proc/cpuinfo`` flags in onnxruntime's order of precedence, or
  forced by ``NNLOOM_MLAS_U8S8=saturate|exact``):

  - **exact** (AVX512-VNNI, AVX-VNNI, AMX, SSE-only x86, every non-x86 CPU):
    ``acc`` as above, the exact 32-bit sum (the rule measured before on an
    AVX-512 machine);
  - **saturate** (AVX2 + FMA3 without AVX-VNNI and without AVX-512 core, or
    AVX-512 core (F/BW/DQ/VL) without AVX512-VNNI: ``vpmaddubsw``): the raw
    codes ``a = x + 128`` (uint8, padding ``in_zp + 128``) and the raw int8
    weights ``b`` are multiplied along K in MLAS's order (fc: the input
    order; conv: ``(r, s, c)``, channels fastest, as onnxruntime's NHWC
    im2col and its ConvSym kernel read them) and added two by two into a
    saturating int16: ``acc = exact + sum_i (clamp(p_i, -32768, 32767) - p_i)``
    with ``p_i = a[2i] * b[2i] + a[2i+1] * b[2i+1]`` (an odd last element
    pairs with 0).  Weight and input zero points are corrections of 32-bit
    sums and do not enter ``p_i``; the rest (bias, float32 requantization) is
    unchanged.  (The VNNI kernels' ``vpdpbusds`` saturates the 32-bit sum
    instead of wrapping it: not modelled, a real layer never gets near
    ``2**31``.)

  This is the one rule with float semantics; the accelerator refuses it
  (``nnloom generate`` re-quantizes the float network with nnloom's own
  quantizer instead).

Per-layer Qm.n formats (Minerva, DNN Weaver) are the special case of
power-of-two scales: ``mult = 2**30`` and a shift that aligns the binary
points; :func:`multiplier_from_real` returns exactly that for powers of two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from nnloom.hw.errors import InputError

__all__ = ["QLayer", "QuantizedNetwork", "multiplier_from_real", "tflite_multiplier",
           "INT8", "ACC_WIDTH", "ROUNDING_RULES", "float32_fma"]

INT8 = (-128, 127)
ACC_WIDTH = 32
ROUNDING_RULES = ("onnxruntime", "tflite", "mlas")


def multiplier_from_real(real: float) -> tuple[int, int]:
    """(mult, shift) with ``mult / 2**shift`` closest to ``real`` and ``mult``
    in ``[2**30, 2**31)`` (31 significant bits), ``1 <= shift <= 62``.

    ``real`` must be positive and below 2**29; values too small for the shift
    range return ``(0, 1)`` (the layer outputs its zero point).
    """
    if not real > 0 or not math.isfinite(real):
        raise InputError(f"requantization scale must be a positive number, not {real}")
    if real >= 2 ** 29:
        raise InputError(f"requantization scale {real} too large (max 2**29)")
    mant, exp = math.frexp(real)          # real = mant * 2**exp, 0.5 <= mant < 1
    mult = round(mant * (1 << 31))
    shift = 31 - exp
    if mult == 1 << 31:                   # rounding carried into the next power
        mult //= 2
        shift -= 1
    if shift > 62:
        return 0, 1
    while shift < 1:                      # keep at least one fractional bit
        mult //= 2
        shift += 1
    return int(mult), int(shift)


def tflite_multiplier(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``(q, shift)`` with ``q`` in
    ``[2**30, 2**31)`` and ``real ~ q * 2**(shift - 31)``; ``shift`` is
    positive for a left shift.  ``q`` rounds half away from zero
    (``std::round``); a real below ``2**-32`` gives ``(0, 0)``, one of
    ``2**30`` or more saturates to ``(2**31 - 1, 30)``."""
    real = float(real)
    if not real >= 0 or not math.isfinite(real):
        raise InputError(f"requantization scale must be a non-negative number, not {real}")
    if real == 0:
        return 0, 0
    mant, exp = math.frexp(real)
    q = int(math.floor(abs(mant) * (1 << 31) + 0.5))     # std::round of a positive value
    if q == 1 << 31:
        q //= 2
        exp += 1
    if exp < -31:
        return 0, 0
    if exp > 30:                           # single rounding supports shifts up to 30
        return (1 << 31) - 1, 30
    return q, exp


def float32_fma(a, b, c) -> np.ndarray:
    """``round_to_float32(a * b + c)`` rounded once (an IEEE fused
    multiply-add in float32) for float32 ``a``, ``b``, ``c`` (arrays
    broadcast): the float64 product is exact; the sum is rounded to odd in
    float64 (its error recovered by TwoSum), which then rounds correctly to
    float32 (53 >= 24 + 2 bits)."""
    p = np.asarray(a, np.float32).astype(np.float64) * np.asarray(b, np.float32).astype(np.float64)
    c = np.asarray(c, np.float32).astype(np.float64)
    s = p + c
    bp = s - c
    err = (p - bp) + (c - (s - bp))                      # s + err == p + c exactly
    bits = s.view(np.int64) if s.ndim else np.asarray(s).reshape(1).view(np.int64)
    even = (bits.reshape(s.shape) & 1) == 0
    fix = (err != 0) & even
    s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return s.astype(np.float32)


@dataclass
class QLayer:
    """One quantized layer (see the module docstring for the arithmetic).

    ``kind`` is ``conv``, ``fc``, ``maxpool``, ``avgpool``, ``relu``,
    ``flatten``, ``dwconv``, ``add`` or ``addconst``; shapes are per sample ((C, H, W) or
    (F,)).
    """

    name: str
    kind: str
    in_shape: tuple
    out_shape: tuple
    in_scale: float
    in_zp: int
    out_scale: float
    out_zp: int
    weight: np.ndarray | None = None      # int8: conv [M, C, R, S], fc [out, in]
    bias: np.ndarray | None = None        # int32 [M]
    w_scale: np.ndarray | None = None     # float [M]
    mult: np.ndarray | None = None        # int64 [M] (or [1] for avgpool)
    shift: np.ndarray | None = None       # int64 [M]
    qmin: int = INT8[0]
    qmax: int = INT8[1]
    relu: bool = False                    # fused: qmin raised to out_zp
    kernel: tuple = (1, 1)
    stride: int = 1
    padding: int = 0
    pads: tuple | None = None             # (top, bottom, left, right); overrides padding
    depth_multiplier: int = 1             # dwconv
    inputs: list | None = None            # layer indices read (-1: network input); None: previous
    in2_scale: float | None = None        # add: the second input's quantization
    in2_zp: int = 0
    left_shift: int = 0                   # add: inputs shifted left before scaling
    w_zp: np.ndarray | None = None        # int [M] weight zero point per output channel; None: 0
    const: np.ndarray | None = None       # addconst: the constant's codes [F] (int8 domain)
    raw_offset: int = 0                   # addconst: 128 when the model's own codes are uint8
    u8s8: str | None = None               # conv / fc of an ONNX import: onnxruntime's U8S8 kernel
                                          # ("qlinear": a QLinear operator, "qdq": a fused QDQ group)

    @property
    def has_weights(self) -> bool:
        return self.weight is not None

    @property
    def pad4(self) -> tuple:
        """(top, bottom, left, right) padding."""
        return tuple(self.pads) if self.pads is not None else (self.padding,) * 4


@dataclass
class QuantizedNetwork:
    """Quantized layers plus the input's quantization.

    ``fmt`` is ``"int8"`` (per-channel int8, calibrated scales) or ``"qmn"``
    (per-layer power-of-two formats); ``formats`` records each layer's Qm.n
    for the latter.
    """

    name: str
    input_shape: tuple
    input_scale: float
    input_zp: int
    layers: list
    fmt: str = "int8"
    formats: dict = field(default_factory=dict)
    rounding: str = "onnxruntime"         # requantization rule, one of ROUNDING_RULES
    softmax: bool = False                 # a float softmax follows on the host (TFLite tail)

    def __post_init__(self):
        if self.rounding not in ROUNDING_RULES:
            raise InputError(f"{self.name}: rounding: expected one of {', '.join(ROUNDING_RULES)}, "
                             f"got {self.rounding!r}")

    def layer_inputs(self, i: int) -> list:
        """Indices of the layers layer ``i`` reads (-1: the network input)."""
        ql = self.layers[i]
        return [i - 1] if ql.inputs is None else [int(j) for j in ql.inputs]

    @property
    def sequential(self) -> bool:
        return all(self.layer_inputs(i) == [i - 1] for i in range(len(self.layers)))

    @property
    def output_scale(self) -> float:
        return self.layers[-1].out_scale if self.layers else self.input_scale

    @property
    def output_zp(self) -> int:
        return self.layers[-1].out_zp if self.layers else self.input_zp

    def quantize_input(self, x) -> np.ndarray:
        """Float input -> int8, round half to even, saturating."""
        q = np.rint(np.asarray(x, dtype=np.float64) / self.input_scale) + self.input_zp
        return np.clip(q, *INT8).astype(np.int64).reshape(self.input_shape)

    def dequantize_output(self, y) -> np.ndarray:
        return (np.asarray(y, dtype=np.float64) - self.output_zp) * self.output_scale
