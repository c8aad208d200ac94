//! `election.quorum`: Fast Leader Election's termination rule, checked from the notifications
//! each server took. A voter leaves LOOKING for leader L only with a quorum of voters behind L
//! among the last notification it took from each (itself counted): LOOKING ones in its own
//! round voting for L (FLE's `termPredicate` over `recvset`), or ones already following or
//! leading L (the out-of-election path, `outofelection`). ZAB's safety does not rest on it (a
//! wrong decision costs an `initLimit` on a leader that never gathers its followers), which is
//! why nothing else could see an agreement test that counts the wrong votes.
//!
//! Lenient on purpose: votes compare by leader only (not zxid and epoch), and a follower or
//! leader backs L whatever its round, so every decision FLE can make passes.

use crate::check::{Claim, violation};
use crate::world::World;
use ensemble_core::peer::{Notification, PeerMsg, ServerState};
use ensemble_core::txn::ServerId;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub struct FleRecord {
    /// (receiver, sender, whether LOOKING) -> the sender's last notification of that kind the
    /// receiver took: the leader it voted for, its round. Two kinds, as FLE keeps them:
    /// `recvset` (LOOKING votes) and `outofelection` (followers' and leaders' votes, kept when
    /// the sender later looks again).
    last: BTreeMap<(ServerId, ServerId, bool), (ServerId, u64)>,
    /// Each server's round: that of its last LOOKING notification sent.
    round: BTreeMap<ServerId, u64>,
    /// Voters that left LOOKING to follow and have not yet named their leader (their first
    /// FOLLOWERINFO does).
    deciding: BTreeSet<ServerId>,
}

impl World {
    /// Server `id` took a notification from `from`.
    pub(crate) fn fle_took(&mut self, id: ServerId, from: ServerId, n: &Notification) {
        let looking = n.state == ServerState::Looking;
        self.fle
            .last
            .insert((id, from, looking), (n.vote.leader, n.election_epoch));
    }

    /// Server `id` sends `msg` to `to`.
    pub(crate) fn fle_sent(&mut self, id: ServerId, to: ServerId, msg: &PeerMsg) {
        match msg {
            PeerMsg::Notification(n) if n.state == ServerState::Looking => {
                self.fle.round.insert(id, n.election_epoch);
            }
            PeerMsg::LearnerInfo { .. } if self.fle.deciding.remove(&id) => {
                self.fle_check(id, to);
            }
            _ => {}
        }
    }

    /// Server `id` goes from `old` to `new`.
    pub(crate) fn fle_state(&mut self, id: ServerId, old: ServerState, new: ServerState) {
        let voter = id <= self.params.voters;
        if new == ServerState::Looking || !voter {
            self.fle.deciding.remove(&id);
            return;
        }
        if old != ServerState::Looking {
            return;
        }
        match new {
            ServerState::Leading => self.fle_check(id, id),
            ServerState::Following => {
                self.fle.deciding.insert(id);
            }
            _ => {}
        }
    }

    fn fle_check(&mut self, id: ServerId, leader: ServerId) {
        let voters = self.params.voters;
        let round = self.fle.round.get(&id).copied();
        let mut backers = vec![id];
        for s in (1..=voters).filter(|s| *s != id) {
            let in_round = self
                .fle
                .last
                .get(&(id, s, true))
                .is_some_and(|(l, e)| *l == leader && Some(*e) == round);
            let joined = self
                .fle
                .last
                .get(&(id, s, false))
                .is_some_and(|(l, _)| *l == leader);
            if in_round || joined {
                backers.push(s);
            }
        }
        backers.sort_unstable();
        if (backers.len() as u64) * 2 <= voters {
            let v = violation(
                Claim::ElectionQuorum,
                self.sched.now,
                format!(
                    "n{id} left LOOKING for leader n{leader} in round {} with only {:?} of {voters} voters behind it in the notifications it took",
                    round.map(|r| r.to_string()).unwrap_or_else(|| "?".into()),
                    backers
                ),
            );
            self.fail(v);
        }
    }
}
