//! `client.connection-session`: which session a server says a client connection is bound to
//! (`Server::connection_session`, what the node's admin and 4lw watch listings print), against
//! the handshakes the simulator saw it answer.
//!
//! By the protocol, a server binds a connection when it answers the handshake with a session
//! (a ConnectResponse with a timeout; a refused or expired one has none), and lets go of it
//! when it closes it or is told the client did (`Event::ClientDisconnected`). Before its
//! answer (the session still being created, or revalidated with the leader) and after, the
//! connection is bound to nothing. Judged after each step for the connections the step
//! touched: the event's and those the server answered or closed.

use crate::check::{Claim, violation};
use crate::world::World;
use ensemble_core::effect::Action;
use ensemble_core::server::{ConnId, Event};
use ensemble_core::txn::ServerId;
use ensemble_proto::proto::SessionId;
use std::collections::BTreeMap;

/// One server incarnation's bound connections, and those its step under way touched.
#[derive(Debug, Default)]
pub(crate) struct ConnSessions {
    bound: BTreeMap<ConnId, (SessionId, i32)>,
    touched: Vec<ConnId>,
    /// `client.close-reason`'s record of the same connections.
    pub(crate) reasons: super::close_reason::CloseReasons,
}

impl ConnSessions {
    /// Before the server handles `event`: the connection it concerns, let go of if the
    /// client's side closed.
    pub(crate) fn event(&mut self, event: &Event) {
        let Some(conn) = event_conn(event) else {
            return;
        };
        if matches!(event, Event::ClientDisconnected { .. }) {
            self.bound.remove(&conn);
        }
        self.touched.push(conn);
    }

    pub(crate) fn has_touched(&self) -> bool {
        !self.touched.is_empty()
    }
}

impl World {
    /// Server `id` answered a handshake or closed a connection (as it is carried out).
    pub(crate) fn conn_action(&mut self, id: ServerId, a: &Action) {
        let c = &mut self.nodes.get_mut(&id).expect("node").conn_sessions;
        match a {
            Action::ConnectReply { conn, response } => {
                if response.timeout_ms > 0 {
                    c.bound
                        .insert(*conn, (response.session_id, response.timeout_ms));
                    c.touched.push(*conn);
                    self.close_reason_bound(id, *conn, response.session_id);
                } else {
                    c.bound.remove(conn);
                    c.touched.push(*conn);
                }
            }
            Action::Close { conn } => {
                let was = c.bound.remove(conn);
                c.touched.push(*conn);
                if let Some((session, timeout_ms)) = was {
                    self.check_close_reason(id, *conn, session, timeout_ms);
                }
                let c = &mut self.nodes.get_mut(&id).expect("node").conn_sessions;
                c.reasons.forget(*conn);
            }
            _ => {}
        }
    }

    /// After server `id`'s step was carried out: the connections it touched, bound to what
    /// the handshakes say.
    pub(crate) fn check_conn_sessions(&mut self, id: ServerId) {
        let now = self.sched.now;
        let n = self.nodes.get_mut(&id).expect("node");
        if n.conn_sessions.touched.is_empty() {
            return;
        }
        let touched = std::mem::take(&mut n.conn_sessions.touched);
        let mut broken = None;
        if let Some(s) = n.server.as_ref()
            && self.violation.is_none()
        {
            for &conn in &touched {
                let expected = n.conn_sessions.bound.get(&conn).copied();
                let got = s.connection_session(conn);
                if got != expected {
                    broken = Some(format!(
                        "n{id} says conn {conn} is bound to {got:?}; its handshakes say {expected:?}"
                    ));
                    break;
                }
            }
        }
        // keep the buffer
        let mut touched = touched;
        touched.clear();
        self.nodes.get_mut(&id).expect("node").conn_sessions.touched = touched;
        if let Some(detail) = broken {
            self.fail(violation(Claim::ClientConnectionSession, now, detail));
        }
    }
}

/// The client connection an event concerns, if it is a client's.
pub(crate) fn event_conn(event: &Event) -> Option<ConnId> {
    match event {
        Event::ClientConnected { conn, .. }
        | Event::Client { conn, .. }
        | Event::ClientRefused { conn, .. }
        | Event::ClientAuthenticated { conn, .. }
        | Event::ClientDisconnected { conn } => Some(*conn),
        _ => None,
    }
}
