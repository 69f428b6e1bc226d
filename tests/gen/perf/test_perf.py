"""nnloom.gen.perf.model: systolic cycles (== the RTL's formula), accesses, DRAM, energy, hooks."""

import math
import sys
import types

import pytest

from nnloom.gen.perf import EYERISS_NORMALIZED, HOROWITZ_45NM
from nnloom.gen.frontend import Conv2d, Dense, Flatten, MaxPool, Network, ReLU
from nnloom.gen.perf import (ENGINE_HOOKS, EngineUnavailable, Memory, gemm_perf,
    layer_steps, network_perf, systolic_layer, weight_bytes)
from nnloom.gen.perf import roof, roofline_png
from nnloom.hw.systolic import SystolicConfig

CFGS = [SystolicConfig(rows=r, cols=c, dataflow=df)
        for df in ("ws", "os") for r, c in ((1, 1), (4, 4), (3, 5), (8, 8), (16, 4))]
GEMMS = [(1, 1, 1), (4, 4, 4), (9, 11, 5), (1, 784, 256), (64, 27, 16), (3025, 363, 96)]


def _closed_form(cfg, m, k, n):
    """The systolic issue's cycle formula, written out here independently."""
    R, C = cfg.rows, cfg.cols
    if cfg.dataflow == "ws":
        t = math.ceil(k / R) * math.ceil(n / C)
        return R + (t - 1) * max(m, R) + m + R + C
    t = math.ceil(m / R) * math.ceil(n / C)
    return (t - 1) * max(k, R) + k - 1 + R + C + R


@pytest.mark.parametrize("cfg", CFGS, ids=lambda c: f"{c.dataflow}{c.rows}x{c.cols}")
@pytest.mark.parametrize("mkn", GEMMS, ids=str)
def test_gemm_cycles_equal_rtl_formula(cfg, mkn):
    # tests/sim/test_systolic.py holds gemm_cycles == the RTL's cycles
    lp = gemm_perf(cfg, *mkn)
    assert lp.cycles == lp.compute_cycles == cfg.gemm_cycles(*mkn) == _closed_form(cfg, *mkn)
    assert lp.macs == math.prod(mkn)
    assert lp.utilization == pytest.approx(lp.macs / (cfg.rows * cfg.cols * lp.cycles))
    assert lp.utilization == pytest.approx(cfg.utilization(*mkn))


@pytest.mark.parametrize("cfg", CFGS[:4] + CFGS[5:9], ids=lambda c: f"{c.dataflow}{c.rows}x{c.cols}")
def test_conv_runs_as_its_im2col_gemm(cfg):
    conv = Conv2d("c", 6, (3, 3), stride=2, padding=1)
    lp = systolic_layer(cfg, conv, (3, 11, 9))
    e, f = (11 + 2 - 3) // 2 + 1, (9 + 2 - 3) // 2 + 1
    assert lp.gemm == (e * f, 3 * 9, 6)
    assert lp.cycles == cfg.gemm_cycles(e * f, 27, 6)
    assert lp.macs == conv.macs((3, 11, 9)) == e * f * 27 * 6
    fc = systolic_layer(cfg, Dense("fc", 10), (30,))
    assert fc.gemm == (1, 30, 10) and fc.cycles == cfg.gemm_cycles(1, 30, 10)


def test_scalesim_csv_rows(tmp_path):
    from nnloom.gen.frontend.loaders.scalesim_csv import load_scalesim

    p = tmp_path / "layers.csv"
    p.write_text("Layer, M, N, K,\ng1, 64, 16, 27,\ng2, 7, 20, 33,\ng3, 1, 1, 1,\n")
    q = tmp_path / "conv.csv"
    q.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                 "Num Filter, Strides,\nconv1, 227, 227, 11, 11, 3, 96, 4,\n")
    for df in ("ws", "os"):
        cfg = SystolicConfig(rows=8, cols=8, dataflow=df)
        perf = network_perf(load_scalesim(p), config=cfg)
        assert [lp.cycles for lp in perf.layers] == [cfg.gemm_cycles(64, 27, 16),
                                                    cfg.gemm_cycles(7, 33, 20), cfg.gemm_cycles(1, 1, 1)]
        conv = network_perf(load_scalesim(q), config=cfg).layers[0]
        assert conv.gemm == (55 * 55, 3 * 11 * 11, 96)
        assert conv.cycles == cfg.gemm_cycles(55 * 55, 363, 96)


def _loop_nest_counts(cfg, m, k, n):
    """Buffer reads/writes (in words) by walking the tile loops one by one."""
    R, C = cfg.rows, cfg.cols
    act = wgt = psum_r = psum_w = 0
    if cfg.dataflow == "ws":
        for c0 in range(0, n, C):
            cols = min(C, n - c0)
            for k0 in range(0, k, R):
                rows = min(R, k - k0)
                wgt += rows * cols
                act += m * rows
                psum_r += m * cols if k0 else 0
                psum_w += m * cols
    else:
        for r0 in range(0, m, R):
            rows = min(R, m - r0)
            for c0 in range(0, n, C):
                cols = min(C, n - c0)
                act += rows * k
                wgt += k * cols
                psum_w += rows * cols
    return act, wgt, psum_r, psum_w


@pytest.mark.parametrize("cfg", CFGS, ids=lambda c: f"{c.dataflow}{c.rows}x{c.cols}")
@pytest.mark.parametrize("mkn", [(9, 11, 5), (1, 64, 20), (30, 7, 3)], ids=str)
def test_buffer_accesses_match_loop_nest(cfg, mkn):
    lp = gemm_perf(cfg, *mkn)
    act, wgt, psum_r, psum_w = _loop_nest_counts(cfg, *mkn)
    assert lp.reads["buffer"] == act + wgt + 4 * psum_r      # int8 operands, 32-bit psums
    assert lp.writes["buffer"] == 4 * psum_w
    macs = math.prod(mkn)
    assert lp.reads["rf"] == macs
    assert lp.reads["array"] == 2 * macs + (mkn[0] * mkn[2] if cfg.dataflow == "os" else 0)


MLP = Network("mlp", (64,), [Dense("fc1", 32), ReLU("r1"), Dense("fc2", 10)])


def test_dram_ideal_memory_and_small_buffers():
    cfg = SystolicConfig(rows=4, cols=4)
    perf = network_perf(MLP, config=cfg)                      # everything fits, weights stream
    w = 64 * 32 + 32 * 4 + 32 * 10 + 10 * 4
    assert perf.totals["dram_bytes"] == 64 + w + 10
    assert w == weight_bytes(cfg, layer_steps(MLP))
    resident = network_perf(MLP, config=cfg, memory=Memory(weight=w))
    assert resident.totals["dram_bytes"] == 64 + 10         # weights loaded once, beforehand
    tiny = network_perf(MLP, config=cfg, memory=Memory(act=8, weight=32, out=16))
    fc1, r1, fc2 = tiny.layers
    assert r1.dram_bytes == 0 and r1.note == "fused"
    # fc1: input re-streamed per column tile (64 x ceil(32/4)), weights once, output written
    assert fc1.reads["dram"] == 64 * 8 + 64 * 32 + 32 * 4 and fc1.writes["dram"] == 32
    assert fc2.reads["dram"] == 32 * 3 + 32 * 10 + 10 * 4 and fc2.writes["dram"] == 10


def test_ws_partial_sum_spill():
    cfg = SystolicConfig(rows=4, cols=4)
    small = gemm_perf(cfg, 10, 12, 4, Memory(out=8))          # k tiles = 3, M x C psums don't fit
    big = gemm_perf(cfg, 10, 12, 4, Memory(out=10 * 4 * 4))
    assert small.dram_bytes - big.dram_bytes == 2 * 2 * 10 * 4 * 4


def test_bandwidth_stalls():
    cfg = SystolicConfig(rows=4, cols=4)
    lp = gemm_perf(cfg, 2, 64, 64, Memory(dram_bytes_per_cycle=0.5))
    assert lp.compute_cycles == cfg.gemm_cycles(2, 64, 64)
    assert lp.cycles == max(lp.compute_cycles, math.ceil(lp.dram_bytes / 0.5))
    assert lp.stall_cycles > 0


def test_energy_tables():
    cfg = SystolicConfig(rows=4, cols=4, dataflow="os")
    a = gemm_perf(cfg, 9, 11, 5, costs=EYERISS_NORMALIZED)
    assert a.energy == EYERISS_NORMALIZED.energy(a.macs, a.accesses())
    assert a.energy_pj == HOROWITZ_45NM.energy(a.macs, a.accesses())
    assert a.energy_unit == "MAC"


def test_non_mac_layers():
    cfg = SystolicConfig(rows=4, cols=4)
    net = Network("n", (2, 8, 8), [ReLU("r0"), Conv2d("c", 4, (3, 3), padding=1), ReLU("r1"),
                                   MaxPool("p", 2), Flatten("f"), Dense("fc", 3)])
    r0, c, r1, p, f, fc = network_perf(net, config=cfg).layers
    assert r0.cycles == math.ceil(2 * 64 / 4) and r0.reads["buffer"] == 128   # standalone
    assert r1.cycles == 0 and r1.note == "fused"
    assert p.cycles == math.ceil(4 * 4 * 4 * 4 / 4) and p.writes["buffer"] == 64
    assert f.cycles == 0 and f.dram_bytes == 0
    assert c.cycles == cfg.gemm_cycles(64, 18, 4) and fc.cycles == cfg.gemm_cycles(1, 64, 3)


def test_engine_hooks(monkeypatch):
    monkeypatch.setitem(ENGINE_HOOKS, "eyeriss", ("gen._no_such_model", "predict_layer"))
    with pytest.raises(EngineUnavailable, match="eyeriss.*unavailable.*gen._no_such_model"):
        network_perf(MLP, engine="eyeriss")
    fake = types.ModuleType("gen._fake_model")
    monkeypatch.setitem(sys.modules, "gen._fake_model", fake)
    monkeypatch.setitem(ENGINE_HOOKS, "eie", ("gen._fake_model", "predict_layer"))
    with pytest.raises(EngineUnavailable, match="has no predict_layer"):
        network_perf(MLP, engine="eie")
    fake.predict_layer = lambda layer, shape, **kw: {
        "macs": layer.macs(shape), "cycles": 7, "pes": 2, "dram_bytes": 3,
        "reads": {"dram": 3}, "writes": {}}
    perf = network_perf(MLP, engine="eie")
    assert [lp.cycles for lp in perf.layers] == [7, 7, 7]
    assert perf.totals["macs"] == MLP.macs()
    with pytest.raises(EngineUnavailable, match="unknown engine"):
        network_perf(MLP, engine="tpu")


def test_roofline():
    assert roof(2.0, 64, 4.0) == 8.0 and roof(100.0, 64, 4.0) == 64 and roof(1, 9, None) == 9
    png = roofline_png(network_perf(MLP, config=SystolicConfig()).layers, 16, 2.0, "t")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_eyeriss_hook_uses_its_model():
    import nnloom.gen.compiler.eyeriss_map as em
    from nnloom.hw.eyeriss_pe import EyerissConfig

    cfg = EyerissConfig(dim_width=12)
    net = Network("n", (3, 10, 10), [Conv2d("c", 8, (3, 3), padding=1), ReLU("r"), Flatten("f"),
                                     Dense("fc", 5)])
    conv, relu, _, fc = network_perf(net, engine="eyeriss", config=cfg).layers
    ref = em.ConvLayer("c", 10, 10, 3, 8, 3, 3, stride=1, padding=1)
    pred = em.predict(cfg, ref, em.choose_mapping(cfg, ref, check_glb=False))
    assert conv.cycles == pred.cycles and conv.macs == 3 * 9 * 8 * 100 == pred.total_macs
    assert conv.dram_bytes == 2 * pred.dram and conv.pes == cfg.rows * cfg.cols
    assert relu.cycles == 0 and "not run" in relu.note
    ref_fc = em.ConvLayer("fc", 1, 1, 800, 5, 1, 1)
    assert fc.cycles == em.predict(cfg, ref_fc, em.choose_mapping(cfg, ref_fc, check_glb=False)).cycles


def test_eie_hook_uses_its_model():
    import numpy as np

    import nnloom.gen.perf.eie as ep
    from nnloom.hw.eie_config import EIEConfig

    cfg = EIEConfig(pes=4)
    fc = network_perf(Network("n", (40,), [Dense("fc", 24)]), engine="eie", config=cfg,
                      weight_density=0.25, seed=3).layers[0]
    rng = np.random.default_rng(3)
    counts = ep.random_counts(rng, 24, 40, 4, 0.25)
    act = (rng.random(40) < 1.0).astype(np.int64)
    t = ep.simulate_layer(cfg, counts, act, 24)
    assert (fc.cycles, fc.macs, fc.pes) == (t.cycles, t.entries, 4)
    with pytest.raises(EngineUnavailable, match="fc layers only"):
        network_perf(Network("n", (1, 4, 4), [Conv2d("c", 2, (3, 3))]), engine="eie")


def test_tiling_reports_the_loop_nest_and_placement():
    import math as _m

    for df in ("ws", "os"):
        cfg = SystolicConfig(rows=4, cols=4, dataflow=df)
        lp = gemm_perf(cfg, 10, 12, 40, Memory(act=8, weight=8, out=8))
        assert _m.prod(lp.tiling["tiles"]) == cfg.tiles(10, 12, 40)
        assert lp.tiling["tile_cycles"] == cfg.tile_interval(10, 12)
        assert lp.tiling["psums"] == ("spilled to DRAM" if df == "ws" else "in the array")
        assert lp.tiling["weights"] == ("DRAM once" if df == "ws" else "DRAM 3x")
        assert lp.tiling["input"] == "DRAM, im2col rows 10x"
        roomy = gemm_perf(cfg, 10, 12, 40, Memory(act=10_000, weight=10_000, out=10_000))
        assert roomy.tiling["input"] == "DRAM once" and roomy.dram_bytes < lp.dram_bytes
