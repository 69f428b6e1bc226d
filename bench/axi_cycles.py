"""Burst read/write cycles of the AXI masters against cocotbext-axi's AxiRam.

Runs the RTL (Verilator, sim/tb/axi_tb.py) on single commands with no pauses
and full-rate streams, and prints, per command, the measured cycles (cmd
handshake to last data beat for reads, to last B for writes, both included),
the config's formula (``read_cycles`` / ``write_cycles`` with AxiRam's
latencies) and the efficiency beats / cycles.  The testbench itself asserts
that measurement and formula agree.

    python bench/axi_cycles.py
    python bench/axi_cycles.py --beats 1 64 4096
"""

from __future__ import annotations

import argparse
import re


from nnloom.hw.axi import BOUNDARY, AxiReaderConfig, AxiWriterConfig  # noqa: E402
from nnloom.hw.axi_master import AxiReader, AxiWriter  # noqa: E402
from nnloom.sim.runner import run  # noqa: E402

CONFIGS = [
    ("reader", AxiReaderConfig(data_width=32, max_burst=16, max_outstanding=1)),
    ("reader", AxiReaderConfig(data_width=32, max_burst=16, max_outstanding=2)),
    ("reader", AxiReaderConfig(data_width=64, max_burst=256, max_outstanding=4)),
    ("writer", AxiWriterConfig(data_width=32, max_burst=16, max_outstanding=1)),
    ("writer", AxiWriterConfig(data_width=32, max_burst=16, max_outstanding=2)),
    ("writer", AxiWriterConfig(data_width=64, max_burst=256, max_outstanding=4)),
]
LINE = re.compile(r"(read|write): (\d+) beats at (0x[0-9a-f]+): (\d+) cycles \(formula (\d+)\)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beats", type=int, nargs="+", default=[1, 16, 64, 256, 1024])
    args = ap.parse_args(argv)
    print("| master | data | max_burst | max_out | beats | addr | cycles | formula | beats/cycle |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, cfg in CONFIGS:
        nb = cfg.bytes_per_beat
        cases = []
        for beats in args.beats:
            if beats * nb > 8 * BOUNDARY:
                raise SystemExit(f"--beats {beats}: at most {8 * BOUNDARY // nb} for this RAM")
            cases.append(dict(cmds=[[BOUNDARY, beats]], check_cycles=True))
            cases.append(dict(cmds=[[2 * BOUNDARY - 4 * nb, beats]], check_cycles=True))
        comp = AxiReader(cfg) if kind == "reader" else AxiWriter(cfg)
        res = run(comp, "nnloom.sim.tb.axi_tb", params={"kind": kind, "config": cfg.to_dict(),
                                                  "seed": 1, "cases": cases})
        for m in LINE.finditer(res.log.read_text()):
            _, beats, addr, cycles, formula = m.groups()
            print(f"| {kind} | {cfg.data_width} | {cfg.max_burst} | {cfg.max_outstanding} | "
                  f"{beats} | {addr} | {cycles} | {formula} | {int(beats) / int(cycles):.3f} |")


if __name__ == "__main__":
    main()
