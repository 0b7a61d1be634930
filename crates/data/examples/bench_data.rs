//! Throughput of the data pipeline on synthetic PVSG frames at 640×480, printed as one JSON object:
//! - `prepare_frames_per_s`: `prepare --dataset pvsg` end to end (decode, mask boxes, resize, PNG encode, records,
//!   export) on the rayon pool (all cores);
//! - `psfr_frames_per_s`: PSFR keyframe selection on one thread, frame decode (PNG) and resize included, with
//!   the time split into `psfr_load_s` (decode, resize, grey) and `psfr_select_s` (corners, pyramids, LK,
//!   scoring). Pin the process to one core for the issue's figure (`taskset -c 0`).
//!
//! Run with the data crate compiled as in a release build (optimised, no overflow checks; dependencies already are
//! optimised in the dev profile), as `crates/data/README.md` shows:
//!
//! ```text
//! RAYON_NUM_THREADS=1 taskset -c 0 cargo run -p sgvlm-data --example bench_data \
//!   --config profile.dev.package.sgvlm-data.opt-level=3 \
//!   --config profile.dev.package.sgvlm-data.overflow-checks=false \
//!   --config profile.dev.package.sgvlm-data.debug-assertions=false -- [VIDEOS] [FRAMES] [--psfr-only]
//! ```
//!
//! (`--psfr-only` skips the `prepare` timing). The synthetic generator draws videos at 480×360; they are upscaled
//! (bilinear frames, nearest-neighbour masks stored as RGB ids) to 640×480 before timing. `psfr_cpu_s` is the
//! process's CPU time over the PSFR run: on a shared machine `psfr_frames_per_cpu_s` says what a free core would
//! do, `psfr_frames_per_s` what this run saw. `load_average` is the machine's 1-minute load when the run ended.

use sgvlm_data::prepare::{prepare, Dataset, Silent};
use sgvlm_data::readers::pvsg::decode_mask;
use sgvlm_data::synth::write::{write_pvsg, SynthOptions};
use sgvlm_data::thin::psfr::{keyframes, FrameLoader, PsfrParams};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// CPU seconds this process has used (user + system, from `/proc/self/stat`; `None` off Linux). On a shared
/// machine, frames per CPU second says what one free core would do; wall-clock frames per second is the lower
/// bound actually seen.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of those.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn pngs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "png")).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let psfr_only = std::env::args().any(|a| a == "--psfr-only");
    let (videos, frames) = (args.first().copied().unwrap_or(6), args.get(1).copied().unwrap_or(40));
    let dir = tempfile::tempdir()?;
    write_pvsg(dir.path(), &SynthOptions { images: 0, videos, frames, seed: 7 })?;
    let root = dir.path().join("pvsg");
    let mut video_dirs: Vec<PathBuf> =
        std::fs::read_dir(root.join("vidor/frames"))?.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    video_dirs.sort();
    for v in &video_dirs {
        let id = v.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        for f in pngs(v) {
            let img = image::open(&f)?.resize_exact(640, 480, image::imageops::FilterType::Triangle);
            img.to_rgb8().save(&f)?;
        }
        for m in pngs(&root.join("vidor/masks").join(&id)) {
            let mask = decode_mask(&std::fs::read(&m)?)?;
            let (w, h) = (mask.width, mask.height);
            let rgb = image::RgbImage::from_fn(640, 480, |x, y| {
                let id = mask.ids[(y * h / 480 * w + x * w / 640) as usize];
                image::Rgb([(id & 255) as u8, (id >> 8 & 255) as u8, (id >> 16) as u8])
            });
            rgb.save(&m)?;
        }
    }
    let total = videos * frames;

    let mut report = serde_json::json!({"frames": total, "threads": rayon::current_num_threads()});
    if !psfr_only {
        let out = dir.path().join("out");
        let t = Instant::now();
        let sum = prepare(Dataset::Pvsg, &root, &out, &Silent)?;
        let prep_s = t.elapsed().as_secs_f64();
        if !sum.skipped.is_empty() {
            eprintln!("warning: prepare skipped {:?}", sum.skipped);
        }
        report["prepare_s"] = prep_s.into();
        report["prepare_frames_per_s"] = (total as f64 / prep_s).into();
    }

    let p = PsfrParams::PVSG;
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let (mut keys, mut load_s) = (0, 0.0);
    for v in &video_dirs {
        let files = pngs(v);
        let mut loader = FrameLoader::default();
        let load = |i: usize| {
            let t = Instant::now();
            let f = loader.load(&files[i], &p);
            load_s += t.elapsed().as_secs_f64();
            f
        };
        keys += keyframes(files.len(), load, &p)?.len();
    }
    let psfr_s = t.elapsed().as_secs_f64();
    if let (Some(a), Some(b)) = (cpu0, cpu_seconds()) {
        report["psfr_cpu_s"] = (b - a).into();
        report["psfr_frames_per_cpu_s"] = (total as f64 / (b - a)).into();
    }
    report["psfr_s"] = psfr_s.into();
    report["psfr_frames_per_s"] = (total as f64 / psfr_s).into();
    report["psfr_load_s"] = load_s.into();
    report["psfr_select_s"] = (psfr_s - load_s).into();
    report["psfr_keyframes"] = keys.into();
    let load_avg = std::fs::read_to_string("/proc/loadavg").ok().and_then(|s| s.split(' ').next()?.parse::<f64>().ok());
    report["load_average"] = load_avg.into();
    println!("{report}");
    Ok(())
}
