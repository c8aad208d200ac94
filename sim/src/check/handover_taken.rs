//! `reconfig.handover-taken`: a learner that gets its leader's HANDOVER while it serves that
//! leader and has applied the reconfig goes straight to the designated successor in the same
//! step, without an election: it leads if it is the one designated, else it follows or
//! observes the designated one. ZooKeeper: the learner's COMMITANDACTIVATE runs
//! `processReconfig` with the designated leader, which sets `reconfigFlag`, and
//! `QuorumPeer.updateServerState` then sets LEADING for the designated server, FOLLOWING for a
//! participant and OBSERVING for an observer, never LOOKING (ZOOKEEPER-107, Shraer et al.,
//! "Dynamic Reconfiguration of Primary/Backup Clusters", section 5). What the world knows
//! decides "ready" (the server's last step left it serving a leadership of the sender, with
//! the reconfig's zxid applied); the core's own readiness test is not consulted.

use crate::check::{Claim, Violation, violation};
use crate::world::World;
use ensemble_core::peer::{PeerMsg, ServerState};
use ensemble_core::server::Event;
use ensemble_core::txn::ServerId;
use ensemble_core::zxid::Zxid;

/// A HANDOVER being taken by a learner ready for it, as it was before the step.
pub(crate) struct Taking {
    id: ServerId,
    leader: ServerId,
    zxid: Zxid,
    designated: ServerId,
}

impl World {
    /// Before a step of server `id` taking `event`: a HANDOVER from the leader it serves,
    /// with the reconfig applied, naming another server than that leader.
    pub(crate) fn handover_taken_before(&mut self, id: ServerId, event: &Event) {
        self.handover.taking = None;
        let Event::Peer {
            from,
            msg: PeerMsg::HandOver { zxid, designated },
        } = event
        else {
            return;
        };
        let Some(n) = self.nodes.get(&id) else {
            return;
        };
        let learner = matches!(n.state, ServerState::Following | ServerState::Observing);
        // whom it serves, from its status (the world's `following` moves only with serving)
        if !learner
            || !n.serving
            || n.server.as_ref().and_then(|s| s.status().leader) != Some(*from)
            || n.applied < *zxid
            || designated == from
        {
            return;
        }
        self.handover.taking = Some(Taking {
            id,
            leader: *from,
            zxid: *zxid,
            designated: *designated,
        });
    }

    /// After that step: the learner is the successor's leader, follower or observer.
    pub(crate) fn check_handover_taken(&mut self, id: ServerId) -> Result<(), Violation> {
        let Some(t) = self.handover.taking.take() else {
            return Ok(());
        };
        // a step cut short (a failed write crashed it) is not judged
        let Some(s) = self.nodes.get(&id).and_then(|n| n.server.as_ref()) else {
            return Ok(());
        };
        if t.id != id {
            return Ok(());
        }
        let state = s.state();
        let leader = s.status().leader;
        let taken = if t.designated == id {
            state == ServerState::Leading
        } else {
            matches!(state, ServerState::Following | ServerState::Observing)
                && leader == Some(t.designated)
        };
        if taken {
            return Ok(());
        }
        Err(violation(
            Claim::ReconfigHandOverTaken,
            self.sched.now,
            format!(
                "n{id}, serving n{} with the reconfig {} applied, took its HANDOVER naming n{} and is {state:?}{} (updateServerState goes to the designated leader without an election)",
                t.leader,
                t.zxid,
                t.designated,
                leader.map(|l| format!(" of n{l}")).unwrap_or_default(),
            ),
        ))
    }
}
