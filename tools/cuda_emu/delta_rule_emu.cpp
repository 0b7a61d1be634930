// Runs the kernels of crates/model/src/kernels/delta_rule.cu on the CPU through emu.h, for
// crates/model/tests/cuda_kernels_emulated.rs. Arrays are raw little-endian f32 files in DIR.
//
//   delta_rule_emu fwd DK DV BH T DIR    x.bin [init.bin]  ->  out.bin final.bin   (init.bin optional: zero state)
//   delta_rule_emu bwd DK DV BH T DIR    x.bin dout.bin    ->  dx.bin
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "emu.h"

alignas(16) float tok[1 << 16];
alignas(16) float shared[1 << 16];

#include "../../crates/model/src/kernels/delta_rule.cu"

static std::vector<float> read(const std::string& path, size_t n, bool optional = false) {
    std::vector<float> v(n);
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
        if (optional) return {};
        std::fprintf(stderr, "cannot open %s\n", path.c_str());
        std::exit(2);
    }
    if (std::fread(v.data(), sizeof(float), n, f) != n) {
        std::fprintf(stderr, "%s: expected %zu floats\n", path.c_str(), n);
        std::exit(2);
    }
    std::fclose(f);
    return v;
}

static void write(const std::string& path, const std::vector<float>& v) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(v.data(), sizeof(float), v.size(), f) != v.size()) {
        std::fprintf(stderr, "cannot write %s\n", path.c_str());
        std::exit(2);
    }
    std::fclose(f);
}

template <int DK>
static void run(const std::string& mode, int dv, int bh, int t, const std::string& dir) {
    const int w = 2 * DK + dv + 2;
    auto x = read(dir + "/x.bin", (size_t)bh * t * w);
    if (mode == "fwd") {
        auto init = read(dir + "/init.bin", (size_t)bh * DK * dv, true);
        std::vector<float> out((size_t)bh * t * dv), last((size_t)bh * DK * dv);
        const float* ip = init.empty() ? nullptr : init.data();
        emu::launch(bh, fwd_threads(), [&] { forward<DK>(x.data(), ip, out.data(), last.data(), t, dv); }, fwd_groups(dv));
        write(dir + "/out.bin", out);
        write(dir + "/final.bin", last);
    } else {
        const int block = 32, blocks = (t + block - 1) / block;
        auto dout = read(dir + "/dout.bin", (size_t)bh * t * dv);
        std::vector<float> dx((size_t)bh * t * w, 0.0f), kept((size_t)bh * blocks * DK * dv, NAN),
            states((size_t)bh * (block + 1) * DK * dv, NAN);
        emu::launch(
            bh, bwd_threads(),
            [&] { backward<DK>(x.data(), dout.data(), dx.data(), kept.data(), states.data(), t, dv, block); },
            bwd_groups(dv));
        write(dir + "/dx.bin", dx);
    }
}

int main(int argc, char** argv) {
    if (argc != 7) {
        std::fprintf(stderr, "usage: %s fwd|bwd DK DV BH T DIR\n", argv[0]);
        return 2;
    }
    std::string mode = argv[1], dir = argv[6];
    int dk = std::atoi(argv[2]), dv = std::atoi(argv[3]), bh = std::atoi(argv[4]), t = std::atoi(argv[5]);
    switch (dk) {
        case 16: run<16>(mode, dv, bh, t, dir); break;
        case 32: run<32>(mode, dv, bh, t, dir); break;
        case 64: run<64>(mode, dv, bh, t, dir); break;
        case 128: run<128>(mode, dv, bh, t, dir); break;
        default: std::fprintf(stderr, "no kernel for d_k %d\n", dk); return 2;
    }
    return 0;
}
