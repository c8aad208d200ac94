//! The core loop's [`DurableStore`]: where the core's writes go, in the order of
//! `ensemble_core::effect`.
//!
//! Appends are accepted into the loop's batch and handed to the txn log's writer at its end (one
//! hand-off for every append of the batch; the writer group-commits them and reports
//! `LogEvent::Persisted`), or earlier, before a later truncate, snapshot or epochs write, so
//! that it does not overtake them.
//! Barriers (`Truncate`, `PersistEpochs`, the leader's SNAP) are durable when `write` returns.

use crate::storage::{Storage, StorageError};
use ensemble_core::{DurableStore, Epochs, Txn, Write, Zxid};
use std::sync::Arc;

/// The storage operations the disk needs: [`Storage`] in the server, a fault-injecting store in
/// the core loop's tests. An `Err` means the write may not have happened.
pub(crate) trait Backend: Send {
    /// Queue txns; `LogEvent::Persisted` reports when they are durable.
    fn append(&mut self, txns: Vec<Arc<Txn>>) -> Result<(), StorageError>;
    /// Durable on return.
    fn truncate(&mut self, after: Zxid) -> Result<(), StorageError>;
    fn snapshot_part(
        &mut self,
        zxid: Zxid,
        index: u32,
        data: Arc<Vec<u8>>,
    ) -> Result<(), StorageError>;
    /// Durable on return when `reset_log`.
    fn snapshot(
        &mut self,
        zxid: Zxid,
        parts: u32,
        data: Arc<Vec<u8>>,
        reset_log: bool,
    ) -> Result<(), StorageError>;
    /// Durable on return.
    fn persist_epochs(&mut self, epochs: Epochs) -> Result<(), StorageError>;
    fn purge(&mut self) -> Result<(), StorageError>;
    fn close(self: Box<Self>) -> Result<(), StorageError>;
}

impl Backend for Storage {
    fn append(&mut self, txns: Vec<Arc<Txn>>) -> Result<(), StorageError> {
        Storage::append(self, txns)
    }
    fn truncate(&mut self, after: Zxid) -> Result<(), StorageError> {
        Storage::truncate(self, after)
    }
    fn snapshot_part(
        &mut self,
        zxid: Zxid,
        index: u32,
        data: Arc<Vec<u8>>,
    ) -> Result<(), StorageError> {
        Storage::snapshot_part(self, zxid, index, data)
    }
    fn snapshot(
        &mut self,
        zxid: Zxid,
        parts: u32,
        data: Arc<Vec<u8>>,
        reset_log: bool,
    ) -> Result<(), StorageError> {
        Storage::snapshot(self, zxid, parts, data, reset_log)
    }
    fn persist_epochs(&mut self, epochs: Epochs) -> Result<(), StorageError> {
        Storage::persist_epochs(self, epochs)
    }
    fn purge(&mut self) -> Result<(), StorageError> {
        Storage::purge(self)
    }
    fn close(self: Box<Self>) -> Result<(), StorageError> {
        Storage::close(*self)
    }
}

/// A write that failed, and what it was (for the message the server stops with).
#[derive(Debug)]
pub(crate) struct DiskError {
    pub what: &'static str,
    pub error: StorageError,
}

pub(crate) struct Disk {
    backend: Box<dyn Backend>,
    /// Txns accepted in this batch, not yet handed to the log writer.
    appends: Vec<Arc<Txn>>,
    /// Bytes of the snapshot parts handed over since the last part 0 (for the log line of a
    /// leader's SNAP, whose parts come before it).
    part_bytes: u64,
}

impl Disk {
    pub(crate) fn new(backend: Box<dyn Backend>) -> Disk {
        Disk {
            backend,
            appends: Vec::new(),
            part_bytes: 0,
        }
    }

    /// Hand the accepted txns to the log writer: at the end of a batch, and before any other
    /// write.
    pub(crate) fn flush_appends(&mut self) -> Result<(), DiskError> {
        if self.appends.is_empty() {
            return Ok(());
        }
        let txns = std::mem::take(&mut self.appends);
        self.backend.append(txns).map_err(|error| DiskError {
            what: "appending to the txn log",
            error,
        })
    }

    /// After a failed write: the server is stopping, and what it accepted goes nowhere.
    pub(crate) fn discard(&mut self) {
        self.appends.clear();
    }

    pub(crate) fn purge(&mut self) -> Result<(), StorageError> {
        self.backend.purge()
    }

    /// Make everything durable and stop the writers.
    pub(crate) fn close(self) -> Result<(), StorageError> {
        assert!(
            self.appends.is_empty(),
            "appends are handed over at each batch's end"
        );
        self.backend.close()
    }
}

impl DurableStore for Disk {
    type Error = DiskError;

    fn write(&mut self, write: Write) -> Result<(), DiskError> {
        if let Write::Append { txns } = write {
            // Accepted: durable once the writer reports it.
            self.appends.extend(txns);
            return Ok(());
        }
        // What was appended before goes first, so that a TRUNC cuts it and a snapshot rolls the
        // log after it. A snapshot's leading part is written in the background, on its own file:
        // it need not wait.
        if !matches!(write, Write::SnapshotPart { .. }) {
            self.flush_appends()?;
        }
        let barrier = write.is_barrier();
        let (what, result) = match write {
            Write::Append { .. } => unreachable!("handled above"),
            Write::Truncate { after } => {
                tracing::info!("truncating the txn log after {after}");
                ("truncating the txn log", self.backend.truncate(after))
            }
            Write::SnapshotPart { zxid, index, data } => {
                if index == 0 {
                    self.part_bytes = 0;
                }
                self.part_bytes += data.len() as u64;
                (
                    "writing a snapshot",
                    self.backend.snapshot_part(zxid, index, data),
                )
            }
            Write::Snapshot {
                zxid,
                parts,
                data,
                reset_log,
            } => {
                if reset_log {
                    let before = if parts > 0 { self.part_bytes } else { 0 };
                    tracing::info!(
                        "snapshot from the leader at {zxid} ({} bytes, in {} parts)",
                        before + data.len() as u64,
                        parts + 1
                    );
                }
                (
                    "writing a snapshot",
                    self.backend.snapshot(zxid, parts, data, reset_log),
                )
            }
            Write::PersistEpochs(e) => (
                "writing acceptedEpoch/currentEpoch",
                self.backend.persist_epochs(e),
            ),
        };
        // A barrier leaves nothing queued here: what follows it may depend on all of it.
        assert!(!barrier || self.appends.is_empty());
        result.map_err(|error| DiskError { what, error })
    }
}
