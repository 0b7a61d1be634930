//! `sgvlm toon …`: validate, show and convert scene-graph texts.

use super::input::{display_name, read_text};
use super::render;
use crate::cli::{ConvertArgs, Format, ShowArgs, ToonCommand, ValidateArgs};
use crate::output::Out;
use anyhow::Context;
use serde_json::json;
use sgvlm_graph::{strict, toon, SceneGraph, Schema, StrictConfig};
use std::process::ExitCode;

pub fn run(cmd: ToonCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ToonCommand::Validate(a) => validate(a),
        ToonCommand::Show(a) => show(a),
        ToonCommand::Convert(a) => convert(a),
    }
}

/// `ok: 7 objects, 5 relations` (AG: pairs and atomic relations).
pub fn summary(g: &SceneGraph) -> String {
    match g {
        SceneGraph::Triplet(t) => format!("ok: {} objects, {} relations", t.objects.len(), t.relations.len()),
        SceneGraph::Ag(a) => format!(
            "ok: {} objects, {} pairs, {} atomic relations",
            a.objects.len(),
            a.pairs.len(),
            g.atomic_relation_count()
        ),
    }
}

fn validate(a: ValidateArgs) -> anyhow::Result<ExitCode> {
    let cfg = a.gate.config();
    let schema: Schema = a.schema.into();
    if let Some(path) = &a.jsonl {
        return validate_jsonl(path, &a.field, schema, &cfg);
    }
    let text = read_text(&a.file)?;
    let mut out = Out::new();
    match strict::parse(&text, schema, &cfg) {
        Ok(g) => {
            out.line(&summary(&g))?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            out.line(&format!("invalid: {e}"))?;
            out.flush()?;
            Ok(ExitCode::from(1))
        }
    }
}

fn validate_jsonl(path: &std::path::Path, field: &str, schema: Schema, cfg: &StrictConfig) -> anyhow::Result<ExitCode> {
    let name = display_name(path);
    let text = read_text(path)?;
    let mut out = Out::new();
    let (mut n, mut valid, mut unreadable) = (0usize, 0usize, 0usize);
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        n += 1;
        let row = match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => match v.get(field) {
                Some(serde_json::Value::String(s)) => match strict::parse(s, schema, cfg) {
                    Ok(_) => {
                        valid += 1;
                        json!({"valid": true, "error": null})
                    }
                    Err(e) => json!({"valid": false, "error": e.to_string()}),
                },
                Some(serde_json::Value::Array(msgs)) => {
                    // A message list: the reference takes the first message's content.
                    match msgs.first().and_then(|m| m.get("content")).and_then(|c| c.as_str()) {
                        Some(s) => match strict::parse(s, schema, cfg) {
                            Ok(_) => {
                                valid += 1;
                                json!({"valid": true, "error": null})
                            }
                            Err(e) => json!({"valid": false, "error": e.to_string()}),
                        },
                        None => {
                            unreadable += 1;
                            json!({"valid": false, "error": format!("{name}:{}: field `{field}` is a list without a `content` string", i + 1)})
                        }
                    }
                }
                Some(_) => {
                    unreadable += 1;
                    json!({"valid": false, "error": format!("{name}:{}: field `{field}` is not a string", i + 1)})
                }
                None => {
                    unreadable += 1;
                    json!({"valid": false, "error": format!("{name}:{}: no field `{field}`", i + 1)})
                }
            },
            Err(e) => {
                unreadable += 1;
                json!({"valid": false, "error": format!("{name}:{}: not JSON: {e}", i + 1)})
            }
        };
        out.line(&row.to_string())?;
    }
    out.flush()?;
    eprintln!("{name}: {n} rows, {valid} valid, {} invalid ({unreadable} unreadable rows)", n - valid);
    Ok(ExitCode::SUCCESS)
}

fn parse_input(path: &std::path::Path, schema: Schema, cfg: &StrictConfig) -> anyhow::Result<SceneGraph> {
    let text = read_text(path)?;
    let name = display_name(path);
    if text.trim_start().starts_with('{') {
        anyhow::ensure!(schema == Schema::Triplet, "{name}: R1-SGG JSON input exists for the triplet schema only");
        let g =
            sgvlm_graph::json::from_r1sgg_str(&text).with_context(|| format!("{name}: not a valid R1-SGG graph"))?;
        return Ok(SceneGraph::Triplet(g));
    }
    strict::parse(&text, schema, cfg).map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

fn show(a: ShowArgs) -> anyhow::Result<ExitCode> {
    let cfg = a.gate.config();
    let name = display_name(&a.file);
    let text = read_text(&a.file)?;
    let mut out = Out::new();
    match strict::parse(&text, a.schema.into(), &cfg) {
        Ok(g) => {
            if a.json {
                out.line(&serde_json::to_string_pretty(&g)?)?;
            } else {
                out.raw(&render::table(&g))?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{name}: invalid: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn convert(a: ConvertArgs) -> anyhow::Result<ExitCode> {
    let cfg = a.gate.config();
    let g = parse_input(&a.file, a.schema.into(), &cfg)?;
    let text = match a.to {
        Format::Json => match &g {
            SceneGraph::Triplet(t) => sgvlm_graph::json::to_r1sgg_string(t),
            SceneGraph::Ag(_) => anyhow::bail!("R1-SGG JSON exists for the triplet schema only (use --to toon-spec)"),
        },
        Format::Toon => toon::encode_paper(&g),
        Format::ToonRaw => toon::encode(&g, &toon::Layout::RAW),
        Format::ToonSpec => toon::spec::encode_graph(&g),
    };
    let mut out = Out::new();
    out.raw(&text)?;
    if !text.ends_with('\n') {
        out.raw("\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
