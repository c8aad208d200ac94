//! What the server measures, in one place: the `mntr` four-letter word, the AdminServer's
//! `monitor` command and the Prometheus `/metrics` endpoint all render [`monitor::gather`]'s
//! samples, so the three always agree.
//!
//! Two sources feed it: the core thread's view of the server ([`stats::View`]: the data tree,
//! sessions, watches, connections, role) and [`ServerMetrics`], the process-wide counters,
//! summaries and histograms that the threads measuring something (the core loop, the txn log's
//! writer) add to, as ZooKeeper's `ServerMetrics` singleton is. Every name ZooKeeper 3.8 registers
//! is registered here ([`catalogue`]); those measuring a component Ensemble does not have (the
//! response cache, Netty's buffers, the JVM) are never added to and read
//! 0, as they do on a ZooKeeper server that never exercises them.

pub mod catalogue;
pub mod endpoint;
pub mod monitor;
pub mod prometheus;
pub mod stats;
pub mod summary;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
pub use summary::{Histogram, HistogramView, Summary, SummaryView};

/// Upper bounds of the latency histograms, in seconds.
pub const LATENCY_BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Upper bounds of the proposal size histogram, in bytes.
pub const SIZE_BOUNDS: &[f64] = &[
    64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
];
/// Upper bounds of the requests-in-process histogram.
pub const COUNT_BOUNDS: &[f64] = &[
    0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0,
];
/// Upper bounds of the snapshot parts histogram (parts of about a MiB per snapshot).
pub const PARTS_BOUNDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0, 4096.0];

/// Ensemble's own histograms, beyond ZooKeeper's names.
pub struct OwnHistograms {
    /// Each fsync of the txn log (seconds).
    pub fsync: Histogram,
    /// A write request's arrival to its reply: the commit as its client sees it (seconds).
    pub commit: Histogram,
    /// A learner's sync with a new leader: from joining it to serving (seconds).
    pub sync_round: Histogram,
    /// Each proposal the leader makes (bytes, serialized).
    pub proposal_bytes: Histogram,
    /// Each snapshot written: how many parts it was written in.
    pub snapshot_parts: Histogram,
    /// The client requests in process each new one joins as it is handed to the core (what
    /// `request_throttle_max_requests` bounds).
    pub in_process: Histogram,
}

/// The process-wide registry (ZooKeeper's `ServerMetrics`).
pub struct ServerMetrics {
    counters: Vec<AtomicU64>,
    summaries: Vec<Summary>,
    sets: Vec<Mutex<BTreeMap<String, Arc<Summary>>>>,
    /// Where readlatency and updatelatency are in `summaries`.
    hot: [usize; 2],
    pub own: OwnHistograms,
}

static METRICS: LazyLock<ServerMetrics> = LazyLock::new(|| ServerMetrics {
    counters: catalogue::COUNTERS
        .iter()
        .map(|_| AtomicU64::new(0))
        .collect(),
    summaries: catalogue::SUMMARIES
        .iter()
        .map(|_| Summary::default())
        .collect(),
    sets: catalogue::SUMMARY_SETS
        .iter()
        .map(|_| Mutex::new(BTreeMap::new()))
        .collect(),
    hot: ["readlatency", "updatelatency"]
        .map(|n| index(catalogue::SUMMARIES.iter().map(|s| s.0), n)),
    own: OwnHistograms {
        fsync: Histogram::new(LATENCY_BOUNDS),
        commit: Histogram::new(LATENCY_BOUNDS),
        sync_round: Histogram::new(LATENCY_BOUNDS),
        proposal_bytes: Histogram::new(SIZE_BOUNDS),
        snapshot_parts: Histogram::new(PARTS_BOUNDS),
        in_process: Histogram::new(COUNT_BOUNDS),
    },
});

/// The registry.
pub fn server_metrics() -> &'static ServerMetrics {
    &METRICS
}

fn index(names: impl Iterator<Item = &'static str>, name: &str) -> usize {
    let mut names = names;
    // A name outside the catalogue is a typo in our source, not input.
    names
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("{name} is not a ZooKeeper metric"))
}

impl ServerMetrics {
    pub fn add(&self, counter: &str, n: u64) {
        let i = index(catalogue::COUNTERS.iter().copied(), counter);
        self.counters[i].fetch_add(n, Ordering::Relaxed);
    }

    pub fn counter(&self, counter: &str) -> u64 {
        let i = index(catalogue::COUNTERS.iter().copied(), counter);
        self.counters[i].load(Ordering::Relaxed)
    }

    pub fn summary(&self, name: &str) -> &Summary {
        // The per-request ones without a search.
        match name {
            "readlatency" => &self.summaries[self.hot[0]],
            "updatelatency" => &self.summaries[self.hot[1]],
            _ => &self.summaries[index(catalogue::SUMMARIES.iter().map(|s| s.0), name)],
        }
    }

    /// Add to the summary of `key` in the set `set` (e.g. a learner's id).
    pub fn observe_in(&self, set: &str, key: &str, value: u64) {
        let i = index(catalogue::SUMMARY_SETS.iter().map(|s| s.0), set);
        let s = {
            let mut m = self.sets[i].lock().unwrap_or_else(|p| p.into_inner());
            m.entry(key.to_string()).or_default().clone()
        };
        s.observe(value);
    }

    pub(crate) fn counters(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        catalogue::COUNTERS
            .iter()
            .zip(&self.counters)
            .map(|(n, c)| (*n, c.load(Ordering::Relaxed)))
    }

    pub(crate) fn summaries(&self) -> impl Iterator<Item = (&'static str, bool, SummaryView)> + '_ {
        catalogue::SUMMARIES
            .iter()
            .zip(&self.summaries)
            .map(|((n, adv), s)| (*n, *adv, s.view()))
    }

    /// Every (set, advanced, key, view), keys in order.
    pub(crate) fn set_summaries(&self) -> Vec<(&'static str, bool, String, SummaryView)> {
        let mut out = Vec::new();
        for ((name, adv), set) in catalogue::SUMMARY_SETS.iter().zip(&self.sets) {
            let m = set.lock().unwrap_or_else(|p| p.into_inner());
            for (k, s) in m.iter() {
                out.push((*name, *adv, k.clone(), s.view()));
            }
        }
        out
    }

    /// `srst`/`stat_reset`: ZooKeeper's `ServerStats.reset` clears the latency and the
    /// request counts it keeps; the registry's totals are not reset (as with ZooKeeper's
    /// Prometheus provider: a counter only goes up).
    pub fn reset_latency(&self) {
        for n in ["readlatency", "updatelatency"] {
            self.summary(n).reset();
        }
    }
}
