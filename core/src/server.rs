//! One ensemble member: events in, effects out.

use crate::client_pipeline::{ClientPipeline, ConnPhase};
use crate::config::Config;
use crate::effect::{Action, Ready};
use crate::election::{Election, Outcome};
use crate::leader::{Leader, Leading};
use crate::learner::{Learner, Learning};
use crate::learner_handler::{HandlerPhase, LearnerInfo};
use crate::peer::Notification;
use crate::peer::{PeerMsg, ServerState};
use crate::plant::Plant;
use crate::quorum::QuorumVerifier;
use crate::role::{Next, Role};
use crate::snapshot_scheduler::{SNAPSHOT_TICK_BUDGET, SnapshotScheduler};
use crate::tree::DataTree;
use crate::txn::{ServerId, Txn};
use crate::watch::WatchManager;
use crate::zab_log::ZabLog;
use crate::zookeeper_server::ZooKeeperServer;
use crate::zxid::Zxid;
use ensemble_proto::proto::{ConnectRequest, OpCode, Reply, Request, SessionId};
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
    /// The runtime established an identity for a client connection: a SASL exchange completed
    /// (`sasl:<authorization id>`) or a TLS handshake verified its certificate
    /// (`x509:<subject>`). Like addAuth's ids, it counts for every request after it on the
    /// connection. Deliver it after `ClientConnected`; only a scheme whose provider is
    /// configured (`Config::auth_providers`) is taken.
    ClientAuthenticated {
        conn: ConnId,
        id: ensemble_proto::proto::Id,
    },
    /// Every txn appended so far with zxid <= `through` is durable.
    Persisted {
        through: Zxid,
    },
    /// From the runtime that follows a foreign leader (`Config::foreign_leader` only).
    Foreign(crate::foreign::Foreign),
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
    /// The newest valid snapshot: its zxid and its data.
    pub snapshot: Option<(Zxid, RecoveredSnapshot)>,
    /// The logged txns after the snapshot, in zxid order.
    pub log: Vec<Txn>,
}

/// A recovered snapshot's data: its bytes (as `Write::Snapshot` gave them; the simulator
/// shares them between servers), or the tree a runtime already built from them as it read the
/// file (the node: a [`crate::tree::SnapshotLoader`] fed in bounded pieces, so recovery never
/// holds the serialized image beside the tree), with [`Config::tree_options`].
#[derive(Clone, Debug)]
pub enum RecoveredSnapshot {
    Bytes(Arc<Vec<u8>>),
    Tree(Box<DataTree>),
}

impl RecoveredSnapshot {
    /// The serialized snapshot (a tree serialized again): for tests and tools.
    pub fn to_bytes(&self) -> Arc<Vec<u8>> {
        match self {
            RecoveredSnapshot::Bytes(b) => Arc::clone(b),
            RecoveredSnapshot::Tree(t) => Arc::new(t.to_snapshot()),
        }
    }
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
    /// Serving read-only (LOOKING, cut off from the quorum): 4lw `isro` says `ro`.
    pub read_only: bool,
}

/// One ensemble member (ZooKeeper's QuorumPeer): the state every role shares and the role.
/// This file is the dispatcher: each event goes to the election, the leader's handler
/// (`Leading`, leader.rs), the learner's (`Learning`, learner.rs) or the client pipeline
/// (cnxn.rs), and a role a handler ended is dropped here.
pub struct Server {
    pub(crate) zk: ZooKeeperServer,
    pub(crate) role: Role,
}

impl Server {
    /// A member recovered from what the runtime found on disk. It starts LOOKING.
    pub fn new(config: Config, recovered: Recovered, now: Millis) -> Result<Server, RecoverError> {
        let opts = config.tree_options();
        let recovered_snapshot = recovered.snapshot.as_ref().map(|(z, _)| *z);
        let tree = match recovered.snapshot {
            Some((zxid, data)) => {
                crate::probe!("recover.snapshot");
                let tree = match data {
                    RecoveredSnapshot::Bytes(bytes) => DataTree::from_snapshot(&bytes, opts)
                        .map_err(|e| {
                            crate::probe!("recover.bad-snapshot");
                            RecoverError::BadSnapshot {
                                zxid,
                                reason: e.to_string(),
                            }
                        })?,
                    RecoveredSnapshot::Tree(tree) if tree.options() != opts => {
                        // Derived state (TTL nodes, ACL ids) depends on them: load again.
                        return Err(RecoverError::BadSnapshot {
                            zxid,
                            reason: "loaded with other tree options than the configuration's"
                                .into(),
                        });
                    }
                    RecoveredSnapshot::Tree(tree) => *tree,
                };
                let zxid = &zxid;
                if tree.last_zxid() != *zxid {
                    crate::probe!("recover.bad-snapshot");
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
                crate::probe!("recover.log-order");
                return Err(RecoverError::LogOrder { zxid: txn.zxid });
            }
            last = txn.zxid;
            history.push_back(Arc::new(txn));
        }
        if !history.is_empty() {
            crate::probe!("recover.log-replay");
        }
        // ZooKeeper's initializeNextSessionId: time in the middle bits, our id on top, so ids
        // stay unique across servers and restarts.
        let next_session = ((((now as i64) << 24) as u64 >> 8) | (config.my_id << 56)) as i64;
        let mut zk = ZooKeeperServer {
            now,
            epochs: recovered.epochs,
            tree,
            watches: WatchManager::new(),
            log: ZabLog::recovered(base, history),
            state: ServerState::Looking,
            election: Election::new(),
            quorum: QuorumVerifier::majority(&config),
            initial: ZooKeeperServer::initial_membership(&config),
            membership: crate::membership::Membership::default(),
            membership_loads: 0,
            pending: None,
            learned: None,
            reconfigured: false,
            clients: ClientPipeline::new(next_session),
            early_learners: BTreeMap::new(),
            handover_to: None,
            snapshots: SnapshotScheduler::new(&config, recovered_snapshot),
            local_sessions: crate::session_tracker::SessionTracker::default(),
            read_only: crate::read_only_server::ReadOnlyMode::new(now),
            cfg: config,
        };
        zk.adopt_dynamic_file();
        zk.load_membership();
        let vote = zk.my_vote();
        let intact = zk.intact();
        zk.election.start(&zk.cfg, &zk.quorum, vote, intact, now);
        Ok(Server {
            zk,
            role: Role::Looking,
        })
    }

    /// Feed one event at time `now`; its output is added to `out`, durable writes ahead of
    /// what depends on them. The entry point for runtimes and the test kit, which consume the
    /// `Ready` with [`Ready::drive`] or [`Ready::drive_both`] (see [`crate::effect`] for the
    /// order contract). The handlers push into it directly, in the order they decide.
    pub fn handle_ready(&mut self, now: Millis, event: Event, out: &mut Ready) {
        self.zk.now = self.zk.now.max(now);
        out.ignore_failed_writes = self.zk.plant(crate::plant::Plant::FailedWriteIgnored);
        let mark = out.mark();
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
            Event::ClientAuthenticated { conn, id } => self.zk.on_authenticated(conn, id),
            Event::Persisted { through } => self.on_persisted(through, out),
            Event::Foreign(f) => self.on_foreign(f, out),
        }
        if let Role::Leading(l) = &mut self.role {
            l.learners.count_sent(out.actions_since(mark));
        }
        self.check_invariants();
    }

    /// How often the runtime must deliver `Event::Tick` (ms).
    pub fn tick_interval(&self) -> Millis {
        (self.zk.cfg.tick_time_ms / 4).clamp(1, 50)
    }

    pub fn config(&self) -> &Config {
        &self.zk.cfg
    }
    /// The configuration in force (the last committed reconfig's, else the initial one).
    pub fn membership(&self) -> &crate::membership::Membership {
        &self.zk.membership
    }
    /// Moves each time the configuration in force is (re)loaded (start, SNAP, a reconfig
    /// applied): the only places it changes, so a checker need look again only then.
    pub fn membership_loads(&self) -> u64 {
        self.zk.membership_loads
    }
    /// The reconfig logged and not yet committed, if any (its zxid is its version).
    pub fn pending_membership(&self) -> Option<&crate::membership::Membership> {
        self.zk.pending.as_ref().map(|(_, m)| m)
    }
    pub fn id(&self) -> ServerId {
        self.zk.cfg.my_id
    }
    pub fn state(&self) -> ServerState {
        self.zk.state
    }
    /// The applied (committed) state.
    pub fn tree(&self) -> &DataTree {
        &self.zk.tree
    }
    /// Where the in-memory log window starts (a DIFF can start from this zxid or any txn of
    /// `history`, nothing below), and where it started when last given rather than trimmed
    /// to (the snapshot recovered from, or a leader's SNAP installed).
    pub fn log_window(&self) -> (Zxid, Zxid) {
        (self.zk.log.window_base(), self.zk.log.floor())
    }

    pub fn epochs(&self) -> Epochs {
        self.zk.epochs
    }
    pub fn last_logged(&self) -> Zxid {
        self.zk.log.last_logged()
    }
    /// The logged txns still held in memory (recent committed ones and the unapplied tail).
    pub fn history(&self) -> impl DoubleEndedIterator<Item = &Txn> {
        self.zk.log.iter().map(|t| &**t)
    }
    /// How many txns of `history` are at or below `zxid` (a binary search: the history is in
    /// strictly increasing zxid order, which the log asserts).
    pub fn history_through(&self, zxid: Zxid) -> usize {
        self.zk.log.position_after(zxid)
    }
    /// The vote this server announces out of the election (what it answers a LOOKING
    /// server's notification with): FLE's current vote, ZooKeeper's `getCurrentVote`.
    pub fn announced_vote(&self) -> crate::peer::Vote {
        self.zk.election.proposal
    }
    /// The election's round and whether `from`'s vote is counted in it (FLE's logicalclock
    /// and `recvset`), for the simulator's `election.vote-forgotten`.
    pub fn election_counted(&self, from: ServerId) -> (u64, bool) {
        let e = &self.zk.election;
        (e.logical_clock, e.counted_vote(from).is_some())
    }
    /// The epoch this server leads, in any phase of its leadership (discovery to hand-over).
    pub fn leading_epoch(&self) -> Option<u32> {
        match &self.role {
            Role::Leading(l) => Some(l.epoch),
            _ => None,
        }
    }
    /// The epoch this server leads as an established leader (a quorum ACKed NEWLEADER).
    pub fn established_epoch(&self) -> Option<u32> {
        match &self.role {
            Role::Leading(l) if l.established() => Some(l.epoch),
            _ => None,
        }
    }
    /// Is this server a read-only server (cut off from the quorum, `readonlymode.enabled`)?
    pub fn is_read_only(&self) -> bool {
        self.zk.read_only.active
    }
    /// Is `session` one only this server knows (a local session, or a read-only server's)?
    pub fn is_local_session(&self, session: SessionId) -> bool {
        self.zk.local_sessions.is_tracked(session)
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
        if self.zk.plant(Plant::ConnectionSessionUnbound) {
            let c = self.zk.clients.conns.get(&conn);
            return c.map(|c| (c.session, c.timeout_ms));
        }
        self.zk
            .clients
            .conns
            .get(&conn)
            .filter(|c| c.phase == ConnPhase::Connected)
            .map(|c| (c.session, c.timeout_ms))
    }
    /// The leader's session deadlines, earliest first (ZooKeeper's `dump`: the expiry queue);
    /// empty on a learner, which tracks no session's expiry.
    pub fn session_deadlines(&self) -> Vec<(Millis, SessionId)> {
        match &self.role {
            Role::Leading(l) => l.sessions.deadlines().collect(),
            _ => Vec::new(),
        }
    }
    pub fn watches(&self) -> &WatchManager {
        &self.zk.watches
    }

    /// The leader's learner handlers (empty unless leading): who is connected, since when,
    /// and what went each way (the `observers` command).
    pub fn learner_handlers(&self) -> Vec<LearnerInfo> {
        match &self.role {
            Role::Leading(l) => l.learners.info(&self.zk.cfg),
            _ => Vec::new(),
        }
    }

    /// A leader's followers that ACKed NEWLEADER and are still connected, each with the
    /// highest zxid it ACKed (ZooKeeper's ackset; empty unless leading): for the simulator's
    /// `reconfig.handover`, which judges the successor a removed leader names.
    pub fn follower_acks(&self) -> Vec<(ServerId, Zxid)> {
        match &self.role {
            Role::Leading(l) => l
                .learners
                .iter()
                .filter(|(_, h)| !h.observer && h.phase == HandlerPhase::Active)
                .map(|(id, h)| (*id, h.acked))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// ZooKeeper's `observer_connection_stat_reset`: the observers' handler counters start
    /// again (a leader's; nothing elsewhere).
    pub fn reset_observer_connection_stats(&mut self) {
        if let Role::Leading(l) = &mut self.role {
            // observers by the configuration in force, as `observers` lists them
            let cfg = &self.zk.cfg;
            for (_, h) in l.learners.iter_mut().filter(|(id, _)| !cfg.is_voter(**id)) {
                h.traffic.reset();
            }
        }
    }

    pub fn status(&self) -> Status {
        let mut st = Status {
            state: Some(self.zk.state),
            standalone: self.zk.cfg.is_standalone(),
            leader: None,
            current_epoch: self.zk.epochs.current_epoch,
            accepted_epoch: self.zk.epochs.accepted_epoch,
            election_epoch: self.zk.election.logical_clock,
            last_applied: self.zk.tree.last_zxid(),
            last_logged: self.zk.last_logged(),
            node_count: self.zk.tree.node_count(),
            approximate_data_size: self.zk.tree.approximate_data_size(),
            ephemerals_count: self.zk.tree.ephemerals_count(),
            sessions: self.zk.tree.sessions().len() + self.zk.local_sessions.len(),
            read_only: self.zk.read_only.active,
            connections: self.zk.clients.conns.len(),
            watch_count: self.zk.watches.watch_count(),
            watched_paths: self.zk.watches.path_count(),
            outstanding_requests: self.zk.clients.conns.values().map(|c| c.queue.len()).sum(),
            ..Status::default()
        };
        match &self.role {
            Role::Leading(l) => {
                st.leader = Some(self.zk.cfg.my_id);
                l.fill_status(&self.zk.cfg, &mut st);
            }
            Role::Learning(l) => st.leader = Some(l.leader),
            Role::Looking => {}
        }
        st
    }

    // ---------------------------------------------------------------- dispatch

    /// Apply what a role handler decided: a role it ended is dropped (it has announced
    /// LOOKING and started the election already).
    pub(crate) fn settle(&mut self, next: Next) {
        if next == Next::Looking {
            assert_eq!(
                self.zk.state,
                ServerState::Looking,
                "a role ended unannounced"
            );
            self.role = Role::Looking;
        }
        assert_eq!(
            matches!(self.role, Role::Looking),
            self.zk.state == ServerState::Looking,
            "state {:?} announced for another role",
            self.zk.state
        );
    }

    fn on_tick(&mut self, out: &mut Ready) {
        // An idle server still finishes its snapshot, a bounded slice per tick.
        self.zk.snapshot_step(SNAPSHOT_TICK_BUDGET, out);
        self.zk.expire_local_sessions(out);
        let next = match &mut self.role {
            // A foreign leader's observer waits for the runtime to sync it: no election.
            Role::Looking if self.zk.cfg.foreign_leader => return,
            Role::Looking => {
                let outcome = self.zk.election.tick(&self.zk.cfg, self.zk.now);
                self.election_outcome(outcome, out);
                if matches!(self.role, Role::Looking) {
                    self.zk.maybe_start_read_only(out);
                }
                return;
            }
            Role::Leading(l) => Leading::new(l, &mut self.zk).tick(out),
            Role::Learning(l) => Learning::new(l, &mut self.zk).tick(out),
        };
        self.settle(next);
    }

    fn election_outcome(&mut self, outcome: Outcome, out: &mut Ready) {
        match outcome {
            Outcome::Continue => {}
            Outcome::Broadcast => self.zk.broadcast_notification(out),
            Outcome::Answer(peer) => {
                let n = self.zk.notification();
                out.push(Action::Send {
                    to: peer,
                    msg: PeerMsg::Notification(n),
                });
            }
            Outcome::Decided {
                vote,
                election_epoch,
            } => {
                if let Some(members) = self.zk.election.take_counted() {
                    out.push(Action::QuorumCounted {
                        purpose: "election",
                        members,
                    });
                }
                self.zk.election.logical_clock = election_epoch;
                self.zk.election.proposal = vote;
                self.zk.stop_read_only(out);
                let early = std::mem::take(&mut self.zk.early_learners);
                let me = self.zk.cfg.my_id;
                if vote.leader == me && self.zk.quorum.can_lead(me) {
                    self.become_leader(early, out);
                } else if vote.leader != me {
                    let early = if self.zk.plant(Plant::FollowerKeepsEarlyLearners) {
                        BTreeMap::new() // dropped without a word: their connections stay
                    } else {
                        early
                    };
                    for peer in early.into_keys().filter(|p| *p != vote.leader) {
                        out.push(Action::DisconnectPeer { peer });
                    }
                    self.become_learner(vote.leader, out);
                }
                // Decided: we lead, follow or observe, unless the vote names us and we
                // cannot lead (an observer).
                assert!(
                    !matches!(self.role, Role::Looking)
                        || (vote.leader == me && !self.zk.quorum.can_lead(me))
                        || self.zk.state == ServerState::Looking
                );
            }
        }
    }

    /// We won the election: lead, and take the FOLLOWERINFOs that came early.
    fn become_leader(&mut self, early: BTreeMap<ServerId, PeerMsg>, out: &mut Ready) {
        assert!(
            matches!(self.role, Role::Looking),
            "leading from another role"
        );
        assert_eq!(self.zk.state, ServerState::Looking);
        let mut leader = Box::new(Leader::new(&self.zk));
        self.zk.set_state(ServerState::Leading, out);
        let mut leading = Leading::new(&mut leader, &mut self.zk);
        let mut next = leading.start(out);
        for (from, msg) in early {
            if next == Next::Looking {
                break; // the leadership ended while taking them: the rest wait for the next
            }
            next = leading.receive(from, msg, out);
        }
        self.role = Role::Leading(leader);
        self.settle(next);
    }

    /// Another server won: follow (or observe) it.
    fn become_learner(&mut self, leader: ServerId, out: &mut Ready) {
        assert!(
            matches!(self.role, Role::Looking),
            "learning from another role"
        );
        let mut learner = Box::new(Learner::new(&self.zk, leader));
        let next = Learning::new(&mut learner, &mut self.zk).start(out);
        self.role = Role::Learning(learner);
        self.settle(next);
    }

    fn on_peer(&mut self, from: ServerId, msg: PeerMsg, out: &mut Ready) {
        if from == self.zk.cfg.my_id || self.zk.cfg.foreign_leader {
            return; // a foreign leader's observer hears its leader through `Event::Foreign`
        }
        // A server outside the configuration in force may still speak: a joiner (or a removed
        // server) finds the leader through the election's answers and syncs as a non-voting
        // follower, which a reconfig can then add. Its votes and ACKs never count until then.
        match msg {
            PeerMsg::Notification(n) => return self.on_notification(from, n, out),
            PeerMsg::Config(m) => return self.on_config(from, m, out),
            _ => {}
        }
        let next = match &mut self.role {
            Role::Leading(l) => Leading::new(l, &mut self.zk).receive(from, msg, out),
            // A FOLLOWERINFO for us while we still follow: a peer whose leader handed over to
            // us, faster than our own HANDOVER came. Kept for when we lead, as a LOOKING
            // server keeps one.
            Role::Learning(l)
                if matches!(msg, PeerMsg::LearnerInfo { .. })
                    && from != l.leader
                    && self.zk.quorum.can_lead(self.zk.cfg.my_id) =>
            {
                crate::probe!("reconfig.handover-early-learner");
                self.zk.early_learners.insert(from, msg);
                Next::Stay
            }
            Role::Learning(l) => Learning::new(l, &mut self.zk).receive(from, msg, out),
            Role::Looking => {
                match msg {
                    // A learner that decided a moment before we did: keep its FOLLOWERINFO
                    // for when we lead (ZooKeeper's learners retry their connection meanwhile).
                    PeerMsg::LearnerInfo { .. } => {
                        crate::probe!("leader.early-learner");
                        self.zk.early_learners.insert(from, msg);
                    }
                    // A learner of a leadership we no longer hold: make it notice at once.
                    PeerMsg::Request { .. } | PeerMsg::Ack { .. } | PeerMsg::SyncRequest { .. } => {
                        crate::probe!("looking.stale-learner");
                        out.push(Action::DisconnectPeer { peer: from });
                    }
                    _ => {}
                }
                Next::Stay
            }
        };
        self.settle(next);
        if let Some(designated) = self.zk.handover_to.take() {
            self.take_handover(designated, out);
        }
    }

    /// Our leader handed over to `designated` (we have left it, LOOKING): lead, or follow
    /// or observe the successor, without an election. Our announced vote names it, so that
    /// a LOOKING server finds it as it finds any established leader.
    fn take_handover(&mut self, designated: ServerId, out: &mut Ready) {
        assert!(matches!(self.role, Role::Looking));
        let me = self.zk.cfg.my_id;
        self.zk.election.proposal = crate::peer::Vote {
            leader: designated,
            zxid: self.zk.last_logged(),
            peer_epoch: self.zk.epochs.current_epoch,
        };
        self.zk.stop_read_only(out);
        let early = std::mem::take(&mut self.zk.early_learners);
        if designated == me {
            assert!(self.zk.quorum.can_lead(me), "designated, not a voter");
            crate::probe!("reconfig.handover-leads");
            self.become_leader(early, out);
        } else {
            for peer in early.into_keys().filter(|p| *p != designated) {
                out.push(Action::DisconnectPeer { peer });
            }
            self.become_learner(designated, out);
        }
    }

    fn on_notification(&mut self, from: ServerId, n: Notification, out: &mut Ready) {
        let mine = self.zk.membership.version;
        if n.config_version < mine {
            // The sender's configuration is older than ours: send it ours (ZooKeeper's
            // notification carries the config), so that a server that missed a reconfig
            // finds the voters of the configuration in force.
            crate::probe!("election.config-sent");
            out.push(Action::Send {
                to: from,
                msg: PeerMsg::Config(self.zk.membership.clone()),
            });
        } else if n.config_version > mine && self.zk.state == ServerState::Looking {
            // Ours is older: tell the sender, who then sends us its configuration.
            out.push(Action::Send {
                to: from,
                msg: PeerMsg::Notification(self.zk.notification()),
            });
        }
        if self.zk.state == ServerState::Looking {
            let outcome = self
                .zk
                .election
                .receive(&self.zk.cfg, from, &n, self.zk.now);
            self.election_outcome(outcome, out);
        } else if n.state == ServerState::Looking {
            // Out of the election: tell the looking server who leads.
            out.push(Action::Send {
                to: from,
                msg: PeerMsg::Notification(self.zk.notification()),
            });
        }
    }

    /// A peer's configuration, newer than ours when it was sent: a LOOKING server adopts it
    /// and starts a new election round under it (ZooKeeper's FLE: processReconfig, then the
    /// election restarts). A server in a role learns configurations from its leader only.
    fn on_config(&mut self, from: ServerId, m: crate::membership::Membership, out: &mut Ready) {
        if self.zk.state != ServerState::Looking || m.version <= self.zk.membership.version {
            return;
        }
        crate::probe!("election.config-learned");
        tracing::info!(
            server = self.zk.cfg.my_id,
            from,
            version = %format!("{:x}", m.version),
            "LOOKING with an older configuration: adopting a peer's"
        );
        self.zk.learn_membership(m);
        let vote = self.zk.my_vote();
        let intact = self.zk.intact();
        self.zk
            .election
            .start(&self.zk.cfg, &self.zk.quorum, vote, intact, self.zk.now);
        self.zk.broadcast_notification(out);
    }

    fn on_peer_disconnected(&mut self, peer: ServerId, out: &mut Ready) {
        let next = match &mut self.role {
            Role::Leading(l) => {
                l.remove_learner(peer);
                assert!(
                    !l.learners.contains_key(&peer),
                    "a disconnected learner kept"
                );
                Leading::new(l, &mut self.zk).after_learner_change(out)
            }
            Role::Looking | Role::Learning(_) => {
                if let Role::Learning(l) = &mut self.role
                    && l.leader == peer
                {
                    crate::probe!("learner.leader-disconnected");
                    let next = Learning::new(l, &mut self.zk)
                        .shutdown("lost the leader's connection", out);
                    return self.settle(next);
                }
                // A FOLLOWERINFO kept for when we lead came on the connection that broke: what
                // it said (acceptedEpoch, `intact`) may no longer hold (the sender may have
                // crashed and lost its disk), so it must not count in discovery.
                if !self.zk.plant(Plant::EarlyLearnerOutlivesConnection)
                    && self.zk.early_learners.remove(&peer).is_some()
                {
                    crate::probe!("leader.early-learner-dropped");
                }
                Next::Stay
            }
        };
        self.settle(next);
    }

    fn on_persisted(&mut self, through: Zxid, out: &mut Ready) {
        if !self.zk.log.persisted(through) {
            return;
        }
        let next = match &mut self.role {
            Role::Leading(l) => Leading::new(l, &mut self.zk).persisted(out),
            Role::Learning(l) => Learning::new(l, &mut self.zk).persisted(out),
            Role::Looking => Next::Stay,
        };
        self.settle(next);
    }

    fn on_connect(&mut self, conn: ConnId, addr: String, req: ConnectRequest, out: &mut Ready) {
        self.zk
            .on_connect(&mut self.role.as_mut(), conn, addr, req, out);
        self.settle(Next::of(&self.zk));
    }

    fn on_request(&mut self, conn: ConnId, xid: i32, request: Request, out: &mut Ready) {
        self.zk
            .on_request(&mut self.role.as_mut(), conn, xid, request, out);
        self.settle(Next::of(&self.zk));
    }

    fn on_refused(
        &mut self,
        conn: ConnId,
        xid: i32,
        opcode: OpCode,
        reply: Reply,
        close: bool,
        out: &mut Ready,
    ) {
        self.zk.on_refused(
            &mut self.role.as_mut(),
            conn,
            xid,
            opcode,
            reply,
            close,
            out,
        );
        self.settle(Next::of(&self.zk));
    }

    fn drop_conn(&mut self, conn: ConnId) {
        self.zk.drop_conn(conn);
    }

    // ---------------------------------------------------------------- invariants

    /// What holds between any two events; the simulator turns a violation into a failing seed.
    fn check_invariants(&self) {
        self.zk.log.check_invariants(self.zk.tree.last_zxid());
        self.zk.check_membership();
        match &self.role {
            Role::Looking => {
                assert_eq!(
                    self.zk.state,
                    ServerState::Looking,
                    "role and state disagree"
                );
                assert!(
                    self.zk.clients.conns.is_empty() || self.zk.read_only.active,
                    "a LOOKING server keeps no clients unless it serves read-only"
                );
                self.zk.election.check_invariants(&self.zk.cfg);
            }
            Role::Leading(l) => {
                assert_eq!(
                    self.zk.state,
                    ServerState::Leading,
                    "role and state disagree"
                );
                // That we are a voter is asserted as the leadership starts (`Leader::new`):
                // the configuration does not change while the server lives.
                l.check_invariants(self.zk.cfg.my_id, &self.zk.epochs);
                assert!(
                    l.established() || self.zk.clients.conns.is_empty(),
                    "clients before the leader is established"
                );
            }
            Role::Learning(l) => {
                let state = if l.observer {
                    ServerState::Observing
                } else {
                    ServerState::Following
                };
                assert_eq!(self.zk.state, state, "role and state disagree");
                // `l.observer` is the configuration's (`Learner::new`), which does not change.
                assert_ne!(l.leader, self.zk.cfg.my_id, "a learner of itself");
                assert!(
                    l.serving() || self.zk.clients.conns.is_empty(),
                    "clients before the learner is up to date"
                );
                l.check_invariants(&self.zk.epochs);
            }
        }
        assert!(
            self.zk.early_learners.is_empty() || !matches!(self.role, Role::Leading(_)),
            "FOLLOWERINFOs kept past the election"
        );
        assert!(self.zk.handover_to.is_none(), "a hand-over not taken");
        self.zk.clients.check_invariants(self.zk.tree.last_zxid());
        assert!(
            self.zk.watches.conn_count() <= self.zk.clients.conns.len(),
            "watches of connections gone"
        );
        self.zk.check_local_sessions();
    }
}
