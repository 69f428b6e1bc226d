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


def test_standard_clock_choice():
    from nnloom.fpga.build import CLOCK_MARGIN, standard_clock
    assert CLOCK_MARGIN == 0.10
    assert standard_clock(117.0, 25.0) == 100.0          # 110 x 1.1 > 117
    assert standard_clock(56.2, 25.0) == 50.0            # the v2 ULX3S build's fmax
    assert standard_clock(110.0, 25.0) == 100.0          # exactly the margin
    assert standard_clock(109.9, 25.0) == 90.0
    assert standard_clock(27.0, 25.0) is None             # nothing above the oscillator
    assert standard_clock(117.0, 25.0, below=100.0) == 90.0


def _fake_builds(monkeypatch, fmaxes):
    """build_top stand-in: the n-th build reaches fmaxes[n]; records the clocks."""
    from nnloom.fpga import build as fb
    asked = []

    def fake(top, board_name, out_dir, *, clock_mhz=None, **kw):
        asked.append((clock_mhz, top))
        d = out_dir / "build"
        d.mkdir(parents=True)
        (d / "top.bit").write_bytes(b"x" * len(asked))
        return {"fmax_mhz": fmaxes[len(asked) - 1], "bitstream": str(d / "top.bit")}

    monkeypatch.setattr(fb, "build_top", fake)
    return asked


@pytest.mark.parametrize("fmaxes,clocks,kept", [
    ([56.2, 57.0], [None, 50.0], 50.0),                 # rebuilt with the PLL at 50: met
    ([117.0, 96.0, 95.0], [None, 100.0, 80.0], 80.0),   # 100 missed (96): one lower
    ([117.0, 96.0, 70.0], [None, 100.0, 80.0], 25.0),   # both missed: the oscillator's
    ([26.0], [None], 25.0),                              # no standard clock above 25
    ([20.0], [None], 25.0),                              # even the oscillator missed: kept
])
def test_auto_clock_search(monkeypatch, tmp_path, fmaxes, clocks, kept):
    from nnloom.fpga.build import build_auto_clock
    asked = _fake_builds(monkeypatch, fmaxes)
    s = build_auto_clock(lambda mhz: ("top", mhz), "ulx3s-85f", tmp_path)
    assert [c for c, _ in asked] == clocks
    assert [t for _, t in asked] == [("top", c or 25.0) for c in clocks]   # divisor per clock
    assert s["clock_mhz"] == kept
    assert [p["clock_mhz"] for p in s["clock_search"]] == [c or 25.0 for c in clocks]
    # the kept build, and only it, is left, in out/build
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]
    n = [c or 25.0 for c in clocks].index(kept) + 1
    assert (tmp_path / "build" / "top.bit").read_bytes() == b"x" * n
    assert s["bitstream"] == str(tmp_path / "build" / "top.bit")


def test_standard_clock_on_ice40():
    from nnloom.fpga.build import standard_clock
    # SB_PLL40 from 12 MHz: 36 = 12 * 48 / 16 (VCO 576), 24 = 12 * 64 / 32
    assert standard_clock(40.0, 12.0, family="ice40") == 36.0
    assert standard_clock(30.0, 12.0, family="ice40") == 24.0    # 25 would be 25.125 (0.5 % off)
    assert standard_clock(13.0, 12.0, family="ice40") is None     # 16 MHz is the PLL's floor


@pytest.mark.parametrize("fmaxes,clocks,kept", [
    ([40.0, 38.0], [None, 36.0], 36.0),                 # the oscillator's build allows 36: met
    ([16.5], [None], 12.0),                             # the first revision's fmax: nothing above
])
def test_auto_clock_on_ice40_uses_the_pll(monkeypatch, tmp_path, fmaxes, clocks, kept):
    from nnloom.fpga.build import build_auto_clock
    asked = _fake_builds(monkeypatch, fmaxes)
    s = build_auto_clock(lambda mhz: mhz, "icebreaker", tmp_path)
    assert [c for c, _ in asked] == clocks and s["clock_mhz"] == kept


@pytest.mark.slow
@pytest.mark.fpga
@pytest.mark.extended          # two real builds; the search itself is tested above
def test_ulx3s_auto_clock_builds_with_the_pll(tmp_path):
    """The automatic choice on the real toolchain: the link-only top is rebuilt
    with the PLL at the fastest standard clock its first build allows."""
    from nnloom.fpga.build import build_auto_clock, standard_clock
    s = build_auto_clock(lambda mhz: BoardTop(None, mem_depth=256,
                                              divisor=round(mhz * 1e6 / 115200)),
                         "ulx3s-85f", tmp_path)
    first, *rest = s["clock_search"]
    assert first["clock_mhz"] == 25.0 and rest
    assert rest[0]["clock_mhz"] == standard_clock(first["fmax_mhz"], 25.0)
    assert s["clock_mhz"] > 25.0 and s["fmax_mhz"] >= s["clock_mhz"]
    assert s["pll"]["f_out"] == s["clock_mhz"] and abs(s["target_mhz"] - s["clock_mhz"]) < 0.01
    assert (tmp_path / "build" / "top.bit").stat().st_size >= MIN_BITSTREAM["ulx3s-85f"]


def test_board_without_a_uart_is_refused_before_the_tools(one_line_error, tmp_path):
    # the OrangeCrab has no USB UART (its USB goes to the FPGA): no host link
    one_line_error(["fpga", "build", "digits_mlp", "--board", "orangecrab-25f", "--size", "4",
                    "-o", str(tmp_path / "oc")], "--board", "no uart 0", "ulx3s-85f")
    assert not (tmp_path / "oc").exists()
