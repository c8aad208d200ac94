//! The data tree at scale: a million znodes of 100 bytes. Ignored by default (it takes a few
//! seconds and a few hundred MB); run with `cargo test -p ensemble-core --test tree_scale --
//! --ignored --nocapture` to see memory and time. It asserts behaviour, never time.

use ensemble_core::tree::{DataTree, TreeOptions};
use ensemble_core::txn::{Origin, Txn, TxnOp};
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::{Acl, CreateMode, CreateOp, Request, Response};
use std::time::Instant;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[test]
#[ignore]
fn a_million_znodes() {
    const N: usize = 1_000_000;
    const PER_PARENT: usize = 1000;
    let before = rss_kib();
    let mut t = DataTree::new(TreeOptions::default());
    let mut zxid = Zxid::new(1, 0);
    let mut txn = |t: &mut DataTree, request: Request| {
        zxid = zxid.next();
        let txn = Txn {
            zxid,
            time: 1,
            session: 1,
            cxid: 0,
            origin: Origin::NONE,
            op: TxnOp::Write {
                request,
                auth: vec![],
            },
        };
        t.apply(&txn).reply
    };
    let create = |path: String| Request::Create {
        op: CreateOp::Create,
        path,
        data: vec![7u8; 100],
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl: 0,
    };
    let started = Instant::now();
    for p in 0..N / PER_PARENT {
        assert!(txn(&mut t, create(format!("/bench-{p:04}"))).is_ok());
        for c in 0..PER_PARENT - 1 {
            let r = txn(&mut t, create(format!("/bench-{p:04}/node-{c:06}")));
            assert!(matches!(r, Ok(Response::Create { .. })));
        }
    }
    let created = started.elapsed();
    let after = rss_kib();
    assert_eq!(t.node_count(), N + 5);
    let started = Instant::now();
    let mut reads = 0;
    for p in (0..N / PER_PARENT).step_by(7) {
        for c in (0..PER_PARENT - 1).step_by(3) {
            let path = format!("/bench-{p:04}/node-{c:06}");
            let r = t.read(&Request::GetData { path, watch: false }, &[]);
            assert!(r.is_ok());
            reads += 1;
        }
    }
    let read_time = started.elapsed();
    let started = Instant::now();
    let children = t.get_children("/bench-0500").expect("exists");
    assert_eq!(children.len(), PER_PARENT - 1);
    let list_time = started.elapsed();
    let started = Instant::now();
    let snap = t.to_snapshot();
    let snap_time = started.elapsed();
    let started = Instant::now();
    let back = DataTree::from_snapshot(&snap, TreeOptions::default()).expect("loads");
    let load_time = started.elapsed();
    assert_eq!(back.digest(), t.digest());
    eprintln!(
        "{N} znodes: RSS +{} MiB ({} bytes/znode), {:.0} creates/s, {:.0} getData/s, \
         getChildren(999) {:?}, snapshot {} MiB in {:?}, load {:?}",
        (after - before) / 1024,
        (after - before) * 1024 / N as u64,
        N as f64 / created.as_secs_f64(),
        reads as f64 / read_time.as_secs_f64(),
        list_time,
        snap.len() >> 20,
        snap_time,
        load_time,
    );
}
