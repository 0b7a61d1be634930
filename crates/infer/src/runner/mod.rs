//! Dataset runners over any [`Backend`](crate::Backend): `infer` (the reference's GT-prompt script: every row's
//! own prompt, consecutive batches, resumable) and `video` (the GEN-prompt script: frame k of every video forms wave
//! k, and each later frame's prompt carries the previous frame's predicted or GT graph).
//!
//! Both read MS-SWIFT rows ([`rows`]), post-process answers with the reference's [`finalize_vl_prediction`] and
//! write the reference's output rows, which `sgvlm eval` reads. `gen_time_sec` is the wall time of one
//! `Backend::generate` call divided by the number of requests in it, as the reference measures it. Progress goes
//! through the [`Progress`] trait so that only the binary draws bars.

mod batch;
pub mod finalize;
mod frames;
mod infer;
pub mod resume;
pub mod rows;
pub mod template;
mod video;

pub use finalize::{finalize_vl_prediction, has_obj_header};
pub use frames::{frame_rows, FramesDataset};
pub use infer::{run_infer, InferSummary};
pub use rows::{read_rows, InputRow, OutputRow, Sample};
pub use video::{journal_path, run_video, PrevSource, VideoSummary};

use crate::GenParams;

/// Settings shared by the runners.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Requests per `Backend::generate` call (the reference's `--batch-size`; its README runs use 64).
    pub batch_size: usize,
    pub params: GenParams,
    /// Written as every row's `model_name` (the reference's run name).
    pub model_name: String,
    /// Ask again with the response prefix `obj[` when an answer has no object header (`--auto-obj-prefix-fallback`).
    pub obj_prefix_fallback: bool,
}

/// Receives progress; the default methods ignore it.
pub trait Progress: Sync {
    /// The number of rows to process, and how many of them were already done before this run.
    fn start(&self, _total: u64, _done: u64) {}
    /// `n` more rows are finished.
    fn advance(&self, _n: u64) {}
}

/// A [`Progress`] that reports nothing.
pub struct Silent;

impl Progress for Silent {}
