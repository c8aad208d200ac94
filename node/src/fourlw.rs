//! Four-letter words on the client port (ZooKeeper's `FourLetterCommands`): recognised from
//! the first four bytes of a connection, answered in ZooKeeper 3.8's text shapes, then the
//! connection is closed.

use crate::config::kind_name;
use crate::metrics::stats::mode;
pub use crate::metrics::stats::{ConnInfo, ServerStats, View as Ctx};
use ensemble_core::LearnerType;
use std::fmt::Write as _;

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

/// The answer to `word` (already checked against the whitelist).
pub fn render(word: &str, ctx: &Ctx<'_>) -> String {
    // A read-only server is a running ZooKeeperServer too: it answers srvr, stat, cons, ...
    let serving = ctx.server.is_serving() || ctx.server.is_read_only();
    let needs_serving = !matches!(word, "ruok" | "envi" | "isro" | "gtmk" | "stmk");
    if needs_serving && !serving {
        return NOT_SERVING.to_string();
    }
    match word {
        "ruok" => "imok".into(),
        "isro" => {
            if ctx.server.is_read_only() {
                "ro".into()
            } else if serving {
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
        "gtmk" => format!("{}\n", crate::admin::commands::trace_mask()),
        // The mask after the word is not read: the mask is reported unchanged.
        "stmk" => format!("{}\n", crate::admin::commands::trace_mask()),
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

fn mntr(ctx: &Ctx<'_>) -> String {
    use crate::metrics::monitor;
    monitor::mntr_text(&monitor::gather(ctx))
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
    if core.foreign_leader {
        // zk-observe: the configuration in force is the ZooKeeper ensemble's, as its last
        // reconfig made it (the core reloads it), with its version
        s.push_str(&ctx.server.membership().to_text());
        return s;
    }
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
    let mut s = String::from("Environment:\n");
    for (k, v) in crate::metrics::stats::environment(ctx.cfg) {
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
