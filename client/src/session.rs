//! The session task: owns the socket, the xid counter, the in-flight queue and the watch
//! registry. `Client` handles talk to it over a channel, so requests pipeline freely and the
//! replies, which ZooKeeper sends in request order, are matched by xid in that order.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use ensemble_proto::jute;
use ensemble_proto::proto::{
    ConnectRequest, ConnectResponse, EventType, KeeperError, KeeperState, OpCode, Reply, Request,
    Response, WatchedEvent, WatcherType,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};

use super::hosts::Shuffle;
use super::paths::from_server;
use super::tls::Connector;
use super::watches::{WatchReg, Watches, registration};
use super::{ClientError, SessionState, Shared};

pub(crate) type ReplyTx = oneshot::Sender<Result<Reply, ClientError>>;
pub(crate) type DoneTx = oneshot::Sender<Result<(), ClientError>>;

pub(crate) enum Command {
    Request {
        req: Request,
        tx: ReplyTx,
    },
    AddAuth {
        scheme: String,
        auth: Vec<u8>,
        tx: DoneTx,
    },
    /// `removewatches -l`: forget watches without asking the server.
    RemoveLocal {
        path: String,
        kind: WatcherType,
        tx: DoneTx,
    },
    Close {
        tx: DoneTx,
    },
}

/// What the task is configured with at start.
pub(crate) struct Config {
    pub hosts: Vec<String>,
    pub chroot: Option<String>,
    pub timeout: Duration,
    pub read_only: bool,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub auths: Vec<(String, Vec<u8>)>,
    pub tls: Option<Connector>,
}

type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// A connection to a server: plain TCP or TLS over it.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            // the socket's own halves: no lock between reader and writer
            Stream::Plain(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (Box::new(r), Box::new(w))
            }
        }
    }
}

enum Waiter {
    Request(ReplyTx),
    Close(Option<DoneTx>),
}

struct Pending {
    xid: i32,
    opcode: OpCode,
    /// registered on success; the second on NoNode (exists on a missing node)
    watch: Option<(WatchReg, Option<WatchReg>)>,
    /// removeWatches: what to forget locally once the server agrees
    removes: Option<(String, WatcherType)>,
    waiter: Waiter,
}

/// Why a connection ended.
enum Ended {
    /// lost: reconnect and re-attach
    Lost(String),
    /// closed, expired or refused for good: stop connecting
    Terminal,
}

pub(crate) struct Session {
    cfg: Config,
    shared: Arc<Shared>,
    cmd_rx: mpsc::UnboundedReceiver<Command>,
    events_tx: mpsc::UnboundedSender<WatchedEvent>,
    order: Vec<String>,
    next_host: usize,
    negotiated: Duration,
    last_zxid: i64,
    xid: i32,
    watches: Watches,
    /// commands that arrived while no connection was up
    queued: VecDeque<Command>,
    /// addauth callers waiting for the next connection to answer their packet
    auth_waiting: Vec<(usize, DoneTx)>,
    /// set once closed, expired or auth failed: every later command gets this
    terminal: Option<ClientError>,
    /// the handles are gone: close the session and stop
    orphaned: bool,
}

/// Default and minimum per-host TCP connect time.
const MIN_CONNECT_TIMEOUT: Duration = Duration::from_millis(100);
/// Pause after every host failed once (`StaticHostProvider`'s spin delay).
const PASS_BACKOFF: Duration = Duration::from_millis(1000);
/// How many queued commands to write before one flush.
const WRITE_BATCH: usize = 256;

impl Session {
    pub(crate) fn new(
        cfg: Config,
        shared: Arc<Shared>,
        cmd_rx: mpsc::UnboundedReceiver<Command>,
        events_tx: mpsc::UnboundedSender<WatchedEvent>,
    ) -> Session {
        let mut order = cfg.hosts.clone();
        Shuffle::from_entropy().shuffle(&mut order);
        let negotiated = cfg.timeout;
        Session {
            cfg,
            shared,
            cmd_rx,
            events_tx,
            order,
            next_host: 0,
            negotiated,
            last_zxid: 0,
            xid: 0,
            watches: Watches::default(),
            queued: VecDeque::new(),
            auth_waiting: Vec::new(),
            terminal: None,
            orphaned: false,
        }
    }

    fn set_state(&self, s: SessionState) {
        self.shared.state.send_replace(s);
    }

    fn event(&self, kind: EventType, state: KeeperState, path: &str) {
        let path = from_server(self.cfg.chroot.as_deref(), path);
        // nobody listening is fine: events are a service, not a duty
        let _ = self.events_tx.send(WatchedEvent { kind, state, path });
    }

    fn session_event(&self, state: KeeperState) {
        let _ = self.events_tx.send(WatchedEvent {
            kind: EventType::None,
            state,
            path: String::new(),
        });
    }

    fn next_xid(&mut self) -> i32 {
        // positive xids only: negative ones are ZooKeeper's special packets
        self.xid = if self.xid >= i32::MAX - 1 {
            1
        } else {
            self.xid + 1
        };
        self.xid
    }

    pub(crate) async fn run(mut self) {
        loop {
            if let Some(err) = self.terminal.clone() {
                self.fail_queued(&err);
                // answer stragglers until every handle is gone
                while let Some(cmd) = self.cmd_rx.recv().await {
                    fail_command(cmd, &err);
                }
                return;
            }
            if self.orphaned {
                return;
            }
            if let Some((stream, resp, server)) = self.connect().await
                && let Ended::Lost(why) = self.serve(stream, resp, server).await
            {
                tracing::debug!(%why, "zookeeper connection lost");
                if self.terminal.is_none() && !self.orphaned {
                    self.set_state(SessionState::Connecting);
                    self.session_event(KeeperState::Disconnected);
                }
            }
        }
    }

    /// Fails everything queued for the next connection.
    fn fail_queued(&mut self, err: &ClientError) {
        for cmd in self.queued.drain(..) {
            fail_command(cmd, err);
        }
        for (_, tx) in self.auth_waiting.drain(..) {
            let _ = tx.send(Err(err.clone()));
        }
    }

    /// Takes a command while no connection is up. Returns false when the task should stop
    /// trying to connect (closed, or every handle dropped).
    fn command_while_disconnected(&mut self, cmd: Option<Command>) -> bool {
        match cmd {
            None => {
                self.orphaned = true;
                false
            }
            Some(Command::Close { tx }) => {
                // no connection to send closeSession on; the server expires the session
                self.terminal = Some(ClientError::Closed);
                self.set_state(SessionState::Closed);
                self.session_event(KeeperState::Closed);
                let _ = tx.send(Ok(()));
                false
            }
            Some(Command::AddAuth { scheme, auth, tx }) => {
                self.cfg.auths.push((scheme, auth));
                self.auth_waiting.push((self.cfg.auths.len() - 1, tx));
                true
            }
            Some(Command::RemoveLocal { path, kind, tx }) => {
                self.remove_local(&path, kind);
                let _ = tx.send(Ok(()));
                true
            }
            Some(cmd @ Command::Request { .. }) => {
                self.queued.push_back(cmd);
                true
            }
        }
    }

    fn remove_local(&mut self, server_path: &str, kind: WatcherType) {
        for ev in self.watches.remove(server_path, kind) {
            self.event(ev, KeeperState::SyncConnected, server_path);
        }
    }

    /// Tries hosts in rotation until one completes the handshake. `None`: stop (closed,
    /// orphaned or expired) or try again later.
    async fn connect(&mut self) -> Option<(Stream, ConnectResponse, String)> {
        let n = self.order.len().max(1);
        for attempt in 0..n {
            let host = self.order[self.next_host % n].clone();
            self.next_host = (self.next_host + 1) % n;
            let req = ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: self.last_zxid,
                timeout_ms: i32::try_from(self.cfg.timeout.as_millis()).unwrap_or(i32::MAX),
                session_id: self.cfg.session_id,
                passwd: self.cfg.passwd.clone(),
                read_only: Some(self.cfg.read_only),
            };
            let connect_timeout = (self.cfg.timeout / n as u32).max(MIN_CONNECT_TIMEOUT);
            let read_timeout = self.cfg.timeout * 2 / 3;
            let fut = handshake(
                host.clone(),
                self.cfg.tls.clone(),
                req,
                connect_timeout,
                read_timeout,
            );
            tokio::pin!(fut);
            let result = loop {
                tokio::select! {
                    r = &mut fut => break r,
                    cmd = self.cmd_rx.recv() => {
                        if !self.command_while_disconnected(cmd) {
                            return None;
                        }
                    }
                }
            };
            match result {
                Ok((stream, resp)) => {
                    if resp.timeout_ms <= 0 {
                        // the server no longer knows this session
                        self.terminal = Some(ClientError::SessionExpired);
                        self.set_state(SessionState::Expired);
                        self.session_event(KeeperState::Expired);
                        return None;
                    }
                    return Some((stream, resp, host));
                }
                Err(why) => {
                    tracing::debug!(%host, %why, "zookeeper connect attempt failed");
                    // as ClientCnxn's cleanup: what waited for this connection fails now
                    let queued: Vec<Command> = self.queued.drain(..).collect();
                    for cmd in queued {
                        fail_command(cmd, &ClientError::ConnectionLoss);
                    }
                    if attempt + 1 == n {
                        let until = Instant::now() + PASS_BACKOFF;
                        loop {
                            tokio::select! {
                                _ = sleep_until(until) => break,
                                cmd = self.cmd_rx.recv() => {
                                    if !self.command_while_disconnected(cmd) {
                                        return None;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        None
    }

    /// Runs one established connection until it ends.
    async fn serve(&mut self, stream: Stream, resp: ConnectResponse, server: String) -> Ended {
        self.cfg.session_id = resp.session_id;
        self.cfg.passwd = resp.passwd.clone();
        self.negotiated = Duration::from_millis(u64::try_from(resp.timeout_ms).unwrap_or(1));
        let read_only = resp.read_only == Some(true);
        {
            let mut info = self.shared.lock_info();
            info.session_id = resp.session_id;
            info.passwd = resp.passwd.clone();
            info.timeout = self.negotiated;
            info.server = Some(server);
            info.read_only = read_only;
        }
        let (rd, wr) = stream.split();
        let (frames_tx, mut frames_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_frames(rd, frames_tx));
        let mut conn = Conn {
            wr: BufWriter::new(wr),
            pending: VecDeque::new(),
            auth_pending: VecDeque::new(),
            closing: false,
            last_send: Instant::now(),
            last_recv: Instant::now(),
        };
        let ended = self.serve_conn(&mut conn, &mut frames_rx, read_only).await;
        reader.abort();
        let err = match &ended {
            Ended::Lost(_) => ClientError::ConnectionLoss,
            Ended::Terminal => self.terminal.clone().unwrap_or(ClientError::Closed),
        };
        for p in conn.pending.drain(..) {
            match p.waiter {
                Waiter::Request(tx) => {
                    let _ = tx.send(Err(err.clone()));
                }
                Waiter::Close(tx) => {
                    // the connection went while closing: closed all the same
                    tracing::debug!("connection ended before the closeSession answer");
                    self.terminal = Some(ClientError::Closed);
                    self.set_state(SessionState::Closed);
                    self.session_event(KeeperState::Closed);
                    if let Some(tx) = tx {
                        let _ = tx.send(Ok(()));
                    }
                }
            }
        }
        for tx in conn.auth_pending.drain(..).flatten() {
            let _ = tx.send(Err(err.clone()));
        }
        let _ = conn.wr.shutdown().await;
        ended
    }

    async fn serve_conn(
        &mut self,
        conn: &mut Conn,
        frames_rx: &mut mpsc::UnboundedReceiver<Result<Vec<u8>, String>>,
        read_only: bool,
    ) -> Ended {
        self.set_state(if read_only {
            SessionState::ConnectedReadOnly
        } else {
            SessionState::Connected
        });
        self.session_event(if read_only {
            KeeperState::ConnectedReadOnly
        } else {
            KeeperState::SyncConnected
        });

        // re-send credentials, then re-arm watches, then what queued up meanwhile
        let mut waiting: Vec<(usize, DoneTx)> = std::mem::take(&mut self.auth_waiting);
        for (i, (scheme, auth)) in self.cfg.auths.clone().into_iter().enumerate() {
            let tx = waiting
                .iter()
                .position(|(j, _)| *j == i)
                .map(|k| waiting.swap_remove(k).1);
            let req = Request::Auth { scheme, auth };
            if let Err(e) = conn.write(jute::AUTH_XID, &req).await {
                return Ended::Lost(e);
            }
            conn.auth_pending.push_back(tx);
        }
        for req in self.watches.set_watches_requests(self.last_zxid) {
            if let Err(e) = conn.write(jute::SET_WATCHES_XID, &req).await {
                return Ended::Lost(e);
            }
        }
        let queued: Vec<Command> = self.queued.drain(..).collect();
        for cmd in queued {
            if let Some(end) = self.send_command(conn, Some(cmd)).await {
                return end;
            }
        }
        if let Err(e) = conn.flush().await {
            return Ended::Lost(e);
        }

        let ping_every = self.negotiated / 3;
        let read_timeout = self.negotiated * 2 / 3;
        loop {
            tokio::select! {
                biased;
                frame = frames_rx.recv() => {
                    let frame = match frame {
                        Some(Ok(f)) => f,
                        Some(Err(e)) => return Ended::Lost(e),
                        None => return Ended::Lost("reader stopped".into()),
                    };
                    conn.last_recv = Instant::now();
                    if let Some(end) = self.on_frame(conn, &frame) {
                        return end;
                    }
                }
                cmd = self.cmd_rx.recv(), if !conn.closing => {
                    if let Some(end) = self.send_command(conn, cmd).await {
                        return end;
                    }
                    // pipeline: write whatever else is ready, then one flush
                    for _ in 0..WRITE_BATCH {
                        if conn.closing {
                            break;
                        }
                        match self.cmd_rx.try_recv() {
                            Ok(cmd) => {
                                if let Some(end) = self.send_command(conn, Some(cmd)).await {
                                    return end;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = conn.flush().await {
                        return Ended::Lost(e);
                    }
                }
                _ = sleep_until(conn.last_send + ping_every) => {
                    if let Err(e) = conn.write(jute::PING_XID, &Request::Ping).await {
                        return Ended::Lost(e);
                    }
                    if let Err(e) = conn.flush().await {
                        return Ended::Lost(e);
                    }
                }
                _ = sleep_until(conn.last_recv + read_timeout) => {
                    return Ended::Lost(format!("no answer for {read_timeout:?}"));
                }
            }
        }
    }

    /// Writes one command (unflushed). `Some` when the connection must end.
    async fn send_command(&mut self, conn: &mut Conn, cmd: Option<Command>) -> Option<Ended> {
        let cmd = match cmd {
            Some(c) => c,
            None => {
                // every handle dropped: close the session like a process exit would
                self.orphaned = true;
                return self.start_close(conn, None).await;
            }
        };
        match cmd {
            Command::Request { req, tx } => {
                if req.opcode() == OpCode::CloseSession {
                    let _ = tx.send(Err(ClientError::Protocol("use Client::close".into())));
                    return None;
                }
                let xid = self.next_xid();
                let removes = match &req {
                    Request::RemoveWatches { path, kind } => Some((path.clone(), *kind)),
                    _ => None,
                };
                let pending = Pending {
                    xid,
                    opcode: req.opcode(),
                    watch: registration(&req),
                    removes,
                    waiter: Waiter::Request(tx),
                };
                if let Err(e) = conn.write(xid, &req).await {
                    conn.pending.push_back(pending);
                    return Some(Ended::Lost(e));
                }
                conn.pending.push_back(pending);
                None
            }
            Command::AddAuth { scheme, auth, tx } => {
                self.cfg.auths.push((scheme.clone(), auth.clone()));
                let req = Request::Auth { scheme, auth };
                conn.auth_pending.push_back(Some(tx));
                match conn.write(jute::AUTH_XID, &req).await {
                    Ok(()) => None,
                    Err(e) => Some(Ended::Lost(e)),
                }
            }
            Command::RemoveLocal { path, kind, tx } => {
                self.remove_local(&path, kind);
                let _ = tx.send(Ok(()));
                None
            }
            Command::Close { tx } => self.start_close(conn, Some(tx)).await,
        }
    }

    async fn start_close(&mut self, conn: &mut Conn, tx: Option<DoneTx>) -> Option<Ended> {
        conn.closing = true;
        let xid = self.next_xid();
        let pending = Pending {
            xid,
            opcode: OpCode::CloseSession,
            watch: None,
            removes: None,
            waiter: Waiter::Close(tx),
        };
        conn.pending.push_back(pending);
        if let Err(e) = conn.write(xid, &Request::CloseSession).await {
            return Some(Ended::Lost(e));
        }
        if let Err(e) = conn.flush().await {
            return Some(Ended::Lost(e));
        }
        None
    }

    /// Handles one server frame. `Some` when the connection must end.
    fn on_frame(&mut self, conn: &mut Conn, frame: &[u8]) -> Option<Ended> {
        let (xid, zxid, err, body) = match jute::decode_reply_header(frame) {
            Ok(h) => h,
            Err(e) => return Some(Ended::Lost(format!("bad reply header: {e}"))),
        };
        match xid {
            jute::NOTIFICATION_XID => {
                match jute::decode_watch_event(body) {
                    Ok(ev) => {
                        self.watches.fired(ev.kind, &ev.path);
                        self.event(ev.kind, ev.state, &ev.path);
                    }
                    Err(e) => return Some(Ended::Lost(format!("bad notification: {e}"))),
                }
                return None;
            }
            jute::PING_XID => return None,
            jute::SET_WATCHES_XID => {
                if err != 0 {
                    tracing::warn!(err, "setWatches refused");
                }
                return None;
            }
            jute::AUTH_XID => {
                let waiter = conn.auth_pending.pop_front().flatten();
                if err == KeeperError::AuthFailed.code() {
                    if let Some(tx) = waiter {
                        let _ = tx.send(Err(ClientError::AuthFailed));
                    }
                    self.terminal = Some(ClientError::AuthFailed);
                    self.set_state(SessionState::AuthFailed);
                    self.session_event(KeeperState::AuthFailed);
                    return Some(Ended::Terminal);
                }
                if let Some(tx) = waiter {
                    let r = match err {
                        0 => Ok(()),
                        e => Err(keeper_or_protocol(e)),
                    };
                    let _ = tx.send(r);
                }
                return None;
            }
            _ => {}
        }
        let Some(p) = conn.pending.pop_front() else {
            return Some(Ended::Lost(format!("reply xid {xid} with nothing pending")));
        };
        if p.xid != xid {
            let end = Ended::Lost(format!("xid out of order: got {xid}, expected {}", p.xid));
            conn.pending.push_front(p);
            return Some(end);
        }
        if zxid > 0 {
            self.last_zxid = zxid;
            self.shared.lock_info().last_zxid_seen = zxid;
        }
        let reply = jute::decode_reply_body(p.opcode, err, body)
            .map_err(|e| ClientError::Protocol(format!("bad {:?} reply: {e}", p.opcode)));
        match &reply {
            Ok(Ok(_)) => {
                if let Some((reg, _)) = p.watch {
                    self.watches.register(reg);
                }
                if let Some((path, kind)) = &p.removes {
                    self.remove_local(path, *kind);
                }
            }
            Ok(Err(KeeperError::NoNode)) => {
                if let Some((_, Some(reg))) = p.watch {
                    self.watches.register(reg);
                }
            }
            _ => {}
        }
        match p.waiter {
            Waiter::Request(tx) => {
                let _ = tx.send(reply);
                None
            }
            Waiter::Close(tx) => {
                self.terminal = Some(ClientError::Closed);
                self.set_state(SessionState::Closed);
                self.session_event(KeeperState::Closed);
                if let Some(tx) = tx {
                    let _ = tx.send(Ok(()));
                }
                Some(Ended::Terminal)
            }
        }
    }
}

fn keeper_or_protocol(code: i32) -> ClientError {
    match KeeperError::from_code(code) {
        Some(e) => ClientError::Keeper(e),
        None => ClientError::Protocol(format!("unknown error code {code}")),
    }
}

fn fail_command(cmd: Command, err: &ClientError) {
    match cmd {
        Command::Request { tx, .. } => {
            let _ = tx.send(Err(err.clone()));
        }
        Command::AddAuth { tx, .. } | Command::RemoveLocal { tx, .. } => {
            let _ = tx.send(Err(err.clone()));
        }
        Command::Close { tx } => {
            // closing an already closed/expired session is not an error
            let _ = tx.send(Ok(()));
        }
    }
}

struct Conn {
    wr: BufWriter<WriteHalf>,
    pending: VecDeque<Pending>,
    /// auth packets awaiting their xid -4 answer, in order (None: a re-send nobody awaits)
    auth_pending: VecDeque<Option<DoneTx>>,
    closing: bool,
    last_send: Instant,
    last_recv: Instant,
}

impl Conn {
    async fn write(&mut self, xid: i32, req: &Request) -> Result<(), String> {
        let mut buf = Vec::new();
        jute::encode_request(xid, req, &mut buf);
        if buf.len() - 4 > jute::MAX_BUFFER {
            // the server would drop the connection on it; Java fails it the same way
            return Err(format!(
                "request of {} bytes exceeds jute.maxbuffer",
                buf.len() - 4
            ));
        }
        self.wr.write_all(&buf).await.map_err(|e| e.to_string())?;
        self.last_send = Instant::now();
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), String> {
        self.wr.flush().await.map_err(|e| e.to_string())
    }
}

/// Reads length-prefixed frames until the socket fails; the last item is the error.
async fn read_frames(mut rd: ReadHalf, tx: mpsc::UnboundedSender<Result<Vec<u8>, String>>) {
    loop {
        let r = read_frame(&mut rd).await;
        let stop = r.is_err();
        if tx.send(r).is_err() || stop {
            return;
        }
    }
}

async fn read_frame(rd: &mut (impl AsyncReadExt + Unpin)) -> Result<Vec<u8>, String> {
    let mut prefix = [0u8; 4];
    rd.read_exact(&mut prefix)
        .await
        .map_err(|e| e.to_string())?;
    let len = jute::frame_len(prefix).map_err(|e| e.to_string())?;
    let mut frame = vec![0u8; len];
    rd.read_exact(&mut frame).await.map_err(|e| e.to_string())?;
    Ok(frame)
}

/// TCP connect (and the TLS handshake) and the ConnectRequest/ConnectResponse exchange with
/// one host.
async fn handshake(
    host: String,
    tls: Option<Connector>,
    req: ConnectRequest,
    connect_timeout: Duration,
    read_timeout: Duration,
) -> Result<(Stream, ConnectResponse), String> {
    let tcp = timeout(connect_timeout, TcpStream::connect(host.as_str()))
        .await
        .map_err(|_| format!("connect timed out after {connect_timeout:?}"))?
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => {
            let mut s = tcp;
            let resp = exchange(&mut s, &req, read_timeout).await?;
            Ok((Stream::Plain(s), resp))
        }
        Some(c) => {
            let mut s = timeout(connect_timeout, c.connect(&host, tcp))
                .await
                .map_err(|_| format!("TLS handshake timed out after {connect_timeout:?}"))??;
            let resp = exchange(&mut s, &req, read_timeout).await?;
            Ok((Stream::Tls(Box::new(s)), resp))
        }
    }
}

async fn exchange(
    s: &mut (impl AsyncRead + AsyncWrite + Unpin),
    req: &ConnectRequest,
    read_timeout: Duration,
) -> Result<ConnectResponse, String> {
    let mut buf = Vec::new();
    jute::encode_connect(req, &mut buf);
    s.write_all(&buf).await.map_err(|e| e.to_string())?;
    s.flush().await.map_err(|e| e.to_string())?;
    let frame = timeout(read_timeout, read_frame(s))
        .await
        .map_err(|_| "no handshake answer".to_string())??;
    jute::decode_connect_response(&frame).map_err(|e| e.to_string())
}

/// Turns a reply into the value a typed method wants.
pub(crate) fn expect<T>(
    opcode: OpCode,
    reply: Reply,
    f: impl FnOnce(Response) -> Option<T>,
) -> Result<T, ClientError> {
    match reply {
        Ok(resp) => f(resp).ok_or(ClientError::UnexpectedResponse(opcode)),
        Err(e) => Err(ClientError::Keeper(e)),
    }
}
