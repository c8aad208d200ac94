//! Failed durable writes on a [`Disk`]: the `write-error` fault. A disk can be told that the
//! next durable write of one kind fails (an append to the log, the log's fsync, a truncation,
//! a snapshot, an epoch file): that write returns the I/O error the node's storage code would
//! return and changes nothing on the disk, as a write that never got through (a failed epoch
//! file or snapshot leaves the old one, the node writes both through a temporary file; a failed
//! append or fsync leaves the unsynced tail to what the crash after it keeps).
//!
//! What follows is the runtime's: ZooKeeper exits on a failed log write or fsync, and the
//! core's `Ready::drive` stops at the first failed write, so that nothing that depends on it
//! (an ACK, a reply) leaves; the simulator then crashes the server.

use crate::disk::Disk;
use ensemble_core::effect::Write;
use ensemble_storage::StorageError;
use std::io;
use std::path::Path;

/// The kind of durable write a `write-error` fault fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailingWrite {
    Append,
    Fsync,
    Truncate,
    /// A snapshot's closing write (its parts go to a temporary file; the node's failure
    /// shows when it is finished and renamed).
    Snapshot,
    Epochs,
}

impl FailingWrite {
    pub const ALL: [FailingWrite; 5] = [
        FailingWrite::Append,
        FailingWrite::Fsync,
        FailingWrite::Truncate,
        FailingWrite::Snapshot,
        FailingWrite::Epochs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FailingWrite::Append => "append",
            FailingWrite::Fsync => "fsync",
            FailingWrite::Truncate => "truncate",
            FailingWrite::Snapshot => "snapshot",
            FailingWrite::Epochs => "epoch-file",
        }
    }

    /// The kind of a write the core asks for (`None`: a snapshot's part, never failed here,
    /// so that a snapshot is failed whole or not at all).
    pub fn of(write: &Write) -> Option<FailingWrite> {
        match write {
            Write::Append { .. } => Some(FailingWrite::Append),
            Write::Truncate { .. } => Some(FailingWrite::Truncate),
            Write::SnapshotPart { .. } => None,
            Write::Snapshot { .. } => Some(FailingWrite::Snapshot),
            Write::PersistEpochs(_) => Some(FailingWrite::Epochs),
        }
    }

    /// The file the node would have been writing, for the error's text.
    fn file(self) -> &'static str {
        match self {
            FailingWrite::Append | FailingWrite::Fsync | FailingWrite::Truncate => {
                "datalog/version-2/log"
            }
            FailingWrite::Snapshot => "data/version-2/snapshot",
            FailingWrite::Epochs => "data/version-2/currentEpoch",
        }
    }
}

impl Disk {
    /// The next durable write of kind `what` fails (until then, every write goes through).
    pub fn fail_next(&mut self, what: FailingWrite) {
        self.failing = Some(what);
    }

    /// Nothing more fails: the write armed to fail (if any) goes through, and is returned.
    pub fn disarm(&mut self) -> Option<FailingWrite> {
        self.failing.take()
    }

    /// Is a write of kind `what` waiting to fail?
    pub fn failing(&self) -> Option<FailingWrite> {
        self.failing
    }

    /// Does this write fail? Once: the error, and the disk fails nothing more.
    pub fn write_fails(&mut self, what: FailingWrite) -> Option<StorageError> {
        if self.failing != Some(what) {
            return None;
        }
        self.failing = None;
        Some(StorageError::io(
            Path::new(what.file()),
            io::Error::other(format!("{} failed: input/output error", what.name())),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::txn;

    #[test]
    fn a_failure_waits_for_its_kind_and_fires_once() {
        let mut d = Disk::with_files("n1");
        d.fail_next(FailingWrite::Fsync);
        assert!(d.write_fails(FailingWrite::Append).is_none());
        d.append(&[txn(1)]);
        let e = d.write_fails(FailingWrite::Fsync).expect("the fsync fails");
        assert!(e.to_string().contains("fsync failed"), "{e}");
        assert!(d.write_fails(FailingWrite::Fsync).is_none(), "once");
        assert!(d.failing().is_none());
    }

    #[test]
    fn a_disarmed_failure_never_fires() {
        let mut d = Disk::with_files("n1");
        d.fail_next(FailingWrite::Snapshot);
        assert_eq!(d.disarm(), Some(FailingWrite::Snapshot));
        assert!(d.write_fails(FailingWrite::Snapshot).is_none());
        assert_eq!(d.disarm(), None);
    }

    #[test]
    fn every_write_has_its_kind() {
        let w = Write::Append { txns: vec![txn(1)] };
        assert_eq!(FailingWrite::of(&w), Some(FailingWrite::Append));
        let names: std::collections::BTreeSet<_> =
            FailingWrite::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), FailingWrite::ALL.len());
    }
}
