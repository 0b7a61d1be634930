//! The evaluation parse held in reusable buffers: what [`super::parse_into`] fills.
//!
//! Why a second form next to [`EvalGraph`]: the strict evaluation parses two texts per row and reads each graph
//! once, so one `String` per name and predicate plus the vectors of a fresh graph were a large share of its
//! time. Here every normalised label lives in one text buffer, and the buffers are kept from one parse to the
//! next (a scratch, not a cache: each parse clears and refills them).

use super::{EvalGraph, EvalObject, EvalRelation, Sink};
use crate::label;
use std::ops::Range;

/// An object row: the id, the byte range of its normalised name in the graph's label buffer, the box.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatObject {
    pub id: u64,
    name: Range<u32>,
    pub bbox: [f64; 4],
}

/// A relation row: subject id, the byte range of its normalised predicate, object id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatRelation {
    pub subj: u64,
    pred: Range<u32>,
    pub obj: u64,
}

/// An evaluation graph whose labels share one buffer (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct FlatGraph {
    /// The normalised labels, back to back: UTF-8, each range a whole string ([`label::eval_normalize_into`]).
    labels: Vec<u8>,
    objects: Vec<FlatObject>,
    relations: Vec<FlatRelation>,
    /// Scratch of the parser (line ranges of the text parsed last).
    pub(super) lines: Vec<(usize, usize)>,
}

impl FlatGraph {
    /// Empties the graph, keeping its buffers.
    pub fn clear(&mut self) {
        self.labels.clear();
        self.objects.clear();
        self.relations.clear();
    }

    pub fn objects(&self) -> &[FlatObject] {
        &self.objects
    }

    pub fn relations(&self) -> &[FlatRelation] {
        &self.relations
    }

    /// Normalised name of object `i`.
    pub fn name(&self, i: usize) -> &str {
        as_str(self.name_bytes(i))
    }

    /// Normalised predicate of relation `i`.
    pub fn pred(&self, i: usize) -> &str {
        as_str(self.pred_bytes(i))
    }

    /// [`Self::name`] as bytes (what comparisons read: no UTF-8 check).
    #[inline]
    pub fn name_bytes(&self, i: usize) -> &[u8] {
        self.label(&self.objects[i].name)
    }

    /// [`Self::pred`] as bytes.
    #[inline]
    pub fn pred_bytes(&self, i: usize) -> &[u8] {
        self.label(&self.relations[i].pred)
    }

    #[inline]
    fn label(&self, r: &Range<u32>) -> &[u8] {
        self.labels.get(r.start as usize..r.end as usize).unwrap_or_default()
    }

    /// The same graph with owned labels.
    pub fn to_graph(&self) -> EvalGraph {
        EvalGraph {
            objects: (0..self.objects.len())
                .map(|i| EvalObject {
                    id: self.objects[i].id,
                    name: self.name(i).to_string(),
                    bbox: self.objects[i].bbox,
                })
                .collect(),
            relations: (0..self.relations.len())
                .map(|i| EvalRelation {
                    subj: self.relations[i].subj,
                    pred: self.pred(i).to_string(),
                    obj: self.relations[i].obj,
                })
                .collect(),
        }
    }

    /// Appends normalised `s` to the label buffer; its range (empty if the buffer outgrew `u32`).
    fn push_label(&mut self, s: &str) -> Range<u32> {
        let start = self.labels.len();
        label::eval_normalize_into(s, &mut self.labels);
        match (u32::try_from(start), u32::try_from(self.labels.len())) {
            (Ok(a), Ok(b)) => a..b,
            _ => 0..0,
        }
    }
}

/// A label range of the buffer as text; every range is a whole UTF-8 string, so the fallback never shows.
fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

impl Sink for FlatGraph {
    fn object(&mut self, id: u64, name: &str, bbox: [f64; 4]) {
        let name = self.push_label(name);
        self.objects.push(FlatObject { id, name, bbox });
    }
    fn relation(&mut self, subj: u64, pred: &str, obj: u64) {
        let pred = self.push_label(pred);
        self.relations.push(FlatRelation { subj, pred, obj });
    }
    fn reset(&mut self) {
        self.clear();
    }
    fn has_objects(&self) -> bool {
        !self.objects.is_empty()
    }
}
