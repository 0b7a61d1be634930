//! Picking up an interrupted run: which input rows the output file (`infer`) or the journal (`video`) already holds.
//!
//! The runners append one batch at a time and flush after each, so an interruption leaves complete rows plus at
//! most one partial last line. That line is cut off (the file is truncated to its last newline); every complete
//! line must be a runner row with an `index`, else the file is not ours and the run stops rather than guess.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// What the existing output held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Existing {
    pub done: HashSet<usize>,
    /// The complete lines, by input index (the `video` runner replays them).
    pub lines: HashMap<usize, String>,
    /// Bytes of a partial last line that were cut off.
    pub truncated_bytes: u64,
}

/// Reads `path` (if it exists), truncates a partial last line and returns the input indices already written.
pub fn scan_and_repair(path: &Path) -> Result<Existing, String> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::default()),
        Err(e) => return Err(format!("failed to open {}: {e}", path.display())),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| format!("failed to read {}: {e}", path.display()))?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let truncated_bytes = (bytes.len() - complete) as u64;
    if truncated_bytes > 0 {
        file.set_len(complete as u64).map_err(|e| format!("failed to truncate {}: {e}", path.display()))?;
        file.seek(SeekFrom::End(0)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let text = String::from_utf8_lossy(&bytes[..complete]);
    let (mut done, mut lines) = (HashSet::new(), HashMap::new());
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let index = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("index").and_then(serde_json::Value::as_u64))
            .ok_or_else(|| {
                format!(
                    "{}:{}: not a row written by `sgvlm infer`/`sgvlm video` (no `index`); use --force to start again",
                    path.display(),
                    i + 1
                )
            })?;
        done.insert(index as usize);
        lines.insert(index as usize, line.to_string());
    }
    Ok(Existing { done, lines, truncated_bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_a_partial_line_and_collects_indices() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        std::fs::write(&p, "{\"index\": 0}\n{\"index\": 2}\n{\"ind").unwrap();
        let e = scan_and_repair(&p).unwrap();
        assert_eq!(e.done, HashSet::from([0, 2]));
        assert_eq!(e.lines[&2], "{\"index\": 2}");
        assert_eq!(e.truncated_bytes, 5);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"index\": 0}\n{\"index\": 2}\n");
    }

    #[test]
    fn refuses_a_foreign_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        std::fs::write(&p, "{\"predict\": \"x\"}\n").unwrap();
        assert!(scan_and_repair(&p).unwrap_err().contains("out.jsonl:1: not a row written by `sgvlm infer`"));
        assert_eq!(scan_and_repair(&dir.path().join("missing")).unwrap(), Existing::default());
    }
}
