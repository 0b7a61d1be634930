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
    float sq = 0.0f, sk = 0.0f;
    for (int i = threadIdx.x; i < dk; i += blockDim.x) {
        float qi = row[kh * dk + i], ki = row[n_k * dk + kh * dk + i];
        q[i] = qi;
        k[i] = ki;
        sq += qi * qi;
        sk += ki * ki;
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
    size_t ab = (size_t)b * ab_stride + h;
    float x = load_f(a, ab) + dt_bias[h];
    float softplus = fmaxf(x, 0.0f) + logf(1.0f + expf(-fabsf(x)));
    float decay = expf(-expf(a_log[h]) * softplus);
    float beta = 1.0f / (1.0f + expf(-load_f(b_in, ab)));
    const float* v = row + 2 * n_k * dk + h * dv;
    const float* s = state + (size_t)bh * dk * dv;
    float* ns = next_state + (size_t)bh * dk * dv;
    for (int j = threadIdx.x; j < dv; j += blockDim.x) {
        float m = 0.0f;
        for (int i = 0; i < dk; ++i) m += k[i] * (decay * s[(size_t)i * dv + j]);
        float u = beta * (v[j] - m);
        float o = 0.0f;
        for (int i = 0; i < dk; ++i) {
            float e = decay * s[(size_t)i * dv + j] + k[i] * u;
            ns[(size_t)i * dv + j] = e;
            o += q[i] * e;
        }
        out[(size_t)bh * dv + j] = o;
    }
}

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
