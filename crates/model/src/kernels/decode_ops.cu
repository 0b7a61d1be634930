// The fused inference kernels of a fixed-shape decode step (one token per sequence; decode_ops.rs holds their CPU
// definitions and says what each replaces). Compiled to PTX by build.rs when the `cuda` feature is on;
// decode_ops_cuda.rs launches them. Activations are f32 or bf16 (the suffix), arithmetic is f32, and a result is
// rounded to the activations' type once.
//
//   add_rms_norm_*     one block per row: s = x + h (rounded to T, as the residual stream is stored), then
//                      y = s / sqrt(mean(s^2) + eps) * w, w the f32 effective weight (Qwen3.5's 1 + w precomputed);
//                      without h (has_h = 0), y = norm(x) and s is not written;
//   gated_norm_*       one block per (sequence, value head): y = norm(core) * w * silu(z), core f32, z read from a
//                      strided block of the fused projection;
//   silu_mul_halves_*  one thread per element: y = silu(gate) * up, gate and up the two halves of a row of the fused
//                      gate/up projection;
//   attn_prep_*        one block per (sequence, head): a full-attention layer's query or key normalised and rotated,
//                      the query written out, the key and its value written into this step's KV slot;
//   masked_softmax_*   one block per row of a decode step's attention scores: softmax(scale * s + mask);
//   gate_mul_*         one thread per element: the attention output times sigmoid(gate), the gate read in place.

#ifdef __CUDACC__
#include <cuda_bf16.h>
#endif

#include "block_reduce.cuh"

__device__ __forceinline__ float as_f(float x) { return x; }
__device__ __forceinline__ float as_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ void put(float* p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void put(__nv_bfloat16* p, size_t i, float v) { p[i] = __float2bfloat16(v); }
// `v` as type T stores it, back in f32.
__device__ __forceinline__ float rounded(float v, const float*) { return v; }
__device__ __forceinline__ float rounded(float v, const __nv_bfloat16*) { return __bfloat162float(__float2bfloat16(v)); }

template <typename T>
__device__ void add_rms_norm_row(const T* x, const T* h, int has_h, const float* w, T* sum, T* y, int n, float eps,
                                 float* red) {
    const size_t row = (size_t)blockIdx.x * n;
    float sq = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float s = as_f(x[row + i]);
        if (has_h) {
            s = rounded(s + as_f(h[row + i]), x);
            put(sum, row + i, s);
        }
        sq += s * s;
    }
    const float inv = 1.0f / sqrtf(warp_block_sum(sq, red) / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        // Each thread reads back only what it wrote.
        const float s = has_h ? as_f(sum[row + i]) : as_f(x[row + i]);
        put(y, row + i, s * inv * w[i]);
    }
}

template <typename T>
__device__ void gated_norm_row(const float* core, const T* z, int z_stride, int heads, const float* w, T* y, int n,
                               float eps, float* red) {
    const int r = blockIdx.x, b = r / heads, head = r % heads;
    const float* c = core + (size_t)r * n;
    const T* zr = z + (size_t)b * z_stride + (size_t)head * n;
    float sq = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) sq += c[i] * c[i];
    const float inv = 1.0f / sqrtf(warp_block_sum(sq, red) / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float g = as_f(zr[i]);
        put(y, (size_t)r * n + i, c[i] * inv * w[i] * (g / (1.0f + expf(-g))));
    }
}

template <typename T>
__device__ void silu_mul_halves_elems(const T* gu, T* y, int rows, int inter) {
    const size_t total = (size_t)rows * inter;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (size_t)gridDim.x * blockDim.x) {
        const size_t r = idx / inter, i = idx % inter;
        const float g = as_f(gu[r * 2 * inter + i]), u = as_f(gu[r * 2 * inter + inter + i]);
        put(y, idx, g / (1.0f + expf(-g)) * u);
    }
}

// One block per (sequence, head) of the n_h query heads then the n_kv key heads. `all` is the fused q/k/v
// projection [B, width]: per query head its query then its gate (d each), then the keys, then the values. A query
// head writes rope(norm(q) * wq) to q_out [B, n_h, d]; a key head writes rope(norm(k) * wk) and its values into
// slot `slot[0]` of the KV buffers [B, n_kv, cap, d]. The rotary tables are [B, rot] (this step's positions);
// rotate-half convention over the first `rot` features, the rest pass through. `row` holds d floats.
template <typename T>
__device__ void attn_prep_block(const T* all, int width, const float* wq, const float* wk, const float* cos,
                                const float* sin, int rot, T* q_out, T* kbuf, T* vbuf, const unsigned* slot, int cap,
                                int n_h, int n_kv, int d, float eps, float* red, float* row) {
    const int per = n_h + n_kv, b = blockIdx.x / per, head = blockIdx.x % per;
    const bool is_q = head < n_h;
    const int kh = head - n_h;
    const T* src = all + (size_t)b * width + (is_q ? (size_t)head * 2 * d : (size_t)2 * n_h * d + (size_t)kh * d);
    const float* w = is_q ? wq : wk;
    float sq = 0.0f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        const float v = as_f(src[i]);
        row[i] = v;
        sq += v * v;
    }
    const float inv = 1.0f / sqrtf(warp_block_sum(sq, red) / (float)d + eps);  // its barriers publish `row`
    const int half = rot / 2;
    const size_t dst = is_q ? ((size_t)b * n_h + head) * d : (((size_t)b * n_kv + kh) * cap + slot[0]) * d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float y = row[i] * inv * w[i];
        if (i < rot) {
            const int p = i < half ? i + half : i - half;
            const float partner = row[p] * inv * w[p];
            y = y * cos[(size_t)b * rot + i] + (i < half ? -partner : partner) * sin[(size_t)b * rot + i];
        }
        if (is_q) {
            put(q_out, dst + i, y);
        } else {
            put(kbuf, dst + i, y);
            put(vbuf, dst + i, as_f(all[(size_t)b * width + (size_t)2 * n_h * d + (size_t)n_kv * d + (size_t)kh * d + i]));
        }
    }
}

// One block per row of a decode step's attention scores [B, H, cap] (rows ordered sequence-major, `heads` rows per
// sequence): p = softmax(scale * s + mask[b]) in f32, written as T. The two products around it stay cuBLAS's, which
// read the KV buffers at full bandwidth (a kernel of ours walking the slots would be bound by load latency).
template <typename T>
__device__ void masked_softmax_row(const T* scores, const float* mask, T* probs, int cap, int heads, float scale,
                                   float* red) {
    const size_t row = (size_t)blockIdx.x * cap;
    const float* m = mask + (size_t)(blockIdx.x / heads) * cap;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < cap; j += blockDim.x) mx = fmaxf(mx, as_f(scores[row + j]) * scale + m[j]);
    mx = warp_block_max(mx, red);
    float total = 0.0f;
    for (int j = threadIdx.x; j < cap; j += blockDim.x) total += expf(as_f(scores[row + j]) * scale + m[j] - mx);
    const float inv = 1.0f / warp_block_sum(total, red);
    for (int j = threadIdx.x; j < cap; j += blockDim.x) {
        put(probs, row + j, expf(as_f(scores[row + j]) * scale + m[j] - mx) * inv);
    }
}

// One thread per element of the attention output [B, n_h * d]: times sigmoid(gate), the gates read from the fused
// projection `all` [B, width] (per query head its query then its gate, d each).
template <typename T>
__device__ void gate_mul_elems(const T* o, const T* all, int width, T* y, int n_h, int d, int batch) {
    const size_t total = (size_t)batch * n_h * d;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (size_t)gridDim.x * blockDim.x) {
        const size_t b = idx / ((size_t)n_h * d), hi = idx % ((size_t)n_h * d), h = hi / d, i = hi % d;
        const float g = as_f(all[b * width + h * 2 * d + d + i]);
        put(y, idx, as_f(o[idx]) / (1.0f + expf(-g)));
    }
}

#define DECODE_OPS(SUFFIX, T)                                                                                      \
    extern "C" __global__ void add_rms_norm_##SUFFIX(const T* x, const T* h, int has_h, const float* w, T* sum,    \
                                                     T* y, int n, float eps) {                                     \
        extern __shared__ float red32[];                                                                           \
        add_rms_norm_row(x, h, has_h, w, sum, y, n, eps, red32);                                                   \
    }                                                                                                              \
    extern "C" __global__ void gated_norm_##SUFFIX(const float* core, const T* z, int z_stride, int heads,          \
                                                   const float* w, T* y, int n, float eps) {                       \
        extern __shared__ float red32[];                                                                           \
        gated_norm_row(core, z, z_stride, heads, w, y, n, eps, red32);                                             \
    }                                                                                                              \
    extern "C" __global__ void silu_mul_halves_##SUFFIX(const T* gu, T* y, int rows, int inter) {                  \
        silu_mul_halves_elems(gu, y, rows, inter);                                                                 \
    }                                                                                                              \
    extern "C" __global__ void attn_prep_##SUFFIX(const T* all, int width, const float* wq, const float* wk,       \
                                                  const float* cos, const float* sin, int rot, T* q_out, T* kbuf,   \
                                                  T* vbuf, const unsigned* slot, int cap, int n_h, int n_kv, int d, \
                                                  float eps) {                                                      \
        extern __shared__ float red32[];                                                                           \
        attn_prep_block(all, width, wq, wk, cos, sin, rot, q_out, kbuf, vbuf, slot, cap, n_h, n_kv, d, eps, red32, \
                        red32 + 32);                                                                               \
    }                                                                                                              \
    extern "C" __global__ void masked_softmax_##SUFFIX(const T* scores, const float* mask, T* probs, int cap,       \
                                                       int heads, float scale) {                                   \
        extern __shared__ float red32[];                                                                           \
        masked_softmax_row(scores, mask, probs, cap, heads, scale, red32);                                         \
    }                                                                                                              \
    extern "C" __global__ void gate_mul_##SUFFIX(const T* o, const T* all, int width, T* y, int n_h, int d,         \
                                                 int batch) {                                                      \
        gate_mul_elems(o, all, width, y, n_h, d, batch);                                                           \
    }
DECODE_OPS(f32, float)
DECODE_OPS(bf16, __nv_bfloat16)
