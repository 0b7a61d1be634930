//! MaxInfo (reference `utils/MaxInfo/pvsg_maxinfo_filter.py`): per video, embed every frame, take the leading
//! `r = min(8, d, n − 1)` left singular vectors of the **uncentred** embedding matrix, select rows with
//! `rect_maxvol(U_r, tol = 0.23)` (maxvolpy's algorithm, reference_facts §4.2), sort, and drop the last index when
//! the count is odd and above one.
//!
//! The selection is exact on given embeddings ([`select`]); the singular vectors come from a cyclic Jacobi
//! eigen-solver on the smaller Gram matrix, so they equal LAPACK's up to column signs (which `rect_maxvol` does not
//! see: partial pivoting and the `|C|` arg-max are sign-blind) and rounding (which can only matter at exact ties).
//!
//! The embedder is pluggable ([`Embedder`]). The reference uses CLIP ViT-L/14-336 image features; that needs model
//! weights, which are not shipped, so the offline [`Thumbnail`] embedder (the frame shrunk to 16×12 RGB, values
//! in `[0, 1]`, 576 numbers) works now; a CLIP embedder can implement the same trait.

use super::{group_by_video, Row, Rows};
use rayon::prelude::*;

/// Turns a frame into a feature vector (same length for every frame).
pub trait Embedder: Sync {
    /// A short name for reports.
    fn name(&self) -> &str;
    /// The feature vector of the image file at `path`; an error names the file.
    fn embed(&self, path: &std::path::Path) -> Result<Vec<f64>, String>;
}

/// The frame resized (bilinear, aspect not kept) to `width × height` RGB; the pixels scaled to `[0, 1]`.
#[derive(Debug, Clone, Copy)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
}

impl Default for Thumbnail {
    fn default() -> Self {
        Thumbnail { width: 16, height: 12 }
    }
}

impl Embedder for Thumbnail {
    fn name(&self) -> &str {
        "thumbnail-16x12-rgb"
    }
    fn embed(&self, path: &std::path::Path) -> Result<Vec<f64>, String> {
        let img = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let small = img.resize_exact(self.width, self.height, image::imageops::FilterType::Triangle).to_rgb8();
        Ok(small.into_raw().into_iter().map(|v| f64::from(v) / 255.0).collect())
    }
}

/// Eigen-decomposition of a symmetric `k×k` matrix (row-major) by cyclic Jacobi rotations: eigenvalues and the
/// eigenvectors as columns of a row-major matrix, sorted by eigenvalue, largest first.
fn sym_eigen(mut a: Vec<f64>, k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; k * k];
    for i in 0..k {
        v[i * k + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..k)
            .flat_map(|i| (0..k).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * k + j].powi(2))
            .sum();
        let diag: f64 = (0..k).map(|i| a[i * k + i].powi(2)).sum();
        if off <= 1e-30 * diag.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..k {
            for q in p + 1..k {
                let apq = a[p * k + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * k + q] - a[p * k + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for r in 0..k {
                    let (arp, arq) = (a[r * k + p], a[r * k + q]);
                    a[r * k + p] = c * arp - s * arq;
                    a[r * k + q] = s * arp + c * arq;
                }
                for r in 0..k {
                    let (apr, aqr) = (a[p * k + r], a[q * k + r]);
                    a[p * k + r] = c * apr - s * aqr;
                    a[q * k + r] = s * apr + c * aqr;
                }
                for r in 0..k {
                    let (vrp, vrq) = (v[r * k + p], v[r * k + q]);
                    v[r * k + p] = c * vrp - s * vrq;
                    v[r * k + q] = s * vrp + c * vrq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&x, &y| a[y * k + y].total_cmp(&a[x * k + x]));
    let vals = order.iter().map(|&i| a[i * k + i]).collect();
    let mut vecs = vec![0.0; k * k];
    for (c, &i) in order.iter().enumerate() {
        for r in 0..k {
            vecs[r * k + c] = v[r * k + i];
        }
    }
    (vals, vecs)
}

/// The first `r` left singular vectors of `f` (`n×d`, row-major) as an `n×r` row-major matrix.
pub fn left_singular(f: &[f64], n: usize, d: usize, r: usize) -> Vec<f64> {
    let mut u = vec![0.0; n * r];
    if n <= d {
        // F Fᵀ = U Σ² Uᵀ.
        let mut g = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let s: f64 = (0..d).map(|k| f[i * d + k] * f[j * d + k]).sum();
                g[i * n + j] = s;
                g[j * n + i] = s;
            }
        }
        let (_, vecs) = sym_eigen(g, n);
        for i in 0..n {
            u[i * r..i * r + r].copy_from_slice(&vecs[i * n..i * n + r]);
        }
    } else {
        // FᵀF = V Σ² Vᵀ, U = F V Σ⁻¹.
        let mut g = vec![0.0; d * d];
        for a in 0..d {
            for b in 0..=a {
                let s: f64 = (0..n).map(|i| f[i * d + a] * f[i * d + b]).sum();
                g[a * d + b] = s;
                g[b * d + a] = s;
            }
        }
        let (vals, vecs) = sym_eigen(g, d);
        for c in 0..r {
            let sigma = vals[c].max(0.0).sqrt();
            for i in 0..n {
                let s: f64 = (0..d).map(|k| f[i * d + k] * vecs[k * d + c]).sum();
                u[i * r + c] = if sigma > 0.0 { s / sigma } else { 0.0 };
            }
        }
    }
    u
}

/// The index of the first maximum.
fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// maxvolpy's square `maxvol(A, tol=1.05, max_iters=10)` on `a` (`n×r` row-major, `n > r`): the `r` pivot rows
/// and the coefficients `C = A · A[piv]⁻¹` (`n×r`).
fn maxvol(a: &[f64], n: usize, r: usize) -> (Vec<usize>, Vec<f64>) {
    // LU with partial pivoting (getrf): the first row of the largest |value| in each column.
    let mut lu = a.to_vec();
    let mut index: Vec<usize> = (0..n).collect();
    for k in 0..r {
        let p = (k..n).fold(k, |b, i| if lu[i * r + k].abs() > lu[b * r + k].abs() { i } else { b });
        if p != k {
            for c in 0..r {
                lu.swap(k * r + c, p * r + c);
            }
            index.swap(k, p);
        }
        let piv = lu[k * r + k];
        if piv == 0.0 {
            continue;
        }
        for i in k + 1..n {
            let m = lu[i * r + k] / piv;
            lu[i * r + k] = m;
            for c in k + 1..r {
                lu[i * r + c] -= m * lu[k * r + c];
            }
        }
    }
    // C = A · B⁻¹ with B = A[index[..r]] = L₁U (L₁, U the top r×r of the factors): solve X·U = A, then X·L₁ = X.
    let mut c = a.to_vec();
    for row in c.chunks_mut(r) {
        for j in 0..r {
            let s: f64 = (0..j).map(|k| row[k] * lu[k * r + j]).sum();
            let d = lu[j * r + j];
            row[j] = if d == 0.0 { 0.0 } else { (row[j] - s) / d };
        }
        for j in (0..r).rev() {
            let s: f64 = (j + 1..r).map(|k| row[k] * lu[k * r + j]).sum();
            row[j] -= s;
        }
    }
    for _ in 0..10 {
        // Arg-max of |C| scanning column by column (Cᵀ row-major), first hit wins.
        let (mut bi, mut bj, mut bv) = (0, 0, -1.0);
        for i in 0..r {
            for j in 0..n {
                let v = c[j * r + i].abs();
                if v > bv {
                    (bi, bj, bv) = (i, j, v);
                }
            }
        }
        if bv <= 1.05 {
            break;
        }
        index[bi] = bj;
        let mut u: Vec<f64> = c[bj * r..bj * r + r].to_vec();
        u[bi] -= 1.0;
        let w: Vec<f64> = (0..n).map(|j| c[j * r + bi]).collect();
        let scale = 1.0 / c[bj * r + bi];
        for j in 0..n {
            for k in 0..r {
                c[j * r + k] -= scale * w[j] * u[k];
            }
        }
    }
    (index[..r].to_vec(), c)
}

/// maxvolpy's `rect_maxvol(A, tol)` with `maxK = n`, `minK = r`: the selected row indices in selection order.
pub fn rect_maxvol(a: &[f64], n: usize, r: usize, tol: f64) -> Vec<usize> {
    if n <= r {
        return (0..n).collect();
    }
    let (mut sel, c0) = maxvol(a, n, r);
    // C grows by one column per added row.
    let mut cols = r;
    let mut c: Vec<Vec<f64>> = c0.chunks(r).map(<[f64]>::to_vec).collect();
    let mut chosen = vec![1.0; n];
    for &p in &sel {
        chosen[p] = 0.0;
    }
    let mut norm2: Vec<f64> = (0..n).map(|k| chosen[k] * c[k].iter().map(|x| x * x).sum::<f64>()).collect();
    let mut i = argmax(&norm2);
    let mut k = r;
    while (norm2[i] > tol * tol && k < n) || k < r {
        sel.push(i);
        chosen[i] = 0.0;
        let ci = c[i].clone();
        let v: Vec<f64> = c.iter().map(|row| row.iter().zip(&ci).map(|(a, b)| a * b).sum()).collect();
        let l = 1.0 / (1.0 + v[i]);
        for (j, row) in c.iter_mut().enumerate() {
            for (x, &cc) in row.iter_mut().zip(&ci) {
                *x -= l * v[j] * cc;
            }
            row.push(l * v[j]);
        }
        cols += 1;
        for j in 0..n {
            norm2[j] = (norm2[j] - l * v[j] * v[j]) * chosen[j];
        }
        i = argmax(&norm2);
        k += 1;
    }
    debug_assert!(c.iter().all(|row| row.len() == cols));
    sel
}

/// MaxInfo's choice for one video from its embeddings (`n×d` row-major): sorted frame positions.
pub fn select(f: &[f64], n: usize, d: usize, rank: usize, tol: f64) -> Vec<usize> {
    if n <= 1 {
        return (0..n).collect();
    }
    let r = rank.min(d).min(n - 1);
    if r < 1 {
        return (0..n).collect();
    }
    let u = left_singular(f, n, d, r);
    let mut sel = rect_maxvol(&u, n, r, tol);
    sel.sort_unstable();
    if sel.len() > 1 && sel.len() % 2 == 1 {
        sel.pop();
    }
    sel
}

/// The reference's defaults: `--r 8`, `--tol 0.23`.
pub const RANK: usize = 8;
pub const TOL: f64 = 0.23;

/// MaxInfo on one split; frames whose image cannot be embedded become all-zero vectors (the reference uses a
/// black image) and are counted in the returned number.
pub fn thin_split(rows: &[Row], e: &dyn Embedder, rank: usize, tol: f64) -> (Vec<Row>, usize) {
    let videos = group_by_video(rows);
    let picked: Vec<(Vec<usize>, usize)> = videos
        .par_iter()
        .map(|(_, idx)| {
            let embs: Vec<Result<Vec<f64>, String>> =
                idx.iter().map(|&i| e.embed(std::path::Path::new(&rows[i].image_path))).collect();
            let d = embs.iter().filter_map(|x| x.as_ref().ok()).map(Vec::len).max().unwrap_or(0);
            let bad = embs.iter().filter(|x| !x.as_ref().is_ok_and(|v| v.len() == d)).count();
            let f: Vec<f64> = embs
                .into_iter()
                .flat_map(|x| x.ok().filter(|v| v.len() == d).unwrap_or_else(|| vec![0.0; d]))
                .collect();
            let sel = select(&f, idx.len(), d, rank, tol);
            (sel.into_iter().map(|s| idx[s]).collect(), bad)
        })
        .collect();
    let bad = picked.iter().map(|p| p.1).sum();
    (picked.into_iter().flat_map(|p| p.0).map(|i| rows[i].clone()).collect(), bad)
}

/// MaxInfo on both splits; also returns how many frames could not be embedded.
pub fn thin(rows: &Rows, e: &dyn Embedder) -> (Rows, usize) {
    let (train, a) = thin_split(&rows.train, e, RANK, TOL);
    let (test, b) = thin_split(&rows.test, e, RANK, TOL);
    (Rows { train, test }, a + b)
}

#[cfg(test)]
mod tests;
