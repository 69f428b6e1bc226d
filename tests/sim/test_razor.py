"""cocotb regression of the Razor SRAM on its emitted Verilog (two builds)."""

import pytest

from nnloom.hw.razor_sram import RazorSram, RazorSramConfig
from nnloom.sim.runner import run

CONFIGS = {
    # every mode at run time, transient injector, small enough for the
    # exhaustive all-words x all-flags masking test
    "w5-runtime-transient": (RazorSramConfig(width=5, depth=32, mode="runtime",
                                             injector="transient", rate_bits=8,
                                             counter_width=12, seed=7), 60),
    # fixed bit masking, persistent (per-write) fault map
    "w8-bit-persistent": (RazorSramConfig(width=8, depth=16, mode="bit",
                                          injector="persistent", rate_bits=12, seed=3), 900),
}


#: (build, cocotb tests of sim/tb/razor_tb.py run on it): the exhaustive
#: masking test needs width <= 6 and depth >= 2**width, so only the w5 build
#: runs it (it skips itself elsewhere, and a skip is never a pass).
RUNS = [("w5-runtime-transient", ["random_sequence", "latency_and_hold"]),
        ("w5-runtime-transient", ["exhaustive_masking"]),
        ("w8-bit-persistent", ["random_sequence", "latency_and_hold"])]


@pytest.mark.slow
@pytest.mark.parametrize("name,tests", RUNS, ids=[f"{n}-{'+'.join(t)}" for n, t in RUNS])
def test_razor_sram(name, tests, simulator):
    cfg, rate = CONFIGS[name]
    run(RazorSram(cfg), "nnloom.sim.tb.razor_tb", sim=simulator, testcase=tests,
        params={"config": cfg.to_dict(), "seed": sum(map(ord, name)), "cycles": 3000,
                "rate": rate})


# -- the golden rules themselves, against closed formulas ------------------------

import numpy as np  # noqa: E402

from nnloom.sim.golden.razor import Injector, flip_faults, mask, masked_bits, to_signed  # noqa: E402


def _bit_rule(word, flags, width):
    """Bit masking written out per column, independent of the vectorized model."""
    sign = word >> (width - 1) & 1
    if flags >> (width - 1) & 1:
        return 0
    return sum(((sign if flags >> c & 1 else word >> c & 1) << c) for c in range(width))


def test_golden_bit_masking_exhaustive_width6():
    width = 6
    words, flags = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    out = mask(words, flags, width, "bit")
    assert all(out[w, f] == _bit_rule(w, f, width) for w in range(64) for f in range(64))
    # magnitude never grows, and a zero flag vector changes nothing
    assert np.all(np.abs(to_signed(out, width)) <= np.abs(to_signed(words, width)))
    assert np.array_equal(out[:, 0], np.arange(64))
    assert np.array_equal(mask(words, flags, width, "word"), np.where(flags != 0, 0, words))
    forced = masked_bits(flags, width, "bit")
    assert forced[0, 0b100000] == width and forced[0, 0b000101] == 2


def test_injector_rate_statistics():
    cfg = RazorSramConfig(width=16, rate_bits=16, seed=5)
    inj = Injector(cfg)
    rate = 655  # p = 655 / 65535 ~ 1e-2
    flags = [inj.draw(rate) for _ in range(4000)]
    hits = sum(bin(f).count("1") for f in flags)
    p = rate / 65535
    n = 16 * 4000
    assert abs(hits - p * n) < 5 * (p * n) ** 0.5, hits
    assert Injector(cfg).draw(0) == 0


def test_flip_faults_flags_are_the_flips():
    rng = np.random.default_rng(0)
    words = rng.integers(0, 256, 1000)
    faulty, flags = flip_faults(words, 8, 0.1, rng)
    assert np.array_equal(faulty ^ words, flags)
    assert 0.08 < sum(bin(int(f)).count("1") for f in flags) / 8000 < 0.12
