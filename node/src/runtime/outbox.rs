//! The core loop's [`ActionSink`]: what leaves the server, encoded into per-destination buffers
//! during a batch and handed to the socket tasks at its end (one hand-off per peer and per
//! client), so that it leaves after the batch's writes.

use super::peers::OutCmd;
use super::wire::{self, Channel};
use super::{Clock, Outgoing};
use crate::fourlw::{ConnInfo, ServerStats};
use ensemble_core::Txn;
use ensemble_core::{Action, ActionSink, ConnId, Event, PeerMsg, Server, ServerId, ServerState};
use ensemble_proto::jute;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

pub(crate) struct Inbound {
    pub generation: u64,
    /// The peer's end of it.
    pub addr: std::net::SocketAddr,
    /// Dropping it stops that connection's reader.
    pub _kill: oneshot::Sender<()>,
}

pub(crate) struct PeerLinks {
    pub election: mpsc::UnboundedSender<OutCmd>,
    pub quorum: mpsc::UnboundedSender<OutCmd>,
    /// What the quorum sender still has to write.
    pub backlog: Arc<super::peers::Backlog>,
    /// Outbound quorum epoch: bumped each time the core is told of (or asks for) a break.
    pub out_epoch: u64,
    pub inbound: [Option<Inbound>; 2],
    /// Quorum frames encoded in this batch (all in `out_epoch`), handed over at its end.
    pub out: Vec<u8>,
    /// A frame to it could not be encoded in this batch and its connection was reset: the
    /// rest of the batch's quorum messages to it are dropped (the core hears the break next).
    pub reset_in_batch: bool,
}

impl PeerLinks {
    /// Fresh links to a peer: nothing inbound yet, nothing encoded, epoch 0.
    pub(crate) fn new((election, quorum, backlog): super::Senders) -> PeerLinks {
        PeerLinks {
            election,
            quorum,
            backlog,
            out_epoch: 0,
            inbound: [None, None],
            out: Vec::new(),
            reset_in_batch: false,
        }
    }
}

pub(crate) struct ClientLink {
    pub tx: mpsc::Sender<Outgoing>,
    pub kill: Option<oneshot::Sender<()>>,
    pub queued: Arc<AtomicUsize>,
    pub info: ConnInfo,
    /// Frames encoded for it in this batch, handed over at its end.
    pub out: Vec<u8>,
}

pub(crate) fn idx(c: Channel) -> usize {
    c as usize
}

/// The links to peers and clients, and what the loop counts about them.
pub(crate) struct Outbox {
    pub clock: Clock,
    pub peers: BTreeMap<ServerId, PeerLinks>,
    pub conns: BTreeMap<ConnId, ClientLink>,
    /// `globalOutstandingLimit`'s count: `started`'s requests leave it as they are answered.
    pub outstanding: std::sync::Arc<crate::limits::Outstanding>,
    /// Requests waiting for their reply, for latency: when each came, and whether it writes.
    pub started: HashMap<(ConnId, i32), (Instant, bool)>,
    pub stats: ServerStats,
    /// Events for the core: from the socket tasks, and the clients this outbox dropped for not
    /// reading.
    pub events: VecDeque<Event>,
    pub state_since: Instant,
    pub availability: crate::metrics::stats::Availability,
    /// Bytes queued to one client beyond which it counts as not reading.
    client_budget: usize,
    /// Connections with frames in `out`.
    dirty_clients: Vec<ConnId>,
    /// The last proposal encoded and its frame, so that it is encoded once for every follower.
    last_proposal: (Option<Arc<Txn>>, Vec<u8>),
    /// `audit.enable`: the audit log, told of every write request and its reply.
    pub audit: Option<crate::audit::AuditLog>,
    /// Where our snapshot files are: a SNAP is streamed from there.
    pub snap_dir: std::path::PathBuf,
    /// `zk-observe`: the core's leader is Apache ZooKeeper's, reached through
    /// the observer's quorum connection; every message to a peer goes there, as ZooKeeper's.
    pub foreign_leader: Option<Arc<crate::zookeeper::leader_link::ForeignLeaderLink>>,
}

impl Outbox {
    pub(crate) fn new(
        clock: Clock,
        senders: BTreeMap<ServerId, super::Senders>,
        client_budget: usize,
    ) -> Outbox {
        let peers = senders
            .into_iter()
            .map(|(sid, senders)| (sid, PeerLinks::new(senders)))
            .collect();
        Outbox {
            clock,
            peers,
            conns: BTreeMap::new(),
            outstanding: std::sync::Arc::new(crate::limits::Outstanding::new(0)),
            started: HashMap::new(),
            stats: ServerStats::default(),
            events: VecDeque::new(),
            state_since: Instant::now(),
            availability: Default::default(),
            client_budget,
            dirty_clients: Vec::new(),
            audit: None,
            last_proposal: (None, Vec::new()),
            snap_dir: std::path::PathBuf::new(),
            foreign_leader: None,
        }
    }

    /// The end of a batch: hand over what it encoded, one hand-off per destination.
    pub(crate) fn flush(&mut self) {
        for (sid, p) in self.peers.iter_mut() {
            flush_peer(*sid, p);
            p.reset_in_batch = false;
        }
        for conn in std::mem::take(&mut self.dirty_clients) {
            self.flush_client(conn);
        }
    }

    /// After a failed write: drop what this batch encoded for peers and clients. Some of it may
    /// not depend on the write, but the server is stopping, and dropping it is no different
    /// from a crash before it was sent.
    pub(crate) fn discard(&mut self) {
        for p in self.peers.values_mut() {
            p.out.clear();
        }
        for link in self.conns.values_mut() {
            link.out.clear();
        }
        self.dirty_clients.clear();
        self.events.clear();
    }

    /// Queue a connection's encoded frames; a client that does not read is closed.
    fn flush_client(&mut self, conn: ConnId) {
        let Some(link) = self.conns.get_mut(&conn) else {
            return;
        };
        if link.out.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut link.out);
        let n = bytes.len();
        let backlog = link.queued.load(Ordering::Relaxed);
        let ok =
            backlog + n <= self.client_budget && link.tx.try_send(Outgoing::Bytes(bytes)).is_ok();
        if ok {
            link.queued.fetch_add(n, Ordering::Relaxed);
            return;
        }
        tracing::warn!(
            "closing client {}: it is not reading ({} bytes queued)",
            link.info.addr.map(super::show).unwrap_or_default(),
            backlog
        );
        self.stats.connections_dropped += 1;
        // Dropping the link trips its kill switch: the connection task stops at once.
        self.conns.remove(&conn);
        self.forget_conn(conn);
        self.events.push_back(Event::ClientDisconnected { conn });
    }

    pub(crate) fn forget_conn(&mut self, conn: ConnId) {
        let before = self.started.len();
        self.started.retain(|(c, _), _| *c != conn);
        self.outstanding.done(before - self.started.len());
        if let Some(a) = &mut self.audit {
            a.forget(conn);
        }
    }

    /// Encode a frame into a client's batch: `encode` appends it to the buffer.
    fn encode_for_client(&mut self, conn: ConnId, encode: impl FnOnce(&mut Vec<u8>)) {
        let Some(link) = self.conns.get_mut(&conn) else {
            return;
        };
        if link.out.is_empty() {
            self.dirty_clients.push(conn);
        }
        let before = link.out.len();
        encode(&mut link.out);
        let n = link.out.len() - before;
        link.info.sent += 1;
        self.stats.sent += 1;
        self.stats.response(n);
    }

    fn send(&mut self, to: ServerId, msg: PeerMsg) {
        let Some(p) = self.peers.get_mut(&to) else {
            tracing::debug!("no link to server {to} for {}", msg.name());
            return;
        };
        if Channel::of(&msg) == Channel::Election {
            let _ = p.election.send(OutCmd::Msg(0, msg));
            return;
        }
        // A proposal goes to every follower as the same bytes: encode it once.
        if let PeerMsg::Proposal(t) = &msg
            && let (Some(last), frame) = &self.last_proposal
            && Arc::ptr_eq(last, t)
        {
            p.out.extend_from_slice(frame);
            return;
        }
        if p.reset_in_batch {
            // this batch's quorum connection to it was reset: nothing after the frame that
            // could not go may follow it (a NEWLEADER without its sync)
            return;
        }
        let start = p.out.len();
        if let Err(e) = wire::encode_frame(&msg, &mut p.out) {
            // The core bounds every frame (a sync goes in parts), so this is a bug; still, the
            // connection cannot carry on without the frame: reset it, and the core hears so.
            tracing::error!(
                peer = to,
                "cannot send {} to server {to} ({e}): resetting the quorum connection",
                msg.name()
            );
            flush_peer(to, p);
            p.out_epoch += 1;
            let _ = p.quorum.send(OutCmd::Reset(p.out_epoch));
            p.inbound[idx(Channel::Quorum)] = None;
            p.reset_in_batch = true;
            self.events.push_back(Event::PeerDisconnected { peer: to });
            return;
        }
        if let PeerMsg::Proposal(t) = msg {
            let (last, frame) = &mut self.last_proposal;
            frame.clear();
            frame.extend_from_slice(&p.out[start..]);
            *last = Some(t);
        }
    }

    fn act(&mut self, action: Action, server: &Server) {
        match action {
            Action::Send { msg, .. } if self.foreign_leader.is_some() => {
                if let Some(link) = &self.foreign_leader {
                    link.send(&msg, server);
                }
            }
            Action::Send { to, msg } => self.send(to, msg),
            Action::SendSnapshot {
                to,
                zxid,
                part,
                txns,
                committed,
            } => {
                let Some(p) = self.peers.get_mut(&to) else {
                    tracing::debug!("no link to server {to} for a SNAP");
                    return;
                };
                if p.reset_in_batch {
                    return;
                }
                // What this batch encoded for it so far goes first; the sender streams the file
                // after it, and what follows waits behind.
                flush_peer(to, p);
                let what = super::snap_send::SnapSend {
                    snap_dir: self.snap_dir.clone(),
                    zxid,
                    part,
                    txns,
                    committed,
                };
                if p.quorum
                    .send(OutCmd::Snapshot(p.out_epoch, Box::new(what)))
                    .is_err()
                {
                    tracing::debug!(peer = to, "quorum link task is gone");
                }
            }
            Action::DisconnectPeer { peer } => {
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                tracing::debug!(peer, "disconnecting from server {peer}");
                flush_peer(peer, p);
                p.out_epoch += 1;
                let _ = p.quorum.send(OutCmd::Reset(p.out_epoch));
                p.inbound[idx(Channel::Quorum)] = None;
            }
            Action::ConnectReply { conn, response } => {
                if let Some(link) = self.conns.get_mut(&conn) {
                    link.info.session = response.session_id;
                    link.info.timeout = response.timeout_ms;
                }
                self.encode_for_client(conn, |b| jute::encode_connect_response(&response, b));
            }
            Action::Reply {
                conn,
                xid,
                zxid,
                opcode,
                reply,
            } => {
                let now = self.clock.now();
                if let Some((t0, write)) = self.started.remove(&(conn, xid)) {
                    self.outstanding.done(1);
                    let took = t0.elapsed();
                    let ms = took.as_millis() as u64;
                    self.stats.latency(ms);
                    let m = crate::metrics::server_metrics();
                    if write {
                        m.summary("updatelatency").observe(ms);
                        m.own.commit.observe(took.as_secs_f64());
                    } else {
                        m.summary("readlatency").observe(ms);
                    }
                    if let Some(link) = self.conns.get_mut(&conn) {
                        link.info.latency(ms);
                    }
                }
                if let Some(link) = self.conns.get_mut(&conn) {
                    link.info.last_zxid = zxid.as_i64();
                    link.info.last_resp = now;
                    if let Some(a) = &mut self.audit {
                        let ip = link.info.addr.map(|a| a.ip().to_canonical().to_string());
                        a.on_reply(conn, xid, &reply, link.info.session, ip.as_deref());
                    }
                }
                self.encode_for_client(conn, |b| {
                    jute::encode_reply(xid, zxid.as_i64(), opcode, &reply, b)
                });
            }
            Action::Watch { conn, event } => {
                self.encode_for_client(conn, |b| jute::encode_watch_event(&event, b));
            }
            Action::Close { conn } => {
                // What was answered before the close goes first.
                self.flush_client(conn);
                if let Some(link) = self.conns.remove(&conn) {
                    // Err: the queue is full or gone, and dropping the kill switch closes it.
                    let _ = link.tx.try_send(Outgoing::Close(link.kill));
                }
                self.forget_conn(conn);
            }
            Action::QuorumCounted { purpose, members } => {
                let lost: Vec<_> = members
                    .iter()
                    .filter(|(_, ok)| !*ok)
                    .map(|(id, _)| *id)
                    .collect();
                tracing::debug!(
                    "quorum counted ({purpose}): {:?}; vouching for nothing: {lost:?}",
                    members.iter().map(|(id, _)| *id).collect::<Vec<_>>()
                );
            }
            Action::EphemeralsDeleted { session, paths, .. } => {
                if let Some(a) = &mut self.audit {
                    a.ephemerals_deleted(session, &paths);
                }
            }
            Action::StateChanged { state, epoch } => {
                self.state_since = Instant::now();
                self.availability.on_state(state, self.state_since);
                let st = server.status();
                tracing::info!(
                    "server {} is now {} (epoch {epoch}, leader {}, last zxid {})",
                    server.id(),
                    match state {
                        ServerState::Looking => "LOOKING",
                        ServerState::Following => "FOLLOWING",
                        ServerState::Leading => "LEADING",
                        ServerState::Observing => "OBSERVING",
                    },
                    st.leader
                        .map(|l| l.to_string())
                        .unwrap_or_else(|| "-".into()),
                    st.last_logged
                );
            }
        }
    }
}

/// The outbox during one step of the server, which it reports on.
pub(crate) struct Sink<'a> {
    pub out: &'a mut Outbox,
    pub server: &'a Server,
}

impl ActionSink for Sink<'_> {
    fn act(&mut self, action: Action) {
        self.out.act(action, self.server);
    }
}

/// Hand a peer's batch of quorum frames to its connection task.
pub(crate) fn flush_peer(sid: ServerId, p: &mut PeerLinks) {
    if p.out.is_empty() {
        return;
    }
    let bytes = std::mem::take(&mut p.out);
    if p.quorum.send(OutCmd::Frames(p.out_epoch, bytes)).is_err() {
        tracing::debug!(peer = sid, "quorum link task is gone");
    }
}
