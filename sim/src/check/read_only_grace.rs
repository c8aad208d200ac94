//! `readonly.grace`: a server starts serving read-only only once it has been LOOKING for the
//! grace period by its own clock (ZooKeeper's QuorumPeer starts its ReadOnlyZooKeeperServer
//! after `max(2000, tickTime)` ms of LOOKING, and a peer that leaves LOOKING starts the wait
//! again next time). The simulator knows each server's local clock and sees every state it
//! announces (`Action::StateChanged`); a server starts LOOKING.

use crate::check::{Claim, violation};
use crate::world::World;
use ensemble_core::peer::ServerState;
use ensemble_core::txn::ServerId;

/// One server incarnation's LOOKING, as its announced states and its clock show it.
#[derive(Debug, Default)]
pub(crate) struct ReadOnlyGrace {
    /// Its local time when it last went LOOKING (or started).
    looking_since: u64,
    /// It served read-only after its last step.
    active: bool,
}

impl ReadOnlyGrace {
    /// A server started (LOOKING) at local time `local`.
    pub(crate) fn started(local: u64) -> ReadOnlyGrace {
        ReadOnlyGrace {
            looking_since: local,
            active: false,
        }
    }
}

impl World {
    /// Server `id` announced `state` (as it is carried out, within its step).
    pub(crate) fn read_only_state(&mut self, id: ServerId, state: ServerState) {
        let now = self.sched.now;
        let n = self.nodes.get_mut(&id).expect("node");
        if state == ServerState::Looking {
            n.read_only.looking_since = n.local_now(now);
        }
    }

    /// After server `id`'s step: if it started serving read-only, its LOOKING has lasted the
    /// grace period by its clock.
    pub(crate) fn check_read_only_grace(&mut self, id: ServerId) {
        let now = self.sched.now;
        let n = self.nodes.get_mut(&id).expect("node");
        let Some(s) = n.server.as_ref() else {
            return;
        };
        let active = s.is_read_only();
        let started = active && !n.read_only.active;
        n.read_only.active = active;
        if !started || self.violation.is_some() {
            return;
        }
        let local = n.local_now(now);
        let delay = s.config().read_only_delay_ms();
        let since = n.read_only.looking_since;
        let state = s.state();
        if state != ServerState::Looking || local < since + delay {
            self.fail(violation(
                Claim::ReadOnlyGrace,
                now,
                format!(
                    "n{id} serves read-only at local t={local}ms, {state:?}, LOOKING since \
                     t={since}ms: under the {delay}ms grace"
                ),
            ));
        }
    }
}
