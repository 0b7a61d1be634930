//! The user prompts and the GRPO system prompt, byte-exact with the reference.
//!
//! The texts live as data beside this file (`*.txt`, pulled in with `include_str!`) and are put together by
//! [`render`], which substitutes `<<NAME>>` placeholders literally in one pass (a substituted value is never scanned
//! again, so a previous graph that happens to contain `<<…>>` is inserted as it is). Every user prompt starts with
//! [`IMAGE_PREFIX`]; ms-swift replaces `<image>` with the vision tokens.
//!
//! | prompt | pieces |
//! |---|---|
//! | PSG (SFT) | `psg.txt` with the 133 object and 56 predicate classes as JSON lists (spaces kept) |
//! | PSG (GRPO) | the same with both lists in canonical hyphen form ([`sgvlm_graph::label::hyphenate`], deduplicated) |
//! | PVSG first frame | `pvsg_head.txt` + `pvsg_closing.txt` |
//! | PVSG later frame | `pvsg_head.txt` + `pvsg_temporal.txt` (the previous frame's **raw** TOON at `<<PREV_TOON>>`) + closing |
//! | AG first frame | `ag_head.txt` + `ag_first_closing.txt` |
//! | AG later frame | `ag_head.txt` + `ag_temporal.txt` (the previous answer body, 6/8-indented, inside `<answer>` tags) |
//! | no-previous-graph | [`strip_prev_graph`] applied to a later-frame prompt (one newline more than a first-frame prompt) |
//! | GRPO system | `system_grpo.txt` (192 bytes, no trailing newline) |
//!
//! The AG class lists are written into `ag_head.txt` literally: the prompt lists SPATIAL_CLS alphabetically, which is
//! not the index order of [`sgvlm_graph::vocab::AG_SPATIAL`], so no index may ever be taken from the prompt.

use sgvlm_graph::toon::{self, Layout};
use sgvlm_graph::{pytext, AgGraph, TripletGraph};

const PSG: &str = include_str!("psg.txt");
const PVSG_HEAD: &str = include_str!("pvsg_head.txt");
const PVSG_TEMPORAL: &str = include_str!("pvsg_temporal.txt");
const PVSG_CLOSING: &str = include_str!("pvsg_closing.txt");
const AG_HEAD: &str = include_str!("ag_head.txt");
const AG_FIRST_CLOSING: &str = include_str!("ag_first_closing.txt");
const AG_TEMPORAL: &str = include_str!("ag_temporal.txt");

/// The GRPO system prompt (`--system`); SFT and inference use none.
pub const GRPO_SYSTEM: &str = include_str!("system_grpo.txt");

/// What every user message starts with.
pub const IMAGE_PREFIX: &str = "<image>\n";

/// The placeholder a later-frame prompt carries for the previous graph.
pub const PREV_TOON: &str = "PREV_TOON";

/// The layout of the previous graph inside an AG prompt: the answer body as the SFT target writes it (headers 6,
/// rows 8), without the tags the prompt adds around it.
pub const AG_PREV_LAYOUT: Layout = Layout { header_indent: 6, row_indent: 8, tags: false, trailing_newline: false };

/// Substitutes each `<<NAME>>` of `template` whose name `vars` defines, in one left-to-right pass; unknown
/// placeholders stay as they are.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + vars.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("<<") {
        let after = &rest[start + 2..];
        let hit = after.find(">>").and_then(|end| {
            let name = &after[..end];
            vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (end, *v))
        });
        match hit {
            Some((end, value)) => {
                out.push_str(&rest[..start]);
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A JSON list the way Python's `json.dumps(list, ensure_ascii=False)` writes it: `["a", "b"]`.
pub fn json_list<S: AsRef<str>>(items: &[S]) -> String {
    let parts: Vec<String> =
        items.iter().map(|s| serde_json::Value::String(s.as_ref().to_owned()).to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// Which label spelling the PSG prompt lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsgLabels {
    /// The class names as the dataset writes them (`traffic light`, `in front of`): the SFT prompt.
    Sft,
    /// Canonical hyphen form (`traffic-light`, `in-front-of`), order kept, duplicates removed: the GRPO prompt.
    Canonical,
}

/// The hyphen-canonical form of a label list, order kept and duplicates (and empty results) dropped.
pub fn canonical_labels<S: AsRef<str>>(items: &[S]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for s in items {
        let c = sgvlm_graph::label::hyphenate(s.as_ref());
        if !c.is_empty() && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// The PSG user prompt (with [`IMAGE_PREFIX`]) for the given class lists.
pub fn psg_with<S: AsRef<str>>(objects: &[S], predicates: &[S], labels: PsgLabels) -> String {
    let (objs, preds) = match labels {
        PsgLabels::Sft => (json_list(objects), json_list(predicates)),
        PsgLabels::Canonical => (json_list(&canonical_labels(objects)), json_list(&canonical_labels(predicates))),
    };
    let body = render(PSG, &[("OBJECTS", &objs), ("PREDICATES", &preds)]);
    format!("{IMAGE_PREFIX}{body}")
}

/// The PSG user prompt over the 133 PSG classes and 56 predicates.
pub fn psg(labels: PsgLabels) -> String {
    psg_with(&sgvlm_graph::vocab::PSG_OBJECT_CLASSES, &sgvlm_graph::vocab::PSG_PREDICATES, labels)
}

/// The PVSG prompt for the first frame of a video.
pub fn pvsg_first() -> String {
    format!("{IMAGE_PREFIX}{PVSG_HEAD}{PVSG_CLOSING}")
}

/// The PVSG later-frame template with `<<PREV_TOON>>` still in place.
pub fn pvsg_with_prev_template() -> String {
    format!("{IMAGE_PREFIX}{PVSG_HEAD}{PVSG_TEMPORAL}{PVSG_CLOSING}")
}

/// The PVSG prompt for a later frame; `prev_raw` is the previous sample's raw TOON text, inserted verbatim.
pub fn pvsg_with_prev(prev_raw: &str) -> String {
    render(&pvsg_with_prev_template(), &[(PREV_TOON, prev_raw)])
}

/// The raw TOON of a previous PVSG graph as the prompt embeds it (rows indented 2, no tags, no final newline).
pub fn pvsg_prev_text(g: &TripletGraph) -> String {
    let mut s = String::new();
    toon::write_triplet(&mut s, g, &Layout::RAW);
    s
}

/// The AG prompt for the first frame of a clip.
pub fn ag_first() -> String {
    format!("{IMAGE_PREFIX}{AG_HEAD}{AG_FIRST_CLOSING}")
}

/// The AG prompt for a later frame; `prev_body` is the previous answer body (see [`ag_prev_text`]).
pub fn ag_follow(prev_body: &str) -> String {
    let tail = render(AG_TEMPORAL, &[(PREV_TOON, prev_body)]);
    format!("{IMAGE_PREFIX}{AG_HEAD}{tail}")
}

/// The previous AG graph as the prompt embeds it: the SFT answer body (headers 6, rows 8) without tags.
pub fn ag_prev_text(g: &AgGraph) -> String {
    let mut s = String::new();
    toon::write_ag(&mut s, g, &AG_PREV_LAYOUT);
    s
}

/// Where the previous-graph block of a prompt may start (first match in this order wins).
const TEMPORAL_START: [&str; 6] = [
    "\nYou are also given the previous frame's ground-truth scene graph in TOON format.",
    "\nYou are also given the previous frame scene graph in TOON format.",
    "\nYou are also given the previous frame ground-truth scene graph in TOON format.",
    "You are also given the previous frame's ground-truth scene graph in TOON format.",
    "You are also given the previous frame scene graph in TOON format.",
    "You are also given the previous frame ground-truth scene graph in TOON format.",
];

/// Where it ends (the first of these found after the start, in this order).
const TEMPORAL_END: [&str; 3] = [
    "\n\n\nNow, generate the complete scene graph for the provided image.",
    "\n\nNow, generate the complete scene graph for the provided image.",
    "\nNow, generate the complete scene graph for the provided image.",
];

/// A previous-graph block with no closing `Now, generate …` line after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the prompt has a previous-graph block at byte {start} but no `Now, generate …` line after it")]
pub struct StripError {
    pub start: usize,
}

/// Removes the previous-graph block of a later-frame prompt (the `*_noprevgraph` variants): the text before the
/// block, right-stripped, then `\n\n`, then the text from the closing line on, left-stripped (Python whitespace).
/// Returns `Ok(None)` when the prompt has no such block.
pub fn strip_prev_graph(text: &str) -> Result<Option<String>, StripError> {
    let Some(start) = TEMPORAL_START.iter().find_map(|m| text.find(m)) else {
        return Ok(None);
    };
    let end = TEMPORAL_END.iter().find_map(|m| text[start..].find(m).map(|i| start + i)).ok_or(StripError { start })?;
    Ok(Some(format!("{}\n\n{}", pytext::rstrip(&text[..start]), pytext::lstrip(&text[end..]))))
}

/// [`strip_prev_graph`], keeping the text unchanged when it has no block.
pub fn without_prev_graph(text: &str) -> Result<String, StripError> {
    Ok(strip_prev_graph(text)?.unwrap_or_else(|| text.to_owned()))
}

#[cfg(test)]
mod tests;
