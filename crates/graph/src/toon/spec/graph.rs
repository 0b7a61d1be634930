//! Scene graphs in the JSON data model that [`super::encode_graph`] writes.

use super::{write_document, EncodeOptions, TValue};
use crate::types::{AgGraph, Object, SceneGraph, TripletGraph};

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
    TValue::Obj(vec![("obj".into(), object_rows(&g.objects)), ("rel".into(), TValue::Arr(rels.collect()))])
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
    TValue::Obj(vec![("obj".into(), object_rows(&g.objects)), ("rel_pairs".into(), TValue::Arr(pairs.collect()))])
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
