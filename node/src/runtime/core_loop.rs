//! The thread that owns the `Server`: events in, the core's output driven in its order.
//!
//! Each event goes to [`Server::handle_ready`]; the [`Ready`] that comes out is executed by
//! [`Ready::drive`], writes to the [`Disk`] before the actions that follow them to the
//! [`Outbox`]. Events that are already waiting join one batch, whose output is handed over at
//! its end: the appends to the log writer first (one hand-off, group-committed), then the frames,
//! one hand-off per peer and per client. A write that fails stops the server: `drive` releases
//! nothing after it, the batch's frames are dropped, and the loop ends with the error.

use super::clients::ClientShared;
use super::disk::{Backend, Disk, DiskError};
use super::outbox::{ClientLink, Inbound, Outbox, Sink, flush_peer, idx};
use super::throttler::{ConnView, Held, Next, RequestThrottler, Waiting};
use super::wire::Channel;
use super::{Clock, Input, Outgoing, RuntimeError};
use crate::config::NodeConfig;
use crate::fourlw::{self, ConnInfo};
use crate::storage::log::LogEvent;
use bincode::Options;
use ensemble_core::{Event, Ready, Server, ServerId, ServerState, Write};
use ensemble_proto::proto::OpCode;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::time::sleep_until;

/// Inputs taken into one batch before its output is handed over.
const MAX_BATCH: usize = 256;

pub struct CoreLoop {
    server: Server,
    /// The output of the event being handled; empty between events.
    ready: Ready,
    disk: Disk,
    out: Outbox,
    cfg: Arc<NodeConfig>,
    clock: Clock,
    shared: Arc<ClientShared>,
    /// A durable write failed (or the log writer reported one): from then on the core's output
    /// is not executed and nothing more leaves the process; the loop ends at the end of the
    /// batch.
    fatal: Option<RuntimeError>,
    up_since: Instant,
    /// `zookeeper.request_throttle_max_requests`: client requests waiting for room.
    throttler: RequestThrottler,
    /// The peer links, following the configuration (`None`: fixed, in tests).
    view: Option<super::quorum_view::QuorumView>,
    /// When we last said why a server whose data dir vouches for nothing is still LOOKING.
    waiting_said: Option<Instant>,
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
        storage: Box<dyn Backend>,
        cfg: Arc<NodeConfig>,
        clock: Clock,
        senders: BTreeMap<ServerId, super::Senders>,
        view: Option<super::quorum_view::QuorumView>,
        shared: Arc<ClientShared>,
    ) -> CoreLoop {
        let client_budget = (64 << 20).max(4 * cfg.max_buffer);
        let throttler = RequestThrottler::new(cfg.request_throttle.clone());
        let mut out = Outbox::new(clock, senders, client_budget);
        out.outstanding = shared.outstanding.clone();
        out.snap_dir = cfg.snap_dir();
        CoreLoop {
            server,
            ready: Ready::new(),
            disk: Disk::new(storage),
            out,
            cfg,
            clock,
            shared,
            fatal: None,
            up_since: Instant::now(),
            waiting_said: None,
            throttler,
            view,
        }
    }

    /// `zk-observe`: every message to a peer goes to Apache ZooKeeper's leader.
    pub(crate) fn set_foreign_leader(
        &mut self,
        link: Arc<crate::zookeeper::leader_link::ForeignLeaderLink>,
    ) {
        self.out.foreign_leader = Some(link);
    }

    /// A voter whose data dir vouches for nothing (no currentEpoch: new, lost, or an older
    /// copy put back) and that is still LOOKING says why, every 10 s after its first 5: by
    /// default it counts in no quorum until it has synced, so a new ensemble forms only once
    /// every voter is up (sim/README.md, "Disk loss").
    fn say_why_waiting(&mut self) {
        const FIRST: Duration = Duration::from_secs(5);
        const EVERY: Duration = Duration::from_secs(10);
        if self.cfg.core.trust_empty_data_dirs {
            return;
        }
        let st = self.server.status();
        let voters: Vec<ServerId> = self.server.membership().voters().collect();
        if st.state != Some(ServerState::Looking)
            || st.current_epoch != 0
            || voters.len() < 2
            || !voters.contains(&self.cfg.core.my_id)
            || self.out.state_since.elapsed() < FIRST
            || self.waiting_said.is_some_and(|t| t.elapsed() < EVERY)
        {
            return;
        }
        self.waiting_said = Some(Instant::now());
        tracing::warn!(
            "waiting for all {} voters of a new ensemble; see ensemble.trustEmptyDataDirs (this \
             server has no currentEpoch: a new data dir, a lost one or an older copy put back; \
             it counts in no quorum until it has synced from a leader, and with no leader a \
             new ensemble forms once every voter is up, or once a majority that kept their \
             data dirs is)",
            voters.len()
        );
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
        if self.cfg.audit_enable {
            match crate::audit::AuditLog::open(&self.cfg.data_dir) {
                Ok(mut log) => {
                    tracing::info!("ZooKeeper audit is enabled: {}", log.path().display());
                    log.server_start();
                    self.out.audit = Some(log);
                }
                Err(e) => {
                    return Err(RuntimeError::Fatal(format!(
                        "audit.enable=true but the audit log {} cannot be opened: {e}",
                        self.cfg.data_dir.join(crate::audit::FILE).display()
                    )));
                }
            }
        }
        // Start the election at once rather than a tick later.
        self.feed(Event::Tick);
        self.flush();
        let mut stop = false;
        loop {
            let stall = self
                .throttler
                .stall_until()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                biased;
                ev = storage.recv() => self.on_log_event(ev),
                // the stall ran its time: the throttler looks again (below)
                _ = sleep_until(stall.unwrap_or(next_tick)), if stall.is_some() => {}
                _ = sleep_until(next_tick) => {
                    next_tick = tokio::time::Instant::now() + tick;
                    self.feed(Event::Tick);
                    self.say_why_waiting();
                }
                _ = sleep_until(next_purge), if purging => {
                    next_purge = tokio::time::Instant::now() + purge_every;
                    if let Err(e) = self.disk.purge() {
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
            self.pump();
            self.flush();
            if let Some(e) = self.fatal.take() {
                return Err(e);
            }
            if stop {
                break;
            }
        }
        tracing::info!("stopping: syncing the txn log");
        if let Some(a) = &mut self.out.audit {
            a.server_stop();
        }
        for (_, link) in std::mem::take(&mut self.out.conns) {
            let _ = link.tx.try_send(Outgoing::Close(link.kill));
        }
        self.disk.close()?;
        Ok(())
    }

    fn on_log_event(&mut self, ev: Option<LogEvent>) {
        match ev {
            Some(LogEvent::Persisted(z)) => self.feed(Event::Persisted { through: z }),
            Some(LogEvent::Failed(m)) => {
                self.fail(format!("the txn log cannot be written, stopping: {m}"))
            }
            Some(LogEvent::SnapshotFailed(m)) => self.fail(m),
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

    /// Hand one event to the core, then every event that executing its output produced.
    fn feed(&mut self, ev: Event) {
        self.out.events.push_back(ev);
        self.drain_events();
    }

    fn drain_events(&mut self) {
        while let Some(ev) = self.out.events.pop_front() {
            if self.fatal.is_some() {
                // The core believes in a write that did not happen: it decides nothing more.
                self.out.events.clear();
                return;
            }
            self.server
                .handle_ready(self.clock.now(), ev, &mut self.ready);
            self.execute();
        }
    }

    /// Execute what the core produced: its writes to the disk before what depends on them.
    fn execute(&mut self) {
        if self.fatal.is_some() {
            // Whatever the core said after a failed write may depend on it.
            self.ready.clear();
            return;
        }
        if self.server.state() == ServerState::Leading {
            self.count_proposals();
        }
        self.count_snapshots();
        let mut sink = Sink {
            out: &mut self.out,
            server: &self.server,
        };
        if let Err(DiskError { what, error }) = self.ready.drive(&mut self.disk, &mut sink) {
            self.fail(format!("{what}: {error}; stopping"));
        }
        assert!(self.ready.is_empty());
        if let Some(view) = &mut self.view {
            view.follow(&self.server, &mut self.out);
        }
        self.out
            .availability
            .on_step(self.server.is_serving(), Instant::now());
    }

    /// Each snapshot written, for the snapshot parts histogram.
    fn count_snapshots(&self) {
        for batch in self.ready.batches() {
            for write in batch.writes() {
                if let Write::Snapshot { parts, .. } = write {
                    crate::metrics::server_metrics()
                        .own
                        .snapshot_parts
                        .observe(f64::from(*parts) + 1.0);
                }
            }
        }
    }

    /// The leader's txns, for the proposal sizes of `mntr`.
    fn count_proposals(&mut self) {
        for batch in self.ready.batches() {
            for write in batch.writes() {
                if let Write::Append { txns } = write {
                    for t in txns {
                        if let Ok(n) = crate::storage::codec::txn_options().serialized_size(t) {
                            self.out.stats.proposal(n as usize);
                            crate::metrics::server_metrics()
                                .own
                                .proposal_bytes
                                .observe(n as f64);
                        }
                    }
                }
            }
        }
    }

    /// The end of a batch: hand over what it produced, the appends first, then one hand-off
    /// per destination.
    fn flush(&mut self) {
        loop {
            if self.fatal.is_some() {
                self.disk.discard();
                self.out.discard();
                return;
            }
            if let Err(DiskError { what, error }) = self.disk.flush_appends() {
                self.fail(format!("{what}: {error}; stopping"));
                continue;
            }
            self.out.flush();
            if self.out.events.is_empty() {
                break;
            }
            // Clients dropped for not reading: the core hears of it, and what that produces
            // goes out too.
            self.drain_events();
        }
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::PeerOpened {
                sid,
                channel,
                generation,
                kill,
                addr,
            } => {
                let Some(p) = self.out.peers.get_mut(&sid) else {
                    return;
                };
                let old = p.inbound[idx(channel)].replace(Inbound {
                    generation,
                    addr,
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
            Input::Guest { sid, addr } => {
                if let Some(view) = &mut self.view {
                    view.add_guest(&self.server, sid, addr, &mut self.out);
                }
            }
            Input::PeerMsgs {
                sid,
                channel,
                generation,
                msgs,
            } => {
                // Taken off the connection reader's count; the storage counts them again
                // as it queues them for the snapshot writer.
                let parts = crate::storage::part_budget::snap_part_bytes(&msgs);
                if parts > 0 {
                    crate::storage::part_budget::SNAP_PARTS.done(parts);
                }
                for msg in msgs {
                    // Checked per message: one of them may have the core drop this link.
                    let Some(p) = self.out.peers.get(&sid) else {
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
                let Some(p) = self.out.peers.get_mut(&sid) else {
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
                let Some(p) = self.out.peers.get_mut(&sid) else {
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
                self.out.conns.insert(
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
                let Some(link) = self.out.conns.get_mut(&conn) else {
                    return;
                };
                link.info.recved += 1;
                self.out.stats.received += 1;
                self.out.stats.bytes_received += size as u64;
                crate::metrics::server_metrics().add("connection_request_count", 1);
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
                if self.throttler.enabled() {
                    for (xid, request, size) in requests {
                        let held = Held::Request { xid, request, size };
                        self.throttler.push(conn, now, held);
                    }
                    self.pump();
                    return;
                }
                let mut left = requests.len();
                for (xid, request, size) in requests {
                    left -= 1;
                    // Checked per request: the core may close the connection midway.
                    if !self.submit(conn, xid, request, size, now, false) {
                        self.out.outstanding.done(left);
                        crate::metrics::server_metrics().add("stale_requests", left as u64);
                        return;
                    }
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
                let held = Held::Refused {
                    xid,
                    opcode,
                    reply,
                    close,
                    size,
                };
                if self.throttler.enabled() {
                    self.throttler.push(conn, Instant::now(), held);
                    self.pump();
                } else {
                    self.submit_held(conn, held, Instant::now());
                }
            }
            Input::ClientClosed { conn } => {
                if self.out.conns.remove(&conn).is_some() {
                    self.out.forget_conn(conn);
                    self.feed(Event::ClientDisconnected { conn });
                }
            }
            Input::ClientAuthenticated { conn, id } => {
                if self.throttler.enabled() {
                    // after the requests it came behind
                    let held = Held::Authenticated { id };
                    self.throttler.push(conn, Instant::now(), held);
                    self.pump();
                } else {
                    self.submit_held(conn, Held::Authenticated { id }, Instant::now());
                }
            }
            Input::FourLetter { word, addr, reply } => {
                let text = self.four_letter(word, addr);
                let _ = reply.send(text);
            }
            Input::Admin {
                command,
                params,
                reply,
            } => {
                let answer = self.admin(command, &params);
                let _ = reply.send(answer);
            }
            Input::AdminGuarded {
                command,
                ids,
                reply,
            } => {
                let _ = reply.send(self.guarded(command, &ids));
            }
            Input::Metrics { reply } => {
                let view = self.view(None);
                let _ = reply.send(crate::metrics::monitor::gather(&view));
            }
            Input::Foreign(f) => self.feed(Event::Foreign(f)),
            Input::Shutdown => {}
        }
    }

    /// Hand one client request to the core, `arrived` when its connection handed it over;
    /// `false` if the connection is gone (the request is dropped and no longer outstanding).
    fn submit(
        &mut self,
        conn: ensemble_core::ConnId,
        xid: i32,
        request: ensemble_proto::proto::Request,
        size: usize,
        arrived: Instant,
        stale: bool,
    ) -> bool {
        let m = crate::metrics::server_metrics();
        let in_process = self.out.started.len();
        let Some(link) = self.out.conns.get_mut(&conn) else {
            self.out.outstanding.done(1);
            m.add("stale_requests", 1);
            return false;
        };
        if stale {
            m.add("stale_requests", 1);
        }
        m.summary("request_throttle_queue_time_ms")
            .observe(arrived.elapsed().as_millis() as u64);
        m.own.in_process.observe(in_process as f64);
        link.info.recved += 1;
        link.info.last_op = op_name(request.opcode());
        link.info.last_cxid = xid;
        self.out.stats.received += 1;
        self.out.stats.bytes_received += size as u64;
        if self
            .out
            .started
            .insert((conn, xid), (arrived, request.is_write()))
            .is_some()
        {
            // A reused xid: one answer will clear one entry.
            self.out.outstanding.done(1);
        }
        if let Some(a) = &mut self.out.audit {
            a.on_request(conn, xid, &request);
        }
        self.feed(Event::Client { conn, xid, request });
        true
    }

    /// Hand what a connection handed over to the core.
    fn submit_held(&mut self, conn: ensemble_core::ConnId, held: Held, arrived: Instant) {
        self.submit_waiting(
            Waiting {
                conn,
                since: arrived,
                held,
            },
            false,
        );
    }

    fn submit_waiting(&mut self, w: Waiting, stale: bool) {
        let conn = w.conn;
        match w.held {
            Held::Request { xid, request, size } => {
                self.submit(conn, xid, request, size, w.since, stale);
            }
            Held::Refused {
                xid,
                opcode,
                reply,
                close,
                size,
            } => {
                let m = crate::metrics::server_metrics();
                let Some(link) = self.out.conns.get_mut(&conn) else {
                    self.out.outstanding.done(1);
                    m.add("stale_requests", 1);
                    return;
                };
                if stale {
                    m.add("stale_requests", 1);
                }
                link.info.recved += 1;
                link.info.last_op = op_name(opcode);
                link.info.last_cxid = xid;
                self.out.stats.received += 1;
                self.out.stats.bytes_received += size as u64;
                if self
                    .out
                    .started
                    .insert((conn, xid), (w.since, false))
                    .is_some()
                {
                    self.out.outstanding.done(1);
                }
                self.feed(Event::ClientRefused {
                    conn,
                    xid,
                    opcode,
                    reply,
                    close,
                });
            }
            Held::Authenticated { id } => {
                if self.out.conns.contains_key(&conn) {
                    self.feed(Event::ClientAuthenticated { conn, id });
                }
            }
        }
    }

    /// The request throttler: hand the core what waits, while the requests in process are
    /// under the maximum; drop what went stale.
    fn pump(&mut self) {
        if !self.throttler.enabled() {
            return;
        }
        let m = crate::metrics::server_metrics();
        while self.fatal.is_none() {
            let now = Instant::now();
            let conns = &self.out.conns;
            let view = |c| match conns.get(&c) {
                None => ConnView::Closed,
                Some(l) => ConnView::Open {
                    timeout_ms: l.info.timeout.max(0) as u64,
                },
            };
            let waits = self.throttler.wait_count;
            let next = self.throttler.next(self.out.started.len(), now, view);
            if self.throttler.wait_count > waits {
                m.add("request_throttle_wait_count", 1);
            }
            match next {
                Next::Empty | Next::Stall => return,
                Next::Submit { waiting, stale } => self.submit_waiting(waiting, stale),
                Next::Drop(w) => {
                    m.add("stale_requests_dropped", 1);
                    self.out.outstanding.done(1);
                    // Dropping a request breaks its connection's order: ZooKeeper marks the
                    // connection invalid, which closes it.
                    if let Some(link) = self.out.conns.remove(&w.conn) {
                        tracing::info!(
                            "closing client {} (connection {}): a stale request was dropped (request_throttle_drop_stale)",
                            link.info.addr.map(super::show).unwrap_or_default(),
                            w.conn
                        );
                        let _ = link.tx.try_send(Outgoing::Close(link.kill));
                        self.out.forget_conn(w.conn);
                        self.feed(Event::ClientDisconnected { conn: w.conn });
                    }
                }
            }
        }
    }

    /// The resets a command or word asks for, before it answers.
    fn reset(&mut self, what: &str) {
        match what {
            "crst" | "connection_stat_reset" => {
                for l in self.out.conns.values_mut() {
                    l.info.reset();
                }
            }
            "srst" | "stat_reset" => self.out.stats.reset(),
            "orst" | "observer_connection_stat_reset" => {
                self.server.reset_observer_connection_stats()
            }
            _ => {}
        }
    }

    /// What the words, the commands and the metrics show; `asking` is a four-letter word's own
    /// connection, which ZooKeeper lists too.
    fn view(&mut self, asking: Option<SocketAddr>) -> fourlw::Ctx<'_> {
        self.out.stats.connections_rejected = self.shared.rejected.load(Ordering::Relaxed);
        let mut conns: Vec<ConnInfo> = self
            .out
            .conns
            .values()
            .map(|l| {
                let mut i = l.info.clone();
                i.queued = l.tx.max_capacity().saturating_sub(l.tx.capacity()) as u64;
                i
            })
            .collect();
        if let Some(addr) = asking {
            conns.push(ConnInfo {
                addr: Some(addr),
                recved: 1,
                last_op: "NA",
                ..ConnInfo::default()
            });
        }
        let peer_links = self
            .out
            .peers
            .iter()
            .map(|(sid, p)| {
                let (queued_batches, queued_bytes) = p.backlog.get();
                let link = crate::metrics::stats::PeerLink {
                    addr: p.inbound[idx(Channel::Quorum)].as_ref().map(|i| i.addr),
                    queued_batches,
                    queued_bytes,
                };
                (*sid, link)
            })
            .collect();
        fourlw::Ctx {
            server: &self.server,
            peer_links,
            cfg: &self.cfg,
            stats: &self.out.stats,
            conns,
            uptime_ms: self.up_since.elapsed().as_millis() as u64,
            state_ms: self.out.state_since.elapsed().as_millis() as u64,
        }
    }

    fn four_letter(&mut self, word: &'static str, addr: SocketAddr) -> String {
        self.reset(word);
        fourlw::render(word, &self.view(Some(addr)))
    }

    fn guarded(
        &mut self,
        command: &str,
        ids: &[ensemble_proto::proto::Id],
    ) -> crate::admin::backup::Taken {
        use crate::admin::backup;
        if !self.server.is_serving() {
            return Err((200, crate::admin::commands::NOT_SERVING.into()));
        }
        if !backup::authorized(&self.server, ids) {
            return Err((403, "Not authorized".into()));
        }
        if command != backup::SNAPSHOT {
            return Ok((0, Vec::new()));
        }
        // The whole tree at its last applied zxid, serialised here: the only thread that sees it.
        let tree = self.server.tree();
        let zxid = tree.last_zxid().0;
        let data = tree.to_snapshot();
        tracing::info!("snapshot command: {} bytes at 0x{zxid:x}", data.len());
        Ok((zxid, backup::file_bytes(zxid, &data)))
    }

    fn admin(
        &mut self,
        command: &'static str,
        params: &std::collections::BTreeMap<String, String>,
    ) -> crate::admin::json::Json {
        if self.server.is_serving() {
            self.reset(command);
        }
        crate::admin::commands::run(command, params, &self.view(None))
    }
}

#[cfg(test)]
#[path = "core_loop_tests.rs"]
mod tests;
