//! One ensemble member: events in, effects out.

use crate::client_pipeline::{ClientPipeline, ConnPhase};
use crate::config::Config;
pub use crate::effect::Effect;
use crate::effect::Ready;
use crate::election::{Election, Outcome};
use crate::peer::{Notification, Vote};
use crate::peer::{PeerMsg, ServerState};
use crate::plant::{self, Plant};
use crate::proto::{ConnectRequest, OpCode, Reply, Request, SessionId};
use crate::quorum::QuorumVerifier;
use crate::snapshot_scheduler::{SNAPSHOT_TICK_BUDGET, SnapshotScheduler};
use crate::tree::DataTree;
use crate::tree::TreeOptions;
use crate::txn::{ServerId, Txn};
use crate::watch::WatchManager;
use crate::zab_log::ZabLog;
use crate::zxid::Zxid;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Milliseconds. The node passes wall-clock ms since the Unix epoch; the simulator its virtual
/// clock. The core only compares and subtracts them, and stamps txns with the leader's.
pub type Millis = u64;

/// A client connection, numbered by the runtime; unique for the life of one `Server`.
pub type ConnId = u64;

/// What the runtime tells the core.
#[derive(Clone, Debug)]
pub enum Event {
    /// Time passed. Deliver at least every `Server::tick_interval()` ms.
    Tick,
    Peer {
        from: ServerId,
        msg: PeerMsg,
    },
    /// The quorum-channel connection with `peer` broke: anything in flight either way may be lost.
    PeerDisconnected {
        peer: ServerId,
    },
    /// A client's handshake. `addr` is its IP address (for `ip` ACLs and maxClientCnxns).
    ClientConnected {
        conn: ConnId,
        addr: String,
        request: ConnectRequest,
    },
    Client {
        conn: ConnId,
        xid: i32,
        request: Request,
    },
    /// A request the runtime could not decode but answers as ZooKeeper does
    /// (`jute::triage_request`): `reply` goes out in its turn; the connection closes after it
    /// if `close`.
    ClientRefused {
        conn: ConnId,
        xid: i32,
        opcode: OpCode,
        reply: Reply,
        close: bool,
    },
    ClientDisconnected {
        conn: ConnId,
    },
    /// Every txn appended so far with zxid <= `through` is durable.
    Persisted {
        through: Zxid,
    },
}

/// ZAB's two persisted epochs, plus the leader `accepted_epoch` was accepted from (so a
/// learner never ACKEPOCHs the same epoch to two different leaders).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Epochs {
    pub accepted_epoch: u32,
    pub accepted_from: ServerId,
    pub current_epoch: u32,
}

/// What the runtime found on disk at start.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    pub epochs: Epochs,
    /// The newest valid snapshot: its zxid and bytes (as `Effect::Snapshot` gave them).
    pub snapshot: Option<(Zxid, Arc<Vec<u8>>)>,
    /// The logged txns after the snapshot, in zxid order.
    pub log: Vec<Txn>,
}

/// A snapshot the runtime handed back could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("snapshot at {zxid} is unreadable: {reason}")]
    BadSnapshot { zxid: Zxid, reason: String },
    #[error("log is not in zxid order at {zxid}")]
    LogOrder { zxid: Zxid },
}

/// A summary for four-letter words and the simulator.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub state: Option<ServerState>,
    pub standalone: bool,
    pub leader: Option<ServerId>,
    pub current_epoch: u32,
    pub accepted_epoch: u32,
    pub election_epoch: u64,
    pub last_applied: Zxid,
    pub last_logged: Zxid,
    pub node_count: usize,
    pub approximate_data_size: u64,
    pub ephemerals_count: usize,
    pub sessions: usize,
    pub connections: usize,
    pub watch_count: usize,
    pub watched_paths: usize,
    pub outstanding_requests: usize,
    /// Leader only: connected learners, voting followers synced, observers.
    pub learners: usize,
    pub synced_followers: usize,
    pub synced_observers: usize,
    pub pending_proposals: usize,
}

/// What a server is doing in the protocol right now.
pub(crate) enum Role {
    Looking,
    Leading(Box<crate::leader::Leader>),
    /// Following or observing.
    Learning(Box<crate::learner::Learner>),
}

/// One ensemble member.
pub struct Server {
    pub(crate) cfg: Config,
    pub(crate) now: Millis,
    pub(crate) epochs: Epochs,
    pub(crate) tree: DataTree,
    pub(crate) watches: WatchManager,
    /// Recent committed txns (for DIFF), every logged one not yet applied, the durable point.
    pub(crate) log: ZabLog,
    pub(crate) state: ServerState,
    pub(crate) election: Election,
    /// Every quorum question goes here.
    pub(crate) quorum: QuorumVerifier,
    pub(crate) role: Role,
    /// Client connections, their queues and what they wait for.
    pub(crate) clients: ClientPipeline,
    /// FOLLOWERINFOs that arrived while we were still LOOKING.
    pub(crate) early_learners: BTreeMap<ServerId, PeerMsg>,
    pub(crate) snapshots: SnapshotScheduler,
}

impl Server {
    /// A member recovered from what the runtime found on disk. It starts LOOKING.
    pub fn new(config: Config, recovered: Recovered, now: Millis) -> Result<Server, RecoverError> {
        let opts = TreeOptions {
            extended_types: config.extended_types,
            plant: config.plant,
        };
        let tree = match &recovered.snapshot {
            Some((zxid, bytes)) => {
                let tree = DataTree::from_snapshot(bytes, opts).map_err(|e| {
                    RecoverError::BadSnapshot {
                        zxid: *zxid,
                        reason: e.to_string(),
                    }
                })?;
                if tree.last_zxid() != *zxid {
                    return Err(RecoverError::BadSnapshot {
                        zxid: *zxid,
                        reason: format!("it holds state at {}", tree.last_zxid()),
                    });
                }
                tree
            }
            None => DataTree::new(opts),
        };
        let base = tree.last_zxid();
        let mut history = VecDeque::new();
        let mut last = base;
        for txn in recovered.log {
            if txn.zxid <= base {
                continue; // already in the snapshot
            }
            if txn.zxid <= last {
                return Err(RecoverError::LogOrder { zxid: txn.zxid });
            }
            last = txn.zxid;
            history.push_back(Arc::new(txn));
        }
        // ZooKeeper's initializeNextSessionId: time in the middle bits, our id on top, so ids
        // stay unique across servers and restarts.
        let next_session = ((((now as i64) << 24) as u64 >> 8) | (config.my_id << 56)) as i64;
        let mut server = Server {
            now,
            epochs: recovered.epochs,
            tree,
            watches: WatchManager::new(),
            log: ZabLog::recovered(base, history),
            state: ServerState::Looking,
            election: Election::new(),
            quorum: QuorumVerifier::majority(&config),
            role: Role::Looking,
            clients: ClientPipeline::new(next_session),
            early_learners: BTreeMap::new(),
            snapshots: SnapshotScheduler::new(&config),
            cfg: config,
        };
        let vote = server.my_vote();
        server.election.start(&server.cfg, vote, now);
        Ok(server)
    }

    /// Feed one event at time `now`; its output is added to `ready`, durable writes ahead of
    /// what depends on them. The entry point for runtimes and the test kit, which consume
    /// `ready` with [`Ready::drive`] or [`Ready::drive_both`] (see [`crate::effect`] for the
    /// order contract).
    // inlined, so that the event is moved once, into the handler
    #[inline]
    pub fn handle_ready(&mut self, now: Millis, event: Event, ready: &mut Ready) {
        ready.record(|out| self.handle(now, event, out));
    }

    /// Feed one event at time `now`; effects are appended to `out`, in the order the contract
    /// of [`crate::effect`] gives them. Crate-internal: every driver steps a server with
    /// [`Server::handle_ready`], so that it can only carry the output out through `Ready`.
    pub(crate) fn handle(&mut self, now: Millis, event: Event, out: &mut Vec<Effect>) {
        self.now = self.now.max(now);
        match event {
            Event::Tick => self.on_tick(out),
            Event::Peer { from, msg } => self.on_peer(from, msg, out),
            Event::PeerDisconnected { peer } => self.on_peer_disconnected(peer, out),
            Event::ClientConnected {
                conn,
                addr,
                request,
            } => self.on_connect(conn, addr, request, out),
            Event::Client { conn, xid, request } => self.on_request(conn, xid, request, out),
            Event::ClientRefused {
                conn,
                xid,
                opcode,
                reply,
                close,
            } => self.on_refused(conn, xid, opcode, reply, close, out),
            Event::ClientDisconnected { conn } => self.drop_conn(conn),
            Event::Persisted { through } => self.on_persisted(through, out),
        }
        self.check_invariants();
    }

    /// How often the runtime must deliver `Event::Tick` (ms).
    pub fn tick_interval(&self) -> Millis {
        (self.cfg.tick_time_ms / 4).clamp(1, 50)
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn id(&self) -> ServerId {
        self.cfg.my_id
    }
    pub fn state(&self) -> ServerState {
        self.state
    }
    /// The applied (committed) state.
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }
    pub fn epochs(&self) -> Epochs {
        self.epochs
    }
    pub fn last_logged(&self) -> Zxid {
        self.log.last_logged()
    }
    /// The logged txns still held in memory (recent committed ones and the unapplied tail).
    pub fn history(&self) -> impl DoubleEndedIterator<Item = &Txn> {
        self.log.iter().map(|t| &**t)
    }
    /// The epoch this server leads as an established leader (a quorum ACKed NEWLEADER).
    pub fn established_epoch(&self) -> Option<u32> {
        match &self.role {
            Role::Leading(l) if l.established() => Some(l.epoch),
            _ => None,
        }
    }
    /// Is this server answering clients?
    pub fn is_serving(&self) -> bool {
        match &self.role {
            Role::Leading(l) => l.established(),
            Role::Learning(l) => l.serving(),
            Role::Looking => false,
        }
    }
    /// The session a connection is bound to, with its negotiated timeout.
    pub fn connection_session(&self, conn: ConnId) -> Option<(SessionId, i32)> {
        self.clients
            .conns
            .get(&conn)
            .filter(|c| c.phase == ConnPhase::Connected)
            .map(|c| (c.session, c.timeout_ms))
    }
    pub fn watches(&self) -> &WatchManager {
        &self.watches
    }

    pub fn status(&self) -> Status {
        let mut st = Status {
            state: Some(self.state),
            standalone: self.cfg.is_standalone(),
            leader: None,
            current_epoch: self.epochs.current_epoch,
            accepted_epoch: self.epochs.accepted_epoch,
            election_epoch: self.election.logical_clock,
            last_applied: self.tree.last_zxid(),
            last_logged: self.last_logged(),
            node_count: self.tree.node_count(),
            approximate_data_size: self.tree.approximate_data_size(),
            ephemerals_count: self.tree.ephemerals_count(),
            sessions: self.tree.sessions().len(),
            connections: self.clients.conns.len(),
            watch_count: self.watches.watch_count(),
            watched_paths: self.watches.path_count(),
            outstanding_requests: self.clients.conns.values().map(|c| c.queue.len()).sum(),
            ..Status::default()
        };
        match &self.role {
            Role::Leading(l) => {
                st.leader = Some(self.cfg.my_id);
                l.fill_status(&self.cfg, &mut st);
            }
            Role::Learning(l) => st.leader = Some(l.leader),
            Role::Looking => {}
        }
        st
    }

    pub(crate) fn my_vote(&self) -> Vote {
        Vote {
            leader: self.cfg.my_id,
            zxid: self.last_logged(),
            peer_epoch: self.epochs.current_epoch,
        }
    }

    pub(crate) fn plant(&self, p: Plant) -> bool {
        plant::active(self.cfg.plant, p)
    }

    // ---------------------------------------------------------------- roles

    pub(crate) fn set_state(&mut self, state: ServerState, out: &mut Vec<Effect>) {
        // The role changes first; the state announced follows it.
        assert_eq!(
            matches!(self.role, Role::Looking),
            state == ServerState::Looking,
            "state {state:?} announced for another role"
        );
        if self.state != state {
            self.state = state;
            out.push(Effect::StateChanged {
                state,
                epoch: self.epochs.current_epoch,
            });
        }
    }

    /// Leave whatever role we had and start a new election round. Clients are disconnected,
    /// as ZooKeeper does when a server stops serving.
    pub(crate) fn go_looking(&mut self, why: &str, out: &mut Vec<Effect>) {
        tracing::info!(server = self.cfg.my_id, why, "going LOOKING");
        match std::mem::replace(&mut self.role, Role::Looking) {
            Role::Leading(l) => {
                for peer in l.learner_ids() {
                    out.push(Effect::DisconnectPeer { peer });
                }
            }
            Role::Learning(l) => {
                if self.plant(Plant::Zk4712SyncThreadSurvives) {
                    // the in-memory state is fast-forwarded from the log as it is now, while
                    // the sync thread goes on writing what it still had queued
                    let logged = self.log.durable().max(self.tree.last_zxid());
                    self.log.drop_after(logged);
                }
                out.push(Effect::DisconnectPeer { peer: l.leader })
            }
            Role::Looking => {}
        }
        if self.plant(Plant::Zk2845RetainedDbBehindLog) {
            // the retained in-memory database holds what was applied; the log holds more
            let applied = self.tree.last_zxid();
            self.log.drop_after(applied);
            self.log.forget_durable_after(applied);
        }
        self.close_all_clients(out);
        self.set_state(ServerState::Looking, out);
        let vote = self.my_vote();
        let round = self.election.logical_clock;
        self.election.start(&self.cfg, vote, self.now);
        assert!(
            self.election.logical_clock > round,
            "a new election in an old round"
        );
        assert!(self.clients.conns.is_empty());
    }

    pub(crate) fn broadcast_notification(&mut self, out: &mut Vec<Effect>) {
        let n = self.election.notification(self.state);
        let me = self.cfg.my_id;
        let to: Vec<ServerId> = self.quorum.voters().filter(|id| *id != me).collect();
        for peer in to {
            out.push(Effect::Send {
                to: peer,
                msg: PeerMsg::Notification(n),
            });
        }
    }

    fn on_tick(&mut self, out: &mut Vec<Effect>) {
        // An idle server still finishes its snapshot, a bounded slice per tick.
        self.snapshot_step(SNAPSHOT_TICK_BUDGET, out);
        match self.role {
            Role::Looking => {
                let outcome = self.election.tick(&self.cfg, self.now);
                self.election_outcome(outcome, out);
            }
            Role::Leading(_) => self.leader_tick(out),
            Role::Learning(_) => self.learner_tick(out),
        }
    }

    fn election_outcome(&mut self, outcome: Outcome, out: &mut Vec<Effect>) {
        match outcome {
            Outcome::Continue => {}
            Outcome::Broadcast => self.broadcast_notification(out),
            Outcome::Answer(peer) => {
                let n = self.election.notification(self.state);
                out.push(Effect::Send {
                    to: peer,
                    msg: PeerMsg::Notification(n),
                });
            }
            Outcome::Decided {
                vote,
                election_epoch,
            } => {
                self.election.logical_clock = election_epoch;
                self.election.proposal = vote;
                let early = std::mem::take(&mut self.early_learners);
                if vote.leader == self.cfg.my_id && self.cfg.is_voter(self.cfg.my_id) {
                    self.become_leader(out);
                    for (from, msg) in early {
                        self.leader_receive(from, msg, out);
                    }
                } else if vote.leader != self.cfg.my_id {
                    for peer in early.into_keys().filter(|p| *p != vote.leader) {
                        out.push(Effect::DisconnectPeer { peer });
                    }
                    self.become_learner(vote.leader, out);
                }
                // Decided: we lead, follow or observe, unless the vote names us and we
                // cannot lead (an observer).
                assert!(
                    !matches!(self.role, Role::Looking)
                        || (vote.leader == self.cfg.my_id && !self.cfg.is_voter(vote.leader))
                        || self.state == ServerState::Looking
                );
            }
        }
    }

    fn on_peer(&mut self, from: ServerId, msg: PeerMsg, out: &mut Vec<Effect>) {
        if !self.cfg.members.contains_key(&from) || from == self.cfg.my_id {
            return; // not one of ours: never trusted
        }
        if let PeerMsg::Notification(n) = msg {
            self.on_notification(from, n, out);
            return;
        }
        match self.role {
            Role::Leading(_) => self.leader_receive(from, msg, out),
            Role::Learning(_) => self.learner_receive(from, msg, out),
            Role::Looking => match msg {
                // A learner that decided a moment before we did: keep its FOLLOWERINFO for
                // when we lead (ZooKeeper's learners retry their connection meanwhile).
                PeerMsg::LearnerInfo { .. } => {
                    self.early_learners.insert(from, msg);
                }
                // A learner of a leadership we no longer hold: make it notice at once.
                PeerMsg::Request { .. } | PeerMsg::Ack { .. } | PeerMsg::SyncRequest { .. } => {
                    out.push(Effect::DisconnectPeer { peer: from });
                }
                _ => {}
            },
        }
    }

    fn on_notification(&mut self, from: ServerId, n: Notification, out: &mut Vec<Effect>) {
        if self.state == ServerState::Looking {
            let outcome = self.election.receive(&self.cfg, from, &n, self.now);
            self.election_outcome(outcome, out);
        } else if n.state == ServerState::Looking {
            // Out of the election: tell the looking server who leads.
            let mine = self.election.notification(self.state);
            out.push(Effect::Send {
                to: from,
                msg: PeerMsg::Notification(mine),
            });
        }
    }

    fn on_peer_disconnected(&mut self, peer: ServerId, out: &mut Vec<Effect>) {
        match &mut self.role {
            Role::Leading(l) => l.remove_learner(peer),
            Role::Learning(l) if l.leader == peer => {
                self.go_looking("lost the leader's connection", out)
            }
            _ => {}
        }
        if let Role::Leading(l) = &self.role {
            assert!(
                !l.learners.contains_key(&peer),
                "a disconnected learner kept"
            );
            self.leader_after_learner_change(out);
        }
    }

    fn on_persisted(&mut self, through: Zxid, out: &mut Vec<Effect>) {
        if !self.log.persisted(through) {
            return;
        }
        match self.role {
            Role::Leading(_) => self.leader_persisted(out),
            Role::Learning(_) => self.learner_persisted(out),
            Role::Looking => {}
        }
    }

    // ---------------------------------------------------------------- invariants

    /// What holds between any two events; the simulator turns a violation into a failing seed.
    fn check_invariants(&self) {
        self.log.check_invariants(self.tree.last_zxid());
        match &self.role {
            Role::Looking => {
                assert_eq!(self.state, ServerState::Looking, "role and state disagree");
                assert!(
                    self.clients.conns.is_empty(),
                    "a LOOKING server keeps no clients"
                );
                self.election.check_invariants(&self.cfg);
            }
            Role::Leading(l) => {
                assert_eq!(self.state, ServerState::Leading, "role and state disagree");
                assert!(self.cfg.is_voter(self.cfg.my_id), "an observer leads");
                l.check_invariants(self.cfg.my_id, &self.epochs);
                assert!(
                    l.established() || self.clients.conns.is_empty(),
                    "clients before the leader is established"
                );
            }
            Role::Learning(l) => {
                let state = if l.observer {
                    ServerState::Observing
                } else {
                    ServerState::Following
                };
                assert_eq!(self.state, state, "role and state disagree");
                assert_eq!(l.observer, self.cfg.is_observer());
                assert_ne!(l.leader, self.cfg.my_id, "a learner of itself");
                assert!(
                    l.serving() || self.clients.conns.is_empty(),
                    "clients before the learner is up to date"
                );
                l.check_invariants(&self.epochs);
            }
        }
        assert!(
            self.early_learners.is_empty() || matches!(self.role, Role::Looking),
            "FOLLOWERINFOs kept past the election"
        );
        self.clients.check_invariants();
    }
}
