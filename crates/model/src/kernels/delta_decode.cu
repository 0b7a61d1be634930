// One decoding step of a Gated DeltaNet layer on CUDA, f32: the GPU twin of delta_decode.rs's CPU loop (same
// inputs, outputs and arithmetic; see that module's doc). Compiled to PTX by build.rs when the `cuda` feature is on.
//
// Two launches replace the ~75 candle ops of the composed step:
//   delta_conv_silu_f32  one thread per (sequence, channel): the causal conv over the window [cached K-1 inputs;
//                        new input], its SiLU, and the window shifted by one;
//   delta_step_f32       one block per (sequence, value head): q/k of the head's key head L2-normalised (block
//                        reductions), the decay exp(g) and beta, then thread j owns column j of the state S (d_k x d_v,
//                        row-major): m_j = sum_i k_i exp(g) S_ij, u_j = beta (v_j - m_j), S'_ij = exp(g) S_ij + k_i u_j,
//                        o_j = sum_i q_i S'_ij. Columns are independent, so no reduction is needed there.

#define QK_NORM_EPS 1e-6f  // text/delta_rule.rs QK_NORM_EPS

extern "C" __global__ void delta_conv_silu_f32(
    const float* mixed,   // [B, C]
    const float* conv,    // [B, K-1, C]
    const float* taps,    // [C, K]
    float* act,           // [B, C]
    float* next_conv,     // [B, K-1, C]
    int batch, int channels, int kernel) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= batch * channels) return;
    int b = idx / channels, c = idx % channels, w = kernel - 1;
    const float* cached = conv + (size_t)b * w * channels;
    const float* tap = taps + (size_t)c * kernel;
    float x = mixed[idx];
    float acc = x * tap[w];
    for (int j = 0; j < w; ++j) acc += cached[(size_t)j * channels + c] * tap[j];
    act[idx] = acc / (1.0f + expf(-acc));
    float* shifted = next_conv + (size_t)b * w * channels;
    for (int j = 0; j + 1 < w; ++j) shifted[(size_t)j * channels + c] = cached[(size_t)(j + 1) * channels + c];
    if (w > 0) shifted[(size_t)(w - 1) * channels + c] = x;
}

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
extern "C" __global__ void delta_step_f32(
    const float* act,       // [B, C], C = 2 n_k d_k + n_v d_v: q heads, k heads, v heads
    const float* a,         // [B, n_v]
    const float* b_in,      // [B, n_v]
    const float* dt_bias,   // [n_v]
    const float* a_log,     // [n_v]
    const float* state,     // [B, n_v, d_k, d_v]
    float* next_state,      // [B, n_v, d_k, d_v]
    float* out,             // [B, n_v, d_v]
    int n_k, int n_v, int dk, int dv) {
    extern __shared__ float shared[];
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
    float x = a[bh] + dt_bias[h];
    float softplus = fmaxf(x, 0.0f) + logf(1.0f + expf(-fabsf(x)));
    float decay = expf(-expf(a_log[h]) * softplus);
    float beta = 1.0f / (1.0f + expf(-b_in[bh]));
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
