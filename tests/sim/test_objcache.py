"""The run-time library compile cache (nnloom.sim.objcache): a library source
compiles once per (compiler, flags, preprocessed text); the model's own files
always compile; the cached object is the compiler's object, byte for byte."""

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from nnloom.sim import objcache
from nnloom.sim.runner import verilator_env


@pytest.fixture
def env(tmp_path, monkeypatch):
    if not shutil.which("c++"):
        pytest.skip("no C++ compiler (c++) on PATH")
    verilator_env()
    monkeypatch.setenv("NNLOOM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NNLOOM_OBJCACHE", raising=False)
    # a compiler that counts its calls, then is c++
    log = tmp_path / "calls"
    cxx = tmp_path / "cxx"
    cxx.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec c++ "$@"\n')
    cxx.chmod(cxx.stat().st_mode | stat.S_IEXEC)
    inc = Path(os.environ["VERILATOR_ROOT"], "include")
    return tmp_path, str(cxx), log, inc


def _compiles(log: Path) -> int:
    return sum(" -E" not in line and "--version" not in line
               for line in log.read_text().splitlines()) if log.exists() else 0


def _compile(cxx, inc, src, build: Path, *flags) -> Path:
    build.mkdir(exist_ok=True)
    out = build / (Path(src).stem + ".o")
    cwd = os.getcwd()
    os.chdir(build)
    try:
        rc = objcache.main([cxx, "-O0", "-I.", "-MMD", f"-I{inc}", f"-I{inc / 'vltstd'}", *flags,
                            "-c", "-o", out.name, str(src)])
    finally:
        os.chdir(cwd)
    assert rc == 0
    return out


def test_a_library_source_compiles_once(env):
    tmp, cxx, log, inc = env
    src = inc / "verilated_probdist.cpp"
    a = _compile(cxx, inc, src, tmp / "a")
    assert _compiles(log) == 1
    b = _compile(cxx, inc, src, tmp / "b")
    assert _compiles(log) == 1, "a second build directory compiled the library again"
    assert a.read_bytes() == b.read_bytes()
    assert (tmp / "b" / "verilated_probdist.d").read_text() == (tmp / "a" / "verilated_probdist.d").read_text()


def test_a_flag_or_a_define_is_a_new_key(env):
    tmp, cxx, log, inc = env
    src = inc / "verilated_probdist.cpp"
    _compile(cxx, inc, src, tmp / "a")
    _compile(cxx, inc, src, tmp / "b", "-DVM_TRACE=1")
    _compile(cxx, inc, src, tmp / "c", "-fno-inline")
    assert _compiles(log) == 3
    assert len(list((tmp / "cache" / "objcache").glob("*.o"))) == 3


def test_the_models_own_files_always_compile(env):
    tmp, cxx, log, inc = env
    own = tmp / "Vtop.cpp"
    own.write_text("int f(int x) { return x + 1; }\n")
    _compile(cxx, inc, own, tmp / "a")
    _compile(cxx, inc, own, tmp / "b")
    assert _compiles(log) == 2
    assert not (tmp / "cache" / "objcache").exists()


def test_off_switch(env, monkeypatch):
    tmp, cxx, log, inc = env
    monkeypatch.setenv("NNLOOM_OBJCACHE", "0")
    src = inc / "verilated_probdist.cpp"
    _compile(cxx, inc, src, tmp / "a")
    _compile(cxx, inc, src, tmp / "b")
    assert _compiles(log) == 2


def test_runner_sets_objcache():
    verilator_env()
    assert os.environ["OBJCACHE"].split()[0] == sys.executable
