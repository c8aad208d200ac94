//! `client.expired-answers-refused`: a forwarded request the leader refused SESSIONEXPIRED is
//! answered SESSIONEXPIRED by the server that forwarded it, in its turn.
//!
//! ZooKeeper answers a session's requests in the order they came (the client drops the
//! connection on a reply out of xid order), and a refusal is the request's answer: once the
//! follower holds the leader's refusal of request `rid`, that request is answerable, so when
//! everything the connection sent before it has been answered, its SESSIONEXPIRED must be out
//! (or the connection closed) by the end of that step. What the world knows apart from the
//! core: the requests each connection delivered (in order), the replies the server sent, the
//! REQUEST (rid, session, cxid) it forwarded and the leader's SESSIONEXPIRED naming that rid.

use crate::check::{Claim, Violation, violation};
use crate::world::World;
use ensemble_core::effect::Action;
use ensemble_core::peer::PeerMsg;
use ensemble_core::server::{ConnId, Event};
use ensemble_core::txn::ServerId;
use ensemble_proto::proto::{KeeperError, Request, SessionId};
use std::collections::{BTreeMap, VecDeque};

/// One server incarnation's view: its open connections and what the leader refused.
#[derive(Debug, Default)]
pub(crate) struct ExpiredAnswers {
    /// Each open connection's session (from the handshake's answer) and the xids it delivered
    /// that the server has not answered, in the order they came.
    conns: BTreeMap<ConnId, (Option<SessionId>, VecDeque<i32>)>,
    /// The requests it forwarded, by rid: session and cxid.
    forwarded: BTreeMap<u64, (SessionId, i32)>,
    /// Requests the leader refused SESSIONEXPIRED, not answered yet: connection and xid.
    owed: Vec<(ConnId, i32)>,
}

impl ExpiredAnswers {
    /// Before the server handles `event`.
    pub(crate) fn event(&mut self, event: &Event) {
        match event {
            // an auth packet is answered apart from the queue (AuthPacket, xid -4)
            Event::Client { conn, xid, request } if !matches!(request, Request::Auth { .. }) => {
                let c = self.conns.entry(*conn).or_default();
                c.1.push_back(*xid);
            }
            Event::ClientDisconnected { conn } => self.closed(*conn),
            Event::Peer {
                msg: PeerMsg::SessionExpired { rid },
                ..
            } => {
                let Some((session, cxid)) = self.forwarded.remove(rid) else {
                    return;
                };
                let owner = self
                    .conns
                    .iter()
                    .find(|(_, (s, q))| *s == Some(session) && q.contains(&cxid));
                if let Some((&conn, _)) = owner {
                    self.owed.push((conn, cxid));
                }
            }
            _ => {}
        }
    }

    fn closed(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
        self.owed.retain(|&(c, _)| c != conn);
    }

    /// An action of the server's, as it is carried out: a refused request answered with
    /// anything but SESSIONEXPIRED is a violation.
    pub(crate) fn action(&mut self, a: &Action) -> Result<(), String> {
        match a {
            Action::ConnectReply { conn, response } if response.timeout_ms > 0 => {
                self.conns.entry(*conn).or_default().0 = Some(response.session_id);
            }
            Action::Close { conn } => self.closed(*conn),
            Action::Send {
                msg: PeerMsg::Request {
                    rid, session, cxid, ..
                },
                ..
            } => {
                self.forwarded.insert(*rid, (*session, *cxid));
            }
            Action::Reply {
                conn, xid, reply, ..
            } => {
                if let Some(c) = self.conns.get_mut(conn)
                    && let Some(i) = c.1.iter().position(|x| x == xid)
                {
                    c.1.remove(i);
                }
                if let Some(i) = self.owed.iter().position(|&(c, x)| c == *conn && x == *xid) {
                    self.owed.swap_remove(i);
                    if !matches!(reply, Err(KeeperError::SessionExpired)) {
                        return Err(format!(
                            "conn {conn} xid {xid}: the leader refused it SESSIONEXPIRED, answered {reply:?}"
                        ));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// After the server's step: a refused request whose turn has come is answered.
    pub(crate) fn after_step(&self) -> Result<(), String> {
        for &(conn, xid) in &self.owed {
            if self
                .conns
                .get(&conn)
                .is_some_and(|c| c.1.front() == Some(&xid))
            {
                return Err(format!(
                    "conn {conn} xid {xid}: the leader refused it SESSIONEXPIRED and everything before it is answered, yet no answer came"
                ));
            }
        }
        Ok(())
    }
}

impl World {
    /// `client.expired-answers-refused` on server `id`'s action `a`.
    pub(crate) fn expired_answers_action(
        &mut self,
        id: ServerId,
        a: &Action,
    ) -> Result<(), Violation> {
        let now = self.sched.now;
        let n = self.nodes.get_mut(&id).expect("node");
        n.expired_answers.action(a).map_err(|d| {
            violation(
                Claim::ClientExpiredAnswersRefused,
                now,
                format!("n{id} {d}"),
            )
        })
    }

    /// `client.expired-answers-refused` once server `id`'s step was carried out.
    pub(crate) fn check_expired_answers(&mut self, id: ServerId) {
        let n = &self.nodes[&id];
        if n.server.is_none() || self.violation.is_some() {
            return;
        }
        if let Err(d) = n.expired_answers.after_step() {
            let now = self.sched.now;
            self.fail(violation(
                Claim::ClientExpiredAnswersRefused,
                now,
                format!("n{id} {d}"),
            ));
        }
    }
}
