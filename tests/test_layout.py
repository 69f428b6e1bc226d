"""The package's shape: one namespace, every folder packaged, and the rooms.

Rooms (docs/developing.md): ``hw`` imports no other room; ``gen`` imports
``hw``; ``sim`` and ``fpga`` import ``hw`` and ``gen``; the command line
(``nnloom.gen.cli``) imports every room and nothing imports it.  The
shipped examples (``nnloom.examples``) are data that any room may read.
Imports are read with :mod:`ast`, so a lazy import inside a function counts
the same as one at the top of a module.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("hw", "gen", "sim", "fpga")
FOLDERS = {"hw": "hw", "gen": "gen", "sim": "sim", "fpga": "fpga", "examples": "examples"}
CLI = "nnloom.gen.cli"

#: room -> rooms it may import (besides itself and the examples)
ALLOWED = {"hw": set(), "gen": {"hw"}, "sim": {"hw", "gen"}, "fpga": {"hw", "gen"},
           "examples": set(), "cli": {"hw", "gen", "sim", "fpga"}}


def _sources(*tops):
    for top in tops:
        yield from sorted((ROOT / top).rglob("*.py"))


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["nnloom", *parts])


def _imports(path: Path):
    """(line, absolute module, names) of every import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield node.lineno, mod, tuple(a.name for a in node.names)


def _room(module: str) -> str | None:
    if module == CLI or module.startswith(CLI + "."):
        return "cli"
    parts = module.split(".")
    if parts[0] != "nnloom" or len(parts) < 2:
        return None
    return parts[1]


def test_no_bare_imports_of_the_rooms():
    """Code imports ``nnloom.hw``, never ``hw``: a bare name would load a
    second copy of the module, or someone else's ``sim``."""
    bad = []
    for path in _sources(*FOLDERS.values(), "tests", "bench"):
        for line, mod, _ in _imports(path):
            if mod.split(".")[0] in ROOMS:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {mod}")
    assert not bad, "bare imports:\n" + "\n".join(bad)


def test_rooms_import_downward_only():
    bad = []
    for path in _sources(*FOLDERS.values()):
        me = _room(_module_name(path))
        for line, mod, _ in _imports(path):
            room = _room(mod)
            if room is None or room in (me, "examples"):
                continue
            if room not in ALLOWED[me]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {me} imports {mod}")
    assert not bad, "room rules broken:\n" + "\n".join(bad)


def test_nothing_imports_the_command_line():
    bad = [f"{p.relative_to(ROOT)}:{line}: {mod}"
           for p in _sources(*FOLDERS.values(), "bench")
           if _room(_module_name(p)) != "cli"
           for line, mod, _ in _imports(p) if _room(mod) == "cli"]
    assert not bad, "the command line is the top layer:\n" + "\n".join(bad)


def test_no_module_imports_a_private_name_of_another():
    bad = []
    for path in _sources(*FOLDERS.values(), "bench"):
        me = _module_name(path)
        for line, mod, names in _imports(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and mod != me:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {', '.join(private)} from {mod}")
    assert not bad, "private names imported:\n" + "\n".join(bad)


def _config():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_packaged():
    cfg = _config()
    mapping = cfg["package-dir"]
    assert mapping == {f"nnloom.{k}": v for k, v in FOLDERS.items()}
    folders = {_module_name(p.parent / "__init__.py")
               for p in _sources(*FOLDERS.values()) if p.parent.name != "__pycache__"}
    assert folders == set(cfg["packages"]), (
        f"missing from pyproject.toml: {sorted(folders - set(cfg['packages']))}; "
        f"listed without a folder: {sorted(set(cfg['packages']) - folders)}")
    for pkg in cfg["packages"]:
        room, *rest = pkg.split(".")[1:]
        assert (ROOT / mapping[f"nnloom.{room}"] / Path(*rest) / "__init__.py").is_file(), pkg


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a copy of the tracked files (setuptools writes its
    build/ folder into the tree it builds)."""
    out, src = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("src")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(out), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (whl,) = out.glob("nnloom-*.whl")
    return whl


def test_the_wheel_holds_only_nnloom(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"nnloom"}
    assert "nnloom/__init__.py" not in names          # an implicit namespace package
    for example in ("digits_mlp.toml", "digits_mlp.npz", "lenet_digits.toml", "lenet_digits.npz",
                    "gemm_scalesim.csv"):
        assert f"nnloom/examples/{example}" in names
    entry = [n for n in names if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry[0]).decode()
    assert "nnloom = nnloom.gen.cli:main" in text


def test_an_installed_wheel_reads_its_examples_from_anywhere(wheel, tmp_path):
    """Installed (not editable), from another directory, the examples and
    their weights come from the package itself."""
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                           str(target), str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import sysconfig
    # -S: no site, so the source tree's editable finder is not installed; the
    # dependencies come from this interpreter's site-packages, nnloom from the wheel.
    path = f"{target}:{sysconfig.get_paths()['purelib']}"
    code = ("import nnloom.examples as e, nnloom.hw as h; "
            "from nnloom.gen.frontend import load_network; "
            "n = load_network(e.path('lenet_digits')); "
            "print(e.path('lenet_digits').parent, h.__file__, n.has_weights)")
    run = tmp_path / "elsewhere"
    run.mkdir()
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          cwd=run, env={"PYTHONPATH": path, "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    where, hw_file, weights = proc.stdout.split()
    assert Path(where) == target / "nnloom" / "examples"
    assert Path(hw_file).is_relative_to(target)
    assert weights == "True"
