"""EIE's per-PE interleaved compressed sparse column (CSC) format.

A weight matrix of shared-weight *codes* (``rows x cols``, code 0 meaning
"zero weight") is cut over ``pes`` processing elements by rows: global row
``i`` belongs to PE ``i % pes`` as local row ``i // pes``.  Each PE stores,
column after column, its slice of every column as 8-bit entries:

* bits [3:0] ``v``: the 4-bit weight code (index into the 16-entry codebook);
* bits [7:4] ``z``: the relative index, the number of zero rows since the
  previous stored entry of this column slice (since local row -1 at the
  start of a slice).

A run of more than 15 zeros cannot be expressed in 4 bits: a *filler* entry
``(v=0, z=15)`` stands for the 16th zero of the run (code 0 decodes to weight
0, so it adds nothing).  ``ptr[j]`` is the position of column ``j``'s first
entry in the PE's entry list; ``ptr[j+1] - ptr[j]`` its entry count.

:func:`encode` and :func:`decode` are exact inverses on code matrices;
:func:`storage_bits` does the storage accounting.  The memory image that
loads layers into a configured cluster (and its capacity errors) is in
:mod:`nnloom.gen.compiler.eie_image`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CODE_BITS", "INDEX_BITS", "MAX_Z", "PESlice", "CSCMatrix", "encode", "decode",
           "storage_bits"]

CODE_BITS = 4                    #: bits of a weight code ``v``
INDEX_BITS = 4                   #: bits of a relative index ``z``
MAX_Z = (1 << INDEX_BITS) - 1    #: longest zero run one entry can skip (15)
FILLER_CODE = 0                  #: the code of weight zero, used by fillers


@dataclass(frozen=True)
class PESlice:
    """One PE's share: ``codes`` and ``zs`` (uint8, one per entry, column
    order) and ``ptr`` (``cols + 1`` entry positions, ``ptr[0] == 0``)."""

    codes: np.ndarray
    zs: np.ndarray
    ptr: np.ndarray

    @property
    def entries(self) -> int:
        return len(self.codes)

    def counts(self) -> np.ndarray:
        """Entries of each column slice (``ptr[j+1] - ptr[j]``)."""
        return np.diff(self.ptr)

    def packed(self) -> np.ndarray:
        """Entries as bytes: ``z << 4 | v``."""
        return (self.zs.astype(np.uint8) << CODE_BITS) | self.codes.astype(np.uint8)


@dataclass(frozen=True)
class CSCMatrix:
    """A ``rows x cols`` code matrix encoded for ``pes`` PEs."""

    rows: int
    cols: int
    pes: int
    slices: tuple[PESlice, ...]

    def local_rows(self, pe: int) -> int:
        """Rows PE ``pe`` owns: those ``i < rows`` with ``i % pes == pe``."""
        return max(0, (self.rows - pe + self.pes - 1) // self.pes)

    @property
    def entries(self) -> int:
        return sum(s.entries for s in self.slices)

    @property
    def fillers(self) -> int:
        return sum(int(np.count_nonzero(s.codes == FILLER_CODE)) for s in self.slices)

    def counts(self) -> np.ndarray:
        """``pes x cols`` array of entry counts per column slice."""
        return np.stack([s.counts() for s in self.slices])


def _encode_slice(col_codes: np.ndarray) -> tuple[list, list]:
    """Entries of one column slice (local rows in order)."""
    codes, zs = [], []
    prev = -1
    for r in np.flatnonzero(col_codes):
        gap = int(r) - prev - 1
        while gap > MAX_Z:              # a run longer than 15: bridge it
            codes.append(FILLER_CODE)
            zs.append(MAX_Z)
            gap -= MAX_Z + 1
        codes.append(int(col_codes[r]))
        zs.append(gap)
        prev = int(r)
    return codes, zs


def encode(codes: np.ndarray, pes: int) -> CSCMatrix:
    """Encode a matrix of codes (0 = zero weight, 1..15 = codebook entry).

    Raises ``ValueError`` if a code does not fit :data:`CODE_BITS`.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes: expected a 2-D matrix, got shape {codes.shape}")
    if pes < 1:
        raise ValueError(f"pes: expected >= 1, got {pes}")
    if codes.size and (codes.min() < 0 or codes.max() > (1 << CODE_BITS) - 1):
        raise ValueError(f"codes: expected 0..{(1 << CODE_BITS) - 1}, "
                         f"got {codes.min()}..{codes.max()}")
    rows, cols = codes.shape
    slices = []
    for k in range(pes):
        local = codes[k::pes]
        all_codes, all_zs, ptr = [], [], [0]
        for j in range(cols):
            c, z = _encode_slice(local[:, j])
            all_codes += c
            all_zs += z
            ptr.append(len(all_codes))
        slices.append(PESlice(np.array(all_codes, dtype=np.uint8),
                              np.array(all_zs, dtype=np.uint8), np.array(ptr, dtype=np.int64)))
    return CSCMatrix(rows, cols, pes, tuple(slices))


def decode(csc: CSCMatrix) -> np.ndarray:
    """The dense code matrix back from its encoding (exact inverse of
    :func:`encode`)."""
    out = np.zeros((csc.rows, csc.cols), dtype=np.int64)
    for k, s in enumerate(csc.slices):
        for j in range(csc.cols):
            x = -1
            for e in range(s.ptr[j], s.ptr[j + 1]):
                x += int(s.zs[e]) + 1
                if s.codes[e] != FILLER_CODE:
                    out[x * csc.pes + k, j] = s.codes[e]
    return out


def storage_bits(csc: CSCMatrix, *, codebook_entries: int = 1 << CODE_BITS,
                 weight_bits: int = 16, pointer_bits: int = 16) -> dict[str, int]:
    """Storage of the encoded matrix in bits, by part.

    ``codes`` and ``indices`` are 4 bits per entry (fillers included),
    ``pointers`` ``pointer_bits`` per column pointer (``cols + 1`` per PE),
    ``codebook`` ``codebook_entries x weight_bits``; ``total`` their sum.
    """
    e = csc.entries
    parts = {
        "codes": CODE_BITS * e,
        "indices": INDEX_BITS * e,
        "pointers": pointer_bits * (csc.cols + 1) * csc.pes,
        "codebook": codebook_entries * weight_bits,
    }
    parts["total"] = sum(parts.values())
    return parts
