//! One ensemble member: events in, effects out.

use crate::config::Config;
pub use crate::effect::Effect;
use crate::effect::Ready;
use crate::election::{Election, Outcome};
use crate::peer::{Notification, Vote};
use crate::peer::{PeerMsg, ServerState};
use crate::plant::{self, Plant};
use crate::proto::{ConnectRequest, Id, OpCode, Reply, Request, SessionId, WatchedEvent};
use crate::tree::DataTree;
use crate::tree::TreeOptions;
use crate::txn::TxnOp;
use crate::txn::{ServerId, Txn};
use crate::watch::WatchManager;
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

/// Where a connection is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ConnPhase {
    /// createSession proposed under this request number.
    Creating {
        rid: u64,
        timeout_ms: i32,
    },
    /// Re-attaching to a session this server has not seen yet (waiting for a quorum sync), or
    /// that has seen a zxid we have not applied yet (waiting for it).
    Revalidating {
        sync_id: u64,
    },
    Connected,
}

/// What a queued request waits for before it can be answered (in order, per connection).
#[derive(Clone, Debug)]
pub(crate) enum Wait {
    /// Answer by reading the tree when it reaches the front.
    Read(Request),
    /// A write: the result arrives when its txn is applied here.
    Write { rid: u64 },
    /// A write the leader refused (nothing was proposed): answered with this error in its
    /// turn, at the zxid applied then (so replies' zxids never go back).
    Refused(crate::proto::KeeperError),
    /// A write not yet submitted: queued first, then submitted by `drain` at once, unless an
    /// earlier `sync` of its connection is still unanswered.
    Held {
        op: TxnOp,
        session: SessionId,
        cxid: i32,
    },
    /// A sync: the leader's reply says through which zxid we must have applied.
    Sync {
        id: u64,
        path: String,
        through: Option<Zxid>,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub xid: i32,
    pub opcode: OpCode,
    /// How many of the connection's auth ids it was sent with (they are only ever added): a
    /// read is judged with those, not with ids an addAuth sent after it added.
    pub auth_len: usize,
    pub wait: Wait,
    pub result: Option<(Zxid, Reply)>,
}

pub(crate) struct Conn {
    pub phase: ConnPhase,
    pub session: SessionId,
    pub timeout_ms: i32,
    pub read_only: Option<bool>,
    /// `ip:<addr>` plus every digest id added with auth.
    pub auth: Vec<Id>,
    pub queue: VecDeque<Pending>,
    /// closeSession sent: answer it, then close.
    pub closing: bool,
}

/// Txns until the next snapshot: ZooKeeper's `snapCount / 2 + randRoll`, with `randRoll` in
/// `[0, snapCount / 2)` drawn again after each snapshot, so that the servers of an ensemble do
/// not all snapshot and roll their logs at the same moment (with a fixed count they did, and
/// the burst of syncs stalled writes). The draw is a hash of our id and the snapshot's number,
/// so it is deterministic.
fn snapshot_interval(snap_count: u64, my_id: ServerId, taken: u64) -> u64 {
    let half = (snap_count / 2).max(1);
    // splitmix64's finaliser
    let mut z = my_id
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(taken.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    half + z % half
}

/// Snapshot nodes written per tick (about a millisecond of work).
const SNAPSHOT_TICK_BUDGET: usize = 4096;

/// One ensemble member.
pub struct Server {
    pub(crate) cfg: Config,
    pub(crate) now: Millis,
    pub(crate) epochs: Epochs,
    pub(crate) tree: DataTree,
    pub(crate) watches: WatchManager,
    /// Recent committed txns (for DIFF) followed by every logged but not yet applied txn.
    /// Shared with the effects and messages that carry them, so a txn is never deep-copied.
    pub(crate) history: VecDeque<Arc<Txn>>,
    /// Every txn with zxid > `window_base` that this server has logged is in `history`.
    pub(crate) window_base: Zxid,
    /// The log is durable through this zxid.
    pub(crate) durable: Zxid,
    pub(crate) state: ServerState,
    pub(crate) election: Election,
    pub(crate) role: Role,
    pub(crate) conns: BTreeMap<ConnId, Conn>,
    /// Request numbers of writes (and session creations) awaiting their txn.
    pub(crate) rid_owner: BTreeMap<u64, ConnId>,
    pub(crate) next_rid: u64,
    /// Sync ids awaiting the leader's quorum round.
    pub(crate) sync_owner: BTreeMap<u64, ConnId>,
    pub(crate) next_sync_id: u64,
    /// Re-attaching connections waiting to have applied through a sync point.
    pub(crate) revalidate_at: Vec<(Zxid, ConnId)>,
    /// Connections whose front `sync` waits to have applied through a zxid.
    pub(crate) sync_waits: Vec<(Zxid, ConnId)>,
    /// Watch events setWatches fires, sent just before its reply.
    pub(crate) deferred_watches: Vec<(ConnId, WatchedEvent)>,
    pub(crate) next_session: i64,
    /// FOLLOWERINFOs that arrived while we were still LOOKING.
    pub(crate) early_learners: BTreeMap<ServerId, PeerMsg>,
    pub(crate) since_snapshot: u64,
    pub(crate) snapshot_every: u64,
    pub(crate) snapshots_taken: u64,
    /// Snapshot nodes written per txn applied while one is being written.
    pub(crate) snapshot_pace: usize,
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
        let snapshot_every = snapshot_interval(config.snap_count, config.my_id, 0);
        let mut server = Server {
            now,
            epochs: recovered.epochs,
            tree,
            watches: WatchManager::new(),
            history,
            window_base: base,
            durable: last,
            state: ServerState::Looking,
            election: Election::new(),
            role: Role::Looking,
            conns: BTreeMap::new(),
            rid_owner: BTreeMap::new(),
            next_rid: 1,
            sync_owner: BTreeMap::new(),
            next_sync_id: 1,
            revalidate_at: Vec::new(),
            sync_waits: Vec::new(),
            deferred_watches: Vec::new(),
            next_session,
            early_learners: BTreeMap::new(),
            since_snapshot: 0,
            snapshot_every,
            snapshots_taken: 0,
            snapshot_pace: 64,
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
        self.history
            .back()
            .map(|t| t.zxid)
            .unwrap_or(self.window_base)
    }
    /// The logged txns still held in memory (recent committed ones and the unapplied tail).
    pub fn history(&self) -> impl DoubleEndedIterator<Item = &Txn> {
        self.history.iter().map(|t| &**t)
    }
    /// The epoch this server leads as an established leader (a quorum ACKed NEWLEADER).
    pub fn established_epoch(&self) -> Option<u32> {
        match &self.role {
            Role::Leading(l) if l.established => Some(l.epoch),
            _ => None,
        }
    }
    /// Is this server answering clients?
    pub fn is_serving(&self) -> bool {
        match &self.role {
            Role::Leading(l) => l.established,
            Role::Learning(l) => l.serving(),
            Role::Looking => false,
        }
    }
    /// The session a connection is bound to, with its negotiated timeout.
    pub fn connection_session(&self, conn: ConnId) -> Option<(SessionId, i32)> {
        self.conns
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
            connections: self.conns.len(),
            watch_count: self.watches.watch_count(),
            watched_paths: self.watches.path_count(),
            outstanding_requests: self.conns.values().map(|c| c.queue.len()).sum(),
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
                    let logged = self.durable.max(self.tree.last_zxid());
                    while self.history.back().is_some_and(|t| t.zxid > logged) {
                        self.history.pop_back();
                    }
                }
                out.push(Effect::DisconnectPeer { peer: l.leader })
            }
            Role::Looking => {}
        }
        if self.plant(Plant::Zk2845RetainedDbBehindLog) {
            // the retained in-memory database holds what was applied; the log holds more
            let applied = self.tree.last_zxid();
            while self.history.back().is_some_and(|t| t.zxid > applied) {
                self.history.pop_back();
            }
            self.durable = self.durable.min(applied);
        }
        self.close_all_clients(out);
        self.set_state(ServerState::Looking, out);
        let vote = self.my_vote();
        self.election.start(&self.cfg, vote, self.now);
    }

    pub(crate) fn broadcast_notification(&mut self, out: &mut Vec<Effect>) {
        let n = self.election.notification(self.state);
        let me = self.cfg.my_id;
        let to: Vec<ServerId> = self.cfg.voters().filter(|id| *id != me).collect();
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
        if let Role::Leading(_) = self.role {
            self.leader_after_learner_change(out);
        }
    }

    fn on_persisted(&mut self, through: Zxid, out: &mut Vec<Effect>) {
        let through = through.min(self.last_logged());
        if through <= self.durable {
            return;
        }
        self.durable = through;
        match self.role {
            Role::Leading(_) => self.leader_persisted(out),
            Role::Learning(_) => self.learner_persisted(out),
            Role::Looking => {}
        }
    }

    // ---------------------------------------------------------------- log

    /// Log txns (after the caller made sure they extend the history in zxid order).
    pub(crate) fn append(&mut self, txns: Vec<Arc<Txn>>, out: &mut Vec<Effect>) {
        if txns.is_empty() {
            return;
        }
        for t in &txns {
            assert!(
                t.zxid > self.last_logged(),
                "append {} after {}",
                t.zxid,
                self.last_logged()
            );
            self.history.push_back(t.clone());
        }
        out.push(Effect::Append { txns });
    }

    /// Drop every logged txn after `to`. Only txns never applied may go: ZAB guarantees a
    /// committed txn is in every later leader's history, so a TRUNC never reaches one.
    pub(crate) fn truncate(&mut self, to: Zxid, out: &mut Vec<Effect>) {
        assert!(
            to >= self.tree.last_zxid(),
            "TRUNC to {} below the applied {} on server {}",
            to,
            self.tree.last_zxid(),
            self.cfg.my_id
        );
        while self.history.back().is_some_and(|t| t.zxid > to) {
            self.history.pop_back();
        }
        self.durable = self.durable.min(to);
        out.push(Effect::Truncate { after: to });
    }

    pub(crate) fn find_in_history(&self, zxid: Zxid) -> bool {
        zxid == self.window_base || self.history.binary_search_by(|t| t.zxid.cmp(&zxid)).is_ok()
    }

    /// Apply every logged txn through `to` (commits are cumulative).
    pub(crate) fn commit_to(&mut self, to: Zxid, out: &mut Vec<Effect>) {
        let to = to.min(self.last_logged());
        let applied = self.tree.last_zxid();
        if to <= applied {
            return;
        }
        let start = self.history.partition_point(|t| t.zxid <= applied);
        let end = self.history.partition_point(|t| t.zxid <= to);
        // Applying only appends to the history (a write released behind a sync), so the
        // indexes stay put; each txn is held by a reference count, not copied.
        for i in start..end {
            let txn = Arc::clone(&self.history[i]);
            self.apply_txn(&txn, out);
        }
        self.trim_history();
        self.after_apply(out);
    }

    fn trim_history(&mut self) {
        let applied = self.tree.last_zxid();
        while self.history.len() > self.cfg.committed_log_size
            && self.history.front().is_some_and(|t| t.zxid <= applied)
        {
            if let Some(t) = self.history.pop_front() {
                self.window_base = t.zxid;
            }
        }
    }

    fn apply_txn(&mut self, txn: &Txn, out: &mut Vec<Effect>) {
        let outcome = self.tree.apply(txn);
        assert_eq!(self.tree.last_zxid(), txn.zxid);
        let mut events = Vec::new();
        for (trigger, acl) in outcome.triggers.iter().zip(&outcome.watch_acls) {
            let start = events.len();
            self.watches.trigger(trigger, &mut events);
            // As ZooKeeper 3.8.4+ (CVE-2024-23944): an event reaches only a connection that
            // may READ the node it names (the parent, for a child event); the watch is spent
            // either way.
            if let Some(acl) = acl
                && crate::watch::events_checked_for_read(self.cfg.plant)
            {
                let fired = events.split_off(start);
                let conns = &self.conns;
                events.extend(fired.into_iter().filter(|(conn, _)| {
                    conns
                        .get(conn)
                        .is_some_and(|c| crate::acl::check(acl, crate::proto::perms::READ, &c.auth))
                }));
            }
        }
        let lose = self.plant(Plant::LostWatch) && txn.zxid.counter() % 3 == 1;
        if !lose {
            for (conn, event) in events {
                out.push(Effect::Watch { conn, event });
            }
        }
        if let Role::Leading(_) = self.role {
            self.leader_track_session(txn);
        }
        match txn.op {
            TxnOp::CreateSession { timeout_ms } if txn.origin.server == self.cfg.my_id => {
                self.session_created(txn.origin.rid, txn.session, timeout_ms, out);
            }
            TxnOp::CloseSession => {
                // Every connection of that session here goes, once its own queue is answered.
                let conns: Vec<ConnId> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.session == txn.session && c.phase == ConnPhase::Connected)
                    .map(|(id, _)| *id)
                    .collect();
                for conn in conns {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.closing = true;
                    }
                }
            }
            _ => {}
        }
        if txn.origin.server == self.cfg.my_id
            && txn.origin.rid != 0
            && let Some(conn) = self.rid_owner.remove(&txn.origin.rid)
        {
            if let Some(c) = self.conns.get_mut(&conn) {
                for p in c.queue.iter_mut() {
                    if matches!(p.wait, Wait::Write { rid } if rid == txn.origin.rid) {
                        p.result = Some((txn.zxid, outcome.reply.clone()));
                    }
                }
            }
            self.drain(conn, out);
        }
        if matches!(txn.op, TxnOp::CloseSession) {
            let conns: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| c.closing)
                .map(|(id, _)| *id)
                .collect();
            for conn in conns {
                self.drain(conn, out);
            }
        }
        self.since_snapshot += 1;
        if self.since_snapshot >= self.snapshot_every {
            self.since_snapshot = 0;
            self.snapshots_taken += 1;
            let every =
                snapshot_interval(self.cfg.snap_count, self.cfg.my_id, self.snapshots_taken);
            // One at a time: one still being written (only with a tiny snapCount) ends first.
            self.snapshot_step(usize::MAX, out);
            self.tree
                .begin_snapshot(self.cfg.snapshot_part_bytes.max(1));
            // Written a slice per txn applied, done by half way to the next (ticks add more).
            let nodes = self.tree.snapshot_remaining();
            self.snapshot_pace = (2 * nodes / every.max(1) + 1) as usize;
            self.snapshot_every = every;
        }
        self.snapshot_step(self.snapshot_pace, out);
    }

    /// Write up to `budget` more nodes of the snapshot being written (the core never stalls
    /// for a whole big tree): a `SnapshotPart` for each part filled, the `Snapshot` effect once
    /// it is complete.
    pub(crate) fn snapshot_step(&mut self, budget: usize, out: &mut Vec<Effect>) {
        for piece in self.tree.continue_snapshot(budget) {
            out.push(if piece.last {
                Effect::Snapshot {
                    zxid: piece.zxid,
                    parts: piece.index,
                    data: piece.data,
                    reset_log: false,
                }
            } else {
                Effect::SnapshotPart {
                    zxid: piece.zxid,
                    index: piece.index,
                    data: piece.data,
                }
            });
        }
    }

    // ---------------------------------------------------------------- invariants

    fn check_invariants(&self) {
        let applied = self.tree.last_zxid();
        assert!(
            applied <= self.last_logged(),
            "applied {} beyond logged {}",
            applied,
            self.last_logged()
        );
        assert!(
            self.window_base <= applied,
            "DIFF window {} beyond applied {}",
            self.window_base,
            applied
        );
        if let Role::Leading(l) = &self.role {
            assert!(self.state == ServerState::Leading);
            assert!(!l.established || self.epochs.current_epoch == l.epoch);
        }
        if matches!(self.role, Role::Looking) {
            assert!(self.conns.is_empty(), "a LOOKING server keeps no clients");
        }
    }
}
