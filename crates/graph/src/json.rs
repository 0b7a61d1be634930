//! The R1-SGG JSON form of a triplet graph, both ways.
//!
//! R1-SGG's prompts and its Hugging Face PSG export (`JosephZ/psg_{train,test}_sg`) write a graph as
//! ```json
//! {"objects":[{"id":"person.1","bbox":[x1,y1,x2,y2]},…],
//!  "relationships":[{"subject":"person.1","predicate":"riding","object":"bike.2"},…]}
//! ```
//! - **Ids.** An object id is `<name>.<k>`, where `k` is the object's 1-based position in the list (R1-SGG's
//!   examples number objects globally: `person.1`, `bike.2`, `helmet.3`), so names may repeat. [`to_r1sgg`] writes
//!   `k` = [`Object::id`]. [`from_r1sgg`] gives objects ids 1..n in list order and takes the name as the raw id
//!   minus its last `.`-suffix, like the reference's `id.rsplit('.', 1)[0]`: `k` is not checked, and an id
//!   without a `.` is all name.
//! - **Boxes** must be four integers. Integral floats (`12.0`, as some exporters write them) are accepted as the
//!   same pixel; fractional values, numeric strings and values outside `i64` are errors, because the reference
//!   would silently leave such boxes unscaled.
//! - **Predicates** are kept verbatim (the dataset loader, not this codec, turns `standing on` into `standing-on`).
//! - `objects` and `relationships` may be JSON strings holding the list (the HF export quirk). Both are required;
//!   other keys (`image_id`, …) are ignored, so a whole export row can be passed.
//! - Errors name the 0-based list index (`objects[2].bbox: …`). Duplicate raw ids and relationship endpoints that
//!   name no object are errors.
//! - Nothing depends on `serde_json`'s map order: [`to_r1sgg_string`] writes keys in the order above.
//!
//! ```
//! use sgvlm_graph::json::{from_r1sgg_str, to_r1sgg_string};
//! let text = r#"{"objects":[{"id":"person.1","bbox":[1,2,3,4]},{"id":"bike.2","bbox":[5,6,7,8]}],
//!                "relationships":[{"subject":"person.1","predicate":"riding","object":"bike.2"}]}"#;
//! let g = from_r1sgg_str(text).unwrap();
//! assert_eq!((g.objects[1].id, g.objects[1].name.as_str(), g.relations[0].obj), (2, "bike", 2));
//! assert_eq!(to_r1sgg_string(&g), text.replace(['\n', ' '], ""));
//! ```

use crate::types::{BBox, Object, Relation, TripletGraph};
use serde_json::Value;
use std::collections::HashMap;

/// Why a value is not an R1-SGG graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The text (or a string-embedded list) is not JSON.
    #[error("{context}: invalid JSON: {message}")]
    Syntax { context: String, message: String },
    /// The top level is not a JSON object.
    #[error("expected a JSON object with `objects` and `relationships`, found {found}")]
    NotAnObject { found: &'static str },
    /// `objects` or `relationships` is absent.
    #[error("missing `{0}`")]
    MissingField(&'static str),
    /// `objects` or `relationships` is neither a list nor a string holding one.
    #[error("`{field}`: expected a list, found {found}")]
    NotAList { field: &'static str, found: &'static str },
    /// An object entry is malformed (not an object, or its `id` is missing or not a string).
    #[error("objects[{index}]: {reason}")]
    BadObject { index: usize, reason: String },
    /// An object's `bbox` is not four integers.
    #[error("objects[{index}].bbox: {reason}")]
    BadBox { index: usize, reason: String },
    /// Two objects share a raw id.
    #[error("objects[{index}]: duplicate id {id:?} (first at objects[{first}])")]
    DuplicateId { index: usize, first: usize, id: String },
    /// A relationship entry is malformed (not an object, or a field missing or not a string).
    #[error("relationships[{index}]: {reason}")]
    BadRelationship { index: usize, reason: String },
    /// A relationship's `subject` or `object` names no object.
    #[error("relationships[{index}].{role}: unknown object id {id:?}")]
    UnknownEndpoint { index: usize, role: &'static str, id: String },
}

/// The R1-SGG id of an object: `<name>.<id>`.
fn raw_id(o: &Object) -> String {
    format!("{}.{}", o.name, o.id)
}

/// Raw ids by graph id; a relation endpoint naming no object is written as the bare number (which
/// [`from_r1sgg`] rejects as unknown).
fn endpoint(ids: &HashMap<u32, String>, id: u32) -> String {
    ids.get(&id).cloned().unwrap_or_else(|| id.to_string())
}

fn raw_ids(g: &TripletGraph) -> HashMap<u32, String> {
    let mut ids = HashMap::with_capacity(g.objects.len());
    for o in &g.objects {
        ids.entry(o.id).or_insert_with(|| raw_id(o));
    }
    ids
}

/// The R1-SGG value of a graph (object ids `<name>.<id>`; keys in `serde_json`'s map order).
pub fn to_r1sgg(g: &TripletGraph) -> Value {
    let ids = raw_ids(g);
    let objects = g.objects.iter().map(|o| serde_json::json!({"id": raw_id(o), "bbox": o.bbox.to_array()}));
    let rels = g.relations.iter().map(|r| {
        serde_json::json!({
            "subject": endpoint(&ids, r.subj),
            "predicate": r.pred,
            "object": endpoint(&ids, r.obj),
        })
    });
    serde_json::json!({"objects": objects.collect::<Vec<_>>(), "relationships": rels.collect::<Vec<_>>()})
}

fn push_str(out: &mut String, s: &str) {
    // Serializing a `&str` cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// Compact R1-SGG JSON with keys in R1-SGG's order (`id`, `bbox`; `subject`, `predicate`, `object`).
pub fn to_r1sgg_string(g: &TripletGraph) -> String {
    let ids = raw_ids(g);
    let mut out = String::with_capacity(40 + 48 * g.objects.len() + 64 * g.relations.len());
    out.push_str("{\"objects\":[");
    for (i, o) in g.objects.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"id\":");
        push_str(&mut out, &raw_id(o));
        out.push_str(",\"bbox\":[");
        for (j, v) in o.bbox.to_array().into_iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(itoa::Buffer::new().format(v));
        }
        out.push_str("]}");
    }
    out.push_str("],\"relationships\":[");
    for (i, r) in g.relations.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"subject\":");
        push_str(&mut out, &endpoint(&ids, r.subj));
        out.push_str(",\"predicate\":");
        push_str(&mut out, &r.pred);
        out.push_str(",\"object\":");
        push_str(&mut out, &endpoint(&ids, r.obj));
        out.push('}');
    }
    out.push_str("]}");
    out
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Parses R1-SGG JSON text.
pub fn from_r1sgg_str(text: &str) -> Result<TripletGraph, JsonError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| JsonError::Syntax { context: "document".into(), message: e.to_string() })?;
    from_r1sgg(&v)
}

/// The list under `field`, parsing it first when it is a JSON string.
fn list(top: &serde_json::Map<String, Value>, field: &'static str) -> Result<Vec<Value>, JsonError> {
    let parsed;
    let v = match top.get(field) {
        None => return Err(JsonError::MissingField(field)),
        Some(Value::String(s)) => {
            parsed = serde_json::from_str::<Value>(s).map_err(|e| JsonError::Syntax {
                context: format!("`{field}` (a string holding JSON)"),
                message: e.to_string(),
            })?;
            &parsed
        }
        Some(v) => v,
    };
    match v {
        Value::Array(items) => Ok(items.clone()),
        other => Err(JsonError::NotAList { field, found: kind(other) }),
    }
}

fn coordinate(v: &Value) -> Option<i64> {
    let n = v.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64().filter(|f| f.fract() == 0.0)?;
    // Integral floats are exact below 2^53; beyond that they are not pixel values anyway.
    (f.abs() <= 9_007_199_254_740_992.0).then_some(f as i64)
}

fn parse_box(index: usize, v: Option<&Value>) -> Result<BBox, JsonError> {
    let bad = |reason: String| JsonError::BadBox { index, reason };
    let items = match v {
        None => return Err(bad("missing".into())),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(bad(format!("expected a list of 4 integers, found {}", kind(other)))),
    };
    if items.len() != 4 {
        return Err(bad(format!("expected 4 integers, found {} values", items.len())));
    }
    let mut out = [0i64; 4];
    for (j, (slot, item)) in out.iter_mut().zip(items).enumerate() {
        *slot = coordinate(item).ok_or_else(|| bad(format!("value {j} is not an integer: {item}")))?;
    }
    Ok(BBox::from(out))
}

/// Parses an R1-SGG value (a graph, or a whole export row with extra keys).
pub fn from_r1sgg(v: &Value) -> Result<TripletGraph, JsonError> {
    let Value::Object(top) = v else {
        return Err(JsonError::NotAnObject { found: kind(v) });
    };
    let objects = list(top, "objects")?;
    let relationships = list(top, "relationships")?;
    let mut g = TripletGraph::default();
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(objects.len());
    for (index, o) in objects.iter().enumerate() {
        let Value::Object(fields) = o else {
            let reason = format!("expected an object, found {}", kind(o));
            return Err(JsonError::BadObject { index, reason });
        };
        let raw = match fields.get("id") {
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                let reason = format!("`id` must be a string, found {}", kind(other));
                return Err(JsonError::BadObject { index, reason });
            }
            None => return Err(JsonError::BadObject { index, reason: "missing `id`".into() }),
        };
        if let Some(&first) = ids.get(raw) {
            return Err(JsonError::DuplicateId { index, first, id: raw.into() });
        }
        ids.insert(raw, index);
        let bbox = parse_box(index, fields.get("bbox"))?;
        let name = raw.rsplit_once('.').map_or(raw, |(name, _)| name);
        let id = u32::try_from(index + 1)
            .map_err(|_| JsonError::BadObject { index, reason: "more objects than u32 ids".into() })?;
        g.objects.push(Object { id, name: name.into(), bbox });
    }
    for (index, r) in relationships.iter().enumerate() {
        let Value::Object(fields) = r else {
            let reason = format!("expected an object, found {}", kind(r));
            return Err(JsonError::BadRelationship { index, reason });
        };
        let text = |role: &'static str| match fields.get(role) {
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(other) => Err(JsonError::BadRelationship {
                index,
                reason: format!("`{role}` must be a string, found {}", kind(other)),
            }),
            None => Err(JsonError::BadRelationship { index, reason: format!("missing `{role}`") }),
        };
        let end = |role: &'static str| {
            let raw = text(role)?;
            match ids.get(raw) {
                Some(&i) => Ok(g.objects[i].id),
                None => Err(JsonError::UnknownEndpoint { index, role, id: raw.into() }),
            }
        };
        let (subj, pred, obj) = (end("subject")?, text("predicate")?, end("object")?);
        g.relations.push(Relation { subj, pred: pred.into(), obj });
    }
    Ok(g)
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
