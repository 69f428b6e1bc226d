"""Weight-stationary and output-stationary access models, for comparing with
row-stationary (:mod:`nnloom.gen.compiler.eyeriss_map`) on the same layer, array size and
cost table (Chen, Emer, Sze, ISCA 2016, section on dataflow comparison).

Both treat the convolution as the GEMM of im2col: A is (E*F) x K with
K = C*R*S, B is K x M, on an H x W array, with N = M*K*E*F MACs.

Weight stationary (the systolic WS array of :mod:`nnloom.hw.systolic`): K runs
down the H rows, M across the W columns; a tile holds H x W weights, one per
PE register.  Per MAC: one RF read of the weight; the activation and the
psum each move one PE (2 array accesses).  Buffer: every weight read once;
every im2col activation read once per column tile (ceil(M/W) times: no
convolutional reuse); psums of all K tiles but the first read back, every
tile's psums written.

Output stationary: E*F positions run down the H rows, M across the W
columns; each PE accumulates one output in its RF (a read and a write per
MAC); activations and weights move one PE per MAC (2 array accesses).
Buffer: per tile and step, H activations and W weights; outputs written once.

DRAM for both: the ifmap (padded), the weights and the outputs once each.
Gated MACs and compression are left out of both (and of the RS figures the
comparison is made with).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nnloom.gen.perf.energy import EYERISS_NORMALIZED, CostTable

__all__ = ["DataflowCounts", "weight_stationary", "output_stationary"]


@dataclass
class DataflowCounts:
    name: str
    macs: int
    cycles: int
    pes: int
    acc: dict            # accesses per level: rf, array, buffer, dram

    def energy(self, costs: CostTable = EYERISS_NORMALIZED) -> float:
        return costs.energy(self.macs, self.acc)

    def energy_per_mac(self, costs: CostTable = EYERISS_NORMALIZED) -> float:
        return self.energy(costs) / self.macs

    def per_mac(self) -> dict:
        return {lvl: n / self.macs for lvl, n in self.acc.items()}

    @property
    def utilization(self) -> float:
        return self.macs / (self.pes * self.cycles)


def _dims(layer):
    k = layer.c * layer.r * layer.s
    p = layer.e * layer.f
    dram = layer.c * layer.hp * layer.wp + layer.m * k + layer.m * p
    return k, p, dram


def weight_stationary(layer, rows: int, cols: int) -> DataflowCounts:
    """WS counts for ``layer`` (a :class:`gen.eyeriss_map.ConvLayer`) on rows x cols PEs."""
    k, p, dram = _dims(layer)
    n = layer.m * k * p
    kt, mt = math.ceil(k / rows), math.ceil(layer.m / cols)
    buffer = (layer.m * k                      # weights
              + p * k * mt                     # activations, once per column tile
              + p * layer.m * kt               # psum writes
              + p * layer.m * (kt - 1))        # psum reads
    cycles = kt * mt * (max(p, rows) + rows + cols)
    return DataflowCounts("WS", n, cycles, rows * cols,
                          {"rf": n + layer.m * k, "array": 2 * n, "buffer": buffer, "dram": dram})


def output_stationary(layer, rows: int, cols: int) -> DataflowCounts:
    """OS counts for ``layer`` on rows x cols PEs."""
    k, p, dram = _dims(layer)
    n = layer.m * k * p
    pt, mt = math.ceil(p / rows), math.ceil(layer.m / cols)
    buffer = pt * mt * k * (rows + cols) + p * layer.m
    cycles = pt * mt * (max(k, rows) + rows + cols)
    return DataflowCounts("OS", n, cycles, rows * cols,
                          {"rf": 2 * n, "array": 2 * n, "buffer": buffer, "dram": dram})
