"""The compiler: layout, instruction encoding, cycle model inputs, errors."""

import numpy as np

from nnloom.hw.accel_core import POST_LATENCY
import pytest

from nnloom.gen.compiler import CompileError, compile_network
from nnloom.gen.frontend import QLayer, QuantizedNetwork
from nnloom.hw.accel_core import AccelConfig
from nnloom.hw.accel_isa import INSTRUCTION, INSTRUCTION_BITS, Op
from nnloom.hw.packing import unpack
from nnloom.sim.accel_models import digits_qnet

CFG = AccelConfig(size=8, act_depth=256, wbuf_depth=512, pbuf_depth=32, acc_depth=64)


@pytest.mark.parametrize("name", ["digits_mlp", "lenet_digits"])
def test_program_structure(name):
    _, qnet, xq, _, _ = digits_qnet(name)
    prog = compile_network(qnet, CFG)
    ops = [i["op"] for i in prog.instructions]
    assert ops[0] == Op.LOAD_ACT and ops[-2:] == [Op.STORE_ACT, Op.END]
    # the encoded program decodes back to the same instructions
    raw = prog.program_bytes()
    n = INSTRUCTION_BITS // 8
    for k, ins in enumerate(prog.instructions):
        assert unpack(INSTRUCTION, int.from_bytes(raw[k * n:(k + 1) * n], "little")) == ins
    # every region is aligned and regions do not overlap
    spans = sorted(prog.regions.values())
    for (a, n1), (b, _) in zip(spans, spans[1:]):
        assert a % 64 == 0 and a + n1 <= b
    # the input sample in the documented layout (docs/accelerator.md, "Data
    # layout"), written out byte by byte: word (h*W + w)*CG + g, lane i holds
    # channel g*P + i as int8, missing channels zero
    x = xq[3]
    c, h, w = qnet.input_shape if len(qnet.input_shape) == 3 else (qnet.input_shape[0], 1, 1)
    P = CFG.size
    chans = np.asarray(x).reshape(c, h, w)
    if prog.input_pack is not None:
        # the first conv's kernel columns packed into the channels:
        # channel s*C + c of pixel (y, j) is x[c, y, j + s - pad]
        ks, pad, f = prog.input_pack
        packed = np.zeros((ks * c, h, f), dtype=np.int64)
        for s_ in range(ks):
            for j in range(f):
                if 0 <= j + s_ - pad < w:
                    packed[s_ * c:(s_ + 1) * c, :, j] = chans[:, :, j + s_ - pad]
        chans, c, w = packed, ks * c, f
    cg = -(-c // P)
    want = bytearray(h * w * cg * P)
    for y in range(h):
        for xx in range(w):
            for ch in range(c):
                want[((y * w + xx) * cg + ch // P) * P + ch % P] = int(chans[ch, y, xx]) & 0xFF
    raw = prog.input_bytes(x)
    assert len(raw) == prog.input_words * P and raw == bytes(want)
    # the model's cycles: per layer, its CONVs' weight tiles back to back
    # (docs/accelerator.md, "Cycles"; the array's latency is R + C + 4 with
    # registered multipliers, test_systolic's closed form); MAXPOOL by its own formula
    for layer in prog.layers:
        ins = prog.instructions[layer.first:layer.first + layer.count]
        ms = [i["pixels"] for i in ins if i["op"] == Op.CONV for _ in range(i["kt"])]
        want = (P + 1 + sum(max(m, P) for m in ms[:-1]) + ms[-1] + CFG.systolic.latency + POST_LATENCY) if ms else 0
        want += sum(1 + i["e"] * i["f"] * i["cg"] * i["kr"] ** 2 + 2
                    for i in ins if i["op"] == Op.MAXPOOL)
        assert layer.cycles == want, layer


def test_weight_blocks_alternate_banks_and_release():
    _, qnet, _, _, _ = digits_qnet("lenet_digits")
    cfg = AccelConfig(size=4, act_depth=256, wbuf_depth=128, pbuf_depth=32, acc_depth=64)
    prog = compile_network(qnet, cfg)
    loads = [i for i in prog.instructions if i["op"] == Op.LOAD_BLOCK]
    assert len(loads) > 2
    assert [i["wbank"] for i in loads] == [k % 2 for k in range(len(loads))]
    convs = [i for i in prog.instructions if i["op"] == Op.CONV]
    assert sum(i["release"] for i in convs) == len(loads)


def _tiny(kind, **kw):
    base = dict(name="l0", kind=kind, in_shape=(1, 4, 4), out_shape=(1, 2, 2), in_scale=1.0,
                in_zp=0, out_scale=1.0, out_zp=0)
    base.update(kw)
    return QuantizedNetwork("tiny", (1, 4, 4), 1.0, 0, [QLayer(**base)])


@pytest.mark.parametrize("qnet,match", [
    (_tiny("avgpool", kernel=(2, 2), stride=2), "avgpool"),
    (_tiny("relu", out_shape=(1, 4, 4)), "relu"),
    (_tiny("conv", weight=np.zeros((1, 1, 3, 3), int), bias=np.zeros(1, int),
           mult=np.ones(1, int), shift=np.ones(1, int), kernel=(3, 3), in_zp=3), "zero point"),
    (_tiny("conv", out_shape=(1, 2, 80), in_shape=(1, 2, 80), weight=np.zeros((1, 1, 1, 1), int),
           bias=np.zeros(1, int), mult=np.ones(1, int), shift=np.ones(1, int), kernel=(1, 1)),
     "a row of output pixels needs 80 accumulator words; the accumulator holds 64"),
])
def test_unsupported_or_too_large(qnet, match):
    cfg = CFG
    if qnet.layers[0].kind == "conv" and qnet.layers[0].in_shape == (1, 2, 80):
        qnet.input_shape = (1, 2, 80)
        cfg = CFG.replace(act_depth=4096)
    with pytest.raises(CompileError, match=match):
        compile_network(qnet, cfg)


def test_weights_too_large_for_a_bank():
    _, qnet, _, _, _ = digits_qnet("digits_mlp")
    cfg = AccelConfig(size=4, act_depth=256, wbuf_depth=16, pbuf_depth=32, acc_depth=64)
    with pytest.raises(CompileError, match="weight bank holds 16"):
        compile_network(qnet, cfg)


def test_pooling_needs_the_pooling_unit():
    from dataclasses import replace

    from nnloom.gen.accelerator import quantize_network, size_config
    from nnloom.gen.frontend import load_network
    qnet = quantize_network(load_network("examples/lenet_digits.toml"))
    cfg = size_config(qnet, 4)
    assert cfg.maxpool and cfg.imem_depth >= 8
    with pytest.raises(CompileError, match=r"no max-pooling unit \(maxpool=False\)"):
        compile_network(qnet, replace(cfg, maxpool=False))
    with pytest.raises(CompileError, match=r"instruction memory holds 2 \(imem_depth\)"):
        compile_network(qnet, replace(cfg, imem_depth=2))


def test_large_maps_run_in_row_tiles():
    """A 1 x 40 x 40 map (1,600 output pixels) on a 64-word accumulator: one
    CONV per tile of 1 output row (40 pixels), covering every row once."""
    q = _tiny("conv", out_shape=(1, 40, 40), in_shape=(1, 40, 40), weight=np.zeros((1, 1, 1, 1), int),
              bias=np.zeros(1, int), mult=np.ones(1, int), shift=np.ones(1, int), kernel=(1, 1))
    q.input_shape = (1, 40, 40)
    prog = compile_network(q, CFG.replace(act_depth=4096))
    convs = [i for i in prog.instructions if i["op"] == Op.CONV]
    assert [i["ih0"] for i in convs] == list(range(40))
    assert all(i["pixels"] == 40 and i["e"] == 1 for i in convs)
    assert [i["dep"] for i in convs] == [1] + [0] * 39
    assert [i["out_base"] for i in convs] == [40 * r for r in range(40)]


def test_a_value_outside_its_field_is_refused():
    """2,048 input channels on an 8-lane array: 256 channel groups, one more
    than the 8-bit cg field holds; refused by name, never truncated."""
    q = _tiny("conv", in_shape=(2048, 1, 1), out_shape=(1, 1, 1),
              weight=np.zeros((1, 2048, 1, 1), int), bias=np.zeros(1, int),
              mult=np.ones(1, int), shift=np.ones(1, int), kernel=(1, 1))
    q.input_shape = (2048, 1, 1)
    with pytest.raises(CompileError, match=r"CONV field cg = 256 is outside its range 0\.\.255"):
        compile_network(q, CFG.replace(wbuf_depth=4096))
