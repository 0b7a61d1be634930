//! Spec-conformant TOON v4 encoding of a subset of the JSON data model, and of scene graphs.
//!
//! The paper's layouts ([`super::Layout`]) are not valid TOON for every label: a name such as `true`, `3` or
//! `a,b` changes type or splits a row. This module writes documents that any conformant v4 decoder reads back to
//! the same JSON value:
//! - [`TValue`] is an ordered JSON value (objects are `Vec<(key, value)>`), so key order never depends on
//!   `serde_json`'s `preserve_order` feature. It deserializes directly from JSON text with its order intact.
//! - [`encode_value`] implements the encoder rules of spec v4.0: objects (§8), inline primitive arrays (§9.1),
//!   tabular arrays with nested field groups (§9.3), keyed tabular objects (§9.5), list items (§9.2, §9.4, §10),
//!   `key: []` for empty arrays, string and key quoting (§7.2, §7.3), escapes (§7.1), canonical numbers (§2),
//!   any indent size and the comma, tab or pipe delimiter (§11).
//! - It returns [`SpecError::Unsupported`] instead of guessing where v4.0 leaves the layout open to us: a
//!   uniform array of objects as an element of another array (keyless tabular headers are root-only), duplicate
//!   keys, nesting deeper than [`MAX_DEPTH`], and an indent size of 0.
//! - [`encode_graph`] writes a [`SceneGraph`] in the data model of [`graph_to_json_value`]:
//!   `{"obj":[{id,name,x1,y1,x2,y2}…],"rel":[{subj,pred,obj}…]}` (two tables), or for Action Genome
//!   `{"obj":[…],"rel_pairs":[{subj,attention,spatial,contacting,obj}…]}` (list items, since three cells are arrays).
//!
//! ```
//! use sgvlm_graph::toon::spec::{encode_graph, encode_json};
//! use sgvlm_graph::{BBox, Object, TripletGraph};
//! let g = TripletGraph {
//!     objects: vec![Object { id: 1, name: "true".into(), bbox: BBox::new(0, 0, 5, 5) }],
//!     relations: vec![],
//! };
//! assert_eq!(encode_graph(&g.into()), "obj[1]{id,name,x1,y1,x2,y2}:\n  1,\"true\",0,0,5,5\nrel: []");
//! let v = serde_json::json!({"tags": ["a", "b,c"]});
//! assert_eq!(encode_json(&v, &Default::default()).unwrap(), "tags[2]: a,\"b,c\"");
//! ```

use crate::types::{AgGraph, Object, SceneGraph, TripletGraph};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;
use std::fmt;

/// Deepest nesting [`encode_value`] accepts (the root is depth 0).
pub const MAX_DEPTH: usize = 256;

/// A JSON value whose objects keep their key order.
#[derive(Debug, Clone, PartialEq)]
pub enum TValue {
    Null,
    Bool(bool),
    Num(Number),
    Str(String),
    Arr(Vec<TValue>),
    Obj(Vec<(String, TValue)>),
}

impl TValue {
    /// A number from an `f64`; NaN and ±∞ become `Null` (spec §3).
    pub fn from_f64(f: f64) -> TValue {
        Number::from_f64(f).map_or(TValue::Null, TValue::Num)
    }

    /// The `serde_json` form (its key order then follows `serde_json`'s map).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            TValue::Null => J::Null,
            TValue::Bool(b) => J::Bool(*b),
            TValue::Num(n) => J::Number(n.clone()),
            TValue::Str(s) => J::String(s.clone()),
            TValue::Arr(a) => J::Array(a.iter().map(TValue::to_json).collect()),
            TValue::Obj(o) => J::Object(o.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    fn is_primitive(&self) -> bool {
        !matches!(self, TValue::Arr(_) | TValue::Obj(_))
    }
}

impl From<&serde_json::Value> for TValue {
    /// Keys come in the map's iteration order: insertion order with `preserve_order`, sorted without it.
    fn from(v: &serde_json::Value) -> Self {
        use serde_json::Value as J;
        match v {
            J::Null => TValue::Null,
            J::Bool(b) => TValue::Bool(*b),
            J::Number(n) => TValue::Num(n.clone()),
            J::String(s) => TValue::Str(s.clone()),
            J::Array(a) => TValue::Arr(a.iter().map(TValue::from).collect()),
            J::Object(m) => TValue::Obj(m.iter().map(|(k, v)| (k.clone(), v.into())).collect()),
        }
    }
}

struct TValueVisitor;

impl<'de> Visitor<'de> for TValueVisitor {
    type Value = TValue;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<TValue, E> {
        Ok(TValue::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<TValue, E> {
        Ok(TValue::Num(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<TValue, E> {
        Ok(TValue::Num(n.into()))
    }
    fn visit_f64<E>(self, f: f64) -> Result<TValue, E> {
        Ok(TValue::from_f64(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<TValue, E> {
        Ok(TValue::Str(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<TValue, E> {
        Ok(TValue::Str(s))
    }
    fn visit_unit<E>(self) -> Result<TValue, E> {
        Ok(TValue::Null)
    }
    fn visit_none<E>(self) -> Result<TValue, E> {
        Ok(TValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<TValue, D::Error> {
        TValue::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TValue, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(TValue::Arr(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TValue, A::Error> {
        let mut out = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, TValue>()? {
            out.push((k, v));
        }
        Ok(TValue::Obj(out))
    }
}

impl<'de> Deserialize<'de> for TValue {
    /// Order-preserving: object keys keep their document order whatever `serde_json`'s features are.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TValueVisitor)
    }
}

/// The delimiter of arrays and rows (§11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delimiter {
    #[default]
    Comma,
    Tab,
    Pipe,
}

impl Delimiter {
    pub fn as_char(self) -> char {
        match self {
            Delimiter::Comma => ',',
            Delimiter::Tab => '\t',
            Delimiter::Pipe => '|',
        }
    }
}

/// Encoder options (§13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Spaces per depth level (spec default 2; must be ≥ 1).
    pub indent: usize,
    pub delimiter: Delimiter,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            indent: 2,
            delimiter: Delimiter::Comma,
        }
    }
}

/// Why a value was not encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The input is outside the subset this encoder implements; nothing was guessed.
    #[error("unsupported by the TOON spec encoder: {0}")]
    Unsupported(String),
}

/// Encodes a `serde_json` value (keys in that map's iteration order).
pub fn encode_json(v: &serde_json::Value, opts: &EncodeOptions) -> Result<String, SpecError> {
    encode_value(&TValue::from(v), opts)
}

/// Encodes an ordered value as a TOON v4 document (no trailing newline).
pub fn encode_value(v: &TValue, opts: &EncodeOptions) -> Result<String, SpecError> {
    if opts.indent == 0 {
        return Err(SpecError::Unsupported("indent size 0".into()));
    }
    check(v, 0, false)?;
    Ok(write_document(v, opts))
}

/// Finds what [`write_document`] cannot encode faithfully.
fn check(v: &TValue, depth: usize, in_array: bool) -> Result<(), SpecError> {
    if depth > MAX_DEPTH {
        return Err(SpecError::Unsupported(format!(
            "nesting deeper than {MAX_DEPTH}"
        )));
    }
    match v {
        TValue::Arr(items) => {
            if in_array
                && !items.is_empty()
                && matches!(
                    shape(&items.iter().collect::<Vec<_>>()),
                    Some(Shape::Group(_))
                )
            {
                let msg = "a uniform array of objects as an array element (keyless tabular header)";
                return Err(SpecError::Unsupported(msg.into()));
            }
            items.iter().try_for_each(|x| check(x, depth + 1, true))
        }
        TValue::Obj(fields) => {
            let mut seen = std::collections::HashSet::with_capacity(fields.len());
            if let Some((k, _)) = fields.iter().find(|(k, _)| !seen.insert(k.as_str())) {
                return Err(SpecError::Unsupported(format!("duplicate key {k:?}")));
            }
            fields
                .iter()
                .try_for_each(|(_, x)| check(x, depth + 1, false))
        }
        _ => Ok(()),
    }
}

/// How a column of values is written in a tabular header: one cell, or a nested field group (§9.3).
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Leaf,
    Group(Vec<(String, Shape)>),
}

/// The shape of `vals` as one column: all primitives, or all non-empty objects with one key set whose own
/// columns have shapes. Fields follow the first object's order.
fn shape(vals: &[&TValue]) -> Option<Shape> {
    let (first, rest) = vals.split_first()?;
    if first.is_primitive() {
        return rest.iter().all(|v| v.is_primitive()).then_some(Shape::Leaf);
    }
    let TValue::Obj(keys) = first else {
        return None;
    };
    if keys.is_empty() {
        return None;
    }
    let mut rows = Vec::with_capacity(vals.len());
    for v in vals {
        match v {
            TValue::Obj(f) if f.len() == keys.len() => rows.push(f.as_slice()),
            _ => return None,
        }
    }
    let mut group = Vec::with_capacity(keys.len());
    for (k, _) in keys {
        let col: Option<Vec<&TValue>> = rows.iter().map(|f| lookup(f, k)).collect();
        group.push((k.clone(), shape(&col?)?));
    }
    Some(Shape::Group(group))
}

fn lookup<'a>(fields: &'a [(String, TValue)], key: &str) -> Option<&'a TValue> {
    fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// The field group of an object eligible for keyed tabular form (§9.5): ≥ 2 entries, every value a non-empty
/// object of one key set with shaped columns.
fn keyed_group(fields: &[(String, TValue)]) -> Option<Vec<(String, Shape)>> {
    if fields.len() < 2 {
        return None;
    }
    match shape(&fields.iter().map(|(_, v)| v).collect::<Vec<_>>()) {
        Some(Shape::Group(g)) => Some(g),
        _ => None,
    }
}

struct Writer<'o> {
    out: String,
    opts: &'o EncodeOptions,
    delim: char,
}

/// Writes a value that [`check`] accepted.
fn write_document(v: &TValue, opts: &EncodeOptions) -> String {
    let mut w = Writer {
        out: String::new(),
        opts,
        delim: opts.delimiter.as_char(),
    };
    match v {
        TValue::Obj(fields) => match keyed_group(fields) {
            Some(group) => {
                w.keyed_header(&group, fields.len());
                w.keyed_rows(1, fields, &group);
            }
            None => w.fields(0, fields),
        },
        TValue::Arr(items) if items.is_empty() => w.out.push_str("[]"),
        TValue::Arr(items) => w.array(0, items),
        p => w.primitive(p),
    }
    w.out
}

impl Writer<'_> {
    /// Starts a new line at `depth`.
    fn line(&mut self, depth: usize) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out
            .extend(std::iter::repeat_n(' ', depth * self.opts.indent));
    }

    /// Object fields, each on its own line at `depth`.
    fn fields(&mut self, depth: usize, fields: &[(String, TValue)]) {
        for (k, v) in fields {
            self.line(depth);
            self.field(depth, k, v);
        }
    }

    /// One field on the current line; its children go to `depth + 1`.
    fn field(&mut self, depth: usize, key: &str, v: &TValue) {
        push_key(&mut self.out, key);
        match v {
            TValue::Arr(items) if items.is_empty() => self.out.push_str(": []"),
            TValue::Arr(items) => self.array(depth, items),
            TValue::Obj(fields) if fields.is_empty() => self.out.push(':'),
            TValue::Obj(fields) => match keyed_group(fields) {
                Some(group) => {
                    self.keyed_header(&group, fields.len());
                    self.keyed_rows(depth + 1, fields, &group);
                }
                None => {
                    self.out.push(':');
                    self.fields(depth + 1, fields);
                }
            },
            p => {
                self.out.push_str(": ");
                self.primitive(p);
            }
        }
    }

    /// `[N<d>]`, after the key (if any) already written.
    fn count(&mut self, n: usize, keyed: bool) {
        self.out.push('[');
        self.out.push_str(itoa::Buffer::new().format(n));
        if keyed {
            self.out.push(':');
        }
        if self.delim != ',' {
            self.out.push(self.delim);
        }
        self.out.push(']');
    }

    /// A non-empty array header (the key already written) and its body at `depth + 1`.
    fn array(&mut self, depth: usize, items: &[TValue]) {
        self.count(items.len(), false);
        match shape(&items.iter().collect::<Vec<_>>()) {
            Some(Shape::Leaf) => {
                self.out.push_str(": ");
                self.cells(items.iter());
            }
            Some(Shape::Group(group)) => {
                self.group(&group);
                self.out.push(':');
                for item in items {
                    self.line(depth + 1);
                    self.row(item, &group);
                }
            }
            None => {
                self.out.push(':');
                for item in items {
                    self.line(depth + 1);
                    self.item(depth + 1, item);
                }
            }
        }
    }

    /// A list item on the current line at `depth` (§10).
    fn item(&mut self, depth: usize, v: &TValue) {
        match v {
            TValue::Obj(fields) => match fields.split_first() {
                None => self.out.push('-'),
                Some(((k, first), rest)) => {
                    self.out.push_str("- ");
                    self.field(depth + 1, k, first);
                    self.fields(depth + 1, rest);
                }
            },
            TValue::Arr(items) if items.is_empty() => {
                self.out.push_str("- ");
                self.count(0, false);
                self.out.push(':');
            }
            TValue::Arr(items) => {
                self.out.push_str("- ");
                self.array(depth, items);
            }
            p => {
                self.out.push_str("- ");
                self.primitive(p);
            }
        }
    }

    /// `[N:<d>]{fields}:` after the key (if any).
    fn keyed_header(&mut self, group: &[(String, Shape)], n: usize) {
        self.count(n, true);
        self.group(group);
        self.out.push(':');
    }

    fn keyed_rows(&mut self, depth: usize, fields: &[(String, TValue)], group: &[(String, Shape)]) {
        for (k, v) in fields {
            self.line(depth);
            push_key(&mut self.out, k);
            self.out.push_str(": ");
            self.row(v, group);
        }
    }

    /// `{f1,f2{a,b}}` with the active delimiter.
    fn group(&mut self, group: &[(String, Shape)]) {
        self.out.push('{');
        for (i, (k, s)) in group.iter().enumerate() {
            if i > 0 {
                self.out.push(self.delim);
            }
            push_key(&mut self.out, k);
            if let Shape::Group(g) = s {
                self.group(g);
            }
        }
        self.out.push('}');
    }

    /// The leaf cells of one object, depth-first in `group` order.
    fn row(&mut self, v: &TValue, group: &[(String, Shape)]) {
        let mut leaves = Vec::new();
        collect_leaves(v, group, &mut leaves);
        self.cells(leaves.into_iter());
    }

    fn cells<'a>(&mut self, vals: impl Iterator<Item = &'a TValue>) {
        for (i, v) in vals.enumerate() {
            if i > 0 {
                self.out.push(self.delim);
            }
            self.primitive(v);
        }
    }

    fn primitive(&mut self, v: &TValue) {
        match v {
            TValue::Null => self.out.push_str("null"),
            TValue::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            TValue::Num(n) => push_number(&mut self.out, n),
            TValue::Str(s) => push_string(&mut self.out, s, self.delim),
            // Unreachable for checked input: containers never reach a primitive slot.
            TValue::Arr(_) | TValue::Obj(_) => self.out.push_str("null"),
        }
    }
}

fn collect_leaves<'a>(v: &'a TValue, group: &[(String, Shape)], out: &mut Vec<&'a TValue>) {
    let TValue::Obj(fields) = v else { return };
    for (k, s) in group {
        match (lookup(fields, k), s) {
            (Some(x), Shape::Leaf) => out.push(x),
            (Some(x), Shape::Group(g)) => collect_leaves(x, g, out),
            (None, _) => {}
        }
    }
}

/// Canonical number form (§2): integers as written, floats shortest-round-trip without exponent in
/// `[1e-6, 1e21)`, `-0` as `0`, JSON exponent form outside that range.
pub fn push_number(out: &mut String, n: &Number) {
    if let Some(u) = n.as_u64() {
        out.push_str(itoa::Buffer::new().format(u));
    } else if let Some(i) = n.as_i64() {
        out.push_str(itoa::Buffer::new().format(i));
    } else if let Some(f) = n.as_f64() {
        let a = f.abs();
        if !f.is_finite() {
            out.push_str("null");
        } else if a == 0.0 {
            out.push('0');
        } else if (1e-6..1e21).contains(&a) {
            out.push_str(&format!("{f}"));
        } else {
            out.push_str(&format!("{f:e}"));
        }
    }
}

/// Whether a string value must be quoted against delimiter `d` (§7.2).
pub fn needs_quotes(s: &str, d: char) -> bool {
    s.is_empty()
        || s.starts_with([' ', '\t'])
        || s.ends_with([' ', '\t'])
        || matches!(s, "true" | "false" | "null")
        || numeric_like(s)
        || s.starts_with(['-', '#'])
        || s.chars()
            .any(|c| matches!(c, ':' | '"' | '\\' | '[' | ']' | '{' | '}') || c < ' ' || c == d)
}

/// `^[+-]?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?$`, case-insensitive.
fn numeric_like(s: &str) -> bool {
    fn digits(b: &[u8]) -> usize {
        b.iter().take_while(|c| c.is_ascii_digit()).count()
    }
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let n = digits(&b[i..]);
    if n == 0 {
        return false;
    }
    i += n;
    if b.get(i) == Some(&b'.') {
        let n = digits(&b[i + 1..]);
        if n == 0 {
            return false;
        }
        i += 1 + n;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(&b[i..]);
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == b.len()
}

fn push_string(out: &mut String, s: &str, d: char) {
    if needs_quotes(s, d) {
        push_quoted(out, s);
    } else {
        out.push_str(s);
    }
}

/// Keys are bare only when they match `^[A-Za-z_][A-Za-z0-9_.]*$` (§7.3).
fn push_key(out: &mut String, k: &str) {
    let mut cs = k.chars();
    let bare = cs
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if bare {
        out.push_str(k);
    } else {
        push_quoted(out, k);
    }
}

/// `"…"` with the escapes of §7.1 (other C0 controls as lowercase `\u00xx`).
fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn object_rows(objects: &[Object]) -> TValue {
    let row = |o: &Object| {
        let b = o.bbox;
        TValue::Obj(vec![
            ("id".into(), TValue::Num(o.id.into())),
            ("name".into(), TValue::Str(o.name.clone())),
            ("x1".into(), TValue::Num(b.x1.into())),
            ("y1".into(), TValue::Num(b.y1.into())),
            ("x2".into(), TValue::Num(b.x2.into())),
            ("y2".into(), TValue::Num(b.y2.into())),
        ])
    };
    TValue::Arr(objects.iter().map(row).collect())
}

fn triplet_value(g: &TripletGraph) -> TValue {
    let rels = g.relations.iter().map(|r| {
        TValue::Obj(vec![
            ("subj".into(), TValue::Num(r.subj.into())),
            ("pred".into(), TValue::Str(r.pred.clone())),
            ("obj".into(), TValue::Num(r.obj.into())),
        ])
    });
    TValue::Obj(vec![
        ("obj".into(), object_rows(&g.objects)),
        ("rel".into(), TValue::Arr(rels.collect())),
    ])
}

fn ag_value(g: &AgGraph) -> TValue {
    let labels = |l: &[String]| TValue::Arr(l.iter().cloned().map(TValue::Str).collect());
    let pairs = g.pairs.iter().map(|p| {
        TValue::Obj(vec![
            ("subj".into(), TValue::Num(p.subj.into())),
            ("attention".into(), labels(&p.attention)),
            ("spatial".into(), labels(&p.spatial)),
            ("contacting".into(), labels(&p.contacting)),
            ("obj".into(), TValue::Num(p.obj.into())),
        ])
    });
    TValue::Obj(vec![
        ("obj".into(), object_rows(&g.objects)),
        ("rel_pairs".into(), TValue::Arr(pairs.collect())),
    ])
}

/// The JSON data model of a graph, with keys in TOON order.
pub fn graph_to_tvalue(g: &SceneGraph) -> TValue {
    match g {
        SceneGraph::Triplet(t) => triplet_value(t),
        SceneGraph::Ag(a) => ag_value(a),
    }
}

/// The JSON data model that [`encode_graph`] writes (as `serde_json`, whose key order may be sorted).
pub fn graph_to_json_value(g: &SceneGraph) -> serde_json::Value {
    graph_to_tvalue(g).to_json()
}

/// Encodes a graph as a spec-conformant TOON v4 document (indent 2, comma delimiter, no trailing newline).
pub fn encode_graph(g: &SceneGraph) -> String {
    // A graph value is two keys deep at most, has no duplicate keys and no arrays inside arrays, so `check`
    // has nothing to reject.
    write_document(&graph_to_tvalue(g), &EncodeOptions::default())
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
