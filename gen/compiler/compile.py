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
from nnloom.hw.accel_core import AccelConfig, Tile
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
    batch: int = 1
    preload: list = field(default_factory=list)     # resident weights: run once first
    input_pack: tuple | None = None     # (KS, pad, F): the first conv's columns packed

    @property
    def size(self) -> int:
        return max(a + n for a, n in self.regions.values())

    def program_bytes(self, instructions=None) -> bytes:
        """The packed instructions (default: the inference program)."""
        seq = self.instructions if instructions is None else instructions
        return b"".join(pack(INSTRUCTION, i).to_bytes(INSTRUCTION_BITS // 8, "little")
                        for i in seq)

    def image(self) -> bytes:
        """The DRAM image (input and output regions zero)."""
        img = bytearray(self.size)
        for name, blob in self.blobs.items():
            addr, n = self.regions[name]
            assert len(blob) <= n, name
            img[addr:addr + len(blob)] = blob
        return bytes(img)

    def input_bytes(self, x) -> bytes:
        """An int8 input sample (network input shape; ``[batch, ...]`` when the
        program's batch is above 1) in the accelerator's layout."""
        x = np.asarray(x, dtype=np.int64).reshape(self.batch, *self.input_shape)
        c, h, w = chw(self.input_shape)
        maps = [v.reshape(c, h, w) for v in x]
        if self.input_pack is not None:
            ks, pad, f = self.input_pack
            maps = [pack_columns(v, ks, pad, f) for v in maps]
        return b"".join(_pack_map(v, self.config.size) for v in maps)

    def output_from(self, raw: bytes) -> np.ndarray:
        """The output region's bytes -> int8 array of the network's output
        shape (``[batch, ...]`` when the batch is above 1)."""
        c, h, w = chw(self.output_shape)
        n = self.output_words * self.config.size
        outs = [unpack_map(raw[b * n:(b + 1) * n], c, h, w, self.config.size)
                .reshape(self.output_shape) for b in range(self.batch)]
        return outs[0] if self.batch == 1 else np.stack(outs)

    def predicted_cycles(self) -> int:
        """Compute cycles per inference: every layer's exact count (the
        RTL's layer counters equal them)."""
        return sum(layer.cycles for layer in self.layers)

    def fetch_cycles(self) -> int:
        """Instruction fetch: each instruction's used bits read one bus
        word per cycle from the program memory, plus one cycle to decode."""
        return len(self.instructions) * self.config.fetch_words

    def dram_beats(self) -> int:
        """Bus beats of everything an inference reads or writes in DRAM:
        the program, weights, parameters, input and output."""
        return sum(-(-n // (self.config.data_width // 8)) for _, n in self.regions.values())

    def run_cycles(self, kept: bool = True) -> int | None:
        """The CYCLES register of a whole run of a resident-weights program
        with DRAM that answers at once (cocotbext-axi ``AxiRam``, no
        pauses): the first fetch, the input's beats (or the fetch of the
        next instruction, if longer; with one-entry queues both, and the
        fetch of END after the store), every layer's exact cycles and one
        cycle between layers, the output store (``beats + 2`` cycles a word)
        and END; ``kept=False`` adds the program's load (CTRL bit 3 clear).
        None for streamed weights, whose loads overlap compute (see
        :meth:`estimated_cycles`)."""
        if not self.config.resident:
            return None
        cfg = self.config
        r = cfg.bus_per_word
        n = sum(1 for L in self.layers if L.count)
        F = cfg.fetch_words
        load = r * self.batch * self.input_words
        if cfg.queue_depth > 1:     # the first CONV is fetched during the input's load
            load = max(load, F - 4)
        else:                       # one-entry fetch queue: fetched after it, and END
            load += 2 * (F + 2)     # after the output's store
        cycles = (F + 12 + load + (r + 2) * self.batch * self.output_words
                  + self.predicted_cycles() + n)
        if not kept:
            cycles += len(self.instructions) * INSTRUCTION_BITS // cfg.data_width + 4
        return cycles

    def estimated_cycles(self) -> int:
        """A whole first run: :meth:`run_cycles` (program load included) for
        resident weights, exact; for streamed weights a serial estimate,
        compute, instruction fetch and every DRAM beat one after another
        (loads overlap compute in the RTL, so this over-counts, never
        under).  The planner ranks designs by it; ``nnloom simulate``
        measures the real figure."""
        exact = self.run_cycles(kept=False)
        if exact is not None:
            return exact
        return self.predicted_cycles() + self.fetch_cycles() + self.dram_beats()


def chw(shape):
    return tuple(shape) if len(shape) == 3 else (shape[0], 1, 1)


def pack_columns(x, ks: int, pad: int, f: int) -> np.ndarray:
    """[C, H, W] -> [KS * C, H, F]: channel ``s * C + c`` of pixel (h, j) is
    ``x[c, h, j + s - pad]`` (zero outside the map)."""
    c, h, w = x.shape
    xp = np.zeros((c, h, w + 2 * pad + ks), dtype=x.dtype)
    xp[:, :, pad:pad + w] = x
    return np.concatenate([xp[:, :, s:s + f] for s in range(ks)], axis=0)


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


def _field_range(shape) -> tuple[int, int]:
    bits = shape.width
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if shape.signed else (0, (1 << bits) - 1)


#: each instruction field's (lo, hi): a value outside is refused, never truncated
FIELD_RANGES = {name: _field_range(field.shape) for name, field in INSTRUCTION._fields.items()}


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
            limits = (("kernel", max(kr, ks), 15),) if ql.kind == "conv" else ()
            for nm, v, hi in limits + (("stride", stride, 15),
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

    # -- the first layer's kernel columns packed into the channels: a conv on
    # few channels (C * KS lanes fit fewer words than KS * ceil(C / P))
    # reads an input laid out as X'[s*C + c, h, f] = x[c, h, f + s - pad]
    # and becomes a KR x 1 conv over it, with KS times fewer weight tiles
    # (Program.input_bytes lays the input out so)
    input_pack = None
    if ops and ops[0][0] == "conv" and ops[0][2]["ql"].kind == "conv":
        kind, i, d = ops[0]
        C, KS = d["c"], d["ks"]
        if (d["stride"] == 1 and KS > 1 and KS * C <= 255
                and math.ceil(KS * C / P) < KS * math.ceil(C / P)):
            w = d["w"]
            d.update(w=np.transpose(w, (0, 3, 1, 2)).reshape(w.shape[0], KS * C, w.shape[2], 1),
                     c=KS * C, ks=1, w_=d["f"], padc=0)
            input_pack = (KS, d["pad"], d["f"])
    for kind, i, d in ops:
        d.setdefault("padc", d.get("pad", 0))

    # -- fused max pooling: a conv directly followed by a k x k, stride-k pool
    fused = set()
    for n in range(len(ops) - 1):
        kind, i, d = ops[n]
        nk, ni, nd = ops[n + 1]
        if (kind == "conv" and nk == "maxpool" and nd["k"] == nd["stride"] and nd["k"] <= 15
                and nd["e"] == d["e"] // nd["k"] and nd["f"] == d["f"] // nd["k"]):
            d["pk"] = nd["k"]
            fused.add(n + 1)
    for kind, i, d in ops:
        d.setdefault("pk", 1)

    # -- activation buffers ------------------------------------------------------
    B = config.batch

    def words(shp):
        c, h, w = shp
        return h * w * math.ceil(c / P)

    in_words = words(chw(qnet.input_shape))
    if input_pack is not None:
        d0 = ops[0][2]
        in_words = words((d0["c"], d0["h"], d0["w_"]))
    for n, (kind, i, d) in enumerate(ops):
        if kind in ("conv", "maxpool") and n not in fused:
            out_c = d.get("m", d["c"])
            oe, of = d["e"] // d["pk"], d["f"] // d["pk"]
            need = B * max(words((out_c, oe, of)), words((d["c"], d["h"], d["w_"])))
            if need > config.act_depth:
                fail(i, qnet.layers[i], f"feature maps of {B} sample(s) need {need} words; an "
                                        f"activation bank holds {config.act_depth}")
    if B * in_words > config.act_depth:
        raise CompileError(f"{where}: input of {B} sample(s) needs {B * in_words} words; an "
                           f"activation bank holds {config.act_depth}")

    # -- how each conv / fc maps: the fc of a batch is a 1 x 1 CONV over a
    # 1 x B map whose pixels are the samples' flattened inputs
    for kind, i, d in ops:
        if kind != "conv":
            continue
        d["cg"] = math.ceil(d["c"] / P)
        d["ng"] = math.ceil(d["m"] / P)
        # fc: a 1 x 1 CONV over the samples (each sample's input, H*W*CG words,
        # is one pixel), else (more words than the cg field holds) a CONV whose
        # kernel covers the map, one sample at a time
        cgf = d["h"] * d["w_"] * d["cg"]
        d["batched"] = d["ql"].kind == "fc" and cgf <= 255
        if d["ql"].kind == "fc" and not d["batched"]:
            if B > 1:
                fail(i, qnet.layers[i], f"a batched fully connected layer reads {cgf} words per "
                                        "sample; the instruction's cg field holds 255 (use --batch 1)")
            if max(d["kr"], d["ks"]) > 15:
                fail(i, qnet.layers[i], f"a fully connected layer over a {d['h']} x {d['w_']} map "
                                        f"of {cgf} words: the kernel field holds 15 x 15 and the "
                                        "cg field 255 words")
        d["cgf"] = cgf
        d["kt"] = d["kr"] * d["ks"] * d["cg"]
        pix = (1 if d["batched"] else d["f"] // d["pk"] * d["pk"] ** 2)
        if pix > config.acc_depth:
            what = ("a row of output pixels" if not d["batched"] else "a sample")
            fail(i, qnet.layers[i], f"{what} needs {pix} accumulator words; the accumulator "
                                    f"holds {config.acc_depth}")

    # -- weight blocks -------------------------------------------------------------
    blocks = []         # dict(layer op index, groups, wwords bytes, params bytes)
    for oi, (kind, i, d) in enumerate(ops):
        if kind != "conv":
            continue
        cg, kt, ng = d["cg"], d["kt"], d["ng"]
        per_group = kt * P
        if per_group > config.wbuf_depth:
            fail(i, qnet.layers[i], f"one output group needs {per_group} weight words; a weight "
                                    f"bank holds {config.wbuf_depth}")
        fit = min(config.wbuf_depth // per_group, config.pgroups)
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

    # where each block lives: two banks in turn (streamed), or (resident)
    # packed into the two banks for good
    resident = config.resident
    if resident:
        used = [[0, 0], [0, 0]]     # per bank: weight words, parameter groups
        for b in blocks:
            nw, npg = len(b["w"]) // P, len(b["groups"])
            for bank in (0, 1):
                if (used[bank][0] + nw <= config.wbuf_depth
                        and used[bank][1] + npg <= config.pgroups):
                    b.update(bank=bank, w_base=used[bank][0], p_base=used[bank][1])
                    used[bank][0] += nw
                    used[bank][1] += npg
                    break
            else:
                raise CompileError(
                    f"{where}: resident weights: {sum(len(x['w']) for x in blocks) // P} weight words "
                    f"and {sum(len(x['groups']) for x in blocks)} parameter groups do not fit two "
                    f"banks of {config.wbuf_depth} words and {config.pgroups} groups "
                    "(use resident = false or larger buffers)")
    else:
        for bi, b in enumerate(blocks):
            b.update(bank=bi % 2, w_base=0, p_base=0)

    # -- DRAM layout -------------------------------------------------------------------
    prog = Program(config, qnet.name, [], input_shape=tuple(qnet.input_shape),
                   output_shape=tuple(qnet.layers[-1].out_shape) if qnet.layers
                   else tuple(qnet.input_shape))
    out_words = words(chw(prog.output_shape))
    prog.input_words, prog.output_words = in_words, out_words
    prog.batch = B
    prog.input_pack = input_pack

    # -- instructions ----------------------------------------------------------------------
    ins = []
    pre = []            # resident: the program that loads the weights, run once

    def load_block(bi, into):
        b = blocks[bi]
        into.append(_instr(op=Op.LOAD_BLOCK, wbank=b["bank"], layer=ops[b["op"]][1],
                           resident=int(resident), dram_addr=bi, words=len(b["w"]) // P,
                           w_off=b["w_base"], p_off=b["p_base"],
                           p_dram_addr=bi, p_words=len(b["p"]) // 16))

    ins.append(_instr(op=Op.LOAD_ACT, bank_in=0, in_base=0, words=B * in_words, dram_addr=-1))
    if resident:
        for bi in range(len(blocks)):
            load_block(bi, pre)
        pre.append(_instr(op=Op.END))
    else:
        for bi in range(min(2, len(blocks))):
            load_block(bi, ins)
    bank = 0
    next_block = 0
    for oi, (kind, i, d) in enumerate(ops):
        ql = d["ql"]
        first = len(ins)
        if oi in fused:
            prog.layers.append(LayerInfo(ql.name, "maxpool", first, 0, 0, 0, 0,
                                         tuple(ql.out_shape)))
            continue
        if kind == "conv":
            tiles = []
            pk = d["pk"]
            oe, of = d["e"] // pk, d["f"] // pk
            ng = d["ng"]
            in_map = words((d["c"], d["h"], d["w_"]))
            out_map = oe * of * ng
            if d["batched"]:
                cgf = d["cgf"]
                geo = dict(stride=1, pad=0, kr=1, ks=1, h=1, w=B, cg=cgf, e=1,
                           a_col=cgf, a_row=B * cgf, a_line=B * cgf, a_pcol=cgf,
                           a_prow=B * cgf, pks=1, pk=1, ih0=0)
                per = max(1, min(B, config.acc_depth))
                spans = [(0, b0, min(per, B - b0)) for b0 in range(0, B, per)]
                kt = cgf
            else:
                st, cgw = d["stride"], d["cg"]
                geo = dict(stride=st, pad=d["padc"], kr=d["kr"], ks=d["ks"], h=d["h"], w=d["w_"],
                           cg=cgw, f=of, a_col=st * cgw, a_row=st * d["w_"] * cgw,
                           a_line=d["w_"] * cgw, pk=pk, pks=pk * st,
                           a_pcol=pk * st * cgw, a_prow=pk * st * d["w_"] * cgw)
                rows = max(1, config.acc_depth // (of * pk * pk))
                spans = [(b, r0, min(rows, oe - r0)) for b in range(B)
                         for r0 in range(0, oe, rows)]
                kt = d["kt"]
            first_conv = True
            while next_block < len(blocks) and blocks[next_block]["op"] == oi:
                b = blocks[next_block]
                for n, g in enumerate(b["groups"]):
                    for si, (smp, r0, cnt) in enumerate(spans):
                        last = n == len(b["groups"]) - 1 and si == len(spans) - 1
                        if d["batched"]:
                            t = dict(geo, f=cnt, a_start=r0 * d["cgf"], out_base=r0 * ng)
                            pixels = cnt
                        else:
                            e0 = r0 * pk
                            ih0 = e0 * d["stride"] - d["pad"]
                            t = dict(geo, e=cnt, ih0=ih0,
                                     a_start=smp * in_map + ih0 * d["w_"] * d["cg"]
                                     - d["padc"] * d["cg"],
                                     out_base=smp * out_map + r0 * of * ng)
                            pixels = cnt * of * pk * pk
                        ins.append(_instr(
                            op=Op.CONV, layer=i, bank_in=bank, bank_out=1 - bank,
                            dep=int(first_conv), resident=int(resident),
                            wbank=b["bank"], release=int(last and not resident),
                            ng=ng, ngi=g, out_zp=ql.out_zp, qmin=ql.qmin, qmax=ql.qmax,
                            in_base=0, w_off=b["w_base"] + n * kt * P,
                            p_off=b["p_base"] + n, kt=kt, pixels=pixels, w_words=kt * P, **t))
                        first_conv = False
                        tiles.append(Tile(kt, pixels))
                if not resident and next_block + 2 < len(blocks):
                    load_block(next_block + 2, ins)
                next_block += 1
            count = sum(1 for x in ins[first:] if x["op"] == Op.CONV)
            macs = B * d["m"] * d["e"] * d["f"] * d["c"] * d["kr"] * d["ks"]
            prog.layers.append(LayerInfo(ql.name, ql.kind, first, count, macs,
                                         P * P * sum(t.kt * t.m for t in tiles),
                                         config.layer_cycles(tiles), tuple(ql.out_shape)))
            bank = 1 - bank
        elif kind == "maxpool":
            cgw = math.ceil(d["c"] / P)
            in_map = words((d["c"], d["h"], d["w_"]))
            out_map = words((d["c"], d["e"], d["f"]))
            for smp in range(B):
                ins.append(_instr(op=Op.MAXPOOL, layer=i, bank_in=bank, bank_out=1 - bank, dep=1,
                                  stride=d["stride"], kr=d["k"], ks=d["k"], h=d["h"], w=d["w_"],
                                  cg=cgw, e=d["e"], f=d["f"], in_base=smp * in_map,
                                  out_base=smp * out_map, pk=1,
                                  a_col=d["stride"] * cgw, a_row=d["stride"] * d["w_"] * cgw,
                                  a_line=d["w_"] * cgw))
            prog.layers.append(LayerInfo(ql.name, "maxpool", first, B, 0, 0,
                                         B * config.maxpool_cycles(d["e"], d["f"], cgw, d["k"]),
                                         tuple(ql.out_shape)))
            bank = 1 - bank
        else:
            prog.layers.append(LayerInfo(ql.name, kind, first, 0, 0, 0, 0, tuple(ql.out_shape)))
    ins.append(_instr(op=Op.STORE_ACT, bank_in=bank, in_base=0, words=B * out_words,
                      dram_addr=-2))
    ins.append(_instr(op=Op.END))
    if len(ins) > config.imem_depth:
        raise CompileError(f"{where}: the program has {len(ins)} instructions; the instruction "
                           f"memory holds {config.imem_depth} (imem_depth)")
    if len(pre) > config.imem_depth:
        raise CompileError(f"{where}: the weight-loading program has {len(pre)} instructions; "
                           f"the instruction memory holds {config.imem_depth} (imem_depth)")

    # every value must fit its field (a map, batch or stride too large for
    # the encoding is refused here, not wrapped by the packer)
    names = {i: ql.name for i, ql in enumerate(qnet.layers)}
    for x in ins + pre:
        for name, v in x.items():
            lo, hi = FIELD_RANGES[name]
            if not lo <= v <= hi and name not in ("dram_addr", "p_dram_addr"):
                li = x["layer"]
                raise CompileError(
                    f"{where}: layers[{li}] ({names.get(li, '?')}): {Op.NAMES[x['op']]} field "
                    f"{name} = {v} is outside its range {lo}..{hi} (a smaller map, batch or "
                    "buffer fits)")

    # DRAM: programs, input, output, then the blocks; addresses patched in
    addr = 0
    prog.regions["program"] = (addr, len(ins) * INSTRUCTION_BITS // 8)
    addr = _align(addr + len(ins) * INSTRUCTION_BITS // 8)
    if pre:
        prog.regions["preload"] = (addr, len(pre) * INSTRUCTION_BITS // 8)
        addr = _align(addr + len(pre) * INSTRUCTION_BITS // 8)
    prog.regions["input"] = (addr, B * in_words * P)
    addr = _align(addr + B * in_words * P)
    prog.regions["output"] = (addr, B * out_words * P)
    addr = _align(addr + B * out_words * P)
    for bi, b in enumerate(blocks):
        for part in ("w", "p"):
            name = f"block{bi}.{part}"
            prog.regions[name] = (addr, len(b[part]))
            prog.blobs[name] = b[part]
            addr = _align(addr + len(b[part]))
    for x in ins + pre:
        if x["op"] == Op.LOAD_BLOCK:
            bi = x["dram_addr"]
            x["dram_addr"] = prog.regions[f"block{bi}.w"][0]
            x["p_dram_addr"] = prog.regions[f"block{bi}.p"][0]
        elif x["op"] == Op.LOAD_ACT:
            x["dram_addr"] = prog.regions["input"][0]
        elif x["op"] == Op.STORE_ACT:
            x["dram_addr"] = prog.regions["output"][0]
    prog.instructions = ins
    prog.preload = pre
    prog.blobs["program"] = prog.program_bytes()
    if pre:
        prog.blobs["preload"] = prog.program_bytes(pre)
    return prog
