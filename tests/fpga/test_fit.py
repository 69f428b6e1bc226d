"""The fit check runs before synthesis and fails with one line naming the
resource, what the design needs and what the device has (exit status 2)."""

import dataclasses

import pytest

from nnloom.fpga.build import build_network, prepare
from nnloom.fpga.fit import (REQUANT_DSPS, FitError, available, board_estimate, board_ram_blocks,
                      check_fit, largest_fit, memory_blocks)
from nnloom.gen.planner import board
from nnloom.gen.cli import main
from nnloom.hw.accel_core import AccelConfig

CFG = AccelConfig(size=4, act_depth=16, wbuf_depth=64, pbuf_depth=16, acc_depth=4, layers=3)


def test_block_counts_follow_the_block_shapes():
    # iCE40 EBR: 256 x 16 at the widest; ECP5 DP16KD: 512 x 36
    assert memory_blocks(64, 352, "ice40") == 22
    assert memory_blocks(64, 352, "ecp5") == 10
    assert memory_blocks(2048, 32, "ecp5") == 4          # 2048 x 9 four times
    assert memory_blocks(4096, 8, "ice40") == 8           # 512 x 8 eight times


def test_board_ram_is_spram_on_the_up5k():
    # two 16K x 16 SPRAMs side by side per 16,384 32-bit words; ECP5: DP16KD
    assert board_ram_blocks(2048, "ice40") == {"spram": 2}
    assert board_ram_blocks(32768, "ice40") == {"spram": 4}
    assert board_ram_blocks(2048, "ecp5") == {"bram": 4}
    b = board("icebreaker")
    # 65,536 words of board RAM: 8 SPRAMs, the UP5K has 4
    assert board_estimate(CFG.replace(size=2, data_width=16), b, 65536)["spram"] == 8
    assert available(b)["spram"] == 4


def test_estimate_grows_with_the_array():
    b = board("ulx3s-85f")
    small, big = board_estimate(CFG, b, 2048), board_estimate(CFG.replace(size=8), b, 2048)
    # one MULT18X18D per PE, four per post-processing lane
    assert big["dsps"] - small["dsps"] == (64 - 16) + REQUANT_DSPS * (8 - 4)
    assert big["luts"] > small["luts"] and big["ffs"] > small["ffs"]


def test_fit_error_names_resource_needed_and_available():
    b = board("icebreaker")
    est = board_estimate(CFG, b, 2048)
    have = available(b)
    assert est["luts"] > have["luts"] == 5280
    # iCE40: the 4 post-processing lanes' 16 SB_MAC16 (PEs get none), logic
    # cells above the LUT4s
    assert est["dsps"] == 4 * REQUANT_DSPS and est["lcs"] > est["luts"] and have["lcs"] == 5280
    with pytest.raises(FitError) as e:
        check_fit(CFG, b, 2048, where="x")
    assert e.value.resource == "LUT4s"
    assert str(e.value) == f"x does not fit: LUT4s: needs {est['luts']:,}, the device has 5,280"


def test_cli_fit_failure_is_one_line_exit_2(capsys):
    rc = main(["fpga", "build", "examples/digits_mlp.toml", "--board", "icebreaker", "--size", "4"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("nnloom: fpga: digits_mlp on icebreaker (4 x 4 array) does not fit: LUT4s: needs ")
    assert err.rstrip().endswith("the device has 5,280")


def test_default_sizes_are_the_plans():
    """Without --size each board gets the planner's design, which fits the
    board top: 4 x 4 on the ULX3S-45F, 8 x 8 on the ULX3S-85F (the 12 x 12
    would need 144 + 48 MULT18X18D of its 156)."""
    sizes = {}
    for name in ("ulx3s-45f", "ulx3s-85f"):
        b, depth = prepare("examples/digits_mlp.toml", name)
        qnet, cfg = b.qnet, b.config
        sizes[name] = (cfg.size, cfg.data_width)
        assert b.plan.accel == cfg and b.planned_side == cfg.size and not b.note
        check_fit(cfg, board(name), depth)               # fits
        big, _, _ = largest_fit(qnet, board(name))
        assert big.size >= cfg.size
    assert sizes == {"ulx3s-45f": (4, 32), "ulx3s-85f": (8, 32)}


def test_the_icebreaker_is_refused_in_one_line(capsys):
    """The v2 accelerator's smallest design (2 x 2) needs about 7,400 logic
    cells (5,257 SB_LUT4 and 3,462 flip-flops in synthesis); the UP5K has
    5,280: the fit check says so before the tools run."""
    rc = main(["fpga", "build", "examples/digits_mlp.toml", "--board", "icebreaker", "--check"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "logic cells (LUT4 + flip-flop): needs" in err
    assert "the device has 5,280" in err


def test_the_fpga_report_plan_is_the_built_design():
    """The planner plans with the fit check the FPGA flow makes, so the
    build is the plan: no stepping down, no note."""
    for name in ("ulx3s-45f", "ulx3s-85f"):
        r = build_network("examples/digits_mlp.toml", name, fit_only=True)
        assert r["config"]["size"] == r["plan"]["size"] and "note" not in r["plan"]


def test_nothing_fits_gives_the_smallest_arrays_error():
    from nnloom.gen.planner import Board, Budget
    tiny = Board("tiny", "icebreaker.ICEBreakerPlatform", "iCE40UP5K",
                 Budget(dsps=8, luts=2000, ffs=5280, bram_bits=30 * 4096 + 4 * 262144,
                        clock_mhz=12.0, dram_bytes_per_cycle=0.5, family="ice40",
                        bram_block_bits=4096))
    qnet = prepare("examples/digits_mlp.toml", "ulx3s-85f")[0].qnet
    cfg, depth, err = largest_fit(qnet, tiny)
    assert cfg is None and depth is None
    assert err.resource == "LUT4s" and "a 2 x 2 array on tiny" in str(err)
    # when one fits, the error is the next size up's
    cfg, _, err = largest_fit(qnet, board("ulx3s-45f"))
    assert cfg.size == 4 and "a 8 x 8 array on ulx3s-45f" in str(err)
    assert largest_fit(qnet, board("ulx3s-45f"), upto=4)[2] is None


def test_cli_fit_passes_on_ulx3s(capsys):
    rc = main(["fpga", "build", "examples/digits_mlp.toml", "--board", "ulx3s-85f", "--check"])
    assert rc == 0
    # one MULT18X18D per PE of the planned 8 x 8 array, plus 4 per post-processing lane
    assert f'"dsps": {8 * 8 + 8 * REQUANT_DSPS}' in capsys.readouterr().out


@pytest.mark.parametrize("argv,msg", [
    (["--board", "nope"], "--board: expected one of"),
    (["--board", "ulx3s-85f", "--baud", "10000000"], "baud rate 10000000 is not reachable"),
    (["--board", "ulx3s-85f", "--clock", "-5"], "--clock: expected a frequency in MHz > 0, got -5"),
])
def test_cli_bad_input(argv, msg, capsys):
    rc = main(["fpga", "build", "examples/digits_mlp.toml", *argv, "--check"])
    assert rc == 2 and msg in capsys.readouterr().err


def test_ecp5_pes_beyond_the_dsps_are_lut_multipliers():
    """12 x 12 on the 85F: 48 MULT18X18D for the 12 post-processing lanes
    leave 108 for PEs; the other 36 products are Booth LUT multipliers, which
    the estimate counts and the build's Yosys script makes."""
    from nnloom.fpga.build import dsp_budget_script
    from nnloom.fpga.fit import lut_multipliers
    b = board("ulx3s-85f")
    cfg = CFG.replace(size=12, data_width=32)
    assert lut_multipliers(cfg, b) == 36
    est = board_estimate(cfg, b, 2048)
    assert est["dsps"] == 156
    base = board_estimate(cfg, dataclasses.replace(b, budget=b.budget.replace(dsps=192)), 2048)
    from nnloom.gen.perf.resources import COEFFS
    per_mult = COEFFS["lut_per_mult_bit"] * 8 * 8        # the model's 8 x 8 LUT multiplier
    assert base["dsps"] == 192 and est["luts"] - base["luts"] == round(36 * per_mult)
    script = dsp_budget_script(cfg, 156)
    assert script.startswith("proc; booth t:$mul r:A_WIDTH<=8")
    kept = [f"*.pe_{i}_{j}/*" for i in range(12) for j in range(12)][:108]
    assert all(k in script for k in kept) and "*.pe_9_0/*" not in script
    assert dsp_budget_script(CFG.replace(size=8, data_width=32), 156) == ""   # 64 + 32 fit


@pytest.mark.parametrize("multiplier", ["comb", "portable"])
def test_dsp_budget_selects_exactly_the_pes_beyond_the_dsps(multiplier, tmp_path):
    """Yosys itself counts the $mul cells the budget script's selection
    takes on the emitted design: the PE products beyond the DSPs (also when
    the product sits in the registered multiplier's submodule), none of the
    post-processing lanes' or the kept PEs'."""
    import re
    import subprocess

    from amaranth.back import rtlil
    from nnloom.fpga.build import dsp_budget_script
    from nnloom.hw.accel import Accelerator
    from nnloom.sim.lint import yosys_command
    cfg = CFG.replace(size=4, data_width=32, multiplier=multiplier)
    script = dsp_budget_script(cfg, 4 * 4 + 10)       # 16 lane DSPs: 10 PEs keep theirs
    sel = script.removeprefix("proc; booth ")
    (tmp_path / "top.il").write_text(rtlil.convert(Accelerator(cfg), name="top"))
    out = subprocess.run([*yosys_command(), "-q", "-p",
                          f"read_rtlil top.il; proc; tee -o count.txt select -count {sel}"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    n = int(re.search(r"(\d+) objects", (tmp_path / "count.txt").read_text()).group(1))
    assert n == 16 - 10
