"""End-to-end cocotb tests of the accelerator's emitted Verilog on real digits.

Every output is checked bit for bit against the golden int8 model, every
layer's compute cycles (hardware counters) against the compiler's model;
one run puts random pauses on every AXI channel (back-pressure and memory
latency); on the MLP builds a run of its own checks registers and error
handling.
"""

import pytest

from nnloom.gen.accelerator import sized
from nnloom.hw.accel import Accelerator
from nnloom.sim.accel_models import digits_qnet
from nnloom.sim.runner import run

# The configurations the generator builds for these networks (nnloom generate
# --size P), so that tests/gen/cli/test_headline.py's simulate and demo runs
# reuse these Verilator builds (the Verilog depends on the config only).
BUILDS = [
    ("digits_mlp", 8, 0.0),
    ("lenet_digits", 8, 0.25),
    ("digits_mlp", 2, 0.25),        # 2 x 2 on a 16-bit bus, as on the iCEBreaker
]


def _run(network, size, pause, simulator, testcase):
    cfg = sized(digits_qnet(network)[1], size)[0]
    samples = list(range(0, 360, 18))          # 20 test digits, all classes
    run(Accelerator(cfg), "nnloom.sim.tb.accel_tb", sim=simulator, testcase=testcase,
        params={"config": cfg.to_dict(), "network": network, "samples": samples,
                "pause": pause, "seed": 7, "errors": testcase == "registers_and_errors"})


@pytest.mark.slow
@pytest.mark.parametrize("network,size,pause", BUILDS)
def test_accelerator_on_digits(network, size, pause, simulator):
    _run(network, size, pause, simulator, "inference_bit_exact")


@pytest.mark.slow
@pytest.mark.parametrize("network,size,pause", [b for b in BUILDS if b[0] == "digits_mlp"])
def test_registers_and_errors(network, size, pause, simulator):
    """On the MLP builds (32- and 16-bit buses): INFO, PROG_BASE and every error code."""
    _run(network, size, pause, simulator, "registers_and_errors")
