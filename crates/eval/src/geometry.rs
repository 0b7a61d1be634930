//! Box geometry shared by rewards, evaluation and reports: IoU, GIoU and the normalised L1 distance, exactly as the
//! reference computes them (integer pixels, no `+1`, widths clamped at 0).

/// Intersection over union of two `x1,y1,x2,y2` boxes; 0 when the union is not positive.
#[inline]
pub fn iou(a: [i64; 4], b: [i64; 4]) -> f64 {
    if small(a, b) {
        let (inter, union) = inter_union_i64(a, b);
        return if union <= 0 { 0.0 } else { inter as f64 / union as f64 };
    }
    iou_wide(a, b)
}

/// Generalised IoU: `IoU − (C − union)/C` with C the enclosing box; equals IoU when C has no area, and 0 when the
/// union is not positive (as the reference).
#[inline]
pub fn giou(a: [i64; 4], b: [i64; 4]) -> f64 {
    giou_boxes(&GeoBox::new(a), &GeoBox::new(b))
}

/// A box with what [`giou`] computes per box: whether its coordinates are within the `i64` fast path's bound, and
/// (if so) its area. A cost matrix computes it once per box instead of once per pair.
#[derive(Debug, Clone, Copy)]
pub struct GeoBox {
    pub b: [i64; 4],
    small: bool,
    area: i64,
}

impl GeoBox {
    #[inline]
    pub fn new(b: [i64; 4]) -> Self {
        let small = b.iter().all(|&v| v.unsigned_abs() < SMALL as u64);
        GeoBox { b, small, area: if small { area_i64(b) } else { 0 } }
    }
}

/// [`giou`] of two [`GeoBox`]es (the same value: `giou` is this on boxes prepared on the spot).
#[inline]
pub fn giou_boxes(p: &GeoBox, q: &GeoBox) -> f64 {
    let (a, b) = (p.b, q.b);
    if !(p.small && q.small) {
        return giou_wide(a, b);
    }
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0);
    let inter = iw * ih;
    let union = p.area + q.area - inter;
    if union <= 0 {
        return 0.0;
    }
    let iou = inter as f64 / union as f64;
    let area_c = area_i64([a[0].min(b[0]), a[1].min(b[1]), a[2].max(b[2]), a[3].max(b[3])]);
    if area_c <= 0 {
        iou
    } else {
        iou - (area_c - union) as f64 / area_c as f64
    }
}

/// Bound (exclusive) on coordinate magnitudes for the `i64` fast path: differences stay below 2³¹, areas below 2⁶², and sums of two
/// areas below 2⁶³, so the `i64` arithmetic is exact and equals the `i128` one (both convert the same integer to
/// `f64`). Every box on a real canvas is far inside it.
const SMALL: i64 = 1 << 30;

#[inline]
fn small(a: [i64; 4], b: [i64; 4]) -> bool {
    a.iter().chain(&b).all(|&v| v.unsigned_abs() < SMALL as u64)
}

#[inline]
fn area_i64(b: [i64; 4]) -> i64 {
    (b[2] - b[0]).max(0) * (b[3] - b[1]).max(0)
}

#[inline]
fn inter_union_i64(a: [i64; 4], b: [i64; 4]) -> (i64, i64) {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0);
    let inter = iw * ih;
    (inter, area_i64(a) + area_i64(b) - inter)
}

/// [`iou`] in 128-bit arithmetic: exact for any `i64` coordinates whose union area fits in a `u128` (any box
/// up to 2^63 pixels a side); beyond that the union is summed in `f64` (never an overflow panic).
fn iou_wide(a: [i64; 4], b: [i64; 4]) -> f64 {
    let (inter, union) = inter_union(a, b);
    if union.is_zero() {
        0.0
    } else {
        inter as f64 / union.to_f64()
    }
}

/// A union area: exact, or (past `u128`) an `f64` sum.
#[derive(Clone, Copy)]
enum Area {
    Exact(u128),
    Approx(f64),
}

impl Area {
    fn is_zero(self) -> bool {
        matches!(self, Area::Exact(0))
    }
    fn to_f64(self) -> f64 {
        match self {
            Area::Exact(v) => v as f64,
            Area::Approx(v) => v,
        }
    }
}

/// A side length clamped at 0; the difference of two `i64` always fits in a `u64`.
#[inline]
fn side(lo: i64, hi: i64) -> u128 {
    (hi as i128 - lo as i128).max(0) as u128
}

#[inline]
fn area(b: [i64; 4]) -> u128 {
    side(b[0], b[2]) * side(b[1], b[3])
}

/// `(intersection, union)` areas in 128-bit integers (each area fits: at most (2^64 − 1)^2).
#[inline]
fn inter_union(a: [i64; 4], b: [i64; 4]) -> (u128, Area) {
    let inter = side(a[0].max(b[0]), a[2].min(b[2])) * side(a[1].max(b[1]), a[3].min(b[3]));
    let (aa, ab) = (area(a), area(b));
    // inter ≤ min(aa, ab), so `aa + (ab − inter)` never goes below 0.
    let union = match aa.checked_add(ab - inter) {
        Some(u) => Area::Exact(u),
        None => Area::Approx(aa as f64 + (ab - inter) as f64),
    };
    (inter, union)
}

/// [`giou`] in 128-bit arithmetic (see [`iou_wide`]).
fn giou_wide(a: [i64; 4], b: [i64; 4]) -> f64 {
    let (inter, union) = inter_union(a, b);
    if union.is_zero() {
        return 0.0;
    }
    let iou = inter as f64 / union.to_f64();
    let c = [a[0].min(b[0]), a[1].min(b[1]), a[2].max(b[2]), a[3].max(b[3])];
    let area_c = area(c);
    if area_c == 0 {
        return iou;
    }
    // The enclosing box covers the union, so `area_c ≥ union`.
    let gap = match union {
        Area::Exact(u) => area_c.saturating_sub(u) as f64,
        Area::Approx(u) => area_c as f64 - u,
    };
    iou - gap / area_c as f64
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
    use proptest::prelude::*;

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
        // Beyond the fast path's bound the exact i128 path answers.
        let big = 1i64 << 40;
        assert_eq!(iou([0, 0, big, big], [0, 0, big, big / 2]), 0.5);
        assert_eq!(giou([-big, 0, 0, 1], [0, 0, big, 1]), 0.0);
    }

    fn coord() -> impl Strategy<Value = i64> {
        prop_oneof![-5i64..700, -SMALL - 2..-SMALL + 2, SMALL - 2..SMALL + 2, any::<i64>()]
    }

    proptest! {
        /// The i64 fast path equals the exact i128 path wherever it is taken.
        #[test]
        fn fast_path_equals_wide(a in proptest::array::uniform4(coord()), b in proptest::array::uniform4(coord())) {
            prop_assert_eq!(iou(a, b).to_bits(), iou_wide(a, b).to_bits());
            prop_assert_eq!(giou(a, b).to_bits(), giou_wide(a, b).to_bits());
        }
    }
}
