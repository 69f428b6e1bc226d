"""The board top over its UART pins in cocotb, driven by the host driver's
protocol code (fpga.link): digits inferences bit-exact against the golden
model, the protocol's errors, and the status LEDs.  One Verilator build."""

import pytest

from gen.accelerator import size_config
from hw.board_top import BoardTop, mem_depth_for
from sim.accel_models import digits_qnet
from sim.runner import run
from gen.compile import compile_network

DIVISOR = 4        # clock cycles per UART bit: fast in simulation


@pytest.mark.slow
@pytest.mark.parametrize("size", [4, 2], ids=["ulx3s-4x4", "icebreaker-2x2"])
def test_uart_host_digits(size, simulator):
    """The arrays the two boards' builds get for the MLP (the iCEBreaker's on
    a 16-bit bus; tests/fpga/test_fit.py checks that these are the sizes)."""
    _, qnet, _, _, _ = digits_qnet("digits_mlp")
    cfg = size_config(qnet, size)
    depth = mem_depth_for(compile_network(qnet, cfg).size)
    run(BoardTop(cfg, mem_depth=depth, divisor=DIVISOR), "sim.tb.uart_tb", sim=simulator,
        params={"config": cfg.to_dict(), "network": "digits_mlp", "samples": [0, 7, 13],
                "divisor": DIVISOR, "gap": 0.2, "seed": 11})
