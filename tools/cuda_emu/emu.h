// A CPU stand-in for the few CUDA features our kernels use, so that their logic (indexing, shared memory, barriers,
// warp shuffles) can be tested on a machine without a GPU: every thread of a block is a std::thread, __syncthreads
// is a barrier over the block, __shfl_xor_sync exchanges values through a per-warp buffer between two warp
// barriers, and blocks run one after another. It checks what the kernel computes, not how fast, and it cannot
// catch what only hardware shows (memory coalescing, register spills, launch limits).
//
// Use: include this header, then the .cu file, then call emu::launch(grid, threads, [&] { kernel(args...); }).
// Shared memory must be declared `extern __shared__` in the kernels (the driver defines those arrays).
#pragma once

#include <algorithm>
#include <atomic>
#include <functional>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__

// CUDA's vector type for 16-byte loads (the kernels reinterpret aligned float arrays as float4 arrays).
struct alignas(16) float4 {
    float x, y, z, w;
};

struct Dim3 {
    unsigned x = 1, y = 1, z = 1;
};

inline thread_local Dim3 threadIdx;
inline Dim3 blockIdx, blockDim, gridDim;

using std::max;
using std::min;

namespace emu {
inline std::unique_ptr<std::barrier<>> block_barrier;
inline std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
inline std::vector<float> warp_buf;

// Runs `kernel` on a grid of `grid_x` × `grid_y` blocks of `threads` threads, one block after another.
inline void launch(unsigned grid_x, unsigned threads, const std::function<void()>& kernel, unsigned grid_y = 1) {
    blockDim.x = threads;
    gridDim.x = grid_x;
    gridDim.y = grid_y;
    unsigned warps = (threads + 31) / 32;
    for (unsigned b = 0; b < grid_x * grid_y; ++b) {
        blockIdx.x = b % grid_x;
        blockIdx.y = b / grid_x;
        block_barrier = std::make_unique<std::barrier<>>(threads);
        warp_barriers.clear();
        for (unsigned w = 0; w < warps; ++w) warp_barriers.push_back(std::make_unique<std::barrier<>>(std::min(32u, threads - 32 * w)));
        warp_buf.assign(warps * 32, 0.0f);
        std::vector<std::thread> pool;
        for (unsigned t = 0; t < threads; ++t) {
            pool.emplace_back([t, &kernel] {
                threadIdx.x = t;
                kernel();
            });
        }
        for (auto& th : pool) th.join();
    }
}
}  // namespace emu

inline float atomicAdd(float* p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }

inline void __syncthreads() { emu::block_barrier->arrive_and_wait(); }

inline float __shfl_xor_sync(unsigned, float v, int off) {
    unsigned lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    auto& bar = *emu::warp_barriers[warp];
    emu::warp_buf[warp * 32 + lane] = v;
    bar.arrive_and_wait();
    float r = emu::warp_buf[warp * 32 + (lane ^ off)];
    bar.arrive_and_wait();
    return r;
}

// Round-to-nearest arithmetic intrinsics (what the host's IEEE float operations already are).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }

// bf16 as cuda_bf16.h has it, for the kernels that read and write bf16 activations: the upper 16 bits of an f32,
// converted with round-to-nearest-even (as __float2bfloat16 does; NaN kept a NaN).
struct __nv_bfloat16 {
    unsigned short bits;
};

inline float __bfloat162float(__nv_bfloat16 x) {
    unsigned int u = (unsigned int)x.bits << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

inline __nv_bfloat16 __float2bfloat16(float f) {
    unsigned int u;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{(unsigned short)((u >> 16) | 0x40)};
    u += 0x7fffu + ((u >> 16) & 1u);
    return __nv_bfloat16{(unsigned short)(u >> 16)};
}

// The drivers' array files: raw little-endian f32, `NAME.bin` in the folder `emu::dir` (set from the command line).
namespace emu {
inline std::string dir;

inline std::vector<float> read(const std::string& name, size_t n) {
    std::vector<float> v(n);
    FILE* f = std::fopen((dir + "/" + name + ".bin").c_str(), "rb");
    if (!f || std::fread(v.data(), sizeof(float), n, f) != n) {
        std::fprintf(stderr, "cannot read %zu floats from %s.bin\n", n, name.c_str());
        std::exit(2);
    }
    std::fclose(f);
    return v;
}

inline void write(const std::string& name, const std::vector<float>& v) {
    FILE* f = std::fopen((dir + "/" + name + ".bin").c_str(), "wb");
    if (!f || std::fwrite(v.data(), sizeof(float), v.size(), f) != v.size()) std::exit(2);
    std::fclose(f);
}
}  // namespace emu
