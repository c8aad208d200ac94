//! The cut-over's last txns: what the stopped ZooKeeper servers logged beyond the observer's
//! replica (`zk-observe --cut-over --zk-data-dir DIR`, repeatable).
//!
//! ZooKeeper's leader can commit a txn and step down before its INFORM reaches the observers
//! (it drops what is still queued). A client of a ZooKeeper server saw that write
//! acknowledged, and no observer has it. ZooKeeper's own recovery would keep it: the server
//! with the highest (currentEpoch, last logged zxid) is elected and its log is the history.
//! So the replica is continued from that server's log, as ZooKeeper would continue: its txn
//! at the replica's zxid must carry the replica's digest (the same history), and every txn
//! after it is applied and checked against the digest logged with it. Nothing is applied
//! unless all of it checks (the replica is extended on a copy).

use super::tree::{DIGEST_VERSION, ZkTree};
use super::txnlog::LogRecord;
use super::{ZkFileError, list, read_epoch, read_log, version_dir};
use std::path::{Path, PathBuf};

/// One stopped ZooKeeper server's log from the replica's zxid on.
struct ServerLog {
    dir: PathBuf,
    current_epoch: u32,
    /// Its records from the replica's zxid on, in zxid order, with the file each is in.
    records: Vec<(PathBuf, LogRecord)>,
}

impl ServerLog {
    fn last_zxid(&self) -> i64 {
        self.records.last().map_or(i64::MIN, |(_, r)| r.hdr.zxid)
    }
}

/// What [`extend`] added.
#[derive(Debug)]
pub struct Extended {
    /// The dataDir whose log was taken (the one ZooKeeper's election would pick).
    pub from: PathBuf,
    pub txns: u64,
    pub last_zxid: i64,
}

/// Check `dirs` are ZooKeeper dataDirs (or their `version-2`) holding txn logs: said at start,
/// before the observer follows anything.
pub fn check_dirs(dirs: &[PathBuf]) -> Result<(), ZkFileError> {
    for d in dirs {
        let v = version_dir(d);
        if list(&v, "log")?.is_empty() {
            return Err(ZkFileError::Other(format!(
                "{}: no ZooKeeper txn log (log.*) there: give each ZooKeeper server's dataDir \
                 (or its dataLogDir)",
                v.display()
            )));
        }
    }
    Ok(())
}

/// `tree` (the observer's replica) continued with the txns the newest of `dirs` logged after
/// it, each digest-checked. On any error `tree` is unchanged.
pub fn extend(tree: &mut ZkTree, dirs: &[PathBuf]) -> Result<Extended, ZkFileError> {
    let base = tree.last_zxid;
    let mut logs = Vec::new();
    for d in dirs {
        logs.push(server_log(d, base)?);
    }
    // ZooKeeper's election order: currentEpoch, then the last logged zxid.
    let Some(newest) = logs
        .into_iter()
        .max_by_key(|l| (l.current_epoch, l.last_zxid()))
    else {
        return Err(ZkFileError::Other("no ZooKeeper dataDir given".into()));
    };
    let from = newest.dir.clone();
    if newest.last_zxid() <= base {
        return Ok(Extended {
            from,
            txns: 0,
            last_zxid: base,
        });
    }
    let Some((path, at_base)) = newest.records.first().filter(|(_, r)| r.hdr.zxid == base) else {
        return Err(ZkFileError::Other(format!(
            "{}: its logs do not hold txn {base:#x}, the replica's last: nothing tells that \
             the txns after it continue the replica's history",
            version_dir(&newest.dir).display()
        )));
    };
    check_digest(tree, path, at_base, "the replica's last txn")?;
    let mut t = tree.clone();
    let mut prev = base;
    let mut txns = 0;
    for (path, r) in &newest.records[1..] {
        let z = r.hdr.zxid;
        if z <= prev || (z >> 32 == prev >> 32 && z != prev + 1) {
            return Err(ZkFileError::Other(format!(
                "{}: offset {}: txn {z:#x} follows {prev:#x}: the txns between are missing",
                path.display(),
                r.offset
            )));
        }
        t.process(&r.hdr, &r.txn);
        check_digest(&t, path, r, "the txn")?;
        prev = z;
        txns += 1;
    }
    *tree = t;
    Ok(Extended {
        from,
        txns,
        last_zxid: prev,
    })
}

/// The tree after `r` must be the one ZooKeeper logged the digest of.
fn check_digest(t: &ZkTree, path: &Path, r: &LogRecord, what: &str) -> Result<(), ZkFileError> {
    match r.digest {
        Some(d) if d.version == DIGEST_VERSION && d.tree_digest == t.digest() => Ok(()),
        Some(d) if d.version == DIGEST_VERSION => Err(ZkFileError::Other(format!(
            "{}: offset {}: after {what} {:#x} the tree's digest is {:#x}, the log says {:#x}: \
             not the replica's history",
            path.display(),
            r.offset,
            r.hdr.zxid,
            t.digest(),
            d.tree_digest
        ))),
        _ => Err(ZkFileError::Other(format!(
            "{}: offset {}: {what} {:#x} carries no digest of version {DIGEST_VERSION} to check \
             against (zookeeper.digest.enabled=false?): nothing is replayed unchecked",
            path.display(),
            r.offset,
            r.hdr.zxid
        ))),
    }
}

/// The records of the logs of ZooKeeper dataDir `dir` from zxid `base` on.
fn server_log(dir: &Path, base: i64) -> Result<ServerLog, ZkFileError> {
    let v = version_dir(dir);
    let files = list(&v, "log")?;
    // The newest log starting at or before `base`, and all after it.
    let first = files
        .iter()
        .rposition(|(start, _)| *start <= base)
        .unwrap_or(0);
    let mut records = Vec::new();
    for (_, path) in &files[first..] {
        for r in read_log(path)?.records {
            if r.hdr.zxid >= base {
                records.push((path.clone(), r));
            }
        }
    }
    records.sort_by_key(|(_, r)| r.hdr.zxid);
    Ok(ServerLog {
        dir: dir.to_path_buf(),
        current_epoch: read_epoch(&v, "currentEpoch")?.unwrap_or(0),
        records,
    })
}
