//! # sgvlm-eval
//!
//! Scoring scene graphs: the geometry and assignment every score shares ([`geometry`], [`assign`]), the GRPO
//! rewards of the paper (13 functions: 8 weighted rewards and 5 diagnostics, both schemas), the strict and
//! LLM-judged PSG/PVSG evaluation, the Action Genome SGDET metrics, and reports. Each reproduces the reference
//! implementation (`paper` protocol); where the reference is wrong a corrected `sound` protocol is offered and every
//! difference is documented.
//!
//! It reads graphs through `sgvlm-graph`'s parsers and knows nothing of images, models or datasets.

pub mod ag_sgdet;
pub mod assign;
pub mod geometry;
pub mod protocol;
pub mod pynum;
pub mod record;
pub mod strict_eval;

pub use protocol::Protocol;
pub use record::{EvalRecord, RecordError};
