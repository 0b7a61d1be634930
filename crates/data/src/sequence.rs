//! Action Genome frames → SFT samples: clip grouping, the previous-graph chain, cleaning and zero-relation removal.
//!
//! As in the reference (`sft_to_jsonl_ag.py` then `build_annotation_variants.py`):
//! - clips are the frames' video directories in order of first appearance; frames sort by integer stem
//!   (non-integer stems last, by name);
//! - the first frame of a clip gets the first-frame prompt, every later one the follow-up prompt holding the
//!   previous frame's **uncleaned** graph (6/8-indented, see [`prompts::ag_prev_text`]) — even when that frame is
//!   later dropped;
//! - the target is the raw graph run through [`clean::clean_ag_text`]; a frame whose cleaned graph has no pair
//!   rows (or cannot be parsed) is removed and counted.
//!
//! Boxes must already be scaled to the canvas.

use crate::clean;
use crate::prompts;
use crate::readers::ag::{split_key, AgFrame};
use sgvlm_graph::toon::{self, Layout};

/// One kept sample: its key, prompts and cleaned target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgSample {
    pub key: String,
    /// The SFT user prompt (first-frame or follow-up).
    pub prompt: String,
    /// The same prompt without the previous-graph block (the `*_noprevgraph` variant).
    pub prompt_noprev: String,
    /// The cleaned answer (`<answer>…</answer>\n`, 6/8-indented).
    pub target: String,
}

/// Per-run counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SequenceStats {
    pub before: usize,
    pub removed: usize,
    pub kept: usize,
}

fn order_key(frame_file: &str) -> (u8, i64, String) {
    let stem = frame_file.rsplit_once('.').map_or(frame_file, |(s, _)| s);
    match sgvlm_graph::pytext::py_int(stem) {
        Some(n) => (0, n, String::new()),
        None => (1, 0, stem.to_owned()),
    }
}

/// Builds the samples of one split's frames (in reader order).
pub fn ag_samples(frames: &[AgFrame]) -> (Vec<AgSample>, SequenceStats) {
    let mut clips: Vec<(&str, Vec<&AgFrame>)> = Vec::new();
    for f in frames {
        let video = split_key(&f.key).map_or("", |(v, _)| v);
        match clips.iter_mut().find(|(v, _)| *v == video) {
            Some((_, list)) => list.push(f),
            None => clips.push((video, vec![f])),
        }
    }
    let mut out = Vec::new();
    let mut st = SequenceStats::default();
    for (_, mut list) in clips {
        list.sort_by_cached_key(|f| order_key(split_key(&f.key).map_or(f.key.as_str(), |(_, fr)| fr)));
        let mut prev: Option<String> = None;
        for f in list {
            st.before += 1;
            let prompt = match &prev {
                None => prompts::ag_first(),
                Some(p) => prompts::ag_follow(p),
            };
            prev = Some(prompts::ag_prev_text(&f.graph));
            let mut raw = String::new();
            toon::write_ag(&mut raw, &f.graph, &Layout::RAW);
            match clean::clean_ag_text(&raw) {
                Ok(c) if c.stats.rels_kept > 0 => {
                    let prompt_noprev = prompts::without_prev_graph(&prompt).unwrap_or_else(|_| prompt.clone());
                    out.push(AgSample { key: f.key.clone(), prompt, prompt_noprev, target: c.text });
                    st.kept += 1;
                }
                _ => st.removed += 1,
            }
        }
    }
    (out, st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readers::{ag, Split};
    use std::path::PathBuf;

    #[test]
    fn fixture_test_split_chain() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ag");
        let (frames, _) = ag::read_dir(&root, true).unwrap();
        let test: Vec<_> = frames.into_iter().filter(|f| f.split == Split::Test).collect();
        let (samples, st) = ag_samples(&test);
        assert_eq!(st, SequenceStats { before: 2, removed: 0, kept: 2 });
        // Frame 7 sorts before frame 12 although the pickle lists 12 first.
        assert_eq!(samples[0].key, "ABCDE.mp4/000007.png");
        assert_eq!(samples[0].prompt, prompts::ag_first());
        assert!(samples[1].prompt.contains(
            "<answer>\n      obj[2]{id,name,x1,y1,x2,y2}:\n        1,person,24,70,258,268\n        2,chair,56,179,249,269\n"
        ));
        assert_eq!(samples[1].prompt_noprev.len(), prompts::ag_first().len() + 1);
        assert_eq!(
            samples[0].target,
            "<answer>\n      obj[2]{id,name,x1,y1,x2,y2}:\n        1,person,24,70,258,268\n        \
             2,chair,56,179,249,269\n      rel_pairs[1]{subj,attention,spatial,contacting,obj}:\n        \
             1,[not_looking_at],[],[sitting_on],2\n</answer>\n"
        );
    }

    #[test]
    fn zero_pair_frames_are_removed_but_still_feed_the_chain() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ag");
        let (frames, _) = ag::read_dir(&root, true).unwrap();
        let train: Vec<_> = frames.into_iter().filter(|f| f.split == Split::Train).collect();
        let (samples, st) = ag_samples(&train);
        assert_eq!(st, SequenceStats { before: 2, removed: 2, kept: 0 });
        assert!(samples.is_empty());
    }
}
