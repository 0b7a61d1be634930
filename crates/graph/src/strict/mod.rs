//! The strict validity gate: the binary mask V of the paper's reward (eq. 2). A completion either parses into a
//! graph or yields a [`StrictError`] naming the line and the reason.
//!
//! The grammar is the reference's (`_prepare_for_strict_parse` + `_parse_scene_graph_*_strict` + `_graph_valid`):
//! 1. strip; drop one trailing run of end tokens; drop a leading `<think>…</think>`; strip;
//! 2. the rest is exactly `<answer>\n BODY \n</answer>`;
//! 3. BODY's lines (`str.splitlines()`) are non-empty and none is blank;
//! 4. line 1 is `obj[N]{id,name,x1,y1,x2,y2}:`, exactly one later line is the relation header (`rel[M]{…}:` or
//!    `rel_pairs[M]{…}:`), with N object rows between and M rows after;
//! 5. rows match the row grammar (whitespace around every field allowed, headers and labels case-insensitive);
//!    ids are exactly `{1..N}` in any order; relations reference existing ids, no self-loops, no duplicates;
//!    AG lists respect the caps, have no duplicate labels, at least one label per row, a `person` subject;
//! 6. `1 ≤ N ≤ 200`, at most 400 (atomic) relations, and every box satisfies `0 ≤ x1 < x2 ≤ W`, `0 ≤ y1 < y2 ≤ H`.
//!
//! Differences from the Python reference, all on non-ASCII input: Unicode decimal digits are not digits here, and
//! case-insensitivity folds ASCII only (see [`crate::pytext`]).

mod error;
mod fast;
mod rows;

pub use error::{StrictError, StrictErrorKind};
pub(crate) use fast::{AgSink, Decline as AgDecline, TripletSink};
pub(crate) use rows::pair_row;
pub use rows::{object_header, relation_header};

use crate::answer;
use crate::pytext;
use crate::types::{AgGraph, Canvas, SceneGraph, Schema, TripletGraph};

/// Limits the gate enforces; defaults are the reference's (`IMG_W`, `IMG_H`, `MAX_OBJS`, `MAX_RELS`, `AG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrictConfig {
    pub canvas: Canvas,
    pub max_objects: usize,
    pub max_relations: usize,
    pub ag_attention_max: usize,
    pub ag_spatial_max: usize,
    pub ag_contacting_max: usize,
    pub ag_enforce_person_subject: bool,
}

impl Default for StrictConfig {
    fn default() -> Self {
        StrictConfig {
            canvas: Canvas::default(),
            max_objects: 200,
            max_relations: 400,
            ag_attention_max: 1,
            ag_spatial_max: 5,
            ag_contacting_max: 4,
            ag_enforce_person_subject: true,
        }
    }
}

/// Parses a PSG/PVSG completion through the strict gate.
pub fn parse_triplet(text: &str, cfg: &StrictConfig) -> Result<TripletGraph, StrictError> {
    if let Some(body) = answer::exact_answer_body(answer::prepare_for_strict(text)) {
        if let Some(g) = fast::triplet(body, cfg) {
            return Ok(g);
        }
    }
    parse_triplet_general(text, cfg)
}

/// The single-pass fast path alone on an answer body (the text between `<answer>\n` and `\n</answer>`): `Some`
/// after feeding `sink` the rows when it accepts (the general path would then return the same graph), `None` when
/// it cannot decide (what the sink got must then be discarded).
pub(crate) fn fast_triplet_body<'a>(body: &'a str, cfg: &StrictConfig, sink: &mut impl TripletSink<'a>) -> Option<()> {
    fast::scan_triplet(body, cfg, sink)
}

/// The single-pass AG scan alone on an answer body: `Ok((N, M))` after feeding `sink` the objects and atomic
/// relations when it accepts (the general path would then accept the same graph); otherwise whether it found the
/// body invalid or cannot decide (what the sink got must then be discarded).
pub(crate) fn fast_ag_body<'a>(
    body: &'a str,
    cfg: &StrictConfig,
    sink: &mut impl AgSink<'a>,
) -> Result<(u64, u64), AgDecline> {
    fast::scan_ag(body, cfg, sink)
}

/// [`parse_triplet`] without its single-pass fast path: the general line-by-line parser, which also produces every
/// error. Public so tests and fuzzers can check that both paths agree.
#[doc(hidden)]
pub fn parse_triplet_general(text: &str, cfg: &StrictConfig) -> Result<TripletGraph, StrictError> {
    let body = Body::locate(text)?;
    rows::triplet(&body, cfg)
}

/// Parses an Action Genome completion through the strict gate.
pub fn parse_ag(text: &str, cfg: &StrictConfig) -> Result<AgGraph, StrictError> {
    let body = Body::locate(text)?;
    rows::ag(&body, cfg)
}

/// Parses a completion of either schema.
pub fn parse(text: &str, schema: Schema, cfg: &StrictConfig) -> Result<SceneGraph, StrictError> {
    match schema {
        Schema::Triplet => parse_triplet(text, cfg).map(SceneGraph::Triplet),
        Schema::Ag => parse_ag(text, cfg).map(SceneGraph::Ag),
    }
}

/// Whether a completion passes the gate (`sgg_format_reward > 0`).
pub fn is_valid(text: &str, schema: Schema, cfg: &StrictConfig) -> bool {
    match schema {
        Schema::Triplet => {
            // The fast path's acceptance is the general path's (the fuzzer and property tests check it); only
            // what it cannot decide goes to the general parser.
            let fast = answer::exact_answer_body(answer::prepare_for_strict(text))
                .is_some_and(|b| fast::triplet_accepts(b, cfg));
            fast || parse_triplet_general(text, cfg).is_ok()
        }
        Schema::Ag => {
            // The scan's verdict where it decides; the general parser otherwise.
            match answer::exact_answer_body(answer::prepare_for_strict(text)).map(|b| fast::scan_ag(b, cfg, &mut ())) {
                Some(Ok(_)) => true,
                Some(Err(AgDecline::Invalid)) => false,
                _ => parse_ag(text, cfg).is_ok(),
            }
        }
    }
}

/// The answer body split into lines, with the line number of the first body line in the original text.
pub(crate) struct Body<'a> {
    pub lines: Vec<&'a str>,
    pub first_line: usize,
}

impl<'a> Body<'a> {
    fn locate(text: &'a str) -> Result<Self, StrictError> {
        let prepared = answer::prepare_for_strict(text);
        let body = answer::exact_answer_body(prepared)
            .ok_or_else(|| StrictError::whole(StrictErrorKind::NotAnAnswerFrame { reason: frame_reason(prepared) }))?;
        let first_line = pytext::line_number_at(text, answer::offset_in(text, body));
        let lines: Vec<&str> = pytext::splitlines(body).map(|(_, l)| l).collect();
        if lines.is_empty() {
            return Err(StrictError::at(first_line, StrictErrorKind::EmptyBody));
        }
        for (i, l) in lines.iter().enumerate() {
            if pytext::strip(l).is_empty() {
                return Err(StrictError::at(first_line + i, StrictErrorKind::BlankLine));
            }
        }
        Ok(Body { lines, first_line })
    }

    /// The 1-based line number of body line `i`.
    pub fn line_no(&self, i: usize) -> usize {
        self.first_line + i
    }
}

fn frame_reason(s: &str) -> &'static str {
    if s.is_empty() {
        "the text is empty"
    } else if !s.starts_with("<answer>") {
        if s.contains("<answer>") {
            "text before <answer>"
        } else {
            "no <answer> tag"
        }
    } else if !s.starts_with("<answer>\n") {
        "<answer> must be followed by a newline"
    } else if !s.contains("</answer>") {
        "no closing </answer> tag"
    } else if !s.ends_with("</answer>") {
        "text after </answer>"
    } else {
        "</answer> must be on its own line"
    }
}

#[cfg(test)]
mod tests;
