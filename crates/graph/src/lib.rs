//! # sgvlm-graph
//!
//! The scene-graph layer of sgvlm: the types a model's output describes, and every text format and parser around
//! them. It owns
//! - the types: [`TripletGraph`] (PSG/PVSG objects + subject–predicate–object relations) and [`AgGraph`] (Action
//!   Genome person→object pairs with attention/spatial/contacting label lists), on a [`Canvas`];
//! - TOON encoders in the paper's layouts and spec-conformant TOON ([`toon`]), and the R1-SGG JSON form;
//! - the parsers of the reference implementation, each separate because each behaves differently:
//!   the strict validity gate ([`strict`]), the reward's lenient parser ([`lenient`]), the evaluation parsers;
//! - answer extraction shared by all of them ([`answer`]) and the Python text semantics they rely on ([`pytext`]);
//! - the incremental validator that constrained decoding drives ([`incremental`]).
//!
//! It knows nothing of images, models, metrics or datasets.
//!
//! ```
//! use sgvlm_graph::{strict, toon, StrictConfig};
//! let text = "<answer>\nobj[2]{id,name,x1,y1,x2,y2}:\n1,person,10,10,200,400\n2,horse,150,200,600,470\n\
//!             rel[1]{subj,pred,obj}:\n1,riding,2\n</answer>\n";
//! let g = strict::parse_triplet(text, &StrictConfig::default()).unwrap();
//! assert_eq!(g.relations[0].pred, "riding");
//! assert_eq!(toon::encode_paper(&g.clone().into()), text);
//! let bad = text.replace("obj[2]", "obj[3]");
//! let err = strict::parse_triplet(&bad, &StrictConfig::default()).unwrap_err();
//! assert_eq!(err.to_string(), "line 2: header declares 3 objects but 2 object rows follow");
//! ```

pub mod ag_classical;
pub mod answer;
pub mod eval_parse;
pub mod incremental;
pub mod json;
pub mod label;
pub mod lenient;
pub mod lex;
pub mod pytext;
pub mod strict;
pub mod toon;
mod types;
pub mod vocab;

pub use incremental::{Status, Validator, ValidatorConfig, Vocab};
pub use strict::{StrictConfig, StrictError, StrictErrorKind};
pub use types::{
    atomic_predicate, AgGraph, AgPair, BBox, Canvas, Object, RelKind, Relation, SceneGraph, Schema, TripletGraph,
};

impl From<TripletGraph> for SceneGraph {
    fn from(g: TripletGraph) -> Self {
        SceneGraph::Triplet(g)
    }
}

impl From<AgGraph> for SceneGraph {
    fn from(g: AgGraph) -> Self {
        SceneGraph::Ag(g)
    }
}
