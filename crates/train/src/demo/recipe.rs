//! The demo's model shape and training recipe: the tiny Qwen3.5-architecture configuration, its initialisation
//! (fixed sine/cosine vision positions, optional fan-in scaling) and [`DemoRecipe`], the SFT settings `sgvlm demo`
//! trains with, each default traced to the measurement that chose it (`crates/train/results/`).

use candle_core::{Device, Tensor};
use sgvlm_model::tokenizer::Tokenizer;
use sgvlm_model::{checkpoint, Config};

use super::ObjectOrder;
use crate::curriculum::TokenWeight;
use crate::error::Result;
use crate::grpo::GrpoOptions;
use crate::policy::{Freeze, Policy};

/// The demo model: Qwen3.5's architecture at a tiny size over the 2,112-token tiny vocabulary.
pub fn model_config(large: bool) -> Config {
    let mut c = Config::tiny();
    let t = &mut c.text_config;
    let v = &mut c.vision_config;
    if large {
        (t.hidden_size, t.intermediate_size, t.num_hidden_layers) = (256, 768, 8);
        (t.num_attention_heads, t.num_key_value_heads, t.head_dim) = (4, 2, 64);
        (t.linear_key_head_dim, t.linear_value_head_dim, t.linear_num_key_heads, t.linear_num_value_heads) =
            (32, 32, 4, 8);
        (v.hidden_size, v.intermediate_size, v.depth, v.num_heads) = (128, 512, 4, 4);
    } else {
        (t.hidden_size, t.intermediate_size) = (96, 256);
        (t.num_attention_heads, t.head_dim) = (2, 48);
        (v.hidden_size, v.intermediate_size, v.depth, v.num_heads) = (64, 128, 2, 2);
    }
    t.layer_types =
        (0..t.num_hidden_layers)
            .map(|i| {
                if i % 2 == 1 {
                    sgvlm_model::LayerType::FullAttention
                } else {
                    sgvlm_model::LayerType::LinearAttention
                }
            })
            .collect();
    t.full_attention_interval = Some(2);
    fit_mrope_sections(t);
    v.patch_size = 8;
    v.out_hidden_size = t.hidden_size;
    v.num_position_embeddings = 256;
    c
}

/// M-RoPE sections that cover the rotary half (head_dim × partial factor / 2), or the saved config.json fails
/// validation when a checkpoint is loaded back.
fn fit_mrope_sections(t: &mut sgvlm_model::config::TextConfig) {
    let half = (t.head_dim as f64 * t.rope_parameters.partial_rotary_factor) as usize / 2;
    t.rope_parameters.mrope_section = vec![half - 2 * (half / 3), half / 3, half / 3];
}

/// [`model_config`] with the recipe's patch size and text width.
pub fn recipe_config(large: bool, r: &DemoRecipe) -> Config {
    let mut cfg = model_config(large);
    cfg.vision_config.patch_size = r.patch_size;
    if let Some((hidden, inter)) = r.text_width {
        let t = &mut cfg.text_config;
        (t.hidden_size, t.intermediate_size, t.head_dim) = (hidden, inter, hidden / t.num_attention_heads);
        fit_mrope_sections(t);
        cfg.vision_config.out_hidden_size = hidden;
    }
    cfg
}

/// Fixed 2-D sine/cosine position embeddings `[side², dim]`: the first half of the channels encodes the row, the
/// second the column, each as sin/cos pairs at geometric frequencies (as MAE's).
pub fn sincos_2d(side: usize, dim: usize) -> Vec<f32> {
    let quarter = dim / 4;
    let mut out = vec![0f32; side * side * dim];
    for r in 0..side {
        for c in 0..side {
            let row = &mut out[(r * side + c) * dim..(r * side + c + 1) * dim];
            for (half, pos) in [(0, r), (1, c)] {
                for i in 0..quarter {
                    let freq = 1.0 / 10_000f64.powf(i as f64 / quarter.max(1) as f64);
                    let a = pos as f64 * freq;
                    row[half * 2 * quarter + i] = a.sin() as f32;
                    row[half * 2 * quarter + quarter + i] = a.cos() as f32;
                }
            }
        }
    }
    out
}

/// The token class of [`DemoRecipe::class_weight`] ([`crate::curriculum`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Weighted {
    /// Every number token.
    Digits,
    /// The units digit of each box coordinate.
    BoxUnits,
    /// The object count and the object names.
    #[default]
    Names,
}

/// The SFT recipe of the demo: what `sgvlm demo` trains with ([`DemoRecipe::default`]); experiments vary it
/// through [`run_with`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DemoRecipe {
    /// Peak learning rate of the time-based warmup + cosine schedule.
    pub lr: f64,
    /// Share of the SFT time spent warming up.
    pub warmup_ratio: f64,
    pub batch_size: usize,
    pub adamw: crate::optim::AdamWConfig,
    /// Linear layers start from `N(0, 1/fan_in)` (output projections further scaled by `1/sqrt(2·layers)`)
    /// instead of the checkpoint default `N(0, 0.02)`, which at this width leaves each layer's output at a fifth of
    /// its input.
    pub fan_in_init: bool,
    /// Delta-rule chunk length while training ([`SftOptions::delta_chunk`]). Only the chunked form reads it: a GPU
    /// step, or a CPU step without the CPU training kernels (with them the recurrence is one graph node). Every chunk
    /// length computes the same function (`delta_rule` tests); 64 left a step of `sgvlm demo --large` at batch 16
    /// with 5,168 graph nodes against 7,712 at 16 (`examples/profile_demo_step.rs ... large composed`, before the
    /// vision tower batched its images), and a GPU step is bound by launching them (0.24–0.34 s per step on an H200,
    /// `results/demo_gpu.md`).
    pub delta_chunk: usize,
    /// Amplitude of the fixed sine/cosine vision position embeddings. At 1 they are ~4.5× the scene-to-scene
    /// variation of the image tokens at initialisation (`examples/image_signal.rs`: image rows of two scenes differ
    /// by 12 % of their norm with 1, 36 % with 0.1, 39 % with the random table).
    pub sincos_scale: f32,
    /// Learning-rate multiplier of the vision tower and merger ([`SftOptions::vision_lr_scale`]).
    pub vision_lr_scale: f64,
    /// Loss weight of a class of answer tokens ([`DemoRecipe::weighted`], [`crate::curriculum`]) in the full-answer
    /// phase of SFT (1: plain cross-entropy), held until `class_hold` of that phase and back to 1 at `class_until`.
    pub class_weight: f32,
    pub class_hold: f64,
    pub class_until: f64,
    /// Which tokens the class weight applies to.
    pub weighted: Weighted,
    /// Loss weight of the units digit of every box coordinate for the whole full-answer phase (1: plain). At the
    /// demo's scale one image pixel is five coordinate units, so that digit is mostly unreadable and its gradient
    /// mostly noise ([`crate::curriculum::TokenClass::BoxUnits`]).
    pub units_weight: f32,
    /// Side of the vision patches in pixels of the model-sized image (the demo model's image tokens cover
    /// `2·patch_size` pixels each).
    pub patch_size: usize,
    /// The text model's hidden and MLP sizes instead of those of [`model_config`] (heads keep their count; the
    /// head size follows the width).
    pub text_width: Option<(usize, usize)>,
    /// Share of the SFT time spent first on the answers' heads only ([`answer_head`]: the object count and the
    /// first object's name), before the full answers. 0: full answers throughout.
    pub head_share: f64,
    /// Peak learning rate of the answer-head phase (the full answers use `lr`).
    pub head_lr: f64,
    /// Fresh starts of the answer-head phase when it ends with the image path closed (an image gap below
    /// `closed_gap`, [`super::image_use`]), each from a new initialisation and as long as the first; the
    /// full-answer phase gives up the time they take, so SFT keeps its budget. Only when the head phase lasts at
    /// least `head_retry_min_seconds` (a shorter one is not expected to open the path). Seed 4 of the eleventh
    /// session ended its 1,757 head steps with a gap of 4.9e-8 — a model blind to the image, whatever the rest of
    /// SFT does — where the runs that opened it ended at 0.11–0.12.
    pub head_retries: u32,
    pub head_retry_min_seconds: f64,
    pub closed_gap: f64,
    /// The head learning rate of a fresh start, relative to `head_lr` (a lower rate opened the path where a
    /// higher one had closed it: 5e-4 → 3e-4 on seed 4, eleventh session).
    pub head_retry_lr_scale: f64,
    /// How answers list the objects.
    pub order: ObjectOrder,
    /// GRPO after SFT: learning rate, rollouts per prompt and prompts per step (the rest is the paper's recipe,
    /// [`crate::grpo::GrpoOptions::default`]).
    pub grpo_lr: f64,
    /// Rollout temperature of GRPO.
    pub grpo_temperature: f32,
    pub grpo_group: usize,
    pub grpo_prompts: usize,
    /// GRPO validation (greedy, mean reward on the validation scenes) every this many steps; the best checkpoint
    /// is the one evaluated on the test scenes.
    pub grpo_eval_every: u64,
    /// [`crate::grpo::GrpoOptions::select_margin`]: a GRPO checkpoint is tested instead of the SFT model only when
    /// its validation reward beats the SFT model's by this many paired standard errors.
    pub grpo_select_margin: f64,
    /// [`crate::grpo::GrpoOptions::confirm_margin`] on as many fresh confirmation scenes as validation scenes
    /// (`None`: no confirmation). A checkpoint chosen past the selection margin among ~20–100 validation points is
    /// partly chosen for its luck: in the nineteenth session a run validated every 5 steps picked a checkpoint
    /// +0.257 ± 0.113 ahead on validation that was behind the SFT model on the test scenes (results/demo_grpo.md).
    pub grpo_confirm_margin: Option<f64>,
    /// [`crate::grpo::GrpoOptions::confirm_all`] (diagnostics; off by default).
    pub grpo_confirm_all: bool,
    /// [`crate::grpo::GrpoOptions::baseline`] (the paper's group mean by default).
    pub grpo_baseline: crate::grpo::Baseline,
    /// [`crate::grpo::GrpoOptions::row_credit`] (0: the paper's advantage).
    pub grpo_row_credit: f64,
    /// [`crate::grpo::GrpoOptions::kl_cap`] (`None`, the default: the paper's k3).
    pub grpo_kl_cap: Option<f64>,
    /// [`crate::grpo::GrpoOptions::forced_below`] (ours, twenty-third session; 0.01): constrained rollout tokens
    /// whose step kept less than 1 % of the sampling mass are left out of GRPO's loss. Until then, from seed 10's
    /// SFT model, large steps met such tokens pushed 12–17 nats below the reference: one made a step's gradient norm
    /// 74 (0.25–0.5 otherwise) and cost 0.26 of validation reward; capping the KL term instead let hundreds of them
    /// drift (mean k3 up to 140). Leaving them out (~0.03–0.15 % of the tokens) kept the KL at 0.004–0.02 and the
    /// validation gains rose over 12 steps (results/demo_grpo.md). Applies to constrained rollouts only.
    pub grpo_forced_below: Option<f64>,
    /// [`crate::grpo::GrpoOptions::grammar_weight`] (ours, twenty-sixth session; 1). Constrained GRPO without it
    /// let free decoding drift invalid: from a seed-10 SFT model, ten large steps took the free greedy answers'
    /// strict-gate pass rate on 128 validation scenes from 95.3 % to 75.8 %; with weight 1, the same seeded steps
    /// kept it at 94.5–97.7 % with the same validation gains (results/demo_grpo.md, twenty-sixth session).
    pub grpo_grammar_weight: f64,
    /// [`crate::grpo::GrpoOptions::free_check`]: at every GRPO validation this many validation scenes are also
    /// decoded without the constraint and their strict-gate pass rate logged (`free_check` lines in
    /// `grpo/metrics.jsonl`; the summary's `free_valid_start` and `free_valid_last`). 128: a few seconds a validation.
    pub grpo_free_check: usize,
    /// GRPO in few steps of many prompts when the phase is long enough (`None`: always `grpo_prompts` at
    /// `grpo_lr`); [`DemoRecipe::grpo_steps`].
    pub grpo_large: Option<LargeSteps>,
    /// GRPO's prompts: this many scenes (at most as many as SFT's), cycled in a shuffled order.
    pub grpo_scenes: usize,
    /// `true`: fresh scenes from their own stream ([`super::GRPO_STREAM`]), which SFT never saw; `false`: the first
    /// `grpo_scenes` training scenes, which SFT trained on. Until the
    /// twentieth session GRPO cycled through the first 256 training scenes, whose answers SFT had memorised: the
    /// SFT models' greedy reward was 0.6–0.7 higher on them than on validation scenes, and GRPO raised it further
    /// on them (+0.67 in four steps of 256 prompts) while the validation and confirmation scenes barely moved
    /// (results/demo_grpo.md, "Twentieth session").
    pub grpo_fresh: bool,
    /// [`crate::grpo::GrpoOptions::free_rollouts`] of the small steps (the large ones have their own): of each
    /// prompt's `grpo_group` rollouts, how many are decoded without the TOON constraint, so that answers failing
    /// the strict gate (a relation to an object the answer never listed, a self-loop) score 0 and are pushed down.
    /// 0 in both: in the twenty-first session's large-step runs 2 free rollouts of 8 kept neither the free
    /// rollouts' pass rate from falling nor the greedy reward's gains (results/demo_grpo.md).
    pub grpo_free_rollouts: usize,
}

impl Default for DemoRecipe {
    fn default() -> Self {
        // lr 1e-3 at batch 16 (with shuffled batches): the only setting of the probes in
        // crates/train/results/demo_image_reading.md under which the model starts to read the image on the
        // answer's head; at lr 4e-3 or batch 8 the image-token path collapses into a constant. Trained on full
        // answers from the start, it still collapses (30 minutes: one graph for every image); 30 % of the SFT time on
        // the answers' heads first keeps the image path open (30 minutes: 32 distinct graphs for 32 scenes, name
        // F1 0.58, SGG 0.042). The object count and names weighted ×4 for the first half of the full-answer phase
        // (back to 1 at 80 %) then raised name F1 to 0.87, box F1 to 0.23 and SGG to 0.125 in the same 30 minutes
        // (results/demo_image_reading.md, seventh session). With the CPU training kernels (twice the steps) the
        // answer-head phase at lr 1e-3 left the image path closed in two 30-minute runs and one of two head probes;
        // at lr 5e-4 both probes opened it, earlier and wider (eighth session), so the heads now train at 5e-4
        // over 20 % of the time (~1,450 steps on two cores, the probes' length). Running candle's work on rayon's
        // pool made steps ~15 % faster (eleventh session, ~1,770 head steps), and at 5e-4 seed 4 then ended its heads
        // with the image path closed from two initialisations (gap 5e-8); at 3e-4 it opened (gap 0.049) and seed 2
        // opened wider than at 5e-4 (gap 0.137, head validation loss 0.048; 0.109 / 0.052 before): the heads now
        // train at 3e-4.
        Self {
            lr: 1e-3,
            warmup_ratio: 0.05,
            batch_size: 16,
            adamw: crate::optim::AdamWConfig { beta2: 0.95, ..crate::optim::AdamWConfig::default() },
            fan_in_init: false,
            delta_chunk: 64,
            sincos_scale: 1.0,
            vision_lr_scale: 1.0,
            class_weight: 4.0,
            class_hold: 0.5,
            class_until: 0.8,
            weighted: Weighted::Names,
            units_weight: 1.0,
            patch_size: 8,
            text_width: None,
            head_share: 0.2,
            head_lr: 3e-4,
            head_retries: 1,
            head_retry_min_seconds: 180.0,
            closed_gap: 1e-3,
            head_retry_lr_scale: 0.6,
            order: ObjectOrder::LeftToRight,
            // GRPO from the 30-minute SFT checkpoint (SGG 0.300; ninth session, results/demo_grpo.md): at lr 2e-5
            // (and 5e-6) the greedy validation reward fell from the first 20 steps and the test SGG with it (0.30 →
            // 0.25); at 2e-6 with 4 prompts per step it held and rose. At the paper's temperature 0.9 the rollouts
            // score ~1.2–2 against 3.6 for greedy decoding, so their advantages say little about the greedy answer;
            // at 0.7 the best validation checkpoint raised test relation precision, recall and SGG and lowered both
            // hallucination penalties; at 0.5 no checkpoint beat the start. In two whole demos (seeds 0 and 1) it
            // helped once and hurt once (results/demo_grpo.md): the selection on 16 validation scenes is noisy.
            // On 128 validation and 256 test scenes (tenth session) four runs from seed 1's SFT model lowered the
            // greedy validation reward over their course and none beat the SFT model on the test scenes, while
            // their best validation points were within one paired standard error of the start: a GRPO checkpoint
            // now replaces the SFT model only when it leads by two paired standard errors.
            grpo_lr: 2e-6,
            grpo_temperature: 0.7,
            grpo_group: 8,
            grpo_prompts: 4,
            grpo_eval_every: 20,
            grpo_select_margin: 2.0,
            grpo_confirm_margin: Some(1.0),
            grpo_confirm_all: false,
            grpo_baseline: crate::grpo::Baseline::GroupMean,
            grpo_row_credit: 0.0,
            grpo_kl_cap: None,
            grpo_forced_below: Some(0.01),
            grpo_grammar_weight: 1.0,
            grpo_free_check: 128,
            grpo_scenes: 2048,
            grpo_fresh: true,
            grpo_free_rollouts: 0,
            grpo_large: Some(LargeSteps {
                steps: GrpoSteps {
                    prompts: 256,
                    lr: 1e-4,
                    eval_every: 1,
                    row_credit: 1.0,
                    free_rollouts: 0,
                    select_scenes: 512,
                },
                min_seconds: 600.0,
            }),
        }
    }
}

/// GRPO steps of many prompts (ours, twentieth session; results/demo_grpo.md). The eleventh and sixteenth
/// sessions measured that a step's gradient over 32 rollouts is nearly all noise (expected cosine with the true
/// gradient ~0.05), while one Adam-sized move of 1e-4 per parameter along the gradient of 2,048 rollouts raised the
/// greedy validation reward of seed 10's SFT model by +0.22 ± 0.10 (+0.33 ± 0.13 with row credit). So a long phase
/// takes a few such steps: 256 prompts × `grpo_group` rollouts, one optimizer update at lr 1e-4 (Adam's first
/// update moves every parameter by about its learning rate), validated after every step, with row credit
/// ([`crate::credit`], which tripled the gradient's signal-to-noise ratio there). On fresh scenes this raised the
/// greedy reward on the validation and the confirmation scenes step after step, where 400 steps of 4 prompts did
/// not, and the checkpoints taken raised the test reward of both SFT models it was tried from.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LargeSteps {
    pub steps: GrpoSteps,
    /// Only for a GRPO phase of at least this many seconds: a step of 256 prompts takes 1.5–2.5 minutes on this
    /// 2-core CPU, and the gains above took 5–9 steps.
    pub min_seconds: f64,
}

/// How a GRPO phase steps: prompts per step, learning rate, validation interval (steps), row-credit weight,
/// unconstrained rollouts per prompt, and the fewest validation (and as many confirmation) scenes its checkpoint
/// choice rests on.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct GrpoSteps {
    pub prompts: usize,
    pub lr: f64,
    pub eval_every: u64,
    pub row_credit: f64,
    pub free_rollouts: usize,
    /// Validation and confirmation on at least this many scenes each, however few `--val` asks for (0: `--val`'s).
    /// Large steps: 512. On 128 scenes a paired gain's standard error was 0.13–0.23, so the selection margin (two of
    /// them, ~0.4) rejected every step of the twenty-third session's runs whose gains on fresh scenes held at
    /// +0.2–0.4 from the fifth step on; four times the scenes should halve it (measured: 0.075–0.096
    /// where 128 gave 0.13–0.23). The larger sets cost ~30 s a step on the 2-core CPU (~165 s instead of ~130 s).
    pub select_scenes: usize,
}

impl DemoRecipe {
    /// The steps of a GRPO phase of `seconds`: [`DemoRecipe::grpo_large`]'s when it is long enough, else
    /// `grpo_prompts`, `grpo_lr`, `grpo_eval_every` and `grpo_row_credit`.
    pub fn grpo_steps(&self, seconds: f64) -> GrpoSteps {
        match self.grpo_large {
            Some(l) if seconds >= l.min_seconds => l.steps,
            _ => GrpoSteps {
                prompts: self.grpo_prompts,
                lr: self.grpo_lr,
                eval_every: self.grpo_eval_every,
                row_credit: self.grpo_row_credit,
                free_rollouts: self.grpo_free_rollouts,
                select_scenes: 0,
            },
        }
    }

    /// GRPO's steps as the command lines name them: `auto` ([`DemoRecipe::grpo_large`] when the phase is long
    /// enough), `small` (never large steps) or `large` (large steps however short the phase).
    pub fn set_grpo_steps(&mut self, mode: &str) -> crate::error::Result<()> {
        self.grpo_large = match mode {
            "auto" => self.grpo_large,
            "small" => None,
            "large" => self.grpo_large.map(|l| LargeSteps { min_seconds: 0.0, ..l }),
            _ => {
                return Err(crate::error::TrainError::Input(format!(
                    "--grpo-steps {mode}: expected auto, small or large"
                )))
            }
        };
        Ok(())
    }

    /// How many of each prompt's rollouts GRPO decodes without the constraint, in small and large steps alike.
    pub fn set_free_rollouts(&mut self, k: usize) -> crate::error::Result<()> {
        if k > self.grpo_group {
            return Err(crate::error::TrainError::Input(format!(
                "--grpo-free-rollouts {k}: expected at most the {} rollouts of a prompt",
                self.grpo_group
            )));
        }
        self.grpo_free_rollouts = k;
        if let Some(l) = self.grpo_large.as_mut() {
            l.steps.free_rollouts = k;
        }
        Ok(())
    }

    /// The row-credit weight of GRPO's steps, small and large alike.
    pub fn set_row_credit(&mut self, w: f64) -> crate::error::Result<()> {
        if !w.is_finite() {
            return Err(crate::error::TrainError::Input(format!("--grpo-row-credit {w}: expected a number")));
        }
        self.grpo_row_credit = w;
        if let Some(l) = self.grpo_large.as_mut() {
            l.steps.row_credit = w;
        }
        Ok(())
    }

    /// [`DemoRecipe::grpo_kl_cap`] as the command lines take it: a positive number, or `off` (the paper's k3).
    pub fn set_kl_cap(&mut self, s: &str) -> crate::error::Result<()> {
        self.grpo_kl_cap = number_or_off("--grpo-kl-cap", s, GrpoOptions::valid_kl_cap, "a positive number")?;
        Ok(())
    }

    /// [`DemoRecipe::grpo_grammar_weight`] as the command lines take it: a number ≥ 0 (0: none).
    pub fn set_grammar_weight(&mut self, s: &str) -> crate::error::Result<()> {
        match s.parse::<f64>() {
            Ok(w) if GrpoOptions::valid_grammar_weight(w) => {
                self.grpo_grammar_weight = w;
                Ok(())
            }
            _ => Err(crate::error::TrainError::Input(format!("--grpo-grammar {s}: expected a number ≥ 0"))),
        }
    }

    /// [`DemoRecipe::grpo_forced_below`] as the command lines take it: a share in (0, 1), or `off`.
    pub fn set_forced_below(&mut self, s: &str) -> crate::error::Result<()> {
        self.grpo_forced_below =
            number_or_off("--grpo-forced-below", s, GrpoOptions::valid_forced_below, "a share in (0, 1)")?;
        Ok(())
    }
}

/// An optional number as the command lines take it: `off` (or `none`) for none, else a number `valid` accepts
/// (`expected` says which in the error).
fn number_or_off(
    flag: &str,
    s: &str,
    valid: impl Fn(f64) -> bool,
    expected: &str,
) -> crate::error::Result<Option<f64>> {
    match s {
        "off" | "none" => Ok(None),
        _ => match s.parse::<f64>() {
            Ok(v) if valid(v) => Ok(Some(v)),
            _ => Err(crate::error::TrainError::Input(format!("{flag} {s}: expected {expected} or `off`"))),
        },
    }
}

/// A confirmation margin as the command lines take it: a number of standard errors, or `off` (no confirmation;
/// [`DemoRecipe::grpo_confirm_margin`]).
pub fn parse_confirm_margin(s: &str) -> crate::error::Result<Option<f64>> {
    number_or_off("--grpo-confirm", s, f64::is_finite, "a number of standard errors")
}

/// The token-class weights of the recipe's full-answer phase: the scheduled class weight, and the units digits of
/// the box coordinates at `units_weight` throughout (each only when it is not 1).
pub fn recipe_weights(r: &DemoRecipe, tokenizer: &Tokenizer) -> Vec<TokenWeight> {
    let mut out = Vec::new();
    if r.class_weight != 1.0 {
        let class = match r.weighted {
            Weighted::Digits => TokenWeight::digits,
            Weighted::BoxUnits => TokenWeight::box_units,
            Weighted::Names => TokenWeight::names,
        };
        out.push(class(tokenizer, r.class_weight, r.class_hold, r.class_until));
    }
    if r.units_weight != 1.0 {
        out.push(TokenWeight::box_units(tokenizer, r.units_weight, 1.0, 1.0));
    }
    out
}

/// Rescales the normal-initialised linear weights of `weights` to `N(0, 1/fan_in)`; the projections that write
/// into the residual stream (`o_proj`, `out_proj`, `down_proj`, the vision blocks' `proj`/`linear_fc2`) are scaled
/// by a further `1/sqrt(2·layers)` so the stream does not grow with depth. Embeddings, position tables, norms and
/// the delta-rule parameters keep their values.
pub fn fan_in_init(weights: &mut std::collections::HashMap<String, Tensor>, cfg: &Config) -> Result<()> {
    let text_layers = cfg.text_config.num_hidden_layers.max(1) as f64;
    let vision_layers = cfg.vision_config.depth.max(1) as f64;
    for (name, t) in weights.iter_mut() {
        let linear = name.ends_with(".weight")
            && (t.rank() == 2 || name.contains("patch_embed"))
            && !name.contains("embed_tokens")
            && !name.contains("pos_embed")
            && !name.contains("norm");
        if !linear {
            continue;
        }
        let fan_in: usize = t.dims()[1..].iter().product();
        let residual =
            ["o_proj", "out_proj", "down_proj", "attn.proj", "mlp.linear_fc2"].iter().any(|k| name.contains(k));
        let depth = if name.starts_with("model.visual.") { vision_layers } else { text_layers };
        let mut std = 1.0 / (fan_in.max(1) as f64).sqrt();
        if residual && !name.contains("merger") {
            std /= (2.0 * depth).sqrt();
        }
        // The stored weights are N(0, 0.02): rescaling keeps the seeded draw.
        *t = (&*t * (std / 0.02))?;
    }
    Ok(())
}

/// The demo model at initialisation: seeded random weights (rescaled with [`fan_in_init`] if the recipe says so)
/// and the fixed sine/cosine vision position table, everything trainable.
pub fn init_policy(cfg: &Config, r: &DemoRecipe, seed: u64, device: &Device) -> Result<Policy> {
    let mut weights = checkpoint::random_weights(cfg, seed, &Device::Cpu)?;
    if r.fan_in_init {
        fan_in_init(&mut weights, cfg)?;
    }
    let v = &cfg.vision_config;
    let side = (v.num_position_embeddings as f64).sqrt() as usize;
    weights.insert(
        "model.visual.pos_embed.weight".into(),
        Tensor::from_vec(
            sincos_2d(side, v.hidden_size).into_iter().map(|x| x * r.sincos_scale).collect::<Vec<_>>(),
            (side * side, v.hidden_size),
            &Device::Cpu,
        )?,
    );
    Policy::from_tensors(cfg.clone(), weights, Freeze { vit: false, aligner: false }, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmation_margin_is_a_finite_number_or_off() {
        assert_eq!(parse_confirm_margin("1.5").unwrap(), Some(1.5));
        assert_eq!(parse_confirm_margin("off").unwrap(), None);
        for bad in ["", "inf", "NaN", "one"] {
            let e = parse_confirm_margin(bad).unwrap_err().to_string();
            assert!(e.contains("expected a number of standard errors or `off`"), "{bad}: {e}");
        }
    }
}
