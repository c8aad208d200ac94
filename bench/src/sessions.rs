//! Issue 16's scale figures: N concurrent sessions over the three servers (connect rate, RSS per
//! session, ping CPU), a reconnect storm of all of them after the leader is killed (every session
//! kept, none expired), every session's expiry still right afterwards, and W watch registrations
//! fired by one write each (time to the last notification).
//!
//! The client is deliberately lean — one tokio task per session speaking the wire protocol
//! directly (handshake, pings, getData with a watch, reconnect with the session id and password),
//! because 10,000 full clients would measure the client, not the servers. Both systems get the
//! same client, the same settings and the same machine, one after the other.

use crate::cluster::{Cluster, System};
use crate::{mib, procfs};
use anyhow::{Context, Result, bail};
use ensemble_client::{Client, ClientError, ConnectOptions};
use ensemble_proto::proto::{Acl, CreateMode, KeeperError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, mpsc, oneshot};

const OP_GET_DATA: i32 = 4;
const OP_PING: i32 = 11;
const XID_PING: i32 = -2;
const XID_NOTIFICATION: i32 = -1;
const TICK: Duration = Duration::from_millis(2000);

/// What the benchmark asks of it.
#[derive(Clone, Debug)]
pub struct Spec {
    pub sessions: usize,
    pub timeout: Duration,
    pub ping_window: Duration,
    /// Znodes each session watches (so sessions × watch_paths registrations).
    pub watch_paths: usize,
    /// Sessions that stop pinging after the storm (and as many that keep pinging, checked).
    pub expiry_sample: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub connect_secs: f64,
    pub connect_rate: f64,
    pub rss_per_session: f64,
    pub ping_cpu_per_min: f64,
    pub watches: u64,
    pub notify_secs: f64,
    pub notified: u64,
    pub storm_secs: f64,
    pub storm_expired: usize,
    pub storm_new_id: usize,
    pub expired_ok: usize,
    pub expired_late: usize,
    pub expired_early: usize,
    pub expiry_max_secs: f64,
    pub expiry_min_secs: f64,
    pub survivors_ok: usize,
}

/// The state one session's task shares with the benchmark.
#[derive(Default)]
struct Slot {
    connected: AtomicBool,
    session_id: AtomicI64,
    /// The session came back with another id (or none): never expected.
    new_id: AtomicBool,
    /// A reconnect was answered "expired" (timeOut 0).
    expired: AtomicBool,
    /// Milliseconds (from the run's start) of the last reply received: the server's last sight.
    last_ack_ms: AtomicU64,
    /// Milliseconds at which the server closed a session told to stop pinging.
    closed_ms: AtomicU64,
}

struct Shared {
    t0: Instant,
    addrs: Vec<String>,
    timeout_ms: i32,
    slots: Vec<Slot>,
    registered: AtomicU64,
    /// Reconnects that kept their session (so the storm's size is seen, not assumed).
    reconnected: AtomicU64,
    notified: AtomicU64,
    last_notify_us: AtomicU64,
}

impl Shared {
    fn ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }
}

enum Cmd {
    Watch(Vec<String>),
    StopPinging,
}

fn put_str(b: &mut Vec<u8>, s: &[u8]) {
    b.extend_from_slice(&(s.len() as i32).to_be_bytes());
    b.extend_from_slice(s);
}

fn frame(body: Vec<u8>) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend(body);
    f
}

fn connect_request(timeout_ms: i32, session_id: i64, passwd: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(48);
    b.extend_from_slice(&0i32.to_be_bytes()); // protocolVersion
    b.extend_from_slice(&0i64.to_be_bytes()); // lastZxidSeen
    b.extend_from_slice(&timeout_ms.to_be_bytes());
    b.extend_from_slice(&session_id.to_be_bytes());
    put_str(&mut b, passwd);
    b.push(0); // readOnly
    frame(b)
}

async fn read_frame(r: &mut OwnedReadHalf) -> std::io::Result<Vec<u8>> {
    let len = r.read_i32().await?;
    if !(0..=1 << 20).contains(&len) {
        return Err(std::io::Error::other(format!("frame of {len} bytes")));
    }
    let mut buf = vec![0; len as usize];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_i64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// One handshake: Ok(Some((stream, id, passwd))) connected, Ok(None) the session is expired.
async fn handshake(
    addr: &str,
    timeout_ms: i32,
    id: i64,
    passwd: &[u8],
) -> Result<Option<(TcpStream, i64, Vec<u8>)>> {
    let io = async {
        let mut s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        s.write_all(&connect_request(timeout_ms, id, passwd))
            .await?;
        let len = s.read_i32().await?;
        if !(20..=1024).contains(&len) {
            bail!("connect response of {len} bytes");
        }
        let mut b = vec![0; len as usize];
        s.read_exact(&mut b).await?;
        Ok((s, b))
    };
    let (s, b) = tokio::time::timeout(Duration::from_secs(5), io)
        .await
        .context("handshake timed out")??;
    let granted = be_i32(&b, 4).context("short response")?;
    let new_id = be_i64(&b, 8).context("short response")?;
    let plen = be_i32(&b, 16).context("short response")?.max(0) as usize;
    let pw = b.get(20..20 + plen).context("short password")?.to_vec();
    if granted <= 0 {
        return Ok(None);
    }
    Ok(Some((s, new_id, pw)))
}

/// Reads until the connection ends, counting what the benchmark measures.
async fn reader(sh: Arc<Shared>, idx: usize, mut r: OwnedReadHalf) {
    while let Ok(f) = read_frame(&mut r).await {
        let (Some(xid), Some(err)) = (be_i32(&f, 0), be_i32(&f, 12)) else {
            return;
        };
        sh.slots[idx].last_ack_ms.store(sh.ms(), Ordering::Relaxed);
        if xid == XID_NOTIFICATION {
            sh.notified.fetch_add(1, Ordering::Relaxed);
            let us = sh.t0.elapsed().as_micros() as u64;
            sh.last_notify_us.fetch_max(us, Ordering::Relaxed);
        } else if xid > 0 && err == 0 {
            sh.registered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn start_reader(sh: &Arc<Shared>, idx: usize, r: OwnedReadHalf) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    let sh = sh.clone();
    tokio::spawn(async move {
        reader(sh, idx, r).await;
        let _ = tx.send(());
    });
    rx
}

/// Reconnects to the other servers in turn with the session's id and password until one takes
/// it; false if the session was answered expired.
async fn reconnect(
    sh: &Arc<Shared>,
    idx: usize,
    id: i64,
    pw: &[u8],
    mut server: usize,
) -> Option<(OwnedWriteHalf, oneshot::Receiver<()>, usize)> {
    let slot = &sh.slots[idx];
    let mut rng = (idx as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    loop {
        server = (server + 1) % sh.addrs.len();
        match handshake(&sh.addrs[server], sh.timeout_ms, id, pw).await {
            Ok(Some((s, got, _))) => {
                if got != id {
                    slot.new_id.store(true, Ordering::Relaxed);
                }
                let (r, w) = s.into_split();
                slot.last_ack_ms.store(sh.ms(), Ordering::Relaxed);
                slot.connected.store(true, Ordering::Relaxed);
                sh.reconnected.fetch_add(1, Ordering::Relaxed);
                return Some((w, start_reader(sh, idx, r), server));
            }
            Ok(None) => {
                slot.expired.store(true, Ordering::Relaxed);
                return None;
            }
            Err(_) => {
                // a jittered pause so the storm is not a lock-step hammering
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                tokio::time::sleep(Duration::from_millis(20 + rng % 200)).await;
            }
        }
    }
}

async fn session(
    sh: Arc<Shared>,
    idx: usize,
    gate: Arc<Semaphore>,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
) {
    let slot = &sh.slots[idx];
    let mut server = idx % sh.addrs.len();
    let first = {
        let _permit = gate.acquire().await;
        loop {
            match handshake(&sh.addrs[server], sh.timeout_ms, 0, &[0; 16]).await {
                Ok(Some(x)) => break x,
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    };
    let (s, id, pw) = first;
    slot.session_id.store(id, Ordering::Relaxed);
    slot.last_ack_ms.store(sh.ms(), Ordering::Relaxed);
    let (r, mut w) = s.into_split();
    let mut done = start_reader(&sh, idx, r);
    slot.connected.store(true, Ordering::Relaxed);
    let mut pinging = true;
    let mut xid = 0i32;
    let mut ping = tokio::time::interval(Duration::from_millis(sh.timeout_ms as u64 / 3));
    ping.tick().await;
    loop {
        tokio::select! {
            _ = ping.tick(), if pinging => {
                let mut b = XID_PING.to_be_bytes().to_vec();
                b.extend_from_slice(&OP_PING.to_be_bytes());
                let _ = w.write_all(&frame(b)).await;
            }
            cmd = cmds.recv() => match cmd {
                Some(Cmd::Watch(paths)) => {
                    let mut out = Vec::new();
                    for p in paths {
                        xid += 1;
                        let mut b = xid.to_be_bytes().to_vec();
                        b.extend_from_slice(&OP_GET_DATA.to_be_bytes());
                        put_str(&mut b, p.as_bytes());
                        b.push(1);
                        out.extend(frame(b));
                    }
                    let _ = w.write_all(&out).await;
                }
                Some(Cmd::StopPinging) => pinging = false,
                None => return,
            },
            _ = &mut done => {
                slot.connected.store(false, Ordering::Relaxed);
                if !pinging {
                    // the server closed a silent session: it expired; confirm it is gone
                    slot.closed_ms.store(sh.ms(), Ordering::Relaxed);
                    if let Ok(None) = handshake(&sh.addrs[server], sh.timeout_ms, id, &pw).await {
                        slot.expired.store(true, Ordering::Relaxed);
                    }
                    return;
                }
                match reconnect(&sh, idx, id, &pw, server).await {
                    Some((nw, nd, at)) => {
                        w = nw;
                        done = nd;
                        server = at;
                    }
                    None => return,
                }
            }
        }
    }
}

fn count(sh: &Shared, f: impl Fn(&Slot) -> bool) -> usize {
    sh.slots.iter().filter(|s| f(s)).count()
}

async fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Result<Duration> {
    let t0 = Instant::now();
    while !f() {
        if t0.elapsed() > limit {
            bail!("{what}: not reached in {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(t0.elapsed())
}

fn cpu(pids: &[i32]) -> f64 {
    pids.iter()
        .filter_map(|&p| procfs::cpu_time(p))
        .map(|d| d.as_secs_f64())
        .sum()
}

/// Raises this process's open-file limit to the hard limit (the servers it starts inherit it).
pub fn raise_nofile() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a local struct
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
    rl.rlim_cur
}

/// Runs every phase against a started cluster whose leader is node `leader`.
pub async fn run(cluster: &mut Cluster, leader: usize, spec: &Spec) -> Result<Figures> {
    let system = cluster.system;
    let addrs: Vec<String> = (0..3).map(|i| cluster.addr(i)).collect();
    let mut fig = Figures::default();
    let n = spec.sessions;

    // the znodes to watch, made by an ordinary client
    let admin = Client::connect_with(ConnectOptions::new(&addrs[leader], Duration::from_secs(30)))
        .await
        .context("admin session")?;
    let paths: Vec<String> = (0..spec.watch_paths)
        .map(|i| format!("/watched{i}"))
        .collect();
    for p in &paths {
        match admin
            .create(p, b"0", Acl::open_unsafe(), CreateMode::Persistent)
            .await
        {
            Ok(_) | Err(ClientError::Keeper(KeeperError::NodeExists)) => {}
            Err(e) => bail!("create {p}: {e}"),
        }
    }

    let pids = cluster.pids();
    let rss0 = procfs::rss_sum(&pids);
    let sh = Arc::new(Shared {
        t0: Instant::now(),
        addrs: addrs.clone(),
        timeout_ms: spec.timeout.as_millis() as i32,
        slots: (0..n).map(|_| Slot::default()).collect(),
        registered: AtomicU64::new(0),
        reconnected: AtomicU64::new(0),
        notified: AtomicU64::new(0),
        last_notify_us: AtomicU64::new(0),
    });
    // at most 256 handshakes in flight: a client's connect burst, not a SYN flood
    let gate = Arc::new(Semaphore::new(256));
    let mut cmds = Vec::with_capacity(n);
    let t = Instant::now();
    for i in 0..n {
        let (tx, rx) = mpsc::unbounded_channel();
        cmds.push(tx);
        tokio::spawn(session(sh.clone(), i, gate.clone(), rx));
    }
    let connected = AtomicUsize::new(0);
    wait_for("all sessions connected", Duration::from_secs(600), || {
        connected.store(
            count(&sh, |s| s.connected.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        connected.load(Ordering::Relaxed) == n
    })
    .await?;
    fig.connect_secs = t.elapsed().as_secs_f64();
    fig.connect_rate = n as f64 / fig.connect_secs;
    println!(
        "   {n} sessions connected in {:.2} s: {:.0} sessions/s",
        fig.connect_secs, fig.connect_rate
    );
    // let the servers settle (the JVM's allocations after the burst) before reading RSS
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss1 = procfs::rss_sum(&pids);
    fig.rss_per_session = rss1.saturating_sub(rss0) as f64 / n as f64;
    println!(
        "   RSS {:.0} -> {:.0} MiB: {:.1} KiB per session",
        mib(rss0),
        mib(rss1),
        fig.rss_per_session / 1024.0
    );

    let c0 = cpu(&pids);
    tokio::time::sleep(spec.ping_window).await;
    let c1 = cpu(&pids);
    fig.ping_cpu_per_min = (c1 - c0) * 60.0 / spec.ping_window.as_secs_f64();
    println!(
        "   idle pinging ({} s window, a ping each {} ms per session): {:.2} server CPU s per minute",
        spec.ping_window.as_secs(),
        spec.timeout.as_millis() / 3,
        fig.ping_cpu_per_min
    );

    if spec.watch_paths > 0 {
        for tx in &cmds {
            let _ = tx.send(Cmd::Watch(paths.clone()));
        }
        let want = (n * spec.watch_paths) as u64;
        wait_for("watches registered", Duration::from_secs(300), || {
            sh.registered.load(Ordering::Relaxed) >= want
        })
        .await?;
        fig.watches = want;
        let t_fire = sh.t0.elapsed().as_micros() as u64;
        // one setData per watched znode, all sent at once from one session
        let sets = paths.iter().map(|p| admin.set_data(p, b"1", None));
        for r in futures::future::join_all(sets).await {
            r.context("setData on a watched znode")?;
        }
        let got = wait_for("every notification", Duration::from_secs(300), || {
            sh.notified.load(Ordering::Relaxed) >= want
        })
        .await;
        fig.notified = sh.notified.load(Ordering::Relaxed);
        fig.notify_secs = sh
            .last_notify_us
            .load(Ordering::Relaxed)
            .saturating_sub(t_fire) as f64
            / 1e6;
        println!(
            "   {want} watches ({n} sessions x {} znodes) fired by {} setData: {} notified, the last after {:.3} s{}",
            spec.watch_paths,
            spec.watch_paths,
            fig.notified,
            fig.notify_secs,
            if got.is_err() { " (NOT ALL)" } else { "" }
        );
    }
    drop(admin);

    // the reconnect storm
    tokio::task::block_in_place(|| {
        cluster.kill_node(leader, libc::SIGKILL, Duration::from_secs(30))
    })?;
    let t = Instant::now();
    let dead_port = addrs[leader].clone();
    let gone = wait_for("all sessions disconnected", Duration::from_secs(30), || {
        count(&sh, |s| s.connected.load(Ordering::Relaxed)) < n
    })
    .await;
    if gone.is_err() {
        println!("   (not one session saw the leader's death)");
    }
    let storm = wait_for(
        "every session reconnected",
        Duration::from_secs(300),
        || {
            count(&sh, |s| {
                s.connected.load(Ordering::Relaxed) || s.expired.load(Ordering::Relaxed)
            }) == n
        },
    )
    .await;
    fig.storm_secs = t.elapsed().as_secs_f64();
    fig.storm_expired = count(&sh, |s| s.expired.load(Ordering::Relaxed));
    fig.storm_new_id = count(&sh, |s| s.new_id.load(Ordering::Relaxed));
    println!(
        "   leader ({} node {}, {dead_port}) killed: {} sessions cut and reconnected, {} connected {:.2} s after the kill, {} expired, {} with a new id{}",
        system.name(),
        leader + 1,
        sh.reconnected.load(Ordering::Relaxed),
        count(&sh, |s| s.connected.load(Ordering::Relaxed)),
        fig.storm_secs,
        fig.storm_expired,
        fig.storm_new_id,
        if storm.is_err() { " (NOT ALL)" } else { "" }
    );

    // expiry afterwards: a sample stops pinging, as many others keep on
    let k = spec.expiry_sample.min(n / 2);
    let stopped: Vec<usize> = (0..k).map(|j| j * (n / k.max(1))).collect();
    let kept: Vec<usize> = stopped.iter().map(|i| i + 1).collect();
    let stop_ms = sh.ms();
    for &i in &stopped {
        let _ = cmds[i].send(Cmd::StopPinging);
    }
    let limit = spec.timeout + TICK * 3;
    let _ = wait_for("silent sessions expired", limit, || {
        stopped
            .iter()
            .all(|&i| sh.slots[i].closed_ms.load(Ordering::Relaxed) > 0)
    })
    .await;
    // give the confirmations (a reconnect answered "expired") a moment
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    for &i in &stopped {
        let s = &sh.slots[i];
        let closed = s.closed_ms.load(Ordering::Relaxed);
        if closed == 0 {
            fig.expired_late += 1;
            continue;
        }
        // measured from the server's last reply: the last moment it saw the session alive
        let from = s
            .last_ack_ms
            .load(Ordering::Relaxed)
            .max(stop_ms.saturating_sub(spec.timeout.as_millis() as u64 / 3));
        let after = closed.saturating_sub(from) as f64 / 1000.0;
        lo = lo.min(after);
        hi = hi.max(after);
        let t = spec.timeout.as_secs_f64();
        if after > t + TICK.as_secs_f64() {
            fig.expired_late += 1;
        } else if after < t - spec.timeout.as_secs_f64() / 3.0 - TICK.as_secs_f64() {
            fig.expired_early += 1;
        } else if s.expired.load(Ordering::Relaxed) {
            fig.expired_ok += 1;
        }
    }
    fig.expiry_min_secs = if lo == f64::MAX { 0.0 } else { lo };
    fig.expiry_max_secs = hi;
    fig.survivors_ok = kept
        .iter()
        .filter(|&&i| {
            let s = &sh.slots[i];
            s.connected.load(Ordering::Relaxed)
                && !s.expired.load(Ordering::Relaxed)
                && sh.ms() - s.last_ack_ms.load(Ordering::Relaxed) < spec.timeout.as_millis() as u64
        })
        .count();
    println!(
        "   expiry after the storm: {}/{k} silent sessions expired and confirmed within timeout + a tick \
         ({:.2}-{:.2} s after the server's last reply; {} late, {} early); {}/{k} pinging sessions alive",
        fig.expired_ok,
        fig.expiry_min_secs,
        fig.expiry_max_secs,
        fig.expired_late,
        fig.expired_early,
        fig.survivors_ok
    );
    drop(cmds);
    Ok(fig)
}

/// One line per figure with Ensemble/ZooKeeper.
pub fn table(results: &[(System, Figures)]) {
    let get = |s: System| {
        results
            .iter()
            .find(|(x, _)| *x == s)
            .map(|(_, f)| f.clone())
    };
    let (Some(e), Some(z)) = (get(System::Ensemble), get(System::ZooKeeper)) else {
        return;
    };
    println!(
        "\n{:<46} {:>12} {:>12} {:>8}",
        "figure", "Ensemble", "ZooKeeper", "E/Z"
    );
    let row = |name: &str, a: f64, b: f64| {
        let r = if b != 0.0 {
            format!("{:.2}", a / b)
        } else {
            "-".into()
        };
        println!("{name:<46} {a:>12.2} {b:>12.2} {r:>8}");
    };
    row("connect rate (sessions/s)", e.connect_rate, z.connect_rate);
    row(
        "RSS per session (KiB)",
        e.rss_per_session / 1024.0,
        z.rss_per_session / 1024.0,
    );
    row(
        "ping CPU (server CPU s per minute)",
        e.ping_cpu_per_min,
        z.ping_cpu_per_min,
    );
    row(
        "watch fire: time to last notification (s)",
        e.notify_secs,
        z.notify_secs,
    );
    row(
        "reconnect storm after leader kill (s)",
        e.storm_secs,
        z.storm_secs,
    );
    row(
        "sessions expired by the storm",
        e.storm_expired as f64,
        z.storm_expired as f64,
    );
    row(
        "silent sessions expired on time",
        e.expired_ok as f64,
        z.expired_ok as f64,
    );
    row(
        "pinging sessions alive",
        e.survivors_ok as f64,
        z.survivors_ok as f64,
    );
}
