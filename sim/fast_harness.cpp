// nnloom fast simulation harness: the accelerator's emitted Verilog
// (Verilator --cc, top module "top") driven from C++, no Python per cycle.
//
// It does what sim/tb/accel_run_tb.py + sim/accel_runtime.py do under cocotb,
// cycle for cycle on the DRAM side:
//
// * DRAM: a model of cocotbext-axi's AxiRam (AxiSlaveRead / AxiSlaveWrite on
//   StreamSink / StreamSource channels, queue_occupancy_limit 2, no pauses).
//   Under cocotb the channel coroutines wake on the rising edge *before* the
//   design evaluates it (they see the pre-edge outputs) and their writes land
//   in the ReadWrite phase after it: every xREADY / xVALID they drive is a
//   register.  Tasks woken by the edge run first (the sinks and sources), the
//   tasks they wake (the read and write processes, through the queues) after
//   them in the same time step.  edge() below does the same, in that order.
// * Host: an AXI4-Lite master writes PROG_BASE, PROG_LEN and CTRL, waits for
//   irq, reads STATUS and ERR_PC, clears done, reads the output region
//   (backdoor, as AxiRam.read does) and CYCLES, BEATS, STALLS, LAYER[i].  Its
//   bus timing differs from cocotbext-axi's AxiLiteMaster, which changes no
//   counter: CYCLES counts from the start to done, between two host accesses.
// * Sessions: every session is a fresh model (a new simulator process under
//   cocotb): reset, DRAM image loaded, the preload program (resident weights)
//   before the first inference, then the runs; CTRL bit 3 (keep the program)
//   on a run of the same region and length as the previous one.
//
// Job file (little-endian u64 fields, see sim/fast.py): magic "NNLFAST1",
// data_width, ram_size, timeout, n_layers, input_addr, input_len,
// output_addr, output_len, prog_base, prog_len, preload_base, preload_len,
// the register offsets CTRL STATUS PROG_BASE PROG_LEN ERR_PC CYCLES BEATS
// STALLS LAYER0, image_len, image bytes, n_sessions, then per session n_runs
// and n_runs x input_len input bytes.
//
// Output (JSON): {"results": [{"session", "run", "output" (hex), "cycles",
// "beats", "stalls", "kept", "layers"}], "error": "" or a message,
// "sim_cycles", "seconds"}.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "Vtop.h"
#include "verilated.h"

// Verilator escapes "__" in identifiers as "___05F".
#define M(x) m_axi___05F##x
#define S(x) s_axil___05F##x

double sc_time_stamp() { return 0; }

namespace {

typedef std::vector<uint8_t> Bytes;

// ---- signal access, any width -------------------------------------------
template <class T>
typename std::enable_if<std::is_integral<T>::value>::type put_bytes(T &sig, const uint8_t *b,
                                                                    size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < 8; i++) v |= uint64_t(b[i]) << (8 * i);
    sig = T(v);
}
template <std::size_t N>
void put_bytes(VlWide<N> &sig, const uint8_t *b, size_t n) {
    for (std::size_t w = 0; w < N; w++) {
        uint32_t v = 0;
        for (size_t i = 0; i < 4 && 4 * w + i < n; i++) v |= uint32_t(b[4 * w + i]) << (8 * i);
        sig[w] = v;
    }
}
template <class T>
typename std::enable_if<std::is_integral<T>::value>::type get_bytes(const T &sig, uint8_t *b,
                                                                    size_t n) {
    uint64_t v = uint64_t(sig);
    for (size_t i = 0; i < n; i++) b[i] = i < 8 ? uint8_t(v >> (8 * i)) : 0;
}
template <std::size_t N>
void get_bytes(const VlWide<N> &sig, uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++) b[i] = uint8_t(sig[i / 4] >> (8 * (i % 4)));
}
template <class T>
typename std::enable_if<std::is_integral<T>::value, uint64_t>::type get_u64(const T &sig) {
    return uint64_t(sig);
}
template <std::size_t N>
uint64_t get_u64(const VlWide<N> &sig) {
    return uint64_t(sig[0]) | (N > 1 ? uint64_t(sig[1]) << 32 : 0);
}

struct Fail : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ---- the job ---------------------------------------------------------------
struct Job {
    uint64_t data_width, ram_size, timeout, n_layers, input_addr, input_len, output_addr,
        output_len, prog_base, prog_len, preload_base, preload_len;
    uint64_t r_ctrl, r_status, r_prog_base, r_prog_len, r_err_pc, r_cycles, r_beats, r_stalls,
        r_layer0;
    Bytes image;
    std::vector<std::vector<Bytes>> sessions;
};

struct Reader {
    FILE *f;
    uint64_t u64() {
        uint8_t b[8];
        if (fread(b, 1, 8, f) != 8) throw Fail("job file: truncated");
        uint64_t v = 0;
        for (int i = 0; i < 8; i++) v |= uint64_t(b[i]) << (8 * i);
        return v;
    }
    Bytes bytes(uint64_t n) {
        Bytes b(n);
        if (n && fread(b.data(), 1, n, f) != n) throw Fail("job file: truncated");
        return b;
    }
};

Job read_job(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) throw Fail(std::string("cannot open the job file ") + path);
    Reader r{f};
    char magic[8];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "NNLFAST1", 8) != 0)
        throw Fail("job file: bad magic");
    Job j;
    uint64_t *fields[] = {&j.data_width,  &j.ram_size,    &j.timeout,     &j.n_layers,
                          &j.input_addr,  &j.input_len,   &j.output_addr, &j.output_len,
                          &j.prog_base,   &j.prog_len,    &j.preload_base, &j.preload_len,
                          &j.r_ctrl,      &j.r_status,    &j.r_prog_base, &j.r_prog_len,
                          &j.r_err_pc,    &j.r_cycles,    &j.r_beats,     &j.r_stalls,
                          &j.r_layer0};
    for (uint64_t *p : fields) *p = r.u64();
    j.image = r.bytes(r.u64());
    uint64_t ns = r.u64();
    for (uint64_t s = 0; s < ns; s++) {
        uint64_t nr = r.u64();
        std::vector<Bytes> runs;
        for (uint64_t k = 0; k < nr; k++) runs.push_back(r.bytes(j.input_len));
        j.sessions.push_back(runs);
    }
    fclose(f);
    return j;
}

// ---- AxiRam ----------------------------------------------------------------
enum { OKAY = 0, SLVERR = 2 };
enum { FIXED = 0, INCR = 1, WRAP = 2 };

struct Addr {   // an AR or AW beat
    uint64_t id, addr, len, size, burst;
};
struct RBeat {
    uint64_t id, last, resp;
    Bytes data;
};
struct WBeat {
    uint64_t strb, last;
    Bytes data;
};
struct Burst {  // the address walk of AxiSlaveRead/Write._process_*
    uint64_t id = 0, length = 0, n = 0, num_bytes = 0, cur = 0, lower = 0, upper = 0, burst = 0;
    void start(const Addr &a, uint64_t lanes) {
        id = a.id;
        num_bytes = uint64_t(1) << a.size;
        if (!(num_bytes > 0 && num_bytes <= lanes)) throw Fail("AxiRam: burst size above the bus width");
        uint64_t aligned = (a.addr / num_bytes) * num_bytes;
        length = a.len + 1;
        uint64_t transfer = num_bytes * length;
        burst = a.burst;
        if (burst == WRAP) {
            lower = (a.addr / transfer) * transfer;
            upper = lower + transfer;
        }
        if (burst == INCR && 0x1000 - (aligned & 0xfff) < transfer)
            throw Fail("AxiRam: an INCR burst crosses a 4 KiB boundary");
        cur = aligned;
        n = 0;
    }
    void next() {
        if (burst != FIXED) {
            cur += num_bytes;
            if (burst == WRAP && cur == upper) cur = lower;
        }
        n++;
    }
};

struct Dram {
    Bytes mem;
    uint64_t lanes;
    // channel state: what each sink / source drives, and its queue
    bool arready = false, awready = false, wready = false, rvalid = false, bvalid = false;
    std::deque<Addr> ar_q, aw_q;
    std::deque<WBeat> w_q;
    std::deque<RBeat> r_q, b_q;
    RBeat r_drive, b_drive;
    // the read process: idle, or holding a built beat of a burst
    bool rd_active = false, rd_held = false;
    Burst rd;
    RBeat rd_beat;
    // the write process: idle, in a burst waiting for W, or holding its B
    bool wr_active = false, wr_b = false;
    Burst wr;
    uint64_t wr_resp = OKAY;

    bool read(uint64_t addr, uint8_t *out, uint64_t n) {   // AxiRamRead._read
        uint64_t a = addr % mem.size();
        if (a + n > mem.size()) return false;
        memcpy(out, &mem[a], n);
        return true;
    }
    bool write(uint64_t addr, const uint8_t *in, uint64_t n) {
        uint64_t a = addr % mem.size();
        if (a + n > mem.size()) return false;
        memcpy(&mem[a], in, n);
        return true;
    }
    void reset() {
        arready = awready = wready = rvalid = bvalid = false;
        ar_q.clear(); aw_q.clear(); w_q.clear(); r_q.clear(); b_q.clear();
        rd_active = rd_held = wr_active = wr_b = false;
    }
    void build_beat() {
        uint64_t word = (rd.cur / lanes) * lanes;
        rd_beat.id = rd.id;
        rd_beat.last = rd.n == rd.length - 1;
        rd_beat.resp = OKAY;
        rd_beat.data.assign(lanes, 0);
        if (!read(word, rd_beat.data.data(), lanes)) {
            std::fill(rd_beat.data.begin(), rd_beat.data.end(), 0);
            rd_beat.resp = SLVERR;
        }
        rd_held = true;
    }
    // the read process, after the edge's channel tasks
    void read_process() {
        for (;;) {
            if (!rd_active) {
                if (ar_q.empty()) return;
                rd.start(ar_q.front(), lanes);
                ar_q.pop_front();
                rd_active = true;
                build_beat();
            }
            if (rd_held) {
                if (r_q.size() >= 2) return;          // send() waits for a dequeue
                r_q.push_back(rd_beat);
                rd_held = false;
                rd.next();
                if (rd.n < rd.length) build_beat();
                else rd_active = false;
            }
        }
    }
    void write_process() {
        for (;;) {
            if (!wr_active) {
                if (aw_q.empty()) return;
                wr.start(aw_q.front(), lanes);
                aw_q.pop_front();
                wr_active = true;
                wr_b = false;
                wr_resp = OKAY;
            }
            while (!wr_b) {
                if (w_q.empty()) return;              // recv() waits
                WBeat w = w_q.front();
                w_q.pop_front();
                uint64_t word = (wr.cur / lanes) * lanes;
                uint64_t start = 0;
                bool in = false;
                for (uint64_t i = 0; i <= lanes; i++) {   // runs of enabled byte lanes
                    bool on = i < lanes && ((w.strb >> i) & 1);
                    if (on && !in) { start = i; in = true; }
                    if (!on && in) {
                        if (!write(word + start, &w.data[start], i - start)) wr_resp = SLVERR;
                        in = false;
                    }
                }
                if (bool(w.last) != (wr.n == wr.length - 1))
                    throw Fail("AxiRam: WLAST does not mark the burst's last beat");
                wr.next();
                if (wr.n == wr.length) wr_b = true;
            }
            if (b_q.size() >= 2) return;
            b_q.push_back(RBeat{wr.id, 0, wr_resp, Bytes()});
            wr_active = false;
        }
    }
};

// ---- the simulation --------------------------------------------------------
struct Sim {
    const Job &job;
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<Vtop> top;
    Dram dram;
    uint64_t lanes, cycles = 0;
    // host (AXI4-Lite master) state
    bool h_aw = false, h_w = false, h_b = false, h_ar = false, h_r = false;
    uint32_t h_rdata = 0;
    uint64_t h_rresp = 0, h_bresp = 0;

    Sim(const Job &j) : job(j), ctx(new VerilatedContext) {
        top.reset(new Vtop(ctx.get(), "top"));
        lanes = j.data_width / 8;
        dram.lanes = lanes;
        dram.mem.assign(j.ram_size, 0);
        if (j.image.size() > j.ram_size) throw Fail("job: the image is larger than the DRAM");
        memcpy(dram.mem.data(), j.image.data(), j.image.size());
    }
    ~Sim() { top->final(); }

    void apply() {   // the model's outputs onto the design's inputs
        top->M(arready) = dram.arready;
        top->M(awready) = dram.awready;
        top->M(wready) = dram.wready;
        top->M(rvalid) = dram.rvalid;
        top->M(bvalid) = dram.bvalid;
        if (dram.rvalid) {
            put_bytes(top->M(rdata), dram.r_drive.data.data(), lanes);
            top->M(rid) = dram.r_drive.id;
            top->M(rlast) = dram.r_drive.last;
            top->M(rresp) = dram.r_drive.resp;
        }
        if (dram.bvalid) {
            top->M(bid) = dram.b_drive.id;
            top->M(bresp) = dram.b_drive.resp;
        }
    }

    // One rising edge: every handshake sampled before it, the new outputs after it.
    void edge() {
        Dram &d = dram;
        bool rst = top->rst;
        // sample the design's pre-edge outputs
        bool arvalid = top->M(arvalid), awvalid = top->M(awvalid), wvalid = top->M(wvalid);
        bool rready = top->M(rready), bready = top->M(bready);
        if (!rst) {
            // channel tasks (woken by the edge): sinks, then sources
            if (d.arready && arvalid)
                d.ar_q.push_back(Addr{get_u64(top->M(arid)), get_u64(top->M(araddr)),
                                      get_u64(top->M(arlen)), get_u64(top->M(arsize)),
                                      get_u64(top->M(arburst))});
            d.arready = d.ar_q.size() < 2;
            if (d.awready && awvalid)
                d.aw_q.push_back(Addr{get_u64(top->M(awid)), get_u64(top->M(awaddr)),
                                      get_u64(top->M(awlen)), get_u64(top->M(awsize)),
                                      get_u64(top->M(awburst))});
            d.awready = d.aw_q.size() < 2;
            if (d.wready && wvalid) {
                WBeat w;
                w.data.assign(lanes, 0);
                get_bytes(top->M(wdata), w.data.data(), lanes);
                w.strb = get_u64(top->M(wstrb));
                w.last = top->M(wlast);
                d.w_q.push_back(w);
            }
            d.wready = d.w_q.size() < 2;
            if ((rready && d.rvalid) || !d.rvalid) {
                if (!d.r_q.empty()) {
                    d.r_drive = d.r_q.front();
                    d.r_q.pop_front();
                    d.rvalid = true;
                } else {
                    d.rvalid = false;
                }
            }
            if ((bready && d.bvalid) || !d.bvalid) {
                if (!d.b_q.empty()) {
                    d.b_drive = d.b_q.front();
                    d.b_q.pop_front();
                    d.bvalid = true;
                } else {
                    d.bvalid = false;
                }
            }
            // the processes they woke
            d.read_process();
            d.write_process();
        }
        // host: AXI4-Lite handshakes
        if (h_aw && top->S(awready)) h_aw = false;
        if (h_w && top->S(wready)) h_w = false;
        if (h_b && top->S(bvalid)) {
            h_bresp = top->S(bresp);
            h_b = false;
        }
        if (h_ar && top->S(arready)) h_ar = false;
        if (h_r && top->S(rvalid)) {
            h_rdata = top->S(rdata);
            h_rresp = top->S(rresp);
            h_r = false;
        }
        top->clk = 1;
        top->eval();
        apply();
        top->S(awvalid) = h_aw;
        top->S(wvalid) = h_w;
        top->S(bready) = h_b;
        top->S(arvalid) = h_ar;
        top->S(rready) = h_r;
        top->clk = 0;
        top->eval();
        cycles++;
    }

    void reset() {
        dram.reset();
        top->clk = 0;
        top->rst = 1;
        apply();
        top->eval();
        for (int i = 0; i < 2; i++) edge();
        top->rst = 0;
        top->eval();
    }

    void write_reg(uint64_t addr, uint32_t value) {
        top->S(awaddr) = addr;
        top->S(awprot) = 0;
        top->S(wdata) = value;
        top->S(wstrb) = 0xF;
        h_aw = h_w = h_b = true;
        top->S(awvalid) = 1;
        top->S(wvalid) = 1;
        top->S(bready) = 1;
        top->eval();
        for (uint64_t n = 0; h_b; n++) {
            if (n > 10000) throw Fail("the register write got no response");
            edge();
        }
        if (h_bresp != OKAY) throw Fail("a register write got an error response");
    }
    uint32_t read_reg(uint64_t addr) {
        top->S(araddr) = addr;
        top->S(arprot) = 0;
        h_ar = h_r = true;
        top->S(arvalid) = 1;
        top->S(rready) = 1;
        top->eval();
        for (uint64_t n = 0; h_r; n++) {
            if (n > 10000) throw Fail("the register read got no response");
            edge();
        }
        return h_rdata;
    }
};

struct Status {
    uint32_t status, err_pc;
};

std::string hex(const Bytes &b) {
    static const char *d = "0123456789abcdef";
    std::string s;
    s.reserve(2 * b.size());
    for (uint8_t c : b) {
        s += d[c >> 4];
        s += d[c & 15];
    }
    return s;
}

const char *error_name(uint32_t code) {
    switch (code) {
        case 1: return "illegal opcode";
        case 2: return "misaligned DRAM address";
        case 3: return "AXI error response";
        case 4: return "PROG_LEN out of range";
        case 5: return "ran past the end of the program";
    }
    return "";
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s JOB OUT.json\n", argv[0]);
        return 2;
    }
    std::string results, error;
    uint64_t total = 0;
    auto t0 = std::chrono::steady_clock::now();
    try {
        Job job = read_job(argv[1]);
        if (job.data_width % 8 || job.data_width == 0) throw Fail("job: bad data width");
        for (size_t s = 0; s < job.sessions.size(); s++) {
            Sim sim(job);
            sim.reset();
            bool last_valid = false, last_preload = false, loaded = false;
            uint64_t last_len = 0;
            // AccelRuntime.run: start a region, wait for done; returns the status
            auto run = [&](bool preload, uint64_t base, uint64_t n, bool &kept) {
                sim.write_reg(job.r_prog_base, uint32_t(base));
                sim.write_reg(job.r_prog_len, uint32_t(n));
                bool same = last_valid && last_preload == preload && last_len == n;
                last_valid = true;
                last_preload = preload;
                last_len = n;
                kept = same;
                sim.write_reg(job.r_ctrl, same ? 0b1101 : 0b101);
                for (uint64_t c = 0; !sim.top->irq; c++) {
                    if (c >= job.timeout)
                        throw Fail("no interrupt within " + std::to_string(job.timeout) + " cycles");
                    sim.edge();
                }
                Status st{sim.read_reg(job.r_status), 0};
                st.err_pc = sim.read_reg(job.r_err_pc);
                sim.write_reg(job.r_ctrl, 0b010);
                return st;
            };
            for (size_t k = 0; k < job.sessions[s].size(); k++) {
                bool kept = false;
                if (job.preload_len && !loaded) {
                    Status st = run(true, job.preload_base, job.preload_len, kept);
                    if ((st.status >> 2) & 1) {
                        uint32_t code = (st.status >> 8) & 0xFF;
                        throw Fail("accelerator error " + std::to_string(code) + " (" +
                                   error_name(code) + ") at preload instruction " +
                                   std::to_string(st.err_pc));
                    }
                    loaded = true;
                }
                sim.dram.write(job.input_addr, job.sessions[s][k].data(), job.input_len);
                Status st = run(false, job.prog_base, job.prog_len, kept);
                if ((st.status >> 2) & 1) {
                    uint32_t code = (st.status >> 8) & 0xFF;
                    throw Fail("accelerator error " + std::to_string(code) + " (" +
                               error_name(code) + ") at instruction " + std::to_string(st.err_pc));
                }
                Bytes out(job.output_len);
                sim.dram.read(job.output_addr, out.data(), job.output_len);
                uint32_t cyc = sim.read_reg(job.r_cycles), beats = sim.read_reg(job.r_beats),
                         stalls = sim.read_reg(job.r_stalls);
                std::string layers;
                for (uint64_t i = 0; i < job.n_layers; i++) {
                    if (i) layers += ", ";
                    layers += std::to_string(sim.read_reg(job.r_layer0 + 4 * i));
                }
                if (!results.empty()) results += ",\n";
                results += "{\"session\": " + std::to_string(s) + ", \"run\": " +
                           std::to_string(k) + ", \"output\": \"" + hex(out) +
                           "\", \"cycles\": " + std::to_string(cyc) + ", \"beats\": " +
                           std::to_string(beats) + ", \"stalls\": " + std::to_string(stalls) +
                           ", \"kept\": " + (kept ? "true" : "false") + ", \"layers\": [" +
                           layers + "]}";
            }
            total += sim.cycles;
        }
    } catch (const std::exception &e) {
        error = e.what();
    }
    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    FILE *f = fopen(argv[2], "w");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", argv[2]);
        return 2;
    }
    std::string esc;
    for (char c : error) {
        if (c == '"' || c == '\\') esc += '\\';
        esc += c;
    }
    fprintf(f, "{\"results\": [\n%s\n], \"error\": \"%s\", \"sim_cycles\": %llu, \"seconds\": %.6f}\n",
            results.c_str(), esc.c_str(), (unsigned long long)total, secs);
    fclose(f);
    return error.empty() ? 0 : 1;
}
