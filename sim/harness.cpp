// shiftrnn fast-path harness: runs a whole dataset through a Verilated design with no Python
// in the loop. Template shipped with the sim package; sim/fast.py compiles it with a generated
// "shiftrnn_harness.h" that knows the design's port widths and the signals whose toggles it
// counts.
//
// usage: harness IN.bin OUT.bin MAX_CYCLES
//   IN.bin : 8 x u32 header {magic 'SRN1', version 1, beats lo, beats hi, in_words, 0, 0, 0},
//            then per beat: u32 flags (bit 0 tuser, bit 1 tlast) and in_words u32 of tdata
//            (little-endian, element 0 in the low bits).
//   OUT.bin: per output beat: u32 flags (tuser, tlast), u64 cycle of its input handshake,
//            u64 cycle of the output transfer (both as two u32, low first), out_words u32.
// The harness resets the design for RESET_CYCLES cycles, then drives s_axis_tvalid whenever beats
// remain (no idle cycles) and holds m_axis_tready high (no backpressure). Cycle c is the c-th
// rising edge after reset; a transfer "in cycle c" has valid and ready high before that edge.
// It prints one JSON line on stdout: beats, cycles, wall seconds, toggles per signal group.

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

static void fail(const char* msg) {
    std::printf("{\"error\": \"%s\"}\n", msg);
    std::exit(2);
}

int main(int argc, char** argv) {
    if (argc < 4) fail("usage: harness IN.bin OUT.bin MAX_CYCLES");
    const uint64_t max_cycles = std::strtoull(argv[3], nullptr, 10);

    FILE* fin = std::fopen(argv[1], "rb");
    if (!fin) fail("cannot open input file");
    uint32_t hdr[8];
    if (std::fread(hdr, sizeof(uint32_t), 8, fin) != 8) fail("short input header");
    if (hdr[0] != 0x314E5253u || hdr[1] != 1u) fail("bad input magic/version");
    const uint64_t beats = static_cast<uint64_t>(hdr[2]) | (static_cast<uint64_t>(hdr[3]) << 32);
    if (hdr[4] != SR_IN_WORDS) fail("input words per beat do not match the design");
    const size_t in_stride = 1 + SR_IN_WORDS;
    std::vector<uint32_t> in(beats * in_stride);
    if (beats && std::fread(in.data(), sizeof(uint32_t), in.size(), fin) != in.size())
        fail("short input body");
    std::fclose(fin);

    const size_t out_stride = 5 + SR_OUT_WORDS;
    std::vector<uint32_t> out(beats * out_stride);
    std::vector<uint64_t> in_cycle(beats);

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    auto top = std::make_unique<Vtop>(ctx.get(), "top");

    // Reset.
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

    uint64_t prev[SR_N_PREV > 0 ? SR_N_PREV : 1] = {0};
    uint64_t toggles[SR_N_GROUPS] = {0};
    uint64_t scratch[SR_N_GROUPS] = {0};

    uint64_t cycle = 0, in_idx = 0, out_idx = 0;
    const auto t0 = std::chrono::steady_clock::now();
    while (out_idx < beats) {
        if (cycle >= max_cycles) break;
        if (in_idx < beats) {
            const uint32_t* b = &in[in_idx * in_stride];
            sr_set_input(top.get(), b + 1);
            top->s_axis_tuser = b[0] & 1u;
            top->s_axis_tlast = (b[0] >> 1) & 1u;
            top->s_axis_tvalid = 1;
        } else {
            top->s_axis_tvalid = 0;
        }
        top->m_axis_tready = 1;
        top->eval();
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
        if (top->s_axis_tvalid && top->s_axis_tready) {
            in_cycle[in_idx] = cycle;
            ++in_idx;
        }
        if (cycle == 0) {
            sr_toggles(top.get(), prev, scratch);  // baseline sample, not counted
        } else {
            sr_toggles(top.get(), prev, toggles);
        }
        top->clk = 1;
        top->eval();
        top->clk = 0;
        ++cycle;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    top->final();

    FILE* fout = std::fopen(argv[2], "wb");
    if (!fout) fail("cannot open output file");
    if (out_idx && std::fwrite(out.data(), sizeof(uint32_t), out_idx * out_stride, fout) !=
                       out_idx * out_stride)
        fail("short write");
    std::fclose(fout);

    std::printf("{\"beats\": %" PRIu64 ", \"outputs\": %" PRIu64 ", \"inputs\": %" PRIu64
                ", \"cycles\": %" PRIu64 ", \"reset_cycles\": %d, \"seconds\": %.9f, "
                "\"timeout\": %s, \"toggles\": {",
                beats, out_idx, in_idx, cycle, RESET_CYCLES, secs,
                out_idx < beats ? "true" : "false");
    for (int g = 0; g < SR_N_GROUPS; ++g)
        std::printf("%s\"%s\": %" PRIu64, g ? ", " : "", sr_group_names[g], toggles[g]);
    std::printf("}}\n");
    return 0;
}
