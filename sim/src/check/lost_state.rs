//! `zab.lost-state-counted`: no quorum counts a server for state it lost (issue 13).
//!
//! ZAB's safety rests on quorum intersection: a txn committed by one quorum is held by some
//! member of every later quorum, and that member backs only a leader at least as up to date
//! (FLE), and reports an acceptedEpoch no lower than any it promised (discovery). A server
//! whose data dir was wiped, or put back older, is in later quorums without what it held: it
//! must not be the member that intersection relies on. The core reports each quorum it counts
//! as a witness (`Action::QuorumCounted`: an election's backers, a new epoch's FOLLOWERINFOs);
//! this holds it to the simulator's truth (`Node::lost_state`, which the core cannot see): the
//! members are a quorum of the voters and those that did not lose their state meet every
//! quorum (at least half of the voters: a committed txn is on a majority), or every voter is
//! there (a fresh ensemble's genesis, where the highest of all is as good as anyone holds).

use super::{Claim, Violation, violation};
use crate::world::World;
use ensemble_core::txn::ServerId;

impl World {
    pub(crate) fn check_counted(
        &self,
        id: ServerId,
        purpose: &str,
        members: &[(ServerId, bool)],
    ) -> Result<(), Violation> {
        let voters = self.reference.voters();
        // each member as it was when it sent what was counted (ourselves: now)
        let me = &self.nodes[&id];
        let lost: Vec<ServerId> = members
            .iter()
            .map(|(m, _)| *m)
            .filter(|m| {
                if *m == id {
                    me.lost_state
                } else {
                    me.heard_lost.get(m).copied().unwrap_or(false)
                }
            })
            .collect();
        if lost.is_empty() {
            return Ok(());
        }
        let kept = members
            .iter()
            .filter(|(m, _)| voters.contains(m) && !lost.contains(m))
            .count();
        let counted = members.iter().filter(|(m, _)| voters.contains(m)).count();
        let every_voter = voters.iter().all(|v| members.iter().any(|(m, _)| m == v));
        if (counted * 2 > voters.len() && kept * 2 >= voters.len()) || every_voter {
            return Ok(());
        }
        Err(violation(
            Claim::ZabLostStateCounted,
            self.sched.now,
            format!(
                "n{id} counted {:?} as a quorum ({purpose}) of the voters {voters:?}, but {lost:?} \
                 lost their data dirs and have not synced since: without them {kept} of {} voters",
                members.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
                voters.len()
            ),
        ))
    }
}
