//! The one list of what the server reports: gathered on the core thread from a [`View`] and the
//! [`ServerMetrics`](super::ServerMetrics) registry, rendered by `mntr` (text), the admin
//! `monitor` command (JSON) and `/metrics` (Prometheus).

use super::stats::{View, fd_counts, java_double, mode};
use super::{HistogramView, SummaryView, server_metrics};
use std::fmt::Write as _;

/// What a sample is, for Prometheus: ZooKeeper exports its gauges as gauges, its `ServerMetrics`
/// counters as counters, its summaries as summaries with quantiles; text is only for `mntr`
/// and `monitor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Gauge,
    Counter,
    /// ZooKeeper's ADVANCED detail level: p50/p95/p99/p999 (0.5/0.9/0.99 in Prometheus).
    Summary {
        advanced: bool,
    },
    Histogram,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    Int(i64),
    Float(f64),
    Summary(SummaryView),
    Histogram(HistogramView),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    /// A summary set's key (ZooKeeper's label `key`, e.g. a learner's id).
    pub key: Option<String>,
    pub kind: Kind,
    pub value: Value,
    pub help: &'static str,
}

fn sample(name: &str, kind: Kind, value: Value) -> Sample {
    Sample {
        name: name.to_string(),
        key: None,
        kind,
        value,
        help: "",
    }
}

fn gauge(name: &str, v: i64) -> Sample {
    sample(name, Kind::Gauge, Value::Int(v))
}

/// ZooKeeper's `peer_state`: the role and the phase of ZAB it is in.
fn peer_state(view: &View<'_>) -> String {
    let phase = if view.server.is_serving() {
        "broadcast"
    } else {
        "synchronization"
    };
    match mode(view) {
        "leader" | "standalone" => format!("leading - {phase}"),
        "follower" => format!("following - {phase}"),
        "observer" => format!("observing - {phase}"),
        _ => "looking".to_string(),
    }
}

/// Everything, in `mntr`'s order: the server's gauges, then the registry's counters and
/// summaries (the summary sets last), then Ensemble's own histograms.
pub fn gather(view: &View<'_>) -> Vec<Sample> {
    let st = view.server.status();
    let stats = view.stats;
    let m = mode(view);
    let leader = m == "leader";
    let size = |v: Option<usize>| v.map_or(-1, |x| x as i64);
    let (open_fds, max_fds) = fd_counts();
    let mut out = vec![
        sample(
            "version",
            Kind::Text,
            Value::Text(crate::fourlw::version_string()),
        ),
        sample("server_state", Kind::Text, Value::Text(m.to_string())),
        sample("peer_state", Kind::Text, Value::Text(peer_state(view))),
        gauge("ephemerals_count", st.ephemerals_count as i64),
        gauge("num_alive_connections", view.conns.len() as i64),
        sample(
            "avg_latency",
            Kind::Gauge,
            Value::Float(if stats.lat_count == 0 {
                0.0
            } else {
                stats.lat_sum as f64 / stats.lat_count as f64
            }),
        ),
        gauge("outstanding_requests", st.outstanding_requests as i64),
        gauge("znode_count", st.node_count as i64),
        gauge("global_sessions", st.sessions as i64),
        // No TLS listener: every connection is a non-mTLS one, and none is counted apart.
        gauge("non_mtls_remote_conn_count", 0),
        gauge("last_client_response_size", size(stats.last_resp)),
        gauge("packets_sent", stats.sent as i64),
        gauge("packets_received", stats.received as i64),
        gauge("max_client_response_size", size(stats.max_resp)),
        sample(
            "connection_drop_probability",
            Kind::Gauge,
            Value::Float(0.0),
        ),
        gauge("watch_count", st.watch_count as i64),
        gauge("auth_failed_count", 0),
        gauge("min_latency", stats.lat_min as i64),
        gauge("max_file_descriptor_count", max_fds),
        gauge("approximate_data_size", st.approximate_data_size as i64),
        gauge("open_file_descriptor_count", open_fds),
        gauge("local_sessions", 0),
        gauge("uptime", view.uptime_ms as i64),
        gauge("max_latency", stats.lat_max as i64),
        gauge("outstanding_tls_handshake", 0),
        gauge("min_client_response_size", size(stats.min_resp)),
        gauge("non_mtls_local_conn_count", 0),
        gauge("quorum_size", view.server.config().voters().count() as i64),
        gauge("requests_not_forwarded_to_commit_processor", 0),
    ];
    if leader {
        out.extend([
            gauge("learners", st.learners as i64),
            gauge("synced_followers", st.synced_followers as i64),
            gauge("synced_non_voting_followers", 0),
            gauge("synced_observers", st.synced_observers as i64),
            gauge("pending_syncs", 0),
            gauge("leader_uptime", view.state_ms as i64),
            gauge("last_proposal_size", size(stats.last_proposal)),
            gauge("min_proposal_size", size(stats.min_proposal)),
            gauge("max_proposal_size", size(stats.max_proposal)),
        ]);
    }
    // Ensemble's additions, kept where scripts of this project read them.
    out.extend([
        gauge("current_epoch", st.current_epoch as i64),
        gauge("accepted_epoch", st.accepted_epoch as i64),
        gauge("election_epoch", st.election_epoch as i64),
        sample(
            "last_logged_zxid",
            Kind::Text,
            Value::Text(format!("0x{:x}", st.last_logged.0)),
        ),
        sample(
            "last_processed_zxid",
            Kind::Text,
            Value::Text(format!("0x{:x}", st.last_applied.0)),
        ),
    ]);
    if leader {
        out.push(gauge("pending_proposals", st.pending_proposals as i64));
    }
    let reg = server_metrics();
    for (name, v) in reg.counters() {
        // These the runtime counts per server (ServerStats), where 4lw have always read them.
        let v = match name {
            "bytes_received_count" => stats.bytes_received,
            "connection_rejected" => stats.connections_rejected,
            "connection_drop_count" => stats.connections_dropped,
            "proposal_count" => stats.proposals,
            _ => v,
        };
        out.push(sample(name, Kind::Counter, Value::Int(v as i64)));
    }
    for (name, advanced, v) in reg.summaries() {
        out.push(sample(name, Kind::Summary { advanced }, Value::Summary(v)));
    }
    for (name, advanced, key, v) in reg.set_summaries() {
        let mut s = sample(name, Kind::Summary { advanced }, Value::Summary(v));
        s.key = Some(key);
        out.push(s);
    }
    let own = &reg.own;
    for (name, h, help) in [
        (
            "ensemble_fsync_seconds",
            &own.fsync,
            "each fsync of the txn log",
        ),
        (
            "ensemble_commit_seconds",
            &own.commit,
            "a write request's arrival to its reply",
        ),
        (
            "ensemble_sync_round_seconds",
            &own.sync_round,
            "joining a leader (or leading) until serving",
        ),
        (
            "ensemble_proposal_bytes",
            &own.proposal_bytes,
            "the size of each proposal",
        ),
        (
            "ensemble_snapshot_parts",
            &own.snapshot_parts,
            "the parts each snapshot was written in",
        ),
        (
            "ensemble_requests_in_process",
            &own.in_process,
            "the client requests in process each new one joins as it is handed to the core",
        ),
    ] {
        let mut s = sample(name, Kind::Histogram, Value::Histogram(h.view()));
        s.help = help;
        out.push(s);
    }
    out
}

/// The summary fields as `mntr` and `monitor` name them: `avg_NAME`, ..., and for an advanced
/// one `p50_NAME` ... `p999_NAME`; a set's key goes before the name (`avg_1_NAME`).
pub fn summary_fields(s: &Sample, v: &SummaryView) -> Vec<(String, Value)> {
    let name = match &s.key {
        Some(k) => format!("{k}_{}", s.name),
        None => s.name.clone(),
    };
    let mut out = vec![
        (format!("avg_{name}"), Value::Float(v.avg())),
        (format!("min_{name}"), Value::Int(v.min as i64)),
        (format!("max_{name}"), Value::Int(v.max as i64)),
        (format!("cnt_{name}"), Value::Int(v.count as i64)),
        (format!("sum_{name}"), Value::Int(v.sum as i64)),
    ];
    if s.kind == (Kind::Summary { advanced: true }) {
        for (label, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)] {
            out.push((format!("{label}_{name}"), Value::Int(v.quantile(q) as i64)));
        }
    }
    out
}

/// The flat (key, value) list `mntr` and `monitor` show: summaries spread into their fields;
/// Ensemble's histograms are for Prometheus only (their buckets do not fit one line each).
pub fn flat(samples: &[Sample]) -> Vec<(String, Value)> {
    let mut out = Vec::with_capacity(samples.len() * 2);
    for s in samples {
        match &s.value {
            Value::Summary(v) => out.extend(summary_fields(s, v)),
            Value::Histogram(_) => {}
            v => out.push((s.name.clone(), v.clone())),
        }
    }
    out
}

/// `mntr`: `zk_KEY<TAB>VALUE` lines.
pub fn mntr_text(samples: &[Sample]) -> String {
    let mut s = String::new();
    for (k, v) in flat(samples) {
        let v = match v {
            Value::Text(t) => t,
            Value::Int(i) => i.to_string(),
            Value::Float(f) => java_double(f),
            Value::Summary(_) | Value::Histogram(_) => unreachable!("flattened"),
        };
        let _ = writeln!(s, "zk_{k}\t{v}");
    }
    s
}
