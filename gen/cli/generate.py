"""``nnloom generate``: the accelerator for a network (Verilog, program,
DRAM image, report, integrator's README), written whole or not at all.
With ``--board`` it builds the plan ``nnloom plan --board`` prints."""

from __future__ import annotations

from nnloom.gen.accelerator import build

from .common import Parser, Progress, add_design_options, design_options, network_path

__all__ = ["run"]


def run(argv) -> int:
    ap = Parser(prog="nnloom generate",
                description="Generate the accelerator for a network: a square weight-stationary "
                            "array of --size P, or the planner's design for --board (the one "
                            "`nnloom plan --board` prints), else 8 x 8.")
    ap.add_argument("network", help="network file (.toml with weights, .onnx) or a shipped example")
    ap.add_argument("-o", "--output", required=True, help="output directory")
    add_design_options(ap)
    ap.add_argument("--engine", default="systolic", choices=["systolic"],
                    help="compute engine (the accelerator integrates the systolic array)")
    args = ap.parse_args(argv)
    opts = design_options(args)
    progress = Progress()
    b = build(network_path(args.network), **opts)
    with progress.step("elaborating the Verilog"):
        b.verilog
    b.write(args.output)
    cfg, prog = b.config, b.program
    what = f"{cfg.size}x{cfg.size} array"
    if b.plan is not None:
        what += f", the plan for {b.board}: {b.plan.totals['cycles']:,} compute cycles"
    print(f"wrote {args.output}/: accel.v ({what}), program.bin "
          f"({len(prog.instructions)} instructions), image.bin ({prog.size} bytes), report.json, "
          f"README.md")
    if b.note:
        print(f"({b.note})")
    return 0
