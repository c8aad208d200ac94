//! Interaction tests in the style of etcd raft's datadriven tests: a tiny driver delivers
//! messages between a handful of `Server`s by hand, and each script in `testdata/` holds the
//! commands and their expected (golden) output. `REWRITE=1 cargo test --test interaction`
//! regenerates the expected output after a deliberate change; review the diff.
//!
//! Commands (one per block, `----` then the expected output, blank line ends the block):
//!   cluster voters=N [observers=M] [tick=MS] [super=USER:PW]  a fresh ensemble, ids 1..
//!                          (super: the superDigest of USER:PW)
//!   stabilize [verbose]     deliver messages, fsync logs and tick until nothing is left to do
//!   tick ms=N              advance the clock by N ms in ticks, delivering as it goes
//!   crash id=N             lose volatile state (unsynced log appends included)
//!   restart id=N           recover from the durable log, snapshot and epochs
//!   epochs id=N accepted=E from=S current=C   set a crashed server's persisted epochs
//!   partition A|B...       cut every link between groups, e.g. `partition 1 2|3`
//!   heal                   restore every link
//!   hold id=N / release id=N   stop / resume fsyncing N's log (writes stay volatile)
//!   connect client=C server=N [session=of:C]   a client handshake (re-attach with session=of:C)
//!   op client=C <request>  create PATH DATA [mode] | set PATH DATA | get PATH [watch] |
//!                          delete PATH | children PATH [watch] | exists PATH [watch] | sync PATH
//!   pipeline client=C R1 ; R2 ; ...   requests sent back to back before any reply
//!   disconnect client=C    the client's connection drops
//!   quiet client=C         the client stops pinging (its session expires as time passes)
//!   op requests also: auth SCHEME CRED | setacl PATH SPEC | getacl PATH | whoami |
//!                     addwatch PATH [recursive] | ephemerals PREFIX | count PATH;
//!                     a create takes `acl=SCHEME:ID:PERMS` (perms `cdrwa`)
//!   status                 every server's role, epoch, zxids and tree digest
//!   tree id=N              the data tree of server N (paths and data)

use ensemble_core::config::{Config, LearnerType};
use ensemble_core::peer::{PeerMsg, SyncMode};
use ensemble_core::proto::{
    Acl, AddWatchMode, ConnectRequest, CreateMode, CreateOp, Id, Request, Response, perms,
};
use ensemble_core::server::{ConnId, Effect, Epochs, Event, Millis, Recovered, Server};
use ensemble_core::txn::{ServerId, Txn};
use ensemble_core::zxid::Zxid;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

#[derive(Default, Clone)]
struct Disk {
    epochs: Epochs,
    snapshot: Option<(Zxid, Arc<Vec<u8>>)>,
    durable: Vec<Txn>,
    volatile: Vec<Txn>,
    parts: ensemble_core::tree::SnapshotAssembler,
}

struct Client {
    server: ServerId,
    conn: ConnId,
    session: i64,
    passwd: Vec<u8>,
    last_zxid: i64,
    next_xid: i32,
    pending: BTreeMap<i32, String>,
    /// Sends no pings while time passes (`quiet`): its session expires.
    quiet: bool,
}

struct World {
    cfg: Vec<Config>,
    servers: BTreeMap<ServerId, Option<Server>>,
    disks: BTreeMap<ServerId, Disk>,
    /// FIFO per (from, to): a link is a TCP connection.
    links: BTreeMap<(ServerId, ServerId), VecDeque<PeerMsg>>,
    cut: BTreeSet<(ServerId, ServerId)>,
    held: BTreeSet<ServerId>,
    clients: BTreeMap<String, Client>,
    conn_owner: BTreeMap<(ServerId, ConnId), String>,
    next_conn: ConnId,
    now: Millis,
    log: String,
    verbose: bool,
}

fn fmt_msg(m: &PeerMsg) -> String {
    match m {
        PeerMsg::Notification(n) => format!(
            "NOTIFICATION {:?} vote=({}, {}, e{}) round={}",
            n.state, n.vote.leader, n.vote.zxid, n.vote.peer_epoch, n.election_epoch
        ),
        PeerMsg::LearnerInfo {
            accepted_epoch,
            last_zxid,
            ..
        } => {
            format!(
                "{} accepted={} last={}",
                m.name(),
                accepted_epoch,
                last_zxid
            )
        }
        PeerMsg::LeaderInfo { new_epoch } => format!("LEADERINFO epoch={new_epoch}"),
        PeerMsg::AckEpoch {
            current_epoch,
            last_zxid,
            counted,
            ..
        } => format!(
            "ACKEPOCH current={current_epoch} last={last_zxid}{}",
            if *counted { "" } else { " (not counted)" }
        ),
        PeerMsg::Sync {
            mode,
            txns,
            committed,
        } => {
            let z: Vec<String> = txns.iter().map(|t| t.zxid.to_string()).collect();
            let head = match mode {
                SyncMode::Diff => "DIFF".to_string(),
                SyncMode::Trunc { to } => format!("TRUNC to={to}"),
                SyncMode::Snap { zxid, .. } => format!("SNAP at={zxid}"),
            };
            format!("{head} txns=[{}] committed={committed}", z.join(" "))
        }
        PeerMsg::NewLeader { zxid } => format!("NEWLEADER {zxid}"),
        PeerMsg::AckNewLeader { zxid } => format!("ACK(NEWLEADER) {zxid}"),
        PeerMsg::UpToDate { committed } => format!("UPTODATE committed={committed}"),
        PeerMsg::Proposal(t) => format!("PROPOSAL {}", t.zxid),
        PeerMsg::Ack { zxid } => format!("ACK {zxid}"),
        PeerMsg::Commit { zxid } => format!("COMMIT {zxid}"),
        PeerMsg::Inform(t) => format!("INFORM {}", t.zxid),
        other => other.name().to_string(),
    }
}

impl World {
    fn new(voters: u64, observers: u64, tick: u64, sessions: (i32, i32)) -> World {
        let mut members = BTreeMap::new();
        for id in 1..=voters {
            members.insert(id, LearnerType::Participant);
        }
        for id in voters + 1..=voters + observers {
            members.insert(id, LearnerType::Observer);
        }
        let mut w = World {
            cfg: Vec::new(),
            servers: BTreeMap::new(),
            disks: BTreeMap::new(),
            links: BTreeMap::new(),
            cut: BTreeSet::new(),
            held: BTreeSet::new(),
            clients: BTreeMap::new(),
            conn_owner: BTreeMap::new(),
            next_conn: 1,
            now: 1_000_000,
            log: String::new(),
            verbose: false,
        };
        for id in members.keys() {
            let mut c = Config::new(*id, members.clone());
            c.tick_time_ms = tick;
            c.init_limit = 5;
            c.sync_limit = 2;
            c.min_session_timeout_ms = sessions.0;
            c.max_session_timeout_ms = sessions.1;
            c.finalize_wait_ms = 50;
            c.max_notification_interval_ms = 400;
            c.committed_log_size = 4;
            c.snap_count = 1000;
            w.cfg.push(c);
            w.disks.insert(*id, Disk::default());
            w.start(*id);
        }
        w
    }

    fn start(&mut self, id: ServerId) {
        let cfg = self
            .cfg
            .iter()
            .find(|c| c.my_id == id)
            .expect("configured")
            .clone();
        let d = &self.disks[&id];
        let rec = Recovered {
            epochs: d.epochs,
            snapshot: d.snapshot.clone(),
            log: d.durable.clone(),
        };
        let s = Server::new(cfg, rec, self.now).expect("recovers");
        self.servers.insert(id, Some(s));
    }

    fn ids(&self) -> Vec<ServerId> {
        self.servers.keys().copied().collect()
    }

    fn up(&self, id: ServerId) -> bool {
        matches!(self.servers.get(&id), Some(Some(_)))
    }

    fn step(&mut self, id: ServerId, ev: Event) {
        let mut out = Vec::new();
        let Some(Some(s)) = self.servers.get_mut(&id) else {
            return;
        };
        s.handle(self.now, ev, &mut out);
        for e in out {
            self.effect(id, e);
        }
    }

    fn effect(&mut self, id: ServerId, e: Effect) {
        match e {
            Effect::Send { to, msg } => {
                if self.verbose
                    || !matches!(
                        msg,
                        PeerMsg::Notification(_) | PeerMsg::Ping { .. } | PeerMsg::PingReply { .. }
                    )
                {
                    let _ = writeln!(self.log, "{id} -> {to}: {}", fmt_msg(&msg));
                }
                if !self.cut.contains(&(id, to)) {
                    self.links.entry((id, to)).or_default().push_back(msg);
                }
            }
            Effect::DisconnectPeer { peer } => self.break_link(id, peer, false),
            Effect::StateChanged { state, epoch } => {
                let _ = writeln!(self.log, "{id}: {state:?} epoch={epoch}");
            }
            Effect::Append { txns } => self
                .disks
                .get_mut(&id)
                .expect("disk")
                .volatile
                .extend(txns.iter().map(|t| Txn::clone(t))),
            Effect::Truncate { after } => {
                let d = self.disks.get_mut(&id).expect("disk");
                d.durable.retain(|t| t.zxid <= after);
                d.volatile.retain(|t| t.zxid <= after);
            }
            Effect::SnapshotPart { zxid, index, data } => self
                .disks
                .get_mut(&id)
                .expect("disk")
                .parts
                .part(zxid, index, &data),
            Effect::Snapshot {
                zxid,
                parts,
                data,
                reset_log,
            } => {
                let d = self.disks.get_mut(&id).expect("disk");
                let whole = d.parts.finish(zxid, parts, data).expect("parts in order");
                d.snapshot = Some((zxid, whole));
                if reset_log {
                    d.durable.clear();
                    d.volatile.clear();
                }
            }
            Effect::PersistEpochs(e) => self.disks.get_mut(&id).expect("disk").epochs = e,
            Effect::ConnectReply { conn, response } => {
                if let Some(name) = self.conn_owner.get(&(id, conn)).cloned() {
                    let c = self.clients.get_mut(&name).expect("client");
                    if response.session_id == 0 {
                        let _ = writeln!(self.log, "client {name}: session expired");
                    } else {
                        let _ = writeln!(
                            self.log,
                            "client {name}: connected to {id} session={:#x} timeout={}",
                            response.session_id, response.timeout_ms
                        );
                        c.session = response.session_id;
                        c.passwd = response.passwd;
                    }
                }
            }
            Effect::Reply {
                conn,
                xid,
                zxid,
                reply,
                ..
            } => {
                if let Some(name) = self.conn_owner.get(&(id, conn)).cloned() {
                    let c = self.clients.get_mut(&name).expect("client");
                    c.last_zxid = c.last_zxid.max(zxid.as_i64());
                    if xid == -2 {
                        return; // ping replies are not news
                    }
                    let what = c.pending.remove(&xid).unwrap_or_default();
                    let shown = match reply {
                        Ok(Response::GetData { data, stat }) => {
                            format!(
                                "data={:?} version={}",
                                String::from_utf8_lossy(&data),
                                stat.version
                            )
                        }
                        Ok(Response::Create { path }) => format!("created {path}"),
                        Ok(Response::Stat(s)) => {
                            format!("stat version={} mzxid={:#x}", s.version, s.mzxid)
                        }
                        Ok(Response::GetChildren { children }) => format!("children={children:?}"),
                        Ok(r) => format!("{r:?}"),
                        Err(e) => format!("error {e:?}"),
                    };
                    let _ = writeln!(self.log, "client {name}: {what} -> {shown} (zxid {zxid})");
                }
            }
            Effect::Watch { conn, event } => {
                if let Some(name) = self.conn_owner.get(&(id, conn)) {
                    let _ = writeln!(
                        self.log,
                        "client {name}: WATCH {:?} {}",
                        event.kind, event.path
                    );
                }
            }
            Effect::Close { conn } => {
                if let Some(name) = self.conn_owner.remove(&(id, conn)) {
                    let _ = writeln!(self.log, "client {name}: connection closed by {id}");
                }
            }
        }
    }

    /// Break the connection between a and b: in-flight messages both ways are lost and both
    /// cores are told (the initiator too, as a real socket close would show it).
    fn break_link(&mut self, a: ServerId, b: ServerId, tell_a: bool) {
        self.links.remove(&(a, b));
        self.links.remove(&(b, a));
        if tell_a {
            self.step(a, Event::PeerDisconnected { peer: b });
        }
        self.step(b, Event::PeerDisconnected { peer: a });
    }

    fn fsync_all(&mut self) -> bool {
        let mut any = false;
        for id in self.ids() {
            if self.held.contains(&id) || !self.up(id) {
                continue;
            }
            let d = self.disks.get_mut(&id).expect("disk");
            if d.volatile.is_empty() {
                continue;
            }
            let through = d.volatile.last().map(|t| t.zxid).expect("non-empty");
            let v = std::mem::take(&mut d.volatile);
            d.durable.extend(v);
            self.step(id, Event::Persisted { through });
            any = true;
        }
        any
    }

    fn deliver_all(&mut self) -> bool {
        let mut any = false;
        loop {
            let keys: Vec<(ServerId, ServerId)> = self
                .links
                .iter()
                .filter(|(_, q)| !q.is_empty())
                .map(|(k, _)| *k)
                .collect();
            if keys.is_empty() {
                return any;
            }
            for (from, to) in keys {
                let Some(msg) = self.links.get_mut(&(from, to)).and_then(|q| q.pop_front()) else {
                    continue;
                };
                any = true;
                if self.up(to) {
                    self.step(to, Event::Peer { from, msg });
                }
            }
        }
    }

    /// Deliver and fsync until nothing is in flight; let time pass only while some server
    /// that could still reach a quorum is electing or syncing (heartbeats never stop, so
    /// "nothing moves" is no test).
    fn stabilize(&mut self) {
        for _ in 0..1000 {
            let a = self.deliver_all();
            let b = self.fsync_all();
            if a || b {
                continue;
            }
            if self.all_settled() {
                return;
            }
            self.advance(10);
        }
    }

    fn all_settled(&self) -> bool {
        self.servers
            .values()
            .flatten()
            .all(|s| s.is_serving() || !self.reachable_majority(s.id()))
    }

    fn reachable_majority(&self, id: ServerId) -> bool {
        let voters: Vec<ServerId> = self.cfg[0].voters().collect();
        let reach = voters
            .iter()
            .filter(|v| **v == id || (!self.cut.contains(&(id, **v)) && self.up(**v)))
            .count();
        reach * 2 > voters.len()
    }

    fn advance(&mut self, ms: u64) {
        let step = 10;
        let mut done = 0;
        while done < ms {
            self.now += step;
            done += step;
            for id in self.ids() {
                self.step(id, Event::Tick);
            }
        }
    }

    fn status(&self) -> String {
        let mut s = String::new();
        for (id, srv) in &self.servers {
            match srv {
                None => {
                    let _ = writeln!(s, "{id}: down");
                }
                Some(srv) => {
                    let st = srv.status();
                    let e = srv.epochs();
                    let _ = writeln!(
                        s,
                        "{id}: {:?} leader={:?} accepted={} current={} applied={} logged={} digest={:016x}",
                        srv.state(),
                        st.leader,
                        e.accepted_epoch,
                        e.current_epoch,
                        srv.tree().last_zxid(),
                        srv.last_logged(),
                        srv.tree().digest()
                    );
                }
            }
        }
        s
    }
}

fn arg<'a>(args: &'a [&str], key: &str) -> Option<&'a str> {
    args.iter()
        .find_map(|a| a.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn num(args: &[&str], key: &str) -> u64 {
    arg(args, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("missing {key}="))
}

/// `SCHEME:ID:PERMS`, perms as zkCli writes them (`cdrwa`); the id may hold colons
/// (`digest:user:hash:r`, `auth::cdrwa`).
fn parse_acl(spec: &str) -> Vec<Acl> {
    let (scheme, rest) = spec.split_once(':').expect("acl SCHEME:ID:PERMS");
    let (id, letters) = rest.rsplit_once(':').expect("acl SCHEME:ID:PERMS");
    let mut p = 0;
    for ch in letters.chars() {
        p |= match ch {
            'r' => perms::READ,
            'w' => perms::WRITE,
            'c' => perms::CREATE,
            'd' => perms::DELETE,
            'a' => perms::ADMIN,
            other => panic!("unknown permission {other}"),
        };
    }
    vec![Acl {
        perms: p,
        id: Id::new(scheme, id),
    }]
}

fn parse_request(words: &[&str]) -> Request {
    // `acl=SPEC` anywhere sets a create's ACL (open by default)
    let acl = words
        .iter()
        .find_map(|w| w.strip_prefix("acl="))
        .map(parse_acl)
        .unwrap_or_else(Acl::open_unsafe);
    let words: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| !w.starts_with("acl="))
        .collect();
    let path = words.get(1).map(|s| s.to_string()).unwrap_or_default();
    let watch = words.contains(&"watch");
    match words[0] {
        "create" => {
            let mode = match words.get(3).copied() {
                Some("ephemeral") => CreateMode::Ephemeral,
                Some("sequential") => CreateMode::PersistentSequential,
                Some("ephemeral-sequential") => CreateMode::EphemeralSequential,
                _ => CreateMode::Persistent,
            };
            Request::Create {
                op: CreateOp::Create,
                path,
                data: words.get(2).unwrap_or(&"").as_bytes().to_vec(),
                acl,
                mode,
                ttl: -1,
            }
        }
        "set" => Request::SetData {
            path,
            data: words.get(2).unwrap_or(&"").as_bytes().to_vec(),
            version: -1,
        },
        "get" => Request::GetData { path, watch },
        "exists" => Request::Exists { path, watch },
        "children" => Request::GetChildren { path, watch },
        "delete" => Request::Delete { path, version: -1 },
        "sync" => Request::Sync { path },
        "close" => Request::CloseSession,
        // `auth SCHEME CREDENTIALS`, e.g. `auth digest user:pw`
        "auth" => Request::Auth {
            scheme: path,
            auth: words.get(2).unwrap_or(&"").as_bytes().to_vec(),
        },
        "setacl" => Request::SetAcl {
            path,
            acl: parse_acl(words.get(2).expect("setacl PATH SPEC")),
            version: -1,
        },
        "getacl" => Request::GetAcl { path },
        "whoami" => Request::WhoAmI,
        "addwatch" => Request::AddWatch {
            path,
            mode: if words.contains(&"recursive") {
                AddWatchMode::PersistentRecursive
            } else {
                AddWatchMode::Persistent
            },
        },
        "ephemerals" => Request::GetEphemerals { prefix: path },
        "count" => Request::GetAllChildrenNumber { path },
        other => panic!("unknown op {other}"),
    }
}

fn run_command(w: &mut Option<World>, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (cmd, args) = (words[0], &words[1..]);
    if cmd == "cluster" {
        let voters = num(args, "voters");
        let observers = arg(args, "observers")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let tick = arg(args, "tick")
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        let sessions = (2 * tick as i32, 20 * tick as i32);
        let mut world = World::new(voters, observers, tick, sessions);
        // `super=user:password`: the super digest (servers restarted with it)
        if let Some(su) = arg(args, "super") {
            for c in &mut world.cfg {
                c.super_digest = Some(ensemble_core::acl::digest_id(su));
            }
            for id in world.ids() {
                world.start(id);
            }
        }
        *w = Some(world);
        return "ok\n".to_string();
    }
    let w = w.as_mut().expect("a cluster first");
    w.log.clear();
    w.verbose = false;
    match cmd {
        "stabilize" => {
            w.verbose = args.contains(&"verbose");
            w.stabilize();
        }
        "tick" => {
            let ms = num(args, "ms");
            let mut left = ms;
            while left > 0 {
                let step = left.min(50);
                // Connected clients ping, as real ones do at a third of their timeout.
                let live: Vec<(ServerId, ConnId)> = w
                    .conn_owner
                    .iter()
                    .filter(|(_, name)| !w.clients[name.as_str()].quiet)
                    .map(|(k, _)| *k)
                    .collect();
                for (server, conn) in live {
                    w.step(
                        server,
                        Event::Client {
                            conn,
                            xid: -2,
                            request: Request::Ping,
                        },
                    );
                }
                w.advance(step);
                w.deliver_all();
                w.fsync_all();
                left -= step;
            }
        }
        "crash" => {
            let id = num(args, "id");
            w.servers.insert(id, None);
            let d = w.disks.get_mut(&id).expect("disk");
            d.volatile.clear();
            d.parts = Default::default();
            let peers: Vec<ServerId> = w.ids().into_iter().filter(|p| *p != id).collect();
            for p in peers {
                w.links.remove(&(id, p));
                w.links.remove(&(p, id));
                w.step(p, Event::PeerDisconnected { peer: id });
            }
            let owned: Vec<(ServerId, ConnId)> = w
                .conn_owner
                .keys()
                .filter(|(s, _)| *s == id)
                .copied()
                .collect();
            for k in owned {
                if let Some(name) = w.conn_owner.remove(&k) {
                    let _ = writeln!(w.log, "client {name}: connection lost");
                }
            }
            let _ = writeln!(w.log, "{id}: crashed");
        }
        "epochs" => {
            // a crashed server's persisted epochs, as some history left them
            let id = num(args, "id");
            assert!(!w.up(id), "epochs of a running server");
            w.disks.get_mut(&id).expect("disk").epochs = Epochs {
                accepted_epoch: num(args, "accepted") as u32,
                accepted_from: num(args, "from"),
                current_epoch: num(args, "current") as u32,
            };
        }
        "restart" => {
            let id = num(args, "id");
            w.start(id);
            let _ = writeln!(w.log, "{id}: restarted");
        }
        "partition" => {
            let groups: Vec<Vec<ServerId>> = args
                .join(" ")
                .split('|')
                .map(|g| {
                    g.split_whitespace()
                        .map(|x| x.parse().expect("id"))
                        .collect()
                })
                .collect();
            for (i, g) in groups.iter().enumerate() {
                for (j, h) in groups.iter().enumerate() {
                    if i == j {
                        continue;
                    }
                    for a in g {
                        for b in h {
                            if w.cut.insert((*a, *b)) && w.links.contains_key(&(*a, *b)) {
                                w.links.remove(&(*a, *b));
                            }
                        }
                    }
                }
            }
            let pairs: Vec<(ServerId, ServerId)> =
                w.cut.iter().copied().filter(|(a, b)| a < b).collect();
            for (a, b) in pairs {
                w.break_link(a, b, true);
            }
        }
        "heal" => w.cut.clear(),
        "hold" => {
            w.held.insert(num(args, "id"));
        }
        "release" => {
            w.held.remove(&num(args, "id"));
        }
        "connect" => {
            let name = arg(args, "client").expect("client=").to_string();
            let server = num(args, "server");
            let conn = w.next_conn;
            w.next_conn += 1;
            // `session=of:C` re-attaches C's session from a new client, C's connection staying
            let of = arg(args, "session")
                .and_then(|s| s.strip_prefix("of:"))
                .map(str::to_string);
            let (session, passwd, last) = match w.clients.get(of.as_ref().unwrap_or(&name)) {
                Some(c) => (c.session, c.passwd.clone(), c.last_zxid),
                None => (0, vec![0; 16], 0),
            };
            w.clients.insert(
                name.clone(),
                Client {
                    server,
                    conn,
                    session,
                    passwd: passwd.clone(),
                    last_zxid: last,
                    next_xid: 1,
                    pending: BTreeMap::new(),
                    quiet: false,
                },
            );
            w.conn_owner.insert((server, conn), name);
            let request = ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: last,
                timeout_ms: 400,
                session_id: session,
                passwd,
                read_only: Some(false),
            };
            w.step(
                server,
                Event::ClientConnected {
                    conn,
                    addr: "127.0.0.1".into(),
                    request,
                },
            );
            w.stabilize();
        }
        "quiet" => {
            let name = arg(args, "client").expect("client=");
            w.clients.get_mut(name).expect("client").quiet = true;
        }
        "disconnect" => {
            let name = arg(args, "client").expect("client=");
            let c = w.clients.get(name).expect("client");
            let (server, conn) = (c.server, c.conn);
            w.conn_owner.remove(&(server, conn));
            w.step(server, Event::ClientDisconnected { conn });
        }
        "op" => {
            let name = arg(args, "client").expect("client=").to_string();
            let request = parse_request(&args[1..]);
            let c = w.clients.get_mut(&name).expect("client");
            let xid = c.next_xid;
            c.next_xid += 1;
            c.pending.insert(xid, args[1..].join(" "));
            let (server, conn) = (c.server, c.conn);
            w.step(server, Event::Client { conn, xid, request });
            w.stabilize();
        }
        "pipeline" => {
            // Several requests sent back to back before any reply: `pipeline client=C a ; b`.
            let name = arg(args, "client").expect("client=").to_string();
            let text = args[1..].join(" ");
            for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                let words: Vec<&str> = part.split_whitespace().collect();
                let request = parse_request(&words);
                let c = w.clients.get_mut(&name).expect("client");
                let xid = c.next_xid;
                c.next_xid += 1;
                c.pending.insert(xid, part.to_string());
                let (server, conn) = (c.server, c.conn);
                w.step(server, Event::Client { conn, xid, request });
            }
            w.stabilize();
        }
        "status" => return w.status(),
        "tree" => {
            let id = num(args, "id");
            let Some(Some(s)) = w.servers.get(&id) else {
                return "down\n".into();
            };
            let mut out = String::new();
            let mut stack = vec!["/".to_string()];
            while let Some(p) = stack.pop() {
                if let Ok(Response::GetData { data, .. }) = s.tree().read(
                    &Request::GetData {
                        path: p.clone(),
                        watch: false,
                    },
                    &[],
                ) {
                    let _ = writeln!(out, "{p} = {:?}", String::from_utf8_lossy(&data));
                }
                if let Ok(Response::GetChildren { mut children }) = s.tree().read(
                    &Request::GetChildren {
                        path: p.clone(),
                        watch: false,
                    },
                    &[],
                ) {
                    children.sort();
                    for c in children.into_iter().rev() {
                        stack.push(if p == "/" {
                            format!("/{c}")
                        } else {
                            format!("{p}/{c}")
                        });
                    }
                }
            }
            return out;
        }
        other => panic!("unknown command {other}"),
    }
    if w.log.is_empty() {
        "ok\n".to_string()
    } else {
        w.log.clone()
    }
}

fn run_file(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).expect("readable test file");
    let rewrite = std::env::var_os("REWRITE").is_some();
    let mut world = None;
    let mut rewritten = String::new();
    let mut lines = text.lines().peekable();
    let mut failures = Vec::new();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            rewritten.push_str(line);
            rewritten.push('\n');
            continue;
        }
        let cmd = line.to_string();
        assert_eq!(
            lines.next(),
            Some("----"),
            "{}: `----` after `{cmd}`",
            path.display()
        );
        let mut expected = String::new();
        while let Some(l) = lines.peek() {
            if l.is_empty() {
                break;
            }
            expected.push_str(l);
            expected.push('\n');
            lines.next();
        }
        let got = run_command(&mut world, &cmd);
        if got != expected {
            failures.push(format!(
                "{}: `{cmd}`\n--- expected\n{expected}--- got\n{got}",
                path.display()
            ));
        }
        rewritten.push_str(&cmd);
        rewritten.push_str("\n----\n");
        rewritten.push_str(&got);
    }
    if rewrite {
        std::fs::write(path, rewritten).expect("writable test file");
    } else if !failures.is_empty() {
        panic!("{}", failures.join("\n"));
    }
}

#[test]
fn interaction_scripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no interaction scripts");
    for f in files
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "txt"))
    {
        run_file(&f);
    }
}
