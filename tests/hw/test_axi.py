"""Configs, signatures, lint and determinism of the AXI blocks, and
Amaranth-simulator tests of the burst splitter and the masters' cycle models."""

import random
import re
from collections import deque

import pytest
from amaranth.lib.wiring import Flow
from amaranth.sim import Simulator

from nnloom.gen.verilog import to_verilog
from nnloom.hw.axi import (BOUNDARY, ERR_MISALIGNED, Axi4Signature, AxiLiteRegsConfig,
                    AxiLiteSignature, AxiReaderConfig, AxiWriterConfig)
from nnloom.hw.axi_lite import AxiLiteRegs
from nnloom.hw.axi_master import AxiReader, AxiWriter, BurstSplitter
from nnloom.hw.catalog import lookup
from nnloom.hw.params import ParamError
from nnloom.sim.lint import assert_emits_clean

BUILD = {"axi-reader": (AxiReader, AxiReaderConfig(max_outstanding=3)),
         "axi-writer": (AxiWriter, AxiWriterConfig(data_width=64, max_burst=256)),
         "axil-regs": (AxiLiteRegs, AxiLiteRegsConfig(addr_width=12, size=100))}


@pytest.mark.parametrize("cls,kw,name", [
    (AxiReaderConfig, dict(max_burst=0), "max_burst"),
    (AxiReaderConfig, dict(max_burst=257), "max_burst"),
    (AxiWriterConfig, dict(max_outstanding=9), "max_outstanding"),
    (AxiWriterConfig, dict(data_width=48), "data_width"),
    (AxiReaderConfig, dict(addr_width=12), "addr_width"),
    (AxiLiteRegsConfig, dict(addr_width=3), "addr_width"),
    (AxiLiteRegsConfig, dict(addr_width=17), "addr_width"),
    (AxiLiteRegsConfig, dict(addr_width=6, size=17), "size"),
    (AxiLiteRegsConfig, dict(data_width=64), "data_width"),
])
def test_config_errors(cls, kw, name):
    with pytest.raises(ParamError) as e:
        cls(**kw)
    assert e.value.name == name and str(list(kw.values())[0]) in str(e.value)


def test_signature_port_names_match_cocotbext_axi():
    # cocotbext-axi joins prefix and signal with "_": prefix "m_axi_" finds
    # "m_axi__awaddr", which is how Amaranth names member m_axi, field awaddr.
    text = to_verilog(AxiReader(AxiReaderConfig()))
    for sig in ["arid", "araddr", "arlen", "arsize", "arburst", "arvalid", "arready",
                "rid", "rdata", "rlast", "rvalid", "rready", "rresp"]:
        assert re.search(rf"\bm_axi__{sig}\b", text), sig
    text = to_verilog(AxiLiteRegs(AxiLiteRegsConfig()))
    for sig in ["awaddr", "wdata", "wstrb", "bresp", "araddr", "rdata", "rresp"]:
        assert re.search(rf"\baxil__{sig}\b", text), sig
    lite = AxiLiteSignature(8)
    assert lite.members["awaddr"].flow == Flow.Out and lite.members["rdata"].flow == Flow.In
    assert lite == AxiLiteSignature(8, 32) and lite != AxiLiteSignature(9)
    assert Axi4Signature(32, 64, 2) == Axi4Signature(32, 64, 2) != Axi4Signature(32, 32, 2)
    assert repr(Axi4Signature(32, 64, 2)) == "Axi4Signature(32, 64, 2)"
    with pytest.raises(TypeError, match="data_width"):
        AxiLiteSignature(8, 16)


@pytest.mark.parametrize("name", list(BUILD))
def test_lint_and_determinism(name):
    cls, cfg = BUILD[name]
    assert_emits_clean(lambda: cls(cfg))
    entry = lookup(name)
    assert entry.config_class() is type(cfg) and entry.component_class() is cls


def test_bursts_rule():
    rng = random.Random(5)
    for cfg in [AxiReaderConfig(), AxiReaderConfig(data_width=64, max_burst=256),
                AxiWriterConfig(max_burst=1)]:
        for _ in range(300):
            beats = rng.randint(1, 2000)
            addr = rng.randrange(0, 1 << 20) // cfg.bytes_per_beat * cfg.bytes_per_beat
            bursts = cfg.bursts(addr, beats)
            assert sum(n for _, n in bursts) == beats
            a = addr
            for ba, n in bursts:
                assert ba == a and 1 <= n <= cfg.max_burst
                assert ba // BOUNDARY == (ba + n * cfg.bytes_per_beat - 1) // BOUNDARY
                a += n * cfg.bytes_per_beat
            # maximal: a burst is short only at the end or at a boundary
            for ba, n in bursts[:-1]:
                assert n == cfg.max_burst or (ba + n * cfg.bytes_per_beat) % BOUNDARY == 0


def _run(dut, bench, deadline=None):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run_until(deadline) if deadline else sim.run()


@pytest.mark.parametrize("keep", [False, True])
def test_splitter_matches_rule(keep):
    cfg = AxiWriterConfig(data_width=64, max_burst=8)
    dut = BurstSplitter(cfg, keep_misaligned=keep)
    rng = random.Random(9)
    cmds = [(rng.randrange(0, 1 << 16) // 8 * 8 + (rng.random() < 0.2) * 4, rng.randint(0, 70))
            for _ in range(60)]
    want = []
    for a, n in cmds:
        if cfg.aligned(a):
            want += [(ba, bn, 0) for ba, bn in cfg.bursts(a, n)]
        elif keep:
            want += [(ba, bn, 1) for ba, bn in cfg.bursts(0, n)]

    async def bench(ctx):
        got, queue, mis = [], deque(cmds), 0
        for _ in range(20000):
            if queue:
                ctx.set(dut.cmd.valid, 1)
                ctx.set(dut.cmd.payload, {"addr": queue[0][0], "beats": queue[0][1]})
            else:
                ctx.set(dut.cmd.valid, 0)
            ready = rng.random() < 0.6
            ctx.set(dut.burst.ready, ready)
            if ready and ctx.get(dut.burst.valid):
                b = ctx.get(dut.burst.payload)
                got.append((b.addr, b.len, b.discard))
            mis += ctx.get(dut.misaligned)
            if queue and ctx.get(dut.cmd.ready):
                queue.popleft()
            await ctx.tick()
            if not queue and not ctx.get(dut.busy):
                break
        assert got == want
        assert mis == sum(1 for a, _ in cmds if not cfg.aligned(a))
    _run(dut, bench)


def _slave_bench(dut, cfg, write, cases, latency, log):
    """An AXI slave that takes every address at once and answers a burst
    ``latency`` cycles after its AR (first R) or its last W (B); R beats and
    Bs one per cycle, in order.  Streams on our
    side always valid/ready."""
    axi = dut.m_axi

    async def bench(ctx):
        ctx.set(axi.awready if write else axi.arready, 1)
        ctx.set(axi.wready, 1)
        for beats, addr in cases:
            pend, wl, due, t, start, end = deque(), deque(), deque(), 0, None, None
            ctx.set(dut.cmd.payload, {"addr": addr, "beats": beats})
            ctx.set(dut.cmd.valid, 1)
            ctx.set(dut.data.ready if not write else dut.data.valid, 1)
            while end is None or ctx.get(dut.busy):
                assert t < 10 * beats + 100, "hung"
                took = ctx.get(dut.cmd.valid) and ctx.get(dut.cmd.ready)
                if took:
                    start = t
                if write:
                    if ctx.get(axi.awvalid):
                        pend.append(t)
                    if ctx.get(axi.wvalid) and ctx.get(axi.wlast):
                        wl.append(t)
                    while pend and wl:  # both halves of a burst seen
                        assert pend[0] < wl[0], "last W before its AW"
                        pend.popleft()
                        due.append(max(wl.popleft() + latency, due[-1] + 1 if due else 0))
                    fire = bool(due) and due[0] <= t
                    ctx.set(axi.bvalid, fire)
                    if fire:
                        due.popleft()
                        end = t
                else:
                    if ctx.get(axi.arvalid):
                        pend.append([max(t + latency, (due[-1][0] + due[-1][1]) if due else 0),
                                     ctx.get(axi.arlen) + 1])
                        due.append(pend.pop())
                    live = bool(due) and due[0][0] <= t
                    ctx.set(axi.rvalid, live)
                    ctx.set(axi.rlast, live and due[0][1] == 1)
                    if live:
                        end = t
                        due[0][1] -= 1
                        due[0][0] += 1
                        if due[0][1] == 0:
                            due.popleft()
                await ctx.tick()
                t += 1
                if took:
                    ctx.set(dut.cmd.valid, 0)
            ctx.set(axi.rvalid, 0) if not write else ctx.set(axi.bvalid, 0)
            log.append((beats, addr, end - start + 1))
    return bench


@pytest.mark.parametrize("write", [False, True])
@pytest.mark.parametrize("kw", [dict(max_outstanding=1, max_burst=4),
                                dict(max_outstanding=2, max_burst=16),
                                dict(max_outstanding=3, max_burst=2, data_width=64),
                                dict(max_outstanding=8, max_burst=256)])
@pytest.mark.parametrize("latency", [1, 2, 5])
def test_cycle_model_against_ideal_slave(write, kw, latency):
    cfg = (AxiWriterConfig if write else AxiReaderConfig)(**kw)
    dut = (AxiWriter if write else AxiReader)(cfg)
    nb = cfg.bytes_per_beat
    cases = [(1, 0), (7, BOUNDARY), (33, 2 * BOUNDARY - 3 * nb), (100, 3 * BOUNDARY + nb)]
    log = []
    _run(dut, _slave_bench(dut, cfg, write, cases, latency, log))
    model = cfg.write_cycles if write else cfg.read_cycles
    assert [c for _, _, c in log] == [model(b, a, latency) for b, a in cases], log


def test_misaligned_sets_error_and_clear():
    cfg = AxiReaderConfig()
    dut = AxiReader(cfg)

    async def bench(ctx):
        ctx.set(dut.cmd.payload, {"addr": 2, "beats": 5})
        ctx.set(dut.cmd.valid, 1)
        assert ctx.get(dut.cmd.ready)
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        for _ in range(5):
            assert not ctx.get(dut.m_axi.arvalid) and not ctx.get(dut.busy)
            assert ctx.get(dut.error) and ctx.get(dut.error_code) == ERR_MISALIGNED
            await ctx.tick()
        ctx.set(dut.clear, 1)
        await ctx.tick()
        assert not ctx.get(dut.error) and ctx.get(dut.error_code) == 0
        # an error in the same cycle as clear wins
        ctx.set(dut.cmd.payload, {"addr": 7, "beats": 1})
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        ctx.set(dut.clear, 0)
        assert ctx.get(dut.error_code) == ERR_MISALIGNED
    _run(dut, bench)


def test_writer_w_does_not_wait_for_awready():
    # AXI4 A3.3.1: a master must not wait for AWREADY before asserting WVALID.
    cfg = AxiWriterConfig(max_burst=4)
    dut = AxiWriter(cfg)

    async def bench(ctx):
        ctx.set(dut.m_axi.awready, 0)
        ctx.set(dut.m_axi.wready, 1)
        ctx.set(dut.data.valid, 1)
        ctx.set(dut.cmd.payload, {"addr": 0x100, "beats": 6})
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        seen = []
        for _ in range(12):
            if ctx.get(dut.m_axi.wvalid):
                seen.append(ctx.get(dut.m_axi.wlast))
            await ctx.tick()
        assert seen == [0, 0, 0, 1], seen  # first burst's W, AW still pending
        assert ctx.get(dut.m_axi.awvalid) and ctx.get(dut.m_axi.awaddr) == 0x100
        assert ctx.get(dut.busy)
    _run(dut, bench)


@pytest.mark.parametrize("size", [0, 20])
def test_axil_regs_timing_and_order(size):
    """Random writes (AW/W in random order and gaps) and reads with random
    bready/rready; exact cycles of w_en, bvalid, r_en, rvalid from the config;
    a register file model behind the bus."""
    cfg = AxiLiteRegsConfig(addr_width=7, size=size)
    dut = AxiLiteRegs(cfg)
    axil, bus = dut.axil, dut.bus
    rng = random.Random(21 + size)
    regs = [rng.getrandbits(32) for _ in range(cfg.words)]
    model = list(regs)

    async def bench(ctx):
        t = 0
        r_pending = None

        async def step():
            # one clock: the register file behind the bus reacts like RAM
            nonlocal t, r_pending
            ctx.set(bus.r_data, r_pending if r_pending is not None else rng.getrandbits(32))
            r_pending = None
            if ctx.get(bus.w_en):
                a, strb, wd = ctx.get(bus.addr), ctx.get(bus.w_strb), ctx.get(bus.w_data)
                mask = sum(0xFF << 8 * i for i in range(4) if strb >> i & 1)
                regs[a] = (regs[a] & ~mask) | (wd & mask)
                events.append(("w_en", t))
            if ctx.get(bus.r_en):
                r_pending = regs[ctx.get(bus.addr)]
                events.append(("r_en", t))
            await ctx.tick()
            t += 1

        for op in range(150):
            events = []
            start = t
            addr = rng.randrange(cfg.words) * 4
            ok = cfg.in_range(addr)
            if rng.random() < 0.5:
                data, strb = rng.getrandbits(32), rng.randrange(16)
                aw_at, w_at = rng.randrange(4), rng.randrange(4)
                done = {"aw": None, "w": None}
                while done["aw"] is None or done["w"] is None:
                    for ch, at, sets in (("aw", aw_at, [(axil.awaddr, addr)]),
                                         ("w", w_at, [(axil.wdata, data), (axil.wstrb, strb)])):
                        on = done[ch] is None and t - start >= at
                        ctx.set(getattr(axil, f"{ch}valid"), on)
                        for sig, v in sets:
                            ctx.set(sig, v)
                        if on and ctx.get(getattr(axil, f"{ch}ready")):
                            done[ch] = t
                    await step()
                ctx.set(axil.awvalid, 0)
                ctx.set(axil.wvalid, 0)
                pair = max(done.values())
                while not ctx.get(axil.bvalid):
                    await step()
                assert t - pair == cfg.write_response_latency, (op, t, pair)
                for _ in range(rng.randrange(3)):  # bready low: bvalid holds
                    await step()
                    assert ctx.get(axil.bvalid)
                assert ctx.get(axil.bresp) == (0 if ok else 2)
                ctx.set(axil.bready, 1)
                await step()
                ctx.set(axil.bready, 0)
                if ok:
                    mask = sum(0xFF << 8 * i for i in range(4) if strb >> i & 1)
                    model[addr >> 2] = (model[addr >> 2] & ~mask) | (data & mask)
                    assert events == [("w_en", pair + cfg.write_latency)], events
                else:
                    assert events == []
            else:
                ctx.set(axil.araddr, addr + rng.randrange(4))
                ctx.set(axil.arvalid, 1)
                while not ctx.get(axil.arready):
                    await step()
                ar = t
                await step()
                ctx.set(axil.arvalid, 0)
                while not ctx.get(axil.rvalid):
                    await step()
                assert t - ar == cfg.read_latency
                want = model[addr >> 2] if ok else 0
                for _ in range(rng.randrange(3)):  # rready low: rvalid, rdata hold
                    await step()
                    assert ctx.get(axil.rvalid) and ctx.get(axil.rdata) == want
                assert ctx.get(axil.rdata) == want and ctx.get(axil.rresp) == (0 if ok else 2)
                ctx.set(axil.rready, 1)
                await step()
                ctx.set(axil.rready, 0)
                assert events == ([("r_en", ar + 1)] if ok else []), events
            assert regs == model

    _run(dut, bench)


def test_closed_forms_of_cycle_models():
    """docs/axi.md's closed forms agree with the configs' models."""
    for L in (1, 2, 5):
        for mb, dw in [(1, 32), (3, 64), (16, 32), (256, 64)]:
            for addr in (0x1000, 0x1ff0, 0x1ff8, 0x1ff8 - 8 * 37):
                for n in (1, 2, 5, 16, 300, 1024):
                    r1 = AxiReaderConfig(max_burst=mb, max_outstanding=1, data_width=dw)
                    w1 = AxiWriterConfig(max_burst=mb, max_outstanding=1, data_width=dw)
                    k = len(r1.bursts(addr, n))
                    assert r1.read_cycles(n, addr, L) == n + 1 + k * L
                    assert w1.write_cycles(n, addr, L) == n + 2 + L + (k - 1) * (L + 1)
                    r2, w2 = r1.replace(max_outstanding=2), w1.replace(max_outstanding=2)
                    mid = [b for _, b in r2.bursts(addr, n)[1:-1]]
                    if all(b >= L for b in mid):
                        assert r2.read_cycles(n, addr, L) == n + 1 + L
                    if all(b >= L + 1 for b in mid):
                        assert w2.write_cycles(n, addr, L) == n + 2 + L
    with pytest.raises(ValueError, match="multiple of 8"):
        AxiReaderConfig(data_width=64).bursts(0x1ffc, 4)
