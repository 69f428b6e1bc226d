"""Memory image of compressed layers for a configured EIE cluster.

:func:`build_image` places layers one after another in every PE: layer
``L``'s column pointers start at pointer index ``ptr_base`` (the sum of
``cols + 1`` of the layers before it) and hold absolute entry positions (the
entries of earlier layers come first), and layer ``L`` uses codebook slot
``L``.  It raises :class:`CapacityError` (a ``ValueError`` naming the field
and its limit) when a layer does not fit the configured memories.

:meth:`ClusterImage.io_beats` lists the I/O-mode writes that load the image
(:attr:`nnloom.hw.eie_config.EIEConfig.io_layout`), :meth:`ClusterImage.act_beats`
those that load an input vector, :meth:`ClusterImage.cmd` a layer's command.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnloom.hw.eie_config import (CODEBOOK_ENTRIES, ENTRIES_PER_ROW, ENTRY_BITS, TARGET_ACT,
                           TARGET_CODEBOOK, TARGET_ENTRY, TARGET_PTR, EIEConfig)

from nnloom.gen.compiler.csc import CSCMatrix
from nnloom.hw.errors import InputError

__all__ = ["CapacityError", "Layer", "ClusterImage", "build_image"]


class CapacityError(InputError):
    """A layer that does not fit: ``field`` names what, ``limit`` the bound."""

    def __init__(self, field: str, value, limit: str):
        self.field, self.value, self.limit = field, value, limit
        super().__init__(f"{field}: expected {limit}, got {value!r}")


@dataclass(frozen=True)
class Layer:
    """One layer for the cluster: its encoding, 16 fixed-point codebook
    weights (ints, ``codebook[0] == 0``) and whether ReLU applies on output."""

    csc: CSCMatrix
    codebook: tuple[int, ...]
    relu: bool = True


@dataclass(frozen=True)
class ClusterImage:
    config: EIEConfig
    layers: tuple[Layer, ...]
    ptr_base: tuple[int, ...]           #: per layer
    pointers: tuple[tuple[int, ...], ...]  #: per PE, pointer index -> entry position
    rows: tuple[tuple[int, ...], ...]      #: per PE, 64-bit entry rows

    def io_beats(self) -> list[dict]:
        """Writes of pointers, entry rows and codebooks, in that order."""
        beats = []
        for k in range(self.config.pes):
            beats += [dict(target=TARGET_PTR, pe=k, addr=i, data=p, we=1)
                      for i, p in enumerate(self.pointers[k])]
            beats += [dict(target=TARGET_ENTRY, pe=k, addr=r, data=v, we=1)
                      for r, v in enumerate(self.rows[k])]
        for slot, layer in enumerate(self.layers):
            beats += [dict(target=TARGET_CODEBOOK, pe=0, addr=slot * CODEBOOK_ENTRIES + c,
                           data=int(w) & ((1 << 64) - 1), we=1)
                      for c, w in enumerate(layer.codebook)]
        return beats

    def act_beats(self, act) -> list[dict]:
        """Writes of input vector ``act`` (element ``i`` to PE ``i % pes``)."""
        act = np.asarray(act)
        if len(act) > self.config.max_len:
            raise CapacityError("act", len(act), f"at most {self.config.max_len} elements")
        n = self.config.pes
        return [dict(target=TARGET_ACT, pe=i % n, addr=i // n,
                     data=int(v) & ((1 << 64) - 1), we=1) for i, v in enumerate(act)]

    def read_beats(self, length: int) -> list[dict]:
        """Reads of a vector of ``length`` source activations."""
        n = self.config.pes
        return [dict(target=TARGET_ACT, pe=i % n, addr=i // n, data=0, we=0)
                for i in range(length)]

    def cmd(self, index: int) -> dict:
        layer = self.layers[index]
        return dict(in_len=layer.csc.cols, out_len=layer.csc.rows,
                    ptr_base=self.ptr_base[index], codebook=index, relu=int(layer.relu))


def build_image(config: EIEConfig, layers) -> ClusterImage:
    """Lay ``layers`` (:class:`Layer`) out in the memories of ``config``."""
    layers = tuple(layers)
    cfg = config
    if not 1 <= len(layers) <= cfg.codebooks:
        raise CapacityError("layers", len(layers), f"1..{cfg.codebooks} (one codebook each)")
    lo, hi = -(1 << (cfg.act_width - 1)), (1 << (cfg.act_width - 1)) - 1
    for n, layer in enumerate(layers):
        csc = layer.csc
        where = f"layers[{n}]"
        if csc.pes != cfg.pes:
            raise CapacityError(f"{where}.pes", csc.pes, f"{cfg.pes} (the cluster's PEs)")
        for field, v in (("rows", csc.rows), ("cols", csc.cols)):
            if not 1 <= v <= cfg.max_len:
                raise CapacityError(f"{where}.{field}", v,
                                    f"1..{cfg.max_len} (pes x act_depth)")
        cb = list(layer.codebook)
        if len(cb) > CODEBOOK_ENTRIES:
            raise CapacityError(f"{where}.codebook", len(cb),
                                f"at most {CODEBOOK_ENTRIES} entries (4-bit codes)")
        if any(not lo <= int(w) <= hi for w in cb):
            raise CapacityError(f"{where}.codebook", cb, f"weights in {lo}..{hi}")
    total_ptrs = sum(layer.csc.cols + 1 for layer in layers)
    if total_ptrs > cfg.pointers:
        raise CapacityError("pointers", total_ptrs,
                            f"at most {cfg.pointers} (2 x ptr_depth) column pointers per PE")
    ptr_base, base = [], 0
    for layer in layers:
        ptr_base.append(base)
        base += layer.csc.cols + 1
    pointers, rows = [], []
    for k in range(cfg.pes):
        ptrs, entries = [], []
        for layer in layers:
            s = layer.csc.slices[k]
            ptrs += [len(entries) + int(p) for p in s.ptr]
            entries += [int(b) for b in s.packed()]
        if len(entries) > cfg.entries:
            raise CapacityError("entries", len(entries),
                                f"at most {cfg.entries} (entry_rows x 8) in PE {k}")
        words = []
        for r in range(0, len(entries), ENTRIES_PER_ROW):
            word = 0
            for i, b in enumerate(entries[r:r + ENTRIES_PER_ROW]):
                word |= b << (ENTRY_BITS * i)
            words.append(word)
        pointers.append(tuple(ptrs))
        rows.append(tuple(words))
    return ClusterImage(cfg, layers, tuple(ptr_base), tuple(pointers), tuple(rows))
