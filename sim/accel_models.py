"""Quantized digits models for the accelerator's tests, ``nnloom simulate``
and the demo.

``digits_qnet(name_or_path)`` loads an examples/ network by name (or any TOML
/ ONNX path) with its weights, quantizes it with
:func:`nnloom.gen.accelerator.quantize_network` (int8, calibrated on the first 256
training digits), and returns it with the quantized digits test split.
Everything is deterministic, so a cocotb process and the pytest process that
started it build the same network.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from nnloom import examples

from nnloom.gen.accelerator import quantize_network
from nnloom.gen.frontend import load_network
from nnloom.gen.train import digits_split

__all__ = ["digits_qnet", "resolve"]


def resolve(name_or_path) -> Path:
    """A path as it is; a bare name is a shipped example (package data)."""
    p = Path(name_or_path)
    return p if p.suffix else examples.path(str(name_or_path))


@lru_cache(maxsize=None)
def digits_qnet(name_or_path: str):
    """(network, qnet, x_test_int8, y_test, x_test_float) for a digits network."""
    net = load_network(resolve(name_or_path))
    _, _, x_test, y_test = digits_split(0, shape=net.input_shape)
    qnet = quantize_network(net)
    xq = np.stack([qnet.quantize_input(x) for x in x_test])
    return net, qnet, xq, np.asarray(y_test), x_test
