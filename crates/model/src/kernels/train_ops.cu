// The CPU training kernels' CUDA twins, f32 (see mod.rs and norm.rs, softmax.rs, gated.rs: same inputs, outputs and
// arithmetic): each a graph node with a hand-written backward pass in place of a composition of candle ops, every
// one of which is a kernel launch and, under autograd, a gradient buffer to zero-fill and add. Compiled to PTX by
// build.rs when the `cuda` feature is on; train_cuda.rs launches them.
//
// Row kernels (normalisation, softmax): one block per row of the last dimension, ROW_THREADS threads striding over
// it, block sums by warp shuffles then shared memory. Elementwise kernels: one thread per element. Weight gradients
// (the norm weight, the conv taps) are summed over rows into zero-filled buffers with atomicAdd, the conv taps'
// first within a block over ROWS_PER_BLOCK rows.

#define FULL_MASK 0xffffffffu

#include "block_reduce.cuh"

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// silu'(x) = s (1 + x (1 - s)), s = sigmoid(x).
__device__ __forceinline__ float silu_grad(float x) {
    const float s = sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
}

// y = x / sqrt(c sum(x^2) + eps) (c = 1/n when `mean`, else 1), times w (or 1 + w with `plus_one`) when w is given.
extern "C" __global__ void norm_fwd_f32(const float* x, const float* w, float* y, int n, float eps, int mean,
                                        int plus_one) {
    extern __shared__ float red[];  // 32 floats (the launch gives them)
    const float* xr = x + (size_t)blockIdx.x * n;
    float* yr = y + (size_t)blockIdx.x * n;
    float sq = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) sq += xr[i] * xr[i];
    sq = warp_block_sum(sq, red);
    const float r = 1.0f / sqrtf(sq * (mean ? 1.0f / n : 1.0f) + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float s = w == nullptr ? 1.0f : (plus_one ? 1.0f + w[i] : w[i]);
        yr[i] = xr[i] * r * s;
    }
}

// Without w: dx = (g - y c sum(g y)) r with y = x r. With w (s = w or 1 + w, xh = x r):
// dx = (g s - xh mean(g s xh)) r, and dw += g xh summed over rows (atomically into a zero-filled dw).
extern "C" __global__ void norm_bwd_f32(const float* x, const float* w, const float* g, float* dx, float* dw, int n,
                                        float eps, int mean, int plus_one) {
    extern __shared__ float red[];  // 32 floats (the launch gives them)
    const size_t row = (size_t)blockIdx.x * n;
    const float *xr = x + row, *gr = g + row;
    float* dr = dx + row;
    float sq = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) sq += xr[i] * xr[i];
    sq = warp_block_sum(sq, red);
    const float c = mean ? 1.0f / n : 1.0f;
    const float r = 1.0f / sqrtf(sq * c + eps);
    float dot = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float s = w == nullptr ? 1.0f : (plus_one ? 1.0f + w[i] : w[i]);
        dot += gr[i] * s * xr[i] * r;
    }
    dot = warp_block_sum(dot, red) * c;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float s = w == nullptr ? 1.0f : (plus_one ? 1.0f + w[i] : w[i]);
        const float xh = xr[i] * r;
        dr[i] = (gr[i] * s - xh * dot) * r;
        if (dw != nullptr) atomicAdd(dw + i, gr[i] * xh);
    }
}

// Keys row `r` of a [.., rows, n] score block sees: all n, or with `past` >= 0 the causal 0..=past + (r % rows).
__device__ __forceinline__ int visible(int r, int n, int rows, int past) {
    return past < 0 ? n : min(past + r % rows + 1, n);
}

// y = softmax(scale x) over the visible keys of each row; the others get 0.
extern "C" __global__ void softmax_fwd_f32(const float* x, float* y, int n, int rows, int past, float scale) {
    extern __shared__ float red[];  // 32 floats (the launch gives them)
    const int m = visible(blockIdx.x, n, rows, past);
    const float* xr = x + (size_t)blockIdx.x * n;
    float* yr = y + (size_t)blockIdx.x * n;
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < m; i += blockDim.x) mx = fmaxf(mx, xr[i] * scale);
    mx = warp_block_max(mx, red);
    float sum = 0.0f;
    for (int i = threadIdx.x; i < m; i += blockDim.x) sum += expf(xr[i] * scale - mx);
    sum = warp_block_sum(sum, red);
    for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = i < m ? expf(xr[i] * scale - mx) / sum : 0.0f;
}

// dx = scale p (g - sum(p g)) over the visible keys; 0 elsewhere.
extern "C" __global__ void softmax_bwd_f32(const float* p, const float* g, float* dx, int n, int rows, int past,
                                           float scale) {
    extern __shared__ float red[];  // 32 floats (the launch gives them)
    const int m = visible(blockIdx.x, n, rows, past);
    const size_t row = (size_t)blockIdx.x * n;
    float dot = 0.0f;
    for (int i = threadIdx.x; i < m; i += blockDim.x) dot += p[row + i] * g[row + i];
    dot = warp_block_sum(dot, red);
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        dx[row + i] = i < m ? scale * p[row + i] * (g[row + i] - dot) : 0.0f;
}

// y = silu(a) b.
extern "C" __global__ void silu_mul_fwd_f32(const float* a, const float* b, float* y, int total) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x)
        y[i] = a[i] * sigmoid(a[i]) * b[i];
}

// da = g b silu'(a), db = g silu(a).
extern "C" __global__ void silu_mul_bwd_f32(const float* a, const float* b, const float* g, float* da, float* db,
                                            int total) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        da[i] = g[i] * b[i] * silu_grad(a[i]);
        db[i] = g[i] * a[i] * sigmoid(a[i]);
    }
}

// Causal depthwise conv pre-activation at (b, t, c): sum_j taps[j, c] x[b, t + j - (K - 1), c], zeros before t = 0.
__device__ __forceinline__ float conv_pre(const float* x, const float* taps, int b, int t, int c, int T, int C, int K) {
    float acc = 0.0f;
    for (int j = 0; j < K; ++j) {
        const int s = t + j - (K - 1);
        if (s >= 0) acc += taps[(size_t)j * C + c] * x[((size_t)b * T + s) * C + c];
    }
    return acc;
}

// y = silu(conv(x)): x [B, T, C], taps [K, C].
extern "C" __global__ void conv_silu_fwd_f32(const float* x, const float* taps, float* y, int B, int T, int C, int K) {
    const size_t total = (size_t)B * T * C;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int c = i % C, t = (i / C) % T, b = i / ((size_t)C * T);
        const float p = conv_pre(x, taps, b, t, c, T, C, K);
        y[i] = p * sigmoid(p);
    }
}

// dpre = g silu'(pre), [B, T, C] (the backward's first half).
extern "C" __global__ void conv_silu_dpre_f32(const float* x, const float* taps, const float* g, float* dpre, int B,
                                              int T, int C, int K) {
    const size_t total = (size_t)B * T * C;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int c = i % C, t = (i / C) % T, b = i / ((size_t)C * T);
        dpre[i] = g[i] * silu_grad(conv_pre(x, taps, b, t, c, T, C, K));
    }
}

// dx[b, s, c] = sum_j taps[j, c] dpre[b, s + K - 1 - j, c] (targets before T), and dtaps[j, c] += the products
// x[b, s, c] dpre[b, s + K - 1 - j, c] over this block's rows (atomically into a zero-filled dtaps). Grid:
// (ceil(C / blockDim), ceil(B T / rows_per_block)); thread = channel, looping over its block's rows. K <= 16.
extern "C" __global__ void conv_silu_bwd_f32(const float* x, const float* taps, const float* dpre, float* dx,
                                             float* dtaps, int B, int T, int C, int K, int rows_per_block) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc[16];
    for (int j = 0; j < K; ++j) acc[j] = 0.0f;
    const int first = blockIdx.y * rows_per_block, last = min(first + rows_per_block, B * T);
    for (int row = first; row < last; ++row) {
        const int b = row / T, s = row % T;
        const float xv = x[(size_t)row * C + c];
        float d = 0.0f;
        for (int j = 0; j < K; ++j) {
            const int t = s + K - 1 - j;
            if (t >= T) continue;
            const float dp = dpre[((size_t)b * T + t) * C + c];
            d += taps[(size_t)j * C + c] * dp;
            acc[j] += xv * dp;
        }
        dx[(size_t)row * C + c] = d;
    }
    for (int j = 0; j < K; ++j) atomicAdd(dtaps + (size_t)j * C + c, acc[j]);
}

// Rotary embedding of the first `rot` features of x [B, H, T, D] by tables cos, sin [TB, T, rot] (TB 1 or B): per
// half-pair j, y1 = x1 c1 - x2 s1 and y2 = x2 c2 + x1 s2; with `transpose` (the backward pass, applied to the output
// gradient) x1 c1 + x2 s2 and x2 c2 - x1 s1. Features past `rot` pass through. One thread per element.
extern "C" __global__ void rope_f32(const float* x, const float* cos, const float* sin, float* y, int B, int H, int T,
                                    int D, int rot, int table_batch, int transpose) {
    const size_t total = (size_t)B * H * T * D;
    const int half = rot / 2;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int d = i % D;
        const size_t row = i / D;
        if (d >= rot) {
            y[i] = x[i];
            continue;
        }
        const int t = row % T, b = row / ((size_t)H * T);
        const size_t tab = ((size_t)(table_batch == 1 ? 0 : b) * T + t) * rot;
        const float* xr = x + row * D;
        if (d < half) {
            const float x1 = xr[d], x2 = xr[d + half];
            y[i] = transpose ? x1 * cos[tab + d] + x2 * sin[tab + d + half] : x1 * cos[tab + d] - x2 * sin[tab + d];
        } else {
            const float x1 = xr[d - half], x2 = xr[d];
            y[i] = transpose ? x2 * cos[tab + d] - x1 * sin[tab + d - half] : x2 * cos[tab + d] + x1 * sin[tab + d];
        }
    }
}

#define QK_NORM_EPS 1e-6f  // text/delta_rule.rs QK_NORM_EPS

__device__ __forceinline__ float warp_allsum(float x) {
    for (int off = 16; off >= 1; off >>= 1) x += __shfl_xor_sync(FULL_MASK, x, off);
    return x;
}

// The delta rule's packed rows from Gated DeltaNet's conv output (delta_pack.rs): conv [B, T, C] with
// C = 2 n_k dk + n_v dv (q heads, k heads, v heads), g and beta [B, T, n_v] -> out [B, n_v, T, 2 dk + dv + 2] with
// rows q^ = q nu(q) / sqrt(dk), k^ = k nu(k), v, g, beta; value head h reads key head h / (n_v / n_k),
// nu(x) = 1 / sqrt(sum x^2 + eps). One warp (block of 32) per output row.
extern "C" __global__ void delta_pack_fwd_f32(const float* conv, const float* g, const float* beta, float* out, int B,
                                              int T, int n_k, int n_v, int dk, int dv) {
    const int row = blockIdx.x, lane = threadIdx.x;
    const int t = row % T, h = (row / T) % n_v, b = row / (T * n_v), kh = h / (n_v / n_k);
    const int C = 2 * n_k * dk + n_v * dv, W = 2 * dk + dv + 2;
    const float* src = conv + ((size_t)b * T + t) * C;
    const float *q = src + kh * dk, *k = src + (n_k + kh) * dk, *v = src + 2 * n_k * dk + h * dv;
    float sq = 0.0f, sk = 0.0f;
    for (int i = lane; i < dk; i += 32) {
        sq += q[i] * q[i];
        sk += k[i] * k[i];
    }
    sq = warp_allsum(sq);
    sk = warp_allsum(sk);
    const float nq = (1.0f / sqrtf(sq + QK_NORM_EPS)) * (1.0f / sqrtf((float)dk));
    const float nk = 1.0f / sqrtf(sk + QK_NORM_EPS);
    float* o = out + (size_t)row * W;
    for (int i = lane; i < dk; i += 32) {
        o[i] = q[i] * nq;
        o[dk + i] = k[i] * nk;
    }
    for (int j = lane; j < dv; j += 32) o[2 * dk + j] = v[j];
    if (lane == 0) {
        const size_t gi = ((size_t)b * T + t) * n_v + h;
        o[W - 2] = g[gi];
        o[W - 1] = beta[gi];
    }
}

// Its backward: from dp (the packed rows' gradient) to dconv, dg and dbeta. One warp per (b, t, key head): the
// gradient of q^ (and k^) summed over the value heads sharing the key head, through the normalisation:
// dx = scale nu (G - x nu^2 (G . x)); then the value heads' v, g and beta gradients copied.
extern "C" __global__ void delta_pack_bwd_f32(const float* conv, const float* dp, float* dconv, float* dg, float* dbeta,
                                              int B, int T, int n_k, int n_v, int dk, int dv) {
    const int lane = threadIdx.x, kh = blockIdx.x % n_k, bt = blockIdx.x / n_k, b = bt / T, t = bt % T;
    const int rep = n_v / n_k, C = 2 * n_k * dk + n_v * dv, W = 2 * dk + dv + 2;
    const float* src = conv + (size_t)bt * C;
    float* dst = dconv + (size_t)bt * C;
    for (int part = 0; part < 2; ++part) {
        const int at = (part == 0 ? kh : n_k + kh) * dk;
        const float scale = part == 0 ? 1.0f / sqrtf((float)dk) : 1.0f;
        const float* x = src + at;
        float dot = 0.0f, sq = 0.0f;
        for (int i = lane; i < dk; i += 32) {
            float G = 0.0f;
            for (int h = kh * rep; h < (kh + 1) * rep; ++h) G += dp[(((size_t)b * n_v + h) * T + t) * W + part * dk + i];
            dot += G * x[i];
            sq += x[i] * x[i];
        }
        dot = warp_allsum(dot);
        sq = warp_allsum(sq);
        const float nu = 1.0f / sqrtf(sq + QK_NORM_EPS);
        for (int i = lane; i < dk; i += 32) {
            float G = 0.0f;
            for (int h = kh * rep; h < (kh + 1) * rep; ++h) G += dp[(((size_t)b * n_v + h) * T + t) * W + part * dk + i];
            dst[at + i] = scale * nu * (G - x[i] * nu * nu * dot);
        }
    }
    for (int h = kh * rep; h < (kh + 1) * rep; ++h) {
        const float* r = dp + (((size_t)b * n_v + h) * T + t) * W;
        for (int j = lane; j < dv; j += 32) dst[2 * n_k * dk + h * dv + j] = r[2 * dk + j];
        if (lane == 0) {
            dg[(size_t)bt * n_v + h] = r[W - 2];
            dbeta[(size_t)bt * n_v + h] = r[W - 1];
        }
    }
}

// AdamW in place (adamw.rs): the moments mv = [m; v] (2 n floats) from the gradient g scaled by `scale`, then the
// parameter p from them. `use_scale` and `decay` say whether the scaling and the decay multiply at all, so that
// without them the arithmetic is the composition's exactly.
extern "C" __global__ void adamw_moments_f32(float* mv, const float* g, int n, float b1, float c1, float b2,
                                             float c2, float scale, int use_scale) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const float gi = use_scale ? g[i] * scale : g[i];
        mv[i] = __fadd_rn(__fmul_rn(mv[i], b1), __fmul_rn(gi, c1));
        mv[n + i] = __fadd_rn(__fmul_rn(mv[n + i], b2), __fmul_rn(__fmul_rn(gi, gi), c2));
    }
}

extern "C" __global__ void adamw_apply_f32(float* p, const float* mv, int n, float keep, int decay, float lr,
                                           float r1, float r2, float eps) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const float step = __fdiv_rn(__fmul_rn(mv[i], r1), __fadd_rn(sqrtf(__fmul_rn(mv[n + i], r2)), eps));
        const float kept = decay ? __fmul_rn(p[i], keep) : p[i];
        p[i] = __fsub_rn(kept, __fmul_rn(step, lr));
    }
}
