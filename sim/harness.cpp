// shiftrnn fast-path harness: runs a whole dataset through a Verilated design with no Python
// in the loop. Template shipped with the sim package; sim/harness.py compiles it with a generated
// "shiftrnn_harness.h" that knows the design's port widths and the signals whose toggles it
// counts (SR_TOGGLES_BODY: the model's aligned 64-bit words that hold counted bits, each masked
// to those bits, one popcount per word).
//
// usage: harness IN.bin OUT.bin MAX_CYCLES
//   IN.bin : 8 x u32 header {magic 'SRN1', version 2, beats lo, beats hi, in_words, warm,
//            options, 0}, then per beat: u32 flags (bit 0 tuser, bit 1 tlast) and in_words u32
//            of tdata (little-endian, element 0 in the low bits).
//   OUT.bin: per output beat: u32 flags (tuser, tlast), u64 cycle of its input handshake,
//            u64 cycle of the output transfer (both as two u32, low first), out_words u32.
// The harness resets the design for RESET_CYCLES cycles, then drives s_axis_tvalid whenever beats
// remain (no idle cycles) and holds m_axis_tready high (no backpressure). Cycle c is the c-th
// rising edge after reset; a transfer "in cycle c" has valid and ready high before that edge.
//
// Toggles are counted over a window of cycles, for runs that are one shard of a longer stream
// (sim/shard.py): the first `warm` beats only bring the design into the state the longer stream
// has there (they are simulated, their outputs written, their cycles not counted); counting
// starts in the cycle after the last warm-up handshake (cycle 1 if warm is 0: cycle 0's values
// are the baseline) and, with option bit 0, ends with the cycle of the last input handshake
// (the next shard counts from there), else with the last output. The window's first and last
// sampled values are reported as FNV-1a digests so that neighbouring shards can be checked to
// meet in the same state.
//
// It prints one JSON line on stdout: beats, cycles, wall seconds, toggles per signal group,
// the counting window and its boundary digests.

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "Vtop.h"
#include "Vtop___024root.h"
#include "verilated.h"

#include "shiftrnn_harness.h"

static const int RESET_CYCLES = 4;

double sc_time_stamp() { return 0; }

// Read by the model's eval loop where sim/harness.py gated its input-combinational phase:
// 0 promises that no top-level input changed since the previous evaluation (the phase would
// recompute what it computed then). Unused if the build left the model ungated.
int shiftrnn_inputs_changed = 1;

#if SR_ROOT_EVAL
// The model's own evaluation function. Vtop::eval() wraps it with bookkeeping for
// multithreaded models and dynamic objects (a mutex, a message-queue flush, a deleter sweep)
// that a single-threaded design without classes never needs. Setup goes through Vtop::eval().
void Vtop___024root___eval(Vtop___024root* vlSelf);
static inline void eval_model(Vtop* top) { Vtop___024root___eval(top->rootp); }
#else
static inline void eval_model(Vtop* top) { top->eval(); }
#endif

#if SR_CLK_TRIGGER_ONLY
// With the inputs unchanged and the clock's rising edge the model's only trigger, evaluating
// the model with clk low would only record clk = 0 as that trigger's previous value.
static inline void clock_fell(Vtop* top) { top->rootp->__Vtrigprevexpr___TOP__clk__0 = 0; }
#else
static inline void clock_fell(Vtop* top) { eval_model(top); }
#endif

// ------------------------------------------------------------------ toggles
static inline int popcount_sw(uint64_t v) { return __builtin_popcountll(v); }
static void toggles_sw(const Vtop* top, uint64_t* __restrict p, uint64_t* __restrict c) {
    const unsigned char* b = reinterpret_cast<const unsigned char*>(top->rootp);
    (void)b; (void)p; (void)c;
#define POP popcount_sw
    SR_TOGGLES_BODY
#undef POP
}
#if defined(__x86_64__) || defined(__i386__)
// Same body compiled for the popcnt instruction (without it gcc calls a libgcc routine,
// which cost half of the harness's time), chosen at run time if the CPU has it.
__attribute__((target("popcnt"))) static void toggles_hw(const Vtop* top,
                                                         uint64_t* __restrict p,
                                                         uint64_t* __restrict c) {
    const unsigned char* b = reinterpret_cast<const unsigned char*>(top->rootp);
    (void)b; (void)p; (void)c;
#define POP __builtin_popcountll
    SR_TOGGLES_BODY
#undef POP
}
#endif

typedef void (*toggle_fn)(const Vtop*, uint64_t* __restrict, uint64_t* __restrict);
static toggle_fn pick_toggles() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("popcnt")) return toggles_hw;
#endif
    return toggles_sw;
}

// ------------------------------------------------------------------ main
static void fail(const char* msg) {
    std::printf("{\"error\": \"%s\"}\n", msg);
    std::exit(2);
}

struct Inputs {
    std::vector<uint32_t> beats_words;  // (1 + SR_IN_WORDS) words per beat
    uint64_t beats = 0;
    uint64_t warm = 0;             // warm-up beats (not counted)
    bool stop_at_last_in = false;  // counting ends with the last input handshake
};

static Inputs read_inputs(const char* path) {
    Inputs r;
    FILE* fin = std::fopen(path, "rb");
    if (!fin) fail("cannot open input file");
    uint32_t hdr[8];
    if (std::fread(hdr, sizeof(uint32_t), 8, fin) != 8) fail("short input header");
    if (hdr[0] != 0x314E5253u || hdr[1] != 2u) fail("bad input magic/version");
    r.beats = static_cast<uint64_t>(hdr[2]) | (static_cast<uint64_t>(hdr[3]) << 32);
    if (hdr[4] != SR_IN_WORDS) fail("input words per beat do not match the design");
    r.warm = hdr[5];
    r.stop_at_last_in = (hdr[6] & 1u) != 0;
    if (r.warm >= r.beats && r.beats) fail("warm-up beats must be fewer than the beats");
    std::vector<uint32_t>& in = r.beats_words;
    in.resize(r.beats * (1 + SR_IN_WORDS));
    if (r.beats && std::fread(in.data(), sizeof(uint32_t), in.size(), fin) != in.size())
        fail("short input body");
    std::fclose(fin);
    return r;
}

// FNV-1a over the sampled values: the state at a window boundary.
static uint64_t digest(const uint64_t* words, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; ++i)
        for (int b = 0; b < 8; ++b) {
            h ^= (words[i] >> (8 * b)) & 0xffu;
            h *= 1099511628211ull;
        }
    return h;
}

// Presents beat `index` on s_axis (or drops tvalid when no beat remains).
static void present(Vtop* top, const std::vector<uint32_t>& in, uint64_t index, uint64_t beats) {
    if (index < beats) {
        const uint32_t* b = &in[index * (1 + SR_IN_WORDS)];
        sr_set_input(top, b + 1);
        top->s_axis_tuser = b[0] & 1u;
        top->s_axis_tlast = (b[0] >> 1) & 1u;
        top->s_axis_tvalid = 1;
    } else {
        top->s_axis_tvalid = 0;
    }
}

// Holds rst high for RESET_CYCLES rising edges (no valid input, sink not ready), then releases
// it with the sink ready; the caller presents the first beat.
static void reset(Vtop* top) {
    top->clk = 0;
    top->rst = 1;
    top->s_axis_tvalid = 0;
    top->s_axis_tuser = 0;
    top->s_axis_tlast = 0;
    top->m_axis_tready = 0;
    top->eval();
    for (int i = 0; i < RESET_CYCLES; ++i) {
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
    }
    top->rst = 0;
    top->m_axis_tready = 1;
}

// What a run reports besides its output beats.
struct Report {
    uint64_t beats = 0, outputs = 0, inputs = 0, cycles = 0;
    double seconds = 0;
    uint64_t first_counted = 0, last_counted = 0, start_digest = 0, end_digest = 0;
    uint64_t toggles[SR_N_GROUPS] = {0};
};

static void write_outputs(const char* path, const std::vector<uint32_t>& out, size_t words) {
    FILE* fout = std::fopen(path, "wb");
    if (!fout) fail("cannot open output file");
    if (words && std::fwrite(out.data(), sizeof(uint32_t), words, fout) != words)
        fail("short write");
    std::fclose(fout);
}

static void print_report(const Report& r) {
    std::printf("{\"beats\": %" PRIu64 ", \"outputs\": %" PRIu64 ", \"inputs\": %" PRIu64
                ", \"cycles\": %" PRIu64 ", \"reset_cycles\": %d, \"seconds\": %.9f, "
                "\"timeout\": %s, \"window\": [%" PRIu64 ", %" PRIu64 "], "
                "\"start_digest\": \"%016" PRIx64 "\", \"end_digest\": \"%016" PRIx64 "\", "
                "\"toggles\": {",
                r.beats, r.outputs, r.inputs, r.cycles, RESET_CYCLES, r.seconds,
                r.outputs < r.beats ? "true" : "false", r.first_counted, r.last_counted,
                r.start_digest, r.end_digest);
    for (int g = 0; g < SR_N_GROUPS; ++g)
        std::printf("%s\"%s\": %" PRIu64, g ? ", " : "", sr_group_names[g], r.toggles[g]);
    std::printf("}}\n");
}

int main(int argc, char** argv) {
    if (argc < 4) fail("usage: harness IN.bin OUT.bin MAX_CYCLES");
    const uint64_t max_cycles = std::strtoull(argv[3], nullptr, 10);
    const Inputs inputs = read_inputs(argv[1]);
    const std::vector<uint32_t>& in = inputs.beats_words;
    const uint64_t beats = inputs.beats;

    const size_t out_stride = 5 + SR_OUT_WORDS;
    std::vector<uint32_t> out(beats * out_stride);
    std::vector<uint64_t> in_cycle(beats);
    const toggle_fn toggles_of = pick_toggles();

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    auto top = std::make_unique<Vtop>(ctx.get(), "top");

    reset(top.get());
    present(top.get(), in, 0, beats);
    eval_model(top.get());

    uint64_t prev[SR_N_PREV > 0 ? SR_N_PREV : 1] = {0};
    uint64_t scratch[SR_N_GROUPS] = {0};
    toggles_of(top.get(), prev, scratch);  // cycle 0's values: the baseline, not counted

    Report r;
    r.beats = beats;
    uint64_t cycle = 0, in_idx = 0, out_idx = 0;
    bool counting = false, counted_all = false;
    const auto t0 = std::chrono::steady_clock::now();
    // Each pass: the values before rising edge `cycle` are settled; record this cycle's
    // transfers, count toggles against the previous cycle, clock, and present the next beat
    // after an input handshake. Inputs change only there, so the other evaluations skip the
    // input-combinational phase.
    while (out_idx < beats && cycle < max_cycles) {
        if (top->m_axis_tvalid) {
            uint32_t* o = &out[out_idx * out_stride];
            o[0] = (top->m_axis_tuser ? 1u : 0u) | (top->m_axis_tlast ? 2u : 0u);
            const uint64_t ic = out_idx < in_idx ? in_cycle[out_idx] : ~0ull;
            o[1] = static_cast<uint32_t>(ic);
            o[2] = static_cast<uint32_t>(ic >> 32);
            o[3] = static_cast<uint32_t>(cycle);
            o[4] = static_cast<uint32_t>(cycle >> 32);
            sr_get_output(top.get(), o + 5);
            ++out_idx;
        }
        if (!counting && !counted_all && cycle && in_idx >= inputs.warm) {
            counting = true;
            r.first_counted = cycle;
            r.start_digest = digest(prev, SR_N_PREV);
        }
        const bool taken = top->s_axis_tvalid && top->s_axis_tready;
        if (taken) in_cycle[in_idx++] = cycle;
        if (counting) {
            toggles_of(top.get(), prev, r.toggles);
            r.last_counted = cycle;
            if (inputs.stop_at_last_in && taken && in_idx == beats) {
                counting = false;
                counted_all = true;
                r.end_digest = digest(prev, SR_N_PREV);
            }
        } else if (cycle) {
            toggles_of(top.get(), prev, scratch);  // keeps the previous values current
        }
        shiftrnn_inputs_changed = 0;
        top->clk = 1;
        eval_model(top.get());
        top->clk = 0;
        if (taken) {
            present(top.get(), in, in_idx, beats);
            shiftrnn_inputs_changed = 1;
            eval_model(top.get());
        } else {
            clock_fell(top.get());
        }
        ++cycle;
    }
    if (!counted_all) r.end_digest = digest(prev, SR_N_PREV);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.cycles = cycle;
    r.inputs = in_idx;
    r.outputs = out_idx;
    top->final();
    write_outputs(argv[2], out, out_idx * out_stride);
    print_report(r);
    return 0;
}
