//! MS-SWIFT input rows (`{"messages": [...], "images": [...], ...}`) and the reference's output rows.
//!
//! Reading never fails as a whole: a line that is not JSON, or a row without a user message, becomes a [`Sample`]
//! error that the runners turn into an error row (`predict: ""`, `gen_time_sec: null`, `predict_error`), so the
//! output keeps one row per input row.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use sgvlm_graph::pytext::strip;
use std::path::{Path, PathBuf};

/// One non-blank line of the input file.
#[derive(Debug, Clone)]
pub struct InputRow {
    /// Position among the non-blank lines (0-based); output rows carry it as `index`.
    pub index: usize,
    /// 1-based line number in the file, for messages.
    pub line: usize,
    /// The row's `messages` and `images` exactly as written (None when absent or the line is not JSON), so output
    /// rows can repeat them without reordering keys.
    pub raw_messages: Option<Box<RawValue>>,
    pub raw_images: Option<Box<RawValue>>,
    pub sample: Result<Sample, String>,
}

/// What a runner needs from a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The first user message's content, stripped (as the reference's `get_user_text`).
    pub user: String,
    /// The first assistant message's content, stripped; None when the row has none.
    pub gt: Option<String>,
    /// Image paths resolved against the images root.
    pub images: Vec<PathBuf>,
}

/// Reads an MS-SWIFT JSON-lines file. Relative image paths are taken under `images_root`, or else under the
/// input file's folder.
pub fn read_rows(path: &Path, images_root: Option<&Path>) -> std::io::Result<Vec<InputRow>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("failed to read {}: {e}", path.display())))?;
    let base =
        images_root.map(Path::to_path_buf).unwrap_or_else(|| path.parent().map(Path::to_path_buf).unwrap_or_default());
    Ok(parse_rows(&text, &base, &path.display().to_string()))
}

/// [`read_rows`] over text already in memory; `name` is used in messages.
pub fn parse_rows(text: &str, base: &Path, name: &str) -> Vec<InputRow> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !strip(l).is_empty())
        .enumerate()
        .map(|(index, (i, line))| {
            let line_no = i + 1;
            let not_json = |e: serde_json::Error| InputRow {
                index,
                line: line_no,
                raw_messages: None,
                raw_images: None,
                sample: Err(format!("{name}:{line_no}: not a JSON row: {e}")),
            };
            let parsed =
                serde_json::from_str::<Value>(line).and_then(|v| Ok((v, serde_json::from_str::<RawParts>(line)?)));
            match parsed {
                Ok((value, parts)) => InputRow {
                    index,
                    line: line_no,
                    raw_messages: parts.messages,
                    raw_images: parts.images,
                    sample: sample_of(&value, base).map_err(|e| format!("{name}:{line_no}: {e}")),
                },
                Err(e) => not_json(e),
            }
        })
        .collect()
}

#[derive(Deserialize)]
struct RawParts {
    messages: Option<Box<RawValue>>,
    images: Option<Box<RawValue>>,
}

fn message_text(raw: &Value, role: &str) -> Result<Option<String>, String> {
    let Some(messages) = raw.get("messages") else { return Err("no `messages` field".into()) };
    let Some(messages) = messages.as_array() else { return Err("`messages` is not a list".into()) };
    for m in messages {
        if m.get("role").and_then(Value::as_str) == Some(role) {
            return match m.get("content") {
                None | Some(Value::Null) => Ok(Some(String::new())),
                Some(Value::String(s)) => Ok(Some(strip(s).to_string())),
                Some(_) => Err(format!("the {role} message's `content` is not a string")),
            };
        }
    }
    Ok(None)
}

fn sample_of(raw: &Value, base: &Path) -> Result<Sample, String> {
    let user = message_text(raw, "user")?.ok_or("no user message")?;
    let gt = message_text(raw, "assistant")?;
    let images = match raw.get("images") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(|p| resolve(base, p)).ok_or("an `images` entry is not a string"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`images` is not a list".into()),
    };
    Ok(Sample { user, gt, images })
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Reads the images of a sample (the request's encoded bytes).
pub fn load_images(sample: &Sample) -> Result<Vec<std::sync::Arc<Vec<u8>>>, String> {
    if sample.images.is_empty() {
        return Err("no images in sample".into());
    }
    sample
        .images
        .iter()
        .map(|p| std::fs::read(p).map(std::sync::Arc::new).map_err(|e| format!("{}: {e}", p.display())))
        .collect()
}

/// One output row, field for field the reference's (plus `index`, the input position, which makes runs resumable).
#[derive(Debug, Clone, Serialize)]
pub struct OutputRow {
    pub messages: Box<RawValue>,
    pub images: Option<Box<RawValue>>,
    pub content: String,
    pub predict: String,
    pub model_name: String,
    pub gen_time_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predict_error: Option<String>,
    pub index: usize,
}

impl OutputRow {
    /// An error row: the user prompt that was (or would have been) sent, an empty assistant turn.
    pub fn error(row: &InputRow, user: &str, model_name: &str, error: String) -> Self {
        let gt = row.sample.as_ref().ok().and_then(|s| s.gt.clone()).unwrap_or_default();
        OutputRow {
            messages: user_and_assistant(user, ""),
            images: row.raw_images.clone(),
            content: gt,
            predict: String::new(),
            model_name: model_name.to_string(),
            gen_time_sec: None,
            predict_error: Some(error),
            index: row.index,
        }
    }

    /// The row as one JSON line (Python `json.dumps(..., ensure_ascii=False)` spacing), without the newline.
    pub fn to_line(&self) -> String {
        // Serialising plain strings, numbers and already-parsed values cannot fail.
        sgvlm_data::export::py_json(self).unwrap_or_default()
    }
}

#[derive(Serialize)]
struct Turn<'a> {
    role: &'a str,
    content: &'a str,
}

/// `[{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]`, Python-spaced.
pub fn user_and_assistant(user: &str, assistant: &str) -> Box<RawValue> {
    let turns = [Turn { role: "user", content: user }, Turn { role: "assistant", content: assistant }];
    let text = sgvlm_data::export::py_json(&turns).unwrap_or_else(|_| "[]".into());
    RawValue::from_string(text).unwrap_or_else(|_| empty_list())
}

fn empty_list() -> Box<RawValue> {
    RawValue::from_string("[]".into()).expect("`[]` is JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_and_reports_bad_ones_by_line() {
        let text = "{\"messages\":[{\"role\":\"user\",\"content\":\" <image>\\nhi \"},{\"role\":\"assistant\",\"content\":\"gt\\n\"}],\"images\":[\"a/1.png\",\"/abs/2.png\"]}\n\nnot json\n{\"messages\":[{\"role\":\"assistant\",\"content\":\"x\"}]}\n";
        let rows = parse_rows(text, Path::new("/root"), "in.jsonl");
        assert_eq!(rows.len(), 3);
        let s = rows[0].sample.as_ref().unwrap();
        assert_eq!(s.user, "<image>\nhi");
        assert_eq!(s.gt.as_deref(), Some("gt"));
        assert_eq!(s.images, vec![PathBuf::from("/root/a/1.png"), PathBuf::from("/abs/2.png")]);
        assert_eq!((rows[1].index, rows[1].line), (1, 3));
        assert!(rows[1].sample.as_ref().unwrap_err().starts_with("in.jsonl:3: not a JSON row"));
        assert_eq!(rows[2].sample.as_ref().unwrap_err(), "in.jsonl:4: no user message");
    }

    #[test]
    fn error_rows_have_the_reference_shape() {
        let rows = parse_rows("{\"messages\":[{\"role\":\"user\",\"content\":\"p\"},{\"role\":\"assistant\",\"content\":\"g\"}],\"images\":[\"x.png\"]}", Path::new("."), "f");
        let line = OutputRow::error(&rows[0], "p", "m", "boom".into()).to_line();
        assert_eq!(
            line,
            r#"{"messages": [{"role": "user", "content": "p"}, {"role": "assistant", "content": ""}], "images": ["x.png"], "content": "g", "predict": "", "model_name": "m", "gen_time_sec": null, "predict_error": "boom", "index": 0}"#
        );
    }
}
