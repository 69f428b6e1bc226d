"""`nnloom generate --board X` builds the plan `nnloom plan --board X` prints:
for every board and both digits networks, the two JSON files carry the same
``config`` object, and the emitted Verilog's array and memories are the
plan's (read from the Verilog text, not from the build's Python objects)."""

import json
import re

import pytest

from nnloom.hw.accel_core import AccelConfig

from nnloom.gen.cli import main
from nnloom.gen.planner import BOARDS
from nnloom.hw.accel_isa import INSTRUCTION_BITS

NETWORKS = ("digits_mlp", "lenet_digits")


def verilog_parameters(text: str) -> dict:
    """The array and memory shapes of an emitted ``nnloom_accel``: rows and
    cols of its PE grid (``pe_<i>_<j>``), each memory's words and width, and
    the AXI data width."""
    pes = {(int(i), int(j)) for i, j in re.findall(r"\bpe_(\d+)_(\d+)\b", text)}
    mems = {name: (int(depth) + 1, int(width) + 1) for width, name, depth in
            re.findall(r"^\s*reg \[(\d+):0\] (\w+) \[(\d+):0\];", text, re.M)}
    data = re.search(r"^\s*input \[(\d+):0\] m_axi__rdata;", text, re.M)
    return {"rows": 1 + max(i for i, _ in pes), "cols": 1 + max(j for _, j in pes),
            "pes": len(pes), "mems": mems, "data_width": int(data.group(1)) + 1}


# every board with a design (the iCEBreaker is refused: tests/fpga/test_fit.py)
@pytest.mark.parametrize("board", sorted(b for b in BOARDS if b != "icebreaker"))
@pytest.mark.parametrize("network", NETWORKS)
def test_generate_builds_the_plan(tmp_path, capsys, board, network):
    plan_json, out = tmp_path / "plan.json", tmp_path / "acc"
    assert main(["plan", network, "--board", board, "-o", str(plan_json)]) == 0
    assert main(["generate", network, "--board", board, "-o", str(out)]) == 0
    capsys.readouterr()
    planned, report = json.loads(plan_json.read_text()), json.loads((out / "report.json").read_text())
    cfg = planned["config"]
    assert report["config"] == cfg                       # one config object, both files
    assert cfg["engine"] == "systolic" and cfg["dataflow"] == "ws" and cfg["batch"] == 1
    # the plan's predicted cycles are the built program's (the compiler's model)
    assert report["plan"]["cycles"] == planned["cycles"] == report["totals"]["cycles"]
    assert ([r["cycles"] for r in report["layers"]] == [r["cycles"] for r in planned["layers"]])
    assert report["instructions"] == planned["totals"]["instructions"]
    # the Verilog's own parameters
    v = verilog_parameters((out / "accel.v").read_text())
    P = cfg["size"]
    assert (v["rows"], v["cols"], v["pes"]) == (cfg["rows"], cfg["cols"], cfg["rows"] * cfg["cols"])
    assert cfg["rows"] == cfg["cols"] == P and v["data_width"] == cfg["data_width"]
    mems = v["mems"]
    assert mems["act_mem"] == (2 * cfg["act_depth"], 8 * P)
    assert mems["wbuf_mem"] == (2 * cfg["wbuf_depth"], 8 * P)
    P_groups = AccelConfig.from_dict({k: v for k, v in cfg.items()
                                      if k not in ("engine", "dataflow", "rows", "cols")}).pgroups
    assert mems["pbuf_mem"] == (2 * P_groups, 69 * P)        # a word of P entries per group
    iwidth = max(64, cfg["data_width"])                 # the program memory's word
    assert mems["imem"] == (cfg["imem_depth"] * INSTRUCTION_BITS // iwidth, iwidth)
    if cfg["acc_depth"] > 1:
        assert mems["acc_mem"] == (cfg["acc_depth"], 32 * P)
    else:                                                # one word: a register
        assert "acc_mem" not in mems
    # and the plan is the fit check's choice on that board
    assert planned["board"] == board and any(c["size"] == P and c["fits"]
                                             for c in planned["candidates"])
