"""The sweep's outputs: the table, the report, the Pareto fronts; and the
model stage against the planner's own answers."""

from __future__ import annotations

import csv
import random
import textwrap

import pytest

from nnloom import examples
from nnloom.gen.cli.sweep import STAGES
from nnloom.gen.frontend import load_network
from nnloom.gen.planner import BOARDS, PlanError, plan
from nnloom.gen.sweep import (REPORT_NAME, TABLE_NAME, load_spec, pareto_front, run_sweep,
                              write_outputs)

SPEC = """
networks = ["digits_mlp", "lenet_digits", "minerva_mlp"]
stages = ["model"]
[axes]
board = ["ulx3s-45f", "ulx3s-85f"]
size = [2, 4, 8, 12]
clock_mhz = ["board", 50]
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    path = tmp / "spec.toml"
    path.write_text(textwrap.dedent(SPEC))
    spec = load_spec(path, STAGES)
    result = run_sweep(spec, tmp / "out", STAGES)
    paths = write_outputs(result, tmp / "out", STAGES)
    return spec, result, paths, tmp / "out"


def test_pareto_front_is_the_undominated_set():
    rng = random.Random(7)
    for _ in range(200):
        pts = [(rng.randint(0, 9), rng.randint(0, 9)) for _ in range(rng.randint(1, 15))]
        front = pareto_front(pts, lambda p: p[0], lambda p: p[1])
        dominated = {p for p in pts for q in pts
                     if q[0] <= p[0] and q[1] <= p[1] and q != p}
        assert set(front) == set(pts) - dominated
        assert len(front) == len(set(front))


def test_the_table_has_every_point_once_with_its_values(swept):
    spec, result, paths, out = swept
    with open(out / TABLE_NAME, newline="") as f:
        table = list(csv.DictReader(f))
    points = spec.points()
    assert [r["point"] for r in table] == [p.key for p in points]
    for row, p in zip(table, points):
        model = result.records[p.key]["stages"]["model"]
        assert row["network"] == p.config["network"]["name"] and int(row["size"]) == p.config["size"]
        assert float(row["clock_mhz"]) == p.config["clock_mhz"]
        if model.get("runs"):
            assert int(row["model_cycles"]) == model["cycles"]
            assert float(row["model_latency_us"]) == model["cycles"] / p.config["clock_mhz"]
            assert row["model_fits"] == ("true" if model["fits"] else "false")
    assert {p.name for p in paths} == {TABLE_NAME, REPORT_NAME, "pareto_resources.png",
                                       "pareto_energy.png", "spec.toml"}
    for name in ("pareto_resources.png", "pareto_energy.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".lock"]


def test_each_row_agrees_with_the_planner(swept):
    """A point's fit and cycles are what plan() says for that one design, and
    the row marked planned is plan()'s choice with plan()'s figures."""
    spec, result, _, _ = swept
    nets = {n: load_network(examples.path(n)) for n in ("digits_mlp", "lenet_digits", "minerva_mlp")}
    checked, full_plans = 0, {}
    for p in spec.points():
        c = p.config
        m = result.records[p.key]["stages"]["model"]
        budget = BOARDS[c["board"]].budget.replace(clock_mhz=c["clock_mhz"])
        net = nets[c["network"]["name"]]
        try:
            one = plan(net, budget, board=c["board"], sizes=(c["size"],))
        except PlanError:
            one = None
        assert m["fits"] == (one is not None), (c, m.get("fit_error"))
        if one is not None:
            assert m["cycles"] == one.totals["cycles"]
            assert m["estimated_cycles"] == one.totals["estimated_cycles"]
            assert m["inferences_per_s"] == pytest.approx(one.inferences_per_second)
            assert m["utilization"] == pytest.approx(one.totals["utilization"])
            assert m["energy_pj"] == pytest.approx(one.totals["energy_pj"])
            for k in ("luts", "ffs", "dsps", "bram"):
                assert m[k] == one.usage[k]
            checked += 1
        group = (c["network"]["name"], c["board"], c["clock_mhz"])
        if group not in full_plans:
            try:
                full_plans[group] = plan(net, budget, board=c["board"]).accel.size
            except PlanError:
                full_plans[group] = None
        assert m["planned_size"] == full_plans[group]
        assert m["planned"] == (full_plans[group] == c["size"])
    assert checked > 20 and None in full_plans.values()


def test_the_report_names_the_planners_choice(swept):
    spec, result, _, out = swept
    text = (out / REPORT_NAME).read_text()
    assert f"{len(spec.points())} of {len(spec.points())} finished" in text
    assert "| digits_mlp | ulx3s-45f | 25 | 4x4 | yes |" in text
    assert "| minerva_mlp | ulx3s-45f | 25 | nothing fits | - |" in text
    ulx = plan(load_network(examples.path("digits_mlp")), BOARDS["ulx3s-85f"].budget,
               board="ulx3s-85f").accel.size
    there = "yes" if ulx in (2, 4, 8, 12) else "not in the sweep"
    assert f"| digits_mlp | ulx3s-85f | 25 | {ulx}x{ulx} | {there} |" in text
    assert "![pareto_resources.png](pareto_resources.png)" in text
