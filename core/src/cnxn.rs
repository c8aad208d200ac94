//! Client connections (ZooKeeper's ServerCnxn + FinalRequestProcessor): the handshake, session
//! creation and re-attach, and the per-connection pipeline. Replies leave in request order: a
//! read waits behind its own session's earlier writes, and a write's reply goes out only once
//! its txn is applied here, after the watch events that txn fired. Reads are answered in
//! `read_request.rs`. What needs the role (submitting a write, starting a sync, session
//! activity) goes through the borrowed `RoleMut` the caller passes (role.rs).

use crate::acl;
use crate::client_pipeline::{Conn, ConnPhase, Pending, Wait};
use crate::effect::{Action, Ready};
use crate::peer::PeerMsg;
use crate::plant::{self, Plant};
use crate::role::RoleMut;
use crate::server::ConnId;
use crate::session_passwd;
use crate::txn::TxnOp;
use crate::zookeeper_server::ZooKeeperServer;
use crate::zxid::Zxid;
use ensemble_proto::proto::{
    ConnectRequest, ConnectResponse, Id, KeeperError, MultiOp, OpCode, Reply, Request, Response,
    SessionId,
};
use std::collections::VecDeque;

/// Does `op` create an ephemeral node (itself or inside a multi)? Such a create needs a global
/// session (ZooKeeper's `checkUpgradeSession`).
fn creates_ephemeral(op: &TxnOp) -> bool {
    matches!(op, TxnOp::Write { request, .. } if creates_ephemeral_request(request))
}

fn creates_ephemeral_request(request: &Request) -> bool {
    match request {
        Request::Create { mode, .. } => mode.is_ephemeral(),
        Request::Multi(ops) => ops
            .iter()
            .any(|o| matches!(o, MultiOp::Create { mode, .. } if mode.is_ephemeral())),
        _ => false,
    }
}

pub(crate) fn expired_response(read_only: Option<bool>) -> ConnectResponse {
    ConnectResponse {
        protocol_version: 0,
        timeout_ms: 0,
        session_id: 0,
        passwd: vec![0; 16],
        read_only,
    }
}

impl ZooKeeperServer {
    pub(crate) fn on_connect(
        &mut self,
        role: &mut RoleMut,
        conn: ConnId,
        addr: String,
        req: ConnectRequest,
        out: &mut Ready,
    ) {
        let read_only = self.read_only.active;
        if !(role.is_serving() || read_only) || self.clients.conns.contains_key(&conn) {
            out.push(Action::Close { conn });
            return;
        }
        if read_only && req.read_only != Some(true) {
            // As ZooKeeper's "Not read-only client": only a client that asked for a
            // read-only server is served by one.
            tracing::info!(conn, "refusing a client that did not ask canBeReadOnly");
            out.push(Action::Close { conn });
            return;
        }
        // Never let a client go back in time: it has seen more than we have applied. A new
        // session is refused (the client tries another server, as with ZooKeeper); a re-attach
        // waits below until we have caught up, since we are usually only a commit behind.
        let ahead = req.last_zxid_seen > self.tree.last_zxid().as_i64();
        // A read-only server has no quorum to wait for: a client ahead of it goes elsewhere.
        if ahead && (req.session_id == 0 || read_only) {
            tracing::info!(
                conn,
                client_zxid = req.last_zxid_seen,
                ours = %self.tree.last_zxid(),
                "refusing a client that has seen a later zxid"
            );
            out.push(Action::Close { conn });
            return;
        }
        let timeout_ms = self.cfg.negotiate_timeout(req.timeout_ms);
        let mut c = Conn {
            auth: vec![Id::new("ip", &addr)],
            phase: ConnPhase::Connected,
            session: req.session_id,
            timeout_ms,
            read_only: req.read_only,
            queue: VecDeque::new(),
            closing: false,
        };
        if req.session_id == 0 && (read_only || self.cfg.local_sessions) {
            // A session of this server alone: no createSession txn (ZooKeeper's local
            // session, and every session of a read-only server).
            let session = self.clients.new_session();
            self.local_sessions.track(session, timeout_ms, self.now);
            c.session = session;
            self.clients.conns.insert(conn, c);
            self.attach(role, conn, false, out);
            return;
        }
        if req.session_id == 0 {
            let session = self.clients.new_session();
            let rid = self.clients.new_rid(conn);
            c.phase = ConnPhase::Creating { rid, timeout_ms };
            c.session = session;
            self.clients.conns.insert(conn, c);
            self.submit(
                role,
                session,
                0,
                rid,
                TxnOp::CreateSession { timeout_ms },
                out,
            );
            return;
        }
        let legacy_only = self.plant(Plant::ZkPasswdRefused);
        if !session_passwd::check_passwd(req.session_id, &req.passwd, legacy_only) {
            out.push(Action::ConnectReply {
                conn,
                response: expired_response(req.read_only),
            });
            out.push(Action::Close { conn });
            return;
        }
        // As ZooKeeper, a session has one connection per server: an older one here goes.
        let older: Vec<ConnId> = self
            .clients
            .conns
            .iter()
            .filter(|(_, o)| o.session == req.session_id)
            .map(|(id, _)| *id)
            .collect();
        for old in older {
            out.push(Action::Close { conn: old });
            self.drop_conn(old);
        }
        if let Some(stored) = self.local_sessions.timeout(req.session_id) {
            c.timeout_ms = stored;
            self.clients.conns.insert(conn, c);
            self.attach(role, conn, true, out);
            return;
        }
        let roams = self.cfg.local_sessions && self.plant(Plant::LocalSessionRoams);
        if read_only || roams {
            // A read-only server knows the sessions it has applied and its own; it asks no
            // leader, and tracks a re-attached one itself while it serves (never replicated).
            // Planted: an unknown session is taken as a local one without asking the leader.
            let stored = self.tree.sessions().get(&req.session_id).copied();
            let stored = stored.or(roams.then_some(timeout_ms));
            if let Some(stored) = stored.filter(|_| read_only || !role.is_closing(req.session_id)) {
                if read_only || !self.tree.sessions().contains_key(&req.session_id) {
                    self.local_sessions.track(req.session_id, stored, self.now);
                }
                c.timeout_ms = stored;
                self.clients.conns.insert(conn, c);
                self.attach(role, conn, true, out);
            } else {
                out.push(Action::ConnectReply {
                    conn,
                    response: expired_response(req.read_only),
                });
                out.push(Action::Close { conn });
            }
            return;
        }
        // A learner tells the leader the session is here now (REVALIDATE) and answers once a
        // sync round has come back: the leader then has taken it (one channel, in order), so a
        // request the client sends through another server after this handshake is refused
        // there (ZooKeeper's follower also waits for the leader's answer). The sync point also
        // covers what the client has seen, and tells a session created too recently to be known.
        if let Some(leader) = role.revalidates_with() {
            crate::probe!("session.revalidate-leader");
            out.push(Action::Send {
                to: leader,
                msg: PeerMsg::Revalidate {
                    session: req.session_id,
                },
            });
            let sync_id = self.clients.new_sync(conn);
            c.phase = ConnPhase::Revalidating { sync_id };
            self.clients.conns.insert(conn, c);
            if !role.await_revalidation(req.session_id, sync_id) {
                self.start_sync(role, sync_id, out);
            }
            return;
        }
        if ahead {
            // Answered by `retry_revalidations` once applied through what the client saw.
            crate::probe!("session.revalidate-ahead");
            c.phase = ConnPhase::Revalidating { sync_id: u64::MAX };
            self.clients.conns.insert(conn, c);
            self.clients
                .revalidate_at
                .push((Zxid(req.last_zxid_seen as u64), conn));
            return;
        }
        if self.closing_here(role, req.session_id) {
            // Its closeSession is proposed: as ZooKeeper's touchSession, it has expired.
            crate::probe!("session.reconnect-closing");
            out.push(Action::ConnectReply {
                conn,
                response: expired_response(req.read_only),
            });
            out.push(Action::Close { conn });
            return;
        }
        if let Some(&stored) = self.tree.sessions().get(&req.session_id) {
            c.timeout_ms = stored;
            self.clients.conns.insert(conn, c);
            self.attach(role, conn, true, out);
            return;
        }
        // Unknown here: maybe created so recently we have not applied it. A quorum sync tells.
        // The connection waits before the sync starts: a leader may confirm it at once.
        let sync_id = self.clients.new_sync(conn);
        c.phase = ConnPhase::Revalidating { sync_id };
        self.clients.conns.insert(conn, c);
        self.start_sync(role, sync_id, out);
    }

    /// Bind `conn` to its (known, live) session and answer the handshake. A re-attach (not a
    /// new session) makes this server the session's owner at the leader, so requests still
    /// coming through another server's old connection are refused there (SessionMoved); a
    /// learner has sent REVALIDATE already (`on_connect`).
    fn attach(&mut self, role: &mut RoleMut, conn: ConnId, reattach: bool, out: &mut Ready) {
        let Some(c) = self.clients.conns.get_mut(&conn) else {
            return;
        };
        let session = c.session;
        if reattach && !self.local_sessions.is_tracked(session) {
            role.reattached(self.cfg.my_id, session);
        }
        let legacy_only = self.plant(Plant::ZkPasswdRefused);
        let Some(c) = self.clients.conns.get_mut(&conn) else {
            return;
        };
        assert_ne!(c.session, 0, "a connection attached without a session");
        c.phase = ConnPhase::Connected;
        let response = ConnectResponse {
            protocol_version: 0,
            timeout_ms: c.timeout_ms,
            session_id: c.session,
            passwd: session_passwd::issued_passwd(c.session, legacy_only),
            read_only: c.read_only.map(|_| self.read_only.active),
        };
        let session = c.session;
        out.push(Action::ConnectReply { conn, response });
        self.touch(role, session);
    }

    /// The createSession txn we proposed for a connection is applied.
    pub(crate) fn session_created(
        &mut self,
        role: &mut RoleMut,
        rid: u64,
        session: SessionId,
        timeout_ms: i32,
        out: &mut Ready,
    ) {
        let Some(conn) = self.clients.rid_owner.remove(&rid) else {
            return;
        };
        let Some(c) = self.clients.conns.get_mut(&conn) else {
            return;
        };
        assert_eq!(c.session, session);
        if c.phase == ConnPhase::Connected {
            // A local session upgraded (`release_held`): it is global now.
            assert!(!self.local_sessions.is_tracked(session));
            return;
        }
        assert_eq!(c.phase, ConnPhase::Creating { rid, timeout_ms });
        self.attach(role, conn, false, out);
    }

    /// Send a write to the leader (or propose it, if we lead).
    fn submit(
        &mut self,
        role: &mut RoleMut,
        session: SessionId,
        cxid: i32,
        rid: u64,
        op: TxnOp,
        out: &mut Ready,
    ) {
        assert!(
            self.clients.rid_owner.contains_key(&rid),
            "write {rid} submitted without a connection waiting for it"
        );
        role.submit(self, session, cxid, rid, op, out);
    }

    /// The leader refused request `rid`: its session is owned by another server now. As
    /// ZooKeeper, the connection that sent it is closed (the client is attached elsewhere).
    pub(crate) fn session_moved(&mut self, rid: u64, out: &mut Ready) {
        if let Some(conn) = self.clients.rid_owner.remove(&rid) {
            tracing::info!(
                conn,
                "session moved to another server; closing its old connection"
            );
            out.push(Action::Close { conn });
            self.drop_conn(conn);
        }
    }

    /// The leader refused request `rid`: its session is closing, closed or unknown there
    /// (ZooKeeper's SESSIONEXPIRED from checkSession). The request is answered with that error
    /// in its turn; a connection still creating its session is told it expired and closed.
    pub(crate) fn session_expired(&mut self, role: &mut RoleMut, rid: u64, out: &mut Ready) {
        let Some(conn) = self.clients.rid_owner.remove(&rid) else {
            return;
        };
        let others = self.plant(Plant::ExpiredRefusesOthers);
        let Some(c) = self.clients.conns.get_mut(&conn) else {
            return;
        };
        if let ConnPhase::Creating { .. } = c.phase {
            let read_only = c.read_only;
            out.push(Action::ConnectReply {
                conn,
                response: expired_response(read_only),
            });
            out.push(Action::Close { conn });
            self.drop_conn(conn);
            return;
        }
        for p in c.queue.iter_mut() {
            if matches!(p.wait, Wait::Write { rid: r } if (r == rid) != others) {
                p.wait = Wait::Refused(Err(KeeperError::SessionExpired));
            }
        }
        self.drain(role, conn, out);
    }

    /// Ask the leader for a quorum-confirmed sync point. A leader whose quorum is only itself
    /// (a lone voter) answers within this call, so what waits must already be recorded.
    fn start_sync(&mut self, role: &mut RoleMut, id: u64, out: &mut Ready) {
        role.start_sync(self, id, out);
    }

    /// The leader confirmed a sync: everything through `zxid` must be applied before answering.
    pub(crate) fn sync_confirmed(
        &mut self,
        role: &mut RoleMut,
        id: u64,
        zxid: Zxid,
        out: &mut Ready,
    ) {
        let Some(conn) = self.clients.sync_owner.remove(&id) else {
            return;
        };
        let Some(c) = self.clients.conns.get_mut(&conn) else {
            return;
        };
        if c.phase == (ConnPhase::Revalidating { sync_id: id }) {
            self.clients.revalidate_at.push((zxid, conn));
            self.retry_revalidations(role, out);
            return;
        }
        for p in c.queue.iter_mut() {
            if let Wait::Sync {
                id: pid, through, ..
            } = &mut p.wait
                && *pid == id
            {
                *through = Some(zxid);
            }
        }
        assert!(
            !self.clients.sync_owner.contains_key(&id),
            "sync {id} answered twice"
        );
        if zxid > self.tree.last_zxid() {
            self.clients.sync_waits.push((zxid, conn));
        }
        self.drain(role, conn, out);
    }

    /// The applied zxid moved: answer syncs and re-attaches that were waiting for it.
    pub(crate) fn after_apply(&mut self, role: &mut RoleMut, out: &mut Ready) {
        let applied = self.tree.last_zxid();
        if self.clients.sync_waits.iter().any(|(z, _)| *z <= applied) {
            let ready: Vec<ConnId> = self
                .clients
                .sync_waits
                .iter()
                .filter(|(z, _)| *z <= applied)
                .map(|(_, c)| *c)
                .collect();
            self.clients.sync_waits.retain(|(z, _)| *z > applied);
            for conn in ready {
                self.drain(role, conn, out);
            }
        }
        if !self.clients.revalidate_at.is_empty() && !self.plant(Plant::RevalidateRetrySkipped) {
            self.retry_revalidations(role, out);
        }
    }

    /// Re-attaches waiting for a sync point we have now applied.
    pub(crate) fn retry_revalidations(&mut self, role: &mut RoleMut, out: &mut Ready) {
        let applied = self.tree.last_zxid();
        let ready: Vec<(Zxid, ConnId)> = self
            .clients
            .revalidate_at
            .iter()
            .filter(|(z, _)| *z <= applied)
            .copied()
            .collect();
        self.clients.revalidate_at.retain(|(z, _)| *z > applied);
        for (_, conn) in ready {
            let Some(c) = self.clients.conns.get(&conn) else {
                continue;
            };
            let (session, read_only) = (c.session, c.read_only);
            let stored = self.tree.sessions().get(&session).copied();
            if let Some(stored) = stored.filter(|_| !self.closing_here(role, session)) {
                if let Some(c) = self.clients.conns.get_mut(&conn) {
                    c.timeout_ms = stored;
                }
                self.attach(role, conn, true, out);
            } else {
                out.push(Action::ConnectReply {
                    conn,
                    response: expired_response(read_only),
                });
                out.push(Action::Close { conn });
                self.drop_conn(conn);
            }
        }
    }

    /// Does this server lead and hold `session` closing (closeSession proposed, not yet
    /// applied)? A learner learns of it only once applied, through its sync point.
    fn closing_here(&self, role: &RoleMut, session: SessionId) -> bool {
        role.is_closing(session)
    }

    /// Session activity: the leader resets the expiry; a learner reports it with its pings.
    pub(crate) fn touch(&mut self, role: &mut RoleMut, session: SessionId) {
        if self.local_sessions.is_tracked(session) {
            self.local_sessions.touch(session, self.now);
        } else {
            role.touch(self.now, session);
        }
    }

    /// The session of `conn` if it may send requests: handshake done, no closeSession yet.
    /// Otherwise the connection is closed (a request before the handshake or after
    /// closeSession is a protocol error) and there is none.
    fn requesting_session(&mut self, conn: ConnId, out: &mut Ready) -> Option<SessionId> {
        let Some(c) = self.clients.conns.get(&conn) else {
            out.push(Action::Close { conn });
            return None;
        };
        if c.phase != ConnPhase::Connected || c.closing {
            out.push(Action::Close { conn });
            self.drop_conn(conn);
            return None;
        }
        Some(c.session)
    }

    pub(crate) fn on_request(
        &mut self,
        role: &mut RoleMut,
        conn: ConnId,
        xid: i32,
        request: Request,
        out: &mut Ready,
    ) {
        let Some(session) = self.requesting_session(conn, out) else {
            return;
        };
        let opcode = request.opcode();
        self.touch(role, session);
        if let Request::Auth { scheme, auth } = request {
            self.add_auth(conn, xid, &scheme, &auth, out);
            return;
        }
        let mut sync_id = None;
        let local = self.local_sessions.is_tracked(session);
        let wait = match request {
            // ReadOnlyRequestProcessor: every change, sync and check is NotReadOnly.
            r if self.read_only.active && r.is_write() && r != Request::CloseSession => {
                Wait::Refused(Err(KeeperError::NotReadOnly))
            }
            Request::Sync { .. } if self.read_only.active => {
                Wait::Refused(Err(KeeperError::NotReadOnly))
            }
            Request::CloseSession if local => {
                // Nothing replicated to close: the session ends here, and its connection
                // once the reply is out.
                self.local_sessions.untrack(session);
                let applied = self.tree.last_zxid();
                if let Some(c) = self.clients.conns.get_mut(&conn) {
                    c.closing = true;
                    c.queue.push_back(Pending {
                        xid,
                        opcode,
                        auth_len: c.auth.len(),
                        wait: Wait::Read(Request::Ping),
                        result: Some((applied, Ok(Response::Empty))),
                    });
                }
                self.drain(role, conn, out);
                return;
            }
            Request::Sync { path } => {
                let id = self.clients.new_sync(conn);
                sync_id = Some(id);
                Wait::Sync {
                    id,
                    path,
                    through: None,
                }
            }
            Request::CloseSession => {
                if let Some(c) = self.clients.conns.get_mut(&conn) {
                    c.closing = true;
                }
                Self::held_write(session, xid, TxnOp::CloseSession)
            }
            // UpgradeableSessionTracker: a local session that may not upgrade owns no
            // ephemeral.
            r if local && !self.cfg.local_sessions_upgrading && creates_ephemeral_request(&r) => {
                Wait::Refused(Err(KeeperError::EphemeralOnLocalSession))
            }
            r if r.is_write() => {
                let auth = self
                    .clients
                    .conns
                    .get(&conn)
                    .map(|c| c.auth.clone())
                    .unwrap_or_default();
                Self::held_write(session, xid, TxnOp::Write { request: r, auth })
            }
            r => Wait::Read(r),
        };
        let Some(c) = self.clients.conns.get_mut(&conn) else {
            unreachable!("connection {conn} checked above")
        };
        let auth_len = c.auth.len();
        assert!(auth_len >= 1, "a connection without its ip id");
        c.queue.push_back(Pending {
            xid,
            opcode,
            auth_len,
            wait,
            result: None,
        });
        if let Some(id) = sync_id {
            self.start_sync(role, id, out);
        }
        self.drain(role, conn, out);
    }

    /// addAuthInfo, as ZooKeeper's `processPacket` takes an auth packet: out of band, on
    /// arrival. The new id counts for every request sent after it (a write captures its
    /// connection's ids when it is queued, a read when it is answered, so those sent before
    /// keep the ids they were sent with), and the reply goes at once, ahead of replies still
    /// pending, with zxid 0. A failed auth is answered AUTHFAILED and the connection closed
    /// after it.
    fn add_auth(&mut self, conn: ConnId, xid: i32, scheme: &str, auth: &[u8], out: &mut Ready) {
        let Some(c) = self.clients.conns.get_mut(&conn) else {
            return;
        };
        let text = match std::str::from_utf8(auth) {
            Ok(text) if scheme == acl::DIGEST => Some(text),
            _ => None,
        };
        let super_digest = match self.cfg.super_digest.as_deref() {
            _ if plant::active(self.cfg.plant, Plant::SuperDigestIgnored) => None,
            d => d,
        };
        let reply = match text {
            Some(text) => {
                // DigestAuthenticationProvider: the super digest adds `super` before the id
                for id in acl::digest_auth_ids(text, super_digest) {
                    if !c.auth.contains(&id) {
                        c.auth.push(id);
                    }
                }
                debug_assert!(
                    c.auth[1..].iter().all(|id| id.scheme != acl::IP),
                    "ip ids come first"
                );
                Ok(Response::Empty)
            }
            None => Err(KeeperError::AuthFailed),
        };
        let failed = reply.is_err();
        out.push(Action::Reply {
            conn,
            xid,
            zxid: Zxid::ZERO,
            opcode: OpCode::Auth,
            reply,
        });
        if failed {
            out.push(Action::Close { conn });
            self.drop_conn(conn);
        }
    }

    /// An identity the runtime established (a SASL exchange, a client certificate): added to
    /// the connection's ids as addAuth's are, counting for the requests after it. Nothing is
    /// answered here: the runtime answers the SASL exchange itself. A scheme whose provider is
    /// not configured is not taken (the runtime establishes none; a connection gone is ignored).
    pub(crate) fn on_authenticated(&mut self, conn: ConnId, id: Id) {
        if !self.cfg.auth_providers.establishes(&id.scheme) {
            tracing::warn!(conn, scheme = %id.scheme, "an identity of a scheme with no authProvider configured; not taken");
            return;
        }
        let Some(c) = self.clients.conns.get_mut(&conn) else {
            return;
        };
        let id = if id.scheme == acl::SASL
            && plant::active(self.cfg.plant, Plant::SaslIdentityAsSuper)
        {
            // planted: every principal recorded as the one named `super`, whom every sasl
            // ACL matches
            Id::new(acl::SASL, acl::SUPER)
        } else {
            id
        };
        let ids = acl::established_ids(
            &id,
            self.cfg.sasl_super_user.as_deref(),
            self.cfg.x509_super_user.as_deref(),
        );
        for id in ids {
            if !c.auth.contains(&id) {
                c.auth.push(id);
            }
        }
        debug_assert!(
            c.auth[1..].iter().all(|id| id.scheme != acl::IP),
            "ip ids come first"
        );
    }

    /// A request the runtime answers without decoding it (see `Event::ClientRefused`). It takes
    /// its turn behind the connection's earlier requests, like any reply.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_refused(
        &mut self,
        role: &mut RoleMut,
        conn: ConnId,
        xid: i32,
        opcode: OpCode,
        reply: Reply,
        close: bool,
        out: &mut Ready,
    ) {
        let close = close && !self.plant(Plant::RefusedKeepsConnection);
        let Some(session) = self.requesting_session(conn, out) else {
            return;
        };
        let queued_at = self.tree.last_zxid();
        let answered = self
            .plant(Plant::RefusedReplyAtQueuedZxid)
            .then(|| (queued_at, reply.clone()));
        let c = self
            .clients
            .conns
            .get_mut(&conn)
            .expect("requesting_session found the connection");
        let auth_len = c.auth.len();
        c.queue.push_back(Pending {
            xid,
            opcode,
            auth_len,
            // answered at the zxid applied when it reaches the front, as a read
            wait: Wait::Refused(reply),
            result: answered,
        });
        if close {
            c.closing = true;
        }
        self.touch(role, session);
        self.drain(role, conn, out);
    }

    /// A write enters the connection's queue held; `drain` submits it (`release_held`) at
    /// once unless an earlier `sync` of the same connection is still unanswered: the quorum
    /// round of a sync outlasts a commit, and the session's later write must not take effect
    /// before the reads that follow its sync. Queued before it is submitted, a write the
    /// leader refuses at once (our own client's) finds its place to be answered.
    fn held_write(session: SessionId, xid: i32, op: TxnOp) -> Wait {
        Wait::Held {
            op,
            session,
            cxid: xid,
        }
    }

    /// Submit the held writes that no unanswered `sync` precedes any more.
    fn release_held(&mut self, role: &mut RoleMut, conn: ConnId, out: &mut Ready) {
        loop {
            let Some(c) = self.clients.conns.get(&conn) else {
                return;
            };
            let mut next = None;
            for (i, p) in c.queue.iter().enumerate() {
                match p.wait {
                    Wait::Sync { .. } => return,
                    Wait::Held { .. } => {
                        next = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let Some(i) = next else { return };
            if let Wait::Held { op, session, .. } = &c.queue[i].wait
                && self.local_sessions.is_tracked(*session)
                && creates_ephemeral(op)
            {
                let (session, timeout_ms) = (*session, c.timeout_ms);
                assert!(self.cfg.local_sessions_upgrading, "refused when queued");
                // Upgrade first: createSession through the leader, ahead of the create on the
                // same channel, so the session is global when the create is applied.
                self.local_sessions.untrack(session);
                tracing::info!(
                    session = format_args!("{session:#x}"),
                    "upgrading a local session"
                );
                let rid = self.clients.new_rid(conn);
                self.submit(
                    role,
                    session,
                    0,
                    rid,
                    TxnOp::CreateSession { timeout_ms },
                    out,
                );
                continue;
            }
            let rid = self.clients.new_rid(conn);
            let Some(c) = self.clients.conns.get_mut(&conn) else {
                unreachable!("connection {conn} went while releasing its write")
            };
            let Wait::Held { op, session, cxid } =
                std::mem::replace(&mut c.queue[i].wait, Wait::Write { rid })
            else {
                unreachable!("found a held write at {i}")
            };
            self.submit(role, session, cxid, rid, op, out);
        }
    }

    /// Answer everything at the front of `conn`'s queue that can be answered now.
    pub(crate) fn drain(&mut self, role: &mut RoleMut, conn: ConnId, out: &mut Ready) {
        loop {
            let applied = self.tree.last_zxid();
            let Some(c) = self.clients.conns.get_mut(&conn) else {
                return;
            };
            let Some(front) = c.queue.front_mut() else {
                break;
            };
            let done = match &front.wait {
                _ if front.result.is_some() => true,
                Wait::Read(_) | Wait::Refused(_) => true,
                Wait::Sync {
                    through: Some(z),
                    path,
                    ..
                } if *z <= applied => {
                    front.result = Some((applied, Ok(Response::Sync { path: path.clone() })));
                    true
                }
                _ => false,
            };
            if !done {
                break;
            }
            let Some(p) = c.queue.pop_front() else { break };
            let (zxid, reply) = match (p.result, p.wait) {
                (Some(r), _) => r,
                (None, Wait::Read(request)) => {
                    let reply = self.read(conn, request, p.auth_len);
                    // setWatches fires what changed while the client was away, before its reply.
                    for (c, event) in std::mem::take(&mut self.clients.deferred_watches) {
                        out.push(Action::Watch { conn: c, event });
                    }
                    (applied, reply)
                }
                (None, Wait::Refused(reply)) => (applied, reply),
                (None, _) => unreachable!("only reads and refusals are answered without a result"),
            };
            out.push(Action::Reply {
                conn,
                xid: p.xid,
                zxid,
                opcode: p.opcode,
                reply,
            });
        }
        // In order: what is at the front now waits for something still to come.
        if let Some(front) = self.clients.conns.get(&conn).and_then(|c| c.queue.front()) {
            assert!(
                front.result.is_none(),
                "an answered request left at the front"
            );
            assert!(!matches!(front.wait, Wait::Read(_) | Wait::Refused(_)));
        }
        self.release_held(role, conn, out);
        // A closing connection goes once its queue is empty (closeSession answered first).
        if let Some(c) = self.clients.conns.get(&conn)
            && c.closing
            && c.queue.is_empty()
        {
            out.push(Action::Close { conn });
            self.drop_conn(conn);
        }
    }

    /// Forget a connection (the client went away or we closed it). Its session lives on until
    /// it is closed or expires.
    pub(crate) fn drop_conn(&mut self, conn: ConnId) {
        if self.clients.remove(conn) {
            self.watches.remove_conn(conn);
        }
        assert!(!self.clients.conns.contains_key(&conn));
        assert!(
            !self.watches.holds(conn),
            "watches of a dropped connection {conn}"
        );
    }

    pub(crate) fn close_all_clients(&mut self, out: &mut Ready) {
        let ids: Vec<ConnId> = self.clients.conns.keys().copied().collect();
        for conn in ids {
            out.push(Action::Close { conn });
            self.drop_conn(conn);
        }
        self.clients.clear_waiters();
        self.forget_local_sessions();
        assert!(self.clients.conns.is_empty());
        assert_eq!(
            self.watches.conn_count(),
            0,
            "watches outlive their connections"
        );
    }
}

#[cfg(test)]
#[path = "cnxn_auth_tests.rs"]
mod auth_tests;
