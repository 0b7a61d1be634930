//! Grey images and the OpenCV operations PSFR needs before tracking: `resize` (INTER_LINEAR), `cvtColor`
//! (BGR2GRAY), `cornerMinEigenVal` and `goodFeaturesToTrack`, written from OpenCV's documented behaviour.
//!
//! Where this can differ from OpenCV:
//! - resize: OpenCV's 8-bit INTER_LINEAR uses 11-bit fixed-point weights (and SIMD rounding); this uses the same
//!   half-pixel source mapping and edge clamping in `f32`, rounded to nearest, so a pixel can be off by one. An
//!   identity axis (640 → 640) is exact.
//! - grey: exact (OpenCV's 14-bit fixed-point `0.299 R + 0.587 G + 0.114 B`).
//! - corner response: exact formula (Sobel 3×3 scaled by `1/(4·3·255)`, unnormalised 3×3 box sum, reflect-101
//!   borders, `(a + c) − √((a − c)² + b²)` with `a`, `c` halved), in `f32`; summation order may differ in the last
//!   bit, which can reorder candidates of equal response.

/// An 8-bit single-channel image, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Gray {
    pub fn at(&self, x: usize, y: usize) -> u8 {
        self.data[y * self.width + x]
    }

    /// The sub-image `[x, x + w) × [y, y + h)` (clipped to the image), copied.
    pub fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> Gray {
        let (x2, y2) = ((x + w).min(self.width), (y + h).min(self.height));
        let (x, y) = (x.min(x2), y.min(y2));
        let mut data = Vec::with_capacity((x2 - x) * (y2 - y));
        for r in y..y2 {
            data.extend_from_slice(&self.data[r * self.width + x..r * self.width + x2]);
        }
        Gray { width: x2 - x, height: y2 - y, data }
    }
}

/// OpenCV's `BORDER_REFLECT_101` index.
pub fn reflect101(i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let mut i = i;
    while i < 0 || i >= n {
        i = if i < 0 { -i } else { 2 * (n - 1) - i };
    }
    i as usize
}

/// Source taps and weights of INTER_LINEAR along one axis.
fn taps(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let f = (d as f64 + 0.5) * scale - 0.5;
            let mut s = f.floor() as isize;
            let mut w = (f - s as f64) as f32;
            if s < 0 {
                (s, w) = (0, 0.0);
            }
            if s as usize >= src - 1 {
                (s, w) = (src as isize - 1, 0.0);
            }
            let s = s as usize;
            (s, (s + 1).min(src - 1), w)
        })
        .collect()
}

/// An RGB image resized to `w × h` (bilinear, OpenCV mapping) and turned grey with OpenCV's BGR2GRAY weights.
pub fn resized_gray(rgb: &image::RgbImage, w: usize, h: usize) -> Gray {
    let (sw, sh) = (rgb.width() as usize, rgb.height() as usize);
    let src = rgb.as_raw();
    let (tx, ty) = (taps(sw, w), taps(sh, h));
    let mut data = Vec::with_capacity(w * h);
    // Horizontal pass per needed source row, cached for the two rows of a destination row.
    let row = |y: usize| -> Vec<[f32; 3]> {
        tx.iter()
            .map(|&(a, b, wx)| {
                let p = |x: usize, c: usize| f32::from(src[(y * sw + x) * 3 + c]);
                [0, 1, 2].map(|c| p(a, c) * (1.0 - wx) + p(b, c) * wx)
            })
            .collect()
    };
    for &(a, b, wy) in &ty {
        let (ra, rb) = (row(a), if b == a { Vec::new() } else { row(b) });
        for x in 0..w {
            let v = |c: usize| {
                let top = ra[x][c];
                let bot = if rb.is_empty() { top } else { rb[x][c] };
                (top * (1.0 - wy) + bot * wy).round().clamp(0.0, 255.0) as u32
            };
            let (r, g, b) = (v(0), v(1), v(2));
            data.push(((b * 1868 + g * 9617 + r * 4899 + (1 << 13)) >> 14) as u8);
        }
    }
    Gray { width: w, height: h, data }
}

/// `v` (`w×h`) with a one-pixel reflect-101 border: `(w + 2) × (h + 2)`.
fn pad1<T: Copy>(v: &[T], w: usize, h: usize) -> Vec<T> {
    let mut out = Vec::with_capacity((w + 2) * (h + 2));
    for y in -1..=h as isize {
        let r = reflect101(y, h) * w;
        out.push(v[r + reflect101(-1, w)]);
        out.extend_from_slice(&v[r..r + w]);
        out.push(v[r + reflect101(w as isize, w)]);
    }
    out
}

/// `cornerMinEigenVal(gray, blockSize=3, ksize=3)` as `f32`, row-major.
pub fn min_eigen(g: &Gray) -> Vec<f32> {
    let (w, h) = (g.width, g.height);
    let pw = w + 2;
    let src: Vec<f32> = pad1(&g.data, w, h).into_iter().map(f32::from).collect();
    let scale = 1.0 / (4.0 * 3.0 * 255.0);
    let mut cov = vec![[0f32; 3]; w * h];
    for y in 0..h {
        let (r0, r1, r2) = (y * pw, (y + 1) * pw, (y + 2) * pw);
        for x in 0..w {
            let dx = (src[r0 + x + 2] - src[r0 + x])
                + 2.0 * (src[r1 + x + 2] - src[r1 + x])
                + (src[r2 + x + 2] - src[r2 + x]);
            let dy = (src[r2 + x] - src[r0 + x])
                + 2.0 * (src[r2 + x + 1] - src[r0 + x + 1])
                + (src[r2 + x + 2] - src[r0 + x + 2]);
            let (dx, dy) = (dx * scale, dy * scale);
            cov[y * w + x] = [dx * dx, dx * dy, dy * dy];
        }
    }
    let cov = pad1(&cov, w, h);
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut s = [0f32; 3];
            for dy in 0..3 {
                for dx in 0..3 {
                    let c = cov[(y + dy) * pw + x + dx];
                    s = [s[0] + c[0], s[1] + c[1], s[2] + c[2]];
                }
            }
            let (a, b, c) = (s[0] * 0.5, s[1], s[2] * 0.5);
            out[y * w + x] = (a + c) - ((a - c) * (a - c) + b * b).sqrt();
        }
    }
    out
}

/// `goodFeaturesToTrack(gray, maxCorners, qualityLevel, minDistance, mask = rect)` given the response `eig` of
/// the whole image; the mask is the rectangle `[x, x + w) × [y, y + h)`. Returns integer corner positions.
#[allow(clippy::too_many_arguments)]
pub fn good_features(
    eig: &[f32],
    width: usize,
    height: usize,
    rect: (usize, usize, usize, usize),
    max_corners: usize,
    quality: f32,
    min_distance: f32,
) -> Vec<(f32, f32)> {
    let (rx, ry, rw, rh) = rect;
    let (rx2, ry2) = ((rx + rw).min(width), (ry + rh).min(height));
    let max_val = (ry..ry2).flat_map(|y| (rx..rx2).map(move |x| eig[y * width + x])).fold(f32::MIN, f32::max);
    let thresh = max_val * quality;
    let val = |x: usize, y: usize| {
        let v = eig[y * width + x];
        if v > thresh {
            v
        } else {
            0.0
        }
    };
    // Local maxima of the thresholded map (3×3 dilation, outside the image ignored), inside the mask and not on
    // the outermost pixel ring.
    let mut cands: Vec<(f32, usize)> = Vec::new();
    for y in ry.max(1)..ry2.min(height.saturating_sub(1)) {
        for x in rx.max(1)..rx2.min(width.saturating_sub(1)) {
            let v = val(x, y);
            if v == 0.0 {
                continue;
            }
            let mut m = v;
            for yy in y - 1..=y + 1 {
                for xx in x - 1..=x + 1 {
                    m = m.max(val(xx, yy));
                }
            }
            if v == m {
                cands.push((v, y * width + x));
            }
        }
    }
    // OpenCV's `greaterThanPtr`: larger value first, equal values by larger address first.
    cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_101() {
        let r: Vec<usize> = [-2, -1, 0, 4, 5, 6].iter().map(|&i| reflect101(i, 5)).collect();
        assert_eq!(r, [2, 1, 0, 4, 3, 2]);
    }

    #[test]
    fn grey_weights_and_identity_resize() {
        let img = image::RgbImage::from_fn(4, 2, |x, _| image::Rgb([255 * (x % 2) as u8, 128, 7]));
        let g = resized_gray(&img, 4, 2);
        // (7·1868 + 128·9617 + 255·4899 + 8192) >> 14 = 152; without red: 76.
        assert_eq!(g.data, [76, 152, 76, 152, 76, 152, 76, 152]);
    }

    #[test]
    fn a_bright_square_has_four_corners() {
        let mut data = vec![0u8; 40 * 40];
        for y in 10..30 {
            for x in 10..30 {
                data[y * 40 + x] = 200;
            }
        }
        let g = Gray { width: 40, height: 40, data };
        let eig = min_eigen(&g);
        let mut c = good_features(&eig, 40, 40, (0, 0, 40, 40), 10, 0.3, 5.0);
        c.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(c.len(), 4, "{c:?}");
        for (x, y) in c {
            assert!((x - 9.5).abs() <= 1.0 || (x - 29.5).abs() <= 1.0, "{x}");
            assert!((y - 9.5).abs() <= 1.0 || (y - 29.5).abs() <= 1.0, "{y}");
        }
    }
}
