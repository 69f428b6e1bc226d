"""One EIE processing element.

Pipeline, one cycle per stage (the cycle model :mod:`nnloom.gen.perf.eie` follows
the same rules; :class:`EIEConfig` gives the number formats):

queue
    A FIFO of ``queue_depth`` broadcast (value, column ``j``) pairs.  The
    cluster broadcasts only when every PE's queue has room (``room``).
P (pointer read)
    Pops the head when P is free and reads ``p[k]`` and ``p[k + 1]``,
    ``k = ptr_base + j``, from the even and odd pointer banks in one cycle.
    P is free when it is empty, holds an empty column (``p[k] == p[k+1]``,
    dropped after its one cycle), or hands its column to F this cycle.
F (entry fetch)
    Issues one entry position per cycle, ``p[k]`` .. ``p[k+1] - 1``, to the
    64-bit sparse-matrix memory (row ``pos >> 3``, entry ``pos & 7``).  F
    takes P's column in the cycle it issues its own last entry, so
    consecutive columns stream without a bubble.
D (decode)
    Entry byte: code ``v`` = bits [3:0], relative index ``z`` = [7:4].
    Absolute local row ``x = z`` for a column's first entry, else
    ``x_prev + 1 + z``.  Weight = codebook[``v``]; product = weight * value
    (exact); reads accumulator ``x``.
B (accumulate)
    ``acc[x] += product`` modulo ``2**acc_width``.  The accumulator read in D
    does not see the write B makes in the same cycle, so when two adjacent
    entries hit the same ``x`` the bypass forwards the previous sum.

Activations: two banks of ``act_depth`` registers; ``src`` feeds the LNZD
leaf and I/O reads and writes, ``dst`` receives write-out
(``relu(sat(acc >> frac_bits))``, clearing the accumulator); ``swap`` flips
their roles between layers.  The leaf scans ``src`` one element per cycle
(local index ``s``, global index ``s * pes + index``) while the global index
is below ``in_len``, and offers each non-zero on ``leaf``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .eie_config import (CODEBOOK_ENTRIES, ENTRIES_PER_ROW, ENTRY_BITS, TARGET_ACT,
                         TARGET_CODEBOOK, TARGET_ENTRY, TARGET_PTR, EIEConfig, bits_for)

__all__ = ["EIEPE"]


class EIEPE(wiring.Component):
    """EIE processing element number ``index`` of a cluster.

    Members:
      ``io_we``, ``io_target``, ``io_addr``, ``io_data`` (In): an I/O-mode
      write to this PE (see :attr:`EIEConfig.io_layout`); ``act_rdata`` (Out):
      source activation ``io_addr``, combinational.
      ``start`` (In): begin a layer of ``in_len`` inputs (also In) with
      ``ptr_base``, ``codebook``, ``relu`` (In, held during the layer).
      ``bcast_valid``, ``bcast_value``, ``bcast_index`` (In): a broadcast
      activation, pushed into the queue; ``room`` (Out): the queue has room.
      ``leaf`` (Out, stream of ``bcast_layout``): next non-zero source
      activation; ``leaf_done`` (Out): scan finished and nothing offered.
      ``busy`` (Out): queue or pipeline holds work.
      ``wo_valid``, ``wo_row`` (In): write out accumulator row ``wo_row``
      (result one cycle later); ``swap`` (In): exchange src and dst.
    """

    def __init__(self, config: EIEConfig, index: int = 0):
        if not isinstance(config, EIEConfig):
            raise TypeError(f"config must be an EIEConfig, not {config!r}")
        if not 0 <= index < config.pes:
            raise ValueError(f"index: expected 0..{config.pes - 1}, got {index}")
        self.config, self.index = config, index
        cfg = config
        super().__init__({
            "io_we": In(1), "io_target": In(2), "io_addr": In(16), "io_data": In(64),
            "act_rdata": Out(cfg.act_shape),
            "start": In(1), "in_len": In(cfg.len_width),
            "ptr_base": In(cfg.ptr_index_width), "codebook": In(bits_for(cfg.codebooks - 1)),
            "relu": In(1),
            "bcast_valid": In(1), "bcast_value": In(cfg.act_shape),
            "bcast_index": In(cfg.index_width), "room": Out(1),
            "leaf": Out(stream.Signature(cfg.bcast_layout)), "leaf_done": Out(1),
            "busy": Out(1),
            "wo_valid": In(1), "wo_row": In(bits_for(cfg.act_depth - 1)), "swap": In(1),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        aw, iw = cfg.act_width, cfg.index_width
        act_addr = bits_for(cfg.act_depth - 1)

        def io_write(target):
            return self.io_we & (self.io_target == target)

        # -- activation register files, source/destination by `sel` ------------
        sel = Signal()
        with m.If(self.swap):
            m.d.sync += sel.eq(~sel)
        banks = []
        for b in range(2):
            mem = Memory(shape=cfg.act_shape, depth=cfg.act_depth, init=[])
            m.submodules[f"act{b}"] = mem
            banks.append((mem, mem.write_port(), mem.read_port(domain="comb"),
                          mem.read_port(domain="comb")))
        scan = Signal(range(cfg.act_depth + 1))
        src_scan = Signal(cfg.act_shape)
        for b, (_, _, rp_scan, rp_io) in enumerate(banks):
            m.d.comb += [rp_scan.addr.eq(scan), rp_io.addr.eq(self.io_addr)]
        m.d.comb += [
            src_scan.eq(Mux(sel, banks[1][2].data, banks[0][2].data)),
            self.act_rdata.eq(Mux(sel, banks[1][3].data, banks[0][3].data)),
        ]

        # -- LNZD leaf: scan the source bank ----------------------------------
        gidx = Signal(bits_for(cfg.max_len + cfg.pes), init=self.index)
        slot_valid = Signal()
        slot_value = Signal(cfg.act_shape)
        slot_index = Signal(iw)
        in_range = Signal()
        m.d.comb += [
            in_range.eq(gidx < self.in_len),
            self.leaf.valid.eq(slot_valid),
            self.leaf.payload.value.eq(slot_value),
            self.leaf.payload.index.eq(slot_index),
            self.leaf_done.eq(~in_range & ~slot_valid),
        ]
        with m.If(self.start):
            m.d.sync += [scan.eq(0), gidx.eq(self.index), slot_valid.eq(0)]
        with m.Elif(~slot_valid | self.leaf.ready):
            with m.If(in_range):
                m.d.sync += [scan.eq(scan + 1), gidx.eq(gidx + cfg.pes),
                             slot_valid.eq(src_scan != 0), slot_value.eq(src_scan),
                             slot_index.eq(gidx)]
            with m.Else():
                m.d.sync += slot_valid.eq(0)

        # -- activation queue ---------------------------------------------------
        q = m.submodules.queue = fifo.SyncFIFO(width=aw + iw, depth=cfg.queue_depth)
        m.d.comb += [q.w_en.eq(self.bcast_valid),
                     q.w_data.eq(Cat(self.bcast_value, self.bcast_index)),
                     self.room.eq(q.w_rdy)]
        head_value = q.r_data[:aw].as_signed()
        head_index = q.r_data[aw:]

        # -- P: pointer banks ---------------------------------------------------
        ptr_even = Memory(shape=unsigned(cfg.ptr_width), depth=cfg.ptr_depth, init=[])
        ptr_odd = Memory(shape=unsigned(cfg.ptr_width), depth=cfg.ptr_depth, init=[])
        m.submodules.ptr_even, m.submodules.ptr_odd = ptr_even, ptr_odd
        rp_even, rp_odd = ptr_even.read_port(), ptr_odd.read_port()
        for bank, parity in ((ptr_even, 0), (ptr_odd, 1)):
            wp = bank.write_port()
            m.d.comb += [wp.addr.eq(self.io_addr >> 1), wp.data.eq(self.io_data),
                         wp.en.eq(io_write(TARGET_PTR) & (self.io_addr[0] == parity))]
        pidx = Signal(cfg.ptr_index_width + 1)
        m.d.comb += [pidx.eq(self.ptr_base + head_index),
                     rp_even.addr.eq((pidx + 1) >> 1), rp_odd.addr.eq(pidx >> 1)]
        p_valid, p_parity = Signal(), Signal()
        p_value = Signal(cfg.act_shape)
        p_start, p_end = Signal(cfg.ptr_width), Signal(cfg.ptr_width)
        m.d.comb += [p_start.eq(Mux(p_parity, rp_odd.data, rp_even.data)),
                     p_end.eq(Mux(p_parity, rp_even.data, rp_odd.data))]

        # -- F: entry fetch -----------------------------------------------------
        f_active, f_first = Signal(), Signal()
        f_cur, f_end = Signal(cfg.ptr_width), Signal(cfg.ptr_width)
        f_value = Signal(cfg.act_shape)
        f_can_load, p_full, p_free, pop = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [
            f_can_load.eq(~f_active | (f_cur + 1 == f_end)),
            p_full.eq(p_valid & (p_start != p_end)),
            p_free.eq(~p_full | f_can_load),
            pop.eq(q.r_rdy & p_free),
            q.r_en.eq(pop), rp_even.en.eq(pop), rp_odd.en.eq(pop),
        ]
        with m.If(p_free):
            m.d.sync += [p_valid.eq(pop), p_value.eq(head_value), p_parity.eq(pidx[0])]
        with m.If(p_full & f_can_load):
            m.d.sync += [f_active.eq(1), f_cur.eq(p_start), f_end.eq(p_end), f_first.eq(1),
                         f_value.eq(p_value)]
        with m.Elif(f_active):
            m.d.sync += [f_cur.eq(f_cur + 1), f_first.eq(0), f_active.eq(f_cur + 1 != f_end)]

        row_shift = ENTRIES_PER_ROW.bit_length() - 1  # position -> (row, entry in row)
        entries = Memory(shape=unsigned(64), depth=cfg.entry_rows, init=[])
        m.submodules.entries = entries
        wp_ent, rp_ent = entries.write_port(), entries.read_port()
        m.d.comb += [wp_ent.addr.eq(self.io_addr), wp_ent.data.eq(self.io_data),
                     wp_ent.en.eq(io_write(TARGET_ENTRY)),
                     rp_ent.addr.eq(f_cur >> row_shift)]

        # -- D: decode ----------------------------------------------------------
        d_valid, d_first = Signal(), Signal()
        d_sel = Signal(row_shift)
        d_value = Signal(cfg.act_shape)
        d_xprev = Signal(act_addr + 4)
        m.d.sync += [d_valid.eq(f_active), d_first.eq(f_first), d_sel.eq(f_cur[:row_shift]),
                     d_value.eq(f_value)]
        entry = rp_ent.data.word_select(d_sel, ENTRY_BITS)
        code, z = entry[:4], entry[4:8]
        x = Signal(act_addr + 4)
        m.d.comb += x.eq(Mux(d_first, 0, d_xprev + 1) + z)
        with m.If(d_valid):
            m.d.sync += d_xprev.eq(x)

        cb = Memory(shape=cfg.act_shape, depth=CODEBOOK_ENTRIES * cfg.codebooks, init=[])
        m.submodules.codebook = cb
        wp_cb, rp_cb = cb.write_port(), cb.read_port(domain="comb")
        m.d.comb += [wp_cb.addr.eq(self.io_addr), wp_cb.data.eq(self.io_data),
                     wp_cb.en.eq(io_write(TARGET_CODEBOOK)),
                     rp_cb.addr.eq(Cat(code, self.codebook))]
        prod = Signal(signed(2 * aw))
        m.d.comb += prod.eq(rp_cb.data * d_value)

        acc = Memory(shape=cfg.acc_shape, depth=cfg.act_depth, init=[])
        m.submodules.acc = acc
        wp_acc, rp_acc = acc.write_port(), acc.read_port()
        m.d.comb += rp_acc.addr.eq(Mux(self.wo_valid, self.wo_row, x))

        # -- B: accumulate, with the bypass ----------------------------------------
        b_valid, c_valid = Signal(), Signal()
        b_x, c_x = Signal(act_addr), Signal(act_addr)
        b_prod = Signal(signed(2 * aw))
        c_sum, total = Signal(cfg.acc_shape), Signal(cfg.acc_shape)
        m.d.sync += [b_valid.eq(d_valid), b_x.eq(x), b_prod.eq(prod),
                     c_valid.eq(b_valid), c_x.eq(b_x), c_sum.eq(total)]
        operand = Mux(c_valid & (c_x == b_x), c_sum, rp_acc.data)
        m.d.comb += total.eq(operand + b_prod)  # truncation to acc_width: wrap

        # -- write-out: relu(sat(acc >> frac_bits)) into dst, clear acc --------
        w1_valid = Signal()
        w1_row = Signal(act_addr)
        m.d.sync += [w1_valid.eq(self.wo_valid), w1_row.eq(self.wo_row)]
        lo, hi = -(1 << (aw - 1)), (1 << (aw - 1)) - 1
        shifted = rp_acc.data >> cfg.frac_bits
        sat = Signal(cfg.act_shape)
        m.d.comb += sat.eq(Mux(shifted > hi, hi, Mux(shifted < lo, lo, shifted)))
        result = Mux(self.relu & (sat < 0), 0, sat)
        m.d.comb += [
            wp_acc.addr.eq(Mux(w1_valid, w1_row, b_x)),
            wp_acc.data.eq(Mux(w1_valid, Const(0, cfg.acc_shape), total)),
            wp_acc.en.eq(w1_valid | b_valid),
        ]
        for b, (_, wp, _, _) in enumerate(banks):
            is_src = sel == b
            m.d.comb += [
                wp.addr.eq(Mux(w1_valid, w1_row, self.io_addr)),
                wp.data.eq(Mux(w1_valid, result, self.io_data[:aw])),
                wp.en.eq(Mux(w1_valid, ~is_src, io_write(TARGET_ACT) & is_src)),
            ]

        m.d.comb += self.busy.eq(q.r_rdy | p_valid | f_active | d_valid | b_valid)
        return m
