"""The simulator runner: caching, failure and skip reporting, waveforms."""

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from nnloom.sim.runner import SimulationFailed, SimulationSkipped, run


class Counter(wiring.Component):
    en: In(1)
    count: Out(8)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.count.eq(self.count + 1)
        return m


@pytest.mark.slow
def test_pass_cache_fail_skip_and_waves(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLOOM_CACHE", str(tmp_path))
    first = run(Counter(), "nnloom.sim.tb.selftest_tb", params={"cycles": 5, "expect": 5})
    assert first.tests == 3 and not first.cached and not first.skipped
    again = run(Counter(), "nnloom.sim.tb.selftest_tb", params={"cycles": 7, "expect": 7})
    assert again.cached and again.build_dir == first.build_dir
    with pytest.raises(SimulationFailed, match="1 of 3 cocotb tests failed"):
        run(Counter(), "nnloom.sim.tb.selftest_tb", params={"cycles": 5, "expect": 6})
    # A skipped cocotb test checked nothing: named with ``testcase=`` it is a
    # pytest skip with the testbench's reason (so is a run where every test
    # skipped); otherwise it is listed in ``skipped``.  A name that is not in
    # the module fails rather than running nothing.
    params = {"cycles": 2, "expect": 2, "skip": "not on this build"}
    some = run(Counter(), "nnloom.sim.tb.selftest_tb", params=params)
    assert some.tests == 3 and some.skipped == {"skips_when_asked": "not on this build"}
    with pytest.raises(SimulationSkipped, match="selftest_tb.skips_when_asked: not on this build"):
        run(Counter(), "nnloom.sim.tb.selftest_tb", params=params, testcase="skips_when_asked")
    with pytest.raises(SimulationSkipped, match="not on this build"):
        run(Counter(), "nnloom.sim.tb.selftest_tb", params=params,
            testcase=["counts", "skips_when_asked"])
    ran = run(Counter(), "nnloom.sim.tb.selftest_tb", params={**params, "skip": ""},
              testcase="skips_when_asked")
    assert ran.tests == 1 and not ran.skipped
    with pytest.raises(SimulationFailed, match="no cocotb test named counts_twice"):
        run(Counter(), "nnloom.sim.tb.selftest_tb", params=params,
            testcase=["counts", "counts_twice"])
    waves = run(Counter(), "nnloom.sim.tb.selftest_tb", params={"cycles": 3, "expect": 3}, waves=True)
    assert waves.waves is not None and waves.waves.stat().st_size > 0
    assert waves.build_dir != first.build_dir  # traced build is a different build

