"""The board's block-RAM AXI slave on its 32- and 16-bit buses: random
bursts from cocotbext-axi's AxiMaster with pauses on every channel, and
host-port words, against a byte model (sim/tb/axi_bram_tb.py); lint and
determinism of its Verilog; its parameter checks."""

import pytest

from nnloom.hw.axi_bram import AxiBram
from nnloom.sim.lint import assert_emits_clean
from nnloom.sim.runner import run


@pytest.mark.slow
@pytest.mark.parametrize("data_width,seed", [(32, 3), (16, 4)])
def test_axi_and_host_ports(data_width, seed, simulator):
    run(AxiBram(256, data_width=data_width), "nnloom.sim.tb.axi_bram_tb", sim=simulator,
        params={"depth": 256, "data_width": data_width, "seed": seed, "ops": 120})


@pytest.mark.parametrize("data_width", [32, 16])
def test_lint_clean_and_deterministic(data_width):
    assert_emits_clean(lambda: AxiBram(1024, data_width=data_width, ram_style="huge"))


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("kw,msg", [(dict(depth=100), "power of two"),
                                    (dict(depth=256, data_width=64), "16 or 32")])
def test_rejects(kw, msg):
    with pytest.raises(ValueError, match=msg):
        AxiBram(**kw)
