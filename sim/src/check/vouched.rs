//! `election.epoch-vouched`: a server that starts presents its currentEpoch only over the
//! history that epoch vouched for (FINDINGS no. 23).
//!
//! FLE ranks a vote by its epoch before its zxid, so a server whose vote says "epoch E" claims
//! every txn E's sync left on its disk. The currentEpoch file names that history's last zxid
//! (its second line); a recovery that reads back less (a flipped last record cut as a torn
//! tail, a lying fsync) must drop the epoch, or the server outranks the voters that hold
//! what it lost, wins, and truncates them. The consequence needs an election the short
//! server wins against those voters (two swarm seeds of 10,000); the vote itself is wrong at
//! every such restart, so this judges the vote a server starts its election with against the
//! simulator's own record of what the epoch vouched for (`Disk::vouched`, written beside the
//! file, never read from it).

use super::{Claim, violation};
use crate::world::World;
use ensemble_core::txn::ServerId;

impl World {
    /// Server `id` has just started from what its disk recovered.
    pub(crate) fn check_epoch_vouched(&mut self, id: ServerId) {
        let Some(n) = self.nodes.get(&id) else {
            return;
        };
        let (Some(s), Some((epoch, through))) = (n.server.as_ref(), n.disk.vouched) else {
            return;
        };
        let vote = s.announced_vote();
        if vote.leader != id || vote.peer_epoch == 0 || vote.peer_epoch != epoch {
            return;
        }
        if vote.zxid >= through {
            ensemble_core::probe!("sim.election.epoch-vouched");
            return;
        }
        let v = violation(
            Claim::ElectionEpochVouched,
            self.sched.now,
            format!(
                "n{id} starts its election with a vote in epoch {epoch} at {}, but epoch {epoch} \
                 vouched for the history through {through} on its disk: it outranks the voters \
                 that hold what its recovery lost",
                vote.zxid
            ),
        );
        self.fail(v);
    }
}
