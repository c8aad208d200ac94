//! When to snapshot and how fast to write it (ZooKeeper's SyncRequestProcessor decides when,
//! here the core also paces the writing): a snapshot starts every `snapCount / 2 + randRoll`
//! applied txns and is written a slice per txn applied and per tick, so the core never stalls
//! for a whole big tree.

use crate::config::Config;
use crate::effect::{Ready, Write};
use crate::tree::DataTree;
use crate::txn::ServerId;
use crate::zxid::Zxid;

/// Snapshot nodes written per tick (about a millisecond of work).
pub(crate) const SNAPSHOT_TICK_BUDGET: usize = 4096;

/// Txns until the next snapshot: ZooKeeper's `snapCount / 2 + randRoll`, with `randRoll` in
/// `[0, snapCount / 2)` drawn again after each snapshot, so that the servers of an ensemble do
/// not all snapshot and roll their logs at the same moment (with a fixed count they did, and
/// the burst of syncs stalled writes). The draw is a hash of our id and the snapshot's number,
/// so it is deterministic.
fn snapshot_interval(snap_count: u64, my_id: ServerId, taken: u64) -> u64 {
    let half = (snap_count / 2).max(1);
    // splitmix64's finaliser
    let mut z = my_id
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(taken.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let every = half + z % half;
    debug_assert!((half..2 * half).contains(&every));
    every
}

pub(crate) struct SnapshotScheduler {
    /// Txns applied since the last snapshot started.
    since: u64,
    /// Txns between the last snapshot and the next (the current draw).
    every: u64,
    /// Snapshots started so far (the draw's index).
    taken: u64,
    /// Snapshot nodes written per txn applied while one is being written.
    pace: usize,
    /// The newest snapshot handed to the disk whole: the one recovered from, one of ours
    /// ended, or a leader's SNAP installed. A leader streams a SNAP from it
    /// (`Action::SendSnapshot`) rather than serialising its tree again.
    pub(crate) on_disk: Option<Zxid>,
}

impl SnapshotScheduler {
    /// `recovered`: the zxid of the snapshot the server recovered from, if any.
    pub(crate) fn new(cfg: &Config, recovered: Option<Zxid>) -> SnapshotScheduler {
        SnapshotScheduler {
            since: 0,
            every: snapshot_interval(cfg.snap_count, cfg.my_id, 0),
            taken: 0,
            pace: 64,
            on_disk: recovered,
        }
    }

    /// One txn was applied to `tree`: start a snapshot when one is due, and write a slice.
    pub(crate) fn txn_applied(&mut self, cfg: &Config, tree: &mut DataTree, out: &mut Ready) {
        self.since += 1;
        if self.since >= self.every {
            self.since = 0;
            self.taken += 1;
            let every = snapshot_interval(cfg.snap_count, cfg.my_id, self.taken);
            // One at a time: one still being written (only with a tiny snapCount) ends first.
            self.step(tree, usize::MAX, out);
            tree.begin_snapshot(cfg.snapshot_part_bytes.max(1));
            // Written a slice per txn applied, done by half way to the next (ticks add more).
            let nodes = tree.snapshot_remaining();
            self.pace = (2 * nodes / every.max(1) + 1) as usize;
            self.every = every;
        }
        assert!(self.since < self.every, "a snapshot due but not started");
        assert!(self.pace >= 1, "a snapshot that never advances");
        self.step(tree, self.pace, out);
    }

    /// Write up to `budget` more nodes of the snapshot being written: a `SnapshotPart` for
    /// each part filled, the `Snapshot` effect once it is complete.
    pub(crate) fn step(&mut self, tree: &mut DataTree, budget: usize, out: &mut Ready) {
        let pieces = tree.continue_snapshot(budget);
        // The runtime's contract: parts of one snapshot in order, the whole one last.
        assert!(
            pieces.iter().rev().skip(1).all(|p| !p.last),
            "a part after the end"
        );
        assert!(
            pieces
                .windows(2)
                .all(|w| w[0].zxid == w[1].zxid && w[0].index + 1 == w[1].index)
        );
        for piece in pieces {
            if piece.last {
                self.on_disk = Some(piece.zxid);
            }
            out.push(if piece.last {
                Write::Snapshot {
                    zxid: piece.zxid,
                    parts: piece.index,
                    data: piece.data,
                    reset_log: false,
                }
            } else {
                Write::SnapshotPart {
                    zxid: piece.zxid,
                    index: piece.index,
                    data: piece.data,
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_drawn_in_half_to_whole_snap_count_and_differs_per_server() {
        let draws: Vec<u64> = (1..=5).map(|id| snapshot_interval(1000, id, 0)).collect();
        assert!(draws.iter().all(|d| (500..1000).contains(d)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
        assert_eq!(snapshot_interval(1000, 3, 7), snapshot_interval(1000, 3, 7));
        assert_eq!(snapshot_interval(0, 1, 0), 1);
    }
}
