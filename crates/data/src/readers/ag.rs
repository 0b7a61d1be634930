//! Action Genome: `annotations/object_bbox_and_relationship.pkl` + `annotations/person_bbox.pkl` → one raw frame
//! graph per key (`VIDEO.mp4/FRAME.png`), in native pixels, before scaling and cleaning.
//!
//! Rules (the reference's `prepare_original_ag_sft.py`):
//! - split = `metadata.set` of the frame's first item, lowercased; `val` and anything unknown become train;
//! - the person (row 0 of `person_bbox[key].bbox`, `bbox_mode` `xyxy` or `xywh`, each coordinate rounded
//!   half-to-even) is object 1 when present; without a person box the frame has no pairs;
//! - every item follows in pickle order unless it is not `visible` (missing = visible) or has no box; its name is
//!   `class` (or `object` when empty) with `,` → `-`, its box `(x, y, w, h)` → `round(x), round(y), round(x+w),
//!   round(y+h)`; there is no dedup;
//! - one pair person → object per kept object whose three label lists are not all empty; each list is stripped,
//!   emptied of blanks and deduplicated in order.
//!
//! A record of the wrong shape (items not a list of dicts, a box that is not four numbers) is a
//! [`RecordError`] naming the key; the caller skips it and counts it.

use super::{ReadError, RecordError, Split};
use crate::pickle::Value;
use crate::scale::round_coord;
use sgvlm_graph::{AgGraph, AgPair, BBox, Object};
use std::path::{Path, PathBuf};

/// One frame's raw graph.
#[derive(Debug, Clone, PartialEq)]
pub struct AgFrame {
    /// `VIDEO.mp4/FRAME.png`, as in the pickles.
    pub key: String,
    pub split: Split,
    pub graph: AgGraph,
}

fn err(key: &str, what: impl Into<String>) -> RecordError {
    RecordError { record: key.to_owned(), what: what.into() }
}

fn four(key: &str, v: &Value, what: &str) -> Result<[f64; 4], RecordError> {
    let s = match v {
        Value::Array { data, .. } => data.clone(),
        _ => v
            .as_seq()
            .ok_or_else(|| err(key, format!("{what} is not a sequence")))?
            .iter()
            .map(Value::as_f64)
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| err(key, format!("{what} holds a non-number")))?,
    };
    <[f64; 4]>::try_from(s.as_slice()).map_err(|_| err(key, format!("{what} has {} values, not 4", s.len())))
}

fn rounded(key: &str, b: [f64; 4]) -> Result<BBox, RecordError> {
    let r = |v: f64| round_coord(v).ok_or_else(|| err(key, format!("box coordinate {v} is not finite")));
    Ok(BBox::new(r(b[0])?, r(b[1])?, r(b[2])?, r(b[3])?))
}

fn person_box(key: &str, entry: Option<&Value>) -> Result<Option<BBox>, RecordError> {
    let Some(bbox) = entry.and_then(|e| e.get("bbox")) else { return Ok(None) };
    let xywh =
        entry.and_then(|e| e.get("bbox_mode")).and_then(Value::as_str).is_some_and(|m| m.eq_ignore_ascii_case("xywh"));
    let row = match bbox {
        Value::Array { shape, data } => match shape.as_slice() {
            [0, ..] | [] => return Ok(None),
            [_, 4] | [4] => {
                four(key, &Value::List(data[..4].iter().map(|&f| Value::Float(f)).collect()), "person bbox")?
            }
            _ => return Err(err(key, format!("person bbox has shape {shape:?}"))),
        },
        other if !other.truthy() => return Ok(None),
        other => {
            let seq = other.as_seq().unwrap_or(&[]);
            match seq.first() {
                Some(first) if first.as_seq().is_some() => four(key, first, "person bbox")?,
                _ => four(key, other, "person bbox")?,
            }
        }
    };
    let [x1, y1, mut x2, mut y2] = row;
    if xywh {
        x2 += x1;
        y2 += y1;
    }
    rounded(key, [x1, y1, x2, y2]).map(Some)
}

fn labels(v: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        let t = sgvlm_graph::pytext::strip(s);
        if !t.is_empty() && !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    };
    match v {
        Some(v) if !v.truthy() => {}
        Some(Value::List(items) | Value::Tuple(items)) => items.iter().filter_map(Value::as_str).for_each(&mut push),
        Some(Value::Str(s)) => push(s),
        _ => {}
    }
    out
}

/// Builds one frame from its item list and person entry.
pub fn build_frame(
    key: &str,
    items: &Value,
    person: Option<&Value>,
    only_visible: bool,
) -> Result<AgFrame, RecordError> {
    let items = items.as_seq().ok_or_else(|| err(key, "object annotation is not a list"))?;
    let split = items
        .first()
        .and_then(|i| i.get("metadata"))
        .and_then(|m| m.get("set"))
        .and_then(Value::as_str)
        .map_or(Split::Train, |s| if s.eq_ignore_ascii_case("test") { Split::Test } else { Split::Train });
    let mut g = AgGraph::default();
    let pbox = person_box(key, person)?;
    if let Some(b) = pbox {
        g.objects.push(Object { id: 1, name: "person".into(), bbox: b });
    }
    for (i, it) in items.iter().enumerate() {
        if it.as_dict().is_none() {
            return Err(err(key, format!("item {i} is not a dict")));
        }
        if only_visible && !it.get("visible").is_none_or(Value::truthy) {
            continue;
        }
        let Some(bb) = it.get("bbox").filter(|b| b.truthy()) else { continue };
        let [x, y, w, h] = four(key, bb, &format!("item {i} bbox"))?;
        let bbox = rounded(key, [x, y, x + w, y + h])?;
        let class = it.get("class").and_then(Value::as_str).filter(|c| !c.is_empty()).unwrap_or("object");
        let id = g.objects.len() as u32 + 1;
        g.objects.push(Object { id, name: class.replace(',', "-"), bbox });
        if pbox.is_some() {
            let [attention, spatial, contacting] =
                ["attention_relationship", "spatial_relationship", "contacting_relationship"]
                    .map(|k| labels(it.get(k)));
            if !(attention.is_empty() && spatial.is_empty() && contacting.is_empty()) {
                g.pairs.push(AgPair { subj: 1, attention, spatial, contacting, obj: id });
            }
        }
    }
    Ok(AgFrame { key: key.to_owned(), split, graph: g })
}

/// Splits a key into its video directory and frame file (`ABCDE.mp4/000012.png` → (`ABCDE.mp4`, `000012.png`)).
pub fn split_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('/')
}

#[cfg(test)]
mod tests;

/// Every frame of `ROOT/annotations/*.pkl`, in pickle key order, and the records that were skipped.
pub fn read_dir(root: &Path, only_visible: bool) -> Result<(Vec<AgFrame>, Vec<RecordError>), ReadError> {
    let dir = root.join("annotations");
    let load = |name: &str| -> Result<(PathBuf, Value), ReadError> {
        let path = dir.join(name);
        let bytes = super::read(&path)?;
        let v = crate::pickle::from_slice(&bytes).map_err(|source| ReadError::Pickle { path: path.clone(), source })?;
        Ok((path, v))
    };
    let (obj_path, objects) = load("object_bbox_and_relationship.pkl")?;
    let (_, persons) = load("person_bbox.pkl")?;
    let entries = objects
        .as_dict()
        .ok_or_else(|| ReadError::Shape { path: obj_path.clone(), what: "top level is not a dict".into() })?;
    let file = obj_path.display().to_string();
    let mut frames = Vec::with_capacity(entries.len());
    let mut skipped = Vec::new();
    for (k, items) in entries {
        let Some(key) = k.as_str() else {
            skipped.push(RecordError { record: format!("{file}: {k:?}"), what: "key is not a string".into() });
            continue;
        };
        match build_frame(key, items, persons.get(key), only_visible) {
            Ok(f) => frames.push(f),
            Err(e) => skipped.push(RecordError { record: format!("{file}: {}", e.record), what: e.what }),
        }
    }
    Ok((frames, skipped))
}
