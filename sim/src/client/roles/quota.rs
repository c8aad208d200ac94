//! The `quota` role: zkCli's `setquota`, `delquota` and `listquota` as the requests they make
//! (the `/zookeeper/quota<path>` nodes, `zookeeper_limits` then `zookeeper_stats`), drawn in
//! any order, on two disjoint subtrees, and creates, setData, deletes and multis under them
//! that meet the limits. What the tree keeps is judged in `crate::check::quota`.

use super::create;
use crate::rng::SimRng;
use ensemble_core::tree::{limit_path, stat_path};
use ensemble_proto::proto::{CreateMode, CreateOp, MultiOp, Request};

/// The quota'd subtrees: never one above the other (zkCli refuses nested quotas).
pub const ROOTS: [&str; 2] = ["/quota-a", "/quota-b"];

#[derive(Default)]
pub struct QuotaRole {
    n: u64,
    /// The root whose stats it has just written null: its next request is a multi under
    /// that root that fails at its second op, after the first moved the stats.
    after_null: Option<&'static str>,
}

/// Limits as zkCli's setquota writes them: some soft, some hard, small enough to be met.
/// Every other soft count limit (by the role's counter `n`, not a draw, so that the draws stay
/// those of earlier sessions) comes with a soft byte limit and no byte hard limit, small
/// enough to be passed: ZooKeeper only logs it, the write succeeds.
fn draw_limits(rng: &mut SimRng, n: u64) -> Vec<u8> {
    let (mut count, mut count_hard, mut bytes, mut bytes_hard) = (-1, -1, -1, -1);
    match rng.below(4) {
        0 => {
            count = rng.range(2, 6) as i64;
            if n.is_multiple_of(2) {
                bytes = count * 3;
            }
        }
        1 => count_hard = rng.range(2, 6) as i64,
        2 => bytes_hard = rng.range(10, 60) as i64,
        _ => {
            count_hard = rng.range(2, 6) as i64;
            bytes_hard = rng.range(10, 60) as i64;
        }
    }
    limits_text(count, bytes, count_hard, bytes_hard)
}

/// The text zkCli's `setquota` writes, spelled out here rather than by the core's
/// `StatsTrack` (an oracle apart from the server): SetQuotaCommand sets all four keys (-1
/// where unset) and ZooKeeper's `StatsTrack.toString` prints `count` and `bytes` first, then
/// an `=` that keeps 3.4's parser from reading further, then the other keys sorted, each
/// after a `;` (3.7+: `byteHardLimit`, `countHardLimit`).
fn limits_text(count: i64, bytes: i64, count_hard: i64, bytes_hard: i64) -> Vec<u8> {
    format!("count={count},bytes={bytes}=;byteHardLimit={bytes_hard};countHardLimit={count_hard}")
        .into_bytes()
}

impl QuotaRole {
    pub fn next(&mut self, idx: usize, rng: &mut SimRng) -> Request {
        self.n += 1;
        let root = ROOTS[rng.below(ROOTS.len())];
        let child = format!("{root}/c{}", rng.below(6));
        let data = vec![b'q'; rng.below(12)];
        let drawn = self.drawn(idx, rng, root, child, data);
        match self.after_null.take() {
            // the multi's first create moves the stats (a recount rewrites the null data),
            // the second, the same path, fails: the rollback must leave the stats null again
            // (`tree.model`), as ZooKeeper, which never applies a failed multi, leaves them
            Some(root) => {
                let op = MultiOp::Create {
                    op: CreateOp::Create,
                    path: format!("{root}/n{}", self.n),
                    data: b"n".to_vec(),
                    acl: super::open_acl(),
                    mode: CreateMode::Persistent,
                    ttl: 0,
                };
                Request::Multi(vec![op.clone(), op])
            }
            None => {
                if matches!(&drawn, Request::NullData { .. }) {
                    self.after_null = Some(root);
                }
                drawn
            }
        }
    }

    fn drawn(
        &mut self,
        idx: usize,
        rng: &mut SimRng,
        root: &'static str,
        child: String,
        data: Vec<u8>,
    ) -> Request {
        let plain = |path: &str, data: Vec<u8>| {
            create(path, data, CreateMode::Persistent, CreateOp::Create)
        };
        match rng.below(21) {
            0 => plain(root, format!("q{idx}").into_bytes()),
            // setquota: the quota path, the limits, the stats at zero
            1 => plain(&format!("/zookeeper/quota{root}"), vec![]),
            2 | 3 => plain(&limit_path(root), draw_limits(rng, self.n)),
            4 | 5 => plain(&stat_path(root), b"count=0,bytes=0".to_vec()),
            // a client's setData of the stats with a null buffer, every third time (the
            // role's own count, no draw): the server's next recount must give them data again
            // (`tree.model`: a stats node is never null once rewritten)
            6 if self.n.is_multiple_of(3) => super::random::with_null_data(Request::SetData {
                path: stat_path(root),
                data: vec![],
                version: -1,
            }),
            // setquota on a quota that exists: new limits
            6 => Request::SetData {
                path: limit_path(root),
                data: draw_limits(rng, self.n),
                version: -1,
            },
            // delquota: the limits (and so the quota) or the stats go
            7 => Request::Delete {
                path: if rng.chance(0.5) {
                    limit_path(root)
                } else {
                    stat_path(root)
                },
                version: -1,
            },
            // listquota
            8 => Request::GetData {
                path: if rng.chance(0.5) {
                    limit_path(root)
                } else {
                    stat_path(root)
                },
                watch: false,
            },
            9..=13 => plain(&child, data),
            14 | 15 => Request::SetData {
                path: if rng.chance(0.8) { child } else { root.into() },
                data,
                version: -1,
            },
            16..=18 => Request::Delete {
                path: if rng.chance(0.6) {
                    child
                } else {
                    format!("{root}/m{}", rng.below(4))
                },
                version: -1,
            },
            _ => {
                let mut op = || MultiOp::Create {
                    op: CreateOp::Create,
                    path: format!("{root}/m{}", rng.below(4)),
                    data: vec![b'm'; rng.below(12)],
                    acl: super::open_acl(),
                    mode: CreateMode::Persistent,
                    ttl: 0,
                };
                let first = op();
                Request::Multi(vec![first, op()])
            }
        }
    }
}
