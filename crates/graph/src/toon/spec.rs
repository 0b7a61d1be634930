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

mod graph;
mod text;
mod value;

pub use graph::{encode_graph, graph_to_json_value, graph_to_tvalue};
pub use text::{needs_quotes, push_number};
use text::{push_key, push_string};
pub use value::TValue;

/// Deepest nesting [`encode_value`] accepts (the root is depth 0).
pub const MAX_DEPTH: usize = 256;

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
        EncodeOptions { indent: 2, delimiter: Delimiter::Comma }
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
        return Err(SpecError::Unsupported(format!("nesting deeper than {MAX_DEPTH}")));
    }
    match v {
        TValue::Arr(items) => {
            if in_array
                && !items.is_empty()
                && matches!(shape(&items.iter().collect::<Vec<_>>()), Some(Shape::Group(_)))
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
            fields.iter().try_for_each(|(_, x)| check(x, depth + 1, false))
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
    let mut w = Writer { out: String::new(), opts, delim: opts.delimiter.as_char() };
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
        self.out.extend(std::iter::repeat_n(' ', depth * self.opts.indent));
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

#[cfg(test)]
mod tests;
