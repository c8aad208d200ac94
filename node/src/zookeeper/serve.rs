//! The client port of an observer inside a live ZooKeeper ensemble (issue 17 item 3d): real
//! clients read the replica ([`super::observer`]) — getData, exists, getChildren(2), getACL,
//! getAllChildrenNumber, multiRead — with their watches fired by the txns ZooKeeper INFORMs.
//!
//! A node-side path, to be replaced by the core's client pipeline: the core has the entry for
//! ZooKeeper's resolved txns (`ensemble_core::foreign`, `TxnOp::Resolved`) and
//! [`super::to_core`] the translation into it, but `zk-observe` does not run the core yet, so
//! clients are still served here from the [`ZkTree`] replica (checked against ZooKeeper's
//! digest after each txn; the same `ResolvedTxn` records the core applies). What is the core's own here is
//! what carries the guarantees: its `WatchManager` decides which watch fires and is spent,
//! `acl::check` decides every READ (and the READ check on watch events, as ZooKeeper 3.8.4+),
//! `acl::digest_auth_ids` makes addAuth's ids and `session_passwd` the session passwords.
//! Soundness rests on one lock: a txn is applied and its events queued on each connection
//! under the same lock a read is answered under, and each connection has one FIFO writer, so
//! a client hears a watch event before any reply that reads the change, and its reads follow
//! the applied history in order (each reply carries the replica's zxid, which never goes back
//! while synced; a client that has seen a later zxid is refused, as ZooKeeper refuses it).
//!
//! Writes and sessions go to ZooKeeper's leader (issue 17 item 3e), as ZooKeeper's
//! `ObserverRequestProcessor` and `Learner` send them: a write, closeSession or sync is
//! forwarded as a REQUEST (session, cxid, opcode, the client's own request bytes, its auth ids)
//! and answered when the INFORM of its txn comes back (its result read from the resolved txn
//! and the replica right after it), a sync when the leader's SYNC does; a new session is a
//! forwarded createSession answered at its INFORM; a reconnect is a REVALIDATE the leader
//! answers; every PING carries the sessions clients touched since the last one. A
//! connection's requests are answered in order: its next request is read only once the
//! forwarded one is answered. While the observer is not synced with a leader no client is
//! served: the connections are closed (forwarded requests unanswered, as ConnectionLoss) and
//! new ones refused, as a ZooKeeper observer's server stops between leaders.

use super::jute::OutputArchive;
use super::quorum_packet::{PacketType, QuorumPacket};
use super::records::{TxnHeader, op};
use super::tree::{ZNode, ZkTree};
use ensemble_core::ResolvedTxn;
use ensemble_core::acl;
use ensemble_core::session_passwd;
use ensemble_core::tree::{EphemeralType, Trigger};
use ensemble_core::watch::{WatchKind, WatchManager};
use ensemble_proto::jute;
use ensemble_proto::proto::OpResult;
use ensemble_proto::proto::{
    ClientInfo, ConnectRequest, ConnectResponse, EventType, Id, KeeperError, OpCode, ReadOp,
    ReadResult, Reply, Request, Response, Stat, perms,
};
use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How the client port behaves (from the observer's zoo.cfg).
#[derive(Clone, Debug)]
pub struct ServeSettings {
    pub me: i64,
    pub extended_types: bool,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub max_buffer: usize,
    pub super_digest: Option<String>,
}

struct Cnxn {
    session: i64,
    timeout_ms: i32,
    auth: Vec<Id>,
    out: Sender<Vec<u8>>,
    stream: TcpStream,
}

/// A forwarded request waiting for its txn (or the leader's SYNC).
struct Pending {
    conn: u64,
    xid: i32,
    opcode: OpCode,
    path: String,
    done: Sender<()>,
}

/// A connection whose session the leader is asked for (createSession or REVALIDATE).
struct Joining {
    conn: u64,
    timeout_ms: i32,
    read_only: Option<bool>,
    addr: Option<Id>,
    out: Sender<Vec<u8>>,
    stream: TcpStream,
    done: Sender<()>,
}

/// What a client's thread does after a request.
pub enum Next {
    Go,
    Wait(Receiver<()>),
    Close,
}

/// The quorum connection's writing side, shared with the observer (one writer at a time).
pub type LeaderLink = super::leader_link::LeaderStream;

/// The replica as clients see it, with their connections, sessions and watches.
pub struct Served {
    set: ServeSettings,
    tree: Option<ZkTree>,
    watches: WatchManager,
    conns: BTreeMap<u64, Cnxn>,
    leader: Option<LeaderLink>,
    pending: BTreeMap<(i64, i32), Pending>,
    syncs: VecDeque<Pending>,
    joining: BTreeMap<i64, Joining>,
    /// Sessions touched since the last PING (`LearnerSessionTracker`'s touch table).
    touched: BTreeMap<i64, i32>,
    next_conn: u64,
    next_session: i64,
    pub writes_forwarded: u64,
    pub events_sent: u64,
}

pub type Shared = Arc<Mutex<Served>>;

impl super::observer::Serving for Shared {
    fn synced(&mut self, tree: &ZkTree, _leader: i64, _epoch: i64, stream: LeaderLink) {
        lock(self).synced(tree, stream)
    }
    fn applied(&mut self, hdr: &TxnHeader, txn: &ResolvedTxn) {
        lock(self).applied(hdr, txn)
    }
    fn revalidated(&mut self, session: i64, valid: bool) {
        lock(self).revalidated(session, valid)
    }
    fn sync_done(&mut self) {
        lock(self).sync_done()
    }
    fn ping(&mut self, _zxid: i64) -> Option<Vec<u8>> {
        Some(lock(self).touches())
    }
    fn lost(&mut self, _why: &str) {
        lock(self).lost()
    }
}

pub fn lock(s: &Shared) -> MutexGuard<'_, Served> {
    // a panicked client thread leaves nothing half-done that a reader could see: every
    // change under the lock is one txn or one connection's bookkeeping
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn stat_of(n: &ZNode, extended: bool) -> Stat {
    let s = &n.stat;
    let owner = match EphemeralType::of(s.ephemeral_owner, extended) {
        EphemeralType::Normal(id) => id,
        _ => 0,
    };
    Stat {
        czxid: s.czxid,
        mzxid: s.mzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        // DataNode.copyStat: cversion counts changes, twice the creates less the children
        cversion: 2 * s.cversion - n.children as i32,
        aversion: s.aversion,
        ephemeral_owner: owner,
        data_length: n.data.as_ref().map_or(0, |d| d.len() as i32),
        num_children: n.children as i32,
        pzxid: s.pzxid,
    }
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The direct children's names of `path`, in order.
fn children(tree: &ZkTree, path: &str) -> Vec<String> {
    let prefix = if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    };
    tree.nodes
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .filter_map(|(p, _)| {
            let rest = &p[prefix.len()..];
            (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
        })
        .collect()
}

fn descendants(tree: &ZkTree, path: &str) -> usize {
    let prefix = if path == "/" {
        "/".to_string()
    } else {
        format!("{path}/")
    };
    tree.nodes
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .filter(|(p, _)| p.len() > prefix.len())
        .count()
}

impl Served {
    pub fn new(set: ServeSettings) -> Shared {
        // SessionTrackerImpl.initializeNextSessionId: the time, then the server id on top
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let first = (((millis << 24) as u64) >> 8) as i64 | ((set.me & 0xff) << 56);
        Arc::new(Mutex::new(Served {
            set,
            tree: None,
            watches: WatchManager::new(),
            conns: BTreeMap::new(),
            leader: None,
            pending: BTreeMap::new(),
            syncs: VecDeque::new(),
            joining: BTreeMap::new(),
            touched: BTreeMap::new(),
            next_conn: 1,
            next_session: first,
            writes_forwarded: 0,
            events_sent: 0,
        }))
    }

    /// The observer synced with a leader: serve this replica, forward to `leader`.
    pub fn synced(&mut self, tree: &ZkTree, leader: LeaderLink) {
        self.tree = Some(tree.clone());
        self.leader = Some(leader);
    }

    /// The observer left its leader: no client is served until the next sync; what was
    /// forwarded is not answered (the clients see the connection go, as ZooKeeper's do).
    pub fn lost(&mut self) {
        self.tree = None;
        self.leader = None;
        self.pending.clear();
        self.syncs.clear();
        self.joining.clear();
        self.touched.clear();
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id);
        }
    }

    /// The PING's data: each session touched since the last PING, with its timeout.
    pub fn touches(&mut self) -> Vec<u8> {
        let mut b = Vec::with_capacity(12 * self.touched.len());
        for (id, t) in std::mem::take(&mut self.touched) {
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&t.to_be_bytes());
        }
        b
    }

    /// The leader's SYNC: the oldest forwarded sync is answered (the replica now holds
    /// everything the leader had committed when it took the sync).
    pub fn sync_done(&mut self) {
        let Some(p) = self.syncs.pop_front() else {
            tracing::warn!("a SYNC from the leader without a forwarded sync");
            return;
        };
        let zxid = self.zxid();
        self.answer(
            &p,
            zxid,
            &Ok(Response::Sync {
                path: p.path.clone(),
            }),
        );
    }

    /// The leader's answer to a REVALIDATE.
    pub fn revalidated(&mut self, session: i64, valid: bool) {
        if self.joining.contains_key(&session) {
            self.joined(session, valid);
        } else {
            tracing::warn!("REVALIDATE of {session:#x}, which no client here waits for");
        }
    }

    /// Send one packet to the leader; false if it cannot be (the leader is gone).
    fn to_leader(&self, p: &QuorumPacket) -> bool {
        let Some(l) = &self.leader else {
            return false;
        };
        let mut o = OutputArchive::default();
        p.write(&mut o);
        let mut s = l.lock().unwrap_or_else(|p| p.into_inner());
        s.write_all(&o.out).is_ok()
    }

    fn answer(&self, p: &Pending, zxid: i64, reply: &Reply) {
        if let Some(c) = self.conns.get(&p.conn) {
            let mut b = Vec::new();
            jute::encode_reply(p.xid, zxid, p.opcode, reply, &mut b);
            let _ = c.out.send(b);
        }
        let _ = p.done.send(());
    }

    /// The session the leader made or revalidated (or refused): the client's handshake is
    /// answered.
    fn joined(&mut self, session: i64, valid: bool) {
        let Some(j) = self.joining.remove(&session) else {
            return;
        };
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: if valid { j.timeout_ms } else { 0 },
            session_id: if valid { session } else { 0 },
            passwd: if valid {
                session_passwd::generate_passwd(session)
            } else {
                vec![0; 16]
            },
            read_only: j.read_only.map(|_| false),
        };
        let mut b = Vec::new();
        jute::encode_connect_response(&resp, &mut b);
        let _ = j.out.send(b);
        if valid {
            // a session reattached here leaves its old connection
            let old: Vec<u64> = self
                .conns
                .iter()
                .filter(|(_, c)| c.session == session)
                .map(|(id, _)| *id)
                .collect();
            for id in old {
                self.close(id);
            }
            self.touched.insert(session, j.timeout_ms);
            self.conns.insert(
                j.conn,
                Cnxn {
                    session,
                    timeout_ms: j.timeout_ms,
                    auth: j.addr.into_iter().collect(),
                    out: j.out,
                    stream: j.stream,
                },
            );
        }
        let _ = j.done.send(());
    }

    pub fn zxid(&self) -> i64 {
        self.tree.as_ref().map_or(0, |t| t.last_zxid)
    }

    /// One txn as the observer applied it: the same change to the served replica, and the
    /// watches it fires (ZooKeeper's DataTree order: the node, then its parent's children).
    pub fn applied(&mut self, hdr: &TxnHeader, txn: &ResolvedTxn) {
        let Some(tree) = self.tree.as_mut() else {
            return;
        };
        // the observer hands each txn once, in zxid order, past what the copy holds
        assert!(
            hdr.zxid > tree.last_zxid,
            "txn {:#x} served twice",
            hdr.zxid
        );
        let mut fired: Vec<(Trigger, Arc<[ensemble_proto::proto::Acl]>)> = Vec::new();
        let waiting = self.pending.contains_key(&(hdr.client_id, hdr.cxid));
        let mut results = Vec::new();
        match txn {
            ResolvedTxn::Multi(subs) => {
                let failed = subs.iter().any(|s| matches!(s, ResolvedTxn::Error { .. }));
                for sub in subs {
                    if !failed {
                        triggers(tree, hdr, sub, &mut fired);
                        tree.process(hdr, sub);
                    }
                    if waiting {
                        results.push(op_result(tree, sub, self.set.extended_types));
                    }
                }
                tree.process(hdr, &ResolvedTxn::Multi(Vec::new()));
            }
            _ => {
                triggers(tree, hdr, txn, &mut fired);
                tree.process(hdr, txn);
            }
        }
        assert_eq!(tree.last_zxid, hdr.zxid);
        for (trigger, node_acl) in fired {
            let mut events = Vec::new();
            self.watches.trigger(&trigger, &mut events);
            for (conn, event) in events {
                // ZooKeeper 3.8.4+ (CVE-2024-23944): only to a connection that may READ it
                if let Some(c) = self.conns.get(&conn)
                    && acl::check(&node_acl, perms::READ, &c.auth)
                {
                    let mut b = Vec::new();
                    jute::encode_watch_event(&event, &mut b);
                    let _ = c.out.send(b);
                    self.events_sent += 1;
                }
            }
        }
        // ZooKeeper's FinalRequestProcessor: the watches fire, then the request is answered
        if let ResolvedTxn::CreateSession { .. } = txn
            && self.joining.contains_key(&hdr.client_id)
        {
            self.joined(hdr.client_id, true);
        }
        if let Some(p) = self.pending.remove(&(hdr.client_id, hdr.cxid)) {
            let reply = match txn {
                ResolvedTxn::Multi(_) => Ok(Response::Multi(results)),
                _ => self
                    .tree
                    .as_ref()
                    .map_or(Err(KeeperError::ConnectionLoss), |t| {
                        txn_reply(t, p.opcode, txn, self.set.extended_types)
                    }),
            };
            self.answer(&p, hdr.zxid, &reply);
        }
        if let ResolvedTxn::CloseSession { .. } = txn {
            // its connections here go, once answered (ZooKeeper's closeSession of the cnxn)
            let ids: Vec<u64> = self
                .conns
                .iter()
                .filter(|(_, c)| c.session == hdr.client_id)
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                self.close(id);
            }
        }
    }

    fn close(&mut self, conn: u64) {
        if let Some(c) = self.conns.remove(&conn) {
            self.watches.remove_conn(conn);
            // the writer drains what is queued, then shuts the socket
            drop(c.out);
            self.pending.retain(|_, p| p.conn != conn);
            self.syncs.retain(|p| p.conn != conn);
        }
    }

    /// The handshake: a new session asked of the leader (a forwarded createSession), or a
    /// session revalidated by it; the client is answered when the leader has. `None` closes.
    fn connect(
        &mut self,
        req: &ConnectRequest,
        addr: Option<Id>,
        stream: TcpStream,
        out: Sender<Vec<u8>>,
    ) -> Option<(u64, Receiver<()>)> {
        let last = self.tree.as_ref()?.last_zxid;
        if req.last_zxid_seen > last {
            tracing::info!(
                "refusing a client that has seen zxid {:#x}: this observer is at {last:#x}",
                req.last_zxid_seen
            );
            return None;
        }
        let timeout = req.timeout_ms.clamp(
            self.set.min_session_timeout_ms,
            self.set.max_session_timeout_ms,
        );
        let (session, packet) = if req.session_id == 0 {
            let id = self.next_session;
            self.next_session += 1;
            let mut body = Vec::new();
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&0i32.to_be_bytes());
            body.extend_from_slice(&op::CREATE_SESSION.to_be_bytes());
            body.extend_from_slice(&timeout.to_be_bytes());
            (id, (PacketType::Request, body))
        } else {
            if !session_passwd::check_passwd(req.session_id, &req.passwd, false) {
                let resp = ConnectResponse {
                    protocol_version: 0,
                    timeout_ms: 0,
                    session_id: 0,
                    passwd: vec![0; 16],
                    read_only: req.read_only.map(|_| false),
                };
                let mut b = Vec::new();
                jute::encode_connect_response(&resp, &mut b);
                let _ = out.send(b);
                return None;
            }
            let mut body = Vec::new();
            body.extend_from_slice(&req.session_id.to_be_bytes());
            body.extend_from_slice(&timeout.to_be_bytes());
            (req.session_id, (PacketType::Revalidate, body))
        };
        if self.joining.contains_key(&session) {
            return None;
        }
        let p = QuorumPacket {
            kind: packet.0,
            zxid: -1,
            data: Some(packet.1),
            authinfo: None,
        };
        if !self.to_leader(&p) {
            return None;
        }
        let id = self.next_conn;
        self.next_conn += 1;
        let (done, wait) = channel();
        self.joining.insert(
            session,
            Joining {
                conn: id,
                timeout_ms: timeout,
                read_only: req.read_only,
                addr,
                out,
                stream,
                done,
            },
        );
        Some((id, wait))
    }

    /// One request: answered in its turn, or forwarded (`Next::Wait` until answered).
    /// `body` is the request record as the client sent it.
    fn request(&mut self, conn: u64, xid: i32, req: Request, body: &[u8]) -> Next {
        let Some(c) = self.conns.get(&conn) else {
            return Next::Close;
        };
        let (session, timeout) = (c.session, c.timeout_ms);
        self.touched.insert(session, timeout);
        let opcode = req.opcode();
        if req.is_write() || matches!(req, Request::Sync { .. }) {
            return self.forward(conn, xid, req, body);
        }
        let mut keep = true;
        let reply = match req {
            Request::Auth { scheme, auth } => {
                if scheme == "digest"
                    && let Ok(s) = std::str::from_utf8(&auth)
                    && s.contains(':')
                {
                    let ids = acl::digest_auth_ids(s, self.set.super_digest.as_deref());
                    if let Some(c) = self.conns.get_mut(&conn) {
                        for id in ids {
                            if !c.auth.contains(&id) {
                                c.auth.push(id);
                            }
                        }
                    }
                    Ok(Response::Empty)
                } else {
                    keep = false;
                    Err(KeeperError::AuthFailed)
                }
            }
            r => self.read(conn, r),
        };
        let zxid = self.zxid();
        if let Some(c) = self.conns.get(&conn) {
            let mut b = Vec::new();
            jute::encode_reply(xid, zxid, opcode, &reply, &mut b);
            let _ = c.out.send(b);
        }
        if keep { Next::Go } else { Next::Close }
    }

    /// `Learner.request`: a REQUEST with the session, cxid, opcode, the client's bytes and
    /// its auth ids (the leader checks ACLs with them).
    fn forward(&mut self, conn: u64, xid: i32, req: Request, body: &[u8]) -> Next {
        let Some(c) = self.conns.get(&conn) else {
            return Next::Close;
        };
        let opcode = req.opcode();
        let mut data = Vec::with_capacity(16 + body.len());
        data.extend_from_slice(&c.session.to_be_bytes());
        data.extend_from_slice(&xid.to_be_bytes());
        data.extend_from_slice(&(opcode as i32).to_be_bytes());
        data.extend_from_slice(body);
        let p = QuorumPacket {
            kind: PacketType::Request,
            zxid: -1,
            data: Some(data),
            authinfo: Some(c.auth.clone()),
        };
        let session = c.session;
        if self.pending.contains_key(&(session, xid)) || !self.to_leader(&p) {
            // a client reusing an xid in flight, or the leader gone: the connection goes
            return Next::Close;
        }
        self.writes_forwarded += 1;
        let (done, wait) = channel();
        let path = match &req {
            Request::Sync { path } => path.clone(),
            _ => String::new(),
        };
        let pending = Pending {
            conn,
            xid,
            opcode,
            path,
            done,
        };
        if opcode == OpCode::Sync {
            self.syncs.push_back(pending);
        } else {
            self.pending.insert((session, xid), pending);
        }
        Next::Wait(wait)
    }

    fn read(&mut self, conn: u64, req: Request) -> Reply {
        let opcode = req.opcode();
        let extended = self.set.extended_types;
        let (Some(tree), Some(c)) = (self.tree.as_ref(), self.conns.get(&conn)) else {
            return Err(KeeperError::ConnectionLoss);
        };
        let auth = &c.auth;
        let node = |path: &str| -> Result<&ZNode, KeeperError> {
            ensemble_core::path::validate(path)?;
            tree.nodes.get(path).ok_or(KeeperError::NoNode)
        };
        let readable = |n: &ZNode| {
            if acl::check(&n.acl, perms::READ, auth) {
                Ok(())
            } else {
                Err(KeeperError::NoAuth)
            }
        };
        match req {
            Request::Ping => Ok(Response::Empty),
            Request::Exists { path, watch } => {
                ensemble_core::path::validate(&path)?;
                let r = tree.nodes.get(&path).map(|n| stat_of(n, extended));
                if watch {
                    self.watches.add(&path, conn, WatchKind::Data);
                }
                r.map(Response::Stat).ok_or(KeeperError::NoNode)
            }
            Request::GetData { path, watch } => {
                let n = node(&path)?;
                readable(n)?;
                let stat = stat_of(n, extended);
                let r = match &n.data {
                    Some(d) => Response::GetData {
                        data: d.clone(),
                        stat,
                    },
                    None => Response::GetDataNull { stat },
                };
                if watch {
                    self.watches.add(&path, conn, WatchKind::Data);
                }
                Ok(r)
            }
            Request::GetChildren { path, watch } | Request::GetChildren2 { path, watch } => {
                let n = node(&path)?;
                readable(n)?;
                let names = children(tree, &path);
                let stat = stat_of(n, extended);
                if watch {
                    self.watches.add(&path, conn, WatchKind::Child);
                }
                Ok(if opcode == OpCode::GetChildren {
                    Response::GetChildren { children: names }
                } else {
                    Response::GetChildren2 {
                        children: names,
                        stat,
                    }
                })
            }
            Request::GetAcl { path } => {
                let n = node(&path)?;
                if !acl::check(&n.acl, perms::READ | perms::ADMIN, auth) {
                    return Err(KeeperError::NoAuth);
                }
                let shown = if acl::check(&n.acl, perms::ADMIN, auth) {
                    n.acl.to_vec()
                } else {
                    acl::mask_digests(&n.acl)
                };
                Ok(Response::GetAcl {
                    acl: shown,
                    stat: stat_of(n, extended),
                })
            }
            Request::GetAllChildrenNumber { path } => {
                let n = node(&path)?;
                readable(n)?;
                Ok(Response::AllChildrenNumber(descendants(tree, &path) as i32))
            }
            Request::GetEphemerals { prefix } => {
                let session = c.session;
                Ok(Response::GetEphemerals {
                    paths: tree
                        .nodes
                        .iter()
                        .filter(|(p, n)| {
                            p.starts_with(&prefix) && n.stat.ephemeral_owner == session
                        })
                        .map(|(p, _)| p.clone())
                        .collect(),
                })
            }
            Request::MultiRead(ops) => {
                let mut out = Vec::new();
                for o in ops {
                    let (path, data) = match &o {
                        ReadOp::GetData { path } => (path, true),
                        ReadOp::GetChildren { path } => (path, false),
                    };
                    out.push(match node(path).and_then(|n| readable(n).map(|_| n)) {
                        Err(e) => ReadResult::Error(e),
                        Ok(_) if !data => ReadResult::GetChildren(children(tree, path)),
                        Ok(n) => match &n.data {
                            Some(d) => ReadResult::GetData {
                                data: d.clone(),
                                stat: stat_of(n, extended),
                            },
                            None => ReadResult::GetDataNull {
                                stat: stat_of(n, extended),
                            },
                        },
                    });
                }
                Ok(Response::MultiRead(out))
            }
            Request::WhoAmI => Ok(Response::WhoAmI(
                auth.iter()
                    .map(|id| ClientInfo {
                        auth_scheme: id.scheme.clone(),
                        user: match id.scheme.as_str() {
                            "digest" => id.id.split(':').next().unwrap_or_default().to_string(),
                            _ => id.id.clone(),
                        },
                    })
                    .collect(),
            )),
            Request::SetWatches {
                relative_zxid,
                data,
                exist,
                child,
                persistent,
                persistent_recursive,
                ..
            } => {
                let fire = self.watches.set_watches(
                    conn,
                    relative_zxid,
                    data,
                    exist,
                    child,
                    persistent,
                    persistent_recursive,
                    |p| tree.nodes.get(p).map(|n| (n.stat.mzxid, n.stat.pzxid)),
                );
                for e in fire {
                    let mut b = Vec::new();
                    jute::encode_watch_event(&e, &mut b);
                    let _ = c.out.send(b);
                }
                Ok(Response::Empty)
            }
            r => self
                .watches
                .answer(conn, &r)
                .unwrap_or(Err(KeeperError::Unimplemented)),
        }
    }
}

/// The answer to a forwarded request from its resolved txn and the replica just after it
/// (ZooKeeper's FinalRequestProcessor; an error txn carries the request's error).
fn txn_reply(tree: &ZkTree, opcode: OpCode, txn: &ResolvedTxn, extended: bool) -> Reply {
    let stat = |path: &str| {
        tree.nodes
            .get(path)
            .map(|n| stat_of(n, extended))
            .ok_or(KeeperError::NoNode)
    };
    match txn {
        ResolvedTxn::Error { err } => {
            Err(KeeperError::from_code(*err).unwrap_or(KeeperError::SystemError))
        }
        ResolvedTxn::Create { path, .. } if opcode == OpCode::Create => {
            Ok(Response::Create { path: path.clone() })
        }
        ResolvedTxn::Create { path, .. } => Ok(Response::Create2 {
            path: path.clone(),
            stat: stat(path)?,
        }),
        ResolvedTxn::SetData { path, .. } | ResolvedTxn::SetAcl { path, .. } => {
            Ok(Response::Stat(stat(path)?))
        }
        _ => Ok(Response::Empty),
    }
}

/// One op's result of a forwarded multi.
fn op_result(tree: &ZkTree, sub: &ResolvedTxn, extended: bool) -> OpResult {
    let stat = |path: &str| tree.nodes.get(path).map(|n| stat_of(n, extended));
    match sub {
        ResolvedTxn::Error { err } => OpResult::Error(*err),
        ResolvedTxn::Create {
            path, with_stat, ..
        } => OpResult::Create {
            path: path.clone(),
            stat: if *with_stat { stat(path) } else { None },
        },
        ResolvedTxn::Delete { .. } => OpResult::Delete,
        ResolvedTxn::SetData { path, .. } => match stat(path) {
            Some(s) => OpResult::SetData(s),
            None => OpResult::Error(KeeperError::NoNode.code()),
        },
        _ => OpResult::Check,
    }
}

/// The watch triggers of one (non-multi) txn on the tree before it, each with the ACL its
/// event is checked against: the node's own, the parent's for NodeChildrenChanged.
fn triggers(
    tree: &ZkTree,
    hdr: &TxnHeader,
    txn: &ResolvedTxn,
    out: &mut Vec<(Trigger, Arc<[ensemble_proto::proto::Acl]>)>,
) {
    let t = |path: &str, kind| Trigger {
        path: path.to_string(),
        kind,
    };
    let deleted = |path: &str, out: &mut Vec<_>| {
        let (Some(n), Some(p)) = (tree.nodes.get(path), tree.nodes.get(parent_of(path))) else {
            return;
        };
        out.push((t(path, EventType::NodeDeleted), n.acl.clone()));
        out.push((
            t(parent_of(path), EventType::NodeChildrenChanged),
            p.acl.clone(),
        ));
    };
    match txn {
        ResolvedTxn::Create { path, acl, .. } => {
            if path == "/" || tree.nodes.contains_key(path) {
                return;
            }
            let Some(p) = tree.nodes.get(parent_of(path)) else {
                return;
            };
            out.push((t(path, EventType::NodeCreated), acl.clone().into()));
            out.push((
                t(parent_of(path), EventType::NodeChildrenChanged),
                p.acl.clone(),
            ));
        }
        ResolvedTxn::Delete { path } => deleted(path, out),
        ResolvedTxn::SetData { path, .. } => {
            if let Some(n) = tree.nodes.get(path) {
                out.push((t(path, EventType::NodeDataChanged), n.acl.clone()));
            }
        }
        ResolvedTxn::CloseSession { paths } => {
            let mut doomed: Vec<String> = paths.clone().unwrap_or_default();
            doomed.extend(
                tree.nodes
                    .iter()
                    .filter(|(_, n)| {
                        n.stat.ephemeral_owner == hdr.client_id
                            && matches!(
                                EphemeralType::of(n.stat.ephemeral_owner, true),
                                EphemeralType::Normal(_)
                            )
                    })
                    .map(|(p, _)| p.clone()),
            );
            doomed.sort();
            doomed.dedup();
            // deepest first, as the deletes leave each parent in turn
            for p in doomed.iter().rev() {
                deleted(p, out);
            }
        }
        _ => {}
    }
}

/// Accept clients on `listener` for as long as the process lives.
pub fn listen(shared: Shared, listener: TcpListener) {
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { continue };
            let shared = shared.clone();
            std::thread::spawn(move || serve_conn(shared, s));
        }
    });
}

fn read_frame(s: &mut TcpStream, max: usize) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let n = jute::frame_len(len).ok()?;
    if n > max {
        return None;
    }
    let mut b = vec![0u8; n];
    s.read_exact(&mut b).ok()?;
    Some(b)
}

/// One client connection: the handshake, then requests until it ends.
fn serve_conn(shared: Shared, mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let max = lock(&shared).set.max_buffer;
    let Some(first) = read_frame(&mut s, max) else {
        return;
    };
    let Ok(req) = jute::decode_connect(&first) else {
        return;
    };
    let (tx, rx) = channel::<Vec<u8>>();
    let (Ok(mut w), Ok(held)) = (s.try_clone(), s.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        for b in rx {
            if w.write_all(&b).is_err() {
                break;
            }
        }
        let _ = w.shutdown(Shutdown::Both);
    });
    let addr = s
        .peer_addr()
        .ok()
        .map(|a| Id::new("ip", &a.ip().to_string()));
    let joined = lock(&shared).connect(&req, addr, held, tx);
    let Some((conn, wait)) = joined else {
        return; // the sender dropped: the writer sends what it has, then shuts the socket
    };
    let timeout = u64::from(req.timeout_ms.clamp(1, 1 << 30) as u32);
    // the leader answers a createSession or REVALIDATE well within the session's timeout
    if wait
        .recv_timeout(Duration::from_millis(timeout.max(2000)))
        .is_err()
        || !lock(&shared).conns.contains_key(&conn)
    {
        let mut g = lock(&shared);
        g.joining.retain(|_, j| j.conn != conn);
        return;
    }
    let timeout = lock(&shared)
        .conns
        .get(&conn)
        .map_or(30_000, |c| c.timeout_ms.max(1) as u64);
    // a client silent past its session timeout is gone (ZooKeeper's cnxn expiry)
    let _ = s.set_read_timeout(Some(Duration::from_millis(timeout)));
    while let Some(frame) = read_frame(&mut s, max) {
        let (xid, req) = match jute::decode_request(&frame) {
            Ok(r) => r,
            Err(e) => match jute::triage_request(&frame, &e) {
                jute::BadRequest::Lenient { xid, request } => (xid, request),
                jute::BadRequest::Answer {
                    xid,
                    opcode,
                    reply,
                    close,
                } => {
                    let mut g = lock(&shared);
                    let zxid = g.zxid();
                    if let Some(c) = g.conns.get(&conn) {
                        let mut b = Vec::new();
                        jute::encode_reply(xid, zxid, opcode, &reply, &mut b);
                        let _ = c.out.send(b);
                    }
                    if close {
                        g.close(conn);
                        break;
                    }
                    continue;
                }
                jute::BadRequest::Close => break,
            },
        };
        let next = lock(&shared).request(conn, xid, req, &frame[8..]);
        match next {
            Next::Go => {}
            Next::Close => break,
            // the next request waits for this one's answer: a session's order is kept
            Next::Wait(rx) => match rx.recv_timeout(Duration::from_millis(2 * timeout)) {
                Ok(()) => {}
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    tracing::warn!("a forwarded request unanswered past twice the session timeout");
                    break;
                }
            },
        }
    }
    let mut g = lock(&shared);
    if let Some(c) = g.conns.get(&conn) {
        let _ = c.stream.shutdown(Shutdown::Read);
    }
    g.close(conn);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zookeeper::records::StatPersisted;
    use ensemble_proto::proto::Acl;

    fn hdr(zxid: i64, client_id: i64) -> TxnHeader {
        TxnHeader {
            client_id,
            cxid: 0,
            zxid,
            time: 1000 + zxid,
            kind: 0,
        }
    }

    fn create(path: &str, acl: Vec<Acl>, owner: i64) -> ResolvedTxn {
        ResolvedTxn::Create {
            path: path.into(),
            data: Some(b"x".to_vec()),
            acl,
            ephemeral_owner: owner,
            parent_cversion: 1,
            with_stat: false,
        }
    }

    fn loopback() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let a = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (b, _) = l.accept().expect("accept");
        (a, b)
    }

    fn root() -> ZkTree {
        let mut t = ZkTree::empty(1, BTreeMap::new());
        t.insert(
            "/".into(),
            ZNode {
                data: None,
                acl: Acl::open_unsafe().into(),
                stat: StatPersisted {
                    czxid: 0,
                    mzxid: 0,
                    ctime: 0,
                    mtime: 0,
                    version: 0,
                    cversion: 0,
                    aversion: 0,
                    ephemeral_owner: 0,
                    pzxid: 0,
                },
                children: 0,
            },
        );
        t
    }

    /// A closeSession fires each ephemeral's deletion, deepest first, each checked against
    /// the node's own ACL and its parent's; a failed multi fires nothing.
    #[test]
    fn txns_fire_what_zookeeper_fires() {
        let mut t = root();
        let secret = vec![Acl {
            perms: perms::ALL,
            id: Id::new("digest", "alice:hash"),
        }];
        t.process(&hdr(2, 0), &create("/a", secret.clone(), 0));
        t.process(&hdr(3, 7), &create("/a/e", Acl::open_unsafe(), 7));
        let mut out = Vec::new();
        triggers(
            &t,
            &hdr(4, 7),
            &ResolvedTxn::CloseSession { paths: None },
            &mut out,
        );
        let got: Vec<(String, EventType, bool)> = out
            .iter()
            .map(|(tr, a)| (tr.path.clone(), tr.kind, acl::check(a, perms::READ, &[])))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/a/e".into(), EventType::NodeDeleted, true),
                ("/a".into(), EventType::NodeChildrenChanged, false),
            ]
        );
        assert_eq!(children(&t, "/"), vec!["a".to_string()]);
        assert_eq!(children(&t, "/a"), vec!["e".to_string()]);
        assert_eq!(descendants(&t, "/"), 2);

        // served: a failed multi changes and fires nothing; a good one fires per op
        let served = Served::new(ServeSettings {
            me: 4,
            extended_types: true,
            min_session_timeout_ms: 1000,
            max_session_timeout_ms: 10000,
            max_buffer: 1 << 20,
            super_digest: None,
        });
        let mut g = lock(&served);
        let (a, _b) = loopback();
        g.synced(&t, Arc::new(Mutex::new(a)));
        let bad = ResolvedTxn::Multi(vec![
            create("/b", Acl::open_unsafe(), 0),
            ResolvedTxn::Error { err: -110 },
        ]);
        g.applied(&hdr(4, 0), &bad);
        assert_eq!(g.zxid(), 4);
        assert!(!g.tree.as_ref().is_some_and(|t| t.nodes.contains_key("/b")));
        let good = ResolvedTxn::Multi(vec![
            create("/b", Acl::open_unsafe(), 0),
            create("/b/c", Acl::open_unsafe(), 0),
        ]);
        g.applied(&hdr(5, 0), &good);
        assert_eq!(descendants(g.tree.as_ref().expect("synced"), "/b"), 1);
        // a client's write waits for its txn: answered from the txn and the tree after it
        assert_eq!(
            txn_reply(
                g.tree.as_ref().expect("synced"),
                OpCode::Create2,
                &create("/b", vec![], 0),
                true
            )
            .map(|r| matches!(r, Response::Create2 { stat, .. } if stat.czxid == 5)),
            Ok(true)
        );
        assert_eq!(
            txn_reply(
                g.tree.as_ref().expect("synced"),
                OpCode::Create,
                &ResolvedTxn::Error { err: -110 },
                true
            ),
            Err(KeeperError::NodeExists)
        );
        assert_eq!(g.touches(), Vec::<u8>::new());
        g.touched.insert(0x0400_0000_0000_0001, 4000);
        let t = g.touches();
        assert_eq!(t.len(), 12);
        assert_eq!(&t[8..], &4000i32.to_be_bytes());
        assert!(g.touches().is_empty(), "a PING takes the touches once");
        g.lost();
        assert_eq!(g.zxid(), 0);
        assert!(g.leader.is_none());
    }
}
