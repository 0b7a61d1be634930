//! # sgvlm-data
//!
//! Turns the official PSG, PVSG and Action Genome files into the paper's training and test sets. It owns
//! - the prompts, byte-exact with the reference, kept as text data ([`prompts`]);
//! - canonical preprocessing: box scaling to 640×480 with round-half-to-even ([`scale`]) and the dataset-build
//!   cleaners that repair, renumber and count ([`clean`]);
//! - a safe pickle reader for Action Genome's numpy-holding pickles ([`pickle`]) and the dataset readers
//!   ([`readers`]: PSG official `psg.json`, R1-SGG rows as JSON or Hub Parquet, PVSG json + id masks, Action
//!   Genome pickles);
//! - 640×480 image preprocessing ([`preprocess`]) and the resumable `prepare` pipeline ([`prepare`]);
//! - synthetic scenes in all three formats, with a minimal pickle writer ([`synth`], [`pickle::write`](mod@pickle::write));
//! - the Action Genome sample chain: previous-graph prompts, cleaning, zero-relation removal ([`sequence`]);
//! - MS-SWIFT SFT/GRPO rows, byte-identical to the reference's `json.dumps` ([`export`]);
//! - PVSG frame thinning, BaseAnnot / MaxInfo / PSFR, with Table-4 statistics ([`thin`]);
//! - JSON vs TOON token statistics of Table 3, tokenizer-agnostic ([`tokens`]).
//!
//! It knows the graph types and TOON layouts from `sgvlm-graph`, and nothing of models, training or metrics.
//!
//! ```
//! use sgvlm_data::{clean, prompts};
//! let raw = "obj[2]{id,name,x1,y1,x2,y2}:\n  1,adult,0,0,10,10\n  2,cake,5,5,20,20\nrel[2]{subj,pred,obj}:\n  \
//!            1,looking-at,2\n  1,looking-at,2";
//! let c = clean::clean_triplet_text(raw, false);
//! assert_eq!(c.stats.relations_duplicate, 1);
//! assert!(c.text.ends_with("rel[1]{subj,pred,obj}:\n1,looking-at,2\n</answer>\n"));
//! assert!(prompts::pvsg_with_prev(raw).contains("Previous frame scene graph (TOON):\nobj[2]"));
//! ```

pub mod clean;
pub mod export;
pub mod pickle;
pub mod prepare;
pub mod preprocess;
pub mod prompts;
pub mod readers;
pub mod scale;
pub mod sequence;
pub mod synth;
pub mod thin;
pub mod tokens;
