//! The PSG/PVSG evaluation parser: what the strict (no-judge) evaluation script reads from a ground-truth
//! `content` and a model `predict`, and its notion of a "valid" prediction (≥ 1 object parsed).
//!
//! It is far more forgiving than the reward parsers ([`crate::strict`], [`crate::lenient`]) and reads text
//! differently from them:
//! - a `</think>` loop drops reasoning, unless the text before the marker already holds a TOON header line;
//! - among several `<answer …>` blocks (tags case-insensitive, spaces allowed before `>`) the **last** non-empty
//!   one mentioning `obj[n]` wins;
//! - rows are read with Python's `csv` module (quoted fields), ids must be plain digit strings, coordinates are
//!   Python **floats** (`62e0`, `nan`, `inf` are accepted) and boxes are reordered so that x1 ≤ x2 and y1 ≤ y2;
//! - names and predicates are normalised with [`label::eval_normalize`]; counts, id ranges, duplicate ids,
//!   self-loops and unknown references are not checked.
//!
//! Digits and case folding are ASCII only, as everywhere in this crate (see [`crate::pytext`]). Ids are
//! non-negative and saturate at `u64::MAX`.

mod fast_clean;
mod flat;
mod pyconv;
mod standard;
#[cfg(test)]
mod tests;

pub use flat::{FlatGraph, FlatObject, FlatRelation};
pub use pyconv::{csv_record, py_float};

use fast_clean::fast_clean;

use crate::{label, pytext};
use std::borrow::Cow;

const THINK_END: &str = "</think>";

/// An object row: the id as written, the normalised name and the reordered box `[x1, y1, x2, y2]`.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalObject {
    pub id: u64,
    pub name: String,
    pub bbox: [f64; 4],
}

/// A relation row: subject id, normalised predicate, object id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalRelation {
    pub subj: u64,
    pub pred: String,
    pub obj: u64,
}

/// What the evaluation parser recovers; `objects` is never empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EvalGraph {
    pub objects: Vec<EvalObject>,
    pub relations: Vec<EvalRelation>,
}

/// Whether the evaluation counts a row as parsed (`toon_valid`): both texts non-empty and at least one object
/// found in the prediction. The ground truth's own parse plays no role.
pub fn sample_is_valid(gt: &str, pred: &str) -> bool {
    !gt.is_empty() && !pred.is_empty() && parse(pred).is_some()
}

/// Parses `text`; `None` where the reference ends with an empty scene (no object row found).
pub fn parse(text: &str) -> Option<EvalGraph> {
    let mut g = EvalGraph::default();
    parse_with(text, &mut g, &mut Vec::new(), true).then_some(g)
}

/// [`parse`] without the [`fast_clean()`] shortcut: the differential oracle of the tests.
#[cfg(test)]
fn parse_general(text: &str) -> Option<EvalGraph> {
    let mut g = EvalGraph::default();
    parse_with(text, &mut g, &mut Vec::new(), false).then_some(g)
}

/// [`parse`] into reusable buffers: `out` is cleared and refilled; returns whether an object was found (`false`
/// leaves `out` empty). The same parse, without one allocation per object and relation.
pub fn parse_into(text: &str, out: &mut FlatGraph) -> bool {
    out.clear();
    let mut lines = std::mem::take(&mut out.lines);
    let found = parse_with(text, out, &mut lines, true);
    out.lines = lines;
    if !found {
        out.clear();
    }
    found
}

/// Where the row parser puts what it reads (an [`EvalGraph`] or a [`FlatGraph`]); names and predicates arrive as
/// written and are normalised by the sink.
trait Sink {
    fn object(&mut self, id: u64, name: &str, bbox: [f64; 4]);
    fn relation(&mut self, subj: u64, pred: &str, obj: u64);
    fn has_objects(&self) -> bool;
    /// Forgets every row (after a shortcut gave up half way).
    fn reset(&mut self);
}

impl Sink for EvalGraph {
    fn object(&mut self, id: u64, name: &str, bbox: [f64; 4]) {
        self.objects.push(EvalObject { id, name: label::eval_normalize(name), bbox });
    }
    fn relation(&mut self, subj: u64, pred: &str, obj: u64) {
        self.relations.push(EvalRelation { subj, pred: label::eval_normalize(pred), obj });
    }
    fn has_objects(&self) -> bool {
        !self.objects.is_empty()
    }
    fn reset(&mut self) {
        self.objects.clear();
        self.relations.clear();
    }
}

/// The parse behind [`parse`] and [`parse_into`]; `lines` is scratch (byte ranges of the kept lines); `fast`
/// allows the [`fast_clean()`] shortcut.
fn parse_with(text: &str, out: &mut impl Sink, lines: &mut Vec<(usize, usize)>, fast: bool) -> bool {
    lines.clear();
    let cleaned: Cow<'_, str> = match fast_clean(text).filter(|_| fast) {
        Some(inner) => {
            if let Some(found) = standard::parse(inner, out) {
                return found;
            }
            out.reset();
            // Only `\n` breaks lines in this text (printable ASCII otherwise).
            let mut start = 0;
            for l in inner.split('\n') {
                keep_line(lines, start, l);
                start += l.len() + 1;
            }
            Cow::Borrowed(inner)
        }
        None => {
            let norm = normalize_text(text);
            if norm.is_empty() {
                return false;
            }
            let cleaned = replace_answer_tags(&norm.replace("```", " "));
            for (start, l) in pytext::splitlines(&cleaned) {
                keep_line(lines, start, l);
            }
            Cow::Owned(cleaned)
        }
    };
    let line = |i: usize| &cleaned[lines[i].0..lines[i].1];
    let n = lines.len();

    let mut obj_start = None;
    let mut rel_start = None;
    for i in 0..n {
        if obj_start.is_none() && has_block_header(line(i), b"obj") {
            obj_start = Some(i);
        }
        if rel_start.is_none() && has_block_header(line(i), b"rel") {
            rel_start = Some(i);
        }
        if obj_start.is_some() && rel_start.is_some() {
            break;
        }
    }
    let Some(obj_start) =
        obj_start.or_else(|| (0..n).find(|&i| commas(line(i)) >= 5 && starts_with_int_comma(line(i))))
    else {
        return false;
    };
    let rel_start = rel_start.or_else(|| (obj_start + 1..n).find(|&i| looks_like_relation_row(line(i))));

    // Object lines: the header's tail, then every line up to the relation block.
    let obj_end = rel_start.map_or(n, |r| r.max(obj_start + 1));
    let obj_lines = header_tail(line(obj_start)).into_iter().chain((obj_start + 1..obj_end).map(line));
    for ln in obj_lines {
        if pytext::starts_with_ignore_case(ln.as_bytes(), b"rel[") {
            break;
        }
        object_row(ln, out);
    }
    if !out.has_objects() {
        return false;
    }
    if let Some(r) = rel_start {
        for ln in header_tail(line(r)).into_iter().chain((r + 1..n).map(line)) {
            relation_row(ln, out);
        }
    }
    true
}

/// Keeps line `l` (at byte `start`) right-stripped unless it is blank.
#[inline]
fn keep_line(lines: &mut Vec<(usize, usize)>, start: usize, l: &str) {
    if !pytext::strip(l).is_empty() {
        lines.push((start, start + pytext::rstrip(l).len()));
    }
}

/// Thinking removal, answer unwrapping and a final strip: the text the row parser sees.
pub fn normalize_text(text: &str) -> String {
    let t = strip_thinking(text);
    pytext::strip(&unwrap_answer(&t)).to_string()
}

/// The `</think>` loop: while the marker occurs, keep everything if the text before it already contains a TOON
/// header line (`obj[n]{id,name` or `rel[n]{subj,pred,obj}` at a line start, case-sensitive), otherwise drop up
/// to and including the marker. A marker with nothing after it leaves the text before it.
pub fn strip_thinking(text: &str) -> Cow<'_, str> {
    let mut s = pytext::strip(text);
    while let Some(idx) = s.find(THINK_END) {
        let prefix = &s[..idx];
        let suffix = pytext::lstrip(&s[idx + THINK_END.len()..]);
        if has_toon_header_line(prefix) {
            if suffix.is_empty() {
                return Cow::Borrowed(pytext::strip(prefix));
            }
            return Cow::Owned(pytext::strip(&format!("{prefix}\n{suffix}")).to_string());
        }
        if suffix.is_empty() {
            return Cow::Borrowed(pytext::strip(prefix));
        }
        s = suffix;
    }
    Cow::Borrowed(s)
}

/// Answer unwrapping: the stripped inner text of the last `<answer>…</answer>` block that is non-empty and
/// mentions `obj[n]`, else of the last block if non-empty; with no usable block, the text with every answer tag
/// replaced by a space.
pub fn unwrap_answer(text: &str) -> Cow<'_, str> {
    if text.is_empty() {
        return Cow::Borrowed(text);
    }
    let blocks = answer_blocks(text);
    for &(a, b) in blocks.iter().rev() {
        let inner = pytext::strip(&text[a..b]);
        if !inner.is_empty() && mentions_obj_count(inner) {
            return Cow::Borrowed(inner);
        }
    }
    if let Some(&(a, b)) = blocks.last() {
        let inner = pytext::strip(&text[a..b]);
        if !inner.is_empty() {
            return Cow::Borrowed(inner);
        }
    }
    Cow::Owned(replace_answer_tags(text))
}

fn object_row(ln: &str, out: &mut impl Sink) {
    if has_block_header(ln, b"obj") && !starts_with_int_comma(ln) {
        return;
    }
    if commas(ln) < 5 {
        return;
    }
    with_fields::<6, _>(ln, |f| {
        let id = digit_string_value(pytext::strip(f[0]))?;
        let [x1, y1, x2, y2] = [py_float(f[2])?, py_float(f[3])?, py_float(f[4])?, py_float(f[5])?];
        push_object(out, id, f[1], [x1, y1, x2, y2]);
        Some(())
    });
}

/// Hands an object row to the sink with its box reordered: `sorted((a, b))` on two floats swaps only when
/// b < a (so a NaN never moves).
fn push_object(out: &mut impl Sink, id: u64, name: &str, [x1, y1, x2, y2]: [f64; 4]) {
    let (x1, x2) = if x2 < x1 { (x2, x1) } else { (x1, x2) };
    let (y1, y2) = if y2 < y1 { (y2, y1) } else { (y1, y2) };
    out.object(id, name, [x1, y1, x2, y2]);
}

/// The first `N` CSV fields of a row — borrowed on the fast path, else from the Python-csv parse — handed to `f`;
/// `None` when the row has fewer than `N` fields.
fn with_fields<const N: usize, R>(ln: &str, f: impl FnOnce([&str; N]) -> Option<R>) -> Option<R> {
    let mut out: [&str; N] = [""; N];
    match pyconv::csv_fields_fast(ln) {
        Some(mut it) => {
            if !out.iter_mut().all(|slot| it.next().map(|x| *slot = x).is_some()) {
                return None;
            }
            f(out)
        }
        None => {
            let owned = csv_record(ln)?;
            if owned.len() < N {
                return None;
            }
            out.iter_mut().zip(&owned).for_each(|(slot, x)| *slot = x);
            f(out)
        }
    }
}

fn relation_row(ln: &str, out: &mut impl Sink) {
    if commas(ln) < 2 {
        return;
    }
    with_fields::<3, _>(ln, |f| {
        let subj = digit_string_value(pytext::strip(f[0]))?;
        let obj = digit_string_value(pytext::strip(f[2]))?;
        out.relation(subj, f[1], obj);
        Some(())
    });
}

/// `s.isdigit()` followed by `int(s)`: a non-empty run of digits, saturating.
fn digit_string_value(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    (!b.is_empty() && b.iter().all(u8::is_ascii_digit)).then(|| pytext::digits_saturating(b))
}

fn commas(s: &str) -> usize {
    s.bytes().filter(|&c| c == b',').count()
}

/// The rel-block fallback: ≥ 2 commas, a leading integer, and comma fields 0 and 2 all digits.
fn looks_like_relation_row(ln: &str) -> bool {
    if commas(ln) < 2 || !starts_with_int_comma(ln) {
        return false;
    }
    let parts: Vec<&str> = ln.split(',').map(pytext::strip).collect();
    parts.len() >= 3 && is_digits(parts[0]) && is_digits(parts[2])
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

/// `re.match(r"\s*\d+\s*,", s)`.
fn starts_with_int_comma(s: &str) -> bool {
    let t = pytext::lstrip(s);
    let d = t.bytes().take_while(u8::is_ascii_digit).count();
    d > 0 && pytext::lstrip(&t[d..]).starts_with(',')
}

/// Whatever follows the first `:` of a header line, stripped, if non-empty.
fn header_tail(ln: &str) -> Option<&str> {
    let k = ln.find(':')?;
    Some(pytext::strip(&ln[k + 1..])).filter(|t| !t.is_empty())
}

/// Skips Python whitespace from byte offset `i` (a char boundary).
fn skip_space(s: &str, i: usize) -> usize {
    s.len() - pytext::lstrip(&s[i..]).len()
}

/// Skips `\s*` then one or more digits; returns the offset after the digits.
fn skip_space_digits(s: &str, i: usize) -> Option<usize> {
    let i = skip_space(s, i);
    let d = s.as_bytes()[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    (d > 0).then_some(i + d)
}

/// Skips `\s*` then expects byte `c`; returns the offset after it.
fn skip_space_byte(s: &str, i: usize, c: u8) -> Option<usize> {
    let i = skip_space(s, i);
    (s.as_bytes().get(i) == Some(&c)).then_some(i + 1)
}

/// Offset just after `key\s*\[\s*\d+\s*\]` when it starts at `p` (key matched ASCII case-insensitively).
fn count_bracket_end(s: &str, p: usize, key: &[u8]) -> Option<usize> {
    if !pytext::starts_with_ignore_case(&s.as_bytes()[p..], key) {
        return None;
    }
    let i = skip_space_byte(s, p + key.len(), b'[')?;
    let i = skip_space_digits(s, i)?;
    skip_space_byte(s, i, b']')
}

/// `re.search(r"obj\s*\[\s*\d+\s*\]", s, re.I)`.
fn mentions_obj_count(s: &str) -> bool {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(p) = pytext::find_ignore_case(b, b"obj", from) {
        if count_bracket_end(s, p, b"obj").is_some() {
            return true;
        }
        from = p + 1;
    }
    false
}

/// `re.search(r"key\s*\[\s*\d+\s*\]\s*\{.*?\}\s*:", line, re.I)` on a single line.
fn has_block_header(line: &str, key: &[u8]) -> bool {
    let b = line.as_bytes();
    // The right-most `}` followed by `\s*:`: a header needs its `{` before it. (Rows have no `}`: one scan.)
    let mut end = b.len();
    let close = loop {
        let Some(j) = b[..end].iter().rposition(|&c| c == b'}') else {
            return false;
        };
        if skip_space_byte(line, j + 1, b':').is_some() {
            break j;
        }
        end = j;
    };
    let mut from = 0;
    while let Some(p) = pytext::find_ignore_case(b, key, from) {
        if p >= close {
            return false;
        }
        if let Some(i) = count_bracket_end(line, p, key) {
            if skip_space_byte(line, i, b'{').is_some_and(|j| j <= close) {
                return true;
            }
        }
        from = p + 1;
    }
    false
}

/// Whether a line of `s` starts (after whitespace, which may span lines) with `obj[n]{id,name` or
/// `rel[n]{subj,pred,obj}`, case-sensitive.
fn has_toon_header_line(s: &str) -> bool {
    let mut start = 0;
    let mut skipped_to = 0;
    loop {
        if start >= skipped_to {
            let i = skip_space(s, start);
            skipped_to = i;
            let rest = &s[i..];
            if header_at(rest, "obj[", "]{id,name") || header_at(rest, "rel[", "]{subj,pred,obj}") {
                return true;
            }
        }
        match s[start..].find('\n') {
            Some(k) => start += k + 1,
            None => return false,
        }
    }
}

fn header_at(rest: &str, head: &str, tail: &str) -> bool {
    let Some(r) = rest.strip_prefix(head) else {
        return false;
    };
    let d = r.bytes().take_while(u8::is_ascii_digit).count();
    d > 0 && r[d..].starts_with(tail)
}

/// Offset after an answer tag starting at `i`: `<answer\s*>` or `</answer\s*>` (ASCII case-insensitive);
/// `closing` = `None` accepts both.
fn answer_tag_end(s: &str, i: usize, closing: Option<bool>) -> Option<usize> {
    let b = s.as_bytes();
    if b.get(i) != Some(&b'<') {
        return None;
    }
    let mut j = i + 1;
    let slash = b.get(j) == Some(&b'/');
    if slash {
        j += 1;
    }
    if closing.is_some_and(|c| c != slash) || !pytext::starts_with_ignore_case(&b[j..], b"answer") {
        return None;
    }
    skip_space_byte(s, j + "answer".len(), b'>')
}

/// The next answer tag of the given kind at or after `from`: `(start, end)`.
fn find_answer_tag(s: &str, from: usize, closing: bool) -> Option<(usize, usize)> {
    let mut i = from;
    while let Some(k) = s.get(i..).and_then(|t| t.find('<')) {
        let p = i + k;
        if let Some(e) = answer_tag_end(s, p, Some(closing)) {
            return Some((p, e));
        }
        i = p + 1;
    }
    None
}

/// Inner byte ranges of the non-overlapping `<answer\s*>…</answer\s*>` blocks, left to right (lazy inner).
fn answer_blocks(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some((_, open_end)) = find_answer_tag(s, pos, false) {
        let Some((close_start, close_end)) = find_answer_tag(s, open_end, true) else {
            break;
        };
        out.push((open_end, close_start));
        pos = close_end;
    }
    out
}

/// `re.sub(r"<\/?answer\s*>", " ", s, flags=re.I)`.
fn replace_answer_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while let Some(k) = s.get(i..).and_then(|t| t.find('<')) {
        let p = i + k;
        match answer_tag_end(s, p, None) {
            Some(e) => {
                out.push_str(&s[copied..p]);
                out.push(' ');
                copied = e;
                i = e;
            }
            None => i = p + 1,
        }
    }
    out.push_str(&s[copied..]);
    out
}
