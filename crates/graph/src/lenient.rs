//! The reward's lenient ("meta") parser: what the reward math reads from the ground truth and from a completion
//! once the strict gate has passed, and what the diagnostics count on any completion.
//!
//! It salvages what it can: object rows are any line with ≥ 6 comma fields whose id and coordinates are Python
//! integers; relation rows must match the strict row grammar, and rejected relation lines are counted as
//! `invalid_pred` (bad syntax or label) or `invalid_ref` (unknown id, self-loop, AG subject not a person).
//! Ids are `i64` because nothing here guarantees `1..N`; a later object row with the same id overrides the
//! earlier one for lookups, while both stay in the object list (as in the reference).

use crate::answer;
use crate::label;
use crate::pytext;
use crate::strict::{AgDecline, StrictConfig};
use crate::types::{RelKind, Schema};
use compact_str::CompactString;

/// An object row as the lenient parser reads it.
///
/// Names and predicates are [`CompactString`]s: labels are short, so they live inline (up to 24 bytes) and
/// parsing a completion no longer costs a malloc/free pair per row (the rewards parse every completion anew).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LObject {
    pub id: i64,
    /// The name field, stripped but not otherwise normalised.
    pub name: CompactString,
    pub bbox: [i64; 4],
}

/// A relation (AG: an atomic relation `kind__label`), predicate canonical and lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LRelation {
    pub subj: i64,
    pub pred: CompactString,
    pub obj: i64,
}

/// Counters the diagnostics report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LenientMeta {
    pub declared_objects: Option<u64>,
    pub declared_relations: Option<u64>,
    /// Non-empty lines after the relation header.
    pub relation_lines: usize,
    /// Lines rejected for an unknown id, a self-loop or (AG) a non-person subject.
    pub invalid_ref: usize,
    /// Lines rejected for their syntax or labels.
    pub invalid_pred: usize,
    /// AG only: pair rows accepted.
    pub pairs: usize,
}

impl LenientMeta {
    /// `frac_invalid_rel`: rejected share of the non-empty relation lines (0 when there are none).
    pub fn invalid_fraction(&self) -> f64 {
        if self.relation_lines == 0 {
            0.0
        } else {
            (self.invalid_ref + self.invalid_pred) as f64 / self.relation_lines as f64
        }
    }
}

/// What the lenient parser recovers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LenientGraph {
    pub objects: Vec<LObject>,
    pub relations: Vec<LRelation>,
    pub meta: LenientMeta,
}

impl LenientGraph {
    /// The object a relation endpoint refers to: the last row with that id.
    pub fn object(&self, id: i64) -> Option<&LObject> {
        self.objects.iter().rev().find(|o| o.id == id)
    }
}

/// Finds the first `key[digits]{…}:` (ASCII case-insensitive, the braces may span lines): returns
/// `(declared count, byte offset just after the colon)`.
fn find_header(text: &str, key: &str) -> Option<(u64, usize)> {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(p) = pytext::find_ignore_case(b, key.as_bytes(), from) {
        from = p + 1;
        let mut i = p + key.len();
        if b.get(i) != Some(&b'[') {
            continue;
        }
        i += 1;
        let d = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if d == 0 {
            continue;
        }
        let n = pytext::digits_saturating(&b[i..i + d]);
        i += d;
        if b.get(i) != Some(&b']') || b.get(i + 1) != Some(&b'{') {
            continue;
        }
        // The lazy `\{.*?\}:` takes the first `}:`; if there is none, no later occurrence has one either.
        // A byte loop, not `str::find`: the two-way searcher's setup costs more than the search over a header.
        return b[i + 2..].windows(2).position(|w| w == b"}:").map(|q| (n, i + 2 + q + 2));
    }
    None
}

/// Offset of the first `\n\s*key[digits]` at or after `from` (ASCII case-insensitive key).
fn find_block_end(text: &str, key: &str, from: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = from;
    // A byte loop, not `find('\n')`: lines are short and a `memchr` call per line costs more than it finds.
    while let Some(nl) = b[i..].iter().position(|&c| c == b'\n').map(|k| k + i) {
        let rest = pytext::lstrip(&text[nl + 1..]);
        let rest_start = text.len() - rest.len();
        let rb = rest.as_bytes();
        if pytext::starts_with_ignore_case(rb, key.as_bytes())
            && rb.get(key.len()) == Some(&b'[')
            && rb.get(key.len() + 1).is_some_and(u8::is_ascii_digit)
        {
            let d = rb[key.len() + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if rb.get(key.len() + 1 + d) == Some(&b']') {
                return Some(nl);
            }
        }
        // Every newline inside the whitespace run leads to the same `rest`: skip past it (linear time).
        i = rest_start.max(nl + 1);
        if i >= b.len() {
            break;
        }
    }
    None
}

fn rel_key(schema: Schema) -> &'static str {
    match schema {
        Schema::Triplet => "rel",
        Schema::Ag => "rel_pairs",
    }
}

fn parse_objects(text: &str, schema: Schema, out: &mut LenientGraph) {
    let Some((n, start)) = find_header(text, "obj") else {
        return;
    };
    out.meta.declared_objects = Some(n);
    let end = find_block_end(text, rel_key(schema), start).unwrap_or(text.len());
    for (_, raw) in pytext::splitlines(pytext::strip(&text[start..end])) {
        let line = pytext::strip(raw);
        if line.is_empty() {
            continue;
        }
        // The first six comma fields (any further ones are ignored), without collecting them.
        let mut parts = pytext::split_commas(line);
        let mut f: [&str; 6] = [""; 6];
        if !f.iter_mut().all(|slot| parts.next().map(|p| *slot = p).is_some()) {
            continue;
        }
        let (Some(id), Some(x1), Some(y1), Some(x2), Some(y2)) = (
            pytext::py_int(f[0]),
            pytext::py_int(f[2]),
            pytext::py_int(f[3]),
            pytext::py_int(f[4]),
            pytext::py_int(f[5]),
        ) else {
            continue;
        };
        out.objects.push(LObject { id, name: pytext::strip(f[1]).into(), bbox: [x1, y1, x2, y2] });
    }
}

/// Converts a `\d+` match to an id usable for lookups (`None` beyond the `i64` range, which no object has).
fn id_of(v: u64) -> Option<i64> {
    i64::try_from(v).ok()
}

/// The lenient AG label-list parse: `None` when the strict list rules reject it. Labels are the stripped slices
/// (canonical, hence ASCII); duplicates are compared case-insensitively, as the reference compares the lowercased
/// labels.
fn lenient_list<'a>(raw: &'a str, max: usize, out: &mut Vec<&'a str>) -> Option<()> {
    out.clear();
    for part in pytext::split_commas(raw) {
        let t = pytext::strip(part);
        if t.is_empty() {
            continue;
        }
        if !label::is_canonical(Schema::Ag, t) {
            return None;
        }
        out.push(t);
    }
    if out.len() > max || (1..out.len()).any(|i| out[..i].iter().any(|p| p.eq_ignore_ascii_case(out[i]))) {
        return None;
    }
    Some(())
}

/// `"<kind>__<label>"` with the label lowercased (what [`crate::types::atomic_predicate`] gives for the lowercased
/// label), built in one allocation. The label is copied whole and lowercased in place (ASCII letters only, as
/// `char::to_ascii_lowercase` per character would): a per-character push cost more than the rest of the row.
fn atomic_lower(kind: RelKind, label: &str) -> CompactString {
    let k = kind.as_str();
    let mut s = CompactString::with_capacity(k.len() + 2 + label.len());
    s.push_str(k);
    s.push_str("__");
    s.push_str(label);
    s.as_mut_str()[k.len() + 2..].make_ascii_lowercase();
    s
}

/// The label lowercased (ASCII letters only, as `str::to_ascii_lowercase`).
fn lower(label: &str) -> CompactString {
    let mut s = CompactString::from(label);
    s.as_mut_str().make_ascii_lowercase();
    s
}

/// Parses an answer text (already extracted, see [`parse_completion`]) leniently.
pub fn parse_answer_text(text: &str, schema: Schema, cfg: &StrictConfig) -> LenientGraph {
    let mut g = LenientGraph::default();
    parse_objects(text, schema, &mut g);
    let Some((m, start)) = find_header(text, rel_key(schema)) else {
        return g;
    };
    g.meta.declared_relations = Some(m);
    let caps = [cfg.ag_attention_max, cfg.ag_spatial_max, cfg.ag_contacting_max];
    // Reused label buffers of the three AG lists (slices of `text`).
    let mut labels: [Vec<&str>; 3] = Default::default();
    for (_, raw) in pytext::splitlines(pytext::strip(&text[start..])) {
        let line = pytext::strip(raw);
        if line.is_empty() {
            continue;
        }
        g.meta.relation_lines += 1;
        match schema {
            Schema::Triplet => {
                let Some((s, pred, o)) = triplet_row(line) else {
                    g.meta.invalid_pred += 1;
                    continue;
                };
                let (Some(s), Some(o)) = (id_of(s), id_of(o)) else {
                    g.meta.invalid_ref += 1;
                    continue;
                };
                if g.object(s).is_none() || g.object(o).is_none() || s == o {
                    g.meta.invalid_ref += 1;
                    continue;
                }
                g.relations.push(LRelation { subj: s, pred, obj: o });
            }
            Schema::Ag => {
                let Some((s, lists, o)) = crate::strict::pair_row(line) else {
                    g.meta.invalid_pred += 1;
                    continue;
                };
                let (Some(s), Some(o)) = (id_of(s), id_of(o)) else {
                    g.meta.invalid_ref += 1;
                    continue;
                };
                let (Some(subj), Some(_)) = (g.object(s), g.object(o)) else {
                    g.meta.invalid_ref += 1;
                    continue;
                };
                if s == o {
                    g.meta.invalid_ref += 1;
                    continue;
                }
                let subj_is_person = subj.name.eq_ignore_ascii_case("person");
                let mut ok = true;
                for k in 0..3 {
                    ok = ok && lenient_list(lists[k], caps[k], &mut labels[k]).is_some();
                }
                if !ok {
                    g.meta.invalid_pred += 1;
                    continue;
                }
                if labels.iter().all(Vec::is_empty) {
                    g.meta.invalid_pred += 1;
                    continue;
                }
                if cfg.ag_enforce_person_subject && !subj_is_person {
                    g.meta.invalid_ref += 1;
                    continue;
                }
                g.meta.pairs += 1;
                for (kind, list) in RelKind::ALL.into_iter().zip(&labels) {
                    for l in list {
                        g.relations.push(LRelation { subj: s, pred: atomic_lower(kind, l), obj: o });
                    }
                }
            }
        }
    }
    g
}

/// The strict relation-row grammar `\s*(\d+)\s*,\s*LABEL\s*,\s*(\d+)\s*`, with the predicate lowercased.
fn triplet_row(line: &str) -> Option<(u64, CompactString, u64)> {
    let mut it = pytext::split_commas(line);
    let (fs, fp, fo) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    let digits = |f: &str| {
        let t = pytext::strip(f);
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| pytext::digits_saturating(t.as_bytes()))
    };
    let p = pytext::strip(fp);
    if !label::is_canonical(Schema::Triplet, p) {
        return None;
    }
    Some((digits(fs)?, lower(p), digits(fo)?))
}

/// Extracts the answer text of a raw completion or solution the way the reward does, then parses it.
pub fn parse_completion(raw: &str, schema: Schema, cfg: &StrictConfig) -> LenientGraph {
    parse_answer_text(answer::reward_answer_text(raw), schema, cfg)
}

/// [`parse_completion`] through the gate's one-pass scan when that scan accepts the text and its answer is the
/// first `<answer>` (then [`Gated::graph`] equals `parse_completion(raw)`), else `parse_completion` itself: what
/// the reward reads from a solution. Solutions are usually well-formed answers, for which the scan reads every
/// row once instead of the general parser's line splitting, header search and per-field conversions.
pub fn parse_solution(raw: &str, schema: Schema, cfg: &StrictConfig) -> LenientGraph {
    let fast = match schema {
        Schema::Triplet => parse_gated_triplet(raw, cfg),
        Schema::Ag => parse_gated_ag_fast(raw, cfg),
    };
    match fast {
        Some(g) if g.is_first_answer => g.graph,
        _ => parse_completion(raw, schema, cfg),
    }
}

/// A completion that passed the strict gate, with the lenient parse of its answer built from the gate's parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gated {
    /// The lenient parse of the gated answer.
    pub graph: LenientGraph,
    /// Whether [`parse_completion`] of the raw text reads that same answer, i.e. the gated `<answer>` is the first
    /// `<answer>` of the text (not so when the leading `<think>` block holds one); when true, `graph` equals
    /// `parse_completion(raw)`.
    pub is_first_answer: bool,
}

/// The strict gate and the lenient parse of a triplet completion in one pass, for the common case the gate's
/// fast path decides (ASCII, `\n` line ends, spaces and tabs): `None` when the fast path cannot decide (the text
/// may still be valid: ask [`crate::strict::is_valid`] and [`parse_completion`]).
///
/// Why this is exact: on an answer body the fast path accepts, every line is a header or a row of the strict
/// grammar, so the lenient parser finds the same two headers, reads each object row's first six fields as the
/// gate does (id, stripped name as written, box) and accepts every relation row (ids exist, no self-loop,
/// canonical predicate, lowercased), with no rejected lines. The oracle and property tests compare both.
pub fn parse_gated_triplet(raw: &str, cfg: &StrictConfig) -> Option<Gated> {
    let body = answer::exact_answer_body(answer::prepare_for_strict(raw))?;
    let mut graph = LenientGraph::default();
    crate::strict::fast_triplet_body(body, cfg, &mut graph)?;
    // The gated frame starts `"<answer>\n".len()` bytes before the body.
    let is_first_answer = is_first_answer(raw, body)?;
    graph.meta = LenientMeta {
        declared_objects: Some(graph.objects.len() as u64),
        declared_relations: Some(graph.relations.len() as u64),
        relation_lines: graph.relations.len(),
        ..LenientMeta::default()
    };
    Some(Gated { graph, is_first_answer })
}

/// Builds the lenient graph from the gate's single-pass triplet scan: what the strict graph holds (names as
/// written, predicates lowercased), without building that graph first.
impl<'a> crate::strict::TripletSink<'a> for LenientGraph {
    fn reserve(&mut self, objects: usize, relations: usize) {
        self.objects.reserve(objects);
        self.relations.reserve(relations);
    }

    fn object(&mut self, id: u32, name: &'a str, bbox: [i64; 4]) {
        self.objects.push(LObject { id: id as i64, name: name.into(), bbox });
    }

    fn relation(&mut self, subj: u32, pred: &'a str, obj: u32) {
        self.relations.push(LRelation { subj: subj as i64, pred: lower(pred), obj: obj as i64 });
    }
}

/// Whether the gated answer frame (which starts `"<answer>\n".len()` bytes before `body`) holds the first
/// `<answer>` of the raw text.
fn is_first_answer(raw: &str, body: &str) -> Option<bool> {
    let open = answer::offset_in(raw, body).checked_sub("<answer>\n".len())?;
    Some(raw.find("<answer>") == Some(open))
}

/// [`parse_gated_triplet`] for Action Genome: the strict parse, turned into the lenient graph, for answer bodies of
/// printable ASCII, tabs and `\n` (where Python's `strip`/`splitlines` and the gate's whitespace rules coincide);
/// `None` otherwise or when the gate rejects the text.
///
/// Why this is exact: on such a valid body the lenient parser finds the same headers, reads every object row as
/// the gate does (id, stripped name as written, box) and accepts every pair row with the same lowercased label
/// lists (same row grammar, `strict::pair_row`), expanding them in row order, then attention, spatial, contacting.
/// Bodies of the standard shape take the gate's single-scan AG path, which feeds the same objects and atomic
/// relations straight into the lenient graph ([`ag_scan_gated`]); the rest take the strict parse.
pub fn parse_gated_ag(raw: &str, cfg: &StrictConfig) -> Option<Gated> {
    let body = answer::exact_answer_body(answer::prepare_for_strict(raw))?;
    match ag_scan_gated(raw, body, cfg) {
        Ok(g) => return Some(g),
        Err(AgDecline::Invalid) => return None,
        Err(AgDecline::Unknown) => {}
    }
    if !is_printable_body(body) {
        return None;
    }
    ag_gated(raw, crate::strict::parse_ag(raw, cfg).ok()?)
}

/// [`parse_gated_ag`]'s single-scan path alone (`None` when it cannot decide). Public so tests can compare it with
/// [`parse_gated_ag_general`].
#[doc(hidden)]
pub fn parse_gated_ag_fast(raw: &str, cfg: &StrictConfig) -> Option<Gated> {
    ag_scan_gated(raw, answer::exact_answer_body(answer::prepare_for_strict(raw))?, cfg).ok()
}

/// Whether the single-scan path found the AG completion invalid by itself (tests check that the gate agrees).
#[doc(hidden)]
pub fn ag_scan_rejects(raw: &str, cfg: &StrictConfig) -> bool {
    answer::exact_answer_body(answer::prepare_for_strict(raw))
        .is_some_and(|b| ag_scan_gated(raw, b, cfg) == Err(AgDecline::Invalid))
}

/// [`parse_gated_ag`] without its single-scan path: the strict parse turned into the lenient graph.
#[doc(hidden)]
pub fn parse_gated_ag_general(raw: &str, cfg: &StrictConfig) -> Option<Gated> {
    let body = answer::exact_answer_body(answer::prepare_for_strict(raw))?;
    if !is_printable_body(body) {
        return None;
    }
    ag_gated(raw, crate::strict::parse_ag(raw, cfg).ok()?)
}

/// Printable ASCII, tabs and `\n` only.
fn is_printable_body(body: &str) -> bool {
    body.bytes().all(|b| b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b))
}

/// Builds the lenient graph from the gate's single-scan AG path.
impl<'a> crate::strict::AgSink<'a> for LenientGraph {
    fn object(&mut self, id: u32, name: &'a str, bbox: [i64; 4]) {
        self.objects.push(LObject { id: id as i64, name: name.into(), bbox });
    }

    fn atomic(&mut self, subj: u32, kind: RelKind, label: &'a str, obj: u32) {
        self.relations.push(LRelation { subj: subj as i64, pred: atomic_lower(kind, label), obj: obj as i64 });
    }
}

/// The gated lenient graph of an AG answer body the gate's single scan accepts (otherwise why not). The
/// graph is what [`ag_gated`] builds from the strict parse: objects in row order with their names as written, the
/// atomic relations in row order, then attention, spatial, contacting, lowercased.
fn ag_scan_gated(raw: &str, body: &str, cfg: &StrictConfig) -> Result<Gated, AgDecline> {
    let mut graph = LenientGraph::default();
    let (n, m) = crate::strict::fast_ag_body(body, cfg, &mut graph)?;
    let is_first_answer = is_first_answer(raw, body).ok_or(AgDecline::Unknown)?;
    graph.meta = LenientMeta {
        declared_objects: Some(n),
        declared_relations: Some(m),
        relation_lines: m as usize,
        pairs: m as usize,
        ..LenientMeta::default()
    };
    Ok(Gated { graph, is_first_answer })
}

/// The lenient graph of a valid AG completion with a printable answer body, from its strict parse.
fn ag_gated(raw: &str, g: crate::types::AgGraph) -> Option<Gated> {
    let body = answer::exact_answer_body(answer::prepare_for_strict(raw))?;
    let is_first_answer = is_first_answer(raw, body)?;
    let n_pairs = g.pairs.len();
    let mut relations = Vec::new();
    for p in &g.pairs {
        for kind in RelKind::ALL {
            for l in p.labels(kind) {
                relations.push(LRelation { subj: p.subj as i64, pred: atomic_lower(kind, l), obj: p.obj as i64 });
            }
        }
    }
    let meta = LenientMeta {
        declared_objects: Some(g.objects.len() as u64),
        declared_relations: Some(n_pairs as u64),
        relation_lines: n_pairs,
        pairs: n_pairs,
        ..LenientMeta::default()
    };
    let objects = g
        .objects
        .into_iter()
        .map(|o| LObject { id: o.id as i64, name: o.name.into(), bbox: [o.bbox.x1, o.bbox.y1, o.bbox.x2, o.bbox.y2] })
        .collect();
    Some(Gated { graph: LenientGraph { objects, relations, meta }, is_first_answer })
}

/// [`parse_gated_triplet`] or [`parse_gated_ag`].
pub fn parse_gated(raw: &str, schema: Schema, cfg: &StrictConfig) -> Option<Gated> {
    match schema {
        Schema::Triplet => parse_gated_triplet(raw, cfg),
        Schema::Ag => parse_gated_ag(raw, cfg),
    }
}

/// The strict gate's verdict on a completion, with the lenient parse where the one-pass path built it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Valid, parsed in one pass ([`parse_gated`]).
    Gated(Gated),
    /// Valid, but not decided by the one-pass path: parse it with [`parse_completion`].
    Valid,
    /// Fails the gate.
    Invalid,
}

/// [`parse_gated`] and, where it gives no graph, [`crate::strict::is_valid`], without running any parse twice:
/// a triplet text the fast path did not accept goes straight to the general parser (the fast path's acceptance is
/// the general path's, so `is_valid` would only repeat the fast scan), and an AG text whose strict parse failed
/// inside [`parse_gated_ag`] is invalid without parsing it again.
pub fn gate(raw: &str, schema: Schema, cfg: &StrictConfig) -> Verdict {
    let valid = |ok: bool| if ok { Verdict::Valid } else { Verdict::Invalid };
    match schema {
        Schema::Triplet => match parse_gated_triplet(raw, cfg) {
            Some(g) => Verdict::Gated(g),
            None => valid(crate::strict::parse_triplet_general(raw, cfg).is_ok()),
        },
        Schema::Ag => {
            let body = answer::exact_answer_body(answer::prepare_for_strict(raw));
            match body.map(|b| ag_scan_gated(raw, b, cfg)) {
                Some(Ok(g)) => return Verdict::Gated(g),
                Some(Err(AgDecline::Invalid)) => return Verdict::Invalid,
                _ => {}
            }
            if !body.is_some_and(is_printable_body) {
                return valid(crate::strict::parse_ag(raw, cfg).is_ok());
            }
            match crate::strict::parse_ag(raw, cfg) {
                Ok(g) => match ag_gated(raw, g) {
                    Some(g) => Verdict::Gated(g),
                    None => Verdict::Valid,
                },
                Err(_) => Verdict::Invalid,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str, s: Schema) -> LenientGraph {
        parse_completion(t, s, &StrictConfig::default())
    }

    #[test]
    fn salvages_rows_and_counts_bad_relations() {
        let t = "<answer>\nobj[9]{id,name,x1,y1,x2,y2}:\n1,adult,1,2,3,4\nbad row\n2, chair , +5 ,6,7_0,8,extra\n\n\
                 rel[4]{subj,pred,obj}:\n1,sitting-on,2\n1,on,9\n1,sits on,2\n2,near,2\n</answer>";
        let g = parse(t, Schema::Triplet);
        assert_eq!(g.objects.len(), 2);
        assert_eq!(g.objects[1], LObject { id: 2, name: "chair".into(), bbox: [5, 6, 70, 8] });
        assert_eq!(g.relations, vec![LRelation { subj: 1, pred: "sitting-on".into(), obj: 2 }]);
        assert_eq!((g.meta.relation_lines, g.meta.invalid_ref, g.meta.invalid_pred), (4, 2, 1));
        assert_eq!(g.meta.declared_objects, Some(9));
        assert!((g.meta.invalid_fraction() - 0.75).abs() < 1e-12);
    }

    #[test]
    fn ag_atomic_relations() {
        let t = "<answer>\n      obj[3]{id,name,x1,y1,x2,y2}:\n        1,person,24,71,259,268\n        2,table,222,143,479,244\n\
                 3,chair,1,1,5,5\n      rel_pairs[3]{subj,attention,spatial,contacting,obj}:\n\
                 1,[unsure],[in_front_of],[not_contacting],2\n2,[],[on],[],3\n1,[a,b],[],[],3\n</answer>\n";
        let g = parse(t, Schema::Ag);
        assert_eq!(g.objects.len(), 3);
        let preds: Vec<_> = g.relations.iter().map(|r| r.pred.as_str()).collect();
        assert_eq!(preds, ["attention__unsure", "spatial__in_front_of", "contacting__not_contacting"]);
        assert_eq!((g.meta.invalid_ref, g.meta.invalid_pred, g.meta.pairs), (1, 1, 1));
    }

    #[test]
    fn gated_triplet_equals_the_lenient_parse() {
        let cfg = StrictConfig::default();
        let answer = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n 2 , Chair ,5,6,70,80\n1,adult,1,2,3,4\n\
                      REL[1]{subj,pred,obj}:\n1,Sitting-On,2\n</answer>";
        let plain = parse_gated_triplet(answer, &cfg).unwrap();
        assert!(plain.is_first_answer);
        assert_eq!(plain.graph, parse(answer, Schema::Triplet));
        let wrapped = format!("<think>\n\n</think>\n\n{answer}<|im_end|>");
        assert_eq!(parse_gated_triplet(&wrapped, &cfg), Some(plain.clone()));
        // A draft answer inside the think block is what the reference's text extraction reads.
        let draft = format!("<think><answer>\nx\n</answer></think>\n{answer}");
        let d = parse_gated_triplet(&draft, &cfg).unwrap();
        assert!(!d.is_first_answer);
        assert_eq!(d.graph, plain.graph);
        assert_ne!(parse(&draft, Schema::Triplet), plain.graph);
        // Not decided by the fast path (a CRLF body), or invalid: None.
        assert_eq!(parse_gated_triplet(&answer.replace('\n', "\r\n"), &cfg), None);
        assert_eq!(parse_gated_triplet("<answer>\nobj[0]{id,name,x1,y1,x2,y2}:\n</answer>", &cfg), None);
    }

    #[test]
    fn gated_ag_equals_the_lenient_parse() {
        let cfg = StrictConfig::default();
        let t = "<answer>\n      obj[3]{id,name,x1,y1,x2,y2}:\n        1,person,24,71,259,268\n        2,Table,222,143,479,244\n\
                 3,chair,1,1,5,5\n      rel_pairs[2]{subj,attention,spatial,contacting,obj}:\n\
                 1,[unsure],[In_front_of, beside],[not_contacting],2\n1,[],[on],[],3\n</answer>";
        let g = parse_gated_ag(t, &cfg).unwrap();
        assert!(g.is_first_answer);
        assert_eq!(g.graph, parse(t, Schema::Ag));
        assert_eq!(g.graph.relations.len(), 5);
        assert_eq!(parse_gated_ag(&t.replace("Table", "T\u{e1}ble"), &cfg), None, "non-ASCII: not decided here");
        assert_eq!(parse_gated_ag(&t.replace("1,[],[on]", "2,[],[on]"), &cfg), None, "invalid");
    }

    #[test]
    fn no_headers_means_nothing() {
        let g = parse("just text", Schema::Triplet);
        assert!(g.objects.is_empty() && g.relations.is_empty());
        assert_eq!(g.meta.relation_lines, 0);
    }
}
