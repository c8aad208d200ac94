//! `tree.persisted-round-trip`: every snapshot a server loads — the one it recovers from when
//! it restarts, the one a SNAP brought it — and every server's latest at the end of the run,
//! taken node by node (`DataTree::persisted_nodes`, what `ensemble export` writes as
//! ZooKeeper's snapshot) and built back (`DataTree::from_persisted`, what `ensemble import`
//! builds from ZooKeeper's), is the same snapshot, byte for byte, with the same digest.
//!
//! The check decodes whole snapshots, so it is the dearest one per call. It used to run on
//! every snapshot written (about 500 a seed, a fifth of a sweep's instructions); the
//! snapshots that are loaded back are the ones whose bytes matter, and the ones at the end of
//! the run hold the fullest trees, so the check runs there. Two more things keep it cheap
//! without weakening it. The verdict is a function of the bytes alone (and the run's fixed
//! tree options), so bytes that passed once (the same tree at the same zxid on another
//! server, a SNAP's copy of the leader's) are not decoded again. And when the persisted nodes
//! encode back to the very bytes just decoded, the tree they build is the one already decoded:
//! it is compared, not decoded a second time.

use super::{Claim, Violation, violation};
use crate::world::World;
use ensemble_core::tree::{DataTree, PersistedNode, TreeOptions};
use ensemble_core::txn::ServerId;
use std::collections::VecDeque;
use std::sync::Arc;

/// How many passing snapshots are remembered: servers writing the same tree do so within a
/// few snapshots of each other.
const REMEMBERED: usize = 16;

/// The snapshots lately found to round-trip.
#[derive(Default)]
pub struct RoundTripped {
    recent: VecDeque<Arc<Vec<u8>>>,
}

impl RoundTripped {
    fn seen(&self, bytes: &Arc<Vec<u8>>) -> bool {
        self.recent
            .iter()
            .any(|b| Arc::ptr_eq(b, bytes) || **b == **bytes)
    }

    fn passed(&mut self, bytes: &Arc<Vec<u8>>) {
        if self.recent.len() == REMEMBERED {
            self.recent.pop_front();
        }
        self.recent.push_back(bytes.clone());
    }
}

impl World {
    /// The claim on server `id`'s latest snapshot on disk (the one it loads when it starts).
    pub(crate) fn check_persisted_round_trip(&mut self, id: ServerId) -> Result<(), Violation> {
        let n = &self.nodes[&id];
        let Some((zxid, bytes)) = n.disk.snapshot.clone() else {
            return Ok(());
        };
        if self.round_tripped.seen(&bytes) {
            return Ok(());
        }
        let opts = TreeOptions {
            extended_types: true,
            auth_providers: crate::client::PROVIDERS,
            plant: self.plant,
        };
        let now = self.sched.now;
        let fail = |why: String| {
            violation(
                Claim::TreePersistedRoundTrip,
                now,
                format!("n{id}'s snapshot at {zxid}: {why}"),
            )
        };
        // a snapshot that does not load is `core.snapshot`'s to report
        let Ok(tree) = DataTree::from_snapshot(&bytes, opts) else {
            return Ok(());
        };
        let nodes: Vec<PersistedNode> = tree.persisted_nodes().collect();
        let again = DataTree::persisted_snapshot(tree.last_zxid(), tree.sessions(), &nodes, opts)
            .map_err(|e| fail(format!("its persisted nodes do not build a tree: {e}")))?;
        // `from_persisted` loads `again`: the very bytes `tree` came from load into `tree`
        let back = if again == **bytes {
            None
        } else {
            let mut back = DataTree::from_snapshot(&again, opts)
                .map_err(|e| fail(format!("its persisted nodes do not build a tree: {e}")))?;
            // the committed configuration is not a node's (ZooKeeper's dynamic file)
            back.restore_committed_membership(&tree);
            Some(back)
        };
        let back_ref = back.as_ref().unwrap_or(&tree);
        if back_ref.digest() != tree.digest() || back_ref.to_snapshot() != **bytes {
            let differs = back_ref
                .persisted_nodes()
                .zip(&nodes)
                .find(|(a, b)| a != *b)
                .map(|(a, b)| format!("{:?} came back as {:?}", b, a))
                .unwrap_or_else(|| "the sessions or node count differ".into());
            return Err(fail(format!(
                "built back from its nodes it differs: {differs}"
            )));
        }
        self.round_tripped.passed(&bytes);
        Ok(())
    }

    /// The claim on every server's latest snapshot, at the end of the run.
    pub(crate) fn check_persisted_round_trips(&mut self) -> Result<(), Violation> {
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        ids.into_iter()
            .try_for_each(|id| self.check_persisted_round_trip(id))
    }
}
