"""`nnloom plan`: the acceptance commands, the report, and one-line errors."""

import json
from pathlib import Path

import pytest

from nnloom.gen.cli import main
from nnloom.gen.frontend import load_network
from nnloom.gen.perf import ENGINE_HOOKS
from nnloom.hw.systolic import SystolicConfig

ROOT = Path(__file__).resolve().parents[3]
MINERVA = ROOT / "examples" / "minerva_mlp.toml"


def test_minerva_on_ulx3s_writes_report(tmp_path, capsys):
    """A timing-only network plans with placeholder weights: the design and
    its cycles depend on the shapes only, and the report says so."""
    out, png = tmp_path / "report.json", tmp_path / "roof.png"
    assert main(["plan", str(MINERVA), "--board", "ulx3s-85f", "-o", str(out),
                 "--roofline", str(png)]) == 0
    text = capsys.readouterr().out
    assert "plan: systolic" in text and "ulx3s-85f" in text and "total" in text
    report = json.loads(out.read_text())
    net = load_network(MINERVA)
    # the layers of the program: the quantized network's (each ReLU fused into its fc)
    assert [layer["name"] for layer in report["layers"]] == ["fc1", "fc2", "fc3", "fc4"]
    for row in report["layers"]:
        assert {"name", "type", "macs", "cycles", "utilization", "dram_bytes"} <= set(row)
    assert report["totals"]["macs"] == net.macs() == sum(r["macs"] for r in report["layers"])
    assert report["totals"]["cycles"] == sum(r["cycles"] for r in report["layers"]) == report["cycles"]
    assert report["board"] == "ulx3s-85f" and report["reasons"] and report["placeholder_weights"]
    cfg = report["config"]
    assert cfg["engine"] == "systolic" and cfg["dataflow"] == "ws" and cfg["rows"] == cfg["cols"] == cfg["size"]
    assert [c["size"] for c in report["candidates"]] == [2, 4, 8, 12, 16, 20, 24, 28, 32]
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_no_board_plans_for_the_default_board_and_says_so(tmp_path, capsys):
    """``nnloom plan NETWORK`` alone plans for DEFAULT_BOARD, names it on
    stderr, and gives the same plan as ``--board DEFAULT_BOARD``."""
    from nnloom.gen.planner import DEFAULT_BOARD

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["plan", "minerva_mlp", "-o", str(a)]) == 0      # a shipped example, by name
    err = capsys.readouterr().err
    assert f"planning for the default board {DEFAULT_BOARD}" in err
    assert main(["plan", str(MINERVA), "--board", DEFAULT_BOARD, "-o", str(b)]) == 0
    ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
    assert ja["board"] == DEFAULT_BOARD
    ja.pop("source"), jb.pop("source")
    assert ja == jb


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_scalesim_gemm_fixed_array_cycles_equal_rtl(tmp_path, capsys, dataflow):
    csv = tmp_path / "layers.csv"
    rows = [("g1", 64, 16, 27), ("g2", 7, 20, 33), ("g3", 1, 1, 1), ("g4", 100, 9, 70)]
    csv.write_text("Layer, M, N, K,\n" + "".join(f"{n}, {m}, {nn}, {k},\n" for n, m, nn, k in rows))
    out = tmp_path / "r.json"
    assert main(["plan", str(csv), "--engine", "systolic", "--array", "8x8", "--dataflow", dataflow,
                 "-o", str(out)]) == 0
    cfg = SystolicConfig(rows=8, cols=8, dataflow=dataflow)
    report = json.loads(out.read_text())
    # SystolicConfig.gemm_cycles is what the RTL takes (tests/sim/test_systolic.py)
    assert [r["cycles"] for r in report["layers"]] == [cfg.gemm_cycles(m, k, n) for _, m, n, k in rows]
    assert report["totals"]["cycles"] == sum(cfg.gemm_cycles(m, k, n) for _, m, n, k in rows)
    assert "8x8 " + dataflow.upper() in capsys.readouterr().out


def test_costs_table_changes_energy_column_not_energy_pj(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["plan", str(MINERVA), "--array", "4x4", "-o", str(a)]) == 0
    assert main(["plan", str(MINERVA), "--array", "4x4", "--costs", "eyeriss", "-o", str(b)]) == 0
    ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
    assert ja["totals"]["energy_pj"] == jb["totals"]["energy_pj"]
    assert jb["totals"]["energy_unit"] == "MAC" and jb["totals"]["energy"] != ja["totals"]["energy"]
    assert "eyeriss" in capsys.readouterr().out


def test_explicit_budget(tmp_path, capsys):
    budget = "dsps=16,luts=20000,ffs=20000,bram_bits=400000,clock_mhz=50,dram_bytes_per_cycle=4"
    assert main(["plan", "digits_mlp", "--budget", budget + ",lut_multipliers=false"]) == 0
    out = capsys.readouterr().out
    assert "samples/s" in out and "plan: systolic 2x2 WS" in out    # 4x4 needs 32 DSPs
    # with LUT multipliers (a budget's default) the 4 x 4 fits: its PEs in LUTs
    assert main(["plan", "digits_mlp", "--budget", budget]) == 0
    assert "plan: systolic 4x4 WS" in capsys.readouterr().out


BAD = [
    (["plan"], "plan: the following arguments are required"),
    (["plan", "{net}", "--array", "8by8"], "plan: --array: expected RxC"),
    (["plan", "{net}", "--array", "0x8"], "plan: --array: rows: expected 1..64, got 0"),
    (["plan", "{net}", "--board", "de0"], "plan: --board: expected one of icebreaker"),
    (["plan", "{net}", "--costs", "joules"], "plan: --costs: expected eyeriss | horowitz45"),
    (["plan", "{net}", "--costs", "{bad_costs}"], "costs.rf: expected a number"),
    (["plan", "{net}", "--engine", "tpu"], "plan: --engine: expected systolic | eyeriss | eie"),
    (["plan", "{net}", "--engine", "eyeriss"], "plan: --engine: expected systolic, got eyeriss"),
    (["plan", "{net}", "--budget", "dsps=1"], "plan: --budget: luts: expected a value"),
    (["plan", "{net}", "--budget", "lut=1"], "plan: --budget: lut: expected KEY=VALUE"),
    (["plan", "{net}", "--budget", "dsps=x"], "plan: --budget: dsps: expected a number"),
    (["plan", "{net}", "--board", "icebreaker", "--budget", "luts=50"],
     "budget: expected at least"),
    (["plan", "{net}", "--board", "icebreaker", "--array", "4x4"], "plan: --array: expected no --board"),
    (["plan", "{net}", "--dataflow", "os"], "plan: --dataflow: expected ws"),
    (["plan", "{net}", "--batch", "300"],
     "--batch: expected an integer in 1..255, got 300"),
    (["plan", "{missing}", "--array", "4x4"], "file: expected an existing file"),
    (["plan", "{wrongext}", "--array", "4x4"], "file: expected a .toml, .onnx, .tflite, .csv file"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[m for _, m in BAD])
def test_errors_one_line_status_2(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.setitem(ENGINE_HOOKS, "eyeriss", ("gen._no_such_model", "predict_layer"))
    bad_costs = tmp_path / "c.toml"
    bad_costs.write_text("[costs]\nmac = 1\n")
    (tmp_path / "net.txt").write_text("x")
    subst = {"net": str(MINERVA), "bad_costs": str(bad_costs), "missing": str(tmp_path / "no.toml"),
             "wrongext": str(tmp_path / "net.txt")}
    out = tmp_path / "report.json"
    assert main([a.format(**subst) for a in argv] + ["-o", str(out)] * (len(argv) > 1)) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnloom: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message in err
    assert not out.exists()                       # outputs whole or not at all


# the network descriptions among the examples (not, e.g., a sweep spec)
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir()
                  if p.suffix == ".csv" or (p.suffix == ".toml" and "[[layers]]" in p.read_text()))
#: examples no accelerator design can run: planned only with --array
UNBUILDABLE = {"alexnet.toml": "placeholder weights", "alexnet_scalesim.csv": "SCALE-Sim topology",
               "gemm_scalesim.csv": "SCALE-Sim topology"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_plans_or_says_why_not(path, capsys):
    from nnloom.gen.planner import BOARDS, PlanError, plan

    net = load_network(path)
    if path.name in UNBUILDABLE:
        assert main(["plan", str(path), "--board", "ulx3s-85f"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and UNBUILDABLE[path.name] in err and "--array RxC" in err
        assert main(["plan", str(path), "--array", "8x8"]) == 0
        return
    for name in BOARDS:
        try:
            p = plan(net, BOARDS[name].budget, board=name)
        except PlanError as e:
            # minerva's 150 K weights, cifar_cnn's 32 x 32 maps and its DRAM
            # image in board block RAM: too large but for the 85F
            # and the UP5K's 5,280 logic cells hold no v2 design
            assert (path.name in ("minerva_mlp.toml", "cifar_cnn.toml") and name != "ulx3s-85f"
                    or name == "icebreaker"), (name, e)
            continue
        assert p.totals["macs"] == net.macs()
        assert all(p.usage[k] <= p.available[k] for k in p.available)


def test_shipped_scalesim_gemm_file_cycles_equal_rtl(tmp_path):
    out = tmp_path / "r.json"
    assert main(["plan", str(ROOT / "examples" / "gemm_scalesim.csv"), "--engine", "systolic",
                 "--array", "8x8", "--dataflow", "ws", "-o", str(out)]) == 0
    cfg = SystolicConfig(rows=8, cols=8, dataflow="ws")
    lines = (ROOT / "examples" / "gemm_scalesim.csv").read_text().splitlines()[1:]
    mnk = [[int(v) for v in line.split(",")[1:4]] for line in lines if line.strip()]
    report = json.loads(out.read_text())["layers"]
    assert len(report) == len(mnk)
    for row, (m, n, k) in zip(report, mnk):
        assert row["cycles"] == cfg.gemm_cycles(m, k, n)


def test_onnx_model_plans(tmp_path):
    import onnx

    from nnloom.sim.onnx_models import to_onnx

    net = load_network(ROOT / "examples" / "lenet_digits.toml")
    path, out = tmp_path / "lenet.onnx", tmp_path / "r.json"
    onnx.save(to_onnx(net), str(path))
    assert main(["plan", str(path), "--board", "ulx3s-45f", "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["totals"]["macs"] == net.macs()


def test_budget_without_lut_multipliers(tmp_path, capsys):
    out = tmp_path / "r.json"
    # an iCE40 with the logic the v2 2 x 2 needs (the UP5K's 5,280 cells do not hold it)
    big = "luts=9000,ffs=9000"
    # 8 DSPs: 4 for the 2 x 2's one post-processing lane, 4 for its PEs
    assert main(["plan", "digits_mlp", "--board", "icebreaker", "--budget",
                 f"{big},lut_multipliers=false,dsps=8", "-o", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["usage"]["lut_mults"] == 0 and r["budget"]["lut_multipliers"] is False
    # one DSP fewer: the 2 x 2 array's fourth product would need LUTs
    assert main(["plan", "digits_mlp", "--board", "icebreaker", "--budget",
                 f"{big},lut_multipliers=false,dsps=7"]) == 2
    assert "allows no LUT multipliers" in capsys.readouterr().err
    assert main(["plan", "digits_mlp", "--board", "icebreaker", "--budget", f"{big},dsps=7",
                 "-o", str(out)]) == 0
    assert json.loads(out.read_text())["usage"]["lut_mults"] == 1
