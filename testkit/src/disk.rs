//! A server's in-memory disk: the epoch files, the newest snapshot and the txn log. Appends are
//! volatile until an fsync that was issued after them completes; a crash keeps the synced part
//! and whatever of the unsynced tail the caller says survived (the simulator draws it, with a
//! torn last record that recovery drops; scripts and the fuzz harness lose it all).

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
    /// An fsync is under way (group commit: at most one at a time; the simulator's to keep).
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
    /// which the log is now durable (for `Event::Persisted`), if any entry is durable.
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

    /// fsync the first `n` unsynced appends (at least one, all when `n` is past the end):
    /// the zxid they are durable through, or `None` when nothing was waiting.
    pub fn fsync_first(&mut self, n: usize) -> Option<Zxid> {
        let waiting = self.unsynced().len();
        if waiting == 0 {
            return None;
        }
        let last = self.durable_prefix + n.clamp(1, waiting) - 1;
        let through = self.fsync(self.log[last].seq);
        debug_assert_eq!(through, Some(self.log[last].txn.zxid));
        through
    }

    /// fsync every append so far (`None` when nothing was waiting).
    pub fn fsync_all(&mut self) -> Option<Zxid> {
        self.fsync_first(usize::MAX)
    }

    /// Drop every durable log entry: for a driver that never restarts its server (a
    /// benchmark), so the log does not grow without bound. Recovery would miss them.
    pub fn forget_durable(&mut self) {
        self.log.drain(..self.durable_prefix);
        self.durable_prefix = 0;
    }

    /// The appends no fsync has covered yet, in write order.
    pub fn unsynced(&self) -> &[Entry] {
        &self.log[self.durable_prefix..]
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

    /// The process died. `survivors(unsynced)` says how many of the `unsynced` appends reached
    /// the platter anyway and whether the last of them is torn (then recovery drops it); it is
    /// asked only when there is an unsynced tail.
    pub fn crash(&mut self, survivors: impl FnOnce(usize) -> (usize, bool)) -> CrashLoss {
        self.parts = SnapshotAssembler::default();
        let first_volatile = self.durable_prefix;
        debug_assert!(self.log[..first_volatile].iter().all(|e| e.durable));
        let unsynced = self.log.len() - first_volatile;
        let (mut kept, mut torn) = (0, false);
        if unsynced > 0 {
            (kept, torn) = survivors(unsynced);
            assert!(
                kept <= unsynced,
                "{kept} of {unsynced} unsynced appends survive"
            );
            torn &= kept > 0;
            // a torn last record is half-written: recovery drops it
            kept -= usize::from(torn);
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
            torn,
        }
    }

    /// A crash that loses every unsynced append.
    pub fn crash_losing_unsynced(&mut self) -> CrashLoss {
        self.crash(|_| (0, false))
    }

    /// The disk's invariants: the log in zxid order and in write order, durable exactly up to
    /// the durable prefix, and no write numbered past the last one handed out.
    pub fn check(&self) {
        for w in self.log.windows(2) {
            assert!(
                w[0].txn.zxid < w[1].txn.zxid,
                "log out of zxid order: {} then {}",
                w[0].txn.zxid,
                w[1].txn.zxid
            );
            assert!(w[0].seq < w[1].seq, "log out of write order");
        }
        assert!(self.durable_prefix <= self.log.len());
        for (i, e) in self.log.iter().enumerate() {
            assert_eq!(
                e.durable,
                i < self.durable_prefix,
                "entry {} durable={} against a durable prefix of {}",
                e.txn.zxid,
                e.durable,
                self.durable_prefix
            );
            assert!(
                e.seq <= self.next_seq,
                "entry {} from the future",
                e.txn.zxid
            );
        }
    }

    /// What a restarting server reads back.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::txn;

    #[test]
    fn fsync_covers_only_what_was_written_before_it() {
        let mut d = Disk::default();
        let first = d.append(&[txn(1), txn(2)]);
        d.append(&[txn(3)]);
        assert_eq!(d.fsync(first), Some(Zxid::new(1, 2)));
        assert_eq!(d.unsynced().len(), 1);
        assert_eq!(d.fsync_first(5), Some(Zxid::new(1, 3)));
        assert_eq!(d.fsync_all(), None, "nothing left waiting");
    }

    #[test]
    fn a_crash_keeps_the_synced_part_and_what_survivors_says() {
        let mut d = Disk::default();
        d.append(&[txn(1), txn(2)]);
        d.fsync_first(1);
        d.append(&[txn(3), txn(4)]);
        let loss = d.crash(|n| (n, true));
        assert_eq!((loss.unsynced, loss.kept, loss.torn), (3, 2, true));
        let zxids: Vec<Zxid> = d.recovered().log.iter().map(|t| t.zxid).collect();
        assert_eq!(
            zxids,
            vec![Zxid::new(1, 1), Zxid::new(1, 2), Zxid::new(1, 3)]
        );
        d.append(&[txn(5)]);
        d.check();
        d.crash_losing_unsynced();
        d.check();
        assert_eq!(d.last_logged(), Zxid::new(1, 3));
    }

    #[test]
    fn truncate_and_reset_snapshot() {
        let mut d = Disk::default();
        d.append(&[txn(1), txn(2), txn(3)]);
        d.fsync_all();
        d.truncate(Zxid::new(1, 1));
        assert_eq!(d.last_logged(), Zxid::new(1, 1));
        assert!(d.unsynced().is_empty());
        d.snapshot_part(Zxid::new(1, 7), 0, b"ab");
        d.snapshot(Zxid::new(1, 7), 1, Arc::new(b"c".to_vec()), true);
        assert!(d.log.is_empty());
        assert_eq!(
            d.snapshot.as_ref().map(|s| s.1.as_slice()),
            Some(&b"abc"[..])
        );
        assert!(d.holds_durably(Zxid::new(1, 5)));
    }
}
