"""Fixed-point FC layer with threshold pruning, bit-exact to hw.minerva.

Integer semantics (the same words as :class:`nnloom.hw.minerva.MinervaLanes`):

* activations ``x`` are ``a_width``-bit codes (Qa_int.a_frac), weights
  ``w_width``-bit codes (Qw_int.w_frac), both two's complement;
* pruning: input ``i`` is skipped when ``|x[i]| < threshold``; a skipped
  MAC adds nothing, so ``acc[j] = sum over kept i of x[i] * W[j, i]``,
  exact (the accumulator cannot overflow, see ``MinervaConfig.validate``);
* output activation: ``min((max(acc, 0) + 2**(w_frac-1)) >> w_frac,
  2**(a_width-1) - 1)``, i.e. ReLU, round half up (on non-negative values:
  half away from zero), saturate; this is
  :func:`nnloom.gen.frontend.fixedpoint.requantize` with ``"half_up"``;
* skipped MACs: ``lanes`` per skipped input per output group.

:class:`LaneModel` adds the weight SRAMs as the lanes see them: the memory
image the ``weight`` beats write, the Razor injector of each lane
(:class:`nnloom.sim.golden.razor.Injector`, drawn per write in persistent mode and
per non-skipped read in transient mode, in the hardware's order), masking and
the per-lane counters.
"""

from __future__ import annotations

import numpy as np

from nnloom.gen.frontend import QFormat, requantize
from nnloom.hw.minerva import MinervaConfig
from nnloom.sim.golden.razor import Injector, mask, masked_bits, to_signed

__all__ = ["fc_layer", "relu_requant", "weight_beats", "LaneModel"]


def relu_requant(acc, cfg: MinervaConfig):
    """Output activation codes of accumulators (ReLU, half up, saturate)."""
    acc_fmt = QFormat(1, cfg.a_frac + cfg.w_frac)  # only the fraction matters here
    return requantize(np.maximum(np.asarray(acc, dtype=np.int64), 0), acc_fmt,
                      QFormat(cfg.a_int, cfg.a_frac), "half_up")


def fc_layer(x, w, threshold: int, cfg: MinervaConfig):
    """One pruned FC layer on a batch.

    ``x``: (B, n_in) activation codes; ``w``: (n_out, n_in) weight codes.
    Returns ``(acc, act, skipped)``: (B, n_out) accumulators, (B, n_out)
    output activations and (B,) skipped-MAC counts.
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.int64))
    w = np.asarray(w, dtype=np.int64)
    keep = np.abs(x) >= threshold
    acc = (x * keep) @ w.T
    skipped = (~keep).sum(axis=1) * cfg.groups(w.shape[0]) * cfg.lanes
    return acc, relu_requant(acc, cfg), skipped


def weight_beats(cfg: MinervaConfig, w) -> list[dict]:
    """``weight`` stream beats writing ``w`` (n_out x n_in codes): one beat per
    (group, input), every lane's weight; lanes past ``n_out`` get 0."""
    w = np.asarray(w, dtype=np.int64)
    n_out, n_in = w.shape
    beats = []
    for g in range(cfg.groups(n_out)):
        for i in range(n_in):
            row = [int(w[j, i]) if (j := g * cfg.lanes + lane) < n_out else 0
                   for lane in range(cfg.lanes)]
            beats.append({"addr": cfg.weight_address(g * cfg.lanes, i)[1], "data": row})
    return beats


class LaneModel:
    """Transaction-level model of the lanes and their Razor SRAMs."""

    def __init__(self, cfg: MinervaConfig):
        self.cfg = cfg
        W = cfg.w_width
        self.mem = np.zeros((cfg.lanes, cfg.depth), dtype=np.int64)   # bit patterns
        self.fmap = np.zeros((cfg.lanes, cfg.depth), dtype=np.int64)
        self.inj = [Injector(cfg.razor_config(lane)) if cfg.injector != "off" else None
                    for lane in range(cfg.lanes)]
        self.reads = np.zeros(cfg.lanes, dtype=np.int64)
        self.faulty = np.zeros(cfg.lanes, dtype=np.int64)
        self.masked = np.zeros(cfg.lanes, dtype=np.int64)
        self.skipped = 0
        self._full = (1 << W) - 1

    def write(self, beats, inj_en: bool = False, rate: int = 0):
        for beat in beats:
            for lane, v in enumerate(beat["data"]):
                self.mem[lane, beat["addr"]] = v & self._full
                if self.cfg.injector == "persistent":
                    self.fmap[lane, beat["addr"]] = self.inj[lane].draw(rate) if inj_en else 0

    def layer(self, x, n_out: int, threshold: int, mode: str, inj_en: bool = False,
              rate: int = 0):
        """Run one input vector ``x`` (n_in codes): ``(acc, act)`` of the
        ``groups * lanes`` outputs, as the result beats carry them."""
        cfg = self.cfg
        W = cfg.w_width
        x = np.asarray(x, dtype=np.int64)
        n_in = len(x)
        keep = np.flatnonzero(np.abs(x) >= threshold)
        groups = cfg.groups(n_out)
        weff = np.zeros((groups * cfg.lanes, n_in), dtype=np.int64)
        for lane in range(cfg.lanes):
            for g in range(groups):
                addrs = g * cfg.max_inputs + keep
                words = self.mem[lane, addrs]
                if cfg.injector == "persistent":
                    inj = self.fmap[lane, addrs]
                elif cfg.injector == "transient" and inj_en:
                    inj = np.array([self.inj[lane].draw(rate) for _ in addrs], dtype=np.int64)
                else:
                    inj = np.zeros_like(words)
                read = mask(words ^ inj, inj, W, mode)
                weff[g * cfg.lanes + lane, keep] = to_signed(read, W)
                self.reads[lane] += len(addrs)
                self.faulty[lane] += int(np.count_nonzero(inj))
                self.masked[lane] += int(masked_bits(inj, W, mode).sum())
        acc, act, skipped = fc_layer(x[None, :], weff, threshold, cfg)
        self.skipped += int(skipped[0])
        return acc[0], act[0]
