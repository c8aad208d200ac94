//! The thread that owns the `Server`: events in, effects executed in order.

use super::clients::ClientShared;
use super::peers::OutCmd;
use super::wire::{self, Channel};
use super::{Clock, Input, Outgoing, RuntimeError};
use crate::config::NodeConfig;
use crate::fourlw::{self, ConnInfo, ServerStats};
use crate::storage::log::LogEvent;
use crate::storage::{Storage, StorageError};
use bincode::Options;
use ensemble_core::proto::OpCode;
use ensemble_core::{
    ConnId, Effect, Epochs, Event, PeerMsg, Server, ServerId, ServerState, Txn, Zxid, jute,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::time::sleep_until;

/// The durable writes the core loop executes: [`Storage`] in the server, a fault-injecting
/// store in this module's tests. An `Err` means the write may not have happened, so nothing
/// that depends on it may leave the process.
pub(crate) trait DurableStore: Send {
    /// Queue txns; `LogEvent::Persisted` reports when they are durable.
    fn append(&mut self, txns: Vec<Arc<Txn>>) -> Result<(), StorageError>;
    /// Durable on return.
    fn truncate(&mut self, after: Zxid) -> Result<(), StorageError>;
    fn snapshot_part(
        &mut self,
        zxid: Zxid,
        index: u32,
        data: Arc<Vec<u8>>,
    ) -> Result<(), StorageError>;
    /// Durable on return when `reset_log`.
    fn snapshot(
        &mut self,
        zxid: Zxid,
        parts: u32,
        data: Arc<Vec<u8>>,
        reset_log: bool,
    ) -> Result<(), StorageError>;
    /// Durable on return.
    fn persist_epochs(&mut self, epochs: Epochs) -> Result<(), StorageError>;
    fn purge(&mut self) -> Result<(), StorageError>;
    fn close(self: Box<Self>) -> Result<(), StorageError>;
}

impl DurableStore for Storage {
    fn append(&mut self, txns: Vec<Arc<Txn>>) -> Result<(), StorageError> {
        Storage::append(self, txns)
    }
    fn truncate(&mut self, after: Zxid) -> Result<(), StorageError> {
        Storage::truncate(self, after)
    }
    fn snapshot_part(
        &mut self,
        zxid: Zxid,
        index: u32,
        data: Arc<Vec<u8>>,
    ) -> Result<(), StorageError> {
        Storage::snapshot_part(self, zxid, index, data)
    }
    fn snapshot(
        &mut self,
        zxid: Zxid,
        parts: u32,
        data: Arc<Vec<u8>>,
        reset_log: bool,
    ) -> Result<(), StorageError> {
        Storage::snapshot(self, zxid, parts, data, reset_log)
    }
    fn persist_epochs(&mut self, epochs: Epochs) -> Result<(), StorageError> {
        Storage::persist_epochs(self, epochs)
    }
    fn purge(&mut self) -> Result<(), StorageError> {
        Storage::purge(self)
    }
    fn close(self: Box<Self>) -> Result<(), StorageError> {
        Storage::close(*self)
    }
}

struct Inbound {
    generation: u64,
    /// Dropping it stops that connection's reader.
    _kill: oneshot::Sender<()>,
}

struct PeerLinks {
    election: mpsc::UnboundedSender<OutCmd>,
    quorum: mpsc::UnboundedSender<OutCmd>,
    /// Outbound quorum epoch: bumped each time the core is told of (or asks for) a break.
    out_epoch: u64,
    inbound: [Option<Inbound>; 2],
    /// Quorum frames encoded in this batch (all in `out_epoch`), handed over at its end.
    out: Vec<u8>,
}

struct ClientLink {
    tx: mpsc::Sender<Outgoing>,
    kill: Option<oneshot::Sender<()>>,
    queued: Arc<AtomicUsize>,
    info: ConnInfo,
    /// Frames encoded for it in this batch, handed over at its end.
    out: Vec<u8>,
}

/// Inputs taken into one batch before its output is handed over.
const MAX_BATCH: usize = 256;

pub struct CoreLoop {
    server: Server,
    storage: Box<dyn DurableStore>,
    cfg: Arc<NodeConfig>,
    clock: Clock,
    peers: BTreeMap<ServerId, PeerLinks>,
    conns: BTreeMap<ConnId, ClientLink>,
    /// Requests waiting for their reply, for latency.
    started: HashMap<(ConnId, i32), Instant>,
    stats: ServerStats,
    shared: Arc<ClientShared>,
    events: VecDeque<Event>,
    effects: Vec<Effect>,
    /// A durable write failed (or the log writer reported one): from then on no effect is
    /// executed and nothing more leaves the process; the loop ends at the end of the batch.
    fatal: Option<RuntimeError>,
    up_since: Instant,
    state_since: Instant,
    /// Bytes queued to one client beyond which it counts as not reading.
    client_budget: usize,
    /// Txns to append, handed to the log writer at the end of the batch (or before any other
    /// storage effect, to keep their order).
    appends: Vec<Arc<Txn>>,
    /// Connections with frames in `out`.
    dirty_clients: Vec<ConnId>,
    /// The last proposal encoded and its frame, so that it is encoded once for every follower.
    last_proposal: (Option<Arc<Txn>>, Vec<u8>),
}

fn idx(c: Channel) -> usize {
    c as usize
}

fn op_name(op: OpCode) -> &'static str {
    match op {
        OpCode::Ping => "PING",
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => "CREA",
        OpCode::Delete => "DELE",
        OpCode::Exists => "EXIS",
        OpCode::GetData => "GETD",
        OpCode::SetData => "SETD",
        OpCode::GetAcl => "GETA",
        OpCode::SetAcl => "SETA",
        OpCode::GetChildren | OpCode::GetChildren2 => "GETC",
        OpCode::Sync => "SYNC",
        OpCode::Check => "CHEC",
        OpCode::Multi | OpCode::MultiRead => "MULT",
        OpCode::SetWatches | OpCode::SetWatches2 => "SETW",
        OpCode::CloseSession => "CLOS",
        OpCode::Auth => "AUTH",
        _ => "OTHR",
    }
}

impl CoreLoop {
    pub(crate) fn new(
        server: Server,
        storage: Box<dyn DurableStore>,
        cfg: Arc<NodeConfig>,
        clock: Clock,
        senders: BTreeMap<ServerId, (mpsc::UnboundedSender<OutCmd>, mpsc::UnboundedSender<OutCmd>)>,
        shared: Arc<ClientShared>,
    ) -> CoreLoop {
        let peers = senders
            .into_iter()
            .map(|(sid, (election, quorum))| {
                (
                    sid,
                    PeerLinks {
                        election,
                        quorum,
                        out_epoch: 0,
                        inbound: [None, None],
                        out: Vec::new(),
                    },
                )
            })
            .collect();
        let client_budget = (64 << 20).max(4 * cfg.max_buffer);
        CoreLoop {
            server,
            storage,
            cfg,
            clock,
            peers,
            conns: BTreeMap::new(),
            started: HashMap::new(),
            stats: ServerStats::default(),
            shared,
            events: VecDeque::new(),
            effects: Vec::new(),
            fatal: None,
            up_since: Instant::now(),
            state_since: Instant::now(),
            client_budget,
            appends: Vec::new(),
            dirty_clients: Vec::new(),
            last_proposal: (None, Vec::new()),
        }
    }

    pub async fn run(
        mut self,
        mut input: mpsc::Receiver<Input>,
        mut storage: mpsc::UnboundedReceiver<LogEvent>,
    ) -> Result<(), RuntimeError> {
        let tick = Duration::from_millis(self.server.tick_interval().max(1));
        let mut next_tick = tokio::time::Instant::now() + tick;
        let purge_every = Duration::from_secs(3600 * self.cfg.purge_interval_hours as u64);
        let purging = !purge_every.is_zero();
        let mut next_purge = tokio::time::Instant::now() + purge_every;
        if purging {
            tracing::info!(
                "autopurge: every {} h, keeping {} snapshots",
                self.cfg.purge_interval_hours,
                self.cfg.snap_retain_count
            );
        }
        // Start the election at once rather than a tick later.
        self.feed(Event::Tick);
        self.flush();
        let mut stop = false;
        loop {
            tokio::select! {
                biased;
                ev = storage.recv() => self.on_log_event(ev),
                _ = sleep_until(next_tick) => {
                    next_tick = tokio::time::Instant::now() + tick;
                    self.feed(Event::Tick);
                }
                _ = sleep_until(next_purge), if purging => {
                    next_purge = tokio::time::Instant::now() + purge_every;
                    if let Err(e) = self.storage.purge() {
                        tracing::warn!("autopurge: {e}");
                    }
                }
                inp = input.recv() => match inp {
                    None | Some(Input::Shutdown) => stop = true,
                    Some(i) => self.on_input(i),
                },
            }
            // Whatever else is already waiting joins this batch, so that its output (peer
            // frames, log appends, replies) leaves in one hand-off per destination.
            for _ in 0..MAX_BATCH {
                if stop || self.fatal.is_some() {
                    break;
                }
                let mut more = false;
                match storage.try_recv() {
                    Ok(ev) => {
                        self.on_log_event(Some(ev));
                        more = true;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => self.on_log_event(None),
                    Err(mpsc::error::TryRecvError::Empty) => {}
                }
                match input.try_recv() {
                    Ok(Input::Shutdown) | Err(mpsc::error::TryRecvError::Disconnected) => {
                        stop = true
                    }
                    Ok(i) => {
                        self.on_input(i);
                        more = true;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => {}
                }
                if !more {
                    break;
                }
            }
            self.flush();
            if let Some(e) = self.fatal.take() {
                return Err(e);
            }
            if stop {
                break;
            }
        }
        tracing::info!("stopping: syncing the txn log");
        for (_, link) in std::mem::take(&mut self.conns) {
            let _ = link.tx.try_send(Outgoing::Close(link.kill));
        }
        self.storage.close()?;
        Ok(())
    }

    fn on_log_event(&mut self, ev: Option<LogEvent>) {
        match ev {
            Some(LogEvent::Persisted(z)) => self.feed(Event::Persisted { through: z }),
            Some(LogEvent::Failed(m)) => {
                self.fail(format!("the txn log cannot be written, stopping: {m}"))
            }
            None => self.fail("the txn log writer is gone".into()),
        }
    }

    /// Stop as ZooKeeper stops on an fsync failure: the first failure is what the server
    /// exits with.
    fn fail(&mut self, message: String) {
        tracing::error!("{message}");
        if self.fatal.is_none() {
            self.fatal = Some(RuntimeError::Fatal(message));
        }
    }

    /// Hand one event to the core, then every event that executing its effects produced.
    fn feed(&mut self, ev: Event) {
        self.events.push_back(ev);
        self.drain_events();
    }

    fn drain_events(&mut self) {
        while let Some(ev) = self.events.pop_front() {
            if self.fatal.is_some() {
                // The core believes in a write that did not happen: it decides nothing more.
                self.events.clear();
                return;
            }
            let mut out = std::mem::take(&mut self.effects);
            self.server.handle(self.clock.now(), ev, &mut out);
            for e in out.drain(..) {
                self.execute(e);
            }
            self.effects = out;
        }
    }

    /// The end of a batch: hand over what it produced, one hand-off per destination.
    fn flush(&mut self) {
        loop {
            if self.fatal.is_some() {
                self.discard_batch();
                return;
            }
            if !self.flush_appends() {
                continue;
            }
            for (sid, p) in self.peers.iter_mut() {
                flush_peer(*sid, p);
            }
            self.flush_clients();
            if self.events.is_empty() {
                break;
            }
            // Clients dropped for not reading: the core hears of it, and what that produces
            // goes out too.
            self.drain_events();
        }
    }

    /// After a failed write: drop what this batch encoded for peers and clients. Some of it may
    /// not depend on the write, but the server is stopping, and dropping it is no different
    /// from a crash before it was sent.
    fn discard_batch(&mut self) {
        self.appends.clear();
        for p in self.peers.values_mut() {
            p.out.clear();
        }
        for link in self.conns.values_mut() {
            link.out.clear();
        }
        self.dirty_clients.clear();
        self.events.clear();
    }

    /// Hand the batch's txns to the log writer; false if that failed (the loop is stopping).
    fn flush_appends(&mut self) -> bool {
        if self.appends.is_empty() {
            return self.fatal.is_none();
        }
        let txns = std::mem::take(&mut self.appends);
        if let Err(e) = self.storage.append(txns) {
            self.storage_failed("appending to the txn log", e);
        }
        self.fatal.is_none()
    }

    fn flush_clients(&mut self) {
        for conn in std::mem::take(&mut self.dirty_clients) {
            self.flush_client(conn);
        }
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

    fn on_input(&mut self, input: Input) {
        match input {
            Input::PeerOpened {
                sid,
                channel,
                generation,
                kill,
            } => {
                let Some(p) = self.peers.get_mut(&sid) else {
                    return;
                };
                let old = p.inbound[idx(channel)].replace(Inbound {
                    generation,
                    _kill: kill,
                });
                tracing::debug!(
                    peer = sid,
                    channel = channel.name(),
                    generation,
                    "inbound connection"
                );
                if old.is_some() && channel == Channel::Quorum {
                    // The older connection is over; say so before anything from the new one.
                    self.feed(Event::PeerDisconnected { peer: sid });
                }
            }
            Input::PeerMsgs {
                sid,
                channel,
                generation,
                msgs,
            } => {
                for msg in msgs {
                    // Checked per message: one of them may have the core drop this link.
                    let Some(p) = self.peers.get(&sid) else {
                        return;
                    };
                    if p.inbound[idx(channel)]
                        .as_ref()
                        .is_none_or(|i| i.generation != generation)
                    {
                        return;
                    }
                    self.feed(Event::Peer { from: sid, msg });
                }
            }
            Input::PeerClosed {
                sid,
                channel,
                generation,
            } => {
                let Some(p) = self.peers.get_mut(&sid) else {
                    return;
                };
                if p.inbound[idx(channel)]
                    .as_ref()
                    .is_some_and(|i| i.generation == generation)
                {
                    p.inbound[idx(channel)] = None;
                    if channel == Channel::Quorum {
                        self.feed(Event::PeerDisconnected { peer: sid });
                    }
                }
            }
            Input::OutboundBroken {
                sid,
                channel,
                epoch,
            } => {
                let Some(p) = self.peers.get_mut(&sid) else {
                    return;
                };
                if channel == Channel::Quorum && epoch == p.out_epoch {
                    flush_peer(sid, p);
                    p.out_epoch += 1;
                    self.feed(Event::PeerDisconnected { peer: sid });
                }
            }
            Input::ClientOpened {
                conn,
                addr,
                tx,
                kill,
                queued,
            } => {
                let info = ConnInfo {
                    addr: Some(addr),
                    established: self.clock.now(),
                    last_op: "NA",
                    last_cxid: -1,
                    last_zxid: -1,
                    ..ConnInfo::default()
                };
                self.conns.insert(
                    conn,
                    ClientLink {
                        tx,
                        kill: Some(kill),
                        queued,
                        info,
                        out: Vec::new(),
                    },
                );
            }
            Input::ClientConnect {
                conn,
                request,
                size,
            } => {
                let Some(link) = self.conns.get_mut(&conn) else {
                    return;
                };
                link.info.recved += 1;
                self.stats.received += 1;
                self.stats.bytes_received += size as u64;
                let addr = link
                    .info
                    .addr
                    .map(|a| a.ip().to_canonical().to_string())
                    .unwrap_or_default();
                self.feed(Event::ClientConnected {
                    conn,
                    addr,
                    request,
                });
            }
            Input::ClientRequests { conn, requests } => {
                let now = Instant::now();
                for (xid, request, size) in requests {
                    // Checked per request: the core may close the connection midway.
                    let Some(link) = self.conns.get_mut(&conn) else {
                        return;
                    };
                    link.info.recved += 1;
                    link.info.last_op = op_name(request.opcode());
                    link.info.last_cxid = xid;
                    self.stats.received += 1;
                    self.stats.bytes_received += size as u64;
                    self.started.insert((conn, xid), now);
                    self.feed(Event::Client { conn, xid, request });
                }
            }
            Input::ClientRefused {
                conn,
                xid,
                opcode,
                reply,
                close,
                size,
            } => {
                let Some(link) = self.conns.get_mut(&conn) else {
                    return;
                };
                link.info.recved += 1;
                link.info.last_op = op_name(opcode);
                link.info.last_cxid = xid;
                self.stats.received += 1;
                self.stats.bytes_received += size as u64;
                self.started.insert((conn, xid), Instant::now());
                self.feed(Event::ClientRefused {
                    conn,
                    xid,
                    opcode,
                    reply,
                    close,
                });
            }
            Input::ClientClosed { conn } => {
                if self.conns.remove(&conn).is_some() {
                    self.forget_conn(conn);
                    self.feed(Event::ClientDisconnected { conn });
                }
            }
            Input::FourLetter { word, addr, reply } => {
                let text = self.four_letter(word, addr);
                let _ = reply.send(text);
            }
            Input::Shutdown => {}
        }
    }

    fn forget_conn(&mut self, conn: ConnId) {
        self.started.retain(|(c, _), _| *c != conn);
    }

    fn storage_failed(&mut self, what: &str, e: StorageError) {
        self.fail(format!("{what}: {e}; stopping"));
    }

    fn execute(&mut self, effect: Effect) {
        if self.fatal.is_some() {
            // Whatever the core said after a failed write may depend on it.
            return;
        }
        match effect {
            Effect::Send { to, msg } => {
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
                let start = p.out.len();
                if let Err(e) = wire::encode_frame(&msg, &mut p.out) {
                    tracing::error!(peer = to, "cannot encode {}: {e}", msg.name());
                    return;
                }
                if let PeerMsg::Proposal(t) = msg {
                    let (last, frame) = &mut self.last_proposal;
                    frame.clear();
                    frame.extend_from_slice(&p.out[start..]);
                    *last = Some(t);
                }
            }
            Effect::DisconnectPeer { peer } => {
                let Some(p) = self.peers.get_mut(&peer) else {
                    return;
                };
                tracing::debug!(peer, "disconnecting from server {peer}");
                flush_peer(peer, p);
                p.out_epoch += 1;
                let _ = p.quorum.send(OutCmd::Reset(p.out_epoch));
                p.inbound[idx(Channel::Quorum)] = None;
            }
            Effect::ConnectReply { conn, response } => {
                if let Some(link) = self.conns.get_mut(&conn) {
                    link.info.session = response.session_id;
                    link.info.timeout = response.timeout_ms;
                }
                self.encode_for_client(conn, |b| jute::encode_connect_response(&response, b));
            }
            Effect::Reply {
                conn,
                xid,
                zxid,
                opcode,
                reply,
            } => {
                let now = self.clock.now();
                if let Some(t0) = self.started.remove(&(conn, xid)) {
                    let ms = t0.elapsed().as_millis() as u64;
                    self.stats.latency(ms);
                    if let Some(link) = self.conns.get_mut(&conn) {
                        link.info.latency(ms);
                    }
                }
                if let Some(link) = self.conns.get_mut(&conn) {
                    link.info.last_zxid = zxid.as_i64();
                    link.info.last_resp = now;
                }
                self.encode_for_client(conn, |b| {
                    jute::encode_reply(xid, zxid.as_i64(), opcode, &reply, b)
                });
            }
            Effect::Watch { conn, event } => {
                self.encode_for_client(conn, |b| jute::encode_watch_event(&event, b));
            }
            Effect::Close { conn } => {
                // What was answered before the close goes first.
                self.flush_client(conn);
                if let Some(link) = self.conns.remove(&conn) {
                    // Err: the queue is full or gone, and dropping the kill switch closes it.
                    let _ = link.tx.try_send(Outgoing::Close(link.kill));
                }
                self.forget_conn(conn);
            }
            Effect::Append { txns } => {
                if self.server.state() == ServerState::Leading {
                    for t in &txns {
                        if let Ok(n) = crate::storage::codec::txn_options().serialized_size(t) {
                            self.stats.proposal(n as usize);
                        }
                    }
                }
                self.appends.extend(txns);
            }
            Effect::Truncate { after } => {
                if !self.flush_appends() {
                    return;
                }
                tracing::info!("truncating the txn log after {after}");
                if let Err(e) = self.storage.truncate(after) {
                    self.storage_failed("truncating the txn log", e);
                }
            }
            Effect::SnapshotPart { zxid, index, data } => {
                if let Err(e) = self.storage.snapshot_part(zxid, index, data) {
                    self.storage_failed("writing a snapshot", e);
                }
            }
            Effect::Snapshot {
                zxid,
                parts,
                data,
                reset_log,
            } => {
                if !self.flush_appends() {
                    return;
                }
                if reset_log {
                    tracing::info!("snapshot from the leader at {zxid} ({} bytes)", data.len());
                }
                if let Err(e) = self.storage.snapshot(zxid, parts, data, reset_log) {
                    self.storage_failed("writing a snapshot", e);
                }
            }
            Effect::PersistEpochs(e) => {
                if !self.flush_appends() {
                    return;
                }
                if let Err(err) = self.storage.persist_epochs(e) {
                    self.storage_failed("writing acceptedEpoch/currentEpoch", err);
                }
            }
            Effect::StateChanged { state, epoch } => {
                self.state_since = Instant::now();
                let st = self.server.status();
                tracing::info!(
                    "server {} is now {} (epoch {epoch}, leader {}, last zxid {})",
                    self.server.id(),
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

    fn four_letter(&mut self, word: &'static str, addr: SocketAddr) -> String {
        match word {
            "crst" => {
                for l in self.conns.values_mut() {
                    l.info.reset();
                }
            }
            "srst" => self.stats.reset(),
            _ => {}
        }
        self.stats.connections_rejected = self.shared.rejected.load(Ordering::Relaxed);
        let mut conns: Vec<ConnInfo> = self
            .conns
            .values()
            .map(|l| {
                let mut i = l.info.clone();
                i.queued = l.tx.max_capacity().saturating_sub(l.tx.capacity()) as u64;
                i
            })
            .collect();
        // ZooKeeper lists the asking connection too.
        conns.push(ConnInfo {
            addr: Some(addr),
            recved: 1,
            last_op: "NA",
            ..ConnInfo::default()
        });
        let ctx = fourlw::Ctx {
            server: &self.server,
            cfg: &self.cfg,
            stats: &self.stats,
            conns,
            uptime_ms: self.up_since.elapsed().as_millis() as u64,
            state_ms: self.state_since.elapsed().as_millis() as u64,
        };
        fourlw::render(word, &ctx)
    }
}

/// Hand a peer's batch of quorum frames to its connection task.
fn flush_peer(sid: ServerId, p: &mut PeerLinks) {
    if p.out.is_empty() {
        return;
    }
    let bytes = std::mem::take(&mut p.out);
    if p.quorum.send(OutCmd::Frames(p.out_epoch, bytes)).is_err() {
        tracing::debug!(peer = sid, "quorum link task is gone");
    }
}

#[cfg(test)]
mod tests {
    //! The interpreter's rule for failed writes, with a store that fails on demand: nothing
    //! that follows a failed durable write in the core's effect order leaves the process.

    use super::*;
    use crate::runtime::clients::ClientShared;
    use ensemble_core::proto::{Reply, Response};
    use std::sync::atomic::AtomicU64;
    use std::sync::{Arc, Mutex};

    /// Which writes fail, and what was asked of the store.
    #[derive(Default)]
    struct Faults {
        fail_epochs: bool,
        fail_truncate: bool,
        fail_reset_snapshot: bool,
        fail_append: bool,
        calls: Vec<&'static str>,
    }

    struct FaultyStore(Arc<Mutex<Faults>>);

    fn injected(what: &str) -> StorageError {
        StorageError::io(
            std::path::Path::new(what),
            std::io::Error::from_raw_os_error(libc::ENOSPC),
        )
    }

    impl FaultyStore {
        fn call(
            &self,
            what: &'static str,
            fails: impl Fn(&Faults) -> bool,
        ) -> Result<(), StorageError> {
            let mut f = self.0.lock().expect("test lock");
            f.calls.push(what);
            if fails(&f) {
                Err(injected(what))
            } else {
                Ok(())
            }
        }
    }

    impl DurableStore for FaultyStore {
        fn append(&mut self, _: Vec<Arc<Txn>>) -> Result<(), StorageError> {
            self.call("append", |f| f.fail_append)
        }
        fn truncate(&mut self, _: Zxid) -> Result<(), StorageError> {
            self.call("truncate", |f| f.fail_truncate)
        }
        fn snapshot_part(&mut self, _: Zxid, _: u32, _: Arc<Vec<u8>>) -> Result<(), StorageError> {
            self.call("snapshot_part", |_| false)
        }
        fn snapshot(
            &mut self,
            _: Zxid,
            _: u32,
            _: Arc<Vec<u8>>,
            reset_log: bool,
        ) -> Result<(), StorageError> {
            self.call("snapshot", |f| reset_log && f.fail_reset_snapshot)
        }
        fn persist_epochs(&mut self, _: Epochs) -> Result<(), StorageError> {
            self.call("persist_epochs", |f| f.fail_epochs)
        }
        fn purge(&mut self) -> Result<(), StorageError> {
            self.call("purge", |_| false)
        }
        fn close(self: Box<Self>) -> Result<(), StorageError> {
            Ok(())
        }
    }

    struct Rig {
        lp: CoreLoop,
        faults: Arc<Mutex<Faults>>,
        election: mpsc::UnboundedReceiver<OutCmd>,
        quorum: mpsc::UnboundedReceiver<OutCmd>,
        client: mpsc::Receiver<Outgoing>,
        _input: mpsc::Receiver<Input>,
        _dir: PathGuard,
    }

    struct PathGuard(std::path::PathBuf);
    impl Drop for PathGuard {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const CONN: ConnId = 7;

    /// Server 1 of three (not started: effects are handed to the interpreter directly), with
    /// links to server 2 and one client connection.
    fn rig(tag: &str, faults: Faults) -> Rig {
        let dir = std::env::temp_dir().join(format!("ens-coreloop-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("tmp dir");
        std::fs::write(dir.join("myid"), "1").expect("myid");
        let text = format!(
            "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={}\nclientPort=23301\n\
             server.1=127.0.0.1:23311:23321\nserver.2=127.0.0.1:23312:23322\n\
             server.3=127.0.0.1:23313:23323\n",
            dir.display()
        );
        let cfg = crate::config::parse(&dir.join("zoo.cfg"), &text).expect("config");
        let clock = Clock::new();
        let server =
            Server::new(cfg.core.clone(), Default::default(), clock.now()).expect("server");
        let (etx, election) = mpsc::unbounded_channel();
        let (qtx, quorum) = mpsc::unbounded_channel();
        let (input_tx, input) = mpsc::channel(16);
        let shared = Arc::new(ClientShared {
            max_per_ip: 0,
            max_buffer: cfg.max_buffer,
            whitelist: cfg.whitelist.clone(),
            next_conn: AtomicU64::new(0),
            per_ip: Default::default(),
            input: input_tx,
            rejected: AtomicU64::new(0),
        });
        let faults = Arc::new(Mutex::new(faults));
        let mut lp = CoreLoop::new(
            server,
            Box::new(FaultyStore(faults.clone())),
            Arc::new(cfg),
            clock,
            BTreeMap::from([(2, (etx, qtx))]),
            shared,
        );
        let (ctx, client) = mpsc::channel(16);
        let (kill, _) = oneshot::channel();
        lp.on_input(Input::ClientOpened {
            conn: CONN,
            addr: "127.0.0.1:40000".parse().expect("addr"),
            tx: ctx,
            kill,
            queued: Arc::new(AtomicUsize::new(0)),
        });
        Rig {
            lp,
            faults,
            election,
            quorum,
            client,
            _input: input,
            _dir: PathGuard(dir),
        }
    }

    fn ack_epoch() -> Effect {
        Effect::Send {
            to: 2,
            msg: PeerMsg::AckEpoch {
                epoch: 1,
                current_epoch: 0,
                last_zxid: Zxid::ZERO,
                counted: true,
            },
        }
    }

    fn ack_newleader() -> Effect {
        Effect::Send {
            to: 2,
            msg: PeerMsg::AckNewLeader { zxid: Zxid::ZERO },
        }
    }

    fn reply() -> Effect {
        Effect::Reply {
            conn: CONN,
            xid: 1,
            zxid: Zxid::ZERO,
            opcode: OpCode::Exists,
            reply: Ok(Response::Empty) as Reply,
        }
    }

    fn epochs() -> Effect {
        Effect::PersistEpochs(Epochs {
            accepted_epoch: 1,
            accepted_from: 2,
            current_epoch: 0,
        })
    }

    /// Execute `effects` as one batch and report what left: quorum frames, election
    /// messages, client frames.
    fn run_batch(r: &mut Rig, effects: Vec<Effect>) -> (usize, usize, usize) {
        for e in effects {
            r.lp.execute(e);
        }
        r.lp.flush();
        let count = |f: &mut dyn FnMut() -> bool| {
            let mut n = 0;
            while f() {
                n += 1;
            }
            n
        };
        let q = count(&mut || r.quorum.try_recv().is_ok());
        let e = count(&mut || r.election.try_recv().is_ok());
        let c = count(&mut || r.client.try_recv().is_ok());
        (q, e, c)
    }

    #[test]
    fn what_follows_a_durable_write_leaves_when_it_succeeded() {
        let mut r = rig("ok", Faults::default());
        let sent = run_batch(
            &mut r,
            vec![epochs(), ack_epoch(), ack_newleader(), reply()],
        );
        assert_eq!(
            sent,
            (1, 0, 1),
            "one quorum hand-off and one client hand-off"
        );
        assert!(r.lp.fatal.is_none());
    }

    #[test]
    fn no_ackepoch_after_a_failed_persist_epochs() {
        let mut r = rig(
            "epochs",
            Faults {
                fail_epochs: true,
                ..Faults::default()
            },
        );
        let notification = Effect::Send {
            to: 2,
            msg: PeerMsg::Ping { round: 1 },
        };
        let sent = run_batch(&mut r, vec![epochs(), ack_epoch(), notification, reply()]);
        assert_eq!(sent, (0, 0, 0));
        let fatal =
            r.lp.fatal
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(
            fatal.contains("acceptedEpoch") && fatal.contains("No space left"),
            "{fatal}"
        );
        // Later batches execute nothing either, not even another durable write.
        let sent = run_batch(&mut r, vec![epochs(), ack_newleader()]);
        assert_eq!(sent, (0, 0, 0));
        assert_eq!(r.faults.lock().expect("lock").calls, ["persist_epochs"]);
    }

    #[test]
    fn frames_encoded_before_the_failure_in_the_batch_are_dropped_too() {
        let mut r = rig(
            "before",
            Faults {
                fail_truncate: true,
                ..Faults::default()
            },
        );
        let sent = run_batch(
            &mut r,
            vec![
                ack_epoch(),
                reply(),
                Effect::Truncate { after: Zxid::ZERO },
                ack_newleader(),
            ],
        );
        assert_eq!(sent, (0, 0, 0));
        assert!(r.lp.fatal.is_some());
    }

    #[test]
    fn no_ack_newleader_after_a_failed_snapshot_from_the_leader() {
        let mut r = rig(
            "snap",
            Faults {
                fail_reset_snapshot: true,
                ..Faults::default()
            },
        );
        let snap = Effect::Snapshot {
            zxid: Zxid::ZERO,
            parts: 0,
            data: Arc::new(vec![]),
            reset_log: true,
        };
        let sent = run_batch(&mut r, vec![snap, ack_newleader(), reply()]);
        assert_eq!(sent, (0, 0, 0));
        assert!(r.lp.fatal.is_some());
    }

    #[test]
    fn a_failed_append_hand_off_stops_the_write_after_it() {
        let mut r = rig(
            "append",
            Faults {
                fail_append: true,
                ..Faults::default()
            },
        );
        let txn = Txn {
            zxid: Zxid::new(1, 1),
            time: 0,
            session: 1,
            cxid: 0,
            origin: ensemble_core::txn::Origin::NONE,
            op: ensemble_core::TxnOp::CloseSession,
        };
        // Appends are handed over before the next durable write: that hand-off fails, and the
        // epochs are not written, nor the ACK after them sent.
        let append = Effect::Append {
            txns: vec![Arc::new(txn)],
        };
        let sent = run_batch(&mut r, vec![append, epochs(), ack_epoch()]);
        assert_eq!(sent, (0, 0, 0));
        assert_eq!(r.faults.lock().expect("lock").calls, ["append"]);
    }

    #[test]
    fn a_log_writer_failure_stops_everything_after_it() {
        let mut r = rig("logfail", Faults::default());
        r.lp.on_log_event(Some(LogEvent::Failed(
            "/x/log.1: No space left on device".into(),
        )));
        let sent = run_batch(&mut r, vec![ack_newleader(), reply()]);
        assert_eq!(sent, (0, 0, 0));
        let fatal =
            r.lp.fatal
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(fatal.contains("/x/log.1"), "{fatal}");
    }
}
