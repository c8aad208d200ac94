//! `acceptedEpoch` and `currentEpoch` in `dataDir/version-2/`, as ZooKeeper keeps them (one
//! decimal number each). `acceptedEpoch` has a second line: the leader it was accepted from,
//! in the same file so the pair changes atomically.

use crate::StorageError;
use crate::files::Files;
use ensemble_core::Epochs;

pub const ACCEPTED: &str = "acceptedEpoch";
pub const CURRENT: &str = "currentEpoch";

/// `acceptedEpoch`'s text.
pub fn accepted_text(e: &Epochs) -> String {
    format!("{}\n{}\n", e.accepted_epoch, e.accepted_from)
}

/// `currentEpoch`'s text.
pub fn current_text(e: &Epochs) -> String {
    format!("{}\n", e.current_epoch)
}

fn lines(f: &impl Files, name: &str) -> Result<Option<Vec<String>>, StorageError> {
    match f.read(name) {
        Ok(bytes) => {
            let t = String::from_utf8(bytes).map_err(|_| bad(f, name, "not text"))?;
            Ok(Some(
                t.lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect(),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(&f.path(name), e)),
    }
}

fn bad(f: &impl Files, name: &str, what: &str) -> StorageError {
    StorageError::BadFile {
        path: f.path(name),
        reason: what.to_string(),
    }
}

/// Missing files mean a fresh server (epochs 0).
pub fn read_epochs(f: &impl Files) -> Result<Epochs, StorageError> {
    let mut e = Epochs::default();
    if let Some(lines) = lines(f, ACCEPTED)? {
        let first = lines.first().ok_or_else(|| bad(f, ACCEPTED, "empty"))?;
        e.accepted_epoch = first
            .parse()
            .map_err(|_| bad(f, ACCEPTED, "first line is not an epoch"))?;
        if let Some(from) = lines.get(1) {
            e.accepted_from = from
                .parse()
                .map_err(|_| bad(f, ACCEPTED, "second line is not a server id"))?;
        }
    }
    if let Some(lines) = lines(f, CURRENT)? {
        let first = lines.first().ok_or_else(|| bad(f, CURRENT, "empty"))?;
        e.current_epoch = first.parse().map_err(|_| bad(f, CURRENT, "not an epoch"))?;
    }
    Ok(e)
}
