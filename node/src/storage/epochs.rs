//! `acceptedEpoch` and `currentEpoch` in `dataDir/version-2/`, as ZooKeeper keeps them (one
//! decimal number each). `acceptedEpoch` has a second line: the leader it was accepted from,
//! in the same file so the pair changes atomically.

use super::StorageError;
use super::codec::fsync_dir;
use ensemble_core::{Epochs, Zxid};
use std::io::Write;
use std::path::Path;

pub use ensemble_storage::epochs::{ACCEPTED, CURRENT};
use ensemble_storage::epochs::{accepted_text, current_text, current_text_through};

/// Missing files mean a fresh server (epochs 0).
pub fn read_epochs(dir: &Path) -> Result<Epochs, StorageError> {
    ensemble_storage::epochs::read_epochs(&super::fs::FsDir::new(dir))
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
    write_epochs_through(dir, old, new, None)
}

/// [`write_epochs`], `currentEpoch` naming `through`, the last zxid of the history it
/// vouches for (recovery that reads back less removes it).
pub fn write_epochs_through(
    dir: &Path,
    old: &Epochs,
    new: &Epochs,
    through: Option<Zxid>,
) -> Result<(), StorageError> {
    let mut changed = false;
    if old.accepted_epoch != new.accepted_epoch || old.accepted_from != new.accepted_from {
        write_atomic(dir, ACCEPTED, &accepted_text(new))?;
        fsync_dir(dir).map_err(|e| StorageError::io(dir, e))?;
        changed = true;
    }
    if old.current_epoch != new.current_epoch {
        let text = match through {
            Some(t) => current_text_through(new, t),
            None => current_text(new),
        };
        write_atomic(dir, CURRENT, &text)?;
        changed = true;
    }
    if changed {
        fsync_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    }
    Ok(())
}
