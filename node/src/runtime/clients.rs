//! The client port: ZooKeeper's wire protocol (4-byte big-endian length + jute record) and
//! four-letter words, one task per connection.
//!
//! Reading: the first frame must decode as a ConnectRequest, the rest as requests; a length
//! over jute.maxbuffer or a record that does not decode closes that connection only.
//! Writing: the core loop encodes and queues frames (bounded, by count and bytes); a client
//! that does not read its replies is closed rather than let it hold memory or the core.

use super::{Input, Outgoing};
use crate::config::Whitelist;
use crate::fourlw;
pub use crate::sasl::ClientAuth;
use crate::sasl::{ConnAuth, wire as sasl_wire};
use crate::tls::{self, PortMode};
use ensemble_proto::jute;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// Frames queued to one connection before it counts as not reading.
pub const OUT_QUEUE: usize = 16 * 1024;
/// How long a new connection may take to send its first four bytes.
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(30);

pub struct ClientShared {
    pub max_per_ip: u32,
    /// `maxCnxns`: connections in all (0 = unlimited), counted in `per_ip`'s lock.
    pub max_cnxns: u32,
    pub total: AtomicU32,
    /// The connection throttle a ConnectRequest takes its tokens from.
    pub throttle: Mutex<crate::limits::ConnectionThrottle>,
    /// Its clock's origin.
    pub started: std::time::Instant,
    pub max_buffer: usize,
    pub whitelist: Whitelist,
    pub next_conn: AtomicU64,
    pub per_ip: Mutex<HashMap<IpAddr, u32>>,
    pub input: mpsc::Sender<Input>,
    pub rejected: AtomicU64,
    /// Client SASL and authentication enforcement.
    pub auth: ClientAuth,
    /// `globalOutstandingLimit`'s count, shared with the core loop that answers.
    pub outstanding: Arc<crate::limits::Outstanding>,
}

impl ClientShared {
    /// A new connection from `ip` may stay: `Err` says which limit it meets, as ZooKeeper
    /// logs it.
    fn admit(&self, ip: IpAddr) -> Result<(), String> {
        let Ok(mut m) = self.per_ip.lock() else {
            return Err("the connection table is poisoned".into());
        };
        if self.max_cnxns != 0 && self.total.load(Ordering::Relaxed) >= self.max_cnxns {
            return Err(format!(
                "Too many connections max allowed is {}",
                self.max_cnxns
            ));
        }
        let n = m.entry(ip).or_insert(0);
        if self.max_per_ip != 0 && *n >= self.max_per_ip {
            return Err(format!(
                "Too many connections from /{ip} - max is {}",
                self.max_per_ip
            ));
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The connection throttle's verdict on a ConnectRequest of `session_id`.
    fn throttle_admits(&self, session_id: i64) -> bool {
        let now = self.started.elapsed().as_millis() as u64;
        match self.throttle.lock() {
            Ok(mut t) => {
                let need = t.needed(session_id);
                t.check(need, now)
            }
            Err(_) => false,
        }
    }
    fn release(&self, ip: IpAddr) {
        if let Ok(mut m) = self.per_ip.lock()
            && let Some(n) = m.get_mut(&ip)
        {
            *n = n.saturating_sub(1);
            let _ = self
                .total
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(1));
            if *n == 0 {
                m.remove(&ip);
            }
        }
    }
}

struct IpSlot(Arc<ClientShared>, IpAddr);
impl Drop for IpSlot {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

/// What one client port takes: plaintext, TLS (secureClientPort), or both
/// (client.portUnification).
pub struct PortTls {
    pub mode: PortMode,
    pub handshake_timeout: Duration,
}

pub async fn accept_loop(listener: TcpListener, shared: Arc<ClientShared>, port: Arc<PortTls>) {
    loop {
        match listener.accept().await {
            Ok((s, addr)) => {
                let ip = addr.ip().to_canonical();
                if let Err(why) = shared.admit(ip) {
                    shared.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("Error accepting new connection: {why}");
                    continue;
                }
                let slot = IpSlot(shared.clone(), ip);
                tokio::spawn(serve(s, addr, shared.clone(), slot, port.clone()));
            }
            Err(e) => {
                // Out of file descriptors, most likely: back off rather than spin.
                tracing::warn!("client port accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One accepted connection: the TLS handshake where the port takes TLS, then the protocol.
async fn serve(
    s: TcpStream,
    addr: SocketAddr,
    shared: Arc<ClientShared>,
    slot: IpSlot,
    port: Arc<PortTls>,
) {
    let _ = s.set_nodelay(true);
    let tls = match &port.mode {
        PortMode::Plain => false,
        PortMode::Tls(_) => true,
        PortMode::Unified(_) => {
            // TLS starts with a handshake record; anything else is plaintext (a 4lw too).
            let mut first = [0u8; 1];
            match tokio::time::timeout(FIRST_BYTES_TIMEOUT, s.peek(&mut first)).await {
                Ok(Ok(1)) => first[0] == tls::TLS_HANDSHAKE_RECORD,
                _ => return,
            }
        }
    };
    let Some(acceptor) = port.mode.acceptor().filter(|_| tls) else {
        connection(s, addr, shared, slot, None).await;
        return;
    };
    match tokio::time::timeout(port.handshake_timeout, acceptor.accept(s)).await {
        Ok(Ok(stream)) => {
            let identity = tls::client_identity(stream.get_ref().1);
            tracing::debug!(
                "client {}: TLS {:?}, certificate {}",
                super::show(addr),
                stream.get_ref().1.protocol_version(),
                identity.as_deref().unwrap_or("none")
            );
            connection(stream, addr, shared, slot, identity).await;
        }
        Ok(Err(e)) => tracing::warn!(
            "closing client {}: TLS handshake failed: {e}{}",
            super::show(addr),
            if e.to_string().contains("corrupt message") {
                " (a plaintext client on a TLS port?)"
            } else {
                ""
            }
        ),
        Err(_) => tracing::warn!(
            "closing client {}: no TLS handshake within {} ms (a plaintext client on a TLS \
             port?)",
            super::show(addr),
            port.handshake_timeout.as_millis()
        ),
    }
}

/// The size (with its 4-byte length) of the complete frame at the front of `buf`, if there is
/// one.
fn frame_at(buf: &[u8], max: usize) -> Result<Option<usize>, String> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 0 || len as usize > max {
        return Err(format!(
            "frame length {len} is outside 0..={max} (jute.maxbuffer)"
        ));
    }
    let len = len as usize;
    if buf.len() < 4 + len {
        return Ok(None);
    }
    Ok(Some(4 + len))
}

async fn four_letter<S: AsyncWrite + Unpin>(
    mut s: S,
    addr: SocketAddr,
    word: &'static str,
    shared: &ClientShared,
) {
    let text = if !shared.whitelist.allows(word) {
        fourlw::not_whitelisted(word)
    } else {
        let (tx, rx) = oneshot::channel();
        if shared
            .input
            .send(Input::FourLetter {
                word,
                addr,
                reply: tx,
            })
            .await
            .is_err()
        {
            return;
        }
        match rx.await {
            Ok(t) => t,
            Err(_) => return,
        }
    };
    let _ = s.write_all(text.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// The protocol on one connection, plaintext or TLS. `identity`: the subject of the client's
/// certificate, an x509 identity.
/// Hand the decoded `requests` (taken, in order) to the core, counted for
/// `globalOutstandingLimit` on every path. `Err`: the core is gone.
async fn hand_over(
    input: &mpsc::Sender<Input>,
    shared: &ClientShared,
    conn: ensemble_core::ConnId,
    requests: &mut Vec<(i32, ensemble_proto::proto::Request, usize)>,
) -> Result<(), ()> {
    if requests.is_empty() {
        return Ok(());
    }
    let requests = std::mem::take(requests);
    shared.outstanding.handed(requests.len());
    input
        .send(Input::ClientRequests { conn, requests })
        .await
        .map_err(|_| ())
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    addr: SocketAddr,
    shared: Arc<ClientShared>,
    _slot: IpSlot,
    mut identity: Option<String>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let first = tokio::time::timeout(FIRST_BYTES_TIMEOUT, async {
        while buf.len() < 4 {
            match s.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
        }
        true
    })
    .await;
    if first != Ok(true) {
        return;
    }
    let head = [buf[0], buf[1], buf[2], buf[3]];
    if let Some(word) = fourlw::word_of(&head) {
        four_letter(s, addr, word, &shared).await;
        return;
    }

    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
    let (tx, mut rx) = mpsc::channel::<Outgoing>(OUT_QUEUE);
    let queued = Arc::new(AtomicUsize::new(0));
    let mut tx = Some(tx);
    let mut kill_rx: Option<oneshot::Receiver<()>> = None;
    let mut opened = false;
    // Between the ConnectRequest and the ConnectResponse nothing more is read, as ZooKeeper
    // does (disableRecv until the session is set up): clients pipeline SetWatches and auth
    // right behind the handshake and expect them handled after it.
    let mut handshaking = false;
    let input = shared.input.clone();
    let mut out: Vec<u8> = Vec::new();
    let mut auth = ConnAuth::default();
    let mut drained = shared.outstanding.subscribe();

    'conn: loop {
        // Every complete frame already buffered goes to the core, in order: the requests in
        // one hand-off. Frames are decoded where they lie and the buffer compacted once.
        let mut at = 0;
        let mut requests = Vec::new();
        while !handshaking {
            let n = match frame_at(&buf[at..], shared.max_buffer) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => {
                    tracing::info!("closing client {}: {e}", super::show(addr));
                    break 'conn;
                }
            };
            let frame = &buf[at + 4..at + n];
            at += n;
            if !opened {
                let msg = match jute::decode_connect(frame) {
                    Ok(request) if !shared.throttle_admits(request.session_id) => {
                        // ZooKeeper's ClientCnxnLimitException: the connection is closed
                        shared.rejected.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            "Closing connection to {}: connection throttled (connection_throttle_tokens)",
                            super::show(addr)
                        );
                        break 'conn;
                    }
                    Ok(request) => {
                        let (k_tx, k_rx) = oneshot::channel();
                        kill_rx = Some(k_rx);
                        let Some(tx) = tx.take() else { break 'conn };
                        let open = Input::ClientOpened {
                            conn,
                            addr,
                            tx,
                            kill: k_tx,
                            queued: queued.clone(),
                        };
                        if input.send(open).await.is_err() {
                            return;
                        }
                        opened = true;
                        handshaking = true;
                        Input::ClientConnect {
                            conn,
                            request,
                            size: n,
                        }
                    }
                    Err(e) => {
                        tracing::info!(
                            "closing client {}: bad ConnectRequest: {e}",
                            super::show(addr)
                        );
                        break 'conn;
                    }
                };
                if input.send(msg).await.is_err() {
                    return;
                }
                // X509AuthenticationProvider: the certificate's subject is an x509 identity
                // of the connection, ahead of any request (none is read before the
                // ConnectResponse is written).
                if let Some(subject) = identity.take() {
                    auth.add_scheme("x509");
                    let id = ensemble_proto::proto::Id {
                        scheme: "x509".into(),
                        id: subject,
                    };
                    if input
                        .send(Input::ClientAuthenticated { conn, id })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            } else if sasl_wire::is_sasl(frame) {
                // processSasl: answered at once, out of band; an identity it establishes
                // counts for the requests after it, so those before go to the core first.
                let peer = super::show(addr);
                let Some(outcome) = auth.on_sasl(&shared.auth, frame, &peer) else {
                    tracing::info!("closing client {peer} (connection {conn}): bad SASL request");
                    break 'conn;
                };
                if hand_over(&input, &shared, conn, &mut requests)
                    .await
                    .is_err()
                {
                    return;
                }
                if let Some(id) = outcome.identity
                    && input
                        .send(Input::ClientAuthenticated { conn, id })
                        .await
                        .is_err()
                {
                    return;
                }
                let wrote =
                    tokio::time::timeout(Duration::from_secs(10), s.write_all(&outcome.reply))
                        .await;
                if !matches!(wrote, Ok(Ok(()))) || outcome.close {
                    let _ = s.shutdown().await;
                    break 'conn;
                }
            } else {
                match jute::decode_request(frame) {
                    Ok((xid, request)) => {
                        if let ensemble_proto::proto::Request::Auth { scheme, .. } = &request {
                            // the core takes a digest id, or answers AUTHFAILED and closes
                            if scheme == "digest" {
                                auth.add_scheme(scheme);
                            }
                        } else if let Some(refusal) =
                            auth.enforce(&shared.auth, xid, &super::show(addr))
                        {
                            let _ = hand_over(&input, &shared, conn, &mut requests).await;
                            let _ =
                                tokio::time::timeout(Duration::from_secs(2), s.write_all(&refusal))
                                    .await;
                            let _ = s.shutdown().await;
                            break 'conn;
                        }
                        requests.push((xid, request, n))
                    }
                    Err(e) => match jute::triage_request(frame, &e) {
                        jute::BadRequest::Lenient { xid, request } => {
                            requests.push((xid, request, n))
                        }
                        jute::BadRequest::Answer {
                            xid,
                            opcode,
                            reply,
                            close,
                        } => {
                            tracing::debug!(
                                "client {} (connection {conn}): refused request: {e}",
                                super::show(addr)
                            );
                            // In order: the requests before it go first.
                            if hand_over(&input, &shared, conn, &mut requests)
                                .await
                                .is_err()
                            {
                                return;
                            }
                            shared.outstanding.handed(1);
                            let refused = Input::ClientRefused {
                                conn,
                                xid,
                                opcode,
                                reply,
                                close,
                                size: n,
                            };
                            if input.send(refused).await.is_err() {
                                return;
                            }
                        }
                        jute::BadRequest::Close => {
                            tracing::info!(
                                "closing client {} (connection {conn}): bad request: {e}",
                                super::show(addr)
                            );
                            // What came before the bad frame is still the client's to have.
                            let _ = hand_over(&input, &shared, conn, &mut requests).await;
                            break 'conn;
                        }
                    },
                }
            }
        }
        buf.drain(..at);
        if hand_over(&input, &shared, conn, &mut requests)
            .await
            .is_err()
        {
            return;
        }
        // Seen before the count is read: an answer bringing it down after this rings `drained`.
        drained.borrow_and_update();
        let throttled = shared.outstanding.over();
        if throttled {
            // The first time at info, so an operator sees the limit is being met; then debug.
            if shared.outstanding.throttled.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::info!(
                    "Throttling recv: more than globalOutstandingLimit requests outstanding ({}); connections stop reading until they drain",
                    shared.outstanding.count()
                );
            }
            tracing::debug!(
                "Throttling recv of connection {conn}: {} requests outstanding (globalOutstandingLimit)",
                shared.outstanding.count()
            );
        }
        tokio::select! {
            _ = drained.changed(), if throttled => {}
            _ = async { kill_rx.as_mut().expect("guarded").await }, if kill_rx.is_some() => {
                tracing::debug!("client {} (connection {conn}): closed by the server", super::show(addr));
                break 'conn
            }
            r = s.read_buf(&mut buf), if !handshaking && !throttled => match r {
                Ok(0) => {
                    tracing::debug!("client {} (connection {conn}): the client closed", super::show(addr));
                    break 'conn
                }
                Err(e) => {
                    tracing::debug!("client {} (connection {conn}): read: {e}", super::show(addr));
                    break 'conn
                }
                Ok(_) => {}
            },
            o = rx.recv(), if opened => {
                // A Close carries the connection's kill switch: hold it until what was queued
                // before it is written, since dropping it aborts that very write.
                let mut closing = None;
                let mut close = match o {
                    None => true,
                    Some(Outgoing::Close(k)) => { closing = Some(k); true }
                    Some(Outgoing::Bytes(b)) => { out = b; false }
                };
                // Batch whatever else is queued into one write.
                while !close && out.len() < (1 << 20) {
                    match rx.try_recv() {
                        Ok(Outgoing::Bytes(b)) => out.extend_from_slice(&b),
                        Ok(Outgoing::Close(k)) => { closing = Some(k); close = true }
                        Err(_) => break,
                    }
                }
                if !out.is_empty() {
                    let n = out.len();
                    let kill = kill_rx.as_mut();
                    // A last flush before closing may not wait on a client that never reads.
                    let limit = if close { Duration::from_secs(2) } else { Duration::MAX };
                    let wrote = match kill {
                        Some(k) => tokio::select! {
                            r = tokio::time::timeout(limit, s.write_all(&out)) => matches!(r, Ok(Ok(()))),
                            _ = k => false,
                        },
                        None => matches!(tokio::time::timeout(limit, s.write_all(&out)).await, Ok(Ok(()))),
                    };
                    queued.fetch_sub(n.min(queued.load(Ordering::Relaxed)), Ordering::Relaxed);
                    out.clear();
                    if !wrote {
                        tracing::debug!("client {} (connection {conn}): write failed", super::show(addr));
                        break 'conn;
                    }
                    // The first thing the core sends a connection is its ConnectResponse.
                    handshaking = false;
                }
                if close {
                    tracing::debug!("client {} (connection {conn}): closed by the server", super::show(addr));
                    let _ = s.shutdown().await;
                    drop(closing);
                    break 'conn;
                }
            }
        }
    }
    if opened {
        let _ = input.send(Input::ClientClosed { conn }).await;
    }
}
