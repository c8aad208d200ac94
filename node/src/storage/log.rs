//! The transaction log: files `log.<hex zxid of the first txn>` under `dataLogDir/version-2/`.
//!
//! File layout: a 16-byte header (`ENSTXLOG`, format version, reserved), then records
//! `[payload len u32 LE][sum u32 LE][payload = bincode(Txn)]`, then zeros: files are
//! preallocated (extended sparse, as ZooKeeper does) so that appends rarely change the file
//! size. A record of length 0 ends the log. The sum is the payload's crc32 XOR the record's
//! offset (format version 2; see `ensemble_storage::log`).
//!
//! Writes go through one writer thread that batches: it writes everything queued, issues one
//! fdatasync for the lot (group commit), then reports the highest durable zxid.

use super::StorageError;
use super::codec::fsync_dir;
use super::fs::FsDir;
use ensemble_core::{Txn, Zxid};
pub use ensemble_storage::log::{
    Damage, FileScan, HEADER_LEN, LOG_MAGIC, LOG_VERSION, RECORD_HEADER, Recovery, encode_record,
    log_file_name, place_record,
};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

/// Log files in `dir`, oldest first.
pub fn list_logs(dir: &Path) -> Result<Vec<(Zxid, PathBuf)>, StorageError> {
    Ok(ensemble_storage::log::list_logs(&FsDir::new(dir))?
        .into_iter()
        .map(|(z, n)| (z, dir.join(n)))
        .collect())
}

/// Read a whole log file (the shared scan: [`ensemble_storage::log::scan_bytes`]). Errors only
/// for I/O or a file that is not ours. Records at or below `skip_through` are checked but
/// neither decoded nor returned.
pub fn scan_file(
    path: &Path,
    prev: Option<Zxid>,
    skip_through: Option<Zxid>,
) -> Result<FileScan, StorageError> {
    let buf = std::fs::read(path).map_err(|e| StorageError::io(path, e))?;
    ensemble_storage::log::scan_bytes(&buf, prev, skip_through).map_err(|reason| {
        StorageError::BadFile {
            path: path.to_path_buf(),
            reason,
        }
    })
}

/// Read every log file in `dir` in order; repair a torn tail; refuse corruption before it
/// (the shared recovery, on the real directory).
pub fn recover(dir: &Path) -> Result<Recovery, StorageError> {
    recover_after(dir, None)
}

/// [`recover`] of what a snapshot at `snapshot` does not cover.
pub fn recover_after(dir: &Path, snapshot: Option<Zxid>) -> Result<Recovery, StorageError> {
    ensemble_storage::log::recover_after(&mut FsDir::new(dir), snapshot)
}

/// Where appends go.
#[derive(Debug)]
pub struct Tail {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
}

impl Tail {
    /// The shared recovery's tail, in directory `dir`.
    pub fn in_dir(dir: &Path, t: ensemble_storage::log::Tail) -> Tail {
        Tail {
            path: dir.join(t.name),
            offset: t.offset,
            len: t.len,
        }
    }
}

/// Let the kernel drop the log pages synced so far (whole pages before the one being
/// appended to). Nothing reads them back while the server runs (recovery and truncation read
/// the file afresh), and an append into a page the kernel has just freed is cheap, while one
/// into a page never used costs a fresh page fault on a VM: that copy was a sixth of the
/// log writer's time.
fn drop_synced_pages(f: &File, tail: &Tail, dropped: &mut Option<(PathBuf, u64)>) {
    let from = match dropped {
        Some((p, at)) if *p == tail.path => *at,
        _ => 0,
    };
    let to = tail.offset & !4095;
    if to < from + CACHE_DROP_STEP {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: posix_fadvise only reads its arguments; the descriptor is open.
        let r = unsafe {
            libc::posix_fadvise(
                f.as_raw_fd(),
                from as libc::off_t,
                (to - from) as libc::off_t,
                libc::POSIX_FADV_DONTNEED,
            )
        };
        if r != 0 {
            return; // advice only
        }
    }
    *dropped = Some((tail.path.clone(), to));
}

/// Zero a file from `from` to its end, keeping its (preallocated) length, durably.
fn zero_from(path: &Path, from: u64, len: u64) -> Result<(), StorageError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io(path, e))?;
    f.set_len(from).map_err(|e| StorageError::io(path, e))?;
    f.set_len(len.max(from))
        .map_err(|e| StorageError::io(path, e))?;
    f.sync_all().map_err(|e| StorageError::io(path, e))
}

// ---------------------------------------------------------------------------------------------
// The writer thread.

pub enum LogCmd {
    Append(Vec<Arc<Txn>>),
    /// Drop every txn with zxid > `after`.
    Truncate {
        after: Zxid,
        done: mpsc::Sender<Result<(), StorageError>>,
    },
    /// Drop the whole log: it restarts after `after` (a SNAP from the leader).
    Reset {
        after: Zxid,
        done: mpsc::Sender<Result<(), StorageError>>,
    },
    /// Start a new file with the next append (after a snapshot, so old files can be purged).
    Roll,
    /// Everything appended so far is durable when this answers.
    Sync {
        done: mpsc::Sender<Result<(), StorageError>>,
    },
    /// Remove log files wholly before `keep_from` (the oldest retained snapshot's zxid).
    Purge {
        keep_from: Zxid,
    },
    Stop {
        done: mpsc::Sender<Result<(), StorageError>>,
    },
}

/// What the writer reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEvent {
    Persisted(Zxid),
    /// The log cannot be written: nothing more can be acknowledged.
    Failed(String),
    /// A snapshot handed to the snapshot thread could not be written. The core already counts
    /// it as on disk (a leader streams SNAPs from it), so the server stops, as ZooKeeper's
    /// `takeSnapshot` exits on an IOException ("Severe unrecoverable error, exiting").
    SnapshotFailed(String),
}

/// Where the storage threads report to the core loop.
pub type Events = std::sync::Arc<dyn Fn(LogEvent) + Send + Sync>;

pub struct Writer {
    dir: PathBuf,
    prealloc: u64,
    force_sync: bool,
    file: Option<(File, Tail)>,
    roll: bool,
    pending: Vec<u8>,
    pending_last: Option<Zxid>,
    /// Highest zxid written to the OS (not yet necessarily durable).
    written: Option<Zxid>,
    dirty: bool,
    last: Option<Zxid>,
    failed: Option<String>,
    /// The synced prefix of this log file already dropped from the page cache.
    cache_dropped: Option<(PathBuf, u64)>,
}

/// Synced log bytes are dropped from the page cache in steps of at least this much.
const CACHE_DROP_STEP: u64 = 256 * 1024;

impl Writer {
    pub fn new(
        dir: PathBuf,
        prealloc: u64,
        force_sync: bool,
        tail: Option<Tail>,
        last: Option<Zxid>,
    ) -> Result<Writer, StorageError> {
        let file = match tail {
            Some(t) => {
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&t.path)
                    .map_err(|e| StorageError::io(&t.path, e))?;
                // Records are appended in this build's format: a file of another version
                // (its sums without offsets) is closed, and the next append starts a new one.
                let mut head = [0u8; HEADER_LEN];
                f.read_exact_at(&mut head, 0)
                    .map_err(|e| StorageError::io(&t.path, e))?;
                (ensemble_storage::log::file_version(&head) == Some(LOG_VERSION)).then_some((f, t))
            }
            None => None,
        };
        Ok(Writer {
            dir,
            prealloc: prealloc.max(4096),
            force_sync,
            file,
            roll: false,
            pending: Vec::new(),
            pending_last: None,
            written: None,
            dirty: false,
            last,
            failed: None,
            cache_dropped: None,
        })
    }

    fn queue(&mut self, txns: Vec<Arc<Txn>>) -> Result<(), StorageError> {
        for t in txns {
            if let Some(l) = self.last
                && t.zxid <= l
            {
                // The log must stay in zxid order for recovery to trust it.
                return Err(StorageError::Order {
                    zxid: t.zxid,
                    last: l,
                });
            }
            if self.roll || self.file.is_none() {
                self.flush()?;
                self.open_new(t.zxid)?;
                self.roll = false;
            }
            let base = self
                .file
                .as_ref()
                .map_or(HEADER_LEN as u64, |(_, t)| t.offset);
            encode_record(&t, &mut self.pending, base)?;
            self.last = Some(t.zxid);
            self.pending_last = Some(t.zxid);
        }
        Ok(())
    }

    fn open_new(&mut self, first: Zxid) -> Result<(), StorageError> {
        let path = self.dir.join(log_file_name(first));
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
        f.write_all_at(&ensemble_storage::log::file_header(), 0)
            .map_err(|e| StorageError::io(&path, e))?;
        f.set_len(self.prealloc)
            .map_err(|e| StorageError::io(&path, e))?;
        f.sync_all().map_err(|e| StorageError::io(&path, e))?;
        fsync_dir(&self.dir).map_err(|e| StorageError::io(&self.dir, e))?;
        self.file = Some((
            f,
            Tail {
                path,
                offset: HEADER_LEN as u64,
                len: self.prealloc,
            },
        ));
        Ok(())
    }

    /// Hand pending bytes to the OS.
    fn flush(&mut self) -> Result<(), StorageError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some((f, tail)) = self.file.as_mut() else {
            return Err(StorageError::Encode(
                "pending log bytes without a file".into(),
            ));
        };
        let end = tail.offset + self.pending.len() as u64;
        // Keep a zeroed record header's worth after the data: it marks the end.
        if end + RECORD_HEADER as u64 > tail.len {
            let mut new_len = tail.len;
            while end + RECORD_HEADER as u64 > new_len {
                new_len += self.prealloc;
            }
            f.set_len(new_len)
                .map_err(|e| StorageError::io(&tail.path, e))?;
            tail.len = new_len;
        }
        f.write_all_at(&self.pending, tail.offset)
            .map_err(|e| StorageError::io(&tail.path, e))?;
        tail.offset = end;
        self.pending.clear();
        self.written = self.pending_last.take().or(self.written);
        self.dirty = true;
        Ok(())
    }

    /// Make everything written durable; returns the zxid now durable, if it advanced.
    fn sync(&mut self) -> Result<Option<Zxid>, StorageError> {
        self.flush()?;
        if !self.dirty {
            return Ok(None);
        }
        if self.force_sync
            && let Some((f, tail)) = self.file.as_ref()
        {
            let t0 = std::time::Instant::now();
            f.sync_data().map_err(|e| StorageError::io(&tail.path, e))?;
            let took = t0.elapsed();
            let m = crate::metrics::server_metrics();
            m.summary("fsynctime").observe(took.as_millis() as u64);
            m.own.fsync.observe(took.as_secs_f64());
            drop_synced_pages(f, tail, &mut self.cache_dropped);
        }
        self.dirty = false;
        Ok(self.written)
    }

    fn truncate(&mut self, after: Zxid) -> Result<(), StorageError> {
        self.file = None;
        let files = list_logs(&self.dir)?;
        let mut keep: Option<Tail> = None;
        for (start, path) in files.iter().rev() {
            if *start > after {
                std::fs::remove_file(path).map_err(|e| StorageError::io(path, e))?;
                continue;
            }
            let scan = scan_file(path, None, None)?;
            let cut = scan
                .txns
                .iter()
                .find(|(_, t)| t.zxid > after)
                .map(|(o, _)| *o)
                .unwrap_or(scan.end);
            zero_from(path, cut, scan.len)?;
            keep = Some(Tail {
                path: path.clone(),
                offset: cut,
                len: scan.len,
            });
            break;
        }
        fsync_dir(&self.dir).map_err(|e| StorageError::io(&self.dir, e))?;
        if let Some(t) = keep {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&t.path)
                .map_err(|e| StorageError::io(&t.path, e))?;
            self.file = Some((f, t));
        }
        self.last = self.last.map(|l| l.min(after));
        self.written = self.written.map(|w| w.min(after));
        Ok(())
    }

    fn reset(&mut self, after: Zxid) -> Result<(), StorageError> {
        self.pending.clear();
        self.pending_last = None;
        self.file = None;
        for (_, path) in list_logs(&self.dir)? {
            std::fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
        }
        fsync_dir(&self.dir).map_err(|e| StorageError::io(&self.dir, e))?;
        self.last = Some(after);
        self.written = None;
        self.dirty = false;
        Ok(())
    }

    fn purge(&mut self, keep_from: Zxid) -> Result<Vec<PathBuf>, StorageError> {
        let files = list_logs(&self.dir)?;
        // Keep the newest file that starts at or before the snapshot (it may hold txns after
        // it) and everything later.
        let Some(pivot) = files.iter().rposition(|(z, _)| *z <= keep_from) else {
            return Ok(vec![]);
        };
        let current = self.file.as_ref().map(|(_, t)| t.path.clone());
        let mut removed = Vec::new();
        for (_, p) in &files[..pivot] {
            if Some(p) == current.as_ref() {
                continue;
            }
            std::fs::remove_file(p).map_err(|e| StorageError::io(p, e))?;
            removed.push(p.clone());
        }
        Ok(removed)
    }

    fn fail(&mut self, e: &StorageError, events: &dyn Fn(LogEvent)) {
        let msg = e.to_string();
        tracing::error!("txn log failed: {msg}");
        if self.failed.is_none() {
            events(LogEvent::Failed(msg.clone()));
        }
        self.failed = Some(msg);
    }

    /// The writer thread's loop.
    pub fn run(mut self, rx: mpsc::Receiver<LogCmd>, events: Events) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            // Group commit: take everything already queued into this one fsync.
            while let Ok(c) = rx.try_recv() {
                batch.push(c);
            }
            let mut stop = None;
            for cmd in batch {
                if let Some(msg) = &self.failed {
                    let err = StorageError::Failed(msg.clone());
                    match cmd {
                        LogCmd::Truncate { done, .. }
                        | LogCmd::Reset { done, .. }
                        | LogCmd::Sync { done } => {
                            let _ = done.send(Err(err));
                        }
                        LogCmd::Stop { done } => {
                            let _ = done.send(Err(err));
                            return;
                        }
                        _ => {}
                    }
                    continue;
                }
                match cmd {
                    LogCmd::Append(txns) => {
                        if let Err(e) = self.queue(txns) {
                            self.fail(&e, &*events);
                        }
                    }
                    LogCmd::Roll => self.roll = true,
                    LogCmd::Purge { keep_from } => match self.purge(keep_from) {
                        Ok(removed) => {
                            for p in removed {
                                tracing::info!("autopurge: removed {}", p.display());
                            }
                        }
                        Err(e) => tracing::warn!("autopurge of the txn log failed: {e}"),
                    },
                    LogCmd::Truncate { after, done } => {
                        let r = self
                            .sync_and_report(&*events)
                            .and_then(|_| self.truncate(after));
                        let _ = done.send(r);
                    }
                    LogCmd::Reset { after, done } => {
                        let r = self
                            .sync_and_report(&*events)
                            .and_then(|_| self.reset(after));
                        let _ = done.send(r);
                    }
                    LogCmd::Sync { done } => {
                        let r = self.sync_and_report(&*events);
                        let _ = done.send(r);
                    }
                    LogCmd::Stop { done } => {
                        stop = Some(done);
                        break;
                    }
                }
            }
            if self.failed.is_none()
                && let Err(e) = self.sync_and_report(&*events)
            {
                self.fail(&e, &*events);
            }
            if let Some(done) = stop {
                let _ = done.send(match &self.failed {
                    Some(m) => Err(StorageError::Failed(m.clone())),
                    None => Ok(()),
                });
                return;
            }
        }
    }

    fn sync_and_report(&mut self, events: &dyn Fn(LogEvent)) -> Result<(), StorageError> {
        if let Some(z) = self.sync()? {
            events(LogEvent::Persisted(z));
        }
        Ok(())
    }
}
