"""End-to-end cocotb tests of the accelerator's emitted Verilog on real digits.

Every output is checked bit for bit against the golden int8 model, every
layer's compute cycles (hardware counters) against the compiler's model;
one run puts random pauses on every AXI channel (back-pressure and memory
latency); one checks registers and error handling.
"""

import pytest

from nnloom.hw.accel import Accelerator
from nnloom.hw.accel_core import AccelConfig
from nnloom.sim.runner import run

SMALL = dict(act_depth=256, wbuf_depth=512, pbuf_depth=32, acc_depth=64)


@pytest.mark.slow
@pytest.mark.parametrize("network,size,pause", [
    ("digits_mlp", 4, 0.0),
    ("lenet_digits", 8, 0.25),
    ("digits_mlp", 2, 0.25),        # 2 x 2 on a 16-bit bus, as on the iCEBreaker
])
def test_accelerator_on_digits(network, size, pause, simulator):
    cfg = AccelConfig(size=size, data_width=AccelConfig.bus_width_for(size), **SMALL)
    samples = list(range(0, 360, 18))          # 20 test digits, all classes
    run(Accelerator(cfg), "nnloom.sim.tb.accel_tb", sim=simulator,
        params={"config": cfg.to_dict(), "network": network, "samples": samples,
                "pause": pause, "seed": 7, "errors": network == "digits_mlp"})
