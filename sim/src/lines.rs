//! The simulator's trace lines: display adapters for the core's messages, events, txns,
//! requests and replies, and the frequent lines as data ([`Line`]) that a run hashes field by
//! field without formatting them.

use crate::trace::{Line, TraceHasher};
use ensemble_core::peer::{PeerMsg, SyncMode};
use ensemble_core::server::Event;
use ensemble_core::txn::{ServerId, Txn};
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{Reply, Request, WatchedEvent};
use std::fmt;

/// Display adapters for trace lines: formatted straight into the trace hash, no strings.
pub struct MsgD<'a>(pub &'a PeerMsg);
pub struct TxnD<'a>(pub &'a Txn);
pub struct ReqD<'a>(pub &'a Request);
pub struct ReplyD<'a>(pub &'a Reply);
pub struct EventD<'a>(pub &'a Event);

pub fn describe_msg(m: &PeerMsg) -> MsgD<'_> {
    MsgD(m)
}
pub fn txn_kind(t: &Txn) -> TxnD<'_> {
    TxnD(t)
}
pub fn short_req(r: &Request) -> ReqD<'_> {
    ReqD(r)
}
pub fn short_reply(r: &Reply) -> ReplyD<'_> {
    ReplyD(r)
}

impl std::fmt::Display for MsgD<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        match m {
            PeerMsg::Notification(n) => write!(
                f,
                "NOTIFICATION vote=(n{}, {}, e{}) round={} {:?} config={:x}{}",
                n.vote.leader,
                n.vote.zxid,
                n.vote.peer_epoch,
                n.election_epoch,
                n.state,
                n.config_version,
                if n.intact {
                    ""
                } else {
                    " (vouches for nothing)"
                }
            ),
            PeerMsg::LearnerInfo {
                accepted_epoch,
                last_zxid,
                ..
            } => {
                write!(
                    f,
                    "{} accepted=e{accepted_epoch} last={last_zxid}",
                    m.name()
                )
            }
            PeerMsg::LeaderInfo { new_epoch } => write!(f, "LEADERINFO e{new_epoch}"),
            PeerMsg::AckEpoch {
                epoch,
                current_epoch,
                last_zxid,
                counted,
            } => {
                write!(
                    f,
                    "ACKEPOCH e{epoch} current=e{current_epoch} last={last_zxid}{}",
                    if *counted { "" } else { " (not counted)" }
                )
            }
            PeerMsg::Sync {
                mode,
                txns,
                committed,
            } => {
                write!(f, "{}", m.name())?;
                match mode {
                    SyncMode::Trunc { to } => write!(f, " to={to}")?,
                    SyncMode::Snap { zxid, .. } => write!(f, " at={zxid}")?,
                    SyncMode::Diff => {}
                }
                match (txns.first(), txns.last()) {
                    (Some(a), Some(b)) => write!(f, " txns={}..{}", a.zxid, b.zxid)?,
                    _ => write!(f, " txns=none")?,
                }
                write!(f, " committed={committed}")
            }
            PeerMsg::NewLeader { zxid } => write!(f, "NEWLEADER {zxid}"),
            PeerMsg::AckNewLeader { zxid } => write!(f, "ACK(NEWLEADER) {zxid}"),
            PeerMsg::UpToDate {
                committed,
                first_config,
            } => {
                write!(f, "UPTODATE {committed}")?;
                if let Some(m) = first_config {
                    write!(f, " first-config={:x}", m.version)?;
                }
                Ok(())
            }
            PeerMsg::Proposal(t) => write!(f, "PROPOSAL {} {}", t.zxid, TxnD(t)),
            PeerMsg::Ack { zxid } => write!(f, "ACK {zxid}"),
            PeerMsg::HandOver { zxid, designated } => {
                write!(f, "HANDOVER {zxid} designated=n{designated}")
            }
            PeerMsg::Commit { zxid } => write!(f, "COMMIT {zxid}"),
            PeerMsg::Inform(t) => write!(f, "INFORM {} {}", t.zxid, TxnD(t)),
            PeerMsg::Ping { round } => write!(f, "PING {round}"),
            PeerMsg::PingReply { round, touched } => {
                write!(f, "PING(reply) {round} sessions={}", touched.len())
            }
            PeerMsg::Request {
                rid, session, cxid, ..
            } => {
                write!(f, "REQUEST rid={rid} session=0x{session:x} cxid={cxid}")
            }
            PeerMsg::SyncRequest { id } => write!(f, "SYNC {id}"),
            PeerMsg::SyncReply { id, zxid } => write!(f, "SYNC(reply) {id} {zxid}"),
            PeerMsg::Revalidate { session } => write!(f, "REVALIDATE session=0x{session:x}"),
            PeerMsg::SessionMoved { rid } => write!(f, "SESSIONMOVED rid={rid}"),
            PeerMsg::SessionExpired { rid } => write!(f, "SESSIONEXPIRED rid={rid}"),
            PeerMsg::SnapPart {
                zxid,
                offset,
                total,
                data,
            } => write!(
                f,
                "SNAP(part) at={zxid} {offset}..{} of {total}",
                offset + data.len() as u64
            ),
            PeerMsg::SyncTxns { txns } => match (txns.first(), txns.last()) {
                (Some(a), Some(b)) => write!(f, "DIFF(part) txns={}..{}", a.zxid, b.zxid),
                _ => write!(f, "DIFF(part) txns=none"),
            },
            PeerMsg::Config(m) => write!(
                f,
                "CONFIG version={:x} voters={:?} observers={:?}",
                m.version,
                m.voters().collect::<Vec<_>>(),
                m.servers
                    .iter()
                    .filter(|(_, s)| s.role == ensemble_core::LearnerType::Observer)
                    .map(|(id, _)| *id)
                    .collect::<Vec<_>>()
            ),
        }
    }
}

impl std::fmt::Display for TxnD<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use ensemble_core::txn::TxnOp;
        let t = self.0;
        match &t.op {
            TxnOp::CreateSession { timeout_ms } => {
                write!(f, "createSession 0x{:x} {timeout_ms}ms", t.session)
            }
            TxnOp::CloseSession => write!(f, "closeSession 0x{:x}", t.session),
            TxnOp::Write { request, .. } | TxnOp::EnforcedWrite { request, .. } => {
                write!(
                    f,
                    "{} session=0x{:x} cxid={}",
                    ReqD(request),
                    t.session,
                    t.cxid
                )
            }
            TxnOp::DeleteContainer { path } => write!(f, "deleteContainer {path}"),
            TxnOp::Resolved(r) => write!(
                f,
                "resolved session=0x{:x} cxid={} {r:?}",
                t.session, t.cxid
            ),
            TxnOp::Reconfig { outcome: Ok(m) } => write!(
                f,
                "reconfig session=0x{:x} cxid={} voters={:?} observers={:?}",
                t.session,
                t.cxid,
                m.voters().collect::<Vec<_>>(),
                m.servers
                    .iter()
                    .filter(|(_, s)| s.role == ensemble_core::LearnerType::Observer)
                    .map(|(id, _)| *id)
                    .collect::<Vec<_>>()
            ),
            TxnOp::Reconfig { outcome: Err(code) } => write!(
                f,
                "reconfig session=0x{:x} cxid={} refused {code}",
                t.session, t.cxid
            ),
        }
    }
}

impl std::fmt::Display for ReqD<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = |b: &bool| if *b { " watch" } else { "" };
        match self.0 {
            Request::Create { path, mode, .. } => write!(f, "create {path} {mode:?}"),
            Request::Delete { path, version } => write!(f, "delete {path} v{version}"),
            Request::Exists { path, watch } => write!(f, "exists {path}{}", w(watch)),
            Request::GetData { path, watch } => write!(f, "getData {path}{}", w(watch)),
            Request::SetData { path, version, .. } => write!(f, "setData {path} v{version}"),
            Request::GetChildren { path, watch } | Request::GetChildren2 { path, watch } => {
                write!(f, "getChildren {path}{}", w(watch))
            }
            Request::Sync { path } => write!(f, "sync {path}"),
            Request::Check { path, version } => write!(f, "check {path} v{version}"),
            Request::Multi(ops) => write!(f, "multi[{}]", ops.len()),
            Request::SetWatches { relative_zxid, .. } => {
                write!(f, "setWatches rel={}", Zxid(*relative_zxid as u64))
            }
            Request::Ping => write!(f, "ping"),
            Request::CloseSession => write!(f, "closeSession"),
            other => write!(f, "{:?}", other.opcode()),
        }
    }
}

impl std::fmt::Display for ReplyD<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use ensemble_proto::proto::{OpResult, Response};
        match self.0 {
            Err(e) => write!(f, "ERR {e:?}"),
            Ok(Response::Create { path }) | Ok(Response::Create2 { path, .. }) => {
                write!(f, "ok {path}")
            }
            Ok(Response::Stat(s)) => write!(f, "ok v{}", s.version),
            Ok(Response::GetData { data, stat }) => {
                write!(
                    f,
                    "ok {:?} v{}",
                    String::from_utf8_lossy(data),
                    stat.version
                )
            }
            Ok(Response::GetChildren { children })
            | Ok(Response::GetChildren2 { children, .. }) => {
                write!(f, "ok {} children", children.len())
            }
            Ok(Response::Multi(rs)) => {
                let failed = rs
                    .iter()
                    .filter(|r| matches!(r, OpResult::Error(c) if *c != 0))
                    .count();
                write!(f, "ok multi of {} ({} failed)", rs.len(), failed)
            }
            Ok(Response::Sync { path }) => write!(f, "ok sync {path}"),
            Ok(_) => write!(f, "ok"),
        }
    }
}

impl std::fmt::Display for EventD<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Event::Tick => write!(f, "tick"),
            Event::Peer { from, msg } => write!(f, "recv {} from n{from}", MsgD(msg)),
            Event::PeerDisconnected { peer } => write!(f, "peer n{peer} disconnected"),
            Event::ClientConnected { conn, request, .. } => write!(
                f,
                "client conn {conn} connects session=0x{:x} lastZxidSeen={}",
                request.session_id,
                Zxid(request.last_zxid_seen as u64)
            ),
            Event::Client { conn, xid, request } => {
                write!(f, "conn {conn} xid {xid} {}", ReqD(request))
            }
            Event::ClientRefused { conn, xid, .. } => write!(f, "conn {conn} xid {xid} refused"),
            Event::ClientDisconnected { conn } => write!(f, "conn {conn} closed by client"),
            Event::ClientAuthenticated { conn, id } => {
                write!(f, "conn {conn} authenticated as {}:{}", id.scheme, id.id)
            }
            Event::Persisted { through } => write!(f, "persisted through {through}"),
            Event::Foreign(e) => write!(f, "from the foreign leader: {e:?}"),
        }
    }
}

// ---- structured hashing: what each adapter shows, as numbers --------------------------------

pub fn hash_txn(h: &mut TraceHasher, t: &Txn) {
    use ensemble_core::txn::TxnOp;
    h.u(t.zxid.0);
    h.i(t.session);
    h.i(t.cxid as i64);
    match &t.op {
        TxnOp::CreateSession { timeout_ms } => {
            h.u(1);
            h.i(*timeout_ms as i64);
        }
        TxnOp::CloseSession => h.u(2),
        TxnOp::Write { request, .. } => {
            h.u(3);
            hash_req(h, request);
        }
        TxnOp::DeleteContainer { path } => {
            h.u(4);
            h.s(path);
        }
        TxnOp::EnforcedWrite { request, .. } => {
            h.u(5);
            hash_req(h, request);
        }
        TxnOp::Reconfig { outcome } => {
            h.u(6);
            match outcome {
                Ok(m) => {
                    for (id, s) in &m.servers {
                        h.u(*id);
                        h.s(&s.spec());
                    }
                }
                Err(code) => h.i(*code as i64),
            }
        }
        TxnOp::Resolved(r) => {
            h.u(7);
            h.s(&format!("{r:?}"));
        }
    }
}

pub fn hash_req(h: &mut TraceHasher, r: &Request) {
    h.i(r.opcode() as i64);
    match r {
        Request::Create { path, mode, .. } => {
            h.s(path);
            h.u(*mode as u64);
        }
        Request::Delete { path, version }
        | Request::SetData { path, version, .. }
        | Request::Check { path, version } => {
            h.s(path);
            h.i(*version as i64);
        }
        Request::Exists { path, watch }
        | Request::GetData { path, watch }
        | Request::GetChildren { path, watch }
        | Request::GetChildren2 { path, watch } => {
            h.s(path);
            h.u(*watch as u64);
        }
        Request::Sync { path } => h.s(path),
        Request::Multi(ops) => h.u(ops.len() as u64),
        Request::SetWatches { relative_zxid, .. } => h.i(*relative_zxid),
        _ => {}
    }
}

pub fn hash_reply(h: &mut TraceHasher, r: &Reply) {
    use ensemble_proto::proto::{OpResult, Response};
    match r {
        Err(e) => {
            h.u(1);
            h.i(e.code() as i64);
        }
        Ok(Response::Create { path }) | Ok(Response::Create2 { path, .. }) => {
            h.u(2);
            h.s(path);
        }
        Ok(Response::Stat(s)) => {
            h.u(3);
            h.i(s.version as i64);
        }
        Ok(Response::GetData { data, stat }) => {
            h.u(4);
            h.b(data);
            h.i(stat.version as i64);
        }
        Ok(Response::GetChildren { children }) | Ok(Response::GetChildren2 { children, .. }) => {
            h.u(5);
            h.u(children.len() as u64);
        }
        Ok(Response::Multi(rs)) => {
            h.u(6);
            h.u(rs.len() as u64);
            let failed = rs
                .iter()
                .filter(|r| matches!(r, OpResult::Error(c) if *c != 0))
                .count();
            h.u(failed as u64);
        }
        Ok(Response::Sync { path }) => {
            h.u(7);
            h.s(path);
        }
        Ok(_) => h.u(8),
    }
}

pub fn hash_msg(h: &mut TraceHasher, m: &PeerMsg) {
    match m {
        PeerMsg::Notification(n) => {
            h.u(1);
            h.u(n.vote.leader);
            h.u(n.vote.zxid.0);
            h.u(n.vote.peer_epoch as u64);
            h.u(n.election_epoch);
            h.u(n.state as u64);
            h.u(n.config_version);
            h.u(u64::from(n.intact));
        }
        PeerMsg::LearnerInfo {
            accepted_epoch,
            last_zxid,
            ..
        } => {
            h.s(m.name());
            h.u(*accepted_epoch as u64);
            h.u(last_zxid.0);
        }
        PeerMsg::LeaderInfo { new_epoch } => {
            h.u(3);
            h.u(*new_epoch as u64);
        }
        PeerMsg::AckEpoch {
            epoch,
            current_epoch,
            last_zxid,
            counted,
        } => {
            h.u(4);
            h.u(*epoch as u64);
            h.u(*current_epoch as u64);
            h.u(last_zxid.0);
            if !*counted {
                h.u(1);
            }
        }
        PeerMsg::Sync {
            mode,
            txns,
            committed,
        } => {
            h.u(5);
            match mode {
                SyncMode::Trunc { to } => {
                    h.u(1);
                    h.u(to.0)
                }
                SyncMode::Snap { zxid, .. } => {
                    h.u(2);
                    h.u(zxid.0)
                }
                SyncMode::Diff => h.u(3),
            }
            h.u(txns.first().map(|t| t.zxid.0).unwrap_or(0));
            h.u(txns.last().map(|t| t.zxid.0).unwrap_or(0));
            h.u(committed.0);
        }
        PeerMsg::NewLeader { zxid } => {
            h.u(6);
            h.u(zxid.0);
        }
        PeerMsg::AckNewLeader { zxid } => {
            h.u(7);
            h.u(zxid.0);
        }
        PeerMsg::UpToDate {
            committed,
            first_config,
        } => {
            h.u(8);
            h.u(committed.0);
            h.u(first_config.as_ref().map_or(0, |m| m.version));
        }
        PeerMsg::Proposal(t) => {
            h.u(9);
            hash_txn(h, t);
        }
        PeerMsg::Ack { zxid } => {
            h.u(10);
            h.u(zxid.0);
        }
        PeerMsg::Commit { zxid } => {
            h.u(11);
            h.u(zxid.0);
        }
        PeerMsg::Inform(t) => {
            h.u(12);
            hash_txn(h, t);
        }
        PeerMsg::Ping { round } => {
            h.u(13);
            h.u(*round);
        }
        PeerMsg::PingReply { round, touched } => {
            h.u(14);
            h.u(*round);
            h.u(touched.len() as u64);
        }
        PeerMsg::Request {
            rid, session, cxid, ..
        } => {
            h.u(15);
            h.u(*rid);
            h.i(*session);
            h.i(*cxid as i64);
        }
        PeerMsg::SyncRequest { id } => {
            h.u(16);
            h.u(*id);
        }
        PeerMsg::SyncReply { id, zxid } => {
            h.u(17);
            h.u(*id);
            h.u(zxid.0);
        }
        PeerMsg::Revalidate { session } => {
            h.u(18);
            h.i(*session);
        }
        PeerMsg::SessionMoved { rid } => {
            h.u(19);
            h.u(*rid);
        }
        PeerMsg::SessionExpired { rid } => {
            h.u(20);
            h.u(*rid);
        }
        PeerMsg::SnapPart {
            zxid,
            offset,
            total,
            data,
        } => {
            h.u(21);
            h.u(zxid.0);
            h.u(*offset);
            h.u(*total);
            h.u(data.len() as u64);
        }
        PeerMsg::SyncTxns { txns } => {
            h.u(22);
            h.u(txns.first().map(|t| t.zxid.0).unwrap_or(0));
            h.u(txns.last().map(|t| t.zxid.0).unwrap_or(0));
        }
        PeerMsg::Config(m) => {
            h.u(23);
            h.u(m.version);
            for id in m.servers.keys() {
                h.u(*id);
            }
        }
        PeerMsg::HandOver { zxid, designated } => {
            h.u(24);
            h.u(zxid.0);
            h.u(*designated);
        }
    }
}

pub fn hash_event(h: &mut TraceHasher, e: &Event) {
    match e {
        Event::Tick => h.u(1),
        Event::Peer { from, msg } => {
            h.u(2);
            h.u(*from);
            hash_msg(h, msg);
        }
        Event::PeerDisconnected { peer } => {
            h.u(3);
            h.u(*peer);
        }
        Event::ClientConnected { conn, request, .. } => {
            h.u(4);
            h.u(*conn);
            h.i(request.session_id);
            h.i(request.last_zxid_seen);
        }
        Event::Client { conn, xid, request } => {
            h.u(5);
            h.u(*conn);
            h.i(*xid as i64);
            hash_req(h, request);
        }
        Event::ClientRefused { conn, xid, .. } => {
            h.u(8);
            h.u(*conn);
            h.i(*xid as i64);
        }
        Event::ClientDisconnected { conn } => {
            h.u(6);
            h.u(*conn);
        }
        Event::ClientAuthenticated { conn, id } => {
            h.u(9);
            h.u(*conn);
            h.s(&id.scheme);
            h.s(&id.id);
        }
        Event::Persisted { through } => {
            h.u(7);
            h.u(through.0);
        }
        Event::Foreign(f) => {
            h.u(8);
            h.s(&format!("{f:?}"));
        }
    }
}

// ---- the frequent lines ---------------------------------------------------------------------

/// A server takes an event.
pub struct EventLine<'a>(pub &'a Event);

impl Line for EventLine<'_> {
    fn hash(&self, h: &mut TraceHasher) {
        h.u(0x100);
        hash_event(h, self.0);
    }
    fn text(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", EventD(self.0))
    }
}

/// A server sends a peer message.
pub struct SendLine<'a> {
    pub to: ServerId,
    pub msg: &'a PeerMsg,
}

impl Line for SendLine<'_> {
    fn hash(&self, h: &mut TraceHasher) {
        h.u(0x101);
        h.u(self.to);
        hash_msg(h, self.msg);
    }
    fn text(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "  send {} to n{}", MsgD(self.msg), self.to)
    }
}

/// A server answers a client request.
pub struct ReplyLine<'a> {
    pub conn: u64,
    pub xid: i32,
    pub zxid: Zxid,
    pub reply: &'a Reply,
}

impl Line for ReplyLine<'_> {
    fn hash(&self, h: &mut TraceHasher) {
        h.u(0x102);
        h.u(self.conn);
        h.i(self.xid as i64);
        h.u(self.zxid.0);
        hash_reply(h, self.reply);
    }
    fn text(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  reply conn {} xid {} zxid {} {}",
            self.conn,
            self.xid,
            self.zxid,
            ReplyD(self.reply)
        )
    }
}

/// A server appends to its log.
pub struct AppendLine {
    pub first: Zxid,
    pub last: Zxid,
    pub n: usize,
}

impl Line for AppendLine {
    fn hash(&self, h: &mut TraceHasher) {
        h.u(0x103);
        h.u(self.first.0);
        h.u(self.last.0);
        h.u(self.n as u64);
    }
    fn text(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "  append {}..{} ({})", self.first, self.last, self.n)
    }
}

/// The committed history takes a txn.
pub struct CommitLine<'a>(pub &'a Txn);

impl Line for CommitLine<'_> {
    fn hash(&self, h: &mut TraceHasher) {
        h.u(0x104);
        hash_txn(h, self.0);
    }
    fn text(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "commit {} {}", self.0.zxid, TxnD(self.0))
    }
}

/// A client sends a request.
pub struct ClientSendLine<'a> {
    pub conn: u64,
    pub xid: i32,
    pub request: &'a Request,
}

impl Line for ClientSendLine<'_> {
    fn hash(&self, h: &mut TraceHasher) {
        h.u(0x105);
        h.u(self.conn);
        h.i(self.xid as i64);
        hash_req(h, self.request);
    }
    fn text(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "send conn {} xid {} {}",
            self.conn,
            self.xid,
            ReqD(self.request)
        )
    }
}

/// A client gets a reply.
pub struct ClientReplyLine<'a> {
    pub xid: i32,
    pub zxid: i64,
    pub reply: &'a Reply,
}

impl Line for ClientReplyLine<'_> {
    fn hash(&self, h: &mut TraceHasher) {
        h.u(0x106);
        h.i(self.xid as i64);
        h.i(self.zxid);
        hash_reply(h, self.reply);
    }
    fn text(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "reply xid {} zxid {} {}",
            self.xid,
            Zxid(self.zxid as u64),
            ReplyD(self.reply)
        )
    }
}

/// A watch notification: as a server sends it on connection `conn`, or (`conn` None) as a
/// client receives it.
pub struct WatchLine<'a> {
    pub conn: Option<u64>,
    pub event: &'a WatchedEvent,
}

impl Line for WatchLine<'_> {
    fn hash(&self, h: &mut TraceHasher) {
        h.u(0x107);
        h.u(self.conn.map_or(u64::MAX, |c| c));
        h.i(self.event.kind as i64);
        h.s(&self.event.path);
    }
    fn text(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, path) = (self.event.kind, &self.event.path);
        match self.conn {
            Some(conn) => write!(f, "  watch conn {conn} {kind:?} {path}"),
            None => write!(f, "watch event {kind:?} {path}"),
        }
    }
}

/// A connection opens, is answered or closes: rare per event, but once per client connection,
/// so given as data like the frequent lines.
pub enum ConnLine {
    /// A client opens connection `conn` to `server`.
    Open {
        server: ServerId,
        conn: u64,
        session: i64,
        last_zxid_seen: i64,
    },
    /// A client's connection is answered.
    Connected {
        conn: u64,
        session: i64,
        timeout: i32,
    },
    /// A client sees the server close its connection.
    ClosedByServer { conn: u64 },
    /// A server answers a connect.
    ConnectReply {
        conn: u64,
        session: i64,
        timeout: i32,
    },
    /// A server closes a connection.
    Close { conn: u64 },
}

impl Line for ConnLine {
    fn hash(&self, h: &mut TraceHasher) {
        match *self {
            ConnLine::Open {
                server,
                conn,
                session,
                last_zxid_seen,
            } => {
                h.u(0x108);
                h.u(server);
                h.u(conn);
                h.i(session);
                h.i(last_zxid_seen);
            }
            ConnLine::Connected {
                conn,
                session,
                timeout,
            } => {
                h.u(0x109);
                h.u(conn);
                h.i(session);
                h.i(timeout as i64);
            }
            ConnLine::ClosedByServer { conn } => {
                h.u(0x10a);
                h.u(conn);
            }
            ConnLine::ConnectReply {
                conn,
                session,
                timeout,
            } => {
                h.u(0x10b);
                h.u(conn);
                h.i(session);
                h.i(timeout as i64);
            }
            ConnLine::Close { conn } => {
                h.u(0x10c);
                h.u(conn);
            }
        }
    }
    fn text(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConnLine::Open {
                server,
                conn,
                session,
                last_zxid_seen,
            } => write!(
                f,
                "connect to n{server} conn {conn} session=0x{session:x} lastZxidSeen={}",
                Zxid(last_zxid_seen as u64)
            ),
            ConnLine::Connected {
                conn,
                session,
                timeout,
            } => write!(
                f,
                "connected conn {conn} session=0x{session:x} timeout={timeout}"
            ),
            ConnLine::ClosedByServer { conn } => write!(f, "conn {conn} closed by server"),
            ConnLine::ConnectReply {
                conn,
                session,
                timeout,
            } => write!(
                f,
                "  connect reply conn {conn} session=0x{session:x} timeout={timeout}"
            ),
            ConnLine::Close { conn } => write!(f, "  close conn {conn}"),
        }
    }
}
