//! `--frames DIR`: the frames of one video as runner rows, with prompts from `sgvlm_data::prompts`.
//!
//! Frame 0 gets the dataset's first-frame prompt and every later frame its later-frame prompt with an empty
//! previous graph; the video runner then rebuilds later prompts from the template, exactly as for dataset rows.
//! Frames are the folder's PNG/JPEG files ordered by `int(stem)` (names that are not numbers sort last, by name).
//! The rows have no GT answer.

use super::rows::{InputRow, Sample};
use sgvlm_graph::pytext::py_int;
use std::path::Path;

/// The datasets with video prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramesDataset {
    Pvsg,
    Ag,
}

impl FramesDataset {
    fn first(self) -> String {
        match self {
            FramesDataset::Pvsg => sgvlm_data::prompts::pvsg_first(),
            FramesDataset::Ag => sgvlm_data::prompts::ag_first(),
        }
    }

    fn later(self) -> String {
        match self {
            FramesDataset::Pvsg => sgvlm_data::prompts::pvsg_with_prev(""),
            FramesDataset::Ag => sgvlm_data::prompts::ag_follow(""),
        }
    }
}

/// One row per frame of `dir`, in frame order.
pub fn frame_rows(dir: &Path, dataset: FramesDataset) -> Result<Vec<InputRow>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("failed to read {}: {e}", dir.display()))?;
    let mut frames: Vec<(Option<i64>, String, std::path::PathBuf)> = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("failed to read {}: {e}", dir.display()))?.path();
        let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
        if !matches!(ext.as_str(), "png" | "jpg" | "jpeg") {
            continue;
        }
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        frames.push((py_int(&stem), stem, path));
    }
    if frames.is_empty() {
        return Err(format!("{}: no PNG or JPEG frames", dir.display()));
    }
    frames.sort_by(|a, b| (a.0.is_none(), a.0, &a.1).cmp(&(b.0.is_none(), b.0, &b.1)));
    let (first, later) = (dataset.first(), dataset.later());
    Ok(frames
        .into_iter()
        .enumerate()
        .map(|(index, (_, _, path))| {
            let images = serde_json::to_string(&[path.to_string_lossy()])
                .ok()
                .and_then(|s| serde_json::value::RawValue::from_string(s).ok());
            InputRow {
                index,
                line: index + 1,
                raw_messages: None,
                raw_images: images,
                sample: Ok(Sample {
                    user: sgvlm_graph::pytext::strip(if index == 0 { &first } else { &later }).to_string(),
                    gt: None,
                    images: vec![path],
                }),
            }
        })
        .collect())
}
