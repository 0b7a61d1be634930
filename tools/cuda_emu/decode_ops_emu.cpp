// Runs the fused decode kernels (crates/model/src/kernels/decode_ops.cu) and the Gated DeltaNet decode step read
// from a fused projection (delta_decode.cu: two kernels, or one when NK = NV) on the CPU through emu.h, for crates/model/tests/cuda_kernels_emulated.rs,
// with the launch shapes of kernels/decode_ops_cuda.rs and delta_decode_cuda.rs. Arrays are raw little-endian f32
// files in DIR; with TYPE bf16 the activations are rounded to bf16 on the way in (the tests give values already on
// the bf16 grid) and the kernels' bf16 outputs widened on the way out.
//
//   decode_ops_emu DIR TYPE add_rms_norm ROWS N EPS HAS_H                       x [h] w               -> y [sum]
//   decode_ops_emu DIR TYPE gated_norm B NV DV WIDTH Z_AT EPS                   core proj w           -> y
//   decode_ops_emu DIR TYPE silu_mul_halves ROWS INTER                          gu                    -> y
//   decode_ops_emu DIR TYPE attn B NH NKV D ROT CAP SLOT WIDTH EPS  all q_norm k_norm cos sin kbuf vbuf
//                                                                               -> q kbuf_new vbuf_new
//   decode_ops_emu DIR TYPE masked_softmax ROWS CAP HEADS SCALE                 scores mask           -> probs
//   decode_ops_emu DIR TYPE gate_mul B NH D WIDTH                               o all                 -> y
//   decode_ops_emu DIR TYPE delta_proj B NK NV DK DV K WIDTH MIXED_AT B_AT A_AT proj conv state taps dt_bias a_log
//                                                                               -> out conv state
#include <cstdio>
#include <cstdlib>
#include <string>

#include "emu.h"

float red32[32 + 4096];  // the reductions, then attn_prep's row
float shared[4096];  // the delta steps: q[d_k], k[d_k], (v[d_v],) red[STEP_THREADS]

#include "../../crates/model/src/kernels/decode_ops.cu"
#include "../../crates/model/src/kernels/delta_decode.cu"

constexpr unsigned ROW_THREADS = 256, ELEM_THREADS = 256, STEP_THREADS = 128;

using emu::read;
using emu::write;

// Activations as the kernels of type T take them.
template <typename T>
std::vector<T> to(const std::vector<float>& v);
template <>
std::vector<float> to<float>(const std::vector<float>& v) {
    return v;
}
template <>
std::vector<__nv_bfloat16> to<__nv_bfloat16>(const std::vector<float>& v) {
    std::vector<__nv_bfloat16> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = __float2bfloat16(v[i]);
    return out;
}
static std::vector<float> widen(const std::vector<float>& v) { return v; }
static std::vector<float> widen(const std::vector<__nv_bfloat16>& v) {
    std::vector<float> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = __bfloat162float(v[i]);
    return out;
}

// The extern "C" kernels of each type.
struct F32 {
    using T = float;
    static constexpr auto add_rms_norm = add_rms_norm_f32;
    static constexpr auto gated_norm = gated_norm_f32;
    static constexpr auto silu_mul_halves = silu_mul_halves_f32;
    static constexpr auto conv = delta_conv_silu_f32;
    static constexpr auto step = delta_step_f32;
    static constexpr auto fused_step = delta_fused_step_f32;
    static constexpr auto attn_prep = attn_prep_f32;
    static constexpr auto masked_softmax = masked_softmax_f32;
    static constexpr auto gate_mul = gate_mul_f32;
};
struct BF16 {
    using T = __nv_bfloat16;
    static constexpr auto add_rms_norm = add_rms_norm_bf16;
    static constexpr auto gated_norm = gated_norm_bf16;
    static constexpr auto silu_mul_halves = silu_mul_halves_bf16;
    static constexpr auto conv = delta_conv_silu_bf16;
    static constexpr auto step = delta_step_bf16;
    static constexpr auto fused_step = delta_fused_step_bf16;
    static constexpr auto attn_prep = attn_prep_bf16;
    static constexpr auto masked_softmax = masked_softmax_bf16;
    static constexpr auto gate_mul = gate_mul_bf16;
};

template <typename K>
static int run(const std::string& k, char** args) {
    using T = typename K::T;
    auto I = [&](int i) { return std::atoi(args[i]); };
    auto F = [&](int i) { return (float)std::atof(args[i]); };
    if (k == "add_rms_norm") {
        int rows = I(0), n = I(1), has_h = I(3);
        float eps = F(2);
        size_t total = (size_t)rows * n;
        auto x = to<T>(read("x", total));
        auto h = has_h ? to<T>(read("h", total)) : x;
        auto w = read("w", n);
        std::vector<T> sum(total), y(total);
        emu::launch(rows, ROW_THREADS, [&] { K::add_rms_norm(x.data(), h.data(), has_h, w.data(), sum.data(), y.data(), n, eps); });
        write("y", widen(y));
        if (has_h) write("sum", widen(sum));
    } else if (k == "gated_norm") {
        int b = I(0), nv = I(1), dv = I(2), width = I(3), z_at = I(4);
        float eps = F(5);
        auto core = read("core", (size_t)b * nv * dv);
        auto proj = to<T>(read("proj", (size_t)b * width));
        auto w = read("w", dv);
        std::vector<T> y((size_t)b * nv * dv);
        emu::launch(b * nv, ROW_THREADS,
                    [&] { K::gated_norm(core.data(), proj.data() + z_at, width, nv, w.data(), y.data(), dv, eps); });
        write("y", widen(y));
    } else if (k == "silu_mul_halves") {
        int rows = I(0), inter = I(1);
        auto gu = to<T>(read("gu", (size_t)rows * 2 * inter));
        std::vector<T> y((size_t)rows * inter);
        unsigned blocks = (unsigned)std::min<size_t>((y.size() + ELEM_THREADS - 1) / ELEM_THREADS, 1024);
        emu::launch(blocks, ELEM_THREADS, [&] { K::silu_mul_halves(gu.data(), y.data(), rows, inter); });
        write("y", widen(y));
    } else if (k == "delta_proj") {
        int b = I(0), nk = I(1), nv = I(2), dk = I(3), dv = I(4), kern = I(5), width = I(6);
        int mixed_at = I(7), b_at = I(8), a_at = I(9);
        int c = 2 * nk * dk + nv * dv, w = kern - 1;
        auto proj = to<T>(read("proj", (size_t)b * width));
        auto conv = read("conv", (size_t)b * w * c), state = read("state", (size_t)b * nv * dk * dv);
        auto taps = read("taps", (size_t)c * kern), dt_bias = read("dt_bias", nv), a_log = read("a_log", nv);
        std::vector<float> act((size_t)b * c), out((size_t)b * nv * dv);
        // In place, as delta_decode_cuda.rs runs it: the next window and state over the current ones; with one value
        // head per key head as one launch.
        if (nk == nv) {
            emu::launch(b * nv, STEP_THREADS, [&] {
                K::fused_step(proj.data() + mixed_at, width, conv.data(), taps.data(), proj.data() + a_at,
                              proj.data() + b_at, width, dt_bias.data(), a_log.data(), state.data(), out.data(), nv, dk,
                              dv, kern);
            });
            write("out", out);
            write("conv_new", conv);
            write("state_new", state);
            return 0;
        }
        unsigned conv_blocks = (unsigned)((b * c + 1023) / 1024), conv_threads = 1024;
        emu::launch(conv_blocks, conv_threads, [&] {
            K::conv(proj.data() + mixed_at, conv.data(), taps.data(), act.data(), conv.data(), b, c, kern, width);
        });
        emu::launch(b * nv, STEP_THREADS, [&] {
            K::step(act.data(), proj.data() + a_at, proj.data() + b_at, dt_bias.data(), a_log.data(), state.data(),
                    state.data(), out.data(), nk, nv, dk, dv, width);
        });
        write("out", out);
        write("conv_new", conv);
        write("state_new", state);
    } else if (k == "attn") {
        int b = I(0), nh = I(1), nkv = I(2), d = I(3), rot = I(4), cap = I(5), slot = I(6), width = I(7);
        float eps = F(8);
        auto all = to<T>(read("all", (size_t)b * width));
        auto qn = read("q_norm", d), kn = read("k_norm", d), cos = read("cos", (size_t)b * rot), sin = read("sin", (size_t)b * rot);
        size_t buf = (size_t)b * nkv * cap * d;
        auto kbuf = to<T>(read("kbuf", buf)), vbuf = to<T>(read("vbuf", buf));
        std::vector<unsigned> slots((size_t)b * nkv * d, (unsigned)slot);
        std::vector<T> q((size_t)b * nh * d);
        emu::launch(b * (nh + nkv), ROW_THREADS, [&] {
            K::attn_prep(all.data(), width, qn.data(), kn.data(), cos.data(), sin.data(), rot, q.data(), kbuf.data(),
                         vbuf.data(), slots.data(), cap, nh, nkv, d, eps);
        });
        write("q", widen(q));
        write("kbuf_new", widen(kbuf));
        write("vbuf_new", widen(vbuf));
    } else if (k == "masked_softmax") {
        int rows = I(0), cap = I(1), heads = I(2);
        float scale = F(3);
        auto scores = to<T>(read("scores", (size_t)rows * cap));
        auto mask = read("mask", (size_t)(rows / heads) * cap);
        std::vector<T> probs((size_t)rows * cap);
        emu::launch(rows, ROW_THREADS, [&] { K::masked_softmax(scores.data(), mask.data(), probs.data(), cap, heads, scale); });
        write("probs", widen(probs));
    } else if (k == "gate_mul") {
        int b = I(0), nh = I(1), d = I(2), width = I(3);
        auto o = to<T>(read("o", (size_t)b * nh * d));
        auto all = to<T>(read("all", (size_t)b * width));
        std::vector<T> y((size_t)b * nh * d);
        unsigned blocks = (unsigned)std::min<size_t>((y.size() + ELEM_THREADS - 1) / ELEM_THREADS, 1024);
        emu::launch(blocks, ELEM_THREADS, [&] { K::gate_mul(o.data(), all.data(), width, y.data(), nh, d, b); });
        write("y", widen(y));
    } else {
        std::fprintf(stderr, "unknown kernel %s\n", k.c_str());
        return 2;
    }
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 4) return 2;
    emu::dir = argv[1];
    std::string type = argv[2], k = argv[3];
    if (type == "f32") return run<F32>(k, argv + 4);
    if (type == "bf16") return run<BF16>(k, argv + 4);
    std::fprintf(stderr, "unknown type %s\n", type.c_str());
    return 2;
}
