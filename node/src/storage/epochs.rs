//! `acceptedEpoch` and `currentEpoch` in `dataDir/version-2/`, as ZooKeeper keeps them (one
//! decimal number each). `acceptedEpoch` has a second line: the leader it was accepted from,
//! in the same file so the pair changes atomically.

use super::StorageError;
use super::codec::fsync_dir;
use ensemble_core::Epochs;
use std::io::Write;
use std::path::Path;

pub const ACCEPTED: &str = "acceptedEpoch";
pub const CURRENT: &str = "currentEpoch";

fn read_lines(path: &Path) -> Result<Option<Vec<String>>, StorageError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(
            t.lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

fn bad(path: &Path, what: &str) -> StorageError {
    StorageError::BadFile {
        path: path.to_path_buf(),
        reason: what.to_string(),
    }
}

/// Missing files mean a fresh server (epochs 0).
pub fn read_epochs(dir: &Path) -> Result<Epochs, StorageError> {
    let mut e = Epochs::default();
    let ap = dir.join(ACCEPTED);
    if let Some(lines) = read_lines(&ap)? {
        let first = lines.first().ok_or_else(|| bad(&ap, "empty"))?;
        e.accepted_epoch = first
            .parse()
            .map_err(|_| bad(&ap, "first line is not an epoch"))?;
        if let Some(from) = lines.get(1) {
            e.accepted_from = from
                .parse()
                .map_err(|_| bad(&ap, "second line is not a server id"))?;
        }
    }
    let cp = dir.join(CURRENT);
    if let Some(lines) = read_lines(&cp)? {
        let first = lines.first().ok_or_else(|| bad(&cp, "empty"))?;
        e.current_epoch = first.parse().map_err(|_| bad(&cp, "not an epoch"))?;
    }
    Ok(e)
}

fn write_atomic(dir: &Path, name: &str, text: &str) -> Result<(), StorageError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let io = |e| StorageError::io(&tmp, e);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(|e| StorageError::io(&path, e))?;
    Ok(())
}

/// Durably write what changed; acceptedEpoch first, as ZooKeeper orders them (a crash between
/// the two leaves acceptedEpoch ahead, which is the safe side).
pub fn write_epochs(dir: &Path, old: &Epochs, new: &Epochs) -> Result<(), StorageError> {
    let mut changed = false;
    if old.accepted_epoch != new.accepted_epoch || old.accepted_from != new.accepted_from {
        write_atomic(
            dir,
            ACCEPTED,
            &format!("{}\n{}\n", new.accepted_epoch, new.accepted_from),
        )?;
        fsync_dir(dir).map_err(|e| StorageError::io(dir, e))?;
        changed = true;
    }
    if old.current_epoch != new.current_epoch {
        write_atomic(dir, CURRENT, &format!("{}\n", new.current_epoch))?;
        changed = true;
    }
    if changed {
        fsync_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    }
    Ok(())
}
