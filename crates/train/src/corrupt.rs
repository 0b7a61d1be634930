//! Corrupted previous-frame graphs for video training (paper §3, "corrupted previous graph" augmentation).
//!
//! The reference code has no such augmentation (its GRPO runs use prompts without a previous graph), so this is our
//! design. A video prompt carries the previous frame's graph; at inference that graph is the model's own earlier
//! output, with its mistakes. Training only on clean ground-truth previous graphs teaches the model to copy them.
//! With probability `rate` a prompt's previous graph is perturbed, by independent operations:
//!
//! | operation | what | default |
//! |---|---|---|
//! | drop object | each object removed with probability `drop_object` (its relations go too) | 0.15 |
//! | add object | with probability `add_object`, one or two invented objects (a vocabulary name, a random box) | 0.3 |
//! | jitter | each box edge moved by up to `jitter` × the box's width or height (clamped to the canvas) | 0.15 |
//! | relabel | each object renamed to another vocabulary name with probability `relabel` | 0.1 |
//! | drop relation | each relation removed with probability `drop_relation` | 0.2 |
//! | add relation | with probability `add_relation`, one invented relation between two objects | 0.3 |
//!
//! Object ids are renumbered 1..N afterwards, as previous graphs in prompts always are. The target answer is never
//! touched: the model must read the current image to be right. Everything is seeded: corruption `i` of a run uses
//! its own generator from `(seed, i)`.

use sgvlm_data::synth::Rng;
use sgvlm_graph::{BBox, Object, Relation, TripletGraph};

/// Corruption settings (the `[corrupt]` table of a config file).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorruptConfig {
    /// Probability that a prompt's previous graph is corrupted at all.
    pub rate: f64,
    pub drop_object: f64,
    pub add_object: f64,
    pub jitter: f64,
    pub relabel: f64,
    pub drop_relation: f64,
    pub add_relation: f64,
    /// Names and predicates invented objects and relations draw from.
    pub objects: Vec<String>,
    pub predicates: Vec<String>,
    /// Canvas of the boxes (width, height).
    pub canvas: (i64, i64),
    pub seed: u64,
}

impl Default for CorruptConfig {
    fn default() -> Self {
        Self {
            rate: 0.5,
            drop_object: 0.15,
            add_object: 0.3,
            jitter: 0.15,
            relabel: 0.1,
            drop_relation: 0.2,
            add_relation: 0.3,
            objects: Vec::new(),
            predicates: Vec::new(),
            canvas: (640, 480),
            seed: 0,
        }
    }
}

/// Uniform in `[0, 1)`.
fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn pick<'a>(rng: &mut Rng, items: &'a [String]) -> Option<&'a String> {
    (!items.is_empty()).then(|| &items[rng.range(0, items.len() as i64 - 1) as usize])
}

/// `(lo, hi)` sorted, inside `[0, limit]`, and at least one pixel apart.
fn ordered(a: i64, b: i64, limit: i64) -> (i64, i64) {
    let (lo, hi) = (a.min(b), a.max(b));
    if hi > lo {
        (lo, hi)
    } else if hi < limit {
        (lo, hi + 1)
    } else {
        (lo - 1, hi)
    }
}

/// Corruption number `index` of `g` (unchanged with probability `1 − rate`).
pub fn corrupt(g: &TripletGraph, cfg: &CorruptConfig, index: u64) -> TripletGraph {
    let mut rng = Rng::for_item(cfg.seed, 0xC0_44_07, index);
    if !rng.chance(cfg.rate) {
        return g.clone();
    }
    let (cw, ch) = cfg.canvas;
    let mut objects: Vec<Object> = Vec::new();
    for o in &g.objects {
        if rng.chance(cfg.drop_object) {
            continue;
        }
        let mut o = o.clone();
        if rng.chance(cfg.relabel) {
            let others: Vec<String> = cfg.objects.iter().filter(|n| **n != o.name).cloned().collect();
            if let Some(n) = pick(&mut rng, &others) {
                o.name = n.clone();
            }
        }
        if cfg.jitter > 0.0 {
            let b = o.bbox;
            let (w, h) = ((b.x2 - b.x1).max(1) as f64, (b.y2 - b.y1).max(1) as f64);
            let mut shift = |v: i64, span: f64, hi: i64| {
                let d = ((unit(&mut rng) * 2.0 - 1.0) * cfg.jitter * span).round() as i64;
                (v + d).clamp(0, hi)
            };
            let (x1, y1, x2, y2) = (shift(b.x1, w, cw), shift(b.y1, h, ch), shift(b.x2, w, cw), shift(b.y2, h, ch));
            let (x1, x2) = ordered(x1, x2, cw);
            let (y1, y2) = ordered(y1, y2, ch);
            o.bbox = BBox::new(x1, y1, x2, y2);
        }
        objects.push(o);
    }
    if rng.chance(cfg.add_object) {
        for _ in 0..rng.range(1, 2) {
            let Some(name) = pick(&mut rng, &cfg.objects).cloned() else { break };
            let w = rng.range(cw / 16, cw / 3).max(1);
            let h = rng.range(ch / 16, ch / 3).max(1);
            let x1 = rng.range(0, cw - w);
            let y1 = rng.range(0, ch - h);
            objects.push(Object { id: 0, name, bbox: BBox::new(x1, y1, x1 + w, y1 + h) });
        }
    }
    // Old id → new id (invented objects have id 0 and no relations yet).
    let kept: Vec<u32> = objects.iter().map(|o| o.id).collect();
    let new_id = |old: u32| kept.iter().position(|&k| k == old && old != 0).map(|p| p as u32 + 1);
    let mut relations: Vec<Relation> = g
        .relations
        .iter()
        .filter_map(|r| Some(Relation { subj: new_id(r.subj)?, pred: r.pred.clone(), obj: new_id(r.obj)? }))
        .filter(|_| !rng.chance(cfg.drop_relation))
        .collect();
    for (i, o) in objects.iter_mut().enumerate() {
        o.id = i as u32 + 1;
    }
    let n = objects.len() as i64;
    if n >= 2 && rng.chance(cfg.add_relation) {
        // A few tries to find a relation the graph does not have yet.
        for _ in 0..8 {
            let s = rng.range(1, n) as u32;
            let mut t = rng.range(1, n - 1) as u32;
            if t >= s {
                t += 1;
            }
            let Some(p) = pick(&mut rng, &cfg.predicates) else { break };
            let r = Relation { subj: s, pred: p.clone(), obj: t };
            if !relations.contains(&r) {
                relations.push(r);
                break;
            }
        }
    }
    TripletGraph { objects, relations }
}

/// Where a video prompt's previous graph sits: after this line, up to the next blank line.
pub const PREV_MARKER: &str = "Previous frame scene graph (TOON):\n";

/// Corrupts the previous-frame graph inside a PVSG prompt (its raw TOON block after [`PREV_MARKER`]); prompts
/// without one are returned unchanged.
pub fn corrupt_prompt(user: &str, cfg: &CorruptConfig, index: u64) -> String {
    let Some(at) = user.find(PREV_MARKER) else { return user.to_string() };
    let start = at + PREV_MARKER.len();
    let end = user[start..].find("\n\n").map_or(user.len(), |i| start + i);
    let parsed = sgvlm_graph::lenient::parse_completion(
        &user[start..end],
        sgvlm_graph::Schema::Triplet,
        &sgvlm_graph::StrictConfig::default(),
    );
    let g = TripletGraph {
        objects: parsed
            .objects
            .iter()
            .map(|o| Object {
                id: o.id.max(0) as u32,
                name: o.name.to_string(),
                bbox: BBox::new(o.bbox[0], o.bbox[1], o.bbox[2], o.bbox[3]),
            })
            .collect(),
        relations: parsed
            .relations
            .iter()
            .map(|r| Relation { subj: r.subj.max(0) as u32, pred: r.pred.to_string(), obj: r.obj.max(0) as u32 })
            .collect(),
    };
    let text = sgvlm_data::prompts::pvsg_prev_text(&corrupt(&g, cfg, index));
    format!("{}{}{}", &user[..start], text, &user[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> TripletGraph {
        let o = |id, name: &str, b: [i64; 4]| Object { id, name: name.into(), bbox: BBox::new(b[0], b[1], b[2], b[3]) };
        TripletGraph {
            objects: vec![
                o(1, "adult", [10, 10, 100, 300]),
                o(2, "ball", [120, 50, 150, 80]),
                o(3, "table", [200, 250, 400, 330]),
                o(4, "cup", [220, 220, 240, 250]),
            ],
            relations: vec![
                Relation { subj: 1, pred: "holding".into(), obj: 2 },
                Relation { subj: 4, pred: "on".into(), obj: 3 },
            ],
        }
    }

    fn cfg() -> CorruptConfig {
        CorruptConfig {
            objects: vec!["adult".into(), "ball".into(), "table".into(), "cup".into(), "plant".into()],
            predicates: vec!["holding".into(), "on".into(), "in".into()],
            ..CorruptConfig::default()
        }
    }

    fn valid(g: &TripletGraph, canvas: (i64, i64)) -> bool {
        let ids_ok = g.objects.iter().enumerate().all(|(i, o)| o.id == i as u32 + 1);
        let boxes_ok = g.objects.iter().all(|o| {
            let b = o.bbox;
            0 <= b.x1 && b.x1 < b.x2 && b.x2 <= canvas.0 && 0 <= b.y1 && b.y1 < b.y2 && b.y2 <= canvas.1
        });
        let n = g.objects.len() as u32;
        let rels_ok =
            g.relations.iter().all(|r| r.subj != r.obj && (1..=n).contains(&r.subj) && (1..=n).contains(&r.obj));
        ids_ok && boxes_ok && rels_ok
    }

    #[test]
    fn prompts_get_their_previous_graph_corrupted_and_nothing_else() {
        let prev = sgvlm_data::prompts::pvsg_prev_text(&graph());
        let user = sgvlm_data::prompts::pvsg_with_prev(&prev);
        let c = CorruptConfig { rate: 1.0, drop_object: 0.0, add_object: 1.0, ..cfg() };
        let out = corrupt_prompt(&user, &c, 0);
        assert_ne!(out, user);
        let (head, tail) = user.split_once(&prev).unwrap();
        assert!(out.starts_with(head) && out.ends_with(tail), "only the graph block changes");
        let kept = CorruptConfig { rate: 0.0, ..c };
        assert_eq!(corrupt_prompt(&user, &kept, 0), user);
        assert_eq!(corrupt_prompt("no previous graph here", &cfg(), 0), "no previous graph here");
    }

    #[test]
    fn rate_zero_keeps_the_graph_and_rate_one_changes_it() {
        let g = graph();
        let off = CorruptConfig { rate: 0.0, ..cfg() };
        assert!((0..50).all(|i| corrupt(&g, &off, i) == g));
        let on = CorruptConfig { rate: 1.0, ..cfg() };
        let changed = (0..50).filter(|&i| corrupt(&g, &on, i) != g).count();
        assert!(changed >= 45, "only {changed} of 50 corrupted");
    }

    #[test]
    fn corrupted_graphs_stay_well_formed_and_are_seeded() {
        let g = graph();
        let c = CorruptConfig { rate: 1.0, drop_object: 0.4, add_object: 1.0, add_relation: 1.0, ..cfg() };
        for i in 0..200 {
            let out = corrupt(&g, &c, i);
            assert!(valid(&out, c.canvas), "corruption {i} is malformed: {out:?}");
            assert_eq!(out, corrupt(&g, &c, i));
        }
        assert_ne!(corrupt(&g, &c, 1), corrupt(&g, &CorruptConfig { seed: 9, ..c.clone() }, 1));
    }

    #[test]
    fn each_operation_alone_does_what_it_says() {
        let g = graph();
        let none = CorruptConfig {
            rate: 1.0,
            drop_object: 0.0,
            add_object: 0.0,
            jitter: 0.0,
            relabel: 0.0,
            drop_relation: 0.0,
            add_relation: 0.0,
            ..cfg()
        };
        assert_eq!(corrupt(&g, &none, 0), g);
        let drop_all = CorruptConfig { drop_object: 1.0, ..none.clone() };
        assert!(corrupt(&g, &drop_all, 0).objects.is_empty() && corrupt(&g, &drop_all, 0).relations.is_empty());
        let relabel = corrupt(&g, &CorruptConfig { relabel: 1.0, ..none.clone() }, 0);
        assert!(relabel.objects.iter().zip(&g.objects).all(|(a, b)| a.name != b.name && a.bbox == b.bbox));
        let jitter = corrupt(&g, &CorruptConfig { jitter: 0.5, ..none.clone() }, 3);
        assert!(jitter.objects.iter().zip(&g.objects).any(|(a, b)| a.bbox != b.bbox));
        assert!(jitter.objects.iter().zip(&g.objects).all(|(a, b)| a.name == b.name));
        let add = corrupt(&g, &CorruptConfig { add_object: 1.0, add_relation: 1.0, ..none.clone() }, 0);
        assert!(add.objects.len() > g.objects.len() && add.relations.len() == 3);
        let drop_rel = corrupt(&g, &CorruptConfig { drop_relation: 1.0, ..none }, 0);
        assert!(drop_rel.relations.is_empty() && drop_rel.objects == g.objects);
    }
}
