"""Row-stationary mapping of a convolution layer onto the Eyeriss PE array.

:func:`choose_mapping` picks ``p`` (filters per PE) and ``q`` (channels per
PE) for a layer on a given :class:`~nnloom.hw.eyeriss_pe.EyerissConfig`, with the
replication (``rv = H // R`` copies of the R x E PE set stacked in the
array's rows, each on its own q channels) and the folding (E cut into strips
of W columns; R > H filter rows in row passes of H; channels in passes of
``rv*q``; filters in groups of ``p``)
that :class:`~nnloom.hw.eyeriss_array.EyerissArray` runs.  :func:`layer_fields`
gives the ``layer`` port's values, :func:`input_words` the words of the
``inp`` stream (the schedule's data order), and :func:`predict` the cycles
and every hardware counter, exactly (data-dependent counts such as gated
MACs need the ifmap; without it the ifmap is taken to have no zeros).

A layer that cannot be mapped raises :class:`MappingError` naming the layer
and the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nnloom.gen.perf import EYERISS_NORMALIZED, CostTable
from nnloom.hw.eyeriss_pe import EyerissConfig
from nnloom.hw.errors import InputError

__all__ = ["ConvLayer", "Mapping", "MappingError", "choose_mapping", "layer_fields",
           "input_words", "predict", "Prediction", "gating_savings"]


class MappingError(InputError):
    """A layer that does not fit the array; the message names the layer and limit."""


@dataclass(frozen=True)
class ConvLayer:
    """A convolution layer: ifmap C x H x W, M filters of C x R x S, stride, padding."""

    name: str
    h: int
    w: int
    c: int
    m: int
    r: int
    s: int
    stride: int = 1
    padding: int = 0

    @property
    def hp(self) -> int:
        return self.h + 2 * self.padding

    @property
    def wp(self) -> int:
        return self.w + 2 * self.padding

    @property
    def e(self) -> int:
        """Output height (0 if the filter does not fit)."""
        return max(0, (self.hp - self.r) // self.stride + 1) if self.hp >= self.r else 0

    @property
    def f(self) -> int:
        return max(0, (self.wp - self.s) // self.stride + 1) if self.wp >= self.s else 0

    @property
    def macs(self) -> int:
        return self.m * self.c * self.r * self.s * self.e * self.f


@dataclass(frozen=True)
class Mapping:
    """A row-stationary mapping (see the module docstring)."""

    p: int
    q: int
    rv: int           # PE-set replicas stacked in the array rows
    n_mgroup: int     # M / p
    n_estrip: int     # ceil(E / W)
    n_cpass: int      # ceil(C / (rv*q))
    a_last: int       # replicas used in the last channel pass
    wa_last: int      # columns used in the last strip
    rc: int = 1       # filter rows per row pass: min(R, H)
    n_rpass: int = 1  # ceil(R / rc)
    r_last: int = 1   # filter rows in the last row pass

    def replicas(self, cp: int) -> int:
        return self.a_last if cp == self.n_cpass - 1 else self.rv

    def rows(self, rp: int) -> int:
        return self.r_last if rp == self.n_rpass - 1 else self.rc


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _check_layer(cfg: EyerissConfig, layer: ConvLayer, check_glb: bool = True) -> None:
    name = layer.name
    for field in ("h", "w", "c", "m", "r", "s", "stride"):
        if getattr(layer, field) < 1:
            raise MappingError(f"layer {name}: {field} must be at least 1, got {getattr(layer, field)}")
    if layer.padding < 0:
        raise MappingError(f"layer {name}: padding must be >= 0, got {layer.padding}")
    if layer.r > layer.hp or layer.s > layer.wp:
        raise MappingError(f"layer {name}: filter {layer.r}x{layer.s} is larger than the padded "
                           f"input {layer.hp}x{layer.wp}")
    limit = (1 << cfg.dim_width) - 1
    for field, v in (("c", layer.c), ("m", layer.m), ("hp", layer.hp), ("wp", layer.wp),
                     ("e", layer.e), ("f", layer.f), ("s", layer.s), ("stride", layer.stride)):
        if v > limit:
            raise MappingError(f"layer {name}: {field} = {v} exceeds the {cfg.dim_width}-bit "
                               f"layer fields (at most {limit})")
    reach = layer.stride * (cfg.cols - 1) + min(layer.r, cfg.rows) - 1  # largest ifmap-row tag
    if reach > limit:
        raise MappingError(f"layer {name}: stride {layer.stride} on {cfg.cols} columns needs ifmap-row "
                           f"tags up to {reach}, the {cfg.dim_width}-bit fields hold {limit}")
    words = layer.c * layer.hp * layer.wp
    if check_glb and words > cfg.glb_ifmap:
        raise MappingError(f"layer {name}: the padded ifmap needs {words} global-buffer words, "
                           f"glb_ifmap is {cfg.glb_ifmap}")
    outs = layer.m * layer.e * layer.f
    if check_glb and outs > cfg.glb_psum:
        raise MappingError(f"layer {name}: the psums need {outs} global-buffer words, "
                           f"glb_psum is {cfg.glb_psum}")


def candidates(cfg: EyerissConfig, layer: ConvLayer, *, check_glb: bool = True) -> list[Mapping]:
    """Every (p, q) the scratchpads allow: p | M, q | C, p <= psum_spad,
    q*S <= ifmap_spad, p*q*S <= filter_spad.  ``check_glb=False`` (the
    analytical model of layers larger than the RTL's buffer) skips the
    global-buffer size checks."""
    _check_layer(cfg, layer, check_glb)
    rc = min(layer.r, cfg.rows)
    rv = cfg.rows // rc
    n_rpass = math.ceil(layer.r / rc)
    e = layer.e
    out = []
    for q in _divisors(layer.c):
        if q * layer.s > cfg.ifmap_spad:
            continue
        for p in _divisors(layer.m):
            if p > cfg.psum_spad or p * q * layer.s > cfg.filter_spad:
                continue
            groups = layer.c // q
            n_cpass = math.ceil(groups / rv)
            out.append(Mapping(p, q, rv, layer.m // p, math.ceil(e / cfg.cols), n_cpass,
                               groups - (n_cpass - 1) * rv, e - (math.ceil(e / cfg.cols) - 1) * cfg.cols,
                               rc, n_rpass, layer.r - (n_rpass - 1) * rc))
    if not out:
        raise MappingError(
            f"layer {layer.name}: scratchpads too small for any p and q: S = {layer.s} needs "
            f"ifmap_spad >= S (have {cfg.ifmap_spad}) and filter_spad >= S (have {cfg.filter_spad}), "
            f"psum_spad >= 1 (have {cfg.psum_spad})")
    limit = (1 << cfg.dim_width) - 1
    fits = [mp for mp in out if max(mp.n_mgroup, mp.n_cpass, mp.n_rpass, mp.p, mp.q) <= limit]
    if not fits:
        raise MappingError(f"layer {layer.name}: every mapping needs more than {limit} filter groups "
                           f"or channel passes ({cfg.dim_width}-bit layer fields)")
    return fits


def choose_mapping(cfg: EyerissConfig, layer: ConvLayer, *,
                   costs: CostTable = EYERISS_NORMALIZED, check_glb: bool = True) -> Mapping:
    """The candidate with the lowest modelled energy (ties: fewer cycles)."""
    best = None
    for mp in candidates(cfg, layer, check_glb=check_glb):
        pred = predict(cfg, layer, mp)
        key = (pred.energy(costs), pred.cycles)
        if best is None or key < best[0]:
            best = (key, mp)
    return best[1]


def layer_fields(cfg: EyerissConfig, layer: ConvLayer, mp: Mapping) -> dict:
    """Values of the array's ``layer`` port (``config.layer_layout``)."""
    rc, u = mp.rc, layer.stride
    row_k = [i // rc if i < mp.rv * rc else mp.rv for i in range(cfg.rows)]
    row_r = [i % rc if i < mp.rv * rc else 0 for i in range(cfg.rows)]
    return {
        "c": layer.c, "hp": layer.hp, "wp": layer.wp, "m": layer.m, "e": layer.e, "f": layer.f,
        "s": layer.s, "u": u, "p": mp.p, "q": mp.q,
        "n_mgroup": mp.n_mgroup, "n_estrip": mp.n_estrip, "n_rpass": mp.n_rpass,
        "n_cpass": mp.n_cpass, "rv": mp.rv, "a_last": mp.a_last, "wa_last": mp.wa_last,
        "rc": rc, "r_last": mp.r_last,
        "rstart": max(0, rc - u), "rstart_last": max(0, mp.r_last - u), "nnew": min(u, layer.s),
        "row_k": row_k, "row_r": row_r, "col_y": [u * j for j in range(cfg.cols)],
    }


def padded(layer: ConvLayer, x) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    if x.shape != (layer.c, layer.h, layer.w):
        raise ValueError(f"layer {layer.name}: ifmap shape {x.shape}, expected "
                         f"{(layer.c, layer.h, layer.w)}")
    pd = layer.padding
    return np.pad(x, ((0, 0), (pd, pd), (pd, pd)))


def input_words(cfg: EyerissConfig, layer: ConvLayer, mp: Mapping, x, w) -> list[int]:
    """The ``inp`` stream: the padded ifmap (C, Hp, Wp row-major), then for each
    pass (filter group, strip, row pass, channel pass) the weights of each
    active PE row (replica k, filter row r0 + r) in spad order (channel, s,
    filter)."""
    w = np.asarray(w, dtype=np.int64)
    if w.shape != (layer.m, layer.c, layer.r, layer.s):
        raise ValueError(f"layer {layer.name}: weight shape {w.shape}, expected "
                         f"{(layer.m, layer.c, layer.r, layer.s)}")
    words = [int(v) for v in padded(layer, x).ravel()]
    for mg in range(mp.n_mgroup):
        m0 = mg * mp.p
        for _ in range(mp.n_estrip):
            for rp in range(mp.n_rpass):
                for cp in range(mp.n_cpass):
                    c0 = cp * mp.rv * mp.q
                    for k in range(mp.replicas(cp)):
                        cs = c0 + k * mp.q
                        for r in range(rp * mp.rc, rp * mp.rc + mp.rows(rp)):
                            blk = w[m0:m0 + mp.p, cs:cs + mp.q, r, :]      # (p, q, S)
                            words += [int(v) for v in blk.transpose(1, 2, 0).ravel()]
    return words


@dataclass
class Prediction:
    """Cycles and access counts of one layer on the array (see :func:`predict`).

    ``counters`` has the hardware counters (``config.counter_names``);
    ``dram`` the off-chip words (ifmap in, weights in, psums out), which the
    array does not count itself; ``total_macs`` counts gated MACs too.
    """

    cycles: int
    counters: dict
    dram: int
    total_macs: int
    pes: int
    mac_steps: int

    def accesses(self) -> dict:
        """Word accesses per storage level (rf, array, buffer, dram)."""
        c = self.counters
        return {"rf": c["spad_reads"] + c["spad_writes"], "array": c["array"],
                "buffer": c["glb_reads"] + c["glb_writes"], "dram": self.dram}

    def energy(self, costs: CostTable = EYERISS_NORMALIZED) -> float:
        """Energy of the layer: the MACs performed (gated ones are free) and
        every access, at the table's per-access costs."""
        return costs.energy(self.counters["macs"], self.accesses())

    def energy_per_mac(self, costs: CostTable = EYERISS_NORMALIZED) -> float:
        return self.energy(costs) / self.total_macs

    def per_mac(self) -> dict:
        return {lvl: n / self.total_macs for lvl, n in self.accesses().items()}

    @property
    def utilization(self) -> float:
        """Busy PE cycles (one MAC step each, gated or not) / (PEs x cycles)."""
        return self.mac_steps / (self.pes * self.cycles)


def _zero_counts(layer: ConvLayer, q: int, x) -> tuple[int, int]:
    """Zeros among the ifmap words the PEs multiply, over every (c, r, s, e, x)
    (each once per filter), and among those with c % q == 0 and s == 0."""
    if x is None:
        return 0, 0
    zp = padded(layer, x) == 0
    u, e, f = layer.stride, layer.e, layer.f
    total = first = 0
    for r in range(layer.r):
        for s in range(layer.s):
            win = zp[:, r:r + u * (e - 1) + 1:u, s:s + u * (f - 1) + 1:u]
            per_c = win.sum(axis=(1, 2))
            total += int(per_c.sum())
            if s == 0:
                first += int(per_c[::q].sum())
    return total, first


def predict(cfg: EyerissConfig, layer: ConvLayer, mp: Mapping, x=None) -> Prediction:
    """Exact cycles (full-rate input, always-ready output) and counters of
    ``layer`` under mapping ``mp``; ``x`` (C x H x W) gives the zero counts.

    Cycles are counted as a timeline (cycle indices from the first busy
    cycle), because the write-back of each window overlaps what follows."""
    R, S, U, E, F = layer.r, layer.s, layer.stride, layer.e, layer.f
    p, q = mp.p, mp.q
    pqs = p * q * S
    nnew = min(U, S)
    cyc = layer.c * layer.hp * layer.wp                     # LOAD
    glb_r = 0
    glb_w = layer.c * layer.hp * layer.wp
    spad_r = spad_w = array = 0
    filt_words = 0
    wb_free = 0        # first cycle the write-back engine is idle
    for _ in range(mp.n_mgroup):
        for es in range(mp.n_estrip):
            wa = mp.wa_last if es == mp.n_estrip - 1 else cfg.cols
            for rp, cp in ((rp, cp) for rp in range(mp.n_rpass) for cp in range(mp.n_cpass)):
                a, rr = mp.replicas(cp), mp.rows(rp)
                rows_unique = rr + (wa - 1) * (rr - max(0, rr - U))
                words = a * rr * pqs                         # FILT
                filt_words += words
                cyc += words
                spad_w += words * wa
                array += words * wa
                for xi in range(F):
                    nn = S if xi == 0 else nnew
                    items = a * q * rows_unique * nn         # DELIV
                    cyc += items
                    glb_r += items
                    spad_w += a * rr * wa * q * nn           # multicast receivers
                    array += a * rr * wa * q * nn
                    # MAC: starts once the previous write-back has read its psums
                    cyc = max(cyc, wb_free) + 1 + pqs + cfg.mac_latency
                    wb = p * wa                              # write-back, beside what follows
                    wb_free = cyc + wb
                    cyc += 1                                 # NEXT
                    glb_w += wb
                    glb_r += wb if (cp or rp) else 0
                    spad_r += wb * a * rr
                    array += wb * (a * rr - 1)
    outs = layer.m * E * F
    cyc = max(cyc, wb_free + 1) + outs + 1                   # OUT, after the last write
    glb_r += outs
    # PE events: every (c, r, e, x, s) is one PE step per filter.
    steps = layer.c * R * E * F * S
    zeros, zeros_first = _zero_counts(layer, q, x)
    firsts = (layer.c // q) * R * E * F
    nz = steps - zeros
    nz_first = firsts - zeros_first
    macs = layer.m * nz
    gated = layer.m * zeros
    ird = mp.n_mgroup * steps
    prd = layer.m * (nz - nz_first)
    pwr = layer.m * (nz + zeros_first)
    counters = {
        "macs": macs, "gated": gated,
        "spad_reads": spad_r + ird + macs + prd,
        "spad_writes": spad_w + pwr,
        "array": array, "glb_reads": glb_r, "glb_writes": glb_w,
    }
    dram = layer.c * layer.hp * layer.wp + filt_words + outs
    return Prediction(cyc, counters, dram, layer.macs, cfg.rows * cfg.cols, layer.m * steps)


def gating_savings(cfg: EyerissConfig, layer: ConvLayer, mp: Mapping, x,
                   costs: CostTable = EYERISS_NORMALIZED) -> tuple[int, float]:
    """Gated MACs on ifmap ``x`` and the energy zero gating saves: the energy of
    the same layer with every MAC, filter read and psum access performed
    (the counts for an ifmap without zeros) minus the energy with gating."""
    gated = predict(cfg, layer, mp, x)
    dense = predict(cfg, layer, mp)
    return gated.counters["gated"], dense.energy(costs) - gated.energy(costs)
