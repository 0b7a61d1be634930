//! Canonical image preprocessing: every frame becomes 640×480 (aspect ratio not kept), PSG as JPEG quality 95,
//! PVSG and Action Genome as PNG; an image already 640×480 is kept pixel for pixel.
//!
//! The resize is bilinear ([`image::imageops::FilterType::Triangle`], whose support widens when shrinking, as
//! PIL's does). It is not bit-identical to PIL's `Image.resize(…, BILINEAR)`: PIL works in fixed point with its
//! own rounding, so a few pixels differ in their last bits; the boxes, which come from the annotations, do not
//! depend on it. Files are written atomically (a temporary name, then a rename), so an interrupted run never
//! leaves a half-written image behind.

use crate::scale::{TARGET_H, TARGET_W};
use image::{imageops::FilterType, DynamicImage, RgbImage};
use std::path::Path;

/// The output encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Jpeg95,
    Png,
}

impl Encoding {
    pub fn extension(self) -> &'static str {
        match self {
            Encoding::Jpeg95 => "jpg",
            Encoding::Png => "png",
        }
    }
}

/// The image on the 640×480 canvas.
pub fn to_canvas(img: &DynamicImage) -> RgbImage {
    let rgb = img.to_rgb8();
    if rgb.dimensions() == (TARGET_W, TARGET_H) {
        return rgb;
    }
    image::imageops::resize(&rgb, TARGET_W, TARGET_H, FilterType::Triangle)
}

/// Encodes an image.
pub fn encode(img: &RgbImage, enc: Encoding) -> Result<Vec<u8>, image::ImageError> {
    let mut buf = std::io::Cursor::new(Vec::new());
    match enc {
        Encoding::Png => img.write_to(&mut buf, image::ImageFormat::Png)?,
        Encoding::Jpeg95 => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 95).encode_image(img)?,
    }
    Ok(buf.into_inner())
}

/// Writes `bytes` to `path` atomically, creating parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Decodes `bytes`, resizes to the canvas, writes `out` in `enc`; returns the source size `(w, h)`.
pub fn process(bytes: &[u8], out: &Path, enc: Encoding) -> Result<(u32, u32), String> {
    let img = image::load_from_memory(bytes).map_err(|e| format!("cannot decode image: {e}"))?;
    let size = (img.width(), img.height());
    let data = encode(&to_canvas(&img), enc).map_err(|e| format!("cannot encode {}: {e}", out.display()))?;
    write_atomic(out, &data).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_and_write() {
        let dir = tempfile::tempdir().unwrap();
        let src = RgbImage::from_fn(320, 240, |x, _| image::Rgb([if x < 160 { 0 } else { 255 }, 10, 20]));
        let png = encode(&src, Encoding::Png).unwrap();
        let out = dir.path().join("a/b.png");
        assert_eq!(process(&png, &out, Encoding::Png).unwrap(), (320, 240));
        let back = image::open(&out).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (640, 480));
        assert_eq!((back.get_pixel(0, 0).0, back.get_pixel(639, 479).0), ([0, 10, 20], [255, 10, 20]));
        let jpg = dir.path().join("c.jpg");
        process(&png, &jpg, Encoding::Jpeg95).unwrap();
        let j = image::open(&jpg).unwrap();
        assert_eq!((j.width(), j.height()), (640, 480));
        assert_eq!(process(b"junk", &jpg, Encoding::Png).unwrap_err().split(':').next(), Some("cannot decode image"));
    }
}
