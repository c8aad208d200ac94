//! The client port of an observer inside a live ZooKeeper ensemble (issue 17 item 3d): real
//! clients read the replica ([`super::observer`]) — getData, exists, getChildren(2), getACL,
//! getAllChildrenNumber, multiRead — with their watches fired by the txns ZooKeeper INFORMs.
//!
//! Why a node-side path and not the core's client pipeline: ZooKeeper's txns arrive resolved
//! (every stat decided by its leader), and the replica that applies them is [`ZkTree`],
//! checked against ZooKeeper's digest after each txn; the core's `DataTree` resolves
//! Ensemble's own txns and has no entry for foreign ones yet. What is the core's own here is
//! what carries the guarantees: its `WatchManager` decides which watch fires and is spent,
//! `acl::check` decides every READ (and the READ check on watch events, as ZooKeeper 3.8.4+),
//! `acl::digest_auth_ids` makes addAuth's ids and `session_passwd` the session passwords.
//! Soundness rests on one lock: a txn is applied and its events queued on each connection
//! under the same lock a read is answered under, and each connection has one FIFO writer, so
//! a client hears a watch event before any reply that reads the change, and its reads follow
//! the applied history in order (each reply carries the replica's zxid, which never goes back
//! while synced; a client that has seen a later zxid is refused, as ZooKeeper refuses it).
//!
//! Writes are not forwarded to ZooKeeper's leader yet: a create, delete, setData, setACL,
//! check, multi, reconfig or sync is answered NOTREADONLY, as ZooKeeper's read-only server
//! answers it, and logged. Sessions are this server's own (ZooKeeper's local sessions: no
//! ephemeral can be made on one); they expire here after their timeout without a connection.
//! While the observer is not synced with a leader no client is served: the connections are
//! closed and new ones refused, as a ZooKeeper observer's server stops between leaders.

use super::records::{TxnHeader, ZkTxn, op};
use super::tree::{ZNode, ZkTree};
use ensemble_core::acl;
use ensemble_core::session_passwd;
use ensemble_core::tree::{EphemeralType, Trigger};
use ensemble_core::watch::{WatchKind, WatchManager};
use ensemble_proto::jute;
use ensemble_proto::proto::{
    AddWatchMode, ClientInfo, ConnectRequest, ConnectResponse, EventType, Id, KeeperError,
    KeeperState, OpCode, ReadOp, ReadResult, Reply, Request, Response, Stat, WatchedEvent, perms,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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
    auth: Vec<Id>,
    out: Sender<Vec<u8>>,
    stream: TcpStream,
}

struct Session {
    timeout_ms: i32,
    /// When its last connection went (None while one is open).
    idle_since: Option<Instant>,
}

/// The replica as clients see it, with their connections, sessions and watches.
pub struct Served {
    set: ServeSettings,
    tree: Option<ZkTree>,
    watches: WatchManager,
    conns: BTreeMap<u64, Cnxn>,
    sessions: BTreeMap<i64, Session>,
    next_conn: u64,
    next_session: i64,
    pub writes_refused: u64,
    pub events_sent: u64,
}

pub type Shared = Arc<Mutex<Served>>;

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
        let first = (set.me & 0xff) << 56;
        Arc::new(Mutex::new(Served {
            set,
            tree: None,
            watches: WatchManager::new(),
            conns: BTreeMap::new(),
            sessions: BTreeMap::new(),
            next_conn: 1,
            next_session: first + 1,
            writes_refused: 0,
            events_sent: 0,
        }))
    }

    /// The observer synced with a leader: serve this replica.
    pub fn synced(&mut self, tree: &ZkTree) {
        self.tree = Some(tree.clone());
    }

    /// The observer left its leader: no client is served until the next sync.
    pub fn lost(&mut self) {
        self.tree = None;
        let ids: Vec<u64> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id);
        }
    }

    pub fn zxid(&self) -> i64 {
        self.tree.as_ref().map_or(0, |t| t.last_zxid)
    }

    /// One txn as the observer applied it: the same change to the served replica, and the
    /// watches it fires (ZooKeeper's DataTree order: the node, then its parent's children).
    pub fn applied(&mut self, hdr: &TxnHeader, txn: &ZkTxn) {
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
        match txn {
            ZkTxn::Multi(subs) => {
                if subs.iter().all(|(k, _)| *k != op::ERROR) {
                    for (kind, sub) in subs {
                        let sub_hdr = TxnHeader {
                            kind: *kind,
                            ..*hdr
                        };
                        triggers(tree, &sub_hdr, sub, &mut fired);
                        tree.process(&sub_hdr, sub);
                    }
                }
                tree.process(hdr, &ZkTxn::Multi(Vec::new()));
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
    }

    fn close(&mut self, conn: u64) {
        if let Some(c) = self.conns.remove(&conn) {
            self.watches.remove_conn(conn);
            // the writer drains what is queued, then shuts the socket
            drop(c.out);
            if let Some(s) = self.sessions.get_mut(&c.session)
                && !self.conns.values().any(|o| o.session == c.session)
            {
                s.idle_since = Some(Instant::now());
            }
        }
    }

    /// Sessions idle past their timeout end here (nothing of them is replicated).
    pub fn expire(&mut self, now: Instant) {
        self.sessions.retain(|id, s| {
            let keep = s.idle_since.is_none_or(|at| {
                now.duration_since(at) < Duration::from_millis(s.timeout_ms.max(0) as u64)
            });
            if !keep {
                tracing::info!(session = format_args!("{id:#x}"), "local session expired");
            }
            keep
        });
    }

    /// The handshake: a new local session or one of ours reattached; `None` closes.
    fn connect(
        &mut self,
        req: &ConnectRequest,
        stream: TcpStream,
        out: Sender<Vec<u8>>,
    ) -> Option<u64> {
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
        let (session, timeout) = if req.session_id == 0 {
            let id = self.next_session;
            self.next_session += 1;
            self.sessions.insert(
                id,
                Session {
                    timeout_ms: timeout,
                    idle_since: None,
                },
            );
            (id, timeout)
        } else {
            match self.sessions.get_mut(&req.session_id) {
                Some(s) if session_passwd::check_passwd(req.session_id, &req.passwd, false) => {
                    s.idle_since = None;
                    (req.session_id, s.timeout_ms)
                }
                _ => (0, 0),
            }
        };
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: timeout,
            session_id: session,
            passwd: if session == 0 {
                vec![0; 16]
            } else {
                session_passwd::generate_passwd(session)
            },
            read_only: req.read_only.map(|_| false),
        };
        let mut b = Vec::new();
        jute::encode_connect_response(&resp, &mut b);
        let _ = out.send(b);
        if session == 0 {
            // expired (or never ours): the client is told, then the connection goes
            return None;
        }
        // a session reattached elsewhere leaves its old connection
        let old: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.session == session)
            .map(|(id, _)| *id)
            .collect();
        for id in old {
            self.close(id);
        }
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Cnxn {
                session,
                auth: Vec::new(),
                out,
                stream,
            },
        );
        Some(id)
    }

    /// One request, answered in its turn; false when the connection is to close after it.
    fn request(&mut self, conn: u64, xid: i32, req: Request) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        let opcode = req.opcode();
        let mut keep = true;
        let reply = match req {
            Request::CloseSession => {
                let session = c.session;
                self.sessions.remove(&session);
                keep = false;
                Ok(Response::Empty)
            }
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
            r if r.is_write() || matches!(r, Request::Sync { .. }) => {
                self.writes_refused += 1;
                tracing::info!(
                    ?opcode,
                    "a write on the ZooKeeper observer's client port: NOTREADONLY (writes are \
                     not forwarded to ZooKeeper's leader yet)"
                );
                Err(KeeperError::NotReadOnly)
            }
            r => self.read(conn, r),
        };
        let zxid = self.zxid();
        if let Some(c) = self.conns.get(&conn) {
            let mut b = Vec::new();
            jute::encode_reply(xid, zxid, opcode, &reply, &mut b);
            let _ = c.out.send(b);
        }
        keep
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
            Request::AddWatch { path, mode } => {
                let kind = match mode {
                    AddWatchMode::Persistent => WatchKind::Persistent,
                    AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
                };
                self.watches.add(&path, conn, kind);
                Ok(Response::Empty)
            }
            Request::CheckWatches { path, kind } => {
                if self.watches.contains(&path, conn, kind) {
                    Ok(Response::Empty)
                } else {
                    Err(KeeperError::NoWatcher)
                }
            }
            Request::RemoveWatches { path, kind } => {
                if self.watches.remove(&path, conn, kind) {
                    Ok(Response::Empty)
                } else {
                    Err(KeeperError::NoWatcher)
                }
            }
            Request::SetWatches {
                relative_zxid,
                data,
                exist,
                child,
                persistent,
                persistent_recursive,
                ..
            } => {
                self.set_watches(conn, relative_zxid, data, exist, child);
                for p in persistent {
                    self.watches.add(&p, conn, WatchKind::Persistent);
                }
                for p in persistent_recursive {
                    self.watches.add(&p, conn, WatchKind::PersistentRecursive);
                }
                Ok(Response::Empty)
            }
            _ => Err(KeeperError::Unimplemented),
        }
    }

    /// `DataTree.setWatches`: what changed since the client's zxid fires at once, the rest
    /// is registered.
    fn set_watches(
        &mut self,
        conn: u64,
        rel: i64,
        data: Vec<String>,
        exist: Vec<String>,
        child: Vec<String>,
    ) {
        let Some(tree) = self.tree.as_ref() else {
            return;
        };
        let mut now: Vec<WatchedEvent> = Vec::new();
        let ev = |kind, path: &str| WatchedEvent {
            kind,
            state: KeeperState::SyncConnected,
            path: path.to_string(),
        };
        let mut add: Vec<(String, WatchKind)> = Vec::new();
        for p in data {
            match tree.nodes.get(&p) {
                None => now.push(ev(EventType::NodeDeleted, &p)),
                Some(n) if n.stat.mzxid > rel => now.push(ev(EventType::NodeDataChanged, &p)),
                Some(_) => add.push((p, WatchKind::Data)),
            }
        }
        for p in exist {
            if tree.nodes.contains_key(&p) {
                now.push(ev(EventType::NodeCreated, &p));
            } else {
                add.push((p, WatchKind::Data));
            }
        }
        for p in child {
            match tree.nodes.get(&p) {
                None => now.push(ev(EventType::NodeDeleted, &p)),
                Some(n) if n.stat.pzxid > rel => now.push(ev(EventType::NodeChildrenChanged, &p)),
                Some(_) => add.push((p, WatchKind::Child)),
            }
        }
        for (p, k) in add {
            self.watches.add(&p, conn, k);
        }
        if let Some(c) = self.conns.get(&conn) {
            for e in now {
                let mut b = Vec::new();
                jute::encode_watch_event(&e, &mut b);
                let _ = c.out.send(b);
            }
        }
    }
}

/// The watch triggers of one (non-multi) txn on the tree before it, each with the ACL its
/// event is checked against: the node's own, the parent's for NodeChildrenChanged.
fn triggers(
    tree: &ZkTree,
    hdr: &TxnHeader,
    txn: &ZkTxn,
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
        ZkTxn::Create { path, acl, .. } => {
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
        ZkTxn::Delete { path } => deleted(path, out),
        ZkTxn::SetData { path, .. } => {
            if let Some(n) = tree.nodes.get(path) {
                out.push((t(path, EventType::NodeDataChanged), n.acl.clone()));
            }
        }
        ZkTxn::CloseSession { paths } => {
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
    let reaper = shared.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(250));
            lock(&reaper).expire(Instant::now());
        }
    });
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
    let conn = lock(&shared).connect(&req, held, tx);
    let Some(conn) = conn else {
        return; // the sender dropped: the writer sends what it has, then shuts the socket
    };
    let timeout = {
        let g = lock(&shared);
        let t = g.conns.get(&conn).and_then(|c| g.sessions.get(&c.session));
        t.map_or(30_000, |t| t.timeout_ms.max(1) as u64)
    };
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
        let mut g = lock(&shared);
        if !g.conns.contains_key(&conn) || !g.request(conn, xid, req) {
            g.close(conn);
            return;
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
    use crate::zookeeper::records::{CreateKind, StatPersisted};
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

    fn create(path: &str, acl: Vec<Acl>, ephemeral: bool) -> ZkTxn {
        ZkTxn::Create {
            path: path.into(),
            data: Some(b"x".to_vec()),
            acl,
            kind: CreateKind::Plain { ephemeral },
            parent_cversion: 1,
        }
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
        t.process(&hdr(2, 0), &create("/a", secret.clone(), false));
        t.process(&hdr(3, 7), &create("/a/e", Acl::open_unsafe(), true));
        let mut out = Vec::new();
        triggers(
            &t,
            &hdr(4, 7),
            &ZkTxn::CloseSession { paths: None },
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
        g.synced(&t);
        let bad = ZkTxn::Multi(vec![
            (op::CREATE, create("/b", Acl::open_unsafe(), false)),
            (op::ERROR, ZkTxn::Error { err: -110 }),
        ]);
        g.applied(&hdr(4, 0), &bad);
        assert_eq!(g.zxid(), 4);
        assert!(!g.tree.as_ref().is_some_and(|t| t.nodes.contains_key("/b")));
        let good = ZkTxn::Multi(vec![
            (op::CREATE, create("/b", Acl::open_unsafe(), false)),
            (op::CREATE, create("/b/c", Acl::open_unsafe(), false)),
        ]);
        g.applied(&hdr(5, 0), &good);
        assert_eq!(descendants(g.tree.as_ref().expect("synced"), "/b"), 1);
        g.lost();
        assert_eq!(g.zxid(), 0);
    }
}
