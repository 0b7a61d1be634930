//! Scene-graph types: triplet graphs (PSG/PVSG) and Action Genome pair graphs.
//!
//! Boxes are integer pixels `x1,y1,x2,y2` on a [`Canvas`] (default 640×480, the size every dataset is resized to).
//! Coordinates are `i64` so that out-of-canvas values produced by a model can be represented and reported.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The image size boxes refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
}

impl Canvas {
    pub const fn new(width: u32, height: u32) -> Self {
        Canvas { width, height }
    }

    /// Whether `b` is a valid box on this canvas: `0 ≤ x1 < x2 ≤ W` and `0 ≤ y1 < y2 ≤ H`.
    pub fn contains(&self, b: &BBox) -> bool {
        b.x1 >= 0 && b.y1 >= 0 && b.x2 > b.x1 && b.y2 > b.y1 && b.x2 <= self.width as i64 && b.y2 <= self.height as i64
    }
}

impl Default for Canvas {
    fn default() -> Self {
        Canvas::new(640, 480)
    }
}

/// An axis-aligned box in integer pixels, top-left origin, `x2`/`y2` exclusive-style (area = (x2−x1)·(y2−y1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BBox {
    pub x1: i64,
    pub y1: i64,
    pub x2: i64,
    pub y2: i64,
}

impl BBox {
    pub const fn new(x1: i64, y1: i64, x2: i64, y2: i64) -> Self {
        BBox { x1, y1, x2, y2 }
    }

    pub fn to_array(self) -> [i64; 4] {
        [self.x1, self.y1, self.x2, self.y2]
    }
}

impl From<[i64; 4]> for BBox {
    fn from(a: [i64; 4]) -> Self {
        BBox::new(a[0], a[1], a[2], a[3])
    }
}

/// One object row: `id,name,x1,y1,x2,y2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Object {
    pub id: u32,
    pub name: String,
    pub bbox: BBox,
}

/// One relation row of a triplet graph: `subj,pred,obj` (object ids).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Relation {
    pub subj: u32,
    pub pred: String,
    pub obj: u32,
}

/// A PSG/PVSG scene graph: objects with boxes and subject–predicate–object relations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TripletGraph {
    pub objects: Vec<Object>,
    pub relations: Vec<Relation>,
}

/// The three Action Genome relation families, in the column order of a `rel_pairs` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelKind {
    Attention,
    Spatial,
    Contacting,
}

impl RelKind {
    pub const ALL: [RelKind; 3] = [RelKind::Attention, RelKind::Spatial, RelKind::Contacting];

    pub fn as_str(self) -> &'static str {
        match self {
            RelKind::Attention => "attention",
            RelKind::Spatial => "spatial",
            RelKind::Contacting => "contacting",
        }
    }
}

impl fmt::Display for RelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Action Genome `rel_pairs` row: `subj,[attention…],[spatial…],[contacting…],obj`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgPair {
    pub subj: u32,
    pub attention: Vec<String>,
    pub spatial: Vec<String>,
    pub contacting: Vec<String>,
    pub obj: u32,
}

impl AgPair {
    /// The label list of one family.
    pub fn labels(&self, kind: RelKind) -> &[String] {
        match kind {
            RelKind::Attention => &self.attention,
            RelKind::Spatial => &self.spatial,
            RelKind::Contacting => &self.contacting,
        }
    }

    /// Total number of labels over the three lists (= number of atomic relations).
    pub fn label_count(&self) -> usize {
        self.attention.len() + self.spatial.len() + self.contacting.len()
    }
}

/// An Action Genome frame graph: objects (the person first by construction) and person→object pair rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgGraph {
    pub objects: Vec<Object>,
    pub pairs: Vec<AgPair>,
}

impl AgGraph {
    /// Expands pair rows into atomic triplets `(subj, "<kind>__<label>", obj)`, e.g. `attention__looking_at`,
    /// in row order, then attention, spatial, contacting within a row — the reward's internal edge representation.
    pub fn atomic_relations(&self) -> Vec<Relation> {
        let mut out = Vec::new();
        for p in &self.pairs {
            for kind in RelKind::ALL {
                for l in p.labels(kind) {
                    out.push(Relation { subj: p.subj, pred: atomic_predicate(kind, l), obj: p.obj });
                }
            }
        }
        out
    }

    /// The equivalent triplet graph over atomic relations.
    pub fn to_atomic_triplets(&self) -> TripletGraph {
        TripletGraph { objects: self.objects.clone(), relations: self.atomic_relations() }
    }
}

/// `"<kind>__<label>"`, the atomic predicate name used by the AG reward.
pub fn atomic_predicate(kind: RelKind, label: &str) -> String {
    format!("{}__{}", kind.as_str(), label)
}

/// Which TOON schema a text is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schema {
    /// PSG/PVSG: `obj[N]{id,name,x1,y1,x2,y2}:` + `rel[M]{subj,pred,obj}:`.
    Triplet,
    /// Action Genome: `obj[N]{…}:` + `rel_pairs[M]{subj,attention,spatial,contacting,obj}:`.
    Ag,
}

impl Schema {
    pub fn as_str(self) -> &'static str {
        match self {
            Schema::Triplet => "triplet",
            Schema::Ag => "ag",
        }
    }
}

impl std::str::FromStr for Schema {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "triplet" | "psg" | "pvsg" => Ok(Schema::Triplet),
            "ag" | "action-genome" | "rel_pairs" => Ok(Schema::Ag),
            other => Err(format!("unknown schema `{other}` (expected `triplet` or `ag`)")),
        }
    }
}

/// A graph of either schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "schema", rename_all = "lowercase")]
pub enum SceneGraph {
    Triplet(TripletGraph),
    Ag(AgGraph),
}

impl SceneGraph {
    pub fn schema(&self) -> Schema {
        match self {
            SceneGraph::Triplet(_) => Schema::Triplet,
            SceneGraph::Ag(_) => Schema::Ag,
        }
    }

    pub fn objects(&self) -> &[Object] {
        match self {
            SceneGraph::Triplet(g) => &g.objects,
            SceneGraph::Ag(g) => &g.objects,
        }
    }

    /// Number of relation rows (pair rows for AG).
    pub fn relation_rows(&self) -> usize {
        match self {
            SceneGraph::Triplet(g) => g.relations.len(),
            SceneGraph::Ag(g) => g.pairs.len(),
        }
    }

    /// Number of atomic relations (equal to the rows for triplet graphs).
    pub fn atomic_relation_count(&self) -> usize {
        match self {
            SceneGraph::Triplet(g) => g.relations.len(),
            SceneGraph::Ag(g) => g.pairs.iter().map(AgPair::label_count).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canvas_bounds_allow_edges() {
        let c = Canvas::default();
        assert!(c.contains(&BBox::new(0, 0, 640, 480)));
        assert!(!c.contains(&BBox::new(0, 0, 641, 480)));
        assert!(!c.contains(&BBox::new(5, 0, 5, 10)));
        assert!(!c.contains(&BBox::new(-1, 0, 5, 10)));
    }

    #[test]
    fn atomic_expansion_order() {
        let g = AgGraph {
            objects: vec![],
            pairs: vec![AgPair {
                subj: 1,
                attention: vec!["unsure".into()],
                spatial: vec!["beneath".into(), "behind".into()],
                contacting: vec!["holding".into()],
                obj: 2,
            }],
        };
        let preds: Vec<_> = g.atomic_relations().into_iter().map(|r| r.pred).collect();
        assert_eq!(preds, ["attention__unsure", "spatial__beneath", "spatial__behind", "contacting__holding"]);
    }
}
