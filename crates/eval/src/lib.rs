//! # sgvlm-eval
//!
//! Scoring scene graphs: the geometry and assignment every score shares ([`geometry`], [`assign`]), the GRPO
//! rewards of the paper (13 functions: 8 weighted rewards and 5 diagnostics, both schemas), the strict and
//! LLM-judged PSG/PVSG evaluation, the Action Genome SGDET metrics and per-predicate statistics (which
//! `sgvlm-report` turns into reports). Each reproduces the reference implementation (`paper` protocol); where the
//! reference is wrong a corrected `sound` protocol is offered and every difference is documented.
//!
//! It reads graphs through `sgvlm-graph`'s parsers and knows nothing of images, models or datasets.
//!
//! Evaluation today: [`strict_eval`] (per-sample PSG/PVSG metrics and their [`strict_eval::Summary`]),
//! [`soft_eval`] (the same with an LLM [`judge`] deciding disputed labels and predicates) and
//! [`ag_sgdet`] (classical AG R@K/P@K/F1@K/mR@K and [`ag_sgdet::AgSummary`]), both under a [`Protocol`]; rows are
//! read as [`EvalRecord`]s and scored in parallel with rayon. [`pynum`] holds the NumPy/Python numerics the
//! reference's figures depend on (pairwise sums, `round`).

pub mod ag_sgdet;
pub mod assign;
pub mod geometry;
pub mod judge;
pub mod protocol;
pub mod pynum;
pub mod record;
pub mod rewards;
pub mod soft_eval;
pub mod strict_eval;

pub use protocol::Protocol;
pub use record::{EvalRecord, RecordError};
