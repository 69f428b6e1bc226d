"""EIE cluster: ``pes`` PEs, the LNZD tree and the central control unit (CCU).

Modes (``busy`` tells them apart):

I/O (idle)
    ``io`` beats (:attr:`EIEConfig.io_layout`) write pointers, 64-bit entry
    rows, codebook entries (to every PE) and source activations, or read a
    source activation (``we`` = 0), answered on ``resp``; a read is accepted
    only when ``resp`` has room, so a stalled reader loses nothing.
    Activation ``i`` of a vector lives in PE ``i % pes`` at local address
    ``i // pes`` (rows are distributed the same way, so a layer's outputs are
    the next layer's inputs in place).
Compute
    A ``cmd`` beat (:attr:`EIEConfig.cmd_layout`) starts a layer.  Every cycle
    the LNZD root's activation, if any, is broadcast to all PEs' queues when
    every queue has room; zeros are never broadcast.  When all leaves have
    finished scanning, the tree is empty and no PE is busy, the CCU writes
    out ``ceil(out_len / pes)`` rows in every PE
    (:meth:`EIEConfig.writeout_cycles`), swaps source and destination and
    returns to I/O mode.  ``cycles`` counts the layer's cycles (``busy``
    high), the figure :func:`nnloom.gen.perf.eie.simulate_layer` predicts.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .eie_config import TARGET_CODEBOOK, EIEConfig, bits_for
from .eie_pe import EIEPE
from .lnzd import LNZDTree

__all__ = ["EIEConfig", "EIECluster"]


class EIECluster(wiring.Component):
    """Members: ``io`` (In stream), ``resp`` (Out stream of activations),
    ``cmd`` (In stream), ``busy`` (Out); counters of the last layer:
    ``cycles`` (Out, 32 bits, cycles with ``busy`` high) and ``broadcasts``
    (Out, 32 bits, activations broadcast: the input's non-zeros)."""

    def __init__(self, config: EIEConfig):
        if not isinstance(config, EIEConfig):
            raise TypeError(f"config must be an EIEConfig, not {config!r}")
        self.config = config
        super().__init__({
            "io": In(stream.Signature(config.io_layout)),
            "resp": Out(stream.Signature(config.act_shape)),
            "cmd": In(stream.Signature(config.cmd_layout)),
            "busy": Out(1), "cycles": Out(32), "broadcasts": Out(32),
        })

    def elaborate(self, platform):
        cfg = self.config
        N = cfg.pes
        m = Module()
        pes = [EIEPE(cfg, k) for k in range(N)]
        for k, pe in enumerate(pes):
            m.submodules[f"pe{k}"] = pe
        tree = m.submodules.lnzd = LNZDTree(cfg)

        layer = Signal(cfg.cmd_layout)
        IDLE, COMPUTE, WRITEOUT = 0, 1, 2
        state = Signal(range(3))
        m.d.comb += self.busy.eq(state != IDLE)

        # -- I/O mode ---------------------------------------------------------
        io = self.io.payload
        io_fire, cmd_fire = Signal(), Signal()
        m.d.comb += [
            self.io.ready.eq((state == IDLE) & (~self.resp.valid | self.resp.ready)),
            io_fire.eq(self.io.valid & self.io.ready),
            self.cmd.ready.eq(state == IDLE),
            cmd_fire.eq(self.cmd.valid & self.cmd.ready),
        ]
        with m.If(self.resp.ready):
            m.d.sync += self.resp.valid.eq(0)
        with m.If(io_fire & ~io.we):
            m.d.sync += self.resp.valid.eq(1)
            rdata = pes[0].act_rdata
            for k, pe in enumerate(pes[1:], 1):
                rdata = Mux(io.pe == k, pe.act_rdata, rdata)
            m.d.sync += self.resp.payload.eq(rdata)
        for k, pe in enumerate(pes):
            m.d.comb += [
                pe.io_we.eq(io_fire & io.we & ((io.pe == k) | (io.target == TARGET_CODEBOOK))),
                pe.io_target.eq(io.target), pe.io_addr.eq(io.addr), pe.io_data.eq(io.data),
            ]

        # -- compute mode -------------------------------------------------------
        room = 1
        all_done = tree.empty
        any_busy = 0
        for k, pe in enumerate(pes):
            room = room & pe.room
            all_done = all_done & pe.leaf_done
            any_busy = any_busy | pe.busy
            wiring.connect(m, pe.leaf, tree.leaf[k])
        bcast = Signal()
        m.d.comb += [bcast.eq((state == COMPUTE) & tree.out.valid & room),
                     tree.out.ready.eq(bcast)]

        wo_row = Signal(bits_for(cfg.act_depth - 1))
        wo_gidx = Signal(bits_for(cfg.max_len + N))  # wo_row * pes: rows below out_len
        wo_valid, swap = Signal(), Signal()
        m.d.comb += wo_valid.eq((state == WRITEOUT) & (wo_gidx < layer.out_len))
        for pe in pes:
            m.d.comb += [
                pe.start.eq(cmd_fire), pe.in_len.eq(layer.in_len),
                pe.ptr_base.eq(layer.ptr_base), pe.codebook.eq(layer.codebook),
                pe.relu.eq(layer.relu),
                pe.bcast_valid.eq(bcast), pe.bcast_value.eq(tree.out.payload.value),
                pe.bcast_index.eq(tree.out.payload.index),
                pe.wo_valid.eq(wo_valid), pe.wo_row.eq(wo_row), pe.swap.eq(swap),
            ]

        with m.If(state != IDLE):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(bcast):
            m.d.sync += self.broadcasts.eq(self.broadcasts + 1)
        # (If/Elif rather than Switch: a 2-bit state with 3 values would give
        # Verilator an incomplete case.)
        with m.If(state == IDLE):
            with m.If(cmd_fire):
                m.d.sync += [layer.eq(self.cmd.payload), state.eq(COMPUTE), self.cycles.eq(0),
                             self.broadcasts.eq(0)]
        with m.Elif(state == COMPUTE):
            with m.If(all_done & ~any_busy):
                m.d.sync += [state.eq(WRITEOUT), wo_row.eq(0), wo_gidx.eq(0)]
        with m.Else():  # WRITEOUT
            with m.If(wo_valid):
                m.d.sync += [wo_row.eq(wo_row + 1), wo_gidx.eq(wo_gidx + N)]
            with m.Else():  # the last row is written in this cycle
                m.d.comb += swap.eq(1)
                m.d.sync += state.eq(IDLE)
        return m
