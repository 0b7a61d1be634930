//! The training error: every variant names what failed (file, line, setting) so a run that stops says why.

use std::path::PathBuf;

/// Why training (or loading what it needs) failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("failed to read or write {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: line {line}: {message}", path.display())]
    Row { path: PathBuf, line: usize, message: String },
    #[error("config {}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("model: {0}")]
    Model(#[from] sgvlm_model::Error),
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("{0}")]
    Input(String),
}

impl TrainError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.into();
        move |source| TrainError::Io { path, source }
    }
}

pub type Result<T> = std::result::Result<T, TrainError>;
