//! `x · Wᵀ` for f32 activations and bf16 weights on the CPU, reading the weights as bf16.
//!
//! Decoding a few sequences is bound by reading the weights: at one or eight rows every weight is used once or
//! eight times per step, and the 2-core machine streams ~12 GB/s. Kept as bf16 (the precision Qwen3.5 checkpoints
//! ship in), the weights are half the bytes of f32. candle's CPU gemm has no bf16 kernel and its quantized matmul
//! loops over rows (slower than f32 gemm beyond one row, and lossy), so this is ours: each task widens one weight row
//! to f32 once (a bf16 is the top half of an f32) and takes its dot products with up to four activation rows at a
//! time, 16 lanes per accumulator so that the compiler vectorises it; on x86-64 with AVX2 the same loop is compiled a
//! second time for AVX2 and picked at run time. Summation order is fixed (lane-wise, then the lanes in order), so the
//! result does not depend on that choice or on the thread count.
//!
//! Used for inference only (no gradient); more than [`SKINNY_ROWS`] rows (a prefill) widen the whole weight once and
//! take candle's f32 gemm, which is faster there.

#![allow(unsafe_code)] // one call into the AVX2 build of the loop, after checking the CPU has AVX2

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};
use half::bf16;
use rayon::prelude::*;

use super::contiguous;
use crate::error::Result;

/// Most activation rows handled by the bf16 loop; more rows go through a widened weight and f32 gemm.
pub const SKINNY_ROWS: usize = 16;

/// Accumulator lanes per row.
const LANES: usize = 16;

/// Output columns per rayon task.
const COLUMNS_PER_TASK: usize = 64;

/// `x` f32 `[rows, k]` times `w` bf16 `[n, k]` transposed: f32 `[rows, n]`, on the CPU, without a gradient.
pub fn matmul_bf16_weight(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if x.dim(0)? > SKINNY_ROWS {
        return Ok(x.matmul(&w.to_dtype(DType::F32)?.t()?)?);
    }
    Ok(x.contiguous()?.apply_op2_no_bwd(&w.contiguous()?, &Bf16Weight)?)
}

struct Bf16Weight;

impl CustomOp2 for Bf16Weight {
    fn name(&self) -> &'static str {
        "matmul-bf16-weight"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(x), CpuStorage::BF16(w)) = (xs, ws) else {
            candle_core::bail!("matmul-bf16-weight: expected f32 activations and bf16 weights")
        };
        let ((rows, k), (n, kw)) = (xl.shape().dims2()?, wl.shape().dims2()?);
        if k != kw {
            candle_core::bail!("matmul-bf16-weight: activations have {k} features, the weight {kw}")
        }
        let out = product(contiguous(x, xl)?, rows, k, contiguous(w, wl)?, n);
        Ok((CpuStorage::F32(out), Shape::from((rows, n))))
    }
}

/// The product as a row-major `[rows, n]` vector.
fn product(x: &[f32], rows: usize, k: usize, w: &[bf16], n: usize) -> Vec<f32> {
    // Tasks own column blocks, so each writes its columns for every row into a block of a column-major buffer.
    let mut by_column = vec![0f32; n * rows];
    let avx2 = has_avx2();
    by_column.par_chunks_mut((COLUMNS_PER_TASK * rows).max(1)).enumerate().for_each(|(task, block)| {
        let mut widened = vec![0f32; k];
        for (c, out) in block.chunks_mut(rows.max(1)).enumerate() {
            let j = task * COLUMNS_PER_TASK + c;
            column(x, rows, k, &w[j * k..(j + 1) * k], &mut widened, out, avx2);
        }
    });
    let mut out = vec![0f32; rows * n];
    for (j, col) in by_column.chunks(rows.max(1)).enumerate() {
        for (r, v) in col.iter().enumerate() {
            out[r * n + j] = *v;
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx2() -> bool {
    false
}

fn column(x: &[f32], rows: usize, k: usize, w: &[bf16], widened: &mut [f32], out: &mut [f32], avx2: bool) {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: `column_avx2` only needs the AVX2 instructions, and `has_avx2` found them on this CPU.
        unsafe { column_avx2(x, rows, k, w, widened, out) };
        return;
    }
    let _ = avx2;
    column_body(x, rows, k, w, widened, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn column_avx2(x: &[f32], rows: usize, k: usize, w: &[bf16], widened: &mut [f32], out: &mut [f32]) {
    column_body(x, rows, k, w, widened, out)
}

/// `out[r] = x[r] · w` for every row `r`, `w` widened into `widened` first.
#[inline(always)]
fn column_body(x: &[f32], rows: usize, k: usize, w: &[bf16], widened: &mut [f32], out: &mut [f32]) {
    for (d, s) in widened.iter_mut().zip(w) {
        *d = f32::from_bits(u32::from(s.to_bits()) << 16);
    }
    let wf: &[f32] = widened;
    let row = |r: usize| &x[r * k..(r + 1) * k];
    let mut r = 0;
    while r + 4 <= rows {
        let (x0, x1, x2, x3) = (row(r), row(r + 1), row(r + 2), row(r + 3));
        let mut acc = [[0f32; LANES]; 4];
        let chunks = wf
            .chunks_exact(LANES)
            .zip(x0.chunks_exact(LANES))
            .zip(x1.chunks_exact(LANES))
            .zip(x2.chunks_exact(LANES))
            .zip(x3.chunks_exact(LANES));
        let [a0, a1, a2, a3] = &mut acc;
        for ((((wv, v0), v1), v2), v3) in chunks {
            for l in 0..LANES {
                a0[l] += v0[l] * wv[l];
                a1[l] += v1[l] * wv[l];
                a2[l] += v2[l] * wv[l];
                a3[l] += v3[l] * wv[l];
            }
        }
        for (t, lanes) in acc.iter().enumerate() {
            out[r + t] = finish(lanes, row(r + t), wf);
        }
        r += 4;
    }
    for (r, o) in out.iter_mut().enumerate().take(rows).skip(r) {
        let xr = row(r);
        let mut lanes = [0f32; LANES];
        for (wv, v) in wf.chunks_exact(LANES).zip(xr.chunks_exact(LANES)) {
            for l in 0..LANES {
                lanes[l] += v[l] * wv[l];
            }
        }
        *o = finish(&lanes, xr, wf);
    }
}

/// The lanes summed in order, plus the tail that does not fill a chunk.
#[inline(always)]
fn finish(lanes: &[f32; LANES], x: &[f32], w: &[f32]) -> f32 {
    let tail = x.len() / LANES * LANES;
    let mut s: f32 = lanes.iter().sum();
    for (a, b) in x[tail..].iter().zip(&w[tail..]) {
        s += a * b;
    }
    s
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};

    use super::*;

    fn case(rows: usize, k: usize, n: usize) -> (Tensor, Tensor) {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (rows, k), &dev).unwrap();
        let w = Tensor::randn(0f32, 0.05, (n, k), &dev).unwrap().to_dtype(DType::BF16).unwrap();
        (x, w)
    }

    fn reference(x: &Tensor, w: &Tensor) -> Tensor {
        let x64 = x.to_dtype(DType::F64).unwrap();
        x64.matmul(&w.to_dtype(DType::F64).unwrap().t().unwrap()).unwrap()
    }

    fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
        let a = a.to_dtype(DType::F64).unwrap();
        let d = (&a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap();
        let s = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap();
        d / s
    }

    #[test]
    fn equals_the_product_with_the_widened_weight() {
        // Rows below, at and above a tile of four; k with and without a tail after the 16-lane chunks; a column
        // count that leaves the last task a partial block; and rows above SKINNY_ROWS (the gemm path).
        for (rows, k, n) in [(1, 64, 3), (3, 50, 130), (4, 96, 64), (7, 1000, 70), (16, 33, 5), (17, 40, 9)] {
            let (x, w) = case(rows, k, n);
            let got = matmul_bf16_weight(&x, &w).unwrap();
            assert_eq!(got.dims(), &[rows, n]);
            assert_eq!(got.dtype(), DType::F32);
            let err = max_rel(&got, &reference(&x, &w));
            assert!(err < 1e-5, "rows {rows}, k {k}, n {n}: {err}");
        }
    }

    #[test]
    fn the_portable_and_avx2_loops_agree_to_the_bit() {
        let (x, w) = case(6, 77, 3);
        let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let ws = w.flatten_all().unwrap().to_vec1::<bf16>().unwrap();
        let mut widened = vec![0f32; 77];
        for j in 0..3 {
            let (mut plain, mut fast) = (vec![0f32; 6], vec![0f32; 6]);
            column(&xs, 6, 77, &ws[j * 77..(j + 1) * 77], &mut widened, &mut plain, false);
            column(&xs, 6, 77, &ws[j * 77..(j + 1) * 77], &mut widened, &mut fast, has_avx2());
            assert_eq!(plain, fast);
        }
    }

    #[test]
    fn wrong_dtypes_and_shapes_are_errors() {
        let (x, w) = case(2, 8, 4);
        let err = matmul_bf16_weight(&x, &w.to_dtype(DType::F32).unwrap()).unwrap_err();
        assert!(err.to_string().contains("bf16 weights"), "{err}");
        let (_, w9) = case(2, 9, 4);
        let err = matmul_bf16_weight(&x, &w9).unwrap_err();
        assert!(err.to_string().contains("8 features"), "{err}");
    }
}
