"""Wall-clock time of `nnloom plan` on the Minerva example (printed, never asserted).

Runs the command in a fresh interpreter (imports included, as a user sees
it) and in-process (the search alone), a few times each.

    python bench/plan_speed.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from nnloom.gen.planner import BOARDS  # noqa: E402
from nnloom.gen.frontend import load_network  # noqa: E402
from nnloom.gen.planner import plan  # noqa: E402

MINERVA = ROOT / "examples" / "minerva_mlp.toml"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--board", default="ulx3s-85f")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "nnloom.gen.cli", "plan", str(MINERVA), "--board", args.board,
               "-o", str(Path(tmp) / "report.json")]
        for i in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
            print(f"nnloom plan minerva_mlp.toml --board {args.board}: "
                  f"{time.perf_counter() - t0:.2f} s (fresh process, run {i + 1})")
    net = load_network(MINERVA)
    for i in range(args.repeat):
        t0 = time.perf_counter()
        p = plan(net, BOARDS[args.board].budget)
        print(f"nnloom.gen.planner.plan.plan alone: {time.perf_counter() - t0:.2f} s "
              f"({p.config.rows}x{p.config.cols} {p.config.dataflow.upper()}, run {i + 1})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
