"""AlexNet CONV1-CONV5 on a 12 x 14 Eyeriss array: row-stationary (our mapper
and model of the RTL) against weight- and output-stationary models, with the
same normalized cost table.

    python bench/eyeriss_alexnet.py            # the table (model only)
    python bench/eyeriss_alexnet.py --costs horowitz45   # or --costs my_costs.toml
    python bench/eyeriss_alexnet.py --rtl      # also run a scaled-down CONV2-like
                                               # layer in RTL (Verilator) and check
                                               # cycles and counters against the model

Figures: PE utilization, accesses per MAC at each level (rf, array, buffer,
dram) and energy per MAC (units of one MAC).  The full-size layers do not
fit the RTL's global buffer; the model is run without that check (our
buffer holds a whole layer; Eyeriss tiles it).  No zero gating (dense ifmaps).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


import numpy as np  # noqa: E402

from nnloom.gen.perf import output_stationary, weight_stationary  # noqa: E402
from nnloom.gen.perf import TABLES, CostTable, CostTableError  # noqa: E402
from nnloom.gen.compiler import ConvLayer, choose_mapping, gating_savings, predict  # noqa: E402
from nnloom.hw.eyeriss import EyerissConfig  # noqa: E402

# (name, H, W, C, M, R, S, stride, padding), as in Eyeriss (JSSC 2017, table of AlexNet).
ALEXNET = [
    ConvLayer("CONV1", 227, 227, 3, 96, 11, 11, 4, 0),
    ConvLayer("CONV2", 27, 27, 48, 256, 5, 5, 1, 2),
    ConvLayer("CONV3", 13, 13, 256, 384, 3, 3, 1, 1),
    ConvLayer("CONV4", 13, 13, 192, 384, 3, 3, 1, 1),
    ConvLayer("CONV5", 13, 13, 192, 256, 3, 3, 1, 1),
]


def table(costs) -> str:
    cfg = EyerissConfig(rows=12, cols=14, dim_width=9)
    lines = [f"AlexNet CONV layers on {cfg.rows} x {cfg.cols} PEs, costs: {costs.name} "
             f"(mac {costs.mac:g}, rf {costs.rf:g}, array {costs.array:g}, buffer {costs.buffer:g}, "
             f"dram {costs.dram:g})",
             f"{'layer':6} {'flow':4} {'p,q,rv':>9} {'MMACs':>7} {'cycles':>9} {'util':>6} "
             f"{'rf/MAC':>7} {'arr/MAC':>8} {'buf/MAC':>8} {'dram/MAC':>9} {'E/MAC':>7}"]
    totals = {"RS": 0.0, "WS": 0.0, "OS": 0.0}
    for layer in ALEXNET:
        mp = choose_mapping(cfg, layer, costs=costs, check_glb=False)
        rs = predict(cfg, layer, mp)
        rows = [("RS", f"{mp.p},{mp.q},{mp.rv}", rs.cycles, rs.utilization, rs.per_mac(),
                 rs.energy_per_mac(costs))]
        for model in (weight_stationary(layer, cfg.rows, cfg.cols),
                      output_stationary(layer, cfg.rows, cfg.cols)):
            rows.append((model.name, "-", model.cycles, model.utilization, model.per_mac(),
                         model.energy_per_mac(costs)))
        for flow, mapping, cycles, util, pm, epm in rows:
            totals[flow] += epm * layer.macs
            lines.append(f"{layer.name:6} {flow:4} {mapping:>9} {layer.macs / 1e6:7.1f} {cycles:9d} "
                         f"{util:6.3f} {pm['rf']:7.3f} {pm['array']:8.4f} {pm['buffer']:8.4f} "
                         f"{pm['dram']:9.5f} {epm:7.3f}")
    macs = sum(layer.macs for layer in ALEXNET)
    lines.append("all CONV, energy per MAC: " + ", ".join(f"{k} {v / macs:.3f}" for k, v in totals.items()))
    # Zero gating (RS): a synthetic ifmap with half its words zero (CONV2-5
    # take ReLU outputs; CONV1 takes the image, which has none).
    rng = np.random.default_rng(0)
    for layer in ALEXNET[1:]:
        mp = choose_mapping(cfg, layer, costs=costs, check_glb=False)
        x = rng.integers(1, 100, (layer.c, layer.h, layer.w))
        x[rng.random(x.shape) < 0.5] = 0
        gated, saved = gating_savings(cfg, layer, mp, x, costs)
        dense = predict(cfg, layer, mp).energy(costs)
        lines.append(f"{layer.name} RS, 50% zero ifmap: {gated / layer.macs:.1%} of MACs gated, "
                     f"energy saved {saved / dense:.1%} ({saved / layer.macs:.3f} per MAC)")
    return "\n".join(lines)


RTL_LAYER = dict(h=7, w=7, c=3, m=4, r=5, s=5, stride=1, padding=2, seed=11)


def rtl_check() -> str:
    """Run a CONV2-like layer (5x5 filters, padding 2) scaled down in RTL; the
    testbench asserts psums, counters and cycles equal to golden and model."""
    from nnloom.hw.eyeriss import EyerissArray
    from nnloom.sim.runner import run

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sim"))
    from test_eyeriss import CONFIG

    run(EyerissArray(CONFIG), "nnloom.sim.tb.eyeriss_tb",
        params={"config": CONFIG.to_dict(), "cases": [RTL_LAYER], "seed": 5})
    c = RTL_LAYER
    layer = ConvLayer("CONV2-like", c["h"], c["w"], c["c"], c["m"], c["r"], c["s"], c["stride"],
                      c["padding"])
    mp = choose_mapping(CONFIG, layer)
    pred = predict(CONFIG, layer, mp)
    return (f"RTL ({CONFIG.rows} x {CONFIG.cols} PEs) {layer.name} {c}: mapping p={mp.p} q={mp.q} "
            f"rv={mp.rv}: {pred.cycles} cycles (utilization {pred.utilization:.3f}) and every "
            f"counter equal to the model; psums bit-exact against the golden conv2d")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--costs", default="eyeriss",
                    help=f"a built-in cost table ({', '.join(sorted(TABLES))}) or a TOML file "
                         "with a [costs] table (see gen/perf/energy.py)")
    ap.add_argument("--rtl", action="store_true", help="also run the scaled-down layer in RTL")
    args = ap.parse_args(argv)
    if args.costs in TABLES:
        costs = TABLES[args.costs]
    else:
        try:
            costs = CostTable.from_toml(args.costs)
        except CostTableError as e:
            print(f"eyeriss_alexnet: {e}", file=sys.stderr)
            return 2
    print(table(costs))
    if args.rtl:
        print(rtl_check())
    return 0


if __name__ == "__main__":
    sys.exit(main())
