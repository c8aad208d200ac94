//! `audit.enable=true`: a real server writes ZooKeeper's audit lines to
//! `dataDir/zookeeper_audit.log`: serverStart, then for each create, setData, delete, setAcl
//! and multi its session, user (the ip, then the digest user added), ip, operation, znode,
//! znode type or ACL, and result (a failed op too); serverStop when it stops. In a
//! three-server ensemble, a session's close deletes its ephemerals on every server, and each
//! writes an `ephemeralZNodeDeletionOnSessionCloseOrExpire` line per ephemeral.

mod ops;

use ensemble_client::Client;
use ensemble_proto::proto::{Acl, CreateMode, CreateOp, Id, MultiOp, perms};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ensemble");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start(dir: &Path, port: u16) -> Child {
    let cfg = format!(
        "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
         preAllocSize=1024\nforceSync=no\naudit.enable=true\n",
        dir.join("data").display()
    );
    let path = dir.join("zoo.cfg");
    std::fs::write(&path, cfg).expect("zoo.cfg");
    let log = std::fs::File::create(dir.join("node.log")).expect("log");
    let child = Command::new(BIN)
        .arg("run")
        .arg(&path)
        .env_remove("JVMFLAGS")
        .env_remove("SERVER_JVMFLAGS")
        .env_remove("ZOOCFGDIR")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn ensemble");
    let t0 = Instant::now();
    while !ensemble_node::daemon::ask("127.0.0.1", port, "srvr")
        .is_ok_and(|s| s.contains("Mode: standalone"))
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "node did not start: {}",
            std::fs::read_to_string(dir.join("node.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// The audit events (what follows log4j's `INFO audit.Log4jAuditLogger: `).
fn events(dir: &Path) -> Vec<String> {
    events_of(&dir.join("data").join("zookeeper_audit.log"))
}

fn events_of(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (stamp, event) = l
                .split_once(" INFO audit.Log4jAuditLogger: ")
                .unwrap_or_else(|| panic!("not a log4j audit line: {l:?}"));
            assert_eq!(stamp.len(), "2026-12-03 16:40:01,123".len(), "{l:?}");
            event.to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_lines_for_writes_with_the_digest_user() {
    let dir = std::env::temp_dir().join(format!("ens-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let port = free_port();
    let mut child = start(&dir, port);

    let c = Client::connect(&format!("127.0.0.1:{port}"), Duration::from_secs(10))
        .await
        .expect("connect");
    c.add_auth("digest", b"alice:pw").await.expect("auth");
    let open = Acl::open_unsafe();
    c.create("/a", b"1", open.clone(), CreateMode::Persistent)
        .await
        .expect("create");
    c.set_data("/a", b"2", None).await.expect("set");
    let seq = c
        .create("/a/s-", b"", open.clone(), CreateMode::EphemeralSequential)
        .await
        .expect("create seq");
    assert!(
        c.create("/a", b"", open.clone(), CreateMode::Persistent)
            .await
            .is_err()
    );
    let read_only = vec![Acl {
        perms: perms::READ | perms::ADMIN | perms::DELETE,
        id: Id::anyone(),
    }];
    c.set_acl("/a", read_only, None).await.expect("setAcl");
    c.multi(vec![
        MultiOp::Create {
            op: CreateOp::Create,
            path: "/m".into(),
            data: vec![],
            acl: open.clone(),
            mode: CreateMode::Persistent,
            ttl: -1,
        },
        MultiOp::SetData {
            path: "/m".into(),
            data: b"x".to_vec(),
            version: -1,
        },
    ])
    .await
    .expect("multi");
    // a multi that fails: one multiOperation failure line
    let failed = c
        .multi(vec![MultiOp::Delete {
            path: "/nope".into(),
            version: -1,
        }])
        .await;
    assert!(failed.is_err() || failed.is_ok_and(|r| !r.is_empty()));
    c.delete(&seq, None).await.expect("delete");
    c.get_data("/a", false)
        .await
        .expect("reads are not audited");
    let session = format!("0x{:x}", c.session_id());
    c.close().await.expect("close");

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let t0 = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        assert!(t0.elapsed() < Duration::from_secs(20), "no exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }

    let who = format!("session={session}\tuser=127.0.0.1,alice\tip=127.0.0.1");
    let me = std::env::var("USER").unwrap_or_else(|_| "zookeeper".into());
    let want = vec![
        format!("user={me}\toperation=serverStart\tresult=success"),
        format!("{who}\toperation=create\tznode=/a\tznode_type=persistent\tresult=success"),
        format!("{who}\toperation=setData\tznode=/a\tresult=success"),
        format!(
            "{who}\toperation=create\tznode={seq}\tznode_type=ephemeral_sequential\tresult=success"
        ),
        format!("{who}\toperation=create\tznode=/a\tznode_type=persistent\tresult=failure"),
        format!("{who}\toperation=setAcl\tznode=/a\tacl=world:anyone:dra\tresult=success"),
        format!("{who}\toperation=create\tznode=/m\tznode_type=persistent\tresult=success"),
        format!("{who}\toperation=setData\tznode=/m\tresult=success"),
        format!("{who}\toperation=multiOperation\tresult=failure"),
        format!("{who}\toperation=delete\tznode={seq}\tresult=success"),
        format!("user={me}\toperation=serverStop\tresult=invoked"),
    ];
    assert_eq!(events(&dir), want);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The audit events of server `i` of `c` that delete an ephemeral on a session's end.
fn ephemeral_deletions(c: &ops::Cluster, i: u16) -> Vec<String> {
    events_of(&c.dir.join(format!("data_{i}")).join("zookeeper_audit.log"))
        .into_iter()
        .filter(|e| e.contains("operation=ephemeralZNodeDeletionOnSessionCloseOrExpire"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_sessions_ephemerals_are_audited_on_every_server() {
    let c = ops::Cluster::start("audit-eph", 3, |_| "audit.enable=true\n".into());
    c.wait_serving(Duration::from_secs(60));
    let hosts: Vec<String> = c
        .nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.client))
        .collect();
    let client = Client::connect(&hosts[0], Duration::from_secs(10))
        .await
        .expect("connect");
    let open = Acl::open_unsafe();
    client
        .create("/e", b"", open.clone(), CreateMode::Persistent)
        .await
        .expect("parent");
    for name in ["/e/a", "/e/b"] {
        client
            .create(name, b"", open.clone(), CreateMode::Ephemeral)
            .await
            .expect("ephemeral");
    }
    let session = format!("0x{:x}", client.session_id());
    client.close().await.expect("close");

    let me = std::env::var("USER").unwrap_or_else(|_| "zookeeper".into());
    let want: Vec<String> = ["/e/a", "/e/b"]
        .iter()
        .map(|p| {
            format!(
                "session={session}\tuser={me}\toperation=ephemeralZNodeDeletionOnSessionCloseOrExpire\tznode={p}\tresult=success"
            )
        })
        .collect();
    // every server applies the closeSession, the two it is not connected to a little later
    let t0 = Instant::now();
    for i in 1..=3u16 {
        loop {
            let got = ephemeral_deletions(&c, i);
            if got == want {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20) && got.len() < want.len(),
                "server {i}: {got:?}, expected {want:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
