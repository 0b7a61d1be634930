//! TOON encoders.
//!
//! Three layouts of the same two tables (objects, then relations or AG pairs):
//! - [`Layout::PAPER_TRIPLET`] / [`Layout::PAPER_AG`]: the paper's final training targets — PSG/PVSG unindented,
//!   AG headers indented 6 spaces and rows 8, wrapped as `<answer>\n…\n</answer>\n`;
//! - [`Layout::RAW`]: the intermediate `answer_toon` that previous-frame graphs use inside prompts — headers
//!   unindented, rows indented 2, no tags, no trailing newline;
//! - [`Layout::SFT_INDENTED`]: the first-stage SFT text (6/8 indentation with tags) that raw PSG/PVSG exports carry;
//! - and, in [`spec`], spec-conformant TOON v4 (quoting, `key: []` for empty tables, list items for AG pairs).
//!
//! Encoding writes into a caller-provided `String`, so batch encoders can reuse one buffer.

pub mod spec;

use crate::types::{AgGraph, AgPair, Object, Relation, SceneGraph, Schema, TripletGraph};

/// Where indentation and tags go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Spaces before each header line.
    pub header_indent: usize,
    /// Spaces before each row.
    pub row_indent: usize,
    /// Wrap in `<answer>\n` … `\n</answer>`.
    pub tags: bool,
    /// End with a newline (after `</answer>` when tagged).
    pub trailing_newline: bool,
}

impl Layout {
    pub const PAPER_TRIPLET: Layout = Layout { header_indent: 0, row_indent: 0, tags: true, trailing_newline: true };
    pub const PAPER_AG: Layout = Layout { header_indent: 6, row_indent: 8, tags: true, trailing_newline: true };
    pub const SFT_INDENTED: Layout = Layout { header_indent: 6, row_indent: 8, tags: true, trailing_newline: true };
    pub const RAW: Layout = Layout { header_indent: 0, row_indent: 2, tags: false, trailing_newline: false };

    /// The paper's training layout for a schema.
    pub fn paper(schema: Schema) -> Layout {
        match schema {
            Schema::Triplet => Layout::PAPER_TRIPLET,
            Schema::Ag => Layout::PAPER_AG,
        }
    }
}

pub const OBJECT_FIELDS: &str = "{id,name,x1,y1,x2,y2}:";
pub const RELATION_FIELDS: &str = "{subj,pred,obj}:";
pub const PAIR_FIELDS: &str = "{subj,attention,spatial,contacting,obj}:";

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn push_int<I: itoa::Integer>(out: &mut String, v: I) {
    out.push_str(itoa::Buffer::new().format(v));
}

fn header(out: &mut String, lay: &Layout, key: &str, n: usize, fields: &str) {
    indent(out, lay.header_indent);
    out.push_str(key);
    out.push('[');
    push_int(out, n);
    out.push(']');
    out.push_str(fields);
    out.push('\n');
}

fn object_rows(out: &mut String, lay: &Layout, objects: &[Object]) {
    header(out, lay, "obj", objects.len(), OBJECT_FIELDS);
    for o in objects {
        indent(out, lay.row_indent);
        push_int(out, o.id);
        out.push(',');
        out.push_str(&o.name);
        for v in o.bbox.to_array() {
            out.push(',');
            push_int(out, v);
        }
        out.push('\n');
    }
}

fn relation_row(out: &mut String, lay: &Layout, r: &Relation) {
    indent(out, lay.row_indent);
    push_int(out, r.subj);
    out.push(',');
    out.push_str(&r.pred);
    out.push(',');
    push_int(out, r.obj);
    out.push('\n');
}

fn pair_row(out: &mut String, lay: &Layout, p: &AgPair) {
    indent(out, lay.row_indent);
    push_int(out, p.subj);
    for list in [&p.attention, &p.spatial, &p.contacting] {
        out.push_str(",[");
        for (i, l) in list.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(l);
        }
        out.push(']');
    }
    out.push(',');
    push_int(out, p.obj);
    out.push('\n');
}

fn open(out: &mut String, lay: &Layout) {
    if lay.tags {
        out.push_str("<answer>\n");
    }
}

fn close(out: &mut String, lay: &Layout) {
    if lay.tags {
        out.push_str("</answer>");
        if lay.trailing_newline {
            out.push('\n');
        }
    } else if !lay.trailing_newline {
        // Rows end with '\n'; the raw layout has none after the last line.
        if out.ends_with('\n') {
            out.pop();
        }
    }
}

/// Appends a triplet graph in `lay` to `out`.
pub fn write_triplet(out: &mut String, g: &TripletGraph, lay: &Layout) {
    open(out, lay);
    object_rows(out, lay, &g.objects);
    header(out, lay, "rel", g.relations.len(), RELATION_FIELDS);
    for r in &g.relations {
        relation_row(out, lay, r);
    }
    close(out, lay);
}

/// Appends an AG graph in `lay` to `out`.
pub fn write_ag(out: &mut String, g: &AgGraph, lay: &Layout) {
    open(out, lay);
    object_rows(out, lay, &g.objects);
    header(out, lay, "rel_pairs", g.pairs.len(), PAIR_FIELDS);
    for p in &g.pairs {
        pair_row(out, lay, p);
    }
    close(out, lay);
}

/// Encodes a graph in `lay`.
pub fn encode(g: &SceneGraph, lay: &Layout) -> String {
    let mut out = String::with_capacity(64 + 32 * g.objects().len() + 24 * g.relation_rows());
    match g {
        SceneGraph::Triplet(t) => write_triplet(&mut out, t, lay),
        SceneGraph::Ag(a) => write_ag(&mut out, a, lay),
    }
    out
}

/// Encodes a graph in the paper's training layout for its schema.
pub fn encode_paper(g: &SceneGraph) -> String {
    encode(g, &Layout::paper(g.schema()))
}

#[cfg(test)]
mod tests;
