//! Four-letter words on the client port (ZooKeeper's `FourLetterCommands`): recognised from
//! the first four bytes of a connection, answered in ZooKeeper 3.8's text shapes, then the
//! connection is closed.

use crate::config::{NodeConfig, kind_name};
use ensemble_core::{LearnerType, Server, ServerState};
use std::fmt::Write as _;
use std::net::SocketAddr;

/// Every word ZooKeeper 3.8 recognises from the first four bytes of a connection.
pub const KNOWN: &[&str] = &[
    "conf", "cons", "crst", "dump", "envi", "gtmk", "ruok", "stmk", "srst", "srvr", "stat", "wchc",
    "wchp", "wchs", "mntr", "isro", "hash", "dirs",
];

/// What `zookeeper.version` says: a ZooKeeper-shaped version so tools that parse it (kazoo's
/// `server_version()`) see the protocol level we speak, and when this binary was built
/// (node/build.rs; `SOURCE_DATE_EPOCH` when set).
pub fn version_string() -> String {
    format!(
        "3.8.4-ensemble-{}, built on {}",
        env!("CARGO_PKG_VERSION"),
        env!("ENSEMBLE_BUILD_DATE")
    )
}

pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

pub fn is_known(word: &str) -> bool {
    KNOWN.contains(&word)
}

/// The word the first four bytes of a connection spell, if they spell one.
pub fn word_of(head: &[u8; 4]) -> Option<&'static str> {
    KNOWN.iter().copied().find(|w| w.as_bytes() == head)
}

pub fn not_whitelisted(word: &str) -> String {
    format!("{word} is not executed because it is not in the whitelist.\n")
}

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
        let keep = (
            self.proposals,
            self.last_proposal,
            self.min_proposal,
            self.max_proposal,
        );
        *self = ServerStats::default();
        (
            self.proposals,
            self.last_proposal,
            self.min_proposal,
            self.max_proposal,
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

    fn line(&self, brief: bool, out: &mut String) {
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
pub struct Ctx<'a> {
    pub server: &'a Server,
    pub cfg: &'a NodeConfig,
    pub stats: &'a ServerStats,
    /// Client connections, the asking one included (ZooKeeper lists it too).
    pub conns: Vec<ConnInfo>,
    pub uptime_ms: u64,
    /// Since this server's state last changed.
    pub state_ms: u64,
}

/// Java's `Double.toString` for the values latency takes (4 decimals at most).
fn java_double(v: f64) -> String {
    let r = (v * 10000.0).round() / 10000.0;
    if r.fract() == 0.0 {
        format!("{r:.1}")
    } else {
        let s = format!("{r:.4}");
        s.trim_end_matches('0').to_string()
    }
}

fn mode(ctx: &Ctx<'_>) -> &'static str {
    match ctx.server.state() {
        ServerState::Leading if ctx.cfg.standalone || ctx.server.config().is_standalone() => {
            "standalone"
        }
        ServerState::Leading => "leader",
        ServerState::Following => "follower",
        ServerState::Observing => "observer",
        ServerState::Looking => "looking",
    }
}

/// The answer to `word` (already checked against the whitelist).
pub fn render(word: &str, ctx: &Ctx<'_>) -> String {
    let serving = ctx.server.is_serving();
    let needs_serving = !matches!(word, "ruok" | "envi" | "isro" | "gtmk" | "stmk");
    if needs_serving && !serving {
        return NOT_SERVING.to_string();
    }
    match word {
        "ruok" => "imok".into(),
        "isro" => {
            if serving {
                "rw".into()
            } else {
                "null".into()
            }
        }
        "srvr" => srvr(ctx, false),
        "stat" => srvr(ctx, true),
        "cons" => {
            let mut s = String::new();
            for c in &ctx.conns {
                c.line(false, &mut s);
            }
            s.push('\n');
            s
        }
        "mntr" => mntr(ctx),
        "conf" => conf(ctx),
        "envi" => envi(ctx),
        "dirs" => format!(
            "datadir_size: {}\nlogdir_size: {}\n",
            crate::storage::dir_size(&ctx.cfg.snap_dir()),
            crate::storage::dir_size(&ctx.cfg.log_dir())
        ),
        "wchs" => {
            let w = ctx.server.watches();
            format!(
                "{} connections watching {} paths\nTotal watches:{}\n",
                w.by_conn().len(),
                w.path_count(),
                w.watch_count()
            )
        }
        "wchc" => {
            let mut s = String::new();
            for (conn, paths) in ctx.server.watches().by_conn() {
                let sid = ctx
                    .server
                    .connection_session(conn)
                    .map(|(s, _)| s)
                    .unwrap_or(0);
                let _ = writeln!(s, "0x{sid:x}");
                for p in paths {
                    let _ = writeln!(s, "\t{p}");
                }
            }
            s.push('\n');
            s
        }
        "wchp" => {
            let mut s = String::new();
            for (path, conns) in ctx.server.watches().by_path() {
                let _ = writeln!(s, "{path}");
                for c in conns {
                    let sid = ctx
                        .server
                        .connection_session(c)
                        .map(|(s, _)| s)
                        .unwrap_or(0);
                    let _ = writeln!(s, "\t0x{sid:x}");
                }
            }
            s.push('\n');
            s
        }
        "dump" => dump(ctx),
        "hash" => format!(
            "{}: {}\n",
            ctx.server.tree().last_zxid(),
            ctx.server.tree().digest()
        ),
        "gtmk" => "0\n".into(),
        "stmk" => "0\n".into(),
        "crst" => "Connection stats reset.\n".into(),
        "srst" => "Server stats reset.\n".into(),
        _ => not_whitelisted(word),
    }
}

fn srvr(ctx: &Ctx<'_>, with_clients: bool) -> String {
    let st = ctx.server.status();
    let mut s = String::new();
    let _ = writeln!(s, "Zookeeper version: {}", version_string());
    if with_clients {
        s.push_str("Clients:\n");
        for c in &ctx.conns {
            c.line(true, &mut s);
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "Latency min/avg/max: {}/{}/{}",
        ctx.stats.lat_min,
        ctx.stats.avg_latency(),
        ctx.stats.lat_max
    );
    let _ = writeln!(s, "Received: {}", ctx.stats.received);
    let _ = writeln!(s, "Sent: {}", ctx.stats.sent);
    let _ = writeln!(s, "Connections: {}", ctx.conns.len());
    let _ = writeln!(s, "Outstanding: {}", st.outstanding_requests);
    let _ = writeln!(s, "Zxid: 0x{:x}", st.last_applied.0);
    let _ = writeln!(s, "Mode: {}", mode(ctx));
    let _ = writeln!(s, "Node count: {}", st.node_count);
    if mode(ctx) == "leader" {
        let f = |v: Option<usize>| v.map_or(-1, |x| x as i64);
        let _ = writeln!(
            s,
            "Proposal sizes last/min/max: {}/{}/{}",
            f(ctx.stats.last_proposal),
            f(ctx.stats.min_proposal),
            f(ctx.stats.max_proposal)
        );
    }
    s
}

fn fd_counts() -> (i64, i64) {
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

fn mntr(ctx: &Ctx<'_>) -> String {
    let st = ctx.server.status();
    let m = mode(ctx);
    let peer_state = match m {
        "leader" => "leading - broadcast",
        "follower" => "following - broadcast",
        "observer" => "observing - broadcast",
        "standalone" => "leading - broadcast",
        _ => "looking",
    };
    let size = |v: Option<usize>| v.map_or(-1, |x| x as i64);
    let (open_fds, max_fds) = fd_counts();
    let mut kv: Vec<(&str, String)> = vec![
        ("zk_version", version_string()),
        ("zk_server_state", m.to_string()),
        ("zk_peer_state", peer_state.to_string()),
        ("zk_ephemerals_count", st.ephemerals_count.to_string()),
        ("zk_num_alive_connections", ctx.conns.len().to_string()),
        ("zk_avg_latency", ctx.stats.avg_latency()),
        (
            "zk_outstanding_requests",
            st.outstanding_requests.to_string(),
        ),
        ("zk_znode_count", st.node_count.to_string()),
        ("zk_global_sessions", st.sessions.to_string()),
        ("zk_non_mtls_remote_conn_count", "0".into()),
        (
            "zk_last_client_response_size",
            size(ctx.stats.last_resp).to_string(),
        ),
        ("zk_packets_sent", ctx.stats.sent.to_string()),
        ("zk_packets_received", ctx.stats.received.to_string()),
        (
            "zk_max_client_response_size",
            size(ctx.stats.max_resp).to_string(),
        ),
        ("zk_connection_drop_probability", "0.0".into()),
        ("zk_watch_count", st.watch_count.to_string()),
        ("zk_auth_failed_count", "0".into()),
        ("zk_min_latency", ctx.stats.lat_min.to_string()),
        ("zk_max_file_descriptor_count", max_fds.to_string()),
        (
            "zk_approximate_data_size",
            st.approximate_data_size.to_string(),
        ),
        ("zk_open_file_descriptor_count", open_fds.to_string()),
        ("zk_local_sessions", "0".into()),
        ("zk_uptime", ctx.uptime_ms.to_string()),
        ("zk_max_latency", ctx.stats.lat_max.to_string()),
        ("zk_outstanding_tls_handshake", "0".into()),
        (
            "zk_min_client_response_size",
            size(ctx.stats.min_resp).to_string(),
        ),
        ("zk_non_mtls_local_conn_count", "0".into()),
        (
            "zk_quorum_size",
            ctx.server.config().voters().count().to_string(),
        ),
        (
            "zk_connection_rejected",
            ctx.stats.connections_rejected.to_string(),
        ),
        (
            "zk_connection_drop_count",
            ctx.stats.connections_dropped.to_string(),
        ),
        (
            "zk_bytes_received_count",
            ctx.stats.bytes_received.to_string(),
        ),
        ("zk_current_epoch", st.current_epoch.to_string()),
        ("zk_accepted_epoch", st.accepted_epoch.to_string()),
        ("zk_election_epoch", st.election_epoch.to_string()),
        ("zk_last_logged_zxid", format!("0x{:x}", st.last_logged.0)),
        (
            "zk_last_processed_zxid",
            format!("0x{:x}", st.last_applied.0),
        ),
    ];
    if m == "leader" {
        kv.extend([
            ("zk_learners", st.learners.to_string()),
            ("zk_synced_followers", st.synced_followers.to_string()),
            ("zk_synced_non_voting_followers", "0".into()),
            ("zk_synced_observers", st.synced_observers.to_string()),
            ("zk_pending_syncs", "0".into()),
            ("zk_leader_uptime", ctx.state_ms.to_string()),
            ("zk_proposal_count", ctx.stats.proposals.to_string()),
            (
                "zk_last_proposal_size",
                size(ctx.stats.last_proposal).to_string(),
            ),
            (
                "zk_min_proposal_size",
                size(ctx.stats.min_proposal).to_string(),
            ),
            (
                "zk_max_proposal_size",
                size(ctx.stats.max_proposal).to_string(),
            ),
            ("zk_pending_proposals", st.pending_proposals.to_string()),
        ]);
    }
    let mut s = String::new();
    for (k, v) in kv {
        let _ = writeln!(s, "{k}\t{v}");
    }
    s
}

fn conf(ctx: &Ctx<'_>) -> String {
    let c = ctx.cfg;
    let core = ctx.server.config();
    let mut s = String::new();
    let _ = writeln!(s, "clientPort={}", c.client_port);
    let secure = c
        .tls
        .secure_client_port
        .as_ref()
        .map_or(-1, |(p, _)| i32::from(*p));
    let _ = writeln!(s, "secureClientPort={secure}");
    let _ = writeln!(s, "dataDir={}", c.snap_dir().display());
    let _ = writeln!(s, "dataDirSize={}", crate::storage::dir_size(&c.snap_dir()));
    let _ = writeln!(s, "dataLogDir={}", c.log_dir().display());
    let _ = writeln!(s, "dataLogSize={}", crate::storage::dir_size(&c.log_dir()));
    let _ = writeln!(s, "tickTime={}", core.tick_time_ms);
    let _ = writeln!(s, "maxClientCnxns={}", c.max_client_cnxns);
    let _ = writeln!(s, "minSessionTimeout={}", core.min_session_timeout_ms);
    let _ = writeln!(s, "maxSessionTimeout={}", core.max_session_timeout_ms);
    let _ = writeln!(s, "clientPortListenBacklog=-1");
    let _ = writeln!(s, "serverId={}", core.my_id);
    if c.standalone {
        return s;
    }
    let _ = writeln!(s, "initLimit={}", core.init_limit);
    let _ = writeln!(s, "syncLimit={}", core.sync_limit);
    let _ = writeln!(s, "electionAlg=3");
    if let Some(me) = c.me() {
        let _ = writeln!(s, "electionPort={}", me.election_port);
        let _ = writeln!(s, "quorumPort={}", me.quorum_port);
        let _ = writeln!(
            s,
            "peerType={}",
            if me.kind == LearnerType::Observer {
                1
            } else {
                0
            }
        );
    }
    s.push_str("membership: \n");
    for sv in c.servers.values() {
        let host = if sv.host.contains(':') {
            format!("[{}]", sv.host)
        } else {
            sv.host.clone()
        };
        let _ = write!(
            s,
            "server.{}={}:{}:{}:{}",
            sv.id,
            host,
            sv.quorum_port,
            sv.election_port,
            kind_name(sv.kind)
        );
        if let Some((addr, port)) = &sv.client {
            let _ = write!(s, ";{}:{}", addr.as_deref().unwrap_or("0.0.0.0"), port);
        }
        s.push('\n');
    }
    s.push_str("version=0");
    s
}

fn envi(ctx: &Ctx<'_>) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let osrel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut s = String::from("Environment:\n");
    let vars = [
        ("zookeeper.version", version_string()),
        ("host.name", host.trim().to_string()),
        ("ensemble.version", env!("CARGO_PKG_VERSION").to_string()),
        ("os.name", std::env::consts::OS.to_string()),
        ("os.arch", std::env::consts::ARCH.to_string()),
        ("os.version", osrel.trim().to_string()),
        ("user.name", std::env::var("USER").unwrap_or_default()),
        ("user.home", std::env::var("HOME").unwrap_or_default()),
        ("user.dir", cwd),
        ("process.id", std::process::id().to_string()),
        ("config.file", ctx.cfg.path.display().to_string()),
    ];
    for (k, v) in vars {
        let _ = writeln!(s, "{k}={v}");
    }
    s
}

fn dump(ctx: &Ctx<'_>) -> String {
    let tree = ctx.server.tree();
    let sessions = tree.sessions();
    let mut s = String::from("SessionTracker dump:\n");
    let _ = writeln!(s, "Global Sessions({}):", sessions.len());
    for (id, timeout) in sessions {
        let _ = writeln!(s, "0x{id:x}\t{timeout}ms");
    }
    s.push_str("ephemeral nodes dump:\n");
    let with: Vec<(i64, Vec<String>)> = sessions
        .keys()
        .map(|id| (*id, tree.session_ephemerals(*id)))
        .filter(|(_, e)| !e.is_empty())
        .collect();
    let _ = writeln!(s, "Sessions with Ephemerals ({}):", with.len());
    for (id, paths) in with {
        let _ = writeln!(s, "0x{id:x}:");
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s.push_str("Connections dump:\n");
    for c in &ctx.conns {
        if let Some(a) = c.addr {
            let _ = writeln!(
                s,
                "\tip: /{}:{} sessionId: 0x{:x}",
                a.ip().to_canonical(),
                a.port(),
                c.session
            );
        }
    }
    s
}
