//! IoU on the evaluation parser's float boxes, operation for operation as the reference's `bbox_iou`: Python's
//! two-argument `max`/`min` (which decide what a NaN does), widths clamped with `max(0, w)`, `(area_a + area_b) −
//! inter` as the union and 0 when the union is not positive.
//!
//! With finite coordinates this equals [`crate::geometry::iou`] on the same integers; it differs for float
//! coordinates and for `nan`/`inf`, which the evaluation parser accepts (`Infinity` as x2 gives an infinite area
//! and IoU 0; NaN can only come out when both boxes hold non-finite values).

use crate::pynum::{py_max, py_min};

/// `max(0, x)` with an integer 0 in first position: `x` only when `x > 0`.
#[inline]
fn clamp0(x: f64) -> f64 {
    py_max(0.0, x)
}

/// The reference's `bbox_iou(a, b)` (`a` is the ground-truth box, `b` the predicted one).
#[inline]
pub fn py_iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let ix1 = py_max(a[0], b[0]);
    let iy1 = py_max(a[1], b[1]);
    let ix2 = py_min(a[2], b[2]);
    let iy2 = py_min(a[3], b[3]);
    let inter = clamp0(ix2 - ix1) * clamp0(iy2 - iy1);
    let area_a = clamp0(a[2] - a[0]) * clamp0(a[3] - a[1]);
    let area_b = clamp0(b[2] - b[0]) * clamp0(b[3] - b[1]);
    let union = area_a + area_b - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::iou;

    #[test]
    fn equals_integer_iou_on_integer_boxes() {
        let boxes = [[100, 100, 300, 400], [110, 90, 310, 400], [0, 0, 10, 10], [5, 5, 5, 5], [20, 0, 30, 10]];
        for a in boxes {
            for b in boxes {
                let f = |x: [i64; 4]| x.map(|v| v as f64);
                assert_eq!(py_iou(f(a), f(b)), iou(a, b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn float_and_non_finite_coordinates() {
        assert_eq!(py_iou([0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.5]), 100.0 / 105.0);
        // An infinite side gives an infinite union: IoU 0.
        assert_eq!(py_iou([125.0, 234.0, 170.0, 300.0], [125.0, 234.0, 170.0, f64::INFINITY]), 0.0);
        // A NaN x2 in the prediction: min(gt_x2, nan) keeps gt_x2 and the predicted width clamps to 0, so the
        // union is area_gt − inter = 0 and the IoU 0.
        assert_eq!(py_iou([0.0, 0.0, 10.0, 10.0], [0.0, 0.0, f64::NAN, 10.0]), 0.0);
        // Here the union is positive: inter 50 over (100 + 0 − 50).
        assert_eq!(py_iou([0.0, 0.0, 10.0, 10.0], [5.0, 0.0, f64::NAN, 10.0]), 1.0);
        // Infinite on both sides: an infinite width times a zero height is NaN.
        let inf = f64::INFINITY;
        assert!(py_iou([0.0, 0.0, inf, 10.0], [0.0, 20.0, inf, 30.0]).is_nan());
    }
}
