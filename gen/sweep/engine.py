"""Running a sweep: on a Dask cluster, or in this process.

:func:`run_sweep` takes a checked :class:`~nnloom.gen.sweep.Spec`, an
output directory and the stages this installation runs, skips the points
the directory's store already holds, and evaluates the rest:

* with a ``dask.distributed`` client (a ``LocalCluster`` or a remote
  scheduler), one task per stage evaluation, keyed by the hash of what that
  stage reads (:meth:`~nnloom.gen.sweep.Point.stage_key`: points that
  differ only in a field a stage does not read, such as the board for the
  RTL simulation, share one task), and one small task per point that
  gathers its stages.  The networks go to the workers by value (inside
  a task, so that the scheduler can recompute them) and the results come
  back by value; nothing is shared through a disk.  The client stores each point as its future
  completes (``as_completed``).  A worker that dies loses nothing: the
  scheduler runs its tasks again elsewhere;
* without a client, in this process, in spec order, with the same sharing.

Either way a point's record is appended to the store the moment it is
complete, so Ctrl-C or a killed client loses only the points that were
running, and a rerun of the same spec evaluates only what is missing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from .spec import Point, Spec
from .stage import Stage, one_line, run_stage
from .store import Store

__all__ = ["run_sweep", "SweepResult", "make_record", "evaluate_serial"]


@dataclass
class SweepResult:
    """What a run did: ``points`` of the spec (in order); ``records`` (key ->
    stored record, every finished point of the spec); ``skipped``: points
    already finished before this run; ``evaluated``: points finished by
    it; ``failed``: key -> why, for points whose tasks the cluster gave up
    on (not stored: a rerun tries them again); ``seconds``: wall time of
    the evaluation; ``workers``: Dask workers at the start (None: in
    process)."""

    spec: Spec
    points: list[Point]
    records: dict[str, dict] = field(default_factory=dict)
    skipped: int = 0
    evaluated: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    workers: int | None = None

    @property
    def complete(self) -> bool:
        return all(p.key in self.records for p in self.points)


def make_record(key: str, config: dict, results: dict[str, dict]) -> dict:
    """A point's stored record: its ``point`` key, ``config`` and the result
    of each ``stage``."""
    return {"point": key, "config": config, "stages": dict(results)}


def _stages_of(spec: Spec, stages: dict[str, Stage]) -> list[Stage]:
    return [stages[name] for name in spec.stages]


def evaluate_serial(points: list[Point], stages: list[Stage]):
    """Evaluate ``points`` in this process, in order; yields each record as
    it is complete.  Stage evaluations with one key run once."""
    done: dict[str, dict] = {}
    for p in points:
        results = {}
        for st in stages:
            k = p.stage_key(st)
            if k not in done:
                done[k] = run_stage(st.run, p.network.network, p.stage_config(st))
            results[st.name] = done[k]
        yield make_record(p.key, p.config, results)


def _network(network):
    return network


def _evaluate_dask(client, points: list[Point], stages: list[Stage], failed: dict):
    from distributed import as_completed

    nets = {}
    for p in points:
        d = p.network.digest
        if d not in nets:
            # a task that holds the network by value, not client.scatter: the scheduler
            # can run it again when the worker holding its result dies (scattered data
            # would be lost with it, and every point that needs it cancelled)
            nets[d] = client.submit(_network, p.network.network, key=f"network-{d}", pure=False)
    futures = {}
    for p in points:
        parts = {st.name: client.submit(run_stage, st.run, nets[p.network.digest],
                                        p.stage_config(st), key=f"{st.name}-{p.stage_key(st)}",
                                        pure=False)
                 for st in stages}
        fut = client.submit(make_record, p.key, p.config, parts, key=f"point-{p.key}", pure=False)
        futures[fut] = p
    try:
        for fut in as_completed(list(futures)):
            p = futures[fut]
            if fut.status == "error":      # e.g. KilledWorker: its workers died too often
                e = fut.exception()
                failed[p.key] = f"{e.__class__.__name__}: {one_line(e)}"
                continue
            if fut.status != "finished":
                failed[p.key] = fut.status
                continue
            record = fut.result()
            fut.release()
            yield record
    finally:
        client.cancel([f for f in futures if f.status == "pending"])


def run_sweep(spec: Spec, out_dir, stages: dict[str, Stage], *, client=None,
              on_start: Callable[[int, int], None] | None = None,
              on_point: Callable[[dict], None] | None = None,
              retry_failed: bool = False) -> SweepResult:
    """Evaluate ``spec``'s points that ``out_dir``'s store does not hold
    (and, with ``retry_failed``, those whose stages failed) on ``client``
    (a ``distributed.Client``; None: in this process).  ``on_start(todo,
    total)`` is called once, ``on_point(record)`` as each point is stored.
    The outputs (table, report, plots) are :func:`nnloom.gen.sweep.write_outputs`'s."""
    points = spec.points()
    result = SweepResult(spec, points)
    chosen = _stages_of(spec, stages)
    with Store(out_dir) as store:
        def finished(p):
            rec = store.get(p.key)
            if rec is None:
                return False
            return not (retry_failed and any("error" in r for r in rec["stages"].values()))

        todo = [p for p in points if not finished(p)]
        result.skipped = len(points) - len(todo)
        if on_start:
            on_start(len(todo), len(points))
        start = time.monotonic()
        if client is not None:
            result.workers = len(client.scheduler_info().get("workers", {}))
            records = _evaluate_dask(client, todo, chosen, result.failed)
        else:
            records = evaluate_serial(todo, chosen)
        for record in records:
            store.add(record)
            result.evaluated += 1
            if on_point:
                on_point(record)
        result.seconds = time.monotonic() - start
        result.records = {p.key: store.get(p.key) for p in points if p.key in store}
    return result
