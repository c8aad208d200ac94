//! Simulated ZooKeeper clients. Each one keeps a session alive the way the Java client does
//! (pings when idle for a third of the timeout, gives a server up after two thirds of it,
//! reconnects elsewhere carrying its session id, password and lastZxidSeen, re-registers its
//! watches with setWatches), runs a role (a random mix or a recipe), and checks every reply
//! against the committed history the moment it arrives.

use crate::check::{Claim, Reference, Violation, normalize, violation};
use crate::params::{Mix, Params, Role};
use crate::rng::SimRng;
use ensemble_core::proto::{
    Acl, ConnectRequest, ConnectResponse, CreateMode, CreateOp, EventType, KeeperError, MultiOp,
    OpResult, Reply, Request, Response, SessionId, WatchedEvent,
};
use ensemble_core::server::ConnId;
use ensemble_core::txn::ServerId;
use ensemble_core::zxid::Zxid;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub const PING_XID: i32 = -2;
pub const SET_WATCHES_XID: i32 = -8;
/// ZooKeeper's xid for `addauth`.
pub const AUTH_XID: i32 = -4;
/// What the `admin` role authenticates with; every server's `superDigest` is its digest.
pub const SUPER_AUTH: &str = "super:sim-secret";

/// What a client asks the world to do.
#[derive(Debug)]
pub enum ClientOut {
    Open {
        conn: ConnId,
        server: ServerId,
        request: ConnectRequest,
    },
    Send {
        conn: ConnId,
        xid: i32,
        request: Request,
    },
    /// The client drops the connection (the server sees it close).
    Close {
        conn: ConnId,
    },
    /// A protected action on the lock recipe's external resource.
    Resource {
        token: i64,
        fenced: bool,
    },
    Note(String),
}

/// Facts every client shares: the record of acknowledged writes.
#[derive(Default)]
pub struct Shared {
    pub next_conn: ConnId,
    /// The highest zxid acknowledged to any client so far.
    pub max_acked: i64,
    /// Every acknowledged write's zxid (checked against later leaders' histories).
    pub acked: Vec<Zxid>,
    pub ops: Vec<OpRecord>,
    /// Sessions the clients were told had expired, with when.
    pub expired: BTreeMap<SessionId, u64>,
    pub ok_writes: u64,
    pub ok_reads: u64,
    pub unknown: u64,
    pub errors: u64,
    /// Completion times of successful writes (for the unavailability window).
    pub last_write_ok: u64,
    pub max_write_gap: u64,
    /// Names the naming recipe was given, with the client.
    pub names: BTreeMap<String, usize>,
    pub name_violation: Option<String>,
    /// A recipe claim broken inside a role callback (reported by the world).
    pub recipe_violation: Option<Violation>,
}

/// One client operation as the history keeps it.
#[derive(Clone, Debug)]
pub struct OpRecord {
    pub client: usize,
    pub session: SessionId,
    pub xid: i32,
    pub request: Request,
    pub invoked: u64,
    pub done: Option<u64>,
    /// (reply zxid, reply), or None: unknown outcome (connection lost first).
    pub result: Option<(i64, Reply)>,
    /// For replies after a successful sync in the same session: when the last such sync was
    /// invoked (set when the reply arrives: a read pipelined behind its sync counts, a read
    /// after a sync that failed does not).
    pub synced_since: Option<u64>,
}

pub struct Ctx<'a> {
    pub now: u64,
    pub rng: &'a mut SimRng,
    pub out: &'a mut Vec<ClientOut>,
    pub reference: &'a Reference,
    pub shared: &'a mut Shared,
    pub servers: &'a [ServerId],
    pub params: &'a Params,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchClass {
    /// getData / exists on an existing node.
    Data,
    /// exists on a missing node (fires on creation).
    Exist,
    Child,
}

impl WatchClass {
    fn kinds(self) -> &'static [EventType] {
        match self {
            WatchClass::Data | WatchClass::Exist => &[
                EventType::NodeCreated,
                EventType::NodeDeleted,
                EventType::NodeDataChanged,
            ],
            WatchClass::Child => &[EventType::NodeChildrenChanged, EventType::NodeDeleted],
        }
    }
}

#[derive(Clone, Debug)]
pub struct Session {
    pub id: SessionId,
    pub passwd: Vec<u8>,
    pub timeout: u64,
}

#[derive(Clone, Debug)]
pub struct Conn {
    pub id: ConnId,
    pub server: ServerId,
    pub established: bool,
    pub opened_at: u64,
}

#[derive(Clone, Debug)]
struct Pending {
    xid: i32,
    request: Request,
    invoked: u64,
    /// max acknowledged zxid when invoked (real-time order, sync floors).
    floor: i64,
    op: usize,
    /// How many identities the client had added when it sent this.
    auths: usize,
}

pub struct Client {
    pub idx: usize,
    pub role: RoleState,
    pub requested_timeout: u64,
    pub session: Option<Session>,
    pub conn: Option<Conn>,
    pub last_zxid_seen: i64,
    next_xid: i32,
    pending: VecDeque<Pending>,
    pings_out: u32,
    set_watches_out: bool,
    pub watches: BTreeMap<(String, WatchClass), Zxid>,
    /// Copies of the last event that may still come (one per watch type it cleared).
    extra_events: BTreeMap<(String, EventType), usize>,
    /// Highest reply zxid this session saw (monotonic reads, read-your-writes).
    seen_floor: i64,
    /// Every reply after a completed sync must be at least this.
    sync_floor: i64,
    /// When the session's last successful sync was invoked.
    synced_at: Option<u64>,
    last_write_zxid: i64,
    last_heard: u64,
    last_sent: u64,
    pub retry_at: u64,
    pub paused_until: Option<u64>,
    pub dead: bool,
    pub wake_token: u64,
    pub wake_at: u64,
    /// An asynchronous client's pipeline depth (see `Params::async_clients`).
    pipeline: Option<usize>,
    /// Identities added (addAuth sent) in this session, in order: credentials and the digest
    /// ids ACLs name them by. Sent again on every new connection, as the Java client does.
    auth_creds: Vec<Vec<u8>>,
    pub auth_ids: Vec<String>,
    /// Persistent watches: path -> (persistent, persistent-recursive).
    persistent: BTreeMap<String, (bool, bool)>,
}

/// Paths of the random mix.
fn key(i: u32) -> String {
    format!("/k{i}")
}

impl Client {
    pub fn new(idx: usize, role: &Role, rng: &mut SimRng, params: &Params) -> Client {
        let (lo, hi) = params.session_timeout_ms;
        Client {
            idx,
            role: RoleState::new(role),
            requested_timeout: rng.range(lo, hi),
            session: None,
            conn: None,
            last_zxid_seen: 0,
            next_xid: 1,
            pending: VecDeque::new(),
            pings_out: 0,
            set_watches_out: false,
            watches: BTreeMap::new(),
            extra_events: BTreeMap::new(),
            seen_floor: 0,
            sync_floor: 0,
            synced_at: None,
            last_write_zxid: 0,
            last_heard: 0,
            last_sent: 0,
            retry_at: 0,
            paused_until: None,
            dead: false,
            wake_token: 0,
            wake_at: 0,
            pipeline: params
                .async_clients
                .contains(&idx)
                .then_some(params.async_pipeline.max(1)),
            auth_creds: Vec::new(),
            auth_ids: Vec::new(),
            persistent: BTreeMap::new(),
        }
    }

    /// The request at the front of the pipeline, if its xid is `xid` (what a reply answers).
    pub fn pending_request(&self, xid: i32) -> Option<&Request> {
        self.pending
            .front()
            .filter(|p| p.xid == xid)
            .map(|p| &p.request)
    }

    pub fn session_id(&self) -> SessionId {
        self.session.as_ref().map(|s| s.id).unwrap_or(0)
    }

    fn timeout(&self) -> u64 {
        self.session
            .as_ref()
            .map(|s| s.timeout)
            .unwrap_or(self.requested_timeout)
            .max(1)
    }

    pub fn user_pending(&self) -> usize {
        self.pending.len()
    }

    /// The oldest outstanding request's invocation time.
    pub fn oldest_pending(&self) -> Option<u64> {
        self.pending.front().map(|p| p.invoked)
    }

    pub fn is_connected(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.established)
    }

    /// Time passed: connect, ping, give up on a silent server, or issue the role's next op.
    /// Returns when to wake next.
    pub fn wake(&mut self, cx: &mut Ctx, issue: bool) -> Result<u64, Violation> {
        let now = cx.now;
        if self.dead {
            return Ok(u64::MAX);
        }
        let timeout = self.timeout();
        if issue && let RoleState::Lock(l) = &mut self.role {
            l.act(cx);
        }
        match &self.conn {
            None => {
                if now >= self.retry_at {
                    self.connect(cx);
                }
            }
            Some(c) if !c.established => {
                // The Java client waits sessionTimeout / (number of servers) for a handshake;
                // a new session is a txn through the quorum (an fsync and four network hops),
                // which on this simulated network can take longer than that, so wait as long as
                // for any other reply.
                let connect_timeout = (timeout * 2 / 3).max(50);
                if now.saturating_sub(c.opened_at) >= connect_timeout {
                    cx.out.push(ClientOut::Note(format!(
                        "connect to {} timed out",
                        c.server
                    )));
                    self.lose_connection(cx, "connect timeout")?;
                }
            }
            Some(_) => {
                let read_timeout = timeout * 2 / 3;
                if now.saturating_sub(self.last_heard) >= read_timeout {
                    self.lose_connection(cx, "read timeout")?;
                } else {
                    if now.saturating_sub(self.last_sent) >= timeout / 3 && self.pings_out == 0 {
                        self.send(cx, PING_XID, Request::Ping);
                        self.pings_out += 1;
                    }
                    if issue && !self.set_watches_out {
                        let mix = matches!(self.role, RoleState::Random(_) | RoleState::Reader(_));
                        let acl = matches!(self.role, RoleState::Acl(_));
                        let (max, per_wake) = match (mix, self.pipeline) {
                            (true, Some(depth)) => (depth, 1),
                            (true, None) => (cx.params.max_outstanding, usize::MAX),
                            // a few in flight, so that an addAuth has some around it
                            (false, _) if acl => (3, 1),
                            (false, _) => (1, 1),
                        };
                        let mut issued = 0;
                        // a sync's read goes with it; requests right after an addAuth too
                        while self.pending.len() < max
                            && (issued < per_wake
                                || self.role.read_after_sync()
                                || self.role.take_burst())
                        {
                            issued += 1;
                            let sid = self.session_id();
                            let Some(req) = self.role.next(self.idx, sid, cx) else {
                                break;
                            };
                            if let Request::Auth { auth, .. } = req {
                                self.add_auth(cx, auth);
                                continue;
                            }
                            self.issue(cx, req);
                        }
                    }
                }
            }
        }
        // next wake: a think time, bounded by the next ping and timeout checks
        let (lo, hi) = cx.params.think_ms;
        let think = cx.rng.range(lo, hi).max(1);
        let ping_due = (timeout / 3).max(1);
        Ok(now
            + think
                .min(ping_due)
                .min(self.role.wake_hint(now).unwrap_or(u64::MAX)))
    }

    fn connect(&mut self, cx: &mut Ctx) {
        let server = *cx.rng.pick(cx.servers).unwrap_or(&1);
        cx.shared.next_conn += 1;
        let conn = cx.shared.next_conn;
        let (session_id, passwd) = match &self.session {
            Some(s) => (s.id, s.passwd.clone()),
            None => (0, vec![0u8; 16]),
        };
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid_seen,
            timeout_ms: self.requested_timeout as i32,
            session_id,
            passwd,
            read_only: Some(false),
        };
        self.conn = Some(Conn {
            id: conn,
            server,
            established: false,
            opened_at: cx.now,
        });
        self.last_heard = cx.now;
        self.last_sent = cx.now;
        cx.out.push(ClientOut::Open {
            conn,
            server,
            request,
        });
    }

    fn send(&mut self, cx: &mut Ctx, xid: i32, request: Request) {
        if let Some(c) = &self.conn {
            self.last_sent = cx.now;
            cx.out.push(ClientOut::Send {
                conn: c.id,
                xid,
                request,
            });
        }
    }

    /// addAuth: not a request in the session's order (ZooKeeper answers it out of band).
    fn add_auth(&mut self, cx: &mut Ctx, cred: Vec<u8>) {
        let text = String::from_utf8_lossy(&cred).to_string();
        let id = ensemble_core::acl::digest_id(&text);
        cx.out.push(ClientOut::Note(format!(
            "addAuth digest {} ({} requests in flight)",
            text.split(':').next().unwrap_or_default(),
            self.pending.len()
        )));
        self.auth_creds.push(cred.clone());
        self.auth_ids.push(id);
        self.send_auth(cx, cred);
    }

    /// An auth packet (`addauth digest`), with the xid ZooKeeper's clients give it.
    fn send_auth(&mut self, cx: &mut Ctx, cred: Vec<u8>) {
        let req = Request::Auth {
            scheme: "digest".into(),
            auth: cred,
        };
        self.send(cx, AUTH_XID, req);
    }

    /// Does a persistent watch of this client cover the event?
    fn persistent_covers(&self, ev: &WatchedEvent) -> bool {
        self.persistent.iter().any(|(w, (plain, recursive))| {
            let under = w == "/"
                || (ev.path.starts_with(w.as_str())
                    && ev.path.as_bytes().get(w.len()) == Some(&b'/'));
            (*plain && *w == ev.path)
                || (*recursive
                    && ev.kind != EventType::NodeChildrenChanged
                    && (*w == ev.path || under))
        })
    }

    fn issue(&mut self, cx: &mut Ctx, request: Request) {
        let xid = self.next_xid;
        self.next_xid += 1;
        let op = cx.shared.ops.len();
        cx.shared.ops.push(OpRecord {
            client: self.idx,
            session: self.session_id(),
            xid,
            request: request.clone(),
            invoked: cx.now,
            done: None,
            result: None,
            synced_since: None,
        });
        self.pending.push_back(Pending {
            xid,
            request: request.clone(),
            invoked: cx.now,
            floor: cx.shared.max_acked,
            op,
            auths: self.auth_ids.len(),
        });
        self.send(cx, xid, request);
    }

    /// The connection broke or timed out: outstanding requests end with unknown outcome.
    pub fn lose_connection(&mut self, cx: &mut Ctx, why: &str) -> Result<(), Violation> {
        if let Some(c) = self.conn.take() {
            cx.out.push(ClientOut::Close { conn: c.id });
            cx.out.push(ClientOut::Note(format!(
                "connection to {} lost ({why})",
                c.server
            )));
        }
        self.fail_pending(cx);
        self.pings_out = 0;
        self.set_watches_out = false;
        // ZooKeeper's client waits a little before trying the next server.
        self.retry_at = cx.now + cx.rng.range(0, 100);
        let sid = self.session_id();
        self.role.on_disconnected(sid);
        Ok(())
    }

    fn fail_pending(&mut self, cx: &mut Ctx) {
        while let Some(p) = self.pending.pop_front() {
            let rec = &mut cx.shared.ops[p.op];
            rec.done = Some(cx.now);
            if p.request.is_write() {
                cx.shared.unknown += 1;
            }
            self.role.on_result(
                &p.request,
                &Err(KeeperError::ConnectionLoss),
                0,
                self.idx,
                cx,
            );
        }
    }

    /// The session is gone (expired, or closed by us): a new one will be made.
    fn end_session(&mut self, cx: &mut Ctx, expired: bool) {
        if let Some(s) = self.session.take() {
            if expired {
                cx.shared.expired.insert(s.id, cx.now);
            }
            cx.out.push(ClientOut::Note(format!(
                "session 0x{:x} {}",
                s.id,
                if expired { "expired" } else { "closed" }
            )));
        }
        self.fail_pending(cx);
        self.watches.clear();
        self.persistent.clear();
        self.auth_creds.clear();
        self.auth_ids.clear();
        self.seen_floor = 0;
        self.sync_floor = 0;
        self.synced_at = None;
        self.last_write_zxid = 0;
        self.role.on_session_end();
    }

    pub fn on_connected(&mut self, cx: &mut Ctx, r: ConnectResponse) -> Result<(), Violation> {
        self.last_heard = cx.now;
        if r.timeout_ms <= 0 || r.session_id == 0 {
            // ZooKeeper's way to say the session expired; the server closes the connection.
            self.end_session(cx, true);
            if let Some(c) = self.conn.take() {
                cx.out.push(ClientOut::Close { conn: c.id });
            }
            self.retry_at = cx.now;
            return Ok(());
        }
        let same = self.session.as_ref().is_some_and(|s| s.id == r.session_id);
        if !same && self.session.is_some() {
            return Err(violation(
                Claim::ClientSession,
                cx.now,
                format!(
                    "client {} reconnected with session 0x{:x} and got session 0x{:x}",
                    self.idx,
                    self.session_id(),
                    r.session_id
                ),
            ));
        }
        self.session = Some(Session {
            id: r.session_id,
            passwd: r.passwd,
            timeout: r.timeout_ms as u64,
        });
        if let Some(c) = &mut self.conn {
            c.established = true;
        }
        self.extra_events.clear();
        // Authentication belongs to the connection: the client sends it again on each one,
        // before anything else (as ZooKeeper's client replays its auth info).
        if matches!(self.role, RoleState::Admin(_)) {
            self.send_auth(cx, SUPER_AUTH.as_bytes().to_vec());
            // what the ACL claims judge this client's requests with
            let id = ensemble_core::acl::digest_id(SUPER_AUTH);
            if !self.auth_ids.contains(&id) {
                self.auth_ids.push(id);
            }
        }
        if same && (!self.watches.is_empty() || !self.persistent.is_empty()) {
            let mut data = BTreeSet::new();
            let mut exist = BTreeSet::new();
            let mut child = BTreeSet::new();
            for (path, class) in self.watches.keys() {
                match class {
                    WatchClass::Data => data.insert(path.clone()),
                    WatchClass::Exist => exist.insert(path.clone()),
                    WatchClass::Child => child.insert(path.clone()),
                };
            }
            let req = Request::SetWatches {
                relative_zxid: self.last_zxid_seen,
                data: data.into_iter().collect(),
                exist: exist.into_iter().collect(),
                child: child.into_iter().collect(),
                persistent: self
                    .persistent
                    .iter()
                    .filter(|(_, w)| w.0)
                    .map(|(p, _)| p.clone())
                    .collect(),
                persistent_recursive: self
                    .persistent
                    .iter()
                    .filter(|(_, w)| w.1)
                    .map(|(p, _)| p.clone())
                    .collect(),
                v2: !self.persistent.is_empty(),
            };
            self.set_watches_out = true;
            self.send(cx, SET_WATCHES_XID, req);
        }
        if same {
            // the identities go again on the new connection, after setWatches (as the Java
            // client's primeConnection sends them)
            for cred in self.auth_creds.clone() {
                self.send_auth(cx, cred);
            }
        }
        if !same {
            let sid = r.session_id;
            self.role.on_new_session(sid);
            if let RoleState::Acl(a) = &mut self.role {
                a.on_new_session(cx.rng);
            }
        }
        Ok(())
    }

    /// A reply arrived on the current connection.
    pub fn on_reply(
        &mut self,
        cx: &mut Ctx,
        xid: i32,
        zxid: i64,
        reply: Reply,
    ) -> Result<(), Violation> {
        self.last_heard = cx.now;
        let now = cx.now;
        let sid = self.session_id();
        let is_write = self
            .pending
            .front()
            .is_some_and(|p| p.xid == xid && p.request.is_write());
        if zxid > 0 && is_write && zxid < self.seen_floor {
            return Err(violation(
                Claim::ClientFifo,
                now,
                format!(
                    "client {} session 0x{sid:x}: write xid {xid} committed at {}, yet an earlier request of this session was answered at {}: that earlier request saw this later write",
                    self.idx,
                    Zxid(zxid as u64),
                    Zxid(self.seen_floor as u64)
                ),
            ));
        }
        if zxid > 0 {
            if zxid < self.seen_floor {
                return Err(violation(
                    Claim::ClientMonotonicReads,
                    now,
                    format!(
                        "client {} session 0x{sid:x}: reply xid {xid} at zxid {} after it had seen {}",
                        self.idx,
                        Zxid(zxid as u64),
                        Zxid(self.seen_floor as u64)
                    ),
                ));
            }
            if zxid < self.sync_floor {
                return Err(violation(
                    Claim::ClientSyncRead,
                    now,
                    format!(
                        "client {} session 0x{sid:x}: after sync, reply xid {xid} at zxid {} misses writes acknowledged through {} before the sync",
                        self.idx,
                        Zxid(zxid as u64),
                        Zxid(self.sync_floor as u64)
                    ),
                ));
            }
            if xid == SET_WATCHES_XID {
                // A watch for a node's creation may be missed if the node was created and
                // deleted while the client was away (ZooKeeper's documented exception):
                // re-base those before judging.
                let z = Zxid(zxid as u64);
                for ((path, class), reg) in self.watches.iter_mut() {
                    if *class == WatchClass::Exist && cx.reference.node_at(path, z).is_none() {
                        *reg = (*reg).max(z);
                    }
                }
            }
            self.check_watches(cx, Zxid(zxid as u64), xid)?;
            self.seen_floor = zxid;
            self.last_zxid_seen = self.last_zxid_seen.max(zxid);
        }
        if xid == PING_XID {
            self.pings_out = self.pings_out.saturating_sub(1);
            return Ok(());
        }
        if xid == SET_WATCHES_XID {
            self.set_watches_out = false;
            return Ok(());
        }
        if xid == AUTH_XID {
            if let Err(e) = &reply {
                if matches!(self.role, RoleState::Admin(_)) {
                    return Err(violation(
                        Claim::ClientSuperUser,
                        now,
                        format!(
                            "client {} session 0x{sid:x}: addauth as the super user failed: {e:?}",
                            self.idx
                        ),
                    ));
                }
                cx.out
                    .push(ClientOut::Note(format!("addAuth refused: {e:?}")));
            }
            return Ok(());
        }
        let Some(front) = self.pending.front() else {
            return Err(violation(
                Claim::ClientFifo,
                now,
                format!("client {} got a reply to xid {xid} it never sent", self.idx),
            ));
        };
        if front.xid != xid {
            return Err(violation(
                Claim::ClientFifo,
                now,
                format!(
                    "client {} session 0x{sid:x}: reply to xid {xid} before the reply to xid {}",
                    self.idx, front.xid
                ),
            ));
        }
        let p = self.pending.pop_front().expect("front exists");
        self.check_reply(cx, &p, zxid, &reply)?;
        {
            let rec = &mut cx.shared.ops[p.op];
            rec.done = Some(now);
            rec.result = Some((zxid, reply.clone()));
            rec.synced_since = self.synced_at;
        }
        if reply.is_ok() {
            if p.request.is_write() {
                cx.shared.ok_writes += 1;
            } else {
                cx.shared.ok_reads += 1;
            }
        } else {
            cx.shared.errors += 1;
        }
        // register watches the read asked for, at the state it saw
        let z = Zxid(zxid.max(0) as u64);
        let reg = |w: &mut BTreeMap<(String, WatchClass), Zxid>, path: &str, c: WatchClass| {
            let e = w.entry((path.to_string(), c)).or_insert(z);
            *e = (*e).min(z);
        };
        match (&p.request, &reply) {
            (Request::GetData { path, watch: true }, Ok(_))
            | (Request::Exists { path, watch: true }, Ok(_)) => {
                reg(&mut self.watches, path, WatchClass::Data)
            }
            (Request::Exists { path, watch: true }, Err(KeeperError::NoNode)) => {
                reg(&mut self.watches, path, WatchClass::Exist)
            }
            (Request::GetChildren { path, watch: true }, Ok(_))
            | (Request::GetChildren2 { path, watch: true }, Ok(_)) => {
                reg(&mut self.watches, path, WatchClass::Child)
            }
            (Request::AddWatch { path, mode }, Ok(_)) => {
                let w = self.persistent.entry(path.clone()).or_default();
                match mode {
                    ensemble_core::proto::AddWatchMode::Persistent => w.0 = true,
                    ensemble_core::proto::AddWatchMode::PersistentRecursive => w.1 = true,
                }
            }
            _ => {}
        }
        if matches!(p.request, Request::CloseSession) && reply.is_ok() {
            self.end_session(cx, false);
            if let Some(c) = self.conn.take() {
                cx.out.push(ClientOut::Close { conn: c.id });
            }
            self.retry_at = now + cx.rng.range(10, 500);
            return Ok(());
        }
        let idx = self.idx;
        self.role.on_result(&p.request, &reply, zxid, idx, cx);
        Ok(())
    }

    fn check_reply(
        &mut self,
        cx: &mut Ctx,
        p: &Pending,
        zxid: i64,
        reply: &Reply,
    ) -> Result<(), Violation> {
        let now = cx.now;
        let sid = self.session_id();
        let z = Zxid(zxid.max(0) as u64);
        let sent = &self.auth_ids[..p.auths.min(self.auth_ids.len())];
        let ids = crate::check::acl::Identities {
            sent,
            now: &self.auth_ids,
        };
        crate::check::acl::check_reply(
            self.idx,
            &p.request,
            (reply, zxid),
            &ids,
            cx.reference,
            now,
        )?;
        if p.request.is_write() && !matches!(p.request, Request::CloseSession) {
            let info = cx.reference.txns.get(&z);
            let mine = info.is_some_and(|t| t.session == sid && t.cxid == p.xid);
            if reply.is_ok() && !mine {
                return Err(violation(
                    Claim::ClientWriteResult,
                    now,
                    format!(
                        "client {} session 0x{sid:x} xid {}: write acknowledged at zxid {z} but the committed txn there is {:?}",
                        self.idx,
                        p.xid,
                        info.map(|t| (format!("0x{:x}", t.session), t.cxid))
                    ),
                ));
            }
            if mine {
                let expected = info.and_then(|t| t.reply.clone());
                if let Some(exp) = expected
                    && normalize(&exp) != normalize(reply)
                {
                    return Err(violation(
                        Claim::ClientWriteResult,
                        now,
                        format!(
                            "client {} xid {} {:?}: reply {:?} but the committed txn {z} gives {:?}",
                            self.idx, p.xid, p.request, reply, exp
                        ),
                    ));
                }
                if zxid <= p.floor {
                    return Err(violation(
                        Claim::ClientLinearizableWrites,
                        now,
                        format!(
                            "client {} xid {}: write committed at {z}, before {} which was acknowledged before this write began",
                            self.idx,
                            p.xid,
                            Zxid(p.floor as u64)
                        ),
                    ));
                }
                if zxid <= self.last_write_zxid {
                    return Err(violation(
                        Claim::ClientFifo,
                        now,
                        format!(
                            "client {} session 0x{sid:x}: write xid {} at {z} ordered before its earlier write at {}",
                            self.idx,
                            p.xid,
                            Zxid(self.last_write_zxid as u64)
                        ),
                    ));
                }
                self.last_write_zxid = zxid;
                if zxid > cx.shared.max_acked {
                    cx.shared.max_acked = zxid;
                }
                cx.shared.acked.push(z);
                if cx.shared.last_write_ok > 0 {
                    let gap = now - cx.shared.last_write_ok;
                    cx.shared.max_write_gap = cx.shared.max_write_gap.max(gap);
                }
                cx.shared.last_write_ok = now;
            }
        } else if matches!(p.request, Request::Sync { .. }) && reply.is_ok() {
            self.sync_floor = self.sync_floor.max(p.floor);
            self.synced_at = self.synced_at.max(Some(p.invoked));
        } else if let Some(expected) = cx.reference.expected_read(&p.request, z) {
            let got = normalize(reply);
            let relevant = matches!(got, Ok(_) | Err(KeeperError::NoNode));
            if relevant && got != expected {
                return Err(violation(
                    Claim::ClientReadValue,
                    now,
                    format!(
                        "client {} {:?} answered {:?} at zxid {z}, but the committed state there is {:?}",
                        self.idx, p.request, got, expected
                    ),
                ));
            }
        }
        Ok(())
    }

    /// No registered watch may lag behind what the client has seen.
    fn check_watches(&self, cx: &Ctx, seen: Zxid, xid: i32) -> Result<(), Violation> {
        for ((path, class), reg) in &self.watches {
            if let Some((zc, kind)) = cx.reference.first_trigger_after(path, *reg, class.kinds())
                && zc <= seen
            {
                return Err(violation(
                    Claim::ClientWatchMissed,
                    cx.now,
                    format!(
                        "client {} watch {class:?} on {path} (set at {reg}): {kind:?} committed at {zc}, yet the client got reply xid {xid} at {seen} without the event",
                        self.idx
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn on_watch(&mut self, cx: &mut Ctx, ev: WatchedEvent) -> Result<(), Violation> {
        self.last_heard = cx.now;
        if ev.kind == EventType::None {
            return Ok(());
        }
        crate::check::acl::check_event(self.idx, &ev, &self.auth_ids, cx.reference, cx.now)?;
        let mut matched = Vec::new();
        for ((path, class), reg) in &self.watches {
            if *path == ev.path && class.kinds().contains(&ev.kind) {
                matched.push(((path.clone(), *class), *reg));
            }
        }
        if matched.is_empty() && self.persistent_covers(&ev) {
            let sid = self.session_id();
            self.role.on_watch(&ev, sid);
            return Ok(());
        }
        if matched.is_empty() {
            // setWatches answers each watch type on its own, as ZooKeeper does: a deleted node
            // watched for data and children gives two NodeDeleted events, and ZooKeeper's
            // client hands the second to nobody. Allow exactly that many extra copies.
            if let Some(n) = self.extra_events.get_mut(&(ev.path.clone(), ev.kind))
                && *n > 0
            {
                *n -= 1;
                return Ok(());
            }
            return Err(violation(
                Claim::ClientWatchOnce,
                cx.now,
                format!(
                    "client {} got {:?} on {} with no watch set there (fired twice, or never set)",
                    self.idx, ev.kind, ev.path
                ),
            ));
        }
        self.extra_events
            .insert((ev.path.clone(), ev.kind), matched.len() - 1);
        for ((path, class), reg) in &matched {
            if cx
                .reference
                .first_trigger_after(path, *reg, class.kinds())
                .is_none()
            {
                return Err(violation(
                    Claim::ClientWatchOnce,
                    cx.now,
                    format!(
                        "client {} got {:?} on {path} but nothing changed there after the watch was set at {reg}",
                        self.idx, ev.kind
                    ),
                ));
            }
            self.watches.remove(&(path.clone(), *class));
        }
        let sid = self.session_id();
        self.role.on_watch(&ev, sid);
        Ok(())
    }

    /// The server closed the connection (after sending what it had queued).
    pub fn on_closed(&mut self, cx: &mut Ctx) -> Result<(), Violation> {
        self.conn = None;
        self.lose_connection(cx, "closed by server")
    }

    /// A fresh client process in place of a crashed one: new session, no state.
    pub fn reincarnate(&mut self) {
        self.session = None;
        self.conn = None;
        self.pending.clear();
        self.watches.clear();
        self.persistent.clear();
        self.auth_creds.clear();
        self.auth_ids.clear();
        self.pings_out = 0;
        self.set_watches_out = false;
        self.seen_floor = 0;
        self.sync_floor = 0;
        self.synced_at = None;
        self.last_write_zxid = 0;
        self.last_zxid_seen = 0;
        self.dead = false;
        self.role.on_session_end();
    }

    /// Ask to close the session politely.
    pub fn close_session(&mut self, cx: &mut Ctx) {
        if self.is_connected() && self.pending.is_empty() {
            self.issue(cx, Request::CloseSession);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Roles

pub enum RoleState {
    Random(RandomRole),
    Reader(RandomRole),
    Lock(LockRole),
    Election(LockRole),
    Member(MemberRole),
    Monitor(WatchRole),
    ConfigWriter(WriterRole),
    ConfigReader(WatchRole),
    Naming(NamingRole),
    Acl(crate::check::acl::AclRole),
    Admin(AdminRole),
}

/// The super user's node `/adm<idx>`: created with an ACL that grants nothing to anyone, then
/// read, written, its ACL read, deleted and created again.
pub struct AdminRole {
    n: u64,
    exists: bool,
    in_flight: bool,
}

/// An ACL no client can pass: only the super user may touch the node.
fn nobody_acl() -> Vec<Acl> {
    vec![Acl {
        perms: ensemble_core::proto::perms::ALL,
        id: ensemble_core::proto::Id::new(
            "digest",
            &ensemble_core::acl::digest_id("nobody:no-password"),
        ),
    }]
}

#[derive(Default)]
pub struct RandomRole {
    n: u64,
    versions: BTreeMap<String, i32>,
    children: BTreeMap<String, Vec<String>>,
    /// The read to send right after a sync.
    after_sync: Option<Request>,
    /// Reads only (the `reader` role).
    reader: bool,
}

/// Lock and election share the ephemeral-sequential queue mechanics.
pub struct LockRole {
    pub fenced: bool,
    pub election: bool,
    parent: &'static str,
    pub phase: LockPhase,
    pub my_node: Option<String>,
    pub token: i64,
    in_flight: bool,
    pred: Option<String>,
    wait_sent: bool,
    actions_left: u32,
    next_at: u64,
    pub acquisitions: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockPhase {
    EnsureParent,
    Create,
    List,
    /// Waiting for the predecessor's deletion.
    Wait,
    Holding,
    Release,
    Idle,
}

pub struct MemberRole {
    parent_ok: bool,
    registered: bool,
    in_flight: bool,
}

/// Watches one path (data or children) and keeps the last view.
pub struct WatchRole {
    path: &'static str,
    children: bool,
    pub view: Option<Reply>,
    pub view_zxid: i64,
    stale: bool,
    in_flight: bool,
}

pub struct WriterRole {
    n: u64,
    created: bool,
    in_flight: bool,
    next_at: u64,
}

pub struct NamingRole {
    parent_ok: bool,
    in_flight: bool,
}

fn open_acl() -> Vec<Acl> {
    Acl::open_unsafe()
}

fn create(path: &str, data: Vec<u8>, mode: CreateMode, op: CreateOp) -> Request {
    Request::Create {
        op,
        path: path.to_string(),
        data,
        acl: open_acl(),
        mode,
        ttl: 0,
    }
}

/// ZooKeeper's sequential suffix, for ordering a recipe's queue.
fn seq_of(name: &str) -> u64 {
    name.rsplit('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX)
}

impl RoleState {
    pub fn new(role: &Role) -> RoleState {
        let lock = |fenced, election, parent| LockRole {
            fenced,
            election,
            parent,
            phase: LockPhase::EnsureParent,
            my_node: None,
            token: 0,
            in_flight: false,
            pred: None,
            wait_sent: false,
            actions_left: 0,
            next_at: 0,
            acquisitions: 0,
        };
        let watch = |path, children| WatchRole {
            path,
            children,
            view: None,
            view_zxid: 0,
            stale: true,
            in_flight: false,
        };
        match role {
            Role::Random => RoleState::Random(RandomRole::default()),
            Role::Reader => RoleState::Reader(RandomRole {
                reader: true,
                ..RandomRole::default()
            }),
            Role::Lock { fenced } => RoleState::Lock(lock(*fenced, false, "/lock")),
            Role::Election => RoleState::Election(lock(true, true, "/election")),
            Role::Member => RoleState::Member(MemberRole {
                parent_ok: false,
                registered: false,
                in_flight: false,
            }),
            Role::Monitor => RoleState::Monitor(watch("/members", true)),
            Role::ConfigWriter => RoleState::ConfigWriter(WriterRole {
                n: 0,
                created: false,
                in_flight: false,
                next_at: 0,
            }),
            Role::ConfigReader => RoleState::ConfigReader(watch("/config", false)),
            Role::Naming => RoleState::Naming(NamingRole {
                parent_ok: false,
                in_flight: false,
            }),
            Role::Acl => RoleState::Acl(crate::check::acl::AclRole::new()),
            Role::Admin => RoleState::Admin(AdminRole {
                n: 0,
                exists: false,
                in_flight: false,
            }),
        }
    }

    pub fn is_lock_holder(&self) -> bool {
        // a holder in the middle of its critical section (it still has actions to do)
        matches!(self, RoleState::Lock(l) if l.phase == LockPhase::Holding && l.actions_left > 0)
    }

    /// Roles that only read, to follow changes.
    pub fn is_reactive(&self) -> bool {
        matches!(self, RoleState::Monitor(_) | RoleState::ConfigReader(_))
    }

    pub fn is_master(&self) -> bool {
        matches!(self, RoleState::Election(l) if l.phase == LockPhase::Holding)
    }

    /// Requests still to go right after an addAuth (taking one).
    fn take_burst(&mut self) -> bool {
        match self {
            RoleState::Acl(a) if a.burst > 0 => {
                a.burst -= 1;
                true
            }
            _ => false,
        }
    }

    /// A sync was issued and its read is still to go.
    fn read_after_sync(&self) -> bool {
        matches!(self, RoleState::Random(r) | RoleState::Reader(r) if r.after_sync.is_some())
    }

    fn wake_hint(&self, now: u64) -> Option<u64> {
        match self {
            RoleState::Lock(l) | RoleState::Election(l) if l.next_at > now => Some(l.next_at - now),
            RoleState::ConfigWriter(w) if w.next_at > now => Some(w.next_at - now),
            _ => None,
        }
    }

    /// The next request, if the role wants one now.
    fn next(&mut self, idx: usize, session: SessionId, cx: &mut Ctx) -> Option<Request> {
        let now = cx.now;
        match self {
            RoleState::Random(r) | RoleState::Reader(r) => r.next(idx, cx),
            RoleState::Lock(l) | RoleState::Election(l) => l.next(idx, session, cx),
            RoleState::Acl(a) => Some(a.next(idx, cx.rng)),
            RoleState::Member(m) => {
                if m.registered || m.in_flight {
                    return None;
                }
                m.in_flight = true;
                Some(if m.parent_ok {
                    create(
                        &format!("/members/c{idx}"),
                        vec![],
                        CreateMode::Ephemeral,
                        CreateOp::Create,
                    )
                } else {
                    create("/members", vec![], CreateMode::Persistent, CreateOp::Create)
                })
            }
            RoleState::Monitor(w) | RoleState::ConfigReader(w) => {
                if !w.stale || w.in_flight {
                    return None;
                }
                w.in_flight = true;
                Some(if w.children {
                    Request::GetChildren {
                        path: w.path.to_string(),
                        watch: true,
                    }
                } else {
                    Request::GetData {
                        path: w.path.to_string(),
                        watch: true,
                    }
                })
            }
            RoleState::ConfigWriter(w) => {
                if w.in_flight || now < w.next_at {
                    return None;
                }
                w.in_flight = true;
                w.n += 1;
                let data = format!("config-{}-{}", idx, w.n).into_bytes();
                Some(if w.created {
                    Request::SetData {
                        path: "/config".into(),
                        data,
                        version: -1,
                    }
                } else {
                    create("/config", data, CreateMode::Persistent, CreateOp::Create)
                })
            }
            RoleState::Admin(a) => {
                if a.in_flight {
                    return None;
                }
                a.in_flight = true;
                a.n += 1;
                let path = format!("/adm{idx}");
                Some(if !a.exists {
                    Request::Create {
                        op: CreateOp::Create,
                        path,
                        data: vec![],
                        acl: nobody_acl(),
                        mode: CreateMode::Persistent,
                        ttl: 0,
                    }
                } else {
                    match a.n % 5 {
                        0 => Request::Delete { path, version: -1 },
                        1 => Request::GetData { path, watch: false },
                        2 => Request::GetAcl { path },
                        _ => Request::SetData {
                            path,
                            data: format!("admin-{idx}-{}", a.n).into_bytes(),
                            version: -1,
                        },
                    }
                })
            }
            RoleState::Naming(n) => {
                if n.in_flight {
                    return None;
                }
                n.in_flight = true;
                Some(if n.parent_ok {
                    create(
                        "/names/n-",
                        format!("c{idx}").into_bytes(),
                        CreateMode::PersistentSequential,
                        CreateOp::Create,
                    )
                } else {
                    create("/names", vec![], CreateMode::Persistent, CreateOp::Create)
                })
            }
        }
    }

    fn on_result(&mut self, req: &Request, reply: &Reply, zxid: i64, idx: usize, cx: &mut Ctx) {
        let now = cx.now;
        match self {
            RoleState::Random(r) | RoleState::Reader(r) => r.on_result(req, reply),
            RoleState::Acl(a) => a.on_result(req, reply),
            RoleState::Lock(l) | RoleState::Election(l) => l.on_result(req, reply, zxid, idx, cx),
            RoleState::Member(m) => {
                m.in_flight = false;
                let parent = matches!(
                    req,
                    Request::Create {
                        mode: CreateMode::Persistent,
                        ..
                    }
                );
                match reply {
                    Ok(_) | Err(KeeperError::NodeExists) if parent => m.parent_ok = true,
                    Ok(_) | Err(KeeperError::NodeExists) => m.registered = true,
                    // the parent is made by whoever gets there first
                    Err(KeeperError::NoNode) => m.parent_ok = false,
                    _ => {}
                }
            }
            RoleState::Monitor(w) | RoleState::ConfigReader(w) => {
                w.in_flight = false;
                match reply {
                    Ok(_) | Err(KeeperError::NoNode) => {
                        w.view = Some(normalize(reply));
                        w.view_zxid = zxid;
                        // a NoNode read sets no watch: poll again later
                        w.stale = reply.is_err();
                    }
                    _ => w.stale = true,
                }
            }
            RoleState::ConfigWriter(w) => {
                w.in_flight = false;
                match reply {
                    Ok(_) => w.created = true,
                    Err(KeeperError::NodeExists) => w.created = true,
                    Err(KeeperError::NoNode) => w.created = false,
                    _ => {}
                }
                let (lo, hi) = cx.params.think_ms;
                w.next_at = now + cx.rng.range(lo * 4, hi * 8);
            }
            RoleState::Admin(a) => {
                a.in_flight = false;
                match (req, reply) {
                    (_, Err(KeeperError::NoAuth)) => {
                        cx.shared.recipe_violation.get_or_insert(violation(
                            Claim::ClientSuperUser,
                            cx.now,
                            format!(
                                "client {idx}, authenticated as the super user, was refused {:?} with NoAuth",
                                req.opcode()
                            ),
                        ));
                    }
                    (Request::Create { .. }, Ok(_) | Err(KeeperError::NodeExists)) => {
                        a.exists = true
                    }
                    (Request::Delete { .. }, Ok(_) | Err(KeeperError::NoNode)) => a.exists = false,
                    (_, Err(KeeperError::NoNode)) => a.exists = false,
                    _ => {}
                }
            }
            RoleState::Naming(n) => {
                n.in_flight = false;
                match (req, reply) {
                    (
                        Request::Create {
                            mode: CreateMode::Persistent,
                            ..
                        },
                        _,
                    ) => {
                        n.parent_ok = matches!(reply, Ok(_) | Err(KeeperError::NodeExists));
                    }
                    (_, Ok(Response::Create { path })) => {
                        if let Some(prev) = cx.shared.names.insert(path.clone(), idx) {
                            cx.shared.name_violation.get_or_insert(format!(
                                "name {path} given to client {prev} and again to client {idx}"
                            ));
                        }
                    }
                    (_, Err(KeeperError::NoNode)) => n.parent_ok = false,
                    _ => {}
                }
            }
        }
    }

    fn on_watch(&mut self, ev: &WatchedEvent, _session: SessionId) {
        match self {
            RoleState::Monitor(w) | RoleState::ConfigReader(w) if ev.path == w.path => {
                w.stale = true;
            }
            RoleState::Lock(l) | RoleState::Election(l) if l.phase == LockPhase::Wait => {
                l.phase = LockPhase::List;
            }
            _ => {}
        }
    }

    fn on_disconnected(&mut self, _session: SessionId) {
        match self {
            RoleState::Monitor(w) | RoleState::ConfigReader(w) => {
                w.in_flight = false;
                w.stale = true;
            }
            RoleState::Lock(l) | RoleState::Election(l) => {
                l.in_flight = false;
                // After a connection loss the recipe re-reads the queue (its node may or may
                // not exist). A holder keeps believing it holds the lock until told otherwise.
                if l.phase != LockPhase::Holding && l.phase != LockPhase::Idle {
                    l.phase = if l.my_node.is_some() {
                        LockPhase::List
                    } else {
                        LockPhase::Create
                    };
                }
            }
            RoleState::Member(m) => {
                m.in_flight = false;
            }
            RoleState::ConfigWriter(w) => w.in_flight = false,
            RoleState::Naming(n) => n.in_flight = false,
            RoleState::Admin(a) => a.in_flight = false,
            RoleState::Random(r) | RoleState::Reader(r) => r.after_sync = None,
            RoleState::Acl(_) => {}
        }
    }

    fn on_new_session(&mut self, _session: SessionId) {
        if let RoleState::Member(m) = self {
            m.registered = false;
        }
    }

    fn on_session_end(&mut self) {
        match self {
            RoleState::Lock(l) | RoleState::Election(l) => {
                // The session's ephemerals are gone; a holder only finds out later (it may
                // act before it does: that is what fencing is for).
                l.my_node = None;
                l.in_flight = false;
                if l.phase != LockPhase::Holding {
                    l.phase = LockPhase::EnsureParent;
                }
            }
            RoleState::Member(m) => {
                m.registered = false;
                m.in_flight = false;
            }
            RoleState::Monitor(w) | RoleState::ConfigReader(w) => {
                w.stale = true;
                w.in_flight = false;
            }
            RoleState::ConfigWriter(w) => w.in_flight = false,
            RoleState::Naming(n) => n.in_flight = false,
            RoleState::Admin(a) => a.in_flight = false,
            RoleState::Random(r) | RoleState::Reader(r) => r.after_sync = None,
            RoleState::Acl(a) => a.on_session_end(),
        }
    }
}

impl RandomRole {
    fn pick_weighted(mix: &Mix, reader: bool, rng: &mut SimRng) -> usize {
        let w = if reader {
            // the mix's reads, with sync+read always among them
            [
                0,
                0,
                mix.get,
                0,
                0,
                mix.sync_read.max(1),
                mix.children,
                0,
                0,
            ]
        } else {
            [
                mix.create,
                mix.set,
                mix.get,
                mix.delete,
                mix.multi,
                mix.sync_read,
                mix.children,
                mix.ephemeral,
                mix.sequential,
            ]
        };
        let total: u32 = w.iter().sum();
        if total == 0 {
            return 2;
        }
        let mut x = rng.range(0, total as u64 - 1) as u32;
        for (i, wi) in w.iter().enumerate() {
            if x < *wi {
                return i;
            }
            x -= wi;
        }
        2
    }

    fn next(&mut self, idx: usize, cx: &mut Ctx) -> Option<Request> {
        if let Some(r) = self.after_sync.take() {
            return Some(r);
        }
        let mix = &cx.params.mix;
        let rng = &mut *cx.rng;
        let k = key(rng.range(0, cx.params.keys.max(1) as u64 - 1) as u32);
        self.n += 1;
        let data = format!("c{idx}-{}", self.n).into_bytes();
        let watch = rng.chance(mix.watch);
        let version = |rng: &mut SimRng, versions: &BTreeMap<String, i32>, p: &str| {
            if rng.chance(mix.versioned) {
                versions.get(p).copied().unwrap_or(0)
            } else {
                -1
            }
        };
        let known_child = |rng: &mut SimRng, ch: &BTreeMap<String, Vec<String>>, p: &str| {
            ch.get(p)
                .and_then(|c| rng.pick(c).cloned())
                .map(|c| format!("{p}/{c}"))
        };
        Some(match Self::pick_weighted(mix, self.reader, rng) {
            0 => {
                let op = if rng.chance(0.5) {
                    CreateOp::Create2
                } else {
                    CreateOp::Create
                };
                create(&k, data, CreateMode::Persistent, op)
            }
            1 => {
                let v = version(rng, &self.versions, &k);
                Request::SetData {
                    path: k,
                    data,
                    version: v,
                }
            }
            2 => {
                let path = if rng.chance(0.2) {
                    known_child(rng, &self.children, &k).unwrap_or(k)
                } else {
                    k
                };
                if rng.chance(0.5) {
                    Request::GetData { path, watch }
                } else {
                    Request::Exists { path, watch }
                }
            }
            3 => {
                let path = if rng.chance(0.5) {
                    known_child(rng, &self.children, &k).unwrap_or(k)
                } else {
                    k
                };
                let v = version(rng, &self.versions, &path);
                Request::Delete { path, version: v }
            }
            4 => {
                let k2 = key(rng.range(0, cx.params.keys.max(1) as u64 - 1) as u32);
                let mut ops = Vec::new();
                if rng.chance(0.5) {
                    let v = self.versions.get(&k).copied().unwrap_or(0);
                    ops.push(MultiOp::Check {
                        path: k.clone(),
                        version: v,
                    });
                }
                ops.push(MultiOp::SetData {
                    path: k2.clone(),
                    data: data.clone(),
                    version: -1,
                });
                if rng.chance(0.5) {
                    ops.push(MultiOp::Create {
                        op: CreateOp::Create,
                        path: format!("{k}/m{idx}"),
                        data,
                        acl: open_acl(),
                        mode: CreateMode::Persistent,
                        ttl: 0,
                    });
                } else if rng.chance(0.5) {
                    ops.push(MultiOp::Delete {
                        path: format!("{k2}/m{idx}"),
                        version: -1,
                    });
                }
                Request::Multi(ops)
            }
            5 => {
                self.after_sync = Some(Request::GetData {
                    path: k.clone(),
                    watch,
                });
                Request::Sync { path: k }
            }
            6 => {
                let path = if rng.chance(0.2) { "/".to_string() } else { k };
                if rng.chance(0.5) {
                    Request::GetChildren { path, watch }
                } else {
                    Request::GetChildren2 { path, watch }
                }
            }
            7 => create(
                &format!("{k}/e{idx}"),
                data,
                CreateMode::Ephemeral,
                CreateOp::Create,
            ),
            _ => {
                let mode = if rng.chance(0.5) {
                    CreateMode::PersistentSequential
                } else {
                    CreateMode::EphemeralSequential
                };
                create(&format!("{k}/s-"), data, mode, CreateOp::Create2)
            }
        })
    }

    fn on_result(&mut self, req: &Request, reply: &Reply) {
        match (req, reply) {
            (Request::GetData { path, .. }, Ok(Response::GetData { stat, .. }))
            | (Request::Exists { path, .. }, Ok(Response::Stat(stat)))
            | (Request::SetData { path, .. }, Ok(Response::Stat(stat))) => {
                self.versions.insert(path.clone(), stat.version);
            }
            (Request::GetChildren { path, .. }, Ok(Response::GetChildren { children }))
            | (Request::GetChildren2 { path, .. }, Ok(Response::GetChildren2 { children, .. })) => {
                self.children.insert(path.clone(), children.clone());
            }
            (Request::Sync { .. }, Err(_)) => self.after_sync = None,
            _ => {}
        }
    }
}

impl LockRole {
    fn prefix(idx: usize) -> String {
        format!("c{idx}-n-")
    }

    /// A holder's protected action on the external resource. It needs no ZooKeeper round
    /// trip: the process acts on what it believes (which is what fencing guards against).
    fn act(&mut self, cx: &mut Ctx) {
        if self.election || self.phase != LockPhase::Holding || self.actions_left == 0 {
            return;
        }
        if cx.now < self.next_at {
            return;
        }
        self.actions_left -= 1;
        cx.out.push(ClientOut::Resource {
            token: self.token,
            fenced: self.fenced,
        });
        let (lo, hi) = cx.params.think_ms;
        self.next_at = cx.now + cx.rng.range(lo, hi) * 4;
    }

    fn next(&mut self, idx: usize, _session: SessionId, cx: &mut Ctx) -> Option<Request> {
        let now = cx.now;
        if self.in_flight || now < self.next_at {
            return None;
        }
        let req = match self.phase {
            LockPhase::EnsureParent => create(
                self.parent,
                vec![],
                CreateMode::Persistent,
                CreateOp::Create,
            ),
            LockPhase::Create => create(
                &format!("{}/{}", self.parent, Self::prefix(idx)),
                vec![],
                CreateMode::EphemeralSequential,
                CreateOp::Create2,
            ),
            LockPhase::List => Request::GetChildren {
                path: self.parent.to_string(),
                watch: false,
            },
            LockPhase::Wait => {
                if self.wait_sent {
                    return None;
                }
                self.wait_sent = true;
                Request::Exists {
                    path: self.pred.clone()?,
                    watch: true,
                }
            }
            LockPhase::Holding => {
                if self.election {
                    // the master's work: a write fenced by its own election node
                    let Some(node) = self.my_node.clone() else {
                        self.phase = LockPhase::EnsureParent;
                        return None;
                    };
                    Request::Multi(vec![
                        MultiOp::Check {
                            path: node,
                            version: 0,
                        },
                        MultiOp::SetData {
                            path: self.parent.to_string(),
                            data: format!("master c{idx} #{}", self.acquisitions).into_bytes(),
                            version: -1,
                        },
                    ])
                } else {
                    // the holder acts on the resource in `act`; when done, it releases
                    if self.actions_left > 0 {
                        return None;
                    }
                    self.phase = LockPhase::Release;
                    return self.next(idx, _session, cx);
                }
            }
            LockPhase::Release => match self.my_node.clone() {
                Some(node) => Request::Delete {
                    path: node,
                    version: -1,
                },
                None => {
                    self.phase = LockPhase::EnsureParent;
                    return None;
                }
            },
            LockPhase::Idle => {
                self.phase = LockPhase::EnsureParent;
                return None;
            }
        };
        self.in_flight = true;
        Some(req)
    }

    fn on_result(&mut self, req: &Request, reply: &Reply, _zxid: i64, idx: usize, cx: &mut Ctx) {
        self.in_flight = false;
        let now = cx.now;
        match (req, reply) {
            (
                Request::Create {
                    mode: CreateMode::Persistent,
                    ..
                },
                r,
            ) => {
                if matches!(r, Ok(_) | Err(KeeperError::NodeExists)) {
                    self.phase = if self.my_node.is_some() {
                        LockPhase::List
                    } else {
                        LockPhase::Create
                    };
                }
            }
            (Request::Create { .. }, Ok(Response::Create2 { path, stat })) => {
                self.my_node = Some(path.clone());
                self.token = stat.czxid;
                self.phase = LockPhase::List;
            }
            (Request::Create { .. }, Err(KeeperError::NoNode)) => {
                self.phase = LockPhase::EnsureParent
            }
            (Request::GetChildren { .. }, Ok(Response::GetChildren { children })) => {
                let mut queue: Vec<&String> = children.iter().collect();
                queue.sort_by_key(|c| seq_of(c));
                let prefix = Self::prefix(idx);
                let mine = self.my_node.as_ref().and_then(|n| n.rsplit('/').next());
                let found = mine.and_then(|m| queue.iter().position(|c| c.as_str() == m));
                let found = found.or_else(|| {
                    // after a connection loss during create: find our node by its prefix
                    queue.iter().position(|c| c.starts_with(&prefix))
                });
                match found {
                    None => {
                        self.my_node = None;
                        self.phase = LockPhase::Create;
                    }
                    Some(0) => {
                        self.my_node = Some(format!("{}/{}", self.parent, queue[0]));
                        if self.token == 0 {
                            // found after a lost reply: learn the token from exists later;
                            // use a conservative 0 (always stale) until then
                            self.phase = LockPhase::Release;
                        } else {
                            self.phase = LockPhase::Holding;
                            self.acquisitions += 1;
                            self.actions_left = cx.rng.range(2, 5) as u32;
                            cx.out.push(ClientOut::Note(format!(
                                "{} acquired with {} (token {})",
                                if self.election { "mastership" } else { "lock" },
                                queue[0],
                                Zxid(self.token as u64)
                            )));
                        }
                    }
                    Some(i) => {
                        self.my_node = Some(format!("{}/{}", self.parent, queue[i]));
                        self.phase = LockPhase::Wait;
                        // watch the predecessor
                        let pred = format!("{}/{}", self.parent, queue[i - 1]);
                        self.pred = Some(pred);
                        self.wait_sent = false;
                    }
                }
            }
            (Request::Exists { .. }, Err(KeeperError::NoNode)) => self.phase = LockPhase::List,
            (Request::Exists { .. }, Ok(_)) => {}
            (Request::Exists { .. }, Err(_)) => self.phase = LockPhase::List,
            (Request::Multi(_), Ok(Response::Multi(results))) => {
                let failed = results
                    .iter()
                    .any(|r| matches!(r, OpResult::Error(c) if *c != 0));
                if !failed {
                    // a master's write committed: its node must be the lowest at that zxid
                    let z = Zxid(_zxid.max(0) as u64);
                    let lowest = cx.reference.node_at(self.parent, z).and_then(|_| {
                        cx.reference
                            .children_at(self.parent, z)
                            .into_iter()
                            .min_by_key(|c| seq_of(c))
                    });
                    let mine = self
                        .my_node
                        .as_ref()
                        .and_then(|n| n.rsplit('/').next().map(str::to_string));
                    if lowest != mine && cx.shared.recipe_violation.is_none() {
                        cx.shared.recipe_violation = Some(violation(
                            Claim::RecipeTwoMasters,
                            now,
                            format!(
                                "client {idx} wrote as master at {z} holding {mine:?}, but the lowest candidate there was {lowest:?}"
                            ),
                        ));
                    }
                }
                if failed {
                    // our node is gone: mastership lost
                    self.phase = LockPhase::EnsureParent;
                    self.my_node = None;
                    self.token = 0;
                } else {
                    let (lo, hi) = cx.params.think_ms;
                    self.next_at = now + cx.rng.range(lo, hi) * 4;
                }
            }
            (Request::Delete { .. }, Ok(_) | Err(KeeperError::NoNode)) => {
                self.my_node = None;
                self.token = 0;
                self.phase = LockPhase::Idle;
                let (lo, hi) = cx.params.think_ms;
                self.next_at = now + cx.rng.range(lo, hi) * 2;
            }
            _ => {}
        }
        let _ = idx;
    }
}
