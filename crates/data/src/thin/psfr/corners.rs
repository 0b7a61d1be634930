//! Shi–Tomasi corners as PSFR asks OpenCV for them: `cornerMinEigenVal(gray, blockSize=3, ksize=3)` and
//! `goodFeaturesToTrack(gray, maxCorners, qualityLevel, minDistance, mask = rect)`, written from OpenCV's
//! documented behaviour.
//!
//! PSFR runs `goodFeaturesToTrack` once per patch (13 masks) on every frame. OpenCV recomputes the response and
//! its 3×3 dilation each time; here [`CornerMap::new`] computes the response once per frame together with the
//! pixels that are 3×3 local maxima. That is equivalent: a pixel above the patch threshold (`quality · max`,
//! positive whenever any candidate exists) equals the dilation of the thresholded map exactly when it is not below
//! any raw neighbour, because neighbours at or under the threshold are smaller than it anyway. A patch then only
//! needs its own maximum and a scan of the local-maximum map.
//!
//! Where this can differ from OpenCV: the response is the exact formula (Sobel 3×3 scaled by `1/(4·3·255)`,
//! unnormalised 3×3 box sum, reflect-101 borders, `(a + c) − √((a − c)² + b²)` with `a`, `c` halved) in `f32`;
//! OpenCV's summation order may differ in the last bit, which can reorder candidates of equal response.

use super::gray::{reflect101, Gray};

/// The corner response of a frame and its positive 3×3 local maxima.
#[derive(Debug, Clone, Default)]
pub struct CornerMap {
    pub width: usize,
    pub height: usize,
    /// `cornerMinEigenVal`, row-major.
    pub eig: Vec<f32>,
    /// `eig` where it is positive and no 8-neighbour is larger (not on the outermost ring), else 0.
    peaks: Vec<f32>,
    scratch: Scratch,
}

/// Buffers of [`min_eigen_into`], kept between frames: three padded source rows, a ring of three covariance
/// rows per plane (`xx`, `xy`, `yy`; slot `r % 3` holds row `r`) and the three box sums of one row.
#[derive(Debug, Clone, Default)]
struct Scratch {
    src: [Vec<u8>; 3],
    cov: [[Vec<f32>; 3]; 3],
    held: [usize; 3],
    sums: [Vec<f32>; 3],
}

/// `a.max(b)` for values that are never NaN, in a form that vectorises.
#[inline(always)]
fn max(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

impl CornerMap {
    /// The response and its local maxima for `g`.
    pub fn new(g: &Gray) -> CornerMap {
        let mut m = CornerMap::default();
        m.compute(g);
        m
    }

    /// Recomputes the maps for `g`, reusing the buffers.
    pub fn compute(&mut self, g: &Gray) {
        let (w, h) = (g.width, g.height);
        self.width = w;
        self.height = h;
        if self.eig.len() != w * h {
            // The outermost ring of `peaks` is never written: zero it once per size.
            self.eig = vec![0.0; w * h];
            self.peaks = vec![0.0; w * h];
        }
        if w == 0 || h == 0 {
            return;
        }
        min_eigen_into(g, &mut self.eig, &mut self.scratch);
        let (eig, peaks) = (&self.eig, &mut self.peaks);
        if w < 3 {
            return;
        }
        for y in 1..h.saturating_sub(1) {
            let row = |r: usize, dx: usize| &eig[r * w + dx..r * w + dx + w - 2];
            let (ul, u, ur) = (row(y - 1, 0), row(y - 1, 1), row(y - 1, 2));
            let (l, c, r) = (row(y, 0), row(y, 1), row(y, 2));
            let (dl, d, dr) = (row(y + 1, 0), row(y + 1, 1), row(y + 1, 2));
            let out = &mut peaks[y * w + 1..y * w + w - 1];
            for x in 0..w - 2 {
                let n = max(max(max(ul[x], u[x]), max(ur[x], l[x])), max(max(r[x], dl[x]), max(d[x], dr[x])));
                let v = c[x];
                out[x] = if v > 0.0 && v >= n { v } else { 0.0 };
            }
        }
    }

    /// `goodFeaturesToTrack` with the mask the rectangle `[x, x + w) × [y, y + h)`: integer corner positions.
    pub fn good_features(
        &self,
        rect: (usize, usize, usize, usize),
        max_corners: usize,
        quality: f32,
        min_distance: f32,
    ) -> Vec<(f32, f32)> {
        let (width, height) = (self.width, self.height);
        let (rx, ry, rw, rh) = rect;
        let (rx2, ry2) = ((rx + rw).min(width), (ry + rh).min(height));
        let (rx, ry) = (rx.min(rx2), ry.min(ry2));
        // Eight running maxima so the scan vectorises; max is exact, so the order does not matter.
        let mut lanes = [f32::MIN; 8];
        let mut max_val = f32::MIN;
        for y in ry..ry2 {
            let row = &self.eig[y * width + rx..y * width + rx2];
            let mut chunks = row.chunks_exact(8);
            for c in &mut chunks {
                for i in 0..8 {
                    lanes[i] = max(lanes[i], c[i]);
                }
            }
            max_val = chunks.remainder().iter().fold(max_val, |m, &v| max(m, v));
        }
        max_val = lanes.iter().fold(max_val, |m, &v| max(m, v));
        let thresh = max_val * quality;
        // Local maxima of the thresholded map inside the mask and not on the outermost pixel ring.
        let mut cands: Vec<(f32, usize)> = Vec::new();
        let (x0, x1) = (rx.max(1), rx2.min(width.saturating_sub(1)));
        for y in ry.max(1)..ry2.min(height.saturating_sub(1)) {
            if x0 >= x1 {
                break;
            }
            let row = &self.peaks[y * width + x0..y * width + x1];
            // Peaks are sparse: test eight at a time (branch-free, vectorised) and look inside only on a hit.
            for (c, chunk) in row.chunks(8).enumerate() {
                if chunk.iter().fold(0.0f32, |m, &v| max(m, v)) > thresh {
                    for (i, &v) in chunk.iter().enumerate() {
                        if v > thresh {
                            cands.push((v, y * width + x0 + c * 8 + i));
                        }
                    }
                }
            }
        }
        // OpenCV's `greaterThanPtr`: larger value first, equal values by larger address first.
        cands.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
        let cell = (min_distance.round() as usize).max(1);
        let (gw, gh) = (width.div_ceil(cell), height.div_ceil(cell));
        let mut grid: Vec<Vec<(f32, f32)>> = vec![Vec::new(); gw * gh];
        let md2 = min_distance * min_distance;
        let mut out = Vec::new();
        for (_, ofs) in cands {
            let (x, y) = ((ofs % width) as f32, (ofs / width) as f32);
            let (cx, cy) = (ofs % width / cell, ofs / width / cell);
            let near = (cy.saturating_sub(1)..=(cy + 1).min(gh - 1))
                .flat_map(|yy| (cx.saturating_sub(1)..=(cx + 1).min(gw - 1)).map(move |xx| yy * gw + xx))
                .any(|k| grid[k].iter().any(|&(px, py)| (px - x) * (px - x) + (py - y) * (py - y) < md2));
            if near {
                continue;
            }
            grid[cy * gw + cx].push((x, y));
            out.push((x, y));
            if out.len() == max_corners {
                break;
            }
        }
        out
    }
}

/// `cornerMinEigenVal(gray, blockSize=3, ksize=3)` as `f32`, row-major.
pub fn min_eigen(g: &Gray) -> Vec<f32> {
    CornerMap::new(g).eig
}

/// Row `r` of `g` with a one-pixel reflect-101 border into `out` (`w + 2`).
fn padded_row(g: &Gray, r: usize, out: &mut Vec<u8>) {
    let (w, row) = (g.width, &g.data[r * g.width..(r + 1) * g.width]);
    out.clear();
    out.push(row[reflect101(-1, w)]);
    out.extend_from_slice(row);
    out.push(row[reflect101(w as isize, w)]);
}

/// The covariance row `r` (`dx²`, `dx·dy`, `dy²` of the scaled Sobel derivatives), reflect-101 padded to `w + 2`.
fn cov_row(g: &Gray, r: usize, src: &mut [Vec<u8>; 3], cov: &mut [Vec<f32>; 3]) {
    let (w, h) = (g.width, g.height);
    for (k, s) in src.iter_mut().enumerate() {
        padded_row(g, reflect101(r as isize + k as isize - 1, h), s);
    }
    let scale = 1.0 / (4.0 * 3.0 * 255.0);
    let (a, b, c) = (&src[0][..w + 2], &src[1][..w + 2], &src[2][..w + 2]);
    let [xx, xy, yy] = cov;
    for q in [&mut *xx, &mut *xy, &mut *yy] {
        q.resize(w + 2, 0.0);
    }
    let (oxx, oxy, oyy) = (&mut xx[1..w + 1], &mut xy[1..w + 1], &mut yy[1..w + 1]);
    for x in 0..w {
        let p = |v: u8| i16::from(v);
        // Small integers (|d| ≤ 4·255): exact in `f32`, so integer sums give the same values as the float ones.
        let dx = (p(a[x + 2]) - p(a[x])) + 2 * (p(b[x + 2]) - p(b[x])) + (p(c[x + 2]) - p(c[x]));
        let dy = (p(c[x]) - p(a[x])) + 2 * (p(c[x + 1]) - p(a[x + 1])) + (p(c[x + 2]) - p(a[x + 2]));
        let (dx, dy) = (f32::from(dx) * scale, f32::from(dy) * scale);
        oxx[x] = dx * dx;
        oxy[x] = dx * dy;
        oyy[x] = dy * dy;
    }
    for q in [xx, xy, yy] {
        (q[0], q[w + 1]) = (q[1 + reflect101(-1, w)], q[1 + reflect101(w as isize, w)]);
    }
}

/// One row of the 3×3 box sum of a plane given its three padded rows (`out.len() + 2` long), in window order
/// (dy-major, dx-minor, from 0, as a loop over the window adds); the sum stays in a register.
fn box_row(rows: [&[f32]; 3], out: &mut [f32]) {
    let w = out.len();
    let r = |k: usize, dx: usize| &rows[k][dx..dx + w];
    let (a0, a1, a2, b0, b1, b2, c0, c1, c2) =
        (r(0, 0), r(0, 1), r(0, 2), r(1, 0), r(1, 1), r(1, 2), r(2, 0), r(2, 1), r(2, 2));
    for x in 0..w {
        let mut t = 0.0 + a0[x];
        t += a1[x];
        t += a2[x];
        t += b0[x];
        t += b1[x];
        t += b2[x];
        t += c0[x];
        t += c1[x];
        out[x] = t + c2[x];
    }
}

/// [`min_eigen`] into `out` (`w·h` long, both sides non-zero), a row at a time so that everything stays in the
/// first-level cache; the loops run over whole rows and vectorise, and every pixel's arithmetic is the same
/// sequence of `f32` operations as the plain formula (the 3×3 box is summed in window order).
fn min_eigen_into(g: &Gray, out: &mut [f32], s: &mut Scratch) {
    let (w, h) = (g.width, g.height);
    s.held = [usize::MAX; 3];
    for sum in &mut s.sums {
        sum.resize(w, 0.0);
    }
    for (y, o) in out.chunks_exact_mut(w).enumerate() {
        let rows = [reflect101(y as isize - 1, h), y, reflect101(y as isize + 1, h)];
        for &r in &rows {
            if s.held[r % 3] != r {
                cov_row(g, r, &mut s.src, &mut s.cov[r % 3]);
                s.held[r % 3] = r;
            }
        }
        for (plane, sum) in s.sums.iter_mut().enumerate() {
            box_row(rows.map(|r| s.cov[r % 3][plane].as_slice()), &mut sum[..w]);
        }
        let [sa, sb, sc] = &s.sums;
        for (o, ((&a, &b), &c)) in o.iter_mut().zip(sa.iter().zip(sb).zip(sc)) {
            let (a, c) = (a * 0.5, c * 0.5);
            *o = (a + c) - ((a - c) * (a - c) + b * b).sqrt();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bright_square_has_four_corners() {
        let mut data = vec![0u8; 40 * 40];
        for y in 10..30 {
            for x in 10..30 {
                data[y * 40 + x] = 200;
            }
        }
        let g = Gray { width: 40, height: 40, data };
        let map = CornerMap::new(&g);
        let mut c = map.good_features((0, 0, 40, 40), 10, 0.3, 5.0);
        c.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(c.len(), 4, "{c:?}");
        for (x, y) in c {
            assert!((x - 9.5).abs() <= 1.0 || (x - 29.5).abs() <= 1.0, "{x}");
            assert!((y - 9.5).abs() <= 1.0 || (y - 29.5).abs() <= 1.0, "{y}");
        }
        // A mask around one corner finds only that one.
        let one = map.good_features((0, 0, 20, 20), 10, 0.3, 5.0);
        assert_eq!(one.len(), 1, "{one:?}");
    }

    #[test]
    fn flat_images_have_no_corners() {
        let g = Gray { width: 30, height: 20, data: vec![77; 600] };
        assert!(CornerMap::new(&g).good_features((0, 0, 30, 20), 10, 0.3, 5.0).is_empty());
    }
}
