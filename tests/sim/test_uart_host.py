"""The board top over its UART pins in cocotb, driven by the host driver's
protocol code (hw.uart_link): digits inferences bit-exact against the golden
model, the protocol's errors, and the status LEDs.  One Verilator build."""

import pytest

from nnloom.fpga.build import prepare
from nnloom.hw.board_top import BoardTop
from nnloom.sim.runner import run

DIVISOR = 4        # clock cycles per UART bit: fast in simulation


@pytest.mark.slow
@pytest.mark.parametrize("board", ["ulx3s-85f", "orangecrab-25f"])
def test_uart_host_digits(board, simulator):
    """The array each board's build gets for the MLP (fpga.build.prepare:
    8 x 8 on the ULX3S-85F, 2 x 2 on a 16-bit bus on the OrangeCrab-25F;
    the iCEBreaker is refused by the fit check)."""
    b, depth = prepare("examples/digits_mlp.toml", board)
    cfg = b.config
    run(BoardTop(cfg, mem_depth=depth, divisor=DIVISOR), "nnloom.sim.tb.uart_tb", sim=simulator,
        params={"config": cfg.to_dict(), "network": "digits_mlp", "samples": [0, 7, 13],
                "divisor": DIVISOR, "gap": 0.2, "seed": 11})
