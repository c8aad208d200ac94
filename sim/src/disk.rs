//! A server's simulated disk: the epoch files, the newest snapshot and the txn log. Appends are
//! volatile until an fsync that was issued after them completes; a crash keeps the synced part,
//! maybe some of the unsynced part (the OS may have written it back), and may tear the last
//! record that made it, which recovery then drops (as the node's storage does).

use crate::rng::SimRng;
use ensemble_core::server::{Epochs, Recovered};
use ensemble_core::tree::SnapshotAssembler;
use ensemble_core::txn::Txn;
use ensemble_core::zxid::Zxid;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Entry {
    /// Shared with the core's history and the other disks (no copy per server).
    pub txn: Arc<Txn>,
    /// Write order on this disk, to match fsyncs to the appends before them.
    pub seq: u64,
    pub durable: bool,
}

#[derive(Default)]
pub struct Disk {
    pub epochs: Epochs,
    pub snapshot: Option<(Zxid, Arc<Vec<u8>>)>,
    pub log: Vec<Entry>,
    next_seq: u64,
    /// Every entry before this index is durable.
    durable_prefix: usize,
    /// An fsync is under way (group commit: at most one at a time).
    pub fsync_in_flight: bool,
    /// Parts of a snapshot still being written (a temporary file: a crash loses it).
    parts: SnapshotAssembler,
}

/// What a crash did to the disk, for the trace.
pub struct CrashLoss {
    pub unsynced: usize,
    pub kept: usize,
    pub torn: bool,
}

impl Disk {
    /// Append; returns the write sequence number an fsync must cover.
    pub fn append(&mut self, txns: &[Arc<Txn>]) -> u64 {
        for t in txns {
            self.next_seq += 1;
            self.log.push(Entry {
                txn: Arc::clone(t),
                seq: self.next_seq,
                durable: false,
            });
        }
        self.next_seq
    }

    /// An fsync issued when `upto` was the last write completed: returns the zxid through
    /// which the log is now durable (for `Event::Persisted`), if any entry was covered.
    pub fn fsync(&mut self, upto: u64) -> Option<Zxid> {
        // entries are in write order, so the covered ones are a prefix of the rest
        while self.durable_prefix < self.log.len() && self.log[self.durable_prefix].seq <= upto {
            self.log[self.durable_prefix].durable = true;
            self.durable_prefix += 1;
        }
        self.durable_prefix
            .checked_sub(1)
            .map(|i| self.log[i].txn.zxid)
    }

    pub fn last_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn truncate(&mut self, after: Zxid) {
        let keep = self.log.partition_point(|e| e.txn.zxid <= after);
        self.log.truncate(keep);
        self.durable_prefix = self.durable_prefix.min(keep);
    }

    /// The logged txns with zxid in (after, through].
    pub fn range(&self, after: Zxid, through: Zxid) -> &[Entry] {
        let a = self.log.partition_point(|e| e.txn.zxid <= after);
        let b = self.log.partition_point(|e| e.txn.zxid <= through);
        &self.log[a..b.max(a)]
    }

    pub fn snapshot_part(&mut self, zxid: Zxid, index: u32, data: &[u8]) {
        self.parts.part(zxid, index, data);
    }

    pub fn snapshot(&mut self, zxid: Zxid, parts: u32, data: Arc<Vec<u8>>, reset_log: bool) {
        let data = self
            .parts
            .finish(zxid, parts, data)
            .expect("a snapshot's parts all came before it, in order");
        if reset_log {
            self.log.clear();
            self.durable_prefix = 0;
        }
        // Without a reset the log is kept whole: recovery reads only what follows the
        // snapshot, and the checkers replay the history from it.
        self.snapshot = Some((zxid, data));
    }

    pub fn last_logged(&self) -> Zxid {
        let snap = self.snapshot.as_ref().map(|s| s.0).unwrap_or(Zxid::ZERO);
        self.log
            .last()
            .map(|e| e.txn.zxid)
            .unwrap_or(snap)
            .max(snap)
    }

    /// Does this disk hold txn `z` (logged, in any state, or inside the snapshot)?
    pub fn holds(&self, z: Zxid) -> bool {
        self.snapshot.as_ref().is_some_and(|s| s.0 >= z) || self.find(z).is_some()
    }

    /// Does this disk hold `z` durably?
    pub fn holds_durably(&self, z: Zxid) -> bool {
        self.snapshot.as_ref().is_some_and(|s| s.0 >= z) || self.find(z).is_some_and(|e| e.durable)
    }

    pub fn find(&self, z: Zxid) -> Option<&Entry> {
        self.log
            .binary_search_by_key(&z, |e| e.txn.zxid)
            .ok()
            .map(|i| &self.log[i])
    }

    /// The process died: decide what of the unsynced tail survives.
    pub fn crash(&mut self, rng: &mut SimRng, survive: f64, torn: f64) -> CrashLoss {
        self.parts = SnapshotAssembler::default();
        let first_volatile = self
            .log
            .iter()
            .position(|e| !e.durable)
            .unwrap_or(self.log.len());
        let unsynced = self.log.len() - first_volatile;
        let mut kept = 0;
        if unsynced > 0 && rng.chance(survive) {
            kept = rng.range(0, unsynced as u64) as usize;
        }
        let mut is_torn = false;
        if kept > 0 && rng.chance(torn) {
            // the last record that reached the disk is half-written: recovery drops it
            kept -= 1;
            is_torn = true;
        }
        self.log.truncate(first_volatile + kept);
        // what survived is on the platter now
        for e in &mut self.log {
            e.durable = true;
        }
        self.durable_prefix = self.log.len();
        self.fsync_in_flight = false;
        CrashLoss {
            unsynced,
            kept,
            torn: is_torn,
        }
    }

    pub fn recovered(&self) -> Recovered {
        let snap_z = self.snapshot.as_ref().map(|s| s.0).unwrap_or(Zxid::ZERO);
        Recovered {
            epochs: self.epochs,
            snapshot: self.snapshot.clone(),
            log: self
                .log
                .iter()
                .filter(|e| e.txn.zxid > snap_z)
                .map(|e| Txn::clone(&e.txn))
                .collect(),
        }
    }
}
