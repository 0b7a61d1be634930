//! How training reports progress: a small trait the loops call, so that only the binary draws progress bars, and
//! metrics as JSON lines.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError};

/// Receives progress from a training loop.
pub trait Reporter: Sync {
    /// The run has `total` steps (an estimate when it is time-bounded).
    fn start(&self, _phase: &str, _total: u64) {}
    /// A step finished; `record` is the JSON line written to the metrics file.
    fn step(&self, _step: u64, _record: &serde_json::Value) {}
    /// A line worth showing (validation, checkpoint saved).
    fn message(&self, _msg: &str) {}
    fn finish(&self) {}
}

/// Reports nothing.
pub struct Silent;
impl Reporter for Silent {}

/// Appends JSON lines to a metrics file.
pub struct MetricsLog {
    path: Option<PathBuf>,
}

impl MetricsLog {
    /// A log at `path` (its folder is created), or a log that writes nothing.
    pub fn new(path: Option<&Path>) -> Result<Self> {
        if let Some(p) = path {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
            }
        }
        Ok(Self { path: path.map(Path::to_path_buf) })
    }

    pub fn write(&self, record: &serde_json::Value) -> Result<()> {
        let Some(p) = &self.path else { return Ok(()) };
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(p).map_err(TrainError::io(p))?;
        writeln!(f, "{record}").map_err(TrainError::io(p))
    }
}
