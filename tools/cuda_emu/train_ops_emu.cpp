// Runs the kernels of crates/model/src/kernels/train_ops.cu on the CPU through emu.h, for
// crates/model/tests/cuda_kernels_emulated.rs, with the launch shapes of kernels/train_cuda.rs. Arrays are raw
// little-endian f32 files in DIR; the integer and float arguments follow the kernel's name.
//
//   train_ops_emu DIR norm_fwd ROWS N EPS MEAN PLUS_ONE HAS_W        x [w]      -> y
//   train_ops_emu DIR norm_bwd ROWS N EPS MEAN PLUS_ONE HAS_W        x [w] g    -> dx [dw]
//   train_ops_emu DIR softmax_fwd ROWS N T PAST SCALE                x          -> y
//   train_ops_emu DIR softmax_bwd ROWS N T PAST SCALE                p g        -> dx
//   train_ops_emu DIR silu_mul_fwd TOTAL                             a b        -> y
//   train_ops_emu DIR silu_mul_bwd TOTAL                             a b g      -> da db
//   train_ops_emu DIR conv_silu_fwd B T C K                          x taps     -> y
//   train_ops_emu DIR conv_silu_bwd B T C K                          x taps g   -> dx dtaps
//   train_ops_emu DIR rope B H T D ROT TB TRANSPOSE                  x cos sin  -> y
//   train_ops_emu DIR delta_pack_fwd B T NK NV DK DV                  conv g beta -> out
//   train_ops_emu DIR delta_pack_bwd B T NK NV DK DV                  conv dp    -> dconv dg dbeta
//   train_ops_emu DIR adamw N B1 C1 B2 C2 SCALE USE_SCALE KEEP DECAY LR R1 R2 EPS   mv g p -> mv_new p_new
#include <cstdio>
#include <cstdlib>
#include <string>

#include "emu.h"

float red[32];

#include "../../crates/model/src/kernels/train_ops.cu"

// Launch shapes: as kernels/train_cuda.rs.
constexpr unsigned ROW_THREADS = 128, ELEM_THREADS = 256, CONV_THREADS = 128;
constexpr int CONV_ROWS = 64;

using emu::read;
using emu::write;

static unsigned elem_blocks(size_t total) { return (unsigned)std::min<size_t>((total + ELEM_THREADS - 1) / ELEM_THREADS, 1024); }

int main(int argc, char** argv) {
    if (argc < 4) return 2;
    emu::dir = argv[1];
    std::string k = argv[2];
    auto I = [&](int i) { return std::atoi(argv[3 + i]); };
    auto F = [&](int i) { return (float)std::atof(argv[3 + i]); };
    if (k == "norm_fwd" || k == "norm_bwd") {
        int rows = I(0), n = I(1), mean = I(3), plus_one = I(4), has_w = I(5);
        float eps = F(2);
        auto x = read("x", (size_t)rows * n);
        std::vector<float> w = has_w ? read("w", n) : std::vector<float>();
        const float* wp = has_w ? w.data() : nullptr;
        if (k == "norm_fwd") {
            std::vector<float> y((size_t)rows * n);
            emu::launch(rows, ROW_THREADS, [&] { norm_fwd_f32(x.data(), wp, y.data(), n, eps, mean, plus_one); });
            write("y", y);
        } else {
            auto g = read("g", (size_t)rows * n);
            std::vector<float> dx((size_t)rows * n), dw(n, 0.0f);
            float* dwp = has_w ? dw.data() : nullptr;
            emu::launch(rows, ROW_THREADS,
                        [&] { norm_bwd_f32(x.data(), wp, g.data(), dx.data(), dwp, n, eps, mean, plus_one); });
            write("dx", dx);
            if (has_w) write("dw", dw);
        }
    } else if (k == "softmax_fwd" || k == "softmax_bwd") {
        int rows = I(0), n = I(1), t = I(2), past = I(3);
        float scale = F(4);
        auto x = read(k == "softmax_fwd" ? "x" : "p", (size_t)rows * n);
        std::vector<float> out((size_t)rows * n);
        if (k == "softmax_fwd") {
            emu::launch(rows, ROW_THREADS, [&] { softmax_fwd_f32(x.data(), out.data(), n, t, past, scale); });
            write("y", out);
        } else {
            auto g = read("g", (size_t)rows * n);
            emu::launch(rows, ROW_THREADS, [&] { softmax_bwd_f32(x.data(), g.data(), out.data(), n, t, past, scale); });
            write("dx", out);
        }
    } else if (k == "silu_mul_fwd" || k == "silu_mul_bwd") {
        int total = I(0);
        auto a = read("a", total), b = read("b", total);
        if (k == "silu_mul_fwd") {
            std::vector<float> y(total);
            emu::launch(elem_blocks(total), ELEM_THREADS, [&] { silu_mul_fwd_f32(a.data(), b.data(), y.data(), total); });
            write("y", y);
        } else {
            auto g = read("g", total);
            std::vector<float> da(total), db(total);
            emu::launch(elem_blocks(total), ELEM_THREADS,
                        [&] { silu_mul_bwd_f32(a.data(), b.data(), g.data(), da.data(), db.data(), total); });
            write("da", da);
            write("db", db);
        }
    } else if (k == "conv_silu_fwd" || k == "conv_silu_bwd") {
        int B = I(0), T = I(1), C = I(2), K = I(3);
        size_t total = (size_t)B * T * C;
        auto x = read("x", total), taps = read("taps", (size_t)K * C);
        if (k == "conv_silu_fwd") {
            std::vector<float> y(total);
            emu::launch(elem_blocks(total), ELEM_THREADS, [&] { conv_silu_fwd_f32(x.data(), taps.data(), y.data(), B, T, C, K); });
            write("y", y);
        } else {
            auto g = read("g", total);
            std::vector<float> dpre(total), dx(total), dtaps((size_t)K * C, 0.0f);
            emu::launch(elem_blocks(total), ELEM_THREADS,
                        [&] { conv_silu_dpre_f32(x.data(), taps.data(), g.data(), dpre.data(), B, T, C, K); });
            unsigned gx = (C + CONV_THREADS - 1) / CONV_THREADS, gy = (B * T + CONV_ROWS - 1) / CONV_ROWS;
            emu::launch(gx, CONV_THREADS, [&] {
                conv_silu_bwd_f32(x.data(), taps.data(), dpre.data(), dx.data(), dtaps.data(), B, T, C, K, CONV_ROWS);
            }, gy);
            write("dx", dx);
            write("dtaps", dtaps);
        }
    } else if (k == "rope") {
        int B = I(0), H = I(1), T = I(2), D = I(3), rot = I(4), tb = I(5), tr = I(6);
        size_t total = (size_t)B * H * T * D;
        auto x = read("x", total), cos = read("cos", (size_t)tb * T * rot), sin = read("sin", (size_t)tb * T * rot);
        std::vector<float> y(total);
        emu::launch(elem_blocks(total), ELEM_THREADS,
                    [&] { rope_f32(x.data(), cos.data(), sin.data(), y.data(), B, H, T, D, rot, tb, tr); });
        write("y", y);
    } else if (k == "delta_pack_fwd" || k == "delta_pack_bwd") {
        int B = I(0), T = I(1), nk = I(2), nv = I(3), dk = I(4), dv = I(5);
        int C = 2 * nk * dk + nv * dv, W = 2 * dk + dv + 2;
        auto conv = read("conv", (size_t)B * T * C);
        if (k == "delta_pack_fwd") {
            auto g = read("g", (size_t)B * T * nv), beta = read("beta", (size_t)B * T * nv);
            std::vector<float> out((size_t)B * nv * T * W);
            emu::launch(B * nv * T, 32, [&] { delta_pack_fwd_f32(conv.data(), g.data(), beta.data(), out.data(), B, T, nk, nv, dk, dv); });
            write("out", out);
        } else {
            auto dp = read("dp", (size_t)B * nv * T * W);
            std::vector<float> dconv((size_t)B * T * C, NAN), dg((size_t)B * T * nv, NAN), dbeta((size_t)B * T * nv, NAN);
            emu::launch(B * T * nk, 32, [&] {
                delta_pack_bwd_f32(conv.data(), dp.data(), dconv.data(), dg.data(), dbeta.data(), B, T, nk, nv, dk, dv);
            });
            write("dconv", dconv);
            write("dg", dg);
            write("dbeta", dbeta);
        }
    } else if (k == "adamw") {
        int n = I(0), use_scale = I(6), decay = I(8);
        float b1 = F(1), c1 = F(2), b2 = F(3), c2 = F(4), scale = F(5), keep = F(7), lr = F(9), r1 = F(10),
              r2 = F(11), eps = F(12);
        auto mv = read("mv", 2 * (size_t)n), g = read("g", n), p = read("p", n);
        emu::launch(elem_blocks(n), ELEM_THREADS, [&] { adamw_moments_f32(mv.data(), g.data(), n, b1, c1, b2, c2, scale, use_scale); });
        emu::launch(elem_blocks(n), ELEM_THREADS, [&] { adamw_apply_f32(p.data(), mv.data(), n, keep, decay, lr, r1, r2, eps); });
        write("mv_new", mv);
        write("p_new", p);
    } else {
        std::fprintf(stderr, "unknown kernel %s\n", k.c_str());
        return 2;
    }
    return 0;
}
