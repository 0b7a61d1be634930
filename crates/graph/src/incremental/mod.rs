//! Incremental validation of a model's output for constrained decoding and early stopping.
//!
//! A [`Validator`] is fed the output a byte (or a token) at a time and says whether the text so far can still
//! become a document the strict gate ([`crate::strict`]) accepts, which bytes may come next, and when the document
//! is complete. It is a state machine: each byte costs O(1) apart from hash lookups at the end of relation labels,
//! and the prefix is never re-parsed.
//!
//! # State and token checks
//! The state is split in two:
//! - a small `Copy` cursor (a few hundred bytes): position in the frame, line and field, the partial number or
//!   label, N and M, rows so far, the object ids seen and which of them are `person`, and the current row;
//! - the committed context: for each (subject, label) the objects already used, for duplicate detection.
//!
//! [`Validator::allows`] copies the cursor and runs it over the token with read-only access to the context, so
//! checking thousands of vocabulary tokens per decoding step allocates nothing. A token that completes a relation
//! row and then goes on to finish a further label (so that the new row would have to be in the context) falls back
//! to feeding a clone of the validator: correct, slower, and rare with real tokenizers.
//!
//! # Accepted language
//! Exactly the ASCII texts the strict gate accepts that begin with `<answer>\n`, under these deliberate
//! restrictions (the decoding engine deals with everything outside the answer block):
//! - no leading whitespace and no `<think>…</think>` block before `<answer>`, and no end-of-turn tokens
//!   (`<|im_end|>` …) after `</answer>`; only ASCII whitespace may follow `</answer>`;
//! - ASCII only (any byte ≥ 0x80 is rejected);
//! - inside a line the only whitespace is `' '` and `'\t'`; a line ends with `\n` or `\r\n` (Python also treats
//!   `\x0b \x0c \x1c \x1d \x1e` and a lone `\r` as line breaks, and `\x1f` as whitespace; none of them is accepted
//!   here).
//!
//! Within that it follows the strict grammar: case-insensitive headers, whitespace around every field, leading
//! zeros, `-0` as a coordinate, ids any permutation of `1..N`, boxes inside the canvas with `x1 < x2`, `y1 < y2`,
//! relations between existing distinct ids, no duplicate `(subj, lowercased pred, obj)`, AG lists within their
//! caps with no repeated label and at least one label per row, a `person` subject, no atomic relation repeated
//! across rows, `1 ≤ N ≤ max_objects`, at most `max_relations` (atomic) relations, and `\n</answer>` at the end
//! (one empty line before it is allowed, as in the gate, because `splitlines` drops a final line break).
//!
//! Digits are checked against what can still be reached: with a 640-pixel canvas, after `64` the x2 field takes
//! only `0` or a separator, while `0` keeps every value reachable (leading zeros are legal) unless
//! [`ValidatorConfig::canonical_numbers`] asks for numbers without them, as constrained decoding does.
//!
//! # Limits
//! - at most [`MAX_OBJECTS_SUPPORTED`] objects and at most 8 labels per AG list ([`Validator::new`] refuses
//!   larger limits);
//! - labels are identified by a 64-bit hash of their lowercase bytes for duplicate detection, so two different
//!   labels whose hashes collide would be treated as the same label (a false rejection; never a false accept);
//! - every accepted prefix can be completed, with a continuation that needs no padding whitespace (random walks
//!   in `tests_walk` check this). With closed vocabularies ([`Vocab`]) this takes look-ahead: a subject all of
//!   whose (label, object) pairs are used is refused as a subject, a label prefix that leads only to used labels
//!   (or to labels already in the AG list) is refused at its first byte, an AG list may be closed empty only if a
//!   later list can still take a fresh label, and the AG label budget keeps one fresh atomic relation for every
//!   remaining row. Vocabularies are matched exactly (lowercase entries only).

mod cursor;
mod fields;
mod vocab;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_prop;
#[cfg(test)]
mod tests_walk;

pub use vocab::{ByteSet, Vocab};

use crate::label;
use crate::types::{RelKind, Schema};
use crate::StrictConfig;
use cursor::{Ctx, Cursor, Env, Ev, Halt};
use std::sync::Arc;

/// Largest `max_objects` the validator supports (object ids are kept in 256-bit sets).
pub const MAX_OBJECTS_SUPPORTED: usize = 255;

/// What the validator enforces.
#[derive(Debug, Clone, Default)]
pub struct ValidatorConfig {
    /// Canvas, counts, AG caps and the person-subject rule, as in the strict gate.
    pub strict: StrictConfig,
    /// Closed list of object names, if any.
    pub names: Option<Vocab>,
    /// Closed list of predicates (triplet schema), or of labels for every AG family without its own list.
    pub predicates: Option<Vocab>,
    /// AG only: closed label lists per family (attention, spatial, contacting); each overrides `predicates`.
    pub ag_labels: [Option<Vocab>; 3],
    /// Numbers as the answers write them: no digit after a leading zero (`07`, `-05`), so `0` is accepted only
    /// where zero itself is. The gate accepts leading zeros (Python's `int`), and so does the validator by default;
    /// a constrained decoder needs this, because a leading zero keeps every value reachable and a model can write
    /// zeros until its token budget runs out (3 of 256 test answers of the twenty-seventh session's seed-0 demo
    /// did).
    pub canonical_numbers: bool,
}

/// A configuration the validator cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("max_objects {0} exceeds the supported {MAX_OBJECTS_SUPPORTED}")]
    TooManyObjects(usize),
    #[error("the {0} list cap {1} exceeds the supported 8")]
    CapTooLarge(RelKind, usize),
    #[error("vocabulary entry `{0}` is not a canonical lowercase label")]
    NonCanonicalEntry(String),
}

/// Where the text stands after the bytes fed so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A viable prefix; more bytes are needed.
    Incomplete,
    /// A complete document; only trailing whitespace may follow.
    Complete,
}

/// Why a byte was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Why {
    #[error("non-ASCII byte")]
    NotAscii,
    #[error("outside the <answer>\\n … \\n</answer> frame")]
    Frame,
    #[error("a carriage return must be followed by a line feed")]
    LineBreak,
    #[error("malformed table header")]
    Header,
    #[error("malformed row")]
    Syntax,
    #[error("count out of range")]
    Count,
    #[error("object id out of range or already used")]
    Id,
    #[error("coordinate outside the canvas or box empty")]
    Coordinate,
    #[error("label not canonical")]
    Label,
    #[error("label not in the vocabulary")]
    Vocab,
    #[error("subject id unknown, or not a person")]
    SubjectRef,
    #[error("object id unknown, equal to the subject, or making a duplicate relation")]
    ObjectRef,
    #[error("every remaining object would duplicate a relation")]
    DuplicateRelation,
    #[error("label repeated in a list")]
    DuplicateLabel,
    #[error("too many labels in a list")]
    TooManyLabels,
    #[error("a pair row needs at least one label")]
    NoLabels,
    #[error("relation budget exhausted")]
    RelationBudget,
    #[error("text after </answer>")]
    AfterEnd,
    #[error("leading zero (canonical numbers)")]
    LeadingZero,
    #[error("internal state error")]
    Internal,
}

/// A refused byte: its offset in the whole text fed so far, the byte, and the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset} ({byte:#04x}): {why}")]
pub struct Reject {
    pub offset: u64,
    pub byte: u8,
    pub why: Why,
}

/// The incremental validator. Cheap to clone apart from the committed relation keys.
#[derive(Debug, Clone)]
pub struct Validator {
    env: Arc<Env>,
    ctx: Ctx,
    cur: Cursor,
    /// Labels of the AG row being read, committed with the row.
    row_labels: Vec<(u8, u64)>,
}

impl Validator {
    pub fn new(schema: Schema, cfg: ValidatorConfig) -> Result<Validator, ConfigError> {
        let s = cfg.strict;
        if s.max_objects > MAX_OBJECTS_SUPPORTED {
            return Err(ConfigError::TooManyObjects(s.max_objects));
        }
        let caps = [s.ag_attention_max, s.ag_spatial_max, s.ag_contacting_max];
        if schema == Schema::Ag {
            for (kind, cap) in RelKind::ALL.into_iter().zip(caps) {
                if cap > cursor::LIST_MAX {
                    return Err(ConfigError::CapTooLarge(kind, cap));
                }
            }
        }
        let labels = match schema {
            Schema::Triplet => [cfg.predicates, None, None],
            Schema::Ag => {
                let [a, b, c] = cfg.ag_labels;
                let p = cfg.predicates;
                [a.or_else(|| p.clone()), b.or_else(|| p.clone()), c.or(p)]
            }
        };
        let check = |v: &Option<Vocab>, sch: Schema| -> Result<(), ConfigError> {
            for e in v.iter().flat_map(|v| v.entries()) {
                if !label::is_canonical(sch, e) || e.bytes().any(|b| b.is_ascii_uppercase()) {
                    return Err(ConfigError::NonCanonicalEntry(e.clone()));
                }
            }
            Ok(())
        };
        check(&cfg.names, schema)?;
        for l in &labels {
            check(l, schema)?;
        }
        let class = |sch: Schema| {
            let mut set = ByteSet::EMPTY;
            (0u8..0x80).filter(|&b| label::is_label_byte(sch, b)).for_each(|b| set.insert(b));
            set
        };
        let label_class = [class(Schema::Triplet), class(Schema::Ag)];
        let families = match schema {
            Schema::Triplet => vec![0],
            Schema::Ag => (0..3).filter(|&k| caps[k] > 0).collect(),
        };
        let pair_capacity = families.iter().map(|&k| labels[k].as_ref().map(|v| v.len() as u64)).sum::<Option<u64>>();
        let canonical_numbers = cfg.canonical_numbers;
        let env = Env { cfg: s, schema, names: cfg.names, labels, caps, label_class, pair_capacity, canonical_numbers };
        Ok(Validator { env: Arc::new(env), ctx: Ctx::default(), cur: Cursor::new(), row_labels: Vec::new() })
    }

    /// Starts over with an empty text, keeping the configuration.
    pub fn reset(&mut self) {
        self.ctx = Ctx::default();
        self.cur = Cursor::new();
        self.row_labels.clear();
    }

    /// Number of bytes accepted so far.
    pub fn offset(&self) -> u64 {
        self.cur.pos
    }

    pub fn is_complete(&self) -> bool {
        self.cur.is_complete()
    }

    pub fn status(&self) -> Status {
        if self.is_complete() {
            Status::Complete
        } else {
            Status::Incomplete
        }
    }

    /// Consumes `bytes`. On a refused byte, the bytes before it stay consumed and the validator remains usable in
    /// that state (the refused byte and everything after it are ignored).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Status, Reject> {
        for &b in bytes {
            let mut c = self.cur;
            match c.step(&self.env, Some(&self.ctx), b) {
                Ok(ev) => {
                    self.cur = c;
                    self.apply(ev);
                }
                Err(h) => {
                    let why = match h {
                        Halt::Reject(w) => w,
                        Halt::NeedCtx => Why::Internal,
                    };
                    return Err(Reject { offset: self.cur.pos, byte: b, why });
                }
            }
        }
        Ok(self.status())
    }

    /// [`Validator::feed`] for text.
    pub fn feed_str(&mut self, s: &str) -> Result<Status, Reject> {
        self.feed(s.as_bytes())
    }

    fn apply(&mut self, ev: Ev) {
        match ev {
            Ev::None => {}
            Ev::Label { kind, h } => self.row_labels.push((kind, h)),
            Ev::TripRow { s, h, o } => {
                self.ctx.trip.entry((s, h)).or_default().set(o);
                self.commit_atomic(s, 1);
            }
            Ev::AgRow { s, o } => {
                let count = self.row_labels.len() as u32;
                for (k, h) in self.row_labels.drain(..) {
                    self.ctx.ag.entry((s, k, h)).or_default().set(o);
                }
                self.commit_atomic(s, count);
            }
        }
    }

    /// Counts `count` new atomic relations of subject `s`; with closed relation lists, marks `s` as exhausted once
    /// every one of its (label, object) pairs is used (each atomic relation used a distinct one).
    fn commit_atomic(&mut self, s: u32, count: u32) {
        self.ctx.subjects.set(s);
        let used = self.ctx.atomic_of.entry(s).or_default();
        *used += count;
        if let Some(cap) = self.env.pair_capacity {
            if *used as u64 >= cap * (self.cur.n as u64).saturating_sub(1) {
                self.cur.full.set(s);
            }
        }
    }

    /// Whether feeding `token` now would be accepted (the empty token is). Does not change the validator.
    pub fn allows(&self, token: &[u8]) -> bool {
        let mut c = self.cur;
        let mut stale = false;
        for &b in token {
            let ctx = if stale { None } else { Some(&self.ctx) };
            match c.step(&self.env, ctx, b) {
                Ok(Ev::TripRow { .. } | Ev::AgRow { .. }) => stale = true,
                Ok(_) => {}
                Err(Halt::Reject(_)) => return false,
                Err(Halt::NeedCtx) => return self.clone().feed(token).is_ok(),
            }
        }
        true
    }

    /// A probe at the current position, for walking many candidate tokens that share prefixes (a token trie):
    /// step it byte by byte with [`Validator::probe_step`] and branch by copying it. Walking a trie this way checks
    /// every token of the vocabulary with one step per trie edge instead of one per token byte.
    pub fn probe(&self) -> Probe {
        Probe { cur: self.cur, stale: false }
    }

    /// Advances `probe` (made by this validator, which must not have changed since) by one byte.
    pub fn probe_step(&self, probe: &Probe, b: u8) -> ProbeStep {
        let mut p = *probe;
        let ctx = if p.stale { None } else { Some(&self.ctx) };
        match p.cur.step(&self.env, ctx, b) {
            Ok(Ev::TripRow { .. } | Ev::AgRow { .. }) => {
                p.stale = true;
                ProbeStep::Ok(p)
            }
            Ok(_) => ProbeStep::Ok(p),
            Err(Halt::Reject(_)) => ProbeStep::Refused,
            Err(Halt::NeedCtx) => ProbeStep::Unsure,
        }
    }

    /// Some while the text ends inside a label whose vocabulary is open (an object name or a predicate without a
    /// closed list, or an AG list label without one).
    ///
    /// The contract a mask cache may rely on: for any byte string made only of bytes in the key's `class`,
    /// whether [`Validator::allows`] accepts it depends on the key alone — not on the label's bytes so far nor on
    /// anything else in the document. (Such a string only extends the label; what a label may contain depends on
    /// its schema and on whether its last byte is punctuation.) Strings with other bytes end the label and must be
    /// checked against the validator itself.
    pub fn free_label(&self) -> Option<FreeLabel> {
        let (schema, shape) = self.cur.free_label(&self.env)?;
        let class = match schema {
            Schema::Triplet => self.env.label_class[0],
            Schema::Ag => self.env.label_class[1],
        };
        Some(FreeLabel { class, state: (schema as u8) << 4 | shape })
    }

    /// A superset of the bytes [`Validator::probe_step`] can accept after `probe`, or every byte: lets a trie walk
    /// skip the edges that would be refused anyway without stepping a copy of the probe for each (inside labels
    /// with a closed vocabulary, where a token-trie node has many edges and few are vocabulary bytes).
    pub fn probe_hint(&self, probe: &Probe) -> ByteSet {
        if probe.cur.cr {
            let mut set = ByteSet::EMPTY;
            set.insert(b'\n');
            return set;
        }
        probe.cur.hint(&self.env).unwrap_or(ByteSet([u64::MAX; 4]))
    }

    /// The bytes that may come next (always ASCII).
    pub fn allowed_next_bytes(&self) -> ByteSet {
        let mut out = ByteSet::EMPTY;
        for b in 0u8..0x80 {
            let mut c = self.cur;
            if c.step(&self.env, Some(&self.ctx), b).is_ok() {
                out.insert(b);
            }
        }
        out
    }
}

/// A copy of the validator's cursor advanced over part of a candidate token (see [`Validator::probe`]).
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    cur: Cursor,
    /// A relation row was completed inside the candidate, so the committed context no longer covers it.
    stale: bool,
}

/// The lexical state inside an open-vocabulary label (see [`Validator::free_label`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FreeLabel {
    /// The bytes that continue the label.
    pub class: ByteSet,
    /// Distinguishes states whose rules for class bytes differ (the label's schema and the shape of its last byte).
    pub state: u8,
}

/// Result of [`Validator::probe_step`]. Returned by value: boxing the probe would allocate on every trie edge.
#[derive(Debug, Clone, Copy)]
#[allow(clippy::large_enum_variant)]
pub enum ProbeStep {
    /// The byte keeps the text viable.
    Ok(Probe),
    /// The byte is refused: no token continuing this way is allowed.
    Refused,
    /// The answer depends on a relation row completed inside the candidate (rare): check each candidate token
    /// under this prefix with [`Validator::allows`].
    Unsure,
}

/// Feeds a whole text to a fresh validator and requires a complete document.
pub fn validate(text: &str, schema: Schema, cfg: ValidatorConfig) -> Result<bool, ConfigError> {
    let mut v = Validator::new(schema, cfg)?;
    Ok(matches!(v.feed_str(text), Ok(Status::Complete)))
}
