//! Storage faults through the node's own storage code: `corrupt` (a bit flipped in a durable
//! byte of a log, snapshot or epoch file), `misdirect` (a durable log write that landed at
//! another offset or in another file), `latent-read` (a sector whose reads fail) and
//! `lost-fsync` (fsyncs acknowledged and not done, then a crash). The damage waits on the
//! disk (testkit `disk_faults.rs`) until the server's next recovery, which runs
//! `ensemble_storage::recover` over the damaged bytes.
//!
//! The fault atlas (TigerBeetle's `ClusterFaultAtlas`, for a protocol with quorums): storage
//! faults hit at most a minority of the voters (and any observers), the first ones hit, so a
//! quorum of sound disks always remains; and a recovery that would lose logged txns (what a
//! damaged last record or a lying fsync looks like: a torn tail) is let through only when a
//! quorum of voters with sound disks, without this one, holds each of those txns durably.
//! Otherwise the damage is undone (the atlas spares it). Under that bound every committed
//! txn keeps a quorum of good copies, the intersection ZAB's elections rely on; a server
//! that votes with a shorter log is then no different from one that never got the txns.
//! Damage recovery sees in the middle of the log, in a snapshot with nothing to fall back
//! on, in an epoch file or on an unreadable sector makes the server refuse to start, as the
//! node does; it stays down to the end, and the liveness checks ask nothing of it.

use crate::check::{Claim, violation};
use crate::params::{DiskFault, FaultAction};
use crate::rng::SimRng;
use crate::scheduler::Ev;
use crate::world::{Who, World};
use ensemble_core::server::Recovered;
use ensemble_core::txn::ServerId;
use ensemble_core::zxid::Zxid;
use ensemble_testkit::disk_faults::{Damage, FileKind, Outcome};
use std::collections::{BTreeMap, BTreeSet};

/// The run's storage-fault state.
pub(crate) struct DiskFaults {
    /// The faults' draws, a stream of their own (runs without storage faults draw nothing).
    rng: SimRng,
    /// Servers whose disks storage faults may hit: the first ones hit, at most a minority
    /// of the voters, any observers.
    pub(crate) faulty: BTreeSet<ServerId>,
    /// Servers whose recovery refused their disk, and why: down to the end.
    pub(crate) refused: BTreeMap<ServerId, String>,
    /// A lying disk's draw, by server: how much of what its lies covered reaches the platter
    /// at the crash (from the fault's own draw, so a schedule replays it).
    lies: BTreeMap<ServerId, u64>,
    /// `write-error`'s draws, a stream of their own (the other kinds' draws stay put).
    pub(crate) write_errors: SimRng,
    /// How long a server whose write failed stays down, by server (from its fault's draw).
    pub(crate) write_error_down: BTreeMap<ServerId, u64>,
}

impl DiskFaults {
    pub(crate) fn new(rng: SimRng) -> DiskFaults {
        DiskFaults {
            faulty: BTreeSet::new(),
            refused: BTreeMap::new(),
            write_errors: rng.purpose(0x3e77),
            rng,
            lies: BTreeMap::new(),
            write_error_down: BTreeMap::new(),
        }
    }
}

impl World {
    /// The voters whose disks the atlas counts as harmed: damaged by storage faults (for
    /// good), or lost (`disk-loss`: until the server has synced again).
    pub(crate) fn harmed_voters(&self) -> BTreeSet<ServerId> {
        self.nodes
            .values()
            .filter(|n| !n.observer && (n.lost_state || self.disks.faulty.contains(&n.id)))
            .map(|n| n.id)
            .collect()
    }

    /// May `id`'s disk be harmed (damaged or lost) under the atlas's bound: at most a
    /// minority of the voters harmed at a time, damaged and lost ones together, counted with
    /// the voters whose disks vouch for nothing without harm (never synced since the ensemble
    /// formed: no `currentEpoch`)? A quorum of sound voters that vouch then always remains, so
    /// the ensemble can elect with the harmed ones down for good (a voter refused to start
    /// stays down; `contains_vouching_quorum` needs vouching voters or every voter). A server
    /// already harmed, or an observer, may be.
    pub(crate) fn may_harm(&self, id: ServerId) -> bool {
        let Some(n) = self.nodes.get(&id) else {
            return false;
        };
        let harmed = self.harmed_voters();
        if n.observer || harmed.contains(&id) {
            return true;
        }
        let voters = self.nodes.values().filter(|n| !n.observer).count();
        let unvouched = self
            .nodes
            .values()
            .filter(|v| {
                !v.observer
                    && v.id != id
                    && !harmed.contains(&v.id)
                    && v.disk.epochs.current_epoch == 0
            })
            .count();
        if harmed.len() >= (voters - 1) / 2 {
            return false;
        }
        if harmed.len() + unvouched >= (voters - 1) / 2 {
            ensemble_core::probe!("sim.disk.atlas-unvouched");
            return false;
        }
        true
    }

    /// May storage faults hit `id`'s disk (the atlas's bound)? Adds it to the faulty set.
    fn may_damage(&mut self, id: ServerId) -> bool {
        if self.disks.faulty.contains(&id) || self.may_harm(id) {
            self.disks.faulty.insert(id);
            return true;
        }
        false
    }

    /// Draw one storage fault of kind `fault`: a server (one already faulty when the bound
    /// is reached), a file kind, and the draw that picks the bytes.
    pub(crate) fn draw_disk(&mut self, fault: DiskFault) -> FaultAction {
        let ids = self.servers.clone();
        let mut id = ids[self.disks.rng.below(ids.len())];
        if !self.may_damage(id) {
            let faulty: Vec<ServerId> = self.disks.faulty.iter().copied().collect();
            match self.disks.rng.pick(&faulty) {
                Some(&f) => id = f,
                None => return FaultAction::Nothing,
            }
        }
        let file = match fault {
            DiskFault::LostFsync => FileKind::Log,
            // a record's write lands elsewhere in the log or in a snapshot (an epoch file is
            // shorter than a record)
            DiskFault::Misdirect => {
                if self.disks.rng.chance(0.6) {
                    FileKind::Log
                } else {
                    FileKind::Snapshot
                }
            }
            _ => {
                let u = self.disks.rng.unit();
                if u < 0.5 {
                    FileKind::Log
                } else if u < 0.75 {
                    FileKind::Snapshot
                } else {
                    FileKind::Epoch
                }
            }
        };
        // below 2^63: a scenario file (TOML) holds it as an integer
        let draw = self.disks.rng.range(0, i64::MAX as u64);
        FaultAction::Disk {
            fault,
            id,
            file,
            draw,
        }
    }

    pub(crate) fn draw_corrupt(&mut self) -> FaultAction {
        self.draw_disk(DiskFault::Corrupt)
    }

    pub(crate) fn draw_misdirect(&mut self) -> FaultAction {
        self.draw_disk(DiskFault::Misdirect)
    }

    pub(crate) fn draw_latent_read(&mut self) -> FaultAction {
        self.draw_disk(DiskFault::LatentRead)
    }

    pub(crate) fn draw_lost_fsync(&mut self) -> FaultAction {
        self.draw_disk(DiskFault::LostFsync)
    }

    /// Carry out a storage fault.
    pub(crate) fn disk_fault(&mut self, fault: DiskFault, id: ServerId, file: FileKind, draw: u64) {
        if !self.nodes.contains_key(&id) {
            return;
        }
        if fault == DiskFault::WriteError {
            // harms nothing durable: no atlas bound
            self.arm_write_error(id, file, draw);
            return;
        }
        if !self.may_damage(id) {
            self.log(
                Who::Sim,
                "",
                format_args!(
                    "atlas: {} on n{id} spared (storage faults already hit a minority of the voters)",
                    fault.name()
                ),
            );
            return;
        }
        let n = self.nodes.get_mut(&id).expect("node");
        let role = n.role();
        let damage: Option<Damage> = match fault {
            DiskFault::Corrupt => n.disk.corrupt(file, draw),
            DiskFault::Misdirect => n.disk.misdirect(file, draw),
            DiskFault::LatentRead => n.disk.latent(file, draw),
            DiskFault::WriteError => unreachable!("armed above"),
            DiskFault::LostFsync => {
                // its fsyncs lie until it crashes, 50 to 3,050 ms from now (within the fault
                // phase, or the fault does nothing)
                let at = self.sched.now + 50 + (draw >> 8) % 3_000;
                let ms = 100 + (draw >> 24) % 3_000;
                if n.up() && at < self.fault_end && n.disk.lie_about_fsyncs(u32::MAX) {
                    self.disks.lies.insert(id, draw >> 36);
                    self.log(
                        Who::N(id),
                        role,
                        format_args!(
                            "DISK LIES: its fsyncs are acknowledged, not done, until it crashes"
                        ),
                    );
                    self.schedule(
                        at,
                        Ev::Scheduled(Box::new(FaultAction::CrashFor { id, ms })),
                    );
                }
                return;
            }
        };
        match damage {
            Some(d) => {
                match fault {
                    DiskFault::Corrupt => ensemble_core::probe!("sim.fault.corrupt"),
                    DiskFault::Misdirect => ensemble_core::probe!("sim.fault.misdirect"),
                    DiskFault::LatentRead => ensemble_core::probe!("sim.fault.latent-read"),
                    DiskFault::LostFsync | DiskFault::WriteError => {}
                }
                self.log(
                    Who::N(id),
                    role,
                    format_args!("DISK {}: {d} (seen at its next recovery)", fault.name()),
                );
            }
            None => self.log(
                Who::Sim,
                "",
                format_args!(
                    "{} on n{id}'s {}: no such durable bytes",
                    fault.name(),
                    file.name()
                ),
            ),
        }
    }

    /// At a crash: the log bytes a lying disk did not write (some reach the platter anyway).
    pub(crate) fn reveal_lost_fsyncs(&mut self, id: ServerId) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        let lie = self.disks.lies.remove(&id).unwrap_or(0);
        // three times in ten all of it made it anyway, else a part
        let lost = n.disk.reveal_lost_fsyncs(|len| {
            if lie % 10 < 3 {
                len
            } else {
                ((lie >> 4) % (len as u64 + 1)) as usize
            }
        });
        if let Some(d) = lost {
            ensemble_core::probe!("sim.fault.lost-fsync");
            self.log(Who::N(id), "DOWN", format_args!("DISK lost-fsync: {d}"));
        }
    }

    /// Is `id` down for good, its disk refused?
    pub(crate) fn refused(&self, id: ServerId) -> bool {
        self.disks.refused.contains_key(&id)
    }

    /// A damaged disk's recovery, judged: what the server starts from, or `None` when it
    /// refuses to start (or the run failed).
    pub(crate) fn recover_through_damage(&mut self, id: ServerId) -> Option<Recovered> {
        let now = self.sched.now;
        for attempt in 0..2 {
            let n = self.nodes.get_mut(&id).expect("node");
            let trial = n.disk.trial().expect("a damaged disk has bytes");
            let applied: Vec<String> = trial.applied.iter().map(|d| d.to_string()).collect();
            match trial.outcome.clone() {
                Outcome::Exact => {
                    if !applied.is_empty() {
                        ensemble_core::probe!("sim.disk.damage-read-past");
                    }
                    let rec = n.disk.accept(trial);
                    if !applied.is_empty() {
                        self.log(
                            Who::N(id),
                            "DOWN",
                            format_args!(
                                "recovery read what was written past the damage: {}",
                                applied.join("; ")
                            ),
                        );
                    }
                    return Some(rec);
                }
                Outcome::Lost { through, lost } => {
                    if !self.atlas_allows_loss(id, &lost) {
                        if attempt == 0 {
                            ensemble_core::probe!("sim.disk.atlas-spared");
                            self.log(
                                Who::Sim,
                                "",
                                format_args!(
                                    "atlas: n{id}'s damage undone ({}): it would lose {} txns after {through} that no quorum of sound voters holds",
                                    applied.join("; "),
                                    lost.len()
                                ),
                            );
                            self.nodes.get_mut(&id).expect("node").disk.spare();
                            continue;
                        }
                        self.fail(violation(
                            Claim::CoreRecover,
                            now,
                            format!(
                                "n{id}'s disk recovers without {} txns after {through} with no damage waiting",
                                lost.len()
                            ),
                        ));
                        return None;
                    }
                    ensemble_core::probe!("sim.disk.lost-suffix");
                    let rec = self.nodes.get_mut(&id).expect("node").disk.accept(trial);
                    self.log(
                        Who::N(id),
                        "DOWN",
                        format_args!(
                            "recovery lost the log after {through} ({} txns: {}), held by a quorum of sound voters",
                            lost.len(),
                            applied.join("; ")
                        ),
                    );
                    return Some(rec);
                }
                Outcome::Refused(e) => {
                    if applied.is_empty() && !self.nodes[&id].disk.scarred {
                        self.fail(violation(
                            Claim::CoreRecover,
                            now,
                            format!("n{id}'s undamaged disk does not read back: {e}"),
                        ));
                        return None;
                    }
                    ensemble_core::probe!("sim.disk.refused");
                    self.log(
                        Who::N(id),
                        "DOWN",
                        format_args!("REFUSES TO START: {e} (damage: {})", applied.join("; ")),
                    );
                    self.disks.refused.insert(id, e);
                    self.update_quorum();
                    return None;
                }
                Outcome::Served(e) => {
                    self.fail(violation(
                        Claim::StorageCorruptionServed,
                        now,
                        format!(
                            "n{id}'s recovery returned what was never written: {e} (damage: {})",
                            applied.join("; ")
                        ),
                    ));
                    return None;
                }
            }
        }
        None
    }

    /// May `id` recover without the logged txns `lost`? An observer may (it never votes); a
    /// voter only when, for each, a quorum of voters with sound disks (neither damaged nor lost
    /// since they last synced) holds it durably without `id`.
    fn atlas_allows_loss(&self, id: ServerId, lost: &[Zxid]) -> bool {
        if self.nodes.get(&id).is_none_or(|n| n.observer) {
            return true;
        }
        let voters: Vec<_> = self.nodes.values().filter(|n| !n.observer).collect();
        let quorum = voters.len() / 2 + 1;
        lost.iter().all(|z| {
            voters
                .iter()
                .filter(|v| {
                    v.id != id
                        && !self.disks.faulty.contains(&v.id)
                        && !v.lost_state
                        && v.disk.holds_durably(*z)
                })
                .count()
                >= quorum
        })
    }
}
