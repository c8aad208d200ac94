//! `reconfig.handover`: a leader that a committed reconfig removed hands leadership over as
//! ZooKeeper 3.5+ does (Leader.getDesignatedLeader, `allowedToCommit`): the successor it
//! names is a voter of the new configuration that holds, durably, everything the leader
//! committed (it ACKed the reconfig, or the whole history when the leader commits it as it is
//! established); the leader no longer votes in that configuration; it commits nothing of
//! its epoch past that reconfig (`allowedToCommit`); and from the HANDOVER on it commits
//! nothing more in its epoch. A successor without what was committed would TRUNC
//! it away in its new epoch; a leader that went on committing would commit txns its
//! successor may lack.

use crate::check::{Claim, Violation, violation};
use crate::world::World;
use ensemble_core::peer::{PeerMsg, ServerState};
use ensemble_core::server::Event;
use ensemble_core::txn::ServerId;
use ensemble_core::zxid::Zxid;
use std::collections::BTreeMap;

/// What the hand-over check remembers: each leader that handed over, with what it had
/// committed then (cleared when it stops leading).
#[derive(Default)]
pub struct HandOverRecord {
    pub(crate) handed_over: BTreeMap<ServerId, Zxid>,
    /// Before a step of a leader that its pending reconfig removes: the leader, that
    /// reconfig's version, and its active followers with what each ACKed (the event's ACK
    /// included), for [`World::check_successor_named`] after the step.
    before: Option<RemovedLeader>,
    /// A HANDOVER a ready learner is taking in this step (`reconfig.handover-taken`).
    pub(crate) taking: Option<crate::check::handover_taken::Taking>,
    /// FOLLOWERINFOs kept by servers that might lead (`election.learner-dropped`).
    pub(crate) learners: crate::check::learner_dropped::WaitingLearners,
}

/// A leader its pending reconfig removes, as it was before a step.
struct RemovedLeader {
    id: ServerId,
    /// The pending reconfig's version (its zxid).
    version: u64,
    /// Its active followers, each with the highest zxid it ACKed.
    acks: Vec<(ServerId, Zxid)>,
}

impl World {
    /// Server `id` sends a HANDOVER naming `designated` after committing through `zxid`.
    pub(crate) fn check_handover(
        &mut self,
        id: ServerId,
        zxid: Zxid,
        designated: ServerId,
    ) -> Result<(), Violation> {
        let Some(s) = self.nodes.get(&id).and_then(|n| n.server.as_ref()) else {
            return Ok(());
        };
        let applied = s.tree().last_zxid();
        let m = s.membership();
        let why = if s.state() != ServerState::Leading {
            Some(format!("n{id} sent a HANDOVER while {:?}", s.state()))
        } else if applied != zxid || m.version > zxid.0 || m.version & 0xffff_ffff == 0 {
            Some(format!(
                "n{id} handed over at {zxid} with {applied} committed and configuration {:x} in force (not a committed reconfig's)",
                m.version
            ))
        } else if m.voters().any(|v| v == id) {
            Some(format!(
                "n{id} handed over while a voter of the configuration in force"
            ))
        } else if !m.voters().any(|v| v == designated) {
            Some(format!(
                "n{id} designated n{designated}, not a voter of the new configuration {:?}",
                m.voters().collect::<Vec<_>>()
            ))
        } else if !self
            .nodes
            .get(&designated)
            .is_some_and(|d| d.disk.holds_durably(applied))
        {
            Some(format!(
                "n{id} designated n{designated}, which does not hold durably the {applied} it committed (it did not ACK it)"
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return Err(violation(Claim::ReconfigHandOver, self.sched.now, why));
        }
        self.handover.handed_over.insert(id, applied);
        Ok(())
    }

    /// After a step of server `id` that moved its applied point to `applied`: ZooKeeper's
    /// `allowedToCommit`. A reconfig that removes the leader is
    /// the last txn it commits; its successor is chosen for ACKing that reconfig, so a txn of
    /// its epoch committed past it may be one the successor lacks. Judged at the commit
    /// itself, in every run that removes a leader, whoever is then designated (plant
    /// `handover-commits-past-reconfig`, judged only by what its successor missed, was found
    /// by none of 0..1500 once the swarm had joiners and containers).
    pub(crate) fn check_commit_within_removal(
        &mut self,
        id: ServerId,
        applied: Zxid,
    ) -> Result<(), Violation> {
        let Some(s) = self.nodes.get(&id).and_then(|n| n.server.as_ref()) else {
            return Ok(());
        };
        // in any phase: the hand-over of the same step has already ended its broadcast
        let Some(epoch) = s.leading_epoch() else {
            return Ok(());
        };
        let m = s.membership();
        let reconfig = Zxid(m.version);
        // A history the leader commits as it is established holds no txn of its own epoch;
        // what it commits after proposing is judged.
        if applied <= reconfig || applied.epoch() != epoch || m.version & 0xffff_ffff == 0 {
            return Ok(());
        }
        if m.voters().any(|v| v == id) {
            return Ok(());
        }
        Err(violation(
            Claim::ReconfigHandOver,
            self.sched.now,
            format!(
                "n{id}, leader of epoch {epoch}, committed through {applied}, past the reconfig {reconfig} that removed it (allowedToCommit)"
            ),
        ))
    }

    /// Before a step of server `id` taking `event`: if it leads and its pending reconfig
    /// removes it, what its followers ACKed, as the leader holds it (ZooKeeper's ackset). Only
    /// an ACK or its own fsync is judged: a tick or a lost link may drop a follower within the
    /// step.
    pub(crate) fn handover_before(&mut self, id: ServerId, event: &Event) {
        self.handover.before = None;
        // only an ACK or an fsync is judged: on any other event nothing is recorded, so the
        // server is not looked at (this runs before every step)
        let acked = match event {
            Event::Peer {
                from,
                msg: PeerMsg::Ack { zxid },
            } => Some((*from, *zxid)),
            Event::Persisted { .. } => None,
            _ => return,
        };
        let Some(s) = self.nodes.get(&id).and_then(|n| n.server.as_ref()) else {
            return;
        };
        if s.leading_epoch().is_none() {
            return;
        }
        let Some(p) = s.pending_membership() else {
            return;
        };
        if p.voters().any(|v| v == id) {
            return;
        }
        let mut acks = s.follower_acks();
        if let Some((from, zxid)) = acked
            && let Some(a) = acks.iter_mut().find(|(f, _)| *f == from)
        {
            a.1 = a.1.max(zxid);
        }
        self.handover.before = Some(RemovedLeader {
            id,
            version: p.version,
            acks,
        });
    }

    /// After that step: ZooKeeper's getDesignatedLeader always names a successor among the
    /// new configuration's voters that ACKed the reconfig (a quorum of them did, the leader
    /// not among them). A leader that committed the reconfig removing it in this step and went
    /// LOOKING without a HANDOVER had no such voter among its active followers.
    pub(crate) fn check_successor_named(&mut self, id: ServerId) -> Result<(), Violation> {
        let Some(RemovedLeader {
            id: leader,
            version,
            acks,
        }) = self.handover.before.take()
        else {
            return Ok(());
        };
        let Some(s) = self.nodes.get(&id).and_then(|n| n.server.as_ref()) else {
            return Ok(());
        };
        let m = s.membership();
        if leader != id || s.state() == ServerState::Leading || m.version != version {
            return Ok(());
        }
        let r = Zxid(version);
        let Some((f, acked)) = acks
            .iter()
            .find(|(f, acked)| *acked >= r && m.voters().any(|v| v == *f))
        else {
            return Ok(());
        };
        Err(violation(
            Claim::ReconfigHandOver,
            self.sched.now,
            format!(
                "n{id} committed the reconfig {r} that removed it and stepped down without naming a successor, while n{f}, a voter of the new configuration, was an active follower that had ACKed through {acked} (getDesignatedLeader names one)"
            ),
        ))
    }

    /// After a step of server `id`: a leader that handed over commits nothing more.
    pub(crate) fn check_handed_over(
        &mut self,
        id: ServerId,
        state: ServerState,
        applied: Zxid,
    ) -> Result<(), Violation> {
        let Some(at) = self.handover.handed_over.get(&id).copied() else {
            return Ok(());
        };
        if state != ServerState::Leading {
            self.handover.handed_over.remove(&id);
            return Ok(());
        }
        if applied != at {
            return Err(violation(
                Claim::ReconfigHandOver,
                self.sched.now,
                format!(
                    "n{id} handed over at {at}, then committed through {applied} in the same leadership"
                ),
            ));
        }
        Ok(())
    }
}
