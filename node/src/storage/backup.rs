//! Backup and restore of a server's state as one snapshot file.
//!
//! * [`backup_from_files`] (`ensemble snapshot CONFIG --out FILE`): the state the data dir's
//!   files hold — the newest valid snapshot with every logged txn after it applied, as
//!   ZooKeeper loads its database at start — read without changing anything, so it works
//!   beside a running server (a log record being written is a torn tail, left out).
//! * [`write_backup`]: a snapshot the caller already has (`DataTree::to_snapshot` on the core
//!   thread, for a live backup such as the AdminServer's `snapshot` command) to a file.
//! * [`restore`] (`ensemble restore CONFIG... FILE`, every server of a stopped ensemble, each
//!   in turn once all were checked: `tools::restore`): the file checked as
//!   recovery checks a snapshot, the current `version-2` directories moved aside (never
//!   deleted), and the backup installed as the only snapshot with an empty log, so the server
//!   starts at the backup's zxid. The AdminServer's `restore` can call it once its core is
//!   stopped.
//!
//! A backup file is a snapshot file (plain, or compressed as its name ends: `.gz`, `.snappy`,
//! `.zst`), so `ensemble dump-snapshot` and `verify` read it too.

use super::StorageError;
use super::compression::SnapshotCompression;
use super::dump::load_snapshot;
use super::epochs::{read_epochs, write_epochs};
use super::log::{list_logs, scan_file};
use super::snapshot::{SnapshotFileWriter, list_snapshots, read_snapshot, write_snapshot_with};
use ensemble_core::tree::{DataTree, TreeOptions};
use ensemble_core::{Epochs, Zxid};
use std::path::{Path, PathBuf};

/// The compression a backup file's name asks for (`.gz`, `.snappy`, `.zst`; else none).
pub fn compression_for(out: &Path) -> SnapshotCompression {
    out.extension()
        .and_then(|e| e.to_str())
        .and_then(SnapshotCompression::from_extension)
        .unwrap_or_default()
}

/// The state a data dir's files hold, read-only: the newest snapshot that reads back, then
/// every logged txn after it, up to the first damaged record. Returns the tree and notes for
/// the operator (a snapshot skipped, a torn tail left out).
pub fn load_state(
    snap_dir: &Path,
    log_dir: &Path,
    opts: TreeOptions,
) -> Result<(DataTree, Vec<String>), StorageError> {
    let mut notes = Vec::new();
    let mut tree = None;
    for (zxid, path) in list_snapshots(snap_dir)? {
        match read_snapshot(&path, zxid)
            .and_then(|b| DataTree::from_snapshot(&b, opts).map_err(|e| e.to_string()))
        {
            Ok(t) => {
                tree = Some(t);
                break;
            }
            Err(why) => notes.push(format!("{}: {why}; using an older one", path.display())),
        }
    }
    let mut tree = tree.unwrap_or_else(|| DataTree::new(opts));
    let base = tree.last_zxid();
    let mut files = list_logs(log_dir)?;
    if let Some(pivot) = files.iter().rposition(|(start, _)| *start <= base) {
        files.drain(..pivot);
    }
    let mut last: Option<Zxid> = None;
    for (_, path) in &files {
        let scan = scan_file(path, last, Some(base))?;
        for (_, txn) in &scan.txns {
            tree.apply(txn);
        }
        if scan.last.is_some() {
            last = scan.last;
        }
        if let Some(d) = scan.damage {
            if scan.valid_after_damage.is_some() {
                return Err(StorageError::CorruptLog {
                    path: path.clone(),
                    offset: d.offset,
                    reason: d.reason,
                });
            }
            notes.push(format!(
                "{}: the log ends at offset {} ({}); nothing after it is included",
                path.display(),
                d.offset,
                d.reason
            ));
            break;
        }
    }
    Ok((tree, notes))
}

/// Write `snapshot` (the bytes of `DataTree::to_snapshot` at `zxid`) to `out` durably,
/// compressed as `out`'s name asks; returns its path.
pub fn write_backup(out: &Path, zxid: Zxid, snapshot: &[u8]) -> Result<PathBuf, StorageError> {
    let mut w = SnapshotFileWriter::create_at(out, zxid, compression_for(out))?;
    w.push(snapshot)?;
    w.finish()
}

/// `ensemble snapshot`: the state of the data dir's files to `out`. Returns its zxid, the
/// number of znodes and the notes of [`load_state`].
/// `opts` are the server's (its txns apply as they did there: which ACL schemes are valid).
pub fn backup_from_files(
    snap_dir: &Path,
    log_dir: &Path,
    out: &Path,
    opts: TreeOptions,
) -> Result<(Zxid, usize, Vec<String>), StorageError> {
    let (tree, notes) = load_state(snap_dir, log_dir, opts)?;
    let zxid = tree.last_zxid();
    write_backup(out, zxid, &tree.to_snapshot())?;
    Ok((zxid, tree.paths().count(), notes))
}

/// What [`restore`] did.
#[derive(Debug)]
pub struct Restored {
    pub zxid: Zxid,
    pub znodes: usize,
    pub snapshot: PathBuf,
    /// Where the previous `version-2` directories went.
    pub moved_aside: Vec<PathBuf>,
}

/// Install the backup `file` into a stopped server's `snap_dir`/`log_dir` (its `version-2`
/// directories). The caller makes sure the server is stopped. The epochs stay at least what
/// they were (a server never goes back to an older epoch) and at least the backup's.
pub fn restore(
    snap_dir: &Path,
    log_dir: &Path,
    file: &Path,
    method: SnapshotCompression,
) -> Result<Restored, StorageError> {
    // Checked before anything is touched.
    let (zxid, tree) = load_snapshot(file)?;
    let znodes = tree.paths().count();
    let data = tree.to_snapshot();
    drop(tree);
    let old_epochs = if snap_dir.is_dir() {
        read_epochs(snap_dir)?
    } else {
        Epochs::default()
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut moved_aside = Vec::new();
    for dir in [snap_dir, log_dir] {
        if !dir.is_dir() || moved_aside.iter().any(|(from, _)| from == dir) {
            continue;
        }
        let mut aside = dir.as_os_str().to_owned();
        aside.push(format!(".before-restore-{stamp}"));
        let aside = PathBuf::from(aside);
        std::fs::rename(dir, &aside).map_err(|e| StorageError::io(dir, e))?;
        moved_aside.push((dir.to_path_buf(), aside));
    }
    for dir in [snap_dir, log_dir] {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        if let Some(parent) = dir.parent() {
            super::codec::fsync_dir(parent).map_err(|e| StorageError::io(parent, e))?;
        }
    }
    let snapshot = write_snapshot_with(snap_dir, zxid, &data, method)?;
    let new_epochs = Epochs {
        accepted_epoch: old_epochs.accepted_epoch.max(zxid.epoch()),
        accepted_from: old_epochs.accepted_from,
        current_epoch: old_epochs.current_epoch.max(zxid.epoch()),
    };
    write_epochs(snap_dir, &Epochs::default(), &new_epochs)?;
    Ok(Restored {
        zxid,
        znodes,
        snapshot,
        moved_aside: moved_aside.into_iter().map(|(_, a)| a).collect(),
    })
}
