//! Human-readable rendering of a parsed graph.

use sgvlm_graph::{Object, RelKind, SceneGraph};
use std::fmt::Write;

fn object_name(objects: &[Object], id: u32) -> &str {
    objects.iter().find(|o| o.id == id).map(|o| o.name.as_str()).unwrap_or("?")
}

/// A table of objects followed by one line per relation (`subject#id —pred→ object#id`).
pub fn table(g: &SceneGraph) -> String {
    let objects = g.objects();
    let mut s = String::new();
    let name_w = objects.iter().map(|o| o.name.chars().count()).max().unwrap_or(4).max(4);
    let _ = writeln!(s, "Objects ({})", objects.len());
    let _ = writeln!(s, "  {:>3}  {:<name_w$}  {:>4} {:>4} {:>4} {:>4}", "id", "name", "x1", "y1", "x2", "y2");
    for o in objects {
        let b = o.bbox;
        let _ = writeln!(s, "  {:>3}  {:<name_w$}  {:>4} {:>4} {:>4} {:>4}", o.id, o.name, b.x1, b.y1, b.x2, b.y2);
    }
    match g {
        SceneGraph::Triplet(t) => {
            let _ = writeln!(s, "Relations ({})", t.relations.len());
            for r in &t.relations {
                let _ = writeln!(
                    s,
                    "  {}#{} --{}--> {}#{}",
                    object_name(objects, r.subj),
                    r.subj,
                    r.pred,
                    object_name(objects, r.obj),
                    r.obj
                );
            }
        }
        SceneGraph::Ag(a) => {
            let atomic: usize = a.pairs.iter().map(|p| p.label_count()).sum();
            let _ = writeln!(s, "Pairs ({}, {} atomic relations)", a.pairs.len(), atomic);
            for p in &a.pairs {
                let lists: Vec<String> =
                    RelKind::ALL.iter().map(|&k| format!("{}=[{}]", k, p.labels(k).join(","))).collect();
                let _ = writeln!(
                    s,
                    "  {}#{} -> {}#{}  {}",
                    object_name(objects, p.subj),
                    p.subj,
                    object_name(objects, p.obj),
                    p.obj,
                    lists.join(" ")
                );
            }
        }
    }
    s
}
