//! The ZAB log as this server holds it in memory: the recent committed txns a leader sends as
//! a DIFF (ZooKeeper's committedLog), followed by every logged txn not yet applied, with the
//! point through which the runtime reported the log durable. The txns themselves live on disk
//! (the runtime's `Append`); what is here is shared by reference with the effects and
//! messages that carry them, so a txn is never deep-copied.

use crate::txn::Txn;
use crate::zxid::Zxid;
use std::collections::VecDeque;
use std::sync::Arc;

pub(crate) struct ZabLog {
    /// In strictly increasing zxid order, all above `window_base`.
    history: VecDeque<Arc<Txn>>,
    /// Every txn with zxid > `window_base` that this server has logged is in `history`; the
    /// base itself is a point a DIFF can start from (a snapshot's zxid, or the last txn
    /// trimmed out of the window).
    window_base: Zxid,
    /// Where the window started when it was last given rather than trimmed to: the snapshot
    /// recovered from, or a leader's SNAP installed. Trims move `window_base` above it.
    floor: Zxid,
    /// The log is durable through this zxid (`Event::Persisted`).
    durable: Zxid,
}

impl ZabLog {
    /// The log found at start: `txns` (in zxid order, all above `base`) after a snapshot at
    /// `base`. What was on disk is durable.
    pub(crate) fn recovered(base: Zxid, txns: VecDeque<Arc<Txn>>) -> ZabLog {
        let last = txns.back().map(|t| t.zxid).unwrap_or(base);
        let log = ZabLog {
            history: txns,
            window_base: base,
            floor: base,
            durable: last,
        };
        log.check_order();
        log
    }

    pub(crate) fn last_logged(&self) -> Zxid {
        self.history
            .back()
            .map(|t| t.zxid)
            .unwrap_or(self.window_base)
    }

    pub(crate) fn durable(&self) -> Zxid {
        self.durable
    }

    pub(crate) fn window_base(&self) -> Zxid {
        self.window_base
    }

    pub(crate) fn floor(&self) -> Zxid {
        self.floor
    }

    /// Is every logged txn durable?
    pub(crate) fn all_durable(&self) -> bool {
        self.durable >= self.last_logged()
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Arc<Txn>> + Clone {
        self.history.iter()
    }

    /// The txn at `index` (from `position_after`).
    pub(crate) fn get(&self, index: usize) -> Arc<Txn> {
        Arc::clone(&self.history[index])
    }

    /// The index of the first txn above `zxid`.
    pub(crate) fn position_after(&self, zxid: Zxid) -> usize {
        // the usual asks (everything applied, nothing trimmable) answered at the ends, without
        // the binary search: it runs after every applied txn, snapshot step and event
        let (Some(first), Some(last)) = (self.history.front(), self.history.back()) else {
            return 0;
        };
        if first.zxid > zxid {
            return 0;
        }
        if last.zxid <= zxid {
            return self.history.len();
        }
        // Inside the window the ask is nearly always a logged zxid (a snapshot's, the applied
        // one), and an epoch's counters run without gaps: its index is guessed from the end of
        // the same epoch and taken only if the txn there is that zxid (strictly increasing
        // zxids, so exactly the txns up to it are at or below it). Otherwise the search, which
        // touches a txn per probe.
        if let Some(i) = self.index_guess(zxid, first.zxid, last.zxid)
            && self.history.get(i).is_some_and(|t| t.zxid == zxid)
        {
            return i + 1;
        }
        self.history.partition_point(|t| t.zxid <= zxid)
    }

    /// Where `zxid` would be if the counters of its epoch from `first` (or up to `last`) were
    /// consecutive; only a guess, [`ZabLog::position_after`] checks it.
    fn index_guess(&self, zxid: Zxid, first: Zxid, last: Zxid) -> Option<usize> {
        if zxid.epoch() == first.epoch() {
            usize::try_from(zxid.0.checked_sub(first.0)?).ok()
        } else if zxid.epoch() == last.epoch() {
            let back = usize::try_from(last.0.checked_sub(zxid.0)?).ok()?;
            (self.history.len() - 1).checked_sub(back)
        } else {
            None
        }
    }

    /// The txns in `(after, through]`.
    pub(crate) fn range(&self, after: Zxid, through: Zxid) -> Vec<Arc<Txn>> {
        let start = self.position_after(after);
        let end = self.position_after(through).max(start);
        self.history.range(start..end).cloned().collect()
    }

    /// Is `zxid` a point of this log a DIFF can start from?
    pub(crate) fn contains(&self, zxid: Zxid) -> bool {
        zxid == self.window_base || self.history.binary_search_by(|t| t.zxid.cmp(&zxid)).is_ok()
    }

    /// Where a learner whose last zxid `p` is not in our history can be cut back to (`upto`
    /// is our last logged zxid).
    ///
    /// A learner's log is always a prefix of the history of the leader of its last epoch `e`
    /// (= `p.epoch()`): what that leader established with (everything below `(e, 0)`), then
    /// txns of epoch `e`. What it established with was committed, and our currentEpoch is at
    /// least `e` (ACKEPOCH's check against a member of our epoch quorum, which has seen that
    /// establishment), so below `(e, 0)` our history is exactly that. Hence the
    /// common point is our last zxid of epoch `e` below `p` if we hold one, else our last zxid
    /// below `(e, 0)`. Everything the learner applied is committed, so it is at or below that
    /// point. `None` when the point fell out of our in-memory window: then SNAP.
    pub(crate) fn trunc_point(&self, p: Zxid, upto: Zxid) -> Option<Zxid> {
        let epoch_start = Zxid::new(p.epoch(), 0);
        let base = self.window_base;
        let below = |limit: Zxid| {
            self.history
                .iter()
                .map(|t| t.zxid)
                .chain([base])
                .filter(|z| *z <= upto && *z < limit && *z >= base)
                .max()
        };
        let point = match below(p) {
            Some(z) if z.epoch() == p.epoch() => Some(z),
            _ => below(epoch_start),
        };
        let point = point.filter(|z| *z < p);
        assert!(point.is_none_or(|z| z >= base && z <= upto && self.contains(z)));
        point
    }

    /// Log `txn` after everything logged so far.
    pub(crate) fn append(&mut self, txn: Arc<Txn>) {
        assert!(
            txn.zxid > self.last_logged(),
            "append {} after {}",
            txn.zxid,
            self.last_logged()
        );
        self.history.push_back(txn);
    }

    /// The runtime reports the log durable through `through` (clamped to what is logged).
    /// Whether the durable point moved.
    pub(crate) fn persisted(&mut self, through: Zxid) -> bool {
        let through = through.min(self.last_logged());
        if through <= self.durable {
            return false;
        }
        self.durable = through;
        assert!(self.durable <= self.last_logged());
        true
    }

    /// Drop every logged txn after `to` (a TRUNC): what is gone is no longer durable either.
    pub(crate) fn truncate(&mut self, to: Zxid) {
        assert!(
            to >= self.window_base,
            "TRUNC to {} below the window {}",
            to,
            self.window_base
        );
        self.drop_after(to);
        self.durable = self.durable.min(to);
        assert!(self.last_logged() <= to);
    }

    /// Forget the in-memory txns after `zxid` while the durable point stays: planted bugs
    /// whose memory and disk disagree.
    pub(crate) fn drop_after(&mut self, zxid: Zxid) {
        while self.history.back().is_some_and(|t| t.zxid > zxid) {
            self.history.pop_back();
        }
    }

    /// The durable point goes back to `zxid` at most (a planted bug's lost log tail).
    pub(crate) fn forget_durable_after(&mut self, zxid: Zxid) {
        self.durable = self.durable.min(zxid);
    }

    /// A leader's whole snapshot at `zxid` replaces the log: it restarts after it.
    pub(crate) fn reset_to_snapshot(&mut self, zxid: Zxid) {
        self.history.clear();
        self.window_base = zxid;
        self.floor = zxid;
        self.durable = zxid;
    }

    /// Trim the window as ZooKeeper keeps its committedLog (`zookeeper.commitLogCount`
    /// txns) while its txn log on disk serves older DIFFs: drop from the front only txns
    /// covered by the newest snapshot on disk (`snapshot`, and applied), keeping the last
    /// `keep` of those. Every txn after that snapshot stays, so a SNAP can always be streamed
    /// from its file with the log after it (the core reads no txn log back); without a
    /// snapshot nothing is dropped (the next one comes within `snapCount` txns). The DIFF
    /// window then starts at the last txn dropped. Whether the snapshot held back a trim the
    /// count alone would have made.
    pub(crate) fn trim(&mut self, applied: Zxid, snapshot: Option<Zxid>, keep: usize) -> bool {
        if self.history.len() <= keep {
            // nothing to drop, by the snapshot or by count (both keep `keep`): the common case,
            // run after every applied txn and snapshot step, without the binary searches
            return false;
        }
        let base = self.window_base;
        let limit = snapshot.map_or(base, |s| s.min(applied));
        let covered = self.position_after(limit);
        let drop = covered.saturating_sub(keep);
        let by_count = self.position_after(applied).saturating_sub(keep);
        for _ in 0..drop {
            if let Some(t) = self.history.pop_front() {
                self.window_base = t.zxid;
            }
        }
        assert!(self.window_base >= base, "a trim moved the window back");
        assert!(self.window_base == base || self.window_base <= limit);
        assert!(self.position_after(limit) <= keep);
        by_count > drop
    }

    /// A planted bug's trim: by count alone, past the snapshot on disk.
    pub(crate) fn trim_by_count(&mut self, applied: Zxid, keep: usize) {
        while self.history.len() > keep && self.history.front().is_some_and(|t| t.zxid <= applied) {
            if let Some(t) = self.history.pop_front() {
                self.window_base = t.zxid;
            }
        }
    }

    /// The window holds what a leader and `check_invariants` rely on. `applied` is the data
    /// tree's zxid. O(1) except the ordering scan in debug builds.
    pub(crate) fn check_invariants(&self, applied: Zxid) {
        let last = self.last_logged();
        assert!(applied <= last, "applied {applied} beyond logged {last}");
        assert!(
            self.durable <= last,
            "durable {} beyond logged {last}",
            self.durable
        );
        assert!(
            self.window_base <= applied,
            "DIFF window {} beyond applied {}",
            self.window_base,
            applied
        );
        assert!(
            self.floor <= self.window_base,
            "DIFF window {} below the floor {}",
            self.window_base,
            self.floor
        );
        if let Some(front) = self.history.front() {
            assert!(
                front.zxid > self.window_base,
                "history starts at {} within the window base {}",
                front.zxid,
                self.window_base
            );
        }
        self.check_order();
    }

    /// Strictly increasing zxids (append asserts each step; this re-checks the whole).
    fn check_order(&self) {
        debug_assert!(
            self.history
                .iter()
                .zip(self.history.iter().skip(1))
                .all(|(a, b)| a.zxid < b.zxid),
            "history out of zxid order"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{Origin, TxnOp};

    fn txn(epoch: u32, counter: u32) -> Arc<Txn> {
        Arc::new(Txn {
            zxid: Zxid::new(epoch, counter),
            time: 0,
            session: 1,
            cxid: 0,
            origin: Origin::NONE,
            op: TxnOp::CloseSession,
        })
    }

    #[test]
    fn position_after_counts_the_txns_at_or_below_at_every_point() {
        // the answers from the window's ends and the binary search agree with a walk
        let mut log = ZabLog::recovered(Zxid::new(1, 0), VecDeque::new());
        assert_eq!(log.position_after(Zxid::new(5, 0)), 0, "an empty window");
        for c in (2..=20).step_by(2) {
            log.append(txn(1, c));
        }
        for c in 0..=22 {
            let z = Zxid::new(1, c);
            let walked = log.iter().take_while(|t| t.zxid <= z).count();
            assert_eq!(log.position_after(z), walked, "at {z}");
        }
        assert_eq!(log.position_after(Zxid::new(2, 0)), 10);
        // consecutive counters in two epochs, gaps and asks between txns: the guess from
        // either end is taken only where it is right
        let mut log = ZabLog::recovered(Zxid::new(1, 0), VecDeque::new());
        for (e, c) in [
            (1, 1),
            (1, 2),
            (1, 3),
            (1, 5),
            (2, 1),
            (2, 2),
            (2, 4),
            (2, 5),
        ] {
            log.append(txn(e, c));
        }
        for e in 0..=3 {
            for c in 0..=7 {
                let z = Zxid::new(e, c);
                let walked = log.iter().take_while(|t| t.zxid <= z).count();
                assert_eq!(log.position_after(z), walked, "at {z}");
            }
        }
        let mut log = ZabLog::recovered(Zxid::new(1, 0), VecDeque::new());
        for c in (2..=20).step_by(2) {
            log.append(txn(1, c));
        }
        // a trim with nothing to drop (the window within `keep`) leaves it whole
        assert!(!log.trim(Zxid::new(1, 20), Some(Zxid::new(1, 20)), 10));
        assert_eq!(
            (log.iter().count(), log.window_base()),
            (10, Zxid::new(1, 0))
        );
        assert!(!log.trim(Zxid::new(1, 20), Some(Zxid::new(1, 20)), 4));
        assert_eq!(
            (log.iter().count(), log.window_base()),
            (4, Zxid::new(1, 12))
        );
    }

    #[test]
    fn append_persist_truncate_and_trim_keep_the_window() {
        let mut log = ZabLog::recovered(Zxid::new(1, 2), VecDeque::new());
        assert_eq!(log.last_logged(), Zxid::new(1, 2));
        for c in 3..=6 {
            log.append(txn(1, c));
        }
        assert!(!log.all_durable());
        assert!(log.persisted(Zxid::new(1, 5)));
        assert!(
            !log.persisted(Zxid::new(1, 4)),
            "the durable point never goes back"
        );
        assert!(log.contains(Zxid::new(1, 2)) && log.contains(Zxid::new(1, 4)));
        assert!(!log.contains(Zxid::new(1, 7)));
        assert_eq!(log.range(Zxid::new(1, 3), Zxid::new(1, 5)).len(), 2);
        log.truncate(Zxid::new(1, 4));
        assert_eq!(log.last_logged(), Zxid::new(1, 4));
        assert_eq!(log.durable(), Zxid::new(1, 4));
        assert!(
            log.trim(Zxid::new(1, 4), None, 1),
            "no snapshot: nothing dropped"
        );
        assert_eq!(log.window_base(), Zxid::new(1, 2));
        log.trim(Zxid::new(1, 4), Some(Zxid::new(1, 4)), 1);
        assert_eq!(log.window_base(), Zxid::new(1, 3));
        assert_eq!(log.iter().count(), 1);
        log.check_invariants(Zxid::new(1, 4));
    }

    #[test]
    fn the_window_keeps_every_txn_after_the_snapshot_and_the_retention_before_it() {
        let mut log = ZabLog::recovered(Zxid::new(1, 0), VecDeque::new());
        for c in 1..=10 {
            log.append(txn(1, c));
        }
        // a snapshot at 6, applied through 9: 6 covered txns, 2 kept of them
        assert!(log.trim(Zxid::new(1, 9), Some(Zxid::new(1, 6)), 2));
        assert_eq!(log.window_base(), Zxid::new(1, 4));
        assert_eq!(log.iter().next().map(|t| t.zxid), Some(Zxid::new(1, 5)));
        assert!(log.contains(Zxid::new(1, 6)) && log.contains(Zxid::new(1, 4)));
        // a snapshot beyond what is applied covers only the applied txns
        log.trim(Zxid::new(1, 7), Some(Zxid::new(1, 10)), 1);
        assert_eq!(log.window_base(), Zxid::new(1, 6));
        assert_eq!(log.iter().count(), 4);
        log.check_invariants(Zxid::new(1, 7));
    }

    #[test]
    fn a_learner_is_cut_back_to_the_last_common_point_or_snapped() {
        let mut log = ZabLog::recovered(Zxid::new(1, 2), VecDeque::new());
        for t in [txn(1, 3), txn(1, 4), txn(2, 1)] {
            log.append(t);
        }
        let upto = log.last_logged();
        assert_eq!(
            log.trunc_point(Zxid::new(1, 5), upto),
            Some(Zxid::new(1, 4))
        );
        assert_eq!(
            log.trunc_point(Zxid::new(3, 7), upto),
            Some(Zxid::new(2, 1))
        );
        assert_eq!(
            log.trunc_point(Zxid::new(1, 1), upto),
            None,
            "below the window: SNAP"
        );
    }

    #[test]
    #[should_panic(expected = "append")]
    fn an_append_out_of_order_is_refused() {
        let mut log = ZabLog::recovered(Zxid::ZERO, VecDeque::new());
        log.append(txn(2, 1));
        log.append(txn(1, 9));
    }
}
