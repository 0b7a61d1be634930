//! Pyramidal Lucas–Kanade as OpenCV's `calcOpticalFlowPyrLK` computes it, written from its published algorithm:
//! `pyrDown` pyramids (5×5 binomial kernel, reflect-101), stopping early when a level would be no larger than the
//! window (so a 213×120 patch with a 21×21 window uses levels 0–2, not 3); Scharr derivatives (`3, 10, 3`), zero
//! outside the image; 14-bit fixed-point bilinear weights, the template scaled by 32; the minimum-eigenvalue
//! test (`1e-4`); up to 30 iterations stopping at `|δ|² ≤ 0.01²` or on a half-step oscillation; the error at
//! level 0 the mean absolute difference over the window.
//!
//! Where it can differ from OpenCV: the window sums are accumulated in `f32` in row order (OpenCV's SIMD paths
//! accumulate in another order), so a point whose error or eigenvalue sits exactly on a threshold can flip.

use super::gray::{reflect101, Gray};

/// Window size (square), pyramid levels asked for, iterations and ε (not squared) of the stop criterion.
#[derive(Debug, Clone, Copy)]
pub struct LkParams {
    pub win: usize,
    pub max_level: usize,
    pub iters: usize,
    pub eps: f32,
}

/// The reference config for PVSG: 21×21, 3 levels, 30 iterations, ε 0.01.
pub const PVSG_LK: LkParams = LkParams { win: 21, max_level: 3, iters: 30, eps: 0.01 };

fn pyr_down(g: &Gray) -> Gray {
    let (w, h) = (g.width.div_ceil(2), g.height.div_ceil(2));
    const K: [u32; 5] = [1, 4, 6, 4, 1];
    let mut tmp = vec![0u32; w * g.height];
    for y in 0..g.height {
        for x in 0..w {
            tmp[y * w + x] =
                (0..5).map(|i| K[i] * u32::from(g.at(reflect101(2 * x as isize + i as isize - 2, g.width), y))).sum();
        }
    }
    let mut data = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let s: u32 =
                (0..5).map(|j| K[j] * tmp[reflect101(2 * y as isize + j as isize - 2, g.height) * w + x]).sum();
            data.push(((s + 128) >> 8) as u8);
        }
    }
    Gray { width: w, height: h, data }
}

/// One pyramid level: the image and its Scharr derivatives.
struct Level {
    img: Gray,
    dx: Vec<i32>,
    dy: Vec<i32>,
}

impl Level {
    fn new(img: Gray) -> Level {
        let (w, h) = (img.width, img.height);
        let p = |x: isize, y: isize| i32::from(img.at(reflect101(x, w), reflect101(y, h)));
        let (mut dx, mut dy) = (vec![0; w * h], vec![0; w * h]);
        for y in 0..h as isize {
            for x in 0..w as isize {
                let i = y as usize * w + x as usize;
                dx[i] = 3 * (p(x + 1, y - 1) - p(x - 1, y - 1))
                    + 10 * (p(x + 1, y) - p(x - 1, y))
                    + 3 * (p(x + 1, y + 1) - p(x - 1, y + 1));
                dy[i] = 3 * (p(x - 1, y + 1) - p(x - 1, y - 1))
                    + 10 * (p(x, y + 1) - p(x, y - 1))
                    + 3 * (p(x + 1, y + 1) - p(x + 1, y - 1));
            }
        }
        Level { img, dx, dy }
    }
    /// The pixel at (x, y), reflect-101 outside (the bordered pyramid of OpenCV).
    fn px(&self, x: isize, y: isize) -> i32 {
        i32::from(self.img.at(reflect101(x, self.img.width), reflect101(y, self.img.height)))
    }
    /// The derivatives at (x, y), zero outside.
    fn d(&self, x: isize, y: isize) -> (i32, i32) {
        if x < 0 || y < 0 || x >= self.img.width as isize || y >= self.img.height as isize {
            return (0, 0);
        }
        let i = y as usize * self.img.width + x as usize;
        (self.dx[i], self.dy[i])
    }
}

/// A pyramid, levels 0..=L where L ≤ `max_level` stops before a level no larger than the window.
pub struct Pyramid {
    levels: Vec<Level>,
}

impl Pyramid {
    pub fn new(img: &Gray, p: &LkParams) -> Pyramid {
        let mut imgs = vec![img.clone()];
        let (mut w, mut h) = (img.width, img.height);
        for _ in 0..p.max_level {
            (w, h) = (w.div_ceil(2), h.div_ceil(2));
            if w <= p.win || h <= p.win {
                break;
            }
            let next = pyr_down(imgs.last().unwrap_or(img));
            imgs.push(next);
        }
        Pyramid { levels: imgs.into_iter().map(Level::new).collect() }
    }
}

const W_BITS: i32 = 14;

fn descale(x: i32, n: i32) -> i32 {
    (x + (1 << (n - 1))) >> n
}

fn weights(a: f32, b: f32) -> [i32; 4] {
    let s = (1 << W_BITS) as f32;
    let w00 = ((1.0 - a) * (1.0 - b) * s).round() as i32;
    let w01 = (a * (1.0 - b) * s).round() as i32;
    let w10 = ((1.0 - a) * b * s).round() as i32;
    [w00, w01, w10, (1 << W_BITS) - w00 - w01 - w10]
}

/// Tracks `pts` from `prev` to `next`; per point `Some((x, y, err))` when OpenCV's status would be 1.
pub fn track(prev: &Pyramid, next: &Pyramid, pts: &[(f32, f32)], p: &LkParams) -> Vec<Option<(f32, f32, f32)>> {
    let max_level = prev.levels.len().min(next.levels.len()) - 1;
    let half = (p.win as f32 - 1.0) * 0.5;
    let win = p.win as isize;
    let area = (p.win * p.win) as f32;
    let flt_scale = 1.0 / (1u32 << 20) as f32;
    let eps2 = p.eps * p.eps;
    pts.iter()
        .map(|&(px, py)| {
            let mut status = true;
            let mut next_pt = (0f32, 0f32);
            let mut err = 0f32;
            for level in (0..=max_level).rev() {
                let (li, lj) = (&prev.levels[level], &next.levels[level]);
                let s = 1.0 / (1u32 << level) as f32;
                let prev_pt = (px * s - half, py * s - half);
                next_pt = if level == max_level { (px * s, py * s) } else { (next_pt.0 * 2.0, next_pt.1 * 2.0) };
                let (ix, iy) = (prev_pt.0.floor() as isize, prev_pt.1.floor() as isize);
                let (cols, rows) = (li.img.width as isize, li.img.height as isize);
                if ix < -win || ix >= cols || iy < -win || iy >= rows {
                    if level == 0 {
                        status = false;
                    }
                    continue;
                }
                let w = weights(prev_pt.0 - ix as f32, prev_pt.1 - iy as f32);
                let n = p.win * p.win;
                let (mut tpl, mut tdx, mut tdy) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
                let (mut a11, mut a12, mut a22) = (0f32, 0f32, 0f32);
                for y in 0..win {
                    for x in 0..win {
                        let (xx, yy) = (ix + x, iy + y);
                        let v = li.px(xx, yy) * w[0]
                            + li.px(xx + 1, yy) * w[1]
                            + li.px(xx, yy + 1) * w[2]
                            + li.px(xx + 1, yy + 1) * w[3];
                        let (d00, d01, d10, d11) =
                            (li.d(xx, yy), li.d(xx + 1, yy), li.d(xx, yy + 1), li.d(xx + 1, yy + 1));
                        let gx = descale(d00.0 * w[0] + d01.0 * w[1] + d10.0 * w[2] + d11.0 * w[3], W_BITS);
                        let gy = descale(d00.1 * w[0] + d01.1 * w[1] + d10.1 * w[2] + d11.1 * w[3], W_BITS);
                        tpl.push(descale(v, W_BITS - 5));
                        tdx.push(gx);
                        tdy.push(gy);
                        a11 += (gx * gx) as f32;
                        a12 += (gx * gy) as f32;
                        a22 += (gy * gy) as f32;
                    }
                }
                let (a11, a12, a22) = (a11 * flt_scale, a12 * flt_scale, a22 * flt_scale);
                let det = a11 * a22 - a12 * a12;
                let min_eig = (a22 + a11 - ((a11 - a22) * (a11 - a22) + 4.0 * a12 * a12).sqrt()) / (2.0 * area);
                if min_eig < 1e-4 || det < f32::EPSILON {
                    if level == 0 {
                        status = false;
                    }
                    continue;
                }
                let inv = 1.0 / det;
                let mut np = (next_pt.0 - half, next_pt.1 - half);
                let mut prev_delta = (0f32, 0f32);
                for j in 0..p.iters {
                    let (jx, jy) = (np.0.floor() as isize, np.1.floor() as isize);
                    let (jc, jr) = (lj.img.width as isize, lj.img.height as isize);
                    if jx < -win || jx >= jc || jy < -win || jy >= jr {
                        if level == 0 {
                            status = false;
                        }
                        break;
                    }
                    let w = weights(np.0 - jx as f32, np.1 - jy as f32);
                    let (mut b1, mut b2) = (0f32, 0f32);
                    let mut k = 0;
                    for y in 0..win {
                        for x in 0..win {
                            let (xx, yy) = (jx + x, jy + y);
                            let v = lj.px(xx, yy) * w[0]
                                + lj.px(xx + 1, yy) * w[1]
                                + lj.px(xx, yy + 1) * w[2]
                                + lj.px(xx + 1, yy + 1) * w[3];
                            let diff = descale(v, W_BITS - 5) - tpl[k];
                            b1 += (diff * tdx[k]) as f32;
                            b2 += (diff * tdy[k]) as f32;
                            k += 1;
                        }
                    }
                    let (b1, b2) = (b1 * flt_scale, b2 * flt_scale);
                    let delta = ((a12 * b2 - a22 * b1) * inv, (a12 * b1 - a11 * b2) * inv);
                    np = (np.0 + delta.0, np.1 + delta.1);
                    next_pt = (np.0 + half, np.1 + half);
                    if delta.0 * delta.0 + delta.1 * delta.1 <= eps2 {
                        break;
                    }
                    if j > 0 && (delta.0 + prev_delta.0).abs() < 0.01 && (delta.1 + prev_delta.1).abs() < 0.01 {
                        next_pt = (next_pt.0 - delta.0 * 0.5, next_pt.1 - delta.1 * 0.5);
                        break;
                    }
                    prev_delta = delta;
                }
                if status && level == 0 {
                    let q = (next_pt.0 - half, next_pt.1 - half);
                    let (jx, jy) = (q.0.floor() as isize, q.1.floor() as isize);
                    let (jc, jr) = (lj.img.width as isize, lj.img.height as isize);
                    if jx < -win || jx >= jc || jy < -win || jy >= jr {
                        status = false;
                        continue;
                    }
                    let w = weights(q.0 - jx as f32, q.1 - jy as f32);
                    let mut e = 0f32;
                    let mut k = 0;
                    for y in 0..win {
                        for x in 0..win {
                            let (xx, yy) = (jx + x, jy + y);
                            let v = lj.px(xx, yy) * w[0]
                                + lj.px(xx + 1, yy) * w[1]
                                + lj.px(xx, yy + 1) * w[2]
                                + lj.px(xx + 1, yy + 1) * w[3];
                            e += (descale(v, W_BITS - 5) - tpl[k]).abs() as f32;
                            k += 1;
                        }
                    }
                    err = e / (32.0 * area);
                }
            }
            status.then_some((next_pt.0, next_pt.1, err))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(w: usize, h: usize, cx: f32, cy: f32) -> Gray {
        let data = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                let d2 = (x - cx).powi(2) + (y - cy).powi(2);
                (40.0 + 180.0 * (-d2 / 60.0).exp()) as u8
            })
            .collect();
        Gray { width: w, height: h, data }
    }

    #[test]
    fn follows_a_shifted_blob() {
        let (a, b) = (blob(120, 90, 50.0, 40.0), blob(120, 90, 55.0, 43.0));
        let (pa, pb) = (Pyramid::new(&a, &PVSG_LK), Pyramid::new(&b, &PVSG_LK));
        assert_eq!(pa.levels.len(), 3, "heights 90, 45, 23; the next (12) is not above the window");
        let r = track(&pa, &pb, &[(50.0, 40.0)], &PVSG_LK);
        let (x, y, e) = r[0].unwrap();
        assert!((x - 55.0).abs() < 0.3 && (y - 43.0).abs() < 0.3, "{x} {y}");
        assert!(e < 2.0, "{e}");
    }

    #[test]
    fn flat_images_do_not_track() {
        let g = Gray { width: 64, height: 64, data: vec![90; 64 * 64] };
        let p = Pyramid::new(&g, &PVSG_LK);
        assert_eq!(track(&p, &p, &[(30.0, 30.0)], &PVSG_LK), vec![None]);
    }
}
