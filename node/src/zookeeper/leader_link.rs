//! The core's learner messages to Apache ZooKeeper's leader (`ensemble zk-observe`):
//! what the core's foreign-leader role (`ensemble_core::foreign`) asks of its
//! leader leaves as Ensemble's `PeerMsg`s; here they become the quorum packets ZooKeeper's
//! `Learner` sends. A client's write as a REQUEST (session, cxid, opcode, the request record,
//! the client's auth ids: the leader checks ACLs with them), a new or closed session as a
//! createSession/closeSession REQUEST, a sync as a sync REQUEST of its session, a re-attach
//! as REVALIDATE, the PING answer with the sessions clients touched (each with its timeout).
//! The answers come back through the observer ([`super::observer`]) as `Foreign` events.

use super::jute::OutputArchive;
use super::quorum_packet::{PacketType, QuorumPacket};
use super::records::op;
use ensemble_core::txn::TxnOp;
use ensemble_core::{PeerMsg, Server};
use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

/// The quorum connection's writing side, shared by the observer thread and whoever forwards
/// (one writer at a time, a whole packet under the lock).
pub type LeaderStream = Arc<Mutex<TcpStream>>;

/// The leader the core's messages go to: set when the observer syncs, cleared when it loses
/// the leader (messages meanwhile are dropped, as ZooKeeper's learner drops them with its
/// connection; the core's role ends with `Foreign::Lost` and closes the clients waiting).
#[derive(Default)]
pub struct ForeignLeaderLink {
    inner: Mutex<Option<Linked>>,
}

struct Linked {
    stream: LeaderStream,
    /// The zxid of the leader's last PING: `Learner.ping` echoes it.
    ping_zxid: i64,
}

impl ForeignLeaderLink {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Linked>> {
        // nothing is half-done under this lock: a panicked holder left a whole state
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, stream: LeaderStream) {
        *self.lock() = Some(Linked {
            stream,
            ping_zxid: 0,
        });
    }

    pub fn clear(&self) {
        *self.lock() = None;
    }

    pub fn pinged(&self, zxid: i64) {
        if let Some(l) = self.lock().as_mut() {
            l.ping_zxid = zxid;
        }
    }

    /// Send what the core addressed to its leader; a message with no ZooKeeper form, or no
    /// leader linked, is dropped with a note.
    pub fn send(&self, msg: &PeerMsg, server: &Server) {
        let g = self.lock();
        let Some(l) = g.as_ref() else {
            tracing::debug!(
                "{} to a foreign leader while none is linked: dropped",
                msg.name()
            );
            return;
        };
        let timeout = |s: i64| server.tree().sessions().get(&s).copied();
        let reattach = |s: i64| server.revalidating_timeout(s);
        let Some(p) = to_packet(msg, l.ping_zxid, &timeout, &reattach, &|id| {
            server.sync_session(id)
        }) else {
            return;
        };
        let mut o = OutputArchive::default();
        p.write(&mut o);
        let mut w = l.stream.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = w.write_all(&o.out) {
            // the observer thread sees the broken connection on its read and reports it
            tracing::info!("writing {:?} to ZooKeeper's leader: {e}", p.kind);
        }
    }
}

/// The ZooKeeper packet of one learner message. `timeout` gives a session's timeout as the
/// tree holds it, `reattach` the timeout the connection re-attaching a session negotiated,
/// `sync_session` the session a sync was asked for.
pub fn to_packet(
    msg: &PeerMsg,
    ping_zxid: i64,
    timeout: &dyn Fn(i64) -> Option<i32>,
    reattach: &dyn Fn(i64) -> Option<i32>,
    sync_session: &dyn Fn(u64) -> Option<i64>,
) -> Option<QuorumPacket> {
    let request = |session: i64, cxid: i32, kind: i32, body: &[u8], auth| QuorumPacket {
        kind: PacketType::Request,
        zxid: -1,
        data: Some(
            [
                &session.to_be_bytes()[..],
                &cxid.to_be_bytes(),
                &kind.to_be_bytes(),
                body,
            ]
            .concat(),
        ),
        authinfo: auth,
    };
    match msg {
        PeerMsg::Request {
            session, cxid, op, ..
        } => match &**op {
            TxnOp::CreateSession { timeout_ms } => Some(request(
                *session,
                *cxid,
                op::CREATE_SESSION,
                &timeout_ms.to_be_bytes(),
                None,
            )),
            TxnOp::CloseSession => Some(request(*session, *cxid, op::CLOSE_SESSION, &[], None)),
            TxnOp::Write { request: r, auth } | TxnOp::EnforcedWrite { request: r, auth } => {
                let mut frame = Vec::new();
                ensemble_proto::jute::encode_request(*cxid, r, &mut frame);
                // the frame is length, xid, opcode, then the record ZooKeeper's REQUEST carries
                let body = frame.get(12..)?;
                Some(request(
                    *session,
                    *cxid,
                    r.opcode() as i32,
                    body,
                    Some(auth.clone()),
                ))
            }
            other => {
                tracing::warn!("a learner's {other:?} has no ZooKeeper REQUEST: not forwarded");
                None
            }
        },
        PeerMsg::SyncRequest { id } => {
            let Some(session) = sync_session(*id) else {
                tracing::debug!("sync {id} of a connection gone: not forwarded");
                return None;
            };
            // SyncRequest{path}: the leader reads none of it, its SYNC answers in order
            let mut body = Vec::new();
            body.extend_from_slice(&1i32.to_be_bytes());
            body.push(b'/');
            Some(request(
                session,
                0,
                ensemble_proto::proto::OpCode::Sync as i32,
                &body,
                None,
            ))
        }
        PeerMsg::Revalidate { session } => {
            // As ZooKeeper's learner: the timeout the reconnecting client negotiated (the
            // leader touches the session with it: 0 would expire it at its next tick). The
            // core sends this while that connection waits; the tree's is a fallback only.
            let Some(t) = reattach(*session).or_else(|| timeout(*session)) else {
                tracing::warn!(
                    "REVALIDATE of session {session:#x}: no connection waits and the tree \
                     does not know it; sent with timeout 0"
                );
                return Some(revalidate(*session, 0));
            };
            Some(revalidate(*session, t))
        }
        PeerMsg::PingReply { touched, .. } => {
            let mut body = Vec::with_capacity(12 * touched.len());
            for s in touched {
                // a session closed since it was touched is not the leader's to keep
                let Some(t) = timeout(*s) else { continue };
                body.extend_from_slice(&s.to_be_bytes());
                body.extend_from_slice(&t.to_be_bytes());
            }
            Some(QuorumPacket {
                kind: PacketType::Ping,
                zxid: ping_zxid,
                data: Some(body),
                authinfo: None,
            })
        }
        other => {
            tracing::debug!("{} has no ZooKeeper form: not sent", other.name());
            None
        }
    }
}

/// ZooKeeper's REVALIDATE: the session and the timeout to touch it with.
fn revalidate(session: i64, timeout: i32) -> QuorumPacket {
    let mut body = session.to_be_bytes().to_vec();
    body.extend_from_slice(&timeout.to_be_bytes());
    QuorumPacket {
        kind: PacketType::Revalidate,
        zxid: -1,
        data: Some(body),
        authinfo: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_proto::proto::{Id, Request};

    fn none(_: u64) -> Option<i64> {
        None
    }

    /// A forwarded write is ZooKeeper's REQUEST: session, cxid, opcode, the request record as
    /// a client encodes it, and the client's auth ids; the PING answer carries each touched
    /// session still open with its timeout, and echoes the leader's zxid.
    #[test]
    fn learner_messages_are_zookeepers_packets() {
        let auth = vec![Id::new("digest", "alice:hash")];
        let msg = PeerMsg::Request {
            rid: 9,
            session: 0x0400_0000_0000_0001,
            cxid: 7,
            op: Box::new(TxnOp::Write {
                request: Request::Delete {
                    path: "/a".into(),
                    version: -1,
                },
                auth: auth.clone(),
            }),
            local: false,
        };
        let p = to_packet(&msg, 0, &|_| None, &|_| None, &none).expect("a REQUEST");
        assert_eq!(p.kind, PacketType::Request);
        assert_eq!(p.authinfo, Some(auth));
        let mut want = 0x0400_0000_0000_0001i64.to_be_bytes().to_vec();
        want.extend_from_slice(&7i32.to_be_bytes());
        want.extend_from_slice(&2i32.to_be_bytes()); // delete
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(b"/a");
        want.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(p.data.as_deref(), Some(&want[..]));

        let session = |s: i64| (s == 5).then_some(4000);
        let ping = PeerMsg::PingReply {
            round: 0,
            touched: vec![5, 6],
        };
        let p = to_packet(&ping, 0x1_0000_0003, &session, &|_| None, &none).expect("a PING");
        assert_eq!((p.kind, p.zxid), (PacketType::Ping, 0x1_0000_0003));
        let mut want = 5i64.to_be_bytes().to_vec();
        want.extend_from_slice(&4000i32.to_be_bytes());
        assert_eq!(p.data.as_deref(), Some(&want[..]));

        // REVALIDATE: the session and the timeout its reconnecting client negotiated, as
        // ZooKeeper's Learner.validateSession sends it; the tree's only without one
        let revalidate = |s: i64, reattach: &dyn Fn(i64) -> Option<i32>| {
            let p = to_packet(
                &PeerMsg::Revalidate { session: s },
                0,
                &session,
                reattach,
                &none,
            )
            .expect("a REVALIDATE");
            assert_eq!((p.kind, p.zxid), (PacketType::Revalidate, -1));
            p.data.unwrap_or_default()
        };
        let mut want = 5i64.to_be_bytes().to_vec();
        want.extend_from_slice(&6000i32.to_be_bytes());
        assert_eq!(revalidate(5, &|s| (s == 5).then_some(6000)), want);
        // a session the tree does not know yet (created after the sync): the client's
        let mut want = 7i64.to_be_bytes().to_vec();
        want.extend_from_slice(&30000i32.to_be_bytes());
        assert_eq!(revalidate(7, &|s| (s == 7).then_some(30000)), want);
        assert_eq!(&revalidate(5, &|_| None)[8..], &4000i32.to_be_bytes());
        // a sync of a connection gone has no session to ask under
        assert!(
            to_packet(
                &PeerMsg::SyncRequest { id: 3 },
                0,
                &session,
                &|_| None,
                &none
            )
            .is_none()
        );
        let p = to_packet(
            &PeerMsg::SyncRequest { id: 3 },
            0,
            &session,
            &|_| None,
            &|_| Some(5),
        )
        .expect("a sync REQUEST");
        assert_eq!(
            &p.data.as_deref().unwrap_or_default()[12..16],
            &9i32.to_be_bytes()
        );
    }
}
