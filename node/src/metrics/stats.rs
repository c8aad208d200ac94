//! What the core thread shows of the server to the four-letter words, the AdminServer and the
//! metrics: the runtime's counters ([`ServerStats`], per connection [`ConnInfo`]) and the
//! [`View`] gathered on the thread that owns the `Server` for one answer.

use crate::config::NodeConfig;
use ensemble_core::{Server, ServerId, ServerState};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Instant;

/// Per-server counters the runtime keeps (ZooKeeper's ServerStats).
#[derive(Clone, Debug, Default)]
pub struct ServerStats {
    pub received: u64,
    pub sent: u64,
    pub lat_min: u64,
    pub lat_max: u64,
    pub lat_sum: u64,
    pub lat_count: u64,
    pub last_proposal: Option<usize>,
    pub min_proposal: Option<usize>,
    pub max_proposal: Option<usize>,
    pub proposals: u64,
    pub last_resp: Option<usize>,
    pub min_resp: Option<usize>,
    pub max_resp: Option<usize>,
    pub bytes_received: u64,
    pub connections_rejected: u64,
    pub connections_dropped: u64,
}

impl ServerStats {
    pub fn latency(&mut self, ms: u64) {
        if self.lat_count == 0 || ms < self.lat_min {
            self.lat_min = ms;
        }
        self.lat_max = self.lat_max.max(ms);
        self.lat_sum += ms;
        self.lat_count += 1;
    }
    pub fn avg_latency(&self) -> String {
        java_double(if self.lat_count == 0 {
            0.0
        } else {
            self.lat_sum as f64 / self.lat_count as f64
        })
    }
    pub fn response(&mut self, size: usize) {
        self.last_resp = Some(size);
        self.min_resp = Some(self.min_resp.map_or(size, |m| m.min(size)));
        self.max_resp = Some(self.max_resp.map_or(size, |m| m.max(size)));
    }
    pub fn proposal(&mut self, size: usize) {
        self.proposals += 1;
        self.last_proposal = Some(size);
        self.min_proposal = Some(self.min_proposal.map_or(size, |m| m.min(size)));
        self.max_proposal = Some(self.max_proposal.map_or(size, |m| m.max(size)));
    }
    pub fn reset(&mut self) {
        // The proposal sizes are the leader's, and the last three are ZooKeeper's
        // `ServerMetrics` counters, which only go up (Prometheus reads them as counters).
        let keep = (
            self.proposals,
            self.last_proposal,
            self.min_proposal,
            self.max_proposal,
            self.bytes_received,
            self.connections_rejected,
            self.connections_dropped,
        );
        *self = ServerStats::default();
        (
            self.proposals,
            self.last_proposal,
            self.min_proposal,
            self.max_proposal,
            self.bytes_received,
            self.connections_rejected,
            self.connections_dropped,
        ) = keep;
    }
}

/// One client connection as `cons` and `stat` show it.
#[derive(Clone, Debug, Default)]
pub struct ConnInfo {
    pub addr: Option<SocketAddr>,
    pub queued: u64,
    pub recved: u64,
    pub sent: u64,
    pub session: i64,
    pub last_op: &'static str,
    pub established: u64,
    pub timeout: i32,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_resp: u64,
    pub lat_last: u64,
    pub lat_min: u64,
    pub lat_max: u64,
    pub lat_sum: u64,
    pub lat_count: u64,
}

impl ConnInfo {
    pub fn latency(&mut self, ms: u64) {
        if self.lat_count == 0 || ms < self.lat_min {
            self.lat_min = ms;
        }
        self.lat_max = self.lat_max.max(ms);
        self.lat_sum += ms;
        self.lat_count += 1;
        self.lat_last = ms;
    }
    pub fn reset(&mut self) {
        (
            self.recved,
            self.sent,
            self.lat_last,
            self.lat_min,
            self.lat_max,
            self.lat_sum,
            self.lat_count,
        ) = (0, 0, 0, 0, 0, 0, 0);
        self.last_op = "NA";
        self.last_cxid = -1;
        self.last_zxid = -1;
        self.last_resp = 0;
    }

    pub fn line(&self, brief: bool, out: &mut String) {
        let addr = match self.addr {
            Some(a) => format!("/{}:{}", a.ip().to_canonical(), a.port()),
            None => "/unknown".into(),
        };
        // ZooKeeper prints the selector's interest ops: 0 for a connection not yet in a session.
        let ops = if self.session == 0 { 0 } else { 1 };
        let _ = write!(
            out,
            " {addr}[{ops}](queued={},recved={},sent={}",
            self.queued, self.recved, self.sent
        );
        if !brief && self.session != 0 {
            let avg = self.lat_sum.checked_div(self.lat_count).unwrap_or(0);
            let _ = write!(
                out,
                ",sid=0x{:x},lop={},est={},to={},lcxid=0x{:x},lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
                self.session,
                self.last_op,
                self.established,
                self.timeout,
                self.last_cxid,
                self.last_zxid,
                self.last_resp,
                self.lat_last,
                self.lat_min,
                avg,
                self.lat_max
            );
        }
        out.push_str(")\n");
    }
}

/// Everything a word may report, gathered by the thread that owns the `Server`.
pub struct View<'a> {
    pub server: &'a Server,
    /// The runtime's side of each peer's links (a leader's learners among them): for the
    /// `observers` command.
    pub peer_links: std::collections::BTreeMap<ServerId, PeerLink>,
    pub cfg: &'a NodeConfig,
    pub stats: &'a ServerStats,
    /// Client connections, the asking one included (ZooKeeper lists it too).
    pub conns: Vec<ConnInfo>,
    pub uptime_ms: u64,
    /// Since this server's state last changed.
    pub state_ms: u64,
}

/// What the runtime knows of a peer's quorum links that the core does not.
#[derive(Clone, Copy, Debug, Default)]
pub struct PeerLink {
    /// The peer's end of the quorum connection it dialled to us (a learner's, on a leader).
    pub addr: Option<SocketAddr>,
    /// Write batches and bytes our quorum sender to it has not written yet.
    pub queued_batches: usize,
    pub queued_bytes: usize,
}

/// Java's `Double.toString` for the values latency takes (4 decimals at most).
pub fn java_double(v: f64) -> String {
    let r = (v * 10000.0).round() / 10000.0;
    if r.fract() == 0.0 {
        format!("{r:.1}")
    } else {
        let s = format!("{r:.4}");
        s.trim_end_matches('0').to_string()
    }
}

pub fn mode(ctx: &View<'_>) -> &'static str {
    match ctx.server.state() {
        ServerState::Leading if ctx.cfg.standalone || ctx.server.config().is_standalone() => {
            "standalone"
        }
        ServerState::Leading => "leader",
        ServerState::Following => "follower",
        ServerState::Observing => "observer",
        // ReadOnlyZooKeeperServer.getState()
        ServerState::Looking if ctx.server.is_read_only() => "read-only",
        ServerState::Looking => "looking",
    }
}

/// Open file descriptors and their limit (-1 when unknown), as `mntr` reports them.
pub fn fd_counts() -> (i64, i64) {
    let open = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as i64)
        .unwrap_or(-1);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur as i64
    } else {
        -1
    };
    (open, max)
}

/// When the server stopped serving and why, for the times ZooKeeper measures around an
/// election: `election_time` (looking until a leader is chosen), `unavailable_time` and
/// `leader_unavailable_time` (looking until serving again), and Ensemble's sync-round
/// histogram (joining a leader until serving).
#[derive(Debug, Default)]
pub struct Availability {
    looking_since: Option<Instant>,
    joined: Option<(Instant, ServerState)>,
}

impl Availability {
    /// The server's state changed (the core's `StateChanged`).
    pub fn on_state(&mut self, state: ServerState, now: Instant) {
        let m = super::server_metrics();
        if state == ServerState::Looking {
            m.add("looking_count", 1);
            self.looking_since = Some(now);
            self.joined = None;
            return;
        }
        if let Some(t0) = self.looking_since {
            m.summary("election_time")
                .observe(now.duration_since(t0).as_millis() as u64);
        }
        self.joined = Some((now, state));
    }

    /// After each step: the first one that finds the server serving closes the round.
    pub fn on_step(&mut self, serving: bool, now: Instant) {
        if !serving {
            return;
        }
        let Some((joined, state)) = self.joined.take() else {
            return;
        };
        let m = super::server_metrics();
        m.own
            .sync_round
            .observe(now.duration_since(joined).as_secs_f64());
        if let Some(t0) = self.looking_since.take() {
            let ms = now.duration_since(t0).as_millis() as u64;
            m.summary("unavailable_time").observe(ms);
            if state == ServerState::Leading {
                m.summary("leader_unavailable_time").observe(ms);
            }
        }
    }
}

fn meminfo_mb(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

fn rss_mb() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// ZooKeeper's `Environment.list()`, as `envi` and the admin `environment` command show it.
/// There is no JVM: its `java.*` entries say `<NA>` (what ZooKeeper prints for one it cannot
/// read); the memory entries are the machine's available and total memory and this process's
/// resident size.
pub fn environment(cfg: &NodeConfig) -> Vec<(String, String)> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let osrel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let na = || "<NA>".to_string();
    let mb = |v: Option<u64>| v.map_or_else(na, |m| format!("{m}MB"));
    let tmp = std::env::temp_dir().display().to_string();
    [
        ("zookeeper.version", crate::fourlw::version_string()),
        ("host.name", host.trim().to_string()),
        ("java.version", na()),
        ("java.vendor", na()),
        ("java.home", na()),
        ("java.class.path", na()),
        ("java.library.path", na()),
        ("java.io.tmpdir", tmp),
        ("java.compiler", na()),
        ("os.name", std::env::consts::OS.to_string()),
        ("os.arch", std::env::consts::ARCH.to_string()),
        ("os.version", osrel.trim().to_string()),
        ("user.name", std::env::var("USER").unwrap_or_default()),
        ("user.home", std::env::var("HOME").unwrap_or_default()),
        ("user.dir", cwd),
        ("os.memory.free", mb(meminfo_mb("MemAvailable:"))),
        ("os.memory.max", mb(meminfo_mb("MemTotal:"))),
        ("os.memory.total", mb(rss_mb())),
        ("ensemble.version", env!("CARGO_PKG_VERSION").to_string()),
        ("process.id", std::process::id().to_string()),
        ("config.file", cfg.path.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Whether a setting's value is a secret that no answer may show.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "superdigest", "secret", "passwd"]
        .iter()
        .any(|s| k.contains(s))
}

/// The admin `system_properties` command: ZooKeeper lists the JVM's system properties, which
/// on a ZooKeeper server hold its `-D` flags and the zoo.cfg keys it does not read itself
/// (as `zookeeper.<key>`). Here: the same two (every zoo.cfg key, as this build reads them
/// all), sorted, secrets masked.
pub fn system_properties(cfg: &NodeConfig) -> Vec<(String, String)> {
    let mut props = std::collections::BTreeMap::new();
    for (k, v) in &cfg.entries {
        let k = if k.starts_with("zookeeper.") || k.starts_with("jute.") {
            k.clone()
        } else {
            format!("zookeeper.{k}")
        };
        props.insert(k, v.clone());
    }
    props.insert("file.separator".into(), "/".into());
    props.insert("line.separator".into(), "\n".into());
    props.insert("path.separator".into(), ":".into());
    props.insert("file.encoding".into(), "UTF-8".into());
    props.insert("os.name".into(), std::env::consts::OS.into());
    props.insert("os.arch".into(), std::env::consts::ARCH.into());
    props.insert(
        "user.name".into(),
        std::env::var("USER").unwrap_or_default(),
    );
    props.insert(
        "user.home".into(),
        std::env::var("HOME").unwrap_or_default(),
    );
    props
        .into_iter()
        .map(|(k, v)| {
            let v = if is_secret(&k) { "******".into() } else { v };
            (k, v)
        })
        .collect()
}
