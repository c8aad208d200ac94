//! Quotas, as ZooKeeper keeps them (`Quotas`, `StatsTrack`, and the quota upkeep of
//! `DataTree` and `PrepRequestProcessor.checkQuota`).
//!
//! A quota on `/a` is two ordinary znodes a client writes (zkCli's `setquota`):
//! `/zookeeper/quota/a/zookeeper_limits` (the limits, `count=..,bytes=..` and since 3.7
//! `;byteHardLimit=..;countHardLimit=..`) and `/zookeeper/quota/a/zookeeper_stats` (what the
//! subtree holds). The tree keeps the stats current as it applies txns: a znode created,
//! deleted or given new data under `/a` moves them, a stats node created gets a recount of
//! the subtree. Under `zookeeper.enforceQuota` (an [`TxnOp::EnforcedWrite`]) a create or
//! setData that would take the subtree past a hard limit fails with QuotaExceeded; a soft
//! limit passed (or a hard one not enforced) is logged as ZooKeeper logs it.
//!
//! [`TxnOp::EnforcedWrite`]: crate::txn::TxnOp::EnforcedWrite

use super::{Batch, Ctx, DataTree, Undo};
use crate::path;
use crate::plant::{self, Plant};
use ensemble_proto::proto::KeeperError;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;

/// `Quotas.limitNode`.
pub const LIMIT_NODE: &str = "zookeeper_limits";
/// `Quotas.statNode`.
pub const STAT_NODE: &str = "zookeeper_stats";

const COUNT: &str = "count";
const BYTES: &str = "bytes";
const COUNT_HARD: &str = "countHardLimit";
const BYTES_HARD: &str = "byteHardLimit";

/// `Quotas.limitPath`.
pub fn limit_path(path: &str) -> String {
    format!("{}{path}/{LIMIT_NODE}", path::QUOTA)
}

/// `Quotas.statPath`.
pub fn stat_path(path: &str) -> String {
    format!("{}{path}/{STAT_NODE}", path::QUOTA)
}

/// The quota'd path a node named `leaf` directly under `/zookeeper/quota<path>` stands for:
/// `/a` for `/zookeeper/quota/a/zookeeper_limits` with `leaf` = LIMIT_NODE. A quota on `/`
/// is not kept (`getMaxPrefixWithQuota` skips the root).
fn quota_of<'p>(node_path: &'p str, leaf: &str) -> Option<&'p str> {
    let rest = node_path.strip_prefix(path::QUOTA)?;
    let quotaed = rest.strip_suffix(leaf)?.strip_suffix('/')?;
    (quotaed.len() > 1 && quotaed.starts_with('/')).then_some(quotaed)
}

/// ZooKeeper's `StatsTrack`: `key=long` pairs separated by `,` or `;`. `count` and `bytes`
/// print first (as -1 when unset), then any other key sorted, after the `=` that keeps 3.4's
/// parser from reading them: `count=4,bytes=5=;byteHardLimit=10;countHardLimit=10`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsTrack {
    stats: BTreeMap<String, i64>,
}

impl StatsTrack {
    /// Parses what a client wrote. Unlike Java's (which throws), a pair that does not parse
    /// is skipped: the data is anyone's input and a replica must not fail on it.
    pub fn parse(data: &[u8]) -> StatsTrack {
        let text = String::from_utf8_lossy(data);
        let mut stats = BTreeMap::new();
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            // Java's `split("=")` drops trailing empty strings: `bytes=5=` is bytes, 5.
            let mut kv = pair.split('=');
            let (Some(key), Some(value)) = (kv.next(), kv.next()) else {
                continue;
            };
            let value = if value.is_empty() {
                Some(-1)
            } else {
                value.parse::<i64>().ok()
            };
            if let Some(v) = value {
                stats.insert(key.to_string(), v);
            }
        }
        StatsTrack { stats }
    }

    fn get(&self, key: &str) -> i64 {
        self.stats.get(key).copied().unwrap_or(-1)
    }

    pub fn count(&self) -> i64 {
        self.get(COUNT)
    }
    pub fn bytes(&self) -> i64 {
        self.get(BYTES)
    }
    pub fn count_hard_limit(&self) -> i64 {
        self.get(COUNT_HARD)
    }
    pub fn byte_hard_limit(&self) -> i64 {
        self.get(BYTES_HARD)
    }
    pub fn set_count(&mut self, v: i64) {
        self.stats.insert(COUNT.into(), v);
    }
    pub fn set_bytes(&mut self, v: i64) {
        self.stats.insert(BYTES.into(), v);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for StatsTrack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{COUNT}={},{BYTES}={}", self.count(), self.bytes())?;
        let mut rest = self
            .stats
            .iter()
            .filter(|(k, _)| *k != COUNT && *k != BYTES)
            .peekable();
        if rest.peek().is_some() {
            f.write_str("=")?;
        }
        for (k, v) in rest {
            write!(f, ";{k}={v}")?;
        }
        Ok(())
    }
}

/// One limit a write would pass.
struct Exceeded {
    what: &'static str,
    current: i64,
    limit: i64,
    hard: bool,
}

impl DataTree {
    /// Keeps the quota'd paths as limits nodes come and go (creates, deletes, a multi's
    /// rollback, a snapshot's load all pass here).
    pub(super) fn index_quota(&mut self, node_path: &str, add: bool) {
        if let Some(q) = quota_of(node_path, LIMIT_NODE) {
            if add {
                assert!(self.quotas.insert(q.into()), "quota {q} indexed twice");
            } else {
                assert!(self.quotas.remove(q), "quota {q} was not indexed");
            }
        }
    }

    /// `getMaxPrefixWithQuota`: the deepest quota'd path at or above `path`.
    pub fn quota_prefix(&self, path: &str) -> Option<&str> {
        if self.quotas.is_empty() {
            return None;
        }
        let found = std::iter::once(path)
            .chain(path::ancestors(path))
            .find_map(|p| self.quotas.get(p).map(|q| &**q));
        assert!(
            found.is_none_or(|q| path.starts_with(q)),
            "a quota off {path}'s line"
        );
        found
    }

    /// The quota'd paths, sorted.
    pub fn quotas(&self) -> impl Iterator<Item = &str> {
        self.quotas.iter().map(|q| &**q)
    }

    /// `getCounts`: the znodes at and under `path` and their data bytes.
    pub fn subtree_counts(&self, path: &str) -> (i64, i64) {
        let Some(node) = self.nodes.get(path) else {
            return (0, 0);
        };
        let (mut count, mut bytes) = (1, node.data.len() as i64);
        let below = format!("{path}/");
        let end = super::prefix_end(&below);
        for (_, n) in self.nodes.range::<str, _>((
            Bound::Included(below.as_str()),
            Bound::Excluded(end.as_str()),
        )) {
            count += 1;
            bytes += n.data.len() as i64;
        }
        (count, bytes)
    }

    /// `checkQuota`: would adding `count_diff` znodes and `bytes_diff` bytes at `path` pass a
    /// limit? A soft limit passed is logged; a hard one refuses the write when enforced.
    pub(super) fn check_quota(
        &self,
        cx: &Ctx,
        path: &str,
        bytes_diff: i64,
        count_diff: i64,
    ) -> Result<(), KeeperError> {
        let Some(prefix) = self.quota_prefix(path) else {
            return Ok(());
        };
        let Some(limits) = self.nodes.get(limit_path(prefix).as_str()) else {
            return Ok(()); // indexed, so present; as ZooKeeper, nothing to check without it
        };
        let limits = StatsTrack::parse(&limits.data);
        let check_count =
            count_diff != 0 && (limits.count() > -1 || limits.count_hard_limit() > -1);
        let check_bytes = bytes_diff != 0 && (limits.bytes() > -1 || limits.byte_hard_limit() > -1);
        if !check_count && !check_bytes {
            return Ok(());
        }
        let Some(stats) = self.nodes.get(stat_path(prefix).as_str()) else {
            return Ok(());
        };
        let stats = StatsTrack::parse(&stats.data);
        let slack = i64::from(plant::active(
            self.opts.plant,
            Plant::QuotaHardLimitOffByOne,
        ));
        let mut passed = Vec::new();
        if check_count {
            let current = stats.count().saturating_add(count_diff);
            let hard = limits.count_hard_limit() > -1;
            let limit = if hard {
                limits.count_hard_limit() + slack
            } else {
                limits.count()
            };
            if current > limit {
                passed.push(Exceeded {
                    what: "Count",
                    current,
                    limit,
                    hard,
                });
            }
        }
        if check_bytes {
            let current = stats.bytes().saturating_add(bytes_diff);
            let hard = limits.byte_hard_limit() > -1
                || plant::active(self.opts.plant, Plant::QuotaSoftBytesEnforced);
            let limit = if hard {
                limits.byte_hard_limit() + slack
            } else {
                limits.bytes()
            };
            if current > limit {
                passed.push(Exceeded {
                    what: "Byte",
                    current,
                    limit,
                    hard,
                });
            }
        }
        for e in &passed {
            let kind = if e.hard { "hard" } else { "soft" };
            let noun = if e.what == "Count" { "count" } else { "bytes" };
            tracing::warn!(
                "Quota exceeded: {prefix} [current {noun}={}, {kind}{}Limit={}]",
                e.current,
                e.what,
                e.limit
            );
            if e.hard && cx.enforce_quota {
                crate::probe!("quota.exceeded");
                return Err(KeeperError::QuotaExceeded);
            }
        }
        Ok(())
    }

    /// After `path` was inserted with `bytes` of data: a new stats node gets a recount of its
    /// subtree (`updateQuotaForPath`), then the quota over `path` counts it.
    pub(super) fn quota_created(&mut self, path: &str, bytes: i64, batch: &mut Batch) {
        if let Some(q) = quota_of(path, STAT_NODE) {
            let (count, bytes) = self.subtree_counts(q);
            let mut st = StatsTrack::default();
            st.set_count(count);
            st.set_bytes(bytes);
            // The node was just inserted: a rollback removes it whole, no undo needed.
            self.null_data.remove(path);
            self.replace_data(path, st.to_bytes().into());
        }
        self.quota_changed(path, bytes, 1, batch);
    }

    /// `updateQuotaStat`: the stats of the quota over `path` move by the diffs. Only the data
    /// of the stats node changes (not its version or mzxid), as in ZooKeeper.
    pub(super) fn quota_changed(
        &mut self,
        path: &str,
        bytes_diff: i64,
        count_diff: i64,
        batch: &mut Batch,
    ) {
        let Some(prefix) = self.quota_prefix(path) else {
            return;
        };
        let stat = stat_path(prefix);
        let Some(node) = self.nodes.get(stat.as_str()) else {
            return; // ZooKeeper logs "Missing node for stat" and goes on
        };
        let mut st = StatsTrack::parse(&node.data);
        st.set_count(st.count().saturating_add(count_diff));
        st.set_bytes(st.bytes().saturating_add(bytes_diff));
        let meta = node.meta;
        let null = self.null_data.remove(stat.as_str());
        let text = if plant::active(self.opts.plant, Plant::StatsTextReordered) {
            format!("bytes={},count={}", st.bytes(), st.count()).into_bytes()
        } else {
            st.to_bytes()
        };
        let old = self.replace_data(&stat, text.into());
        batch.record(|| Undo::DataSet {
            path: stat.into_boxed_str(),
            data: old,
            meta,
            null,
        });
    }

    /// The index of quota'd paths matches the limits nodes present.
    pub(super) fn check_quota_index(&self) -> Result<(), String> {
        let found: std::collections::BTreeSet<&str> = self
            .nodes
            .keys()
            .filter_map(|p| quota_of(p, LIMIT_NODE))
            .collect();
        if found.iter().copied().ne(self.quotas()) {
            return Err(format!(
                "quota index {:?} but limits nodes for {found:?}",
                self.quotas
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_track_reads_and_prints_as_zookeeper() {
        let st = StatsTrack::parse(b"count=4,bytes=5=;countHardLimit=10;byteHardLimit=-1");
        assert_eq!((st.count(), st.bytes(), st.count_hard_limit()), (4, 5, 10));
        assert_eq!(
            st.to_string(),
            "count=4,bytes=5=;byteHardLimit=-1;countHardLimit=10"
        );
        assert_eq!(
            StatsTrack::parse(b"count=1,bytes=2").to_string(),
            "count=1,bytes=2"
        );
        let junk = StatsTrack::parse(b",count,=;bytes=x;count=3");
        assert_eq!((junk.count(), junk.bytes()), (3, -1));
        assert_eq!(StatsTrack::default().to_string(), "count=-1,bytes=-1");
    }

    #[test]
    fn quota_paths_are_found_from_their_nodes() {
        assert_eq!(
            quota_of("/zookeeper/quota/a/b/zookeeper_limits", LIMIT_NODE),
            Some("/a/b")
        );
        assert_eq!(
            quota_of("/zookeeper/quota/zookeeper_limits", LIMIT_NODE),
            None
        );
        assert_eq!(
            quota_of("/zookeeper/quota/a/zookeeper_stats", LIMIT_NODE),
            None
        );
        assert_eq!(
            quota_of("/zookeeper/quotas/a/zookeeper_limits", LIMIT_NODE),
            None
        );
        assert_eq!(limit_path("/a"), "/zookeeper/quota/a/zookeeper_limits");
        assert_eq!(stat_path("/a"), "/zookeeper/quota/a/zookeeper_stats");
    }
}
