//! PSFR against the reference Python code run with OpenCV (`tools/make_psfr_fixture.py` wrote
//! `fixtures/psfr/reference.json`): the same synthetic frames, computed here from the same integer formula, give the
//! same keyframes, and the first frame's corners agree with OpenCV's (within a pixel, most of them; the resize
//! rounding and summation order may move a few — see `sgvlm_data::thin::psfr`).

use sgvlm_data::thin::psfr::{detect, gray, keyframes, Frame, PsfrParams};

const W: i64 = 640;
const H: i64 = 480;
const STEP: i64 = 16;

fn grid_value(i: i64, j: i64, seed: i64) -> i64 {
    let h = ((i * 73_856_093) ^ (j * 19_349_663) ^ (seed * 83_492_791)) as u64 & 0xFFFF_FFFF;
    // Python's integers do not overflow; only the low 32 bits of the product are kept, so wrapping is exact.
    ((h.wrapping_mul(2_654_435_761) & 0xFFFF_FFFF) >> 24) as i64
}

/// `frame(seed, shift)` of the generator script.
fn frame(seed: i64, shift: i64) -> image::RgbImage {
    let (gw, gh) = (W / STEP + 2, H / STEP + 2);
    let grids: Vec<Vec<i64>> = (0..3)
        .map(|c| (0..=gh).flat_map(|j| (0..=gw).map(move |i| grid_value(i, j, seed * 3 + c))).collect())
        .collect();
    image::RgbImage::from_fn(W as u32, H as u32, |x, y| {
        let xs = i64::from(x) - shift + STEP;
        let (i0, fx, j0, fy) = (xs / STEP, xs % STEP, i64::from(y) / STEP, i64::from(y) % STEP);
        let v = |c: usize| {
            let g = |i: i64, j: i64| grids[c][(j * (gw + 1) + i) as usize];
            let s = (STEP - fx) * (STEP - fy) * g(i0, j0)
                + fx * (STEP - fy) * g(i0 + 1, j0)
                + (STEP - fx) * fy * g(i0, j0 + 1)
                + fx * fy * g(i0 + 1, j0 + 1);
            (s / (STEP * STEP)) as u8
        };
        image::Rgb([v(0), v(1), v(2)])
    })
}

fn reference() -> serde_json::Value {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/psfr/reference.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn keyframes_and_corners_match_the_opencv_reference() {
    let r = reference();
    let p = PsfrParams::PVSG;
    let frames: Vec<(i64, i64)> =
        r["frames"].as_array().unwrap().iter().map(|f| (f[0].as_i64().unwrap(), f[1].as_i64().unwrap())).collect();
    let grays: Vec<gray::Gray> = frames.iter().map(|&(s, d)| gray::resized_gray(&frame(s, d), 640, 360)).collect();

    // The grey first frame: OpenCV's fixed-point resize rounds down slightly more often (about −0.1 grey level a
    // pixel against exact rounding); the mean difference stays well under a quarter of a level.
    let sum: i64 = grays[0].data.iter().map(|&v| i64::from(v)).sum();
    let ref_sum = r["grey_frame0_sum"].as_i64().unwrap();
    assert!((sum - ref_sum).abs() * 4 < (640 * 360), "{sum} vs {ref_sum}");

    let ours = detect(&grays[0], &p, p.corners_limit);
    let theirs: Vec<(f32, f32)> = r["corners_frame0"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_f64().unwrap() as f32, c[1].as_f64().unwrap() as f32))
        .collect();
    let close =
        theirs.iter().filter(|t| ours.iter().any(|o| (o.0 - t.0).abs() <= 1.0 && (o.1 - t.1).abs() <= 1.0)).count();
    assert!(close * 10 >= theirs.len() * 9, "{close} of {} reference corners found", theirs.len());

    let expected: Vec<usize> =
        r["keyframes"].as_array().unwrap().iter().map(|k| k.as_u64().unwrap() as usize).collect();
    let got = keyframes(grays.len(), |i| Ok(Frame { original: (640, 480), gray: grays[i].clone() }), &p).unwrap();
    assert_eq!(got, expected);
}
