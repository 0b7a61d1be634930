//! Qwen-VL image preprocessing: size rounding (`smart_resize`), rescale and normalise, temporal duplication and
//! the patch layout the vision tower reads.
//!
//! The output row order is merge-block major: for each `merge × merge` block (row-major over blocks), its patches
//! row-major; each row holds `channel, temporal, y, x` of one `P × P` patch. Images whose size `smart_resize`
//! changes are resampled with Pillow-exact bicubic ([`super::resize`]), as transformers' PIL backend does.

use crate::error::{Error, Result};

/// Preprocessor settings (`preprocessor_config.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessor {
    pub patch_size: usize,
    pub merge_size: usize,
    pub temporal_patch_size: usize,
    pub min_pixels: usize,
    pub max_pixels: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for ImageProcessor {
    /// Qwen3.5's released settings: patch 16, merge 2, temporal 2, 65,536..16,777,216 pixels, mean/std 0.5.
    fn default() -> Self {
        Self {
            patch_size: 16,
            merge_size: 2,
            temporal_patch_size: 2,
            min_pixels: 65_536,
            max_pixels: 16_777_216,
            mean: [0.5; 3],
            std: [0.5; 3],
        }
    }
}

/// One preprocessed image.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedImage {
    /// `[grid_t · grid_h · grid_w, C · T_p · P · P]`, row-major.
    pub pixel_values: Vec<f32>,
    /// `(grid_t, grid_h, grid_w)` in patches.
    pub grid_thw: [usize; 3],
}

/// Python's `round` (half to even) for non-negative values.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc() - 0.5).abs() < 1e-12 && r % 2.0 != 0.0 {
        r - 1.0
    } else {
        r
    }
}

impl ImageProcessor {
    /// Rounds `(height, width)` to multiples of `patch × merge` keeping the aspect ratio and the pixel count
    /// within `[min_pixels, max_pixels]` (transformers' `smart_resize`).
    pub fn smart_resize(&self, height: usize, width: usize) -> Result<(usize, usize)> {
        let f = (self.patch_size * self.merge_size) as f64;
        let (h, w) = (height as f64, width as f64);
        if height == 0 || width == 0 || h.max(w) / h.min(w) > 200.0 {
            return Err(Error::Input(format!("image {width}x{height}: aspect ratio must be below 200")));
        }
        let mut hb = round_half_even(h / f) * f;
        let mut wb = round_half_even(w / f) * f;
        if hb * wb > self.max_pixels as f64 {
            let beta = (h * w / self.max_pixels as f64).sqrt();
            hb = f.max((h / beta / f).floor() * f);
            wb = f.max((w / beta / f).floor() * f);
        } else if hb * wb < self.min_pixels as f64 {
            let beta = (self.min_pixels as f64 / (h * w)).sqrt();
            hb = (h * beta / f).ceil() * f;
            wb = (w * beta / f).ceil() * f;
        }
        Ok((hb as usize, wb as usize))
    }

    /// Preprocesses an RGB image (`height × width × 3` bytes, row-major), resizing it to the `smart_resize` size.
    pub fn preprocess_rgb(&self, rgb: &[u8], height: usize, width: usize) -> Result<ProcessedImage> {
        if rgb.len() != height * width * 3 {
            return Err(Error::Input(format!("{} bytes is not a {width}x{height} RGB image", rgb.len())));
        }
        let (rh, rw) = self.smart_resize(height, width)?;
        if (rh, rw) != (height, width) {
            let resized = super::resize::resize_bicubic_rgb(rgb, height, width, rh, rw);
            return self.preprocess_rgb(&resized, rh, rw);
        }
        let (p, m, tp) = (self.patch_size, self.merge_size, self.temporal_patch_size);
        let (gh, gw) = (height / p, width / p);
        let row_len = 3 * tp * p * p;
        let mut out = Vec::with_capacity(gh * gw * row_len);
        // (x/255 − mean)/std, as one fused multiply-add like transformers' fast processor.
        let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * self.std[c]));
        let shift: [f32; 3] = std::array::from_fn(|c| self.mean[c] / self.std[c]);
        for br in 0..gh / m {
            for bc in 0..gw / m {
                for ir in 0..m {
                    for ic in 0..m {
                        let (py0, px0) = ((br * m + ir) * p, (bc * m + ic) * p);
                        for c in 0..3 {
                            for _frame in 0..tp {
                                for y in 0..p {
                                    for x in 0..p {
                                        let v = rgb[((py0 + y) * width + px0 + x) * 3 + c] as f32;
                                        out.push(v * scale[c] - shift[c]);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(ProcessedImage { pixel_values: out, grid_thw: [1, gh, gw] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vga_gives_30_by_40_patches_and_300_tokens() {
        let p = ImageProcessor::default();
        assert_eq!(p.smart_resize(480, 640).unwrap(), (480, 640));
        let img = vec![128u8; 480 * 640 * 3];
        let out = p.preprocess_rgb(&img, 480, 640).unwrap();
        assert_eq!(out.grid_thw, [1, 30, 40]);
        assert_eq!(out.pixel_values.len(), 1200 * 1536);
        assert_eq!(crate::vision::merged_tokens(out.grid_thw, 2), 300);
        assert!((out.pixel_values[0] - (128.0 / 255.0 - 0.5) / 0.5).abs() < 1e-6);
    }

    #[test]
    fn smart_resize_rounds_and_bounds() {
        let p = ImageProcessor::default();
        assert_eq!(p.smart_resize(500, 700).unwrap(), (512, 704));
        // 16 px high, small: scaled up to reach min_pixels.
        let (h, w) = p.smart_resize(100, 100).unwrap();
        assert!(h * w >= 65_536 && h % 32 == 0 && w % 32 == 0);
        assert!(p.smart_resize(1, 300).is_err());
    }
}
