"""cocotb test of the accelerator's compute core, with the controller and the
DMA played by Python: it walks a compiled program, writes the buffers through
the core's DMA ports, runs each CONV / MAXPOOL, checks every layer's output
map against the golden model and every instruction's cycles against
:meth:`AccelConfig.conv_cycles` / :meth:`AccelConfig.maxpool_cycles` (run by
tests/sim/test_accel_core.py).

Parameters: ``config`` (AccelConfig dict), ``network`` (an examples/ name),
``samples`` (test-split indices)."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly

from nnloom.gen.compiler.compile import compile_network, chw, unpack_map
from nnloom.hw.accel_core import AccelConfig
from nnloom.hw.accel_isa import INSTRUCTION, Op
from nnloom.hw.packing import pack
from nnloom.sim.accel_models import digits_qnet
from nnloom.sim.golden.qnet import run_layer
from nnloom.sim.runner import tb_params
from nnloom.sim.tb.streams import Clocked


async def _write(clk, en, addr_sig, data_sig, addr, value):
    await FallingEdge(clk.clk)
    addr_sig.value = addr
    data_sig.value = value
    en.value = 1
    await FallingEdge(clk.clk)
    en.value = 0


async def _read_map(dut, clk, bank, base, words, depth, P):
    out = bytearray()
    for a in range(words):
        await FallingEdge(clk.clk)
        dut.act_r_addr.value = (bank * depth) | (base + a)
        dut.act_r_en.value = 1
        await FallingEdge(clk.clk)
        dut.act_r_en.value = 0
        await ReadOnly()
        out += int(dut.act_r_data.value.to_unsigned()).to_bytes(P, "little")
    return bytes(out)


@cocotb.test()
async def layers_match_golden(dut):
    p = tb_params()
    cfg = AccelConfig.from_dict(p["config"])
    P = cfg.size
    _, qnet, xq, _, _ = digits_qnet(p["network"])
    prog = compile_network(qnet, cfg)
    clk = Clocked(dut)
    for sig in (dut.act_w_en, dut.wbuf_w_en, dut.pbuf_w_en, dut.act_r_en, dut.cmd__valid):
        sig.value = 0
    await clk.reset()
    mismatches = []
    compute_layers = [info.name for info in prog.layers if info.count]
    assert compute_layers, f"{p['network']}: the program has no CONV / MAXPOOL"
    for sample in p["samples"]:
        checked = []
        x = xq[sample]
        golden = [x.reshape(1, *qnet.input_shape)]
        for ql in qnet.layers:
            golden.append(run_layer(ql, golden[-1]))
        layer_of = {}
        for li, info in enumerate(prog.layers):
            for k in range(info.first, info.first + info.count):
                layer_of[k] = li
        for k, ins in enumerate(prog.instructions):
            op = ins["op"]
            if op == Op.LOAD_ACT:
                raw = prog.input_bytes(x)
                for a in range(ins["words"]):
                    await _write(clk, dut.act_w_en, dut.act_w_addr, dut.act_w_data,
                                 (ins["bank_in"] * cfg.act_depth) | a,
                                 int.from_bytes(raw[a * P:(a + 1) * P], "little"))
            elif op == Op.LOAD_BLOCK:
                bi = [n for n in prog.regions if n.endswith(".w") and
                      prog.regions[n][0] == ins["dram_addr"]][0][:-2]
                wb, pb = prog.blobs[bi + ".w"], prog.blobs[bi + ".p"]
                for a in range(ins["words"]):
                    await _write(clk, dut.wbuf_w_en, dut.wbuf_w_addr, dut.wbuf_w_data,
                                 (ins["wbank"] * cfg.wbuf_depth) | a,
                                 int.from_bytes(wb[a * P:(a + 1) * P], "little"))
                for a in range(ins["p_words"]):
                    await _write(clk, dut.pbuf_w_en, dut.pbuf_w_addr, dut.pbuf_w_data,
                                 (ins["wbank"] * cfg.pbuf_depth) | a,
                                 int.from_bytes(pb[a * 16:(a + 1) * 16], "little"))
            elif op in (Op.CONV, Op.MAXPOOL):
                await FallingEdge(dut.clk)
                dut.cmd__payload.value = pack(INSTRUCTION, ins)
                dut.cmd__valid.value = 1
                await ReadOnly()
                assert int(dut.cmd__ready.value) == 1
                start = clk.cycle()
                await FallingEdge(dut.clk)
                dut.cmd__valid.value = 0
                while True:
                    await ReadOnly()
                    if not int(dut.busy.value):
                        break
                    await FallingEdge(dut.clk)
                cycles = clk.cycle() - start
                info = prog.layers[layer_of[k]]
                want = (cfg.conv_cycles(ins["kr"] * ins["ks"] * ins["cg"], ins["e"] * ins["f"])
                        if op == Op.CONV else
                        cfg.maxpool_cycles(ins["e"], ins["f"], ins["cg"], ins["kr"]))
                if cycles != want:
                    mismatches.append(f"{info.name} instr {k}: {cycles} cycles, model {want}")
                last_of_layer = k == info.first + info.count - 1
                if last_of_layer:
                    li = layer_of[k]
                    c, h, w = chw(info.out_shape)
                    words = h * w * -(-c // P)
                    raw = await _read_map(dut, clk, ins["bank_out"], 0, words, cfg.act_depth, P)
                    got = unpack_map(raw, c, h, w, P)
                    qi = [q.name for q in qnet.layers].index(info.name)
                    want_map = golden[qi + 1][0].reshape(c, h, w)
                    if not np.array_equal(got, want_map):
                        bad = np.argwhere(got != want_map)[:5].tolist()
                        raise AssertionError(f"sample {sample} layer {info.name}: mismatch at "
                                             f"{bad}: got {got.ravel()[:16]} want {want_map.ravel()[:16]}")
                    checked.append(info.name)
                    dut._log.info("sample %d layer %s ok (%d cycles/instr)", sample, info.name, cycles)
        assert checked == compute_layers, f"sample {sample}: checked {checked}, " \
                                          f"compute layers {compute_layers}"
    assert not mismatches, "; ".join(mismatches)
