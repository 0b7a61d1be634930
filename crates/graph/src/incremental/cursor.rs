//! The cursor: the small `Copy` part of the validator's state, and the per-byte transition over the frame, the
//! line structure and the headers. Field-level transitions (numbers, labels, AG lists) are in [`super::fields`].

use super::vocab::{Bits, Vocab};
use super::Why;
use crate::types::Schema;
use crate::StrictConfig;
use std::collections::HashMap;

pub(super) const OPEN: &[u8] = b"<answer>\n";
pub(super) const CLOSE: &[u8] = b"</answer>";
const OBJ_OPEN: &[u8] = b"obj[";
const OBJ_CLOSE: &[u8] = b"]{id,name,x1,y1,x2,y2}:";
const REL_OPEN: &[u8] = b"rel[";
const REL_CLOSE: &[u8] = b"]{subj,pred,obj}:";
const PAIR_OPEN: &[u8] = b"rel_pairs[";
const PAIR_CLOSE: &[u8] = b"]{subj,attention,spatial,contacting,obj}:";

/// Most labels one AG list may hold (the list's labels are kept in the cursor for duplicate detection).
pub(super) const LIST_MAX: usize = 8;

/// Configuration and vocabularies, fixed for a validator's life.
#[derive(Debug)]
pub(super) struct Env {
    pub cfg: StrictConfig,
    pub schema: Schema,
    pub names: Option<Vocab>,
    /// Triplet: `[predicates, -, -]`; AG: one optional vocabulary per [`crate::RelKind`].
    pub labels: [Option<Vocab>; 3],
    /// AG list caps (attention, spatial, contacting).
    pub caps: [usize; 3],
    /// Label bytes of the triplet and AG label schemas.
    pub label_class: [super::ByteSet; 2],
    /// With closed lists for every relation family that may hold labels: the number of distinct labels a
    /// (subject, object) pair can carry; a subject's atomic relations are then bounded by `(n − 1) ×` this.
    pub pair_capacity: Option<u64>,
    /// No digit after a leading zero ([`super::ValidatorConfig::canonical_numbers`]).
    pub canonical_numbers: bool,
}

/// Committed relation keys, for duplicate detection: for each (subject, label) the objects already used.
#[derive(Debug, Clone, Default)]
pub(super) struct Ctx {
    /// Triplet: (subj, predicate hash) → objects.
    pub trip: HashMap<(u32, u64), Bits>,
    /// AG: (subj, kind, label hash) → objects.
    pub ag: HashMap<(u32, u8, u64), Bits>,
    /// Atomic relations per subject.
    pub atomic_of: HashMap<u32, u32>,
    /// Subjects of the rows so far.
    pub subjects: Bits,
}

/// What a byte did that the committed context must learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ev {
    None,
    /// An AG list label was completed.
    Label {
        kind: u8,
        h: u64,
    },
    /// A triplet relation row was completed.
    TripRow {
        s: u32,
        h: u64,
        o: u32,
    },
    /// An AG pair row was completed (its labels came as [`Ev::Label`]s).
    AgRow {
        s: u32,
        o: u32,
    },
}

/// Why a step stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Halt {
    Reject(Why),
    /// The step needs the committed context but was given none (a token check after a row completed inside the
    /// token); the caller falls back to feeding a clone.
    NeedCtx,
}

pub(super) type Step = Result<Ev, Halt>;

#[inline]
pub(super) fn rej<T>(why: Why) -> Result<T, Halt> {
    Err(Halt::Reject(why))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Inside the literal `<answer>\n`, at index i.
    Open(u8),
    ObjHeader,
    ObjRow,
    RelHeader,
    RelRow,
    /// All rows done and their last line break seen; `extra`: one bare `\n` (an empty last body line) was seen.
    AfterBreak {
        extra: bool,
    },
    /// Inside `</answer>`, at index i.
    Close(u8),
    /// After `</answer>`: only whitespace; the document is complete.
    Trailing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Item {
    Pre,
    Lab,
    Post,
}

/// Position inside the current field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sub {
    /// Whitespace before the field's content.
    Pre,
    /// Header literal before the count, at index i.
    Lit1(u8),
    Num,
    /// Header literal after the count, at index i.
    Lit2(u8),
    Lab,
    /// Inside an AG `[...]` list.
    Item(Item),
    /// Whitespace after the content.
    Post,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Count,
    Id,
    Name,
    Coord(u8),
    Subj,
    Pred,
    Obj,
    List(u8),
}

/// The small per-position state. Everything a token check mutates lives here, so a check copies it (a couple of
/// hundred bytes) and runs with read-only access to the committed [`Ctx`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Cursor {
    pub pos: u64,
    pub phase: Phase,
    pub sub: Sub,
    pub field: u8,
    /// A `\r` ended the line; `\n` must follow.
    pub cr: bool,
    // Number being read.
    pub num: u64,
    pub neg: bool,
    pub has_digit: bool,
    // Label being read: shape 0 = empty, 1 = last byte alphanumeric, 2 = last byte punctuation.
    pub lab_shape: u8,
    pub lab_node: u32,
    pub lab_h: u64,
    /// How much of `person` the label matches (7 = mismatch).
    pub pm: u8,
    // Document.
    pub n: u32,
    pub m: u32,
    pub rows: u32,
    pub atomic: u32,
    pub seen: Bits,
    pub person: Bits,
    pub n_person: u32,
    // Current row.
    pub id: u32,
    pub is_person: bool,
    pub x1: i64,
    pub y1: i64,
    pub subj: u32,
    pub obj: u32,
    pub pred_h: u64,
    /// Objects that would still complete the current relation row without a duplicate or a self-loop.
    pub viable: Bits,
    /// Triplet with a closed predicate list of at most 256 entries: for the row's subject, the entries (by
    /// depth-first index, see `Vocab::span`) that still have an unused object; `pred_fresh_ok` says it is set.
    pub pred_fresh: Bits,
    pub pred_fresh_ok: bool,
    /// Subjects all of whose (label, object) pairs are used (only with closed relation lists, see
    /// `Env::pair_capacity`).
    pub full: Bits,
    pub list_n: u8,
    pub row_n: u16,
    pub list_h: [u64; LIST_MAX],
}

#[inline]
pub(super) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// ASCII whitespace as Python's `str.strip()` sees it.
#[inline]
fn is_py_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f)
}

impl Cursor {
    pub fn new() -> Cursor {
        Cursor {
            pos: 0,
            phase: Phase::Open(0),
            sub: Sub::Pre,
            field: 0,
            cr: false,
            num: 0,
            neg: false,
            has_digit: false,
            lab_shape: 0,
            lab_node: 0,
            lab_h: 0,
            pm: 0,
            n: 0,
            m: 0,
            rows: 0,
            atomic: 0,
            seen: Bits::default(),
            person: Bits::default(),
            n_person: 0,
            id: 0,
            is_person: false,
            x1: 0,
            y1: 0,
            subj: 0,
            obj: 0,
            pred_h: 0,
            viable: Bits::default(),
            full: Bits::default(),
            pred_fresh: Bits::default(),
            pred_fresh_ok: false,
            list_n: 0,
            row_n: 0,
            list_h: [0; LIST_MAX],
        }
    }

    #[inline]
    pub fn is_complete(&self) -> bool {
        self.phase == Phase::Trailing
    }

    /// Consumes one byte. On `Err` the cursor may be partly updated: callers step a copy.
    pub fn step(&mut self, env: &Env, ctx: Option<&Ctx>, b: u8) -> Step {
        if b >= 0x80 {
            return rej(Why::NotAscii);
        }
        if self.cr {
            if b != b'\n' {
                return rej(Why::LineBreak);
            }
            self.cr = false;
            self.pos += 1;
            return Ok(Ev::None);
        }
        let ev = match self.phase {
            Phase::Open(i) => {
                if OPEN.get(i as usize) != Some(&b) {
                    return rej(Why::Frame);
                }
                if i as usize + 1 == OPEN.len() {
                    self.start_line(Phase::ObjHeader);
                } else {
                    self.phase = Phase::Open(i + 1);
                }
                Ev::None
            }
            Phase::AfterBreak { extra } => {
                match b {
                    b'<' => self.phase = Phase::Close(1),
                    b'\n' if !extra => self.phase = Phase::AfterBreak { extra: true },
                    _ => return rej(Why::Frame),
                }
                Ev::None
            }
            Phase::Close(i) => {
                if CLOSE.get(i as usize) != Some(&b) {
                    return rej(Why::Frame);
                }
                self.phase = if i as usize + 1 == CLOSE.len() { Phase::Trailing } else { Phase::Close(i + 1) };
                Ev::None
            }
            Phase::Trailing => {
                if !is_py_ws(b) {
                    return rej(Why::AfterEnd);
                }
                Ev::None
            }
            Phase::ObjHeader | Phase::ObjRow | Phase::RelHeader | Phase::RelRow => self.line(env, ctx, b)?,
        };
        self.pos += 1;
        Ok(ev)
    }

    pub(super) fn start_line(&mut self, phase: Phase) {
        self.phase = phase;
        self.sub = Sub::Pre;
        self.field = 0;
        self.row_n = 0;
        self.list_n = 0;
    }

    fn is_header(&self) -> bool {
        matches!(self.phase, Phase::ObjHeader | Phase::RelHeader)
    }

    pub(super) fn current_field(&self, env: &Env) -> Field {
        match (self.phase, env.schema, self.field) {
            (Phase::ObjRow, _, 0) => Field::Id,
            (Phase::ObjRow, _, 1) => Field::Name,
            (Phase::ObjRow, _, f) => Field::Coord(f.saturating_sub(2)),
            (Phase::RelRow, _, 0) => Field::Subj,
            (Phase::RelRow, Schema::Triplet, 1) => Field::Pred,
            (Phase::RelRow, Schema::Triplet, _) => Field::Obj,
            (Phase::RelRow, Schema::Ag, f @ 1..=3) => Field::List(f - 1),
            (Phase::RelRow, Schema::Ag, _) => Field::Obj,
            _ => Field::Count,
        }
    }

    fn is_last_field(&self, env: &Env) -> bool {
        match self.phase {
            Phase::ObjRow => self.field == 5,
            Phase::RelRow => match env.schema {
                Schema::Triplet => self.field == 2,
                Schema::Ag => self.field == 4,
            },
            _ => true,
        }
    }

    fn literals(&self, env: &Env) -> (&'static [u8], &'static [u8]) {
        match (self.phase, env.schema) {
            (Phase::ObjHeader, _) => (OBJ_OPEN, OBJ_CLOSE),
            (_, Schema::Triplet) => (REL_OPEN, REL_CLOSE),
            (_, Schema::Ag) => (PAIR_OPEN, PAIR_CLOSE),
        }
    }

    /// One byte inside a body line.
    fn line(&mut self, env: &Env, ctx: Option<&Ctx>, b: u8) -> Step {
        if ctx.is_none() && self.phase == Phase::RelRow && self.field == 0 && env.pair_capacity.is_some() {
            // The exhausted subjects (`full`) are kept up to date by the validator as rows are committed, which a
            // token check running past a row end does not do.
            return Err(Halt::NeedCtx);
        }
        match self.sub {
            Sub::Pre if is_ws(b) => Ok(Ev::None),
            Sub::Pre if self.is_header() => self.lit1(env, b, 0),
            Sub::Pre => self.start_content(env, ctx, b),
            Sub::Lit1(i) => self.lit1(env, b, i),
            Sub::Num if b.is_ascii_digit() => self.digit(env, b),
            Sub::Num if self.is_header() => {
                self.finish_num(env, ctx)?;
                self.lit2(env, b, 0)
            }
            Sub::Num => {
                self.finish_num(env, ctx)?;
                self.after(env, b)
            }
            Sub::Lit2(i) => self.lit2(env, b, i),
            Sub::Lab => {
                if self.label_byte_ok(env, b) {
                    self.lab_byte(env, b)?;
                    self.pred_prefix_ok(env, ctx)?;
                    Ok(Ev::None)
                } else {
                    self.finish_field_label(env, ctx)?;
                    self.after(env, b)
                }
            }
            Sub::Item(it) => self.item(env, ctx, b, it),
            Sub::Post => self.after(env, b),
        }
    }

    fn lit1(&mut self, env: &Env, b: u8, i: u8) -> Step {
        let (lit, _) = self.literals(env);
        if !lit.get(i as usize).is_some_and(|c| c.eq_ignore_ascii_case(&b)) {
            return rej(Why::Header);
        }
        if i as usize + 1 == lit.len() {
            self.sub = Sub::Num;
            self.num = 0;
            self.neg = false;
            self.has_digit = false;
        } else {
            self.sub = Sub::Lit1(i + 1);
        }
        Ok(Ev::None)
    }

    fn lit2(&mut self, env: &Env, b: u8, i: u8) -> Step {
        let (_, lit) = self.literals(env);
        if !lit.get(i as usize).is_some_and(|c| c.eq_ignore_ascii_case(&b)) {
            return rej(Why::Header);
        }
        self.sub = if i as usize + 1 == lit.len() { Sub::Post } else { Sub::Lit2(i + 1) };
        Ok(Ev::None)
    }

    /// The byte after a field's content: whitespace, the field separator, or the line break after the last field.
    fn after(&mut self, env: &Env, b: u8) -> Step {
        let last = self.is_last_field(env);
        match b {
            b' ' | b'\t' => {
                self.sub = Sub::Post;
                Ok(Ev::None)
            }
            b',' if !last => {
                self.field += 1;
                self.sub = Sub::Pre;
                Ok(Ev::None)
            }
            b'\n' | b'\r' if last => {
                self.cr = b == b'\r';
                Ok(self.end_line(env))
            }
            _ if self.is_header() => rej(Why::Header),
            _ => rej(Why::Syntax),
        }
    }

    fn end_line(&mut self, env: &Env) -> Ev {
        match self.phase {
            Phase::ObjHeader => {
                self.rows = 0;
                self.start_line(Phase::ObjRow);
                Ev::None
            }
            Phase::ObjRow => {
                self.seen.set(self.id);
                if self.is_person {
                    self.person.set(self.id);
                    self.n_person += 1;
                }
                self.rows += 1;
                let next = if self.rows >= self.n { Phase::RelHeader } else { Phase::ObjRow };
                self.start_line(next);
                Ev::None
            }
            Phase::RelHeader => {
                self.rows = 0;
                if self.m == 0 {
                    self.phase = Phase::AfterBreak { extra: false };
                } else {
                    self.start_line(Phase::RelRow);
                }
                Ev::None
            }
            _ => {
                self.rows += 1;
                let ev = match env.schema {
                    Schema::Triplet => Ev::TripRow { s: self.subj, h: self.pred_h, o: self.obj },
                    Schema::Ag => {
                        self.atomic += self.row_n as u32;
                        Ev::AgRow { s: self.subj, o: self.obj }
                    }
                };
                if self.rows >= self.m {
                    self.phase = Phase::AfterBreak { extra: false };
                } else {
                    self.start_line(Phase::RelRow);
                }
                ev
            }
        }
    }
}
