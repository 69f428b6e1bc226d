"""The headline commands, end to end: ``nnloom generate``, ``simulate``,
``demo`` and ``fpga build``, and what a failing command leaves behind.

``simulate`` and ``demo`` build the same two 8 x 8 accelerators (the
Verilog depends on the configuration, not on the weights), so the two tests
share their Verilator builds through the runner's cache.
"""

import json

import numpy as np
import pytest

from nnloom.gen.accelerator import TOP_NAME, Design, build
from nnloom.gen.cli import main
from nnloom.gen.verilog import to_verilog
from nnloom.hw.accel import Accelerator
from nnloom.hw.accel_isa import INSTRUCTION, INSTRUCTION_BITS, Op
from nnloom.hw.packing import unpack


def test_generate_writes_every_file_whole(tmp_path, capsys):
    out = tmp_path / "acc"
    assert main(["generate", "lenet_digits", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "accel.v", "image.bin", "program.bin", "report.json"]
    report = json.loads((out / "report.json").read_text())
    cfg = Design.from_dict(report["config"]).accel
    # the report's config is the one the Verilog was built with: elaborating
    # it again gives the same bytes
    assert (out / "accel.v").read_text() == to_verilog(Accelerator(cfg), name=TOP_NAME)
    # the program is whole: as many instructions as the report says, each a
    # well-formed word whose fields decode, ending with END
    raw = (out / "program.bin").read_bytes()
    width = INSTRUCTION_BITS // 8
    assert len(raw) == report["instructions"] * width
    words = [unpack(INSTRUCTION, int.from_bytes(raw[i:i + width], "little"))
             for i in range(0, len(raw), width)]
    assert report["instructions"] <= cfg.imem_depth
    # the DRAM image holds every region the report lists, and the program at its address
    image = (out / "image.bin").read_bytes()
    regions = report["regions"]
    assert len(image) == max(r["addr"] + r["bytes"] for r in regions.values())
    prog = regions["program"]
    assert image[prog["addr"]:prog["addr"] + len(raw)] == raw
    # and all of it equals the pipeline's own build of the same network
    b = build("examples/lenet_digits.toml")
    assert b.config == cfg and raw == b.program.program_bytes() and image == b.program.image()
    assert [w["op"] for w in words][-1] == Op.END
    assert {w["op"] for w in words} <= set(Op.NAMES)
    assert f"{cfg.size}x{cfg.size} array" in capsys.readouterr().out
    assert (out / "README.md").read_text().startswith(f"# {b.qnet.name}: generated accelerator")


def test_generate_report_matches_a_board_plan(tmp_path):
    """``--board``: the array is the planner's, and the report says so."""
    out = tmp_path / "acc"
    assert main(["generate", "digits_mlp", "--board", "ulx3s-85f", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    b = build("examples/digits_mlp.toml", board="ulx3s-85f")
    assert report["config"] == b.design.to_dict() == b.plan.config.to_dict()
    assert report["plan"]["rows"] == b.plan.config.rows and report["plan"]["size"] == b.config.size
    assert report["plan"]["cycles"] == report["totals"]["cycles"] == b.program.predicted_cycles()


@pytest.mark.parametrize("argv,needle", [
    (["generate", "nosuch_net", "-o", "{out}"], "nosuch_net: file: expected a network file"),
    (["generate", "digits_mlp", "--size", "6", "-o", "{out}"], "--size: expected 2 or a multiple"),
    (["generate", "digits_mlp", "--board", "nope", "-o", "{out}"], "--board: expected one of"),
    (["simulate", "digits_mlp", "--samples", "0"], "--samples: expected 1..359"),
    (["simulate", "alexnet"], "weights: expected a network with weights"),
    (["demo", "--samples", "400", "-o", "{out}"], "--samples: expected 1..359"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, needle):
    out = tmp_path / "out"
    assert main([a.format(out=out) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nnloom: ") and needle in err, err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_failing_generate_leaves_the_old_directory_and_no_debris(tmp_path, monkeypatch):
    out = tmp_path / "acc"
    out.mkdir()
    (out / "old.txt").write_text("previous build")
    from nnloom.gen import accelerator

    def broken(self):
        raise RuntimeError("disk full")
    monkeypatch.setattr(accelerator.Build, "files", lambda self: {
        "accel.v": b"partial", "report.json": broken(self)})
    with pytest.raises(RuntimeError, match="disk full"):
        main(["generate", "digits_mlp", "-o", str(out)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acc"]
    assert [p.name for p in out.iterdir()] == ["old.txt"]


def test_a_failing_fpga_build_leaves_no_output_directory(tmp_path, monkeypatch, capsys):
    """The tools run in a temporary directory; when one fails, nothing is
    left where the build would have gone (exit status 1, one line)."""
    from nnloom.fpga import build as fpga_build

    def failing(top, board_name, out_dir, **kw):
        (out_dir / "build").mkdir(parents=True)
        (out_dir / "build" / "top.v").write_text("// half a netlist")
        raise fpga_build.ToolError("nextpnr failed (top.tim): ERROR: no route")
    monkeypatch.setattr(fpga_build, "build_top", failing)
    out = tmp_path / "bits"
    rc = main(["fpga", "build", "digits_mlp", "--board", "ulx3s-85f", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.strip().splitlines()[-1] == "nnloom: fpga build: nextpnr failed (top.tim): ERROR: no route"
    assert list(tmp_path.iterdir()) == []


def test_a_finished_fpga_build_moves_in_whole(tmp_path, monkeypatch):
    """With the tools stubbed by a fake that writes what they write, the
    output directory appears with the bitstream, the image and the report,
    whose paths point into it."""
    from nnloom.fpga import build as fpga_build

    def fake(top, board_name, out_dir, **kw):
        (out_dir / "build").mkdir(parents=True)
        (out_dir / "build" / "top.bit").write_bytes(b"\x00bitstream")
        return {"bitstream": str(out_dir / "build" / "top.bit"), "fmax_mhz": 50.0,
                "target_mhz": 25.0, "resources": {}, "seconds": 0.0, "device": "LFE5U-85F"}
    monkeypatch.setattr(fpga_build, "build_top", fake)
    out = tmp_path / "bits"
    r = fpga_build.build_network("examples/digits_mlp.toml", "ulx3s-85f", out)
    assert sorted(p.name for p in out.iterdir()) == ["build", "image.bin", "report.json"]
    assert (out / "build" / "top.bit").read_bytes() == b"\x00bitstream"
    assert r["build"]["bitstream"] == str(out / "build" / "top.bit")
    assert json.loads((out / "report.json").read_text())["report"] == str(out / "report.json")
    assert [p.name for p in tmp_path.iterdir()] == ["bits"]


@pytest.mark.slow
def test_simulate_two_digits_writes_json(tmp_path, capsys):
    js = tmp_path / "sim.json"
    assert main(["simulate", "lenet_digits", "--samples", "2", "--json", str(js)]) == 0
    s = json.loads(js.read_text())
    b = build("examples/lenet_digits.toml")
    assert s["n"] == 2 and s["bit_exact"] is True and s["config"] == b.design.to_dict()
    # each layer's RTL counter equals the compiler's model (the testbench asserts
    # it too), and the mean cycles are the whole inference, DMA included
    assert [r["cycles"] for r in s["layers"]] == [L.cycles for L in b.program.layers]
    assert s["cycles"] > b.program.predicted_cycles()
    macs = sum(L.macs for L in b.program.layers)
    assert s["utilization"] == pytest.approx(macs / (b.config.size ** 2 * s["cycles"]))
    assert "2 digits on the RTL" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_quick(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--samples", "2", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "digits_mlp", "layers.png", "lenet_digits", "report.md", "summary.json"]
    assert (out / "layers.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((out / "summary.json").read_text())
    for name in ("digits_mlp", "lenet_digits"):
        s, acc = summary["summaries"][name], summary["accuracy"][name]
        assert s["n"] == 2 and 0.8 < acc["int8"] <= 1.0 and 0.8 < acc["float"] <= 1.0
        assert [r["cycles"] for r in s["layers"]] == [r["model_cycles"] for r in s["layers"]]
        assert (out / name / "accel.v").is_file()
        assert f"| {name} |" in (out / "report.md").read_text()
    assert np.isfinite(summary["summaries"]["digits_mlp"]["energy_pj"])
