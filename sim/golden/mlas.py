"""onnxruntime's CPU-dependent integer products (MLAS U8S8 kernels), for the
golden model's ``rounding == "mlas"`` (see :mod:`nnloom.gen.frontend.qtypes`).

onnxruntime multiplies uint8 activations by int8 weights (QLinearConv,
QLinearMatMul, QGemm and the QDQ groups it fuses into them: ``QLayer.u8s8``)
with an MLAS kernel chosen from the CPU at run time
(``onnxruntime/core/mlas/lib/platform.cpp``):

* ``"avx2"`` (AVX2 + FMA3, no AVX-VNNI, no AVX-512 core) and
  ``"avx512core"`` (AVX512F/BW/DQ/VL without AVX512-VNNI): ``vpmaddubsw``
  multiplies the raw codes of the K axis two by two and adds each pair into a
  *saturating* int16 (then ``vpmaddwd`` by 1 and 32-bit adds): a pair
  ``a[2i] * b[2i] + a[2i+1] * b[2i+1]`` beyond -32768..32767 is clamped;
* ``"avxvnni"``, ``"avx512vnni"`` (``vpdpbusds``), ``"amx"``, ``"sse"``
  (no AVX2: 16-bit widening) and any non-x86 CPU (``"other"``): every
  product is exact.

:func:`u8s8_kernel` names the family of this machine from the CPU flags in
``/proc/cpuinfo`` (the same CPUID bits onnxruntime reads; elsewhere numpy's
runtime CPU-feature table, which has no AVX-VNNI entry) and
``NNLOOM_MLAS_U8S8=saturate|exact`` overrides it (to reproduce another
machine's onnxruntime).  :func:`u8s8_correction` is the saturated sum minus
the exact one, added to the exact accumulator.
"""

from __future__ import annotations

import functools
import os
import platform

import numpy as np

__all__ = ["u8s8_kernel", "kernel_from_flags", "u8s8_saturates", "u8s8_correction", "ENV"]

ENV = "NNLOOM_MLAS_U8S8"
_SATURATING = ("avx2", "avx512core")


def kernel_from_flags(flags, machine: str = "x86_64") -> str:
    """MLAS's U8S8 GEMM kernel family for a CPU with the Linux ``/proc/cpuinfo``
    ``flags``, in onnxruntime's order of precedence: AVX2 (needs FMA3), then
    AVX-VNNI, then AVX-512 core (which replaces the AVX-VNNI kernel), then
    AVX512-VNNI, then AMX (AMX-TILE and AMX-INT8)."""
    flags = set(flags)
    if machine.lower() not in ("x86_64", "amd64", "x86", "i386", "i686"):
        return "other"
    if not {"avx", "avx2", "fma"} <= flags:
        return "sse"
    kernel = "avx2"
    if "avx_vnni" in flags:
        kernel = "avxvnni"
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        kernel = "avx512core"
        if "avx512_vnni" in flags:
            kernel = "avx512vnni"
    if kernel == "avx512vnni" and {"amx_tile", "amx_int8"} <= flags:
        kernel = "amx"
    return kernel


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:     # not Linux: numpy's runtime CPU features (no AVX-VNNI entry)
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:
        return None
    names = {"AVX": "avx", "AVX2": "avx2", "FMA3": "fma", "AVX512F": "avx512f", "AVX512BW": "avx512bw",
             "AVX512DQ": "avx512dq", "AVX512VL": "avx512vl", "AVX512VNNI": "avx512_vnni"}
    return {flag for key, flag in names.items() if feats.get(key)}


@functools.lru_cache(maxsize=1)
def u8s8_kernel() -> str:
    """This machine's MLAS U8S8 kernel family (see the module docstring)."""
    flags = _cpu_flags()
    if flags is None:
        return "other"
    return kernel_from_flags(flags, platform.machine())


def u8s8_saturates() -> bool:
    """True when onnxruntime on this machine (or the one ``NNLOOM_MLAS_U8S8``
    names) clamps U8S8 pair sums to int16."""
    forced = os.environ.get(ENV, "").strip().lower()
    if forced in ("saturate", "exact"):
        return forced == "saturate"
    if forced:
        raise ValueError(f"{ENV}: expected 'saturate' or 'exact', got {forced!r}")
    return u8s8_kernel() in _SATURATING


def u8s8_correction(a, b, order=None) -> np.ndarray:
    """``sum_i sat16(p_i) - p_i`` with ``p_i = a[:, k0] * b[k0] + a[:, k1] * b[k1]``
    for the pairs ``(k0, k1) = (order[2i], order[2i + 1])`` of MLAS's K axis
    (an odd last element pairs with a zero); ``a`` [P, K] the raw uint8 codes,
    ``b`` [K, M] the raw int8 weights, ``order`` the K indices in MLAS's
    order (default ``0..K-1``).  Returns [P, M] (int64)."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    k = a.shape[1]
    order = np.arange(k) if order is None else np.asarray(order, np.int64)
    corr = np.zeros((a.shape[0], b.shape[1]), np.int64)
    for i in range(0, k, 2):
        k0 = order[i]
        b0 = b[k0]
        b1 = b[order[i + 1]] if i + 1 < k else np.zeros_like(b0)
        # 255 * (|b0| + |b1|) <= 32767 cannot saturate: skip those columns.
        cols = np.nonzero(np.abs(b0) + np.abs(b1) > 128)[0]
        if cols.size == 0:
            continue
        p = a[:, k0, None] * b0[None, cols]
        if i + 1 < k:
            p = p + a[:, order[i + 1], None] * b1[None, cols]
        corr[:, cols] += np.clip(p, -32768, 32767) - p
    return corr
