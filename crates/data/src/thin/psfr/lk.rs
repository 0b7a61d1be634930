//! Pyramidal Lucas–Kanade as OpenCV's `calcOpticalFlowPyrLK` computes it, written from its published algorithm:
//! `pyrDown` pyramids (5×5 binomial kernel, reflect-101), stopping early when a level would be no larger than the
//! window (so a 213×120 patch with a 21×21 window uses levels 0–2, not 3); Scharr derivatives (`3, 10, 3`), zero
//! outside the image; 14-bit fixed-point bilinear weights, the template scaled by 32; the minimum-eigenvalue
//! test (`1e-4`); up to 30 iterations stopping at `|δ|² ≤ 0.01²` or on a half-step oscillation; the error at
//! level 0 the mean absolute difference over the window.
//!
//! Layout (hand-written for speed, as OpenCV does): every level is stored with a border of `win + 1` pixels on
//! each side — the image reflect-101, the derivatives zero — so the window loops read plain slices with no index
//! arithmetic; a window may start up to `win` pixels outside the image, which the border covers. Derivatives are
//! only needed on the *previous* image, so a pyramid computes them on request ([`Pyramid::ensure_derivatives`]);
//! PSFR builds each frame's pyramid once, as the next image, and reuses it as the previous one a frame later.
//!
//! Where it can differ from OpenCV: the window sums are accumulated in `f32` in row order (OpenCV's SIMD paths
//! accumulate in another order), so a point whose error or eigenvalue sits exactly on a threshold can flip. The
//! sums are kept sequential on purpose: they are what the fixture test was matched with.

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

/// One pyramid level: `w × h` pixels inside a border of `pad` on every side (`stride = w + 2·pad`).
#[derive(Debug, Clone, Default)]
struct Level {
    w: usize,
    h: usize,
    pad: usize,
    stride: usize,
    /// The image, reflect-101 in the border.
    img: Vec<u8>,
    /// Scharr derivatives, zero in the border; valid when `derived`.
    dx: Vec<i16>,
    dy: Vec<i16>,
    derived: bool,
    /// Horizontal `pyrDown` sums, kept for reuse.
    tmp: Vec<u16>,
}

impl Level {
    /// Sets this level to `w × h` pixels given row by row (`row(y, out)`), the border filled reflect-101. The
    /// buffers are reused when the size is unchanged.
    fn fill(&mut self, w: usize, h: usize, pad: usize, mut row: impl FnMut(usize, &mut [u8])) {
        let stride = w + 2 * pad;
        let len = stride * (h + 2 * pad);
        if (self.w, self.h, self.pad) != (w, h, pad) || self.img.len() != len {
            *self = Level { w, h, pad, stride, img: vec![0; len], ..Level::default() };
        }
        self.derived = false;
        let img = &mut self.img;
        for y in 0..h {
            let r = &mut img[(y + pad) * stride..(y + pad + 1) * stride];
            row(y, &mut r[pad..pad + w]);
            for i in 0..pad {
                r[i] = r[pad + reflect101(i as isize - pad as isize, w)];
                r[pad + w + i] = r[pad + reflect101((w + i) as isize, w)];
            }
        }
        for i in 0..pad {
            let (top, bottom) = (reflect101(i as isize - pad as isize, h), reflect101((h + i) as isize, h));
            img.copy_within((top + pad) * stride..(top + pad + 1) * stride, i * stride);
            img.copy_within((bottom + pad) * stride..(bottom + pad + 1) * stride, (h + pad + i) * stride);
        }
    }

    /// `pyrDown` of `src` into this level, `⌈w/2⌉ × ⌈h/2⌉`, from the bordered image (reflect-101 reads are the
    /// border).
    fn down_from(&mut self, src: &Level) {
        // Sums stay in u16: a row sum is at most 16·255 and the 2-D sum 16·16·255 + 128 = 65 408.
        const K: [u16; 5] = [1, 4, 6, 4, 1];
        let (w2, h2) = (src.w.div_ceil(2), src.h.div_ceil(2));
        let (p, s) = (src.pad, src.stride);
        // Horizontal pass over source rows −2 … h + 1 (the border rows hold the reflected ones).
        let rows = src.h + 4;
        let mut tmp = std::mem::take(&mut self.tmp);
        tmp.resize(w2 * rows, 0);
        for r in 0..rows {
            let row = &src.img[(r + p - 2) * s..(r + p - 1) * s];
            let out = &mut tmp[r * w2..(r + 1) * w2];
            for (x, o) in out.iter_mut().enumerate() {
                let c = &row[p + 2 * x - 2..p + 2 * x + 3];
                *o = K[0] * u16::from(c[0])
                    + K[1] * u16::from(c[1])
                    + K[2] * u16::from(c[2])
                    + K[3] * u16::from(c[3])
                    + K[4] * u16::from(c[4]);
            }
        }
        self.fill(w2, h2, p, |y, out| {
            // Destination row y reads source rows 2y − 2 … 2y + 2, i.e. tmp rows 2y … 2y + 4.
            let t = |j: usize| &tmp[(2 * y + j) * w2..(2 * y + j + 1) * w2];
            let (t0, t1, t2, t3, t4) = (t(0), t(1), t(2), t(3), t(4));
            for x in 0..w2 {
                let s = K[0] * t0[x] + K[1] * t1[x] + K[2] * t2[x] + K[3] * t3[x] + K[4] * t4[x];
                out[x] = ((s + 128) >> 8) as u8;
            }
        });
        self.tmp = tmp;
    }

    /// Computes the Scharr derivatives (reflect-101 neighbours, i.e. the border) into zero-bordered planes.
    fn derive(&mut self) {
        if self.derived {
            return;
        }
        let (p, s) = (self.pad, self.stride);
        if self.dx.len() != self.img.len() {
            (self.dx, self.dy) = (vec![0; self.img.len()], vec![0; self.img.len()]);
        }
        for y in 0..self.h {
            let row = |k: usize| &self.img[(y + p + k - 1) * s + p - 1..(y + p + k - 1) * s + p + self.w + 1];
            let (up, mid, down) = (row(0), row(1), row(2));
            let at = (y + p) * s + p;
            let (ox, oy) = (&mut self.dx[at..at + self.w], &mut self.dy[at..at + self.w]);
            // |Scharr| ≤ 16·255: the arithmetic fits in i16.
            let q = |r: &[u8], k: usize| i16::from(r[k]);
            for x in 0..self.w {
                // Column x of the image is index x + 1 of these rows.
                let gx = 3 * (q(up, x + 2) - q(up, x))
                    + 10 * (q(mid, x + 2) - q(mid, x))
                    + 3 * (q(down, x + 2) - q(down, x));
                let gy = 3 * (q(down, x) - q(up, x))
                    + 10 * (q(down, x + 1) - q(up, x + 1))
                    + 3 * (q(down, x + 2) - q(up, x + 2));
                ox[x] = gx;
                oy[x] = gy;
            }
        }
        self.derived = true;
    }
}

/// A pyramid, levels 0..=L where L ≤ `max_level` stops before a level no larger than the window.
#[derive(Debug, Clone, Default)]
pub struct Pyramid {
    levels: Vec<Level>,
    /// How many of `levels` are in use (the rest are spare buffers).
    used: usize,
}

impl Pyramid {
    /// The pyramid of a whole image (derivatives not computed yet).
    pub fn new(img: &Gray, p: &LkParams) -> Pyramid {
        Pyramid::of_rect(img, (0, 0, img.width, img.height), p)
    }

    /// The pyramid of the sub-image `[x, x + w) × [y, y + h)` (clipped to the image) taken as an image of its
    /// own, as OpenCV sees a NumPy slice: its borders are the crop's, not the surrounding pixels.
    pub fn of_rect(img: &Gray, rect: (usize, usize, usize, usize), p: &LkParams) -> Pyramid {
        let mut pyr = Pyramid::default();
        pyr.rebuild(img, rect, p);
        pyr
    }

    /// [`Pyramid::of_rect`] in place, reusing this pyramid's buffers.
    pub fn rebuild(&mut self, img: &Gray, rect: (usize, usize, usize, usize), p: &LkParams) {
        let (x2, y2) = ((rect.0 + rect.2).min(img.width), (rect.1 + rect.3).min(img.height));
        let (x, y) = (rect.0.min(x2), rect.1.min(y2));
        let (w, h) = (x2 - x, y2 - y);
        self.used = 0;
        if w == 0 || h == 0 {
            return;
        }
        let pad = p.win + 1;
        if self.levels.is_empty() {
            self.levels.push(Level::default());
        }
        self.levels[0].fill(w, h, pad, |r, out| {
            out.copy_from_slice(&img.data[(y + r) * img.width + x..(y + r) * img.width + x2]);
        });
        self.used = 1;
        let (mut lw, mut lh) = (w, h);
        for _ in 0..p.max_level {
            (lw, lh) = (lw.div_ceil(2), lh.div_ceil(2));
            if lw <= p.win || lh <= p.win {
                break;
            }
            if self.levels.len() == self.used {
                self.levels.push(Level::default());
            }
            let (done, rest) = self.levels.split_at_mut(self.used);
            rest[0].down_from(&done[self.used - 1]);
            self.used += 1;
        }
    }

    fn levels(&self) -> &[Level] {
        &self.levels[..self.used]
    }

    /// Computes the Scharr derivatives of every level (needed where this pyramid is the previous image).
    pub fn ensure_derivatives(&mut self) {
        for l in &mut self.levels[..self.used] {
            l.derive();
        }
    }
}

const W_BITS: i32 = 14;

fn descale(x: i32, n: i32) -> i32 {
    (x + (1 << (n - 1))) >> n
}

/// The four bilinear weights, summing to 2¹⁴ (each fits in `i16`, so the products below are 16 × 16 bits, which
/// SSE2 multiplies natively).
fn weights(a: f32, b: f32) -> [i16; 4] {
    let s = (1 << W_BITS) as f32;
    let w00 = ((1.0 - a) * (1.0 - b) * s).round() as i32;
    let w01 = (a * (1.0 - b) * s).round() as i32;
    let w10 = ((1.0 - a) * b * s).round() as i32;
    [w00, w01, w10, (1 << W_BITS) - w00 - w01 - w10].map(|w| w as i16)
}

/// Bilinear samples of one window row: `out[x] = Σ w·p` over the 2×2 neighbourhood of `(x0 + x, y0)`, for
/// `x < out.len()`; `r0`, `r1` start at `x0` on rows `y0` and `y0 + 1` and hold `out.len() + 1` values.
#[inline(always)]
fn sample_row<T: Copy + Into<i16>>(r0: &[T], r1: &[T], w: &[i16; 4], out: &mut [i32]) {
    let n = out.len();
    let (r0, r1) = (&r0[..n + 1], &r1[..n + 1]);
    let m = |v: T, w: i16| i32::from(v.into()) * i32::from(w);
    for x in 0..n {
        out[x] = m(r0[x], w[0]) + m(r0[x + 1], w[1]) + m(r1[x], w[2]) + m(r1[x + 1], w[3]);
    }
}

/// Per-call scratch buffers for one window (template, its derivatives, a row of samples).
struct Window {
    tpl: Vec<i16>,
    tdx: Vec<i16>,
    tdy: Vec<i16>,
    row: Vec<i32>,
    fa: Vec<f32>,
    fb: Vec<f32>,
}

/// Tracks `pts` from `prev` to `next`; per point `Some((x, y, err))` when OpenCV's status would be 1. `prev`
/// should have its derivatives ([`Pyramid::ensure_derivatives`]); levels without them are derived here, on a copy.
pub fn track(prev: &Pyramid, next: &Pyramid, pts: &[(f32, f32)], p: &LkParams) -> Vec<Option<(f32, f32, f32)>> {
    if prev.levels().is_empty() || next.levels().is_empty() {
        return vec![None; pts.len()];
    }
    let derived;
    let prev = if prev.levels().iter().all(|l| l.derived) {
        prev
    } else {
        let mut c = prev.clone();
        c.ensure_derivatives();
        derived = c;
        &derived
    };
    let n = p.win * p.win;
    let mut win = Window {
        tpl: vec![0; n],
        tdx: vec![0; n],
        tdy: vec![0; n],
        row: vec![0; p.win],
        fa: vec![0.0; n],
        fb: vec![0.0; n],
    };
    pts.iter().map(|&pt| track_point(prev, next, pt, p, &mut win)).collect()
}

/// The top-left of a window at `(x, y)` (may be negative) as an offset into a level's bordered buffer, or `None`
/// when OpenCV would call the point lost (`x < −win`, `x ≥ cols`, likewise `y`).
fn window_at(l: &Level, x: isize, y: isize, win: isize) -> Option<usize> {
    if x < -win || x >= l.w as isize || y < -win || y >= l.h as isize {
        return None;
    }
    Some((y + l.pad as isize) as usize * l.stride + (x + l.pad as isize) as usize)
}

fn track_point(
    prev: &Pyramid,
    next: &Pyramid,
    (px, py): (f32, f32),
    p: &LkParams,
    buf: &mut Window,
) -> Option<(f32, f32, f32)> {
    let (prev, next) = (prev.levels(), next.levels());
    let max_level = prev.len().min(next.len()) - 1;
    let half = (p.win as f32 - 1.0) * 0.5;
    let (win, wn) = (p.win as isize, p.win);
    let area = (p.win * p.win) as f32;
    let flt_scale = 1.0 / (1u32 << 20) as f32;
    let eps2 = p.eps * p.eps;
    let mut status = true;
    let mut next_pt = (0f32, 0f32);
    let mut err = 0f32;
    for level in (0..=max_level).rev() {
        let (li, lj) = (&prev[level], &next[level]);
        let s = 1.0 / (1u32 << level) as f32;
        let prev_pt = (px * s - half, py * s - half);
        next_pt = if level == max_level { (px * s, py * s) } else { (next_pt.0 * 2.0, next_pt.1 * 2.0) };
        let (ix, iy) = (prev_pt.0.floor() as isize, prev_pt.1.floor() as isize);
        let Some(at) = window_at(li, ix, iy, win) else {
            if level == 0 {
                status = false;
            }
            continue;
        };
        let w = weights(prev_pt.0 - ix as f32, prev_pt.1 - iy as f32);
        let st = li.stride;
        for y in 0..wn {
            let o = at + y * st;
            let k = y * wn..(y + 1) * wn;
            sample_row(&li.img[o..], &li.img[o + st..], &w, &mut buf.row);
            for (t, &v) in buf.tpl[k.clone()].iter_mut().zip(&buf.row) {
                *t = descale(v, W_BITS - 5) as i16;
            }
            sample_row(&li.dx[o..], &li.dx[o + st..], &w, &mut buf.row);
            for (t, &v) in buf.tdx[k.clone()].iter_mut().zip(&buf.row) {
                *t = descale(v, W_BITS) as i16;
            }
            sample_row(&li.dy[o..], &li.dy[o + st..], &w, &mut buf.row);
            for (t, &v) in buf.tdy[k].iter_mut().zip(&buf.row) {
                *t = descale(v, W_BITS) as i16;
            }
        }
        let (mut a11, mut a12, mut a22) = (0f32, 0f32, 0f32);
        for (&gx, &gy) in buf.tdx.iter().zip(&buf.tdy) {
            let (gx, gy) = (i32::from(gx), i32::from(gy));
            a11 += (gx * gx) as f32;
            a12 += (gx * gy) as f32;
            a22 += (gy * gy) as f32;
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
            let Some(at) = window_at(lj, jx, jy, win) else {
                if level == 0 {
                    status = false;
                }
                break;
            };
            let w = weights(np.0 - jx as f32, np.1 - jy as f32);
            diff_products(lj, at, &w, buf, wn);
            // Sequential sums, in window order (see the module doc).
            let (mut b1, mut b2) = (0f32, 0f32);
            for (&a, &b) in buf.fa.iter().zip(&buf.fb) {
                b1 += a;
                b2 += b;
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
            let Some(at) = window_at(lj, jx, jy, win) else {
                status = false;
                continue;
            };
            let w = weights(q.0 - jx as f32, q.1 - jy as f32);
            // |diff| ≤ 8160 and 441 of them stay below 2²⁴: the integer sum is what the `f32` sum would be.
            let mut e: i64 = 0;
            for y in 0..wn {
                let o = at + y * lj.stride;
                sample_row(&lj.img[o..], &lj.img[o + lj.stride..], &w, &mut buf.row);
                let t = &buf.tpl[y * wn..(y + 1) * wn];
                e += buf
                    .row
                    .iter()
                    .zip(t)
                    .map(|(&v, &t)| i64::from((descale(v, W_BITS - 5) - i32::from(t)).abs()))
                    .sum::<i64>();
            }
            err = e as f32 / (32.0 * area);
        }
    }
    status.then_some((next_pt.0, next_pt.1, err))
}

/// For the window of `l` at offset `at`: `fa[k] = diff·Ix`, `fb[k] = diff·Iy` as `f32`, where `diff` is the
/// sampled next image minus the template (the per-pixel part of an LK iteration, vectorisable).
fn diff_products(l: &Level, at: usize, w: &[i16; 4], buf: &mut Window, wn: usize) {
    for y in 0..wn {
        let o = at + y * l.stride;
        sample_row(&l.img[o..], &l.img[o + l.stride..], w, &mut buf.row);
        let k = y * wn..(y + 1) * wn;
        let (t, gx, gy) = (&buf.tpl[k.clone()], &buf.tdx[k.clone()], &buf.tdy[k.clone()]);
        let (fa, fb) = (&mut buf.fa[k.clone()], &mut buf.fb[k]);
        for x in 0..wn {
            // |diff| ≤ 8160 fits in i16 as the template does.
            let d = i32::from((descale(buf.row[x], W_BITS - 5) - i32::from(t[x])) as i16);
            fa[x] = (d * i32::from(gx[x])) as f32;
            fb[x] = (d * i32::from(gy[x])) as f32;
        }
    }
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
        let (mut pa, pb) = (Pyramid::new(&a, &PVSG_LK), Pyramid::new(&b, &PVSG_LK));
        assert_eq!(pa.levels().len(), 3, "heights 90, 45, 23; the next (12) is not above the window");
        let r = track(&pa, &pb, &[(50.0, 40.0)], &PVSG_LK);
        let (x, y, e) = r[0].unwrap();
        assert!((x - 55.0).abs() < 0.3 && (y - 43.0).abs() < 0.3, "{x} {y}");
        assert!(e < 2.0, "{e}");
        pa.ensure_derivatives();
        assert_eq!(track(&pa, &pb, &[(50.0, 40.0)], &PVSG_LK), r, "derivatives computed ahead or on the fly");
    }

    #[test]
    fn flat_images_do_not_track() {
        let g = Gray { width: 64, height: 64, data: vec![90; 64 * 64] };
        let p = Pyramid::new(&g, &PVSG_LK);
        assert_eq!(track(&p, &p, &[(30.0, 30.0)], &PVSG_LK), vec![None]);
    }

    #[test]
    fn borders_are_reflect_101_and_levels_halve() {
        let g = Gray { width: 30, height: 24, data: (0..30 * 24).map(|i| (i * 7 % 251) as u8).collect() };
        let p = Pyramid::new(&g, &LkParams { win: 5, max_level: 3, iters: 30, eps: 0.01 });
        let l = &p.levels()[0];
        let at = |x: isize, y: isize| l.img[(y + l.pad as isize) as usize * l.stride + (x + l.pad as isize) as usize];
        for (x, y) in [(-1, 0), (-6, -6), (30, 23), (35, 29), (3, -2)] {
            assert_eq!(at(x, y), g.at(reflect101(x, 30), reflect101(y, 24)), "({x}, {y})");
        }
        let sizes: Vec<(usize, usize)> = p.levels().iter().map(|l| (l.w, l.h)).collect();
        assert_eq!(sizes, [(30, 24), (15, 12), (8, 6)]);
        // Rebuilding in place over another image gives what building afresh gives.
        let g2 = Gray { width: 30, height: 24, data: (0..30 * 24).map(|i| (i * 13 % 241) as u8).collect() };
        let q = LkParams { win: 5, max_level: 3, iters: 30, eps: 0.01 };
        let mut reused = p.clone();
        reused.ensure_derivatives();
        reused.rebuild(&g2, (0, 0, 30, 24), &q);
        reused.ensure_derivatives();
        let mut fresh = Pyramid::new(&g2, &q);
        fresh.ensure_derivatives();
        for (a, b) in reused.levels().iter().zip(fresh.levels()) {
            assert_eq!((&a.img, &a.dx, &a.dy), (&b.img, &b.dx, &b.dy));
        }
    }
}
