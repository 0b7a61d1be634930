// The gated delta rule over whole sequences on CUDA, f32: the GPU twin of delta_rule.rs's CPU node (same packed
// input, same arithmetic, same backward). Compiled to PTX by build.rs when the `cuda` feature is on.
//
// Input rows are packed as in the CPU node: x = [BH, T, W], W = 2 DK + dv + 2, each row q (DK, normalised and
// scaled), k (DK, normalised), v (dv), g, beta. Per head the state S (DK x dv) does, for every token,
//   S <- exp(g) S;  m = S^T k;  u = beta (v - m);  S <- S + k u^T;  o = S^T q.
// A grid of (BH, column groups) blocks: block (h, c) runs head h's columns c·blockDim .. (c + 1)·blockDim − 1, and
// thread j owns column j of S in registers (DK floats; DK a compile-time power of two, the kernels are
// instantiated for 16, 32, 64 and 128). Columns are independent in the forward pass, so it needs no reduction: the
// block only shares each token's q and k through shared memory. Splitting a head's columns over blocks gives a
// small batch more blocks than heads to spread over the GPU.
//
// The backward pass (names as in delta_rule.rs) runs per token in reverse:
//   dS += q do^T;  du = dS^T k;  dv = beta du;  dm = -beta du;  dbeta = du . (v - m)
//   dq = S_now do = exp(g) S_prev do + k (u . do)          (a sum over columns)
//   dk = dS u + exp(g) S_prev dm                            (a sum over columns)
//   dP = dS + k dm^T;  dg = exp(g) sum(dP * S_prev);  dS <- exp(g) dP
// Thread j keeps column j of dS in registers and reads column j of S_prev from a scratch buffer: a first sweep
// keeps the state every BLOCK tokens (`kept`), and each block of BLOCK tokens is replayed from its kept state into
// `states` (BLOCK + 1 states per head, column by column in global memory) before being walked backwards. Each
// thread touches only its own column of the scratch buffers, so column groups of a head never meet there. The sums over columns are reduced within a
// warp by shuffles (a reduce-scatter: 32 lanes hold 32 partial rows, 31 shuffles later lane l holds the sum of
// row l), then across the block's warps through shared memory, then across column groups by atomicAdd into the
// zero-filled gradient (dq, dk, dg, dbeta; dv is per column). The block has a whole number of warps; lanes past dv
// hold zero columns.

#define FULL_MASK 0xffffffffu

// Threads per block for `dv` columns (whole warps, at most COLS) and the column groups that cover them; the launches
// in delta_rule_cuda.rs use the same.
#define COLS 32
__host__ __device__ inline int block_threads(int dv) { return min((dv + 31) / 32 * 32, COLS); }
__host__ __device__ inline int column_groups(int dv) { return (dv + COLS - 1) / COLS; }

// Reduce-scatter of CH partial values (CH a power of two <= 32) over the 32 lanes of a warp: afterwards v[0] of lane
// l is the warp's sum of row (l & (CH - 1)). OFF walks 16, 8, 4, 2, 1.
template <int CH, int OFF>
struct Scatter {
    static __device__ __forceinline__ void run(float* v, int lane) {
        if constexpr (OFF >= CH) {
#pragma unroll
            for (int r = 0; r < CH; ++r) v[r] += __shfl_xor_sync(FULL_MASK, v[r], OFF);
        } else {
            const bool up = (lane & OFF) != 0;
#pragma unroll
            for (int r = 0; r < OFF; ++r) {
                float send = up ? v[r] : v[r + OFF];
                float keep = up ? v[r + OFF] : v[r];
                v[r] = keep + __shfl_xor_sync(FULL_MASK, send, OFF);
            }
        }
        if constexpr (OFF > 1) Scatter<CH, OFF / 2>::run(v, lane);
    }
};

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) x += __shfl_xor_sync(FULL_MASK, x, off);
    return x;
}

// Loads a row's q and k into shared memory (2 DK floats), then g and beta after them.
template <int DK>
__device__ __forceinline__ void load_token(const float* row, int dv, float* tok) {
    for (int e = threadIdx.x; e < 2 * DK; e += blockDim.x) tok[e] = row[e];
    if (threadIdx.x == 0) {
        tok[2 * DK] = row[2 * DK + dv];
        tok[2 * DK + 1] = row[2 * DK + dv + 1];
    }
}

// Sums over the DK rows are split over ACC partial sums: a single chain of DK dependent adds per token would make
// the sequential walk over tokens wait on the adder's latency.
#define ACC 4

__device__ __forceinline__ float total(const float* acc) {
    float t = 0.0f;
#pragma unroll
    for (int r = 0; r < ACC; ++r) t += acc[r];
    return t;
}

// One token on column `s` (held by this thread): decay, delta update; with `q` (not null) returns the read-out
// o = S^T q after the update, else 0.
template <int DK>
__device__ __forceinline__ float advance(float* s, const float* tok, float vj, const float* q = nullptr) {
    const float* k = tok + DK;
    const float a = expf(tok[2 * DK]);
    const float beta = tok[2 * DK + 1];
    float acc[ACC] = {};
#pragma unroll
    for (int i = 0; i < DK; ++i) {
        s[i] *= a;
        acc[i % ACC] += s[i] * k[i];
    }
    const float u = beta * (vj - total(acc));
    float out[ACC] = {};
#pragma unroll
    for (int i = 0; i < DK; ++i) {
        s[i] += k[i] * u;
        if (q != nullptr) out[i % ACC] += s[i] * q[i];
    }
    return total(out);
}

// Forward over every token of one head from `init` (null: zero) into `out` [BH, T, dv]; the last state goes to
// `final_state` when it is not null. Shared memory: 2 DK + 2 floats.
template <int DK>
__device__ void forward(const float* x, const float* init, float* out, float* final_state, int T, int dv) {
    extern __shared__ float tok[];
    const int bh = blockIdx.x, j = blockIdx.y * blockDim.x + threadIdx.x, W = 2 * DK + dv + 2;
    const bool active = j < dv;
    float s[DK];
#pragma unroll
    for (int i = 0; i < DK; ++i) s[i] = (init != nullptr && active) ? init[((size_t)bh * DK + i) * dv + j] : 0.0f;
    const float* rows = x + (size_t)bh * T * W;
    for (int t = 0; t < T; ++t) {
        const float* row = rows + (size_t)t * W;
        __syncthreads();
        load_token<DK>(row, dv, tok);
        __syncthreads();
        const float vj = active ? row[2 * DK + j] : 0.0f;
        const float o = advance<DK>(s, tok, vj, tok);
        if (active) out[((size_t)bh * T + t) * dv + j] = o;
    }
    if (final_state != nullptr && active) {
#pragma unroll
        for (int i = 0; i < DK; ++i) final_state[((size_t)bh * DK + i) * dv + j] = s[i];
    }
}

// Stores column j of `s` as state `n` of a [.., DK, dv] buffer `buf` (already offset to this head).
template <int DK>
__device__ __forceinline__ void store_state(float* buf, int n, const float* s, int dv, int j) {
#pragma unroll
    for (int i = 0; i < DK; ++i) buf[((size_t)n * DK + i) * dv + j] = s[i];
}

// Backward of `forward` from a zero state: dx [BH, T, W] (zero-filled: column groups add into it) from x and dout
// [BH, T, dv]. Scratch: `kept`
// [BH, ceil(T / block), DK, dv] and `states` [BH, block + 1, DK, dv]. Shared memory: 2 DK + 2 + warps (2 DK + 3)
// floats.
template <int DK>
__device__ void backward(const float* x, const float* dout, float* dx, float* kept, float* states, int T, int dv,
                         int block) {
    constexpr int CH = DK < 32 ? DK : 32;
    extern __shared__ float shared[];
    float* tok = shared;
    const int warps = blockDim.x / 32;
    float* red = shared + 2 * DK + 2;          // [warps][2][DK]: dq and dk partial sums
    float* red_sc = red + warps * 2 * DK;      // [warps][3]: dbeta, u . do, dg before the exp(g) factor
    const int bh = blockIdx.x, j = blockIdx.y * blockDim.x + threadIdx.x, W = 2 * DK + dv + 2;
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    const bool active = j < dv;
    const int blocks = (T + block - 1) / block;
    const float* rows = x + (size_t)bh * T * W;
    float* my_kept = kept + (size_t)bh * blocks * DK * dv;
    float* my_states = states + (size_t)bh * (block + 1) * DK * dv;

    // Sweep 1: the state before every block's first token.
    float s[DK];
#pragma unroll
    for (int i = 0; i < DK; ++i) s[i] = 0.0f;
    for (int t = 0; t < T; ++t) {
        const float* row = rows + (size_t)t * W;
        if (t % block == 0 && active) store_state<DK>(my_kept, t / block, s, dv, j);
        __syncthreads();
        load_token<DK>(row, dv, tok);
        __syncthreads();
        advance<DK>(s, tok, active ? row[2 * DK + j] : 0.0f);
    }

    // dS's column stays in registers from here on; the replays below work on the scratch states instead (both
    // columns in registers would be 2 DK floats a thread).
    float ds[DK];
#pragma unroll
    for (int i = 0; i < DK; ++i) ds[i] = 0.0f;
    for (int b = blocks - 1; b >= 0; --b) {
        const int start = b * block, len = min(block, T - start);
        // Replay the block: states[n] = the state before token start + n.
        if (active) {
            for (int i = 0; i < DK; ++i) my_states[(size_t)i * dv + j] = my_kept[((size_t)b * DK + i) * dv + j];
        }
        for (int n = 0; n < len; ++n) {
            const float* row = rows + (size_t)(start + n) * W;
            __syncthreads();
            load_token<DK>(row, dv, tok);
            __syncthreads();
            if (!active) continue;
            const float* k = tok + DK;
            const float a = expf(tok[2 * DK]);
            const float* cur = my_states + (size_t)n * DK * dv + j;
            float* next = my_states + (size_t)(n + 1) * DK * dv + j;
            float m = 0.0f;
#pragma unroll 8
            for (int i = 0; i < DK; ++i) m += cur[(size_t)i * dv] * k[i];
            const float u = tok[2 * DK + 1] * (row[2 * DK + j] - a * m);
#pragma unroll 8
            for (int i = 0; i < DK; ++i) next[(size_t)i * dv] = a * cur[(size_t)i * dv] + k[i] * u;
        }
        // Walk it backwards.
        for (int n = len - 1; n >= 0; --n) {
            const int t = start + n;
            const float* row = rows + (size_t)t * W;
            __syncthreads();
            load_token<DK>(row, dv, tok);
            __syncthreads();
            const float* q = tok;
            const float* k = tok + DK;
            const float a = expf(tok[2 * DK]);
            const float beta = tok[2 * DK + 1];
            const float vj = active ? row[2 * DK + j] : 0.0f;
            const float doj = active ? dout[((size_t)bh * T + t) * dv + j] : 0.0f;
            // Column j of S_prev (zero for the idle lanes).
            const float* prev = my_states + (size_t)n * DK * dv + j;
            float m_acc[ACC] = {}, du_acc[ACC] = {};
#pragma unroll
            for (int i = 0; i < DK; ++i) {
                const float sv = active ? prev[(size_t)i * dv] : 0.0f;
                m_acc[i % ACC] += sv * k[i];
                ds[i] += q[i] * doj;
                du_acc[i % ACC] += ds[i] * k[i];
            }
            const float m = a * total(m_acc), du = total(du_acc);
            const float u = beta * (vj - m);
            const float dm = -beta * du;
            float da = 0.0f;
#pragma unroll
            for (int c = 0; c < DK / CH; ++c) {
                float pq[CH], pk[CH];
#pragma unroll
                for (int r = 0; r < CH; ++r) {
                    const int i = c * CH + r;
                    const float sv = active ? prev[(size_t)i * dv] : 0.0f;
                    pq[r] = a * sv * doj;
                    pk[r] = ds[i] * u + a * sv * dm;
                    const float dp = ds[i] + k[i] * dm;
                    da += dp * sv;
                    ds[i] = a * dp;
                }
                Scatter<CH, 16>::run(pq, lane);
                Scatter<CH, 16>::run(pk, lane);
                if (lane < CH) {
                    red[(warp * 2 + 0) * DK + c * CH + lane] = pq[0];
                    red[(warp * 2 + 1) * DK + c * CH + lane] = pk[0];
                }
            }
            const float sc0 = warp_sum(du * (vj - m));
            const float sc1 = warp_sum(u * doj);
            const float sc2 = warp_sum(da);
            if (lane == 0) {
                red_sc[warp * 3 + 0] = sc0;
                red_sc[warp * 3 + 1] = sc1;
                red_sc[warp * 3 + 2] = sc2;
            }
            float* drow = dx + ((size_t)bh * T + t) * W;
            if (active) drow[2 * DK + j] = beta * du;
            __syncthreads();
            float udo = 0.0f;
            for (int w = 0; w < warps; ++w) udo += red_sc[w * 3 + 1];
            for (int e = threadIdx.x; e < DK; e += blockDim.x) {
                float dq = 0.0f, dk = 0.0f;
                for (int w = 0; w < warps; ++w) {
                    dq += red[(w * 2 + 0) * DK + e];
                    dk += red[(w * 2 + 1) * DK + e];
                }
                atomicAdd(drow + e, dq + k[e] * udo);
                atomicAdd(drow + DK + e, dk);
            }
            if (threadIdx.x == 0) {
                float dbeta = 0.0f, dg = 0.0f;
                for (int w = 0; w < warps; ++w) {
                    dbeta += red_sc[w * 3 + 0];
                    dg += red_sc[w * 3 + 2];
                }
                atomicAdd(drow + 2 * DK + dv, a * dg);
                atomicAdd(drow + 2 * DK + dv + 1, dbeta);
            }
        }
    }
}

#define INSTANTIATE(DK)                                                                                          \
    extern "C" __global__ void delta_rule_fwd_f32_dk##DK(const float* x, const float* init, float* out,          \
                                                         float* final_state, int T, int dv) {                    \
        forward<DK>(x, init, out, final_state, T, dv);                                                          \
    }                                                                                                            \
    extern "C" __global__ void delta_rule_bwd_f32_dk##DK(const float* x, const float* dout, float* dx,           \
                                                         float* kept, float* states, int T, int dv, int block) { \
        backward<DK>(x, dout, dx, kept, states, T, dv, block);                                                   \
    }

INSTANTIATE(16)
INSTANTIATE(32)
INSTANTIATE(64)
INSTANTIATE(128)
