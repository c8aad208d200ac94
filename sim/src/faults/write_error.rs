//! `write-error`: a durable write fails. The fault arms one server's disk so that its next
//! write of one kind (an append to the log, the log's fsync, a truncation, a snapshot, an epoch
//! file; testkit `write_errors.rs`) returns an I/O error. The server then does what ZooKeeper
//! does on a failed log write or fsync: it stops (the core's `Ready::drive` stops at the failed
//! write, so nothing ordered after it, an ACK or a reply, leaves), and comes back after a
//! while from what its disk kept, as after a crash (the unsynced tail of a failed fsync may be
//! lost: Linux drops the dirty pages of a failed fsync). No atlas bound: nothing durable is
//! harmed, so it may hit any server, in seeds with reconfiguration too.
//!
//! The claim it serves is `zab.ack-not-durable` (check/zab.rs): a server's ACK covers only
//! txns its disk holds durably, which a runtime going on past a failed write breaks (the
//! plant `failed-write-ignored`).

use crate::params::{DiskFault, FaultAction};
use crate::scheduler::Ev;
use crate::world::{Who, World};
use ensemble_core::txn::ServerId;
use ensemble_storage::StorageError;
use ensemble_testkit::disk_faults::FileKind;
use ensemble_testkit::write_errors::FailingWrite;

/// The write kind a fault aims at, from its file kind and draw (so a schedule replays it).
fn failing_write(file: FileKind, draw: u64) -> FailingWrite {
    match file {
        // the log's writes: appends and fsyncs alike, a truncation now and then
        FileKind::Log => match draw % 9 {
            0..=3 => FailingWrite::Append,
            4..=7 => FailingWrite::Fsync,
            _ => FailingWrite::Truncate,
        },
        FileKind::Snapshot => FailingWrite::Snapshot,
        FileKind::Epoch => FailingWrite::Epochs,
    }
}

/// How long the server stays down after its write failed (an operator or a supervisor
/// restarts it): 100 to 3,100 ms, from the fault's draw.
fn down_ms(draw: u64) -> u64 {
    100 + (draw >> 16) % 3_000
}

impl World {
    pub(crate) fn draw_write_error(&mut self) -> FaultAction {
        let ids = self.servers.clone();
        let rng = &mut self.disks.write_errors;
        let id = ids[rng.below(ids.len())];
        let u = rng.unit();
        let file = if u < 0.7 {
            FileKind::Log
        } else if u < 0.85 {
            FileKind::Snapshot
        } else {
            FileKind::Epoch
        };
        let draw = rng.range(0, i64::MAX as u64);
        FaultAction::Disk {
            fault: DiskFault::WriteError,
            id,
            file,
            draw,
        }
    }

    /// Arm `id`'s disk: its next write of the kind the draw picks fails.
    pub(crate) fn arm_write_error(&mut self, id: ServerId, file: FileKind, draw: u64) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        let what = failing_write(file, draw);
        n.disk.fail_next(what);
        self.disks.write_error_down.insert(id, down_ms(draw));
        let role = n.role();
        self.log(
            Who::N(id),
            role,
            format_args!("DISK write-error: its next {} will fail", what.name()),
        );
    }

    /// A write of `id` failed. `stopped`: the core's drive stopped at it; the server stops
    /// (ZooKeeper exits) and restarts later. Otherwise the runtime went on past it (only a
    /// planted bug does): the trace says so, and the claims judge what follows.
    pub(crate) fn on_write_failed(
        &mut self,
        id: ServerId,
        what: FailingWrite,
        error: &StorageError,
        stopped: bool,
    ) {
        ensemble_core::probe!("sim.fault.write-error");
        if what == FailingWrite::Fsync {
            ensemble_core::probe!("sim.fault.fsync-error");
        }
        let role = self.nodes[&id].role();
        self.log(
            Who::N(id),
            role,
            format_args!(
                "WRITE ERROR: {error}; {}",
                if stopped {
                    "stopping"
                } else {
                    "the drive went on past it"
                }
            ),
        );
        if !stopped {
            return;
        }
        let ms = self.disks.write_error_down.remove(&id).unwrap_or(1_000);
        self.crash(id);
        self.schedule(self.sched.now + ms, Ev::Restart { node: id });
    }

    /// An fsync of `id` is due: does it fail? Then the server stops, as on any failed write.
    pub(crate) fn fsync_fails(&mut self, id: ServerId) -> bool {
        let Some(e) = self
            .nodes
            .get_mut(&id)
            .and_then(|n| n.disk.write_fails(FailingWrite::Fsync))
        else {
            return false;
        };
        self.on_write_failed(id, FailingWrite::Fsync, &e, true);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_kind_is_drawn() {
        let mut seen = std::collections::BTreeSet::new();
        for file in FileKind::ALL {
            for draw in 0..9 {
                seen.insert(failing_write(file, draw).name());
            }
        }
        assert_eq!(seen.len(), FailingWrite::ALL.len());
    }
}
