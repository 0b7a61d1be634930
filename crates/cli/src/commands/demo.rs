//! `sgvlm demo`: the main job on embedded data. Today: validate a bundled model output through the strict gate and
//! pretty-print the graph it describes; it grows into the synthetic end-to-end pipeline.

use super::render;
use super::toon::summary;
use crate::output::Out;
use sgvlm_graph::{strict, toon, Schema, StrictConfig};
use std::process::ExitCode;

const EXAMPLES: [(&str, Schema, &str); 2] = [
    ("PSG model output", Schema::Triplet, include_str!("../../../../examples/model_output_psg.txt")),
    ("Action Genome model output", Schema::Ag, include_str!("../../../../examples/model_output_ag.txt")),
];

pub fn run() -> anyhow::Result<ExitCode> {
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
