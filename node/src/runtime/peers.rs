//! Connections with the other ensemble members.
//!
//! For each peer and channel we dial one outbound connection and only send on it; the peer
//! dials us for the other direction. The FIFO contract the core relies on is kept with two
//! counters the core loop owns: outbound *epochs* (a message carries the epoch it was sent in;
//! after a break the sender drops the rest of that epoch, so nothing sent before the core heard
//! of the break arrives on a later connection) and inbound *generations* (a message from an
//! older connection than the newest is discarded, and a newer connection reports the break of
//! the older one first).

use super::Input;
use super::snap_send::{SnapSend, SnapSending, Step};
use super::wire::{
    self, ACK_MAGIC, Channel, HELLO_LEN, HELLO_MAGIC, PREVIOUS_VERSION, PROTOCOL_VERSION,
};
use crate::sasl::quorum::QuorumAuth;
use crate::storage::part_budget::{SNAP_PARTS, SNAP_PARTS_CAP, snap_part_bytes};
use crate::tls::{self, PortMode, QuorumTls};
use ensemble_core::{PeerMsg, ServerId};
use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};

const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_millis(1000);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Chunks handed to one `write_vectored`.
const MAX_IOVECS: usize = 64;
/// Unsent bytes to one peer beyond which the connection counts as broken (a peer that does
/// not read is as good as gone; the core resyncs it when it comes back).
const MAX_QUEUED_BYTES: usize = 1 << 30;
/// Election notifications kept for a peer we cannot reach: only the latest matter.
const MAX_ELECTION_BACKLOG: usize = 16;

/// What waits in an outbound connection task's queue (write batches and their bytes), for
/// the `observers` command's `queued_packets` / `queued_packets_size`.
#[derive(Default)]
pub struct Backlog {
    batches: AtomicUsize,
    bytes: AtomicUsize,
}

impl Backlog {
    fn set(&self, batches: usize, bytes: usize) {
        self.batches.store(batches, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
    }

    /// (write batches, bytes) not yet written.
    pub fn get(&self) -> (usize, usize) {
        (
            self.batches.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// What the core loop sends to an outbound connection task.
#[allow(clippy::large_enum_variant)] // messages are the common case; boxing them would cost more
pub enum OutCmd {
    /// A message sent in outbound epoch `.0` (always 0 on the election channel).
    Msg(u64, PeerMsg),
    /// Whole frames the core loop encoded (quorum channel), sent in outbound epoch `.0`: one
    /// hand-off and one write for everything the core produced for this peer in a batch.
    Frames(u64, Vec<u8>),
    /// Drop the connection and everything queued; continue in this epoch.
    Reset(u64),
    /// A SNAP to stream from a snapshot file (quorum channel), sent in outbound epoch `.0`
    /// after what was queued before it and before what comes after it.
    Snapshot(u64, Box<SnapSend>),
}

/// What waits behind a SNAP being streamed.
enum Behind {
    Frame(Vec<u8>),
    Snap(Box<SnapSend>),
}

/// What an outbound connection task has yet to write, in order: `queue`'s frames (the first
/// written up to `off`), then the SNAP being streamed from a file, then what the core queued
/// after that SNAP (`behind`). `queued` counts the bytes of `queue` and `behind`.
#[derive(Default)]
struct Outbound {
    queue: VecDeque<Vec<u8>>,
    queued: usize,
    off: usize,
    stream: Option<SnapSending>,
    behind: VecDeque<Behind>,
    /// When to look again for the streamed SNAP's file.
    snap_retry: Option<Instant>,
    /// The leading entries of `queue` checked as sayable in the link's protocol version.
    checked: usize,
    /// A HANDOVER that a version 4 peer cannot decode was cut from the queue: close the link
    /// once what was before it is written.
    closing: bool,
}

impl Outbound {
    /// A break or a new epoch: nothing queued may be delivered on a later connection.
    fn drop_all(&mut self) {
        *self = Outbound::default();
    }

    /// On a link of an older `version`, cut the queue at the first frame the peer cannot
    /// decode (a HANDOVER on version 4) and drop all after it: the link closes once the rest
    /// is written, so the peer elects, as a version 4 leader removed by a reconfig made
    /// everyone elect (the successor, short of that voter, may wait initLimit for a quorum and
    /// then elect too). True when it cut.
    fn cut_unsayable(&mut self, version: u16) -> bool {
        while self.checked < self.queue.len() {
            let i = self.checked;
            // An entry partly written was checked before its writing started (on this
            // connection: `off` restarts at 0 with each).
            let written = i == 0 && self.off > 0;
            let found = if written {
                None
            } else {
                wire::first_unspeakable(&self.queue[i], version)
            };
            let Some(cut) = found else {
                self.checked += 1;
                continue;
            };
            for f in self.queue.drain(i + 1..) {
                self.queued -= f.len();
            }
            self.queued -= self.queue[i].len() - cut;
            self.queue[i].truncate(cut);
            if self.queue[i].is_empty() {
                self.queue.remove(i);
            }
            for b in self.behind.drain(..) {
                if let Behind::Frame(f) = b {
                    self.queued -= f.len();
                }
            }
            self.stream = None;
            self.snap_retry = None;
            self.checked = self.queue.len();
            self.closing = true;
            return true;
        }
        false
    }
}

/// Unsent bytes in the write queue below which the SNAP being streamed reads its next part:
/// about one part in flight while the socket drains another.
const SNAP_READ_AHEAD: usize = 1 << 20;
/// How often to look again for a snapshot file the writer has not renamed into place yet.
const SNAP_RETRY: Duration = Duration::from_millis(100);

/// The two directions of a peer connection, plaintext or TLS.
type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

fn split_plain(s: TcpStream) -> (ReadHalf, WriteHalf) {
    let (r, w) = s.into_split();
    (Box::new(r), Box::new(w))
}

fn split_tls<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(s: S) -> (ReadHalf, WriteHalf) {
    let (r, w) = tokio::io::split(s);
    (Box::new(r), Box::new(w))
}

async fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    // ZooKeeper's InetAddress lookups usually land on IPv4 for names like "localhost".
    addrs.sort_by_key(|a| !a.is_ipv4());
    Ok(addrs)
}

/// How this server's quorum and election connections are secured: TLS (`sslQuorum`) and
/// quorum SASL (`quorum.auth.enableSasl`), each optional.
#[derive(Clone, Default)]
pub struct PeerSecurity {
    pub tls: Option<QuorumTls>,
    pub auth: Option<Arc<QuorumAuth>>,
}

/// Why one handshake attempt failed.
enum Refused {
    /// The peer closed (or reset) the connection on our hello: a version 4 server drops a
    /// hello of any other version, so the next attempt offers version 4.
    OnHello(String),
    Other(String),
}

#[allow(clippy::too_many_arguments)] // one attempt's whole context
async fn handshake(
    me: ServerId,
    my_addr: &str,
    sid: ServerId,
    channel: Channel,
    host: &str,
    addr: SocketAddr,
    offer: u16,
    security: &PeerSecurity,
) -> Result<(ReadHalf, WriteHalf, u16), Refused> {
    let (tls, auth) = (security.tls.as_ref(), security.auth.as_deref());
    let s = match timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Refused::Other(format!("{addr}: {e}"))),
        Err(_) => return Err(Refused::Other(format!("{addr}: connect timed out"))),
    };
    let _ = s.set_nodelay(true);
    let (mut rd, mut wr) = match tls.and_then(|t| t.dial.as_ref().map(|d| (t, d))) {
        None => split_plain(s),
        Some((t, dial)) => {
            let name = tls::server_name(host).map_err(Refused::Other)?;
            match timeout(t.handshake_timeout, dial.get().connect(name, s)).await {
                Ok(Ok(stream)) => split_tls(stream),
                Ok(Err(e)) => {
                    // Said at warn: a certificate problem does not heal by retrying.
                    tracing::warn!(
                        peer = sid,
                        channel = channel.name(),
                        "TLS handshake with server {sid} ({addr}) failed: {e}"
                    );
                    return Err(Refused::Other(format!("{addr}: TLS handshake failed: {e}")));
                }
                Err(_) => {
                    return Err(Refused::Other(format!("{addr}: TLS handshake timed out")));
                }
            }
        }
    };
    let hs = async {
        let mut hello = wire::hello(HELLO_MAGIC, offer, channel, me).to_vec();
        if offer >= PROTOCOL_VERSION {
            hello.extend_from_slice(&wire::hello_addr(my_addr));
        }
        let closed = |e: std::io::Error| {
            Refused::OnHello(format!("{addr} closed on our version {offer} hello: {e}"))
        };
        wr.write_all(&hello).await.map_err(closed)?;
        let mut ack = [0u8; HELLO_LEN];
        rd.read_exact(&mut ack).await.map_err(closed)?;
        let answer =
            wire::parse_hello(ACK_MAGIC, &ack).map_err(|e| Refused::Other(e.to_string()))?;
        if answer.channel != channel || answer.sid != sid {
            return Err(Refused::Other(format!(
                "{addr} answered as server {} on the {} channel; expected server {sid} on {}",
                answer.sid,
                answer.channel.name(),
                channel.name()
            )));
        }
        if answer.version > offer {
            return Err(Refused::Other(format!(
                "{addr} answered our version {offer} hello in version {}",
                answer.version
            )));
        }
        if let Some(a) = auth
            && let Err(e) = a.learn(host, &mut rd, &mut wr).await
        {
            tracing::warn!(
                "{} channel to server {sid} ({addr}): quorum SASL: {e}",
                channel.name()
            );
            return Err(Refused::Other(format!("{addr}: quorum SASL: {e}")));
        }
        Ok::<u16, Refused>(answer.version)
    };
    match timeout(HANDSHAKE_TIMEOUT, hs).await {
        Ok(Ok(version)) => Ok((rd, wr, version)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Refused::Other(format!("{addr}: handshake timed out"))),
    }
}

/// Connect to `sid` and say hello: in this version, or in the previous one to a peer that
/// closes on this one's hello. The link's agreed version comes back with its halves.
async fn dial(
    me: ServerId,
    my_addr: &str,
    sid: ServerId,
    channel: Channel,
    host: &str,
    port: u16,
    security: &PeerSecurity,
) -> Result<(ReadHalf, WriteHalf, u16), String> {
    let addrs = resolve(host, port)
        .await
        .map_err(|e| format!("resolving {host}: {e}"))?;
    let mut last = format!("{host}:{port} resolves to nothing");
    for addr in addrs {
        let mut offer = PROTOCOL_VERSION;
        let mut refused: Option<String> = None;
        loop {
            match handshake(me, my_addr, sid, channel, host, addr, offer, security).await {
                Ok(link) => return Ok(link),
                Err(Refused::OnHello(e)) if offer == PROTOCOL_VERSION => {
                    // Perhaps a server of the previous version: say it in that one.
                    tracing::debug!(
                        peer = sid,
                        channel = channel.name(),
                        "{e}; offering version {PREVIOUS_VERSION}"
                    );
                    refused = Some(e);
                    offer = PREVIOUS_VERSION;
                }
                Err(Refused::OnHello(e) | Refused::Other(e)) => {
                    last = match refused {
                        Some(first) => format!("{first}; then in version {offer}: {e}"),
                        None => e,
                    };
                    break;
                }
            }
        }
    }
    Err(last)
}

/// Start the task that owns our outbound connection to `sid` on `channel`.
#[allow(clippy::too_many_arguments)] // one task's whole context
pub fn spawn_sender(
    me: ServerId,
    my_addr: Arc<str>,
    sid: ServerId,
    channel: Channel,
    host: String,
    port: u16,
    input: mpsc::Sender<Input>,
    security: PeerSecurity,
) -> (mpsc::UnboundedSender<OutCmd>, Arc<Backlog>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(Backlog::default());
    tokio::spawn(sender_task(
        me,
        my_addr,
        sid,
        channel,
        host,
        port,
        rx,
        input,
        security,
        Arc::clone(&backlog),
    ));
    (tx, backlog)
}

#[allow(clippy::too_many_arguments)] // one task's whole context
async fn sender_task(
    me: ServerId,
    my_addr: Arc<str>,
    sid: ServerId,
    channel: Channel,
    host: String,
    port: u16,
    mut rx: mpsc::UnboundedReceiver<OutCmd>,
    input: mpsc::Sender<Input>,
    security: PeerSecurity,
    backlog: Arc<Backlog>,
) {
    let quorum = channel == Channel::Quorum;
    let mut epoch = 0u64;
    // Broken in `epoch`: drop that epoch's messages until the core moves on.
    let mut dead = false;
    let mut out = Outbound::default();
    let mut rd: Option<ReadHalf> = None;
    let mut wr: Option<WriteHalf> = None;
    let mut backoff = MIN_BACKOFF;
    let mut next_attempt = Instant::now();
    let mut probe = [0u8; 64];
    // The connected link's peer-protocol version, and the last one logged for this link.
    let mut version = PROTOCOL_VERSION;
    let mut said: Option<u16> = None;

    loop {
        if wr.is_some() && out.cut_unsayable(version) {
            tracing::info!(
                peer = sid,
                channel = channel.name(),
                "server {sid} speaks peer protocol {version}, which has no HANDOVER: closing \
                 the link after the reconfig's COMMIT, so that it elects"
            );
        }
        let closed_by_us = wr.is_some() && out.closing && out.queue.is_empty();
        backlog.set(out.queue.len(), out.queued.saturating_sub(out.off));
        let has_work = !out.queue.is_empty() || out.stream.is_some();
        if wr.is_none() && has_work && Instant::now() >= next_attempt {
            match dial(me, &my_addr, sid, channel, &host, port, &security).await {
                Ok((r, w, v)) => {
                    if said != Some(v) {
                        // Said whenever it changes: a link in the previous version is a
                        // rolling upgrade in progress (node/README.md).
                        let note = if v < PROTOCOL_VERSION {
                            " (the previous version: that server runs the older build)"
                        } else {
                            ""
                        };
                        tracing::info!(
                            peer = sid,
                            channel = channel.name(),
                            "{} link to server {sid} speaks peer protocol {v}{note}",
                            channel.name()
                        );
                        said = Some(v);
                    }
                    tracing::debug!(peer = sid, channel = channel.name(), "connected");
                    rd = Some(r);
                    wr = Some(w);
                    version = v;
                    out.off = 0;
                    out.checked = 0;
                    backoff = MIN_BACKOFF;
                }
                Err(e) => {
                    tracing::debug!(peer = sid, channel = channel.name(), "cannot connect: {e}");
                    next_attempt = Instant::now() + backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    if quorum {
                        // Nothing queued can be delivered in order any more: report a break.
                        out.drop_all();
                        dead = true;
                        let _ = input
                            .send(Input::OutboundBroken {
                                sid,
                                channel,
                                epoch,
                            })
                            .await;
                    }
                }
            }
            continue;
        }
        // The SNAP being streamed reads its next frame once the queue has drained enough.
        let mut snap_failed: Option<String> = None;
        let unsent = out.queue.iter().map(Vec::len).sum::<usize>() - out.off;
        if wr.is_some()
            && unsent < SNAP_READ_AHEAD
            && out.snap_retry.is_none_or(|t| Instant::now() >= t)
            && let Some(mut s) = out.stream.take()
        {
            out.snap_retry = None;
            let zxid = s.zxid();
            let step = tokio::task::spawn_blocking(move || {
                let r = s.next_frame();
                (s, r)
            })
            .await;
            match step {
                Ok((s, Ok(Step::Part(frame)))) => {
                    out.queued += frame.len();
                    out.queue.push_back(frame);
                    out.stream = Some(s);
                }
                Ok((_, Ok(Step::Last(frame)))) => {
                    out.queued += frame.len();
                    out.queue.push_back(frame);
                    // What waited behind it goes next, up to the next SNAP, if any.
                    while let Some(b) = out.behind.pop_front() {
                        match b {
                            Behind::Frame(f) => out.queue.push_back(f),
                            Behind::Snap(what) => {
                                out.stream = Some(SnapSending::new(*what));
                                break;
                            }
                        }
                    }
                }
                Ok((s, Ok(Step::Wait))) => {
                    out.stream = Some(s);
                    out.snap_retry = Some(Instant::now() + SNAP_RETRY);
                }
                Ok((_, Err(e))) => {
                    tracing::error!(peer = sid, "cannot stream the SNAP at {zxid}: {e}");
                    snap_failed = Some(format!("the SNAP at {zxid} cannot be sent: {e}"));
                }
                Err(e) => snap_failed = Some(format!("the SNAP at {zxid}: {e}")),
            }
            if snap_failed.is_none() {
                continue;
            }
        }
        let writing = wr.is_some() && !out.queue.is_empty();
        let waiting = wr.is_none() && (!out.queue.is_empty() || out.stream.is_some());
        let snap_waiting = wr.is_some() && out.queue.is_empty() && out.snap_retry.is_some();
        let broken: Option<String> = if snap_failed.is_some() {
            snap_failed
        } else if closed_by_us {
            Some(format!("closed: peer protocol {version} has no HANDOVER"))
        } else {
            tokio::select! {
                cmd = rx.recv() => {
                    match cmd {
                        None => return,
                        Some(OutCmd::Reset(e)) => {
                            rd = None;
                            wr = None;
                            out.drop_all();
                            epoch = e;
                            dead = false;
                        }
                        Some(cmd @ (OutCmd::Msg(..) | OutCmd::Frames(..) | OutCmd::Snapshot(..))) => {
                            let e = match &cmd {
                                OutCmd::Msg(e, _) | OutCmd::Frames(e, _) | OutCmd::Snapshot(e, _) => *e,
                                OutCmd::Reset(_) => unreachable!("matched above"),
                            };
                            if quorum && e < epoch {
                                continue;
                            }
                            if quorum && e > epoch {
                                // The core has heard of a break (or asked for one): new connection.
                                rd = None;
                                wr = None;
                                out.drop_all();
                                epoch = e;
                                dead = false;
                            }
                            if dead || out.closing {
                                continue;
                            }
                            let frame = match cmd {
                                OutCmd::Snapshot(_, what) => {
                                    if out.stream.is_none() && out.behind.is_empty() {
                                        out.stream = Some(SnapSending::new(*what));
                                    } else {
                                        out.behind.push_back(Behind::Snap(what));
                                    }
                                    continue;
                                }
                                OutCmd::Frames(_, bytes) => bytes,
                                OutCmd::Msg(_, msg) => {
                                    let mut frame = Vec::new();
                                    if let Err(e) = wire::encode_frame(&msg, &mut frame) {
                                        tracing::error!(peer = sid, "cannot encode {}: {e}", msg.name());
                                        continue;
                                    }
                                    frame
                                }
                                OutCmd::Reset(_) => unreachable!("matched above"),
                            };
                            if frame.is_empty() {
                                continue;
                            }
                            out.queued += frame.len();
                            if out.stream.is_some() || !out.behind.is_empty() {
                                out.behind.push_back(Behind::Frame(frame));
                            } else {
                                out.queue.push_back(frame);
                            }
                            if !quorum {
                                while out.queue.len() > MAX_ELECTION_BACKLOG {
                                    // Keep a partly written frame: it must be finished first.
                                    let at = if out.off > 0 { 1 } else { 0 };
                                    if let Some(f) = out.queue.remove(at) {
                                        out.queued -= f.len();
                                    }
                                    out.checked = 0;
                                }
                            }
                        }
                    }
                    if quorum && out.queued > MAX_QUEUED_BYTES { Some("peer is not reading".into()) } else { None }
                }
                r = async {
                    // Everything queued in one system call, not one per frame.
                    let slices: Vec<IoSlice<'_>> = out.queue
                        .iter()
                        .take(MAX_IOVECS)
                        .enumerate()
                        .map(|(i, f)| IoSlice::new(if i == 0 { &f[out.off..] } else { f }))
                        .collect();
                    wr.as_mut().expect("guarded").write_vectored(&slices).await
                }, if writing => {
                    match r {
                        Ok(0) => Some("connection closed".into()),
                        Ok(mut n) => {
                            while n > 0 {
                                let rest = out.queue[0].len() - out.off;
                                if n < rest {
                                    out.off += n;
                                    break;
                                }
                                n -= rest;
                                out.off = 0;
                                if let Some(f) = out.queue.pop_front() {
                                    out.queued -= f.len();
                                    out.checked = out.checked.saturating_sub(1);
                                }
                            }
                            None
                        }
                        Err(e) => Some(e.to_string()),
                    }
                }
                r = async { rd.as_mut().expect("guarded").read(&mut probe).await }, if rd.is_some() => {
                    // The acceptor never writes after its hello: EOF, an error or bytes all mean
                    // this connection is over.
                    match r {
                        Ok(0) => Some("closed by the peer".into()),
                        Ok(_) => Some("unexpected bytes from the peer".into()),
                        Err(e) => Some(e.to_string()),
                    }
                }
                _ = sleep_until(next_attempt), if waiting => None,
                _ = sleep_until(out.snap_retry.unwrap_or(next_attempt)), if snap_waiting => None,
            }
        };
        if let Some(why) = broken {
            tracing::info!(
                peer = sid,
                channel = channel.name(),
                "connection to server {sid} broke: {why}"
            );
            rd = None;
            wr = None;
            if quorum {
                out.drop_all();
                dead = true;
                let _ = input
                    .send(Input::OutboundBroken {
                        sid,
                        channel,
                        epoch,
                    })
                    .await;
            } else {
                // Notifications are idempotent: resend the partly written one whole.
                out.off = 0;
                next_attempt = Instant::now() + MIN_BACKOFF;
            }
        }
    }
}

/// Everything an acceptor needs.
pub struct AcceptCtx {
    pub me: ServerId,
    pub channel: Channel,
    /// Whose hellos are taken: the configuration's members, as it changes.
    pub members: super::quorum_view::Accepted,
    pub input: mpsc::Sender<Input>,
    pub generations: Arc<AtomicU64>,
    /// sslQuorum / portUnification: how this port takes TLS.
    pub tls: Option<QuorumTls>,
    /// Quorum SASL (`quorum.auth.enableSasl`): peers authenticate after their hello.
    pub auth: Option<Arc<QuorumAuth>>,
}

pub async fn accept_loop(listener: TcpListener, ctx: Arc<AcceptCtx>) {
    loop {
        match listener.accept().await {
            Ok((s, addr)) => {
                tokio::spawn(inbound(s, addr, ctx.clone()));
            }
            Err(e) => {
                tracing::warn!("{} port accept failed: {e}", ctx.channel.name());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Bytes asked of the socket per read: many frames arrive in one system call.
const READ_CHUNK: usize = 64 * 1024;

/// Read whatever the socket has and decode every whole frame in it, in order. `Ok(None)` at a
/// clean end of stream (between frames). The buffer grows with the bytes that actually
/// arrive, never with what a length claims.
async fn read_frames(
    rd: &mut ReadHalf,
    buf: &mut Vec<u8>,
    channel: Channel,
) -> Result<Option<Vec<PeerMsg>>, String> {
    let mut msgs = Vec::new();
    loop {
        let mut at = 0;
        while buf.len() - at >= 4 {
            let len = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
            let len = wire::check_len(len).map_err(|e| e.to_string())?;
            if buf.len() - at - 4 < len {
                break;
            }
            let body = &buf[at + 4..at + 4 + len];
            msgs.push(wire::decode_body(body, channel).map_err(|e| e.to_string())?);
            at += 4 + len;
        }
        buf.drain(..at);
        if buf.capacity() > 4 * READ_CHUNK && buf.len() < READ_CHUNK {
            // Past a big frame (a SNAP): do not hold its memory for the life of the link.
            buf.shrink_to(READ_CHUNK);
        }
        if !msgs.is_empty() {
            return Ok(Some(msgs));
        }
        buf.reserve(READ_CHUNK);
        match rd.read_buf(buf).await {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(format!("frame cut short ({} bytes)", buf.len())),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The TLS handshake of a peer that dialled in, where the port takes TLS: plaintext only on a
/// unified port (portUnification), and the certificate checked against the peer's address
/// (ssl.quorum.hostnameVerification).
async fn accept_tls(
    s: TcpStream,
    addr: SocketAddr,
    ctx: &AcceptCtx,
) -> Option<(ReadHalf, WriteHalf)> {
    let Some(q) = ctx.tls.as_ref() else {
        return Some(split_plain(s));
    };
    let tls = match &q.accept {
        PortMode::Plain => false,
        PortMode::Tls(_) => true,
        PortMode::Unified(_) => {
            let mut first = [0u8; 1];
            match timeout(q.handshake_timeout, s.peek(&mut first)).await {
                Ok(Ok(1)) => first[0] == tls::TLS_HANDSHAKE_RECORD,
                _ => return None,
            }
        }
    };
    let Some(acceptor) = q.accept.acceptor().filter(|_| tls) else {
        return Some(split_plain(s));
    };
    let what = ctx.channel.name();
    match timeout(q.handshake_timeout, acceptor.accept(s)).await {
        Ok(Ok(stream)) => {
            if !tls::peer_matches(stream.get_ref().1, addr.ip(), q) {
                tracing::warn!(
                    "{what} port: dropping {addr}: its certificate names neither this address \
                     nor a server line's host that resolves to it (ssl.quorum.hostnameVerification)"
                );
                return None;
            }
            Some(split_tls(stream))
        }
        Ok(Err(e)) => {
            tracing::warn!("{what} port: dropping {addr}: TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::warn!(
                "{what} port: dropping {addr}: no TLS handshake in time (a plaintext peer on a \
                 TLS port? set portUnification=true for a rolling switch)"
            );
            None
        }
    }
}

async fn inbound(s: TcpStream, addr: SocketAddr, ctx: Arc<AcceptCtx>) {
    let _ = s.set_nodelay(true);
    let Some((mut rd, mut wr)) = accept_tls(s, addr, &ctx).await else {
        return;
    };
    let who = timeout(HANDSHAKE_TIMEOUT, async {
        let mut hello = [0u8; HELLO_LEN];
        rd.read_exact(&mut hello).await.map_err(|e| e.to_string())?;
        let h = wire::parse_hello(HELLO_MAGIC, &hello).map_err(|e| e.to_string())?;
        // A version 4 dialler sends no address: it can only be a member.
        let mut said = None;
        if h.carries_addr() {
            let mut len = [0u8; 2];
            rd.read_exact(&mut len).await.map_err(|e| e.to_string())?;
            let mut text = vec![0u8; wire::hello_addr_len(len).map_err(|e| e.to_string())?];
            rd.read_exact(&mut text).await.map_err(|e| e.to_string())?;
            said = Some(String::from_utf8_lossy(&text).into_owned());
        }
        Ok::<_, String>((h.version, h.channel, h.sid, said))
    })
    .await
    .unwrap_or_else(|_| Err("no hello in time".to_string()));
    // A member of the configuration, or a server outside it that says where it listens (a
    // joiner: it syncs as a non-voting follower, and we link back to the address it gives).
    let member = |sid: ServerId| ctx.members.read().is_ok_and(|m| m.contains(&sid));
    let mut guest = None;
    let version = who.as_ref().map_or(PROTOCOL_VERSION, |w| w.0);
    let sid = match who {
        Ok((_, ch, sid, _)) if ch == ctx.channel && sid != ctx.me && member(sid) => sid,
        Ok((v, ch, sid, None)) if ch == ctx.channel && sid != ctx.me => {
            tracing::warn!(
                "{} port: dropping {addr}: server {sid} is not in the configuration and speaks \
                 peer protocol {v}, whose hello gives no address to link back to (a joiner \
                 syncing before its reconfig must run this build)",
                ctx.channel.name()
            );
            return;
        }
        Ok((_, ch, sid, Some(said))) if ch == ctx.channel && sid != ctx.me => {
            match ensemble_core::membership::QuorumServer::parse(&said) {
                Ok(s) => {
                    guest = Some(s.addr);
                    sid
                }
                Err(e) => {
                    tracing::warn!(
                        "{} port: dropping {addr}: server {sid} is not in the configuration \
                         and gives no address to link back to ({said:?}): {e}",
                        ctx.channel.name()
                    );
                    return;
                }
            }
        }
        Ok((_, ch, sid, _)) => {
            tracing::warn!(
                "{} port: dropping {addr}: says it is server {sid} on the {} channel",
                ctx.channel.name(),
                ch.name()
            );
            return;
        }
        Err(e) => {
            tracing::warn!("{} port: dropping {addr}: {e}", ctx.channel.name());
            return;
        }
    };
    // Answered in the dialler's version: the link speaks it (both read it the same way).
    if version < PROTOCOL_VERSION {
        tracing::info!(
            peer = sid,
            channel = ctx.channel.name(),
            "{} port: server {sid} ({addr}) dialled in speaking peer protocol {version} (the \
             previous version: that server runs the older build)",
            ctx.channel.name()
        );
    }
    if wr
        .write_all(&wire::hello(ACK_MAGIC, version, ctx.channel, ctx.me))
        .await
        .is_err()
    {
        return;
    }
    let mut buf = Vec::new();
    if let Some(auth) = &ctx.auth {
        let served = timeout(HANDSHAKE_TIMEOUT, async {
            let mut first = [0u8; 4];
            rd.read_exact(&mut first).await.map_err(|e| e.to_string())?;
            auth.serve(first, &mut rd, &mut wr).await
        })
        .await;
        match served {
            Ok(Ok(Some(first))) => buf.extend_from_slice(&first),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::warn!(
                    "{} port: refusing server {sid} ({addr}): quorum SASL: {e}",
                    ctx.channel.name()
                );
                return;
            }
            Err(_) => {
                tracing::warn!(
                    "{} port: dropping server {sid} ({addr}): no quorum SASL in time",
                    ctx.channel.name()
                );
                return;
            }
        }
    }
    let generation = ctx.generations.fetch_add(1, Ordering::Relaxed) + 1;
    let (kill_tx, mut kill_rx) = oneshot::channel::<()>();
    let channel = ctx.channel;
    // The connection replaces the peer's current one only once a message from it decodes:
    // anyone can send a hello naming a member, and garbage after it must not cut the real
    // member off (a quorum connection replaced is a learner lost).
    let mut kill_tx = Some(kill_tx);
    loop {
        tokio::select! {
            _ = &mut kill_rx, if kill_tx.is_none() => break,
            r = read_frames(&mut rd, &mut buf, channel) => match r {
                Ok(Some(msgs)) => {
                    // a server outside the configuration is linked back once it has spoken
                    if let Some(addr) = guest.take()
                        && ctx.input.send(Input::Guest { sid, addr }).await.is_err()
                    {
                        return;
                    }
                    if let Some(kill) = kill_tx.take()
                        && ctx
                            .input
                            .send(Input::PeerOpened { sid, channel, generation, kill, addr })
                            .await
                            .is_err()
                    {
                        return;
                    }
                    // A learner's SNAP parts wait while those before them are still on their
                    // way to disk: the socket stops, and so does the leader's stream.
                    let parts = snap_part_bytes(&msgs);
                    if parts > 0 {
                        SNAP_PARTS.wait_below(SNAP_PARTS_CAP).await;
                        SNAP_PARTS.add(parts);
                    }
                    if ctx.input.send(Input::PeerMsgs { sid, channel, generation, msgs }).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("{} port: dropping server {sid} ({addr}): {e}", channel.name());
                    break;
                }
            }
        }
    }
    drop(wr);
    let _ = ctx
        .input
        .send(Input::PeerClosed {
            sid,
            channel,
            generation,
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_core::Zxid;

    fn frames(msgs: &[&PeerMsg]) -> Vec<u8> {
        let mut f = Vec::new();
        for m in msgs {
            wire::encode_frame(m, &mut f).expect("encodes");
        }
        f
    }

    fn queued(out: &Outbound) -> usize {
        let behind: usize = out
            .behind
            .iter()
            .map(|b| match b {
                Behind::Frame(f) => f.len(),
                Behind::Snap(_) => 0,
            })
            .sum();
        out.queue.iter().map(Vec::len).sum::<usize>() + behind
    }

    #[test]
    fn a_v4_link_is_cut_at_its_handover_and_closes() {
        let ping = PeerMsg::Ping { round: 1 };
        let handover = PeerMsg::HandOver {
            zxid: Zxid(5),
            designated: 2,
        };
        let fill = |out: &mut Outbound| {
            out.queue.push_back(frames(&[&ping]));
            out.queue.push_back(frames(&[&ping, &handover, &ping]));
            out.queue.push_back(frames(&[&ping]));
            out.behind.push_back(Behind::Frame(frames(&[&ping])));
            out.queued = queued(out);
        };
        let mut out = Outbound::default();
        fill(&mut out);
        let before = out.queued;
        assert!(
            !out.cut_unsayable(PROTOCOL_VERSION),
            "version 5 says HANDOVER"
        );
        assert_eq!(
            (out.queue.len(), out.queued, out.closing),
            (3, before, false)
        );

        let mut out = Outbound::default();
        fill(&mut out);
        assert!(out.cut_unsayable(PREVIOUS_VERSION));
        let one = frames(&[&ping]);
        assert_eq!(out.queue, VecDeque::from(vec![one.clone(), one]));
        assert!(out.behind.is_empty() && out.closing);
        assert_eq!(out.queued, queued(&out));
        // checked once: nothing more to cut
        assert!(!out.cut_unsayable(PREVIOUS_VERSION));

        // an entry partly written (checked before it started) is never parsed from its
        // middle; the next one is
        let mut out = Outbound::default();
        out.queue.push_back(frames(&[&ping, &ping]));
        out.queue.push_back(frames(&[&handover, &ping]));
        out.queued = queued(&out);
        out.off = 3;
        assert!(out.cut_unsayable(PREVIOUS_VERSION));
        assert_eq!(out.queue.len(), 1);
        assert_eq!(out.queue[0], frames(&[&ping, &ping]));
        assert_eq!(out.queued, queued(&out));
        assert!(out.closing);
    }
}
