"""The simulator runner: caching, failure reporting, waveforms."""

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from nnloom.sim.runner import SimulationFailed, run


class Counter(wiring.Component):
    en: In(1)
    count: Out(8)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.count.eq(self.count + 1)
        return m


@pytest.mark.slow
def test_pass_cache_fail_and_waves(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLOOM_CACHE", str(tmp_path))
    first = run(Counter(), "nnloom.sim.tb.selftest_tb", params={"cycles": 5, "expect": 5})
    assert first.tests == 2 and not first.cached
    again = run(Counter(), "nnloom.sim.tb.selftest_tb", params={"cycles": 7, "expect": 7})
    assert again.cached and again.build_dir == first.build_dir
    with pytest.raises(SimulationFailed, match="1 of 2 cocotb tests failed"):
        run(Counter(), "nnloom.sim.tb.selftest_tb", params={"cycles": 5, "expect": 6})
    waves = run(Counter(), "nnloom.sim.tb.selftest_tb", params={"cycles": 3, "expect": 3}, waves=True)
    assert waves.waves is not None and waves.waves.stat().st_size > 0
    assert waves.build_dir != first.build_dir  # traced build is a different build
