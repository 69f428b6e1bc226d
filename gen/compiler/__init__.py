"""Compilers: the accelerator's program and DRAM image, the Eyeriss
row-stationary mapping, and the EIE path (Deep Compression, CSC, cluster image).
"""

from .compile import CompileError, Program, LayerInfo, compile_network
from .csc import CODE_BITS, INDEX_BITS, MAX_Z, PESlice, CSCMatrix, encode, decode, storage_bits
from .compress import CompressError, prune, kmeans_share, to_fixed, CompressedLayer, compress_layer
from .eie_image import CapacityError, Layer, ClusterImage, build_image
from .eyeriss_map import (
    ConvLayer, Mapping, MappingError, choose_mapping, layer_fields, input_words, predict,
    Prediction, gating_savings,
)

__all__ = [
    "CompileError", "Program", "LayerInfo", "compile_network", "CODE_BITS", "INDEX_BITS",
    "MAX_Z", "PESlice", "CSCMatrix", "encode", "decode", "storage_bits", "CompressError",
    "prune", "kmeans_share", "to_fixed", "CompressedLayer", "compress_layer", "CapacityError",
    "Layer", "ClusterImage", "build_image", "ConvLayer", "Mapping", "MappingError",
    "choose_mapping", "layer_fields", "input_words", "predict", "Prediction", "gating_savings",
]
