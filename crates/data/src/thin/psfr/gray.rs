//! Grey images and the first two OpenCV steps of PSFR: `resize` (INTER_LINEAR) of the colour frame, then
//! `cvtColor` (BGR2GRAY) — the reference resizes the BGR image first and converts to grey after, so the rounding
//! of each channel happens before the grey sum, and so it does here. Decoding lives here too ([`FrameReader`]):
//! PNG frames are read with the `png` crate straight into a reused buffer (no `DynamicImage`, no copy to RGB).
//!
//! Written by hand rather than through `image::imageops` because the arithmetic must be OpenCV's mapping and the
//! loops must stay cheap (PSFR's budget is about 10 ms a frame including decode): a horizontal pass only when
//! the width changes (640 → 640 is an identity, which is exact and skipped, and then the vertical blend is a table
//! lookup, see [`GrayResizer`]), one vertical blend per channel, then the fixed-point grey.
//!
//! Where this can differ from OpenCV:
//! - resize: OpenCV's 8-bit INTER_LINEAR uses 11-bit fixed-point weights (and SIMD rounding); this uses the same
//!   half-pixel source mapping and edge clamping in `f32`, rounded to nearest, so a pixel can be off by one. An
//!   identity axis (640 → 640) is exact.
//! - grey: exact (OpenCV's 14-bit fixed-point `0.299 R + 0.587 G + 0.114 B`).

use std::io::BufReader;
use std::path::Path;

/// An 8-bit single-channel image, row-major.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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

/// Round half away from zero for `0 ≤ x < 2³¹`, as `f32::round` does, without the libm call (which does not
/// vectorise): `x − trunc(x)` is exact.
#[inline(always)]
fn round_nonneg(x: f32) -> i32 {
    let t = x as i32;
    t + i32::from(x - t as f32 >= 0.5)
}

/// One source row blended horizontally into `out` (`w × 3` values): `p(a)·(1 − wx) + p(b)·wx` per channel.
fn horizontal(row: &[u8], tx: &[(usize, usize, f32)], out: &mut [f32]) {
    for (o, &(a, b, wx)) in out.chunks_exact_mut(3).zip(tx) {
        for c in 0..3 {
            o[c] = f32::from(row[a * 3 + c]) * (1.0 - wx) + f32::from(row[b * 3 + c]) * wx;
        }
    }
}

/// The blend of one output row from two source rows: `round(t·(1 − wy) + u·wy)` per channel value.
fn blend(t: f32, u: f32, wt: f32, wy: f32) -> i32 {
    round_nonneg(t * wt + u * wy).min(255)
}

/// Resizes interleaved RGB frames to grey ([`GrayResizer::run`]), keeping its tables between frames.
///
/// When the width is unchanged (PVSG: 640×480 → 640×360) every horizontal value is an integer, so a row's blend
/// only depends on the two source bytes: it is looked up in a 256×256 table per vertical weight (three tables
/// for 480 → 360), filled from the very `f32` expression of the general path, so the result is the same.
#[derive(Debug, Default)]
pub struct GrayResizer {
    /// `(wy as bits, table[t·256 + u])`.
    tables: Vec<(u32, Vec<u8>)>,
    top: Vec<f32>,
    bot: Vec<f32>,
    mixed: Vec<i32>,
}

impl GrayResizer {
    fn table(&mut self, wy: f32) -> usize {
        if let Some(i) = self.tables.iter().position(|t| t.0 == wy.to_bits()) {
            return i;
        }
        let wt = 1.0 - wy;
        let table = (0..256 * 256).map(|i| blend((i >> 8) as f32, (i & 255) as f32, wt, wy) as u8).collect();
        self.tables.push((wy.to_bits(), table));
        self.tables.len() - 1
    }

    /// An interleaved RGB buffer (`sw × sh`) resized to `out.width × out.height` (bilinear, OpenCV mapping) and
    /// turned grey with OpenCV's BGR2GRAY weights, into `out.data`.
    pub fn run(&mut self, rgb: &[u8], sw: usize, sh: usize, out: &mut Gray) {
        let (w, h) = (out.width, out.height);
        out.data.resize(w * h, 0);
        if w == 0 || h == 0 || sw == 0 || sh == 0 {
            out.data.fill(0);
            return;
        }
        let ty = taps(sh, h);
        let grey = |r: u32, g: u32, b: u32| ((b * 1868 + g * 9617 + r * 4899 + (1 << 13)) >> 14) as u8;
        if sw == w {
            for (&(a, b, wy), dst) in ty.iter().zip(out.data.chunks_exact_mut(w)) {
                let i = self.table(wy);
                let t = &self.tables[i].1[..256 * 256];
                let (ra, rb) = (&rgb[a * sw * 3..(a + 1) * sw * 3], &rgb[b * sw * 3..(b + 1) * sw * 3]);
                for ((d, pa), pb) in dst.iter_mut().zip(ra.chunks_exact(3)).zip(rb.chunks_exact(3)) {
                    let v = |c: usize| u32::from(t[usize::from(pa[c]) << 8 | usize::from(pb[c])]);
                    *d = grey(v(0), v(1), v(2));
                }
            }
            return;
        }
        let tx = taps(sw, w);
        let (top, bot, mixed) = (&mut self.top, &mut self.bot, &mut self.mixed);
        for v in [&mut *top, &mut *bot] {
            v.resize(w * 3, 0.0);
        }
        mixed.resize(w * 3, 0);
        // The source rows held in `top` and `bot`; rows are visited in increasing order, so a pair often overlaps
        // the previous one.
        let (mut in_top, mut in_bot) = (usize::MAX, usize::MAX);
        for (&(a, b, wy), dst) in ty.iter().zip(out.data.chunks_exact_mut(w)) {
            if in_top != a {
                if in_bot == a {
                    std::mem::swap(top, bot);
                    std::mem::swap(&mut in_top, &mut in_bot);
                } else {
                    horizontal(&rgb[a * sw * 3..(a + 1) * sw * 3], &tx, top);
                    in_top = a;
                }
            }
            if in_bot != b {
                horizontal(&rgb[b * sw * 3..(b + 1) * sw * 3], &tx, bot);
                in_bot = b;
            }
            let wt = 1.0 - wy;
            for ((m, &t), &u) in mixed.iter_mut().zip(top.iter()).zip(bot.iter()) {
                *m = blend(t, u, wt, wy);
            }
            for (d, px) in dst.iter_mut().zip(mixed.chunks_exact(3)) {
                *d = grey(px[0] as u32, px[1] as u32, px[2] as u32);
            }
        }
    }
}

/// [`GrayResizer::run`] with fresh tables.
pub fn resize_rgb_to_gray(rgb: &[u8], sw: usize, sh: usize, out: &mut Gray) {
    GrayResizer::default().run(rgb, sw, sh, out);
}

/// An RGB image resized to `w × h` (bilinear, OpenCV mapping) and turned grey with OpenCV's BGR2GRAY weights.
pub fn resized_gray(rgb: &image::RgbImage, w: usize, h: usize) -> Gray {
    let mut out = Gray { width: w, height: h, data: Vec::new() };
    resize_rgb_to_gray(rgb.as_raw(), rgb.width() as usize, rgb.height() as usize, &mut out);
    out
}

/// Decodes frames into a buffer kept between frames. PNG frames in 8-bit RGB or RGBA (what `prepare` writes and
/// what video frame dumps usually are) are decoded by the `png` crate directly; anything else (JPEG, grey, 16-bit,
/// palette PNG) goes through `image` and `to_rgb8`, as `cv2.imread(IMREAD_COLOR)` reads them.
#[derive(Debug, Default)]
pub struct FrameReader {
    raw: Vec<u8>,
    rgb: Vec<u8>,
}

impl FrameReader {
    /// The frame at `path` as interleaved RGB: `(pixels, width, height)`; the slice lives until the next call.
    pub fn read_rgb(&mut self, path: &Path) -> Result<(&[u8], usize, usize), String> {
        let why = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let is_png = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if is_png {
            let file = std::fs::File::open(path).map_err(|e| why(&e))?;
            let mut dec = png::Decoder::new(BufReader::with_capacity(1 << 16, file));
            // Checksums guard against corrupt files, which the decoder reports anyway when the stream breaks;
            // skipping them saves a pass over the data.
            dec.ignore_checksums(true);
            let mut reader = dec.read_info().map_err(|e| why(&e))?;
            let (ct, depth) = reader.output_color_type();
            let interlaced = reader.info().interlaced;
            if depth == png::BitDepth::Eight && !interlaced && matches!(ct, png::ColorType::Rgb | png::ColorType::Rgba)
            {
                let size = reader.output_buffer_size().ok_or_else(|| why(&"image too large"))?;
                self.raw.resize(size, 0);
                let info = reader.next_frame(&mut self.raw).map_err(|e| why(&e))?;
                let (w, h) = (info.width as usize, info.height as usize);
                if ct == png::ColorType::Rgb {
                    return Ok((&self.raw[..w * h * 3], w, h));
                }
                self.rgb.clear();
                self.rgb.extend(self.raw[..w * h * 4].chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]));
                return Ok((&self.rgb, w, h));
            }
        }
        let img = image::open(path).map_err(|e| why(&e))?.to_rgb8();
        let (w, h) = (img.width() as usize, img.height() as usize);
        self.rgb = img.into_raw();
        Ok((&self.rgb, w, h))
    }
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

    /// The plain formula: horizontal then vertical blend in `f32`, `round`, then grey.
    fn oracle(rgb: &image::RgbImage, w: usize, h: usize) -> Vec<u8> {
        let (sw, sh) = (rgb.width() as usize, rgb.height() as usize);
        let (tx, ty) = (taps(sw, w), taps(sh, h));
        let p = |x: usize, y: usize, c: usize| f32::from(rgb.as_raw()[(y * sw + x) * 3 + c]);
        let mut out = Vec::new();
        for &(a, b, wy) in &ty {
            for &(l, r, wx) in &tx {
                let hz = |y: usize, c: usize| p(l, y, c) * (1.0 - wx) + p(r, y, c) * wx;
                let v = |c: usize| (hz(a, c) * (1.0 - wy) + hz(b, c) * wy).round().clamp(0.0, 255.0) as u32;
                out.push(((v(2) * 1868 + v(1) * 9617 + v(0) * 4899 + (1 << 13)) >> 14) as u8);
            }
        }
        out
    }

    #[test]
    fn table_and_general_paths_match_the_plain_formula() {
        let mut s = 12345u32;
        let img = image::RgbImage::from_fn(24, 32, |_, _| {
            let mut b = [0u8; 3];
            for v in &mut b {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                *v = (s >> 23) as u8;
            }
            image::Rgb(b)
        });
        let mut r = GrayResizer::default();
        for (w, h) in [(24, 24), (24, 32), (16, 24), (30, 20), (24, 7)] {
            let mut g = Gray { width: w, height: h, data: Vec::new() };
            r.run(img.as_raw(), 24, 32, &mut g);
            assert_eq!(g.data, oracle(&img, w, h), "{w}×{h}");
        }
    }

    #[test]
    fn rounding_matches_f32_round() {
        for k in 0..200_000u32 {
            let x = k as f32 * 0.001_27;
            assert_eq!(round_nonneg(x), x.round() as i32, "{x}");
        }
        for x in [0.5f32, 1.5, 2.5, 0.499_999_97, 254.5, 254.499_98] {
            assert_eq!(round_nonneg(x), x.round() as i32, "{x}");
        }
    }

    #[test]
    fn vertical_blend_rounds_each_channel_before_the_grey_sum() {
        // 4 rows → 3: row 1 of the output sits halfway between source rows 1 and 2.
        let img = image::RgbImage::from_fn(2, 4, |_, y| image::Rgb([[0, 10, 11, 50][y as usize], 0, 0]));
        let g = resized_gray(&img, 2, 3);
        // red (10 + 11) / 2 = 10.5 → 11 before the grey weights: (11·4899 + 8192) >> 14 = 3.
        assert_eq!(g.data[2], ((11 * 4899 + 8192) >> 14) as u8);
        let png_dir = tempfile::tempdir().unwrap();
        let path = png_dir.path().join("f.png");
        img.save(&path).unwrap();
        let mut r = FrameReader::default();
        let (rgb, w, h) = r.read_rgb(&path).unwrap();
        assert_eq!((rgb, w, h), (img.as_raw().as_slice(), 2, 4));
    }
}
