//! The `containers` role: container znodes (the parents Curator makes for locks and queues)
//! and TTL znodes, which only the leader's reaper deletes (a container that had a child and
//! has none; a childless TTL node unchanged for longer than its TTL), with children coming
//! and going under both, refreshes of the TTL nodes and watches on them; and the watch
//! requests a server answers from its watches alone: checkWatches and removeWatches of each
//! watcher type, and addWatch. What the tree does is judged by the model (`tree.model`: the
//! creates and the reaper's deleteContainer by ZooKeeper's rules), the reaper's progress by
//! `liveness.reaper`, the watch answers by `client.watch-answer` (`check_watch_answer`).
//! Every fifth request goes with null data buffers (a null-data container or TTL node).

use super::create;
use crate::rng::SimRng;
use ensemble_proto::proto::{AddWatchMode, CreateMode, CreateOp, MultiOp, Request, WatcherType};

/// Container znodes the role's clients share.
pub const CONTAINERS: [&str; 2] = ["/ct0", "/ct1"];
/// TTL znodes the role's clients share (and the prefix of their sequential ones).
pub const TTLS: [&str; 2] = ["/ttl0", "/ttl1"];

#[derive(Default)]
pub struct ContainersRole {
    n: u64,
}

/// A TTL short enough to expire within a run, long enough to be refreshed now and then.
fn draw_ttl(rng: &mut SimRng) -> i64 {
    *rng.pick(&[50, 400, 1_500, 4_000, 9_000]).unwrap_or(&1_500)
}

fn watcher_type(rng: &mut SimRng) -> WatcherType {
    *rng.pick(&[
        WatcherType::Children,
        WatcherType::Data,
        WatcherType::Data,
        WatcherType::Any,
        WatcherType::Persistent,
        WatcherType::PersistentRecursive,
    ])
    .unwrap_or(&WatcherType::Any)
}

impl ContainersRole {
    pub fn next(&mut self, idx: usize, rng: &mut SimRng) -> Request {
        self.n += 1;
        let ct = CONTAINERS[rng.below(CONTAINERS.len())];
        let ttl = TTLS[rng.below(TTLS.len())];
        let root = if rng.chance(0.5) { ct } else { ttl };
        let child = format!("{root}/c{}", rng.below(3));
        // a path watches are asked about: a root, a child, or a node that never exists
        let watched = match rng.below(5) {
            0 | 1 => root.to_string(),
            2 | 3 => child.clone(),
            _ => "/ct-none".to_string(),
        };
        let data = format!("c{idx}-{}", self.n).into_bytes();
        let drawn = match rng.below(26) {
            0 | 1 => Request::Create {
                op: CreateOp::Container,
                path: ct.into(),
                data,
                acl: super::open_acl(),
                mode: CreateMode::Container,
                ttl: 0,
            },
            2..=4 => {
                let mode = if rng.chance(0.4) {
                    CreateMode::Ephemeral
                } else {
                    CreateMode::Persistent
                };
                create(&child, data, mode, CreateOp::Create)
            }
            5 | 6 => Request::Delete {
                path: child,
                version: -1,
            },
            7 | 8 => {
                let (path, mode) = if rng.chance(0.25) {
                    (format!("{ttl}-s-"), CreateMode::PersistentSequentialWithTtl)
                } else {
                    (ttl.to_string(), CreateMode::PersistentWithTtl)
                };
                Request::Create {
                    op: CreateOp::Ttl,
                    path,
                    data,
                    acl: super::open_acl(),
                    mode,
                    ttl: draw_ttl(rng),
                }
            }
            // a refresh: a TTL counts from the last change
            9 => Request::SetData {
                path: ttl.into(),
                data,
                version: -1,
            },
            10 => Request::Delete {
                path: root.into(),
                version: -1,
            },
            // a container and its first child in one multi (Curator's
            // creatingParentContainersIfNeeded, in one round trip)
            11 => Request::Multi(vec![
                MultiOp::Create {
                    op: CreateOp::Container,
                    path: ct.into(),
                    data: vec![],
                    acl: super::open_acl(),
                    mode: CreateMode::Container,
                    ttl: 0,
                },
                MultiOp::Create {
                    op: CreateOp::Create,
                    path: format!("{ct}/c{}", rng.below(3)),
                    data,
                    acl: super::open_acl(),
                    mode: CreateMode::Persistent,
                    ttl: 0,
                },
            ]),
            // a child deleted, then a check that may fail: the multi's undo puts the child
            // back (or the reaper's turn comes when it passes)
            24 | 25 => Request::Multi(vec![
                MultiOp::Delete {
                    path: child,
                    version: -1,
                },
                MultiOp::Check {
                    path: root.into(),
                    version: rng.below(3) as i32,
                },
            ]),
            12 | 13 => Request::Exists {
                path: watched,
                watch: true,
            },
            14 => Request::GetData {
                path: watched,
                watch: true,
            },
            15 => Request::GetChildren {
                path: root.into(),
                watch: true,
            },
            16 => Request::AddWatch {
                path: watched,
                mode: if rng.chance(0.5) {
                    AddWatchMode::Persistent
                } else {
                    AddWatchMode::PersistentRecursive
                },
            },
            17..=19 => Request::CheckWatches {
                path: watched,
                kind: watcher_type(rng),
            },
            _ => Request::RemoveWatches {
                path: watched,
                kind: watcher_type(rng),
            },
        };
        // Every fifth request's data buffers null (the role's own count: no draw moves), so
        // containers and TTL nodes are created and refreshed with null data and reaped so:
        // the reaper's delete must forget the node's null-data mark (`tree.consistent`,
        // `tree.model`; sample 1616's `tree/mod.rs:824`).
        if self.n % 5 == 2 {
            return super::random::with_null_data(drawn);
        }
        drawn
    }
}
