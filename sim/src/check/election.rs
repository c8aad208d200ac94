//! `election.quorum`: Fast Leader Election's termination rule, checked from the notifications
//! each server took. A voter leaves LOOKING for leader L only with a quorum of voters behind L
//! among the notifications it took (itself counted): LOOKING ones of its own round voting for
//! L (FLE's `termPredicate` over `recvset`), or ones already following or leading L (the
//! out-of-election path, `outofelection`). ZAB's safety does not rest on it (a wrong decision
//! costs an `initLimit` on a leader that never gathers its followers), which is why nothing
//! else could see an agreement test that counts the wrong votes.
//!
//! Lenient on purpose: votes compare by leader only (not zxid and epoch), a follower or leader
//! backs L whatever its round, and a quorum of the configuration in force or of the one
//! pending (a reconfig logged, not yet committed) is enough, so every decision FLE can make
//! passes.
//!
//! `recvset` is kept by round, as FLE keeps it: a sender's vote of round R stays counted in
//! round R whatever the sender says later in an older round (FLE drops a notification of an
//! older round without touching `recvset`) or once it is out of the election (FLE's
//! FOLLOWING/LEADING case only adds). A model holding only each sender's last LOOKING
//! notification forgot such votes and failed swarm seed 258 (FINDINGS.md no. 11).

use crate::check::{Claim, violation};
use crate::world::World;
use ensemble_core::peer::{Notification, PeerMsg, ServerState, Vote};
use ensemble_core::txn::ServerId;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub struct FleRecord {
    /// (receiver, sender, round) -> the leader the sender's last LOOKING notification of that
    /// round voted for, as the receiver took it (`recvset`, by round).
    looking: BTreeMap<(ServerId, ServerId, u64), ServerId>,
    /// (receiver, sender) -> the leader of the sender's last FOLLOWING or LEADING notification
    /// the receiver took (`outofelection`: kept when the sender later looks again).
    joined: BTreeMap<(ServerId, ServerId), ServerId>,
    /// Each server's round: that of its last LOOKING notification sent.
    round: BTreeMap<ServerId, u64>,
    /// Voters that left LOOKING to follow and have not yet named their leader (their first
    /// FOLLOWERINFO does).
    deciding: BTreeSet<ServerId>,
    /// A server taking a HANDOVER in this step, and the successor it names: it leaves
    /// LOOKING for it without an election (`reconfig.handover` checks the successor).
    handed: BTreeMap<ServerId, ServerId>,
    /// The server whose step under way is a tick: the only step FLE decides by its own
    /// tally in (the finalize wait ends on a timer).
    ticking: Option<ServerId>,
    /// The election backers a server reported in its step under way
    /// (`Action::QuorumCounted`, purpose "election").
    reported: BTreeMap<ServerId, Vec<ServerId>>,
    /// Backers reported by a server that left LOOKING by its tally, judged once it names
    /// its leader (`election.counted-reported`).
    tallied: BTreeMap<ServerId, Vec<ServerId>>,
}

impl World {
    /// Server `id` took a notification from `from`.
    pub(crate) fn fle_took(&mut self, id: ServerId, from: ServerId, n: &Notification) {
        if n.state == ServerState::Looking {
            self.fle
                .looking
                .insert((id, from, n.election_epoch), n.vote.leader);
        } else {
            self.fle.joined.insert((id, from), n.vote.leader);
        }
    }

    /// Server `id` sends `msg` to `to`.
    pub(crate) fn fle_sent(&mut self, id: ServerId, to: ServerId, msg: &PeerMsg) {
        match msg {
            PeerMsg::Notification(n) if n.state == ServerState::Looking => {
                self.fle.round.insert(id, n.election_epoch);
            }
            PeerMsg::Notification(n) if n.state == ServerState::Following => {
                self.vote_current_check(id, to, n);
            }
            PeerMsg::LearnerInfo { .. } if self.fle.deciding.remove(&id) => {
                self.fle_check(id, to);
            }
            _ => {}
        }
    }

    /// `election.vote-current`: a follower serving its leader (past UPTODATE) names that
    /// leader and the epoch it follows in the vote it answers a notification with. Before
    /// UPTODATE the vote may still carry the epoch the election saw (ZooKeeper updates it only
    /// then), so a follower still syncing is not judged.
    fn vote_current_check(&mut self, id: ServerId, to: ServerId, n: &Notification) {
        if let Some(why) = self.vote_stale(id, n.vote) {
            let v = violation(
                Claim::ElectionVoteCurrent,
                self.sched.now,
                format!("{why}, answered n{to} with it"),
            );
            self.fail(v);
        }
    }

    /// `election.vote-current` at UPTODATE itself (the step a follower starts serving in):
    /// the vote it would announce is judged then, whether or not a LOOKING server ever asks
    /// for it. The stale vote is harmless until a server looks, and that server needs the
    /// stale follower's vote for a quorum only rarely (FINDINGS no. 12), so waiting for the
    /// answer found plant `vote-epoch-stale` in none of 0..2500; the uncounted ACKEPOCH that
    /// leaves the vote stale is itself rare (about one seed in 150), which this makes enough.
    pub(crate) fn vote_current_at_uptodate(&mut self, id: ServerId) {
        let Some(vote) = self
            .nodes
            .get(&id)
            .and_then(|n| n.server.as_ref())
            .map(|s| s.announced_vote())
        else {
            return;
        };
        if let Some(why) = self.vote_stale(id, vote) {
            let v = violation(
                Claim::ElectionVoteCurrent,
                self.sched.now,
                format!("{why}, as it took UPTODATE"),
            );
            self.fail(v);
        }
    }

    /// Why the vote `vote` of server `id` is not current, if `id` is a follower serving its
    /// leader: the vote must name that leader and the epoch it follows.
    fn vote_stale(&self, id: ServerId, vote: Vote) -> Option<String> {
        let s = self.nodes.get(&id).and_then(|n| n.server.as_ref())?;
        if !s.is_serving() || s.state() != ServerState::Following {
            return None;
        }
        let st = s.status();
        let leader = st.leader?;
        if vote.leader == leader && vote.peer_epoch == st.current_epoch {
            ensemble_core::probe!("sim.election.vote-current");
            return None;
        }
        Some(format!(
            "n{id}, serving leader n{leader} in epoch {}, announces a vote for n{} in epoch {}",
            st.current_epoch, vote.leader, vote.peer_epoch
        ))
    }

    /// Server `id` goes from `old` to `new`.
    pub(crate) fn fle_state(&mut self, id: ServerId, old: ServerState, new: ServerState) {
        if new == ServerState::Looking || !self.fle_voter(id) {
            self.fle.deciding.remove(&id);
            return;
        }
        if old != ServerState::Looking {
            return;
        }
        if matches!(new, ServerState::Leading | ServerState::Following)
            && self.fle.ticking == Some(id)
        {
            match self.fle.reported.remove(&id) {
                Some(m) => {
                    self.fle.tallied.insert(id, m);
                }
                None => {
                    let v = violation(
                        Claim::ElectionCountedReported,
                        self.sched.now,
                        format!(
                            "n{id} left LOOKING as its finalize wait ended (its own tally) and reported no backers"
                        ),
                    );
                    self.fail(v);
                    return;
                }
            }
        }
        match new {
            ServerState::Leading => self.fle_check(id, id),
            ServerState::Following => {
                self.fle.deciding.insert(id);
            }
            _ => {}
        }
    }

    /// The voter sets `id` may count a quorum in: the configuration in force, and the one
    /// pending if a reconfig is logged and not committed.
    fn fle_configs(&self, id: ServerId) -> Vec<BTreeSet<ServerId>> {
        let Some(s) = self.nodes.get(&id).and_then(|n| n.server.as_ref()) else {
            return vec![(1..=self.params.voters).collect()];
        };
        let mut v = vec![s.membership().voters().collect::<BTreeSet<_>>()];
        if let Some(p) = s.pending_membership() {
            v.push(p.voters().collect());
        }
        v
    }

    fn fle_voter(&self, id: ServerId) -> bool {
        self.fle_configs(id).iter().any(|c| c.contains(&id))
    }

    /// Server `id` takes `event`: a HANDOVER lets it go to the successor in this step only.
    pub(crate) fn fle_handover(&mut self, id: ServerId, event: &ensemble_core::server::Event) {
        self.fle.ticking = matches!(event, ensemble_core::server::Event::Tick).then_some(id);
        self.fle.reported.remove(&id);
        match event {
            ensemble_core::server::Event::Peer {
                msg: PeerMsg::HandOver { designated, .. },
                ..
            } => {
                self.fle.handed.insert(id, *designated);
            }
            _ => {
                self.fle.handed.remove(&id);
            }
        }
    }

    /// Server `id` reported the backers of the election it decided (as carried out).
    pub(crate) fn fle_counted(&mut self, id: ServerId, members: &[(ServerId, bool)]) {
        let m = members.iter().map(|(m, _)| *m).collect();
        self.fle.reported.insert(id, m);
    }

    fn fle_check(&mut self, id: ServerId, leader: ServerId) {
        if self.fle.handed.get(&id) == Some(&leader) {
            return;
        }
        let round = self.fle.round.get(&id).copied();
        let tallied = self.fle.tallied.remove(&id);
        let backs = |s: ServerId| {
            s == id
                || round.is_some_and(|r| self.fle.looking.get(&(id, s, r)) == Some(&leader))
                || self.fle.joined.get(&(id, s)) == Some(&leader)
        };
        let configs = self.fle_configs(id);
        let ok = configs.iter().any(|voters| {
            let n = voters.iter().filter(|s| backs(**s)).count();
            n * 2 > voters.len()
        });
        if !ok {
            let all: BTreeSet<ServerId> = configs.iter().flatten().copied().collect();
            let backers: Vec<ServerId> = all.iter().copied().filter(|s| backs(*s)).collect();
            let v = violation(
                Claim::ElectionQuorum,
                self.sched.now,
                format!(
                    "n{id} left LOOKING for leader n{leader} in round {} with only {:?} of the voters {:?} behind it in the notifications it took",
                    round.map(|r| r.to_string()).unwrap_or_else(|| "?".into()),
                    backers,
                    configs,
                ),
            );
            self.fail(v);
            return;
        }
        // `election.counted-reported`: the reported backers are a quorum, each itself or a
        // sender whose notification, as it took it, named `leader`: a LOOKING one of its
        // round, or a FOLLOWING/LEADING one (FLE puts those of its round in `recvset` too)
        if let Some(members) = tallied {
            let voted = |s: &ServerId| {
                *s == id
                    || round.is_some_and(|r| self.fle.looking.get(&(id, *s, r)) == Some(&leader))
                    || self.fle.joined.get(&(id, *s)) == Some(&leader)
            };
            let configs = self.fle_configs(id);
            let quorum = configs.iter().any(|voters| {
                members.iter().filter(|s| voters.contains(s)).count() * 2 > voters.len()
            });
            if !quorum || !members.iter().all(voted) {
                let v = violation(
                    Claim::ElectionCountedReported,
                    self.sched.now,
                    format!(
                        "n{id} decided for n{leader} in round {} counting {members:?}: not a quorum of {configs:?} each voting so in the notifications it took",
                        round.map(|r| r.to_string()).unwrap_or_else(|| "?".into()),
                    ),
                );
                self.fail(v);
            }
        }
    }
}
