//! Benchmark (not a test): load time and resident memory of a model directory, and the forward time of one
//! image+text prompt of 1,007 tokens (a 640×480 image = 300 tokens, plus 707 text tokens) on the CPU in f32.
//!
//! ```sh
//! sgvlm model init --preset qwen3.5-0.8b --out /tmp/q08      # bf16 on disk, like the release
//! cargo run --release -p sgvlm-model --example bench_qwen35 -- /tmp/q08
//! ```

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use sgvlm_model::vision::processor::ImageProcessor;
use sgvlm_model::{ImageInput, ModelInput, Qwen35};

/// `(VmRSS, VmHWM)` of this process in MiB (Linux).
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    sgvlm_model::ops::init_cpu_threads();
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: bench_qwen35 MODEL_DIR")?);
    let dev = Device::Cpu;
    let (rss0, _) = memory_mib();
    let t0 = Instant::now();
    let model = Qwen35::from_dir(&dir, DType::F32, &dev)?;
    let load = t0.elapsed();
    let (rss1, hwm1) = memory_mib();
    println!("load: {:.2} s, RSS {:.0} MiB (+{:.0}), peak {:.0} MiB", load.as_secs_f64(), rss1, rss1 - rss0, hwm1);

    let rgb: Vec<u8> = (0..480 * 640 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let img = ImageProcessor::default().preprocess_rgb(&rgb, 480, 640)?;
    let n_img = img.grid_thw.iter().product::<usize>() / 4;
    let cfg = &model.config;
    let mut ids: Vec<u32> = (0..400).map(|i| 1000 + i * 13 % 5000).collect();
    ids.push(cfg.vision_start_token_id);
    ids.extend(std::iter::repeat_n(cfg.image_token_id, n_img));
    ids.push(cfg.vision_end_token_id);
    ids.extend((0..1007 - ids.len() as u32).map(|i| 2000 + i * 17 % 7000));
    assert_eq!(ids.len(), 1007);
    let ids = Tensor::from_vec(ids, (1, 1007), &dev)?;
    let pv = Tensor::from_vec(img.pixel_values, (img.grid_thw[1] * img.grid_thw[2], 1536), &dev)?;
    let grids = [img.grid_thw];
    let tv = Instant::now();
    let feats = model.vision.forward(&pv, &grids)?;
    println!("vision tower alone (1200 patches → {} tokens): {:.2} s", feats.dim(0)?, tv.elapsed().as_secs_f64());
    let tt = Instant::now();
    let text_ids = ids.narrow(1, 0, 400)?;
    model.forward(&ModelInput { input_ids: Some(&text_ids), ..Default::default() }, None)?;
    println!("text-only forward, 400 tokens: {:.2} s", tt.elapsed().as_secs_f64());
    let t1 = Instant::now();
    let images = Some(ImageInput { pixel_values: &pv, grids: &grids });
    let out = model.forward(&ModelInput { input_ids: Some(&ids), images, ..Default::default() }, None)?;
    let _ = out.logits.dims();
    let fwd = t1.elapsed();
    let (rss2, hwm2) = memory_mib();
    println!("forward 1007 tokens (300 image): {:.2} s, RSS {:.0} MiB, peak {:.0} MiB", fwd.as_secs_f64(), rss2, hwm2);
    Ok(())
}
