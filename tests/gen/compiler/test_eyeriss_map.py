"""The row-stationary mapper: unmappable layers, the constraints on p and q,
the input stream's order, and the model's counts against independent counts."""

import numpy as np
import pytest

from nnloom.gen.compiler.eyeriss_map import (ConvLayer, MappingError, candidates, choose_mapping, input_words,
                             layer_fields, predict)
from nnloom.hw.eyeriss import EyerissConfig

CFG = EyerissConfig(rows=6, cols=3, filter_spad=32, ifmap_spad=12, psum_spad=4,
                    glb_ifmap=512, glb_psum=256)


def test_filter_larger_than_padded_input():
    layer = ConvLayer("convX", h=3, w=3, c=1, m=1, r=5, s=5, padding=0)
    with pytest.raises(MappingError, match=r"layer convX: filter 5x5 is larger than the padded input 3x3"):
        choose_mapping(CFG, layer)
    assert issubclass(MappingError, ValueError)


def test_scratchpads_too_small():
    cfg = CFG.replace(ifmap_spad=4)
    layer = ConvLayer("conv5x5", h=8, w=8, c=2, m=2, r=5, s=5)
    with pytest.raises(MappingError, match=r"layer conv5x5: scratchpads too small for any p and q.*"
                                           r"ifmap_spad >= S \(have 4\)"):
        choose_mapping(cfg, layer)
    with pytest.raises(MappingError, match="filter_spad >= S"):
        choose_mapping(CFG.replace(filter_spad=3), layer)


def test_other_limits_name_the_layer():
    with pytest.raises(MappingError, match=r"layer big: the padded ifmap needs 800 global-buffer words, "
                                           r"glb_ifmap is 512"):
        choose_mapping(CFG, ConvLayer("big", h=20, w=20, c=2, m=1, r=3, s=3))


def test_field_width_limits():
    narrow = CFG.replace(dim_width=4)     # fields hold 0..15
    with pytest.raises(MappingError, match=r"layer wide: stride 8 on 3 columns needs ifmap-row tags up to 16"):
        choose_mapping(narrow, ConvLayer("wide", h=14, w=14, c=1, m=1, r=1, s=1, stride=8))
    with pytest.raises(MappingError, match=r"layer many: c = 20 exceeds the 4-bit layer fields"):
        choose_mapping(narrow, ConvLayer("many", h=3, w=3, c=20, m=1, r=1, s=1))


def test_tall_filters_fold_in_row_passes():
    """R = 7 > H = 6: row passes of 6 and 1 filter rows, one replica."""
    layer = ConvLayer("tall", h=9, w=9, c=1, m=2, r=7, s=7, padding=1)
    mp = choose_mapping(CFG, layer)
    assert (mp.rc, mp.n_rpass, mp.r_last, mp.rv) == (6, 2, 1, 1)
    fields = layer_fields(CFG, layer, mp)
    assert fields["row_r"] == [0, 1, 2, 3, 4, 5] and fields["rstart_last"] == 0


def test_candidates_respect_the_scratchpads():
    layer = ConvLayer("l", h=6, w=6, c=6, m=4, r=3, s=3)
    cands = candidates(CFG, layer)
    assert cands
    for mp in cands:
        assert layer.m % mp.p == 0 and layer.c % mp.q == 0
        assert mp.p <= CFG.psum_spad and mp.q * 3 <= CFG.ifmap_spad and mp.p * mp.q * 3 <= CFG.filter_spad
        assert mp.rv == 2
        assert (mp.n_cpass - 1) * mp.rv * mp.q + mp.a_last * mp.q == layer.c
    pairs = {(mp.p, mp.q) for mp in cands}
    assert (4, 2) in pairs and (4, 3) not in pairs  # 4*3*3 = 36 > 32


def test_layer_fields_tags():
    layer = ConvLayer("l", h=6, w=6, c=4, m=2, r=2, s=2, stride=2)
    mp = candidates(CFG, layer)[0]
    fields = layer_fields(CFG, layer, mp)
    assert fields["row_k"] == [0, 0, 1, 1, 2, 2] and fields["row_r"] == [0, 1, 0, 1, 0, 1]
    assert fields["col_y"] == [0, 2, 4]
    assert fields["rstart"] == 0 and fields["nnew"] == 2


def _im2col_zeros(layer, x):
    """Zeros among the words each MAC step sees, by direct loops."""
    xp = np.pad(x, ((0, 0), (layer.padding,) * 2, (layer.padding,) * 2))
    u = layer.stride
    count = 0
    for c in range(layer.c):
        for r in range(layer.r):
            for s in range(layer.s):
                for e in range(layer.e):
                    for f in range(layer.f):
                        count += xp[c, u * e + r, u * f + s] == 0
    return int(count)


@pytest.mark.parametrize("dims", [(5, 5, 2, 2, 3, 1, 1), (7, 7, 2, 2, 5, 2, 2), (4, 5, 8, 3, 1, 1, 0),
                                  (9, 9, 1, 2, 7, 1, 1)])
def test_predicted_macs_and_words(dims):
    h, w, c, m, r, u, pad = dims
    layer = ConvLayer("l", h=h, w=w, c=c, m=m, r=r, s=r, stride=u, padding=pad)
    rng = np.random.default_rng(h * w + c)
    x = rng.integers(-5, 5, (c, h, w))
    wt = rng.integers(-5, 5, (m, c, r, r))
    for mp in candidates(CFG, layer):
        pred = predict(CFG, layer, mp, x)
        zeros = _im2col_zeros(layer, x)
        assert pred.counters["gated"] == m * zeros
        assert pred.counters["macs"] + pred.counters["gated"] == layer.macs
        words = input_words(CFG, layer, mp, x, wt)
        ifmap = c * (h + 2 * pad) * (w + 2 * pad)
        assert pred.counters["glb_writes"] == ifmap + m * layer.e * layer.f * mp.n_cpass * mp.n_rpass
        # every weight is sent once per strip (the filters are re-fetched per strip)
        assert len(words) - ifmap == wt.size * mp.n_estrip
        assert sorted(words[ifmap:]) == sorted(np.tile(wt.ravel(), mp.n_estrip).tolist())
        assert 0 < pred.utilization <= 1


def test_energy_uses_the_cost_table():
    from nnloom.gen.perf import CostTable
    layer = ConvLayer("l", h=5, w=5, c=2, m=2, r=3, s=3, padding=1)
    mp = choose_mapping(CFG, layer)
    pred = predict(CFG, layer, mp)
    acc = pred.accesses()
    mine = CostTable("mine", "MAC", mac=1, rf=0, array=0, buffer=0, dram=1)
    assert pred.energy(mine) == pred.counters["macs"] + acc["dram"]
    assert pred.energy() == (pred.counters["macs"] + acc["rf"] + 2 * acc["array"]
                             + 6 * acc["buffer"] + 200 * acc["dram"])


def test_gating_savings_are_the_skipped_work():
    from nnloom.gen.compiler import gating_savings
    layer = ConvLayer("l", h=5, w=5, c=2, m=2, r=3, s=3, padding=1)
    mp = choose_mapping(CFG, layer)
    x = np.zeros((2, 5, 5), dtype=np.int64)          # every word zero: every MAC gated
    gated, saved = gating_savings(CFG, layer, mp, x)
    assert gated == layer.macs
    # A gated step skips the MAC (cost 1) and the filter read (rf, 1), and the
    # psum read and write (rf, 1 each), except on a run's first step, which
    # reads no psum anyway and still writes one (a zero).
    firsts = (layer.c // mp.q) * layer.r * layer.e * layer.f * layer.m
    assert saved == 4 * (layer.macs - firsts) + 2 * firsts


def test_ws_os_single_tile_counts():
    from nnloom.gen.perf import output_stationary, weight_stationary
    layer = ConvLayer("l", h=4, w=4, c=1, m=2, r=2, s=2)     # K = 4, E*F = 9, M = 2
    ws = weight_stationary(layer, rows=4, cols=2)             # one 4 x 2 weight tile
    assert ws.macs == layer.macs == 72
    assert ws.acc["buffer"] == 2 * 4 + 9 * 4 + 9 * 2           # weights, activations, psums out
    assert ws.acc["rf"] == 72 + 8 and ws.acc["array"] == 144
    os_ = output_stationary(layer, rows=9, cols=2)            # one 9 x 2 output tile
    assert os_.acc["buffer"] == 4 * (9 + 2) + 9 * 2
    assert ws.acc["dram"] == os_.acc["dram"] == 16 + 8 + 18


def test_rs_lowest_energy_on_alexnet_conv3():
    """The comparison Eyeriss published, on our models (CONV3 at full size)."""
    from nnloom.gen.perf import output_stationary, weight_stationary
    cfg = EyerissConfig(rows=12, cols=14, dim_width=9)
    layer = ConvLayer("CONV3", 13, 13, 256, 384, 3, 3, 1, 1)
    rs = predict(cfg, layer, choose_mapping(cfg, layer, check_glb=False)).energy_per_mac()
    assert rs < weight_stationary(layer, 12, 14).energy_per_mac()
    assert rs < output_stationary(layer, 12, 14).energy_per_mac()
