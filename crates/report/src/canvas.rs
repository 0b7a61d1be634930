//! Small drawing helpers on an RGB image: pixels, filled and outlined rectangles, thick lines clipped to the
//! image, arrows with a filled head, and text in the built-in [`crate::font`]. Coordinates are `f64` pixels from
//! untrusted model output: non-finite or huge values are clipped, never looped over.

use crate::font;
use image::{Rgb, RgbImage};

/// Sets a pixel when it lies inside the image.
pub fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && x < i64::from(img.width()) && y < i64::from(img.height()) {
        img.put_pixel(x as u32, y as u32, c);
    }
}

/// Clamps a coordinate to `[-pad, limit + pad]` (NaN to 0), so loops over it stay small.
fn clamp(v: f64, limit: u32, pad: i64) -> i64 {
    if v.is_nan() {
        return 0;
    }
    (v.round() as i64).clamp(-pad, i64::from(limit) + pad)
}

/// Fills the rectangle with corners (`x0`, `y0`) and (`x1`, `y1`), both included.
pub fn fill_rect(img: &mut RgbImage, x0: f64, y0: f64, x1: f64, y1: f64, c: Rgb<u8>) {
    let (w, h) = (img.width(), img.height());
    let (xa, xb) = (clamp(x0.min(x1), w, 1), clamp(x0.max(x1), w, 1));
    let (ya, yb) = (clamp(y0.min(y1), h, 1), clamp(y0.max(y1), h, 1));
    for y in ya..=yb {
        for x in xa..=xb {
            put(img, x, y, c);
        }
    }
}

/// The outline of a rectangle, `thickness` pixels wide, growing inwards from the given edges.
pub fn rect(img: &mut RgbImage, x0: f64, y0: f64, x1: f64, y1: f64, thickness: u32, c: Rgb<u8>) {
    let t = f64::from(thickness.max(1)) - 1.0;
    let (xa, xb, ya, yb) = (x0.min(x1), x0.max(x1), y0.min(y1), y0.max(y1));
    fill_rect(img, xa, ya, xb, ya + t, c);
    fill_rect(img, xa, yb - t, xb, yb, c);
    fill_rect(img, xa, ya, xa + t, yb, c);
    fill_rect(img, xb - t, ya, xb, yb, c);
}

/// Clips the segment to `[lo, hi]²`-style bounds (Liang–Barsky); `None` when nothing is left.
fn clip(a: (f64, f64), b: (f64, f64), lo: (f64, f64), hi: (f64, f64)) -> Option<((f64, f64), (f64, f64))> {
    if ![a.0, a.1, b.0, b.1].iter().all(|v| v.is_finite()) {
        return None;
    }
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [(-dx, a.0 - lo.0), (dx, hi.0 - a.0), (-dy, a.1 - lo.1), (dy, hi.1 - a.1)] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    (t0 <= t1).then_some(((a.0 + t0 * dx, a.1 + t0 * dy), (a.0 + t1 * dx, a.1 + t1 * dy)))
}

/// A line `thickness` pixels wide (a square brush stepped along the segment).
pub fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), thickness: u32, c: Rgb<u8>) {
    let pad = f64::from(thickness);
    let hi = (f64::from(img.width()) + pad, f64::from(img.height()) + pad);
    let Some((a, b)) = clip(a, b, (-pad, -pad), hi) else { return };
    let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil().max(1.0) as i64;
    let half = f64::from(thickness.max(1) - 1) / 2.0;
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        let (x, y) = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
        fill_rect(img, x - half, y - half, x + half, y + half, c);
    }
}

/// An arrow from `a` to `b` with a filled triangular head of length `head` at `b`.
pub fn arrow(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), thickness: u32, head: f64, c: Rgb<u8>) {
    line(img, a, b, thickness, c);
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = (dx * dx + dy * dy).sqrt();
    if !(len.is_finite() && len > 0.0) {
        return;
    }
    let (ux, uy) = (dx / len, dy / len);
    let base = (b.0 - ux * head, b.1 - uy * head);
    let (px, py) = (-uy * head * 0.5, ux * head * 0.5);
    // Fan of lines from the tip to points along the base: a filled triangle.
    let n = (head.ceil() as i64).clamp(1, 64) * 2;
    for i in 0..=n {
        let s = i as f64 / n as f64 * 2.0 - 1.0;
        line(img, b, (base.0 + px * s, base.1 + py * s), 1, c);
    }
}

/// Width and height in pixels of `text` drawn at `scale`.
pub fn text_size(text: &str, scale: u32) -> (u32, u32) {
    let n = text.chars().count() as u32;
    let w = if n == 0 { 0 } else { (n * font::ADVANCE - 1) * scale };
    (w, font::HEIGHT * scale)
}

/// Draws `text` with its top-left corner at (`x`, `y`), each font pixel a `scale`×`scale` square, on a
/// background box (one font pixel of padding) when `bg` is given.
pub fn text(img: &mut RgbImage, x: f64, y: f64, text: &str, scale: u32, fg: Rgb<u8>, bg: Option<Rgb<u8>>) {
    let scale = scale.max(1);
    let (w, h) = text_size(text, scale);
    if let Some(bg) = bg {
        let pad = f64::from(scale);
        fill_rect(img, x - pad, y - pad, x + f64::from(w) + pad - 1.0, y + f64::from(h) + pad - 1.0, bg);
    }
    let (x0, y0) = (clamp(x, img.width(), 1), clamp(y, img.height(), 1));
    for (i, ch) in text.chars().enumerate() {
        let gx = x0 + i64::from(i as u32 * font::ADVANCE * scale);
        if gx > i64::from(img.width()) {
            break;
        }
        for row in 0..font::HEIGHT {
            for col in 0..font::WIDTH {
                if !font::pixel(ch, col, row) {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        put(img, gx + i64::from(col * scale + dx), y0 + i64::from(row * scale + dy), fg);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED: Rgb<u8> = Rgb([255, 0, 0]);

    fn count(img: &RgbImage, c: Rgb<u8>) -> usize {
        img.pixels().filter(|p| **p == c).count()
    }

    #[test]
    fn rectangles_lines_and_text() {
        let mut img = RgbImage::new(20, 10);
        rect(&mut img, 2.0, 2.0, 6.0, 5.0, 1, RED);
        // Perimeter of a 5×4 box.
        assert_eq!(count(&img, RED), 14);
        assert_eq!((img[(2, 2)], img[(6, 5)], img[(4, 3)]), (RED, RED, Rgb([0, 0, 0])));
        let mut img = RgbImage::new(20, 10);
        line(&mut img, (0.0, 0.0), (9.0, 9.0), 1, RED);
        assert_eq!(count(&img, RED), 10);
        assert!((0..10).all(|i| img[(i, i)] == RED));
        // Hostile coordinates: nothing drawn, nothing hangs.
        let mut img = RgbImage::new(20, 10);
        line(&mut img, (f64::NAN, 0.0), (1e300, 5.0), 3, RED);
        rect(&mut img, -1e300, f64::NAN, 1e300, f64::INFINITY, 2, RED);
        arrow(&mut img, (5.0, 5.0), (5.0, 5.0), 2, 6.0, RED);
        let mut img = RgbImage::new(20, 10);
        text(&mut img, 0.0, 0.0, "1", 1, RED, None);
        assert_eq!(count(&img, RED), 10, "the glyph `1` has 10 pixels");
        assert_eq!(text_size("ab", 2), (22, 14));
    }

    #[test]
    fn arrows_have_a_filled_head() {
        let mut img = RgbImage::new(30, 30);
        arrow(&mut img, (2.0, 15.0), (25.0, 15.0), 1, 8.0, RED);
        // The head spans ±4 pixels vertically just before the tip.
        assert_eq!((img[(18, 12)], img[(18, 18)], img[(18, 10)]), (RED, RED, Rgb([0, 0, 0])));
    }
}
