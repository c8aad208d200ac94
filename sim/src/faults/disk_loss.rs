//! `disk-loss`: a server comes back with an empty data dir (a replaced drive, a wiped
//! volume), or with an older copy of it (a restored backup or volume snapshot: the copy its
//! last crash left, with `currentEpoch` removed, as the node's README tells the operator of a
//! restored copy to do). ZooKeeper refuses neither and counts such a server as if it still
//! held what it lost; the core does not count it as a witness until it has synced.
//!
//! The fault atlas: a swarm seed harms at most a minority of the voters' disks at a time,
//! lost ones (until the server writes a currentEpoch again) and those storage faults damaged
//! counted together (`storage.rs`), so every committed txn keeps a good copy on a quorum's
//! intact members and the ensemble can always recover. A scenario may go further on purpose.

use crate::params::FaultAction;
use crate::scheduler::Ev;
use crate::world::{Who, World};
use ensemble_core::txn::ServerId;
use ensemble_core::zxid::Zxid;

impl World {
    /// Disks are copied at each crash only while a disk loss may put a copy back.
    pub(crate) fn keeps_older_disks(&self) -> bool {
        self.params.random.disk_loss_every > 0
            || self
                .lanes
                .iter()
                .flatten()
                .chain(&self.params.schedule)
                .any(|s| matches!(s.action, FaultAction::DiskLoss { older: true, .. }))
    }

    /// A server whose state the atlas lets go: a voter only while the voters harmed already
    /// (lost, or damaged by storage faults: `storage.rs`), with it, stay a minority; mostly
    /// the leader (its loss forces the election where a lost state could be counted), else
    /// any server that is up.
    /// Is every txn on `id`'s disk committed? A disk that holds a txn still being voted on may
    /// carry an ACK the leader is about to count: lost then, the txn commits on fewer copies
    /// than a quorum (`zab.commit-without-quorum`, swarm seed 2717). The atlas waits for the
    /// commit; once committed, the txn is on a quorum and the bound above keeps it there.
    fn all_logged_committed(&self, id: ServerId) -> bool {
        let last = self.nodes[&id].disk.last_logged();
        last == Zxid(0) || self.reference.txns.contains_key(&last)
    }

    pub(crate) fn draw_disk_loss(&mut self) -> FaultAction {
        let r = self.params.random.clone();
        let up: Vec<ServerId> = self
            .servers
            .iter()
            .copied()
            .filter(|i| {
                self.nodes[i].up()
                    && !self.nodes[i].lost_state
                    && self.may_harm(*i)
                    && self.all_logged_committed(*i)
            })
            .collect();
        let leader = self
            .leader()
            .filter(|l| up.contains(l) && self.fault_rng.chance(0.6));
        let Some(id) = leader.or_else(|| self.fault_rng.pick(&up).copied()) else {
            return FaultAction::Nothing;
        };
        let older = self.fault_rng.chance(0.4) && self.nodes[&id].older_disk.is_some();
        let ms = self.fault_rng.exp(r.disk_loss_down.max(1)).max(10);
        FaultAction::DiskLoss { id, older, ms }
    }

    /// Crash `id`, take its data dir (or put back its older copy), restart it after `ms`.
    pub(crate) fn disk_loss(&mut self, id: ServerId, older: bool, ms: u64) {
        if !self.nodes.contains_key(&id) {
            return;
        }
        // the copy from before this crash (the crash keeps the current disk as the next one)
        let copy = self.nodes.get_mut(&id).and_then(|n| n.older_disk.take());
        self.crash(id);
        let n = self.nodes.get_mut(&id).expect("node");
        let had = n.disk.holds_state();
        let what = match copy.filter(|_| older) {
            Some(mut c) => {
                c.forget_current_epoch();
                n.disk = c;
                ensemble_core::probe!("sim.fault.disk-rollback");
                "an older copy of its data dir, currentEpoch removed"
            }
            None => {
                n.disk.wipe();
                ensemble_core::probe!("sim.fault.disk-loss");
                "an empty data dir"
            }
        };
        // a copy older than what it held lost state too (unless it held nothing)
        n.lost_state |= had;
        let lost = n.lost_state;
        self.log(
            Who::N(id),
            "DOWN",
            format_args!(
                "DISK LOSS: comes back in {ms} ms with {what}{}",
                if lost { "" } else { " (it held nothing)" }
            ),
        );
        self.schedule(self.sched.now + ms, Ev::Restart { node: id });
    }
}
