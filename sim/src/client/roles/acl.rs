//! The `acl` role: a client that adds digest identities (alice, bob, both or none, drawn per
//! session) at a drawn moment, and works in subtrees whose ACLs deny the world. What it may
//! see is judged in `crate::check::acl`.

use crate::check::acl::parent;
use crate::rng::SimRng;
use ensemble_proto::proto::{
    Acl, AddWatchMode, CreateMode, CreateOp, Id, KeeperError, Reply, Request, perms,
};

/// The identities clients add: (user, password).
pub const USERS: [(&str, &str); 2] = [("alice", "alice-pw"), ("bob", "bob-pw")];

/// The credential `addAuth digest` carries.
pub fn credential(user: usize) -> String {
    format!("{}:{}", USERS[user].0, USERS[user].1)
}

/// The digest id an identity is known by in ACLs (`user:base64(sha1(user:password))`).
pub fn digest_id(user: usize) -> String {
    ensemble_core::acl::digest_id(&credential(user))
}

fn digest(user: usize, perms: i32) -> Acl {
    Acl {
        perms,
        id: Id::new("digest", &digest_id(user)),
    }
}

fn world(perms: i32) -> Acl {
    Acl {
        perms,
        id: Id::anyone(),
    }
}

/// The ACL'd subtrees: root path and the ACL of the root and every node under it.
pub fn subtree_acl(root: usize) -> Vec<Acl> {
    use perms::*;
    match root {
        // alice's alone
        0 => vec![digest(0, ALL)],
        // bob's, readable (only) by alice too
        1 => vec![digest(1, ALL), digest(0, READ)],
        // anyone writes, only alice reads (no READ for the world)
        _ => vec![world(WRITE | CREATE | DELETE), digest(0, READ)],
    }
}

pub const ROOTS: [&str; 3] = ["/acl-a", "/acl-b", "/acl-w"];

/// The `acl` role: identities added along the way, operations in the ACL'd subtrees.
pub struct AclRole {
    /// The users this session adds, in order.
    plan: Vec<usize>,
    /// How many of them it has added.
    pub added: usize,
    /// Operations to go before the next addAuth.
    until_auth: u32,
    /// Roots known to exist.
    roots: [bool; 3],
    n: u64,
    /// Requests the client should send right after an addAuth (to have some in flight
    /// around it).
    pub burst: u32,
}

impl AclRole {
    pub fn new() -> AclRole {
        AclRole {
            plan: Vec::new(),
            added: 0,
            until_auth: 0,
            roots: [false; 3],
            n: 0,
            burst: 0,
        }
    }

    /// A new session: draw which identities it will add, and when.
    pub fn on_new_session(&mut self, rng: &mut SimRng) {
        self.plan = match rng.below(4) {
            0 => vec![],
            1 => vec![0],
            2 => vec![1],
            _ => vec![0, 1],
        };
        self.added = 0;
        self.until_auth = rng.range(0, 6) as u32;
    }

    pub fn on_session_end(&mut self) {
        self.plan.clear();
        self.added = 0;
    }

    /// The next request; `Request::Auth` for an addAuth.
    pub fn next(&mut self, idx: usize, rng: &mut SimRng) -> Request {
        if self.added < self.plan.len() {
            if self.until_auth == 0 {
                let user = self.plan[self.added];
                self.added += 1;
                self.until_auth = rng.range(1, 8) as u32;
                self.burst = 2;
                return Request::Auth {
                    scheme: "digest".into(),
                    auth: credential(user).into_bytes(),
                };
            }
            self.until_auth -= 1;
        }
        let s = rng.below(ROOTS.len());
        let root = ROOTS[s];
        if !self.roots[s] {
            return Request::Create {
                op: CreateOp::Create,
                path: root.to_string(),
                data: vec![],
                acl: subtree_acl(s),
                mode: CreateMode::Persistent,
                ttl: 0,
            };
        }
        self.n += 1;
        let child = format!("{root}/n{}", rng.below(4));
        let data = format!("a{idx}-{}", self.n).into_bytes();
        let watch = rng.chance(0.3);
        match rng.below(14) {
            0..=2 => Request::Create {
                op: CreateOp::Create,
                path: child,
                data,
                acl: subtree_acl(s),
                mode: CreateMode::Persistent,
                ttl: 0,
            },
            3..=5 => Request::SetData {
                path: if rng.chance(0.7) { child } else { root.into() },
                data,
                version: -1,
            },
            6 | 7 => Request::Delete {
                path: child,
                version: -1,
            },
            8..=10 => Request::GetData {
                path: if rng.chance(0.7) { child } else { root.into() },
                watch,
            },
            11 => Request::GetChildren {
                path: root.into(),
                watch,
            },
            _ => {
                let (path, mode) = match rng.below(4) {
                    0 => (root.to_string(), AddWatchMode::Persistent),
                    1 | 2 => (root.to_string(), AddWatchMode::PersistentRecursive),
                    _ => ("/".to_string(), AddWatchMode::PersistentRecursive),
                };
                Request::AddWatch { path, mode }
            }
        }
    }

    pub fn on_result(&mut self, req: &Request, reply: &Reply) {
        if let Request::Create { path, .. } = req
            && let Some(s) = ROOTS.iter().position(|r| r == path)
        {
            if matches!(reply, Ok(_) | Err(KeeperError::NodeExists)) {
                self.roots[s] = true;
            }
        } else if let Request::Create { path, .. } = req
            && matches!(reply, Err(KeeperError::NoNode))
            && let Some(s) = ROOTS.iter().position(|r| *r == parent(path))
        {
            self.roots[s] = false;
        }
    }
}

impl Default for AclRole {
    fn default() -> AclRole {
        AclRole::new()
    }
}
