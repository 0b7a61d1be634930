//! The classical Action Genome evaluation parser (OED-style sgdet metrics): what the classical metric script
//! reads from a ground truth or a prediction, the object-class lookup, and the ground-truth triplets it scores
//! against.
//!
//! Unlike the reward parsers ([`crate::strict`], [`crate::lenient`]) and the PSG/PVSG evaluation parser
//! ([`crate::eval_parse`]), it ignores headers and counts altogether: after removing `<think>…</think>` blocks it
//! **requires** a case-sensitive `<answer>…</answer>` block, then takes every line of that block that looks like
//! an object row (`id, name, x1, y1, x2, y2` with integer coordinates inside 640×480 and x1 < x2, y1 < y2) or a
//! pair row (`subj, [..], [..], [..], obj`), with Python `re` semantics (`\s` also crosses line breaks). Objects
//! are keyed by id, a later row overwriting an earlier one; pair labels are kept verbatim. A text without any
//! valid object yields `None`.
//!
//! Digits are ASCII only (see [`crate::pytext`]); ids saturate at `u64::MAX`.

use crate::pytext;
use crate::vocab::{
    AG_ATTENTION, AG_CONTACTING, AG_CONTACTING_OFFSET, AG_NUM_PREDICATES, AG_OBJECT_CLASSES, AG_SPATIAL,
    AG_SPATIAL_OFFSET,
};
use std::collections::BTreeMap;

/// Image width the box filter uses.
pub const IMG_W: i64 = 640;
/// Image height the box filter uses.
pub const IMG_H: i64 = 480;

/// An object that survived the box filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgObject {
    pub id: u64,
    /// The name field, stripped.
    pub name: String,
    /// Index into [`AG_OBJECT_CLASSES`] (0 = background).
    pub class_idx: usize,
    pub bbox: [i64; 4],
}

/// A pair row with its three label lists (labels stripped, empty ones dropped, otherwise verbatim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgPairRow {
    pub subj: u64,
    pub obj: u64,
    pub attention: Vec<String>,
    pub spatial: Vec<String>,
    pub contacting: Vec<String>,
}

/// A parsed frame: objects sorted by id (one per id) and pair rows in text order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgFrame {
    pub objects: Vec<AgObject>,
    pub pairs: Vec<AgPairRow>,
}

/// A ground-truth triplet: subject and object as positions in [`AgFrame::objects`], predicate as an index into
/// [`crate::vocab::AG_PREDICATES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgTriplet {
    pub subj: usize,
    pub obj: usize,
    pub pred: usize,
}

/// How the classical metric treats one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgStatus {
    Scored,
    SkipGtParse,
    SkipPredParse,
    SkipNoGtRels,
}

impl AgStatus {
    /// The oracle's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AgStatus::Scored => "scored",
            AgStatus::SkipGtParse => "skip_gt_parse",
            AgStatus::SkipPredParse => "skip_pred_parse",
            AgStatus::SkipNoGtRels => "skip_no_gt_rels",
        }
    }
}

/// Decides whether a sample is scored, checking in the reference's order: GT parse, prediction parse, GT
/// triplets.
pub fn sample_status(gt: &str, pred: &str) -> AgStatus {
    let Some(g) = parse(gt) else {
        return AgStatus::SkipGtParse;
    };
    if parse(pred).is_none() {
        return AgStatus::SkipPredParse;
    }
    if g.gt_triplets().is_empty() {
        return AgStatus::SkipNoGtRels;
    }
    AgStatus::Scored
}

impl AgFrame {
    /// Position of object `id` in [`Self::objects`].
    pub fn position(&self, id: u64) -> Option<usize> {
        self.objects.binary_search_by_key(&id, |o| o.id).ok()
    }

    /// Ground-truth triplets, pair by pair: attention `(subj, obj, a)`, spatial **reversed** `(obj, subj, 3+s)`,
    /// contacting `(subj, obj, 9+c)`. Pairs with an unknown endpoint and labels outside the vocabulary are skipped.
    pub fn gt_triplets(&self) -> Vec<AgTriplet> {
        let mut out = Vec::new();
        for p in &self.pairs {
            let (Some(s), Some(o)) = (self.position(p.subj), self.position(p.obj)) else {
                continue;
            };
            let blocks: [(&[String], &[&str], usize, bool); 3] = [
                (&p.attention, &AG_ATTENTION, 0, false),
                (&p.spatial, &AG_SPATIAL, AG_SPATIAL_OFFSET, true),
                (&p.contacting, &AG_CONTACTING, AG_CONTACTING_OFFSET, false),
            ];
            for (labels, vocab, offset, reversed) in blocks {
                for l in labels {
                    if let Some(k) = vocab.iter().position(|v| v == l) {
                        let (subj, obj) = if reversed { (o, s) } else { (s, o) };
                        out.push(AgTriplet { subj, obj, pred: offset + k });
                    }
                }
            }
        }
        out
    }

    /// Ground-truth triplet count per predicate class.
    pub fn gt_class_counts(&self) -> [usize; AG_NUM_PREDICATES] {
        let mut counts = [0; AG_NUM_PREDICATES];
        for t in self.gt_triplets() {
            counts[t.pred] += 1;
        }
        counts
    }
}

/// The reference's object-name normalisation: strip, lowercase, `-` and `_` to spaces.
fn norm_name(name: &str) -> String {
    pytext::strip(name).to_lowercase().replace(['-', '_'], " ")
}

/// Class index of an object name: exact match of the normalised name, else the first class (background
/// included) that contains it or is contained in it, else 0.
pub fn object_class_index(name: &str) -> usize {
    let n = norm_name(name);
    if let Some(i) = AG_OBJECT_CLASSES.iter().position(|c| *c == n) {
        return i;
    }
    AG_OBJECT_CLASSES.iter().position(|c| c.contains(n.as_str()) || n.contains(c)).unwrap_or(0)
}

/// Parses a ground truth or prediction; `None` without an answer block or without any valid object.
pub fn parse(text: &str) -> Option<AgFrame> {
    let text = remove_think_blocks(text);
    let open = text.find("<answer>")?;
    let start = open + "<answer>".len();
    let end = start + text[start..].find("</answer>")?;
    let body = &text[start..end];

    let mut objects: BTreeMap<u64, AgObject> = BTreeMap::new();
    let comma_at: Vec<usize> = body.match_indices(',').map(|(i, _)| i).collect();
    for_each_line_match(
        body,
        |p| object_line(body, p, &comma_at),
        |(o, _)| {
            if let Some(o) = o {
                objects.insert(o.id, o);
            }
        },
    );
    let mut pairs = Vec::new();
    for_each_line_match(body, |p| pair_line(body, p), |(r, _)| pairs.push(r));
    if objects.is_empty() {
        return None;
    }
    Some(AgFrame { objects: objects.into_values().collect(), pairs })
}

/// `re.sub(r"<think>.*?</think>", "", text, flags=re.S)`.
fn remove_think_blocks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some(open) = text[pos..].find("<think>").map(|k| pos + k) {
        let after = open + "<think>".len();
        let Some(close) = text[after..].find("</think>").map(|k| after + k) else {
            break;
        };
        out.push_str(&text[pos..open]);
        pos = close + "</think>".len();
    }
    out.push_str(&text[pos..]);
    out
}

/// `finditer` of a `^…$` MULTILINE pattern: tries every line start (offset 0 or after `\n`) from the end of the
/// previous match on. `try_at` returns the match and the offset it ended at, or, on failure, `Err(resume)`: no
/// line start before `resume` can match (they all skip the same whitespace run).
fn for_each_line_match<T>(
    s: &str,
    mut try_at: impl FnMut(usize) -> Result<(T, usize), usize>,
    mut on_match: impl FnMut((T, usize)),
) {
    let mut pos = 0;
    loop {
        let p = if pos == 0 {
            0
        } else {
            match s.as_bytes()[pos - 1..].iter().position(|&c| c == b'\n') {
                Some(k) => pos + k,
                None => return,
            }
        };
        match try_at(p) {
            Ok((m, end)) => {
                pos = end.max(p + 1);
                on_match((m, end));
            }
            Err(resume) => pos = resume.max(p + 1),
        }
        if pos > s.len() {
            return;
        }
    }
}

fn skip_space(s: &str, i: usize) -> usize {
    s.len() - pytext::lstrip(&s[i..]).len()
}

/// `\s*` then byte `c`; the offset after it, or `Err(failure offset)`.
fn expect(s: &str, i: usize, c: u8) -> Result<usize, ()> {
    let i = skip_space(s, i);
    if s.as_bytes().get(i) == Some(&c) {
        Ok(i + 1)
    } else {
        Err(())
    }
}

/// `\s*(-?\d+)` (sign only when `signed`): whether negative, the saturating magnitude, and the offset after the
/// digits.
fn number(s: &str, i: usize, signed: bool) -> Result<(bool, u64, usize), ()> {
    let mut i = skip_space(s, i);
    let b = s.as_bytes();
    let neg = signed && b.get(i) == Some(&b'-');
    if neg {
        i += 1;
    }
    let d = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if d == 0 {
        return Err(());
    }
    Ok((neg, pytext::digits_saturating(&b[i..i + d]), i + d))
}

/// A coordinate as a saturating `i64`.
fn coordinate(s: &str, i: usize) -> Result<(i64, usize), ()> {
    let (neg, mag, end) = number(s, i, true)?;
    let v = i64::try_from(mag).unwrap_or(i64::MAX);
    Ok((if neg { -v } else { v }, end))
}

/// `\s*$` (MULTILINE, greedy): the match end — the end of text, or the last `\n` of the whitespace run.
fn line_end(s: &str, i: usize) -> Result<usize, ()> {
    let j = skip_space(s, i);
    if j == s.len() {
        return Ok(j);
    }
    s[i..j].rfind('\n').map(|k| i + k).ok_or(())
}

/// `^\s*(\d+)\s*,\s*([^,]+?)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*$` at line start `p`,
/// then the box filter: a row that matches but fails the filter gives `None` (the search still resumes after it).
fn object_line(s: &str, p: usize, comma_at: &[usize]) -> Result<(Option<AgObject>, usize), usize> {
    let resume = skip_space(s, p);
    let fail = |()| resume;
    let (_, id, i) = number(s, p, false).map_err(fail)?;
    let c1 = expect(s, i, b',').map_err(fail)?;
    // `\s*([^,]+?)\s*,`: the next comma closes the name, which must not be empty before stripping.
    let k = comma_at.partition_point(|&c| c < c1);
    let c2 = *comma_at.get(k).ok_or(resume)?;
    if c2 == c1 {
        return Err(resume);
    }
    let name = pytext::strip(&s[c1..c2]);
    let mut i = c2 + 1;
    let mut coords = [0i64; 4];
    for (n, v) in coords.iter_mut().enumerate() {
        let (x, j) = coordinate(s, i).map_err(fail)?;
        *v = x;
        i = if n < 3 { expect(s, j, b',').map_err(fail)? } else { j };
    }
    let end = line_end(s, i).map_err(fail)?;
    let [x1, y1, x2, y2] = coords;
    let valid = 0 <= x1 && x1 < x2 && x2 <= IMG_W && 0 <= y1 && y1 < y2 && y2 <= IMG_H;
    let object =
        valid.then(|| AgObject { id, name: name.to_string(), class_idx: object_class_index(name), bbox: coords });
    Ok((object, end))
}

/// `\s*\[([^\]]*)\]` then `\s*,`: the label list and the offset after the comma.
fn label_list(s: &str, i: usize) -> Result<(Vec<String>, usize), ()> {
    let open = expect(s, i, b'[')?;
    let close = open + s[open..].find(']').ok_or(())?;
    let labels = s[open..close].split(',').map(pytext::strip).filter(|l| !l.is_empty()).map(str::to_string).collect();
    Ok((labels, expect(s, close + 1, b',')?))
}

/// `^\s*(\d+)\s*,\s*\[([^\]]*)\]\s*,\s*\[([^\]]*)\]\s*,\s*\[([^\]]*)\]\s*,\s*(\d+)\s*$` at line start `p`.
fn pair_line(s: &str, p: usize) -> Result<(AgPairRow, usize), usize> {
    let resume = skip_space(s, p);
    let fail = |()| resume;
    let (_, subj, i) = number(s, p, false).map_err(fail)?;
    let i = expect(s, i, b',').map_err(fail)?;
    let (attention, i) = label_list(s, i).map_err(fail)?;
    let (spatial, i) = label_list(s, i).map_err(fail)?;
    let (contacting, i) = label_list(s, i).map_err(fail)?;
    let (_, obj, i) = number(s, i, false).map_err(fail)?;
    let end = line_end(s, i).map_err(fail)?;
    let row = AgPairRow { subj, obj, attention, spatial, contacting };
    Ok((row, end))
}

#[cfg(test)]
mod tests;
