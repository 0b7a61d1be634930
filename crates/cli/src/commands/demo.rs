//! `sgvlm demo`: the synthetic end-to-end proof (`sgvlm_train::demo`): scenes → tiny model from random weights →
//! SFT → GRPO → strict evaluation of the three stages, with a results table, JSON and rendered reports.
//! `sgvlm demo --examples` validates the bundled model outputs through the strict gate and pretty-prints them.

use super::render;
use super::toon::summary;
use crate::cli::DemoArgs;
use crate::output::{print_json_line, Out};
use anyhow::Context;
use sgvlm_graph::{strict, toon, Schema, StrictConfig};
use sgvlm_report::{write_report, ReportInput, Sample};
use sgvlm_train::demo::{DemoOptions, DemoRecipe, DemoResult};
use std::process::ExitCode;

const EXAMPLES: [(&str, Schema, &str); 2] = [
    ("PSG model output", Schema::Triplet, include_str!("../../../../examples/model_output_psg.txt")),
    ("Action Genome model output", Schema::Ag, include_str!("../../../../examples/model_output_ag.txt")),
];

/// Test scenes drawn in each stage's report (the summaries and tables cover every test scene).
const RENDERED: usize = 32;

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if args.examples {
        return examples();
    }
    synthetic(&args)
}

fn synthetic(a: &DemoArgs) -> anyhow::Result<ExitCode> {
    let (w, h) = a
        .image_size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .filter(|(w, h)| w % 16 == 0 && h % 16 == 0 && *w > 0 && *h > 0)
        .with_context(|| format!("--image-size `{}`: expected WxH, multiples of 16 (e.g. 128x96)", a.image_size))?;
    anyhow::ensure!(
        a.sft_share > 0.0 && a.sft_share <= 1.0,
        "--sft-share {}: expected a share of the budget in (0, 1]",
        a.sft_share
    );
    anyhow::ensure!(a.batch_size != Some(0), "--batch-size 0: expected at least one scene per step");
    std::fs::create_dir_all(&a.out).with_context(|| format!("Failed to create `{}`", a.out.display()))?;
    let o = DemoOptions {
        minutes: a.minutes,
        train_scenes: a.train,
        val_scenes: a.val.unwrap_or(a.test),
        test_scenes: a.test,
        image_size: (w, h),
        large: a.large,
        seed: a.seed,
        sft_share: a.sft_share,
        device: super::train::device(&a.device)?,
        out: Some(a.out.clone()),
        free_rollouts: a.free_rollouts,
        threads: a.threads,
        from_sft: a.from_sft.clone(),
    };
    let bar = super::train::Bar::new();
    let mut recipe = DemoRecipe::default();
    if let Some(b) = a.batch_size {
        recipe.batch_size = b;
    }
    recipe.grpo_confirm_margin = sgvlm_train::demo::parse_confirm_margin(&a.grpo_confirm)?;
    recipe.grpo_baseline = a
        .grpo_baseline
        .parse()
        .map_err(|_| anyhow::anyhow!("--grpo-baseline {}: expected group_mean or greedy", a.grpo_baseline))?;
    recipe.set_grpo_steps(&a.grpo_steps)?;
    if let Some(k) = a.grpo_free_rollouts {
        recipe.set_free_rollouts(k)?;
    }
    if let Some(w) = a.grpo_row_credit {
        recipe.set_row_credit(w)?;
    }
    if let Some(c) = &a.grpo_kl_cap {
        recipe.set_kl_cap(c)?;
    }
    if let Some(f) = &a.grpo_forced_below {
        recipe.set_forced_below(f)?;
    }
    if let Some(g) = &a.grpo_grammar {
        recipe.set_grammar_weight(g)?;
    }
    let r = sgvlm_train::demo::run_with(&o, &recipe, &bar)?;
    // Test images at 640×480 for the rendered reports (the first RENDERED test scenes; the metrics cover all).
    let img_dir = a.out.join("images");
    std::fs::create_dir_all(&img_dir).with_context(|| format!("Failed to create `{}`", img_dir.display()))?;
    let mut paths = Vec::new();
    for (i, s) in r.test.iter().take(RENDERED).enumerate() {
        let p = img_dir.join(format!("test_{i:04}.png"));
        s.rgb640.save(&p).with_context(|| format!("Failed to write `{}`", p.display()))?;
        paths.push(p);
    }
    for st in &r.stages {
        let samples: Vec<Sample> = r
            .test
            .iter()
            .zip(&st.predictions)
            .zip(&st.rows)
            .take(RENDERED)
            .enumerate()
            .map(|(i, ((s, pred), row))| Sample {
                line: i + 1,
                gt: sgvlm_graph::eval_parse::parse(&s.answer),
                pred: sgvlm_graph::eval_parse::parse(pred),
                image: Some(paths[i].clone()),
                sgg_score: row.strict_sgg_score,
                toon_valid: row.toon_valid,
            })
            .collect();
        let name = format!("{}_{}", st.stage, st.decoding).replace(['+', ' '], "_").to_lowercase();
        let dir = a.out.join("report").join(name);
        let input = ReportInput { summary: &st.summary, per_predicate: None, samples: &samples, canvas: (640, 480) };
        write_report(&dir, &input).with_context(|| format!("Failed to write the report in `{}`", dir.display()))?;
        write_predictions(&dir.join("predictions.jsonl"), &r.test, &st.predictions)?;
    }
    let table = results_table(&r);
    eprintln!("{table}");
    let md = a.out.join("results.md");
    std::fs::write(&md, &table).with_context(|| format!("Failed to write `{}`", md.display()))?;
    let json = serde_json::to_string_pretty(&r)?;
    let jp = a.out.join("results.json");
    std::fs::write(&jp, format!("{json}\n")).with_context(|| format!("Failed to write `{}`", jp.display()))?;
    print_json_line(&r)?;
    Ok(ExitCode::SUCCESS)
}

/// Every test scene's answer and prediction as rows `sgvlm eval --input` reads (`content`, `predict`), with the
/// strict gate's verdict (`strict_error`: `null` when the prediction passes, else the reason and line).
fn write_predictions(
    path: &std::path::Path,
    test: &[sgvlm_train::demo::Scene],
    preds: &[String],
) -> anyhow::Result<()> {
    let cfg = StrictConfig::default();
    let mut text = String::new();
    for (i, (s, p)) in test.iter().zip(preds).enumerate() {
        let error = strict::parse(p, Schema::Triplet, &cfg).err().map(|e| e.to_string());
        let row = serde_json::json!({"line": i + 1, "content": s.answer, "predict": p, "strict_error": error});
        text.push_str(&row.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("Failed to write `{}`", path.display()))
}

/// The three stages side by side (Markdown).
fn results_table(r: &DemoResult) -> String {
    let mut t = format!(
        "Synthetic demo: {} parameters, {} training scenes, {} test scenes, {:.1} min\n\n\
         | stage | decoding | SGG | obj F1 | rel P | rel R | rel F1 | name F1 | box F1 | failure (eval) | strict-gate failure | mean reward | object hallucination | relation hallucination |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        r.parameters,
        r.train_scenes,
        r.test_scenes,
        r.seconds / 60.0
    );
    for s in &r.stages {
        let m = &s.summary;
        t.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1}% | {:.1}% | {:.2} | {:.3} | {:.3} |\n",
            s.stage,
            s.decoding,
            m.sgg_strict,
            m.obj_f1_strict,
            m.rel_p_strict,
            m.rel_r_strict,
            m.rel_f1_strict,
            s.name_f1,
            s.box_f1,
            m.invalid_rate_pct,
            100.0 * s.strict_failure_rate,
            s.mean_reward,
            s.reward_term("sgg_obj_hallucination_penalty"),
            s.reward_term("sgg_edge_hallucination_penalty")
        ));
    }
    t.push_str(&format!(
        "\nSFT: {} steps, loss {:.3} → {:.3}, validation loss {:.3}",
        r.sft.steps,
        r.sft.first_loss.unwrap_or(f64::NAN),
        r.sft.last_loss.unwrap_or(f64::NAN),
        r.sft.val_loss.unwrap_or(f64::NAN)
    ));
    for u in &r.image_use {
        t.push_str(&format!(
            "\nImage use after {}: validation loss {:.4} with each scene's image, {:.4} with another scene's (gap {:.2e}; \
             ~0 means the model ignores the image)",
            u.after, u.own_images_loss, u.rotated_images_loss, u.gap
        ));
    }
    if let Some(g) = &r.grpo {
        t.push_str(&format!(
            "\nGRPO: {} steps, rollout reward {:.3} → {:.3} (means of the first and the last ten steps, or halves of a shorter run), tested: step {} \
             (validation reward {:.3}, {:+.3} ± {:.3} over the SFT model; step 0 is the SFT model)",
            g.steps,
            g.early_reward.unwrap_or(f64::NAN),
            g.late_reward.unwrap_or(f64::NAN),
            g.best_step.unwrap_or(0),
            g.best_val_reward.unwrap_or(f64::NAN),
            g.best_gain.unwrap_or(f64::NAN),
            g.best_gain_se.unwrap_or(f64::NAN),
        ));
        if let (Some(c), Some(se)) = (g.confirm_gain, g.confirm_gain_se) {
            t.push_str(&format!("; on the confirmation scenes {c:+.3} ± {se:.3}"));
        }
        if g.unconfirmed > 0 {
            t.push_str(&format!(
                "; {} checkpoint(s) past the validation margin were not confirmed on fresh scenes",
                g.unconfirmed
            ));
        }
    }
    t.push_str(
        "\nThe hallucination columns are the mean GRPO penalties on the test scenes (0 is best, -1 worst; an invalid \
         answer scores 0, so read them with the failure columns).\n",
    );
    t
}

fn examples() -> anyhow::Result<ExitCode> {
    let cfg = StrictConfig::default();
    let mut out = Out::new();
    for (title, schema, text) in EXAMPLES {
        out.line(&format!("== {title} ({}) ==", schema.as_str()))?;
        match strict::parse(text, schema, &cfg) {
            Ok(g) => {
                out.line(&format!("strict gate: {}", summary(&g)))?;
                out.raw(&render::table(&g))?;
                out.line("as spec-conformant TOON:")?;
                out.line(&toon::spec::encode_graph(&g))?;
            }
            Err(e) => {
                out.line(&format!("strict gate: invalid: {e}"))?;
                return Ok(ExitCode::from(1));
            }
        }
        out.line("")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
