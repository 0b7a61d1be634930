//! The few numeric behaviours of NumPy and Python that the reference's figures depend on, reproduced bit for bit:
//! NumPy's pairwise summation (`np.sum`, `np.mean`, `np.std`, `np.median` on float64), Python's `round(x, n)`,
//! `max`/`min` on two floats (NaN-sensitive argument order) and the `time_sec` block of the evaluation summary.
//!
//! Summing in a different order changes the last bits of a mean over hundreds of rows; reproducing the order keeps
//! parity exact instead of "within a tolerance".

use serde::Serialize;

/// NumPy's block size for pairwise summation (`PW_BLOCKSIZE`).
const PW_BLOCK: usize = 128;

/// `np.sum` of a contiguous float64 array: NumPy's pairwise summation (eight accumulators per block of ≤ 128
/// values, halves split on multiples of 8).
pub fn np_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= PW_BLOCK {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let full = n - n % 8;
        let mut i = 8;
        while i < full {
            for (j, acc) in r.iter_mut().enumerate() {
                *acc += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[full..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        np_sum(&a[..n2]) + np_sum(&a[n2..])
    }
}

/// `float(np.mean(a))`; `None` for an empty slice (NumPy returns NaN with a warning).
pub fn np_mean(a: &[f64]) -> Option<f64> {
    (!a.is_empty()).then(|| np_sum(a) / a.len() as f64)
}

/// `np.std(a, ddof=1)` for `a.len() >= 2`.
pub fn np_std_ddof1(a: &[f64]) -> Option<f64> {
    let mean = np_mean(a)?;
    if a.len() < 2 {
        return None;
    }
    let sq: Vec<f64> = a.iter().map(|&x| (x - mean) * (x - mean)).collect();
    Some((np_sum(&sq) / (a.len() - 1) as f64).sqrt())
}

/// `np.median(a)`: the middle value, or the NumPy mean of the two middle values. NaN sorts last, as in NumPy.
pub fn np_median(a: &[f64]) -> Option<f64> {
    if a.is_empty() {
        return None;
    }
    let mut s = a.to_vec();
    s.sort_by(f64::total_cmp);
    if let Some(k) = s.iter().position(|x| x.is_nan()) {
        // NumPy's median of data containing NaN is NaN.
        return Some(s[k]);
    }
    let m = s.len() / 2;
    Some(if s.len() % 2 == 1 { s[m] } else { np_sum(&s[m - 1..=m]) / 2.0 })
}

/// Python's `round(x, ndigits)`: correctly rounded, ties to even on the exact binary value.
pub fn py_round(x: f64, ndigits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.ndigits$}").parse().unwrap_or(x)
}

/// Python's `max(a, b)`: `b` only when `b > a` (so a NaN in first position wins, in second loses).
#[inline]
pub fn py_max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// Python's `min(a, b)`: `b` only when `b < a`.
#[inline]
pub fn py_min(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

/// The summary's `time_sec` block (`stats_with_phys`): count, mean, sample standard deviation (n − 1; 0.0 for
/// one value), median and the `"(mean ± sigma) s"` string with three decimals; `null`s and `"N/A"` when empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeStats {
    #[serde(rename = "N")]
    pub n: usize,
    pub mean: Option<f64>,
    pub sigma: Option<f64>,
    pub median: Option<f64>,
    pub phys: String,
}

impl TimeStats {
    /// Statistics of the given generation times (the caller keeps only positive numbers, as the reference does).
    pub fn of(times: &[f64]) -> TimeStats {
        let Some(mean) = np_mean(times) else {
            return TimeStats { n: 0, mean: None, sigma: None, median: None, phys: "N/A".to_string() };
        };
        let sigma = np_std_ddof1(times).unwrap_or(0.0);
        TimeStats {
            n: times.len(),
            mean: Some(mean),
            sigma: Some(sigma),
            median: np_median(times),
            phys: format!("({mean:.3} \u{b1} {sigma:.3}) s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_matches_numpy_order() {
        // 0.1 summed 10 times: NumPy's 8-accumulator block gives 1.0 exactly where a left fold gives
        // 0.9999999999999999.
        let a = [0.1; 10];
        assert_eq!(a.iter().sum::<f64>(), 0.9999999999999999);
        assert_eq!(np_sum(&a), 1.0);
        assert_eq!(np_sum(&[]), 0.0);
        assert_eq!(np_sum(&[1.0, 2.0, 3.0]), 6.0);
        // Values checked with NumPy 2.4: np.sum([0.1] * 300) == 29.999999999999996.
        assert_eq!(np_sum(&[0.1; 300]), 29.999999999999996);
        assert_eq!(np_mean(&[]), None);
    }

    #[test]
    fn time_stats_like_the_reference() {
        let t = TimeStats::of(&[1.0, 2.0, 4.0]);
        assert_eq!(t.n, 3);
        assert_eq!(t.mean, Some(7.0 / 3.0));
        assert_eq!(t.median, Some(2.0));
        assert_eq!(
            t.sigma,
            Some(
                (((1.0f64 - 7.0 / 3.0).powi(2) + (2.0f64 - 7.0 / 3.0).powi(2) + (4.0f64 - 7.0 / 3.0).powi(2)) / 2.0)
                    .sqrt()
            )
        );
        assert_eq!(t.phys, "(2.333 \u{b1} 1.528) s");
        let one = TimeStats::of(&[1.25]);
        assert_eq!((one.sigma, one.median, one.phys.as_str()), (Some(0.0), Some(1.25), "(1.250 \u{b1} 0.000) s"));
        let none = TimeStats::of(&[]);
        assert_eq!((none.n, none.mean, none.phys.as_str()), (0, None, "N/A"));
        assert_eq!(TimeStats::of(&[1.0, 4.0]).median, Some(2.5));
    }

    #[test]
    fn python_rounding_and_min_max() {
        assert_eq!(py_round(2.5, 0), 2.0);
        assert_eq!(py_round(0.2500005, 6), 0.250001);
        assert_eq!(py_round(0.1234565, 6), 0.123456, "the binary value lies below the tie");
        assert_eq!(py_round(0.8571428571428571, 6), 0.857143);
        assert!(py_max(f64::NAN, 1.0).is_nan());
        assert_eq!(py_max(1.0, f64::NAN), 1.0);
        assert_eq!(py_min(1.0, f64::NAN), 1.0);
        assert!(py_min(f64::NAN, 1.0).is_nan());
    }
}
