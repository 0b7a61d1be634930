//! Box scaling onto the 640×480 canvas every dataset is resized to.
//!
//! Each coordinate becomes `round(v · s)` with `s = 640 / W` (or `480 / H`) and Python's round-half-to-even
//! ([`f64::round_ties_even`]), exactly as the reference's `int(round(v * s))`. The aspect ratio is not kept.
//!
//! Deliberate difference: the reference scales PSG boxes only when they parse with `int()`, so an integral float
//! written as `12.0` is silently left unscaled (and then dropped by the cleaner); our readers accept integral
//! floats as the same pixel and always scale. Non-finite results are an error instead of Python's `ValueError`.

use sgvlm_graph::{AgGraph, BBox, TripletGraph};

/// The output canvas width.
pub const TARGET_W: u32 = 640;
/// The output canvas height.
pub const TARGET_H: u32 = 480;

/// Per-axis scale factors from an `(w, h)` source image to 640×480.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub sx: f64,
    pub sy: f64,
}

impl Scale {
    /// The factors for a source of `w × h` pixels; a zero side keeps that axis unscaled (as the reference does
    /// for PVSG/AG, whose guards avoid the division).
    pub fn to_canvas(w: u32, h: u32) -> Scale {
        let f = |target: u32, side: u32| if side == 0 { 1.0 } else { target as f64 / side as f64 };
        Scale { sx: f(TARGET_W, w), sy: f(TARGET_H, h) }
    }

    /// Whether this is the identity.
    pub fn is_identity(&self) -> bool {
        self.sx == 1.0 && self.sy == 1.0
    }
}

/// `round_half_even(v · s)` as an integer pixel, or `None` when the product is not finite or out of `i64` range.
pub fn scale_coord(v: f64, s: f64) -> Option<i64> {
    let r = (v * s).round_ties_even();
    // i64::MAX as f64 rounds up to 2^63, so the upper bound is exclusive.
    (r.is_finite() && r >= i64::MIN as f64 && r < i64::MAX as f64).then_some(r as i64)
}

/// Python's `int(round(v))` on a float box coordinate (AG's xywh → xyxy conversion rounds first).
pub fn round_coord(v: f64) -> Option<i64> {
    scale_coord(v, 1.0)
}

/// Scales a box given in float source pixels.
pub fn scale_box_f64(b: [f64; 4], s: Scale) -> Option<BBox> {
    Some(BBox::new(
        scale_coord(b[0], s.sx)?,
        scale_coord(b[1], s.sy)?,
        scale_coord(b[2], s.sx)?,
        scale_coord(b[3], s.sy)?,
    ))
}

/// Scales an integer box.
pub fn scale_box(b: BBox, s: Scale) -> Option<BBox> {
    scale_box_f64([b.x1 as f64, b.y1 as f64, b.x2 as f64, b.y2 as f64], s)
}

/// A coordinate that does not survive scaling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("object {id}: box {bbox:?} cannot be scaled to the canvas")]
pub struct ScaleError {
    pub id: u32,
    pub bbox: [i64; 4],
}

/// Scales every object box of a triplet graph in place.
pub fn scale_triplet(g: &mut TripletGraph, s: Scale) -> Result<(), ScaleError> {
    for o in &mut g.objects {
        o.bbox = scale_box(o.bbox, s).ok_or(ScaleError { id: o.id, bbox: o.bbox.to_array() })?;
    }
    Ok(())
}

/// Scales every object box of an AG graph in place.
pub fn scale_ag(g: &mut AgGraph, s: Scale) -> Result<(), ScaleError> {
    for o in &mut g.objects {
        o.bbox = scale_box(o.bbox, s).ok_or(ScaleError { id: o.id, bbox: o.bbox.to_array() })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_to_even() {
        assert_eq!(scale_coord(2.5, 1.0), Some(2));
        assert_eq!(scale_coord(3.5, 1.0), Some(4));
        assert_eq!(scale_coord(-0.5, 1.0), Some(0));
        // 1280×960 → ×0.5: 5 → 2.5 → 2, 7 → 3.5 → 4.
        let s = Scale::to_canvas(1280, 960);
        assert_eq!(scale_box(BBox::new(5, 7, 1279, 959), s), Some(BBox::new(2, 4, 640, 480)));
        assert_eq!(scale_coord(f64::NAN, 1.0), None);
        assert_eq!(scale_coord(1e300, 1e10), None);
    }

    #[test]
    fn factors() {
        assert_eq!(Scale::to_canvas(480, 360), Scale { sx: 640.0 / 480.0, sy: 480.0 / 360.0 });
        assert!(Scale::to_canvas(640, 480).is_identity());
        assert!(Scale::to_canvas(0, 0).is_identity());
        // 480×360 → 4/3: 3 → 4, 359 → 478.67 → 479.
        assert_eq!(scale_box(BBox::new(3, 3, 479, 359), Scale::to_canvas(480, 360)), Some(BBox::new(4, 4, 639, 479)));
    }
}
