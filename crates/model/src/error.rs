//! The crate's error type: every failure names what it was about (a file, a config field, a tensor).

use std::path::PathBuf;

/// Errors from loading, building or running the model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("failed to access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A JSON file (config, index) is malformed.
    #[error("failed to parse {path}: {message}")]
    Json { path: PathBuf, message: String },
    /// A config field is missing, has an unsupported value or is inconsistent with another field.
    #[error("config field `{field}`: {message}")]
    Config { field: String, message: String },
    /// A tensor the model needs is not in the checkpoint.
    #[error("missing tensor `{name}` (expected shape {expected:?}) in {location}")]
    MissingTensor { name: String, expected: Vec<usize>, location: String },
    /// A checkpoint tensor has the wrong shape.
    #[error("tensor `{name}` has shape {found:?}, the config expects {expected:?} (in {location})")]
    ShapeMismatch { name: String, expected: Vec<usize>, found: Vec<usize>, location: String },
    /// A checkpoint tensor has a dtype the loader does not read.
    #[error("tensor `{name}` has unsupported dtype {dtype} (in {location})")]
    UnsupportedDtype { name: String, dtype: String, location: String },
    /// The inputs handed to a forward pass are inconsistent (token counts, grid sizes, cache shapes).
    #[error("invalid input: {0}")]
    Input(String),
    /// An error from candle while computing.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl Error {
    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config { field: field.into(), message: message.into() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
