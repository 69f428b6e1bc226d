"""Eyeriss row-stationary PE array with its global buffer and access counters.

``rows`` x ``cols`` (H x W) :class:`~hw.eyeriss_pe.EyerissPE` run a
convolution layer's R x E PE set in lock-step passes.  The layer and its
mapping arrive on the ``layer`` port (filled by :mod:`gen.eyeriss_map`):

* PE row i holds filter row ``r0 + row_r[i]`` of replica ``row_k[i]``; a
  replica is one copy of the PE set's rows working on its own ``q``
  channels, so ``rv = H // rc`` replicas cover ``rv*q`` channels per pass
  (replication); the column sums add them up with the filter rows.  A set
  with R > H rows is folded: ``rc = H`` filter rows per row pass (r0 = 0,
  rc, ...), the psums accumulated in the buffer like channel passes.
* PE column j computes output row ``e0 + j``; an output height E > W is cut
  into strips of W columns that run one after the other (folding).

Phases (each takes an exact number of cycles; :func:`nnloom.gen.compiler.eyeriss_map.predict`
lays them out as a timeline):

``LOAD``  the padded ifmap (C x Hp x Wp words, row-major) arrives on ``inp``
          and is written to the ifmap global buffer.
``FILT``  per pass (filter group m0, strip e0, row pass r0, channel group
          c0): the weights of every active PE row, ``p*q*S`` words each in
          spad order, arrive on ``inp`` (from DRAM) and are broadcast along
          the row.
then per output column x < F:
``DELIV`` every ifmap row that a PE of the set needs is read from the global
          buffer, the new window positions only (S at x = 0, min(U, S) after),
          and multicast to every PE whose tag (replica, U*j + r) matches: the
          diagonal reuse of the RS dataflow.  One word per cycle.
``MAC``   one cycle to start the PEs, then ``p*q*S + mac_latency`` cycles;
          the start waits until the write-back of the previous window has
          read every psum.
``NEXT``  one cycle to step x or the pass counters.
``OUT``   the M x E x F psums leave on ``result`` in that order, once the
          last write-back is written.

Write-back (beside the phases above, from the end of each MAC phase): for
each filter f < p and column j, one per cycle, the column's psums summed up
the PE column, plus the psum from the global buffer (not on the first row
and channel pass), are written to the psum buffer.  It overlaps ``NEXT``,
``DELIV`` and ``FILT`` of what follows.

Counters (``cnt_*``, cleared on ``start``): MACs, gated MACs, scratchpad
reads and writes, inter-PE (array) transfers, global-buffer reads and writes,
and ``cnt_cycles`` (cycles with ``busy`` high).  Integer semantics: those of
the PE; psums wrap at ``acc_width`` bits in the PE, the column sum and the
buffer.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .eyeriss_pe import EyerissConfig, EyerissPE, select

__all__ = ["EyerissArray"]


class EyerissArray(wiring.Component):
    """H x W row-stationary PE array (see the module docstring).

    Parameters: an :class:`~nnloom.hw.eyeriss_pe.EyerissConfig`.

    Members:
      ``layer`` (In, ``config.layer_layout``): held stable while ``busy``;
      ``start`` (In): begin a layer when idle; ``busy`` (Out);
      ``inp`` (In, stream of ``data_width``-bit words): ifmap then weights;
      ``result`` (Out, stream of ``acc_width``-bit psums);
      ``cnt_<name>`` (Out, ``counter_width`` bits) for each name in
      ``config.counter_names`` and ``cnt_cycles``.
    """

    def __init__(self, config: EyerissConfig):
        if not isinstance(config, EyerissConfig):
            raise TypeError(f"config must be an EyerissConfig, not {config!r}")
        self.config = cfg = config
        members = {
            "layer": In(cfg.layer_layout), "start": In(1), "busy": Out(1),
            "inp": In(stream.Signature(cfg.data_shape)),
            "result": Out(stream.Signature(cfg.acc_shape)),
        }
        for name in cfg.counter_names + ("cycles",):
            members[f"cnt_{name}"] = Out(cfg.counter_width)
        super().__init__(members)

    def elaborate(self, platform):
        cfg = self.config
        H, W = cfg.rows, cfg.cols
        L = self.layer
        m = Module()
        d = unsigned(cfg.dim_width)
        big = unsigned(2 * cfg.dim_width + 8)

        pes = [[EyerissPE(cfg) for _ in range(W)] for _ in range(H)]
        for i in range(H):
            for j in range(W):
                m.submodules[f"pe_{i}_{j}"] = pes[i][j]
                m.d.comb += [pes[i][j].p.eq(L.p), pes[i][j].q.eq(L.q), pes[i][j].s.eq(L.s)]

        gif = m.submodules.glb_ifmap = Memory(shape=cfg.data_shape, depth=cfg.glb_ifmap, init=[])
        gif_w, gif_r = gif.write_port(), gif.read_port()
        gps = m.submodules.glb_psum = Memory(shape=cfg.acc_shape, depth=cfg.glb_psum, init=[])
        gps_w, gps_r = gps.write_port(), gps.read_port()
        m.d.comb += [gif_r.en.eq(0), gps_r.en.eq(0)]

        # Pass and loop state.
        mg, es, rp, cp = Signal(d), Signal(d), Signal(d), Signal(d)
        m0, e0, r0, c0, ue0 = Signal(d), Signal(d), Signal(d), Signal(d), Signal(big)
        krc = Signal(d)           # k * rc: the first PE row of replica k
        x, ux, pos0, nn, wp = Signal(d), Signal(big), Signal(big), Signal(d), Signal(d)
        k, kq, cc, ccs, j, r, t, ts = (Signal(d, name=n) for n in
                                        ("k", "kq", "cc", "ccs", "j", "r", "t", "ts"))
        row, w, n = Signal(d), Signal(range(cfg.filter_spad + 1)), Signal(range(cfg.glb_ifmap + 1))
        cnt = Signal(range(cfg.filter_spad + 2))
        n_ps = Signal(range(cfg.glb_psum + 1))

        last_cp = cp + 1 == L.n_cpass
        last_rp = rp + 1 == L.n_rpass
        reps = Signal(d)          # replicas in this pass (A)
        wa = Signal(d)            # columns in this strip (Wa)
        rcur = Signal(d)          # filter rows in this row pass
        rst = Signal(d)           # first row a column j > 0 does not share with j - 1
        m.d.comb += [reps.eq(Mux(last_cp, L.a_last, L.rv)),
                     wa.eq(Mux(es + 1 == L.n_estrip, L.wa_last, W)),
                     rcur.eq(Mux(last_rp, L.r_last, L.rc)),
                     rst.eq(Mux(last_rp, L.rstart_last, L.rstart))]
        row_act = [Signal(name=f"row_act_{i}") for i in range(H)]
        col_act = [Signal(name=f"col_act_{jj}") for jj in range(W)]
        m.d.comb += [row_act[i].eq((L.row_k[i] < reps) & (L.row_r[i] < rcur)) for i in range(H)]
        m.d.comb += [col_act[jj].eq(jj < wa) for jj in range(W)]
        pqs = Signal(range(cfg.filter_spad + 1))
        m.d.comb += pqs.eq(L.p * L.q * L.s)

        # Stage-2 registers of the buffer reads (delivery and write-back).
        dv, dk, dy, dslot = Signal(), Signal(d), Signal(big), Signal(range(cfg.ifmap_spad + 1))
        wv, wf, wj, wacc = Signal(), Signal(range(cfg.psum_spad)), Signal(range(W)), Signal()
        waddr = Signal(range(cfg.glb_psum))
        m.d.sync += [dv.eq(0), wv.eq(0)]
        macgo = Signal()
        f_we_row = Signal(range(H + 1))
        f_we = Signal()
        ovalid = Signal()

        # Events counted this cycle (summed into the counters below).
        inc = {name: [] for name in cfg.counter_names}
        col_y = [L.col_y[jj] for jj in range(W)]
        for i in range(H):
            for jj in range(W):
                pe = pes[i][jj]
                match = (dv & (L.row_k[i] == dk) & (col_y[jj] + L.row_r[i] == dy)
                         & row_act[i] & col_act[jj])
                fw = f_we & (f_we_row == i) & col_act[jj]
                m.d.comb += [
                    pe.f_we.eq(fw), pe.f_addr.eq(w), pe.f_data.eq(self.inp.payload),
                    pe.i_we.eq(match), pe.i_addr.eq(dslot), pe.i_data.eq(gif_r.data),
                    pe.start.eq(macgo & row_act[i] & col_act[jj]), pe.base.eq(wp),
                    pe.psum_sel.eq(wf),
                ]
                inc["macs"].append(pe.ev_mac)
                inc["gated"].append(pe.ev_gated)
                inc["spad_reads"] += [pe.ev_ird, pe.ev_mac, pe.ev_prd]
                inc["spad_writes"] += [pe.ev_pwr, fw, match]
                inc["array"] += [fw, match]

        # Write-back engine: runs beside DELIV/FILT of the next window, on a
        # snapshot of the pass (rows, columns, base address) taken when the
        # MACs end; the next MAC waits until it has read every psum.
        wb_go, wb_busy, wb_acc = Signal(), Signal(), Signal()
        wb_f = Signal(range(cfg.psum_spad + 1))
        wb_j, wb_wa, wb_m0, wb_e0, wb_x = (Signal(d, name=f"wb_{n}") for n in ("j", "wa", "m0", "e0", "x"))
        wb_act = Signal(H)
        acc_pass = (cp != 0) | (rp != 0)   # not the first pass into these psums

        # Column sums: the psums of the active rows, accumulated up each column.
        colsum = []
        for jj in range(W):
            acc = Signal(cfg.acc_shape, name=f"colsum_{jj}")
            m.d.comb += acc.eq(sum(Mux(wb_act[i], pes[i][jj].psum_out, 0) for i in range(H)))
            colsum.append(acc)
        wsum = select(m, colsum, wj, "wb_colsum")
        m.d.comb += [gps_w.addr.eq(waddr), gps_w.data.eq(wsum + Mux(wacc, gps_r.data, 0)),
                     gps_w.en.eq(wv)]
        active_rows = sum(wb_act[i] for i in range(H))
        wb_reads = Signal(range(H + 1))
        m.d.comb += wb_reads.eq(Mux(wv, active_rows, 0))
        inc["spad_reads"].append(wb_reads)
        inc["array"].append(Mux(wv & (active_rows != 0), active_rows - 1, 0))
        inc["glb_writes"].append(wv)
        m.d.sync += [dslot.eq(ccs + ts)]


        in_fire = self.inp.valid & self.inp.ready
        glb_rd, wb_rd = Signal(), Signal()     # ifmap-bank and psum-bank reads
        inc["glb_reads"] += [glb_rd, wb_rd]

        with m.If(wb_go):
            m.d.sync += [wb_busy.eq(1), wb_f.eq(0), wb_j.eq(0), wb_wa.eq(wa), wb_m0.eq(m0),
                         wb_e0.eq(e0), wb_x.eq(x), wb_acc.eq(acc_pass),
                         wb_act.eq(Cat(*row_act))]
        with m.Elif(wb_busy):
            m.d.comb += [gps_r.en.eq(wb_acc), wb_rd.eq(wb_acc),
                         gps_r.addr.eq(((wb_m0 + wb_f) * L.e + wb_e0 + wb_j) * L.f + wb_x)]
            m.d.sync += [wv.eq(1), wf.eq(wb_f), wj.eq(wb_j), wacc.eq(wb_acc), waddr.eq(gps_r.addr)]
            with m.If(wb_j + 1 < wb_wa):
                m.d.sync += wb_j.eq(wb_j + 1)
            with m.Else():
                m.d.sync += wb_j.eq(0)
                with m.If(wb_f + 1 < L.p):
                    m.d.sync += wb_f.eq(wb_f + 1)
                with m.Else():
                    m.d.sync += wb_busy.eq(0)

        def to_x0():
            m.d.sync += [x.eq(0), ux.eq(0), pos0.eq(0), nn.eq(L.s), wp.eq(0)]
            start_deliv()

        def start_deliv():
            m.d.sync += [k.eq(0), kq.eq(0), cc.eq(0), ccs.eq(0), j.eq(0), r.eq(0), t.eq(0)]

        # The controller's state, decoded with If/Elif (not Switch) so that
        # the emitted Verilog has no incomplete ``case`` on it.
        states = ("IDLE", "LOAD", "FILT", "DELIV", "MAC", "NEXT", "OUT")
        state = Signal(range(len(states)), name="ctl_state")
        S = {name: n for n, name in enumerate(states)}
        with m.If(state == S["IDLE"]):
            with m.If(self.start):
                m.d.sync += [n.eq(0), mg.eq(0), es.eq(0), rp.eq(0), cp.eq(0), m0.eq(0),
                             e0.eq(0), r0.eq(0), c0.eq(0), ue0.eq(0)]
                m.d.sync += state.eq(S["LOAD"])
        with m.Elif(state == S["LOAD"]):
            m.d.comb += [self.busy.eq(1), self.inp.ready.eq(1),
                         gif_w.en.eq(in_fire), gif_w.addr.eq(n), gif_w.data.eq(self.inp.payload)]
            inc["glb_writes"].append(in_fire & (state == S["LOAD"]))
            with m.If(in_fire):
                m.d.sync += n.eq(n + 1)
                with m.If(n + 1 == L.c * L.hp * L.wp):
                    m.d.sync += [k.eq(0), r.eq(0), row.eq(0), krc.eq(0), w.eq(0)]
                    m.d.sync += state.eq(S["FILT"])
        with m.Elif(state == S["FILT"]):
            m.d.comb += [self.busy.eq(1), self.inp.ready.eq(1), f_we.eq(in_fire),
                         f_we_row.eq(row)]
            with m.If(in_fire):
                with m.If(w + 1 < pqs):
                    m.d.sync += w.eq(w + 1)
                with m.Else():
                    m.d.sync += w.eq(0)
                    with m.If(r + 1 < rcur):
                        m.d.sync += [r.eq(r + 1), row.eq(row + 1)]
                    with m.Else():
                        m.d.sync += [r.eq(0), row.eq(krc + L.rc), krc.eq(krc + L.rc)]
                        with m.If(k + 1 < reps):
                            m.d.sync += k.eq(k + 1)
                        with m.Else():
                            to_x0()
                            m.d.sync += state.eq(S["DELIV"])
        with m.Elif(state == S["DELIV"]):
            m.d.comb += [self.busy.eq(1), glb_rd.eq(1), gif_r.en.eq(1),
                         gif_r.addr.eq(((c0 + kq + cc) * L.hp + ue0 + r0 + select(m, col_y, j, "dl_coly")
                                        + r) * L.wp + pos0 + t)]
            tsum = Signal(big)
            m.d.comb += tsum.eq(wp + t)
            m.d.comb += ts.eq(Mux(tsum >= L.s, tsum - L.s, tsum))
            m.d.sync += [dv.eq(1), dk.eq(k), dy.eq(select(m, col_y, j, "dl_coly2") + r)]
            with m.If(t + 1 < nn):
                m.d.sync += t.eq(t + 1)
            with m.Else():
                m.d.sync += t.eq(0)
                with m.If(r + 1 < rcur):
                    m.d.sync += r.eq(r + 1)
                with m.Elif(j + 1 < wa):
                    m.d.sync += [j.eq(j + 1), r.eq(rst)]
                with m.Else():
                    m.d.sync += [j.eq(0), r.eq(0)]
                    with m.If(cc + 1 < L.q):
                        m.d.sync += [cc.eq(cc + 1), ccs.eq(ccs + L.s)]
                    with m.Else():
                        m.d.sync += [cc.eq(0), ccs.eq(0)]
                        with m.If(k + 1 < reps):
                            m.d.sync += [k.eq(k + 1), kq.eq(kq + L.q)]
                        with m.Else():
                            wsum2 = Signal(big)
                            m.d.comb += wsum2.eq(wp + nn)
                            m.d.sync += wp.eq(Mux(wsum2 >= L.s, wsum2 - L.s, wsum2))
                            m.d.sync += cnt.eq(0)
                            m.d.sync += state.eq(S["MAC"])
        with m.Elif(state == S["MAC"]):
            # cnt = 0: start the PEs, once the write-back of the previous window
            # has read their psums; then p*q*S + mac_latency cycles, and the
            # write-back of this window starts.
            m.d.comb += [self.busy.eq(1), macgo.eq((cnt == 0) & ~wb_busy)]
            with m.If((cnt != 0) | ~wb_busy):
                m.d.sync += cnt.eq(cnt + 1)
            with m.If(cnt == pqs + cfg.mac_latency):
                m.d.comb += wb_go.eq(1)
                m.d.sync += state.eq(S["NEXT"])
        with m.Elif(state == S["NEXT"]):
            m.d.comb += self.busy.eq(1)
            with m.If(x + 1 < L.f):
                m.d.sync += [x.eq(x + 1), ux.eq(ux + L.u), nn.eq(L.nnew),
                             pos0.eq(ux + L.u + L.s - L.nnew)]
                start_deliv()
                m.d.sync += state.eq(S["DELIV"])
            with m.Else():
                m.d.sync += [k.eq(0), r.eq(0), row.eq(0), krc.eq(0), w.eq(0)]
                m.d.sync += state.eq(S["FILT"])
                with m.If(cp + 1 < L.n_cpass):
                    m.d.sync += [cp.eq(cp + 1), c0.eq(c0 + L.rv * L.q)]
                with m.Elif(rp + 1 < L.n_rpass):
                    m.d.sync += [cp.eq(0), c0.eq(0), rp.eq(rp + 1), r0.eq(r0 + L.rc)]
                with m.Else():
                    m.d.sync += [cp.eq(0), c0.eq(0), rp.eq(0), r0.eq(0)]
                    with m.If(es + 1 < L.n_estrip):
                        m.d.sync += [es.eq(es + 1), e0.eq(e0 + W), ue0.eq(ue0 + L.u * W)]
                    with m.Else():
                        m.d.sync += [es.eq(0), e0.eq(0), ue0.eq(0)]
                        with m.If(mg + 1 < L.n_mgroup):
                            m.d.sync += [mg.eq(mg + 1), m0.eq(m0 + L.p)]
                        with m.Else():
                            m.d.sync += [n_ps.eq(0), ovalid.eq(0)]
                            m.d.sync += state.eq(S["OUT"])
        with m.Else():  # OUT, once the last write-back has been written
            m.d.comb += [self.busy.eq(1), self.result.valid.eq(ovalid),
                         self.result.payload.eq(gps_r.data)]
            with m.If(~wb_busy):  # the last write-back may still be reading
                m.d.comb += gps_r.addr.eq(n_ps)
            adv = (~ovalid | self.result.ready) & ~wb_busy & ~wv
            with m.If(adv):
                with m.If(n_ps != L.m * L.e * L.f):
                    m.d.comb += [gps_r.en.eq(1), glb_rd.eq(1)]
                    m.d.sync += [n_ps.eq(n_ps + 1), ovalid.eq(1)]
                with m.Else():
                    m.d.sync += ovalid.eq(0)
                    m.d.sync += state.eq(S["IDLE"])
        # Counters: every event of this cycle, summed (after all events are known).
        with m.If(self.start & ~self.busy):
            for name in cfg.counter_names + ("cycles",):
                m.d.sync += getattr(self, f"cnt_{name}").eq(0)
        with m.Else():
            for name, bits in inc.items():
                c = getattr(self, f"cnt_{name}")
                m.d.sync += c.eq(c + sum(bits))
            m.d.sync += self.cnt_cycles.eq(self.cnt_cycles + self.busy)
        return m
