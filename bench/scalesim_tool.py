"""Run SCALE-Sim 3.0.0 on GEMMs, in its own virtual environment.

SCALE-Sim 3.0.0 (PyPI ``scalesim``) fails under numpy 2 (``int(max(...))``
on an array), so it runs in ``bench/.scalesim-venv`` with ``numpy<2``; the
venv is created on first use (the tests use :func:`cached_venv`, under the
nnloom cache, instead).  Each call writes a config (.cfg), a GEMM
topology (.csv) and an empty layout file into a temporary directory, runs
SCALE-Sim there in GEMM mode (``scalesim(..., input_type_gemm=True)``, the
``-i gemm`` of its CLI) without traces, and parses ``COMPUTE_REPORT.csv``.

Dimension mapping.  SCALE-Sim's GEMM csv has columns ``Layer, M, N, K,``
(with a trailing comma: its reader drops the last field).  It turns a row into
a convolution with an M x K input feature map, one 1 x K filter per output
column (N filters) and M output pixels, so M, N and K mean what they mean
here: A is M x K, B is K x N, the output M x N.  From that SCALE-Sim derives
its spatio-temporal triple (S_r, S_c, T):

* ``ws``: S_r = K (window), S_c = N (filters), T = M (output pixels): the
  array holds a K x N weight tile, as our WS holds W[i][j] with i over K
  (rows) and j over N (columns), and M activation rows stream through;
* ``os``: S_r = M, S_c = N, T = K: PE (i, j) owns output (i, j), K steps,
  as in our OS.

The pure-Python parts (:func:`config_text`, :func:`topology_text`,
:func:`parse_compute_report`, :func:`scalesim_cycles_formula`) import nothing
outside the standard library.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["VENV", "ensure_venv", "cached_venv", "config_text", "topology_text",
           "parse_compute_report", "run_scalesim", "scalesim_cycles_formula"]

VENV = Path(__file__).resolve().parent / ".scalesim-venv"
SCALESIM_REQUIREMENTS = ("scalesim==3.0.0", "numpy<2")


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _usable(py: Path) -> bool:
    probe = "import numpy, scalesim.scale_sim; assert int(numpy.__version__.split('.')[0]) < 2"
    return py.exists() and subprocess.run([str(py), "-c", probe],
                                          capture_output=True).returncode == 0


def cached_venv() -> Path:
    """Where the tests keep SCALE-Sim's venv: under the nnloom cache
    (``$NNLOOM_CACHE``, default ``~/.cache/nnloom``), named by the pinned
    requirements and the Python that creates it, so a new pin or a new
    interpreter gets a venv of its own."""
    from nnloom.sim.runner import cache_root

    key = hashlib.sha256("\0".join([*SCALESIM_REQUIREMENTS, sys.version, sys.base_prefix])
                         .encode()).hexdigest()[:12]
    return cache_root() / "scalesim" / f"venv-{key}"


def ensure_venv(venv: Path = VENV) -> Path:
    """Path of the venv's Python with SCALE-Sim importable; create the venv
    and install :data:`SCALESIM_REQUIREMENTS` if needed.

    Creation holds a file lock (``<venv>.lock``), so parallel pytest-xdist
    workers wait for one creation and share it, and builds the venv in a
    temporary directory beside ``venv`` that is renamed into place only when
    the install has finished: an interrupted creation leaves no venv that
    looks done.  (A venv is not relocatable for its scripts' ``#!`` lines, but
    only ``bin/python`` is run here, and it finds its ``pyvenv.cfg`` beside
    itself.)  Raises :class:`RuntimeError` with pip's output if the install
    fails, e.g. because PyPI cannot be reached.
    """
    from nnloom.sim.runner import file_lock

    py = _venv_python(venv)
    if _usable(py):
        return py
    venv.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(venv.with_name(venv.name + ".lock")):
        if _usable(py):             # made by another process while this one waited
            return py
        for stale in venv.parent.glob(f"{venv.name}.partial-*"):   # left by a killed creation
            shutil.rmtree(stale, ignore_errors=True)
        print(f"creating {venv} with {' '.join(SCALESIM_REQUIREMENTS)} ...", file=sys.stderr)
        tmp = Path(tempfile.mkdtemp(prefix=f"{venv.name}.partial-", dir=venv.parent))
        tmp.chmod(0o755)
        try:
            steps = [([sys.executable, "-m", "venv", str(tmp)], "python -m venv"),
                     ([str(_venv_python(tmp)), "-m", "pip", "install", "-q",
                       "--disable-pip-version-check", "--retries", "2", *SCALESIM_REQUIREMENTS],
                      "pip install " + " ".join(SCALESIM_REQUIREMENTS))]
            for argv, what in steps:
                proc = subprocess.run(argv, capture_output=True, text=True)
                if proc.returncode != 0:
                    raise RuntimeError(
                        f"could not create SCALE-Sim's venv {venv}: {what} failed (exit "
                        f"{proc.returncode}; PyPI must be reachable):\n"
                        + (proc.stdout + proc.stderr)[-3000:])
            if venv.is_symlink() or venv.is_file():    # an old one that no longer works
                venv.unlink()
            elif venv.exists():
                shutil.rmtree(venv)
            os.replace(tmp, venv)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not _usable(py):
        raise RuntimeError(f"SCALE-Sim's venv {venv} was created but {py} cannot import "
                           f"scalesim with numpy < 2")
    return py


def config_text(rows: int, cols: int, dataflow: str, run_name: str = "nnloom") -> str:
    """SCALE-Sim config for an ``rows`` x ``cols`` array.

    SRAMs of 4 MiB each and a DRAM interface of 100 words/cycle make the
    workloads here fit on chip and never stall, so SCALE-Sim's count is pure
    compute, as ours is (our array is fed at full rate).
    """
    if dataflow not in ("ws", "os"):
        raise ValueError(f"dataflow must be 'ws' or 'os', not {dataflow!r}")
    return f"""[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight : {rows}
ArrayWidth : {cols}
IfmapSramSzkB : 4096
FilterSramSzkB : 4096
OfmapSramSzkB : 4096
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : 100
Dataflow : {dataflow}
ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : 10
IfmapSRAMBankNum : 10
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : 10
FilterSRAMBankNum : 10
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : USER
UseRamulatorTrace : False
"""


def topology_text(gemms: list[tuple[int, int, int]]) -> str:
    """SCALE-Sim GEMM topology for ``(M, K, N)`` triples (our order), one
    layer per GEMM, written in SCALE-Sim's column order M, N, K."""
    lines = ["Layer, M, N, K,"]
    for idx, (m, k, n) in enumerate(gemms):
        lines.append(f"gemm{idx}, {m}, {n}, {k},")
    return "\n".join(lines) + "\n"


def parse_compute_report(text: str) -> list[dict]:
    """Rows of ``COMPUTE_REPORT.csv``: ``layer``, ``cycles`` (its "Total
    Cycles": compute, stalls included), ``cycles_with_prefetch`` (plus the
    initial DRAM fill of the SRAMs), ``stall_cycles``, ``overall_util`` (%)."""
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader)]
    col = {name: header.index(name) for name in (
        "LayerID", "Total Cycles (incl. prefetch)", "Total Cycles", "Stall Cycles",
        "Overall Util %")}
    out = []
    for row in reader:
        row = [c.strip() for c in row]
        if not any(row):
            continue
        out.append({"layer": int(row[col["LayerID"]]),
                    "cycles": int(float(row[col["Total Cycles"]])),
                    "cycles_with_prefetch": int(float(row[col["Total Cycles (incl. prefetch)"]])),
                    "stall_cycles": int(float(row[col["Stall Cycles"]])),
                    "overall_util": float(row[col["Overall Util %"]])})
    return out


_RUNNER = """
from scalesim.scale_sim import scalesim
s = scalesim(save_disk_space=True, verbose=False, config="nnloom.cfg", topology="gemm.csv",
             layout="layout.csv", input_type_gemm=True)
s.run_scale(top_path="out")
"""


def run_scalesim(rows: int, cols: int, dataflow: str,
                 gemms: list[tuple[int, int, int]], *, venv: Path = VENV) -> list[dict]:
    """SCALE-Sim's compute report for each ``(M, K, N)`` GEMM, in order."""
    py = ensure_venv(venv)
    with tempfile.TemporaryDirectory(prefix="nnloom-scalesim-") as tmp:
        Path(tmp, "nnloom.cfg").write_text(config_text(rows, cols, dataflow))
        Path(tmp, "gemm.csv").write_text(topology_text(gemms))
        Path(tmp, "layout.csv").write_text("Layer name,\n")  # no custom layout
        # The API rather than ``python -m scalesim.scale``: its CLI ignores
        # ``-s N`` and writes cycle-by-cycle traces (hundreds of MB, most of
        # the run time on the large GEMMs); save_disk_space=True skips them.
        proc = subprocess.run([str(py), "-c", _RUNNER], cwd=tmp, capture_output=True, text=True)
        report = Path(tmp, "out", "nnloom", "COMPUTE_REPORT.csv")
        if proc.returncode != 0 or not report.exists():
            raise RuntimeError(f"SCALE-Sim failed (exit {proc.returncode}):\n"
                               + (proc.stdout + proc.stderr)[-3000:])
        rows_out = parse_compute_report(report.read_text())
    if len(rows_out) != len(gemms):
        raise RuntimeError(f"SCALE-Sim reported {len(rows_out)} layers for {len(gemms)} GEMMs")
    return rows_out


def scalesim_cycles_formula(rows: int, cols: int, dataflow: str, m: int, k: int, n: int) -> int:
    """SCALE-Sim 3.0.0's compute cycles, read off its source (no stalls).

    Every fold (array tile) is a demand matrix of its own, concatenated after
    the previous one with no overlap:

    * ``ws`` (systolic_compute_ws.py): R rows for the weights to load, T = M
      activation rows, C - 1 rows for the last partial sums to drain, and
      R - 1 of skew: ``2R + C + M - 2`` per fold;
    * ``os`` (systolic_compute_os.py): T = K steps, C - 1 rows of drain and
      R - 1 of skew: ``K + R + C - 2`` per fold;

    and the reported total is ``folds * per_fold - 1``.
    """
    if dataflow == "ws":
        folds = math.ceil(k / rows) * math.ceil(n / cols)
        per_fold = 2 * rows + cols + m - 2
    elif dataflow == "os":
        folds = math.ceil(m / rows) * math.ceil(n / cols)
        per_fold = k + rows + cols - 2
    else:
        raise ValueError(f"dataflow must be 'ws' or 'os', not {dataflow!r}")
    return folds * per_fold - 1
