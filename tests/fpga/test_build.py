"""Real builds with the YoWASP toolchain: the link-only board top (UART
bridge + block RAM, no accelerator: the full digits design is the
acceptance command, minutes long) for the iCEBreaker and the ULX3S 85F.
Each checks that a bitstream exists, that the block RAM used is what the fit
model counts (SPRAM on the iCEBreaker), and that the report's clock target is the board's."""

import json

import pytest

from nnloom.fpga.build import build_top, ram_style_for
from nnloom.fpga.fit import board_ram_blocks
from nnloom.gen.planner import board
from nnloom.hw.board_top import BoardTop

# smallest plausible bitstreams (bytes): iCE40 UP5K .bin 104 kB; ECP5 85F .bit
# as amaranth-boards packs it for the ULX3S (compressed), ~290 kB for a small design
MIN_BITSTREAM = {"icebreaker": 100_000, "ulx3s-85f": 200_000}


@pytest.mark.slow
@pytest.mark.fpga
@pytest.mark.parametrize("name", ["icebreaker", "ulx3s-85f"])
def test_link_top_builds(name, tmp_path):
    b = board(name)
    depth = 1024
    top = BoardTop(None, mem_depth=depth, divisor=round(b.budget.clock_mhz * 1e6 / 115200),
                   ram_style=ram_style_for(b))
    s = build_top(top, name, tmp_path)
    bit = tmp_path / "build" / ("top.bin" if b.budget.family == "ice40" else "top.bit")
    assert s["bitstream"] == str(bit) and bit.stat().st_size >= MIN_BITSTREAM[name]
    # the board RAM where the fit model puts it: SPRAM on the UP5K, DP16KD on ECP5
    ram = board_ram_blocks(depth, b.budget.family)
    used, avail = s["resources"]["bram"]
    assert used == ram.get("bram", 0)
    assert avail == {"icebreaker": 30, "ulx3s-85f": 208}[name]
    if "spram" in ram:
        assert s["resources"]["spram"] == [ram["spram"], 4]
    assert s["resources"]["dsps"][0] == 0
    assert abs(s["target_mhz"] - b.budget.clock_mhz) < 0.01
    assert s["fmax_mhz"] > 0
    json.dumps(s)      # the summary is what report.json holds


@pytest.mark.slow
@pytest.mark.fpga
def test_ulx3s_pll_clock(tmp_path):
    """--clock on ECP5: an EHXPLLL makes the target, which nextpnr times against."""
    top = BoardTop(None, mem_depth=256, divisor=434)
    s = build_top(top, "ulx3s-85f", tmp_path, clock_mhz=50)
    assert s["pll"]["f_out"] == 50.0
    assert abs(s["target_mhz"] - 50.0) < 0.01 and s["fmax_mhz"] > 0
    tim = (tmp_path / "build" / "top.tim").read_text()
    assert "EHXPLLL:       1/" in tim and "ignoring clock constraint" not in tim
