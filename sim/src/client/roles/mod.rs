//! Workload roles: what a client does with its session. The random mix and its read-only
//! variant (`random`), the recipes of ZooKeeper's "Recipes and Solutions" (lock and master
//! election in `lock`, membership, monitor, config writer and reader, naming), the ACL'd
//! identities (`acl`), the super user (`admin`), quotas (`quota`), and container and TTL
//! znodes with the watch-only requests (`containers`).

pub(crate) mod acl;
pub(crate) mod containers;
mod lock;
mod quota;
pub(crate) mod random;
pub(crate) mod reconfig;

use super::{ClientOut, Ctx};
use crate::check::{Claim, normalize, violation};
use crate::params::Role;
use ensemble_proto::proto::{
    Acl, CreateMode, CreateOp, KeeperError, Reply, Request, Response, SessionId, WatchedEvent,
};
use std::collections::BTreeMap;

pub enum RoleState {
    Random(RandomRole),
    Reader(RandomRole),
    Lock(LockRole),
    Election(LockRole),
    Member(MemberRole),
    Monitor(WatchRole),
    ConfigWriter(WriterRole),
    ConfigReader(WatchRole),
    Naming(NamingRole),
    Acl(acl::AclRole),
    Admin(AdminRole),
    Quota(quota::QuotaRole),
    Reconfig(reconfig::ReconfigRole),
    Containers(containers::ContainersRole),
}

/// The super user's node `/adm<idx>`: created with an ACL that grants nothing to anyone, then
/// read, written, its ACL read, deleted and created again. In a run with a `reconfig` client,
/// every tenth request instead writes `/zookeeper/config` (see [`config_null`] and
/// [`config_over`]).
pub struct AdminRole {
    pub(crate) n: u64,
    pub(crate) exists: bool,
    pub(crate) in_flight: bool,
    /// Null-data writes of `/zookeeper/config` answered ok: the node's version if no
    /// reconfig committed since (a reconfig leaves it -1).
    pub(crate) config_nulls: u64,
    /// Writes of `/zookeeper/config` sent once a reconfig had committed (see [`config_over`]).
    pub(crate) config_overs: u64,
}

/// The super user's setData of `/zookeeper/config` with a null buffer (ZooKeeper lets super
/// write the node) before any reconfig, conditional on `version`, the count of such writes
/// answered ok (as session 17 made it: the same requests in the same seeds). A reconfig
/// then writes the new configuration's text there, and the node must read as that text
/// again, no longer null (the tree's own assertion on getData, `tree.consistent`). Once a
/// reconfig has committed, [`config_over`] writes instead.
fn config_null(version: u64) -> Request {
    random::with_null_data(Request::SetData {
        path: ensemble_core::path::CONFIG.into(),
        data: vec![],
        version: i32::try_from(version).unwrap_or(i32::MAX),
    })
}

/// The super user's setData of `/zookeeper/config` once a reconfig has committed: null data
/// and other text by turns (`count`, the role's own), unconditional. It changes the node only
/// (reads answer what was written): the configuration in force, also a restarted server's, is
/// the last reconfig's (`reconfig.config-apart`), as ZooKeeper's is its dynamic file's.
fn config_over(count: u64, idx: usize) -> Request {
    let set = |data: Vec<u8>| Request::SetData {
        path: ensemble_core::path::CONFIG.into(),
        data,
        version: -1,
    };
    if count.is_multiple_of(2) {
        random::with_null_data(set(vec![]))
    } else {
        set(format!("admin-{idx}-{count}").into_bytes())
    }
}

/// An ACL no client can pass: only the super user may touch the node.
pub(crate) fn nobody_acl() -> Vec<Acl> {
    vec![Acl {
        perms: ensemble_proto::proto::perms::ALL,
        id: ensemble_proto::proto::Id::new(
            "digest",
            &ensemble_core::acl::digest_id("nobody:no-password"),
        ),
    }]
}

#[derive(Default)]
pub struct RandomRole {
    pub(crate) n: u64,
    pub(crate) versions: BTreeMap<String, i32>,
    pub(crate) children: BTreeMap<String, Vec<String>>,
    /// The read to send right after a sync.
    pub(crate) after_sync: Option<Request>,
    /// Reads only (the `reader` role).
    pub(crate) reader: bool,
    /// An undecodable request goes out with the request just drawn (see `take_bad_frame`).
    pub(crate) bad_due: bool,
}

/// Lock and election share the ephemeral-sequential queue mechanics.
pub struct LockRole {
    pub fenced: bool,
    pub election: bool,
    pub(crate) parent: &'static str,
    pub phase: LockPhase,
    pub my_node: Option<String>,
    pub token: i64,
    pub(crate) in_flight: bool,
    pub(crate) pred: Option<String>,
    pub(crate) wait_sent: bool,
    pub(crate) actions_left: u32,
    pub(crate) next_at: u64,
    pub acquisitions: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockPhase {
    EnsureParent,
    Create,
    List,
    /// Waiting for the predecessor's deletion.
    Wait,
    Holding,
    Release,
    Idle,
}

pub struct MemberRole {
    pub(crate) parent_ok: bool,
    pub(crate) registered: bool,
    pub(crate) in_flight: bool,
}

/// Watches one path (data or children) and keeps the last view.
pub struct WatchRole {
    pub(crate) path: &'static str,
    pub(crate) children: bool,
    pub view: Option<Reply>,
    pub view_zxid: i64,
    pub(crate) stale: bool,
    pub(crate) in_flight: bool,
}

pub struct WriterRole {
    pub(crate) n: u64,
    pub(crate) created: bool,
    pub(crate) in_flight: bool,
    pub(crate) next_at: u64,
}

pub struct NamingRole {
    pub(crate) parent_ok: bool,
    pub(crate) in_flight: bool,
}

pub(crate) fn open_acl() -> Vec<Acl> {
    Acl::open_unsafe()
}

pub(crate) fn create(path: &str, data: Vec<u8>, mode: CreateMode, op: CreateOp) -> Request {
    Request::Create {
        op,
        path: path.to_string(),
        data,
        acl: open_acl(),
        mode,
        ttl: 0,
    }
}

/// ZooKeeper's sequential suffix, for ordering a recipe's queue.
pub(crate) fn seq_of(name: &str) -> u64 {
    name.rsplit('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX)
}

impl RoleState {
    pub fn new(role: &Role) -> RoleState {
        let lock = |fenced, election, parent| LockRole {
            fenced,
            election,
            parent,
            phase: LockPhase::EnsureParent,
            my_node: None,
            token: 0,
            in_flight: false,
            pred: None,
            wait_sent: false,
            actions_left: 0,
            next_at: 0,
            acquisitions: 0,
        };
        let watch = |path, children| WatchRole {
            path,
            children,
            view: None,
            view_zxid: 0,
            stale: true,
            in_flight: false,
        };
        match role {
            Role::Random => RoleState::Random(RandomRole::default()),
            Role::Reader => RoleState::Reader(RandomRole {
                reader: true,
                ..RandomRole::default()
            }),
            Role::Lock { fenced } => RoleState::Lock(lock(*fenced, false, "/lock")),
            Role::Election => RoleState::Election(lock(true, true, "/election")),
            Role::Member => RoleState::Member(MemberRole {
                parent_ok: false,
                registered: false,
                in_flight: false,
            }),
            Role::Monitor => RoleState::Monitor(watch("/members", true)),
            Role::ConfigWriter => RoleState::ConfigWriter(WriterRole {
                n: 0,
                created: false,
                in_flight: false,
                next_at: 0,
            }),
            Role::ConfigReader => RoleState::ConfigReader(watch("/config", false)),
            Role::Naming => RoleState::Naming(NamingRole {
                parent_ok: false,
                in_flight: false,
            }),
            Role::Acl => RoleState::Acl(acl::AclRole::new()),
            Role::Admin => RoleState::Admin(AdminRole {
                n: 0,
                exists: false,
                in_flight: false,
                config_nulls: 0,
                config_overs: 0,
            }),
            Role::Quota => RoleState::Quota(quota::QuotaRole::default()),
            Role::Reconfig => RoleState::Reconfig(reconfig::ReconfigRole::default()),
            Role::Containers => RoleState::Containers(containers::ContainersRole::default()),
        }
    }

    pub fn is_lock_holder(&self) -> bool {
        // a holder in the middle of its critical section (it still has actions to do)
        matches!(self, RoleState::Lock(l) if l.phase == LockPhase::Holding && l.actions_left > 0)
    }

    /// Roles that only read, to follow changes.
    pub fn is_reactive(&self) -> bool {
        matches!(self, RoleState::Monitor(_) | RoleState::ConfigReader(_))
    }

    pub fn is_master(&self) -> bool {
        matches!(self, RoleState::Election(l) if l.phase == LockPhase::Holding)
    }

    /// Requests still to go right after an addAuth (taking one).
    pub(crate) fn take_burst(&mut self) -> bool {
        match self {
            RoleState::Acl(a) if a.burst > 0 => {
                a.burst -= 1;
                true
            }
            _ => false,
        }
    }

    /// An undecodable request to send before the one just drawn, every 31st draw of the
    /// random mix when odd requests are on (the role's counter, no draw):
    /// [`crate::client::refused`]'s kinds in turn.
    pub(crate) fn take_bad_frame(&mut self) -> Option<crate::client::refused::BadFrame> {
        match self {
            RoleState::Random(r) | RoleState::Reader(r) if r.bad_due => {
                r.bad_due = false;
                Some(crate::client::refused::bad_frame(r.n / 31, &random::key(0)))
            }
            _ => None,
        }
    }

    /// A sync was issued and its read is still to go.
    pub(crate) fn read_after_sync(&self) -> bool {
        matches!(self, RoleState::Random(r) | RoleState::Reader(r) if r.after_sync.is_some())
    }

    pub(crate) fn wake_hint(&self, now: u64) -> Option<u64> {
        match self {
            RoleState::Lock(l) | RoleState::Election(l) if l.next_at > now => Some(l.next_at - now),
            RoleState::ConfigWriter(w) if w.next_at > now => Some(w.next_at - now),
            RoleState::Reconfig(r) => r.wake_hint(now),
            _ => None,
        }
    }

    /// The next request, if the role wants one now.
    pub(crate) fn next(&mut self, idx: usize, session: SessionId, cx: &mut Ctx) -> Option<Request> {
        let now = cx.now;
        match self {
            RoleState::Random(r) | RoleState::Reader(r) => r.next(idx, cx),
            RoleState::Lock(l) | RoleState::Election(l) => l.next(idx, session, cx),
            RoleState::Acl(a) => Some(a.next(idx, cx.rng)),
            RoleState::Quota(q) => Some(q.next(idx, cx.rng)),
            RoleState::Containers(c) => Some(c.next(idx, cx.rng)),
            RoleState::Reconfig(r) => r.next(cx),
            RoleState::Member(m) => {
                if m.registered || m.in_flight {
                    return None;
                }
                m.in_flight = true;
                Some(if m.parent_ok {
                    create(
                        &format!("/members/c{idx}"),
                        vec![],
                        CreateMode::Ephemeral,
                        CreateOp::Create,
                    )
                } else {
                    create("/members", vec![], CreateMode::Persistent, CreateOp::Create)
                })
            }
            RoleState::Monitor(w) | RoleState::ConfigReader(w) => {
                if !w.stale || w.in_flight {
                    return None;
                }
                w.in_flight = true;
                Some(if w.children {
                    Request::GetChildren {
                        path: w.path.to_string(),
                        watch: true,
                    }
                } else {
                    Request::GetData {
                        path: w.path.to_string(),
                        watch: true,
                    }
                })
            }
            RoleState::ConfigWriter(w) => {
                if w.in_flight || now < w.next_at {
                    return None;
                }
                w.in_flight = true;
                w.n += 1;
                let data = format!("config-{}-{}", idx, w.n).into_bytes();
                Some(if w.created {
                    Request::SetData {
                        path: "/config".into(),
                        data,
                        version: -1,
                    }
                } else {
                    create("/config", data, CreateMode::Persistent, CreateOp::Create)
                })
            }
            RoleState::Admin(a) => {
                if a.in_flight {
                    return None;
                }
                a.in_flight = true;
                a.n += 1;
                // the role's own count, no draw: seeds keep their draws
                if a.n % 10 == 2
                    && !cx.params.reconfig_disabled
                    && cx.params.clients.contains(&Role::Reconfig)
                {
                    // once a reconfig has committed (the simulator's record, no draw) the
                    // write goes over its text; before, only while none has (conditional)
                    if cx.reference.configs.keys().any(|v| v & 0xffff_ffff != 0) {
                        a.config_overs += 1;
                        return Some(config_over(a.config_overs, idx));
                    }
                    return Some(config_null(a.config_nulls));
                }
                let path = format!("/adm{idx}");
                Some(if !a.exists {
                    Request::Create {
                        op: CreateOp::Create,
                        path,
                        data: vec![],
                        acl: nobody_acl(),
                        mode: CreateMode::Persistent,
                        ttl: 0,
                    }
                } else {
                    match a.n % 5 {
                        0 => Request::Delete { path, version: -1 },
                        1 => Request::GetData { path, watch: false },
                        2 => Request::GetAcl { path },
                        _ => Request::SetData {
                            path,
                            data: format!("admin-{idx}-{}", a.n).into_bytes(),
                            version: -1,
                        },
                    }
                })
            }
            RoleState::Naming(n) => {
                if n.in_flight {
                    return None;
                }
                n.in_flight = true;
                Some(if n.parent_ok {
                    create(
                        "/names/n-",
                        format!("c{idx}").into_bytes(),
                        CreateMode::PersistentSequential,
                        CreateOp::Create,
                    )
                } else {
                    create("/names", vec![], CreateMode::Persistent, CreateOp::Create)
                })
            }
        }
    }

    pub(crate) fn on_result(
        &mut self,
        req: &Request,
        reply: &Reply,
        zxid: i64,
        idx: usize,
        cx: &mut Ctx,
    ) {
        let now = cx.now;
        match self {
            RoleState::Random(r) | RoleState::Reader(r) => r.on_result(req, reply),
            RoleState::Acl(a) => a.on_result(req, reply),
            RoleState::Quota(_) | RoleState::Containers(_) => {}
            RoleState::Reconfig(r) => r.on_result(req, reply, cx),
            RoleState::Lock(l) | RoleState::Election(l) => l.on_result(req, reply, zxid, idx, cx),
            RoleState::Member(m) => {
                m.in_flight = false;
                let parent = matches!(
                    req,
                    Request::Create {
                        mode: CreateMode::Persistent,
                        ..
                    }
                );
                match reply {
                    Ok(_) | Err(KeeperError::NodeExists) if parent => m.parent_ok = true,
                    Ok(_) | Err(KeeperError::NodeExists) => m.registered = true,
                    // the parent is made by whoever gets there first
                    Err(KeeperError::NoNode) => m.parent_ok = false,
                    _ => {}
                }
            }
            RoleState::Monitor(w) | RoleState::ConfigReader(w) => {
                w.in_flight = false;
                match reply {
                    Ok(_) | Err(KeeperError::NoNode) => {
                        w.view = Some(normalize(reply));
                        w.view_zxid = zxid;
                        // a NoNode read sets no watch: poll again later
                        w.stale = reply.is_err();
                    }
                    _ => w.stale = true,
                }
            }
            RoleState::ConfigWriter(w) => {
                w.in_flight = false;
                match reply {
                    Ok(_) => w.created = true,
                    Err(KeeperError::NodeExists) => w.created = true,
                    Err(KeeperError::NoNode) => w.created = false,
                    _ => {}
                }
                let (lo, hi) = cx.params.think_ms;
                w.next_at = now + cx.rng.range(lo * 4, hi * 8);
            }
            RoleState::Admin(a) => {
                a.in_flight = false;
                match (req, reply) {
                    (_, Err(KeeperError::NoAuth)) => {
                        cx.shared.recipe_violation.get_or_insert(violation(
                            Claim::ClientSuperUser,
                            cx.now,
                            format!(
                                "client {idx}, authenticated as the super user, was refused {:?} with NoAuth",
                                req.opcode()
                            ),
                        ));
                    }
                    (Request::Create { .. }, Ok(_) | Err(KeeperError::NodeExists)) => {
                        a.exists = true
                    }
                    (Request::NullData { .. }, Ok(_)) if a.config_overs == 0 => {
                        ensemble_core::probe!("sim.admin.config-null-written");
                        a.config_nulls += 1;
                    }
                    (Request::NullData { .. }, Ok(_)) => {
                        ensemble_core::probe!("sim.admin.config-null-over-reconfig");
                    }
                    (Request::SetData { path, .. }, Ok(_))
                        if path == ensemble_core::path::CONFIG =>
                    {
                        ensemble_core::probe!("sim.admin.config-text-over-reconfig");
                    }
                    (Request::NullData { .. }, _) => {}
                    (Request::Delete { .. }, Ok(_) | Err(KeeperError::NoNode)) => a.exists = false,
                    (_, Err(KeeperError::NoNode)) => a.exists = false,
                    _ => {}
                }
            }
            RoleState::Naming(n) => {
                n.in_flight = false;
                match (req, reply) {
                    (
                        Request::Create {
                            mode: CreateMode::Persistent,
                            ..
                        },
                        _,
                    ) => {
                        n.parent_ok = matches!(reply, Ok(_) | Err(KeeperError::NodeExists));
                    }
                    (_, Ok(Response::Create { path })) => {
                        if let Some(prev) = cx.shared.names.insert(path.clone(), idx) {
                            cx.shared.name_violation.get_or_insert(format!(
                                "name {path} given to client {prev} and again to client {idx}"
                            ));
                        }
                    }
                    (_, Err(KeeperError::NoNode)) => n.parent_ok = false,
                    _ => {}
                }
            }
        }
    }

    pub(crate) fn on_watch(&mut self, ev: &WatchedEvent, _session: SessionId) {
        match self {
            RoleState::Monitor(w) | RoleState::ConfigReader(w) if ev.path == w.path => {
                w.stale = true;
            }
            RoleState::Lock(l) | RoleState::Election(l) if l.phase == LockPhase::Wait => {
                l.phase = LockPhase::List;
            }
            _ => {}
        }
    }

    pub(crate) fn on_disconnected(&mut self, _session: SessionId) {
        match self {
            RoleState::Monitor(w) | RoleState::ConfigReader(w) => {
                w.in_flight = false;
                w.stale = true;
            }
            RoleState::Lock(l) | RoleState::Election(l) => {
                l.in_flight = false;
                // After a connection loss the recipe re-reads the queue (its node may or may
                // not exist). A holder keeps believing it holds the lock until told otherwise.
                if l.phase != LockPhase::Holding && l.phase != LockPhase::Idle {
                    l.phase = if l.my_node.is_some() {
                        LockPhase::List
                    } else {
                        LockPhase::Create
                    };
                }
            }
            RoleState::Member(m) => {
                m.in_flight = false;
            }
            RoleState::ConfigWriter(w) => w.in_flight = false,
            RoleState::Naming(n) => n.in_flight = false,
            RoleState::Admin(a) => a.in_flight = false,
            RoleState::Reconfig(r) => r.in_flight = false,
            RoleState::Random(r) | RoleState::Reader(r) => r.after_sync = None,
            RoleState::Acl(_) | RoleState::Quota(_) | RoleState::Containers(_) => {}
        }
    }

    pub(crate) fn on_new_session(&mut self, _session: SessionId) {
        if let RoleState::Member(m) = self {
            m.registered = false;
        }
    }

    pub(crate) fn on_session_end(&mut self) {
        match self {
            RoleState::Lock(l) | RoleState::Election(l) => {
                // The session's ephemerals are gone; a holder only finds out later (it may
                // act before it does: that is what fencing is for).
                l.my_node = None;
                l.in_flight = false;
                if l.phase != LockPhase::Holding {
                    l.phase = LockPhase::EnsureParent;
                }
            }
            RoleState::Member(m) => {
                m.registered = false;
                m.in_flight = false;
            }
            RoleState::Monitor(w) | RoleState::ConfigReader(w) => {
                w.stale = true;
                w.in_flight = false;
            }
            RoleState::ConfigWriter(w) => w.in_flight = false,
            RoleState::Naming(n) => n.in_flight = false,
            RoleState::Admin(a) => a.in_flight = false,
            RoleState::Random(r) | RoleState::Reader(r) => r.after_sync = None,
            RoleState::Acl(a) => a.on_session_end(),
            RoleState::Reconfig(r) => r.in_flight = false,
            RoleState::Quota(_) | RoleState::Containers(_) => {}
        }
    }
}
