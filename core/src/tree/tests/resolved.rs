//! Txns a foreign leader resolved (`TxnOp::Resolved`): applied as the record says, with the
//! same stats, digest and triggers as the same change made by Ensemble's own resolution.

use super::*;
use crate::txn::ResolvedTxn as R;

fn resolved(h: &mut H, session: SessionId, r: R) -> ApplyOutcome {
    h.txn(session, TxnOp::Resolved(r))
}

/// Every node with its stat and data: the tree apart from its last zxid.
fn content(t: &DataTree) -> Vec<(String, Stat, Vec<u8>)> {
    t.paths()
        .map(|p| {
            let (d, s) = t.get_data(p).expect("listed");
            (p.to_string(), s, d.to_vec())
        })
        .collect()
}

fn rcreate(path: &str, data: &[u8], owner: i64, parent_cversion: i32) -> R {
    R::Create {
        path: path.into(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        ephemeral_owner: owner,
        parent_cversion,
        with_stat: true,
    }
}

#[test]
fn resolved_txns_give_the_tree_their_own_resolution_gives() {
    // the same history twice: resolved by the tree itself, and as a foreign leader's records
    let mut own = H::new();
    let mut foreign = H::new();
    own.mk("/a", b"x");
    resolved(&mut foreign, S1, rcreate("/a", b"x", 0, 1));
    assert!(
        own.write(create(
            CreateOp::Create,
            "/a/s-",
            b"1",
            CreateMode::EphemeralSequential,
        ))
        .is_ok()
    );
    let out = resolved(
        &mut foreign,
        S1,
        R::Create {
            path: "/a/s-0000000000".into(),
            data: Some(b"1".to_vec()),
            acl: Acl::open_unsafe(),
            ephemeral_owner: S1,
            parent_cversion: 1,
            with_stat: false,
        },
    );
    assert_eq!(
        out.reply,
        Ok(Response::Create {
            path: "/a/s-0000000000".into()
        })
    );
    assert_eq!(
        out.triggers,
        vec![
            trig("/a/s-0000000000", EventType::NodeCreated),
            trig("/a", EventType::NodeChildrenChanged)
        ]
    );
    assert!(
        own.write(Request::SetData {
            path: "/a".into(),
            data: b"y".to_vec(),
            version: -1,
        })
        .is_ok()
    );
    let out = resolved(
        &mut foreign,
        S1,
        R::SetData {
            path: "/a".into(),
            data: Some(b"y".to_vec()),
            version: 1,
        },
    );
    assert_eq!(out.triggers, vec![trig("/a", EventType::NodeDataChanged)]);
    let secret = vec![acl(perms::READ, "world", "anyone")];
    assert!(
        own.write(Request::SetAcl {
            path: "/a".into(),
            acl: secret.clone(),
            version: -1,
        })
        .is_ok()
    );
    let out = resolved(
        &mut foreign,
        S1,
        R::SetAcl {
            path: "/a".into(),
            acl: secret,
            version: 1,
        },
    );
    assert!(out.triggers.is_empty(), "setACL fires nothing");
    assert_eq!(own.stat("/a"), foreign.stat("/a"));
    assert_eq!(own.t.digest(), foreign.t.digest());
    // a closeSession deletes the session's ephemerals, listed or not
    let out_own = own.txn(S1, TxnOp::CloseSession);
    let out = resolved(&mut foreign, S1, R::CloseSession { paths: None });
    assert_eq!(out.ephemerals_deleted, vec!["/a/s-0000000000".to_string()]);
    assert_eq!(out.triggers, out_own.triggers);
    assert_eq!(own.t.to_snapshot(), foreign.t.to_snapshot());
}

#[test]
fn a_record_that_does_not_fit_changes_nothing() {
    let mut h = H::new();
    let before = content(&h.t);
    let out = resolved(&mut h, S1, rcreate("/no/parent", b"", 0, 1));
    assert_eq!(out.reply, err(KeeperError::NoNode));
    assert!(out.triggers.is_empty());
    let out = resolved(
        &mut h,
        S1,
        R::Delete {
            path: "/missing".into(),
        },
    );
    assert_eq!(out.reply, err(KeeperError::NoNode));
    let out = resolved(
        &mut h,
        S1,
        R::Error {
            err: KeeperError::BadVersion.code(),
        },
    );
    assert_eq!(out.reply, err(KeeperError::BadVersion));
    assert_eq!(content(&h.t), before);
}

#[test]
fn a_resolved_multi_applies_whole_or_reports_its_errors() {
    let mut h = H::new();
    h.mk("/m", b"");
    let out = resolved(
        &mut h,
        S1,
        R::Multi(vec![
            rcreate("/m/a", b"1", 0, 1),
            rcreate("/m/b", b"2", 0, 2),
            R::Check { path: "/m".into() },
        ]),
    );
    let Ok(Response::Multi(results)) = &out.reply else {
        panic!("{:?}", out.reply)
    };
    assert_eq!(results.len(), 3);
    assert_eq!(h.stat("/m").num_children, 2);
    assert_eq!(h.stat("/m").cversion, 2 * 2 - 2);
    // a failed multi (its records all errors) changes nothing
    let digest = content(&h.t);
    let out = resolved(
        &mut h,
        S1,
        R::Multi(vec![
            R::Error { err: 0 },
            R::Error {
                err: KeeperError::NodeExists.code(),
            },
        ]),
    );
    assert_eq!(
        out.reply,
        Ok(Response::Multi(vec![
            OpResult::Error(0),
            OpResult::Error(KeeperError::NodeExists.code())
        ]))
    );
    assert_eq!(content(&h.t), digest);
    // a sub that does not fit rolls the others back
    let out = resolved(
        &mut h,
        S1,
        R::Multi(vec![
            rcreate("/m/c", b"3", 0, 3),
            R::Delete {
                path: "/m/none".into(),
            },
        ]),
    );
    let Ok(Response::Multi(results)) = &out.reply else {
        panic!("{:?}", out.reply)
    };
    assert_eq!(results[1], OpResult::Error(KeeperError::NoNode.code()));
    assert!(!h.t.exists("/m/c"));
    assert_eq!(content(&h.t), digest);
}
