//! MS-SWIFT JSON Lines rows as `sgvlm data prepare` writes them: SFT rows (`messages` = user + assistant, `images`)
//! and GRPO rows (`messages` = user, `solution`, `images`). Image paths are taken as written when absolute, else
//! relative to the JSONL file's folder (or the folder above it, where `prepare` puts `grpo/*.jsonl`). A bad line is skipped and counted, with its first error kept for the report.

use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError};

/// One row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based line number in its file.
    pub line: usize,
    pub user: String,
    /// The assistant message (SFT rows).
    pub answer: Option<String>,
    /// The reference answer (GRPO rows).
    pub solution: Option<String>,
    pub image: Option<PathBuf>,
}

/// Rows read from a file, and what was skipped.
#[derive(Debug, Default)]
pub struct Rows {
    pub rows: Vec<Row>,
    pub skipped: usize,
    pub first_error: Option<String>,
}

fn parse_line(
    v: &serde_json::Value,
    base: &Path,
) -> std::result::Result<(String, Option<String>, Option<PathBuf>), String> {
    let messages = v.get("messages").and_then(|m| m.as_array()).ok_or("no `messages` list")?;
    let text = |role: &str| {
        messages
            .iter()
            .find(|m| m.get("role").and_then(|r| r.as_str()) == Some(role))
            .and_then(|m| m.get("content"))
            .and_then(|c| c.as_str())
            .map(str::to_string)
    };
    let user = text("user").ok_or("no user message")?;
    let image = match v.get("images").and_then(|i| i.as_array()).map(|a| a.as_slice()) {
        None | Some([]) => None,
        Some([one]) => {
            let p = one.as_str().ok_or("`images[0]` is not a path")?;
            let p = PathBuf::from(p);
            Some(if p.is_absolute() {
                p
            } else {
                // `data prepare` writes paths relative to its output folder; GRPO files sit one level down.
                let near = base.join(&p);
                match base.parent() {
                    Some(up) if !near.exists() && up.join(&p).exists() => up.join(&p),
                    _ => near,
                }
            })
        }
        Some(more) => return Err(format!("{} images in one row; one is supported", more.len())),
    };
    Ok((user, text("assistant"), image))
}

/// Reads `path`. Rows that are not JSON, lack a user message, or (with `need`) lack an answer/solution are skipped.
pub fn read(path: &Path, need: Need) -> Result<Rows> {
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = Rows::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<serde_json::Value>(line).map_err(|e| e.to_string()).and_then(|v| {
            let (user, answer, image) = parse_line(&v, base)?;
            let solution = v.get("solution").and_then(|s| s.as_str()).map(str::to_string);
            match need {
                Need::Answer if answer.is_none() => return Err("no assistant message".into()),
                Need::Solution if solution.is_none() && answer.is_none() => return Err("no `solution`".into()),
                _ => {}
            }
            let solution = solution.or_else(|| answer.clone());
            Ok(Row { line: i + 1, user, answer, solution, image })
        });
        match parsed {
            Ok(r) => out.rows.push(r),
            Err(e) => {
                out.skipped += 1;
                out.first_error.get_or_insert_with(|| format!("{}: line {}: {e}", path.display(), i + 1));
            }
        }
    }
    Ok(out)
}

/// What a row must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// SFT: an assistant message.
    Answer,
    /// GRPO: a `solution` (an assistant message is accepted in its place).
    Solution,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sft_and_grpo_rows_and_counts_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("train.jsonl");
        std::fs::write(
            &p,
            "{\"messages\": [{\"role\": \"user\", \"content\": \"<image>\\nQ\"}, {\"role\": \"assistant\", \"content\": \"A\"}], \"images\": [\"img/a.png\"]}\n\
             not json\n\
             {\"messages\": [{\"role\": \"user\", \"content\": \"Q\"}], \"solution\": \"S\", \"images\": [\"/abs/b.png\"]}\n\
             {\"messages\": []}\n",
        )
        .unwrap();
        let sft = read(&p, Need::Answer).unwrap();
        assert_eq!(sft.rows.len(), 1);
        assert_eq!(sft.skipped, 3);
        assert_eq!(sft.rows[0].image.as_deref(), Some(dir.path().join("img/a.png").as_path()));
        assert!(sft.first_error.unwrap().contains("line 2"));
        let grpo = read(&p, Need::Solution).unwrap();
        assert_eq!(grpo.rows.len(), 2);
        assert_eq!(grpo.rows[1].solution.as_deref(), Some("S"));
        assert_eq!(grpo.rows[1].image.as_deref(), Some(Path::new("/abs/b.png")));
    }
}
