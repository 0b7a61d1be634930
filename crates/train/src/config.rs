//! Run configs: one TOML file per run, read by `sgvlm train sft|grpo --config FILE.toml`. Paths are relative to
//! the file's folder. Unknown keys are errors (a typo must not silently fall back to a default).
//!
//! ```toml
//! out = "runs/psg-sft"          # checkpoints, metrics.jsonl, summary.json
//! device = "cpu"                # or "cuda"
//! # resume = "runs/psg-sft/checkpoint-1000"
//!
//! [model]
//! dir = "models/Qwen3.5-0.8B"   # Hugging Face directory with tokenizer.json
//!
//! [data]
//! train = "data/PSG_json/train.jsonl"
//! val = "data/PSG_json/test.jsonl"
//! max_length = 8192             # longer examples are dropped (truncation_strategy delete)
//!
//! [sft]
//! epochs = 5
//! lr = 1e-5
//! ```
//!
//! The `[sft]`, `[grpo]` and `[corrupt]` tables take the fields of [`SftSection`], [`GrpoOptions`] and
//! [`crate::corrupt::CorruptConfig`].

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::corrupt::CorruptConfig;
use crate::error::{Result, TrainError};
use crate::grpo::GrpoOptions;
use crate::optim::AdamWConfig;
use crate::policy::Freeze;
use crate::precision::ComputeDtype;
use crate::sft::{Schedule, SftOptions};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub out: PathBuf,
    #[serde(default = "cpu")]
    pub device: String,
    pub resume: Option<PathBuf>,
    pub model: ModelSection,
    pub data: DataSection,
    #[serde(default)]
    pub sft: SftSection,
    #[serde(default)]
    pub grpo: GrpoOptions,
    /// How `sgvlm train grpo` generates its rollouts.
    #[serde(default)]
    pub rollout: RolloutSection,
    pub corrupt: Option<CorruptConfig>,
}

/// The `[rollout]` table: `sgvlm train grpo`'s rollouts come from the native engine over the policy's own weights
/// (continuous batching; CUDA-graph decode on a GPU), as the demo's do.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutSection {
    /// Most rollouts decoding together.
    pub batch: usize,
    /// `none`: free sampling, as the paper trains. `psg`, `pvsg` or `ag`: every rollout is decoded under the
    /// strict grammar of that dataset's schema, with its closed vocabularies (PSG, AG) and boxes within `canvas`,
    /// so every finished rollout passes the gate (ours; the demo's default).
    pub constrain: RolloutConstraint,
    /// The canvas constrained boxes lie in: width, height.
    pub canvas: [u32; 2],
}

impl Default for RolloutSection {
    fn default() -> Self {
        Self { batch: 64, constrain: RolloutConstraint::None, canvas: [640, 480] }
    }
}

/// `[rollout] constrain`: free sampling, or one dataset's grammar and vocabularies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RolloutConstraint {
    None,
    Psg,
    Pvsg,
    Ag,
}

fn cpu() -> String {
    "cpu".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    pub train: PathBuf,
    pub val: Option<PathBuf>,
    #[serde(default = "max_length")]
    pub max_length: usize,
    /// `triplet` (PSG, PVSG) or `ag` (rewards' schema, GRPO).
    #[serde(default = "triplet")]
    pub schema: String,
    /// GRPO system prompt file (the reference's `system_prompt.txt`); none for SFT.
    pub system: Option<PathBuf>,
    /// Rows of the validation file used (the first N); all when absent.
    pub val_limit: Option<usize>,
}

fn max_length() -> usize {
    8192
}
fn triplet() -> String {
    "triplet".into()
}

/// The `[sft]` table (defaults: the paper's §7.1 recipe).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftSection {
    pub epochs: f64,
    pub lr: f64,
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub max_grad_norm: f64,
    pub freeze_vit: bool,
    pub freeze_aligner: bool,
    /// 0: every half epoch (the recipe's eval/save steps).
    pub eval_every: u64,
    pub save_every: u64,
    pub seed: u64,
    pub vocab_chunk: usize,
    /// Learning-rate multiplier of the vision tower and merger when they train (see `SftOptions::vision_lr_scale`).
    pub vision_lr_scale: f64,
    /// `"f32"` or `"bf16"`: the dtype of the forward and backward pass (weights and optimizer stay f32).
    pub compute_dtype: ComputeDtype,
    /// CPU threads per batch, each running forward and backward of its passes (`passes`; 0: one per core; GPU: 1).
    pub threads: usize,
}

impl Default for SftSection {
    fn default() -> Self {
        Self {
            epochs: 5.0,
            lr: 1e-5,
            warmup_ratio: 0.05,
            weight_decay: 0.1,
            batch_size: 4,
            grad_accum: 2,
            max_grad_norm: 1.0,
            freeze_vit: true,
            freeze_aligner: true,
            eval_every: 0,
            save_every: 0,
            seed: 42,
            vocab_chunk: crate::loss::DEFAULT_CHUNK,
            vision_lr_scale: 1.0,
            compute_dtype: ComputeDtype::F32,
            threads: 0,
        }
    }
}

impl RunConfig {
    /// Reads `path`; relative paths inside become relative to its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
        let mut c: RunConfig = toml::from_str(&text)
            .map_err(|e| TrainError::Config { path: path.to_path_buf(), message: e.to_string() })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut c.out);
        fix(&mut c.model.dir);
        fix(&mut c.data.train);
        c.data.val.as_mut().map(fix);
        c.data.system.as_mut().map(fix);
        c.resume.as_mut().map(fix);
        if c.sft.batch_size == 0 || c.grpo.group == 0 || c.rollout.batch == 0 {
            return Err(TrainError::Config {
                path: path.to_path_buf(),
                message: "batch sizes must be positive".into(),
            });
        }
        if let Some(k) = c.grpo.kl_cap.filter(|&k| !GrpoOptions::valid_kl_cap(k)) {
            return Err(TrainError::Config {
                path: path.to_path_buf(),
                message: format!("[grpo] kl_cap = {k}: expected a positive number (leave it out for none)"),
            });
        }
        if let Some(f) = c.grpo.forced_below.filter(|&f| !GrpoOptions::valid_forced_below(f)) {
            return Err(TrainError::Config {
                path: path.to_path_buf(),
                message: format!("[grpo] forced_below = {f}: expected a share in (0, 1) (leave it out for none)"),
            });
        }
        if !GrpoOptions::valid_grammar_weight(c.grpo.grammar_weight) {
            return Err(TrainError::Config {
                path: path.to_path_buf(),
                message: format!("[grpo] grammar_weight = {}: expected a number ≥ 0", c.grpo.grammar_weight),
            });
        }
        if !GrpoOptions::valid_grammar_below(c.grpo.grammar_below) {
            return Err(TrainError::Config {
                path: path.to_path_buf(),
                message: format!("[grpo] grammar_below = {}: expected a share in (0, 1]", c.grpo.grammar_below),
            });
        }
        Ok(c)
    }

    pub fn freeze(&self) -> Freeze {
        Freeze { vit: self.sft.freeze_vit, aligner: self.sft.freeze_aligner }
    }

    /// SFT options for `n_train` examples.
    pub fn sft_options(&self, n_train: usize) -> SftOptions {
        let s = &self.sft;
        let mut o = SftOptions {
            lr: s.lr,
            warmup_ratio: s.warmup_ratio,
            batch_size: s.batch_size,
            grad_accum: s.grad_accum,
            max_grad_norm: s.max_grad_norm,
            adamw: AdamWConfig { weight_decay: s.weight_decay, ..AdamWConfig::default() },
            eval_every: s.eval_every,
            save_every: s.save_every,
            seed: s.seed,
            vocab_chunk: s.vocab_chunk,
            vision_lr_scale: s.vision_lr_scale,
            compute_dtype: s.compute_dtype,
            threads: s.threads,
            ..SftOptions::default()
        };
        let spe = crate::sft::steps_per_epoch(n_train, &o);
        o.schedule = Schedule::Steps(((s.epochs * spe as f64).ceil() as u64).max(1));
        let half = (spe / 2).max(1);
        if o.eval_every == 0 {
            o.eval_every = half;
        }
        if o.save_every == 0 {
            o.save_every = half;
        }
        o
    }

    pub fn grpo_options(&self) -> GrpoOptions {
        self.grpo.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RunConfig> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(&path, text).unwrap();
        RunConfig::load(&path)
    }

    #[test]
    fn compute_dtype_defaults_to_f32_and_reads_bf16() {
        let base = "out = \"o\"\n[model]\ndir = \"m\"\n[data]\ntrain = \"t.jsonl\"\n";
        let c = load(base).unwrap();
        assert_eq!(
            (c.sft_options(8).compute_dtype, c.grpo_options().compute_dtype),
            (ComputeDtype::F32, ComputeDtype::F32)
        );
        let c = load(&format!("{base}[sft]\ncompute_dtype = \"bf16\"\n[grpo]\ncompute_dtype = \"bf16\"\n")).unwrap();
        assert_eq!(
            (c.sft_options(8).compute_dtype, c.grpo_options().compute_dtype),
            (ComputeDtype::Bf16, ComputeDtype::Bf16)
        );
        assert!(load(&format!("{base}[sft]\ncompute_dtype = \"fp16\"\n")).is_err());
    }

    #[test]
    fn the_kl_cap_and_the_forced_share_are_unset_by_default_and_checked() {
        let base = "out = \"o\"\n[model]\ndir = \"m\"\n[data]\ntrain = \"t.jsonl\"\n";
        assert_eq!(load(base).unwrap().grpo_options().kl_cap, None);
        assert_eq!(load(&format!("{base}[grpo]\nkl_cap = 3.0\n")).unwrap().grpo_options().kl_cap, Some(3.0));
        let err = load(&format!("{base}[grpo]\nkl_cap = -1.0\n")).unwrap_err().to_string();
        assert!(err.contains("kl_cap"), "{err}");
        assert_eq!(load(base).unwrap().grpo_options().forced_below, None);
        let c = load(&format!("{base}[grpo]\nforced_below = 0.01\n")).unwrap();
        assert_eq!(c.grpo_options().forced_below, Some(0.01));
        let err = load(&format!("{base}[grpo]\nforced_below = 1.5\n")).unwrap_err().to_string();
        assert!(err.contains("forced_below"), "{err}");
    }

    #[test]
    fn the_grammar_term_is_off_by_default_and_checked() {
        let base = "out = \"o\"\n[model]\ndir = \"m\"\n[data]\ntrain = \"t.jsonl\"\n";
        let o = load(base).unwrap().grpo_options();
        assert_eq!((o.grammar_weight, o.grammar_below, o.free_check), (0.0, 0.9, 0));
        let o = load(&format!("{base}[grpo]\ngrammar_weight = 0.5\ngrammar_below = 0.5\nfree_check = 64\n"))
            .unwrap()
            .grpo_options();
        assert_eq!((o.grammar_weight, o.grammar_below, o.free_check), (0.5, 0.5, 64));
        for bad in ["grammar_weight = -1.0", "grammar_below = 0.0", "grammar_below = 1.5"] {
            let err = load(&format!("{base}[grpo]\n{bad}\n")).unwrap_err().to_string();
            assert!(err.contains(bad.split(' ').next().unwrap()), "{bad}: {err}");
        }
    }

    #[test]
    fn every_shipped_config_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                // Unknown keys and bad values are errors: a shipped config must not hold a typo.
                RunConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 8, "{n} configs");
    }

    #[test]
    fn the_rollout_table_defaults_to_free_sampling_and_checks_its_values() {
        let base = "out = \"o\"\n[model]\ndir = \"m\"\n[data]\ntrain = \"t.jsonl\"\n";
        assert_eq!(load(base).unwrap().rollout, RolloutSection::default());
        let c = load(&format!("{base}[rollout]\nbatch = 8\nconstrain = \"psg\"\ncanvas = [320, 240]\n")).unwrap();
        assert_eq!(c.rollout, RolloutSection { batch: 8, constrain: RolloutConstraint::Psg, canvas: [320, 240] });
        let err = load(&format!("{base}[rollout]\nconstrain = \"coco\"\n")).unwrap_err().to_string();
        assert!(err.contains("coco") && err.contains("psg"), "{err}");
        assert!(load(&format!("{base}[rollout]\nbatch = 0\n")).is_err());
        assert!(load(&format!("{base}[rollout]\nbach = 8\n")).is_err(), "a typo is an error");
    }
}
