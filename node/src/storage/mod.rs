//! Durable state of one server: the txn log (`dataLogDir/version-2/log.*`), snapshots
//! (`dataDir/version-2/snapshot.*`) and the two ZAB epochs (`dataDir/version-2/acceptedEpoch`,
//! `currentEpoch`). [`Storage::open`] recovers what is on disk into the core's
//! [`Recovered`]; the methods then execute the core's storage effects.
//!
//! Durability contract with the core: `Append` is acknowledged (`LogEvent::Persisted`) only
//! after fsync; `truncate`, `persist_epochs` and a `reset_log` snapshot return only once
//! durable, so the runtime can execute the next effect right after.

pub mod backup;
pub mod codec;
pub mod compression;
pub mod dump;
pub mod epochs;
pub mod fs;
pub mod log;
pub mod part_budget;
pub mod snapshot;
pub mod snapshot_stream;
pub mod verify;

use compression::SnapshotCompression;
use ensemble_core::tree::SnapshotParts;
use ensemble_core::{Epochs, Recovered, Txn, Zxid};
use log::{LogCmd, LogEvent, Writer};
use snapshot::SnapshotFileWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

pub use ensemble_storage::StorageError;

#[derive(Clone, Debug)]
pub struct StorageOptions {
    /// `dataDir/version-2`: snapshots and epochs.
    pub snap_dir: PathBuf,
    /// `dataLogDir/version-2`: the txn log.
    pub log_dir: PathBuf,
    pub prealloc: u64,
    pub force_sync: bool,
    /// autopurge.snapRetainCount
    pub snap_retain: usize,
    /// `zookeeper.snapshot.compression.method`: how new snapshots are written (any is read).
    pub compression: SnapshotCompression,
    /// The data tree's options (`Config::tree_options`): recovery streams the snapshot file
    /// into a tree built with them (the runtime). `None`: the snapshot's data is read whole
    /// and handed over as bytes (tools, and tests of the files themselves).
    pub tree: Option<ensemble_core::tree::TreeOptions>,
}

enum SnapCmd {
    Part {
        zxid: Zxid,
        index: u32,
        data: Arc<Vec<u8>>,
    },
    Write {
        zxid: Zxid,
        parts: u32,
        data: Arc<Vec<u8>>,
    },
    /// End the snapshot at `zxid` from its `parts` parts and `data`, durably (fsync and
    /// rename), and say where it went: a leader's SNAP, whose parts the learner wrote as they
    /// came (with none, `data` is all of it and a snapshot being written is dropped).
    Finish {
        zxid: Zxid,
        parts: u32,
        data: Arc<Vec<u8>>,
        done: mpsc::Sender<Result<std::path::PathBuf, StorageError>>,
    },
    Purge,
    Barrier(mpsc::Sender<()>),
}

pub struct Storage {
    opts: StorageOptions,
    log_tx: mpsc::Sender<LogCmd>,
    snap_tx: Option<mpsc::Sender<SnapCmd>>,
    threads: Vec<JoinHandle<()>>,
    epochs: Epochs,
    /// The last zxid handed to the log (appended, truncated to, or a leader's snapshot that
    /// reset it): `currentEpoch` names it as the history that epoch vouches for
    /// (`ensemble_storage::epochs::current_text_through`; the core writes currentEpoch only
    /// once its synced history is durable, so this is at least that history's end).
    logged: std::sync::atomic::AtomicU64,
}

/// What recovery found, with anything the operator should hear about.
pub struct Opened {
    pub storage: Storage,
    pub recovered: Recovered,
    pub warnings: Vec<String>,
}

impl Storage {
    /// Recover from disk and start the writer threads. `events` is called from the log
    /// writer thread.
    pub fn open(
        opts: StorageOptions,
        events: impl Fn(LogEvent) + Send + Sync + 'static,
    ) -> Result<Opened, StorageError> {
        for d in [&opts.snap_dir, &opts.log_dir] {
            std::fs::create_dir_all(d).map_err(|e| StorageError::io(d, e))?;
        }
        // The recovery the simulator runs too (ensemble-storage), on the real directories.
        let rec = ensemble_storage::recover(
            &mut match opts.tree {
                Some(t) => fs::FsDir::loading_trees(&opts.snap_dir, t),
                None => fs::FsDir::new(&opts.snap_dir),
            },
            &mut fs::FsDir::new(&opts.log_dir),
        )?;
        let warnings = rec.warnings;
        let epochs = rec.recovered.epochs;
        let last = rec.last;
        let writer = Writer::new(
            opts.log_dir.clone(),
            opts.prealloc,
            opts.force_sync,
            rec.tail.map(|t| log::Tail::in_dir(&opts.log_dir, t)),
            last,
        )?;
        let (log_tx, log_rx) = mpsc::channel();
        let mut threads = Vec::new();
        let events: log::Events = Arc::new(events);
        let snap_events = Arc::clone(&events);
        threads.push(
            std::thread::Builder::new()
                .name("txn-log".into())
                .spawn(move || writer.run(log_rx, events))
                .map_err(|e| StorageError::io(&opts.log_dir, e))?,
        );
        // Not bounded: the core thread must never wait for the snapshot thread (a leader
        // blocked on a full queue while its own snapshot's parts were written to a busy disk
        // missed its pings for syncLimit and lost its quorum, in large_sync at 1,000 znodes).
        // Parts wait here only while the disk is slower than what hands them over.
        let (snap_tx, snap_rx) = mpsc::channel();
        let sopts = opts.clone();
        let slog = log_tx.clone();
        threads.push(
            std::thread::Builder::new()
                .name("snapshots".into())
                .spawn(move || snapshot_thread(sopts, snap_rx, slog, snap_events))
                .map_err(|e| StorageError::io(&opts.snap_dir, e))?,
        );
        Ok(Opened {
            storage: Storage {
                opts,
                log_tx,
                snap_tx: Some(snap_tx),
                threads,
                epochs,
                logged: std::sync::atomic::AtomicU64::new(last.map_or(0, |z| z.0)),
            },
            recovered: rec.recovered,
            warnings,
        })
    }

    pub fn options(&self) -> &StorageOptions {
        &self.opts
    }

    /// Queue txns (shared `Arc<Txn>`s, as the core's `Append` effect carries them, or owned
    /// ones); `LogEvent::Persisted` reports when they are durable.
    pub fn append<T: Into<Arc<Txn>>>(&self, txns: Vec<T>) -> Result<(), StorageError> {
        let txns: Vec<Arc<Txn>> = txns.into_iter().map(Into::into).collect();
        if let Some(t) = txns.last() {
            self.logged
                .store(t.zxid.0, std::sync::atomic::Ordering::Relaxed);
        }
        self.log_tx
            .send(LogCmd::Append(txns))
            .map_err(|_| StorageError::Closed)
    }

    fn log_call(
        &self,
        make: impl FnOnce(mpsc::Sender<Result<(), StorageError>>) -> LogCmd,
    ) -> Result<(), StorageError> {
        let (tx, rx) = mpsc::channel();
        self.log_tx
            .send(make(tx))
            .map_err(|_| StorageError::Closed)?;
        rx.recv().map_err(|_| StorageError::Closed)?
    }

    fn snapshot_barrier(&self) -> Result<(), StorageError> {
        let (tx, rx) = mpsc::channel();
        let s = self.snap_tx.as_ref().ok_or(StorageError::Closed)?;
        s.send(SnapCmd::Barrier(tx))
            .map_err(|_| StorageError::Closed)?;
        rx.recv().map_err(|_| StorageError::Closed)
    }

    /// Everything appended so far is durable.
    pub fn sync(&self) -> Result<(), StorageError> {
        self.log_call(|done| LogCmd::Sync { done })
    }

    /// Drop logged txns after `after` (and snapshots past it), durably.
    pub fn truncate(&self, after: Zxid) -> Result<(), StorageError> {
        self.snapshot_barrier()?;
        for (z, p) in snapshot::list_snapshots(&self.opts.snap_dir)? {
            if z > after {
                std::fs::remove_file(&p).map_err(|e| StorageError::io(&p, e))?;
            }
        }
        codec::fsync_dir(&self.opts.snap_dir)
            .map_err(|e| StorageError::io(&self.opts.snap_dir, e))?;
        self.logged
            .fetch_min(after.0, std::sync::atomic::Ordering::Relaxed);
        self.log_call(|done| LogCmd::Truncate { after, done })
    }

    /// A leading part of a snapshot still being written (`Write::SnapshotPart`): written in
    /// the background as it comes.
    pub fn snapshot_part(
        &self,
        zxid: Zxid,
        index: u32,
        data: Arc<Vec<u8>>,
    ) -> Result<(), StorageError> {
        let s = self.snap_tx.as_ref().ok_or(StorageError::Closed)?;
        let bytes = data.len() as u64;
        s.send(SnapCmd::Part { zxid, index, data })
            .map_err(|_| StorageError::Closed)?;
        part_budget::SNAP_PARTS.add(bytes);
        Ok(())
    }

    /// A snapshot of the applied state at `zxid`: its `parts` parts given before, then `data`.
    /// With `reset_log` it replaces everything on disk and is durable on return; otherwise it
    /// is written in the background and the log rolls to a new file so older files can be
    /// purged.
    pub fn snapshot(
        &self,
        zxid: Zxid,
        parts: u32,
        data: Arc<Vec<u8>>,
        reset_log: bool,
    ) -> Result<(), StorageError> {
        if reset_log {
            // Its parts (queued before it, in order) end here; a snapshot of ours being written
            // will never end (the tree it was of was replaced).
            let s = self.snap_tx.as_ref().ok_or(StorageError::Closed)?;
            let (done, written) = mpsc::channel();
            s.send(SnapCmd::Finish {
                zxid,
                parts,
                data,
                done,
            })
            .map_err(|_| StorageError::Closed)?;
            let written = written.recv().map_err(|_| StorageError::Closed)??;
            // Older snapshots belong to the history the leader just replaced.
            for (_, p) in snapshot::list_snapshots(&self.opts.snap_dir)? {
                if p != written {
                    std::fs::remove_file(&p).map_err(|e| StorageError::io(&p, e))?;
                }
            }
            codec::fsync_dir(&self.opts.snap_dir)
                .map_err(|e| StorageError::io(&self.opts.snap_dir, e))?;
            self.logged
                .store(zxid.0, std::sync::atomic::Ordering::Relaxed);
            self.log_call(|done| LogCmd::Reset { after: zxid, done })
        } else {
            let s = self.snap_tx.as_ref().ok_or(StorageError::Closed)?;
            s.send(SnapCmd::Write { zxid, parts, data })
                .map_err(|_| StorageError::Closed)?;
            self.log_tx
                .send(LogCmd::Roll)
                .map_err(|_| StorageError::Closed)
        }
    }

    pub fn persist_epochs(&mut self, new: Epochs) -> Result<(), StorageError> {
        let through = Zxid(self.logged.load(std::sync::atomic::Ordering::Relaxed));
        epochs::write_epochs_through(&self.opts.snap_dir, &self.epochs, &new, Some(through))?;
        self.epochs = new;
        Ok(())
    }

    /// Autopurge: keep the newest `snap_retain` snapshots and the logs they need.
    pub fn purge(&self) -> Result<(), StorageError> {
        let s = self.snap_tx.as_ref().ok_or(StorageError::Closed)?;
        s.send(SnapCmd::Purge).map_err(|_| StorageError::Closed)
    }

    /// Wait for background snapshot writes and purges queued so far.
    pub fn flush_background(&self) -> Result<(), StorageError> {
        self.snapshot_barrier()
    }

    /// Make everything durable and stop the writer threads.
    pub fn close(mut self) -> Result<(), StorageError> {
        let r1 = self.snapshot_barrier();
        self.snap_tx = None;
        let r2 = self.log_call(|done| LogCmd::Stop { done });
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        r1.and(r2)
    }
}

/// Counts a part out of the learner's SNAP part budget when dropped.
struct PartWritten(u64);

impl Drop for PartWritten {
    fn drop(&mut self) {
        part_budget::SNAP_PARTS.done(self.0);
    }
}

fn snapshot_thread(
    opts: StorageOptions,
    rx: mpsc::Receiver<SnapCmd>,
    log_tx: mpsc::Sender<LogCmd>,
    events: log::Events,
) {
    // The snapshot being written from its parts; `None` inside once it failed (reported).
    let mut pending: SnapshotParts<Option<SnapshotFileWriter>> = SnapshotParts::default();
    // The log still has every txn, but the core took the snapshot as on disk (a leader's
    // SNAPs stream from it, and would wait for a file that never comes): the server stops,
    // as ZooKeeper exits when a snapshot cannot be written.
    let lost = |zxid: Zxid, why: &dyn std::fmt::Display| {
        let m = format!("the snapshot at {zxid} cannot be written, stopping: {why}");
        tracing::error!("{m}");
        events(LogEvent::SnapshotFailed(m));
    };
    while let Ok(cmd) = rx.recv() {
        match cmd {
            SnapCmd::Part { zxid, index, data } => {
                // Counted out however it goes: the reader's cap is on what waits here.
                let _written = PartWritten(data.len() as u64);
                let start = || {
                    SnapshotFileWriter::create_with(&opts.snap_dir, zxid, opts.compression)
                        .map_err(|e| lost(zxid, &e))
                        .ok()
                };
                match pending.part(zxid, index, start) {
                    Some(file) => {
                        if let Some(Err(e)) = file.as_mut().map(|w| w.push(&data)) {
                            lost(zxid, &e);
                            *file = None; // removes the temporary
                        }
                    }
                    None => lost(zxid, &format_args!("part {index} came out of order")),
                }
            }
            SnapCmd::Write { zxid, parts, data } => {
                let done = match pending.finish(zxid, parts) {
                    Ok(None) => {
                        snapshot::write_snapshot_with(&opts.snap_dir, zxid, &data, opts.compression)
                    }
                    Ok(Some(Some(mut w))) => w.push(&data).and_then(|()| w.finish()),
                    Ok(Some(None)) => continue, // failed on the way, and was reported
                    Err(_) => {
                        lost(zxid, &format_args!("its {parts} parts did not all come"));
                        continue;
                    }
                };
                match done {
                    Ok(p) => tracing::info!("snapshot {} written", p.display()),
                    Err(e) => lost(zxid, &e),
                }
            }
            SnapCmd::Finish {
                zxid,
                parts,
                data,
                done,
            } => {
                let r = match pending.finish(zxid, parts) {
                    Ok(None) => {
                        snapshot::write_snapshot_with(&opts.snap_dir, zxid, &data, opts.compression)
                    }
                    Ok(Some(Some(mut w))) => w.push(&data).and_then(|()| w.finish()),
                    Ok(Some(None)) => Err(StorageError::Failed(format!(
                        "a part of the snapshot at {zxid} failed to write"
                    ))),
                    Err(_) => Err(StorageError::Failed(format!(
                        "the snapshot at {zxid}: its {parts} parts did not all come"
                    ))),
                };
                let _ = done.send(r);
            }
            SnapCmd::Purge => match purge_snapshots(&opts) {
                Ok(Some(keep_from)) => {
                    let _ = log_tx.send(LogCmd::Purge { keep_from });
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("autopurge failed: {e}"),
            },
            SnapCmd::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Delete snapshots beyond the newest `snap_retain`; returns the oldest kept snapshot's zxid
/// (the log before it is no longer needed) when there are enough snapshots to purge by.
fn purge_snapshots(opts: &StorageOptions) -> Result<Option<Zxid>, StorageError> {
    let snaps = snapshot::list_snapshots(&opts.snap_dir)?;
    let retain = opts.snap_retain.max(1);
    if snaps.len() < retain {
        return Ok(None);
    }
    for (_, p) in &snaps[retain..] {
        std::fs::remove_file(p).map_err(|e| StorageError::io(p, e))?;
        tracing::info!("autopurge: removed {}", p.display());
    }
    Ok(Some(snaps[retain - 1].0))
}

/// Total size of the regular files in a directory (for the `dirs` and `conf` words).
pub fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
