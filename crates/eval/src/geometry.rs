//! Box geometry shared by rewards, evaluation and reports: IoU, GIoU and the normalised L1 distance, exactly as the
//! reference computes them (integer pixels, no `+1`, widths clamped at 0).

/// Intersection over union of two `x1,y1,x2,y2` boxes; 0 when the union is not positive.
#[inline]
pub fn iou(a: [i64; 4], b: [i64; 4]) -> f64 {
    let (inter, union) = inter_union(a, b);
    if union <= 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

#[inline]
fn area(b: [i64; 4]) -> i128 {
    (b[2] as i128 - b[0] as i128).max(0) * (b[3] as i128 - b[1] as i128).max(0)
}

/// `(intersection, union)` areas, in `i128` so that any `i64` coordinates are exact.
#[inline]
fn inter_union(a: [i64; 4], b: [i64; 4]) -> (i128, i128) {
    let iw = (a[2].min(b[2]) as i128 - a[0].max(b[0]) as i128).max(0);
    let ih = (a[3].min(b[3]) as i128 - a[1].max(b[1]) as i128).max(0);
    let inter = iw * ih;
    (inter, area(a) + area(b) - inter)
}

/// Generalised IoU: `IoU − (C − union)/C` with C the enclosing box; equals IoU when C has no area, and 0 when the
/// union is not positive (as the reference).
#[inline]
pub fn giou(a: [i64; 4], b: [i64; 4]) -> f64 {
    let (inter, union) = inter_union(a, b);
    if union <= 0 {
        return 0.0;
    }
    let iou = inter as f64 / union as f64;
    let c = [a[0].min(b[0]), a[1].min(b[1]), a[2].max(b[2]), a[3].max(b[3])];
    let area_c = area(c);
    if area_c <= 0 {
        iou
    } else {
        iou - (area_c - union) as f64 / area_c as f64
    }
}

/// `|Δx1|/W + |Δy1|/H + |Δx2|/W + |Δy2|/H` — a sum in `[0, 4]` for boxes on the canvas, not a mean.
#[inline]
pub fn l1_normalised(a: [i64; 4], b: [i64; 4], width: u32, height: u32) -> f64 {
    let w = (width as f64).max(1.0);
    let h = (height as f64).max(1.0);
    let d = |i: usize| (a[i] as f64 - b[i] as f64).abs();
    d(0) / w + d(1) / h + d(2) / w + d(3) / h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        assert_eq!(iou([0, 0, 10, 10], [0, 0, 10, 10]), 1.0);
        assert_eq!(iou([0, 0, 10, 10], [5, 0, 15, 10]), 50.0 / 150.0);
        assert_eq!(iou([0, 0, 10, 10], [20, 20, 30, 30]), 0.0);
        assert_eq!(iou([5, 5, 5, 5], [5, 5, 5, 5]), 0.0, "empty union");
        assert_eq!(giou([0, 0, 10, 10], [20, 0, 30, 10]), 0.0 - 10.0 * 10.0 / 300.0);
        assert_eq!(giou([0, 0, 10, 10], [0, 0, 10, 10]), 1.0);
        assert_eq!(l1_normalised([0, 0, 640, 480], [64, 48, 640, 480], 640, 480), 0.2);
        // Python's float division of the same integers gives exactly these values.
        assert_eq!(iou([100, 100, 300, 400], [110, 90, 310, 400]), 57000.0 / 65000.0);
    }
}
