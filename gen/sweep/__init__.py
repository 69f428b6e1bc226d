"""Design-space sweeps (``nnloom sweep``, docs/sweeps.md): many points of the
flow, on a Dask cluster or in this process.

* :func:`load_spec` reads and checks a sweep spec (TOML) into a
  :class:`Spec`, whose :meth:`Spec.points` are the grid (or a seeded random
  sample of it), each :class:`Point` keyed by the hash of its full config;
* a :class:`Stage` evaluates one point: :data:`MODEL` (the planner's
  performance model) is here; the RTL and FPGA stages are
  ``nnloom.sim.sweep_stage.RTL`` and ``nnloom.fpga.sweep_stage.FPGA``;
* :func:`run_sweep` evaluates the points a directory's :class:`Store` does
  not hold yet and stores each as it completes;
* :func:`write_outputs` writes the table, the Markdown report and the
  Pareto figures (:func:`pareto_front`).
"""

from .engine import SweepResult, evaluate_serial, make_record, run_sweep
from .model import MODEL, model_stage
from .plots import pareto_front, pareto_png
from .report import REPORT_NAME, TABLE_NAME, markdown, write_outputs
from .spec import AXES, NetworkEntry, Point, Spec, SpecError, config_key, load_spec
from .stage import Option, Stage, one_line, run_stage
from .store import STORE_NAME, Store, StoreBusy
from .table import columns, rows, to_csv

__all__ = [
    "load_spec", "Spec", "Point", "NetworkEntry", "SpecError", "config_key", "AXES",
    "Stage", "Option", "run_stage", "one_line", "MODEL", "model_stage",
    "run_sweep", "SweepResult", "evaluate_serial", "make_record",
    "Store", "StoreBusy", "STORE_NAME",
    "write_outputs", "markdown", "rows", "columns", "to_csv", "pareto_front", "pareto_png",
    "TABLE_NAME", "REPORT_NAME",
]
