//! Fast Leader Election as ZooKeeper's `FastLeaderElection` runs it: each LOOKING voter proposes
//! the best vote it has seen — ordered by (peer epoch, zxid, server id) — and decides once a
//! quorum of voters in its election round agrees and no better vote arrives within the
//! finalize wait. Servers already FOLLOWING or LEADING answer a LOOKING sender with their own
//! vote, which is how a restarted server finds an established leader. Observers never vote:
//! voters ignore their notifications (beyond answering them) and never count them.

use crate::config::Config;
use crate::peer::{Notification, ServerState, Vote};
use crate::plant::{self, Plant};
use crate::quorum::QuorumVerifier;
use crate::server::Millis;
use crate::txn::ServerId;
use std::collections::BTreeMap;

/// A vote as seen from one sender, with the round and state it was sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    vote: Vote,
    election_epoch: u64,
    state: ServerState,
    /// The sender vouches for its own history (`Notification::intact`).
    intact: bool,
}

/// What the election wants done after a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing decided yet.
    Continue,
    /// Send our current notification to every voter (our proposal changed or a resend is due).
    Broadcast,
    /// Answer this (non-voting or lagging) sender with our current notification.
    Answer(ServerId),
    /// The election is over: follow, observe or lead `vote.leader` in round `election_epoch`.
    Decided { vote: Vote, election_epoch: u64 },
}

#[derive(Clone, Debug)]
pub struct Election {
    /// FLE's logicalclock.
    pub logical_clock: u64,
    pub proposal: Vote,
    /// Our own vote at the start of the round (FLE's getInitId/getInitLastLoggedZxid).
    own: Vote,
    recv: BTreeMap<ServerId, Seen>,
    out_of_election: BTreeMap<ServerId, Seen>,
    /// When the quorum condition first held for the current proposal.
    finalize_at: Option<Millis>,
    next_resend: Millis,
    resend_interval: Millis,
    /// Who counts towards a decision (set from the config at each round's start).
    quorum: QuorumVerifier,
    /// Our own durable state vouches for our history (set at each round's start).
    intact: bool,
    /// The backers of the decision `tick` just made (taken by the server, for the trace).
    counted: Option<Vec<(ServerId, bool)>>,
}

impl Default for Election {
    fn default() -> Self {
        Self::new()
    }
}

impl Election {
    pub fn new() -> Election {
        Election {
            logical_clock: 0,
            proposal: Vote {
                leader: 0,
                zxid: crate::zxid::Zxid::ZERO,
                peer_epoch: 0,
            },
            own: Vote {
                leader: 0,
                zxid: crate::zxid::Zxid::ZERO,
                peer_epoch: 0,
            },
            recv: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            finalize_at: None,
            next_resend: 0,
            resend_interval: 0,
            quorum: QuorumVerifier::default(),
            intact: false,
            counted: None,
        }
    }

    /// Begin a new round proposing ourselves; `intact`: our durable state vouches for our
    /// history (a server with a lost or reset data dir does not, until it syncs).
    pub fn start(
        &mut self,
        cfg: &Config,
        quorum: &QuorumVerifier,
        my_vote: Vote,
        intact: bool,
        now: Millis,
    ) {
        self.logical_clock += 1;
        self.intact = intact;
        self.counted = None;
        self.proposal = my_vote;
        self.own = my_vote;
        self.recv.clear();
        self.out_of_election.clear();
        self.finalize_at = None;
        self.resend_interval = cfg.finalize_wait_ms.max(1);
        self.quorum = quorum.clone();
        // The first tick of a round announces it.
        self.next_resend = now;
        if self.quorum.is_voter(cfg.my_id) {
            self.record_own(cfg);
        }
        assert_eq!(
            self.recv.len(),
            usize::from(self.quorum.is_voter(cfg.my_id))
        );
    }

    /// Our notification: the version of our configuration in force, and `intact`, our
    /// durable state's standing now (it changes when a sync completes, which only a FOLLOWING
    /// or LEADING server announces).
    pub fn notification(
        &self,
        state: ServerState,
        config_version: u64,
        intact: bool,
    ) -> Notification {
        Notification {
            vote: self.proposal,
            state,
            election_epoch: self.logical_clock,
            config_version,
            intact,
        }
    }

    fn record_own(&mut self, cfg: &Config) {
        assert!(
            self.quorum.is_voter(cfg.my_id),
            "an observer's own vote counted"
        );
        let own = Seen {
            vote: self.proposal,
            election_epoch: self.logical_clock,
            state: ServerState::Looking,
            intact: self.intact,
        };
        self.recv.insert(cfg.my_id, own);
    }

    /// FLE's totalOrderPredicate: is `new` a better vote than `cur`?
    pub fn better(cfg: &Config, new: &Vote, cur: &Vote) -> bool {
        // A vote for a non-voter (weight 0) never wins.
        cfg.is_voter(new.leader) && Election::order(cfg, new, cur)
    }

    /// The order alone: (peer epoch, zxid, server id).
    fn order(cfg: &Config, new: &Vote, cur: &Vote) -> bool {
        if plant::active(cfg.plant, Plant::VoteIgnoresEpoch) {
            // The buggy order: no epoch at all, neither the peer's nor the zxid's.
            return (new.zxid.counter(), new.leader) > (cur.zxid.counter(), cur.leader);
        }
        (new.peer_epoch, new.zxid, new.leader) > (cur.peer_epoch, cur.zxid, cur.leader)
    }

    /// FLE's order among the votes for servers that may lead (voters of the configuration in
    /// force); any of those beats a vote for one that may not.
    fn better_vote(&self, cfg: &Config, new: &Vote, cur: &Vote) -> bool {
        let ok = |v: &Vote| self.quorum.can_lead(v.leader);
        ok(new) && (!ok(cur) || Election::order(cfg, new, cur))
    }

    /// Do a quorum of voters in `votes` back `vote` in round `epoch`, one whose members vouch
    /// for their histories (FLE's intersection argument: some backer holds every committed
    /// txn, and backs only a vote at least as good as its own; a backer whose disk was lost
    /// would back anything and hold nothing)? The plant `wiped-votes-as-fresh` counts every
    /// backer, as ZooKeeper does.
    fn has_quorum(
        cfg: &Config,
        q: &QuorumVerifier,
        votes: &BTreeMap<ServerId, Seen>,
        vote: &Vote,
        epoch: u64,
    ) -> bool {
        if plant::active(cfg.plant, Plant::ElectionCountsAnyVote) {
            // every voter heard in the round counts, whatever it voted for
            return q.contains_quorum(
                votes
                    .iter()
                    .filter(|(_, planted)| planted.election_epoch == epoch)
                    .map(|(id, _)| *id),
            );
        }
        let backers = votes
            .iter()
            .filter(|(_, s)| s.vote == *vote && s.election_epoch == epoch)
            .map(|(id, s)| (*id, s.intact));
        if plant::active(cfg.plant, Plant::WipedVotesAsFresh) || cfg.trust_empty_data_dirs {
            return q.contains_quorum(backers.map(|(id, _)| id));
        }
        q.contains_vouching_quorum(backers)
    }

    /// Whether `from`'s vote is counted in this round (FLE's `recvset`), with whether it
    /// vouched: for the simulator's check of when a counted vote is forgotten.
    pub fn counted_vote(&self, from: ServerId) -> Option<bool> {
        self.recv.get(&from).map(|s| s.intact)
    }

    /// The backers of the decision just made by `tick` (once).
    pub fn take_counted(&mut self) -> Option<Vec<(ServerId, bool)>> {
        self.counted.take()
    }

    /// The backers of the vote decided, each with whether it vouched: for the simulator's
    /// check that no quorum counted a server for state it lost.
    pub fn backers(&self, vote: &Vote) -> Vec<(ServerId, bool)> {
        self.recv
            .iter()
            .filter(|(_, s)| s.vote == *vote && s.election_epoch == self.logical_clock)
            .map(|(id, s)| (*id, s.intact))
            .collect()
    }

    /// The tally for a vote announced by a server already out of the election, as ZooKeeper's
    /// `Vote.equals` counts it: servers that follow or lead agree on the leader and its epoch
    /// (each decided in its own round, with its own view of the zxid); LOOKING ones must match
    /// exactly.
    /// `joiner`: a server joining an established leader, counted as backing it in a pending
    /// configuration's quorum only (see the out-of-election case of `receive`).
    fn has_joined_quorum(
        q: &QuorumVerifier,
        votes: &BTreeMap<ServerId, Seen>,
        vote: &Vote,
        epoch: u64,
        joiner: Option<ServerId>,
    ) -> bool {
        let backers = votes
            .iter()
            .filter(|(id, s)| {
                Some(**id) != joiner
                    && match s.state {
                        ServerState::Looking => s.vote == *vote && s.election_epoch == epoch,
                        _ => s.vote.leader == vote.leader && s.vote.peer_epoch == vote.peer_epoch,
                    }
            })
            .map(|(id, _)| *id);
        match joiner {
            Some(me) => q.contains_quorum_joining(backers, me),
            None => q.contains_quorum(backers),
        }
    }

    /// After registering with a leader (or leading), our announced vote carries the new epoch
    /// (ZooKeeper's updateElectionVote, ZOOKEEPER-1732), so LOOKING servers can join us.
    pub fn update_peer_epoch(&mut self, epoch: u32) {
        self.proposal.peer_epoch = epoch;
    }

    /// FLE's checkLeader: we only follow a leader we know is leading (or ourselves).
    fn check_leader(
        &self,
        cfg: &Config,
        votes: &BTreeMap<ServerId, Seen>,
        leader: ServerId,
        epoch: u64,
    ) -> bool {
        if leader == cfg.my_id {
            return self.logical_clock == epoch;
        }
        matches!(votes.get(&leader), Some(s) if s.state == ServerState::Leading)
    }

    /// A notification from `from` while we are LOOKING.
    pub fn receive(
        &mut self,
        cfg: &Config,
        from: ServerId,
        n: &Notification,
        now: Millis,
    ) -> Outcome {
        if !self.quorum.is_voter(from) {
            // Observers' (and non-members') votes never count; tell them what we think. A voter
            // of a pending configuration counts: its quorum is needed too.
            return Outcome::Answer(from);
        }
        let seen = Seen {
            vote: n.vote,
            election_epoch: n.election_epoch,
            state: n.state,
            intact: n.intact,
        };
        match n.state {
            ServerState::Looking => {
                let mut changed = false;
                if n.election_epoch > self.logical_clock {
                    crate::probe!("election.newer-round");
                    self.logical_clock = n.election_epoch;
                    self.recv.clear();
                    self.finalize_at = None;
                    let own = self.initial_vote(cfg);
                    self.proposal = if self.better_vote(cfg, &n.vote, &own) {
                        n.vote
                    } else {
                        own
                    };
                    changed = true;
                } else if n.election_epoch < self.logical_clock {
                    // A lagging sender: it needs our round and vote. Rounds only grow within
                    // a process, so one that vouches for nothing now, with a vote of ours
                    // counted from this round, restarted from a lost disk: that vote came from
                    // what it no longer holds, and is not counted again until it says so anew.
                    crate::probe!("election.lagging-answered");
                    // (the plant takes every sender as one that no longer vouches)
                    let vouches =
                        n.intact && !plant::active(cfg.plant, Plant::LaggingVoterForgotten);
                    if !vouches && self.recv.get(&from).is_some_and(|s| s.intact) {
                        crate::probe!("election.lost-voter-forgotten");
                        self.recv.remove(&from);
                        self.finalize_at = None;
                    }
                    return Outcome::Answer(from);
                } else if self.better_vote(cfg, &n.vote, &self.proposal) {
                    if n.vote.peer_epoch > self.proposal.peer_epoch {
                        crate::probe!("election.higher-epoch-vote");
                    }
                    self.proposal = n.vote;
                    self.finalize_at = None;
                    changed = true;
                }
                self.recv.insert(from, seen);
                if self.quorum.is_voter(cfg.my_id) {
                    self.record_own(cfg);
                }
                // FLE: we now propose the best vote of this round we have seen.
                assert!(!self.better_vote(cfg, &n.vote, &self.proposal));
                assert_eq!(self.logical_clock, n.election_epoch);
                if Election::has_quorum(
                    cfg,
                    &self.quorum,
                    &self.recv,
                    &self.proposal,
                    self.logical_clock,
                ) && self.finalize_at.is_none()
                {
                    self.finalize_at = Some(now + cfg.finalize_wait_ms);
                }
                if changed {
                    Outcome::Broadcast
                } else {
                    Outcome::Continue
                }
            }
            ServerState::Following | ServerState::Leading => {
                if n.election_epoch == self.logical_clock {
                    self.recv.insert(from, seen);
                    if Election::has_joined_quorum(
                        &self.quorum,
                        &self.recv,
                        &n.vote,
                        n.election_epoch,
                        None,
                    ) && self.check_leader(cfg, &self.recv, n.vote.leader, n.election_epoch)
                    {
                        return Outcome::Decided {
                            vote: n.vote,
                            election_epoch: n.election_epoch,
                        };
                    }
                }
                // Servers already out of the election: join an established leader. In the
                // quorum of a pending configuration (a reconfig in our log, not committed) we
                // back it ourselves as we join (the termination rule's own claim counts the
                // joiner too): a leader whose reconfig needs our ACK to commit otherwise waits
                // for us while we wait for a quorum of its new voters to follow it, and one
                // that dropped the reconfig never gathers them (swarm seeds 674, 1932). ZAB's
                // safety does not rest on this: the leader's epoch checks refuse a joiner it
                // must not take.
                self.out_of_election.insert(from, seen);
                let me = self.quorum.is_voter(cfg.my_id).then_some(cfg.my_id);
                if Election::has_joined_quorum(
                    &self.quorum,
                    &self.out_of_election,
                    &n.vote,
                    n.election_epoch,
                    me,
                ) && self.check_leader(
                    cfg,
                    &self.out_of_election,
                    n.vote.leader,
                    n.election_epoch,
                ) {
                    crate::probe!("election.joined-established");
                    self.logical_clock = n.election_epoch;
                    return Outcome::Decided {
                        vote: n.vote,
                        election_epoch: n.election_epoch,
                    };
                }
                Outcome::Continue
            }
            ServerState::Observing => Outcome::Continue,
        }
    }

    /// Time passed: decide after the finalize wait, or resend with back-off.
    pub fn tick(&mut self, cfg: &Config, now: Millis) -> Outcome {
        // A lone voter (standalone) hears no notifications: its own vote is the quorum.
        if self.finalize_at.is_none()
            && self.quorum.is_voter(cfg.my_id)
            && Election::has_quorum(
                cfg,
                &self.quorum,
                &self.recv,
                &self.proposal,
                self.logical_clock,
            )
        {
            // The finalize wait listens for a better vote; a config whose only voter is us
            // can hear none, so it decides at once (ZooKeeper's standalone server serves as
            // soon as it listens; a 200 ms wait made clients that came early lose requests).
            let lone = !self.quorum.is_joint() && self.quorum.voters().all(|v| v == cfg.my_id);
            self.finalize_at = Some(if lone {
                now
            } else {
                now + cfg.finalize_wait_ms
            });
        }
        if let Some(at) = self.finalize_at
            && now >= at
        {
            self.finalize_at = None;
            if self.quorum.is_voter(cfg.my_id)
                && Election::has_quorum(
                    cfg,
                    &self.quorum,
                    &self.recv,
                    &self.proposal,
                    self.logical_clock,
                )
            {
                assert!(
                    self.quorum.can_lead(self.proposal.leader) || self.proposal.leader == cfg.my_id,
                    "deciding for a non-voter"
                );
                if !plant::active(cfg.plant, Plant::ElectionBackersUnreported) {
                    self.counted = Some(self.backers(&self.proposal));
                }
                return Outcome::Decided {
                    vote: self.proposal,
                    election_epoch: self.logical_clock,
                };
            }
        }
        if now >= self.next_resend {
            self.resend_interval =
                (self.resend_interval * 2).min(cfg.max_notification_interval_ms.max(1));
            self.next_resend = now + self.resend_interval;
            assert!(self.next_resend > now, "a resend due at once, forever");
            return Outcome::Broadcast;
        }
        Outcome::Continue
    }

    /// While LOOKING: the tally holds only voters' votes of this round, our proposal is no
    /// worse than our own vote, and what is out of the election says so.
    pub fn check_invariants(&self, cfg: &Config) {
        assert!(self.logical_clock > 0, "LOOKING before a round started");
        assert!(
            !self.better_vote(cfg, &self.own, &self.proposal),
            "proposing a vote worse than our own"
        );
        for (id, seen) in &self.recv {
            assert!(self.quorum.is_voter(*id), "an observer's vote in the tally");
            assert_eq!(
                seen.election_epoch, self.logical_clock,
                "a vote of another round"
            );
        }
        for seen in self.out_of_election.values() {
            assert_ne!(seen.state, ServerState::Looking);
        }
        assert!(self.resend_interval >= 1, "notifications never resent");
    }

    fn initial_vote(&self, _cfg: &Config) -> Vote {
        self.own
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LearnerType;
    use crate::zxid::Zxid;

    fn cfg(me: ServerId, voters: u64, observers: u64) -> Config {
        let mut m = BTreeMap::new();
        for id in 1..=voters {
            m.insert(id, LearnerType::Participant);
        }
        for id in voters + 1..=voters + observers {
            m.insert(id, LearnerType::Observer);
        }
        let mut c = Config::new(me, m);
        c.finalize_wait_ms = 100;
        c
    }

    fn vote(leader: ServerId, zxid: u64, peer_epoch: u32) -> Vote {
        Vote {
            leader,
            zxid: Zxid(zxid),
            peer_epoch,
        }
    }

    /// An election started with our own `vote`, majority quorums, at time 0.
    fn started(c: &Config, vote: Vote, intact: bool) -> Election {
        let mut e = Election::new();
        e.start(c, &QuorumVerifier::majority(c), vote, intact, 0);
        e
    }

    fn decided(vote: Vote, election_epoch: u64) -> Outcome {
        Outcome::Decided {
            vote,
            election_epoch,
        }
    }

    fn looking(v: Vote, round: u64) -> Notification {
        Notification {
            vote: v,
            state: ServerState::Looking,
            election_epoch: round,
            config_version: 0,
            intact: true,
        }
    }

    #[test]
    fn votes_order_by_epoch_then_zxid_then_id() {
        let c = cfg(1, 3, 0);
        assert!(
            Election::better(&c, &vote(1, 5, 2), &vote(3, 9, 1)),
            "peer epoch first"
        );
        assert!(
            Election::better(&c, &vote(1, 9, 1), &vote(3, 5, 1)),
            "then zxid"
        );
        assert!(
            Election::better(&c, &vote(3, 5, 1), &vote(2, 5, 1)),
            "then server id"
        );
        assert!(
            !Election::better(&c, &vote(2, 5, 1), &vote(2, 5, 1)),
            "a vote is not better than itself"
        );
    }

    #[test]
    fn a_vote_for_an_observer_never_wins() {
        let c = cfg(1, 3, 1);
        assert!(!Election::better(&c, &vote(4, 100, 9), &vote(1, 0, 0)));
    }

    #[test]
    fn decides_after_quorum_and_finalize_wait() {
        let c = cfg(1, 3, 0);
        let mut e = started(&c, vote(1, 10, 1), true);
        assert_eq!(
            e.tick(&c, 0),
            Outcome::Broadcast,
            "the first tick announces the round"
        );
        // 2 has a better log: we adopt its vote and announce it.
        assert_eq!(
            e.receive(&c, 2, &looking(vote(2, 20, 1), 1), 5),
            Outcome::Broadcast
        );
        assert_eq!(e.proposal, vote(2, 20, 1));
        // 1 (us) and 2 agree: a quorum of 3, but we wait the finalize time for better news.
        assert_eq!(e.tick(&c, 50), Outcome::Continue);
        assert_eq!(e.tick(&c, 105), decided(vote(2, 20, 1), 1));
    }

    #[test]
    fn a_better_vote_during_the_finalize_wait_restarts_it() {
        let c = cfg(1, 3, 0);
        let mut e = started(&c, vote(1, 10, 1), true);
        e.receive(&c, 2, &looking(vote(2, 20, 1), 1), 5);
        assert_eq!(
            e.receive(&c, 3, &looking(vote(3, 30, 1), 1), 50),
            Outcome::Broadcast
        );
        // 2 still backs its own vote: 3's has only 3 and us.
        assert_eq!(e.tick(&c, 160), decided(vote(3, 30, 1), 1));
    }

    #[test]
    fn a_later_round_resets_the_tally_and_a_lagging_sender_is_answered() {
        let c = cfg(1, 3, 0);
        let mut e = started(&c, vote(1, 10, 1), true);
        assert_eq!(
            e.receive(&c, 2, &looking(vote(2, 5, 1), 4), 1),
            Outcome::Broadcast
        );
        assert_eq!(e.logical_clock, 4);
        assert_eq!(
            e.proposal,
            vote(1, 10, 1),
            "our own vote is better than 2's"
        );
        assert_eq!(
            e.receive(&c, 3, &looking(vote(3, 1, 1), 2), 2),
            Outcome::Answer(3)
        );
    }

    #[test]
    fn joins_an_established_leader_from_out_of_election_votes() {
        let c = cfg(3, 3, 0);
        let mut e = started(&c, vote(3, 0, 0), true);
        let v = vote(2, 7, 1);
        let following = Notification {
            vote: v,
            state: ServerState::Following,
            election_epoch: 9,
            config_version: 0,
            intact: true,
        };
        let leading = Notification {
            vote: v,
            state: ServerState::Leading,
            election_epoch: 9,
            config_version: 0,
            intact: true,
        };
        assert_eq!(
            e.receive(&c, 1, &following, 1),
            Outcome::Continue,
            "the leader itself not seen yet"
        );
        assert_eq!(e.receive(&c, 2, &leading, 2), decided(v, 9));
    }

    #[test]
    fn a_joiner_backs_the_established_leader_itself() {
        let leading = |v: Vote| Notification {
            vote: v,
            state: ServerState::Leading,
            election_epoch: 9,
            config_version: 0,
            intact: true,
        };
        let following = |v: Vote| Notification {
            state: ServerState::Following,
            ..leading(v)
        };
        let v = vote(2, 7, 1);
        // in force {1, 2, 3}, pending {1, 3, 4, 5} (a reconfig in our log, which the leader
        // may need us to ACK): we count ourselves in the second's quorum only
        let c = cfg(3, 5, 0);
        let roles = |ids: &[u64]| {
            ids.iter()
                .map(|id| (*id, LearnerType::Participant))
                .collect::<BTreeMap<_, _>>()
        };
        let old = crate::membership::Membership::synthetic(&roles(&[1, 2, 3]));
        let new = crate::membership::Membership::synthetic(&roles(&[1, 3, 4, 5]));
        let q = QuorumVerifier::of(&old, Some(&new));
        let mut e = Election::new();
        e.start(&c, &q, vote(3, 0, 0), true, 0);
        assert_eq!(e.receive(&c, 2, &leading(v), 1), Outcome::Continue);
        assert_eq!(
            e.receive(&c, 1, &following(v), 2),
            Outcome::Continue,
            "1 and we are two of the four pending voters"
        );
        assert_eq!(
            e.receive(&c, 4, &following(v), 3),
            decided(v, 9),
            "1, 4 and we: three of four"
        );
        // without a reconfig the joiner is not counted (ZooKeeper's outofelection)
        let c = cfg(3, 3, 0);
        let mut e = started(&c, vote(3, 0, 0), true);
        assert_eq!(e.receive(&c, 2, &leading(v), 1), Outcome::Continue);
    }

    #[test]
    fn voters_that_vouch_for_nothing_decide_only_with_every_voter() {
        let c = cfg(1, 3, 0);
        let blank = |v: Vote| Notification {
            intact: false,
            ..looking(v, 1)
        };
        // we and 2 lost our disks (or never had one): 3 may hold what we lack
        let mut e = started(&c, vote(1, 0, 0), false);
        e.receive(&c, 2, &blank(vote(1, 0, 0)), 1);
        assert_ne!(e.tick(&c, 1000), decided(vote(1, 0, 0), 1));
        // 3 is there too (a new ensemble): every voter backs the best vote
        assert_eq!(
            e.receive(&c, 3, &blank(vote(3, 0, 0)), 1001),
            Outcome::Broadcast
        );
        e.receive(&c, 2, &blank(vote(3, 0, 0)), 1002);
        e.receive(&c, 3, &blank(vote(3, 0, 0)), 1003);
        assert_eq!(e.tick(&c, 2000), decided(vote(3, 0, 0), 1));
        assert_eq!(e.take_counted().map(|m| m.len()), Some(3));

        // 2 vouches, we do not: two of three are not a quorum that vouches
        let mut e = started(&c, vote(1, 0, 0), false);
        e.receive(&c, 2, &looking(vote(2, 9, 1), 1), 1);
        assert_eq!(e.tick(&c, 1000), Outcome::Broadcast);
        assert!(e.take_counted().is_none());
        // with the trust setting, as ZooKeeper: they decide
        let mut trusting = c.clone();
        trusting.trust_empty_data_dirs = true;
        let mut e = Election::new();
        e.start(
            &trusting,
            &QuorumVerifier::majority(&trusting),
            vote(1, 0, 0),
            false,
            0,
        );
        e.receive(&trusting, 2, &looking(vote(2, 9, 1), 1), 1);
        assert_eq!(e.tick(&trusting, 1000), decided(vote(2, 9, 1), 1));
    }

    #[test]
    fn a_standalone_voter_elects_itself() {
        let c = cfg(1, 1, 1);
        let mut e = started(&c, vote(1, 0, 0), true);
        // no finalize wait: no other voter can send a better vote (observers do not vote)
        assert_eq!(e.tick(&c, 0), decided(vote(1, 0, 0), 1));
    }

    #[test]
    fn observers_are_answered_and_never_counted() {
        let c = cfg(1, 3, 1);
        let mut e = started(&c, vote(1, 0, 0), true);
        assert_eq!(
            e.receive(&c, 4, &looking(vote(4, 99, 9), 1), 1),
            Outcome::Answer(4)
        );
        assert_eq!(e.proposal, vote(1, 0, 0));
    }

    #[test]
    fn an_observer_never_decides_from_looking_votes() {
        let c = cfg(4, 3, 1);
        let mut e = started(&c, vote(4, 0, 0), true);
        for from in 1..=3 {
            e.receive(&c, from, &looking(vote(3, 5, 1), 1), 1);
        }
        assert_ne!(e.tick(&c, 1000), decided(vote(3, 5, 1), 1));
    }
}
