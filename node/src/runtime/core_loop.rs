//! The thread that owns the `Server`: events in, effects executed in order.

use super::clients::ClientShared;
use super::peers::OutCmd;
use super::wire::{self, Channel};
use super::{Clock, Input, Outgoing, RuntimeError};
use crate::config::NodeConfig;
use crate::fourlw::{self, ConnInfo, ServerStats};
use crate::storage::Storage;
use crate::storage::log::LogEvent;
use bincode::Options;
use ensemble_core::proto::OpCode;
use ensemble_core::{ConnId, Effect, Event, PeerMsg, Server, ServerId, ServerState, Txn, jute};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::time::sleep_until;

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
    storage: Storage,
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
    pub fn new(
        server: Server,
        storage: Storage,
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
                self.fatal = Some(RuntimeError::Fatal(format!(
                    "the txn log cannot be written, stopping: {m}"
                )));
            }
            None => self.fatal = Some(RuntimeError::Fatal("the txn log writer is gone".into())),
        }
    }

    /// Hand one event to the core, then every event that executing its effects produced.
    fn feed(&mut self, ev: Event) {
        self.events.push_back(ev);
        self.drain_events();
    }

    fn drain_events(&mut self) {
        while let Some(ev) = self.events.pop_front() {
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
            self.flush_appends();
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

    fn flush_appends(&mut self) {
        if self.appends.is_empty() {
            return;
        }
        let txns = std::mem::take(&mut self.appends);
        if let Err(e) = self.storage.append(txns) {
            self.storage_failed("appending to the txn log", e);
        }
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

    fn storage_failed(&mut self, what: &str, e: crate::storage::StorageError) {
        tracing::error!("{what}: {e}");
        if self.fatal.is_none() {
            self.fatal = Some(RuntimeError::Fatal(format!("{what}: {e}")));
        }
    }

    fn execute(&mut self, effect: Effect) {
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
                self.flush_appends();
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
                self.flush_appends();
                if reset_log {
                    tracing::info!("snapshot from the leader at {zxid} ({} bytes)", data.len());
                }
                if let Err(e) = self.storage.snapshot(zxid, parts, data, reset_log) {
                    self.storage_failed("writing a snapshot", e);
                }
            }
            Effect::PersistEpochs(e) => {
                self.flush_appends();
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
