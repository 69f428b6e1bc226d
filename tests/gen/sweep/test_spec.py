"""The sweep spec: every field checked with one line, the points and their keys."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nnloom import examples
from nnloom.gen.accelerator import ARRAY_SIDES
from nnloom.gen.cli.sweep import STAGES
from nnloom.gen.planner import BOARDS
from nnloom.gen.sweep import SpecError, load_spec

GOOD = """
networks = ["digits_mlp", "lenet_digits"]
stages = ["model", "rtl"]
[axes]
board = ["icebreaker", "ulx3s-85f"]
size = [2, 4]
[rtl]
samples = 3
"""


def _spec(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_shipped_specs_load():
    names = [n for n in sorted(p.name for p in examples.path("digits_mlp").parent.iterdir())
             if n.startswith("sweep_") and n.endswith(".toml")]
    assert {"sweep_digits.toml", "sweep_fpga.toml", "sweep_random.toml"} <= set(names)
    for name in names:
        spec = load_spec(examples.path(name), STAGES)
        assert len(spec.points()) >= 1
    digits = load_spec(examples.path("sweep_digits.toml"), STAGES)
    assert len(digits.points()) == 48 and list(digits.stages) == ["model", "rtl"]


def test_grid_points_and_their_configs(tmp_path):
    spec = load_spec(_spec(tmp_path, GOOD), STAGES)
    points = spec.points()
    assert len(points) == 2 * 2 * 2
    got = [(p.config["network"]["name"], p.config["board"], p.config["size"]) for p in points]
    assert got == [(n, b, s) for n in ("digits_mlp", "lenet_digits")
                   for b in ("icebreaker", "ulx3s-85f") for s in (2, 4)]
    p = points[0].config
    assert p["clock_mhz"] == BOARDS["icebreaker"].budget.clock_mhz and p["batch"] == 1
    # every stage's options, defaults filled in, are part of the config
    assert p["stages"] == {"model": {"costs": "horowitz45"},
                           "rtl": {"samples": 3, "sim": "verilator", "pause": 0.0, "seed": 0}}
    assert len({q.key for q in points}) == len(points)


def test_keys_follow_the_config_and_nothing_else(tmp_path):
    a = [p.key for p in load_spec(_spec(tmp_path, GOOD), STAGES).points()]
    again = [p.key for p in load_spec(_spec(tmp_path, GOOD, "other.toml"), STAGES).points()]
    assert a == again       # the file's name or path is not part of a point
    more = [p.key for p in load_spec(_spec(tmp_path, GOOD.replace("samples = 3", "samples = 4")),
                                     STAGES).points()]
    assert not set(a) & set(more)       # a stage option is


def test_the_networks_files_are_part_of_the_key(tmp_path):
    src = examples.path("digits_mlp")
    shutil.copy(src, tmp_path / "net.toml")
    shutil.copy(src.with_suffix(".npz"), tmp_path / "digits_mlp.npz")
    text = "networks = [\"net.toml\"]\n[axes]\nsize = [2]\n"
    before = load_spec(_spec(tmp_path, text), STAGES).points()[0]
    assert before.config["network"]["name"] == "digits_mlp"
    with np.load(tmp_path / "digits_mlp.npz") as z:
        w = {k: z[k] for k in z.files}
    first = sorted(w)[0]
    w[first] = w[first] + 0.5
    np.savez(tmp_path / "digits_mlp.npz", **w)
    after = load_spec(_spec(tmp_path, text), STAGES).points()[0]
    assert after.config["network"]["digest"] != before.config["network"]["digest"]
    assert after.key != before.key


def test_stage_keys_share_what_a_stage_does_not_read(tmp_path):
    points = load_spec(_spec(tmp_path, GOOD), STAGES).points()
    by = {(p.config["network"]["name"], p.config["board"], p.config["size"]): p for p in points}
    a, b = by["digits_mlp", "icebreaker", 2], by["digits_mlp", "ulx3s-85f", 2]
    assert a.stage_key(STAGES["rtl"]) == b.stage_key(STAGES["rtl"])        # board-free
    assert a.stage_key(STAGES["model"]) != b.stage_key(STAGES["model"])
    assert a.stage_key(STAGES["rtl"]) != by["digits_mlp", "icebreaker", 4].stage_key(STAGES["rtl"])


def test_a_random_sample_is_seeded_and_from_the_grid(tmp_path):
    text = GOOD + "[sample]\nmode = \"random\"\npoints = 5\nseed = 3\n"
    grid = {p.key for p in load_spec(_spec(tmp_path, GOOD), STAGES).points()}
    one = [p.key for p in load_spec(_spec(tmp_path, text), STAGES).points()]
    two = [p.key for p in load_spec(_spec(tmp_path, text), STAGES).points()]
    other = [p.key for p in load_spec(_spec(tmp_path, text.replace("seed = 3", "seed = 4")),
                                      STAGES).points()]
    assert one == two and len(set(one)) == 5 and set(one) <= grid
    assert one != other


def test_the_boards_own_clock_is_one_point(tmp_path):
    text = "networks = [\"digits_mlp\"]\n[axes]\nboard = [\"ulx3s-85f\"]\nsize = [2]\n" \
           "clock_mhz = [\"board\", 25, 50]\n"
    points = load_spec(_spec(tmp_path, text), STAGES).points()
    assert [p.config["clock_mhz"] for p in points] == [25.0, 50.0]


def test_the_defaults(tmp_path):
    spec = load_spec(_spec(tmp_path, "networks = [\"digits_mlp\"]\n"), STAGES)
    assert list(spec.stages) == ["model"]
    assert spec.axes["size"] == ARRAY_SIDES and spec.axes["board"] == ("ulx3s-85f",)


ALL = r" \| ".join(BOARDS)
BAD = [
    ("networks = []", r"networks: expected a non-empty list of network files"),
    ("networks = [\"nope\"]", r"networks\[0\]: expected a network file or one of the shipped "
                              r"examples \(.*digits_mlp.*\), got 'nope'"),
    ("networks = [\"missing.toml\"]", r"networks\[0\]: expected a network file \(relative to"),
    ("networks = [\"digits_mlp\", \"digits_mlp\"]", r"networks\[1\]: expected each network once"),
    ("networks = [\"minerva_mlp\"]\nstages = [\"rtl\"]",
     r"networks\[0\]: expected a network with trained weights for the rtl stage, "
     r"got 'minerva_mlp \(timing only\)'"),
    ("networks = [\"digits_mlp\"]\nstages = [\"model\", \"synth\"]",
     r"stages\[1\]: expected model \| rtl \| fpga, got 'synth'"),
    ("networks = [\"digits_mlp\"]\nstages = [\"model\", \"model\"]", r"stages\[1\]: expected each stage once"),
    ("networks = [\"digits_mlp\"]\nstages = []", r"stages: expected a non-empty list"),
    ("networks = [\"digits_mlp\"]\nstage = [\"model\"]",
     r"stage: expected one of networks, stages, axes, sample, model, rtl, fpga, got 'stage'"),
    ("networks = [\"digits_mlp\"]\n[axes]\nsize = [2, 5]",
     r"axes\.size\[1\]: expected 2 or a multiple of 4 in 4\.\.32, got 5"),
    ("networks = [\"digits_mlp\"]\n[axes]\nsize = 4", r"axes\.size: expected a non-empty list of"),
    ("networks = [\"digits_mlp\"]\n[axes]\nsize = [4, 4]", r"axes\.size\[1\]: expected each value once"),
    ("networks = [\"digits_mlp\"]\n[axes]\nboard = [\"de10\"]",
     rf"axes\.board\[0\]: expected {ALL}, got 'de10'"),
    ("networks = [\"digits_mlp\"]\n[axes]\nbatch = [0]", r"axes\.batch\[0\]: expected an integer in 1\.\.255"),
    ("networks = [\"digits_mlp\"]\n[axes]\nclock_mhz = [0]",
     r"axes\.clock_mhz\[0\]: expected \"board\" or a number > 0 \(MHz\), got 0"),
    ("networks = [\"digits_mlp\"]\n[axes]\narray = [4]",
     r"axes\.array: expected one of board, size, batch, clock_mhz, got 'array'"),
    ("networks = [\"digits_mlp\"]\nstages = [\"rtl\"]\n[rtl]\nsamples = 0",
     r"rtl\.samples: expected an integer in 1\.\.359, got 0"),
    ("networks = [\"digits_mlp\"]\nstages = [\"rtl\"]\n[rtl]\nsim = \"xsim\"",
     r"rtl\.sim: expected verilator \| icarus, got 'xsim'"),
    ("networks = [\"digits_mlp\"]\n[rtl]\nsamles = 2", r"rtl\.samles: expected one of samples, sim, pause, seed"),
    ("networks = [\"digits_mlp\"]\n[model]\ncosts = \"mine\"",
     r"model\.costs: expected eyeriss \| horowitz45, got 'mine'"),
    ("networks = [\"digits_mlp\"]\nstages = [\"fpga\"]\n[fpga]\nabc9 = 1", r"fpga\.abc9: expected true \| false"),
    ("networks = [\"digits_mlp\"]\n[sample]\nmode = \"latin\"", r"sample\.mode: expected grid \| random, got 'latin'"),
    ("networks = [\"digits_mlp\"]\n[axes]\nsize = [2, 4]\n[sample]\nmode = \"random\"\npoints = 3",
     r"sample\.points: expected an integer in 1\.\.2 \(the grid has 2 points\), got 3"),
    ("networks = [\"digits_mlp\"]\n[sample]\npoints = 3", r"sample\.points: expected no value with mode"),
    ("networks = [\"digits_mlp\"", r"file: expected TOML, got a syntax error"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[m.split(":")[0].replace("\\", "") for _, m in BAD])
def test_a_bad_spec_names_its_field(tmp_path, text, message):
    path = _spec(tmp_path, text)
    with pytest.raises(SpecError, match=rf"^{path}: {message}") as e:
        load_spec(path, STAGES)
    assert "\n" not in str(e.value)


def test_the_command_line_says_one_line_and_exits_2(tmp_path):
    path = _spec(tmp_path, "networks = [\"digits_mlp\"]\n[axes]\nsize = [3]\n")
    proc = subprocess.run([sys.executable, "-m", "nnloom.gen.cli", "sweep", str(path), "-o",
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == (f"nnloom: {path}: axes.size[0]: expected 2 or a multiple of 4 in "
                           "4..32, got 3\n")
    assert not (tmp_path / "out").exists()
    missing = subprocess.run([sys.executable, "-m", "nnloom.gen.cli", "sweep",
                              str(tmp_path / "none.toml"), "-o", str(tmp_path / "out")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "none.toml: file: expected a sweep spec" in missing.stderr
