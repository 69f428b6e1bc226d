"""cocotb test of the accelerator's compute core alone (sim/tb/accel_core_tb.py).

The controller and the DMA are played by Python: the LeNet-like digits CNN
(conv, max pooling and fc layers) compiled for a 4 x 4 core, every layer's
output map bit-exact against the golden int8 model
(:func:`nnloom.sim.golden.qnet.run_layer`) and every CONV / MAXPOOL
instruction's cycles equal to :meth:`AccelConfig.conv_cycles` /
:meth:`AccelConfig.maxpool_cycles`.  One Verilator build.
"""

import pytest

from nnloom.hw.accel_core import AccelConfig, AccelCore
from nnloom.sim.runner import run

CFG = AccelConfig(size=4, act_depth=256, wbuf_depth=512, pbuf_depth=32, acc_depth=64)


@pytest.mark.slow
def test_core_layers_bit_exact_and_cycle_exact(simulator):
    run(AccelCore(CFG), "nnloom.sim.tb.accel_core_tb", sim=simulator,
        testcase="layers_match_golden",
        params={"config": CFG.to_dict(), "network": "lenet_digits", "samples": [3, 200]})
