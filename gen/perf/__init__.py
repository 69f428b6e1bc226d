"""Performance models: cycles, accesses per memory level, energy, resources
and rooflines, per layer and per engine.
"""

from .energy import CostTable, EYERISS_NORMALIZED, HOROWITZ_45NM, TABLES, LEVELS, CostTableError
from .memory import (
    Memory, Step, layer_steps, min_buffers, buffer_needs, weight_bytes, ideal_buffers,
    dram_traffic, dram_bytes,
)
from .model import (
    LayerPerf, NetworkPerf, EngineUnavailable, ENGINE_HOOKS, ENGINES, systolic_steps,
    systolic_layer, gemm_perf, network_perf,
)
from .engines import eyeriss_layer, eie_layer
from .eie import LayerTiming, simulate_layer, dense_equivalent_gops, random_counts
from .resources import COEFFS, estimate, array_estimate, bram_bits
from .roofline import roofline_png, roof
from .dataflow_compare import DataflowCounts, weight_stationary, output_stationary

__all__ = [
    "CostTable", "EYERISS_NORMALIZED", "HOROWITZ_45NM", "TABLES", "LEVELS", "CostTableError",
    "Memory", "Step", "layer_steps", "min_buffers", "buffer_needs", "weight_bytes",
    "ideal_buffers", "dram_traffic", "dram_bytes", "LayerPerf", "NetworkPerf",
    "EngineUnavailable", "ENGINE_HOOKS", "ENGINES", "systolic_steps", "systolic_layer",
    "gemm_perf", "network_perf", "eyeriss_layer", "eie_layer", "LayerTiming", "simulate_layer",
    "dense_equivalent_gops", "random_counts", "COEFFS", "estimate", "array_estimate",
    "bram_bits", "roofline_png", "roof", "DataflowCounts", "weight_stationary",
    "output_stationary",
]
