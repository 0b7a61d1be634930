// The gated delta rule over whole sequences on CUDA, f32: the GPU twin of delta_rule.rs's CPU node (same packed
// input, same arithmetic, same backward). Compiled to PTX by build.rs when the `cuda` feature is on.
//
// Input rows are packed as in the CPU node: x = [BH, T, W], W = 2 DK + dv + 2, each row q (DK, normalised and
// scaled), k (DK, normalised), v (dv), g, beta. Per head the state S (DK x dv) does, for every token,
//   S <- exp(g) S;  m = S^T k;  u = beta (v - m);  S <- S + k u^T;  o = S^T q.
//
// Layout. A block runs COLS columns of one head (grid: heads x column groups; more groups give a small batch more
// blocks than heads). Each column is split over SPLIT neighbouring lanes: lane r of a column holds rows
// 4·SPLIT·c + 4r + e (e < 4) of it, DK / SPLIT floats in registers (DK a compile-time power of two, the kernels are
// instantiated for 16, 32, 64 and 128; at 128 a whole column per thread spilled registers). A sum over a column's
// rows (m = S^T k, o = S^T q) ends in log2(SPLIT) shuffles. Lane r reads its rows of q and k as float4s: the SPLIT
// lanes of a column read consecutive 16-byte words and the columns read the same ones, so shared memory serves a
// warp without bank conflicts.
//
// Tokens are staged in shared memory, double-buffered (`Pipe`): q, k, g, beta and the block's v values (and, in
// the backward pass, the block's output gradients). While the block works on one token, the next is stored into
// the other buffer and the one after it is read from global memory into registers, so a token costs one barrier
// and its loads' latency stays hidden behind the arithmetic of the token before.
//
// The backward pass (names as in delta_rule.rs) runs per token in reverse:
//   dS += q do^T;  du = dS^T k;  dv = beta du;  dm = -beta du;  dbeta = du . (v - m)
//   dq = S_now do = exp(g) S_prev do + k (u . do)          (a sum over columns)
//   dk = dS u + exp(g) S_prev dm                            (a sum over columns)
//   dP = dS + k dm^T;  dg = exp(g) sum(dP * S_prev);  dS <- exp(g) dP
// Each thread keeps its rows of dS's column in registers and reads those of S_prev from a scratch buffer: a first
// sweep keeps the state every BLOCK tokens (`kept`), and each block of BLOCK tokens is replayed from its kept state
// into `states` (BLOCK + 1 states per head, in global memory) before being walked backwards. Each thread touches
// only its own rows and column of the scratch buffers, so threads never meet there. The sums over columns are
// reduced within a warp by a reduce-scatter over the lanes of the warp's columns (afterwards each lane holds the
// sum of one row), then across the block's warps through shared memory, then across column groups by atomicAdd
// into the zero-filled gradient (dq, dk, dg, dbeta; dv is per column). Lanes of columns past dv hold zeros.

#define FULL_MASK 0xffffffffu

// Lanes per column, and columns per block of the forward and the backward pass; the launches in
// delta_rule_cuda.rs use the same.
#define SPLIT 4
#define FWD_COLS 16
#define BWD_COLS 32
__host__ __device__ inline int fwd_threads() { return FWD_COLS * SPLIT; }
__host__ __device__ inline int bwd_threads() { return BWD_COLS * SPLIT; }
__host__ __device__ inline int fwd_groups(int dv) { return (dv + FWD_COLS - 1) / FWD_COLS; }
__host__ __device__ inline int bwd_groups(int dv) { return (dv + BWD_COLS - 1) / BWD_COLS; }
// Floats of one staged token: q, k, g, beta and `per_col` values for each of `cols` columns, in whole float4s.
__host__ __device__ constexpr int stage_floats(int dk, int cols, int per_col) {
    return (2 * dk + 2 + cols * per_col + 3) / 4 * 4;
}

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int off = 16; off >= 1; off >>= 1) x += __shfl_xor_sync(FULL_MASK, x, off);
    return x;
}

// Sums over the SPLIT lanes of a column; every one of them gets the sum.
__device__ __forceinline__ float column_sum(float x) {
#pragma unroll
    for (int off = 1; off < SPLIT; off <<= 1) x += __shfl_xor_sync(FULL_MASK, x, off);
    return x;
}

// The token pipeline of a block of COLS columns: stages token rows (q, k, g, beta, the block's v values and, with
// DO, its output gradients) from global memory into registers (`fetch`), then into a shared buffer (`put`).
template <int DK, int COLS, bool DO>
struct Pipe {
    static constexpr int THREADS = COLS * SPLIT;
    static constexpr int STAGE = stage_floats(DK, COLS, DO ? 2 : 1);
    static constexpr int PER = (STAGE + THREADS - 1) / THREADS;
    // Offsets in a staged token.
    static constexpr int G = 2 * DK, BETA = 2 * DK + 1, V = 2 * DK + 2, D_OUT = V + COLS, END = V + COLS * (DO ? 2 : 1);
    const float* rows;   // this head's x rows
    const float* douts;  // this head's output gradients (DO only)
    int W, dv, j0;
    float ahead[PER];

    __device__ float elem(int t, int e) const {
        const float* row = rows + (size_t)t * W;
        if (e < 2 * DK) return row[e];
        if (e < V) return row[dv + e];  // g, beta after the dv values
        if (e >= END) return 0.0f;      // padding to whole float4s
        const int c = e < D_OUT ? e - V : e - D_OUT, j = j0 + c;
        if (c >= COLS || j >= dv) return 0.0f;
        return e < D_OUT ? row[2 * DK + j] : douts[(size_t)t * dv + j];
    }
    __device__ __forceinline__ void fetch(int t) {
#pragma unroll
        for (int n = 0; n < PER; ++n) {
            const int e = threadIdx.x + n * THREADS;
            ahead[n] = e < STAGE ? elem(t, e) : 0.0f;
        }
    }
    __device__ __forceinline__ void put(float* buf) const {
#pragma unroll
        for (int n = 0; n < PER; ++n) {
            const int e = threadIdx.x + n * THREADS;
            if (e < STAGE) buf[e] = ahead[n];
        }
    }
    // Walks `count` tokens, first, first + step, ...: `body(buf, t)` sees token t staged in `buf`. Every thread
    // of the block must call it (it has barriers); `tok` holds 2 STAGE floats.
    template <typename Body>
    __device__ __forceinline__ void walk(float* tok, int first, int step, int count, Body body) {
        if (count <= 0) return;
        fetch(first);
        put(tok);
        if (count > 1) fetch(first + step);
        __syncthreads();
        for (int n = 0; n < count; ++n) {
            body(tok + (n & 1) * STAGE, first + n * step);
            if (n + 1 < count) {
                put(tok + ((n + 1) & 1) * STAGE);
                if (n + 2 < count) fetch(first + (n + 2) * step);
            }
            __syncthreads();
        }
    }
};

// Row of S held in slot `ri` (< DK / SPLIT) by lane r of a column.
__device__ __forceinline__ int row_of(int ri, int r) { return (ri / 4) * 4 * SPLIT + 4 * r + (ri % 4); }

// One token on this thread's rows `s` of its column: decay, delta update with the column's v value; returns the
// read-out o = S^T q after the update when `read_out`, else 0. `buf` is the staged token.
template <int DK, bool READ_OUT>
__device__ __forceinline__ float advance(float* s, const float* buf, float vj, int r) {
    constexpr int QUADS = DK / SPLIT / 4;
    const float a = expf(buf[2 * DK]), beta = buf[2 * DK + 1];
    const float4* q4 = reinterpret_cast<const float4*>(buf) + r;
    const float4* k4 = reinterpret_cast<const float4*>(buf + DK) + r;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int c = 0; c < QUADS; ++c) {
        const float4 k = k4[c * SPLIT];
        float* sc = s + 4 * c;
        sc[0] *= a;
        sc[1] *= a;
        sc[2] *= a;
        sc[3] *= a;
        acc[0] += sc[0] * k.x;
        acc[1] += sc[1] * k.y;
        acc[2] += sc[2] * k.z;
        acc[3] += sc[3] * k.w;
    }
    const float u = beta * (vj - column_sum((acc[0] + acc[1]) + (acc[2] + acc[3])));
    float o4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int c = 0; c < QUADS; ++c) {
        const float4 k = k4[c * SPLIT];
        float* sc = s + 4 * c;
        sc[0] += k.x * u;
        sc[1] += k.y * u;
        sc[2] += k.z * u;
        sc[3] += k.w * u;
        if (READ_OUT) {
            const float4 q = q4[c * SPLIT];
            o4[0] += sc[0] * q.x;
            o4[1] += sc[1] * q.y;
            o4[2] += sc[2] * q.z;
            o4[3] += sc[3] * q.w;
        }
    }
    return READ_OUT ? column_sum((o4[0] + o4[1]) + (o4[2] + o4[3])) : 0.0f;
}

// Loads (or stores) this thread's rows of column j of state n of a [.., DK, dv] buffer `buf` (offset to the head).
template <int DK>
__device__ __forceinline__ void load_state(const float* buf, int n, float* s, int dv, int j, int r, bool active) {
#pragma unroll
    for (int ri = 0; ri < DK / SPLIT; ++ri) s[ri] = active ? buf[((size_t)n * DK + row_of(ri, r)) * dv + j] : 0.0f;
}
template <int DK>
__device__ __forceinline__ void store_state(float* buf, int n, const float* s, int dv, int j, int r, bool active) {
    if (!active) return;
#pragma unroll
    for (int ri = 0; ri < DK / SPLIT; ++ri) buf[((size_t)n * DK + row_of(ri, r)) * dv + j] = s[ri];
}

// Forward over every token of one head from `init` (null: zero) into `out` [BH, T, dv]; the last state goes to
// `final_state` when it is not null. fwd_threads() threads a block; shared memory: 2 stage_floats(DK, FWD_COLS, 1).
template <int DK>
__device__ void forward(const float* x, const float* init, float* out, float* final_state, int T, int dv) {
    extern __shared__ float tok[];
    const int bh = blockIdx.x, W = 2 * DK + dv + 2;
    const int r = threadIdx.x % SPLIT, col = threadIdx.x / SPLIT, j0 = blockIdx.y * FWD_COLS, j = j0 + col;
    const bool active = j < dv;
    float s[DK / SPLIT];
    load_state<DK>(init == nullptr ? nullptr : init + (size_t)bh * DK * dv, 0, s, dv, j, r, active && init != nullptr);
    Pipe<DK, FWD_COLS, false> pipe{x + (size_t)bh * T * W, nullptr, W, dv, j0, {}};
    float* o = out + (size_t)bh * T * dv;
    pipe.walk(tok, 0, 1, T, [&](const float* buf, int t) {
        const float ot = advance<DK, true>(s, buf, buf[Pipe<DK, FWD_COLS, false>::V + col], r);
        if (active && r == 0) o[(size_t)t * dv + j] = ot;
    });
    if (final_state != nullptr) store_state<DK>(final_state + (size_t)bh * DK * dv, 0, s, dv, j, r, active);
}

// Reduce-scatter of 32 / SPLIT values over the lanes of a warp's columns (lanes that differ in bits log2(SPLIT)
// and up): afterwards v[0] of lane l is the sum, over the warp's columns, of value l / SPLIT of the lanes with the
// same r = l % SPLIT.
__device__ __forceinline__ void column_scatter(float* v, int lane) {
    int n = 32 / SPLIT;
#pragma unroll
    for (int off = 16; off >= SPLIT; off >>= 1) {
        n >>= 1;
        const bool up = (lane & off) != 0;
#pragma unroll
        for (int i = 0; i < 32 / SPLIT / 2; ++i) {
            if (i < n) {
                const float send = up ? v[i] : v[i + n];
                const float keep = up ? v[i + n] : v[i];
                v[i] = keep + __shfl_xor_sync(FULL_MASK, send, off);
            }
        }
    }
}

// Backward of `forward` from a zero state: dx [BH, T, W] (zero-filled: column groups add into it) from x and dout
// [BH, T, dv]. Scratch: `kept` [BH, ceil(T / block), DK, dv] and `states` [BH, block + 1, DK, dv].
// bwd_threads() threads a block; shared memory: 2 stage_floats(DK, BWD_COLS, 2) + warps (2 DK + 3) floats.
template <int DK>
__device__ void backward(const float* x, const float* dout, float* dx, float* kept, float* states, int T, int dv,
                         int block) {
    constexpr int R = DK / SPLIT, CHUNK = 32 / SPLIT, CHUNKS = (R + CHUNK - 1) / CHUNK, WARPS = BWD_COLS * SPLIT / 32;
    using P = Pipe<DK, BWD_COLS, true>;
    extern __shared__ float shared[];
    float* tok = shared;
    float* red = shared + 2 * P::STAGE;    // [WARPS][2][DK]: dq and dk partial sums
    float* red_sc = red + WARPS * 2 * DK;  // [WARPS][3]: dbeta, u . do, dg before the exp(g) factor
    const int bh = blockIdx.x, W = 2 * DK + dv + 2;
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    const int r = threadIdx.x % SPLIT, col = threadIdx.x / SPLIT, j0 = blockIdx.y * BWD_COLS, j = j0 + col;
    const bool active = j < dv;
    const int blocks = (T + block - 1) / block;
    float* my_kept = kept + (size_t)bh * blocks * DK * dv;
    float* my_states = states + (size_t)bh * (block + 1) * DK * dv;
    float* dxh = dx + (size_t)bh * T * W;
    P pipe{x + (size_t)bh * T * W, dout + (size_t)bh * T * dv, W, dv, j0, {}};

    // Sweep 1: the state before every block's first token.
    float s[R];
#pragma unroll
    for (int ri = 0; ri < R; ++ri) s[ri] = 0.0f;
    pipe.walk(tok, 0, 1, T, [&](const float* buf, int t) {
        if (t % block == 0) store_state<DK>(my_kept, t / block, s, dv, j, r, active);
        advance<DK, false>(s, buf, buf[P::V + col], r);
    });

    float ds[R];
#pragma unroll
    for (int ri = 0; ri < R; ++ri) ds[ri] = 0.0f;
    for (int b = blocks - 1; b >= 0; --b) {
        const int start = b * block, len = min(block, T - start);
        // Replay the block: states[n] = the state before token start + n.
        load_state<DK>(my_kept, b, s, dv, j, r, active);
        pipe.walk(tok, start, 1, len, [&](const float* buf, int t) {
            store_state<DK>(my_states, t - start, s, dv, j, r, active);
            advance<DK, false>(s, buf, buf[P::V + col], r);
        });
        // Walk it backwards. `prev`: this thread's rows of S_prev's column (zero past dv), the next token's read
        // from the scratch states as soon as this token is done with them, so the loads overlap the reductions.
        float prev[R];
        load_state<DK>(my_states, len - 1, prev, dv, j, r, active);
        pipe.walk(tok, start + len - 1, -1, len, [&](const float* buf, int t) {
            const float* q = buf;
            const float* k = buf + DK;
            const float a = expf(buf[P::G]), beta = buf[P::BETA];
            const float vj = buf[P::V + col], doj = buf[P::D_OUT + col];
            float m_acc = 0.0f, du_acc = 0.0f;
#pragma unroll
            for (int ri = 0; ri < R; ++ri) {
                const int i = row_of(ri, r);
                m_acc += prev[ri] * k[i];
                ds[ri] += q[i] * doj;
                du_acc += ds[ri] * k[i];
            }
            const float m = a * column_sum(m_acc), du = column_sum(du_acc);
            const float u = beta * (vj - m), dm = -beta * du;
            float da = 0.0f;
#pragma unroll
            for (int c = 0; c < CHUNKS; ++c) {
                float pq[CHUNK], pk[CHUNK];
#pragma unroll
                for (int x = 0; x < CHUNK; ++x) {
                    const int ri = c * CHUNK + x;
                    if (ri < R) {
                        const int i = row_of(ri, r);
                        pq[x] = a * prev[ri] * doj;
                        pk[x] = ds[ri] * u + a * prev[ri] * dm;
                        const float dp = ds[ri] + k[i] * dm;
                        da += dp * prev[ri];
                        ds[ri] = a * dp;
                    } else {
                        pq[x] = 0.0f;
                        pk[x] = 0.0f;
                    }
                }
                column_scatter(pq, lane);
                column_scatter(pk, lane);
                const int ri = c * CHUNK + lane / SPLIT;
                if (ri < R) {
                    red[(warp * 2 + 0) * DK + row_of(ri, r)] = pq[0];
                    red[(warp * 2 + 1) * DK + row_of(ri, r)] = pk[0];
                }
            }
            if (t > start) load_state<DK>(my_states, t - 1 - start, prev, dv, j, r, active);
            // Column quantities are the same on a column's SPLIT lanes: count them once.
            const float once = r == 0 ? 1.0f : 0.0f;
            const float sc0 = warp_sum(once * du * (vj - m));
            const float sc1 = warp_sum(once * u * doj);
            const float sc2 = warp_sum(da);
            if (lane == 0) {
                red_sc[warp * 3 + 0] = sc0;
                red_sc[warp * 3 + 1] = sc1;
                red_sc[warp * 3 + 2] = sc2;
            }
            float* drow = dxh + (size_t)t * W;
            if (active && r == 0) drow[2 * DK + j] = beta * du;
            __syncthreads();
            float udo = 0.0f;
#pragma unroll
            for (int w = 0; w < WARPS; ++w) udo += red_sc[w * 3 + 1];
            for (int e = threadIdx.x; e < DK; e += blockDim.x) {
                float dq = 0.0f, dk = 0.0f;
#pragma unroll
                for (int w = 0; w < WARPS; ++w) {
                    dq += red[(w * 2 + 0) * DK + e];
                    dk += red[(w * 2 + 1) * DK + e];
                }
                atomicAdd(drow + e, dq + k[e] * udo);
                atomicAdd(drow + DK + e, dk);
            }
            if (threadIdx.x == 0) {
                float dbeta = 0.0f, dg = 0.0f;
#pragma unroll
                for (int w = 0; w < WARPS; ++w) {
                    dbeta += red_sc[w * 3 + 0];
                    dg += red_sc[w * 3 + 2];
                }
                atomicAdd(drow + 2 * DK + dv, a * dg);
                atomicAdd(drow + 2 * DK + dv + 1, dbeta);
            }
        });
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
