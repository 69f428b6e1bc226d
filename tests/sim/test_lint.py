"""The lint wrappers: real errors fail with the tool's message; a Yosys run
that died without a word (the yowasp cache race, see nnloom.sim.lint) is run
once more, and only once."""

import pytest

from nnloom.sim import lint
from nnloom.sim.lint import yosys_check

LOOP = """module top(input a, output y);
  wire w;
  assign w = ~w ^ a;
  assign y = w;
endmodule
"""
UNDEFINED = """module top(input a, output y);
  sub u(.a(a), .y(y));
endmodule
"""
GOOD = """module top(input a, output y);
  assign y = ~a;
endmodule
"""


@pytest.mark.parametrize("text,message", [(LOOP, "found logic loop"),
                                          (UNDEFINED, "is not part of the design")],
                         ids=["logic-loop", "undefined-module"])
def test_real_yosys_errors_fail_with_their_message(text, message):
    ok, out = yosys_check(text)
    assert not ok and message in out
    assert yosys_check(GOOD)[0]


def _fake_yosys(tmp_path, monkeypatch, check_runs):
    """$YOSYS as a script: ``-V`` succeeds; the n-th check run does ``check_runs[n]``."""
    calls = tmp_path / "calls"
    calls.write_text("")
    steps = "\n".join(f"  {n}) {action} ;;" for n, action in enumerate(check_runs, 1))
    script = tmp_path / "yosys"
    script.write_text(f"""#!/bin/sh
[ "$1" = "-V" ] && exit 0
echo run >> {calls}
case $(wc -l < {calls}) in
{steps}
esac
exit 0
""")
    script.chmod(0o755)
    monkeypatch.setenv("YOSYS", str(script))
    monkeypatch.setenv("NNLOOM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(lint, "RETRY_DELAY", 0.0)
    return lambda: len(calls.read_text().splitlines())


def test_a_silent_death_is_run_once_more(tmp_path, monkeypatch):
    runs = _fake_yosys(tmp_path, monkeypatch, ["kill -BUS $$", "exit 0"])
    assert yosys_check(GOOD) == (True, "") and runs() == 2


def test_silent_twice_fails_and_says_so(tmp_path, monkeypatch):
    runs = _fake_yosys(tmp_path, monkeypatch, ["kill -BUS $$", "kill -BUS $$", "exit 0"])
    ok, out = yosys_check(GOOD)
    assert not ok and "no output, twice" in out and runs() == 2


def test_an_error_with_a_message_is_not_retried(tmp_path, monkeypatch):
    runs = _fake_yosys(tmp_path, monkeypatch, ["echo 'ERROR: broken' >&2; exit 1", "exit 0"])
    ok, out = yosys_check(GOOD)
    assert not ok and "ERROR: broken" in out and runs() == 1
