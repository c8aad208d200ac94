//! The lock recipe (plain or fenced) and master election, on ephemeral sequential nodes.

use super::{ClientOut, Ctx, LockPhase, LockRole, create, seq_of};
use crate::check::{Claim, violation};
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{
    CreateMode, CreateOp, KeeperError, MultiOp, OpResult, Reply, Request, Response, SessionId,
};

impl LockRole {
    pub(crate) fn prefix(idx: usize) -> String {
        format!("c{idx}-n-")
    }

    /// A holder's protected action on the external resource. It needs no ZooKeeper round
    /// trip: the process acts on what it believes (which is what fencing guards against).
    pub(crate) fn act(&mut self, cx: &mut Ctx) {
        if self.election || self.phase != LockPhase::Holding || self.actions_left == 0 {
            return;
        }
        if cx.now < self.next_at {
            return;
        }
        self.actions_left -= 1;
        cx.out.push(ClientOut::Resource {
            token: self.token,
            fenced: self.fenced,
        });
        let (lo, hi) = cx.params.think_ms;
        self.next_at = cx.now + cx.rng.range(lo, hi) * 4;
    }

    pub(crate) fn next(
        &mut self,
        idx: usize,
        _session: SessionId,
        cx: &mut Ctx,
    ) -> Option<Request> {
        let now = cx.now;
        if self.in_flight || now < self.next_at {
            return None;
        }
        let req = match self.phase {
            LockPhase::EnsureParent => create(
                self.parent,
                vec![],
                CreateMode::Persistent,
                CreateOp::Create,
            ),
            LockPhase::Create => create(
                &format!("{}/{}", self.parent, Self::prefix(idx)),
                vec![],
                CreateMode::EphemeralSequential,
                CreateOp::Create2,
            ),
            LockPhase::List => Request::GetChildren {
                path: self.parent.to_string(),
                watch: false,
            },
            LockPhase::Wait => {
                if self.wait_sent {
                    return None;
                }
                self.wait_sent = true;
                Request::Exists {
                    path: self.pred.clone()?,
                    watch: true,
                }
            }
            LockPhase::Holding => {
                if self.election {
                    // the master's work: a write fenced by its own election node
                    let Some(node) = self.my_node.clone() else {
                        self.phase = LockPhase::EnsureParent;
                        return None;
                    };
                    Request::Multi(vec![
                        MultiOp::Check {
                            path: node,
                            version: 0,
                        },
                        MultiOp::SetData {
                            path: self.parent.to_string(),
                            data: format!("master c{idx} #{}", self.acquisitions).into_bytes(),
                            version: -1,
                        },
                    ])
                } else {
                    // the holder acts on the resource in `act`; when done, it releases
                    if self.actions_left > 0 {
                        return None;
                    }
                    self.phase = LockPhase::Release;
                    return self.next(idx, _session, cx);
                }
            }
            LockPhase::Release => match self.my_node.clone() {
                Some(node) => Request::Delete {
                    path: node,
                    version: -1,
                },
                None => {
                    self.phase = LockPhase::EnsureParent;
                    return None;
                }
            },
            LockPhase::Idle => {
                self.phase = LockPhase::EnsureParent;
                return None;
            }
        };
        self.in_flight = true;
        Some(req)
    }

    pub(crate) fn on_result(
        &mut self,
        req: &Request,
        reply: &Reply,
        _zxid: i64,
        idx: usize,
        cx: &mut Ctx,
    ) {
        self.in_flight = false;
        let now = cx.now;
        match (req, reply) {
            (
                Request::Create {
                    mode: CreateMode::Persistent,
                    ..
                },
                r,
            ) => {
                if matches!(r, Ok(_) | Err(KeeperError::NodeExists)) {
                    self.phase = if self.my_node.is_some() {
                        LockPhase::List
                    } else {
                        LockPhase::Create
                    };
                }
            }
            (Request::Create { .. }, Ok(Response::Create2 { path, stat })) => {
                self.my_node = Some(path.clone());
                self.token = stat.czxid;
                self.phase = LockPhase::List;
            }
            (Request::Create { .. }, Err(KeeperError::NoNode)) => {
                self.phase = LockPhase::EnsureParent
            }
            (Request::GetChildren { .. }, Ok(Response::GetChildren { children })) => {
                let mut queue: Vec<&String> = children.iter().collect();
                queue.sort_by_key(|c| seq_of(c));
                let prefix = Self::prefix(idx);
                let mine = self.my_node.as_ref().and_then(|n| n.rsplit('/').next());
                let found = mine.and_then(|m| queue.iter().position(|c| c.as_str() == m));
                let found = found.or_else(|| {
                    // after a connection loss during create: find our node by its prefix
                    queue.iter().position(|c| c.starts_with(&prefix))
                });
                match found {
                    None => {
                        self.my_node = None;
                        self.phase = LockPhase::Create;
                    }
                    Some(0) => {
                        self.my_node = Some(format!("{}/{}", self.parent, queue[0]));
                        if self.token == 0 {
                            // found after a lost reply: learn the token from exists later;
                            // use a conservative 0 (always stale) until then
                            self.phase = LockPhase::Release;
                        } else {
                            self.phase = LockPhase::Holding;
                            self.acquisitions += 1;
                            self.actions_left = cx.rng.range(2, 5) as u32;
                            cx.out.push(ClientOut::Note(format!(
                                "{} acquired with {} (token {})",
                                if self.election { "mastership" } else { "lock" },
                                queue[0],
                                Zxid(self.token as u64)
                            )));
                        }
                    }
                    Some(i) => {
                        self.my_node = Some(format!("{}/{}", self.parent, queue[i]));
                        self.phase = LockPhase::Wait;
                        // watch the predecessor
                        let pred = format!("{}/{}", self.parent, queue[i - 1]);
                        self.pred = Some(pred);
                        self.wait_sent = false;
                    }
                }
            }
            (Request::Exists { .. }, Err(KeeperError::NoNode)) => self.phase = LockPhase::List,
            (Request::Exists { .. }, Ok(_)) => {}
            (Request::Exists { .. }, Err(_)) => self.phase = LockPhase::List,
            (Request::Multi(_), Ok(Response::Multi(results))) => {
                let failed = results
                    .iter()
                    .any(|r| matches!(r, OpResult::Error(c) if *c != 0));
                if !failed {
                    // a master's write committed: its node must be the lowest at that zxid
                    let z = Zxid(_zxid.max(0) as u64);
                    let lowest = cx.reference.node_at(self.parent, z).and_then(|_| {
                        cx.reference
                            .children_at(self.parent, z)
                            .into_iter()
                            .min_by_key(|c| seq_of(c))
                    });
                    let mine = self
                        .my_node
                        .as_ref()
                        .and_then(|n| n.rsplit('/').next().map(str::to_string));
                    if lowest != mine && cx.shared.recipe_violation.is_none() {
                        cx.shared.recipe_violation = Some(violation(
                            Claim::RecipeTwoMasters,
                            now,
                            format!(
                                "client {idx} wrote as master at {z} holding {mine:?}, but the lowest candidate there was {lowest:?}"
                            ),
                        ));
                    }
                }
                if failed {
                    // our node is gone: mastership lost
                    self.phase = LockPhase::EnsureParent;
                    self.my_node = None;
                    self.token = 0;
                } else {
                    let (lo, hi) = cx.params.think_ms;
                    self.next_at = now + cx.rng.range(lo, hi) * 4;
                }
            }
            (Request::Delete { .. }, Ok(_) | Err(KeeperError::NoNode)) => {
                self.my_node = None;
                self.token = 0;
                self.phase = LockPhase::Idle;
                let (lo, hi) = cx.params.think_ms;
                self.next_at = now + cx.rng.range(lo, hi) * 2;
            }
            _ => {}
        }
        let _ = idx;
    }
}
