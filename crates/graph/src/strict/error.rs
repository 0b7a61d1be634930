//! Typed errors of the strict validity gate.

use crate::types::RelKind;
use std::fmt;

/// Why a completion fails the strict gate, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrictError {
    /// 1-based line in the text given to the parser (lines as `str.splitlines()` counts them); `None` when the
    /// problem concerns the whole text (no answer frame, too many objects, …).
    pub line: Option<usize>,
    pub kind: StrictErrorKind,
}

/// Each malformation the strict gate distinguishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictErrorKind {
    /// The text is not exactly `<answer>\n…\n</answer>` after removing a think block and end tokens.
    NotAnAnswerFrame {
        reason: &'static str,
    },
    /// The answer body has no lines.
    EmptyBody,
    /// A blank or whitespace-only line inside the answer.
    BlankLine,
    /// The first body line is not the object header.
    BadObjectHeader,
    /// No line is the relation header.
    MissingRelationHeader,
    /// A second relation header (the first is on `first_line`).
    MultipleRelationHeaders {
        first_line: usize,
    },
    ObjectCountMismatch {
        declared: u64,
        actual: usize,
    },
    RelationCountMismatch {
        declared: u64,
        actual: usize,
    },
    /// An object row does not have the shape `id,label,x1,y1,x2,y2`.
    BadObjectRow,
    /// A relation row does not have the shape `subj,pred,obj` (AG: `subj,[…],[…],[…],obj`).
    BadRelationRow,
    /// A name, predicate or AG label that is not a canonical token (e.g. contains a space).
    BadLabel {
        label: String,
    },
    DuplicateObjectId {
        id: u64,
    },
    /// The object ids are not exactly `{1..N}`.
    IdsNotOneToN {
        missing: u64,
    },
    UnknownObjectRef {
        id: u64,
    },
    SelfLoop {
        id: u64,
    },
    DuplicateRelation {
        subj: u64,
        pred: String,
        obj: u64,
    },
    /// An AG label list over its cap (attention 1, spatial 5, contacting 4 by default).
    TooManyLabels {
        kind: RelKind,
        count: usize,
        max: usize,
    },
    DuplicateLabel {
        kind: RelKind,
        label: String,
    },
    /// An AG pair row with all three lists empty.
    EmptyPairLabels,
    /// An AG pair whose subject is not named `person`.
    SubjectNotPerson {
        name: String,
    },
    DuplicatePairRow,
    DuplicateAtomicRelation {
        pred: String,
    },
    /// `N = 0`: a graph needs at least one object.
    NoObjects,
    TooManyObjects {
        count: usize,
        max: usize,
    },
    TooManyRelations {
        count: usize,
        max: usize,
    },
    /// A box that is degenerate or leaves the canvas.
    BoxOutOfCanvas {
        bbox: [i64; 4],
        width: u32,
        height: u32,
    },
}

impl StrictError {
    pub(crate) fn at(line: usize, kind: StrictErrorKind) -> Self {
        StrictError { line: Some(line), kind }
    }

    pub(crate) fn whole(kind: StrictErrorKind) -> Self {
        StrictError { line: None, kind }
    }

    /// A short stable identifier of the error class (`blank_line`, `count_mismatch`, …) for reports and JSON.
    pub fn code(&self) -> &'static str {
        use StrictErrorKind::*;
        match self.kind {
            NotAnAnswerFrame { .. } => "answer_frame",
            EmptyBody => "empty_body",
            BlankLine => "blank_line",
            BadObjectHeader => "object_header",
            MissingRelationHeader => "missing_relation_header",
            MultipleRelationHeaders { .. } => "multiple_relation_headers",
            ObjectCountMismatch { .. } | RelationCountMismatch { .. } => "count_mismatch",
            BadObjectRow => "object_row",
            BadRelationRow => "relation_row",
            BadLabel { .. } => "label",
            DuplicateObjectId { .. } => "duplicate_id",
            IdsNotOneToN { .. } => "ids_not_1_to_n",
            UnknownObjectRef { .. } => "unknown_ref",
            SelfLoop { .. } => "self_loop",
            DuplicateRelation { .. } | DuplicatePairRow | DuplicateAtomicRelation { .. } => "duplicate_relation",
            TooManyLabels { .. } => "label_cap",
            DuplicateLabel { .. } => "duplicate_label",
            EmptyPairLabels => "empty_pair",
            SubjectNotPerson { .. } => "subject_not_person",
            NoObjects => "no_objects",
            TooManyObjects { .. } | TooManyRelations { .. } => "size_limit",
            BoxOutOfCanvas { .. } => "box",
        }
    }
}

impl fmt::Display for StrictErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use StrictErrorKind::*;
        match self {
            NotAnAnswerFrame { reason } => write!(f, "not an answer block: {reason}"),
            EmptyBody => write!(f, "the answer is empty"),
            BlankLine => write!(f, "blank line inside <answer>"),
            BadObjectHeader => write!(f, "expected the object header `obj[N]{{id,name,x1,y1,x2,y2}}:`"),
            MissingRelationHeader => write!(f, "no relation header"),
            MultipleRelationHeaders { first_line } => {
                write!(f, "second relation header (the first is on line {first_line})")
            }
            ObjectCountMismatch { declared, actual } => {
                write!(f, "header declares {declared} objects but {actual} object rows follow")
            }
            RelationCountMismatch { declared, actual } => {
                write!(f, "header declares {declared} relations but {actual} relation rows follow")
            }
            BadObjectRow => write!(f, "malformed object row (expected `id,name,x1,y1,x2,y2` with integers)"),
            BadRelationRow => write!(f, "malformed relation row"),
            BadLabel { label } => write!(f, "label {label:?} is not a canonical token"),
            DuplicateObjectId { id } => write!(f, "duplicate object id {id}"),
            IdsNotOneToN { missing } => write!(f, "object ids must be exactly 1..N (id {missing} is missing)"),
            UnknownObjectRef { id } => write!(f, "relation refers to unknown object id {id}"),
            SelfLoop { id } => write!(f, "self-loop on object {id}"),
            DuplicateRelation { subj, pred, obj } => {
                write!(f, "duplicate relation ({subj}, {pred}, {obj})")
            }
            TooManyLabels { kind, count, max } => {
                write!(f, "{count} {kind} labels (at most {max} allowed)")
            }
            DuplicateLabel { kind, label } => write!(f, "{kind} label {label:?} repeated"),
            EmptyPairLabels => write!(f, "pair row has no label in any list"),
            SubjectNotPerson { name } => write!(f, "pair subject must be a person, found {name:?}"),
            DuplicatePairRow => write!(f, "duplicate pair row"),
            DuplicateAtomicRelation { pred } => {
                write!(f, "atomic relation {pred} repeated for the same pair")
            }
            NoObjects => write!(f, "the graph has no objects"),
            TooManyObjects { count, max } => write!(f, "{count} objects (at most {max} allowed)"),
            TooManyRelations { count, max } => {
                write!(f, "{count} relations (at most {max} allowed)")
            }
            BoxOutOfCanvas { bbox, width, height } => write!(
                f,
                "box [{}, {}, {}, {}] is degenerate or outside the {width}x{height} canvas",
                bbox[0], bbox[1], bbox[2], bbox[3]
            ),
        }
    }
}

impl fmt::Display for StrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for StrictError {}
