//! A server's recovery at start: what the node's `Storage::open` and a restarting simulated
//! server both run. Temporaries of unfinished snapshots are removed; the epochs are read; the
//! newest snapshot whose checksum verifies is taken, falling back to older ones; the log after
//! it is scanned, a torn tail cut off, corruption before valid records refused.

use crate::StorageError;
use crate::epochs::{CURRENT, read_epochs};
use crate::files::Files;
use crate::log::{Tail, is_misdirect, recover_after_with};
use crate::snapshot::{check_name, parse_snapshot_name};
use ensemble_core::{Recovered, RecoveredSnapshot, Txn, Zxid};

/// What recovery found, with anything the operator should hear about.
#[derive(Debug, Default)]
pub struct Recovery {
    pub recovered: Recovered,
    /// The last zxid logged or snapshotted (where the log goes on).
    pub last: Option<Zxid>,
    /// Where appends go on (the log file recovery ended in).
    pub tail: Option<Tail>,
    pub warnings: Vec<String>,
    /// Newer snapshots that failed their check (the one used is older).
    pub snapshots_rejected: usize,
    /// A torn tail was cut off the log.
    pub torn_tail: bool,
    /// Recovery removed `currentEpoch` (a misdirect cut, or less read back than it names).
    pub forgot_current_epoch: bool,
}

/// Snapshot files among `f`'s, newest first.
pub fn list_snapshots(f: &impl Files) -> Result<Vec<(Zxid, String)>, StorageError> {
    let mut out: Vec<(Zxid, String)> = f
        .list()
        .map_err(|e| StorageError::io(&f.path(""), e))?
        .into_iter()
        .filter_map(|n| parse_snapshot_name(&n).map(|(z, _)| (z, n.clone())))
        .collect();
    out.sort();
    out.reverse();
    Ok(out)
}

/// Remove leftovers of snapshots that were being written when the process died.
pub fn remove_temporaries(f: &mut impl Files) -> Result<Vec<String>, StorageError> {
    let names = f.list().map_err(|e| StorageError::io(&f.path(""), e))?;
    let mut removed = Vec::new();
    for n in names.into_iter().filter(|n| n.ends_with(".tmp")) {
        let path = f.path(&n);
        f.remove(&n).map_err(|e| StorageError::io(&path, e))?;
        removed.push(n);
    }
    Ok(removed)
}

/// Recover from `snaps` (`dataDir/version-2`: snapshots, epochs) and `logs`
/// (`dataLogDir/version-2`: the txn log); they may be the same directory's two views.
pub fn recover(snaps: &mut impl Files, logs: &mut impl Files) -> Result<Recovery, StorageError> {
    let mut warnings = Vec::new();
    for n in remove_temporaries(snaps)? {
        warnings.push(format!(
            "{}: unfinished write removed",
            snaps.path(&n).display()
        ));
    }
    let epochs = read_epochs(snaps)?;

    let mut snap: Option<(Zxid, RecoveredSnapshot)> = None;
    let mut snapshots_rejected = 0;
    for (zxid, name) in list_snapshots(snaps)? {
        match snaps.load_snapshot(&name).and_then(|r| check_name(zxid, r)) {
            Ok(data) => {
                snap = Some((zxid, data));
                break;
            }
            Err(why) => {
                ensemble_core::probe!("storage.snapshot-fallback");
                snapshots_rejected += 1;
                warnings.push(format!(
                    "{}: {why}; falling back to an older snapshot",
                    snaps.path(&name).display()
                ))
            }
        }
    }
    if snap.is_none() && snapshots_rejected > 0 {
        ensemble_core::probe!("storage.no-snapshot-verifies");
        // Recovering from the log alone would serve a tree without what the snapshots held
        // (ZooKeeper: "No snapshot found, but there are log entries. Something is broken!").
        return Err(StorageError::BadFile {
            path: snaps.path(""),
            reason: format!(
                "none of the {snapshots_rejected} snapshots passes its check; the server will \
                 not start from the log alone"
            ),
        });
    }
    let snap_zxid = snap.as_ref().map(|(z, _)| *z).unwrap_or(Zxid::ZERO);
    // Only what the snapshot does not cover is read and decoded.
    // A misdirect cut from the log's tail may take acknowledged txns with it: this server no
    // longer vouches for what it acknowledged (sim/README.md, "Disk loss"), so currentEpoch
    // goes, as an operator removes it from a copy put back older, before the cut removes the
    // evidence; a sync writes it again.
    let through = crate::epochs::read_current_through(snaps)?;
    let mut epochs = epochs;
    let mut forgot = None;
    let snap_at = snap.as_ref().map(|(z, _)| *z);
    let rec = recover_after_with(logs, snap_at, &mut |d| {
        if is_misdirect(d) && epochs.current_epoch > 0 {
            ensemble_core::probe!("storage.misdirect-unvouched");
            forget_current(snaps)?;
            forgot = Some((
                epochs.current_epoch,
                "the log's tail was cut at a misdirected write and may have held acknowledged \
                 txns"
                    .to_string(),
            ));
            epochs.current_epoch = 0;
        }
        Ok(())
    })?;
    let last = match (rec.last, snap.as_ref()) {
        (Some(l), Some((s, _))) => Some(l.max(*s)),
        (l, s) => l.or(s.map(|(z, _)| *z)),
    };
    // currentEpoch e vouches for the history e's sync left here, and FLE ranks a vote by e
    // before its zxid: a server that keeps e with less than that history outranks the voters
    // holding what it lost and truncates them (seeds 7719 and 3388 of the merged build's
    // 10,000: a bit flipped in the last record, a lying fsync). The file names the last zxid
    // durable when it was written; a disk that reads back less (a cut tail, or a log that
    // simply ends early) no longer vouches.
    let left = last.unwrap_or(Zxid::ZERO);
    if epochs.current_epoch > 0
        && let Some(t) = through
        && left < t
        && !crate::plant::active(ensemble_core::plant::Plant::CutKeepsCurrentEpoch)
    {
        ensemble_core::probe!("storage.short-of-epoch-unvouched");
        forget_current(snaps)?;
        forgot = Some((
            epochs.current_epoch,
            format!(
                "the log and snapshot end at {left}, short of the {t} that epoch's sync left, and \
                 may have lost acknowledged txns"
            ),
        ));
        epochs.current_epoch = 0;
    }
    let forgot_current_epoch = forgot.is_some();
    if let Some((e, why)) = forgot {
        warnings.push(format!(
            "{}: removed (it was {e}): {why}; this server counts in no quorum until it has synced",
            snaps.path(CURRENT).display()
        ));
    }
    warnings.extend(rec.warnings);
    let txns: Vec<Txn> = rec
        .txns
        .into_iter()
        .filter(|t| t.zxid > snap_zxid)
        .collect();
    Ok(Recovery {
        recovered: Recovered {
            epochs,
            snapshot: snap,
            log: txns,
        },
        last,
        tail: rec.tail,
        warnings,
        snapshots_rejected,
        torn_tail: rec.torn,
        forgot_current_epoch,
    })
}

/// Remove `currentEpoch`, durably: the server vouches for nothing until a sync writes it.
fn forget_current(snaps: &mut impl Files) -> Result<(), StorageError> {
    let path = snaps.path(CURRENT);
    snaps
        .remove(CURRENT)
        .map_err(|e| StorageError::io(&path, e))?;
    let dir = snaps.path("");
    snaps.sync_dir().map_err(|e| StorageError::io(&dir, e))
}
