use super::*;

#[test]
fn singular_vectors_are_orthonormal_and_span_the_top_subspace() {
    // 6 frames × 4 features, rank 2 plus a little noise.
    let f: Vec<f64> = (0..6)
        .flat_map(|i| {
            let (a, b) = (i as f64, (i * i % 5) as f64);
            [a + 1.0, b, a - b, 0.01 * ((i * 7) % 3) as f64]
        })
        .collect();
    for (n, d, r) in [(6, 4, 2), (4, 6, 2)] {
        // The 4×6 case reads the first 24 numbers as 4 frames of 6 features (the other branch of the solver).
        let u = left_singular(&f[..n * d], n, d, r);
        for a in 0..r {
            for b in 0..r {
                let dot: f64 = (0..n).map(|i| u[i * r + a] * u[i * r + b]).sum();
                assert!((dot - f64::from(u8::from(a == b))).abs() < 1e-9, "{n}x{d} {a}{b} {dot}");
            }
        }
        // F Fᵀ u = σ² u for each column.
        for c in 0..r {
            let col: Vec<f64> = (0..n).map(|i| u[i * r + c]).collect();
            let ftu: Vec<f64> = (0..d).map(|k| (0..n).map(|i| f[i * d + k] * col[i]).sum()).collect();
            let ffu: Vec<f64> = (0..n).map(|i| (0..d).map(|k| f[i * d + k] * ftu[k]).sum()).collect();
            let lambda: f64 = ffu.iter().zip(&col).map(|(a, b)| a * b).sum();
            assert!(ffu.iter().zip(&col).all(|(a, b)| (a - lambda * b).abs() < 1e-8));
        }
    }
}

#[test]
fn rect_maxvol_by_hand() {
    // Pivots are the identity rows; growth adds (0.5, 0.5) (‖·‖² 0.5 > 0.23²), after which the rest fall below.
    let a = [1.0, 0.0, 0.0, 1.0, 0.1, 0.1, 0.5, 0.5, 0.01, 0.0];
    assert_eq!(rect_maxvol(&a, 5, 2, 0.23), vec![0, 1, 3]);
    // A lower tolerance also takes (0.1, 0.1): 0.02 − (2/3)·0.01 = 0.0133 > 0.1².
    assert_eq!(rect_maxvol(&a, 5, 2, 0.1), vec![0, 1, 3, 2]);
}

#[test]
fn square_maxvol_swaps_to_the_largest_volume() {
    // Partial pivoting picks row 1 (|2| in column 0), then row 2 (|−1.4| after elimination); every other row of
    // C = A·A[piv]⁻¹ is then within 1.05, so no swap follows.
    let a = [1.0, 0.0, 2.0, 2.0, 1.5, 0.1, 0.2, 0.3];
    let (piv, c) = maxvol(&a, 4, 2);
    let mut p = piv.clone();
    p.sort_unstable();
    assert_eq!(p, vec![1, 2]);
    assert!(c.iter().all(|v| v.abs() <= 1.05 + 1e-12), "{c:?}");
}

#[test]
fn select_keeps_an_even_count() {
    let a = [1.0, 0.0, 0.0, 1.0, 0.1, 0.1, 0.5, 0.5, 0.01, 0.0];
    // Rows as 2-d embeddings: r = min(8, 2, 4) = 2.
    let s = select(&a, 5, 2, RANK, TOL);
    assert!(s.len() % 2 == 0 && !s.is_empty(), "{s:?}");
    assert_eq!(select(&[1.0, 2.0], 1, 2, RANK, TOL), vec![0]);
}
