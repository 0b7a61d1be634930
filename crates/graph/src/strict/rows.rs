//! Row-level rules of the strict gate, for both schemas.

use super::{Body, StrictConfig, StrictError, StrictErrorKind as K};
use crate::label;
use crate::lex::Cursor;
use crate::pytext;
use crate::types::{AgGraph, AgPair, BBox, Object, RelKind, Relation, Schema, TripletGraph};

/// Matches a whole line against `\s*obj\[(\d+)\]\{id,name,x1,y1,x2,y2\}:\s*` (case-insensitive), returning N.
pub fn object_header(line: &str) -> Option<u64> {
    let mut c = Cursor::new(line);
    c.ws();
    if !c.literal_ci("obj[") {
        return None;
    }
    let n = c.uint()?;
    (c.literal_ci("]{id,name,x1,y1,x2,y2}:") && c.ws_end()).then_some(n)
}

/// The relation header of `schema` (case-insensitive), returning M.
pub fn relation_header(line: &str, schema: Schema) -> Option<u64> {
    let (open, close) = match schema {
        Schema::Triplet => ("rel[", "]{subj,pred,obj}:"),
        Schema::Ag => ("rel_pairs[", "]{subj,attention,spatial,contacting,obj}:"),
    };
    let mut c = Cursor::new(line);
    c.ws();
    if !c.literal_ci(open) {
        return None;
    }
    let m = c.uint()?;
    (c.literal_ci(close) && c.ws_end()).then_some(m)
}

/// `\s*\d+\s*` as the whole field.
fn field_uint(f: &str) -> Option<u64> {
    let t = pytext::strip(f);
    (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| pytext::digits_saturating(t.as_bytes()))
}

/// `\s*-?\d+\s*` as the whole field, saturating at the `i64` range.
fn field_int(f: &str) -> Option<i64> {
    let t = pytext::strip(f);
    let (neg, d) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t),
    };
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v = pytext::digits_saturating(d.as_bytes()).min(i64::MAX as u64) as i64;
    Some(if neg { -v } else { v })
}

/// Fast path for the common all-ASCII row: `ws* field (ws* ',' ws* field)* ws*` with `ws` = space or tab.
/// Returns the trimmed fields, or `None` when the line holds anything the fast path does not decide (other
/// whitespace, non-ASCII, a different number of fields): the caller then takes the general path.
#[inline]
fn fast_fields<const N: usize>(line: &str) -> Option<[&str; N]> {
    let b = line.as_bytes();
    let mut out = [""; N];
    let mut i = 0;
    for (k, slot) in out.iter_mut().enumerate() {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b',' && b[i] > b' ' && b[i] < 0x80 {
            i += 1;
        }
        let end = i;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if k + 1 < N {
            if i >= b.len() || b[i] != b',' {
                return None;
            }
            i += 1;
        } else if i != b.len() {
            return None;
        }
        *slot = &line[start..end];
    }
    Some(out)
}

/// An all-digit (already trimmed) field as a saturating `u64`.
#[inline]
fn digits_field(f: &str) -> Option<u64> {
    let b = f.as_bytes();
    (!b.is_empty() && b.iter().all(u8::is_ascii_digit)).then(|| pytext::digits_saturating(b))
}

/// `-?\d+` as a whole (already trimmed) field, saturating at the `i64` range.
#[inline]
fn signed_field(f: &str) -> Option<i64> {
    let (neg, d) = match f.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, f),
    };
    let v = digits_field(d)?.min(i64::MAX as u64) as i64;
    Some(if neg { -v } else { v })
}

/// The general object-row path: Python whitespace around fields, precise errors.
fn slow_object_row(line: &str, schema: Schema) -> Result<(u64, &str, [i64; 4]), K> {
    let [f_id, f_name, f1, f2, f3, f4] = fields::<6>(line).ok_or(K::BadObjectRow)?;
    let id = field_uint(f_id).ok_or(K::BadObjectRow)?;
    let coords = [field_int(f1), field_int(f2), field_int(f3), field_int(f4)];
    let name = pytext::strip(f_name);
    if !label::is_canonical(schema, name) {
        return Err(if coords.iter().all(Option::is_some) {
            K::BadLabel { label: name.to_string() }
        } else {
            K::BadObjectRow
        });
    }
    let [Some(x1), Some(y1), Some(x2), Some(y2)] = coords else {
        return Err(K::BadObjectRow);
    };
    Ok((id, name, [x1, y1, x2, y2]))
}

/// The general relation-row path (triplet schema).
fn slow_relation_row(line: &str) -> Result<(u64, &str, u64), K> {
    let [fs, fp, fo] = fields::<3>(line).ok_or(K::BadRelationRow)?;
    let (Some(s), Some(o)) = (field_uint(fs), field_uint(fo)) else {
        return Err(K::BadRelationRow);
    };
    let pred = pytext::strip(fp);
    if !label::is_canonical(Schema::Triplet, pred) {
        return Err(K::BadLabel { label: pred.to_string() });
    }
    Ok((s, pred, o))
}

/// Splits a row on commas into exactly `N` fields.
fn fields<const N: usize>(line: &str) -> Option<[&str; N]> {
    let mut out = [""; N];
    let mut it = pytext::split_commas(line);
    for slot in out.iter_mut() {
        *slot = it.next()?;
    }
    it.next().is_none().then_some(out)
}

/// Header positions and counts shared by both schemas.
struct Layout {
    n: u64,
    rel_idx: usize,
}

fn layout(body: &Body<'_>, schema: Schema) -> Result<Layout, StrictError> {
    let lines = &body.lines;
    let n = object_header(lines[0]).ok_or_else(|| StrictError::at(body.line_no(0), K::BadObjectHeader))?;
    let mut rel: Option<(usize, u64)> = None;
    for (i, l) in lines.iter().enumerate().skip(1) {
        if let Some(m) = relation_header(l, schema) {
            if let Some((first, _)) = rel {
                return Err(StrictError::at(
                    body.line_no(i),
                    K::MultipleRelationHeaders { first_line: body.line_no(first) },
                ));
            }
            rel = Some((i, m));
        }
    }
    let (rel_idx, m) = rel.ok_or_else(|| StrictError::whole(K::MissingRelationHeader))?;
    let n_obj = rel_idx - 1;
    if n != n_obj as u64 {
        return Err(StrictError::at(body.line_no(0), K::ObjectCountMismatch { declared: n, actual: n_obj }));
    }
    let n_rel = lines.len() - rel_idx - 1;
    if m != n_rel as u64 {
        return Err(StrictError::at(body.line_no(rel_idx), K::RelationCountMismatch { declared: m, actual: n_rel }));
    }
    Ok(Layout { n, rel_idx })
}

/// Parses the object rows (lines `1..rel_idx`) and checks the id set is exactly `{1..N}`.
fn objects(body: &Body<'_>, lay: &Layout, schema: Schema) -> Result<Vec<Object>, StrictError> {
    let n = lay.n as usize;
    let mut seen = vec![false; n + 1];
    let mut out = Vec::with_capacity(n);
    for i in 1..lay.rel_idx {
        let line = body.lines[i];
        let at = |k| StrictError::at(body.line_no(i), k);
        // Fast path for well-formed ASCII rows; anything else takes the general path for its exact error.
        let fast = fast_fields::<6>(line).and_then(|[f_id, f_name, f1, f2, f3, f4]| {
            let id = digits_field(f_id)?;
            let c = [signed_field(f1)?, signed_field(f2)?, signed_field(f3)?, signed_field(f4)?];
            label::is_canonical(schema, f_name).then_some((id, f_name, c))
        });
        let (id, name, [x1, y1, x2, y2]) = match fast {
            Some(v) => v,
            None => slow_object_row(line, schema).map_err(at)?,
        };
        if !(1..=n as u64).contains(&id) {
            let missing = (1..=n).find(|&k| !seen[k]).unwrap_or(1) as u64;
            return Err(at(K::IdsNotOneToN { missing }));
        }
        if seen[id as usize] {
            return Err(at(K::DuplicateObjectId { id }));
        }
        seen[id as usize] = true;
        out.push(Object { id: id as u32, name: name.to_string(), bbox: BBox::new(x1, y1, x2, y2) });
    }
    Ok(out)
}

/// The graph-level checks (`_graph_valid`): object count, relation count, boxes.
fn graph_checks(body: &Body<'_>, objs: &[Object], n_atomic: usize, cfg: &StrictConfig) -> Result<(), StrictError> {
    if objs.is_empty() {
        return Err(StrictError::at(body.line_no(0), K::NoObjects));
    }
    if objs.len() > cfg.max_objects {
        return Err(StrictError::whole(K::TooManyObjects { count: objs.len(), max: cfg.max_objects }));
    }
    if n_atomic > cfg.max_relations {
        return Err(StrictError::whole(K::TooManyRelations { count: n_atomic, max: cfg.max_relations }));
    }
    for (i, o) in objs.iter().enumerate() {
        if !cfg.canvas.contains(&o.bbox) {
            return Err(StrictError::at(
                body.line_no(i + 1),
                K::BoxOutOfCanvas { bbox: o.bbox.to_array(), width: cfg.canvas.width, height: cfg.canvas.height },
            ));
        }
    }
    Ok(())
}

/// Index of the first relation (in row order) that repeats an earlier `(subj, pred, obj)`: rows are bucketed by
/// the integer pair first, so predicates are only compared within a pair.
fn first_duplicate_relation(rels: &[Relation]) -> Option<usize> {
    let mut idx: Vec<(u64, u32)> =
        rels.iter().enumerate().map(|(i, r)| (((r.subj as u64) << 32) | r.obj as u64, i as u32)).collect();
    idx.sort_unstable();
    let mut first: Option<usize> = None;
    let mut start = 0;
    while start < idx.len() {
        let mut end = start + 1;
        while end < idx.len() && idx[end].0 == idx[start].0 {
            end += 1;
        }
        for j in start + 1..end {
            let later = idx[j].1 as usize;
            if idx[start..j].iter().any(|&(_, e)| rels[e as usize].pred == rels[later].pred) {
                first = Some(first.map_or(later, |f| f.min(later)));
            }
        }
        start = end;
    }
    first
}

pub(super) fn triplet(body: &Body<'_>, cfg: &StrictConfig) -> Result<TripletGraph, StrictError> {
    let lay = layout(body, Schema::Triplet)?;
    let objs = objects(body, &lay, Schema::Triplet)?;
    let n = lay.n;
    let mut rels = Vec::with_capacity(body.lines.len() - lay.rel_idx - 1);
    for i in lay.rel_idx + 1..body.lines.len() {
        let at = |k| StrictError::at(body.line_no(i), k);
        let line = body.lines[i];
        let fast = fast_fields::<3>(line).and_then(|[fs, fp, fo]| {
            let (s, o) = (digits_field(fs)?, digits_field(fo)?);
            label::is_canonical(Schema::Triplet, fp).then_some((s, fp, o))
        });
        let (s, pred, o) = match fast {
            Some(v) => v,
            None => slow_relation_row(line).map_err(at)?,
        };
        for id in [s, o] {
            if !(1..=n).contains(&id) {
                return Err(at(K::UnknownObjectRef { id }));
            }
        }
        if s == o {
            return Err(at(K::SelfLoop { id: s }));
        }
        rels.push(Relation { subj: s as u32, pred: pred.to_ascii_lowercase(), obj: o as u32 });
    }
    if let Some(d) = first_duplicate_relation(&rels) {
        let r = &rels[d];
        return Err(StrictError::at(
            body.line_no(lay.rel_idx + 1 + d),
            K::DuplicateRelation { subj: r.subj as u64, pred: r.pred.clone(), obj: r.obj as u64 },
        ));
    }
    graph_checks(body, &objs, rels.len(), cfg)?;
    Ok(TripletGraph { objects: objs, relations: rels })
}

/// Parses one AG label list body: split on `,`, drop empty items, strip and lowercase the rest; every item must be
/// canonical, at most `max`, no repeats.
fn label_list(raw: &str, kind: RelKind, max: usize) -> Result<Vec<String>, K> {
    let mut items: Vec<String> = Vec::new();
    for part in pytext::split_commas(raw) {
        let t = pytext::strip(part);
        if t.is_empty() {
            continue;
        }
        if !label::is_canonical(Schema::Ag, t) {
            return Err(K::BadLabel { label: t.to_string() });
        }
        items.push(t.to_ascii_lowercase());
    }
    if items.len() > max {
        return Err(K::TooManyLabels { kind, count: items.len(), max });
    }
    for (i, it) in items.iter().enumerate() {
        if items[..i].contains(it) {
            return Err(K::DuplicateLabel { kind, label: it.clone() });
        }
    }
    Ok(items)
}

/// `\s*(\d+)\s*,\s*\[…\]\s*,\s*\[…\]\s*,\s*\[…\]\s*,\s*(\d+)\s*`.
pub(crate) fn pair_row(line: &str) -> Option<(u64, [&str; 3], u64)> {
    let mut c = Cursor::new(line);
    c.ws();
    let s = c.uint()?;
    let mut lists = [""; 3];
    for l in lists.iter_mut() {
        if !c.sep(b',') {
            return None;
        }
        *l = c.bracket_list()?;
    }
    if !c.sep(b',') {
        return None;
    }
    let o = c.uint()?;
    c.ws_end().then_some((s, lists, o))
}

pub(super) fn ag(body: &Body<'_>, cfg: &StrictConfig) -> Result<AgGraph, StrictError> {
    let lay = layout(body, Schema::Ag)?;
    let objs = objects(body, &lay, Schema::Ag)?;
    let n = lay.n;
    let mut name_by_id: Vec<&str> = vec![""; n as usize + 1];
    for o in &objs {
        name_by_id[o.id as usize] = &o.name;
    }
    let caps = [cfg.ag_attention_max, cfg.ag_spatial_max, cfg.ag_contacting_max];
    let mut pairs: Vec<AgPair> = Vec::new();
    let mut atomic: Vec<(u32, RelKind, String, u32, usize)> = Vec::new();
    for i in lay.rel_idx + 1..body.lines.len() {
        let at = |k| StrictError::at(body.line_no(i), k);
        let (s, lists, o) = pair_row(body.lines[i]).ok_or_else(|| at(K::BadRelationRow))?;
        for id in [s, o] {
            if !(1..=n).contains(&id) {
                return Err(at(K::UnknownObjectRef { id }));
            }
        }
        if s == o {
            return Err(at(K::SelfLoop { id: s }));
        }
        let mut parsed: [Vec<String>; 3] = Default::default();
        for (k, kind) in RelKind::ALL.into_iter().enumerate() {
            parsed[k] = label_list(lists[k], kind, caps[k]).map_err(at)?;
        }
        if parsed.iter().all(Vec::is_empty) {
            return Err(at(K::EmptyPairLabels));
        }
        let subj_name = name_by_id[s as usize];
        if cfg.ag_enforce_person_subject && !subj_name.eq_ignore_ascii_case("person") {
            return Err(at(K::SubjectNotPerson { name: subj_name.to_string() }));
        }
        let [attention, spatial, contacting] = parsed;
        let pair = AgPair { subj: s as u32, attention, spatial, contacting, obj: o as u32 };
        if pairs.contains(&pair) {
            return Err(at(K::DuplicatePairRow));
        }
        for kind in RelKind::ALL {
            for l in pair.labels(kind) {
                if atomic
                    .iter()
                    .any(|(as_, ak, al, ao, _)| *as_ == pair.subj && *ak == kind && al == l && *ao == pair.obj)
                {
                    return Err(at(K::DuplicateAtomicRelation { pred: crate::types::atomic_predicate(kind, l) }));
                }
                atomic.push((pair.subj, kind, l.clone(), pair.obj, i));
            }
        }
        // Bounded work on hostile input: past the cap the graph is invalid whatever follows.
        if atomic.len() > cfg.max_relations {
            return Err(StrictError::whole(K::TooManyRelations { count: atomic.len(), max: cfg.max_relations }));
        }
        pairs.push(pair);
    }
    graph_checks(body, &objs, atomic.len(), cfg)?;
    Ok(AgGraph { objects: objs, pairs })
}
