//! The data tree's unit tests, second half: sessions, containers and TTL, reads, snapshots and
//! the digest (helpers in `mod.rs`).

use super::*;

// ------------------------------------------------------------------ sessions

#[test]
fn close_session_deletes_ephemerals_in_order() {
    let mut h = H::new();
    h.txn(S2, TxnOp::CreateSession { timeout_ms: 5000 });
    assert_eq!(
        h.t.sessions()
            .iter()
            .map(|(s, t)| (*s, *t))
            .collect::<Vec<_>>(),
        vec![(S1, 30_000), (S2, 5000)]
    );
    h.mk("/a", b"");
    for p in ["/a/z", "/b", "/a/y"] {
        h.write(create(CreateOp::Create, p, b"", CreateMode::Ephemeral))
            .unwrap();
    }
    h.write_as(
        S2,
        &[],
        create(CreateOp::Create, "/other", b"", CreateMode::Ephemeral),
    )
    .reply
    .unwrap();
    assert_eq!(h.t.session_ephemerals(S1), vec!["/a/y", "/a/z", "/b"]);
    assert_eq!(h.t.ephemerals_count(), 4);
    let out = h.txn(S1, TxnOp::CloseSession);
    assert_eq!(out.reply, Ok(Response::Empty));
    // what the audit log reports (Action::EphemeralsDeleted): the session's, in order
    assert_eq!(out.ephemerals_deleted, vec!["/a/y", "/a/z", "/b"]);
    use EventType::{NodeChildrenChanged, NodeDeleted};
    assert_eq!(
        out.triggers,
        vec![
            trig("/a/y", NodeDeleted),
            trig("/a", NodeChildrenChanged),
            trig("/a/z", NodeDeleted),
            trig("/a", NodeChildrenChanged),
            trig("/b", NodeDeleted),
            trig("/", NodeChildrenChanged),
        ]
    );
    assert!(!h.t.sessions().contains_key(&S1));
    assert_eq!(h.t.session_ephemerals(S1), Vec::<String>::new());
    assert_eq!(h.t.ephemerals_count(), 1);
    assert_eq!(h.stat("/a").pzxid, h.z());
    // Closing an unknown session is harmless.
    let unknown = h.txn(0x77, TxnOp::CloseSession);
    assert!(unknown.triggers.is_empty() && unknown.ephemerals_deleted.is_empty());
    // Re-creating a session replaces its timeout.
    h.txn(S2, TxnOp::CreateSession { timeout_ms: 9000 });
    assert_eq!(h.t.sessions()[&S2], 9000);
}

#[cfg(feature = "plants")]
#[test]
fn planted_ephemeral_survives_expiry() {
    let mut h = H::with(TreeOptions {
        extended_types: true,
        auth_providers: Default::default(),
        plant: Some(Plant::EphemeralSurvivesExpiry),
    });
    h.write(create(CreateOp::Create, "/e", b"", CreateMode::Ephemeral))
        .unwrap();
    let out = h.txn(S1, TxnOp::CloseSession);
    assert!(out.triggers.is_empty());
    assert!(h.t.exists("/e"));
    assert!(h.t.sessions().is_empty());
}

#[test]
fn get_ephemerals_prefix_semantics() {
    let mut h = H::new();
    h.mk("/app", b"");
    h.mk("/apple", b"");
    for p in ["/app/e1", "/apple/e2", "/e3"] {
        h.write(create(CreateOp::Create, p, b"", CreateMode::Ephemeral))
            .unwrap();
    }
    assert_eq!(h.t.ephemerals(S1, "/"), vec!["/app/e1", "/apple/e2", "/e3"]);
    assert_eq!(h.t.ephemerals(S1, ""), vec!["/app/e1", "/apple/e2", "/e3"]);
    assert_eq!(
        h.t.ephemerals(S1, "  / "),
        vec!["/app/e1", "/apple/e2", "/e3"]
    );
    // A plain string prefix, as ZooKeeper: /app matches /apple too.
    assert_eq!(h.t.ephemerals(S1, "/app"), vec!["/app/e1", "/apple/e2"]);
    assert_eq!(h.t.ephemerals(S1, "/app/"), vec!["/app/e1"]);
    assert_eq!(h.t.ephemerals(S2, "/"), Vec::<String>::new());
    let r = h.t.read_as(
        &Request::GetEphemerals {
            prefix: "/e".into(),
        },
        &[],
        S1,
    );
    assert_eq!(
        r,
        Ok(Response::GetEphemerals {
            paths: vec!["/e3".into()]
        })
    );
    assert_eq!(
        h.t.read(&Request::GetEphemerals { prefix: "/".into() }, &[]),
        err(KeeperError::Unimplemented)
    );
}

// ------------------------------------------------------------------ containers and TTL

#[test]
fn reapable_containers_and_ttls() {
    let mut h = H::new();
    h.write(create(
        CreateOp::Container,
        "/c",
        b"",
        CreateMode::Container,
    ))
    .unwrap();
    h.write(create(
        CreateOp::Container,
        "/fresh",
        b"",
        CreateMode::Container,
    ))
    .unwrap();
    h.write(create_ttl("/t", CreateMode::PersistentWithTtl, 1000))
        .unwrap();
    let t_mtime = h.stat("/t").mtime;
    h.mk("/c/child", b"");
    assert_eq!(
        h.t.reapable(t_mtime + 5000),
        vec!["/t"],
        "a container with a child stays"
    );
    h.write(Request::Delete {
        path: "/c/child".into(),
        version: -1,
    })
    .unwrap();
    // A fresh container (never had a child) is kept; the TTL node only after its TTL.
    assert_eq!(h.t.reapable(t_mtime + 1000), vec!["/c"]);
    assert_eq!(h.t.reapable(t_mtime + 1001), vec!["/c", "/t"]);
    h.mk("/t/x", b"");
    assert_eq!(
        h.t.reapable(t_mtime + 5000),
        vec!["/c"],
        "a TTL node with children stays"
    );

    // deleteContainer: errors, then success with the delete's triggers.
    let dc = |h: &mut H, p: &str| h.txn(0, TxnOp::DeleteContainer { path: p.into() });
    assert_eq!(dc(&mut h, "/none").reply, err(KeeperError::NoNode));
    assert_eq!(dc(&mut h, "/").reply, err(KeeperError::BadArguments));
    assert_eq!(dc(&mut h, "/t").reply, err(KeeperError::NotEmpty));
    assert_eq!(
        dc(&mut h, "/fresh").reply,
        err(KeeperError::BadVersion),
        "never used"
    );
    h.mk("/plain", b"");
    assert_eq!(
        dc(&mut h, "/plain").reply,
        err(KeeperError::BadVersion),
        "not a container"
    );
    let out = dc(&mut h, "/c");
    assert_eq!(out.reply, Ok(Response::Empty));
    assert_eq!(
        out.triggers,
        vec![
            trig("/c", EventType::NodeDeleted),
            trig("/", EventType::NodeChildrenChanged)
        ]
    );
    h.write(Request::Delete {
        path: "/t/x".into(),
        version: -1,
    })
    .unwrap();
    // The TTL is measured against the txn's time, which the harness keeps near T0: not expired.
    assert_eq!(dc(&mut h, "/t").reply, err(KeeperError::BadVersion));
    h.time = t_mtime + 2000;
    assert_eq!(dc(&mut h, "/t").reply, Ok(Response::Empty));
    assert!(h.t.reapable(i64::MAX).is_empty());
}

// ------------------------------------------------------------------ reads

#[test]
fn reads_and_their_errors() {
    let mut h = H::new();
    h.mk("/r", b"data");
    for c in ["b", "a", "c"] {
        h.mk(&format!("/r/{c}"), b"");
    }
    h.mk("/r/a/deep", b"");
    h.mk("/r/a/deep/er", b"");
    let secret = vec![acl(perms::ALL, "digest", &crate::acl::digest_id("bob:pw"))];
    h.write(create_acl(
        CreateOp::Create,
        "/s",
        b"hidden",
        CreateMode::Persistent,
        secret.clone(),
    ))
    .unwrap();
    let bob = [Id::new("digest", &crate::acl::digest_id("bob:pw"))];
    let t = &h.t;
    let stat = t.stat("/r").unwrap();
    assert_eq!(
        t.read(
            &Request::Exists {
                path: "/r".into(),
                watch: true
            },
            &[]
        ),
        Ok(Response::Stat(stat))
    );
    assert_eq!(
        t.read(
            &Request::Exists {
                path: "/nope".into(),
                watch: true
            },
            &[]
        ),
        err(KeeperError::NoNode)
    );
    assert_eq!(
        t.read(
            &Request::Exists {
                path: "/r/".into(),
                watch: false
            },
            &[]
        ),
        err(KeeperError::BadArguments)
    );
    // exists needs READ on a node that exists (ZooKeeper 3.8.4+, ZOOKEEPER-2590).
    assert_eq!(
        t.read(
            &Request::Exists {
                path: "/s".into(),
                watch: false
            },
            &[]
        ),
        err(KeeperError::NoAuth)
    );
    assert!(
        t.read(
            &Request::Exists {
                path: "/s".into(),
                watch: false
            },
            &bob
        )
        .is_ok()
    );
    assert_eq!(
        t.read(
            &Request::GetData {
                path: "/r".into(),
                watch: false
            },
            &[]
        ),
        Ok(Response::GetData {
            data: b"data".to_vec(),
            stat
        })
    );
    assert_eq!(
        t.read(
            &Request::GetData {
                path: "/s".into(),
                watch: false
            },
            &[]
        ),
        err(KeeperError::NoAuth)
    );
    assert!(
        t.read(
            &Request::GetData {
                path: "/s".into(),
                watch: false
            },
            &bob
        )
        .is_ok()
    );
    let children = vec!["a".to_string(), "b".into(), "c".into()];
    assert_eq!(
        t.read(
            &Request::GetChildren {
                path: "/r".into(),
                watch: false
            },
            &[]
        ),
        Ok(Response::GetChildren {
            children: children.clone()
        })
    );
    assert_eq!(
        t.read(
            &Request::GetChildren2 {
                path: "/r".into(),
                watch: false
            },
            &[]
        ),
        Ok(Response::GetChildren2 { children, stat })
    );
    assert_eq!(
        t.read(
            &Request::GetChildren {
                path: "/s".into(),
                watch: false
            },
            &[]
        ),
        err(KeeperError::NoAuth)
    );
    assert_eq!(
        t.read(
            &Request::GetChildren2 {
                path: "/x".into(),
                watch: false
            },
            &[]
        ),
        err(KeeperError::NoNode)
    );
    assert_eq!(
        t.read(&Request::GetAllChildrenNumber { path: "/r".into() }, &[]),
        Ok(Response::AllChildrenNumber(5))
    );
    // The root: every node but itself (ZooKeeper: its map size minus the two root entries).
    assert_eq!(
        t.read(&Request::GetAllChildrenNumber { path: "/".into() }, &[]),
        Ok(Response::AllChildrenNumber(t.node_count() as i32 - 2))
    );
    assert_eq!(
        t.read(&Request::GetAllChildrenNumber { path: "/s".into() }, &[]),
        err(KeeperError::NoAuth)
    );
    // getACL: READ or ADMIN; digests masked without ADMIN.
    let r = t.read(&Request::GetAcl { path: "/s".into() }, &bob);
    assert!(
        matches!(&r, Ok(Response::GetAcl { acl, .. }) if *acl == secret),
        "{r:?}"
    );
    assert_eq!(
        t.read(&Request::GetAcl { path: "/s".into() }, &[]),
        err(KeeperError::NoAuth)
    );
    assert_eq!(
        t.read(
            &Request::GetAcl {
                path: "/nope".into()
            },
            &[]
        ),
        err(KeeperError::NoNode)
    );
    let multi = Request::MultiRead(vec![
        ReadOp::GetData { path: "/r".into() },
        ReadOp::GetChildren {
            path: "/r/a".into(),
        },
        ReadOp::GetData {
            path: "/none".into(),
        },
        ReadOp::GetChildren { path: "/s".into() },
        ReadOp::GetData { path: "bad".into() },
    ]);
    assert_eq!(
        t.read(&multi, &[]),
        Ok(Response::MultiRead(vec![
            ReadResult::GetData {
                data: b"data".to_vec(),
                stat
            },
            ReadResult::GetChildren(vec!["deep".into()]),
            ReadResult::Error(KeeperError::NoNode),
            ReadResult::Error(KeeperError::NoAuth),
            ReadResult::Error(KeeperError::BadArguments),
        ]))
    );
    assert_eq!(
        t.read(&Request::Sync { path: "/".into() }, &[]),
        err(KeeperError::Unimplemented)
    );
}

#[test]
fn get_acl_masks_digests_without_admin() {
    let mut h = H::new();
    let bob = crate::acl::digest_id("bob:pw");
    let a = vec![
        acl(perms::READ, "world", "anyone"),
        acl(perms::ALL, "digest", &bob),
    ];
    h.write(create_acl(
        CreateOp::Create,
        "/m",
        b"",
        CreateMode::Persistent,
        a,
    ))
    .unwrap();
    let r = h.t.read(&Request::GetAcl { path: "/m".into() }, &[]);
    let Ok(Response::GetAcl { acl: shown, .. }) = r else {
        panic!("{r:?}")
    };
    assert_eq!(shown[1].id.id, "bob:x");
}

#[test]
fn children_listing_skips_descendants_and_sorts_bytewise() {
    let mut h = H::new();
    // Names around '/' in byte order: '!' and '-' and '.' sort before '/', '0' after.
    for p in [
        "/d", "/d/b", "/d/b/x", "/d/b/x/y", "/d/b!", "/d/b-c", "/d/b-c/z", "/d/b0", "/d/a", "/d/é",
        "/d/B",
    ] {
        h.mk(p, b"");
    }
    assert_eq!(
        h.t.get_children("/d").unwrap(),
        vec!["B", "a", "b", "b!", "b-c", "b0", "é"]
    );
    assert_eq!(h.t.get_children("/d/b").unwrap(), vec!["x"]);
    assert_eq!(h.t.get_children("/").unwrap(), vec!["d", "zookeeper"]);
    assert_eq!(h.t.all_children_number("/d"), Some(10));
    assert_eq!(h.t.all_children_number("/d/b"), Some(2));
    assert_eq!(h.t.all_children_number("/nope"), None);
}

#[test]
fn data_size_and_counts_follow_changes() {
    let mut h = H::new();
    let base = h.t.approximate_data_size();
    h.mk("/abc", b"12345");
    assert_eq!(h.t.approximate_data_size(), base + 4 + 5);
    h.write(Request::SetData {
        path: "/abc".into(),
        data: b"1".to_vec(),
        version: -1,
    })
    .unwrap();
    assert_eq!(h.t.approximate_data_size(), base + 4 + 1);
    assert_eq!(h.t.node_count(), 6);
    h.write(Request::Delete {
        path: "/abc".into(),
        version: -1,
    })
    .unwrap();
    assert_eq!(h.t.approximate_data_size(), base);
    assert_eq!(h.t.node_count(), 5);
}

// ------------------------------------------------------------------ snapshots

#[test]
fn snapshot_round_trip_keeps_everything() {
    let mut h = H::new();
    h.txn(S2, TxnOp::CreateSession { timeout_ms: 4000 });
    h.mk("/a", b"data");
    h.write(create(CreateOp::Create, "/a/e", b"", CreateMode::Ephemeral))
        .unwrap();
    h.write(create(
        CreateOp::Container,
        "/c",
        b"",
        CreateMode::Container,
    ))
    .unwrap();
    h.write(create_ttl("/t", CreateMode::PersistentWithTtl, 99))
        .unwrap();
    let ro = vec![acl(perms::READ, "ip", "10.0.0.0/8")];
    h.write(create_acl(
        CreateOp::Create,
        "/ro",
        b"x",
        CreateMode::Persistent,
        ro,
    ))
    .unwrap();
    h.write(Request::SetData {
        path: "/a".into(),
        data: b"more".to_vec(),
        version: -1,
    })
    .unwrap();
    let bytes = h.t.to_snapshot();
    let back = DataTree::from_snapshot(&bytes, h.t.options()).unwrap();
    assert_eq!(back.check_consistency(), Ok(()));
    assert_eq!(back.digest(), h.t.digest());
    assert_eq!(back.to_snapshot(), bytes);
    assert_eq!(back.last_zxid(), h.t.last_zxid());
    assert_eq!(back.sessions(), h.t.sessions());
    assert_eq!(back.session_ephemerals(S1), vec!["/a/e"]);
    assert_eq!(back.reapable(i64::MAX), h.t.reapable(i64::MAX));
    assert_eq!(back.approximate_data_size(), h.t.approximate_data_size());
    for p in h.t.paths() {
        assert_eq!(back.get_data(p), h.t.get_data(p), "{p}");
        assert_eq!(back.get_acl(p), h.t.get_acl(p), "{p}");
    }
    // The restored tree goes on like the original.
    let mut h2 = H {
        t: back,
        zxid: h.zxid,
        time: h.time,
    };
    let r1 = h.write(create(
        CreateOp::Create,
        "/a/s",
        b"",
        CreateMode::EphemeralSequential,
    ));
    let r2 = h2.write(create(
        CreateOp::Create,
        "/a/s",
        b"",
        CreateMode::EphemeralSequential,
    ));
    assert_eq!(r1, r2);
    assert_eq!(h.t.digest(), h2.t.digest());
}

#[test]
fn snapshot_rejects_damage() {
    let mut h = H::new();
    h.mk("/a", b"data");
    h.mk("/a/b", b"");
    let bytes = h.t.to_snapshot();
    let opts = h.t.options();
    assert!(DataTree::from_snapshot(&[], opts).is_err());
    assert!(DataTree::from_snapshot(b"ENST", opts).is_err());
    // Every truncation fails cleanly.
    for n in 0..bytes.len() {
        assert!(
            DataTree::from_snapshot(&bytes[..n], opts).is_err(),
            "truncated at {n}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(
        DataTree::from_snapshot(&longer, opts).is_err(),
        "trailing bytes"
    );
    // Every single-byte flip either fails or yields a consistent tree.
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x41;
        if let Ok(t) = DataTree::from_snapshot(&b, opts) {
            assert_eq!(t.check_consistency(), Ok(()), "flip at {i}");
        }
    }
}

#[test]
fn snapshot_validation_of_structure() {
    use serde::Serialize;
    // Hand-made snapshots through the same encoding.
    #[derive(Serialize)]
    struct N<'a>(
        &'a str,
        &'a [u8],
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i32,
        i32,
        i32,
        u32,
    );
    fn build(zxid: u64, acls: Vec<Vec<Acl>>, nodes: &[N]) -> Vec<u8> {
        build_n(zxid, acls, nodes, nodes.len() as u64)
    }
    fn build_n(zxid: u64, acls: Vec<Vec<Acl>>, nodes: &[N], count: u64) -> Vec<u8> {
        use bincode::Options;
        let o = bincode::DefaultOptions::new()
            .with_varint_encoding()
            .with_little_endian();
        let mut out = Vec::new();
        let mut ser = bincode::Serializer::new(&mut out, o);
        (*b"ENST", 1u32, zxid, Vec::<(i64, i32)>::new(), acls, count)
            .serialize(&mut ser)
            .unwrap();
        for n in nodes {
            // Data as a byte string: length then bytes, like serialize_bytes.
            (
                n.0,
                serde_bytes_like(n.1),
                n.2,
                n.3,
                n.4,
                n.5,
                n.6,
                n.7,
                n.8,
                n.9,
                n.10,
                n.11,
            )
                .serialize(&mut ser)
                .unwrap();
        }
        out
    }
    struct B<'a>(&'a [u8]);
    impl serde::Serialize for B<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    fn serde_bytes_like(b: &[u8]) -> B<'_> {
        B(b)
    }
    let open = vec![Acl::open_unsafe()];
    fn base<'a>(extra: &[N<'a>]) -> Vec<N<'a>> {
        let mut v = vec![
            N("/", b"", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
            N("/zookeeper", b"", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
            N("/zookeeper/config", b"", 0, 0, 0, 0, 0, 0, 0, 0, -1, 0),
            N("/zookeeper/quota", b"", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        ];
        for e in extra {
            v.push(N(
                e.0, e.1, e.2, e.3, e.4, e.5, e.6, e.7, e.8, e.9, e.10, e.11,
            ));
        }
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }
    let opts = TreeOptions::default();
    let good = build(
        5,
        open.clone(),
        &base(&[N("/a", b"x", 5, 5, 5, 1, 1, 0, 0, 0, 0, 0)]),
    );
    let t = DataTree::from_snapshot(&good, opts).unwrap();
    assert_eq!(t.get_children("/").unwrap(), vec!["a", "zookeeper"]);
    let bad = |extra: &[N], why: &str| {
        let b = build(5, open.clone(), &base(extra));
        assert!(DataTree::from_snapshot(&b, opts).is_err(), "{why}");
    };
    bad(&[N("/a/b", b"", 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)], "orphan");
    bad(
        &[N("/a", b"", 1, 1, 1, 0, 0, 0, 0, 0, 0, 1)],
        "ACL slot out of range",
    );
    bad(
        &[N("/a", b"", 9, 9, 9, 0, 0, 0, 0, 0, 0, 0)],
        "zxid beyond the snapshot",
    );
    bad(
        &[N("/a/", b"", 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)],
        "invalid path",
    );
    let mut unsorted = base(&[N("/a", b"", 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)]);
    unsorted.swap(1, 2);
    assert!(
        DataTree::from_snapshot(&build(5, open.clone(), &unsorted), opts).is_err(),
        "unsorted"
    );
    let mut twice = base(&[N("/a", b"", 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)]);
    twice.insert(1, N("/a", b"", 1, 1, 1, 0, 0, 0, 0, 0, 0, 0));
    assert!(
        DataTree::from_snapshot(&build(5, open.clone(), &twice), opts).is_err(),
        "duplicate"
    );
    bad(
        &[
            N("/e", b"", 1, 1, 1, 0, 0, 42, 0, 0, 0, 0),
            N("/e/x", b"", 1, 1, 1, 0, 0, 0, 0, 0, 0, 0),
        ],
        "ephemeral parent",
    );
    let no_config = build(
        5,
        open.clone(),
        &[N("/", b"", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)],
    );
    assert!(
        DataTree::from_snapshot(&no_config, opts).is_err(),
        "special nodes missing"
    );
    let dup_acl = build(5, vec![Acl::open_unsafe(), Acl::open_unsafe()], &base(&[]));
    assert!(
        DataTree::from_snapshot(&dup_acl, opts).is_err(),
        "duplicate ACL lists"
    );
    // A huge declared node count with nothing behind it fails without allocating it.
    let huge = build_n(5, open.clone(), &base(&[]), u64::MAX);
    assert!(
        DataTree::from_snapshot(&huge, opts).is_err(),
        "declared count beyond the nodes"
    );
    let unsorted_sessions = {
        use bincode::Options;
        let o = bincode::DefaultOptions::new()
            .with_varint_encoding()
            .with_little_endian();
        let mut out = Vec::new();
        let mut ser = bincode::Serializer::new(&mut out, o);
        (*b"ENST", 1u32, 5u64, vec![(2i64, 1i32), (1, 1)], open, 0u64)
            .serialize(&mut ser)
            .unwrap();
        out
    };
    assert!(
        DataTree::from_snapshot(&unsorted_sessions, opts).is_err(),
        "sessions out of order"
    );
}

#[test]
fn digest_tracks_content_not_history() {
    // Two different histories to the same content give the same digest; any difference shows.
    let mut a = H::new();
    let mut b = H::new();
    a.mk("/x", b"1");
    a.mk("/y", b"");
    a.write(Request::Delete {
        path: "/y".into(),
        version: -1,
    })
    .unwrap();
    a.write(Request::SetData {
        path: "/x".into(),
        data: b"2".to_vec(),
        version: -1,
    })
    .unwrap();
    b.mk("/x", b"1");
    b.mk("/y", b"");
    b.write(Request::Delete {
        path: "/y".into(),
        version: -1,
    })
    .unwrap();
    b.write(Request::SetData {
        path: "/x".into(),
        data: b"2".to_vec(),
        version: -1,
    })
    .unwrap();
    assert_eq!(a.t.digest(), b.t.digest());
    b.write(Request::SetData {
        path: "/x".into(),
        data: b"3".to_vec(),
        version: -1,
    })
    .unwrap();
    a.write(Request::SetData {
        path: "/x".into(),
        data: b"3".to_vec(),
        version: -1,
    })
    .unwrap();
    assert_eq!(a.t.digest(), b.t.digest());
    a.write(Request::SetAcl {
        path: "/x".into(),
        acl: vec![acl(perms::READ, "world", "anyone")],
        version: -1,
    })
    .unwrap();
    b.write(Request::SetAcl {
        path: "/x".into(),
        acl: vec![acl(perms::WRITE, "world", "anyone")],
        version: -1,
    })
    .unwrap();
    assert_ne!(a.t.digest(), b.t.digest());
}

#[test]
fn sequential_names_format_as_percent_010d() {
    for c in [
        0,
        1,
        9,
        10,
        12345,
        999_999_999,
        i32::MAX,
        -1,
        -12345,
        i32::MIN,
    ] {
        assert_eq!(
            super::sequential_name("/q/n-", c),
            format!("/q/n-{c:010}"),
            "{c}"
        );
    }
}
