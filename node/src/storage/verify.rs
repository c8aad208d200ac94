//! `ensemble verify`: every record of every txn log and every snapshot of a data dir checked
//! (checksums, decoding, zxid order across files, the snapshot's tree structure), without
//! changing anything (recovery would repair a torn tail; this only reports it).

use super::StorageError;
use super::dump::load_snapshot;
use super::epochs::read_epochs;
use super::log::{list_logs, scan_file};
use super::snapshot::list_snapshots;
use ensemble_core::Zxid;
use std::fmt;
use std::path::{Path, PathBuf};

/// One thing found wrong (or worth saying) about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub path: PathBuf,
    /// Where in the file, when the damage has a place (a log record; a snapshot's header).
    pub offset: Option<u64>,
    pub reason: String,
    /// Corruption: recovery would refuse the file or lose what it holds. A torn tail of the
    /// newest log (a crash mid-write, nothing acknowledged in it) or an unfinished temporary
    /// is not.
    pub corrupt: bool,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let what = if self.corrupt { "CORRUPT" } else { "note" };
        match self.offset {
            Some(o) => write!(
                f,
                "{what}: {}: at offset {o}: {}",
                self.path.display(),
                self.reason
            ),
            None => write!(f, "{what}: {}: {}", self.path.display(), self.reason),
        }
    }
}

/// What a verification read.
#[derive(Debug, Default)]
pub struct Report {
    pub log_files: usize,
    pub txns: usize,
    pub last_logged: Option<Zxid>,
    pub snapshots: usize,
    pub znodes: usize,
    /// The newest snapshot that reads back.
    pub newest_snapshot: Option<Zxid>,
    pub findings: Vec<Finding>,
    /// Every logged txn's zxid and file, in order.
    logged: Vec<(PathBuf, Zxid)>,
}

/// Within an epoch the leader numbers txns one by one, and every server logs them all in
/// order (DIFF, TRUNC and SNAP keep that), so a jump in the counter means txns are missing.
fn missing_between(prev: Zxid, next: Zxid) -> Option<String> {
    let gap = next.epoch() == prev.epoch() && next.counter() > prev.counter().saturating_add(1);
    gap.then(|| {
        format!(
            "txns {} to {} are missing",
            Zxid::new(prev.epoch(), prev.counter() + 1),
            Zxid::new(next.epoch(), next.counter() - 1)
        )
    })
}

impl Report {
    pub fn corrupt(&self) -> bool {
        self.findings.iter().any(|f| f.corrupt)
    }
}

/// Verify the txn logs in `log_dir` and the snapshots and epochs in `snap_dir` (the
/// `version-2` directories).
pub fn verify(snap_dir: &Path, log_dir: &Path) -> Result<Report, StorageError> {
    let mut report = Report::default();
    verify_logs(log_dir, &mut report)?;
    verify_snapshots(snap_dir, &mut report)?;
    // The log must go on from the newest snapshot: recovery replays it from there.
    if let Some(s) = report.newest_snapshot
        && let Some((path, next)) = report.logged.iter().find(|(_, z)| *z > s)
        && let Some(missing) = missing_between(s, *next)
    {
        let at_or_before = report.logged.iter().any(|(_, z)| *z <= s);
        report.findings.push(Finding {
            path: path.clone(),
            offset: None,
            reason: format!(
                "the newest snapshot is at {s} and the log goes on at {next}: {missing}{}",
                if at_or_before {
                    ""
                } else {
                    " (the log file holding them is gone)"
                }
            ),
            corrupt: true,
        });
    }
    if let Err(e) = read_epochs(snap_dir) {
        report.findings.push(Finding {
            path: snap_dir.to_path_buf(),
            offset: None,
            reason: e.to_string(),
            corrupt: true,
        });
    }
    Ok(report)
}

fn verify_logs(dir: &Path, report: &mut Report) -> Result<(), StorageError> {
    if !dir.is_dir() {
        return Ok(());
    }
    let files = list_logs(dir)?;
    let mut last: Option<Zxid> = None;
    // A torn tail seen so far: corruption after all if a later file has records.
    let mut torn: Option<Finding> = None;
    for (path, _) in files.iter().map(|(z, p)| (p, z)) {
        report.log_files += 1;
        let scan = match scan_file(path, last, None) {
            Ok(s) => s,
            Err(e) => {
                report.findings.push(Finding {
                    path: path.clone(),
                    offset: Some(0),
                    reason: e.to_string(),
                    corrupt: true,
                });
                continue;
            }
        };
        if !scan.txns.is_empty()
            && let Some(mut t) = torn.take()
        {
            t.corrupt = true;
            t.reason = format!("{}, and later log files hold txns", t.reason);
            report.findings.push(t);
        }
        report.txns += scan.txns.len();
        for (offset, txn) in &scan.txns {
            if let Some(prev) = report.logged.last().map(|(_, z)| *z)
                && let Some(missing) = missing_between(prev, txn.zxid)
            {
                report.findings.push(Finding {
                    path: path.clone(),
                    offset: Some(*offset),
                    reason: format!(
                        "txn {} follows {prev}: {missing} (a log file or records are gone)",
                        txn.zxid
                    ),
                    corrupt: true,
                });
            }
            report.logged.push((path.clone(), txn.zxid));
        }
        if scan.last.is_some() {
            last = scan.last;
            report.last_logged = scan.last;
        }
        if let Some(d) = scan.damage {
            let finding = Finding {
                path: path.clone(),
                offset: Some(d.offset),
                reason: d.reason,
                corrupt: scan.valid_after_damage.is_some(),
            };
            if finding.corrupt {
                report.findings.push(finding);
            } else {
                let torn_tail = Finding {
                    reason: format!("torn tail ({})", finding.reason),
                    ..finding
                };
                if let Some(t) = torn.replace(torn_tail) {
                    report.findings.push(Finding { corrupt: true, ..t });
                }
            }
        }
    }
    report.findings.extend(torn.map(|t| Finding {
        reason: format!(
            "{}: a crash cut the last write; recovery drops it",
            t.reason
        ),
        ..t
    }));
    Ok(())
}

fn verify_snapshots(dir: &Path, report: &mut Report) -> Result<(), StorageError> {
    if !dir.is_dir() {
        return Ok(());
    }
    for (zxid, path) in list_snapshots(dir)? {
        report.snapshots += 1;
        match load_snapshot(&path) {
            Ok((z, tree)) if z == zxid => {
                // Newest first: the first that reads back is the one recovery uses.
                if report.newest_snapshot.is_none() {
                    report.newest_snapshot = Some(z);
                    report.znodes = tree.paths().count();
                }
            }
            Ok((z, _)) => report.findings.push(Finding {
                path: path.clone(),
                offset: Some(16),
                reason: format!("the header says zxid {z}, the file name {zxid}"),
                corrupt: true,
            }),
            Err(e) => report.findings.push(Finding {
                path: path.clone(),
                offset: None,
                reason: match e {
                    StorageError::BadFile { reason, .. } => reason,
                    other => other.to_string(),
                },
                corrupt: true,
            }),
        }
    }
    let rd = std::fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| StorageError::io(dir, e))?;
        if ent
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(".tmp"))
        {
            report.findings.push(Finding {
                path: ent.path(),
                offset: None,
                reason: "an unfinished snapshot write; the server removes it at start".into(),
                corrupt: false,
            });
        }
    }
    Ok(())
}
