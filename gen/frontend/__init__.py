"""Front end: network descriptions, their loaders (TOML, ONNX, TFLite, SCALE-Sim CSV),
quantization and number formats.
"""

from .network import (
    NetworkError, Conv2d, Dense, ReLU, MaxPool, AvgPool, Flatten, Layer, Network, LAYER_KINDS,
    DepthwiseConv2d, GlobalAvgPool, ReLU6, Add,
)
from .loaders import load_network, load_model, EXTENSIONS
from .qtypes import (
    QLayer, QuantizedNetwork, multiplier_from_real, tflite_multiplier, INT8, ACC_WIDTH, ROUNDING_RULES,
    float32_fma,
)
from .quantize import quantize, QuantizeError, FORMATS
from .fixedpoint import (
    QFormat, ROUNDINGS, requantize, round_shift, MINERVA_WEIGHT, MINERVA_ACT, MINERVA_PRODUCT,
)
from .float_ref import run_float, run_float_layer, windows, im2col, batch

__all__ = [
    "NetworkError", "Conv2d", "Dense", "ReLU", "MaxPool", "AvgPool", "Flatten", "Layer",
    "Network", "LAYER_KINDS", "load_network", "load_model", "EXTENSIONS", "QLayer",
    "QuantizedNetwork", "multiplier_from_real", "INT8", "ACC_WIDTH", "quantize",
    "QuantizeError", "FORMATS", "QFormat", "ROUNDINGS", "requantize", "round_shift",
    "MINERVA_WEIGHT", "MINERVA_ACT", "MINERVA_PRODUCT", "run_float", "windows", "im2col",
    "batch", "DepthwiseConv2d", "GlobalAvgPool", "ReLU6", "Add", "tflite_multiplier",
    "ROUNDING_RULES", "run_float_layer", "float32_fma",
]
