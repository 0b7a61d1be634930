//! The dataset-build cleaners: repair a ground-truth answer text, count what was removed, renumber.
//!
//! Both work on text, like the reference's `clean_rel_solution_text` and `clean_ag_solution_text`, so that a
//! sample's raw answer text (the `answer_toon` the readers produce) becomes the training target by exactly the
//! reference's rules; [`crate::sample`] feeds them the raw text of each typed graph.
//!
//! **Triplet (PSG/PVSG)** — [`clean_triplet_text`]:
//! - the body is the first `<answer>…</answer>` (ASCII case-insensitive), else the whole text; lines are
//!   Python-stripped and blank ones dropped;
//! - the object header is the first line starting with `obj[` (any case); the relation header is the first line
//!   that is exactly `rel[<digits>]{subj,pred,obj}:` (any case); the search stops at the relation header, and
//!   without both the text comes back stripped (plus `\n`) with 0 relations;
//! - an object row is kept if it has exactly 6 comma parts, an integer id not seen before, a box of integers with
//!   `0 ≤ x1 < x2 ≤ 640` and `0 ≤ y1 < y2 ≤ 480`, and a non-empty name;
//! - a relation row is kept if it has 3 parts, integer ids that both survived, a non-empty predicate, different
//!   endpoints, and is not a duplicate `(subj, pred, obj)`; rows stop at a line starting with `</answer>`;
//! - objects and relations are renumbered 1..N and written unindented with tags and a final newline;
//! - with `canonicalize`, names and predicates become hyphen-canonical (the PSG GRPO solution).
//!
//! **Action Genome** — [`clean_ag_text`]: anchored headers (case-sensitive), `id,name,x1,y1,x2,y2` rows
//! (malformed → dropped), bracket-aware pair rows (malformed → dropped), boxes as above, pairs whose endpoints were
//! dropped are removed, objects renumbered (a repeated old id maps to its **last** object, as in the reference);
//! no dedup and no self-loop check. Written 6/8-indented with tags.
//!
//! Deliberate difference: integers follow [`pytext::py_int`] (ASCII digits only) where Python's `int()` also takes
//! other Unicode digits.

use sgvlm_graph::{label, pytext};
use std::collections::{HashMap, HashSet};

/// Canvas bounds the cleaners enforce.
const W: i64 = crate::scale::TARGET_W as i64;
const H: i64 = crate::scale::TARGET_H as i64;

/// What a triplet clean removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TripletCleanStats {
    pub objects_kept: usize,
    /// Rows that are not `id,name,x1,y1,x2,y2` with an integer id and a valid in-canvas box.
    pub objects_bad_row_or_box: usize,
    pub objects_duplicate_id: usize,
    pub objects_empty_name: usize,
    pub relations_kept: usize,
    pub relations_malformed: usize,
    pub relations_dangling: usize,
    pub relations_self: usize,
    pub relations_empty_pred: usize,
    pub relations_duplicate: usize,
}

/// The result of a clean: the new answer text and its statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleaned<S> {
    pub text: String,
    pub stats: S,
}

fn answer_body(text: &str) -> &str {
    let b = text.as_bytes();
    if let Some(open) = pytext::find_ignore_case(b, b"<answer>", 0) {
        let from = open + "<answer>".len();
        if let Some(close) = pytext::find_ignore_case(b, b"</answer>", from) {
            return &text[from..close];
        }
    }
    text
}

/// `^\s*rel\[(\d+)\]\{subj,pred,obj\}:\s*$` (case-insensitive) on an already stripped line.
fn is_rel_header(line: &str) -> bool {
    let b = line.as_bytes();
    if !pytext::starts_with_ignore_case(b, b"rel[") {
        return false;
    }
    let rest = &b[4..];
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    digits > 0 && rest[digits..].eq_ignore_ascii_case(b"]{subj,pred,obj}:")
}

fn valid_box(parts: &[&str]) -> bool {
    let v: Option<Vec<i64>> = parts.iter().map(|p| pytext::py_int(p)).collect();
    matches!(v.as_deref(), Some(&[x1, y1, x2, y2]) if 0 <= x1 && x1 < x2 && x2 <= W && 0 <= y1 && y1 < y2 && y2 <= H)
}

/// The reference's `clean_rel_solution_text`: see the module doc. The number of kept relations is
/// `stats.relations_kept`.
pub fn clean_triplet_text(solution: &str, canonicalize: bool) -> Cleaned<TripletCleanStats> {
    let mut st = TripletCleanStats::default();
    let lines: Vec<&str> =
        pytext::splitlines(answer_body(solution)).map(|(_, l)| pytext::strip(l)).filter(|l| !l.is_empty()).collect();
    let mut obj_idx = None;
    let mut rel_idx = None;
    for (i, l) in lines.iter().enumerate() {
        if obj_idx.is_none() && pytext::starts_with_ignore_case(l.as_bytes(), b"obj[") {
            obj_idx = Some(i);
        }
        if is_rel_header(l) {
            rel_idx = Some(i);
            break;
        }
    }
    let (Some(oi), Some(ri)) = (obj_idx, rel_idx) else {
        return Cleaned { text: format!("{}\n", pytext::strip(solution)), stats: st };
    };
    let fix = |s: &str| if canonicalize { label::hyphenate(s) } else { s.to_owned() };

    let mut old_to_new: HashMap<i64, usize> = HashMap::new();
    let mut objects: Vec<(String, [&str; 4])> = Vec::new();
    for line in &lines[oi + 1..ri] {
        let parts: Vec<&str> = line.split(',').map(pytext::strip).collect();
        if parts.len() != 6 || !valid_box(&parts[2..]) {
            st.objects_bad_row_or_box += 1;
            continue;
        }
        let Some(old) = pytext::py_int(parts[0]) else {
            st.objects_bad_row_or_box += 1;
            continue;
        };
        let name = fix(parts[1]);
        if name.is_empty() {
            st.objects_empty_name += 1;
            continue;
        }
        if old_to_new.contains_key(&old) {
            st.objects_duplicate_id += 1;
            continue;
        }
        old_to_new.insert(old, objects.len() + 1);
        objects.push((name, [parts[2], parts[3], parts[4], parts[5]]));
    }

    let mut seen: HashSet<(usize, String, usize)> = HashSet::new();
    let mut relations: Vec<(usize, String, usize)> = Vec::new();
    for line in &lines[ri + 1..] {
        if line.starts_with("</answer>") {
            break;
        }
        let parts: Vec<&str> = line.split(',').map(pytext::strip).collect();
        let ids = (parts.len() == 3).then(|| (pytext::py_int(parts[0]), pytext::py_int(parts[2])));
        let Some((Some(os), Some(oo))) = ids else {
            st.relations_malformed += 1;
            continue;
        };
        let (Some(&s), Some(&o)) = (old_to_new.get(&os), old_to_new.get(&oo)) else {
            st.relations_dangling += 1;
            continue;
        };
        let pred = fix(parts[1]);
        if pred.is_empty() {
            st.relations_empty_pred += 1;
            continue;
        }
        if s == o {
            st.relations_self += 1;
            continue;
        }
        let key = (s, pred, o);
        if !seen.insert(key.clone()) {
            st.relations_duplicate += 1;
            continue;
        }
        relations.push(key);
    }

    st.objects_kept = objects.len();
    st.relations_kept = relations.len();
    let mut out = format!("<answer>\nobj[{}]{{id,name,x1,y1,x2,y2}}:\n", objects.len());
    for (i, (name, b)) in objects.iter().enumerate() {
        out.push_str(&format!("{},{},{},{},{},{}\n", i + 1, name, b[0], b[1], b[2], b[3]));
    }
    out.push_str(&format!("rel[{}]{{subj,pred,obj}}:\n", relations.len()));
    for (s, p, o) in &relations {
        out.push_str(&format!("{s},{p},{o}\n"));
    }
    out.push_str("</answer>\n");
    Cleaned { text: out, stats: st }
}

/// What an AG clean removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgCleanStats {
    pub objects_total: usize,
    pub objects_removed_bad_bbox: usize,
    pub objects_removed_malformed: usize,
    pub rels_total: usize,
    pub rels_removed_missing_obj: usize,
    pub rels_removed_malformed: usize,
    /// Pair rows kept (the sample's relation count; 0 ⇒ the sample is dropped).
    pub rels_kept: usize,
}

/// An AG text without both headers in order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot find the AG obj/rel_pairs block")]
pub struct AgParseError;

struct AgObj<'a> {
    id: u64,
    name: &'a str,
    bbox: [i64; 4],
}

struct AgRow {
    subj: i64,
    lists: [Vec<String>; 3],
    obj: i64,
}

/// `^\s*<key>\[(\d+)\]<fields>\s*$` (case-sensitive).
fn is_header(line: &str, key: &str, fields: &str) -> bool {
    let Some(rest) = pytext::strip(line).strip_prefix(key).and_then(|r| r.strip_prefix('[')) else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && rest[digits..].strip_prefix(']') == Some(fields)
}

fn is_ascii_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `-?\d+` between optional whitespace.
fn signed_int(s: &str) -> Option<i64> {
    let t = pytext::strip(s);
    let d = t.strip_prefix('-').unwrap_or(t);
    if is_ascii_digits(d) {
        t.parse().ok()
    } else {
        None
    }
}

/// `^\s*(\d+)\s*,\s*([^,]+?)\s*,\s*(-?\d+)\s*,…\s*$`.
fn ag_object_row(line: &str) -> Option<AgObj<'_>> {
    let parts: Vec<&str> = line.split(',').collect();
    if parts.len() != 6 || parts[1].is_empty() {
        return None;
    }
    let id_s = pytext::strip(parts[0]);
    let id = if is_ascii_digits(id_s) { id_s.parse().ok()? } else { return None };
    let mut bbox = [0i64; 4];
    for (k, p) in parts[2..].iter().enumerate() {
        bbox[k] = signed_int(p)?;
    }
    Some(AgObj { id, name: pytext::strip(parts[1]), bbox })
}

fn split_pair_row(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for ch in pytext::strip(text).chars() {
        match ch {
            '[' => {
                depth += 1;
                cur.push(ch);
            }
            ']' => {
                depth = depth.saturating_sub(1);
                cur.push(ch);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    parts.push(cur);
    parts.iter().map(|p| pytext::strip(p).to_owned()).collect()
}

fn label_list(token: &str) -> Option<Vec<String>> {
    let inner = pytext::strip(token).strip_prefix('[')?.strip_suffix(']')?;
    Some(inner.split(',').map(pytext::strip).filter(|s| !s.is_empty()).map(str::to_owned).collect())
}

fn ag_pair_row(line: &str) -> Option<AgRow> {
    let p = split_pair_row(line);
    if p.len() != 5 {
        return None;
    }
    Some(AgRow {
        subj: pytext::py_int(&p[0])?,
        lists: [label_list(&p[1])?, label_list(&p[2])?, label_list(&p[3])?],
        obj: pytext::py_int(&p[4])?,
    })
}

fn is_answer_close(line: &str) -> bool {
    pytext::strip(line) == "</answer>"
}

/// The reference's `clean_ag_solution_text` (see the module doc).
pub fn clean_ag_text(text: &str) -> Result<Cleaned<AgCleanStats>, AgParseError> {
    let lines: Vec<&str> = pytext::splitlines(text).map(|(_, l)| l).collect();
    let obj_idx = lines.iter().position(|l| is_header(l, "obj", "{id,name,x1,y1,x2,y2}:"));
    let rel_idx = lines.iter().position(|l| is_header(l, "rel_pairs", "{subj,attention,spatial,contacting,obj}:"));
    let (Some(oi), Some(ri)) = (obj_idx, rel_idx) else { return Err(AgParseError) };
    if ri < oi {
        return Err(AgParseError);
    }
    let mut st = AgCleanStats::default();
    let mut objs: Vec<AgObj<'_>> = Vec::new();
    for line in &lines[oi + 1..ri] {
        if pytext::strip(line).is_empty() {
            continue;
        }
        match ag_object_row(line) {
            None => st.objects_removed_malformed += 1,
            Some(o) => {
                st.objects_total += 1;
                let [x1, y1, x2, y2] = o.bbox;
                if 0 <= x1 && x1 < x2 && x2 <= W && 0 <= y1 && y1 < y2 && y2 <= H {
                    objs.push(o);
                } else {
                    st.objects_removed_bad_bbox += 1;
                }
            }
        }
    }
    let mut old_to_new: HashMap<i64, usize> = HashMap::new();
    for (i, o) in objs.iter().enumerate() {
        if let Ok(id) = i64::try_from(o.id) {
            old_to_new.insert(id, i + 1);
        }
    }
    let mut out = format!("<answer>\n      obj[{}]{{id,name,x1,y1,x2,y2}}:\n", objs.len());
    for (i, o) in objs.iter().enumerate() {
        let [x1, y1, x2, y2] = o.bbox;
        out.push_str(&format!("        {},{},{x1},{y1},{x2},{y2}\n", i + 1, o.name));
    }
    let mut rows = String::new();
    for line in &lines[ri + 1..] {
        if is_answer_close(line) {
            break;
        }
        if pytext::strip(line).is_empty() {
            continue;
        }
        let Some(r) = ag_pair_row(line) else {
            st.rels_removed_malformed += 1;
            continue;
        };
        st.rels_total += 1;
        let (Some(s), Some(o)) = (old_to_new.get(&r.subj), old_to_new.get(&r.obj)) else {
            st.rels_removed_missing_obj += 1;
            continue;
        };
        st.rels_kept += 1;
        let [a, sp, c] = &r.lists;
        rows.push_str(&format!("        {s},[{}],[{}],[{}],{o}\n", a.join(","), sp.join(","), c.join(",")));
    }
    out.push_str(&format!("      rel_pairs[{}]{{subj,attention,spatial,contacting,obj}}:\n", st.rels_kept));
    out.push_str(&rows);
    out.push_str("</answer>\n");
    Ok(Cleaned { text: out, stats: st })
}

#[cfg(test)]
mod tests;
