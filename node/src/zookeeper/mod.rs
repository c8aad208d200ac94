//! Apache ZooKeeper's own files: its snapshots and txn logs decoded ([`snapshot`],
//! [`txnlog`], their records in [`records`] — the jute serialisation the quorum packets use
//! too), its database rebuilt from them as ZooKeeper restores it ([`restore`], [`tree`]), and
//! the two ways across: `ensemble import` and `ensemble export` ([`migrate`]).

pub mod election;
pub mod jute;
pub mod leader_link;
pub mod log_tail;
pub mod migrate;
pub mod observer;
pub mod quorum_packet;
pub mod records;
pub mod snapshot;
pub mod to_core;
pub mod tree;
pub mod txnlog;

use ensemble_core::ResolvedTxn;
use jute::JuteError;
use std::path::{Path, PathBuf};
use tree::{DIGEST_VERSION, ZkTree};

/// A ZooKeeper file that cannot be used, named with where it is bad.
#[derive(Debug, thiserror::Error)]
pub enum ZkFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: corrupt at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{0}")]
    Other(String),
}

impl ZkFileError {
    fn at(path: &Path, e: JuteError) -> ZkFileError {
        ZkFileError::Corrupt {
            path: path.to_path_buf(),
            offset: e.offset,
            reason: e.reason,
        }
    }

    fn io(path: &Path, source: std::io::Error) -> ZkFileError {
        ZkFileError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `Util.getZxidFromName`: the hex zxid of `snapshot.<zxid>[.gz|.snappy]` or `log.<zxid>`.
pub fn zxid_of_name(name: &str, prefix: &str) -> Option<i64> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('.')?;
    let hex = rest
        .strip_suffix(".gz")
        .or_else(|| rest.strip_suffix(".snappy"))
        .unwrap_or(rest);
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|z| z as i64)
}

/// The files of `dir` named `prefix.<zxid>…`, oldest first.
pub fn list(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>, ZkFileError> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| ZkFileError::io(dir, e))?;
    for e in rd {
        let e = e.map_err(|e| ZkFileError::io(dir, e))?;
        if let Some(z) = e.file_name().to_str().and_then(|n| zxid_of_name(n, prefix)) {
            out.push((z, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The `version-2` directory of a ZooKeeper dataDir or dataLogDir (or the directory itself
/// if it holds the files directly).
pub fn version_dir(dir: &Path) -> PathBuf {
    let v2 = dir.join("version-2");
    if v2.is_dir() { v2 } else { dir.to_path_buf() }
}

/// Whether `dir` (a `version-2` directory) holds ZooKeeper's files: a snapshot or log whose
/// first bytes are ZooKeeper's (Ensemble's own files share the names, not the contents).
pub fn holds_zookeeper_files(dir: &Path) -> Option<PathBuf> {
    let rd = std::fs::read_dir(dir).ok()?;
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if zxid_of_name(name, "snapshot").is_none() && zxid_of_name(name, "log").is_none() {
            continue;
        }
        let mut head = [0u8; 10];
        let n = std::fs::File::open(e.path())
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .unwrap_or(0);
        let head = &head[..n];
        let gz = head.starts_with(&[0x1f, 0x8b]) && name.ends_with(".gz");
        if head.starts_with(&snapshot::SNAP_MAGIC)
            || head.starts_with(&txnlog::LOG_MAGIC)
            || head.starts_with(&[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0])
            || (gz && looks_like_zk_gz(&e.path()))
        {
            return Some(e.path());
        }
    }
    None
}

fn looks_like_zk_gz(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 4];
    std::io::Read::read_exact(&mut flate2::read::GzDecoder::new(f), &mut head).is_ok()
        && head == snapshot::SNAP_MAGIC
}

/// What restoring ZooKeeper's files gave.
#[derive(Debug)]
pub struct Restored {
    pub tree: ZkTree,
    pub snapshot: PathBuf,
    pub snapshot_zxid: i64,
    pub txns_replayed: u64,
    /// Digest comparisons made, all equal (a mismatch is an error).
    pub digests_checked: u64,
    /// acceptedEpoch and currentEpoch, where the files are (a standalone server has none).
    pub accepted_epoch: Option<u32>,
    pub current_epoch: Option<u32>,
    /// For the operator: snapshots skipped, a torn log tail.
    pub notes: Vec<String>,
}

fn read_epoch(dir: &Path, name: &str) -> Result<Option<u32>, ZkFileError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(t) => t
            .trim()
            .parse::<u32>()
            .map(Some)
            .map_err(|_| ZkFileError::Other(format!("{}: not an epoch: {t:?}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ZkFileError::io(&path, e)),
    }
}

/// Read and decode one snapshot file.
pub fn read_snapshot(path: &Path) -> Result<snapshot::ZkSnapshot, ZkFileError> {
    let bytes = std::fs::read(path).map_err(|e| ZkFileError::io(path, e))?;
    let stream = snapshot::decompress(&bytes).map_err(|e| ZkFileError::at(path, e))?;
    snapshot::decode(&stream).map_err(|e| ZkFileError::at(path, e))
}

/// Read and decode one log file.
pub fn read_log(path: &Path) -> Result<txnlog::ZkLog, ZkFileError> {
    let bytes = std::fs::read(path).map_err(|e| ZkFileError::io(path, e))?;
    txnlog::decode(&bytes).map_err(|e| ZkFileError::at(path, e))
}

/// Rebuild ZooKeeper's database from `snap_dir` and `log_dir` (both `version-2`
/// directories) as `FileTxnSnapLog.restore` does: the newest snapshot that reads back, then
/// every logged txn after its zxid. Stricter than ZooKeeper where it would only log: a
/// corrupt log record, missing txns, or a digest that differs from the files' is an error.
pub fn restore(snap_dir: &Path, log_dir: &Path) -> Result<Restored, ZkFileError> {
    let mut notes = Vec::new();
    let snaps = list(snap_dir, "snapshot")?;
    let mut chosen = None;
    for (zxid, path) in snaps.iter().rev() {
        match read_snapshot(path) {
            Ok(s) => {
                chosen = Some((*zxid, path.clone(), s));
                break;
            }
            Err(e) => notes.push(format!("{e}; using an older snapshot")),
        }
    }
    let Some((snap_zxid, snap_path, snap)) = chosen else {
        return Err(ZkFileError::Other(format!(
            "{}: no ZooKeeper snapshot that reads back{}",
            snap_dir.display(),
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            }
        )));
    };
    let mut tree = ZkTree::from_snapshot(&snap, snap_zxid).map_err(|why| ZkFileError::Corrupt {
        path: snap_path.clone(),
        offset: 0,
        reason: why,
    })?;
    let mut digests_checked = 0;
    // The snapshot's digest is of the tree as of its zxid, which the replay reaches.
    let mut pending = snap
        .digest
        .filter(|d| d.zxid != 0 && d.version == DIGEST_VERSION);
    digests_checked += u64::from(check_snapshot_digest(
        &mut pending,
        &tree,
        &snap_path,
        "the snapshot",
        &mut notes,
    ));
    // Until a digest agrees, the tree may still hold later writes of the fuzzy snapshot.
    let mut agreed = digests_checked > 0;
    let logs = list(log_dir, "log")?;
    // The newest log starting at or before the first txn wanted, and all after it.
    let first = logs
        .iter()
        .rposition(|(start, _)| *start <= snap_zxid + 1)
        .unwrap_or(0);
    let mut txns_replayed = 0u64;
    let mut saw_digest = false;
    let mut last_seen: Option<i64> = None;
    for (_, path) in &logs[first..] {
        let log = read_log(path)?;
        for r in &log.records {
            let prev = last_seen.unwrap_or(snap_zxid);
            if r.hdr.zxid <= prev {
                continue;
            }
            if r.hdr.zxid >> 32 == prev >> 32 && r.hdr.zxid != prev + 1 {
                return Err(ZkFileError::Other(format!(
                    "{}: offset {}: txn {:#x} follows {prev:#x}: the txns between are missing \
                     from the logs",
                    path.display(),
                    r.offset,
                    r.hdr.zxid
                )));
            }
            tree.process(&r.hdr, &r.txn);
            last_seen = Some(r.hdr.zxid);
            txns_replayed += 1;
            saw_digest |= r.digest.is_some();
            let at = format!("{} offset {}", path.display(), r.offset);
            if check_snapshot_digest(&mut pending, &tree, &snap_path, &at, &mut notes) {
                digests_checked += 1;
                continue;
            }
            // Past the fuzzy range every logged digest is the tree's after that txn.
            if let Some(d) = r.digest
                && pending.is_none()
                && d.version == DIGEST_VERSION
            {
                if d.tree_digest == tree.digest() {
                    agreed = true;
                    digests_checked += 1;
                } else if agreed {
                    return Err(ZkFileError::Other(format!(
                        "{at}: after txn {:#x} ({}) the rebuilt tree's digest is {:#x}, the log \
                         says {:#x}",
                        r.hdr.zxid,
                        txn_name(&r.txn),
                        tree.digest(),
                        d.tree_digest
                    )));
                }
            }
        }
        if let txnlog::LogEnd::Torn { offset, reason } = &log.end {
            notes.push(format!(
                "{}: the log ends at offset {offset} ({reason}): a write cut by a crash, which \
                 ZooKeeper drops too",
                path.display()
            ));
        }
    }
    if !agreed && txns_replayed > 0 && digests_checked == 0 && saw_digest {
        return Err(ZkFileError::Other(format!(
            "the tree rebuilt from {} and the logs after it never agreed with ZooKeeper's \
             digests (last zxid {:#x})",
            snap_path.display(),
            tree.last_zxid
        )));
    }
    if let Some(d) = pending {
        notes.push(format!(
            "the snapshot's digest at zxid {:#x} could not be checked: the logs end at {:#x}",
            d.zxid, tree.last_zxid
        ));
    }
    Ok(Restored {
        tree,
        snapshot: snap_path,
        snapshot_zxid: snap_zxid,
        txns_replayed,
        digests_checked,
        accepted_epoch: read_epoch(snap_dir, "acceptedEpoch")?,
        current_epoch: read_epoch(snap_dir, "currentEpoch")?,
        notes,
    })
}

/// Compare the snapshot's digest once the replay reaches its zxid; true if it did now and
/// they agree. A fuzzy snapshot may hold a node written while the digest was being taken, so
/// a difference here is a note, as ZooKeeper only logs it; every logged txn digest after it is
/// still compared, strictly, so a wrong replay is caught there.
fn check_snapshot_digest(
    pending: &mut Option<snapshot::ZxidDigest>,
    tree: &ZkTree,
    snap_path: &Path,
    at: &str,
    notes: &mut Vec<String>,
) -> bool {
    match *pending {
        Some(d) if d.zxid == tree.last_zxid => {
            *pending = None;
            if d.digest != tree.digest() {
                notes.push(format!(
                    "{}: the tree rebuilt to zxid {:#x} ({at}) has digest {:#x}, the snapshot's \
                     fuzzy digest says {:#x}; the logged digests after it decide",
                    snap_path.display(),
                    d.zxid,
                    tree.digest(),
                    d.digest
                ));
                return false;
            }
            true
        }
        _ => false,
    }
}

fn txn_name(t: &ResolvedTxn) -> &'static str {
    match t {
        ResolvedTxn::Create { .. } => "create",
        ResolvedTxn::Delete { .. } => "delete",
        ResolvedTxn::SetData { .. } => "setData",
        ResolvedTxn::SetAcl { .. } => "setACL",
        ResolvedTxn::Check { .. } => "check",
        ResolvedTxn::CreateSession { .. } => "createSession",
        ResolvedTxn::CloseSession { .. } => "closeSession",
        ResolvedTxn::Error { .. } => "error",
        ResolvedTxn::Multi(_) => "multi",
    }
}

#[cfg(test)]
mod tests;
