use super::*;

#[test]
fn thirteen_patches_as_the_reference_builds_them() {
    let p = patches(640, 360, 3, 3);
    assert_eq!(p.len(), 13);
    assert_eq!(&p[..4], &[(0, 0, 213, 120), (213, 0, 213, 120), (426, 0, 213, 120), (0, 120, 213, 120)]);
    assert_eq!(&p[9..], &[(106, 60, 213, 120), (319, 60, 213, 120), (106, 180, 213, 120), (319, 180, 213, 120)]);
    // The counting patches of a 640×480 original: rows at 0/160/320, centroid rows at 80/240.
    let c = patches(640, 480, 3, 3);
    assert_eq!((c[3], c[9], c[12]), ((0, 160, 213, 160), (106, 80, 213, 160), (319, 240, 213, 160)));
}

/// A 640×360 texture of soft blobs whose layout depends on `seed`, shifted right by `dx` pixels.
fn texture(seed: u64, dx: f32) -> Gray {
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = || {
        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (s >> 33) as f32 / (1u64 << 31) as f32
    };
    let blobs: Vec<(f32, f32, f32)> =
        (0..120).map(|_| (next() * 640.0, next() * 360.0, 40.0 + next() * 160.0)).collect();
    let (w, h) = (640, 360);
    let mut data = vec![0u8; w * h];
    for (i, v) in data.iter_mut().enumerate() {
        let (x, y) = ((i % w) as f32 - dx, (i / w) as f32);
        let mut acc = 30.0;
        for &(bx, by, a) in &blobs {
            let d2 = (x - bx).powi(2) + (y - by).powi(2);
            if d2 < 400.0 {
                acc += a * (-d2 / 40.0).exp();
            }
        }
        *v = acc.min(255.0) as u8;
    }
    Gray { width: w, height: h, data }
}

#[test]
fn corners_are_found_deduplicated_and_limited() {
    let g = texture(1, 0.0);
    let c = detect(&g, &PsfrParams::PVSG, 60);
    assert!(c.len() > 20 && c.len() <= 60, "{}", c.len());
    let cells: std::collections::HashSet<(i64, i64)> = c.iter().map(|&q| cell(q, 10.0)).collect();
    assert_eq!(cells.len(), c.len());
    assert!(detect(&g, &PsfrParams::PVSG, 5).len() == 5);
}

#[test]
fn a_small_motion_tracks_and_a_cut_is_a_keyframe() {
    let p = PsfrParams::PVSG;
    let frames = [texture(1, 0.0), texture(1, 1.5), texture(1, 3.0), texture(2, 0.0), texture(2, 1.0)];
    // Tracking on a small shift: most corners follow by about 1.5 px.
    let base = detect(&frames[0], &p, 60);
    let moved = track(&frames[0], &frames[1], &base, &p);
    let ok: Vec<(f32, f32)> = base.iter().zip(&moved).filter_map(|(a, b)| b.map(|b| (b.0 - a.0, b.1 - a.1))).collect();
    assert!(ok.len() * 10 >= base.len() * 8, "{} of {}", ok.len(), base.len());
    let near = ok.iter().filter(|d| (d.0 - 1.5).abs() < 0.5 && d.1.abs() < 0.5).count();
    assert!(near * 10 >= ok.len() * 8, "{near} of {}", ok.len());
    let keys = keyframes(frames.len(), |i| Ok(Frame { original: (640, 480), gray: frames[i].clone() }), &p).unwrap();
    assert_eq!(keys, vec![0, 3]);
}

#[test]
fn frames_of_another_size_are_tracked_with_the_previous_frames_patches() {
    let p = PsfrParams::PVSG;
    let (a, b) = (texture(1, 0.0), texture(1, 1.5));
    let small = b.crop(0, 0, 600, 330);
    // Cropping keeps the top-left pixels, so most corners of the left patches still track.
    let moved = track(&a, &small, &detect(&a, &p, 60), &p);
    assert!(moved.iter().flatten().count() >= 10, "{moved:?}");
    let frames = [a, small, b];
    let keys = keyframes(frames.len(), |i| Ok(Frame { original: (640, 480), gray: frames[i].clone() }), &p).unwrap();
    assert_eq!(keys[0], 0);
}
