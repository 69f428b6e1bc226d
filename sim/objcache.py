"""A compile cache for Verilator's run-time library (``OBJCACHE`` in verilated.mk).

Every Verilator model links the same run-time library (``verilated.cpp``,
``verilated_vpi.cpp``, ``verilated_threads.cpp``, ``verilated_dpi.cpp``), and
Verilator's makefile compiles it again in each build directory: about 8.6 s of
the 12 s a small model takes to build at ``-O0``, 31 s at the default ``-Os``
(measured on the 2-core CI machine).  verilated.mk runs every compile as
``$(OBJCACHE) $(CXX) ...``; :func:`nnloom.sim.runner.run` sets ``OBJCACHE`` to
this module, which

* passes every compile through untouched unless its source is a file of
  Verilator's own ``include/`` directory (the model's files and cocotb's
  ``verilator.cpp``, which includes the model's header, always compile);
* otherwise keys the object by a SHA-256 of the compiler's version, the
  whole command line except the output names, and the *preprocessed* source
  (so any header, define or flag that changes the code changes the key, as
  in ccache's preprocessor mode), and copies the object and its ``.d`` file
  from ``$NNLOOM_CACHE/objcache`` or compiles and stores them.

Stores are written to a temporary name and renamed, so parallel builds
never read half an object.  ``NNLOOM_OBJCACHE=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["command", "main"]


def command() -> str:
    """The ``OBJCACHE`` value that runs this module (a command prefix)."""
    return f"{sys.executable} {Path(__file__).resolve()}"


def _cache_dir() -> Path:
    root = Path(os.environ.get("NNLOOM_CACHE", Path.home() / ".cache" / "nnloom"))
    return root / "objcache"


def _library_dir() -> Path | None:
    root = os.environ.get("VERILATOR_ROOT")
    return Path(root, "include").resolve() if root else None


def _split(args: list[str]) -> tuple[str | None, str | None, list[str]]:
    """(source, output, the arguments without -o/-MF/-MT and their values)."""
    source = output = None
    rest = []
    it = iter(range(len(args)))
    skip = False
    for i in it:
        a = args[i]
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            if a == "-o" and i + 1 < len(args):
                output = args[i + 1]
            skip = True
            continue
        if a.endswith((".cpp", ".cc", ".c")) and not a.startswith("-"):
            source = a
        rest.append(a)
    return source, output, rest


def _cacheable(args: list[str]) -> tuple[Path, Path, list[str]] | None:
    lib = _library_dir()
    if lib is None or os.environ.get("NNLOOM_OBJCACHE", "1") == "0" or "-c" not in args:
        return None
    source, output, rest = _split(args[1:])
    if source is None:
        return None
    src = Path(source).resolve()
    if lib not in src.parents:
        return None
    out = Path(output) if output else Path(Path(source).stem + ".o")
    return src, out, rest


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: objcache.py CXX ARGS...", file=sys.stderr)
        return 2
    hit = _cacheable(argv)
    if hit is None:
        return subprocess.call(argv)
    src, out, rest = hit
    cxx = argv[0]
    # the preprocessed source: no dependency file, no object
    pre_args = [cxx] + [a for a in rest if a not in ("-c", "-MMD", "-MD", "-MP")] + ["-E"]
    pre = subprocess.run(pre_args, capture_output=True)
    if pre.returncode != 0:
        return subprocess.call(argv)
    version = subprocess.run([cxx, "--version"], capture_output=True).stdout
    key = hashlib.sha256(b"\0".join([version, "\0".join(rest).encode(), pre.stdout])).hexdigest()[:32]
    cache = _cache_dir()
    obj, dep = cache / f"{key}.o", cache / f"{key}.d"
    dep_out = out.with_suffix(".d")
    if obj.exists():
        shutil.copyfile(obj, out)
        if dep.exists():
            shutil.copyfile(dep, dep_out)
        return 0
    rc = subprocess.call(argv)
    if rc == 0 and out.exists():
        cache.mkdir(parents=True, exist_ok=True)
        for have, want in ((out, obj), (dep_out, dep)):
            if have.exists():
                fd, tmp = tempfile.mkstemp(dir=cache, suffix=".tmp")
                os.close(fd)
                shutil.copyfile(have, tmp)
                os.replace(tmp, want)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
