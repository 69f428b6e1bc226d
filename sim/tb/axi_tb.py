"""cocotb testbench of the AXI building blocks (run by tests/sim/test_axi.py).

Parameters (``nnloom.sim.runner.tb_params()``): ``kind`` (``reader``, ``writer`` or
``regs``), ``config`` (the component's config as a dict), ``seed`` and
``cases``.  A master case has ``cmds`` (list of [addr, beats]),
``valid_prob``, ``ready_prob`` (our streams), ``pause`` (probability that an
AxiRam channel pauses in a cycle), ``err`` ([lo, hi) byte window where the
RAM answers SLVERR, or null), ``expect_error`` (error_code bits expected
after the case, then cleared) and ``check_cycles``.  A regs case has
``ops`` (number of random reads/writes), ``pause``, ``burst`` (issue the
writes back to back, then the reads) and ``mixed`` (writes and reads all at
once, to disjoint words).

Slave models nobody here wrote: cocotbext-axi's ``AxiRam`` (full AXI4) and
``AxiLiteMaster``.  Scoreboards: reads are compared word for word with the
RAM contents; writes with a byte-array model of the RAM; the register file
with a Python list; burst splitting with :meth:`AxiMasterConfig.bursts`;
cycle counts with ``read_cycles`` / ``write_cycles`` of the config.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from nnloom.hw.axi import AxiLiteRegsConfig, AxiReaderConfig, AxiWriterConfig, RESP_OKAY, RESP_SLVERR
from nnloom.sim.runner import tb_params
from nnloom.sim.tb.streams import Clocked, StreamSink, StreamSource

#: Size of the AxiRam behind the masters (bytes); test addresses stay below.
RAM_SIZE = 1 << 16
#: AxiRam's timing as measured on it (docs/axi.md, "Cycle model"): the
#: first R beat of a burst is valid this many cycles after its AR handshake;
#: a burst's B is valid this many cycles after its last W beat.
AXIRAM_READ_LATENCY = 2
AXIRAM_WRITE_LATENCY = 2


def _pauser(rng: random.Random, prob: float):
    while True:
        yield rng.random() < prob


def _set_pauses(channels, rng: random.Random, prob: float):
    for ch in channels:
        if prob:
            ch.set_pause_generator(_pauser(rng, prob))
        else:
            # cocotbext-axi's clear_pause_generator() kills the generator but
            # leaves ``pause`` as it was: a channel caught paused stays paused.
            ch.clear_pause_generator()
            ch.pause = False


class AxiWatch:
    """Records address-channel handshakes; checks the outstanding limit and
    that ``busy`` is high while any burst is in flight.

    ``ch`` is ``"ar"`` or ``"aw"``; a burst ends at ``rlast`` (reads) or at
    B (writes).  ``bursts`` lists (cycle, addr, beats).
    """

    def __init__(self, clk: Clocked, ch: str, limit: int):
        self.clk, self.dut, self.ch, self.limit = clk, clk.dut, ch, limit
        self.bursts: list[tuple[int, int, int]] = []
        self.ends: list[int] = []
        self.max_seen = 0
        cocotb.start_soon(self._run())

    def _sig(self, name):
        return getattr(self.dut, f"m_axi__{name}")

    async def _run(self):
        ch = self.ch
        while True:
            await FallingEdge(self.clk.clk)
            await ReadOnly()
            now = self.clk.cycle()
            if int(self._sig(f"{ch}valid").value) and int(self._sig(f"{ch}ready").value):
                self.bursts.append((now, int(self._sig(f"{ch}addr").value),
                                    int(self._sig(f"{ch}len").value) + 1))
            if ch == "ar":
                end = (int(self._sig("rvalid").value) and int(self._sig("rready").value)
                       and int(self._sig("rlast").value))
            else:
                end = int(self._sig("bvalid").value) and int(self._sig("bready").value)
            if end:
                self.ends.append(now)
            self.max_seen = max(self.max_seen, len(self.bursts) - len(self.ends))
            assert self.max_seen <= self.limit, f"{self.max_seen} bursts in flight > {self.limit}"
            # busy low means nothing in flight (the writer's "all writes done")
            assert int(self.dut.busy.value) or len(self.bursts) == len(self.ends), \
                f"cycle {now}: busy low with {len(self.bursts) - len(self.ends)} bursts in flight"


def _words(blob: bytes, nbytes: int) -> list[int]:
    return [int.from_bytes(blob[i:i + nbytes], "little") for i in range(0, len(blob), nbytes)]


def _inject_errors(ram: AxiRam, window):
    """Make ``ram`` answer SLVERR for bytes in [lo, hi) (its read/write
    callbacks raise there, which AxiRam turns into SLVERR)."""
    lo, hi = window
    rd, wr = ram.read_if._read, ram.write_if._write

    async def bad_read(address, length):
        if lo <= address < hi:
            raise IOError("injected")
        return await rd(address, length)

    async def bad_write(address, data):
        if lo <= address < hi:
            raise IOError("injected")
        return await wr(address, data)

    ram.read_if._read, ram.write_if._write = bad_read, bad_write
    return rd, wr


async def _settle(clk, dut, budget):
    for _ in range(budget):
        await FallingEdge(clk.clk)
        await ReadOnly()
        if not int(dut.busy.value):
            return
    raise AssertionError(f"busy still high after {budget} cycles")


async def _clear(clk, dut):
    await FallingEdge(clk.clk)
    dut.clear.value = 1
    await FallingEdge(clk.clk)
    dut.clear.value = 0
    await ReadOnly()
    assert int(dut.error.value) == 0 and int(dut.error_code.value) == 0, "clear did not clear"


async def _master(dut, p, write: bool):
    cfg = (AxiWriterConfig if write else AxiReaderConfig).from_dict(p["config"])
    seed = p["seed"]
    nb = cfg.bytes_per_beat
    clk = Clocked(dut)
    dut.clear.value = 0
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi_"), dut.clk, dut.rst, size=RAM_SIZE)
    rng = random.Random(seed)
    model = bytearray(rng.randbytes(RAM_SIZE))
    ram.write(0, bytes(model))
    await clk.reset()
    cmd = StreamSource(clk, "cmd", cfg.cmd_layout, rng=random.Random(seed + 1))
    watch = AxiWatch(clk, "aw" if write else "ar", cfg.max_outstanding)
    if write:
        data = StreamSource(clk, "data", cfg.data_shape, rng=random.Random(seed + 2))
    else:
        data = StreamSink(clk, "data", cfg.data_shape, rng=random.Random(seed + 2))
    channels = ([ram.write_if.aw_channel, ram.write_if.w_channel, ram.write_if.b_channel]
                if write else [ram.read_if.ar_channel, ram.read_if.r_channel])
    for n, case in enumerate(p["cases"]):
        label = f"case {n} {case} (seed {seed})"
        prng = random.Random(seed * 1000 + n)
        _set_pauses(channels, prng, case.get("pause", 0))
        cmd.valid_prob = case.get("valid_prob", 1.0)
        data.valid_prob = data.ready_prob = case.get("ready_prob", 1.0)
        saved = _inject_errors(ram, case["err"]) if case.get("err") else None
        n_cmd, n_bursts = len(cmd.fired), len(watch.bursts)
        words, want_bursts = [], []
        for addr, beats in case["cmds"]:
            if not cfg.aligned(addr):
                if write:
                    words += [0] * beats  # consumed and dropped
                continue
            want_bursts += cfg.bursts(addr, beats)
            if write:
                w = [rng.getrandbits(cfg.data_width) for _ in range(beats)]
                words += w
                blob = b"".join(x.to_bytes(nb, "little") for x in w)
                for i, byte in enumerate(blob):
                    if not (case.get("err") and case["err"][0] <= addr + i < case["err"][1]):
                        model[addr + i] = byte
            else:
                err = case.get("err") or (0, 0)
                words += [0 if err[0] <= addr + i * nb < err[1] else w for i, w in
                          enumerate(_words(bytes(model[addr:addr + beats * nb]), nb))]
        total = sum(b for _, b in case["cmds"])
        budget = 40 * (total + 10 * len(case["cmds"])) + 200
        if write:
            data.send_many(words)
        else:
            n_data = len(data.beats)
        cmd.send_many([{"addr": a, "beats": b} for a, b in case["cmds"]])
        for _ in range(budget):
            await FallingEdge(clk.clk)
            if cmd.idle and (not write or data.idle):
                break
        await ReadOnly()
        if write:
            assert data.idle, f"{label}: data words left unconsumed"
        else:
            await data.wait_for(n_data + len(words), budget)
        await _settle(clk, dut, budget)
        got_bursts = [(a, b) for _, a, b in watch.bursts[n_bursts:]]
        assert got_bursts == want_bursts, f"{label}: bursts {got_bursts} != {want_bursts}"
        if write:
            mem = ram.read(0, RAM_SIZE)
            if mem != bytes(model):
                bad = next(i for i in range(RAM_SIZE) if mem[i] != model[i])
                raise AssertionError(f"{label}: RAM differs first at byte {bad:#x}: "
                                     f"{mem[bad]:#x} != {model[bad]:#x}")
        else:
            got = data.beats[n_data:]
            if got != words:
                bad = next(i for i in range(len(words)) if got[i] != words[i])
                raise AssertionError(f"{label}: word {bad}: {got[bad]:#x} != {words[bad]:#x}")
        code = int(dut.error_code.value)
        assert code == case.get("expect_error", 0), f"{label}: error_code {code}"
        assert int(dut.error.value) == (code != 0), f"{label}: error bit"
        if code:
            await _clear(clk, dut)
        if saved:
            ram.read_if._read, ram.write_if._write = saved
        if case.get("check_cycles"):
            (addr, beats), = case["cmds"]
            if write:
                got_c = watch.ends[-1] - cmd.fired[n_cmd] + 1
                want_c = cfg.write_cycles(beats, addr, AXIRAM_WRITE_LATENCY)
            else:
                got_c = data.fired[-1] - cmd.fired[n_cmd] + 1
                want_c = cfg.read_cycles(beats, addr, AXIRAM_READ_LATENCY)
            dut._log.info("%s: %d beats at %#x: %d cycles (formula %d)",
                          "write" if write else "read", beats, addr, got_c, want_c)
            assert got_c == want_c, f"{label}: {got_c} cycles, formula says {want_c}"
        await clk.cycles(2)


async def _regs(dut, p):
    cfg = AxiLiteRegsConfig.from_dict(p["config"])
    seed = p["seed"]
    rng = random.Random(seed)
    clk = Clocked(dut)
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "axil_"), dut.clk, dut.rst)
    regs = [rng.getrandbits(32) for _ in range(cfg.words)]
    pulses = {"w": 0, "r": 0}
    dut.bus__r_data.value = 0

    async def regfile():
        pending = None
        while True:
            await FallingEdge(clk.clk)
            # r_data is only meaningful the cycle after r_en: garbage otherwise.
            dut.bus__r_data.value = pending if pending is not None else rng.getrandbits(32)
            pending = None
            await ReadOnly()
            a = int(dut.bus__addr.value)
            if int(dut.bus__w_en.value):
                pulses["w"] += 1
                strb, wd = int(dut.bus__w_strb.value), int(dut.bus__w_data.value)
                mask = sum(0xFF << 8 * i for i in range(4) if strb >> i & 1)
                regs[a] = (regs[a] & ~mask) | (wd & mask)
            if int(dut.bus__r_en.value):
                pulses["r"] += 1
                pending = regs[a]

    await clk.reset()
    cocotb.start_soon(regfile())
    model = list(regs)
    for n, case in enumerate(p["cases"]):
        label = f"case {n} {case} (seed {seed})"
        prng = random.Random(seed * 1000 + n)
        _set_pauses([master.write_if.aw_channel, master.write_if.w_channel,
                     master.write_if.b_channel, master.read_if.ar_channel,
                     master.read_if.r_channel], prng, case.get("pause", 0))
        ops = []
        for _ in range(case["ops"]):
            word = prng.randrange(cfg.words)
            if case.get("mixed"):  # writes to even words, reads of odd ones
                word &= ~1
            if prng.random() < 0.5:
                off = prng.randrange(4)
                length = prng.randint(1, 4 - off)
                ops.append(("w", word * 4 + off, prng.randbytes(length)))
            else:
                ops.append(("r", (word | bool(case.get("mixed"))) * 4, None))
        w0, r0 = pulses["w"], pulses["r"]
        if case.get("burst") or case.get("mixed"):
            # back to back: all writes queued at once, then (burst) or at the
            # same time as (mixed) all reads; mixed reads other words, so the
            # order between reads and writes does not matter
            wr = [(a, d, master.init_write(a, d)) for k, a, d in ops if k == "w"]
            if not case.get("mixed"):
                for _, _, e in wr:
                    await e.wait()
            reads = [(a, master.init_read(a, 4)) for k, a, d in ops if k == "r"]
            for a, d, e in wr:
                await e.wait()
                _apply(cfg, model, a, d, e.data.resp, label)
            for a, e in reads:
                await e.wait()
                _check_read(cfg, model, a, e.data, label)
        else:
            for k, a, d in ops:
                if k == "w":
                    resp = await master.write(a, d)
                    _apply(cfg, model, a, d, resp.resp, label)
                else:
                    _check_read(cfg, model, a, await master.read(a, 4), label)
        await clk.cycles(3)
        nw = sum(1 for k, a, _ in ops if k == "w" and cfg.in_range(a))
        nr = sum(1 for k, a, _ in ops if k == "r" and cfg.in_range(a))
        assert (pulses["w"] - w0, pulses["r"] - r0) == (nw, nr), \
            f"{label}: {pulses['w'] - w0} w_en / {pulses['r'] - r0} r_en pulses, want {nw} / {nr}"
        assert regs == model, f"{label}: register file differs from model"


def _apply(cfg, model, addr, data, resp, label):
    ok = cfg.in_range(addr)
    assert int(resp) == (RESP_OKAY if ok else RESP_SLVERR), f"{label}: write {addr:#x} resp {resp}"
    if ok:
        word, off = addr >> 2, addr & 3
        value = bytearray(model[word].to_bytes(4, "little"))
        value[off:off + len(data)] = data
        model[word] = int.from_bytes(value, "little")


def _check_read(cfg, model, addr, resp, label):
    ok = cfg.in_range(addr)
    assert int(resp.resp) == (RESP_OKAY if ok else RESP_SLVERR), f"{label}: read {addr:#x} resp"
    want = model[addr >> 2] if ok else 0
    got = int.from_bytes(resp.data, "little")
    assert got == want, f"{label}: read {addr:#x} got {got:#x} want {want:#x}"


@cocotb.test()
async def axi(dut):
    """Runs the cases of the component named by ``kind``."""
    p = tb_params()
    if p["kind"] == "regs":
        await _regs(dut, p)
    else:
        await _master(dut, p, write=p["kind"] == "writer")
