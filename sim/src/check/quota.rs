//! `quota.stats` and `quota.hard-limit`: the reference tree's quota nodes after each committed
//! txn, against a recount of the subtree and the limits as they stood before the txn.
//!
//! The stats are judged where ZooKeeper's upkeep is exact: a stats node created after its
//! limits node (as zkCli's `setquota` creates them) and never written by a client since
//! (mzxid = czxid), on a quota with no other quota above or below it (the quota workload's
//! subtrees are disjoint; nested quotas count changes only in the deepest).

use super::{Claim, Violation, violation};
use ensemble_core::tree::{DataTree, limit_path, stat_path};
use ensemble_core::txn::{Txn, TxnOp};
use ensemble_proto::proto::{KeeperError, Reply, Request};
use std::collections::BTreeMap;

/// A quota node's text as the checker reads it, apart from the core's `StatsTrack` (so that a
/// fault in the core's reading of the limits is not shared by the judge): ZooKeeper's
/// `StatsTrack(String)`, `key=long` pairs split on `,` and `;`, a trailing `=` dropped
/// (`bytes=5=` is bytes 5), an empty value -1; a pair that does not read is skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Track(BTreeMap<String, i64>);

impl std::fmt::Display for Track {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&pairs.join(","))
    }
}

impl Track {
    fn parse(data: &[u8]) -> Track {
        let text = String::from_utf8_lossy(data);
        let mut m = BTreeMap::new();
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv = pair.split('=');
            if let (Some(k), Some(v)) = (kv.next(), kv.next()) {
                let v = if v.is_empty() { Ok(-1) } else { v.parse() };
                if let Ok(v) = v {
                    m.insert(k.to_string(), v);
                }
            }
        }
        Track(m)
    }

    /// ZooKeeper's `StatsTrack.toString`, restated: `count` and `bytes` first, then, only if
    /// other keys are held, an `=` and each of them sorted after a `;`.
    fn zk_text(&self) -> String {
        let mut text = format!("count={},bytes={}", self.count(), self.bytes());
        let mut rest = self
            .0
            .iter()
            .filter(|(k, _)| k.as_str() != "count" && k.as_str() != "bytes");
        if let Some((k, v)) = rest.next() {
            text.push_str(&format!("=;{k}={v}"));
            for (k, v) in rest {
                text.push_str(&format!(";{k}={v}"));
            }
        }
        text
    }

    fn get(&self, key: &str) -> i64 {
        self.0.get(key).copied().unwrap_or(-1)
    }
    fn count(&self) -> i64 {
        self.get("count")
    }
    fn bytes(&self) -> i64 {
        self.get("bytes")
    }
    fn count_hard_limit(&self) -> i64 {
        self.get("countHardLimit")
    }
    fn byte_hard_limit(&self) -> i64 {
        self.get("byteHardLimit")
    }
}

/// One quota as the tree holds it.
#[derive(Clone, Debug)]
pub struct Quota {
    limits: Track,
    limits_czxid: i64,
    /// The stats and the stats node's czxid and mzxid.
    stats: Option<(Track, i64, i64)>,
    /// The stats node's data as the tree holds it.
    stats_text: Vec<u8>,
}

/// Every quota of a tree, by quota'd path.
#[derive(Clone, Debug, Default)]
pub struct QuotaState(BTreeMap<String, Quota>);

impl QuotaState {
    pub fn read(tree: &DataTree) -> QuotaState {
        let mut m = BTreeMap::new();
        for q in tree.quotas() {
            let Some((data, stat)) = tree.get_data(&limit_path(q)) else {
                continue;
            };
            let read = tree.get_data(&stat_path(q));
            let stats = read.map(|(d, s)| (Track::parse(d), s.czxid, s.mzxid));
            m.insert(
                q.to_string(),
                Quota {
                    limits: Track::parse(data),
                    limits_czxid: stat.czxid,
                    stats,
                    stats_text: read.map(|(d, _)| d.to_vec()).unwrap_or_default(),
                },
            );
        }
        QuotaState(m)
    }

    /// The deepest quota at or above `path`.
    fn over(&self, path: &str) -> Option<(&str, &Quota)> {
        self.0
            .iter()
            .filter(|(q, _)| path == *q || path.starts_with(&format!("{q}/")))
            .max_by_key(|(q, _)| q.len())
            .map(|(q, s)| (q.as_str(), s))
    }
}

/// The znodes at and under `path` and their bytes, counted by walking the children.
fn recount(tree: &DataTree, path: &str) -> (i64, i64) {
    let Some((data, _)) = tree.get_data(path) else {
        return (0, 0);
    };
    let (mut count, mut bytes) = (1, data.len() as i64);
    for c in tree.get_children(path).unwrap_or_default() {
        let (n, b) = recount(tree, &format!("{path}/{c}"));
        count += n;
        bytes += b;
    }
    (count, bytes)
}

/// The claims on `txn`, applied to `tree`; the quotas it leaves (the next txn's `before`).
pub fn check(
    before: &QuotaState,
    tree: &DataTree,
    txn: &Txn,
    reply: &Reply,
    now: u64,
) -> Result<QuotaState, Violation> {
    if before.0.is_empty() && tree.quotas().next().is_none() {
        return Ok(QuotaState::default());
    }
    let after = QuotaState::read(tree);
    let fail = |claim, d: String| violation(claim, now, format!("after txn {}: {d}", txn.zxid));
    check_refusal(before, tree, txn, reply).map_err(|d| fail(Claim::QuotaHardLimit, d))?;
    let enforced = matches!(txn.op, TxnOp::EnforcedWrite { .. });
    for (q, a) in &after.0 {
        let nested = after.0.keys().any(|o| {
            o != q && (o.starts_with(&format!("{q}/")) || q.starts_with(&format!("{o}/")))
        });
        let Some((stats, czxid, mzxid)) = &a.stats else {
            continue;
        };
        if !nested && *czxid > a.limits_czxid && czxid == mzxid {
            let (count, bytes) = recount(tree, q);
            if (stats.count(), stats.bytes()) != (count, bytes) {
                return Err(fail(
                    Claim::QuotaStats,
                    format!(
                        "{q}: stats say count={},bytes={}, the subtree holds count={count},bytes={bytes}",
                        stats.count(),
                        stats.bytes()
                    ),
                ));
            }
        }
        let Some(b) = before.0.get(q) else { continue };
        let Some((was, bczxid, bmzxid)) = &b.stats else {
            continue;
        };
        // Stats the server rewrote (no client's write: the same czxid and mzxid, as
        // ZooKeeper's updateQuotaStat changes only the data) read as its StatsTrack prints them.
        if (bczxid, bmzxid) == (czxid, mzxid)
            && b.stats_text != a.stats_text
            && a.stats_text != stats.zk_text().as_bytes()
        {
            return Err(fail(
                Claim::QuotaStats,
                format!(
                    "{q}: the server rewrote the stats as {:?}, ZooKeeper's StatsTrack prints {:?}",
                    String::from_utf8_lossy(&a.stats_text),
                    stats.zk_text()
                ),
            ));
        }
        // An accepted enforced write only moves a subtree up to its hard limits.
        // (limits changed by this very txn: which op saw which limits is the multi's order)
        if !enforced || bczxid != czxid || b.limits_czxid != a.limits_czxid || b.limits != a.limits
        {
            continue;
        }
        let (hc, hb) = (a.limits.count_hard_limit(), a.limits.byte_hard_limit());
        if hc > -1 && stats.count() > was.count() && stats.count() > hc {
            return Err(fail(
                Claim::QuotaHardLimit,
                format!(
                    "{q}: an enforced write took the count from {} to {} past countHardLimit={hc}",
                    was.count(),
                    stats.count()
                ),
            ));
        }
        if hb > -1 && stats.bytes() > was.bytes() && stats.bytes() > hb {
            return Err(fail(
                Claim::QuotaHardLimit,
                format!(
                    "{q}: an enforced write took the bytes from {} to {} past byteHardLimit={hb}",
                    was.bytes(),
                    stats.bytes()
                ),
            ));
        }
    }
    Ok(after)
}

/// A QuotaExceeded answer comes only for an enforced write, and for a single create or
/// setData only when it would pass a hard limit as the quota stood before it.
fn check_refusal(
    before: &QuotaState,
    tree: &DataTree,
    txn: &Txn,
    reply: &Reply,
) -> Result<(), String> {
    let Some((request, _)) = txn.op.client_write() else {
        return Ok(());
    };
    if !super::reference::quota_refused(reply) {
        return Ok(());
    }
    if !matches!(txn.op, TxnOp::EnforcedWrite { .. }) {
        return Err(format!(
            "{:?} refused with QuotaExceeded though its leader did not enforce quotas",
            request.opcode()
        ));
    }
    if reply != &Err(KeeperError::QuotaExceeded) {
        return Ok(()); // a multi: its ops' order decides, judged by the stats
    }
    let (path, count, bytes) = match request {
        Request::Create { path, data, .. } => (path, 1, data.len() as i64),
        Request::SetData { path, data, .. } => {
            let old = tree.get_data(path).map_or(0, |(d, _)| d.len() as i64);
            (path, 0, data.len() as i64 - old)
        }
        _ => return Ok(()),
    };
    let Some((q, quota)) = before.over(path) else {
        return Err(format!("{path}: refused with QuotaExceeded under no quota"));
    };
    let Some((stats, _, _)) = &quota.stats else {
        return Err(format!(
            "{path}: refused with QuotaExceeded, {q} has no stats"
        ));
    };
    let (hc, hb) = (
        quota.limits.count_hard_limit(),
        quota.limits.byte_hard_limit(),
    );
    let passes_count = count != 0 && hc > -1 && stats.count() + count > hc;
    let passes_bytes = bytes != 0 && hb > -1 && stats.bytes() + bytes > hb;
    if !passes_count && !passes_bytes {
        return Err(format!(
            "{path}: refused with QuotaExceeded, but {q} at {} with +{count} znodes, +{bytes} bytes stays within {}",
            stats, quota.limits
        ));
    }
    Ok(())
}
