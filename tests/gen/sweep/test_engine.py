"""The sweep engine: nothing lost, nothing twice; on Dask and in process."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import textwrap
import time

import pytest

from nnloom.gen.cli.sweep import STAGES
from nnloom.gen.sweep import (MODEL, STORE_NAME, Option, Stage, Store, StoreBusy,
                              evaluate_serial, load_spec, model_stage, run_sweep)

SPEC = """
networks = ["digits_mlp", "lenet_digits"]
stages = ["model"]
[axes]
board = ["icebreaker", "ulx3s-85f", "ulx3s-45f", "orangecrab-25f"]
size = [2, 4, 8]
"""


def _spec(tmp_path, text=SPEC, stages=STAGES):
    path = tmp_path / "spec.toml"
    path.write_text(textwrap.dedent(text))
    return load_spec(path, stages)


def _values(record):
    """A record's results without wall times (which differ run to run)."""
    return {name: {k: v for k, v in r.items() if k != "seconds"}
            for name, r in record["stages"].items()}


def _serial(spec, stages=STAGES):
    chosen = [stages[n] for n in spec.stages]
    return {r["point"]: _values(r) for r in evaluate_serial(spec.points(), chosen)}


def test_a_rerun_skips_finished_points(tmp_path, capsys):
    from nnloom.gen.cli import main

    spec = _spec(tmp_path)
    assert main(["sweep", str(spec.source), "-o", str(tmp_path / "out"), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == ("24 points, 0 finished, 24 to do; "
                                                         "stages: model")
    first = run_sweep(spec, tmp_path / "out", STAGES)
    assert first.evaluated == 24 and first.skipped == 0 and first.complete
    assert main(["sweep", str(spec.source), "-o", str(tmp_path / "out"), "--dry-run"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[-1] == "24 points, 24 finished, 0 to do; stages: model"
    assert [line.split()[0] for line in listing[:-1]] == [p.key for p in spec.points()]
    seen = []
    again = run_sweep(spec, tmp_path / "out", STAGES, on_start=lambda todo, total: seen.append(
        (todo, total)))
    assert seen == [(0, 24)] and again.evaluated == 0 and again.skipped == 24
    assert {k: _values(r) for k, r in again.records.items()} == _serial(spec)
    assert len(Store.read(tmp_path / "out")) == 24


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path):
    spec = _spec(tmp_path)
    stored = []

    def stop_after_five(record):
        stored.append(record["point"])
        if len(stored) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "out", STAGES, on_point=stop_after_five)
    assert [r["point"] for r in Store.read(tmp_path / "out")] == stored
    todo = []
    done = run_sweep(spec, tmp_path / "out", STAGES, on_start=lambda n, total: todo.append(n))
    assert todo == [24 - 5] and done.evaluated == 19 and done.complete
    lines = [r["point"] for r in Store.read(tmp_path / "out")]
    assert sorted(lines) == sorted(p.key for p in spec.points())       # each exactly once
    assert {k: _values(r) for k, r in done.records.items()} == _serial(spec)


def test_a_torn_last_line_is_cut_and_its_point_evaluated_again(tmp_path):
    spec = _spec(tmp_path)
    run_sweep(spec, tmp_path / "out", STAGES)
    path = tmp_path / "out" / STORE_NAME
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:40])     # a crash mid-write
    again = run_sweep(spec, tmp_path / "out", STAGES)
    assert again.evaluated == 1 and again.complete
    now = path.read_bytes()
    assert now.startswith(b"".join(lines[:-1])) and now.count(b"\n") == 24   # the tail was cut
    assert sorted(r["point"] for r in Store.read(tmp_path / "out")) == sorted(
        p.key for p in spec.points())


def test_one_sweep_at_a_time_per_directory(tmp_path):
    with Store(tmp_path / "out"):
        with pytest.raises(StoreBusy, match=r"out: -o: expected a directory no other sweep is "
                                            r"writing, got one locked by a running sweep"):
            with Store(tmp_path / "out"):
                pass
    with Store(tmp_path / "out"):       # released
        pass


CALLS = []


def _flaky(network, config):
    CALLS.append(config["size"])
    if config["size"] == 4 and CALLS.count(4) == 1:
        raise RuntimeError("disk full\nsecond line")
    return {"size_seen": config["size"]}


FLAKY = {"model": Stage("model", _flaky, reads=("size",),
                        options={"costs": Option("horowitz45", "x", lambda v: True)})}


def test_a_failing_stage_is_a_result_and_retry_failed_runs_it_again(tmp_path):
    CALLS.clear()
    spec = _spec(tmp_path, SPEC.replace('["icebreaker", "ulx3s-85f", "ulx3s-45f", '
                                        '"orangecrab-25f"]', '["icebreaker", "ulx3s-85f"]'), FLAKY)
    first = run_sweep(spec, tmp_path / "out", FLAKY)
    assert first.complete
    errors = [r for r in first.records.values() if "error" in r["stages"]["model"]]
    # digits_mlp's two size-4 points share one evaluation: both carry its one-line error
    assert {(r["config"]["network"]["name"], r["config"]["size"]) for r in errors} == {
        ("digits_mlp", 4)} and len(errors) == 2
    assert errors[0]["stages"]["model"]["error"] == "RuntimeError: disk full"
    assert sorted(CALLS) == [2, 2, 4, 4, 8, 8]      # one run per (network, size)
    skip = run_sweep(spec, tmp_path / "out", FLAKY)
    assert skip.evaluated == 0
    retry = run_sweep(spec, tmp_path / "out", FLAKY, retry_failed=True)
    assert retry.evaluated == 2 and sorted(CALLS) == [2, 2, 4, 4, 4, 8, 8]
    assert all("error" not in r["stages"]["model"] for r in retry.records.values())
    lines = Store.read(tmp_path / "out")
    assert len(lines) == 12 + 2         # the retried points appended; the later line wins
    with Store(tmp_path / "out") as store:
        assert len(store) == 12 and all("error" not in r["stages"]["model"]
                                        for r in store.records.values())


# -- on Dask ---------------------------------------------------------------------------

def _slow_model(network, config):
    time.sleep(0.4)     # long enough that a worker dies with points in flight
    return dict(model_stage(network, config), pid=os.getpid())


SLOW = {"model": dataclasses.replace(MODEL, run=_slow_model)}


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    import cloudpickle

    from nnloom.gen.cli.sweep import local_cluster

    # this test module is not importable by name on the workers: ship its functions by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with local_cluster(2) as c, distributed.Client(c) as client:
            yield client
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture
def cluster(dask_cluster):
    dask_cluster.wait_for_workers(2, timeout=60)       # after a kill, the nanny's new one
    return dask_cluster


def test_a_dask_run_resumes_a_serial_one(tmp_path, cluster):
    spec = _spec(tmp_path)
    stored = []

    def stop(record):
        stored.append(record)
        if len(stored) == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "out", STAGES, on_point=stop)
    cloud = run_sweep(spec, tmp_path / "out", STAGES, client=cluster)
    assert cloud.skipped == 10 and cloud.evaluated == 14 and cloud.complete
    assert {k: _values(r) for k, r in cloud.records.items()} == _serial(spec)


def test_the_command_line_on_a_running_scheduler(tmp_path, cluster, capsys):
    """``--scheduler`` connects to a cluster it did not start (here the
    fixture's, by its address) and leaves it running."""
    from nnloom.gen.cli import main

    spec = _spec(tmp_path, SPEC.replace('"ulx3s-45f", "orangecrab-25f"', '"ulx3s-45f"'))
    address = cluster.scheduler.address
    assert main(["sweep", str(spec.source), "-o", str(tmp_path / "out"), "--scheduler",
                 address]) == 0
    out = capsys.readouterr().out
    assert "18 of 18 points finished (18 evaluated on 2 worker(s)" in out
    records = {r["point"]: _values(r) for r in Store.read(tmp_path / "out")}
    assert records == _serial(spec)
    assert len(cluster.run(os.getpid)) == 2                             # still there
    assert main(["sweep", str(spec.source), "-o", str(tmp_path / "out"), "--scheduler",
                 address]) == 0
    assert "(0 evaluated on 2 worker(s)" in capsys.readouterr().out


def test_a_killed_worker_loses_nothing_and_repeats_nothing(tmp_path, cluster):
    spec = _spec(tmp_path, stages=SLOW)
    pids = cluster.run(os.getpid)
    assert len(set(pids.values())) == 2
    victim = sorted(pids.values())[0]
    killed = []

    def kill_one(record):
        if len(killed) == 0 and record["stages"]["model"]["pid"] == victim:
            os.kill(victim, signal.SIGKILL)     # mid-sweep: both workers hold work
            killed.append(time.monotonic())

    result = run_sweep(spec, tmp_path / "out", SLOW, client=cluster, on_point=kill_one)
    assert killed, "the victim worker computed no point before the sweep ended"
    assert result.workers == 2 and not result.failed and result.complete
    lines = [r["point"] for r in Store.read(tmp_path / "out")]
    assert sorted(lines) == sorted(p.key for p in spec.points())       # every point exactly once
    after = {r["stages"]["model"]["pid"] for r in result.records.values()
             if r["stages"]["model"]["pid"] != victim}
    assert after, "no point was computed by another worker"
    assert victim not in cluster.run(os.getpid).values()               # it really died
    got = {k: {"model": {f: v for f, v in _values(r)["model"].items() if f != "pid"}}
           for k, r in result.records.items()}
    assert got == _serial(spec)                                        # the serial run's values
