//! Storage errors, each naming the file it is about.

use ensemble_core::Zxid;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: corrupt at offset {offset}: {reason}; valid data follows, so this is not a torn \
         tail and the server will not start (move the file aside to drop everything from there on)"
    )]
    CorruptLog {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("txn {zxid} appended after {last}: the log must grow in zxid order")]
    Order { zxid: Zxid, last: Zxid },
    #[error("encoding: {0}")]
    Encode(String),
    #[error("the txn log failed earlier: {0}")]
    Failed(String),
    #[error("storage threads are gone")]
    Closed,
}

impl StorageError {
    pub fn io(path: &Path, source: std::io::Error) -> StorageError {
        StorageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
