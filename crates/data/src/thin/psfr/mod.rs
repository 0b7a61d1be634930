//! PSFR, patchwise sparse-flow retention (reference `utils/PSFR/pvsg_psfr_filter.py` + `src/key_frame_selection.py`
//! with `config_pvsg.json`; reference_facts §4.3), written in Rust: frames decoded, resized and turned grey
//! ([`gray`]), Shi–Tomasi corners ([`corners`]) tracked by pyramidal Lucas–Kanade ([`lk`]). Parameters are the
//! PVSG config's ([`PsfrParams::PVSG`]).
//!
//! Per video (frames sorted by file name): frame 0 is a keyframe and seeds up to 60 corners; for each next frame
//! the corners are tracked patch by patch (13 patches of the 640×360 grey image, first tracking patch wins; a
//! point is tracked when LK succeeds with error ≤ 15); a *counting* patch is low when fewer than τ = 0.3 of its
//! initial corners (old positions, inclusive bounds) were tracked; the frame is a keyframe when ≥ 5 patches are
//! low. Either way, the tracked corners are topped up to 60 with new corners whose 10-px cell is free, and on a
//! keyframe the per-patch denominators are reset. As in the reference, the counting patches are built from the
//! *original* frame size (640×480 for PVSG frames after `prepare`) while the points live on the 640×360 image.
//!
//! Where it can differ from OpenCV: see [`gray`] (resize rounding), [`corners`] (response summation order) and
//! [`lk`] (window-sum order). Exact OpenCV parity would need OpenCV itself; these differences move single
//! corners, rarely a keyframe decision.
//!
//! Speed (the issue asks for ≥ 100 frames/s on one core, decode included): the work the reference repeats is done
//! once — each frame's 13 patch pyramids are built when it is the next image and reused when it is the previous
//! one (derivatives only then), the corner response is computed once per frame for all 13 patch masks, and the
//! decode, resize and pyramid buffers live across frames ([`FrameLoader`] and the private `Tracked`). A point
//! already tracked by an earlier patch is not tracked again in later ones (the reference discards that result).
//! None of this changes a result: every number is the same sequence of operations as the plain formulas.

pub mod corners;
pub mod gray;
pub mod lk;

use super::{group_by_video, Row, Rows};
use corners::CornerMap;
use gray::{FrameReader, Gray, GrayResizer};
use lk::{LkParams, Pyramid};
use rayon::prelude::*;

/// The PSFR configuration.
#[derive(Debug, Clone, Copy)]
pub struct PsfrParams {
    pub resize: (usize, usize),
    pub nw: usize,
    pub nh: usize,
    pub corners_limit: usize,
    pub dedup_radius: f32,
    pub max_corners_patch: usize,
    pub quality: f32,
    pub min_distance: f32,
    pub lk: LkParams,
    pub max_error: f32,
    pub tau: f32,
    pub min_patches: usize,
}

impl PsfrParams {
    /// `utils/PSFR/config_pvsg.json`.
    pub const PVSG: PsfrParams = PsfrParams {
        resize: (640, 360),
        nw: 3,
        nh: 3,
        corners_limit: 60,
        dedup_radius: 10.0,
        max_corners_patch: 10,
        quality: 0.3,
        min_distance: 15.0,
        lk: lk::PVSG_LK,
        max_error: 15.0,
        tau: 0.3,
        min_patches: 5,
    };
}

/// A patch `(x, y, w, h)`.
pub type Patch = (usize, usize, usize, usize);

/// `build_patches(W, H, nw, nh, centroidal=True)`: the grid row by row, then the centroid patches.
pub fn patches(w: usize, h: usize, nw: usize, nh: usize) -> Vec<Patch> {
    let (pw, ph) = ((w / nw).max(1), (h / nh).max(1));
    let mut out: Vec<Patch> = (0..nh).flat_map(|j| (0..nw).map(move |i| (i * pw, j * ph, pw, ph))).collect();
    if nw > 1 && nh > 1 {
        for j in 0..nh - 1 {
            for i in 0..nw - 1 {
                let x = (((i as f64 + 0.5) * pw as f64) as usize).min(w.saturating_sub(pw));
                let y = (((j as f64 + 0.5) * ph as f64) as usize).min(h.saturating_sub(ph));
                out.push((x, y, pw, ph));
            }
        }
    }
    out
}

fn inside(p: &Patch, (x, y): (f32, f32)) -> bool {
    p.0 as f32 <= x && x <= (p.0 + p.2) as f32 && p.1 as f32 <= y && y <= (p.1 + p.3) as f32
}

fn cell(p: (f32, f32), r: f32) -> (i64, i64) {
    let r = r.max(1.0);
    ((p.0 / r).floor() as i64, (p.1 / r).floor() as i64)
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// `shi_tomasi_with_patching_and_sorting` with `custom_sorting_by_quality`: at most `limit` corners.
pub fn detect(g: &Gray, p: &PsfrParams, limit: usize) -> Vec<(f32, f32)> {
    if limit == 0 {
        return Vec::new();
    }
    detect_in(&CornerMap::new(g), p, limit)
}

/// [`detect`] on a frame's precomputed corner maps.
fn detect_in(map: &CornerMap, p: &PsfrParams, limit: usize) -> Vec<(f32, f32)> {
    let mut keyed: Vec<(f64, (f32, f32))> = Vec::new();
    for patch in patches(map.width, map.height, p.nw, p.nh) {
        let pts = map.good_features(patch, p.max_corners_patch, p.quality, p.min_distance);
        // Integer positions: the bilinear sample is the value itself.
        let mut scored: Vec<(f32, (f32, f32))> =
            pts.into_iter().map(|(x, y)| (map.eig[y as usize * map.width + x as usize], (x, y))).collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (i, (s, xy)) in scored.into_iter().enumerate() {
            let s = f64::from(s);
            keyed.push((s - 0.2 * i as f64 * (1.0 - sigmoid(s - 0.3)), xy));
        }
    }
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (_, xy) in keyed {
        if seen.insert(cell(xy, p.dedup_radius)) {
            out.push(xy);
        }
    }
    out.truncate(limit);
    out
}

/// A grey frame and the LK pyramids of its tracking patches, built when first needed and kept so that the
/// frame's pyramids, made when it is the next image, serve again when it is the previous one. [`Tracked::reset`]
/// moves to another frame and keeps the buffers.
struct Tracked {
    gray: Gray,
    patches: Vec<Patch>,
    pyramids: Vec<Pyramid>,
    built: Vec<bool>,
}

impl Tracked {
    fn new(gray: Gray, p: &PsfrParams) -> Tracked {
        let patches = patches(gray.width, gray.height, p.nw, p.nh);
        let (pyramids, built) = (vec![Pyramid::default(); patches.len()], vec![false; patches.len()]);
        Tracked { gray, patches, pyramids, built }
    }

    fn reset(&mut self, gray: Gray, p: &PsfrParams) {
        if (gray.width, gray.height) != (self.gray.width, self.gray.height) {
            *self = Tracked::new(gray, p);
            return;
        }
        self.gray = gray;
        self.built.fill(false);
    }

    fn pyramid(&mut self, k: usize, p: &PsfrParams, derivatives: bool) -> &mut Pyramid {
        let pyr = &mut self.pyramids[k];
        if !self.built[k] {
            pyr.rebuild(&self.gray, self.patches[k], &p.lk);
            self.built[k] = true;
        }
        if derivatives {
            pyr.ensure_derivatives();
        }
        pyr
    }
}

/// `lucas_kanade_track`: for each point, its new position when one of the patches tracked it.
pub fn track(prev: &Gray, next: &Gray, pts: &[(f32, f32)], p: &PsfrParams) -> Vec<Option<(f32, f32)>> {
    track_cached(&mut Tracked::new(prev.clone(), p), &mut Tracked::new(next.clone(), p), pts, p)
}

/// [`track`] with the frames' pyramids cached. A point is only tracked in a patch when no earlier patch has
/// tracked it: the reference computes it there too but discards the result (first patch wins), and LK treats
/// each point on its own, so the outcome is the same.
fn track_cached(prev: &mut Tracked, next: &mut Tracked, pts: &[(f32, f32)], p: &PsfrParams) -> Vec<Option<(f32, f32)>> {
    let mut out = vec![None; pts.len()];
    for k in 0..prev.patches.len() {
        let patch = prev.patches[k];
        let idx: Vec<usize> = (0..pts.len()).filter(|&i| out[i].is_none() && inside(&patch, pts[i])).collect();
        if idx.is_empty() {
            continue;
        }
        let (ox, oy) = (patch.0 as f32, patch.1 as f32);
        let local: Vec<(f32, f32)> = idx.iter().map(|&i| (pts[i].0 - ox, pts[i].1 - oy)).collect();
        // Frames of another size (only from a caller's own `load`): crop the next frame with the previous frame's
        // patch, as the reference does, without caching.
        let same = next.patches == prev.patches;
        let ya = prev.pyramid(k, p, true);
        let uncached;
        let yb = if same {
            &*next.pyramid(k, p, false)
        } else {
            uncached = Pyramid::of_rect(&next.gray, patch, &p.lk);
            &uncached
        };
        for (k, r) in lk::track(ya, yb, &local, &p.lk).into_iter().enumerate() {
            if let Some((x, y, e)) = r {
                if e <= p.max_error {
                    out[idx[k]] = Some((x + ox, y + oy));
                }
            }
        }
    }
    out
}

/// Per-frame inputs: the frame size before resizing and the resized grey image.
pub struct Frame {
    pub original: (usize, usize),
    pub gray: Gray,
}

/// Decodes and prepares one frame file.
pub fn load_frame(path: &std::path::Path, p: &PsfrParams) -> Result<Frame, String> {
    FrameLoader::default().load(path, p)
}

/// [`load_frame`] with its decode buffers kept between frames.
#[derive(Debug, Default)]
pub struct FrameLoader {
    reader: FrameReader,
    resizer: GrayResizer,
}

impl FrameLoader {
    /// Decodes `path`, resizes it to `p.resize` and turns it grey (the reference's order: resize, then grey).
    pub fn load(&mut self, path: &std::path::Path, p: &PsfrParams) -> Result<Frame, String> {
        let (rgb, w, h) = self.reader.read_rgb(path)?;
        let mut gray = Gray { width: p.resize.0, height: p.resize.1, data: Vec::new() };
        self.resizer.run(rgb, w, h, &mut gray);
        Ok(Frame { original: (w, h), gray })
    }
}

/// The keyframe positions of a video given its frames in order; `load` yields each frame once, in order.
pub fn keyframes<F>(n: usize, mut load: F, p: &PsfrParams) -> Result<Vec<usize>, String>
where
    F: FnMut(usize) -> Result<Frame, String>,
{
    if n == 0 {
        return Ok(Vec::new());
    }
    let first = load(0)?;
    let counting = patches(first.original.0, first.original.1, p.nw, p.nh);
    let counts = |pts: &[(f32, f32)]| -> Vec<usize> {
        counting.iter().map(|c| pts.iter().filter(|&&q| inside(c, q)).count()).collect()
    };
    let mut map = CornerMap::new(&first.gray);
    let mut base = detect_in(&map, p, p.corners_limit);
    let mut init = counts(&base);
    let mut keys = vec![0];
    let mut cur = Tracked::new(first.gray.clone(), p);
    let mut prev = Tracked::new(first.gray, p);
    for i in 1..n {
        cur.reset(load(i)?.gray, p);
        let tracked = track_cached(&mut prev, &mut cur, &base, p);
        let low = counting
            .iter()
            .zip(&init)
            .filter(|(_, &n0)| n0 > 0)
            .filter(|(c, &n0)| {
                let kept = base.iter().zip(&tracked).filter(|(q, t)| t.is_some() && inside(c, **q)).count();
                (kept as f32 / n0 as f32) < p.tau
            })
            .count();
        let key = low >= p.min_patches;
        let moved: Vec<(f32, f32)> = tracked.into_iter().flatten().collect();
        let refill = p.corners_limit.saturating_sub(moved.len());
        let mut taken: std::collections::HashSet<(i64, i64)> = moved.iter().map(|&q| cell(q, p.dedup_radius)).collect();
        let fresh: Vec<(f32, f32)> = if refill == 0 {
            Vec::new()
        } else {
            map.compute(&cur.gray);
            detect_in(&map, p, refill).into_iter().filter(|&q| taken.insert(cell(q, p.dedup_radius))).collect()
        };
        base = moved;
        base.extend(fresh);
        if key {
            keys.push(i);
            init = counts(&base);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Ok(keys)
}

/// The file name of a path (`/` or `\` separated).
fn file_name(p: &str) -> &str {
    p.rsplit(['/', '\\']).next().unwrap_or(p)
}

/// PSFR on one split: kept rows (in input order within each video, videos in first-appearance order) and the
/// videos that could not be read (`(video, why)`; their rows are dropped, as an unreadable frame stops the
/// reference on that video too).
pub fn thin_split(rows: &[Row], p: &PsfrParams) -> (Vec<Row>, Vec<(String, String)>) {
    let videos = group_by_video(rows);
    let results: Vec<Result<Vec<usize>, (String, String)>> = videos
        .par_iter()
        .map(|(video, idx)| {
            let mut order = idx.clone();
            order.sort_by(|&a, &b| file_name(&rows[a].image_path).cmp(file_name(&rows[b].image_path)));
            let mut loader = FrameLoader::default();
            let load = |k: usize| loader.load(std::path::Path::new(&rows[order[k]].image_path), p);
            let keys = keyframes(order.len(), load, p).map_err(|e| (video.clone(), e))?;
            let names: std::collections::HashSet<&str> =
                keys.iter().map(|&k| file_name(&rows[order[k]].image_path)).collect();
            Ok(idx.iter().copied().filter(|&i| names.contains(file_name(&rows[i].image_path))).collect())
        })
        .collect();
    let (mut kept, mut failed) = (Vec::new(), Vec::new());
    for r in results {
        match r {
            Ok(v) => kept.extend(v.into_iter().map(|i| rows[i].clone())),
            Err(e) => failed.push(e),
        }
    }
    (kept, failed)
}

/// PSFR on both splits, and the videos that could not be read.
pub fn thin(rows: &Rows, p: &PsfrParams) -> (Rows, Vec<(String, String)>) {
    let (train, mut a) = thin_split(&rows.train, p);
    let (test, b) = thin_split(&rows.test, p);
    a.extend(b);
    (Rows { train, test }, a)
}

#[cfg(test)]
mod tests;
