//! The `acl` role: a client that adds identities at drawn moments (digest alice and bob with
//! addAuth; a SASL principal and a certificate subject, which the server's runtime
//! establishes and hands the core as `Event::ClientAuthenticated`), and works in subtrees
//! whose ACLs deny the world. What it may see is judged in `crate::check::acl`.

use crate::check::acl::parent;
use crate::rng::SimRng;
use ensemble_proto::proto::{
    Acl, AddWatchMode, CreateMode, CreateOp, Id, KeeperError, Reply, Request, perms,
};

/// The identities clients add: (user, password).
pub const USERS: [(&str, &str); 2] = [("alice", "alice-pw"), ("bob", "bob-pw")];
/// SASL principals (carol, dave, and now and then the servers' `zookeeper.superUser`).
pub const PRINCIPALS: [&str; 3] = ["carol@SIM", "dave@SIM", crate::client::SASL_SUPER];
/// Certificate subjects (erin, frank, and now and then the x509 super user).
pub const SUBJECTS: [&str; 3] = ["CN=erin,O=sim", "CN=frank,O=sim", crate::client::X509_SUPER];

/// One identity a session adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ident {
    Digest(usize),
    Sasl(usize),
    X509(usize),
}

impl Ident {
    /// What the client sends for it: `Request::Auth` with the scheme and the credential (a
    /// SASL principal or a subject stands for the exchange or certificate proving it).
    fn request(self) -> Request {
        let (scheme, auth) = match self {
            Ident::Digest(u) => ("digest", credential(u)),
            Ident::Sasl(u) => ("sasl", PRINCIPALS[u].to_string()),
            Ident::X509(u) => ("x509", SUBJECTS[u].to_string()),
        };
        Request::Auth {
            scheme: scheme.into(),
            auth: auth.into_bytes(),
        }
    }
}

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

fn sasl(user: usize, perms: i32) -> Acl {
    Acl {
        perms,
        id: Id::new("sasl", PRINCIPALS[user]),
    }
}

fn x509(user: usize, perms: i32) -> Acl {
    Acl {
        perms,
        id: Id::new("x509", SUBJECTS[user]),
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
        // alice's, readable (only) by carol too
        0 => vec![digest(0, ALL), sasl(0, READ)],
        // bob's, readable by alice, read and written by erin's certificate
        1 => vec![digest(1, ALL), digest(0, READ), x509(0, READ | WRITE)],
        // anyone writes, only alice and dave read (no READ for the world)
        2 => vec![
            world(WRITE | CREATE | DELETE),
            digest(0, READ),
            sasl(1, READ),
        ],
        // carol's, read by frank's certificate, read and written by dave
        _ => vec![sasl(0, ALL), x509(1, READ), sasl(1, READ | WRITE)],
    }
}

/// An ACL naming `auth` (the creator's authenticated ids, all permissions) and letting the
/// world read: ZooKeeper's `CREATOR_ALL_ACL` plus `READ_ACL_UNSAFE`. InvalidAcl from a session
/// with no authenticated id.
pub fn auth_acl() -> Vec<Acl> {
    vec![
        Acl {
            perms: perms::ALL,
            id: Id::new("auth", ""),
        },
        world(perms::READ),
    ]
}

/// The subtree's ACL plus an `ip` entry with every permission for the creator's own address
/// (`/32` or no mask), its block of four (`/30`), or the block of four next to it, which
/// holds other clients only.
pub fn ip_acl(root: usize, idx: usize, k: u64) -> Vec<Acl> {
    let own = crate::client::client_addr(idx);
    let last: u32 = own
        .rsplit('.')
        .next()
        .and_then(|o| o.parse().ok())
        .unwrap_or(1);
    let expr = match k % 4 {
        0 => format!("{own}/32"),
        1 => own,
        2 => format!("127.0.1.{}/30", last & !3),
        _ => format!("127.0.1.{}/30", (last & !3) ^ 4),
    };
    let mut acl = subtree_acl(root);
    acl.push(Acl {
        perms: perms::ALL,
        id: Id::new("ip", &expr),
    });
    acl
}

pub const ROOTS: [&str; 4] = ["/acl-a", "/acl-b", "/acl-w", "/acl-s"];

/// The `acl` role: identities added along the way, operations in the ACL'd subtrees.
pub struct AclRole {
    /// The identities this session adds, in order.
    plan: Vec<Ident>,
    /// How many of them it has added.
    pub added: usize,
    /// Operations to go before the next addAuth.
    until_auth: u32,
    /// Roots known to exist.
    roots: [bool; 4],
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
            roots: [false; 4],
            n: 0,
            burst: 0,
        }
    }

    /// A new session: draw which identities it will add, and when.
    pub fn on_new_session(&mut self, rng: &mut SimRng) {
        use Ident::*;
        self.plan = match rng.below(4) {
            0 => vec![],
            1 => vec![Digest(0)],
            2 => vec![Digest(1)],
            _ => vec![Digest(0), Digest(1)],
        };
        // the super users rarely, so that most sessions meet refusals
        let pick = |rng: &mut SimRng| if rng.chance(0.05) { 2 } else { rng.below(2) };
        if rng.chance(0.5) {
            let at = rng.below(self.plan.len() + 1);
            let who = pick(rng);
            self.plan.insert(at, Sasl(who));
        }
        if rng.chance(0.4) {
            // a certificate comes with the connection: first
            let who = pick(rng);
            self.plan.insert(0, X509(who));
        }
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
                let ident = self.plan[self.added];
                self.added += 1;
                self.until_auth = rng.range(1, 8) as u32;
                self.burst = 2;
                return ident.request();
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
                // every third an `auth` ACL, every third the subtree's plus an `ip` entry
                // (no draw of its own: seeds keep their draws)
                acl: match self.n % 3 {
                    0 => auth_acl(),
                    1 => ip_acl(s, idx, self.n / 3),
                    _ => subtree_acl(s),
                },
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
            8..=10 => {
                let path = if rng.chance(0.7) { child } else { root.into() };
                // every third a getACL (judged by `acl.shown`)
                if self.n % 3 == 1 {
                    Request::GetAcl { path }
                } else {
                    Request::GetData { path, watch }
                }
            }
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
