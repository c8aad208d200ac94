//! ZooKeeper 3.8's AdminServer commands (`Commands.java`): names, aliases, and the JSON each
//! answers with — the same keys and value types, with this server's values. They run on the
//! core thread (the only one that sees the `Server`), from the same [`View`] the four-letter
//! words and the metrics read.

use super::json::Json;
use crate::metrics::monitor::{self, Value};
use crate::metrics::server_metrics;
use crate::metrics::stats::{ConnInfo, View, mode};
use ensemble_core::{LearnerType, ServerState};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

/// (primary name, aliases, needs a serving server), as `Commands.java` registers them.
pub const COMMANDS: &[(&str, &[&str], bool)] = &[
    ("connection_stat_reset", &["crst"], true),
    ("configuration", &["conf", "config"], true),
    ("connections", &["cons"], true),
    ("hash", &[], true),
    ("dirs", &[], true),
    ("dump", &[], true),
    ("environment", &["env", "envi"], false),
    ("get_trace_mask", &["gtmk"], false),
    ("initial_configuration", &["icfg"], true),
    ("is_read_only", &["isro"], true),
    ("last_snapshot", &["lsnp"], true),
    ("leader", &["lead"], true),
    ("monitor", &["mntr"], false),
    ("observer_connection_stat_reset", &["orst"], true),
    ("ruok", &[], true),
    ("set_trace_mask", &["stmk"], false),
    ("server_stats", &["srvr"], true),
    ("stats", &["stat"], true),
    ("stat_reset", &["srst"], true),
    ("observers", &["obsr"], true),
    ("system_properties", &["sysp"], false),
    ("voting_view", &[], true),
    ("watches", &["wchc"], true),
    ("watches_by_path", &["wchp"], true),
    ("watch_summary", &["wchs"], true),
    ("zabstate", &[], false),
    // ZooKeeper 3.9's, behind authentication (backup.rs).
    ("snapshot", &["snap"], true),
    ("restore", &["rest"], true),
];

pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// The primary name of a command, by any of its names.
pub fn primary(name: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .find(|(p, aliases, _)| *p == name || aliases.contains(&name))
        .map(|(p, _, _)| *p)
}

fn needs_server(primary: &str) -> bool {
    COMMANDS.iter().any(|(p, _, s)| *p == primary && *s)
}

/// ZooKeeper's answer to a name it does not know (status 200, the error in the JSON).
pub fn unknown(name: &str) -> Json {
    response(name, Some(format!("Unknown command: {name}")))
}

pub fn response(command: &str, error: Option<String>) -> Json {
    let mut r = Json::object();
    r.put("command", command);
    r.put("error", error);
    r
}

/// ZooTrace's mask: which kinds of request ZooKeeper traces. Its default (306) until
/// `set_trace_mask`/`stmk` changes it; Ensemble's log level is `RUST_LOG`'s, the mask is kept
/// and reported.
static TRACE_MASK: AtomicI64 = AtomicI64::new(306);

pub fn trace_mask() -> i64 {
    TRACE_MASK.load(Ordering::Relaxed)
}

pub fn set_trace_mask(mask: i64) {
    TRACE_MASK.store(mask, Ordering::Relaxed);
}

/// Run `primary` (a name [`primary`] returned); the resets were done by the caller, which owns
/// the counters.
pub fn run(primary: &str, params: &BTreeMap<String, String>, view: &View<'_>) -> Json {
    if needs_server(primary) && !view.server.is_serving() {
        return response(primary, Some(NOT_SERVING.into()));
    }
    let mut r = Json::object();
    match primary {
        "configuration" => configuration(view, &mut r),
        "connections" => {
            r.put("connections", connections(view, false));
            r.put("secure_connections", Json::Array(vec![]));
        }
        "hash" => {
            let t = view.server.tree();
            let mut d = Json::object();
            d.put("zxid", t.last_zxid().as_i64());
            d.put("digest", t.digest() as i64);
            r.put("digests", Json::Array(vec![d]));
        }
        "dirs" => {
            r.put(
                "datadir_size",
                crate::storage::dir_size(&view.cfg.snap_dir()),
            );
            r.put("logdir_size", crate::storage::dir_size(&view.cfg.log_dir()));
        }
        "dump" => dump(view, &mut r),
        "environment" => {
            for (k, v) in crate::metrics::stats::environment(view.cfg) {
                r.put(&k, v);
            }
        }
        "get_trace_mask" => r.put("tracemask", trace_mask()),
        "initial_configuration" => {
            // Set by ZooKeeper only for a dynamic configuration, which this build refuses.
            r.put("initial_configuration", Json::Null)
        }
        "is_read_only" => r.put("read_only", view.server.is_read_only()),
        "last_snapshot" => last_snapshot(view, &mut r),
        "leader" => leader(view, &mut r),
        "monitor" => {
            for (k, v) in monitor::flat(&monitor::gather(view)) {
                r.put(&k, value(v));
            }
        }
        "observers" => {
            // The leader's synced observers (ZooKeeper's Leader.getObservingLearnersInfo);
            // a follower serves no observers here (no observerMasterPort), so it answers
            // none, as ZooKeeper's follower without an observer master does.
            let observers: Vec<Json> = view
                .server
                .learner_handlers()
                .iter()
                .filter(|l| l.observer && l.synced)
                .map(|l| observer(view, l))
                .collect();
            r.put("synced_observers", observers.len());
            r.put("observers", Json::Array(observers));
        }
        "set_trace_mask" => match params.get("traceMask") {
            None => r.put("error", "setTraceMask requires long traceMask argument"),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(m) => {
                    set_trace_mask(m);
                    r.put("tracemask", m);
                }
                Err(_) => r.put(
                    "error",
                    format!("setTraceMask requires long traceMask argument, got {v}"),
                ),
            },
        },
        "server_stats" => server_stats(view, &mut r),
        "stats" => {
            server_stats(view, &mut r);
            r.put("connections", connections(view, true));
            r.put("secure_connections", Json::Array(vec![]));
        }
        "system_properties" => {
            for (k, v) in crate::metrics::stats::system_properties(view.cfg) {
                r.put(&k, v);
            }
        }
        "voting_view" => voting_view(view, &mut r),
        "watches" => {
            let mut m = Json::object();
            for (conn, paths) in view.server.watches().by_conn() {
                let sid = view.server.connection_session(conn).map_or(0, |(s, _)| s);
                m.put(&sid.to_string(), paths.to_vec());
            }
            r.put("session_id_to_watched_paths", m);
        }
        "watches_by_path" => {
            let mut m = Json::object();
            for (path, conns) in view.server.watches().by_path() {
                let sids: Vec<i64> = conns
                    .iter()
                    .map(|c| view.server.connection_session(*c).map_or(0, |(s, _)| s))
                    .collect();
                m.put(&path, sids);
            }
            r.put("path_to_session_ids", m);
        }
        "watch_summary" => {
            let w = view.server.watches();
            r.put("num_connections", w.by_conn().len());
            r.put("num_paths", w.path_count());
            r.put("num_total_watches", w.watch_count());
        }
        "zabstate" => zabstate(view, &mut r),
        // Resets (done by the caller) and ruok answer with the command alone.
        _ => {}
    }
    let error = r.get("error").cloned().unwrap_or(Json::Null);
    r.put("command", primary);
    r.put("error", error);
    r
}

fn value(v: Value) -> Json {
    match v {
        Value::Text(t) => Json::Str(t),
        Value::Int(i) => Json::Int(i),
        Value::Float(f) => Json::Float(f),
        Value::Summary(_) | Value::Histogram(_) => unreachable!("flattened"),
    }
}

fn configuration(view: &View<'_>, r: &mut Json) {
    let c = view.cfg;
    let core = view.server.config();
    r.put("client_port", c.client_port as i64);
    r.put("data_dir", c.snap_dir().display().to_string());
    r.put("data_log_dir", c.log_dir().display().to_string());
    r.put("tick_time", core.tick_time_ms as i64);
    r.put("max_client_cnxns", c.max_client_cnxns as i64);
    r.put("min_session_timeout", core.min_session_timeout_ms as i64);
    r.put("max_session_timeout", core.max_session_timeout_ms as i64);
    r.put("server_id", core.my_id as i64);
    r.put("client_port_listen_backlog", -1i64);
}

fn address(a: std::net::SocketAddr) -> String {
    match a.ip().to_canonical() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", a.port()),
        ip => format!("{ip}:{}", a.port()),
    }
}

/// One observer as ZooKeeper's LearnerHandler.getLearnerHandlerInfo gives it: its socket (Java's
/// `InetSocketAddress.toString`, so with a leading `/`), id, when it connected (epoch ms, as
/// Jackson writes a `Date`), our queue to it, what went each way and the last zxid sent (-1
/// before any). `queued_packets` counts the write batches our sender holds for it (each one
/// or more packets, written in one system call), `queued_packets_size` their bytes.
fn observer(view: &View<'_>, l: &ensemble_core::LearnerInfo) -> Json {
    let link = view.peer_links.get(&l.sid).copied().unwrap_or_default();
    let mut m = Json::object();
    m.put(
        "remote_socket_address",
        link.addr
            .map_or_else(|| "<null>".to_string(), |a| format!("/{}", address(a))),
    );
    m.put("sid", l.sid as i64);
    m.put("established", l.established as i64);
    m.put("queued_packets", link.queued_batches);
    m.put("queued_packets_size", link.queued_bytes);
    m.put("packets_received", l.traffic.packets_received as i64);
    m.put("packets_sent", l.traffic.packets_sent as i64);
    m.put("requests", l.traffic.requests as i64);
    m.put("last_zxid", l.traffic.last_zxid.map_or(-1, |z| z.as_i64()));
    m
}

fn connection(c: &ConnInfo, brief: bool) -> Json {
    let mut m = Json::object();
    m.put("remote_socket_address", c.addr.map(address));
    m.put("interest_ops", if c.session == 0 { 0i64 } else { 1 });
    m.put("outstanding_requests", c.queued);
    m.put("packets_received", c.recved);
    m.put("packets_sent", c.sent);
    if !brief {
        m.put("session_id", c.session);
        m.put("last_operation", c.last_op);
        m.put("established", c.established);
        m.put("session_timeout", c.timeout);
        m.put("last_cxid", c.last_cxid);
        m.put("last_zxid", c.last_zxid);
        m.put("last_response_time", c.last_resp);
        m.put("last_latency", c.lat_last);
        m.put("min_latency", c.lat_min);
        m.put(
            "avg_latency",
            c.lat_sum.checked_div(c.lat_count).unwrap_or(0),
        );
        m.put("max_latency", c.lat_max);
    }
    m
}

fn connections(view: &View<'_>, brief: bool) -> Json {
    Json::Array(view.conns.iter().map(|c| connection(c, brief)).collect())
}

fn dump(view: &View<'_>, r: &mut Json) {
    let mut expiry: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for (deadline, sid) in view.server.session_deadlines() {
        expiry.entry(deadline).or_default().push(sid);
    }
    let mut e = Json::object();
    for (t, ids) in expiry {
        e.put(&t.to_string(), ids);
    }
    r.put("expiry_time_to_session_ids", e);
    let tree = view.server.tree();
    let mut eph = Json::object();
    for id in tree.sessions().keys() {
        let paths = tree.session_ephemerals(*id);
        if !paths.is_empty() {
            eph.put(&id.to_string(), paths);
        }
    }
    r.put("session_id_to_ephemeral_paths", eph);
}

fn last_snapshot(view: &View<'_>, r: &mut Json) {
    let newest = crate::storage::snapshot::list_snapshots(&view.cfg.snap_dir())
        .ok()
        .and_then(|l| l.into_iter().max_by_key(|(z, _)| *z));
    match newest {
        Some((z, path)) => {
            let secs = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(-1, |d| d.as_secs() as i64);
            r.put("zxid", format!("{:x}", z.0));
            r.put("timestamp", secs);
        }
        None => {
            r.put("zxid", format!("{:x}", -1i64));
            r.put("timestamp", -1i64);
        }
    }
}

fn leader(view: &View<'_>, r: &mut Json) {
    if view.cfg.standalone {
        r.put("error", "server is not initialized");
        return;
    }
    let st = view.server.status();
    r.put("is_leader", view.server.state() == ServerState::Leading);
    r.put("leader_id", st.leader.map_or(-1, |l| l as i64));
    let ip = st
        .leader
        .and_then(|l| view.cfg.servers.get(&l))
        .map(|s| s.host.clone())
        .unwrap_or_default();
    r.put("leader_ip", ip);
}

fn buffer_stats(last: Option<usize>, min: Option<usize>, max: Option<usize>) -> Json {
    let f = |v: Option<usize>| v.map_or(-1, |x| x as i64);
    let mut m = Json::object();
    m.put("last_buffer_size", f(last));
    m.put("min_buffer_size", f(min));
    m.put("max_buffer_size", f(max));
    m
}

fn server_stats(view: &View<'_>, r: &mut Json) {
    let s = view.stats;
    let st = view.server.status();
    let fsync = server_metrics().own.fsync.view();
    // ZooKeeper counts fsyncs over fsync.warningthresholdms (1 s by default).
    let under_1s = fsync
        .buckets
        .iter()
        .find(|(le, _)| *le >= 1.0)
        .map_or(fsync.count, |(_, n)| *n);
    let client = buffer_stats(s.last_resp, s.min_resp, s.max_resp);
    let mut ss = Json::object();
    ss.put("packets_sent", s.sent);
    ss.put("packets_received", s.received);
    ss.put("fsync_threshold_exceed_count", fsync.count - under_1s);
    ss.put("client_response_stats", client.clone());
    ss.put("provider_null", false);
    ss.put("server_state", mode(view));
    ss.put("outstanding_requests", st.outstanding_requests);
    ss.put("min_latency", s.lat_min);
    ss.put(
        "avg_latency",
        if s.lat_count == 0 {
            0.0
        } else {
            s.lat_sum as f64 / s.lat_count as f64
        },
    );
    ss.put("max_latency", s.lat_max);
    ss.put(
        "data_dir_size",
        crate::storage::dir_size(&view.cfg.snap_dir()),
    );
    ss.put(
        "log_dir_size",
        crate::storage::dir_size(&view.cfg.log_dir()),
    );
    ss.put("last_processed_zxid", st.last_applied.as_i64());
    ss.put("num_alive_client_connections", view.conns.len());
    ss.put("uptime", view.uptime_ms);
    ss.put("auth_failed_count", 0i64);
    ss.put("non_mtlsremote_conn_count", 0i64);
    ss.put("non_mtlslocal_conn_count", 0i64);
    r.put("version", crate::fourlw::version_string());
    r.put("read_only", view.server.is_read_only());
    r.put("server_stats", ss);
    r.put("client_response", client);
    if mode(view) == "leader" {
        r.put(
            "proposal_stats",
            buffer_stats(s.last_proposal, s.min_proposal, s.max_proposal),
        );
    }
    r.put("node_count", st.node_count);
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn voting_view(view: &View<'_>, r: &mut Json) {
    let mut cfg = Json::object();
    if !view.cfg.standalone {
        for s in view.cfg.servers.values() {
            if s.kind != LearnerType::Participant {
                continue;
            }
            let mut v = Json::object();
            v.put("server_addresses", vec![host_port(&s.host, s.quorum_port)]);
            v.put(
                "election_addresses",
                vec![host_port(&s.host, s.election_port)],
            );
            let client = match &s.client {
                Some((a, p)) => host_port(a.as_deref().unwrap_or("0.0.0.0"), *p),
                None if s.id == view.cfg.core.my_id => host_port(
                    view.cfg.client_address.as_deref().unwrap_or("0.0.0.0"),
                    view.cfg.client_port,
                ),
                None => String::new(),
            };
            v.put("client_address", client);
            v.put("learner_type", "participant");
            cfg.put(&s.id.to_string(), v);
        }
    }
    r.put("current_config", cfg);
}

/// ZooKeeper's `MultipleAddresses` as Jackson shows it, for one address.
fn addresses(host: &str, port: u16) -> Json {
    let a = host_port(host, port);
    let mut m = Json::object();
    m.put("empty", false);
    m.put("all_addresses", vec![a.clone()]);
    m.put("all_reachable_addresses", vec![a.clone()]);
    m.put("one", a.clone());
    m.put("reachable_address", a.clone());
    m.put("wildcard_addresses", vec![host_port("0.0.0.0", port)]);
    m.put("all_ports", vec![port as i64]);
    m.put("all_host_strings", vec![host.to_string()]);
    m.put("all_reachable_addresses_or_all", vec![a.clone()]);
    m.put("reachable_or_one", a);
    m
}

fn zabstate(view: &View<'_>, r: &mut Json) {
    let Some(me) = view.cfg.me().filter(|_| !view.cfg.standalone) else {
        r.put("voting", false);
        r.put("zabstate", "");
        return;
    };
    let z = view.server.tree().last_zxid();
    r.put("myid", me.id as i64);
    r.put("is_leader", view.server.state() == ServerState::Leading);
    r.put("quorum_address", addresses(&me.host, me.quorum_port));
    r.put("election_address", addresses(&me.host, me.election_port));
    r.put(
        "client_address",
        host_port(
            view.cfg.client_address.as_deref().unwrap_or("0.0.0.0"),
            view.cfg.client_port,
        ),
    );
    r.put("voting", me.kind == LearnerType::Participant);
    r.put("last_zxid", format!("0x{:x}", z.0));
    r.put("zab_epoch", (z.0 >> 32) as i64);
    r.put("zab_counter", (z.0 & 0xffff_ffff) as i64);
    let phase = match view.server.state() {
        ServerState::Looking => "election",
        _ if view.server.is_serving() => "broadcast",
        _ => "synchronization",
    };
    r.put("zabstate", phase);
}
