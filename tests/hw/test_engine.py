"""The engine interface: which engines it accepts, and the second engine's
Verilog (its behaviour in the core: tests/sim/test_accel_v2.py)."""

import pytest

from nnloom.hw.accel import Accelerator
from nnloom.hw.accel_core import AccelConfig
from nnloom.hw.engine import DotEngine, EngineSignature, check_engine, systolic_engine
from nnloom.hw.systolic import SystolicArray, SystolicConfig
from nnloom.sim.lint import assert_emits_clean

# engines built only to be refused are never elaborated
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

CFG = AccelConfig(size=4, act_depth=64, wbuf_depth=64, pbuf_depth=16, acc_depth=16)
W, LAT = CFG.psum_width, CFG.systolic.latency


def test_the_systolic_array_and_the_dot_engine_have_the_interface():
    lat = LAT
    check_engine(systolic_engine(CFG), 4, 4, W, lat)
    check_engine(DotEngine.for_config(CFG), 4, 4, W, lat)
    assert DotEngine.for_config(CFG).signature.members == \
        EngineSignature(4, 4, CFG.psum_width).members


@pytest.mark.parametrize("engine,match", [
    (DotEngine(4, 4, W + 1, LAT), "port result"),             # sums one bit too wide
    (DotEngine(4, 2, W, LAT), "port weight"),                 # two output lanes
    (DotEngine(4, 4, W, LAT - 1), f"latency {LAT - 1}"),      # not the model's latency
    # an output-stationary array streams `last`, not `first`
    (SystolicArray(SystolicConfig(rows=4, cols=4, a_width=8, w_width=8, acc_width=W,
                                  signed=True, dataflow="os", result_fifo=False)), "port act"),
])
def test_engines_without_the_interface_are_refused(engine, match):
    with pytest.raises(TypeError, match=match):
        check_engine(engine, 4, 4, CFG.psum_width, CFG.systolic.latency)


def test_the_core_refuses_a_wrong_engine():
    with pytest.raises(TypeError, match="latency"):
        from amaranth.back import rtlil
        rtlil.convert(Accelerator(CFG, lambda cfg: DotEngine(4, 4, cfg.psum_width, 3)))


def test_dot_engine_rejects_zero_latency():
    with pytest.raises(ValueError, match="latency"):
        DotEngine(4, 4, 19, 0)


def test_accelerator_on_the_dot_engine_is_lint_clean_and_deterministic():
    assert_emits_clean(lambda: Accelerator(CFG, DotEngine.for_config))
