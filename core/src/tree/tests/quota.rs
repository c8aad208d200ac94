//! Quotas: the stats kept as the tree changes, hard limits under enforcement, multi rollback,
//! snapshots (helpers in `mod.rs`).

use super::*;

const OPEN: fn() -> Vec<Acl> = Acl::open_unsafe;

impl H {
    /// zkCli's `setquota`: the quota path's nodes, the limits, then the stats at zero.
    fn set_quota(&mut self, path: &str, limits: &str) {
        let mut at = path::QUOTA.to_string();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            at.push('/');
            at.push_str(part);
            if !self.t.exists(&at) {
                self.mk(&at, b"");
            }
        }
        self.mk(&quota::limit_path(path), limits.as_bytes());
        self.mk(&quota::stat_path(path), b"count=0,bytes=0");
    }

    fn stats(&self, path: &str) -> String {
        let (data, _) = self.t.get_data(&quota::stat_path(path)).expect("stats");
        String::from_utf8(data.to_vec()).unwrap()
    }

    fn enforced(&mut self, request: Request) -> Reply {
        self.txn(
            S1,
            TxnOp::EnforcedWrite {
                request,
                auth: vec![],
            },
        )
        .reply
    }
}

fn set(path: &str, data: &[u8]) -> Request {
    Request::SetData {
        path: path.into(),
        data: data.to_vec(),
        version: -1,
    }
}

fn mkreq(path: &str, data: &[u8]) -> Request {
    create(CreateOp::Create, path, data, CreateMode::Persistent)
}

#[test]
fn stats_follow_creates_deletes_and_set_data() {
    let mut h = H::new();
    h.mk("/q", b"abc");
    h.mk("/q/x", b"12345");
    h.mk("/qq", b"not under /q");
    h.set_quota("/q", "count=10,bytes=-1");
    // The stats node is recounted as it is created, its Stat untouched by later updates.
    assert_eq!(h.stats("/q"), "count=2,bytes=8");
    let version = h.stat(&quota::stat_path("/q")).version;
    h.mk("/q/x/y", b"zz");
    assert_eq!(h.stats("/q"), "count=3,bytes=10");
    assert_eq!(h.write(set("/q/x", b"1")).map(|_| ()), Ok(()));
    assert_eq!(h.stats("/q"), "count=3,bytes=6");
    h.write(Request::Delete {
        path: "/q/x/y".into(),
        version: -1,
    })
    .expect("delete");
    assert_eq!(h.stats("/q"), "count=2,bytes=4");
    h.mk("/qq/a", b"1");
    assert_eq!(h.stats("/q"), "count=2,bytes=4", "/qq is not under /q");
    assert_eq!(h.stat(&quota::stat_path("/q")).version, version);
    assert_eq!(h.t.quota_prefix("/q/x"), Some("/q"));
    assert_eq!(h.t.quota_prefix("/qq"), None);
}

#[test]
fn ephemerals_closed_with_their_session_leave_the_stats() {
    let mut h = H::new();
    h.txn(S2, TxnOp::CreateSession { timeout_ms: 5000 });
    h.mk("/q", b"");
    h.set_quota("/q", "count=-1,bytes=-1=;countHardLimit=5");
    h.write_as(
        S2,
        &[],
        create(CreateOp::Create, "/q/e", b"ee", CreateMode::Ephemeral),
    )
    .reply
    .expect("ephemeral");
    assert_eq!(h.stats("/q"), "count=2,bytes=2");
    h.txn(S2, TxnOp::CloseSession);
    assert_eq!(h.stats("/q"), "count=1,bytes=0");
}

#[test]
fn hard_limits_refuse_only_when_enforced() {
    let mut h = H::new();
    h.mk("/q", b"");
    h.set_quota("/q", "count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=2");
    assert!(h.enforced(mkreq("/q/a", b"1234")).is_ok());
    assert_eq!(h.stats("/q"), "count=2,bytes=4");
    // The third znode would pass countHardLimit=2.
    assert_eq!(
        h.enforced(mkreq("/q/b", b"")),
        Err(KeeperError::QuotaExceeded)
    );
    assert!(!h.t.exists("/q/b"));
    assert_eq!(
        h.enforced(set("/q/a", b"12345678901")),
        Err(KeeperError::QuotaExceeded)
    );
    assert!(h.enforced(set("/q/a", b"1234567890")).is_ok());
    assert_eq!(h.stats("/q"), "count=2,bytes=10");
    // Not enforced: the same writes pass, and the stats show it.
    assert!(h.write(mkreq("/q/b", b"x")).is_ok());
    assert_eq!(h.stats("/q"), "count=3,bytes=11");
    // Soft limits never refuse.
    h.write(set(&quota::limit_path("/q"), b"count=1,bytes=1"))
        .expect("new limits");
    assert!(h.enforced(mkreq("/q/c", b"")).is_ok());
    // Without its limits node the quota is gone: nothing is counted.
    h.write(Request::Delete {
        path: quota::limit_path("/q"),
        version: -1,
    })
    .expect("delquota");
    assert_eq!(h.t.quota_prefix("/q/c"), None);
    assert!(h.enforced(mkreq("/q/d", b"")).is_ok());
    assert_eq!(h.stats("/q"), "count=4,bytes=11");
}

#[test]
fn the_deepest_quota_counts_and_multi_rolls_stats_back() {
    let mut h = H::new();
    h.mk("/a", b"");
    h.mk("/a/b", b"");
    h.set_quota("/a", "count=100,bytes=-1");
    h.set_quota("/a/b", "count=-1,bytes=-1=;countHardLimit=2");
    h.mk("/a/c", b"1");
    assert_eq!(h.stats("/a"), "count=3,bytes=1");
    assert_eq!(h.stats("/a/b"), "count=1,bytes=0");
    let ops = vec![
        MultiOp::Create {
            op: CreateOp::Create,
            path: "/a/b/x".into(),
            data: b"xy".to_vec(),
            acl: OPEN(),
            mode: CreateMode::Persistent,
            ttl: -1,
        },
        MultiOp::Create {
            op: CreateOp::Create,
            path: "/a/b/y".into(),
            data: vec![],
            acl: OPEN(),
            mode: CreateMode::Persistent,
            ttl: -1,
        },
    ];
    let reply = h.enforced(Request::Multi(ops.clone()));
    assert_eq!(
        reply,
        Ok(Response::Multi(vec![
            OpResult::Error(0),
            OpResult::Error(KeeperError::QuotaExceeded.code())
        ]))
    );
    assert_eq!(h.stats("/a/b"), "count=1,bytes=0", "rolled back");
    assert!(h.write(Request::Multi(ops)).is_ok());
    assert_eq!(h.stats("/a/b"), "count=3,bytes=2");
    assert_eq!(
        h.stats("/a"),
        "count=3,bytes=1",
        "only the deepest quota counts"
    );
}

#[test]
fn a_snapshot_keeps_the_quotas() {
    let mut h = H::new();
    h.mk("/q", b"");
    h.set_quota("/q", "count=-1,bytes=-1=;countHardLimit=1");
    let mut t = DataTree::from_snapshot(&h.t.to_snapshot(), h.t.options()).unwrap();
    assert_eq!(t.quotas().collect::<Vec<_>>(), vec!["/q"]);
    h.t = std::mem::replace(&mut t, DataTree::new(h.t.options()));
    assert_eq!(
        h.enforced(mkreq("/q/a", b"")),
        Err(KeeperError::QuotaExceeded)
    );
}
