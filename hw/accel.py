"""The accelerator top: AXI4-Lite registers, program loader, controller, DMA,
and the compute core (:mod:`nnloom.hw.accel_core`).

Members: ``s_axil`` (In(:class:`~hw.axi.AxiLiteSignature`), 12-bit byte
addresses), ``m_axi`` (Out(:class:`~hw.axi.Axi4Signature`), the DRAM master:
reads through :class:`~nnloom.hw.axi_master.AxiReader`, writes through
:class:`~nnloom.hw.axi_master.AxiWriter`), ``irq`` (Out).

Registers (32-bit, byte offsets; see docs/accelerator.md):

=======  =========  ==========================================================
offset   name       meaning
=======  =========  ==========================================================
0x00     CTRL       write: bit 0 start, bit 1 clear done/error, bit 2 irq enable,
                    bit 3 keep the program (skip its load if imem holds it)
0x04     STATUS     bit 0 busy, bit 1 done, bit 2 error, bits 8..15 error code
0x08     PROG_BASE  DRAM byte address of the program
0x0C     PROG_LEN   number of instructions (1..config.imem_depth)
0x10     ERR_PC     instruction index that raised the error
0x14     CYCLES     cycles from start to done
0x18     BEATS      activation beats fed to the array (MACs = BEATS x P x P)
0x1C     STALLS     cycles a CONV waited for its weight bank to fill
0x20     INFO       P | data_width << 8 | layers << 16 | version << 24
0x100+4i LAYER[i]   cycles an instruction of layer i ran in the core
=======  =========  ==========================================================

Error codes: 1 illegal opcode, 2 misaligned DRAM address, 3 AXI error
response, 4 PROG_LEN out of range, 5 ran past the end of the program.  On an error the controller stops at once
(it never hangs): ``busy`` falls, ``error`` and ``done`` rise.
"""

from __future__ import annotations


from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .accel_core import AccelConfig, AccelCore, SyncRead
from .accel_isa import INSTRUCTION, INSTRUCTION_BITS, PARAM_ENTRY, Op
from .axi import AxiLiteRegsConfig, AxiReaderConfig, AxiWriterConfig
from .axi_lite import AxiLiteRegs
from .axi_master import AxiReader, AxiWriter

__all__ = ["Accelerator", "REGS", "ERRORS", "VERSION"]

VERSION = 2
REGS = {"CTRL": 0x00, "STATUS": 0x04, "PROG_BASE": 0x08, "PROG_LEN": 0x0C, "ERR_PC": 0x10,
        "CYCLES": 0x14, "BEATS": 0x18, "STALLS": 0x1C, "INFO": 0x20, "LAYER0": 0x100}
ERRORS = {1: "illegal opcode", 2: "misaligned DRAM address", 3: "AXI error response",
          4: "PROG_LEN out of range", 5: "ran past the end of the program"}


class Accelerator(wiring.Component):
    """The whole accelerator (see the module docstring)."""

    def __init__(self, config: AccelConfig, engine=None):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, not {config!r}")
        self.config = config
        self.engine = engine        # the core's engine factory (None: the systolic array)
        self.rcfg = AxiReaderConfig(data_width=config.data_width, max_burst=16, max_outstanding=2)
        self.wcfg = AxiWriterConfig(data_width=config.data_width, max_burst=16, max_outstanding=2)
        self.lcfg = AxiLiteRegsConfig(addr_width=12)
        super().__init__({
            "s_axil": In(self.lcfg.axil_signature),
            "m_axi": Out(self.rcfg.axi_signature),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.config
        P = cfg.size
        dw = cfg.data_width
        m = Module()
        m.submodules.regs = regs = AxiLiteRegs(self.lcfg)
        m.submodules.reader = rd = AxiReader(self.rcfg)
        m.submodules.writer = wr = AxiWriter(self.wcfg)
        m.submodules.core = core = AccelCore(cfg, self.engine)
        wiring.connect(m, wiring.flipped(self.s_axil), regs.axil)

        # One AXI4 master port: read channels from the reader, write channels
        # from the writer.
        for name, _ in self.m_axi.signature.members.items():
            ch = name[:2] if name[:2] in ("ar", "aw") else name[0]
            src = rd.m_axi if ch in ("ar", "r") else wr.m_axi
            if self.m_axi.signature.members[name].flow == Out:
                m.d.comb += getattr(self.m_axi, name).eq(getattr(src, name))
            else:
                m.d.comb += getattr(src, name).eq(getattr(self.m_axi, name))

        # -- registers -------------------------------------------------------------
        busy, done, error = Signal(), Signal(), Signal()
        err_code, err_pc = Signal(8), Signal(16)
        irq_en = Signal()
        prog_base, prog_len = Signal(32), Signal(16)
        cycles, stalls = Signal(32), Signal(32)
        layer_cycles = [Signal(32, name=f"layer_cycles_{i}") for i in range(cfg.layers)]
        start = Signal()
        keep = Signal()             # CTRL bit 3: run the program already in imem
        prog_ok = Signal()          # imem holds the program at loaded_base, loaded_len
        loaded_base, loaded_len = Signal(32), Signal(16)
        bus = regs.bus
        with m.If(bus.w_en):
            with m.Switch(bus.addr):
                with m.Case(REGS["CTRL"] >> 2):
                    m.d.comb += [start.eq(bus.w_data[0] & ~busy), keep.eq(bus.w_data[3])]
                    m.d.sync += irq_en.eq(bus.w_data[2])
                    with m.If(bus.w_data[1]):
                        m.d.sync += [done.eq(0), error.eq(0), err_code.eq(0)]
                with m.Case(REGS["PROG_BASE"] >> 2):
                    m.d.sync += prog_base.eq(bus.w_data)
                with m.Case(REGS["PROG_LEN"] >> 2):
                    m.d.sync += prog_len.eq(bus.w_data)
        r_data = Signal(32)
        with m.If(bus.r_en):
            with m.Switch(bus.addr):
                with m.Case(REGS["STATUS"] >> 2):
                    m.d.sync += r_data.eq(Cat(busy, done, error, Const(0, 5), err_code))
                with m.Case(REGS["PROG_BASE"] >> 2):
                    m.d.sync += r_data.eq(prog_base)
                with m.Case(REGS["PROG_LEN"] >> 2):
                    m.d.sync += r_data.eq(prog_len)
                with m.Case(REGS["ERR_PC"] >> 2):
                    m.d.sync += r_data.eq(err_pc)
                with m.Case(REGS["CYCLES"] >> 2):
                    m.d.sync += r_data.eq(cycles)
                with m.Case(REGS["BEATS"] >> 2):
                    m.d.sync += r_data.eq(core.beats)
                with m.Case(REGS["STALLS"] >> 2):
                    m.d.sync += r_data.eq(stalls)
                with m.Case(REGS["INFO"] >> 2):
                    m.d.sync += r_data.eq(P | (dw << 8) | (cfg.layers << 16) | (VERSION << 24))
                for i, sig in enumerate(layer_cycles):
                    with m.Case((REGS["LAYER0"] >> 2) + i):
                        m.d.sync += r_data.eq(sig)
                with m.Default():
                    m.d.sync += r_data.eq(0)
        m.d.comb += [bus.r_data.eq(r_data), self.irq.eq(done & irq_en)]

        # -- instruction memory, filled from DRAM at start ---------------------------
        # 64-bit (or bus-wide) entries, an instruction every 512 / width
        # entries (only the words holding the layout's bits are fetched).
        imem_depth, imem_width = cfg.memories["imem"]
        beats_per_instr = INSTRUCTION_BITS // dw            # bus beats in DRAM
        words_per_instr = INSTRUCTION_BITS // imem_width    # program-memory words
        fetch_words = cfg.fetch_words                       # the words holding its bits
        imem = Memory(shape=imem_width, depth=imem_depth, init=[],
                      attrs={"no_rw_check": 1})   # loaded while idle, read while running
        m.submodules.imem = imem
        iw, ir = imem.write_port(), SyncRead(m, imem)
        # A fetch unit runs ahead of execution: it reads each instruction's
        # words into ins_raw and pushes the decoded instruction into a queue.
        iwid = imem_width
        ins_raw = Signal(fetch_words * iwid)
        fifo_clear = Signal()
        ifq_depth = cfg.queue_depth
        lay = cfg.instruction_layout        # what the queue keeps of an instruction
        ins = Signal(lay)
        if ifq_depth > 1:
            m.submodules.ifq = ifq = ResetInserter(fifo_clear)(
                fifo.SyncFIFO(width=lay.size, depth=ifq_depth))
            m.d.comb += ins.as_value().eq(ifq.r_data)
            q_level, q_rdy = ifq.level, ifq.r_rdy
        else:
            # one entry: the assembled instruction itself is the queue's head
            # (the next fetch starts only once it is taken, as with a FIFO)
            ifq = None
            q_full = Signal()
            q_level, q_rdy = q_full, q_full
        pbits = max(1, (cfg.imem_depth - 1).bit_length())
        fpc = Signal(16)                        # next instruction to fetch
        pc = Signal(16)                         # the instruction at the queue's head
        fk = Signal(range(words_per_instr))     # word of the instruction being read
        f_on = Signal()                         # reading instruction fpc
        f_land = Signal()                       # its last word lands this cycle
        fetch_run = Signal()                    # the program is loaded and running
        m.d.comb += ir.addr.eq(Cat(fk, fpc[:pbits]))
        m.d.sync += f_land.eq(f_on & (fk == fetch_words - 1))
        fk_d = Signal.like(fk)
        m.d.sync += fk_d.eq(fk)
        landed = Signal(fetch_words * iwid)
        m.d.comb += landed.eq(ins_raw)
        # each word into its own slot (not a shift register): bits no field
        # uses have no load and synthesis removes them
        fetched = Signal()
        m.d.sync += fetched.eq(f_on)
        for k in range(fetch_words):
            with m.If(fetched & (fk_d == k)):
                m.d.sync += ins_raw[k * iwid:(k + 1) * iwid].eq(ir.data)
                m.d.comb += landed[k * iwid:(k + 1) * iwid].eq(ir.data)
        full_ins, narrow_ins = Signal(INSTRUCTION), Signal(lay)
        src = landed if ifq is not None else ins_raw
        m.d.comb += full_ins.as_value().eq(src[:INSTRUCTION.size])
        for name, _ in lay:
            m.d.comb += getattr(narrow_ins, name).eq(getattr(full_ins, name))
        if ifq is not None:
            m.d.comb += [ifq.w_en.eq(f_land), ifq.w_data.eq(narrow_ins)]
        else:
            m.d.comb += ins.eq(narrow_ins)
            with m.If(f_land):
                m.d.sync += q_full.eq(1)

        with m.If(f_on):
            with m.If(fk == fetch_words - 1):
                m.d.sync += [fk.eq(0), fpc.eq(fpc + 1)]
                # go on with the next one if the queue has room for both
                with m.If(~(fetch_run & (fpc + 1 < prog_len) & (q_level + 2 <= ifq_depth))):
                    m.d.sync += f_on.eq(0)
            with m.Else():
                m.d.sync += fk.eq(fk + 1)
        with m.Elif(fetch_run & (fpc < prog_len) & (q_level + f_land + 1 <= ifq_depth)):
            m.d.sync += [f_on.eq(1), fk.eq(0)]
        f_done = Signal()                       # every instruction has been fetched
        m.d.comb += f_done.eq((fpc >= prog_len) & ~f_on & ~f_land)
        pop = Signal()
        if ifq is not None:
            m.d.comb += ifq.r_en.eq(pop)
        else:
            with m.If(pop | fifo_clear):
                m.d.sync += q_full.eq(0)
        with m.If(pop):
            m.d.sync += pc.eq(pc + 1)

        # -- DMA engine ------------------------------------------------------------
        # Reader data goes to one of: imem (program), activation bank, weight
        # bank, parameter bank; the writer takes activation words.
        sink = Signal(3)            # 0 imem, 1 act, 2 wbuf, 3 pbuf
        SINK_IMEM, SINK_ACT, SINK_W, SINK_P = range(4)
        shift = Signal(max(PARAM_ENTRY.size, P * 8))
        nbeat = Signal(8)           # beats collected in shift
        waddr = Signal(16)          # word address within the target
        wbank_dma = Signal()
        per_word = Signal(8)
        m.d.comb += per_word.eq(Mux(sink == SINK_IMEM, imem_width // dw,
                                    Mux(sink == SINK_P, PARAM_ENTRY.size // dw, P * 8 // dw)))
        m.d.comb += rd.data.ready.eq(1)
        shifted = Signal.like(shift)
        m.d.comb += shifted.eq(Cat(shift[dw:], rd.data.payload))
        full = Signal()
        m.d.comb += full.eq(rd.data.valid & (nbeat + 1 == per_word))
        # parameter entries go lane by lane into the groups of P
        p_lane, p_grp = Signal(range(P)), Signal(16)
        with m.If(full & (sink == SINK_P)):
            with m.If(p_lane == P - 1):
                m.d.sync += [p_lane.eq(0), p_grp.eq(p_grp + 1)]
            with m.Else():
                m.d.sync += p_lane.eq(p_lane + 1)
        with m.If(rd.data.valid):
            m.d.sync += shift.eq(shifted)
            m.d.sync += nbeat.eq(Mux(full, 0, nbeat + 1))
            with m.If(full):
                m.d.sync += waddr.eq(waddr + 1)
        # the assembled word sits in the top bits of `shifted`
        width = len(shift)
        m.d.comb += [
            iw.addr.eq(waddr), iw.data.eq(shifted[width - imem_width:]),
            iw.en.eq(full & (sink == SINK_IMEM)),
            core.act_w_addr.eq(Cat(waddr[:len(core.act_w_addr) - 1], wbank_dma)),
            core.act_w_data.eq(shifted[width - P * 8:]),
            core.act_w_en.eq(full & (sink == SINK_ACT)),
            core.wbuf_w_addr.eq(Cat(waddr[:len(core.wbuf_w_addr) - 1], wbank_dma)),
            core.wbuf_w_data.eq(shifted[width - P * 8:]),
            core.wbuf_w_en.eq(full & (sink == SINK_W)),
            core.pbuf_w_addr.eq(Cat(p_grp[:len(core.pbuf_w_addr) - 1], wbank_dma)),
            core.pbuf_w_lane.eq(p_lane),
            core.pbuf_w_data.eq(shifted[width - PARAM_ENTRY.size:]),
            core.pbuf_w_en.eq(full & (sink == SINK_P)),
        ]
        words_left = Signal(17)     # words still to arrive for the current read
        with m.If(full):
            m.d.sync += words_left.eq(words_left - 1)

        # store path: act word -> bus beats -> writer (ratio beats + 2 cycles a word)
        st_words, st_addr = Signal(17), Signal(16)
        st_ov, st_pending, st_beat = Signal(), Signal(), Signal(8)
        st_word = Signal(P * 8)
        st_bank = Signal()
        st_read = Signal()
        ratio = P * 8 // dw
        m.d.comb += [core.act_r_addr.eq(Cat(st_addr[:len(core.act_r_addr) - 1], st_bank)),
                     core.act_r_en.eq(st_read),
                     st_read.eq((st_words != 0) & ~st_ov & ~st_pending)]
        m.d.sync += st_pending.eq(st_read)
        with m.If(st_read):
            m.d.sync += [st_words.eq(st_words - 1), st_addr.eq(st_addr + 1)]
        with m.If(st_pending):
            m.d.sync += [st_word.eq(core.act_r_data), st_ov.eq(1), st_beat.eq(0)]
        m.d.comb += [wr.data.valid.eq(st_ov),
                     wr.data.payload.eq((st_word >> (st_beat * dw))[:dw])]
        with m.If(wr.data.valid & wr.data.ready):
            m.d.sync += st_beat.eq(st_beat + 1)
            with m.If(st_beat == ratio - 1):
                m.d.sync += st_ov.eq(0)

        # -- errors from the masters ---------------------------------------------------
        dma_err = Signal()
        m.d.comb += dma_err.eq(rd.error | wr.error)
        clear_dma = Signal()
        m.d.comb += [rd.clear.eq(clear_dma), wr.clear.eq(clear_dma)]

        # -- controller ------------------------------------------------------------------
        bank_full = Signal(2)
        keep_r = Signal()
        dma_idle = Signal()
        m.d.comb += dma_idle.eq(~rd.busy & ~wr.busy & (st_words == 0) & ~st_ov & ~st_pending)
        block_pending = Signal()        # a LOAD_BLOCK's params still to load
        pending_p_addr, pending_p_words, pending_p_off = Signal(32), Signal(16), Signal(16)
        m.d.comb += [rd.cmd.valid.eq(0), wr.cmd.valid.eq(0), core.cmd.valid.eq(0),
                     core.cmd.payload.eq(ins)]
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)
        # the core names the layer it is running
        with m.If(busy & core.active):
            for i, sig in enumerate(layer_cycles):
                with m.If(core.layer == i):
                    m.d.sync += sig.eq(sig + 1)
        # a CONV that frees its weight bank has finished
        m.d.comb += core.release.ready.eq(1)
        with m.If(core.release.valid):
            m.d.sync += bank_full.bit_select(core.release.payload, 1).eq(0)

        def fail(code):
            m.d.sync += [err_code.eq(code), error.eq(1), done.eq(1), busy.eq(0), err_pc.eq(pc),
                         fetch_run.eq(0), f_on.eq(0)]
            m.next = "IDLE"

        def bad_dma():
            return Mux(rd.error_code[0] | wr.error_code[0], 2, 3)

        # Background parameter load of a LOAD_BLOCK, after its weights.
        bg_busy = Signal()
        with m.FSM(name="dma"):
            with m.State("IDLE"):
                with m.If(block_pending):
                    m.next = "WEIGHTS"
            with m.State("WEIGHTS"):
                with m.If(~block_pending):           # aborted by an error and a restart
                    m.next = "IDLE"
                with m.Elif(words_left == 0):
                    m.d.comb += [rd.cmd.valid.eq(1),
                                 rd.cmd.payload.addr.eq(pending_p_addr),
                                 rd.cmd.payload.beats.eq(pending_p_words * (PARAM_ENTRY.size // dw))]
                    with m.If(rd.cmd.ready):
                        m.d.sync += [sink.eq(SINK_P), waddr.eq(0), nbeat.eq(0), p_lane.eq(0),
                                     p_grp.eq(pending_p_off), words_left.eq(pending_p_words)]
                        m.next = "PARAMS"
            with m.State("PARAMS"):
                with m.If(~block_pending):
                    m.next = "IDLE"
                with m.Elif(words_left == 0):
                    m.d.sync += [bank_full.bit_select(wbank_dma, 1).eq(1), block_pending.eq(0)]
                    m.next = "IDLE"
            m.d.comb += bg_busy.eq(block_pending)

        with m.FSM(name="ctrl"):
            with m.State("IDLE"):
                with m.If(start):
                    with m.If((prog_len == 0) | (prog_len > cfg.imem_depth)):
                        m.d.sync += [err_code.eq(4), error.eq(1), done.eq(1), err_pc.eq(0)]
                    with m.Else():
                        m.d.sync += [busy.eq(1), done.eq(0), error.eq(0), err_code.eq(0), pc.eq(0),
                                     fpc.eq(0), fk.eq(0), f_on.eq(0), cycles.eq(0), stalls.eq(0),
                                     bank_full.eq(0), block_pending.eq(0)]
                        m.d.comb += fifo_clear.eq(1)
                        m.d.sync += [sig.eq(0) for sig in layer_cycles]
                        kept = keep & prog_ok & (loaded_base == prog_base) & (loaded_len == prog_len)
                        m.d.sync += keep_r.eq(kept)
                        with m.If(~dma_idle):
                            # a run stopped by an error left transfers in flight: let
                            # them end before clearing the masters' error bits
                            m.next = "SETTLE"
                        with m.Elif(kept):
                            m.d.comb += clear_dma.eq(1)
                            m.d.sync += fetch_run.eq(1)
                            m.next = "EXEC"
                        with m.Else():
                            m.d.comb += clear_dma.eq(1)
                            m.d.sync += prog_ok.eq(0)
                            m.next = "LOAD_PROG"
            with m.State("SETTLE"):
                with m.If(dma_idle):
                    m.d.comb += clear_dma.eq(1)
                    with m.If(keep_r):
                        m.d.sync += fetch_run.eq(1)
                        m.next = "EXEC"
                    with m.Else():
                        m.d.sync += prog_ok.eq(0)
                        m.next = "LOAD_PROG"
            with m.State("LOAD_PROG"):
                m.d.comb += [rd.cmd.valid.eq(1), rd.cmd.payload.addr.eq(prog_base),
                             rd.cmd.payload.beats.eq(prog_len * beats_per_instr)]
                with m.If(rd.cmd.ready):
                    m.d.sync += [sink.eq(SINK_IMEM), waddr.eq(0), nbeat.eq(0),
                                 words_left.eq(prog_len * words_per_instr)]
                    m.next = "WAIT_PROG"
            with m.State("WAIT_PROG"):
                with m.If(dma_err):
                    fail(bad_dma())
                with m.Elif(words_left == 0):
                    m.d.sync += [fetch_run.eq(1), prog_ok.eq(1), loaded_base.eq(prog_base),
                                 loaded_len.eq(prog_len)]
                    m.next = "EXEC"
            with m.State("EXEC"):       # the instruction at the fetch queue's head
                with m.If(dma_err):
                    fail(bad_dma())
                with m.Elif(~q_rdy):
                    with m.If(f_done):
                        fail(5)
                with m.Elif(ins.op == Op.END):
                    with m.If(~bg_busy & ~wr.busy & ~rd.busy & ~core.busy):
                        m.d.sync += [busy.eq(0), done.eq(1), fetch_run.eq(0)]
                        m.next = "IDLE"
                with m.Elif((ins.op == Op.LOAD_ACT) | (ins.op == Op.STORE_ACT)):
                    # the core's activation banks are the DMA's while the core is idle
                    with m.If(~bg_busy & ~core.busy):
                        with m.If(ins.op == Op.LOAD_ACT):
                            m.d.comb += [rd.cmd.valid.eq(1), rd.cmd.payload.addr.eq(ins.dram_addr),
                                         rd.cmd.payload.beats.eq(ins.words * ratio)]
                            with m.If(rd.cmd.ready):
                                m.d.sync += [sink.eq(SINK_ACT), waddr.eq(ins.in_base), nbeat.eq(0),
                                             words_left.eq(ins.words), wbank_dma.eq(ins.bank_in)]
                                m.next = "WAIT_LOAD"
                        with m.Else():
                            m.d.comb += [wr.cmd.valid.eq(1), wr.cmd.payload.addr.eq(ins.dram_addr),
                                         wr.cmd.payload.beats.eq(ins.words * ratio)]
                            with m.If(wr.cmd.ready):
                                m.d.sync += [st_words.eq(ins.words), st_addr.eq(ins.in_base),
                                             st_bank.eq(ins.bank_in)]
                                m.next = "WAIT_STORE"
                with m.Elif(ins.op == Op.LOAD_BLOCK):
                    with m.If(~bg_busy & (ins.resident | ~bank_full.bit_select(ins.wbank, 1))):
                        m.d.comb += [rd.cmd.valid.eq(1), rd.cmd.payload.addr.eq(ins.dram_addr),
                                     rd.cmd.payload.beats.eq(ins.words * ratio)]
                        with m.If(rd.cmd.ready):
                            m.d.sync += [sink.eq(SINK_W), waddr.eq(ins.w_off), nbeat.eq(0),
                                         pending_p_off.eq(ins.p_off),
                                         words_left.eq(ins.words), wbank_dma.eq(ins.wbank),
                                         pending_p_addr.eq(ins.p_dram_addr),
                                         pending_p_words.eq(ins.p_words), block_pending.eq(1)]
                            m.d.comb += pop.eq(1)
                with m.Elif((ins.op == Op.CONV) | ((ins.op == Op.MAXPOOL) & cfg.maxpool)):
                    # non-blocking: into the core's queues once its weights are on chip
                    ready = (ins.op == Op.MAXPOOL) | ins.resident | bank_full.bit_select(ins.wbank, 1)
                    with m.If(ready):
                        m.d.comb += core.cmd.valid.eq(1)
                        with m.If(core.cmd.ready):
                            m.d.comb += pop.eq(1)
                    with m.Else():
                        m.d.sync += stalls.eq(stalls + 1)
                with m.Else():
                    fail(1)
            with m.State("WAIT_LOAD"):
                with m.If(dma_err):
                    fail(bad_dma())
                with m.Elif(words_left == 0):
                    m.d.comb += pop.eq(1)
                    m.next = "EXEC"
            with m.State("WAIT_STORE"):
                with m.If(dma_err):
                    fail(bad_dma())
                with m.Elif((st_words == 0) & ~st_ov & ~st_pending & ~wr.busy):
                    m.d.comb += pop.eq(1)
                    m.next = "EXEC"
        return m
