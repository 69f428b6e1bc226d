"""Deep Compression for the EIE path: pruning, k-means weight sharing, CSC.

Pipeline (Han et al., Deep Compression / EIE):

1. :func:`prune` keeps the ``density`` fraction of weights with the largest
   magnitude (``ceil(density * size)`` weights, ties broken by position).
2. :func:`kmeans_share` clusters the surviving weights into ``clusters``
   shared values; centroids start linearly spaced over ``[min, max]`` and
   Lloyd's iterations run to convergence (an empty cluster keeps its value).
3. The centroids are rounded to the PE's fixed-point weight format
   (``weight_width``-bit two's complement with ``frac_bits`` fractional bits,
   round half to even, saturated).  The codebook has ``2**CODE_BITS`` (16)
   entries: code 0 is weight zero (pruned weights and filler entries), codes
   1..``clusters`` the shared weights; so ``clusters`` is at most 15 and the
   default 15 non-zero centroids + zero make the 16 shared weights of EIE.
4. :func:`nnloom.gen.compiler.csc.encode` lays the codes out per PE.

:func:`compress_layer` does all four; errors are :class:`CompressError`
(a ``ValueError``) naming the field and its limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nnloom.gen.compiler.csc import CODE_BITS, CSCMatrix, encode, storage_bits
from nnloom.hw.errors import InputError

__all__ = ["CompressError", "prune", "kmeans_share", "to_fixed", "CompressedLayer",
           "compress_layer"]


class CompressError(InputError):
    """Bad input to compression: ``field`` names it, ``limit`` says what is allowed."""

    def __init__(self, field: str, value, limit: str):
        self.field, self.value, self.limit = field, value, limit
        super().__init__(f"{field}: expected {limit}, got {value!r}")


def check_density(density: float, field: str = "density") -> float:
    if not (isinstance(density, (int, float)) and 0 < density <= 1):
        raise CompressError(field, density, "a density in (0, 1]")
    return float(density)


def prune(w: np.ndarray, density: float) -> np.ndarray:
    """Boolean mask of the ``ceil(density * w.size)`` largest-magnitude weights."""
    density = check_density(density)
    w = np.asarray(w, dtype=np.float64)
    keep = math.ceil(density * w.size)
    order = np.argsort(-np.abs(w), axis=None, kind="stable")
    mask = np.zeros(w.size, dtype=bool)
    mask[order[:keep]] = True
    return mask.reshape(w.shape)


def kmeans_share(values: np.ndarray, clusters: int, iters: int = 100):
    """1-D k-means with linear initialisation.

    Returns ``(centroids, labels)``: ``centroids`` ascending as initialised
    (float64, ``clusters`` of them), ``labels[i]`` the index of the centroid
    nearest ``values[i]`` (the lower one on a tie).
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if clusters < 1:
        raise CompressError("clusters", clusters, ">= 1")
    if values.size == 0:
        return np.zeros(clusters), np.zeros(0, dtype=np.int64)
    lo, hi = values.min(), values.max()
    cent = np.linspace(lo, hi, clusters)
    labels = np.zeros(values.size, dtype=np.int64)
    for _ in range(iters):
        labels = np.argmin(np.abs(values[:, None] - cent[None, :]), axis=1)
        new = cent.copy()
        for c in range(clusters):
            sel = labels == c
            if sel.any():
                new[c] = values[sel].mean()
        if np.array_equal(new, cent):
            break
        cent = new
    return cent, labels


def to_fixed(x, frac_bits: int, width: int) -> np.ndarray:
    """``x`` in ``width``-bit two's complement with ``frac_bits`` fractional
    bits: round half to even, then saturate (int64)."""
    q = np.rint(np.asarray(x, dtype=np.float64) * (1 << frac_bits))
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    return np.clip(q, lo, hi).astype(np.int64)


@dataclass(frozen=True)
class CompressedLayer:
    """A pruned, weight-shared, CSC-encoded ``rows x cols`` layer.

    ``codes``: dense code matrix (0 = zero); ``codebook``: 16 fixed-point
    weights (int, ``codebook[0] == 0``); ``centroids``: the float centroids;
    ``csc``: the per-PE encoding; ``frac_bits``/``weight_width``: the format.
    """

    codes: np.ndarray
    codebook: np.ndarray
    centroids: np.ndarray
    csc: CSCMatrix
    frac_bits: int
    weight_width: int
    dense_nonzeros: int

    @property
    def shape(self):
        return self.codes.shape

    def weights_fixed(self) -> np.ndarray:
        """Dense integer weights ``codebook[codes]``."""
        return self.codebook[self.codes]

    def weights_float(self) -> np.ndarray:
        """Dense float weights the fixed-point codebook represents."""
        return self.weights_fixed() / float(1 << self.frac_bits)

    def storage(self, pointer_bits: int = 16) -> dict[str, int]:
        return storage_bits(self.csc, weight_bits=self.weight_width, pointer_bits=pointer_bits)

    def compression_ratio(self, dense_bits: int = 32, pointer_bits: int = 16) -> float:
        """Dense float storage (``dense_bits`` per weight) over compressed storage."""
        return self.codes.size * dense_bits / self.storage(pointer_bits)["total"]


def compress_layer(w: np.ndarray, *, density: float, pes: int, clusters: int = 15,
                   frac_bits: int = 8, weight_width: int = 16,
                   mask: np.ndarray | None = None) -> CompressedLayer:
    """Prune ``w`` (``rows x cols``, float) to ``density``, share its weights
    among ``clusters`` fixed-point centroids and encode it for ``pes`` PEs.

    ``mask`` (optional) replaces pruning by a given keep-mask (e.g. after
    retraining).  A centroid that rounds to 0 in fixed point still uses its
    own code, so the stored non-zero pattern is the pruning mask.
    """
    if clusters > (1 << CODE_BITS) - 1:
        raise CompressError("clusters", clusters,
                            f"1..{(1 << CODE_BITS) - 1} (4-bit codes, code 0 is weight zero)")
    if clusters < 1:
        raise CompressError("clusters", clusters, f"1..{(1 << CODE_BITS) - 1}")
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise CompressError("w", w.shape, "a 2-D weight matrix")
    keep = prune(w, density) if mask is None else np.asarray(mask, dtype=bool)
    cent, labels = kmeans_share(w[keep], clusters)
    codes = np.zeros(w.shape, dtype=np.int64)
    codes[keep] = labels + 1
    codebook = np.zeros(1 << CODE_BITS, dtype=np.int64)
    codebook[1:clusters + 1] = to_fixed(cent, frac_bits, weight_width)
    return CompressedLayer(codes, codebook, cent, encode(codes, pes), frac_bits,
                           weight_width, int(keep.sum()))
