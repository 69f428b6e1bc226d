"""``nnloom sweep SPEC.toml -o DIR``: many points of the flow on a Dask
cluster (docs/sweeps.md).

By default an embedded ``LocalCluster`` with one single-threaded worker
process per core (``--workers N`` for another count); ``--scheduler
tcp://HOST:PORT`` uses a running cluster instead, ``--serial`` no Dask at
all.  Each point is stored in ``DIR/points.jsonl`` as it completes, so a
rerun skips finished points and an interrupted sweep resumes; the table,
the report and the figures are written at the end, each whole or not at
all.  A bad spec is one line and exit status 2; RTL outputs that differ
from the golden model, or points the cluster gave up on, exit status 1.
"""

from __future__ import annotations

import logging
import os
import sys

from nnloom.fpga.sweep_stage import FPGA
from nnloom.gen.sweep import MODEL, STORE_NAME, Store, load_spec, run_sweep, write_outputs
from nnloom.sim.runner import SimulationFailed
from nnloom.sim.sweep_stage import RTL

from .common import Parser, Progress, UsageError

__all__ = ["run", "STAGES", "local_cluster"]

#: The stages ``nnloom sweep`` runs, in run order.
STAGES = {"model": MODEL, "rtl": RTL, "fpga": FPGA}


def _args(argv):
    ap = Parser(prog="nnloom sweep",
                description="Evaluate a grid (or a seeded random sample) of design points on "
                            "Dask: the planner's model, the RTL simulation and the FPGA build "
                            "per point, as the spec says (docs/sweeps.md).")
    ap.add_argument("spec", help="sweep spec (TOML; examples/sweep_digits.toml)")
    ap.add_argument("-o", "--output", required=True, help="output directory (results.csv, "
                    "report.md, Pareto PNGs, and points.jsonl, the store a rerun resumes from)")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int,
                       help=f"worker processes of the embedded LocalCluster (default: one per "
                            f"core, {os.cpu_count()} here)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="a running Dask scheduler (dask scheduler / dask worker) instead")
    where.add_argument("--serial", action="store_true",
                       help="evaluate in this process, without Dask")
    ap.add_argument("--retry-failed", action="store_true",
                    help="evaluate again the finished points whose stages reported an error")
    ap.add_argument("--dry-run", action="store_true",
                    help="print the points and how many are finished; evaluate nothing")
    args = ap.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"sweep: --workers: expected an integer >= 1, got {args.workers}")
    return args


def local_cluster(workers: int):
    """An embedded ``LocalCluster``: ``workers`` processes of one thread (the
    stages are CPU-bound Python and subprocesses), no dashboard, and no
    memory limit (a stage's Verilator or nextpnr child counts against its
    worker, which a limit would kill mid-build)."""
    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                        dashboard_address=None, silence_logs=logging.ERROR, memory_limit=0)


def _client(args):
    """``(client, cluster)``: None, None for --serial."""
    if args.serial:
        return None, None
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("sweep: dask: expected dask[distributed] installed (pip install "
                         "'nnloom[sweep]'), got none; --serial runs without it") from None
    if args.scheduler:
        try:
            return Client(args.scheduler, timeout="10s"), None
        except (OSError, TimeoutError, ValueError) as e:
            raise UsageError(f"sweep: --scheduler: expected a running Dask scheduler at "
                             f"{args.scheduler}, got {e.__class__.__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}") from None
    cluster = local_cluster(args.workers or os.cpu_count() or 1)
    return Client(cluster), cluster


def _dry_run(spec, out_dir) -> int:
    done = {r["point"] for r in Store.read(out_dir)}
    points = spec.points()
    for p in points:
        c = p.config
        print(f"{p.key}  {c['network']['name']:14s} {c['board']:15s} {c['size']:>2}x{c['size']:<2} "
              f"batch {c['batch']} {c['clock_mhz']:g} MHz  {'done' if p.key in done else 'to do'}")
    todo = sum(p.key not in done for p in points)
    print(f"{len(points)} points, {len(points) - todo} finished, {todo} to do; "
          f"stages: {', '.join(spec.stages)}")
    return 0


def run(argv) -> int:
    import contextlib

    args = _args(argv)
    spec = load_spec(args.spec, STAGES)
    if args.dry_run:
        return _dry_run(spec, args.output)
    progress = Progress()
    client = cluster = None
    try:
        if not args.serial:
            what = (f"connecting to {args.scheduler}" if args.scheduler else
                    f"starting {args.workers or os.cpu_count()} Dask worker(s)")
            with progress.step(what):
                client, cluster = _client(args)
                client.wait_for_workers(1, timeout=120)
        with contextlib.ExitStack() as stack:
            advance = []

            def on_start(todo, total):
                if todo < total:
                    print(f"nnloom: sweep: {total - todo} of {total} points finished before, "
                          f"{todo} to do", file=sys.stderr)
                advance.append(stack.enter_context(
                    progress.bar(f"sweep {spec.source.name}", todo)))

            result = run_sweep(spec, args.output, STAGES, client=client, on_start=on_start,
                               on_point=lambda record: advance[0](),
                               retry_failed=args.retry_failed)
    except KeyboardInterrupt:
        print(f"nnloom: sweep: finished points are kept in {args.output}/{STORE_NAME}; run the "
              "same command to resume", file=sys.stderr)
        raise
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    paths = write_outputs(result, args.output, STAGES)
    where = f"on {result.workers} worker(s)" if result.workers is not None else "in process"
    print(f"sweep: {len(result.records)} of {len(result.points)} points finished "
          f"({result.evaluated} evaluated {where} in {result.seconds:,.1f} s, "
          f"{result.skipped} from earlier runs)")
    print("wrote " + ", ".join(str(p) for p in paths))
    errors = sum(1 for r in result.records.values()
                 for s in r["stages"].values() if "error" in s)
    if errors:
        print(f"({errors} stage evaluation(s) reported an error: see report.md)")
    wrong = [k for k, r in result.records.items() if "rtl" in r["stages"]
             and (r["stages"]["rtl"].get("bit_exact") is False
                  or r["stages"]["rtl"].get("layers_exact") is False)]
    if wrong:
        raise SimulationFailed(f"sweep: {len(wrong)} point(s) differ from the golden model or "
                               f"the cycle model on the RTL (first: {wrong[0]}; see report.md)")
    if result.failed:
        print(f"nnloom: sweep: {len(result.failed)} point(s) failed on the cluster and were not "
              "stored; run the same command to retry them", file=sys.stderr)
        return 1
    return 0
