//! CAP, as the seed states it: ZooKeeper is CP. During a partition a minority side never
//! commits (`cap.minority-commit`, checked on every commit); the scenario claims on the
//! majority side's progress, on unavailability without a quorum and on observers are in
//! `scenario`.

use crate::check::{Claim, Violation, violation};
use crate::world::World;
use ensemble_core::txn::{ServerId, Txn};

/// What the CAP checks count.
#[derive(Default)]
pub struct PartitionRecord {
    /// Txns committed during a partition that were proposed after it began.
    pub(crate) commits: u64,
}

impl World {
    /// `cap.minority-commit`: during a partition, a txn proposed after it began commits only
    /// with a quorum on the committing server's side. `holders` are the voters holding `t`
    /// durably; counts the partition's commits for `majority-commits-during-partition`.
    pub(crate) fn check_partition_commit(
        &mut self,
        id: ServerId,
        t: &Txn,
        holders: &[ServerId],
        quorum_needed: u64,
    ) -> Result<(), Violation> {
        let Some(since) = self.transport.net.partition_since else {
            return Ok(());
        };
        let proposed = self.zab.proposals.get(&t.zxid).map(|p| p.1).unwrap_or(0);
        if proposed < since {
            return Ok(());
        }
        self.cap.commits += 1;
        let side: Vec<ServerId> = holders
            .iter()
            .copied()
            .filter(|h| *h == id || !self.transport.net.partitioned_from(*h, id))
            .collect();
        if (side.len() as u64) < quorum_needed {
            return Err(violation(
                Claim::CapMinorityCommit,
                self.sched.now,
                format!(
                    "during partition {}, n{id} committed {} with only {:?} on its side",
                    self.transport.net.partition_desc, t.zxid, side
                ),
            ));
        }
        Ok(())
    }
}
