"""Golden model of the EIE cluster: sparse matrix x vector on the encoding.

Integer semantics, word for word what the PE does (:mod:`nnloom.hw.eie_pe`):

* ``act`` and ``codebook`` are ``act_width``-bit signed words with
  ``frac_bits`` fractional bits;
* for every non-zero ``act[j]`` and every entry of column ``j`` in every PE,
  walking the entries in order with the absolute local row
  ``x = x_prev + 1 + z`` (``x_prev = -1`` at a column's start),
  ``acc[x] += codebook[v] * act[j]`` exactly, modulo ``2**acc_width``
  (two's complement); fillers (code 0) add ``0 * act[j]``;
* output row ``x * pes + k`` of PE ``k`` is ``floor(acc / 2**frac_bits)``,
  saturated to ``act_width`` bits, then ``max(0, .)`` if ``relu``.

:func:`dense_reference` computes the same from the dense weight matrix, an
independent check of the encoding walk.
"""

from __future__ import annotations

import numpy as np

from nnloom.gen.compiler import CSCMatrix
from nnloom.hw.eie_config import EIEConfig
from nnloom.sim.golden.intarith import saturate, wrap

__all__ = ["spmv", "dense_reference", "write_out"]


def write_out(cfg: EIEConfig, acc, relu: bool) -> np.ndarray:
    """Accumulators (already wrapped) to output activations."""
    out = saturate(np.asarray(acc, dtype=np.int64) >> cfg.frac_bits, cfg.act_width, True)
    return np.maximum(out, 0) if relu else out


def spmv(cfg: EIEConfig, csc: CSCMatrix, codebook, act, *, relu: bool) -> np.ndarray:
    """Output vector (``csc.rows`` int64) of one layer, computed on the encoding."""
    act = np.asarray(act, dtype=np.int64)
    cb = np.asarray(codebook, dtype=np.int64)
    N = csc.pes
    out = np.zeros(csc.rows, dtype=np.int64)
    for k, s in enumerate(csc.slices):
        acc = np.zeros(csc.local_rows(k), dtype=np.int64)
        for j in np.flatnonzero(act):
            x = -1
            for e in range(s.ptr[j], s.ptr[j + 1]):
                x += int(s.zs[e]) + 1
                acc[x] = wrap(acc[x] + cb[s.codes[e]] * act[j], cfg.acc_width, True)
        out[k::N] = write_out(cfg, acc, relu)
    return out


def dense_reference(cfg: EIEConfig, weights_fixed, act, *, relu: bool) -> np.ndarray:
    """The same layer from dense integer weights (``rows x cols``)."""
    acc = np.asarray(weights_fixed, dtype=np.int64) @ np.asarray(act, dtype=np.int64)
    return write_out(cfg, wrap(acc, cfg.acc_width, True), relu)
