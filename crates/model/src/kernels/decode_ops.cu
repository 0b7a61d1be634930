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
//   attn_decode_*      one block per (sequence, key/value head) and its query heads: scores over every KV slot under
//                      the mask, softmax, the weighted values, times sigmoid(gate); each key and value read once.

#ifdef __CUDACC__
#include <cuda_bf16.h>
#endif

#define ROW_MASK 0xffffffffu

__device__ __forceinline__ float as_f(float x) { return x; }
__device__ __forceinline__ float as_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ void put(float* p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void put(__nv_bfloat16* p, size_t i, float v) { p[i] = __float2bfloat16(v); }
// `v` as type T stores it, back in f32.
__device__ __forceinline__ float rounded(float v, const float*) { return v; }
__device__ __forceinline__ float rounded(float v, const __nv_bfloat16*) { return __bfloat162float(__float2bfloat16(v)); }

// Sums `x` over the block (a whole number of warps, at most 32); every thread gets the sum. `red` holds 32 floats.
__device__ float row_sum(float x, float* red) {
    for (int off = 16; off >= 1; off >>= 1) x += __shfl_xor_sync(ROW_MASK, x, off);
    const int warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();  // `red` may still be read by a previous call
    if ((threadIdx.x & 31) == 0) red[warp] = x;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < warps; ++w) total += red[w];
    return total;
}

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
    const float inv = 1.0f / sqrtf(row_sum(sq, red) / (float)n + eps);
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
    const float inv = 1.0f / sqrtf(row_sum(sq, red) / (float)n + eps);
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

// Largest of `x` over the block, like row_sum.
__device__ float row_max(float x, float* red) {
    for (int off = 16; off >= 1; off >>= 1) x = fmaxf(x, __shfl_xor_sync(ROW_MASK, x, off));
    const int warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();
    if ((threadIdx.x & 31) == 0) red[warp] = x;
    __syncthreads();
    float m = red[0];
    for (int w = 1; w < warps; ++w) m = fmaxf(m, red[w]);
    return m;
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
    const float inv = 1.0f / sqrtf(row_sum(sq, red) / (float)d + eps);  // its barriers publish `row`
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

// Query heads sharing a key/value head that attn_decode_* takes (a kernel's per-thread sums are sized by it).
#define MAX_REP 8

// One block per (sequence, key/value head), for the `rep` query heads that read it, so that each key and value is
// read once: the scores of the queries against every slot of the head's buffers (a warp per slot), plus the additive
// mask [B, cap]; their softmax, per query; the weighted sums of the values (a thread per feature); times
// sigmoid(gate), the gates read from the fused projection. `qs` holds rep x d floats, `scores` rep x cap.
template <typename T>
__device__ void attn_decode_block(const T* q, const T* kbuf, const T* vbuf, const float* mask, const T* all, int width,
                                  T* out, int cap, int n_h, int n_kv, int d, float scale, float* red, float* qs,
                                  float* scores) {
    const int b = blockIdx.x / n_kv, kvh = blockIdx.x % n_kv, rep = n_h / n_kv;
    const int h0 = kvh * rep;  // the first query head of this key/value head
    for (int e = threadIdx.x; e < rep * d; e += blockDim.x) qs[e] = as_f(q[((size_t)b * n_h + h0) * d + e]);
    __syncthreads();
    const T* keys = kbuf + ((size_t)b * n_kv + kvh) * cap * d;
    const T* values = vbuf + ((size_t)b * n_kv + kvh) * cap * d;
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    for (int j = warp; j < cap; j += warps) {
        float acc[MAX_REP] = {};
        for (int i = lane; i < d; i += 32) {
            const float kv = as_f(keys[(size_t)j * d + i]);
            for (int r = 0; r < rep; ++r) acc[r] += qs[r * d + i] * kv;
        }
        const float m = mask[(size_t)b * cap + j];
        for (int r = 0; r < rep; ++r) {
            float x = acc[r];
            for (int off = 16; off >= 1; off >>= 1) x += __shfl_xor_sync(ROW_MASK, x, off);
            if (lane == 0) scores[r * cap + j] = x * scale + m;
        }
    }
    __syncthreads();
    for (int r = 0; r < rep; ++r) {
        float* row = scores + (size_t)r * cap;
        float m = -INFINITY;
        for (int j = threadIdx.x; j < cap; j += blockDim.x) m = fmaxf(m, row[j]);
        m = row_max(m, red);
        float total = 0.0f;
        for (int j = threadIdx.x; j < cap; j += blockDim.x) {
            const float e = expf(row[j] - m);
            row[j] = e;
            total += e;
        }
        total = row_sum(total, red);  // its barriers publish `row`
        if (threadIdx.x == 0) red[32 + r] = 1.0f / total;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        float acc[MAX_REP] = {};
        for (int j = 0; j < cap; ++j) {
            const float v = as_f(values[(size_t)j * d + i]);
            for (int r = 0; r < rep; ++r) acc[r] += scores[(size_t)r * cap + j] * v;
        }
        for (int r = 0; r < rep; ++r) {
            const int h = h0 + r;
            const float g = as_f(all[(size_t)b * width + (size_t)h * 2 * d + d + i]);
            put(out, ((size_t)b * n_h + h) * d + i, acc[r] * red[32 + r] / (1.0f + expf(-g)));
        }
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
    extern "C" __global__ void attn_decode_##SUFFIX(const T* q, const T* kbuf, const T* vbuf, const float* mask,    \
                                                    const T* all, int width, T* out, int cap, int n_h, int n_kv,    \
                                                    int d, float scale) {                                           \
        extern __shared__ float red32[];                                                                           \
        attn_decode_block(q, kbuf, vbuf, mask, all, width, out, cap, n_h, n_kv, d, scale, red32,                   \
                          red32 + 32 + MAX_REP, red32 + 32 + MAX_REP + (n_h / n_kv) * d);                           \
    }
DECODE_OPS(f32, float)
DECODE_OPS(bf16, __nv_bfloat16)
