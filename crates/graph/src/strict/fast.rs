//! Single-pass fast path of the strict gate for the common case: an all-ASCII triplet answer whose lines end with
//! `\n` and whose in-line whitespace is spaces and tabs.
//!
//! It either returns exactly the graph the general path would return, or `None` ("not decided here"), in which
//! case the caller runs the general path, which also produces the precise error. So the fast path never rejects
//! anything by itself and never needs error messages. Tests and the fuzzer compare both paths.

use super::StrictConfig;
use crate::types::{BBox, Object, RelKind, Relation, TripletGraph};

struct Scan<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    #[inline]
    fn ws(&mut self) {
        while self.i < self.b.len() && (self.b[self.i] == b' ' || self.b[self.i] == b'\t') {
            self.i += 1;
        }
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }

    #[inline]
    fn comma(&mut self) -> Option<()> {
        self.ws();
        self.eat(b',')?;
        self.ws();
        Some(())
    }

    #[inline]
    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            v = v.saturating_mul(10).saturating_add((c - b'0') as u64);
            self.i += 1;
        }
        (self.i > start).then_some(v)
    }

    #[inline]
    fn int(&mut self) -> Option<i64> {
        let neg = self.eat(b'-').is_some();
        let v = self.uint()?.min(i64::MAX as u64) as i64;
        Some(if neg { -v } else { v })
    }

    /// A triplet label token `[A-Za-z0-9]+(-[A-Za-z0-9]+)*`.
    #[inline]
    fn label(&mut self) -> Option<&'a str> {
        let start = self.i;
        loop {
            let run = self.i;
            while self.b.get(self.i).is_some_and(u8::is_ascii_alphanumeric) {
                self.i += 1;
            }
            if self.i == run {
                return None;
            }
            if self.b.get(self.i) == Some(&b'-') {
                self.i += 1;
            } else {
                return Some(&self.s[start..self.i]);
            }
        }
    }

    /// `ws*` then a `\n`, or the end of the body when `last` (optionally after one final `\n`).
    #[inline]
    fn line_end(&mut self, last: bool) -> Option<()> {
        self.ws();
        if last {
            if self.i == self.b.len() || (self.i + 1 == self.b.len() && self.b[self.i] == b'\n') {
                self.i = self.b.len();
                return Some(());
            }
            return None;
        }
        self.eat(b'\n')
    }

    /// `ws* literal` (ASCII case-insensitive).
    #[inline]
    fn literal_ci(&mut self, lit: &[u8]) -> Option<()> {
        let end = self.i + lit.len();
        (end <= self.b.len() && self.b[self.i..end].eq_ignore_ascii_case(lit)).then(|| self.i = end)
    }

    fn header(&mut self, open: &[u8], close: &[u8]) -> Option<u64> {
        self.ws();
        self.literal_ci(open)?;
        let n = self.uint()?;
        self.literal_ci(close)?;
        Some(n)
    }
}

/// The fast path for a triplet answer body (the text between `<answer>\n` and `\n</answer>`).
pub(super) fn triplet(body: &str, cfg: &StrictConfig) -> Option<TripletGraph> {
    let mut g = TripletGraph { objects: Vec::new(), relations: Vec::new() };
    scan_triplet(body, cfg, &mut g)?;
    Some(g)
}

/// Whether the fast path accepts the body (then the general path accepts it too), without building the graph.
pub(super) fn triplet_accepts(body: &str, cfg: &StrictConfig) -> bool {
    scan_triplet(body, cfg, &mut ()).is_some()
}

/// What the triplet scan reports for each object row and relation of a body it accepts, in text order (names and
/// predicates as written: label tokens, hence ASCII). Rows come before the scan has decided; when it returns
/// `None` what the sink got must be discarded.
pub(crate) trait TripletSink<'a> {
    /// Called before each block's rows with its declared count (the other count 0).
    fn reserve(&mut self, _objects: usize, _relations: usize) {}
    fn object(&mut self, id: u32, name: &'a str, bbox: [i64; 4]);
    fn relation(&mut self, subj: u32, pred: &'a str, obj: u32);
}

/// Acceptance only.
impl<'a> TripletSink<'a> for () {
    fn object(&mut self, _: u32, _: &'a str, _: [i64; 4]) {}
    fn relation(&mut self, _: u32, _: &'a str, _: u32) {}
}

/// The strict graph: names as written, predicates lowercased.
impl<'a> TripletSink<'a> for TripletGraph {
    fn reserve(&mut self, objects: usize, relations: usize) {
        self.objects.reserve(objects);
        self.relations.reserve(relations);
    }
    fn object(&mut self, id: u32, name: &'a str, [x1, y1, x2, y2]: [i64; 4]) {
        self.objects.push(Object { id, name: name.to_string(), bbox: BBox::new(x1, y1, x2, y2) });
    }
    fn relation(&mut self, subj: u32, pred: &'a str, obj: u32) {
        self.relations.push(Relation { subj, pred: pred.to_ascii_lowercase(), obj });
    }
}

/// The single pass behind [`triplet`] and [`triplet_accepts`]: feeds `out` the rows as it reads them.
pub(crate) fn scan_triplet<'a>(body: &'a str, cfg: &StrictConfig, out: &mut impl TripletSink<'a>) -> Option<()> {
    let mut sc = Scan { s: body, b: body.as_bytes(), i: 0 };
    let n = sc.header(b"obj[", b"]{id,name,x1,y1,x2,y2}:")?;
    if n == 0 || n as usize > cfg.max_objects {
        return None;
    }
    let n = n as usize;
    sc.line_end(false)?;
    // Ids seen so far: on the stack for the usual handful of objects.
    let (mut few, mut many) = ([false; 64], Vec::new());
    let seen: &mut [bool] = if n < few.len() {
        &mut few[..=n]
    } else {
        many.resize(n + 1, false);
        &mut many
    };
    out.reserve(n, 0);
    let (w, h) = (cfg.canvas.width as i64, cfg.canvas.height as i64);
    for _ in 0..n {
        sc.ws();
        let id = sc.uint()?;
        sc.comma()?;
        let name = sc.label()?;
        sc.comma()?;
        let x1 = sc.int()?;
        sc.comma()?;
        let y1 = sc.int()?;
        sc.comma()?;
        let x2 = sc.int()?;
        sc.comma()?;
        let y2 = sc.int()?;
        sc.line_end(false)?;
        if id == 0 || id as usize > n || seen[id as usize] {
            return None;
        }
        if !(x1 >= 0 && y1 >= 0 && x2 > x1 && y2 > y1 && x2 <= w && y2 <= h) {
            return None;
        }
        seen[id as usize] = true;
        out.object(id as u32, name, [x1, y1, x2, y2]);
    }
    let m = sc.header(b"rel[", b"]{subj,pred,obj}:")?;
    if m as usize > cfg.max_relations {
        return None;
    }
    let m = m as usize;
    out.reserve(0, m);
    sc.line_end(m == 0)?;
    // Predicates as written (labels, hence ASCII): compared case-insensitively, as their lowercase forms are.
    let mut preds: Vec<&str> = Vec::with_capacity(m);
    let mut pair_keys: Vec<(u64, u32)> = Vec::with_capacity(m);
    for k in 0..m {
        sc.ws();
        let s = sc.uint()?;
        sc.comma()?;
        let pred = sc.label()?;
        sc.comma()?;
        let o = sc.uint()?;
        sc.line_end(k + 1 == m)?;
        if s == 0 || o == 0 || s as usize > n || o as usize > n || s == o {
            return None;
        }
        pair_keys.push(((s << 32) | o, k as u32));
        preds.push(pred);
        out.relation(s as u32, pred, o as u32);
    }
    if sc.i != sc.b.len() {
        return None;
    }
    // Duplicates: bucket by the id pair, compare predicates within a bucket only.
    pair_keys.sort_unstable();
    let mut a = 0;
    while a < pair_keys.len() {
        let b = a + pair_keys[a..].iter().take_while(|k| k.0 == pair_keys[a].0).count();
        let bucket = &pair_keys[a..b];
        for (i, x) in bucket.iter().enumerate() {
            if bucket[..i].iter().any(|y| preds[y.1 as usize].eq_ignore_ascii_case(preds[x.1 as usize])) {
                return None;
            }
        }
        a = b;
    }
    Some(())
}

/// What the AG scan reports for each object row and atomic relation of a body it accepts (in text order; an
/// atomic relation's label is the slice as written, canonical hence ASCII).
pub(crate) trait AgSink<'a> {
    fn object(&mut self, id: u32, name: &'a str, bbox: [i64; 4]);
    fn atomic(&mut self, subj: u32, kind: RelKind, label: &'a str, obj: u32);
}

/// [`crate::label::is_label_byte`] for AG as a table (the scan's innermost loop).
const AG_LABEL_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = (c as u8).is_ascii_alphanumeric() || matches!(c as u8, b'-' | b'_' | b'.' | b'/');
        c += 1;
    }
    t
};

#[cfg(test)]
pub(super) fn ag_label_byte(c: u8) -> bool {
    AG_LABEL_BYTE[c as usize]
}

/// Acceptance only.
impl<'a> AgSink<'a> for () {
    fn object(&mut self, _: u32, _: &'a str, _: [i64; 4]) {}
    fn atomic(&mut self, _: u32, _: RelKind, _: &'a str, _: u32) {}
}

impl<'a> Scan<'a> {
    /// An AG label token: a non-empty run of AG label bytes whose first and last bytes are alphanumeric.
    #[inline]
    fn ag_label(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self.b.get(self.i).is_some_and(|&c| AG_LABEL_BYTE[c as usize]) {
            self.i += 1;
        }
        let t = &self.b[start..self.i];
        (!t.is_empty() && t[0].is_ascii_alphanumeric() && t[t.len() - 1].is_ascii_alphanumeric())
            .then(|| &self.s[start..self.i])
    }

    /// `[ item (, item)* ]` where an item is `ws*` or `ws* label ws*`; pushes the labels (empty items dropped).
    #[inline]
    fn ag_list(&mut self, out: &mut Vec<&'a str>) -> Option<()> {
        self.eat(b'[')?;
        loop {
            self.ws();
            if !matches!(self.b.get(self.i), Some(b']' | b',')) {
                out.push(self.ag_label()?);
                self.ws();
            }
            match self.b.get(self.i) {
                Some(b']') => {
                    self.i += 1;
                    return Some(());
                }
                Some(b',') => self.i += 1,
                _ => return None,
            }
        }
    }
}

/// Why [`scan_ag`] gave no graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decline {
    /// The body leaves the standard shape: run the general path.
    Unknown,
    /// A row of the standard shape, read as the general path reads it, breaks a rule of the gate: the completion
    /// is invalid.
    Invalid,
}

use Decline::{Invalid, Unknown};

/// The fast path of the strict AG gate on an answer body: `Ok((N, M))` after feeding `sink` every object row and
/// atomic relation when the body has the standard shape (lines end with `\n`, in-line whitespace is spaces and
/// tabs, the two headers, N object rows, M pair rows) and passes every check of the gate; `Err(Unknown)` when it
/// cannot decide (the caller then discards what the sink got and runs the general path); `Err(Invalid)` when a
/// value it read breaks a rule.
///
/// Why acceptance here is acceptance there: every byte this scan accepts is printable ASCII, a tab or `\n`, where
/// `splitlines`, `strip` and the row lexer's whitespace all mean spaces and tabs; each line is a header or a row of
/// the gate's grammar (a comma field `ws* token ws*` is the stripped token; a list item is empty or a canonical
/// label); the rows before the relation header are exactly N valid object rows, so no other line is a relation
/// header. The checks are the gate's: ids exactly `{1..N}`, boxes on the canvas, `1 ≤ N ≤ max_objects`, known
/// distinct pair ids, per-list caps, at least one label per row, a `person` subject, at most `max_relations`
/// atomic relations and no repeated atomic relation. The gate's other two rejections — a label repeated within
/// its list and a repeated pair row — each repeat an atomic relation (a pair row has a label), so the last check
/// covers them.
///
/// Why a broken rule decides: every line before the one the scan stopped on was split at `\n` and read by the
/// gate's own grammar, so the general path sees the same lines; if it accepted the text, line 0 would be the same
/// header and lines 1..=N object rows and the later lines pair rows, each read (the row lexer is deterministic:
/// maximal digit runs, a list ends at the first `]`) to the same values the scan read — including the prefix of a
/// row the scan had read when a list broke its cap. A rule broken by those values (or by `N` itself: 0 or above
/// `max_objects`) thus makes the general path reject the text too.
pub(super) fn scan_ag<'a>(
    body: &'a str,
    cfg: &StrictConfig,
    sink: &mut impl AgSink<'a>,
) -> Result<(u64, u64), Decline> {
    let mut sc = Scan { s: body, b: body.as_bytes(), i: 0 };
    let n = sc.header(b"obj[", b"]{id,name,x1,y1,x2,y2}:").ok_or(Unknown)?;
    if n == 0 || n as usize > cfg.max_objects {
        return Err(Invalid);
    }
    // Ids fit in 32 bits (the duplicate keys pack two of them in a `u64`).
    if n > u32::MAX as u64 {
        return Err(Unknown);
    }
    let n_objs = n as usize;
    sc.line_end(false).ok_or(Unknown)?;
    // Per id: seen, and whether the name is `person` (ASCII case-insensitive).
    let mut seen = vec![0u8; n_objs + 1];
    for _ in 0..n_objs {
        sc.ws();
        let id = sc.uint().ok_or(Unknown)?;
        sc.comma().ok_or(Unknown)?;
        let name = sc.ag_label().ok_or(Unknown)?;
        sc.comma().ok_or(Unknown)?;
        let x1 = sc.int().ok_or(Unknown)?;
        sc.comma().ok_or(Unknown)?;
        let y1 = sc.int().ok_or(Unknown)?;
        sc.comma().ok_or(Unknown)?;
        let x2 = sc.int().ok_or(Unknown)?;
        sc.comma().ok_or(Unknown)?;
        let y2 = sc.int().ok_or(Unknown)?;
        sc.line_end(false).ok_or(Unknown)?;
        if id == 0 || id > n || seen[id as usize] != 0 || !cfg.canvas.contains(&BBox::new(x1, y1, x2, y2)) {
            return Err(Invalid);
        }
        seen[id as usize] = if name.eq_ignore_ascii_case("person") { 2 } else { 1 };
        sink.object(id as u32, name, [x1, y1, x2, y2]);
    }
    let m = sc.header(b"rel_pairs[", b"]{subj,attention,spatial,contacting,obj}:").ok_or(Unknown)?;
    sc.line_end(m == 0).ok_or(Unknown)?;
    let caps = [cfg.ag_attention_max, cfg.ag_spatial_max, cfg.ag_contacting_max];
    // Atomic relations as (id pair, kind, index into `labels`), for the duplicate check.
    let mut keys: Vec<(u64, u8, u32)> = Vec::new();
    let mut labels: Vec<&'a str> = Vec::new();
    let mut k = 0u64;
    while k < m {
        k += 1;
        sc.ws();
        let s = sc.uint().ok_or(Unknown)?;
        let mut start = [0usize; 4];
        for (kind, cap) in caps.iter().enumerate() {
            start[kind] = labels.len();
            sc.comma().ok_or(Unknown)?;
            sc.ag_list(&mut labels).ok_or(Unknown)?;
            if labels.len() - start[kind] > *cap {
                return Err(Invalid);
            }
        }
        start[3] = labels.len();
        sc.comma().ok_or(Unknown)?;
        let o = sc.uint().ok_or(Unknown)?;
        sc.line_end(k == m).ok_or(Unknown)?;
        if s == 0 || o == 0 || s > n || o > n || s == o || start[0] == start[3] {
            return Err(Invalid);
        }
        if cfg.ag_enforce_person_subject && seen[s as usize] != 2 {
            return Err(Invalid);
        }
        if labels.len() > cfg.max_relations {
            return Err(Invalid);
        }
        for (kind, rel) in RelKind::ALL.into_iter().enumerate() {
            for (j, &l) in labels.iter().enumerate().take(start[kind + 1]).skip(start[kind]) {
                keys.push(((s << 32) | o, kind as u8, j as u32));
                sink.atomic(s as u32, rel, l, o as u32);
            }
        }
    }
    if sc.i != sc.b.len() {
        return Err(Unknown);
    }
    keys.sort_unstable();
    let mut a = 0;
    while a < keys.len() {
        let b = a + keys[a..].iter().take_while(|x| (x.0, x.1) == (keys[a].0, keys[a].1)).count();
        let bucket = &keys[a..b];
        for (i, x) in bucket.iter().enumerate() {
            if bucket[..i].iter().any(|y| labels[y.2 as usize].eq_ignore_ascii_case(labels[x.2 as usize])) {
                return Err(Invalid);
            }
        }
        a = b;
    }
    Ok((n, m))
}
