//! `client.close-reason`: a server closes a client's connection bound to a session only for a
//! reason the simulated world can name (ZooKeeper's `NIOServerCnxn.close` callers):
//!
//! * the step's event is that connection's own (its client's request, however malformed,
//!   refused, unauthorised or throttled; its handshake; its client's close);
//! * its client asked for the close earlier on it: a closeSession, or a request the runtime
//!   refused with a close (`Event::ClientRefused { close: true }`);
//! * this server applied the session's closeSession (`Action::EphemeralsDeleted`: the leader's
//!   expiry or a client's close), or the reference history has it committed;
//! * the server stopped serving in this step (its state, serving or read-only mode changed);
//! * a handshake naming the session reached this server after the connection was bound (an
//!   older connection of a session re-attached here goes), or another server at any time (the
//!   client moved: ZooKeeper's SESSIONMOVED; the leader takes re-attaches in the order it gets
//!   them, so one older than this connection's may still move the session);
//! * the session's timeout passed on this server's clock since the connection's last event
//!   (a local session's expiry here).
//!
//! Connections not bound (a handshake refused or still under way) are not judged: a refused
//! handshake is its own event. Judged as each `Action::Close` is carried out.

use crate::check::{Claim, violation};
use crate::world::World;
use ensemble_core::server::{ConnId, Event, Server};
use ensemble_core::txn::ServerId;
use ensemble_proto::proto::{Request, SessionId};
use std::collections::{BTreeMap, BTreeSet};

/// What one server incarnation's connections have done that may justify their close.
#[derive(Debug, Default)]
pub(crate) struct CloseReasons {
    /// Per connection: the local time of its last event, whether its client asked for a
    /// close, and the session's handshake count when it was bound.
    conns: BTreeMap<ConnId, ConnLife>,
    /// Sessions whose closeSession this incarnation applied.
    closed: BTreeSet<SessionId>,
    /// The step under way: the connection its event concerns, the server's local time, and
    /// whether it was read-only before it.
    step_conn: Option<ConnId>,
    local: u64,
    read_only_before: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct ConnLife {
    heard_local: u64,
    asked_close: bool,
    handshakes: u64,
}

impl CloseReasons {
    /// Before the server handles `event` at local time `local`.
    pub(crate) fn event(&mut self, event: &Event, server: &Server, local: u64) {
        self.local = local;
        self.read_only_before = server.is_read_only();
        self.step_conn = None;
        let Some(conn) = crate::check::conn_session::event_conn(event) else {
            return;
        };
        if matches!(event, Event::ClientDisconnected { .. }) {
            self.conns.remove(&conn);
        }
        self.step_conn = Some(conn);
        let life = self.conns.entry(conn).or_default();
        life.heard_local = local;
        if matches!(
            event,
            Event::Client {
                request: Request::CloseSession,
                ..
            } | Event::ClientRefused { close: true, .. }
        ) {
            life.asked_close = true;
        }
    }
}

impl CloseReasons {
    /// `conn` is closed: nothing of it is kept.
    pub(crate) fn forget(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }
}

impl World {
    /// Before server `id` handles `event`: what the close reasons need of it, and a handshake
    /// naming a session counted world-wide.
    pub(crate) fn close_reason_event(&mut self, id: ServerId, event: &Event) {
        if let Event::ClientConnected { request, .. } = event
            && request.session_id != 0
        {
            let h = self
                .session_handshakes
                .entry(request.session_id)
                .or_default();
            h.0 += 1;
            h.1.insert(id);
        }
        let now = self.sched.now;
        let n = self.nodes.get_mut(&id).expect("node");
        let local = n.local_now(now);
        if let Some(s) = n.server.as_ref() {
            n.conn_sessions.reasons.event(event, s, local);
        }
    }

    /// Server `id` bound `conn` to `session` (its handshake answered with it).
    pub(crate) fn close_reason_bound(&mut self, id: ServerId, conn: ConnId, session: SessionId) {
        let handshakes = self.session_handshakes.get(&session).map_or(0, |h| h.0);
        let r = &mut self.nodes.get_mut(&id).expect("node").conn_sessions.reasons;
        let local = r.local;
        let life = r.conns.entry(conn).or_default();
        life.handshakes = handshakes;
        life.heard_local = life.heard_local.max(local);
    }

    /// Server `id` applied `session`'s closeSession.
    pub(crate) fn close_reason_session_closed(&mut self, id: ServerId, session: SessionId) {
        let n = self.nodes.get_mut(&id).expect("node");
        n.conn_sessions.reasons.closed.insert(session);
    }

    /// Server `id` closes `conn`, bound to `session` with `timeout_ms`: the reason, or a
    /// violation.
    pub(crate) fn check_close_reason(
        &mut self,
        id: ServerId,
        conn: ConnId,
        session: SessionId,
        timeout_ms: i32,
    ) {
        let n = &self.nodes[&id];
        let Some(s) = n.server.as_ref() else { return };
        let r = &n.conn_sessions.reasons;
        let life = r.conns.get(&conn).copied().unwrap_or_default();
        let own_event = r.step_conn == Some(conn);
        let left_serving = n.state != s.state()
            || n.serving != s.is_serving()
            || r.read_only_before != s.is_read_only();
        // a later handshake here (the older connection goes), or one ever on another server:
        // the leader takes re-attaches in the order it gets them, which may not be theirs
        // (a stalled leader's backlog), so an older one elsewhere may still move the session
        let moved = self
            .session_handshakes
            .get(&session)
            .is_some_and(|h| h.0 > life.handshakes || h.1.iter().any(|s| *s != id));
        let timed_out = r.local.saturating_sub(life.heard_local) >= timeout_ms.max(0) as u64;
        if own_event
            || life.asked_close
            || r.closed.contains(&session)
            || self.reference.sessions_closed.contains_key(&session)
            || left_serving
            || moved
            || timed_out
        {
            return;
        }
        if self.violation.is_some() {
            return;
        }
        let detail = format!(
            "n{id} closed conn {conn} of live session {session:#x} ({}ms since its last event, \
             timeout {timeout_ms}ms) with no reason: not its own request, no close asked, its \
             session not closed here, the server still {:?} serving={}, no handshake of the \
             session elsewhere or here since",
            r.local.saturating_sub(life.heard_local),
            s.state(),
            s.is_serving(),
        );
        self.fail(violation(Claim::ClientCloseReason, self.sched.now, detail));
    }
}
