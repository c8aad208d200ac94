//! Faults: the kinds a swarm seed draws at random rates, their drawing (`draw`) and their
//! execution (`apply`), scheduled steps of a scenario included.

mod apply;
mod draw;

use crate::params::FaultStep;
use crate::scheduler::Ev;
use crate::world::{Who, World};
use ensemble_core::txn::ServerId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultKind {
    Partition,
    Clog,
    Swizzle,
    Reset,
    ClientReset,
    Crash,
    Pause,
    Stall,
    Spike,
    ClientPause,
    ClientCrash,
    ClientClose,
}

impl World {
    /// The sync-crash fault: the leader dies right after a learner took its SNAP or NEWLEADER
    /// (what it sent after is lost), and half of those times the learner too, before its
    /// sync is fsynced.
    pub(crate) fn sync_crash(&mut self, leader: ServerId, learner: ServerId) {
        if self.sched.now >= self.fault_end || self.violation.is_some() {
            return;
        }
        let p = self.params.sync_crash;
        let Some(rng) = self.sync_crash_rng.as_mut() else {
            return;
        };
        if !rng.chance(p) {
            return;
        }
        let both = rng.chance(0.5);
        let (down_leader, down_learner) = (rng.range(100, 3_000), rng.range(100, 3_000));
        self.log(
            Who::Net,
            "",
            format_args!(
                "SYNC-CRASH n{leader} after its sync of n{learner}{}",
                if both {
                    format!(", and n{learner}")
                } else {
                    String::new()
                }
            ),
        );
        self.crash(leader);
        self.schedule(self.sched.now + down_leader, Ev::Restart { node: leader });
        if both {
            self.crash(learner);
            self.schedule(self.sched.now + down_learner, Ev::Restart { node: learner });
        }
    }

    pub(crate) fn schedule_random_faults(&mut self) {
        let r = self.params.random.clone();
        let kinds = [
            (r.partition_every, FaultKind::Partition),
            (r.clog_every, FaultKind::Clog),
            (r.swizzle_every, FaultKind::Swizzle),
            (r.reset_every, FaultKind::Reset),
            (r.client_reset_every, FaultKind::ClientReset),
            (r.crash_every, FaultKind::Crash),
            (r.pause_every, FaultKind::Pause),
            (r.stall_every, FaultKind::Stall),
            (r.spike_every, FaultKind::Spike),
            (r.client_pause_every, FaultKind::ClientPause),
            (r.client_crash_every, FaultKind::ClientCrash),
            (r.client_close_every, FaultKind::ClientClose),
        ];
        for (every, kind) in kinds {
            if every > 0 {
                let at = self.sched.now + self.fault_rng.exp(every).max(1);
                self.schedule(at, Ev::Random(kind));
            }
        }
    }

    pub(crate) fn every(&self, k: FaultKind) -> u64 {
        let r = &self.params.random;
        match k {
            FaultKind::Partition => r.partition_every,
            FaultKind::Clog => r.clog_every,
            FaultKind::Swizzle => r.swizzle_every,
            FaultKind::Reset => r.reset_every,
            FaultKind::ClientReset => r.client_reset_every,
            FaultKind::Crash => r.crash_every,
            FaultKind::Pause => r.pause_every,
            FaultKind::Stall => r.stall_every,
            FaultKind::Spike => r.spike_every,
            FaultKind::ClientPause => r.client_pause_every,
            FaultKind::ClientCrash => r.client_crash_every,
            FaultKind::ClientClose => r.client_close_every,
        }
    }

    pub(crate) fn random_fault(&mut self, kind: FaultKind) {
        if self.sched.now >= self.fault_end {
            return;
        }
        let next = self.sched.now + self.fault_rng.exp(self.every(kind)).max(1);
        if next < self.fault_end {
            self.schedule(next, Ev::Random(kind));
        }
        let action = self.draw_fault(kind);
        // what the seed drew, exactly: `shrink` replays it as a schedule, one lane per kind
        self.drawn.push(FaultStep {
            at_ms: self.sched.now,
            lane: Some(kind as usize),
            action: action.clone(),
        });
        self.do_fault(action);
    }
}
