//! Token statistics of the paper's Table 3: the same annotation serialised as JSON and as TOON, token lengths of
//! each (min / mean / median / max) and the compression `JSON tokens ÷ TOON tokens`.
//!
//! The reference has no JSON serialiser (reference_facts §1.5); the JSON side here is the form the PSG source rows
//! use, R1-SGG's `{"objects": [{"id": "<name>.<k>", "bbox": [...]}], "relationships": [{"subject", "predicate",
//! "object"}]}`, written as Python's `json.dumps` does by default (`", "` and `": "` separators), which is how the
//! Python tools produce it. Action Genome graphs, which have no such source form, are written as their serde form
//! (`objects` with `id`/`name`/`bbox`, `rel_pairs` with the three label lists) in the same style. The TOON side is
//! the answer body between `<answer>` and `</answer>`, as stored.
//!
//! Counting is a closure, so this module needs no tokenizer; the CLI passes the real Qwen3.5 one.

use serde::Serialize;
use serde_json::Value;
use sgvlm_graph::{strict, SceneGraph, Schema, StrictConfig};

/// The answer text of a JSON-lines row: GRPO `solution`, the last assistant message of an SFT row, or the
/// reference's dense `answer_toon`.
pub fn answer_of(row: &Value) -> Option<&str> {
    if let Some(s) = row.get("solution").and_then(Value::as_str) {
        return Some(s);
    }
    if let Some(msgs) = row.get("messages").and_then(Value::as_array) {
        let last = msgs.iter().rev().find(|m| m.get("role").and_then(Value::as_str) == Some("assistant"));
        if let Some(c) = last.and_then(|m| m.get("content")).and_then(Value::as_str) {
            return Some(c);
        }
    }
    row.get("answer_toon").and_then(Value::as_str)
}

/// Compact JSON (as serde writes it, keys in field order) respaced as Python's `json.dumps` writes it by default:
/// `", "` and `": "` between items, non-ASCII escaped as `\uXXXX`.
pub fn py_spaced(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len() + compact.len() / 4);
    let (mut in_str, mut escaped) = (false, false);
    for c in compact.chars() {
        if in_str {
            if !c.is_ascii() {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
                continue;
            }
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        out.push(c);
        match c {
            '"' => in_str = true,
            ',' | ':' => out.push(' '),
            _ => {}
        }
    }
    out
}

/// The TOON body and the JSON text of one answer; an answer that parses as neither schema is an error.
pub fn texts(answer: &str) -> Result<(String, String), String> {
    let cfg = StrictConfig { max_objects: usize::MAX, max_relations: usize::MAX, ..StrictConfig::default() };
    let graph = strict::parse(answer, Schema::Triplet, &cfg)
        .or_else(|_| strict::parse(answer, Schema::Ag, &cfg))
        .map_err(|e| format!("not a TOON scene graph: {e}"))?;
    let json = match &graph {
        SceneGraph::Triplet(g) => sgvlm_graph::json::to_r1sgg_string(g),
        SceneGraph::Ag(g) => serde_json::to_string(g).map_err(|e| e.to_string())?,
    };
    let body = answer.split_once("<answer>").map_or(answer, |(_, b)| b);
    let body = body.split_once("</answer>").map_or(body, |(b, _)| b);
    Ok((body.trim().to_owned(), py_spaced(&json)))
}

/// min / mean / median / max of a list of lengths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub min: usize,
    pub mean: f64,
    pub median: f64,
    pub max: usize,
}

impl Summary {
    pub fn of(v: &[usize]) -> Summary {
        if v.is_empty() {
            return Summary::default();
        }
        let mut s = v.to_vec();
        s.sort_unstable();
        let n = s.len();
        let median = if n % 2 == 1 { s[n / 2] as f64 } else { (s[n / 2 - 1] + s[n / 2]) as f64 / 2.0 };
        Summary { min: s[0], mean: s.iter().sum::<usize>() as f64 / n as f64, median, max: s[n - 1] }
    }
}

/// Table 3 for one file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TokenStats {
    pub rows: usize,
    pub json: Summary,
    pub toon: Summary,
    /// Mean JSON length ÷ mean TOON length.
    pub compression: f64,
    /// Median of the per-row ratios.
    pub compression_median: f64,
    /// Rows where TOON is longer than JSON.
    pub toon_longer: usize,
}

/// Statistics over `(json_tokens, toon_tokens)` pairs.
pub fn stats(pairs: &[(usize, usize)]) -> TokenStats {
    let (j, t): (Vec<usize>, Vec<usize>) = pairs.iter().copied().unzip();
    let (js, ts) = (Summary::of(&j), Summary::of(&t));
    let mut ratios: Vec<f64> = pairs.iter().filter(|p| p.1 > 0).map(|&(a, b)| a as f64 / b as f64).collect();
    ratios.sort_by(f64::total_cmp);
    let n = ratios.len();
    let compression_median = match n {
        0 => 0.0,
        _ if n % 2 == 1 => ratios[n / 2],
        _ => (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0,
    };
    TokenStats {
        rows: pairs.len(),
        json: js,
        toon: ts,
        compression: if ts.mean > 0.0 { js.mean / ts.mean } else { 0.0 },
        compression_median,
        toon_longer: pairs.iter().filter(|p| p.1 > p.0).count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_dumps_style() {
        assert_eq!(
            py_spaced(r#"{"a":[1,"é, \":x"],"b":{"c":null}}"#),
            r#"{"a": [1, "\u00e9, \":x"], "b": {"c": null}}"#
        );
    }

    #[test]
    fn both_serialisations_of_an_answer() {
        let a = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,1,2,30,40\n2,grass-merged,0,30,64,48\nrel[1]{subj,pred,obj}:\n\
                 1,standing-on,2\n</answer>\n";
        let (toon, js) = texts(a).unwrap();
        assert!(toon.starts_with("obj[2]") && toon.ends_with("1,standing-on,2"));
        assert_eq!(
            js,
            r#"{"objects": [{"id": "person.1", "bbox": [1, 2, 30, 40]}, {"id": "grass-merged.2", "bbox": [0, 30, 64, 48]}], "relationships": [{"subject": "person.1", "predicate": "standing-on", "object": "grass-merged.2"}]}"#
        );
        assert!(texts("<answer>\nhello\n</answer>").is_err());
        let row = json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": a}]});
        assert_eq!(answer_of(&row), Some(a));
    }

    #[test]
    fn summary_and_compression() {
        let s = stats(&[(10, 5), (30, 10), (4, 5)]);
        assert_eq!((s.json.min, s.json.max, s.json.median, s.toon.median), (4, 30, 10.0, 5.0));
        assert!((s.compression - (44.0 / 3.0) / (20.0 / 3.0)).abs() < 1e-12);
        assert!((s.compression_median - 2.0).abs() < 1e-12);
        assert_eq!((s.rows, s.toon_longer), (3, 1));
    }
}
