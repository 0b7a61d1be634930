//! The demo's SFT phases: the answers' heads, then the full answers ([`train_sft`]), with a fresh start when the
//! heads end with the image path closed, and the image-use measurement that tells ([`image_use`]).

use std::time::Instant;

use crate::batch::Example;
use crate::error::Result;
use crate::policy::Policy;
use crate::report::Reporter;
use crate::sft::{self, Output, Schedule, SftOptions};

/// The validation loss of a model with each scene's own image and with the images rotated by one scene (every
/// answer scored against another scene's picture). `gap` = rotated − own: clearly positive when the model reads the
/// image, ~0 (±1e-6) when the image path is closed and the answers come from the prior alone
/// (`results/demo_image_reading.md`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageUse {
    pub after: String,
    pub own_images_loss: f64,
    pub rotated_images_loss: f64,
    pub gap: f64,
}

/// Measures [`ImageUse`] of `policy` on `val` (at least two examples with images).
pub fn image_use(policy: &Policy, val: &[Example], after: &str) -> Result<ImageUse> {
    let model = policy.model()?;
    let own = sft::eval_loss(policy, &model, val, 16, 4096)?.unwrap_or(f64::NAN);
    let mut rotated = val.to_vec();
    let images: Vec<_> = val.iter().map(|e| e.image.clone()).collect();
    for (i, e) in rotated.iter_mut().enumerate() {
        e.image = images[(i + 1) % images.len().max(1)].clone();
    }
    let other = sft::eval_loss(policy, &model, &rotated, 16, 4096)?.unwrap_or(f64::NAN);
    Ok(ImageUse { after: after.to_string(), own_images_loss: own, rotated_images_loss: other, gap: other - own })
}

/// The first SFT phase: the answers' heads as targets ([`super::DemoRecipe::head_share`]).
pub(super) struct HeadPhase<'a> {
    pub(super) train: Vec<Vec<u32>>,
    pub(super) val: Vec<Vec<u32>>,
    pub(super) options: SftOptions,
    pub(super) out: Output,
    /// Fresh starts allowed when the phase ends with the image path closed ([`super::DemoRecipe::head_retries`]).
    pub(super) retries: u32,
    pub(super) closed_gap: f64,
    /// Re-initialises the policy for fresh start `k` (1, 2, …).
    pub(super) reinit: &'a dyn Fn(u32) -> Result<()>,
    /// The head learning rate of a fresh start relative to the first attempt's.
    pub(super) retry_lr_scale: f64,
}

/// SFT on `train`: the answers' heads first when `head` is given (no `<|im_end|>`: the answer goes on), then the
/// full answers. The head targets are swapped into the examples in place and back, so the preprocessed images are
/// not copied. The image use after each phase goes to `uses`. A head phase that leaves the image path closed starts
/// again from a fresh initialisation (up to `head.retries` times); the full answers give up the time it takes.
#[allow(clippy::too_many_arguments)]
pub(super) fn train_sft(
    policy: &Policy,
    train: &mut [Example],
    val: &mut [Example],
    head: Option<HeadPhase>,
    full: &SftOptions,
    out: &Output,
    uses: &mut Vec<ImageUse>,
    reporter: &dyn Reporter,
) -> Result<(Option<sft::SftSummary>, sft::SftSummary)> {
    let swap = |ex: &mut [Example], targets: Vec<Vec<u32>>| -> Vec<Vec<u32>> {
        ex.iter_mut().zip(targets).map(|(e, t)| std::mem::replace(&mut e.target, t)).collect()
    };
    let mut full = full.clone();
    let head_summary = match head {
        Some(h) => {
            let full_train = swap(train, h.train);
            let full_val = swap(val, h.val);
            let mut fresh = 0;
            let mut first_end = None;
            let mut options = h.options.clone();
            let summary = loop {
                let summary = sft::run(policy, train, val, &options, &h.out, None, reporter);
                first_end.get_or_insert_with(Instant::now);
                if summary.is_err() {
                    break summary;
                }
                let after =
                    if fresh == 0 { "answer heads".to_string() } else { format!("answer heads (fresh start {fresh})") };
                let u = image_use(policy, val, &after)?;
                let closed = u.gap < h.closed_gap;
                let state = if closed { "closed: the answers ignore the image" } else { "open" };
                reporter.message(&format!("image use after the {after}: gap {:.2e} ({state})", u.gap));
                uses.push(u);
                if !closed || fresh >= h.retries {
                    break summary;
                }
                fresh += 1;
                options.lr *= h.retry_lr_scale;
                reporter.message(&format!(
                    "training the answer heads again from a fresh initialisation at lr {:.1e} (fresh start {fresh} of \
                     {})",
                    options.lr, h.retries
                ));
                (h.reinit)(fresh)?;
            };
            // The fresh starts' time comes out of the full answers' budget.
            let extra = first_end.map_or(0.0, |t| t.elapsed().as_secs_f64());
            if let (true, Schedule::Seconds(s)) = (fresh > 0, full.schedule) {
                full.schedule = Schedule::Seconds((s - extra).max(10.0));
            }
            swap(train, full_train);
            swap(val, full_val);
            Some(summary?)
        }
        None => None,
    };
    Ok((head_summary, sft::run(policy, train, val, &full, out, None, reporter)?))
}

/// The `summary.json` an SFT run wrote.
pub(super) fn read_summary(path: &std::path::Path) -> Result<sft::SftSummary> {
    let text = std::fs::read_to_string(path).map_err(crate::error::TrainError::io(path))?;
    serde_json::from_str(&text)
        .map_err(|e| crate::error::TrainError::Input(format!("`{}` is not an SFT summary: {e}", path.display())))
}
