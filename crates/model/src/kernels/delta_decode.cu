// One decoding step of a Gated DeltaNet layer on CUDA: the GPU twin of delta_decode.rs's CPU loop (same inputs,
// outputs and arithmetic; see that module's doc). Compiled to PTX by build.rs when the `cuda` feature is on.
//
// Two launches replace the ~75 candle ops of the composed step:
//   delta_conv_silu_*    one thread per (sequence, channel): the causal conv over the window [cached K-1 inputs;
//                        new input], its SiLU, and the window shifted by one;
//   delta_step_*         one block per (sequence, value head): q/k of the head's key head L2-normalised (block
//                        reductions), the decay exp(g) and beta, then thread j owns column j of the state S (d_k x d_v,
//                        row-major): m_j = sum_i k_i exp(g) S_ij, u_j = beta (v_j - m_j), S'_ij = exp(g) S_ij + k_i u_j,
//                        o_j = sum_i q_i S'_ij. Columns are independent, so no reduction is needed there.
// With one value head per key head, delta_fused_step_* does both in one launch (block-local conv).
// The new token's projections (`mixed`, `a`, `b`) are read in f32 or bf16 (the suffix) with a row stride of their
// own, so that they can be column blocks of one fused projection's output; the window, the state, the taps and the
// other constants are f32, and so are the outputs.

#ifdef __CUDACC__
#include <cuda_bf16.h>
#endif

__device__ __forceinline__ float load_f(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float load_f(const __nv_bfloat16* p, size_t i) { return __bfloat162float(p[i]); }

#define QK_NORM_EPS 1e-6f  // text/delta_rule.rs QK_NORM_EPS

template <typename T>
__device__ void conv_silu_step(
    const T* mixed,       // [B, C], rows `mixed_stride` elements apart
    const float* conv,    // [B, K-1, C]
    const float* taps,    // [C, K]
    float* act,           // [B, C]
    float* next_conv,     // [B, K-1, C]
    int batch, int channels, int kernel, int mixed_stride) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= batch * channels) return;
    int b = idx / channels, c = idx % channels, w = kernel - 1;
    const float* cached = conv + (size_t)b * w * channels;
    const float* tap = taps + (size_t)c * kernel;
    float x = load_f(mixed, (size_t)b * mixed_stride + c);
    float acc = x * tap[w];
    for (int j = 0; j < w; ++j) acc += cached[(size_t)j * channels + c] * tap[j];
    act[idx] = acc / (1.0f + expf(-acc));
    float* shifted = next_conv + (size_t)b * w * channels;
    for (int j = 0; j + 1 < w; ++j) shifted[(size_t)j * channels + c] = cached[(size_t)(j + 1) * channels + c];
    if (w > 0) shifted[(size_t)(w - 1) * channels + c] = x;
}

#define DELTA_CONV(SUFFIX, T)                                                                                      \
    extern "C" __global__ void delta_conv_silu_##SUFFIX(const T* mixed, const float* conv, const float* taps,         \
                                                        float* act, float* next_conv, int batch, int channels,        \
                                                        int kernel, int mixed_stride) {                               \
        conv_silu_step(mixed, conv, taps, act, next_conv, batch, channels, kernel, mixed_stride);                     \
    }
DELTA_CONV(f32, float)
DELTA_CONV(bf16, __nv_bfloat16)

// Sums `x` over the block (blockDim.x a power of two); `red` holds blockDim.x floats. Every thread gets the sum.
__device__ float block_sum(float x, float* red) {
    red[threadIdx.x] = x;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
        __syncthreads();
    }
    float total = red[0];
    __syncthreads();
    return total;
}

// The rest of a step once this block's raw q and k (shared) and v are in place: q and k L2-normalised (q also
// scaled by 1/sqrt(d_k)), the decay and beta of value head h from a and b (at `ab`), then thread j updates column j
// of the state `s` into `ns` (which may be `s`: each element is read before it is written, by its own thread) and
// writes o_j to `out_row`.
template <typename T>
__device__ void normalized_update(float* q, float* k, const float* v, const T* a, const T* b_in, size_t ab, int h,
                                  const float* dt_bias, const float* a_log, const float* s, float* ns, float* out_row,
                                  int dk, int dv, float* red) {
    float sq = 0.0f, sk = 0.0f;
    for (int i = threadIdx.x; i < dk; i += blockDim.x) {
        sq += q[i] * q[i];
        sk += k[i] * k[i];
    }
    sq = block_sum(sq, red);
    sk = block_sum(sk, red);
    float fq = (1.0f / sqrtf(sq + QK_NORM_EPS)) * (1.0f / sqrtf((float)dk));
    float fk = 1.0f / sqrtf(sk + QK_NORM_EPS);
    for (int i = threadIdx.x; i < dk; i += blockDim.x) {
        q[i] *= fq;
        k[i] *= fk;
    }
    __syncthreads();
    float x = load_f(a, ab) + dt_bias[h];
    float softplus = fmaxf(x, 0.0f) + logf(1.0f + expf(-fabsf(x)));
    float decay = expf(-expf(a_log[h]) * softplus);
    float beta = 1.0f / (1.0f + expf(-load_f(b_in, ab)));
    // The column's loads are independent of the sums they feed: unrolled, several are in flight at once (a step at
    // batch 1 has few blocks, so the walk down a column is bound by load latency, not bandwidth).
    for (int j = threadIdx.x; j < dv; j += blockDim.x) {
        float m = 0.0f;
#pragma unroll 8
        for (int i = 0; i < dk; ++i) m += k[i] * (decay * s[(size_t)i * dv + j]);
        float u = beta * (v[j] - m);
        float o = 0.0f;
#pragma unroll 8
        for (int i = 0; i < dk; ++i) {
            float e = decay * s[(size_t)i * dv + j] + k[i] * u;
            ns[(size_t)i * dv + j] = e;
            o += q[i] * e;
        }
        out_row[j] = o;
    }
}

// Shared memory: q[d_k], k[d_k], red[blockDim.x].
template <typename T>
__device__ void delta_state_step(
    const float* act,       // [B, C], C = 2 n_k d_k + n_v d_v: q heads, k heads, v heads
    const T* a,             // [B, n_v], rows `ab_stride` elements apart
    const T* b_in,          // [B, n_v], rows `ab_stride` elements apart
    const float* dt_bias,   // [n_v]
    const float* a_log,     // [n_v]
    const float* state,     // [B, n_v, d_k, d_v]
    float* next_state,      // [B, n_v, d_k, d_v]
    float* out,             // [B, n_v, d_v]
    int n_k, int n_v, int dk, int dv, int ab_stride, float* shared) {
    float* q = shared;
    float* k = shared + dk;
    float* red = shared + 2 * dk;
    int bh = blockIdx.x, b = bh / n_v, h = bh % n_v;
    int kh = h / (n_v / n_k);
    int channels = 2 * n_k * dk + n_v * dv;
    const float* row = act + (size_t)b * channels;
    for (int i = threadIdx.x; i < dk; i += blockDim.x) {
        q[i] = row[kh * dk + i];
        k[i] = row[n_k * dk + kh * dk + i];
    }
    normalized_update(q, k, row + 2 * n_k * dk + h * dv, a, b_in, (size_t)b * ab_stride + h, h, dt_bias, a_log,
                      state + (size_t)bh * dk * dv, next_state + (size_t)bh * dk * dv, out + (size_t)bh * dv, dk, dv,
                      red);
}

// The conv and the state step as one launch, when every key head serves one value head (n_k = n_v, as in
// Qwen3.5-0.8B): block (b, h) owns its q, k and v channels alone, so it convolves them, shifts their window in place
// and goes on to the state without waiting for other blocks. Same arithmetic as the two kernels. Shared memory:
// q[d_k], k[d_k], v[d_v], red[blockDim.x].
template <typename T>
__device__ void delta_conv_state_step(const T* mixed, int mixed_stride, float* conv, const float* taps, const T* a,
                                      const T* b_in, int ab_stride, const float* dt_bias, const float* a_log,
                                      float* state, float* out, int n_h, int dk, int dv, int kernel, float* shared) {
    float* q = shared;
    float* k = q + dk;
    float* v = k + dk;
    float* red = v + dv;
    const int bh = blockIdx.x, b = bh / n_h, h = bh % n_h;
    const int channels = 2 * n_h * dk + n_h * dv, w = kernel - 1;
    float* cached = conv + (size_t)b * w * channels;
    for (int e = threadIdx.x; e < 2 * dk + dv; e += blockDim.x) {
        const int c = e < dk ? h * dk + e : (e < 2 * dk ? n_h * dk + h * dk + e - dk : 2 * n_h * dk + h * dv + e - 2 * dk);
        const float x = load_f(mixed, (size_t)b * mixed_stride + c);
        const float* tap = taps + (size_t)c * kernel;
        float acc = x * tap[w];
        for (int j = 0; j < w; ++j) acc += cached[(size_t)j * channels + c] * tap[j];
        for (int j = 0; j + 1 < w; ++j) cached[(size_t)j * channels + c] = cached[(size_t)(j + 1) * channels + c];
        if (w > 0) cached[(size_t)(w - 1) * channels + c] = x;
        const float act = acc / (1.0f + expf(-acc));
        if (e < dk) {
            q[e] = act;
        } else if (e < 2 * dk) {
            k[e - dk] = act;
        } else {
            v[e - 2 * dk] = act;
        }
    }
    __syncthreads();
    float* s = state + (size_t)bh * dk * dv;
    normalized_update(q, k, v, a, b_in, (size_t)b * ab_stride + h, h, dt_bias, a_log, s, s, out + (size_t)bh * dv, dk,
                      dv, red);
}

#define DELTA_FUSED(SUFFIX, T)                                                                                     \
    extern "C" __global__ void delta_fused_step_##SUFFIX(const T* mixed, int mixed_stride, float* conv,             \
                                                         const float* taps, const T* a, const T* b_in,              \
                                                         int ab_stride, const float* dt_bias, const float* a_log,   \
                                                         float* state, float* out, int n_h, int dk, int dv,         \
                                                         int kernel) {                                              \
        extern __shared__ float shared[];                                                                           \
        delta_conv_state_step(mixed, mixed_stride, conv, taps, a, b_in, ab_stride, dt_bias, a_log, state, out, n_h, \
                              dk, dv, kernel, shared);                                                              \
    }
DELTA_FUSED(f32, float)
DELTA_FUSED(bf16, __nv_bfloat16)

#define DELTA_STEP(SUFFIX, T)                                                                                      \
    extern "C" __global__ void delta_step_##SUFFIX(const float* act, const T* a, const T* b_in,                       \
                                                   const float* dt_bias, const float* a_log, const float* state,      \
                                                   float* next_state, float* out, int n_k, int n_v, int dk, int dv,   \
                                                   int ab_stride) {                                                   \
        extern __shared__ float shared[];                                                                             \
        delta_state_step(act, a, b_in, dt_bias, a_log, state, next_state, out, n_k, n_v, dk, dv, ab_stride, shared);  \
    }
DELTA_STEP(f32, float)
DELTA_STEP(bf16, __nv_bfloat16)
