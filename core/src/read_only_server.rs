//! Read-only mode (ZooKeeper's ReadOnlyZooKeeperServer, started by QuorumPeer while LOOKING)
//! and the sessions only this server knows (ZooKeeper's LocalSessionTracker): a
//! `localSessionsEnabled` session until it is upgraded, and every session of a read-only
//! server. None of them is replicated: they end with the role they were made in, and no other
//! server takes them.

use crate::effect::Action;
use crate::effect::Ready;
use crate::peer::ServerState;
use crate::plant::Plant;
use crate::role::RoleMut;
use crate::server::{ConnId, Millis};
use crate::session_tracker::SessionTracker;
use crate::zookeeper_server::ZooKeeperServer;

/// Whether this server serves read-only, and since when it has been looking for a quorum.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadOnlyMode {
    pub(crate) looking_since: Millis,
    pub(crate) active: bool,
}

impl ReadOnlyMode {
    pub(crate) fn new(now: Millis) -> ReadOnlyMode {
        ReadOnlyMode {
            looking_since: now,
            active: false,
        }
    }
}

impl ZooKeeperServer {
    /// LOOKING for longer than the grace period with `readonlymode.enabled`: serve the clients
    /// that ask canBeReadOnly from what is committed here (the applied tree), as QuorumPeer
    /// starts its ReadOnlyZooKeeperServer. Nothing is proposed, logged or acknowledged.
    pub(crate) fn maybe_start_read_only(&mut self, out: &mut Ready) {
        let delay = if self.plant(Plant::ReadOnlyHalfGrace) {
            self.cfg.read_only_delay_ms() / 2
        } else {
            self.cfg.read_only_delay_ms()
        };
        if !self.cfg.read_only_mode
            || self.read_only.active
            || self.state != ServerState::Looking
            || self.now < self.read_only.looking_since + delay
        {
            return;
        }
        assert!(
            self.clients.conns.is_empty(),
            "clients before read-only mode"
        );
        assert!(self.local_sessions.is_empty(), "sessions left from a role");
        if self.plant(Plant::ReadOnlyServesUncommitted) {
            // planted: the logged tail, never committed, is served too (as a restarted
            // ZooKeeper, which replays its whole log into memory, would serve it)
            let to = self.last_logged();
            self.commit_to(&mut RoleMut::Looking, to, out);
        }
        self.read_only.active = true;
        tracing::info!(applied = %self.tree.last_zxid(), "no quorum: serving read-only clients");
    }

    /// The election decided: the read-only server goes with its clients and sessions (the
    /// clients reconnect, to a read-write server).
    pub(crate) fn stop_read_only(&mut self, out: &mut Ready) {
        if !self.read_only.active {
            return;
        }
        self.close_all_clients(out);
        self.read_only.active = false;
        tracing::info!("leaving read-only mode");
        assert!(self.local_sessions.is_empty());
    }

    /// Server-side state of a role that ends: its clients go, and the sessions only it knew.
    pub(crate) fn forget_local_sessions(&mut self) {
        self.local_sessions = SessionTracker::default();
    }

    /// Local sessions past their deadline end here: nothing is replicated, so nothing is
    /// proposed; their connections close.
    pub(crate) fn expire_local_sessions(&mut self, out: &mut Ready) {
        for session in self.local_sessions.expired(self.now) {
            tracing::info!(
                session = format_args!("{session:#x}"),
                "local session expired"
            );
            self.local_sessions.untrack(session);
            let conns: Vec<ConnId> = self
                .clients
                .conns
                .iter()
                .filter(|(_, c)| c.session == session)
                .map(|(id, _)| *id)
                .collect();
            for conn in conns {
                out.push(Action::Close { conn });
                self.drop_conn(conn);
            }
        }
    }

    /// Local sessions exist only where they may: local sessions enabled or read-only mode.
    pub(crate) fn check_local_sessions(&self) {
        assert!(
            self.local_sessions.is_empty() || self.cfg.local_sessions || self.read_only.active,
            "a local session without local sessions or read-only mode"
        );
        assert!(
            !self.read_only.active || self.state == ServerState::Looking,
            "read-only while {:?}",
            self.state
        );
        self.local_sessions.check_invariants();
    }
}

#[cfg(test)]
#[path = "read_only_tests.rs"]
mod tests;
