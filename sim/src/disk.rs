//! A server's simulated disk: the epoch files, the newest snapshot and the txn log. Appends are
//! volatile until an fsync that was issued after them completes; a crash keeps the synced part,
//! maybe some of the unsynced part (the OS may have written it back), and may tear the last
//! record that made it, which recovery then drops (as the node's storage does).

use crate::rng::SimRng;
use ensemble_core::server::{Epochs, Recovered};
use ensemble_core::txn::Txn;
use ensemble_core::zxid::Zxid;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Entry {
    pub txn: Txn,
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
    /// When the last scheduled fsync completes (fsyncs complete in order).
    pub fsync_done_at: u64,
}

/// What a crash did to the disk, for the trace.
pub struct CrashLoss {
    pub unsynced: usize,
    pub kept: usize,
    pub torn: bool,
}

impl Disk {
    /// Append; returns the write sequence number an fsync must cover.
    pub fn append(&mut self, txns: &[Txn]) -> u64 {
        for t in txns {
            self.next_seq += 1;
            self.log.push(Entry { txn: t.clone(), seq: self.next_seq, durable: false });
        }
        self.next_seq
    }

    /// An fsync issued when `upto` was the last write completed: returns the zxid through
    /// which the log is now durable (for `Event::Persisted`), if any entry was covered.
    pub fn fsync(&mut self, upto: u64) -> Option<Zxid> {
        let mut through = None;
        for e in &mut self.log {
            if e.seq <= upto {
                e.durable = true;
            }
            if e.durable {
                through = Some(e.txn.zxid);
            } else {
                break;
            }
        }
        through
    }

    pub fn truncate(&mut self, after: Zxid) {
        self.log.retain(|e| e.txn.zxid <= after);
    }

    pub fn snapshot(&mut self, zxid: Zxid, data: Arc<Vec<u8>>, reset_log: bool) {
        if reset_log {
            self.log.clear();
        } else {
            // the log before the snapshot is no longer needed for recovery
            self.log.retain(|e| e.txn.zxid > zxid);
        }
        self.snapshot = Some((zxid, data));
    }

    pub fn last_logged(&self) -> Zxid {
        let snap = self.snapshot.as_ref().map(|s| s.0).unwrap_or(Zxid::ZERO);
        self.log.last().map(|e| e.txn.zxid).unwrap_or(snap).max(snap)
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
        self.log.binary_search_by_key(&z, |e| e.txn.zxid).ok().map(|i| &self.log[i])
    }

    /// The process died: decide what of the unsynced tail survives.
    pub fn crash(&mut self, rng: &mut SimRng, survive: f64, torn: f64) -> CrashLoss {
        let first_volatile = self.log.iter().position(|e| !e.durable).unwrap_or(self.log.len());
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
        self.fsync_done_at = 0;
        CrashLoss { unsynced, kept, torn: is_torn }
    }

    pub fn recovered(&self) -> Recovered {
        let snap_z = self.snapshot.as_ref().map(|s| s.0).unwrap_or(Zxid::ZERO);
        Recovered {
            epochs: self.epochs,
            snapshot: self.snapshot.clone(),
            log: self.log.iter().filter(|e| e.txn.zxid > snap_z).map(|e| e.txn.clone()).collect(),
        }
    }
}
