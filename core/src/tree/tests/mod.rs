//! Unit tests of the data tree: every error path of every write in ZooKeeper's order, the Stat
//! after each op kind, triggers, multi, sessions, containers/TTL, reads, snapshots.

use super::*;
use crate::txn::Origin;
use ensemble_proto::proto::{ReadOp, ReadResult};

const S1: SessionId = 0x1000_0000_0000_0001;
const S2: SessionId = 0x1000_0000_0000_0002;
const T0: i64 = 1_700_000_000_000;

struct H {
    t: DataTree,
    zxid: Zxid,
    time: i64,
}

impl H {
    fn new() -> H {
        H::with(TreeOptions {
            extended_types: true,
            auth_providers: Default::default(),
            plant: None,
        })
    }

    fn with(opts: TreeOptions) -> H {
        let mut h = H {
            t: DataTree::new(opts),
            zxid: Zxid::new(1, 0),
            time: T0,
        };
        h.txn(S1, TxnOp::CreateSession { timeout_ms: 30_000 });
        h
    }

    fn txn(&mut self, session: SessionId, op: TxnOp) -> ApplyOutcome {
        self.zxid = self.zxid.next();
        self.time += 10;
        let txn = Txn {
            zxid: self.zxid,
            time: self.time,
            session,
            cxid: 1,
            origin: Origin::NONE,
            op,
        };
        let out = self.t.apply(&txn);
        assert_eq!(self.t.last_zxid(), self.zxid);
        assert_eq!(self.t.check_consistency(), Ok(()));
        out
    }

    fn write_as(&mut self, session: SessionId, auth: &[Id], request: Request) -> ApplyOutcome {
        self.txn(
            session,
            TxnOp::Write {
                request,
                auth: auth.to_vec(),
            },
        )
    }

    fn write(&mut self, request: Request) -> Reply {
        self.write_as(S1, &[], request).reply
    }

    fn z(&self) -> i64 {
        self.zxid.as_i64()
    }

    fn mk(&mut self, path: &str, data: &[u8]) -> Stat {
        match self.write(create(
            CreateOp::Create2,
            path,
            data,
            CreateMode::Persistent,
        )) {
            Ok(Response::Create2 { path: p, stat }) => {
                assert_eq!(p, path);
                stat
            }
            other => panic!("create {path}: {other:?}"),
        }
    }

    fn stat(&self, path: &str) -> Stat {
        self.t
            .stat(path)
            .unwrap_or_else(|| panic!("{path} missing"))
    }
}

fn create(op: CreateOp, path: &str, data: &[u8], mode: CreateMode) -> Request {
    create_acl(op, path, data, mode, Acl::open_unsafe())
}

fn create_acl(op: CreateOp, path: &str, data: &[u8], mode: CreateMode, acl: Vec<Acl>) -> Request {
    Request::Create {
        op,
        path: path.into(),
        data: data.to_vec(),
        acl,
        mode,
        ttl: -1,
    }
}

fn create_ttl(path: &str, mode: CreateMode, ttl: i64) -> Request {
    Request::Create {
        op: CreateOp::Ttl,
        path: path.into(),
        data: vec![],
        acl: Acl::open_unsafe(),
        mode,
        ttl,
    }
}

fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl {
        perms,
        id: Id::new(scheme, id),
    }
}

fn trig(path: &str, kind: EventType) -> Trigger {
    Trigger {
        path: path.into(),
        kind,
    }
}

fn err(code: KeeperError) -> Reply {
    Err(code)
}

// ------------------------------------------------------------------ initial tree

#[test]
fn initial_tree_as_zookeeper() {
    let t = DataTree::new(TreeOptions::default());
    assert_eq!(t.last_zxid(), Zxid::ZERO);
    // Recorded from ZooKeeper 3.8: the root shows cversion -1 and /zookeeper -2, because their
    // children were added without counting (cversion = 2 * creations - children).
    let root = t.stat("/").unwrap();
    assert_eq!(
        (root.cversion, root.num_children, root.czxid, root.pzxid),
        (-1, 1, 0, 0)
    );
    let zk = t.stat("/zookeeper").unwrap();
    assert_eq!((zk.cversion, zk.num_children), (-2, 2));
    let config = t.stat("/zookeeper/config").unwrap();
    assert_eq!(
        (config.aversion, config.version, config.data_length),
        (-1, 0, 0)
    );
    assert_eq!(
        t.get_acl("/zookeeper/config").unwrap(),
        &[acl(perms::READ, "world", "anyone")]
    );
    assert_eq!(t.get_acl("/").unwrap(), &Acl::open_unsafe()[..]);
    assert_eq!(t.get_children("/").unwrap(), vec!["zookeeper"]);
    assert_eq!(
        t.get_children("/zookeeper").unwrap(),
        vec!["config", "quota"]
    );
    // ZooKeeper counts its "" alias of the root; 1 + 10 + 16 + 17 path characters.
    assert_eq!(t.node_count(), 5);
    assert_eq!(t.approximate_data_size(), 44);
    assert_eq!(t.ephemerals_count(), 0);
    assert!(t.sessions().is_empty());
    assert_eq!(t.check_consistency(), Ok(()));
    assert_eq!(t.digest(), DataTree::new(TreeOptions::default()).digest());
}

#[test]
#[should_panic(expected = "zxids must strictly increase")]
fn zxids_must_increase() {
    let mut h = H::new();
    let txn = Txn {
        zxid: h.zxid,
        time: 0,
        session: S1,
        cxid: 0,
        origin: Origin::NONE,
        op: TxnOp::CreateSession { timeout_ms: 1 },
    };
    h.t.apply(&txn);
}

// ------------------------------------------------------------------ create

#[test]
fn create_stats_and_parent_bookkeeping() {
    let mut h = H::new();
    let a = h.mk("/a", b"hello");
    let z = h.z();
    assert_eq!(
        a,
        Stat {
            czxid: z,
            mzxid: z,
            ctime: h.time,
            mtime: h.time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            data_length: 5,
            num_children: 0,
            pzxid: z,
        }
    );
    let root = h.stat("/");
    assert_eq!((root.cversion, root.num_children, root.pzxid), (0, 2, z));
    h.mk("/a/b", b"");
    let za = h.z();
    let a = h.stat("/a");
    assert_eq!(
        (a.cversion, a.num_children, a.pzxid, a.mzxid),
        (1, 1, za, z),
        "mzxid untouched by children"
    );
    // Plain create (opcode 1) answers with the path only.
    assert_eq!(
        h.write(create(
            CreateOp::Create,
            "/a/c",
            b"",
            CreateMode::Persistent
        )),
        Ok(Response::Create {
            path: "/a/c".into()
        })
    );
    assert_eq!(h.stat("/a").cversion, 2);
    assert_eq!(
        h.txn(
            S1,
            TxnOp::Write {
                request: create(CreateOp::Create, "/a/d", b"x", CreateMode::Persistent),
                auth: vec![]
            }
        )
        .triggers,
        vec![
            trig("/a/d", EventType::NodeCreated),
            trig("/a", EventType::NodeChildrenChanged)
        ]
    );
    // The root's children trigger on "/".
    assert_eq!(
        h.write_as(
            S1,
            &[],
            create(CreateOp::Create, "/r", b"", CreateMode::Persistent)
        )
        .triggers,
        vec![
            trig("/r", EventType::NodeCreated),
            trig("/", EventType::NodeChildrenChanged)
        ]
    );
}

#[test]
fn sequential_names_count_creations_not_children() {
    let mut h = H::new();
    h.mk("/q", b"");
    let name = |r: Reply| match r {
        Ok(Response::Create { path }) => path,
        other => panic!("{other:?}"),
    };
    let seq = |h: &mut H, p: &str, mode| name(h.write(create(CreateOp::Create, p, b"", mode)));
    assert_eq!(
        seq(&mut h, "/q/n-", CreateMode::PersistentSequential),
        "/q/n-0000000000"
    );
    assert_eq!(
        seq(&mut h, "/q/n-", CreateMode::PersistentSequential),
        "/q/n-0000000001"
    );
    h.mk("/q/plain", b"");
    assert_eq!(
        h.write(Request::Delete {
            path: "/q/n-0000000000".into(),
            version: -1
        }),
        Ok(Response::Empty)
    );
    // A delete does not move the counter; the plain create did.
    assert_eq!(
        seq(&mut h, "/q/e-", CreateMode::EphemeralSequential),
        "/q/e-0000000003"
    );
    // A trailing slash is fine for a sequential create (validated with a digit appended).
    assert_eq!(
        seq(&mut h, "/q/", CreateMode::PersistentSequential),
        "/q/0000000004"
    );
    // cversion seen by clients: 5 creations, 1 deletion = 6 changes.
    assert_eq!(h.stat("/q").cversion, 6);
    assert_eq!(h.stat("/q").num_children, 4);
    // Sequential at the root.
    assert_eq!(
        seq(&mut h, "/s", CreateMode::PersistentSequential),
        "/s0000000001"
    );
}

#[test]
fn ephemeral_container_and_ttl_owners() {
    let mut h = H::new();
    h.mk("/p", b"");
    let r = h.write(create(
        CreateOp::Create2,
        "/p/e",
        b"",
        CreateMode::Ephemeral,
    ));
    let Ok(Response::Create2 { stat, .. }) = r else {
        panic!("{r:?}")
    };
    assert_eq!(stat.ephemeral_owner, S1);
    assert_eq!(
        h.t.ephemeral_type_of("/p/e"),
        Some(EphemeralType::Normal(S1))
    );
    // Containers and TTL nodes show owner 0, as DataNode.copyStat (recorded from ZooKeeper).
    let r = h.write(create(
        CreateOp::Container,
        "/p/c",
        b"",
        CreateMode::Container,
    ));
    let Ok(Response::Create2 { stat, .. }) = r else {
        panic!("{r:?}")
    };
    assert_eq!(stat.ephemeral_owner, 0);
    assert_eq!(
        h.t.ephemeral_type_of("/p/c"),
        Some(EphemeralType::Container)
    );
    let r = h.write(create_ttl(
        "/p/t",
        CreateMode::PersistentSequentialWithTtl,
        30_000,
    ));
    let Ok(Response::Create2 { path, stat }) = r else {
        panic!("{r:?}")
    };
    assert_eq!(path, "/p/t0000000002");
    assert_eq!(stat.ephemeral_owner, 0);
    assert_eq!(
        h.t.ephemeral_type_of(&path),
        Some(EphemeralType::Ttl(30_000))
    );
    assert_eq!(
        EphemeralType::ttl_owner(30_000),
        (0xff00_0000_0000_0000_u64 as i64) | 30_000
    );
    assert_eq!(
        EphemeralType::of(CONTAINER_EPHEMERAL_OWNER, true),
        EphemeralType::Container
    );
    // Without extended types the TTL encoding reads as a session id, as in ZooKeeper.
    assert!(matches!(
        EphemeralType::of(EphemeralType::ttl_owner(5), false),
        EphemeralType::Normal(_)
    ));
    assert_eq!(h.t.ephemerals_count(), 1);
    assert_eq!(h.t.session_ephemerals(S1), vec!["/p/e"]);
}

#[test]
fn create_errors_in_zookeeper_order() {
    let mut h = H::new();
    h.mk("/a", b"");
    h.write(create(CreateOp::Create, "/eph", b"", CreateMode::Ephemeral))
        .unwrap();
    let locked = vec![acl(perms::READ, "world", "anyone")];
    h.write(create_acl(
        CreateOp::Create,
        "/locked",
        b"",
        CreateMode::Persistent,
        locked,
    ))
    .unwrap();
    let c = |path: &str| create(CreateOp::Create, path, b"", CreateMode::Persistent);

    // Path shape first: no slash, NUL.
    assert_eq!(h.write(c("a")), err(KeeperError::BadArguments));
    assert_eq!(h.write(c("/a\0b")), err(KeeperError::BadArguments));
    // Invalid ACL is checked before the parent (fixupACL comes first).
    assert_eq!(
        h.write(create_acl(
            CreateOp::Create,
            "/none/x",
            b"",
            CreateMode::Persistent,
            vec![]
        )),
        err(KeeperError::InvalidAcl)
    );
    // Parent missing: NoNode, even for a path that is otherwise invalid ("a/b" has parent "a").
    assert_eq!(h.write(c("/none/x")), err(KeeperError::NoNode));
    assert_eq!(h.write(c("a/b")), err(KeeperError::NoNode));
    // No CREATE permission on the parent.
    assert_eq!(h.write(c("/locked/x")), err(KeeperError::NoAuth));
    // Full path validation after the ACL check.
    assert_eq!(h.write(c("/a/")), err(KeeperError::BadArguments));
    assert_eq!(h.write(c("/a/.")), err(KeeperError::BadArguments));
    assert_eq!(h.write(c("//")), err(KeeperError::BadArguments));
    // Exists before the ephemeral-parent check.
    assert_eq!(h.write(c("/a")), err(KeeperError::NodeExists));
    assert_eq!(h.write(c("/")), err(KeeperError::NodeExists));
    assert_eq!(
        h.write(c("/eph/x")),
        err(KeeperError::NoChildrenForEphemerals)
    );
    // Ephemerals need a live session (session 0 and closed sessions included).
    let e = create(CreateOp::Create, "/a/e", b"", CreateMode::Ephemeral);
    assert_eq!(
        h.write_as(0, &[], e.clone()).reply,
        err(KeeperError::SessionExpired)
    );
    assert_eq!(
        h.write_as(S2, &[], e).reply,
        err(KeeperError::SessionExpired)
    );
    // Nothing changed.
    assert_eq!(h.t.get_children("/a").unwrap(), Vec::<String>::new());
    assert_eq!(h.stat("/a").cversion, 0);
}

#[test]
fn create_acl_validation_and_auth_expansion() {
    let mut h = H::new();
    let bob = Id::new("digest", &crate::acl::digest_id("bob:pw"));
    let ip = Id::new("ip", "10.0.0.1");
    let with = |a: Vec<Acl>| create_acl(CreateOp::Create, "/n", b"", CreateMode::Persistent, a);
    for bad in [
        vec![],
        vec![acl(perms::ALL, "nosuch", "x")],
        vec![acl(perms::ALL, "world", "everyone")],
        vec![acl(perms::ALL, "digest", "bob")],
        vec![acl(perms::ALL, "ip", "10.0.0.300")],
        vec![acl(perms::ALL, "auth", "")], // no authenticated id
    ] {
        assert_eq!(
            h.write_as(S1, std::slice::from_ref(&ip), with(bad.clone()))
                .reply,
            err(KeeperError::InvalidAcl),
            "{bad:?}"
        );
    }
    // `auth` expands to the digest ids only (recorded: getACL shows digest:bob:…).
    let r = h
        .write_as(
            S1,
            &[ip.clone(), bob.clone()],
            with(vec![acl(perms::ALL, "auth", "")]),
        )
        .reply;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(
        h.t.get_acl("/n").unwrap(),
        &[Acl {
            perms: perms::ALL,
            id: bob.clone()
        }]
    );
    // Duplicates are dropped.
    let open = Acl::open_unsafe().remove(0);
    h.write(create_acl(
        CreateOp::Create,
        "/d",
        b"",
        CreateMode::Persistent,
        vec![open.clone(), open.clone()],
    ))
    .unwrap();
    assert_eq!(h.t.get_acl("/d").unwrap(), std::slice::from_ref(&open));
}

#[test]
fn ttl_and_container_rules() {
    let mut h = H::new();
    // TTL modes need createTTL with 0 < ttl <= 2^40-1; other modes take no ttl.
    assert_eq!(
        h.write(create_ttl("/t", CreateMode::PersistentWithTtl, 0)),
        err(KeeperError::BadArguments)
    );
    assert_eq!(
        h.write(create_ttl("/t", CreateMode::PersistentWithTtl, -5)),
        err(KeeperError::BadArguments)
    );
    assert_eq!(
        h.write(create_ttl("/t", CreateMode::PersistentWithTtl, TTL_MAX + 1)),
        err(KeeperError::BadArguments)
    );
    assert!(
        h.write(create_ttl("/t", CreateMode::PersistentWithTtl, TTL_MAX))
            .is_ok()
    );
    assert_eq!(
        h.write(create_ttl("/u", CreateMode::Persistent, 100)),
        err(KeeperError::BadArguments)
    );
    assert_eq!(
        h.write(create_ttl("/u", CreateMode::Persistent, -1)),
        err(KeeperError::BadArguments)
    );
    // A TTL mode through create2 carries no ttl (-1 on the wire).
    assert_eq!(
        h.write(create(
            CreateOp::Create2,
            "/u",
            b"",
            CreateMode::PersistentWithTtl
        )),
        err(KeeperError::BadArguments)
    );
    // Extended types off: TTL modes are Unimplemented, before anything else.
    let mut off = H::with(TreeOptions {
        extended_types: false,
        auth_providers: Default::default(),
        plant: None,
    });
    assert_eq!(
        off.write(create_ttl("bad", CreateMode::PersistentWithTtl, 100)),
        err(KeeperError::Unimplemented)
    );
    // Containers do not need extended types.
    assert!(
        off.write(create(
            CreateOp::Container,
            "/c",
            b"",
            CreateMode::Container
        ))
        .is_ok()
    );
    assert_eq!(
        off.t.ephemeral_type_of("/c"),
        Some(EphemeralType::Container)
    );
}

// ------------------------------------------------------------------ delete

#[test]
fn delete_errors_stats_and_triggers() {
    let mut h = H::new();
    h.mk("/a", b"");
    h.mk("/a/b", b"");
    let guard = vec![acl(perms::ALL & !perms::DELETE, "world", "anyone")];
    h.write(create_acl(
        CreateOp::Create,
        "/g",
        b"",
        CreateMode::Persistent,
        guard,
    ))
    .unwrap();
    h.mk("/g/x", b"");
    let d = |p: &str, v| Request::Delete {
        path: p.into(),
        version: v,
    };
    for special in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        assert_eq!(
            h.write(d(special, -1)),
            err(KeeperError::BadArguments),
            "{special}"
        );
    }
    assert_eq!(h.write(d("a", -1)), err(KeeperError::BadArguments));
    assert_eq!(h.write(d("/a\0", -1)), err(KeeperError::BadArguments));
    assert_eq!(h.write(d("/none/x", -1)), err(KeeperError::NoNode));
    assert_eq!(
        h.write(d("/g/x", -1)),
        err(KeeperError::NoAuth),
        "DELETE is checked on the parent"
    );
    assert_eq!(h.write(d("/a/none", -1)), err(KeeperError::NoNode));
    assert_eq!(h.write(d("/a/b", 3)), err(KeeperError::BadVersion));
    assert_eq!(h.write(d("/a", -1)), err(KeeperError::NotEmpty));
    // Version checked before children (recorded: delete of a non-empty node says NotEmpty
    // with version -1; with a wrong version ZooKeeper says BadVersion first).
    assert_eq!(h.write(d("/a", 7)), err(KeeperError::BadVersion));
    // Deleting /g itself is fine: the root allows DELETE.
    let before = h.stat("/a");
    let out = h.write_as(S1, &[], d("/a/b", 0));
    assert_eq!(out.reply, Ok(Response::Empty));
    assert_eq!(
        out.triggers,
        vec![
            trig("/a/b", EventType::NodeDeleted),
            trig("/a", EventType::NodeChildrenChanged)
        ]
    );
    let after = h.stat("/a");
    assert_eq!(after.num_children, 0);
    assert_eq!(
        after.cversion,
        before.cversion + 1,
        "a deletion is a child change"
    );
    assert_eq!(after.pzxid, h.z());
    assert_eq!(after.mzxid, before.mzxid);
    assert!(h.t.stat("/a/b").is_none());
    assert_eq!(h.write(d("/a", 0)), Ok(Response::Empty));
}

// ------------------------------------------------------------------ setData / setACL / check

#[test]
fn set_data_errors_and_stat() {
    let mut h = H::new();
    let created = h.mk("/a", b"one");
    let ro = vec![acl(perms::READ, "world", "anyone")];
    h.write(create_acl(
        CreateOp::Create,
        "/ro",
        b"",
        CreateMode::Persistent,
        ro,
    ))
    .unwrap();
    let s = |p: &str, v| Request::SetData {
        path: p.into(),
        data: b"two!".to_vec(),
        version: v,
    };
    assert_eq!(h.write(s("/a/", -1)), err(KeeperError::BadArguments));
    assert_eq!(h.write(s("a", -1)), err(KeeperError::BadArguments));
    assert_eq!(h.write(s("/none", -1)), err(KeeperError::NoNode));
    assert_eq!(h.write(s("/ro", -1)), err(KeeperError::NoAuth));
    assert_eq!(
        h.write(s("/zookeeper/config", -1)),
        err(KeeperError::NoAuth)
    );
    assert_eq!(h.write(s("/a", 1)), err(KeeperError::BadVersion));
    let out = h.write_as(S1, &[], s("/a", 0));
    let z = h.z();
    let Ok(Response::Stat(stat)) = out.reply else {
        panic!("{:?}", out.reply)
    };
    assert_eq!(
        stat,
        Stat {
            mzxid: z,
            mtime: h.time,
            version: 1,
            data_length: 4,
            ..created
        }
    );
    assert_eq!(out.triggers, vec![trig("/a", EventType::NodeDataChanged)]);
    assert_eq!(h.t.get_data("/a").unwrap().0, b"two!");
    assert!(matches!(
        h.write(s("/a", -1)),
        Ok(Response::Stat(Stat { version: 2, .. }))
    ));
}

#[test]
fn set_acl_errors_and_stat() {
    let mut h = H::new();
    let created = h.mk("/a", b"x");
    let no_admin = vec![acl(perms::ALL & !perms::ADMIN, "world", "anyone")];
    h.write(create_acl(
        CreateOp::Create,
        "/na",
        b"",
        CreateMode::Persistent,
        no_admin,
    ))
    .unwrap();
    let sa = |p: &str, a: Vec<Acl>, v| Request::SetAcl {
        path: p.into(),
        acl: a,
        version: v,
    };
    let open = Acl::open_unsafe();
    assert_eq!(
        h.write(sa("/a/", open.clone(), -1)),
        err(KeeperError::BadArguments)
    );
    // InvalidACL before NoNode (fixupACL runs before the lookup).
    assert_eq!(
        h.write(sa("/none", vec![], -1)),
        err(KeeperError::InvalidAcl)
    );
    assert_eq!(
        h.write(sa("/none", open.clone(), -1)),
        err(KeeperError::NoNode)
    );
    assert_eq!(
        h.write(sa("/na", open.clone(), -1)),
        err(KeeperError::NoAuth)
    );
    assert_eq!(
        h.write(sa("/a", open.clone(), 2)),
        err(KeeperError::BadVersion)
    );
    let ro = vec![acl(perms::READ, "world", "anyone")];
    let out = h.write_as(S1, &[], sa("/a", ro.clone(), 0));
    assert!(out.triggers.is_empty(), "setACL fires no watch");
    // Recorded: setACL moves aversion only, not mzxid.
    assert_eq!(
        out.reply,
        Ok(Response::Stat(Stat {
            aversion: 1,
            ..created
        }))
    );
    assert_eq!(h.t.get_acl("/a").unwrap(), &ro[..]);
    // Now without ADMIN: refused.
    assert_eq!(h.write(sa("/a", open, -1)), err(KeeperError::NoAuth));
}

#[test]
fn check_errors() {
    let mut h = H::new();
    h.mk("/a", b"");
    let wo = vec![acl(perms::WRITE, "world", "anyone")];
    h.write(create_acl(
        CreateOp::Create,
        "/wo",
        b"",
        CreateMode::Persistent,
        wo,
    ))
    .unwrap();
    let c = |p: &str, v| Request::Check {
        path: p.into(),
        version: v,
    };
    assert_eq!(h.write(c("a", 0)), err(KeeperError::BadArguments));
    assert_eq!(h.write(c("/none", 0)), err(KeeperError::NoNode));
    assert_eq!(h.write(c("/wo", 0)), err(KeeperError::NoAuth));
    assert_eq!(h.write(c("/a", 1)), err(KeeperError::BadVersion));
    assert_eq!(h.write(c("/a", 0)), Ok(Response::Empty));
    assert_eq!(h.write(c("/a", -1)), Ok(Response::Empty));
    // Reads are not txns.
    assert_eq!(
        h.write(Request::GetData {
            path: "/a".into(),
            watch: false
        }),
        err(KeeperError::Unimplemented)
    );
}

#[test]
fn version_counters_wrap_like_java_ints() {
    assert_eq!(check_version(i32::MAX, -1), Ok(i32::MIN));
    assert_eq!(check_version(5, 5), Ok(6));
    assert_eq!(check_version(5, 4), Err(KeeperError::BadVersion));
}

// ------------------------------------------------------------------ multi

#[test]
fn multi_commits_in_order_with_triggers() {
    let mut h = H::new();
    h.mk("/m", b"");
    let ops = vec![
        MultiOp::Create {
            op: CreateOp::Create,
            path: "/m/a".into(),
            data: vec![],
            acl: Acl::open_unsafe(),
            mode: CreateMode::Persistent,
            ttl: -1,
        },
        MultiOp::Create {
            op: CreateOp::Create2,
            path: "/m/s-".into(),
            data: vec![1],
            acl: Acl::open_unsafe(),
            mode: CreateMode::PersistentSequential,
            ttl: -1,
        },
        MultiOp::SetData {
            path: "/m/a".into(),
            data: b"x".to_vec(),
            version: 0,
        },
        MultiOp::Check {
            path: "/m/a".into(),
            version: 1,
        },
        MultiOp::Delete {
            path: "/m/a".into(),
            version: 1,
        },
    ];
    let out = h.write_as(S1, &[], Request::Multi(ops));
    let z = h.z();
    let Ok(Response::Multi(results)) = out.reply else {
        panic!("{:?}", out.reply)
    };
    assert_eq!(
        results[0],
        OpResult::Create {
            path: "/m/a".into(),
            stat: None
        }
    );
    let OpResult::Create {
        path,
        stat: Some(stat),
    } = &results[1]
    else {
        panic!("{:?}", results[1])
    };
    assert_eq!(path, "/m/s-0000000001", "sees the create before it");
    assert_eq!((stat.czxid, stat.data_length), (z, 1));
    let OpResult::SetData(s) = results[2] else {
        panic!()
    };
    assert_eq!((s.version, s.mzxid), (1, z));
    assert_eq!(results[3..], [OpResult::Check, OpResult::Delete]);
    use EventType::{NodeChildrenChanged, NodeCreated, NodeDataChanged, NodeDeleted};
    assert_eq!(
        out.triggers,
        vec![
            trig("/m/a", NodeCreated),
            trig("/m", NodeChildrenChanged),
            trig("/m/s-0000000001", NodeCreated),
            trig("/m", NodeChildrenChanged),
            trig("/m/a", NodeDataChanged),
            trig("/m/a", NodeDeleted),
            trig("/m", NodeChildrenChanged),
        ]
    );
    let m = h.stat("/m");
    assert_eq!((m.num_children, m.cversion, m.pzxid), (1, 3, z));
    assert_eq!(h.write(Request::Multi(vec![])), Ok(Response::Multi(vec![])));
}

#[test]
fn failed_multi_changes_nothing_and_reports_like_zookeeper() {
    let mut h = H::new();
    h.mk("/m", b"d");
    h.mk("/m/old", b"keep");
    let before = h.t.to_snapshot();
    let digest = h.t.digest();
    let ops = vec![
        MultiOp::Create {
            op: CreateOp::Create,
            path: "/m/n".into(),
            data: vec![],
            acl: Acl::open_unsafe(),
            mode: CreateMode::Persistent,
            ttl: -1,
        },
        MultiOp::Delete {
            path: "/m/old".into(),
            version: -1,
        },
        MultiOp::SetData {
            path: "/m".into(),
            data: b"changed".to_vec(),
            version: -1,
        },
        MultiOp::Create {
            op: CreateOp::Create,
            path: "/m/e".into(),
            data: vec![],
            acl: Acl::open_unsafe(),
            mode: CreateMode::EphemeralSequential,
            ttl: -1,
        },
        MultiOp::Check {
            path: "/m".into(),
            version: 0,
        }, // version is 1 now
        MultiOp::Delete {
            path: "/m/n".into(),
            version: -1,
        },
    ];
    let out = h.write_as(S1, &[], Request::Multi(ops));
    // Recorded from ZooKeeper 3.8: ops before the failure 0, the failing op its code,
    // the ones after RuntimeInconsistency.
    assert_eq!(
        out.reply,
        Ok(Response::Multi(vec![
            OpResult::Error(0),
            OpResult::Error(0),
            OpResult::Error(0),
            OpResult::Error(0),
            OpResult::Error(-103),
            OpResult::Error(-2),
        ]))
    );
    assert!(out.triggers.is_empty());
    assert_eq!(h.t.ephemerals_count(), 0);
    assert_eq!(h.t.get_data("/m/old").unwrap().0, b"keep");
    // Only the last zxid moved: the same bytes apart from it, and the ACL table is intact.
    let mut same = DataTree::from_snapshot(&before, h.t.options()).unwrap();
    same.last_zxid = h.t.last_zxid();
    assert_eq!(same.to_snapshot(), h.t.to_snapshot());
    assert_ne!(digest, h.t.digest());
    // The sequence counter did not move either.
    let r = h.write(create(
        CreateOp::Create,
        "/m/s",
        b"",
        CreateMode::PersistentSequential,
    ));
    assert_eq!(
        r,
        Ok(Response::Create {
            path: "/m/s0000000001".into()
        })
    );
}

#[test]
fn multi_rolls_back_acl_references() {
    let mut h = H::new();
    let special = vec![acl(perms::ALL, "ip", "10.0.0.0/8")];
    h.write(create_acl(
        CreateOp::Create,
        "/x",
        b"",
        CreateMode::Persistent,
        special.clone(),
    ))
    .unwrap();
    // The multi deletes the only node using `special`, creates one with a new ACL, then fails:
    // the rollback must leave `special` alive (the delete's release is deferred).
    let other = vec![acl(perms::READ, "world", "anyone")];
    let ops = vec![
        MultiOp::Delete {
            path: "/x".into(),
            version: -1,
        },
        MultiOp::Create {
            op: CreateOp::Create,
            path: "/y".into(),
            data: vec![],
            acl: other,
            mode: CreateMode::Persistent,
            ttl: -1,
        },
        MultiOp::Check {
            path: "/nope".into(),
            version: -1,
        },
    ];
    let out = h.write_as(S1, &[], Request::Multi(ops));
    assert_eq!(
        out.reply,
        Ok(Response::Multi(vec![
            OpResult::Error(0),
            OpResult::Error(0),
            OpResult::Error(-101)
        ]))
    );
    assert_eq!(h.t.get_acl("/x").unwrap(), &special[..]);
    assert!(!h.t.exists("/y"));
}

// Sessions, containers and TTL, reads and snapshots.
mod quota;
mod reads;
mod resolved;
