"""The v2 accelerator on its emitted Verilog: decoupled units, vector
post-processing, output-row tiles, fused pooling, first-layer column
packing, batches and resident weights.

Seeded random networks of varied shapes (kernel 1..5, stride 1 or 2,
padding, channel counts that do and do not fill the lanes, pooled and not)
are compiled for one fixed small configuration (one Verilator build) whose
accumulator is small enough that every conv runs in several row tiles;
every output is checked bit for bit against the golden int8 model
(:mod:`nnloom.sim.golden.qnet`), every layer's cycle counter against the
compiler's model (:meth:`AccelConfig.layer_cycles`).
"""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from nnloom.gen.accelerator import build, quantize_network, sized
from nnloom.gen.compiler import compile_network
from nnloom.gen.frontend.loaders.toml_format import parse_toml
from nnloom.hw.accel_core import POST_LATENCY, AccelConfig
from nnloom.hw.engine import DotEngine
from nnloom.sim.accel_sim import random_inputs, run_inputs

CFG = AccelConfig(size=4, act_depth=1024, wbuf_depth=2048, pbuf_depth=128, acc_depth=32,
                  layers=8, imem_depth=128)
#: the small-FPGA options: one post-processing lane (an output pixel every 4
#: cycles: the feeder spaces last-tile beats) and one-entry queues (the fetched
#: instruction is the fetch queue's head)
SERIAL = replace(CFG, post_lanes=1, queue_depth=1)
#: the pipelined array (registered multipliers, portable lowering: latency + 4)
PIPELINED = replace(CFG, multiplier="portable")


def _net(seed):
    """A seeded random CNN: two or three conv stages (some pooled), then fc."""
    import tomllib

    rng = np.random.default_rng(seed)
    c0, hw0 = int(rng.integers(1, 6)), int(rng.integers(9, 15))
    hw, layers = hw0, []
    for n in range(int(rng.integers(2, 4))):
        k = int(rng.choice([1, 2, 3, 5])) if n else int(rng.choice([3, 5]))
        stride = int(rng.choice([1, 1, 2]))
        pad = int(rng.integers(0, k // 2 + 1))
        out = (hw + 2 * pad - k) // stride + 1
        if out < 2:
            break
        layers.append(f'[[layers]]\ntype = "conv"\nname = "conv{n}"\nout_channels = '
                      f'{int(rng.integers(2, 11))}\nkernel = {k}\nstride = {stride}\n'
                      f'padding = {pad}\n[[layers]]\ntype = "relu"\nname = "relu{n}"\n')
        hw = out
        if hw >= 4 and rng.random() < 0.6:
            # 2 x 2 / 2 fuses into the conv; 3 x 3 / 2 runs as MAXPOOL
            pk = 2 if rng.random() < 0.6 else 3
            layers.append(f'[[layers]]\ntype = "maxpool"\nname = "pool{n}"\nkernel = {pk}\n'
                          'stride = 2\n')
            hw = (hw - pk) // 2 + 1
    layers.append('[[layers]]\ntype = "flatten"\nname = "flat"\n'
                  f'[[layers]]\ntype = "fc"\nname = "fc"\nout = {int(rng.integers(3, 12))}\n')
    doc = tomllib.loads(f'name = "rand{seed}"\nweights = {{ seed = {seed} }}\n[input]\n'
                        f'shape = [{c0}, {hw0}, {hw0}]\n' + "".join(layers))
    return parse_toml(doc, f"rand{seed}.toml")


def _case(seed, resident, base=CFG):
    net = _net(seed)
    qnet = quantize_network(net, random_inputs(net, 8, seed=seed))
    cfg = replace(base, resident=resident)
    prog = compile_network(qnet, cfg)
    xq = np.stack([qnet.quantize_input(v) for v in random_inputs(net, 2, seed=100 + seed)])
    return SimpleNamespace(network=net, qnet=qnet, config=cfg, program=prog), xq


@pytest.mark.slow
@pytest.mark.parametrize("base,resident", [(CFG, True), (CFG, False), (SERIAL, True),
                                           (PIPELINED, True)],
                         ids=["resident", "streamed", "serial-resident", "pipelined-resident"])
def test_random_cnns_bit_exact_and_cycle_exact(base, resident, simulator):
    tiled = pooled = 0
    for seed in (0, 1, 4, 5):
        b, xq = _case(seed, resident, base)
        xq = np.concatenate([xq, xq[:1]])          # a cold run, then warm ones
        tiled += sum(1 for ins in b.program.instructions if ins["op"] == 4 and ins["ih0"] > 0)
        pooled += sum(1 for ins in b.program.instructions if ins["op"] == 5)
        res = run_inputs(b, xq, sim=simulator, pause=0.0 if resident else 0.2, seed=seed,
                         chunk=len(xq))
        assert [r["kept"] for r in res] == [False, True, True]
        for r in res:
            assert r["bit_exact"], f"seed {seed} input {r['index']}: {r['output']} != {r['golden']}"
            model = [L.cycles for L in b.program.layers]
            if resident:      # no weight loads during the inference: exact, whole run too
                assert r["layers"] == model, (seed, r["layers"], model)
                assert r["cycles"] == b.program.run_cycles(kept=r["kept"]), (
                    seed, r["kept"], r["cycles"], b.program.run_cycles(kept=r["kept"]))
            else:             # streamed under random AXI pauses: never below the model
                assert all(g >= w for g, w in zip(r["layers"], model)), (seed, r["layers"], model)
    assert tiled, "no network ran in row tiles: the accumulator should force them"
    assert pooled, "no network ran a MAXPOOL instruction (unfused pooling)"


@pytest.mark.slow
def test_a_second_engine_plugs_in(simulator):
    """The core behind the engine interface with another engine: the
    DotEngine (no systolic skew, one dot product per lane, the same latency)
    runs the same random CNNs bit-exact, every layer and the whole run
    cycle-exact against the unchanged model."""
    for seed in (1, 5):
        b, xq = _case(seed, True)
        res = run_inputs(b, xq[:1], sim=simulator, seed=seed, chunk=1,
                         engine=DotEngine.for_config)
        r = res[0]
        assert r["bit_exact"], (seed, r["output"], r["golden"])
        assert r["layers"] == [L.cycles for L in b.program.layers]
        assert r["cycles"] == b.program.run_cycles(kept=False)


@pytest.mark.slow
def test_batched_mlp_resident_and_program_kept(simulator):
    """digits_mlp at batch 4 with resident weights: every sample bit-exact,
    layer counters exact; the second run keeps the program in imem
    (CTRL bit 3) and is faster than the first by the program load."""
    b = build("examples/digits_mlp.toml", size=8, batch=4)
    assert b.config.batch == 4 and b.config.resident and b.program.preload
    from nnloom.sim.accel_models import digits_qnet
    xq = digits_qnet("digits_mlp")[2][:8]
    res = run_inputs(b, xq, sim=simulator, chunk=8)
    assert len(res) == 8 and all(r["bit_exact"] and r["layers_exact"] for r in res)
    first, second = res[0]["cycles"], res[4]["cycles"]
    assert (first, second) == (b.program.run_cycles(kept=False), b.program.run_cycles(kept=True))


def test_sized_tiles_large_maps_and_packs_first_layer():
    """cifar_cnn (32 x 32 x 3) compiles: row tiles bound the accumulator,
    pooling is fused, the first conv's columns are packed (3 weight tiles
    per group instead of 9 x ceil(3/P)), and the model's per-layer cycles
    follow the closed formula."""
    from nnloom.gen.frontend import load_network
    net = load_network("examples/cifar_cnn.toml")
    qnet = quantize_network(net, random_inputs(net, 8))
    cfg, prog = sized(qnet, 8)
    assert cfg.acc_depth <= 256 and prog.input_pack == (3, 1, 32)
    convs = [i for i in prog.instructions if i["op"] == 4]
    assert {i["pk"] for i in convs} == {1, 2}
    conv1 = [i for i in convs if i["layer"] == 0]
    assert all(i["kt"] == 3 * 2 and i["pixels"] <= cfg.acc_depth for i in conv1)
    # 2 output groups x 4 row tiles of 8 pooled rows (256 conv pixels), KT = 6;
    # the array's latency R + C + 4 (registered multipliers, the default)
    P, L = 8, 8 + 8 + 4
    ms = [256] * (2 * 4 * 6)
    assert prog.layers[0].cycles == (P + 1 + sum(max(m, P) for m in ms[:-1]) + ms[-1] + L
                                     + POST_LATENCY)
