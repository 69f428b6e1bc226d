"""The fit check runs before synthesis and fails with one line naming the
resource, what the design needs and what the device has (exit status 2)."""

import pytest

from fpga.fit import REQUANT_DSPS, FitError, available, board_estimate, check_fit, memory_blocks
from gen.boards import board
from gen.cli import main
from hw.accel_core import AccelConfig

CFG = AccelConfig(size=4, act_depth=16, wbuf_depth=64, pbuf_depth=16, acc_depth=4, layers=3)


def test_block_counts_follow_the_block_shapes():
    # iCE40 EBR: 256 x 16 at the widest; ECP5 DP16KD: 512 x 36
    assert memory_blocks(64, 352, "ice40") == 22
    assert memory_blocks(64, 352, "ecp5") == 10
    assert memory_blocks(2048, 32, "ecp5") == 4          # 2048 x 9 four times
    assert memory_blocks(4096, 8, "ice40") == 8           # 512 x 8 eight times


def test_estimate_grows_with_the_array():
    b = board("ulx3s-85f")
    small, big = board_estimate(CFG, b, 2048), board_estimate(CFG.replace(size=8), b, 2048)
    assert big["dsps"] - small["dsps"] == 64 - 16          # one MULT18X18D per PE
    assert big["luts"] > small["luts"] and big["ffs"] > small["ffs"]


def test_fit_error_names_resource_needed_and_available():
    b = board("icebreaker")
    est = board_estimate(CFG, b, 2048)
    have = available(b)
    assert est["luts"] > have["luts"] == 5280
    # iCE40: all 8 SB_MAC16 (4 requantization, 4 PEs), logic cells above the LUT4s
    assert est["dsps"] == b.budget.dsps and est["cells"] > est["luts"] and have["cells"] == 5280
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


def test_cli_fit_passes_on_ulx3s(capsys):
    rc = main(["fpga", "build", "examples/digits_mlp.toml", "--board", "ulx3s-85f", "--check"])
    assert rc == 0
    # one MULT18X18D per PE of the 4 x 4 array, plus the requantization's
    assert f'"dsps": {4 * 4 + REQUANT_DSPS}' in capsys.readouterr().out


@pytest.mark.parametrize("argv,msg", [
    (["--board", "nope"], "--board: expected one of"),
    (["--board", "ulx3s-85f", "--baud", "10000000"], "baud rate 10000000 is not reachable"),
])
def test_cli_bad_input(argv, msg, capsys):
    rc = main(["fpga", "build", "examples/digits_mlp.toml", *argv, "--check"])
    assert rc == 2 and msg in capsys.readouterr().err
