"""Quantized models for accelerator tests and the demo, built from examples/.

``digits_qnet(name)`` loads ``examples/<name>.toml`` (with its committed,
trained weights), quantizes it to int8 by calibrating on the first 256
training digits, and returns it with the quantized digits test split.
Everything is deterministic, so a cocotb process and the pytest process that
started it build the same network.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from gen.loaders import load_network
from gen.quantize import quantize
from gen.train import digits_split

__all__ = ["EXAMPLES", "digits_qnet"]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@lru_cache(maxsize=None)
def digits_qnet(name: str):
    """(network, qnet, x_test_int8, y_test, x_test_float) for an example network."""
    net = load_network(EXAMPLES / f"{name}.toml")
    x_train, _, x_test, y_test = digits_split(0, shape=net.input_shape)
    qnet = quantize(net, x_train[:256])
    xq = np.stack([qnet.quantize_input(x) for x in x_test])
    return net, qnet, xq, np.asarray(y_test), x_test
