// Block-wide reductions shared by our CUDA kernels (train_ops.cu, decode_ops.cu): a warp's shuffles, then the warps'
// partial results through shared memory. The block must be a whole number of warps, at most 32; `red` holds 32
// floats; every thread gets the result.
#pragma once

__device__ float warp_block_sum(float x, float* red) {
    for (int off = 16; off >= 1; off >>= 1) x += __shfl_xor_sync(0xffffffffu, x, off);
    const int warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();  // `red` may still be read by a previous call
    if ((threadIdx.x & 31) == 0) red[warp] = x;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < warps; ++w) total += red[w];
    return total;
}

__device__ float warp_block_max(float x, float* red) {
    for (int off = 16; off >= 1; off >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, off));
    const int warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();
    if ((threadIdx.x & 31) == 0) red[warp] = x;
    __syncthreads();
    float m = red[0];
    for (int w = 1; w < warps; ++w) m = fmaxf(m, red[w]);
    return m;
}
