"""The accelerator top: config checks, lint, determinism."""

import pytest

from nnloom.hw.accel import Accelerator
from nnloom.hw.accel_core import AccelConfig
from nnloom.hw.params import ParamError
from nnloom.sim.lint import assert_emits_clean


@pytest.mark.parametrize("kw,name", [(dict(size=3), "size"), (dict(size=34), "size"),
                                     (dict(size=6), "data_width"), (dict(size=2), "data_width"),
                                     (dict(size=2, data_width=32), "data_width"),
                                     (dict(data_width=48), "data_width"),
                                     (dict(acc_depth=0), "acc_depth"),
                                     (dict(post_lanes=3), "post_lanes"),
                                     (dict(post_lanes=33), "post_lanes")])
def test_config_rejects(kw, name):
    with pytest.raises(ParamError) as e:
        AccelConfig(**kw)
    assert e.value.name == name


def test_config_small_arrays_take_a_16_bit_bus():
    assert AccelConfig(size=2, data_width=16).bus_per_word == 1
    assert AccelConfig(size=6, data_width=16).bus_per_word == 3
    with pytest.raises(ParamError, match="16 | 32"):
        AccelConfig(size=4, data_width=64)


@pytest.mark.parametrize("cfg", [
    AccelConfig(size=4, act_depth=64, wbuf_depth=64, pbuf_depth=16, acc_depth=16),
    # the digits MLP's own size: one accumulator word, no pooling unit, 32 instructions
    AccelConfig(size=4, act_depth=16, wbuf_depth=64, pbuf_depth=16, acc_depth=1, layers=3,
                imem_depth=32, maxpool=False),
    # the iCEBreaker's: a 2 x 2 array on a 16-bit bus, one post-processing
    # lane, one-entry queues
    AccelConfig(size=2, act_depth=32, wbuf_depth=128, pbuf_depth=16, acc_depth=1, layers=3,
                data_width=16, imem_depth=32, maxpool=False, post_lanes=1, queue_depth=1),
    # two lanes of four, with pooling
    AccelConfig(size=4, act_depth=64, wbuf_depth=64, pbuf_depth=16, acc_depth=16,
                post_lanes=2),
    # the pipelined array (registered multipliers, portable without a platform)
    AccelConfig(size=4, act_depth=64, wbuf_depth=64, pbuf_depth=16, acc_depth=16,
                multiplier="auto"),
], ids=["pool", "mlp", "p2", "lanes2", "registered"])
def test_top_is_lint_clean_and_deterministic(cfg):
    assert_emits_clean(lambda: Accelerator(cfg))


def test_cycle_formulas_are_closed_forms():
    from nnloom.hw.accel_core import POST_LATENCY, Tile
    cfg = AccelConfig(size=8)
    # the default array has registered multipliers: latency R + C + 4
    # (docs/systolic.md); post-processing: the accumulator read + 7 stages
    P, L, Q = 8, 8 + 8 + 4, POST_LATENCY
    assert Q == 8
    # one tile of one pixel: preload P + 1, the pixel, latency, post stages
    assert cfg.layer_cycles([Tile(1, 1)]) == P + 1 + 1 + L + Q
    # the one-cycle multiply-add array: latency R + C
    assert AccelConfig(size=8, multiplier="comb").layer_cycles([Tile(1, 1)]) == P + 1 + 1 + 16 + Q
    # tiles follow every max(M, P) cycles, across instructions
    assert cfg.layer_cycles([Tile(3, 5), Tile(2, 20)]) == (P + 1 + 3 * P + 20 + 20 + L + Q)
    assert cfg.layer_cycles([]) == 0
    # one post-processing lane of 8: an instruction's last tile takes 8 cycles
    # a pixel (its beats 8 apart), the others are as before
    one = AccelConfig(size=8, post_lanes=1)
    assert (one.lanes, one.post_beat) == (1, 8)
    assert one.layer_cycles([Tile(1, 1)]) == P + 1 + 8 + L + Q
    assert one.layer_cycles([Tile(3, 5), Tile(2, 20)]) == (
        P + 1 + P + P + max(5 * 8, P) + 20 + 20 * 8 + L + Q)
    assert AccelConfig(size=8, post_lanes=4).layer_cycles([Tile(1, 3)]) == P + 1 + 6 + L + Q
    assert cfg.maxpool_cycles(2, 2, 1, 2) == 1 + 16 + 2
