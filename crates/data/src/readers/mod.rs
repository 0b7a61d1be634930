//! Dataset readers (`ag`, `psg` rows, `psg_json` official file, `psg_parquet` Hub rows, `pvsg`): official files → raw per-sample graphs in native pixels (before scaling and cleaning).
//!
//! One file per dataset. A bad record never stops a run: it becomes a [`RecordError`] naming the file and
//! record, and the caller counts it by reason; only an unreadable top-level file is a [`ReadError`].

pub mod ag;
pub mod psg;
pub mod psg_json;
pub mod psg_parquet;
pub mod pvsg;

use std::path::{Path, PathBuf};

/// The two output splits (PVSG `val` and AG `val` are written as test and train respectively by the readers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// One record that could not be used; the run goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record `{record}`: {what}")]
pub struct RecordError {
    pub record: String,
    pub what: String,
}

/// A top-level input that could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("failed to read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to decode {}", path.display())]
    Pickle {
        path: PathBuf,
        #[source]
        source: crate::pickle::PickleError,
    },
    #[error("{}: {what}", path.display())]
    Shape { path: PathBuf, what: String },
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, ReadError> {
    std::fs::read(path).map_err(|source| ReadError::Io { path: path.to_owned(), source })
}
