"""Compiler: a quantized network and an accelerator config -> a program.

The program is the instruction stream (:mod:`nnloom.hw.accel_isa`), a DRAM image
(program, weights, parameters, room for the input and the output), an address
map and a layer table with each layer's exact compute cycles.

Mapping (see docs/accelerator.md):

* conv -> one CONV per output-channel group of P filters;
* fc -> a CONV whose kernel covers the whole input map (after a flatten) or a
  1 x 1 CONV on a 1 x 1 map of F channels (a feature-vector input); the
  flatten itself moves no data, because the fc's weights are laid out in the
  map's own (channels-last) order;
* maxpool -> MAXPOOL; ReLU must be fused into the layer before it (the
  quantizer does so).

Activation maps alternate between the two activation banks, starting at word
0.  Output groups are packed into weight blocks that fit one weight bank; the
blocks alternate between the two banks so that block i + 1 loads while block
i computes (LOAD_BLOCK is non-blocking; CONV waits for its bank).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nnloom.gen.frontend import QuantizedNetwork
from nnloom.hw.accel_core import AccelConfig
from nnloom.hw.accel_isa import INSTRUCTION, INSTRUCTION_BITS, PARAM_ENTRY, Op
from nnloom.hw.packing import pack
from nnloom.hw.errors import InputError

__all__ = ["CompileError", "Program", "LayerInfo", "compile_network"]

ALIGN = 64


class CompileError(InputError):
    """The network cannot run on this accelerator configuration (one line)."""


@dataclass
class LayerInfo:
    name: str
    kind: str                   # conv, fc, maxpool, flatten
    first: int                  # index of its first instruction
    count: int                  # number of its compute instructions
    macs: int                   # useful MACs of the layer
    array_macs: int             # MACs the array performs (padding included)
    cycles: int                 # exact compute cycles (sum over its instructions)
    out_shape: tuple


@dataclass
class Program:
    config: AccelConfig
    name: str
    instructions: list
    regions: dict = field(default_factory=dict)     # name -> (byte address, bytes)
    blobs: dict = field(default_factory=dict)       # name -> bytes placed at regions[name]
    layers: list = field(default_factory=list)
    input_shape: tuple = ()
    output_shape: tuple = ()
    input_words: int = 0
    output_words: int = 0

    @property
    def size(self) -> int:
        return max(a + n for a, n in self.regions.values())

    def program_bytes(self) -> bytes:
        return b"".join(pack(INSTRUCTION, i).to_bytes(INSTRUCTION_BITS // 8, "little")
                        for i in self.instructions)

    def image(self) -> bytes:
        """The DRAM image (input and output regions zero)."""
        img = bytearray(self.size)
        for name, blob in self.blobs.items():
            addr, n = self.regions[name]
            assert len(blob) <= n, name
            img[addr:addr + len(blob)] = blob
        return bytes(img)

    def input_bytes(self, x) -> bytes:
        """An int8 input sample (network input shape) in the accelerator's layout."""
        x = np.asarray(x, dtype=np.int64).reshape(self.input_shape)
        c, h, w = chw(self.input_shape)
        return _pack_map(x.reshape(c, h, w), self.config.size)

    def output_from(self, raw: bytes) -> np.ndarray:
        """The output region's bytes -> int8 array of the network's output shape."""
        c, h, w = chw(self.output_shape)
        return unpack_map(raw, c, h, w, self.config.size).reshape(self.output_shape)

    def predicted_cycles(self) -> int:
        """Compute cycles per inference: every layer's exact count (the
        RTL's layer counters equal them)."""
        return sum(layer.cycles for layer in self.layers)

    def fetch_cycles(self) -> int:
        """Instruction fetch: each instruction's used bits read one bus
        word per cycle from the program memory, plus one cycle to decode."""
        return len(self.instructions) * (-(-INSTRUCTION.size // self.config.data_width) + 1)

    def dram_beats(self) -> int:
        """Bus beats of everything an inference reads or writes in DRAM:
        the program, weights, parameters, input and output."""
        return sum(-(-n // (self.config.data_width // 8)) for _, n in self.regions.values())

    def estimated_cycles(self) -> int:
        """A serial estimate of a whole inference: compute, instruction
        fetch and every DRAM beat one after another (DMA partly overlaps
        compute in the RTL, so this over-counts: 19 to 43 % on the digits
        networks' builds, never under).  The planner ranks designs by it;
        ``nnloom simulate`` measures the real figure."""
        return self.predicted_cycles() + self.fetch_cycles() + self.dram_beats()


def chw(shape):
    return tuple(shape) if len(shape) == 3 else (shape[0], 1, 1)


def _pack_map(x, P) -> bytes:
    """[C, H, W] int8 -> channels-last words of P lanes."""
    c, h, w = x.shape
    cg = math.ceil(c / P)
    buf = np.zeros((h, w, cg * P), dtype=np.int8)
    buf[:, :, :c] = np.transpose(x, (1, 2, 0))
    return buf.tobytes()


def unpack_map(raw, c, h, w, P):
    cg = math.ceil(c / P)
    buf = np.frombuffer(raw[:h * w * cg * P], dtype=np.int8).reshape(h, w, cg * P)
    return np.transpose(buf[:, :, :c], (2, 0, 1)).astype(np.int64)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _instr(**fields):
    base = {name: 0 for name, _ in INSTRUCTION}
    unknown = set(fields) - set(base)
    assert not unknown, unknown
    base.update(fields)
    return base


def compile_network(qnet: QuantizedNetwork, config: AccelConfig) -> Program:
    """Compile ``qnet`` for ``config``; raise :class:`CompileError` if it cannot run."""
    P = config.size
    where = qnet.name

    def fail(i, layer, msg):
        raise CompileError(f"{where}: layers[{i}] ({layer.name}): {msg}")

    for i, ql in enumerate(qnet.layers):
        if ql.kind in ("dwconv", "add", "addconst"):
            fail(i, ql, f"{ql.kind!r} layers are not supported by the accelerator; supported: "
                        "conv, fc, maxpool, flatten (ReLU fused into conv/fc)")
        if getattr(ql, "w_zp", None) is not None and np.any(np.asarray(ql.w_zp) != 0):
            fail(i, ql, f"weight zero point {sorted(set(np.asarray(ql.w_zp).tolist()))[:4]}: the accelerator's "
                        "multipliers are 8 x 8 on symmetric weights; expected zero point 0")
        if ql.inputs is not None and list(ql.inputs) != [i - 1]:
            fail(i, ql, f"expected a sequential network (each layer reads the previous one), "
                        f"got inputs {list(ql.inputs)}")
        if ql.pads is not None and len(set(ql.pads)) != 1:
            fail(i, ql, f"expected equal padding on every side, got (top, bottom, left, right) "
                        f"{tuple(ql.pads)}")
    rounding = getattr(qnet, "rounding", "onnxruntime")
    if rounding != "onnxruntime":
        raise CompileError(f"{where}: rounding: expected onnxruntime (the accelerator's "
                           f"requantizer rounds once, half up), got {rounding}")
    if qnet.input_zp != 0:
        raise CompileError(f"{where}: input zero point {qnet.input_zp}: the accelerator "
                           "needs symmetric activations (zero point 0)")
    ops = []            # (kind, layer index, dict)
    shape = chw(qnet.input_shape)
    flat_from = None
    for i, ql in enumerate(qnet.layers):
        c, h, w = shape
        if ql.kind in ("conv", "fc"):
            if ql.in_zp != 0:
                fail(i, ql, f"input zero point {ql.in_zp}: the accelerator pads with zero "
                            "words, so activations must be symmetric (zero point 0)")
            if ql.kind == "conv":
                wt = ql.weight
                kr, ks = wt.shape[2], wt.shape[3]
                stride, pad = ql.stride, ql.padding
                out_c = wt.shape[0]
            else:
                kr, ks, stride, pad = h, w, 1, 0
                out_c = ql.weight.shape[0]
                wt = ql.weight.reshape(out_c, c, h, w)
            e = (h + 2 * pad - kr) // stride + 1
            f = (w + 2 * pad - ks) // stride + 1
            for nm, v, hi in (("kernel", max(kr, ks), 15), ("stride", stride, 15),
                              ("padding", pad, 15), ("height", h, 255), ("width", w, 255),
                              ("output height", e, 255), ("output width", f, 255)):
                if v > hi:
                    fail(i, ql, f"{nm} {v} exceeds the instruction field's limit {hi}")
            ops.append(("conv", i, dict(ql=ql, w=wt, c=c, h=h, w_=w, kr=kr, ks=ks,
                                        stride=stride, pad=pad, m=out_c, e=e, f=f)))
            shape = (out_c, e, f)
        elif ql.kind == "maxpool":
            k = ql.kernel[0] if isinstance(ql.kernel, (tuple, list)) else ql.kernel
            if ql.padding:
                fail(i, ql, "padded max pooling is not supported by the accelerator")
            if not config.maxpool:
                fail(i, ql, "this accelerator has no max-pooling unit (maxpool=False)")
            e, f = ql.out_shape[1], ql.out_shape[2]
            ops.append(("maxpool", i, dict(ql=ql, c=c, h=h, w_=w, k=k, stride=ql.stride,
                                           e=e, f=f)))
            shape = (c, e, f)
        elif ql.kind == "flatten":
            flat_from = shape
            ops.append(("flatten", i, dict(ql=ql)))
        else:
            fail(i, ql, f"{ql.kind!r} layers are not supported by the accelerator; supported: "
                        "conv, fc, maxpool, flatten (ReLU fused into conv/fc)")
    del flat_from

    # -- activation buffers ------------------------------------------------------
    def words(shp):
        c, h, w = shp
        return h * w * math.ceil(c / P)

    in_words = words(chw(qnet.input_shape))
    for kind, i, d in ops:
        if kind in ("conv", "maxpool"):
            need = words((d.get("m", d["c"]), d["e"], d["f"]))
            if max(need, words((d["c"], d["h"], d["w_"]))) > config.act_depth:
                fail(i, qnet.layers[i], f"feature map needs {max(need, words((d['c'], d['h'], d['w_'])))} "
                                        f"words; an activation bank holds {config.act_depth}")
        if kind == "conv" and d["e"] * d["f"] > config.acc_depth:
            fail(i, qnet.layers[i], f"{d['e'] * d['f']} output pixels; the accumulator holds "
                                    f"{config.acc_depth}")
    if in_words > config.act_depth:
        raise CompileError(f"{where}: input needs {in_words} words; an activation bank holds "
                           f"{config.act_depth}")

    # -- weight blocks -------------------------------------------------------------
    blocks = []         # dict(layer op index, groups, wwords bytes, params bytes)
    for oi, (kind, i, d) in enumerate(ops):
        if kind != "conv":
            continue
        cg = math.ceil(d["c"] / P)
        kt = d["kr"] * d["ks"] * cg
        ng = math.ceil(d["m"] / P)
        d.update(cg=cg, kt=kt, ng=ng)
        per_group = kt * P
        if per_group > config.wbuf_depth:
            fail(i, qnet.layers[i], f"one output group needs {per_group} weight words; a weight "
                                    f"bank holds {config.wbuf_depth}")
        fit = min(config.wbuf_depth // per_group, config.pbuf_depth // P)
        if fit < 1:
            fail(i, qnet.layers[i], f"a parameter bank of {config.pbuf_depth} entries cannot hold "
                                    f"{P} channels")
        wpad = np.zeros((ng * P, cg * P, d["kr"], d["ks"]), dtype=np.int64)
        wpad[:d["m"], :d["c"]] = d["w"]
        ql = d["ql"]
        for g0 in range(0, ng, fit):
            groups = list(range(g0, min(ng, g0 + fit)))
            wbytes, pbytes = bytearray(), bytearray()
            for g in groups:
                # tile kt = (r, s, cgroup); word i = channel cgroup*P + i; lane j = filter g*P + j
                blk = wpad[g * P:(g + 1) * P]                       # [P filters, CG*P, R, S]
                t = blk.reshape(P, cg, P, d["kr"], d["ks"])         # j, cgroup, i, r, s
                t = np.transpose(t, (3, 4, 1, 2, 0))                # r, s, cgroup, i, j
                wbytes += t.astype(np.int8).tobytes()
                for j in range(P):
                    ch = g * P + j
                    if ch < d["m"]:
                        entry = dict(bias=int(ql.bias[ch]) if ql.bias is not None else 0,
                                     mult=int(ql.mult[ch]), shift=int(ql.shift[ch]), _pad=0)
                    else:
                        entry = dict(bias=0, mult=0, shift=1, _pad=0)
                    pbytes += pack(PARAM_ENTRY, entry).to_bytes(16, "little")
            blocks.append(dict(op=oi, groups=groups, w=bytes(wbytes), p=bytes(pbytes)))

    # -- DRAM layout -------------------------------------------------------------------
    n_instr_est = 4 + len(blocks) + sum(len(b["groups"]) for b in blocks) + len(ops)
    prog = Program(config, qnet.name, [], input_shape=tuple(qnet.input_shape),
                   output_shape=tuple(qnet.layers[-1].out_shape) if qnet.layers
                   else tuple(qnet.input_shape))
    addr = _align(n_instr_est * INSTRUCTION_BITS // 8)
    prog.regions["program"] = (0, addr)
    out_words = words(chw(prog.output_shape))
    prog.input_words, prog.output_words = in_words, out_words
    prog.regions["input"] = (addr, in_words * P)
    addr = _align(addr + in_words * P)
    prog.regions["output"] = (addr, out_words * P)
    addr = _align(addr + out_words * P)
    for bi, b in enumerate(blocks):
        for part in ("w", "p"):
            name = f"block{bi}.{part}"
            prog.regions[name] = (addr, len(b[part]))
            prog.blobs[name] = b[part]
            addr = _align(addr + len(b[part]))

    # -- instructions ----------------------------------------------------------------------
    ins = prog.instructions

    def load_block(bi):
        b = blocks[bi]
        ins.append(_instr(op=Op.LOAD_BLOCK, wbank=bi % 2, layer=ops[b["op"]][1],
                          dram_addr=prog.regions[f"block{bi}.w"][0], words=len(b["w"]) // P,
                          p_dram_addr=prog.regions[f"block{bi}.p"][0],
                          p_words=len(b["p"]) // 16))

    ins.append(_instr(op=Op.LOAD_ACT, bank_in=0, in_base=0, words=in_words,
                      dram_addr=prog.regions["input"][0]))
    for bi in range(min(2, len(blocks))):
        load_block(bi)
    bank = 0
    next_block = 0
    for oi, (kind, i, d) in enumerate(ops):
        ql = d["ql"]
        first = len(ins)
        if kind == "conv":
            cgw = d["cg"]
            cycles = 0
            while next_block < len(blocks) and blocks[next_block]["op"] == oi:
                b = blocks[next_block]
                for n, g in enumerate(b["groups"]):
                    ins.append(_instr(
                        op=Op.CONV, layer=i, bank_in=bank, bank_out=1 - bank,
                        wbank=next_block % 2, release=int(n == len(b["groups"]) - 1),
                        stride=d["stride"], pad=d["pad"], kr=d["kr"], ks=d["ks"],
                        h=d["h"], w=d["w_"], cg=cgw, e=d["e"], f=d["f"], ng=d["ng"], ngi=g,
                        out_zp=ql.out_zp, qmin=ql.qmin, qmax=ql.qmax, in_base=0, out_base=0,
                        w_off=n * d["kt"] * P, p_off=n * P,
                        a_col=d["stride"] * cgw, a_row=d["stride"] * d["w_"] * cgw,
                        a_line=d["w_"] * cgw,
                        a_start=-d["pad"] * (d["w_"] * cgw + cgw),
                        kt=d["kt"], pixels=d["e"] * d["f"], w_words=d["kt"] * P))
                    cycles += config.conv_cycles(d["kt"], d["e"] * d["f"])
                if next_block + 2 < len(blocks):
                    load_block(next_block + 2)
                next_block += 1
            count = sum(1 for x in ins[first:] if x["op"] == Op.CONV)
            macs = d["m"] * d["e"] * d["f"] * d["c"] * d["kr"] * d["ks"]
            prog.layers.append(LayerInfo(ql.name, ql.kind, first, count, macs,
                                         count * d["kt"] * P * P * d["e"] * d["f"], cycles,
                                         tuple(ql.out_shape)))
            bank = 1 - bank
        elif kind == "maxpool":
            cgw = math.ceil(d["c"] / P)
            ins.append(_instr(op=Op.MAXPOOL, layer=i, bank_in=bank, bank_out=1 - bank,
                              stride=d["stride"], kr=d["k"], ks=d["k"], h=d["h"], w=d["w_"],
                              cg=cgw, e=d["e"], f=d["f"], in_base=0, out_base=0,
                              a_col=d["stride"] * cgw, a_row=d["stride"] * d["w_"] * cgw,
                              a_line=d["w_"] * cgw))
            prog.layers.append(LayerInfo(ql.name, "maxpool", first, 1, 0, 0,
                                         config.maxpool_cycles(d["e"], d["f"], cgw, d["k"]),
                                         tuple(ql.out_shape)))
            bank = 1 - bank
        else:
            prog.layers.append(LayerInfo(ql.name, kind, first, 0, 0, 0, 0, tuple(ql.out_shape)))
    ins.append(_instr(op=Op.STORE_ACT, bank_in=bank, in_base=0, words=out_words,
                      dram_addr=prog.regions["output"][0]))
    ins.append(_instr(op=Op.END))
    assert len(ins) <= n_instr_est, (len(ins), n_instr_est)
    if len(ins) > config.imem_depth:
        raise CompileError(f"{where}: the program has {len(ins)} instructions; the instruction "
                           f"memory holds {config.imem_depth} (imem_depth)")
    prog.blobs["program"] = prog.program_bytes()
    return prog
