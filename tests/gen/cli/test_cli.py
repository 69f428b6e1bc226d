"""`nnloom emit`: listing, errors (one line, status 2), lint, determinism."""

import subprocess
import sys

import pytest

from nnloom.gen.cli import main
from nnloom.hw.catalog import COMPONENTS
from nnloom.sim.lint import assert_lint_clean


def _one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nnloom: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("argv,needles", [
    (["emit", "systolic", "--rows", "0"], ["--rows", "1..64", "got 0"]),
    (["emit", "systolic", "--a-width", "99"], ["--a-width", "2..16", "99"]),
    (["emit", "systolic", "--dataflow", "xy"], ["--dataflow", "ws | os", "xy"]),
    (["emit", "systolic", "--signed", "maybe"], ["--signed", "true or false"]),
    (["emit", "systolic", "--rows", "eight"], ["--rows", "integer"]),
    (["emit", "systolic", "--acc-width", "8"], ["--acc-width", "16..64"]),
    (["emit", "nosuch"], ["unknown component", "systolic"]),
    (["emit", "systolic", "--nosuch", "1"], ["unrecognized"]),
    (["frobnicate"], ["unknown command"]),
])
def test_bad_input_is_one_line(capsys, argv, needles):
    _one_line_error(capsys, argv, *needles)


def test_list_shows_every_component_with_ranges(capsys):
    assert main(["emit", "--list"]) == 0
    out = capsys.readouterr().out
    for name in COMPONENTS:
        assert name in out
    assert "--rows" in out and "1..64" in out and "wrap | saturate" in out


@pytest.mark.parametrize("df", ["ws", "os"])
def test_emit_systolic_is_lint_clean_and_deterministic(tmp_path, df):
    paths = [tmp_path / f"sa{n}.v" for n in range(2)]
    for p in paths:
        # a fresh interpreter each time: determinism across processes
        subprocess.run([sys.executable, "-m", "nnloom.gen.cli", "emit", "systolic", "--rows", "8",
                        "--cols", "8", "--dataflow", df, "-o", str(p)], check=True,
                       capture_output=True)
    text = paths[0].read_text()
    assert text == paths[1].read_text()
    assert_lint_clean(text)


def test_emit_to_stdout_and_no_partial_file(tmp_path, capsys):
    assert main(["emit", "systolic-pe", "--dataflow", "os"]) == 0
    assert "module top" in capsys.readouterr().out
    out = tmp_path / "x.v"
    assert main(["emit", "systolic", "--rows", "0", "-o", str(out)]) == 2
    assert not out.exists() and not list(tmp_path.iterdir())
