//! `ensemble-sim foreign`: the core observing a foreign leader (issue 17's live observer inside
//! an Apache ZooKeeper ensemble, `ensemble zk-observe`), driven deterministically from a seed.
//!
//! One real `ensemble_core::Server` with `Config::foreign_leader` is synced and fed the txns a
//! stand-in for ZooKeeper's leader resolved ([`leader::ForeignLeader`]): its own clients'
//! writes and the ones the core forwards for its clients (`PeerMsg::Request`, answered when
//! their txn comes back), syncs, REVALIDATEs, PINGs, and leader changes (the core stops
//! serving, is synced again in a new epoch from the leader's tree, and its clients re-attach
//! their sessions). Clients of the core read with watches, write, authenticate and sync.
//!
//! Claims, judged against the leader's [`leader::History`] (`check/claim.rs`):
//! * `foreign.read-prefix` — each read a client gets (getData, exists, getChildren) is the
//!   leader's state at the zxid of its reply, and those zxids never go back for a client;
//! * `foreign.watch-once` — a watch fires exactly once, for the first change after the read
//!   that set it, before the client reads anything at or past that change (unless the client
//!   may not READ what changed: then it is spent silently, as ZooKeeper 3.8.4+);
//! * `foreign.acl` — no client reads data or hears an event of a znode its ids may not READ;
//! * `foreign.membership` — while serving, the core's configuration (version and members) is
//!   the one the leader's history holds at what it applied: the leader now and then commits a
//!   reconfig (ZooKeeper's reconfig txn, a setData of /zookeeper/config; own random stream);
//! * `foreign.divergent-refused` — a multi whose record does not fit the observer's tree (a
//!   diverged replica: every second committed multi of its clients reaches it with a delete
//!   of a node that never existed, by a count) changes none of its znodes; the replica is then
//!   dropped and synced again, as the runtime does when ZooKeeper's digest disagrees.
//! * `foreign.write-reply` — a write the core forwarded is answered what the leader's own
//!   tree answered it (create's path, setData's and setACL's stat, each multi result, the
//!   error code), from the resolved txn alone.
//!
//! The plant `resolved-setdata-unwatched` (a resolved setData fires no watch) breaks the
//! second, `foreign-config-not-reloaded` (the reconfig applied, the membership kept) the
//! fourth, `resolved-multi-partial` (the subs before the misfit kept) the fifth,
//! `resolved-multi-create-statless` (a multi's create2 answered without its stat) the last.

pub mod leader;

use crate::check::{Claim, Violation};
use crate::client::roles::random::with_null_data;
use crate::rng::SimRng;
use ensemble_core::effect::{Action, ActionSink, DurableStore, Ready, Write};
use ensemble_core::foreign::Foreign;
use ensemble_core::plant::Plant;
use ensemble_core::tree::{DataTree, TreeOptions};
use ensemble_core::txn::{ResolvedTxn, Txn};
use ensemble_core::{Config, ConnId, Event, LearnerType, PeerMsg, Recovered, Server, TxnOp, Zxid};
use ensemble_proto::proto::{
    Acl, ConnectRequest, CreateMode, CreateOp, EventType, Id, KeeperError, MultiOp, OpCode, Reply,
    Request, Response, SessionId, perms,
};
use leader::{ForeignLeader, History, WatchClass};
use std::collections::{BTreeMap, VecDeque};

const ME: u64 = 4;
/// Paths the clients read and write.
const PATHS: [&str; 7] = [
    "/app",
    "/app/a",
    "/app/b",
    "/app/c",
    "/secret",
    "/secret/x",
    "/zookeeper/config",
];
const STEPS: u64 = 3000;
const STEP_MS: u64 = 5;

/// What one seed did.
pub struct ForeignResult {
    pub seed: u64,
    pub violation: Option<Violation>,
    /// FNV-1a over every reply and event the clients got: the same seed gives the same hash.
    pub hash: u64,
    pub txns: u64,
    pub reads: u64,
    pub events: u64,
    pub forwarded: u64,
    pub leader_changes: u64,
}

/// What the leader has to answer, in the order it came (one channel, as the quorum port).
enum Work {
    Request {
        session: SessionId,
        cxid: i32,
        op: TxnOp,
    },
    Sync,
    Revalidate {
        session: SessionId,
    },
}

#[derive(Clone, Debug)]
enum Asked {
    Read {
        path: String,
        opcode: OpCode,
        watch: bool,
    },
    Auth,
    Other,
    Close,
}

struct Armed {
    path: String,
    class: WatchClass,
    since: Zxid,
}

struct Client {
    name: usize,
    conn: Option<ConnId>,
    connected: bool,
    session: SessionId,
    xid: i32,
    asked: BTreeMap<i32, Asked>,
    auth: Vec<Id>,
    /// The highest zxid it has seen (replies), across connections.
    seen: Zxid,
    armed: Vec<Armed>,
    /// Wait before reconnecting, in steps.
    backoff: u64,
}

/// The core's output, collected.
#[derive(Default)]
struct Io {
    actions: Vec<Action>,
}

impl DurableStore for Io {
    type Error = std::convert::Infallible;
    fn write(&mut self, _write: Write) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl ActionSink for Io {
    fn act(&mut self, action: Action) {
        self.actions.push(action);
    }
}

struct World {
    rng: SimRng,
    now: u64,
    server: Server,
    leader: ForeignLeader,
    leader_id: u64,
    /// Work that reached the leader, answered in order.
    work: VecDeque<Work>,
    /// What the leader sent the observer, delivered in order.
    to_observer: VecDeque<Foreign>,
    /// Steps left before the leader syncs the observer again (after a leader change).
    resync_in: Option<u64>,
    clients: Vec<Client>,
    next_conn: ConnId,
    foreign_session: SessionId,
    alice: Vec<Id>,
    violation: Option<Violation>,
    hash: u64,
    reads: u64,
    events: u64,
    forwarded: u64,
    leader_changes: u64,
    /// The reconfigs' own stream (when the leader resolves one, what it makes): the other
    /// draws stay as they were.
    reconfig_rng: SimRng,
    reconfigs: u64,
    /// The leader's own writes so far: every fourth create or setData goes with a null
    /// buffer (a count, no draw), so the observer holds null-data znodes.
    foreign_writes: u64,
    /// Print every reply and event as it comes (`ensemble-sim foreign --echo`).
    echo: bool,
    /// Multis of the observer's clients the leader committed: every second one reaches the
    /// observer with a sub that does not fit its tree (a count, no draw).
    multis: u64,
    /// The zxid of that divergent INFORM, until the observer has applied it.
    diverged: Option<Zxid>,
    /// The leader's answer to each write the observer forwarded, by (session, cxid).
    leader_replies: BTreeMap<(SessionId, i32), Reply>,
}

/// Run one seed, with `plant` in the core.
pub fn run_seed(seed: u64, plant: Option<Plant>) -> ForeignResult {
    run_seed_echo(seed, plant, false)
}

/// [`run_seed`], printing each reply and event the clients get when `echo`.
pub fn run_seed_echo(seed: u64, plant: Option<Plant>, echo: bool) -> ForeignResult {
    let mut w = World::new(seed, plant);
    w.echo = echo;
    w.run();
    ForeignResult {
        seed,
        violation: w.violation,
        hash: w.hash,
        txns: w.leader.txns,
        reads: w.reads,
        events: w.events,
        forwarded: w.forwarded,
        leader_changes: w.leader_changes,
    }
}

fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

impl World {
    fn new(seed: u64, plant: Option<Plant>) -> World {
        let mut rng = SimRng::new(seed ^ 0xf0e1_9a7e);
        let mut members = BTreeMap::new();
        for id in 1..=3 {
            members.insert(id, LearnerType::Participant);
        }
        members.insert(ME, LearnerType::Observer);
        let mut cfg = Config::new(ME, members);
        cfg.foreign_leader = true;
        cfg.plant = plant;
        cfg.tick_time_ms = 200;
        let opts = TreeOptions {
            extended_types: cfg.extended_types,
            auth_providers: cfg.auth_providers,
            plant: None,
        };
        let server = Server::new(cfg, Recovered::default(), 0).expect("an empty server starts");
        let alice = ensemble_core::acl::digest_auth_ids("alice:secret", None);
        let mut leader = ForeignLeader::new(DataTree::new(opts), 1 + rng.range(0, 3) as u32);
        // ZooKeeper's own clients: one session writing through the leader from the start
        let foreign_session = 0x0100_0000_0000_0001;
        leader.resolve(
            foreign_session,
            0,
            TxnOp::CreateSession { timeout_ms: 30_000 },
        );
        let alice_only = vec![Acl {
            perms: perms::ALL,
            id: alice[0].clone(),
        }];
        for (path, acl) in [
            ("/app", open()),
            ("/app/a", open()),
            ("/app/c", open()),
            ("/secret", alice_only.clone()),
            ("/secret/x", alice_only),
        ] {
            let op = write_op(create(path, b"v0".to_vec(), acl, CreateMode::Persistent));
            leader.resolve(foreign_session, 0, op);
        }
        let clients = (0..3)
            .map(|name| Client {
                name,
                conn: None,
                connected: false,
                session: 0,
                xid: 0,
                asked: BTreeMap::new(),
                auth: Vec::new(),
                seen: Zxid::ZERO,
                armed: Vec::new(),
                backoff: 0,
            })
            .collect();
        let mut w = World {
            rng,
            now: 0,
            server,
            leader,
            leader_id: 1,
            work: VecDeque::new(),
            to_observer: VecDeque::new(),
            resync_in: Some(2),
            clients,
            next_conn: 1,
            foreign_session,
            alice,
            violation: None,
            hash: 0xcbf2_9ce4_8422_2325,
            reads: 0,
            events: 0,
            forwarded: 0,
            leader_changes: 0,
            reconfig_rng: SimRng::new(seed ^ 0x7ec0_4f16),
            reconfigs: 0,
            foreign_writes: 0,
            echo: false,
            multis: 0,
            diverged: None,
            leader_replies: BTreeMap::new(),
        };
        w.mix("start");
        w
    }

    fn run(&mut self) {
        for _ in 0..STEPS {
            if self.violation.is_some() {
                return;
            }
            self.now += STEP_MS;
            self.step();
            self.feed(Event::Tick);
            self.check_membership();
        }
    }

    fn step(&mut self) {
        if let Some(n) = self.resync_in.as_mut() {
            if *n == 0 {
                self.resync_in = None;
                let snapshot = std::sync::Arc::new(self.leader.tree.to_snapshot());
                self.to_observer.push_back(Foreign::Synced {
                    leader: self.leader_id,
                    epoch: self.leader.epoch,
                    snapshot,
                });
            } else {
                *n -= 1;
            }
        }
        // the leader answers what reached it
        let answers = self.rng.range(0, 3);
        for _ in 0..answers {
            let Some(w) = self.work.pop_front() else {
                break;
            };
            self.answer(w);
        }
        // its own clients write
        if self.rng.chance(0.15) {
            let op = self.foreign_write();
            let txn = self.leader.resolve(self.foreign_session, 0, op);
            if self.echo {
                println!("{:>6} leader resolved {} {:?}", self.now, txn.zxid, txn.op);
            }
            self.inform(Foreign::Txn(txn));
        }
        // a reconfig of the foreign ensemble now and then
        if self.reconfig_rng.chance(0.004) {
            self.reconfig();
        }
        // a leader change now and then
        if self.resync_in.is_none() && self.rng.chance(0.002) {
            self.leader_change();
        }
        if self.rng.chance(0.05) {
            self.to_observer.push_back(Foreign::Ping);
        }
        // deliveries to the observer, in order
        let n = self.rng.range(0, 4);
        for _ in 0..n {
            let Some(f) = self.to_observer.pop_front() else {
                break;
            };
            let txn = match &f {
                Foreign::Txn(t) => Some(t.zxid),
                _ => None,
            };
            self.feed(Event::Foreign(f));
            if let Some(zxid) = txn {
                let through = self.server.last_logged();
                self.feed(Event::Persisted { through });
                if self.diverged == Some(zxid) {
                    self.divergence_refused(zxid);
                    break;
                }
            }
        }
        // clients
        for c in 0..self.clients.len() {
            if self.rng.chance(0.3) {
                self.client_step(c);
            }
        }
    }

    /// What the leader sent is lost with the connection: the observer is told, and synced
    /// again by the next leader, in a new epoch.
    fn leader_change(&mut self) {
        self.leader_changes += 1;
        // requests in flight on the broken connection are lost, as its unsent INFORMs
        self.work.clear();
        self.to_observer.clear();
        self.diverged = None; // lost with the INFORMs
        self.feed(Event::Foreign(Foreign::Lost {
            why: "the simulated leader changed".into(),
        }));
        self.leader.new_epoch();
        self.leader_id = 1 + (self.leader_id % 3);
        self.resync_in = Some(self.rng.range(1, 40));
    }

    /// ZooKeeper's leader commits a reconfig: a voter joins (server.5) or leaves (server.3),
    /// and this observer stays one; its txn is the setData of /zookeeper/config with the new
    /// text, whose version is the txn's zxid.
    fn reconfig(&mut self) {
        let mut servers: Vec<(u64, &str)> = vec![(1, "participant"), (2, "participant")];
        if self.reconfig_rng.chance(0.5) {
            servers.push((3, "participant"));
        }
        servers.push((ME, "observer"));
        if self.reconfig_rng.chance(0.5) {
            servers.push((5, "participant"));
        }
        let zxid = self.leader.next_zxid();
        let mut text = String::new();
        for (id, role) in servers {
            let port = 20_000 + 10 * id;
            text.push_str(&format!(
                "server.{id}=127.0.0.1:{}:{}:{role};127.0.0.1:{port}\n",
                port + 1,
                port + 2
            ));
        }
        text.push_str(&format!("version={:x}", zxid.0));
        // ZooKeeper's PrepRequestProcessor: `new SetDataTxn(CONFIG_NODE, qv text, -1)`, the
        // version no client's setData makes (the core tells a reconfig by it)
        let op = TxnOp::Resolved(ensemble_core::ResolvedTxn::SetData {
            path: "/zookeeper/config".into(),
            data: Some(text.into_bytes()),
            version: -1,
        });
        let txn = self.leader.resolve(0, 0, op);
        assert_eq!(txn.zxid, zxid, "the reconfig's version is its zxid");
        self.reconfigs += 1;
        if self.echo {
            println!("{:>6} leader reconfig {}", self.now, txn.zxid);
        }
        self.inform(Foreign::Txn(txn));
    }

    /// `foreign.membership`: while serving, the core's configuration is the one the leader's
    /// history holds at the zxid the core applied (once a reconfig made one).
    fn check_membership(&mut self) {
        if self.violation.is_some() || self.server.foreign_leader().is_none() {
            return;
        }
        let at = self.server.tree().last_zxid();
        let Some(text) = self
            .leader
            .history
            .at("/zookeeper/config", at)
            .map(|n| String::from_utf8_lossy(&n.data).into_owned())
            .filter(|t| !t.is_empty())
        else {
            return; // no reconfig yet: the configuration the core started with
        };
        let want = match ensemble_core::membership::Membership::parse(&text) {
            Ok(m) => m,
            Err(e) => panic!("the simulated reconfig wrote an unreadable config: {e:?}"),
        };
        let got = self.server.membership();
        if got.version != want.version || got.roles() != want.roles() {
            self.fail(
                Claim::ForeignMembership,
                format!(
                    "applied through {at}: the configuration in force is version {:#x} {:?}, \
                     the leader's at that zxid version {:#x} {:?}",
                    got.version,
                    got.roles(),
                    want.version,
                    want.roles()
                ),
            );
        }
    }

    fn inform(&mut self, f: Foreign) {
        if self.resync_in.is_none() {
            self.to_observer.push_back(f);
        }
        // else: the observer will get the tree with it in its next sync
    }

    fn answer(&mut self, w: Work) {
        match w {
            Work::Request { session, cxid, op } => {
                let mut txn = self.leader.resolve(session, cxid, op);
                if self.echo {
                    println!("{:>6} leader resolved {} {:?}", self.now, txn.zxid, txn.op);
                }
                if let Some(reply) = self.leader.last_reply.take() {
                    self.leader_replies.insert((session, cxid), reply);
                }
                self.diverge(&mut txn);
                self.inform(Foreign::Txn(txn));
            }
            Work::Sync => self.inform(Foreign::SyncDone),
            Work::Revalidate { session } => {
                let valid = self.leader.tree.sessions().contains_key(&session);
                self.inform(Foreign::Revalidated { session, valid });
            }
        }
    }

    /// Every second committed multi of the observer's clients reaches the observer with one
    /// more sub, a delete of a node that never existed: a record that does not fit its tree,
    /// as a diverged replica would meet (the leader's own tree and history hold the multi as
    /// committed). ZooKeeper's leader never logs such a multi (a failed one is a MultiTxn of
    /// ErrorTxns: PrepRequestProcessor), so it is a divergence the observer must refuse whole.
    fn diverge(&mut self, txn: &mut Txn) {
        let TxnOp::Resolved(ResolvedTxn::Multi(subs)) = &mut txn.op else {
            return;
        };
        // one at a time: a second before the first's resync would meet a diverged tree
        if subs.iter().any(|s| matches!(s, ResolvedTxn::Error { .. }))
            || self.resync_in.is_some()
            || self.diverged.is_some()
        {
            return;
        }
        self.multis += 1;
        if !self.multis.is_multiple_of(2) {
            return;
        }
        subs.push(ResolvedTxn::Delete {
            path: "/app/never-created".into(),
        });
        self.diverged = Some(txn.zxid);
    }

    /// `foreign.divergent-refused`: the observer applied the divergent multi at `zxid` not at
    /// all (every znode as the leader's history holds it before the txn); then its runtime,
    /// whose digest disagrees with the leader's, drops the replica and is synced again.
    fn divergence_refused(&mut self, zxid: Zxid) {
        self.diverged = None;
        let tree = self.server.tree();
        if self.server.foreign_leader().is_none() || tree.last_zxid() != zxid {
            return; // not serving: the txn was not applied here
        }
        let mut paths: Vec<String> = tree
            .paths()
            .chain(self.leader.tree.paths())
            .filter(|p| p.starts_with("/app") || p.starts_with("/secret"))
            .map(str::to_string)
            .collect();
        paths.sort();
        paths.dedup();
        let wrong = paths.into_iter().find_map(|p| {
            let got = leader::state_of(tree, &p);
            let want = self.leader.history.before(&p, zxid).cloned();
            (got != want).then(|| format!("{p}: {got:?}, the leader's before it: {want:?}"))
        });
        if let Some(detail) = wrong {
            return self.fail(
                Claim::ForeignDivergentRefused,
                format!("after the divergent multi at {zxid} the observer holds {detail}"),
            );
        }
        // the connection is dropped: what was in flight on it is lost, as at a leader change
        self.work.clear();
        self.to_observer.clear();
        self.feed(Event::Foreign(Foreign::Lost {
            why: "the replica's digest disagrees with the leader's".into(),
        }));
        self.resync_in = Some(2);
    }

    fn foreign_write(&mut self) -> TxnOp {
        let r = self.rng.below(7);
        let path = ["/app/a", "/app/c", "/secret/x", "/app/b"][self.rng.below(4)];
        let req = match r {
            0 | 1 => Request::SetData {
                path: path.into(),
                data: format!("f{}", self.rng.range(0, 100)).into_bytes(),
                version: -1,
            },
            2 => create(path, b"f".to_vec(), open(), CreateMode::Persistent),
            3 => Request::Delete {
                path: path.into(),
                version: -1,
            },
            4 => create(
                "/app/s-",
                b"s".to_vec(),
                open(),
                CreateMode::PersistentSequential,
            ),
            5 => {
                let acl = if self.rng.chance(0.5) {
                    open()
                } else {
                    vec![Acl {
                        perms: perms::ALL,
                        id: self.alice[0].clone(),
                    }]
                };
                Request::SetAcl {
                    path: "/app/c".into(),
                    acl,
                    version: -1,
                }
            }
            _ => match self.leader.tree.get_children("/app").and_then(|mut v| {
                v.retain(|c| c.starts_with("s-"));
                v.first().cloned()
            }) {
                Some(child) => Request::Delete {
                    path: format!("/app/{child}"),
                    version: -1,
                },
                None => Request::Check {
                    path: "/app".into(),
                    version: -1,
                },
            },
        };
        // every fourth create or setData with a null buffer (ZooKeeper's `setData(path, null,
        // -1)`): the observer must mark the node null from the resolved txn, which getData
        // then answers as null (`foreign.read-prefix`)
        self.foreign_writes += 1;
        let req = match req {
            Request::SetData { .. } | Request::Create { .. }
                if self.foreign_writes.is_multiple_of(4) =>
            {
                with_null_data(req)
            }
            other => other,
        };
        // the foreign client is alice, so it may write /secret too
        TxnOp::Write {
            request: req,
            auth: self.alice.clone(),
        }
    }

    // ------------------------------------------------------------------ clients

    fn client_step(&mut self, c: usize) {
        let cl = &mut self.clients[c];
        if cl.conn.is_none() {
            if cl.backoff > 0 {
                cl.backoff -= 1;
                return;
            }
            let conn = self.next_conn;
            self.next_conn += 1;
            cl.conn = Some(conn);
            cl.connected = false;
            cl.auth.clear();
            cl.armed.clear();
            let request = ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: cl.seen.as_i64(),
                timeout_ms: 10_000,
                session_id: cl.session,
                passwd: ensemble_core::session_passwd::issued_passwd(cl.session, false),
                read_only: Some(false),
            };
            self.feed(Event::ClientConnected {
                conn,
                addr: format!("10.0.0.{}", c + 1),
                request,
            });
            return;
        }
        if !cl.connected || cl.asked.len() >= 3 {
            return;
        }
        let conn = cl.conn.expect("checked");
        let path = PATHS[self.rng.below(PATHS.len())].to_string();
        let roll = self.rng.below(100);
        let (request, asked) = match roll {
            0..=54 => {
                let watch = self.rng.chance(0.5);
                let (req, opcode) = match self.rng.below(3) {
                    0 => (
                        Request::GetData {
                            path: path.clone(),
                            watch,
                        },
                        OpCode::GetData,
                    ),
                    1 => (
                        Request::Exists {
                            path: path.clone(),
                            watch,
                        },
                        OpCode::Exists,
                    ),
                    _ => (
                        Request::GetChildren {
                            path: path.clone(),
                            watch,
                        },
                        OpCode::GetChildren,
                    ),
                };
                (
                    req,
                    Asked::Read {
                        path,
                        opcode,
                        watch,
                    },
                )
            }
            55..=84 => (self.client_write(), Asked::Other),
            85..=89 if self.clients[c].asked.is_empty() && self.clients[c].auth.is_empty() => (
                Request::Auth {
                    scheme: "digest".into(),
                    auth: b"alice:secret".to_vec(),
                },
                Asked::Auth,
            ),
            90..=96 => (
                Request::Sync {
                    path: "/app".into(),
                },
                Asked::Other,
            ),
            97 => (Request::CloseSession, Asked::Close),
            _ => return,
        };
        let cl = &mut self.clients[c];
        cl.xid += 1;
        let xid = cl.xid;
        cl.asked.insert(xid, asked);
        if self.echo {
            println!(
                "{:>6} client {c} conn {conn} xid {xid} {request:?}",
                self.now
            );
        }
        self.feed(Event::Client { conn, xid, request });
    }

    fn client_write(&mut self) -> Request {
        let target = ["/app/a", "/app/b", "/app/c"][self.rng.below(3)];
        match self.rng.below(8) {
            0 | 1 => Request::SetData {
                path: target.into(),
                data: format!("c{}", self.rng.range(0, 1000)).into_bytes(),
                version: -1,
            },
            2 => create(target, b"n".to_vec(), open(), CreateMode::Persistent),
            3 => create(target, b"e".to_vec(), open(), CreateMode::Ephemeral),
            4 => Request::Delete {
                path: target.into(),
                version: -1,
            },
            5 => create(
                "/app/s-",
                b"q".to_vec(),
                open(),
                if self.rng.chance(0.5) {
                    CreateMode::EphemeralSequential
                } else {
                    CreateMode::PersistentSequential
                },
            ),
            6 => Request::SetAcl {
                path: "/app/b".into(),
                acl: if self.rng.chance(0.5) {
                    open()
                } else {
                    vec![Acl {
                        perms: perms::ALL,
                        id: self.alice[0].clone(),
                    }]
                },
                version: -1,
            },
            _ => Request::Multi(vec![
                MultiOp::Create {
                    op: CreateOp::Create2,
                    path: "/app/m-".into(),
                    data: b"m".to_vec(),
                    acl: open(),
                    mode: CreateMode::PersistentSequential,
                    ttl: -1,
                },
                MultiOp::SetData {
                    path: target.into(),
                    data: b"multi".to_vec(),
                    version: -1,
                },
                MultiOp::Check {
                    path: "/app".into(),
                    version: -1,
                },
            ]),
        }
    }

    // ------------------------------------------------------------------ the core

    fn feed(&mut self, event: Event) {
        let mut ready = Ready::new();
        self.server.handle_ready(self.now, event, &mut ready);
        let mut io = Io::default();
        let _ = ready.drive_both(&mut io);
        for a in io.actions {
            self.take(a);
            if self.violation.is_some() {
                return;
            }
        }
    }

    fn take(&mut self, a: Action) {
        match a {
            Action::Send { to, msg } => {
                if to != self.leader_id {
                    return; // a message to a leader of before the change: lost
                }
                match msg {
                    PeerMsg::Request {
                        session, cxid, op, ..
                    } => {
                        self.forwarded += 1;
                        self.work.push_back(Work::Request {
                            session,
                            cxid,
                            op: *op,
                        });
                    }
                    PeerMsg::SyncRequest { .. } => self.work.push_back(Work::Sync),
                    PeerMsg::Revalidate { session } => {
                        self.work.push_back(Work::Revalidate { session })
                    }
                    _ => {}
                }
            }
            Action::ConnectReply { conn, response } => {
                self.mix(&format!("connect {conn} {:x}", response.session_id));
                let Some(c) = self.client_of(conn) else {
                    return;
                };
                let cl = &mut self.clients[c];
                if response.session_id == 0 {
                    cl.session = 0; // expired: a new one next time
                } else {
                    cl.session = response.session_id;
                    cl.connected = true;
                }
            }
            Action::Close { conn } => {
                self.mix(&format!("close {conn}"));
                if let Some(c) = self.client_of(conn) {
                    let cl = &mut self.clients[c];
                    cl.conn = None;
                    cl.connected = false;
                    cl.asked.clear();
                    cl.armed.clear();
                    cl.backoff = 3;
                }
            }
            Action::Reply {
                conn,
                xid,
                zxid,
                opcode,
                reply,
            } => {
                self.mix(&format!("reply {conn} {xid} {zxid} {opcode:?} {reply:?}"));
                if let Some(c) = self.client_of(conn) {
                    self.replied(c, xid, zxid, reply);
                }
            }
            Action::Watch { conn, event } => {
                self.mix(&format!("watch {conn} {event:?}"));
                if event.kind == EventType::None {
                    return;
                }
                if let Some(c) = self.client_of(conn) {
                    self.events += 1;
                    self.fired(c, event.kind, &event.path);
                }
            }
            _ => {}
        }
    }

    fn client_of(&self, conn: ConnId) -> Option<usize> {
        self.clients.iter().position(|c| c.conn == Some(conn))
    }

    fn fail(&mut self, claim: Claim, detail: String) {
        if self.violation.is_none() {
            self.violation = Some(Violation {
                claim,
                at_ms: self.now,
                detail,
            });
        }
    }

    fn mix(&mut self, line: &str) {
        if self.echo {
            println!("{:>6} {line}", self.now);
        }
        for b in line.bytes() {
            self.hash ^= u64::from(b);
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn replied(&mut self, c: usize, xid: i32, zxid: Zxid, reply: Reply) {
        let name = self.clients[c].name;
        let Some(asked) = self.clients[c].asked.remove(&xid) else {
            return;
        };
        if self.diverged == Some(zxid) {
            // answered by a replica that left the leader's history at this txn (the leader
            // holds the multi, the refusing observer not): `foreign.divergent-refused` judges
            // its tree, and the runtime drops it before anything else is served
            return;
        }
        let is_read = matches!(asked, Asked::Read { .. });
        if is_read && zxid < self.clients[c].seen {
            return self.fail(
                Claim::ForeignReadPrefix,
                format!(
                    "client {name} got a reply at {zxid} after one at {}",
                    self.clients[c].seen
                ),
            );
        }
        if is_read {
            self.clients[c].seen = zxid;
        }
        self.check_missed(c, zxid);
        match asked {
            Asked::Auth => {
                if reply.is_ok() {
                    // a change applied before it was judged with the ids it had then
                    let at = self.server.tree().last_zxid();
                    self.spend_unheard(c, at);
                    let ids = self.alice.clone();
                    self.clients[c].auth.extend(ids);
                }
            }
            Asked::Read {
                path,
                opcode,
                watch,
            } => {
                self.reads += 1;
                self.check_read(c, &path, opcode, zxid, &reply);
                if watch {
                    let class = match (opcode, &reply) {
                        (OpCode::GetChildren, Ok(_)) => Some(WatchClass::Child),
                        (OpCode::GetData, Ok(_)) => Some(WatchClass::Data),
                        (OpCode::Exists, Ok(_) | Err(KeeperError::NoNode)) => {
                            Some(WatchClass::Data)
                        }
                        _ => None,
                    };
                    if let Some(class) = class {
                        let cl = &mut self.clients[c];
                        // one watch per connection, path and class: the older stands
                        if !cl.armed.iter().any(|a| a.path == path && a.class == class) {
                            cl.armed.push(Armed {
                                path,
                                class,
                                since: zxid,
                            });
                        }
                    }
                }
            }
            Asked::Other => {
                let key = (self.clients[c].session, xid);
                if let Some(want) = self.leader_replies.remove(&key)
                    && want != reply
                {
                    self.fail(
                        Claim::ForeignWriteReply,
                        format!(
                            "client {name}'s write (xid {xid}) answered {reply:?} at {zxid}; the \
                             leader answered {want:?}"
                        ),
                    );
                }
            }
            Asked::Close => {}
        }
    }

    /// The read is the leader's state at the reply's zxid, READ permitted.
    fn check_read(&mut self, c: usize, path: &str, opcode: OpCode, zxid: Zxid, reply: &Reply) {
        let hist: &History = &self.leader.history;
        let state = hist.at(path, zxid).cloned();
        let auth = self.clients[c].auth.clone();
        let name = self.clients[c].name;
        let may_read = |s: &leader::NodeState| {
            ensemble_core::acl::check(&s.acl, perms::READ, &with_ip(&auth, c))
        };
        let bad = match (&state, reply) {
            (Some(s), Ok(_)) if !may_read(s) => {
                return self.fail(
                    Claim::ForeignAcl,
                    format!(
                        "client {name} read {path} at {zxid} without READ ({:?})",
                        s.acl
                    ),
                );
            }
            (Some(s), Ok(Response::GetData { data, stat })) => {
                (s.null || data != &s.data || stat != &s.stat).then(|| format!("{data:?} {stat:?}"))
            }
            (Some(s), Ok(Response::GetDataNull { stat })) => {
                (!s.null || stat != &s.stat).then(|| format!("null {stat:?}"))
            }
            (Some(s), Ok(Response::Stat(stat))) => (stat != &s.stat).then(|| format!("{stat:?}")),
            (Some(s), Ok(Response::GetChildren { children })) => {
                let mut got = children.clone();
                got.sort();
                (got != s.children).then(|| format!("{got:?}"))
            }
            (Some(s), Err(KeeperError::NoAuth)) => {
                may_read(s).then(|| "NoAuth, though its ids may READ".to_string())
            }
            (None, Err(KeeperError::NoNode)) => None,
            (None, r) => Some(format!("{r:?} where there is no node")),
            (Some(_), r) => Some(format!("{r:?}")),
        };
        if let Some(got) = bad {
            self.fail(
                Claim::ForeignReadPrefix,
                format!(
                    "client {name} read {path} at {zxid} ({opcode:?}): {got}; the leader's state \
                     there: {state:?}"
                ),
            );
        }
    }

    /// A reply at `zxid` reads past a change a watch of the client should have announced.
    fn check_missed(&mut self, c: usize, zxid: Zxid) {
        let mut spent = Vec::new();
        for (i, a) in self.clients[c].armed.iter().enumerate() {
            let Some(change) = self
                .leader
                .history
                .first_change_after(&a.path, a.since, a.class)
            else {
                continue;
            };
            if change > zxid {
                continue;
            }
            if !self.may_hear(c, &a.path, change) {
                spent.push(i);
                continue;
            }
            let name = self.clients[c].name;
            let h = &self.leader.history;
            let detail = format!(
                "client {name}'s {:?} watch on {} (set at {}) never fired for the change at \
                 {change}, and it read at {zxid} (the node then: {:?}; after: {:?})",
                a.class,
                a.path,
                a.since,
                h.at(&a.path, a.since),
                h.at(&a.path, change)
            );
            return self.fail(Claim::ForeignWatchOnce, detail);
        }
        for i in spent.into_iter().rev() {
            self.clients[c].armed.remove(i);
        }
    }

    /// Drop the client's watches whose change (at or before `at`) it could not hear with the
    /// ids it has now: the core spent them silently.
    fn spend_unheard(&mut self, c: usize, at: Zxid) {
        let armed = std::mem::take(&mut self.clients[c].armed);
        let kept = armed
            .into_iter()
            .filter(|a| {
                match self
                    .leader
                    .history
                    .first_change_after(&a.path, a.since, a.class)
                {
                    Some(change) if change <= at => self.may_hear(c, &a.path, change),
                    _ => true,
                }
            })
            .collect();
        self.clients[c].armed = kept;
    }

    /// May the client hear of the change of `path` at `zxid` (READ on the node as it stood)?
    fn may_hear(&self, c: usize, path: &str, zxid: Zxid) -> bool {
        let h = &self.leader.history;
        let acl = h
            .at(path, zxid)
            .or_else(|| h.before(path, zxid))
            .map(|s| s.acl.clone())
            .unwrap_or_default();
        ensemble_core::acl::check(&acl, perms::READ, &with_ip(&self.clients[c].auth, c))
    }

    fn fired(&mut self, c: usize, kind: EventType, path: &str) {
        let at = self.server.tree().last_zxid();
        let name = self.clients[c].name;
        if !self.may_hear(c, path, at) {
            return self.fail(
                Claim::ForeignAcl,
                format!("client {name} heard {kind:?} on {path} at {at} without READ"),
            );
        }
        let classes: &[WatchClass] = match kind {
            EventType::NodeChildrenChanged => &[WatchClass::Child],
            EventType::NodeDeleted => &[WatchClass::Data, WatchClass::Child],
            _ => &[WatchClass::Data],
        };
        let cl = &mut self.clients[c];
        let before = cl.armed.len();
        let mut wrong = None;
        cl.armed.retain(|a| {
            let hit = a.path == path && classes.contains(&a.class);
            if hit {
                let first = self
                    .leader
                    .history
                    .first_change_after(&a.path, a.since, a.class);
                if first != Some(at) {
                    wrong = Some((a.since, first));
                }
            }
            !hit
        });
        if cl.armed.len() == before {
            return self.fail(
                Claim::ForeignWatchOnce,
                format!("client {name} heard {kind:?} on {path} at {at} with no watch armed"),
            );
        }
        if let Some((since, first)) = wrong {
            self.fail(
                Claim::ForeignWatchOnce,
                format!(
                    "client {name} heard {kind:?} on {path} at {at}, but the first change after \
                     its watch (set at {since}) is {first:?}"
                ),
            );
        }
    }
}

/// A client's ids as the core holds them: its address, then what it added.
fn with_ip(auth: &[Id], c: usize) -> Vec<Id> {
    let mut ids = vec![Id::new("ip", &format!("10.0.0.{}", c + 1))];
    ids.extend(auth.iter().cloned());
    ids
}

fn create(path: &str, data: Vec<u8>, acl: Vec<Acl>, mode: CreateMode) -> Request {
    Request::Create {
        op: CreateOp::Create,
        path: path.into(),
        data,
        acl,
        mode,
        ttl: -1,
    }
}

fn write_op(request: Request) -> TxnOp {
    TxnOp::Write {
        request,
        auth: Vec::new(),
    }
}
