//! Field-level transitions of the cursor: numbers whose digits must keep an accepted value reachable, labels
//! (canonical shape, optional vocabulary trie, person detection, hashing), and AG bracketed label lists.

use super::cursor::{is_ws, rej, Ctx, Cursor, Env, Ev, Field, Halt, Item, Phase, Step, Sub};
use super::vocab::{hash_byte, hash_finish, Bits, Vocab, FNV_OFFSET};
use super::{ByteSet, Why};
use crate::label::is_label_byte;
use crate::types::Schema;

const NO_NODE: u32 = u32::MAX;

/// The values a numeric field accepts.
#[derive(Clone, Copy)]
enum Cand {
    Range(i64, i64),
    Set(Bits),
}

impl Cand {
    #[inline]
    fn any_in(&self, lo: i64, hi: i64) -> bool {
        match self {
            Cand::Range(a, b) => lo.max(*a) <= hi.min(*b),
            Cand::Set(s) => s.any_in(lo, hi),
        }
    }

    fn bounds(&self) -> (i64, i64) {
        match self {
            Cand::Range(a, b) => (*a, *b),
            Cand::Set(_) => (0, 255),
        }
    }

    /// Whether a digit string of value `v` (sign `neg`) can be completed — by appending digits or not — into an
    /// accepted value. Appending k digits to value v > 0 gives `[v·10^k, v·10^k + 10^k − 1]`; a zero value (leading
    /// zeros, or just `-`) can still become any value.
    fn reachable(&self, neg: bool, v: u64) -> bool {
        let (lo_b, hi_b) = self.bounds();
        let bound = if neg { lo_b.saturating_neg() } else { hi_b };
        if bound < 0 {
            return false;
        }
        let test = |a: i64, b: i64| {
            if neg {
                self.any_in(-b, -a)
            } else {
                self.any_in(a, b)
            }
        };
        if v == 0 {
            return test(0, bound);
        }
        let (mut lo, mut span) = (i64::try_from(v).unwrap_or(i64::MAX), 1i64);
        while lo <= bound {
            if test(lo, lo.saturating_add(span - 1).min(bound)) {
                return true;
            }
            lo = lo.saturating_mul(10);
            span = span.saturating_mul(10);
        }
        false
    }
}

fn range_why(f: Field) -> Why {
    match f {
        Field::Count => Why::Count,
        Field::Id => Why::Id,
        Field::Coord(_) => Why::Coordinate,
        Field::Subj => Why::SubjectRef,
        _ => Why::ObjectRef,
    }
}

impl Cursor {
    fn cand(&self, env: &Env, f: Field) -> Cand {
        let n = self.n as i64;
        let (w, h) = (env.cfg.canvas.width as i64, env.cfg.canvas.height as i64);
        match f {
            Field::Count if self.phase == Phase::ObjHeader => {
                Cand::Range(1, env.cfg.max_objects.min(i64::MAX as usize) as i64)
            }
            Field::Count => Cand::Range(0, self.m_max(env)),
            Field::Id => Cand::Set(Bits::range(1, n).and_not(self.seen)),
            Field::Coord(0) => Cand::Range(0, w - 1),
            Field::Coord(1) => Cand::Range(0, h - 1),
            Field::Coord(2) => Cand::Range(self.x1.saturating_add(1), w),
            Field::Coord(_) => Cand::Range(self.y1.saturating_add(1), h),
            // A subject whose (label, object) pairs are all used (closed lists only) cannot start a row.
            Field::Subj if env.schema == Schema::Ag && env.cfg.ag_enforce_person_subject => {
                Cand::Set(Bits::range(1, n).and(self.person).and_not(self.full))
            }
            Field::Subj if env.pair_capacity.is_some() => Cand::Set(Bits::range(1, n).and_not(self.full)),
            Field::Subj => Cand::Range(1, n),
            _ => Cand::Set(self.viable),
        }
    }

    /// The largest relation count whose rows can all be written (global bound; see the module doc for what it
    /// does not capture with closed vocabularies).
    fn m_max(&self, env: &Env) -> i64 {
        let n = self.n as i64;
        let max_rel = env.cfg.max_relations.min(i64::MAX as usize) as i64;
        if n < 2 {
            return 0;
        }
        let size = |v: &Option<Vocab>| v.as_ref().map(|v| v.len() as i64);
        match env.schema {
            Schema::Triplet => match size(&env.labels[0]) {
                Some(k) => max_rel.min(n * (n - 1) * k),
                None => max_rel,
            },
            Schema::Ag => {
                let p = if env.cfg.ag_enforce_person_subject { self.n_person as i64 } else { n };
                let mut usable = Some(0i64);
                for k in 0..3 {
                    if env.caps[k] == 0 {
                        continue;
                    }
                    usable = match (usable, size(&env.labels[k])) {
                        (Some(u), Some(s)) => Some(u + s),
                        _ => None,
                    };
                }
                match usable {
                    _ if p == 0 => 0,
                    Some(u) => max_rel.min(p * (n - 1) * u),
                    None => max_rel,
                }
            }
        }
    }

    /// First byte of a row field.
    pub(super) fn start_content(&mut self, env: &Env, ctx: Option<&Ctx>, b: u8) -> Step {
        let f = self.current_field(env);
        match f {
            Field::List(_) => {
                if b != b'[' {
                    return rej(Why::Syntax);
                }
                self.list_n = 0;
                self.sub = Sub::Item(Item::Pre);
                Ok(Ev::None)
            }
            Field::Name | Field::Pred => {
                self.lab_reset(Self::vocab(env, f));
                self.sub = Sub::Lab;
                if !self.label_byte_ok(env, b) {
                    return rej(Why::Syntax);
                }
                self.lab_byte(env, b)?;
                self.pred_prefix_ok(env, ctx)?;
                Ok(Ev::None)
            }
            _ => {
                self.num = 0;
                self.has_digit = false;
                self.neg = false;
                self.sub = Sub::Num;
                if b == b'-' && matches!(f, Field::Coord(_)) {
                    if !self.cand(env, f).reachable(true, 0) {
                        return rej(range_why(f));
                    }
                    self.neg = true;
                    Ok(Ev::None)
                } else if b.is_ascii_digit() {
                    self.digit(env, b)
                } else {
                    rej(Why::Syntax)
                }
            }
        }
    }

    pub(super) fn digit(&mut self, env: &Env, b: u8) -> Step {
        let f = self.current_field(env);
        if env.canonical_numbers && self.has_digit && self.num == 0 {
            return rej(Why::LeadingZero);
        }
        let v = self.num.saturating_mul(10).saturating_add((b - b'0') as u64);
        // A canonical zero is the whole number: zero itself must be accepted.
        let ok = if env.canonical_numbers && v == 0 {
            self.cand(env, f).any_in(0, 0)
        } else {
            self.cand(env, f).reachable(self.neg, v)
        };
        if !ok {
            return rej(range_why(f));
        }
        self.num = v;
        self.has_digit = true;
        Ok(Ev::None)
    }

    /// The number is complete: check it and record it.
    pub(super) fn finish_num(&mut self, env: &Env, ctx: Option<&Ctx>) -> Result<(), Halt> {
        let f = self.current_field(env);
        if !self.has_digit {
            return rej(if f == Field::Count { Why::Header } else { Why::Syntax });
        }
        let mag = i64::try_from(self.num).unwrap_or(i64::MAX);
        let v = if self.neg { -mag } else { mag };
        if !self.cand(env, f).any_in(v, v) {
            return rej(range_why(f));
        }
        // In range, so v fits the narrower types below.
        let v32 = u32::try_from(v).unwrap_or(0);
        match f {
            Field::Count if self.phase == Phase::ObjHeader => self.n = v32,
            Field::Count => self.m = v32,
            Field::Id => self.id = v32,
            Field::Coord(0) => self.x1 = v,
            Field::Coord(1) => self.y1 = v,
            Field::Subj => {
                self.subj = v32;
                let mut all = Bits::range(1, self.n as i64);
                all.unset(v32);
                self.viable = all;
                self.pred_fresh_ok = false;
                if let (Schema::Triplet, Some(vocab), Some(ctx)) = (env.schema, env.labels[0].as_ref(), ctx) {
                    // Once per row instead of once per predicate byte (and per candidate token).
                    if vocab.len() <= 256 {
                        let mut fresh = Bits::default();
                        for (i, h) in vocab.hashes_below(Vocab::ROOT).iter().enumerate() {
                            if ctx.trip.get(&(v32, *h)).is_none_or(|used| !all.and_not(*used).is_empty()) {
                                fresh.set(i as u32);
                            }
                        }
                        self.pred_fresh = fresh;
                        self.pred_fresh_ok = true;
                    }
                }
            }
            Field::Obj => self.obj = v32,
            _ => {}
        }
        Ok(())
    }

    fn vocab(env: &Env, f: Field) -> Option<&Vocab> {
        match f {
            Field::Name => env.names.as_ref(),
            Field::Pred => env.labels[0].as_ref(),
            Field::List(k) => env.labels.get(k as usize).and_then(Option::as_ref),
            _ => None,
        }
    }

    fn label_schema(env: &Env, f: Field) -> Schema {
        match f {
            Field::Name => env.schema,
            Field::Pred => Schema::Triplet,
            _ => Schema::Ag,
        }
    }

    fn lab_reset(&mut self, vocab: Option<&Vocab>) {
        self.lab_shape = 0;
        self.lab_node = if vocab.is_some() { Vocab::ROOT } else { NO_NODE };
        self.lab_h = FNV_OFFSET;
        self.pm = 0;
    }

    /// Inside a label with an open vocabulary: the label's schema and shape (see `Validator::free_label`).
    pub(super) fn free_label(&self, env: &Env) -> Option<(Schema, u8)> {
        let in_label = matches!(self.phase, Phase::ObjRow | Phase::RelRow)
            && matches!(self.sub, Sub::Lab | Sub::Item(Item::Lab))
            && !self.cr;
        if !in_label {
            return None;
        }
        let f = self.current_field(env);
        if !matches!(f, Field::Name | Field::Pred | Field::List(_)) || Self::vocab(env, f).is_some() {
            return None;
        }
        Some((Self::label_schema(env, f), self.lab_shape))
    }

    /// A superset of the bytes the next step can accept, where a closed vocabulary makes it small: inside or at
    /// the start of a closed-list label only the vocabulary's next bytes, whitespace and (inside) bytes that end
    /// the label. None elsewhere.
    pub(super) fn hint(&self, env: &Env) -> Option<ByteSet> {
        if self.cr || !matches!(self.phase, Phase::ObjRow | Phase::RelRow) {
            return None;
        }
        let f = self.current_field(env);
        let vocab = Self::vocab(env, f)?;
        let mut set = match self.sub {
            Sub::Lab | Sub::Item(Item::Lab) => {
                let class = env.label_class[(Self::label_schema(env, f) == Schema::Ag) as usize];
                let mut set = vocab.next_bytes(self.lab_node);
                for (w, c) in set.0.iter_mut().zip(class.0) {
                    *w |= !c;
                }
                set
            }
            Sub::Pre if matches!(f, Field::Name | Field::Pred) => vocab.next_bytes(Vocab::ROOT),
            Sub::Item(Item::Pre) => {
                let mut set = vocab.next_bytes(Vocab::ROOT);
                set.insert(b',');
                set.insert(b']');
                set
            }
            _ => return None,
        };
        set.insert(b' ');
        set.insert(b'\t');
        Some(set)
    }

    /// Whether `b` belongs to the current label's byte class (the label may still reject it by shape).
    pub(super) fn label_byte_ok(&self, env: &Env, b: u8) -> bool {
        is_label_byte(Self::label_schema(env, self.current_field(env)), b)
    }

    /// A label byte: shape (`[a-z0-9]` first; triplet labels never have `--`), vocabulary, hash, person match.
    pub(super) fn lab_byte(&mut self, env: &Env, b: u8) -> Result<(), Halt> {
        let f = self.current_field(env);
        let alnum = b.is_ascii_alphanumeric();
        if self.lab_shape == 0 && !alnum {
            return rej(Why::Label);
        }
        if self.lab_shape == 2 && !alnum && Self::label_schema(env, f) == Schema::Triplet {
            return rej(Why::Label);
        }
        self.lab_shape = if alnum { 1 } else { 2 };
        if let Some(v) = Self::vocab(env, f) {
            match v.child(self.lab_node, b) {
                Some(n) => self.lab_node = n,
                None => return rej(Why::Vocab),
            }
        }
        let lb = b.to_ascii_lowercase();
        self.lab_h = hash_byte(self.lab_h, lb);
        self.pm = match b"person".get(self.pm as usize) {
            Some(&c) if c == lb => self.pm + 1,
            _ => 7,
        };
        Ok(())
    }

    /// The label is complete: check its shape and vocabulary, return its hash.
    fn lab_done(&self, env: &Env) -> Result<u64, Halt> {
        if self.lab_shape != 1 {
            return rej(Why::Label);
        }
        if let Some(v) = Self::vocab(env, self.current_field(env)) {
            if !v.is_terminal(self.lab_node) {
                return rej(Why::Vocab);
            }
        }
        Ok(hash_finish(self.lab_h))
    }

    /// A closed-list predicate prefix must still lead to a predicate with an unused object for the row's subject
    /// (else the row could not be finished). Needs the committed context.
    pub(super) fn pred_prefix_ok(&self, env: &Env, ctx: Option<&Ctx>) -> Result<(), Halt> {
        let Some(vocab) = env.labels[0].as_ref() else { return Ok(()) };
        if env.schema != Schema::Triplet || self.current_field(env) != Field::Pred {
            return Ok(());
        }
        if self.pred_fresh_ok {
            let (lo, hi) = vocab.span(self.lab_node);
            return if hi > lo && self.pred_fresh.any_in(lo as i64, hi as i64 - 1) {
                Ok(())
            } else {
                rej(Why::DuplicateRelation)
            };
        }
        let ctx = ctx.ok_or(Halt::NeedCtx)?;
        if !ctx.subjects.contains(self.subj) {
            return Ok(()); // nothing used yet with this subject
        }
        let mut others = Bits::range(1, self.n as i64);
        others.unset(self.subj);
        let fresh = |h: &u64| ctx.trip.get(&(self.subj, *h)).is_none_or(|used| !others.and_not(*used).is_empty());
        if vocab.hashes_below(self.lab_node).iter().any(fresh) {
            Ok(())
        } else {
            rej(Why::DuplicateRelation)
        }
    }

    /// End of an object name or a triplet predicate.
    pub(super) fn finish_field_label(&mut self, env: &Env, ctx: Option<&Ctx>) -> Result<(), Halt> {
        let h = self.lab_done(env)?;
        if self.current_field(env) == Field::Name {
            self.is_person = self.pm == 6;
            return Ok(());
        }
        let ctx = ctx.ok_or(Halt::NeedCtx)?;
        let mut v = Bits::range(1, self.n as i64);
        v.unset(self.subj);
        if let Some(used) = ctx.trip.get(&(self.subj, h)) {
            v = v.and_not(*used);
        }
        if v.is_empty() {
            return rej(Why::DuplicateRelation);
        }
        self.viable = v;
        self.pred_h = h;
        Ok(())
    }

    /// One byte inside an AG `[...]` list.
    pub(super) fn item(&mut self, env: &Env, ctx: Option<&Ctx>, b: u8, it: Item) -> Step {
        let Field::List(k) = self.current_field(env) else {
            return rej(Why::Syntax);
        };
        match it {
            Item::Pre | Item::Post if is_ws(b) => {
                self.sub = Sub::Item(it);
                Ok(Ev::None)
            }
            Item::Pre | Item::Post if b == b',' => {
                self.sub = Sub::Item(Item::Pre);
                Ok(Ev::None)
            }
            Item::Pre | Item::Post if b == b']' => self.close_list(env, ctx, k),
            Item::Pre => {
                if !self.label_byte_ok(env, b) {
                    return rej(Why::Syntax);
                }
                if self.list_n as usize >= env.caps[k as usize].min(super::cursor::LIST_MAX) {
                    return rej(Why::TooManyLabels);
                }
                // Every later row needs a label of its own, within the budget and, with closed lists, among the
                // (subject, label, object) triples not used yet.
                let later_rows = self.m.saturating_sub(self.rows + 1) as u64;
                let need = self.atomic as u64 + self.row_n as u64 + 1 + later_rows;
                if need > env.cfg.max_relations as u64 || need > self.atomic_capacity(env) {
                    return rej(Why::RelationBudget);
                }
                self.lab_reset(Self::vocab(env, Field::List(k)));
                self.lab_byte(env, b)?;
                self.ag_prefix_ok(env, ctx, k)?;
                self.sub = Sub::Item(Item::Lab);
                Ok(Ev::None)
            }
            Item::Post => rej(Why::Label),
            Item::Lab if self.label_byte_ok(env, b) => {
                self.lab_byte(env, b)?;
                self.ag_prefix_ok(env, ctx, k)?;
                Ok(Ev::None)
            }
            Item::Lab => {
                let ev = match b {
                    b' ' | b'\t' | b',' | b']' => self.finish_item(env, ctx, k)?,
                    _ => return rej(Why::Syntax),
                };
                match b {
                    b']' => {
                        self.close_list(env, ctx, k)?;
                    }
                    b',' => self.sub = Sub::Item(Item::Pre),
                    _ => self.sub = Sub::Item(Item::Post),
                }
                Ok(ev)
            }
        }
    }

    fn finish_item(&mut self, env: &Env, ctx: Option<&Ctx>, k: u8) -> Step {
        let h = self.lab_done(env)?;
        let n = self.list_n as usize;
        if self.list_h.get(..n).is_some_and(|l| l.contains(&h)) {
            return rej(Why::DuplicateLabel);
        }
        let ctx = ctx.ok_or(Halt::NeedCtx)?;
        if let Some(used) = ctx.ag.get(&(self.subj, k, h)) {
            let v = self.viable.and_not(*used);
            if v.is_empty() {
                return rej(Why::DuplicateRelation);
            }
            self.viable = v;
        }
        if let Some(slot) = self.list_h.get_mut(n) {
            *slot = h;
        }
        self.list_n += 1;
        self.row_n += 1;
        Ok(Ev::Label { kind: k, h })
    }

    fn close_list(&mut self, env: &Env, ctx: Option<&Ctx>, k: u8) -> Step {
        if self.row_n == 0 {
            // A later list must still be able to take a label that keeps some object viable.
            let mut later = false;
            for j in k + 1..3 {
                if self.can_supply(env, ctx, j)? {
                    later = true;
                    break;
                }
            }
            if !later {
                return rej(Why::NoLabels);
            }
        }
        self.sub = Sub::Post;
        Ok(Ev::None)
    }

    /// Whether AG list `j` can take a label with an object still viable for the row. Needs the committed context
    /// when the list is closed.
    fn can_supply(&self, env: &Env, ctx: Option<&Ctx>, j: u8) -> Result<bool, Halt> {
        if env.caps[j as usize] == 0 {
            return Ok(false);
        }
        let Some(v) = env.labels[j as usize].as_ref() else { return Ok(true) };
        self.fresh_label_below(ctx, v, Vocab::ROOT, j)
    }

    /// Whether some entry of `vocab` at or below `node`, not yet in the current list, keeps an object of the row
    /// viable for relation family `k`.
    fn fresh_label_below(&self, ctx: Option<&Ctx>, vocab: &Vocab, node: u32, k: u8) -> Result<bool, Halt> {
        let ctx = ctx.ok_or(Halt::NeedCtx)?;
        let listed = &self.list_h[..(self.list_n as usize).min(super::cursor::LIST_MAX)];
        let in_list = |h: &u64| self.current_field_is_list(k) && listed.contains(h);
        let fresh = |h: &u64| {
            !in_list(h)
                && (!ctx.subjects.contains(self.subj)
                    || ctx.ag.get(&(self.subj, k, *h)).is_none_or(|used| !self.viable.and_not(*used).is_empty()))
        };
        Ok(vocab.hashes_below(node).iter().any(fresh))
    }

    fn current_field_is_list(&self, k: u8) -> bool {
        self.phase == Phase::RelRow && self.field == k + 1
    }

    /// A closed-list AG label prefix must lead to an entry not yet in the list that keeps an object viable.
    fn ag_prefix_ok(&self, env: &Env, ctx: Option<&Ctx>, k: u8) -> Result<(), Halt> {
        let Some(v) = env.labels[k as usize].as_ref() else { return Ok(()) };
        if self.fresh_label_below(ctx, v, self.lab_node, k)? {
            Ok(())
        } else {
            rej(Why::DuplicateRelation)
        }
    }

    /// The most atomic relations the document can hold: `max_relations`, and with closed lists every person
    /// subject (or every object) times `(n − 1)` times the labels a pair can carry.
    fn atomic_capacity(&self, env: &Env) -> u64 {
        match env.pair_capacity {
            None => u64::MAX,
            Some(cap) => {
                let p = if env.cfg.ag_enforce_person_subject { self.n_person } else { self.n } as u64;
                p * (self.n as u64).saturating_sub(1) * cap
            }
        }
    }
}
