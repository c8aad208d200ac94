//! A server's in-memory disk: the epoch files, the newest snapshot and the txn log. Appends are
//! volatile until an fsync that was issued after them completes; a crash keeps the synced part
//! and whatever of the unsynced tail the caller says survived (the simulator draws it, with a
//! torn last record that recovery drops; scripts and the fuzz harness lose it all).
//!
//! Two views of the same writes: the logical one (txns, shared with the core's history, which
//! the checkers read) and the bytes the node would have written ([`DataDir`]: the log records,
//! snapshot files and epoch files of `ensemble-storage`). A restart reads the bytes back
//! through the node's own recovery ([`Disk::recover`]), which must agree with the logical view.

use crate::disk_faults::Dir;
use ensemble_core::server::{Epochs, Recovered, RecoveredSnapshot};
use ensemble_core::tree::SnapshotAssembler;
use ensemble_core::txn::Txn;
use ensemble_core::zxid::Zxid;
use ensemble_storage::log::{encode_record, file_header, log_file_name, place_record};
use ensemble_storage::snapshot::snapshot_file_name;
use ensemble_storage::{MemDir, StorageError};
use std::sync::Arc;

/// Snapshots kept on a disk (the node's `autopurge.snapRetainCount` default): recovery falls
/// back to an older one when the newest fails its checksum.
pub const SNAP_RETAIN: usize = 3;

/// A server's data dir as bytes: `dataDir/version-2` (snapshots, epochs) and
/// `dataLogDir/version-2` (the txn log).
#[derive(Clone, Debug, Default)]
pub struct DataDir {
    pub snap: MemDir,
    pub log: MemDir,
}

#[derive(Clone, Debug)]
pub struct Entry {
    /// Shared with the core's history and the other disks (no copy per server).
    pub txn: Arc<Txn>,
    /// Write order on this disk, to match fsyncs to the appends before them.
    pub seq: u64,
    pub durable: bool,
    /// Where its record ends in the log file (0 on a disk without bytes).
    pub end: usize,
}

#[derive(Clone, Default)]
pub struct Disk {
    pub epochs: Epochs,
    pub snapshot: Option<(Zxid, Arc<Vec<u8>>)>,
    pub log: Vec<Entry>,
    next_seq: u64,
    /// Every entry before this index is durable.
    pub(crate) durable_prefix: usize,
    /// An fsync is under way (group commit: at most one at a time; the simulator's to keep).
    pub fsync_in_flight: bool,
    /// Parts of a snapshot still being written (a temporary file: a crash loses it).
    parts: SnapshotAssembler,
    /// The bytes, unless this disk keeps only the logical view (a benchmark's).
    pub files: Option<DataDir>,
    /// The log file appends go to.
    pub(crate) log_file: Option<String>,
    /// What the last recovery warned of (a torn tail cut, a snapshot that failed its check).
    pub recovery_warnings: Vec<String>,
    /// Storage faults waiting for the next recovery (`disk_faults.rs`).
    pub(crate) damage: Vec<crate::disk_faults::Damage>,
    /// A storage fault ever hit this disk: its recovery goes through [`Disk::trial`].
    pub damaged: bool,
    /// A recovery accepted damage onto these bytes (a later refusal may be its doing).
    pub scarred: bool,
    /// Fsyncs still to be acknowledged without being done (a lying disk).
    pub(crate) lying_fsyncs: u32,
    /// The log file and the offset from which its bytes are not on the platter, though
    /// fsyncs said so.
    pub(crate) platter: Option<(String, usize)>,
    /// The snapshots on disk, oldest first, with the data written (what a fallback must find).
    pub(crate) retained: Vec<(Zxid, Arc<Vec<u8>>)>,
    /// The next durable write of this kind fails (`write_errors.rs`).
    pub(crate) failing: Option<crate::write_errors::FailingWrite>,
    /// The last currentEpoch written and the history it vouched for (the last zxid durable
    /// then), as the simulator saw it written: the truth a recovery is judged against, kept
    /// apart from the file's own second line (`election.epoch-vouched`).
    pub vouched: Option<(u32, Zxid)>,
}

/// Records encoded lately, by txn: the servers of one run log the same `Arc<Txn>` (a proposal
/// is shared, not copied), so each is encoded once, not once per server. Only speed depends on
/// it (a miss encodes again); the txn is held, so its address is not reused while cached.
const RECORD_CACHE: usize = 32;

/// The ring's next slot to replace, and its (txn, record) pairs.
type RecordRing = (usize, Vec<(Arc<Txn>, Arc<[u8]>)>);

thread_local! {
    static RECORDS: std::cell::RefCell<RecordRing> =
        const { std::cell::RefCell::new((0, Vec::new())) };
    /// The buffer a record is encoded into before it is copied out at its size: grown once,
    /// not a few times per record.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn encoded(t: &Arc<Txn>) -> Arc<[u8]> {
    RECORDS.with(|c| {
        let (next, ring) = &mut *c.borrow_mut();
        if let Some((_, r)) = ring.iter().find(|(k, _)| Arc::ptr_eq(k, t)) {
            return Arc::clone(r);
        }
        let r: Arc<[u8]> = SCRATCH.with(|b| {
            let buf = &mut *b.borrow_mut();
            buf.clear();
            // encoded for offset 0; `write_record` places it where it lands
            encode_record(t, buf, 0).expect("a txn the core made encodes");
            Arc::from(&buf[..])
        });
        if ring.len() < RECORD_CACHE {
            ring.push((Arc::clone(t), Arc::clone(&r)));
        } else {
            ring[*next] = (Arc::clone(t), Arc::clone(&r));
            *next = (*next + 1) % RECORD_CACHE;
        }
        r
    })
}

/// What a crash did to the disk, for the trace.
pub struct CrashLoss {
    pub unsynced: usize,
    pub kept: usize,
    pub torn: bool,
}

impl Disk {
    /// A disk that keeps its bytes too, named `name` in messages (`n3`).
    pub fn with_files(name: &str) -> Disk {
        Disk {
            files: Some(DataDir {
                snap: MemDir::new(format!("{name}/data/version-2")),
                log: MemDir::new(format!("{name}/datalog/version-2")),
            }),
            ..Disk::default()
        }
    }

    /// Append; returns the write sequence number an fsync must cover.
    pub fn append(&mut self, txns: &[Arc<Txn>]) -> u64 {
        for t in txns {
            self.next_seq += 1;
            let end = self.write_record(t);
            self.log.push(Entry {
                txn: Arc::clone(t),
                seq: self.next_seq,
                durable: false,
                end,
            });
        }
        self.next_seq
    }

    /// The record's bytes at the end of the log file (a new file for the first): where it ends.
    fn write_record(&mut self, t: &Arc<Txn>) -> usize {
        let Some(files) = self.files.as_mut() else {
            return 0;
        };
        let name = self.log_file.get_or_insert_with(|| {
            let name = log_file_name(t.zxid);
            // created, its header written and synced, as the node's writer does
            files.log.put(&name, file_header().to_vec());
            name
        });
        let record = encoded(t);
        files
            .log
            .append_with(name, &record, |r, at| place_record(r, 0, at as u64))
    }

    /// The data dir is lost (a replaced drive, a wiped volume): an empty disk, as a new
    /// server's, with the same names for its files.
    pub fn wipe(&mut self) {
        let files = self.files.as_ref().map(|f| DataDir {
            snap: MemDir::new(f.snap.name.clone()),
            log: MemDir::new(f.log.name.clone()),
        });
        *self = Disk {
            files,
            ..Disk::default()
        };
    }

    /// Does this disk hold anything a server acknowledged or promised (epochs, txns, a
    /// snapshot)?
    pub fn holds_state(&self) -> bool {
        self.epochs != Epochs::default() || !self.log.is_empty() || self.snapshot.is_some()
    }

    /// What an operator does after putting back an older copy of a data dir: remove
    /// `currentEpoch`, so that the server vouches for nothing until it has synced from the
    /// ensemble (the node's README, "Disk loss"). The crash that came before made every
    /// write durable or dropped it.
    pub fn forget_current_epoch(&mut self) {
        use ensemble_storage::epochs::CURRENT;
        if let Some(f) = self.files.as_mut() {
            f.snap.remove_file(CURRENT);
        }
        self.epochs.current_epoch = 0;
    }

    /// Would a restart keep currentEpoch (the server vouching for its history): one is set,
    /// and the log and snapshot are not short of the history it was written over (the
    /// node's recovery removes it then, `ensemble_storage::recover`). A damaged disk's
    /// verdict is its recovery's.
    pub fn vouches(&self) -> bool {
        self.epochs.current_epoch != 0
            && self.vouched.is_none_or(|(e, through)| {
                e != self.epochs.current_epoch || self.durable_through() >= through
            })
    }

    /// The last zxid durable on this disk, in the log or the snapshot.
    pub fn durable_through(&self) -> Zxid {
        let logged = self
            .durable_prefix
            .checked_sub(1)
            .map(|i| self.log[i].txn.zxid);
        let snap = self.snapshot.as_ref().map(|(z, _)| *z);
        logged.max(snap).unwrap_or(Zxid::ZERO)
    }

    /// Durable: the epoch files, written as the node writes them.
    pub fn persist_epochs(&mut self, epochs: Epochs) {
        use ensemble_storage::epochs::{ACCEPTED, CURRENT, accepted_text, current_text_through};
        // the history the epoch vouches for: what is durable now (the core writes
        // currentEpoch after the synced history is)
        let through = self.durable_through();
        if let Some(f) = self.files.as_mut() {
            if (epochs.accepted_epoch, epochs.accepted_from)
                != (self.epochs.accepted_epoch, self.epochs.accepted_from)
            {
                f.snap.put(ACCEPTED, accepted_text(&epochs).into_bytes());
                self.damage.retain(|d| !d.touches(Dir::Snap, ACCEPTED, 0));
            }
            if epochs.current_epoch != self.epochs.current_epoch {
                f.snap
                    .put(CURRENT, current_text_through(&epochs, through).into_bytes());
                self.damage.retain(|d| !d.touches(Dir::Snap, CURRENT, 0));
            }
        }
        if epochs.current_epoch != self.epochs.current_epoch {
            self.vouched = Some((epochs.current_epoch, through));
        }
        self.epochs = epochs;
    }

    /// An fsync issued when `upto` was the last write completed: returns the zxid through
    /// which the log is now durable (for `Event::Persisted`), if any entry is durable.
    pub fn fsync(&mut self, upto: u64) -> Option<Zxid> {
        // entries are in write order, so the covered ones are a prefix of the rest
        while self.durable_prefix < self.log.len() && self.log[self.durable_prefix].seq <= upto {
            self.log[self.durable_prefix].durable = true;
            self.durable_prefix += 1;
        }
        if let (Some(f), Some(name), Some(i)) = (
            self.files.as_mut(),
            self.log_file.as_ref(),
            self.durable_prefix.checked_sub(1),
        ) {
            if self.lying_fsyncs > 0 {
                // acknowledged, not done: the bytes stay where the last real fsync left them
                self.lying_fsyncs -= 1;
                let synced = f.log.file(name).map_or(0, |m| m.durable_len());
                if self.platter.is_none() && synced < self.log[i].end {
                    self.platter = Some((name.clone(), synced));
                }
            } else {
                // a real fsync writes every dirty page of the file
                self.platter = None;
            }
            f.log.sync_to(name, self.log[i].end);
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
        assert!(self.files.is_none(), "a disk with bytes would lose them");
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
        // the node cuts the file after the last record kept, or removes a file left empty
        if let (Some(f), Some(name)) = (self.files.as_mut(), self.log_file.as_ref()) {
            let (name, from) = (name.clone(), self.log.last().map_or(0, |e| e.end));
            match self.log.last() {
                Some(e) => f.log.truncate(&name, e.end),
                None => {
                    f.log.remove_file(&name);
                    self.log_file = None;
                }
            }
            self.forget_damage(Dir::Log, &name, from);
        }
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
        if let Some(f) = self.files.as_mut() {
            let mut gone: Vec<(Dir, String)> = Vec::new();
            if reset_log {
                // the history the leader just replaced: every log file and older snapshot
                for n in f.log.names().map(str::to_string).collect::<Vec<_>>() {
                    f.log.remove_file(&n);
                    gone.push((Dir::Log, n));
                }
                self.log_file = None;
                for (_, n) in snapshots(&f.snap) {
                    f.snap.remove_file(&n);
                    gone.push((Dir::Snap, n));
                }
                self.retained.clear();
            }
            let name = snapshot_file_name(zxid);
            f.snap.put_snapshot(&name, zxid, Arc::clone(&data));
            gone.push((Dir::Snap, name));
            self.retained.retain(|(z, _)| *z != zxid);
            self.retained.push((zxid, Arc::clone(&data)));
            // autopurge: the newest few (the log is kept whole, as recovery skips what a
            // snapshot covers)
            for (_, n) in snapshots(&f.snap).into_iter().skip(SNAP_RETAIN) {
                f.snap.remove_file(&n);
                gone.push((Dir::Snap, n));
            }
            let snap = &f.snap;
            self.retained
                .retain(|(z, _)| snap.file(&snapshot_file_name(*z)).is_some());
            for (d, n) in gone {
                self.forget_damage(d, &n, 0);
            }
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

    /// The data of the snapshot at `zxid`, if this disk has it: what a leader streams a SNAP
    /// from (`Action::SendSnapshot`).
    pub fn snapshot_data(&self, zxid: Zxid) -> Option<Arc<Vec<u8>>> {
        match &self.snapshot {
            Some((z, data)) if *z == zxid => Some(Arc::clone(data)),
            _ => self
                .retained
                .iter()
                .find(|(z, _)| *z == zxid)
                .map(|(_, data)| Arc::clone(data)),
        }
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
    /// the platter anyway and, when the last of them is torn, a draw that picks the byte it was
    /// torn at (then recovery drops it); it is asked only when there is an unsynced tail.
    pub fn crash(&mut self, survivors: impl FnOnce(usize) -> (usize, Option<u64>)) -> CrashLoss {
        self.parts = SnapshotAssembler::default();
        let first_volatile = self.durable_prefix;
        debug_assert!(self.log[..first_volatile].iter().all(|e| e.durable));
        let unsynced = self.log.len() - first_volatile;
        let (mut kept, mut tear) = (0, None);
        if unsynced > 0 {
            (kept, tear) = survivors(unsynced);
            assert!(
                kept <= unsynced,
                "{kept} of {unsynced} unsynced appends survive"
            );
            if kept == 0 {
                tear = None;
            }
            // a torn last record is half-written: recovery drops it
            kept -= usize::from(tear.is_some());
        }
        // the bytes: whole records through the last kept, and part of a torn one
        let through = first_volatile + kept;
        let mut bytes_end = through.checked_sub(1).map_or(0, |i| self.log[i].end);
        if let (Some(draw), Some(torn)) = (tear, self.log.get(through)) {
            let start = bytes_end.max(ensemble_storage::log::HEADER_LEN);
            let len = torn.end - start;
            bytes_end = start + (draw % len.max(1) as u64) as usize;
        }
        let durable_end = first_volatile
            .checked_sub(1)
            .map_or(0, |i| self.log[i].end)
            .max(ensemble_storage::log::HEADER_LEN);
        if let Some(f) = self.files.as_mut() {
            f.log
                .crash(|_, volatile| bytes_end.saturating_sub(durable_end).min(volatile));
        }
        self.log.truncate(through);
        // what survived is on the platter now
        for e in &mut self.log {
            e.durable = true;
        }
        self.durable_prefix = self.log.len();
        self.fsync_in_flight = false;
        CrashLoss {
            unsynced,
            kept,
            torn: tear.is_some(),
        }
    }

    /// A crash that loses every unsynced append.
    pub fn crash_losing_unsynced(&mut self) -> CrashLoss {
        self.crash(|_| (0, None))
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

    /// What a restarting server reads back: on a disk with bytes, through the node's recovery
    /// (`ensemble-storage`), which must find what the logical view holds.
    pub fn recover(&mut self) -> Result<Recovered, String> {
        let Some(f) = self.files.as_mut() else {
            return Ok(self.recovered());
        };
        let rec = ensemble_storage::recover(&mut f.snap, &mut f.log)
            .map_err(|e: StorageError| e.to_string())?;
        self.log_file = rec.tail.map(|t| t.name);
        self.recovery_warnings = rec.warnings;
        if rec.forgot_current_epoch {
            // the log read back shorter than the history currentEpoch vouches for: the
            // server vouches for nothing until it has synced
            self.epochs.current_epoch = 0;
        }
        let expected = self.recovered();
        let zxids = |r: &Recovered| -> Vec<Zxid> { r.log.iter().map(|t| t.zxid).collect() };
        let snap = |r: &Recovered| r.snapshot.as_ref().map(|s| s.0);
        if zxids(&rec.recovered) != zxids(&expected)
            || snap(&rec.recovered) != snap(&expected)
            || rec.recovered.epochs != expected.epochs
        {
            return Err(format!(
                "the bytes recover to snapshot {:?}, log {:?}, epochs {:?}; what was written: \
                 snapshot {:?}, log {:?}, epochs {:?}",
                snap(&rec.recovered),
                zxids(&rec.recovered),
                rec.recovered.epochs,
                snap(&expected),
                zxids(&expected),
                expected.epochs
            ));
        }
        Ok(rec.recovered)
    }

    /// The logical view of what a restarting server reads back.
    pub fn recovered(&self) -> Recovered {
        let snap_z = self.snapshot.as_ref().map(|s| s.0).unwrap_or(Zxid::ZERO);
        Recovered {
            epochs: self.epochs,
            snapshot: self
                .snapshot
                .as_ref()
                .map(|(z, d)| (*z, RecoveredSnapshot::Bytes(Arc::clone(d)))),
            log: self
                .log
                .iter()
                .filter(|e| e.txn.zxid > snap_z)
                .map(|e| Txn::clone(&e.txn))
                .collect(),
        }
    }
}

/// Snapshot files in `dir`, newest first.
fn snapshots(dir: &MemDir) -> Vec<(Zxid, String)> {
    ensemble_storage::recovery::list_snapshots(dir).unwrap_or_default()
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
        let loss = d.crash(|n| (n, Some(0)));
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

    #[test]
    fn the_bytes_recover_through_the_nodes_code_to_what_was_written() {
        for tear in [None, Some(0), Some(7), Some(1_000_003)] {
            let mut d = Disk::with_files("n1");
            d.persist_epochs(Epochs {
                accepted_epoch: 1,
                accepted_from: 2,
                current_epoch: 1,
            });
            d.append(&[txn(1), txn(2)]);
            d.fsync_first(1);
            d.append(&[txn(3), txn(4)]);
            let loss = d.crash(|n| (n, tear));
            assert_eq!(loss.torn, tear.is_some());
            let rec = d.recover().expect("recovers");
            let want: Vec<u32> = if tear.is_some() {
                vec![1, 2, 3]
            } else {
                vec![1, 2, 3, 4]
            };
            assert_eq!(
                rec.log.iter().map(|t| t.zxid.counter()).collect::<Vec<_>>(),
                want
            );
            assert_eq!(rec.epochs.accepted_from, 2);
            // appends go on after the recovered tail; a truncation and a SNAP reset later
            d.append(&[txn(8), txn(9)]);
            d.fsync_all();
            d.truncate(Zxid::new(1, 8));
            d.crash_losing_unsynced();
            let rec = d.recover().expect("recovers after the truncation");
            assert_eq!(rec.log.last().map(|t| t.zxid), Some(Zxid::new(1, 8)));
            d.snapshot(Zxid::new(1, 20), 0, Arc::new(b"tree".to_vec()), true);
            d.append(&[txn(21)]);
            d.crash_losing_unsynced();
            let rec = d.recover().expect("recovers after a SNAP");
            assert_eq!(rec.snapshot.map(|s| s.0), Some(Zxid::new(1, 20)));
            assert!(rec.log.is_empty(), "txn 21 was never synced");
        }
    }
}
