//! Faults: the kinds a swarm seed draws at random rates, their drawing (`draw`) and their
//! execution (`apply`), scheduled steps of a scenario included.

mod apply;
mod core_heal;
mod disk_loss;
mod draw;
mod storage;
mod words;
mod write_error;

use crate::params::{FaultAction, FaultRates, FaultStep};
use crate::rng::SimRng;
use crate::scheduler::Ev;
use crate::world::{Who, World};
pub(crate) use core_heal::{Held, unstall_due};
use ensemble_core::txn::ServerId;
pub(crate) use storage::DiskFaults;

/// A kind of fault a swarm seed injects at a random rate during the fault phase. Its number
/// (`kind as usize`) is its row in [`FAULTS`] and its lane when `shrink` replays what a seed
/// drew as a schedule.
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
    Corrupt,
    Misdirect,
    LatentRead,
    LostFsync,
    DiskLoss,
    WriteError,
}

/// Everything about one fault kind, in one row: its name (run header, `shrink`), its rate,
/// how a swarm seed draws that rate, how one fault of it is drawn, and how `shrink` turns it
/// off.
pub(crate) struct FaultSpec {
    pub(crate) kind: FaultKind,
    /// Its name in the run header and in `shrink`'s steps.
    pub(crate) name: &'static str,
    /// Mean ms between two faults of the kind; 0 = off.
    pub(crate) every: fn(&FaultRates) -> u64,
    /// Draw its rate (and its lengths) for a swarm seed. The rows are drawn in table order.
    pub(crate) swarm: fn(&mut SimRng, Tick, &mut FaultRates),
    /// Draw one fault of the kind from the fault stream, as a concrete action.
    pub(crate) draw: fn(&mut World) -> FaultAction,
    /// Turn the kind off (what `shrink` tries first).
    pub(crate) off: fn(&mut FaultRates),
}

/// The server tick (ms), which some lengths are drawn in.
type Tick = u64;

/// A rate that is on with probability `prob`: a mean interval in [lo, hi), else 0 (off).
fn maybe(rng: &mut SimRng, prob: f64, lo: u64, hi: u64) -> u64 {
    if rng.chance(prob) {
        rng.range(lo, hi)
    } else {
        0
    }
}

/// The fault kinds, one row each, in `FaultKind` order (the order of the swarm's draws).
pub(crate) static FAULTS: [FaultSpec; 18] = [
    FaultSpec {
        kind: FaultKind::Partition,
        name: "partition",
        every: |r| r.partition_every,
        swarm: |rng, _, r| {
            r.partition_every = maybe(rng, 0.5, 2_000, 15_000);
            r.partition_len = rng.range(500, 10_000);
        },
        draw: World::draw_partition,
        off: |r| r.partition_every = 0,
    },
    FaultSpec {
        kind: FaultKind::Clog,
        name: "clog",
        every: |r| r.clog_every,
        swarm: |rng, _, r| {
            r.clog_every = maybe(rng, 0.3, 500, 5_000);
            r.clog_len = rng.range(50, 3_000);
        },
        draw: World::draw_clog,
        off: |r| r.clog_every = 0,
    },
    FaultSpec {
        kind: FaultKind::Swizzle,
        name: "swizzle-clog",
        every: |r| r.swizzle_every,
        swarm: |rng, _, r| r.swizzle_every = maybe(rng, 0.2, 5_000, 20_000),
        draw: World::draw_swizzle,
        off: |r| r.swizzle_every = 0,
    },
    FaultSpec {
        kind: FaultKind::Reset,
        name: "reset",
        every: |r| r.reset_every,
        swarm: |rng, _, r| r.reset_every = maybe(rng, 0.4, 300, 5_000),
        draw: World::draw_reset,
        off: |r| r.reset_every = 0,
    },
    FaultSpec {
        kind: FaultKind::ClientReset,
        name: "client-reset",
        every: |r| r.client_reset_every,
        swarm: |rng, _, r| r.client_reset_every = maybe(rng, 0.4, 300, 5_000),
        draw: World::draw_client_reset,
        off: |r| r.client_reset_every = 0,
    },
    FaultSpec {
        kind: FaultKind::Crash,
        name: "crash",
        every: |r| r.crash_every,
        swarm: |rng, _, r| {
            r.crash_every = maybe(rng, 0.5, 2_000, 15_000);
            r.down_len = rng.range(100, 8_000);
        },
        draw: World::draw_crash,
        off: |r| r.crash_every = 0,
    },
    FaultSpec {
        kind: FaultKind::Pause,
        name: "pause",
        every: |r| r.pause_every,
        swarm: |rng, tick, r| {
            r.pause_every = maybe(rng, 0.3, 3_000, 20_000);
            r.pause_len = rng.range(100, 30 * tick);
        },
        draw: World::draw_pause,
        off: |r| r.pause_every = 0,
    },
    FaultSpec {
        kind: FaultKind::Stall,
        name: "stall",
        every: |r| r.stall_every,
        // a stalled quorum side (a thread blocked with a lock held, ZOOKEEPER-2201) while the
        // client port serves: a leader keeps believing it leads past syncLimit, answering its
        // clients, while its followers elect another
        swarm: |rng, tick, r| {
            r.stall_every = maybe(rng, 0.45, 2_000, 15_000);
            r.stall_len = rng.range(2 * tick, 30 * tick);
        },
        draw: World::draw_stall,
        off: |r| r.stall_every = 0,
    },
    FaultSpec {
        kind: FaultKind::Spike,
        name: "spike",
        every: |r| r.spike_every,
        swarm: |rng, _, r| {
            r.spike_every = maybe(rng, 0.3, 1_000, 10_000);
            r.spike_len = rng.range(200, 3_000);
        },
        draw: World::draw_spike,
        off: |r| r.spike_every = 0,
    },
    FaultSpec {
        kind: FaultKind::ClientPause,
        name: "client-pause",
        every: |r| r.client_pause_every,
        swarm: |rng, _, r| {
            r.client_pause_every = maybe(rng, 0.2, 3_000, 20_000);
            r.client_pause_len = rng.range(100, 8_000);
        },
        draw: World::draw_client_pause,
        off: |r| r.client_pause_every = 0,
    },
    FaultSpec {
        kind: FaultKind::ClientCrash,
        name: "client-crash",
        every: |r| r.client_crash_every,
        swarm: |rng, _, r| r.client_crash_every = maybe(rng, 0.2, 5_000, 30_000),
        draw: World::draw_client_crash,
        off: |r| r.client_crash_every = 0,
    },
    FaultSpec {
        kind: FaultKind::ClientClose,
        name: "client-close",
        every: |r| r.client_close_every,
        swarm: |rng, _, r| r.client_close_every = maybe(rng, 0.2, 5_000, 30_000),
        draw: World::draw_client_close,
        off: |r| r.client_close_every = 0,
    },
    // Storage faults (`storage.rs`): each rate drawn from a stream of its own (`disk_rate`),
    // so the draws of every other parameter stay what they were before these existed.
    FaultSpec {
        kind: FaultKind::Corrupt,
        name: "corrupt",
        every: |r| r.corrupt_every,
        swarm: |rng, _, r| r.corrupt_every = disk_rate(rng, 0),
        draw: World::draw_corrupt,
        off: |r| r.corrupt_every = 0,
    },
    FaultSpec {
        kind: FaultKind::Misdirect,
        name: "misdirect",
        every: |r| r.misdirect_every,
        swarm: |rng, _, r| r.misdirect_every = disk_rate(rng, 1),
        draw: World::draw_misdirect,
        off: |r| r.misdirect_every = 0,
    },
    FaultSpec {
        kind: FaultKind::LatentRead,
        name: "latent-read",
        every: |r| r.latent_read_every,
        swarm: |rng, _, r| r.latent_read_every = disk_rate(rng, 2),
        draw: World::draw_latent_read,
        off: |r| r.latent_read_every = 0,
    },
    FaultSpec {
        kind: FaultKind::LostFsync,
        name: "lost-fsync",
        every: |r| r.lost_fsync_every,
        swarm: |rng, _, r| r.lost_fsync_every = disk_rate(rng, 3),
        draw: World::draw_lost_fsync,
        off: |r| r.lost_fsync_every = 0,
    },
    FaultSpec {
        kind: FaultKind::DiskLoss,
        name: "disk-loss",
        every: |r| r.disk_loss_every,
        // drawn from a stream of its own, so the rows before keep their draws
        swarm: |rng, _, r| {
            let mut own = rng.purpose(13);
            r.disk_loss_every = maybe(&mut own, 0.3, 3_000, 15_000);
            r.disk_loss_down = own.range(10, 3_000);
        },
        draw: World::draw_disk_loss,
        off: |r| r.disk_loss_every = 0,
    },
    // A failed durable write: the server stops (no atlas: a crash, nothing durable harmed).
    FaultSpec {
        kind: FaultKind::WriteError,
        name: "write-error",
        every: |r| r.write_error_every,
        swarm: |rng, _, r| r.write_error_every = disk_rate(rng, 4),
        draw: World::draw_write_error,
        off: |r| r.write_error_every = 0,
    },
];

/// A storage fault kind's rate for a swarm seed: on in about a third of the seeds, from the
/// seed's own stream for that kind (the parameter stream does not move).
fn disk_rate(rng: &mut SimRng, kind: u64) -> u64 {
    let mut own = rng.purpose(0x5107_0000 + kind);
    maybe(&mut own, 0.35, 2_000, 15_000)
}

impl FaultKind {
    /// The kind's row in [`FAULTS`].
    pub(crate) fn spec(self) -> &'static FaultSpec {
        let spec = &FAULTS[self as usize];
        assert_eq!(spec.kind, self, "FAULTS is in FaultKind order");
        spec
    }
}

/// Draw a swarm seed's fault rates, kind by kind in table order.
pub(crate) fn draw_rates(rng: &mut SimRng, tick: Tick, rates: &mut FaultRates) {
    for f in &FAULTS {
        (f.swarm)(rng, tick, rates);
    }
}

/// The names of the kinds that are on, in table order.
pub(crate) fn active_names(rates: &FaultRates) -> Vec<&'static str> {
    FAULTS
        .iter()
        .filter(|f| (f.every)(rates) > 0)
        .map(|f| f.name)
        .collect()
}

impl World {
    /// Does the sync-crash fault strike at this moment (a sync's, or `discovery`'s)? Its stream,
    /// to draw the rest from, when it does; only in the fault phase of a run still clean.
    fn crash_moment(&mut self, discovery: bool) -> Option<&mut SimRng> {
        if self.sched.now >= self.fault_end || self.violation.is_some() {
            return None;
        }
        let p = if discovery {
            self.params.discovery_crash
        } else {
            self.params.sync_crash
        };
        let rng = if discovery {
            self.discovery_crash_rng.as_mut()
        } else {
            self.sync_crash_rng.as_mut()
        }?;
        rng.chance(p).then_some(rng)
    }

    /// The sync-crash fault: the leader dies right after a learner took its SNAP or NEWLEADER
    /// (what it sent after is lost), and half of those times the learner too, before its
    /// sync is fsynced.
    pub(crate) fn sync_crash(&mut self, leader: ServerId, learner: ServerId) {
        let Some(rng) = self.crash_moment(false) else {
            return;
        };
        let both = rng.chance(0.5);
        let (down_leader, down_learner) = (rng.range(100, 3_000), rng.range(100, 3_000));
        ensemble_core::probe!("sim.fault.sync-crash");
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

    /// The sync-crash fault's discovery moment: a would-be leader dies right after a learner
    /// took its NEWEPOCH, so that learner has accepted an epoch no leader establishes. The
    /// next leader may propose the same epoch number from a quorum that never accepted it; the
    /// learner, joining late, answers with an ACKEPOCH that does not count and follows an epoch
    /// it decided on in a round of the older epoch's votes: what ZooKeeper's vote update at
    /// UPTODATE is for (plant `vote-epoch-stale`; without this moment, 2 swarm seeds of 2,000).
    pub(crate) fn discovery_crash(&mut self, leader: ServerId, learner: ServerId) {
        let Some(rng) = self.crash_moment(true) else {
            return;
        };
        let down = rng.range(100, 3_000);
        if self.nodes.get(&leader).is_none_or(|n| !n.up()) {
            return;
        }
        ensemble_core::probe!("sim.fault.discovery-crash");
        self.log(
            Who::Net,
            "",
            format_args!("DISCOVERY-CRASH n{leader} after n{learner} took its NEWEPOCH"),
        );
        self.crash(leader);
        self.schedule(self.sched.now + down, Ev::Restart { node: leader });
    }

    pub(crate) fn schedule_random_faults(&mut self) {
        for f in &FAULTS {
            let every = (f.every)(&self.params.random);
            if every > 0 {
                let at = self.sched.now + self.fault_rng.exp(every).max(1);
                self.schedule(at, Ev::Random(f.kind));
            }
        }
    }

    pub(crate) fn random_fault(&mut self, kind: FaultKind) {
        if self.sched.now >= self.fault_end {
            return;
        }
        let spec = kind.spec();
        let next = self.sched.now + self.fault_rng.exp((spec.every)(&self.params.random)).max(1);
        if next < self.fault_end {
            self.schedule(next, Ev::Random(kind));
        }
        let action = (spec.draw)(self);
        // what the seed drew, exactly: `shrink` replays it as a schedule, one lane per kind
        self.drawn.push(FaultStep {
            at_ms: self.sched.now,
            lane: Some(kind as usize),
            action: action.clone(),
        });
        self.do_fault(action);
    }

    /// Step `idx` of a lane of the schedule, as a drawn fault: the next of its lane is
    /// scheduled first, then it acts.
    pub(crate) fn lane_step(&mut self, lane: usize, idx: usize) {
        if let Some(next) = self.lanes[lane].get(idx + 1) {
            let at = next.at_ms.max(self.sched.now);
            self.schedule(at, Ev::Lane { lane, idx: idx + 1 });
        }
        let action = self.lanes[lane][idx].action.clone();
        self.do_fault(action);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_kind_order_and_names_are_unique() {
        for (i, f) in FAULTS.iter().enumerate() {
            assert_eq!(f.kind as usize, i);
            assert!(std::ptr::eq(f.kind.spec(), f));
        }
        let mut names: Vec<&str> = FAULTS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAULTS.len());
    }

    #[test]
    fn off_turns_exactly_its_kind_off() {
        // every kind on: each row's swarm draw, on seeds until it comes out on
        let mut on = FaultRates::default();
        for f in &FAULTS {
            let seed = (0..1_000u64)
                .find(|s| {
                    let mut r = on.clone();
                    (f.swarm)(&mut SimRng::new(*s), 100, &mut r);
                    (f.every)(&r) > 0
                })
                .expect("a seed that turns the kind on");
            (f.swarm)(&mut SimRng::new(seed), 100, &mut on);
            assert_eq!(active_names(&on).len(), f.kind as usize + 1);
        }
        for f in &FAULTS {
            let mut r = on.clone();
            (f.off)(&mut r);
            let left = active_names(&r);
            assert!(!left.contains(&f.name));
            assert_eq!(left.len(), FAULTS.len() - 1, "{} turned off others", f.name);
        }
    }
}
