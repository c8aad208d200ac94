//! `election.learner-dropped`: a server that takes up following (or observing) another breaks
//! the quorum connection of every peer whose FOLLOWERINFO it kept, unanswered, for when it
//! might lead. A learner's connection belongs to its leader's role (ZooKeeper accepts learner
//! connections only in `Leader`'s LearnerCnxAcceptor; a server that is not leading has none,
//! and the learner's connect fails); a server that kept one while it could still lead (LOOKING,
//! or a voter following a leader that may hand over to it) and then follows another has to
//! let it go, or the peer waits on it for initLimit before looking again. Judged on what the
//! world saw: the FOLLOWERINFO delivered, nothing sent back on that connection since, the
//! connection (its generation) and the server's incarnation the same.

use crate::check::{Claim, Violation, violation};
use crate::net::QUORUM;
use crate::world::World;
use ensemble_core::peer::{PeerMsg, ServerState};
use ensemble_core::server::Event;
use ensemble_core::txn::ServerId;
use std::collections::BTreeMap;

/// What the claim remembers.
#[derive(Default)]
pub struct WaitingLearners {
    /// (server, peer) -> (the server's incarnation, the connection's generation) when the
    /// peer's FOLLOWERINFO reached it while it could still lead.
    waiting: BTreeMap<(ServerId, ServerId), (u64, u64)>,
    /// The stepping server's role before the step: incarnation, state, whom it followed.
    before: Option<(ServerId, u64, ServerState, Option<ServerId>)>,
}

impl World {
    /// Before a step of server `id` taking `event`.
    pub(crate) fn learner_dropped_before(&mut self, id: ServerId, event: &Event) {
        let Some(n) = self.nodes.get(&id) else {
            return;
        };
        let Some(s) = n.server.as_ref() else {
            return;
        };
        // whom it follows, from the server's status (the world's `following` moves only with
        // its serving): asked only when a kept FOLLOWERINFO can be judged or is coming
        let judged = self
            .handover
            .learners
            .waiting
            .range((id, 0)..=(id, ServerId::MAX))
            .next()
            .is_some();
        let coming = matches!(
            event,
            Event::Peer {
                msg: PeerMsg::LearnerInfo { .. },
                ..
            }
        );
        if !judged && !coming {
            self.handover.learners.before = None;
            return;
        }
        let following = s.status().leader.filter(|l| *l != id);
        self.handover.learners.before = Some((id, n.inc, n.state, following));
        // the break of a connection reaches the server after its messages (a paused server
        // takes a FOLLOWERINFO held since before the break): the core drops it then
        if let Event::PeerDisconnected { peer } = event {
            self.handover.learners.waiting.remove(&(id, *peer));
            return;
        }
        let Event::Peer {
            from,
            msg: PeerMsg::LearnerInfo { .. },
        } = event
        else {
            return;
        };
        // kept for when it leads: LOOKING, or a voter of its configuration following another
        let may_lead = match n.state {
            ServerState::Looking => true,
            ServerState::Following | ServerState::Observing => {
                following != Some(*from) && s.membership().voters().any(|v| v == id)
            }
            ServerState::Leading => false,
        };
        if may_lead {
            let g = n.gens.get(&(*from, QUORUM)).copied().unwrap_or(0);
            self.handover
                .learners
                .waiting
                .insert((id, *from), (n.inc, g));
        }
    }

    /// Server `from` sent `to` something on the quorum channel: a kept FOLLOWERINFO of `to`'s
    /// is answered.
    pub(crate) fn learner_answered(&mut self, from: ServerId, to: ServerId) {
        self.handover.learners.waiting.remove(&(from, to));
    }

    /// After that step: a server that took up a learner role drops the learners it kept.
    pub(crate) fn check_learner_dropped(&mut self, id: ServerId) -> Result<(), Violation> {
        let Some((was, inc, state, following)) = self.handover.learners.before.take() else {
            return Ok(());
        };
        let Some(n) = self.nodes.get(&id) else {
            return Ok(());
        };
        let Some(s) = n.server.as_ref() else {
            return Ok(());
        };
        if was != id || n.inc != inc {
            return Ok(());
        }
        let now = s.state();
        if now == ServerState::Leading {
            // the leader's role owns them now: it answers each or breaks it when it ends
            self.handover.learners.waiting.retain(|(x, _), _| *x != id);
            return Ok(());
        }
        if !matches!(now, ServerState::Following | ServerState::Observing) {
            return Ok(());
        }
        let leader = s.status().leader;
        let started = state != now || following != leader;
        if !started {
            return Ok(());
        }
        let kept: Vec<ServerId> = self
            .handover
            .learners
            .waiting
            .iter()
            .filter(|((x, p), (i, g))| {
                *x == id
                    && Some(*p) != leader
                    && *i == inc
                    && n.gens.get(&(*p, QUORUM)).copied().unwrap_or(0) == *g
            })
            .map(|((_, p), _)| *p)
            .collect();
        self.handover.learners.waiting.retain(|(x, _), _| *x != id);
        if kept.is_empty() {
            return Ok(());
        }
        Err(violation(
            Claim::ElectionLearnerDropped,
            self.sched.now,
            format!(
                "n{id} went from {state:?} to {now:?} of n{} and kept the quorum connections of {kept:?}, whose FOLLOWERINFOs it took while it could lead (none answered)",
                leader.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
            ),
        ))
    }
}
