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
}

/// Copies the `w × h` plane `v` into `out` with a one-pixel reflect-101 border: `(w + 2) × (h + 2)`.
fn pad1<T: Copy>(v: &[T], w: usize, h: usize, out: &mut Vec<T>) {
    out.clear();
    for y in -1..=h as isize {
        let r = reflect101(y, h) * w;
        out.push(v[r + reflect101(-1, w)]);
        out.extend_from_slice(&v[r..r + w]);
        out.push(v[r + reflect101(w as isize, w)]);
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
        self.eig.clear();
        self.eig.resize(w * h, 0.0);
        self.peaks.clear();
        self.peaks.resize(w * h, 0.0);
        if w == 0 || h == 0 {
            return;
        }
        min_eigen_into(g, &mut self.eig);
        let (eig, peaks) = (&self.eig, &mut self.peaks);
        for y in 1..h.saturating_sub(1) {
            let (up, mid, down) = (&eig[(y - 1) * w..y * w], &eig[y * w..(y + 1) * w], &eig[(y + 1) * w..(y + 2) * w]);
            let out = &mut peaks[y * w..(y + 1) * w];
            for x in 1..w - 1 {
                let v = mid[x];
                let n = up[x - 1].max(up[x]).max(up[x + 1]).max(mid[x - 1]).max(mid[x + 1]);
                let n = n.max(down[x - 1]).max(down[x]).max(down[x + 1]);
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
        let mut max_val = f32::MIN;
        for y in ry..ry2 {
            max_val = self.eig[y * width + rx..y * width + rx2].iter().fold(max_val, |m, &v| m.max(v));
        }
        let thresh = max_val * quality;
        // Local maxima of the thresholded map inside the mask and not on the outermost pixel ring.
        let mut cands: Vec<(f32, usize)> = Vec::new();
        let (x0, x1) = (rx.max(1), rx2.min(width.saturating_sub(1)));
        for y in ry.max(1)..ry2.min(height.saturating_sub(1)) {
            if x0 >= x1 {
                break;
            }
            let row = &self.peaks[y * width + x0..y * width + x1];
            for (i, &v) in row.iter().enumerate() {
                if v > thresh {
                    cands.push((v, y * width + x0 + i));
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
    let mut out = vec![0f32; g.width * g.height];
    if !out.is_empty() {
        min_eigen_into(g, &mut out);
    }
    out
}

/// [`min_eigen`] into `out` (`w·h` long, both sides non-zero). Rows are processed as whole slices so the loops
/// vectorise; every pixel's arithmetic is the same sequence of `f32` operations as the plain formula.
fn min_eigen_into(g: &Gray, out: &mut [f32]) {
    let (w, h) = (g.width, g.height);
    let pw = w + 2;
    let mut src = Vec::with_capacity(pw * (h + 2));
    pad1(&g.data, w, h, &mut src);
    let scale = 1.0 / (4.0 * 3.0 * 255.0);
    let (mut xx, mut xy, mut yy) = (vec![0f32; w * h], vec![0f32; w * h], vec![0f32; w * h]);
    for y in 0..h {
        let (r0, r1, r2) = (&src[y * pw..(y + 1) * pw], &src[(y + 1) * pw..(y + 2) * pw], &src[(y + 2) * pw..(y + 3) * pw]);
        let row = y * w..(y + 1) * w;
        let (oxx, oxy, oyy) = (&mut xx[row.clone()], &mut xy[row.clone()], &mut yy[row]);
        for x in 0..w {
            let p = |r: &[u8], i: usize| i32::from(r[i]);
            // Small integers: exact in `f32`, so integer sums give the same values as the float ones.
            let dx = (p(r0, x + 2) - p(r0, x)) + 2 * (p(r1, x + 2) - p(r1, x)) + (p(r2, x + 2) - p(r2, x));
            let dy = (p(r2, x) - p(r0, x)) + 2 * (p(r2, x + 1) - p(r0, x + 1)) + (p(r2, x + 2) - p(r0, x + 2));
            let (dx, dy) = (dx as f32 * scale, dy as f32 * scale);
            oxx[x] = dx * dx;
            oxy[x] = dx * dy;
            oyy[x] = dy * dy;
        }
    }
    let mut pad = Vec::with_capacity(pw * (h + 2));
    let mut sums = [vec![0f32; w * h], vec![0f32; w * h], vec![0f32; w * h]];
    for (plane, sum) in [xx, xy, yy].iter().zip(sums.iter_mut()) {
        pad1(plane, w, h, &mut pad);
        for y in 0..h {
            let s = &mut sum[y * w..(y + 1) * w];
            // The 3×3 box in the order dy-major, dx-minor, starting from 0 (as a loop over the window adds).
            for dy in 0..3 {
                let r = &pad[(y + dy) * pw..(y + dy + 1) * pw];
                for dx in 0..3 {
                    let r = &r[dx..dx + w];
                    if dy == 0 && dx == 0 {
                        for (a, &b) in s.iter_mut().zip(r) {
                            *a = 0.0 + b;
                        }
                    } else {
                        for (a, &b) in s.iter_mut().zip(r) {
                            *a += b;
                        }
                    }
                }
            }
        }
    }
    let [sa, sb, sc] = &sums;
    for (o, ((&a, &b), &c)) in out.iter_mut().zip(sa.iter().zip(sb).zip(sc)) {
        let (a, c) = (a * 0.5, c * 0.5);
        *o = (a + c) - ((a - c) * (a - c) + b * b).sqrt();
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
