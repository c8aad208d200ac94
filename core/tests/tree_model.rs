//! Property tests of the data tree against a naive reference model written here: a flat map
//! from path to node where children are found by scanning, the client-visible cversion is a
//! plain counter, and a multi is made atomic by cloning the whole model. Random txn sequences
//! must give the same replies, the same triggers and the same state; snapshots must round
//! trip; and loading arbitrary bytes must never panic.

use ensemble_core::acl;
use ensemble_core::path;
use ensemble_core::tree::{DataTree, TTL_MAX, TreeOptions, Trigger};
use ensemble_core::txn::{Origin, Txn, TxnOp};
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{
    Acl, CreateMode, CreateOp, EventType, Id, KeeperError, MultiOp, OpResult, Reply, Request,
    Response, SessionId, Stat, perms,
};
use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::BTreeMap;

// ---------------------------------------------------------------- the model

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Persistent,
    Ephemeral(SessionId),
    Container,
    Ttl(i64),
}

#[derive(Clone, Debug)]
struct MNode {
    data: Vec<u8>,
    acl: Vec<Acl>,
    czxid: i64,
    mzxid: i64,
    pzxid: i64,
    ctime: i64,
    mtime: i64,
    version: i32,
    /// What clients see: +1 per child created or deleted.
    cversion: i32,
    aversion: i32,
    kind: Kind,
    /// Child creations: the sequential-name counter.
    seq: i32,
}

impl MNode {
    fn new(zxid: i64, time: i64, data: Vec<u8>, acl: Vec<Acl>, kind: Kind) -> MNode {
        MNode {
            data,
            acl,
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            kind,
            seq: 0,
        }
    }
}

#[derive(Clone, Debug)]
struct Model {
    extended: bool,
    nodes: BTreeMap<String, MNode>,
    sessions: BTreeMap<SessionId, i32>,
}

struct Cx<'a> {
    zxid: i64,
    time: i64,
    session: SessionId,
    auth: &'a [Id],
}

type Triggers = Vec<Trigger>;

fn trig(path: &str, kind: EventType) -> Trigger {
    Trigger {
        path: path.to_string(),
        kind,
    }
}

impl Model {
    fn new(extended: bool) -> Model {
        let mut nodes = BTreeMap::new();
        let open = Acl::open_unsafe();
        let root = MNode {
            cversion: -1,
            ..MNode::new(0, 0, vec![], open.clone(), Kind::Persistent)
        };
        nodes.insert("/".to_string(), root);
        let zk = MNode {
            cversion: -2,
            ..MNode::new(0, 0, vec![], open.clone(), Kind::Persistent)
        };
        nodes.insert("/zookeeper".to_string(), zk);
        nodes.insert(
            "/zookeeper/quota".to_string(),
            MNode::new(0, 0, vec![], open, Kind::Persistent),
        );
        let ro = vec![Acl {
            perms: perms::READ,
            id: Id::anyone(),
        }];
        let config = MNode {
            aversion: -1,
            ..MNode::new(0, 0, vec![], ro, Kind::Persistent)
        };
        nodes.insert("/zookeeper/config".to_string(), config);
        Model {
            extended,
            nodes,
            sessions: BTreeMap::new(),
        }
    }

    fn children(&self, p: &str) -> Vec<String> {
        self.nodes
            .keys()
            .filter(|k| k.as_str() != "/" && path::parent(k) == Some(p))
            .map(|k| path::name(k).to_string())
            .collect()
    }

    fn stat(&self, p: &str) -> Option<Stat> {
        let n = self.nodes.get(p)?;
        Some(Stat {
            czxid: n.czxid,
            mzxid: n.mzxid,
            ctime: n.ctime,
            mtime: n.mtime,
            version: n.version,
            cversion: n.cversion,
            aversion: n.aversion,
            ephemeral_owner: match n.kind {
                Kind::Ephemeral(s) => s,
                _ => 0,
            },
            data_length: n.data.len() as i32,
            num_children: self.children(p).len() as i32,
            pzxid: n.pzxid,
        })
    }

    /// ZooKeeper's parent lookup of a create or delete: text before the last '/', "" = root.
    fn parent_of(p: &str) -> Option<String> {
        let slash = p.rfind('/')?;
        Some(if slash == 0 {
            "/".to_string()
        } else {
            p[..slash].to_string()
        })
    }

    fn apply(&mut self, txn: &Txn) -> (Reply, Triggers) {
        let mut tr = Vec::new();
        let cx_auth;
        let reply = match &txn.op {
            TxnOp::CreateSession { timeout_ms } => {
                self.sessions.insert(txn.session, *timeout_ms);
                Ok(Response::Empty)
            }
            TxnOp::CloseSession => {
                self.sessions.remove(&txn.session);
                let mine: Vec<String> = self
                    .nodes
                    .iter()
                    .filter(|(_, n)| n.kind == Kind::Ephemeral(txn.session))
                    .map(|(p, _)| p.clone())
                    .collect();
                for p in mine {
                    self.unlink(txn.zxid.as_i64(), &p, &mut tr);
                }
                Ok(Response::Empty)
            }
            TxnOp::DeleteContainer { path: p } => self.delete_container(txn, p, &mut tr),
            // Quotas are the tree's quota tests' (tree/tests/quota.rs); none are drawn here.
            TxnOp::EnforcedWrite { .. } => unreachable!("this model draws no enforced writes"),
            // Reconfigs are the simulator's and core/src/tree/reconfig.rs's.
            TxnOp::Reconfig { .. } => unreachable!("this model draws no reconfigs"),
            // A foreign leader's resolved txns are the simulator's (`ensemble-sim foreign`).
            TxnOp::Resolved(_) => unreachable!("this model draws no resolved txns"),
            TxnOp::Write { request, auth } => {
                cx_auth = auth.clone();
                let cx = Cx {
                    zxid: txn.zxid.as_i64(),
                    time: txn.time,
                    session: txn.session,
                    auth: &cx_auth,
                };
                match request {
                    Request::Multi(ops) => {
                        let saved = self.clone();
                        let mut results = Vec::new();
                        let mut failed = None;
                        for (i, op) in ops.iter().enumerate() {
                            let r = match op {
                                MultiOp::Create {
                                    op: o,
                                    path: p,
                                    data,
                                    acl,
                                    mode,
                                    ttl,
                                } => self
                                    .create(&cx, *o, p, data, acl, *mode, *ttl, &mut tr)
                                    .map(|(p, s)| OpResult::Create {
                                        path: p,
                                        stat: (*o != CreateOp::Create).then_some(s),
                                    }),
                                MultiOp::Delete { path: p, version } => self
                                    .delete(&cx, p, *version, &mut tr)
                                    .map(|_| OpResult::Delete),
                                MultiOp::SetData {
                                    path: p,
                                    data,
                                    version,
                                } => self
                                    .set_data(&cx, p, data, *version, &mut tr)
                                    .map(OpResult::SetData),
                                MultiOp::Check { path: p, version } => {
                                    self.check(&cx, p, *version).map(|_| OpResult::Check)
                                }
                            };
                            match r {
                                Ok(res) => results.push(res),
                                Err(e) => {
                                    failed = Some((i, e));
                                    break;
                                }
                            }
                        }
                        match failed {
                            None => Ok(Response::Multi(results)),
                            Some((i, e)) => {
                                *self = saved;
                                tr.clear();
                                let res = (0..ops.len())
                                    .map(|j| {
                                        OpResult::Error(match j.cmp(&i) {
                                            std::cmp::Ordering::Less => 0,
                                            std::cmp::Ordering::Equal => e.code(),
                                            std::cmp::Ordering::Greater => -2,
                                        })
                                    })
                                    .collect();
                                Ok(Response::Multi(res))
                            }
                        }
                    }
                    Request::Create {
                        op,
                        path: p,
                        data,
                        acl,
                        mode,
                        ttl,
                    } => self
                        .create(&cx, *op, p, data, acl, *mode, *ttl, &mut tr)
                        .map(|(p, stat)| {
                            if *op == CreateOp::Create {
                                Response::Create { path: p }
                            } else {
                                Response::Create2 { path: p, stat }
                            }
                        }),
                    Request::Delete { path: p, version } => self
                        .delete(&cx, p, *version, &mut tr)
                        .map(|_| Response::Empty),
                    Request::SetData {
                        path: p,
                        data,
                        version,
                    } => self
                        .set_data(&cx, p, data, *version, &mut tr)
                        .map(Response::Stat),
                    Request::SetAcl {
                        path: p,
                        acl,
                        version,
                    } => self.set_acl(&cx, p, acl, *version).map(Response::Stat),
                    Request::Check { path: p, version } => {
                        self.check(&cx, p, *version).map(|_| Response::Empty)
                    }
                    _ => Err(KeeperError::Unimplemented),
                }
            }
        };
        if reply.is_err() {
            tr.clear();
        }
        (reply, tr)
    }

    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        cx: &Cx,
        op: CreateOp,
        p: &str,
        data: &[u8],
        acl_in: &[Acl],
        mode: CreateMode,
        ttl: i64,
        tr: &mut Triggers,
    ) -> Result<(String, Stat), KeeperError> {
        use KeeperError::*;
        let ttl = if op == CreateOp::Ttl { ttl } else { -1 };
        if mode.is_ttl() && !self.extended {
            return Err(Unimplemented);
        }
        let ttl_ok = if mode.is_ttl() {
            ttl > 0 && ttl <= TTL_MAX
        } else {
            ttl < 0
        };
        if !ttl_ok || (op == CreateOp::Ttl && !mode.is_ttl()) {
            return Err(BadArguments);
        }
        if mode.is_ephemeral() && !self.sessions.contains_key(&cx.session) {
            return Err(SessionExpired);
        }
        if p.contains('\0') {
            return Err(BadArguments);
        }
        let parent = Model::parent_of(p).ok_or(BadArguments)?;
        let fixed = acl::fixup(acl_in, cx.auth, Default::default())?;
        let pn = self.nodes.get(&parent).ok_or(NoNode)?;
        if !acl::check(&pn.acl, perms::CREATE, cx.auth) {
            return Err(NoAuth);
        }
        let full = if mode.is_sequential() {
            format!("{p}{:010}", pn.seq)
        } else {
            p.to_string()
        };
        path::validate(&full)?;
        if self.nodes.contains_key(&full) {
            return Err(NodeExists);
        }
        if matches!(pn.kind, Kind::Ephemeral(_)) {
            return Err(NoChildrenForEphemerals);
        }
        let kind = match op {
            CreateOp::Container => Kind::Container,
            CreateOp::Ttl => Kind::Ttl(ttl),
            _ if mode.is_ephemeral() => Kind::Ephemeral(cx.session),
            _ => Kind::Persistent,
        };
        let pn = self.nodes.get_mut(&parent).expect("checked");
        pn.seq += 1;
        pn.cversion += 1;
        pn.pzxid = cx.zxid;
        self.nodes.insert(
            full.clone(),
            MNode::new(cx.zxid, cx.time, data.to_vec(), fixed, kind),
        );
        tr.push(trig(&full, EventType::NodeCreated));
        tr.push(trig(&parent, EventType::NodeChildrenChanged));
        let stat = self.stat(&full).expect("created");
        Ok((full, stat))
    }

    fn delete(
        &mut self,
        cx: &Cx,
        p: &str,
        version: i32,
        tr: &mut Triggers,
    ) -> Result<(), KeeperError> {
        use KeeperError::*;
        if p.contains('\0') || path::is_special(p) {
            return Err(BadArguments);
        }
        let parent = Model::parent_of(p).ok_or(BadArguments)?;
        let pn = self.nodes.get(&parent).ok_or(NoNode)?;
        if !acl::check(&pn.acl, perms::DELETE, cx.auth) {
            return Err(NoAuth);
        }
        let n = self.nodes.get(p).ok_or(NoNode)?;
        if version != -1 && version != n.version {
            return Err(BadVersion);
        }
        if !self.children(p).is_empty() {
            return Err(NotEmpty);
        }
        self.unlink(cx.zxid, p, tr);
        Ok(())
    }

    fn unlink(&mut self, zxid: i64, p: &str, tr: &mut Triggers) {
        let parent = path::parent(p).expect("not the root").to_string();
        self.nodes.remove(p);
        let pn = self.nodes.get_mut(&parent).expect("parent");
        pn.cversion += 1;
        pn.pzxid = pn.pzxid.max(zxid);
        tr.push(trig(p, EventType::NodeDeleted));
        tr.push(trig(&parent, EventType::NodeChildrenChanged));
    }

    fn set_data(
        &mut self,
        cx: &Cx,
        p: &str,
        data: &[u8],
        version: i32,
        tr: &mut Triggers,
    ) -> Result<Stat, KeeperError> {
        path::validate(p)?;
        let n = self.nodes.get_mut(p).ok_or(KeeperError::NoNode)?;
        if !acl::check(&n.acl, perms::WRITE, cx.auth) {
            return Err(KeeperError::NoAuth);
        }
        if version != -1 && version != n.version {
            return Err(KeeperError::BadVersion);
        }
        n.version += 1;
        n.data = data.to_vec();
        n.mzxid = cx.zxid;
        n.mtime = cx.time;
        tr.push(trig(p, EventType::NodeDataChanged));
        Ok(self.stat(p).expect("exists"))
    }

    fn set_acl(
        &mut self,
        cx: &Cx,
        p: &str,
        acl_in: &[Acl],
        version: i32,
    ) -> Result<Stat, KeeperError> {
        path::validate(p)?;
        let fixed = acl::fixup(acl_in, cx.auth, Default::default())?;
        let n = self.nodes.get_mut(p).ok_or(KeeperError::NoNode)?;
        if !acl::check(&n.acl, perms::ADMIN, cx.auth) {
            return Err(KeeperError::NoAuth);
        }
        if version != -1 && version != n.aversion {
            return Err(KeeperError::BadVersion);
        }
        n.aversion += 1;
        n.acl = fixed;
        Ok(self.stat(p).expect("exists"))
    }

    fn check(&self, cx: &Cx, p: &str, version: i32) -> Result<(), KeeperError> {
        path::validate(p)?;
        let n = self.nodes.get(p).ok_or(KeeperError::NoNode)?;
        if !acl::check(&n.acl, perms::READ, cx.auth) {
            return Err(KeeperError::NoAuth);
        }
        if version != -1 && version != n.version {
            return Err(KeeperError::BadVersion);
        }
        Ok(())
    }

    fn reapable_node(&self, p: &str, now: i64) -> bool {
        let n = &self.nodes[p];
        if !self.children(p).is_empty() {
            return false;
        }
        match n.kind {
            // A container that had a child: its visible cversion moved off zero.
            Kind::Container => n.seq > 0,
            Kind::Ttl(ttl) => now - n.mtime > ttl,
            _ => false,
        }
    }

    fn reapable(&self, now: i64) -> Vec<String> {
        self.nodes
            .keys()
            .filter(|p| self.reapable_node(p, now))
            .cloned()
            .collect()
    }

    fn delete_container(&mut self, txn: &Txn, p: &str, tr: &mut Triggers) -> Reply {
        if p.contains('\0') || path::is_special(p) || !p.contains('/') {
            return Err(KeeperError::BadArguments);
        }
        if !self.nodes.contains_key(p) {
            return Err(KeeperError::NoNode);
        }
        if !self.children(p).is_empty() {
            return Err(KeeperError::NotEmpty);
        }
        if !self.reapable_node(p, txn.time) {
            return Err(KeeperError::BadVersion);
        }
        self.unlink(txn.zxid.as_i64(), p, tr);
        Ok(Response::Empty)
    }

    /// Compare everything a client or the server can observe.
    fn assert_same(&self, t: &DataTree) {
        let paths: Vec<&str> = t.paths().collect();
        let mine: Vec<&str> = self.nodes.keys().map(|k| k.as_str()).collect();
        assert_eq!(paths, mine, "node sets differ");
        for (p, n) in &self.nodes {
            assert_eq!(t.stat(p), self.stat(p), "stat of {p}");
            assert_eq!(
                t.get_data(p).map(|(d, _)| d.to_vec()),
                Some(n.data.clone()),
                "data of {p}"
            );
            assert_eq!(t.get_acl(p), Some(&n.acl[..]), "acl of {p}");
            assert_eq!(t.get_children(p), Some(self.children(p)), "children of {p}");
        }
        assert_eq!(t.sessions(), &self.sessions);
        for s in SESSIONS {
            let eph: Vec<String> = self
                .nodes
                .iter()
                .filter(|(_, n)| n.kind == Kind::Ephemeral(s))
                .map(|(p, _)| p.clone())
                .collect();
            assert_eq!(t.session_ephemerals(s), eph);
        }
        let size: u64 = self
            .nodes
            .iter()
            .map(|(p, n)| p.len() as u64 + n.data.len() as u64)
            .sum();
        assert_eq!(t.approximate_data_size(), size);
        assert_eq!(t.node_count(), self.nodes.len() + 1);
        assert_eq!(t.check_consistency(), Ok(()));
    }
}

// ---------------------------------------------------------------- generators

const SESSIONS: [SessionId; 3] = [0x1000_0000_0000_0001, 0x1000_0000_0000_0002, 0];

fn bob() -> Id {
    Id::new("digest", &acl::digest_id("bob:pw"))
}

fn paths() -> impl Strategy<Value = String> {
    let common = prop::sample::select(vec![
        "/a", "/b", "/a/b", "/a/c", "/a/b/c", "/b/a", "/c", "/c/x", "/a/s",
    ]);
    let seq = prop::sample::select(vec![
        "/a/s0000000000",
        "/a/s0000000001",
        "/a/s0000000002",
        "/s",
        "/s0000000000",
        "/s0000000001",
    ]);
    let odd = prop::sample::select(vec![
        "/",
        "/zookeeper",
        "/zookeeper/quota",
        "/zookeeper/config",
        "/zookeeper/quota/q",
        "/a/",
        "a",
        "a/b",
        "/a//b",
        "/a/.",
        "",
        "/a\0",
    ]);
    prop_oneof![8 => common, 2 => seq, 1 => odd].prop_map(str::to_string)
}

fn acls() -> impl Strategy<Value = Vec<Acl>> {
    let a = |perms, scheme: &str, id: &str| Acl {
        perms,
        id: Id::new(scheme, id),
    };
    let usual = Just(Acl::open_unsafe());
    let other = prop::sample::select(vec![
        vec![a(perms::READ, "world", "anyone")],
        vec![a(perms::ALL, "digest", &acl::digest_id("bob:pw"))],
        vec![a(perms::ALL, "auth", "")],
        vec![a(perms::ALL, "ip", "10.0.0.0/8")],
        vec![a(
            perms::READ | perms::CREATE | perms::DELETE,
            "world",
            "anyone",
        )],
        vec![
            a(perms::ALL, "world", "anyone"),
            a(perms::ALL, "world", "anyone"),
        ],
        vec![],
        vec![a(perms::ALL, "nosuch", "x")],
    ]);
    prop_oneof![6 => usual, 3 => other]
}

fn versions() -> impl Strategy<Value = i32> {
    prop_oneof![3 => Just(-1), 2 => 0..3i32]
}

fn create_parts() -> impl Strategy<Value = (CreateOp, CreateMode, i64)> {
    use CreateMode::*;
    let plain = (
        prop::sample::select(vec![CreateOp::Create, CreateOp::Create2]),
        prop::sample::select(vec![
            Persistent,
            Persistent,
            Ephemeral,
            PersistentSequential,
            EphemeralSequential,
        ]),
    )
        .prop_map(|(op, mode)| (op, mode, 0i64));
    let container = Just((CreateOp::Container, Container, 0i64));
    let ttl = (
        prop::sample::select(vec![PersistentWithTtl, PersistentSequentialWithTtl]),
        prop::sample::select(vec![20i64, 50, 200]),
    )
        .prop_map(|(mode, ttl)| (CreateOp::Ttl, mode, ttl));
    // Inconsistent combinations: wrong ttl, TTL modes through other opcodes, and so on.
    let odd = (
        prop::sample::select(vec![
            CreateOp::Create,
            CreateOp::Create2,
            CreateOp::Container,
            CreateOp::Ttl,
        ]),
        (0..7i32).prop_map(|f| CreateMode::from_flags(f).expect("0..7")),
        prop::sample::select(vec![-1i64, 0, 50, TTL_MAX, TTL_MAX + 1]),
    );
    prop_oneof![8 => plain, 2 => container, 2 => ttl, 2 => odd]
}

fn multi_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        (create_parts(), paths(), vec(any::<u8>(), 0..3), acls()).prop_map(
            |((op, mode, ttl), path, data, acl)| MultiOp::Create {
                op,
                path,
                data,
                acl,
                mode,
                ttl
            }
        ),
        (paths(), versions()).prop_map(|(path, version)| MultiOp::Delete { path, version }),
        (paths(), vec(any::<u8>(), 0..3), versions()).prop_map(|(path, data, version)| {
            MultiOp::SetData {
                path,
                data,
                version,
            }
        }),
        (paths(), versions()).prop_map(|(path, version)| MultiOp::Check { path, version }),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        4 => (create_parts(), paths(), vec(any::<u8>(), 0..3), acls())
            .prop_map(|((op, mode, ttl), path, data, acl)| Request::Create { op, path, data, acl, mode, ttl }),
        3 => (paths(), versions()).prop_map(|(path, version)| Request::Delete { path, version }),
        2 => (paths(), vec(any::<u8>(), 0..3), versions())
            .prop_map(|(path, data, version)| Request::SetData { path, data, version }),
        1 => (paths(), acls(), versions()).prop_map(|(path, acl, version)| Request::SetAcl { path, acl, version }),
        1 => (paths(), versions()).prop_map(|(path, version)| Request::Check { path, version }),
        2 => vec(multi_op(), 0..5).prop_map(Request::Multi),
    ]
}

#[derive(Clone, Debug)]
enum Step {
    Write {
        session: usize,
        auth: u8,
        request: Request,
    },
    CreateSession(usize),
    CloseSession(usize),
    DeleteContainer(String),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => (prop_oneof![8 => 0..2usize, 1 => Just(2usize)], 0..3u8, request())
            .prop_map(|(session, auth, request)| Step::Write { session, auth, request }),
        2 => (0..2usize).prop_map(Step::CreateSession),
        1 => (0..3usize).prop_map(Step::CloseSession),
        2 => paths().prop_map(Step::DeleteContainer),
    ]
}

fn to_txn(step: &Step, zxid: Zxid, time: i64) -> Txn {
    let (session, op) = match step {
        Step::Write {
            session,
            auth,
            request,
        } => {
            let auth = match auth {
                0 => vec![],
                1 => vec![Id::new("ip", "10.1.2.3")],
                _ => vec![Id::new("ip", "192.168.0.1"), bob()],
            };
            (
                SESSIONS[*session],
                TxnOp::Write {
                    request: request.clone(),
                    auth,
                },
            )
        }
        Step::CreateSession(s) => (
            SESSIONS[*s],
            TxnOp::CreateSession {
                timeout_ms: 1000 * (*s as i32 + 1),
            },
        ),
        Step::CloseSession(s) => (SESSIONS[*s], TxnOp::CloseSession),
        Step::DeleteContainer(p) => (0, TxnOp::DeleteContainer { path: p.clone() }),
    };
    Txn {
        zxid,
        time,
        session,
        cxid: 0,
        origin: Origin::NONE,
        op,
    }
}

fn txns(steps: &[(Step, i64)]) -> Vec<Txn> {
    let mut zxid = Zxid::new(1, 0);
    let mut time = 1_000_000;
    // Sessions 1 and 2 open first so ephemerals get created.
    let mut out = vec![];
    for s in 0..2 {
        zxid = zxid.next();
        out.push(to_txn(&Step::CreateSession(s), zxid, time));
    }
    for (step, dt) in steps {
        zxid = zxid.next();
        time += dt;
        out.push(to_txn(step, zxid, time));
    }
    out
}

fn steps() -> impl Strategy<Value = Vec<(Step, i64)>> {
    vec((step(), 0..40i64), 1..80)
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn tree_matches_the_model(steps in steps(), extended in any::<bool>()) {
        let opts = TreeOptions { extended_types: extended, auth_providers: Default::default(), plant: None };
        let mut tree = DataTree::new(opts);
        let mut model = Model::new(extended);
        model.assert_same(&tree);
        for txn in txns(&steps) {
            let out = tree.apply(&txn);
            let (reply, triggers) = model.apply(&txn);
            prop_assert_eq!(&out.reply, &reply, "reply to {:?}", txn.op);
            prop_assert_eq!(&out.triggers, &triggers, "triggers of {:?}", txn.op);
            model.assert_same(&tree);
            for now in [txn.time, txn.time + 60, txn.time + 10_000] {
                prop_assert_eq!(tree.reapable(now), model.reapable(now));
            }
        }
    }

    #[test]
    fn snapshot_round_trip_and_replay(steps in steps(), cut in any::<prop::sample::Index>()) {
        let opts = TreeOptions { extended_types: true, auth_providers: Default::default(), plant: None };
        let txns = txns(&steps);
        let cut = cut.index(txns.len() + 1);
        let mut a = DataTree::new(opts);
        for txn in &txns[..cut] {
            a.apply(txn);
        }
        let bytes = a.to_snapshot();
        let mut b = DataTree::from_snapshot(&bytes, opts).expect("own snapshot loads");
        prop_assert_eq!(b.digest(), a.digest());
        prop_assert_eq!(b.to_snapshot(), bytes.clone());
        prop_assert_eq!(b.check_consistency(), Ok(()));
        for p in a.paths() {
            let read = |t: &DataTree, r: Request| t.read(&r, &[bob()]);
            for r in [
                Request::GetData { path: p.into(), watch: false },
                Request::GetChildren2 { path: p.into(), watch: false },
                Request::GetAcl { path: p.into() },
                Request::GetAllChildrenNumber { path: p.into() },
            ] {
                prop_assert_eq!(read(&a, r.clone()), read(&b, r));
            }
        }
        // Both go on identically: same replies, same triggers, same bytes.
        for txn in &txns[cut..] {
            prop_assert_eq!(a.apply(txn), b.apply(txn));
        }
        prop_assert_eq!(a.digest(), b.digest());
        prop_assert_eq!(a.to_snapshot(), b.to_snapshot());
    }

    /// A snapshot written a slice at a time while txns keep applying holds exactly the
    /// state of its start: the bytes `to_snapshot` gave then.
    #[test]
    fn sliced_snapshot_is_the_state_at_its_start(
        steps in steps(),
        cut in any::<prop::sample::Index>(),
        budgets in vec(0..4usize, 1..40),
        part_size in 1..600usize,
    ) {
        let opts = TreeOptions { extended_types: true, auth_providers: Default::default(), plant: None };
        let txns = txns(&steps);
        let cut = cut.index(txns.len() + 1);
        let mut t = DataTree::new(opts);
        for txn in &txns[..cut] {
            t.apply(txn);
        }
        let expected = t.to_snapshot();
        let at = t.last_zxid();
        t.begin_snapshot(part_size);
        prop_assert_eq!(t.snapshot_in_progress(), Some(at));
        // Every piece in order, and the snapshot complete at the one marked last.
        let mut bytes = Vec::new();
        let mut complete = false;
        let mut next_index = 0u32;
        let mut take = |pieces: Vec<ensemble_core::tree::SnapshotPiece>| -> Result<(), TestCaseError> {
            for p in pieces {
                prop_assert!(!complete, "a piece after the last");
                prop_assert_eq!(p.zxid, at);
                prop_assert_eq!(p.index, next_index);
                next_index += 1;
                prop_assert!(p.last || p.data.len() >= part_size, "a part short of its size");
                bytes.extend_from_slice(&p.data);
                complete = p.last;
            }
            Ok(())
        };
        let mut rest = txns[cut..].iter();
        for budget in budgets.iter().cycle() {
            take(t.continue_snapshot(*budget))?;
            if t.snapshot_in_progress().is_none() {
                break;
            }
            match rest.next() {
                Some(txn) => {
                    t.apply(txn);
                }
                None => {
                    take(t.finish_snapshot())?;
                    break;
                }
            }
        }
        prop_assert!(complete, "the snapshot completes");
        prop_assert!(bytes == expected, "sliced snapshot differs from the one at its start");
        prop_assert_eq!(t.snapshot_in_progress(), None);
        // The tree itself went on as if no snapshot were being written.
        let applied = cut + txns[cut..].len() - rest.len();
        let mut plain_part = DataTree::new(opts);
        for txn in &txns[..applied] {
            plain_part.apply(txn);
        }
        prop_assert_eq!(t.to_snapshot(), plain_part.to_snapshot());
        prop_assert_eq!(t.check_consistency(), Ok(()));
    }

    #[test]
    fn from_snapshot_never_panics_on_random_bytes(bytes in vec(any::<u8>(), 0..512)) {
        let _ = DataTree::from_snapshot(&bytes, TreeOptions::default());
    }

    #[test]
    fn from_snapshot_never_panics_on_damaged_snapshots(
        steps in vec((step(), 0..40i64), 0..15),
        damage in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let opts = TreeOptions { extended_types: true, auth_providers: Default::default(), plant: None };
        let mut t = DataTree::new(opts);
        for txn in txns(&steps) {
            t.apply(&txn);
        }
        let mut bytes = t.to_snapshot();
        for (at, v) in damage {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        let keep = bytes.len() - cut.index(bytes.len() / 4 + 1);
        bytes.truncate(keep);
        if let Ok(loaded) = DataTree::from_snapshot(&bytes, opts) {
            // Whatever loads is internally consistent and goes on working.
            prop_assert_eq!(loaded.check_consistency(), Ok(()));
            let again = DataTree::from_snapshot(&loaded.to_snapshot(), opts).expect("reload");
            prop_assert_eq!(again.digest(), loaded.digest());
        }
    }
}
