//! Read-only mode on a real ensemble: three voters started by the `ensemble` binary with
//! `-Dreadonlymode.enabled=true` in SERVER_JVMFLAGS (and local sessions in zoo.cfg); two are
//! killed, and the survivor serves a client that asked canBeReadOnly its committed state,
//! answers writes NotReadOnly, refuses a client that did not ask, and says `ro` to `isro` and
//! `Mode: read-only` to `srvr`. When the others come back it rejoins the quorum, read-write.
//!
//! Ports: picked free at run time (client, quorum and election ports of each server).

mod trio;

use ensemble_client::{Client, ClientError, ConnectOptions};
use ensemble_proto::proto::{Acl, CreateMode, KeeperError};
use std::time::Duration;
use trio::Trio;

const JVMFLAGS: &str = "-Xmx1g -Dreadonlymode.enabled=true";

/// Three voters with read-only mode and local sessions (kazoo's harness's settings).
fn ensemble() -> Trio {
    Trio::new("readonly", |_, _| {
        "forceSync=no\nlocalSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true\n".to_string()
    })
    .with_env("SERVER_JVMFLAGS", JVMFLAGS)
}

fn isro(e: &Trio, i: usize) -> String {
    ensemble_node::daemon::ask("127.0.0.1", e.client[i - 1], "isro").unwrap_or_default()
}

async fn client(host: &str, read_only: bool) -> Result<Client, ClientError> {
    let mut opts = ConnectOptions::new(host, Duration::from_secs(10));
    opts.read_only = read_only;
    opts.connect_timeout = Some(Duration::from_secs(5));
    Client::connect_with(opts).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survivor_serves_reads_read_only_and_rejoins_read_write() {
    let e = ensemble();
    for i in 1..=3 {
        e.start(i);
    }
    for i in 1..=3 {
        e.wait_mode(i, &["leader", "follower"], Duration::from_secs(60));
    }
    for i in 1..=3 {
        assert!(
            !e.log(i).contains("readonlymode"),
            "the flag is taken, not reported: {}",
            e.log(i)
        );
    }
    let all = (1..=3).map(|i| e.host(i)).collect::<Vec<_>>().join(",");
    let w = client(&all, false).await.expect("a session");
    w.create("/kept", b"v1", Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("written");
    // a local session upgrades for its ephemeral
    w.create("/eph", b"", Acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .expect("an ephemeral of an upgraded local session");
    w.sync("/").await.expect("synced");
    drop(w);
    // server 3 has everything once a sync through it comes back
    let s3 = client(&e.host(3), false).await.expect("a session on 3");
    s3.sync("/").await.expect("synced");
    assert_eq!(s3.get_data("/kept", false).await.expect("read").0, b"v1");
    drop(s3);

    e.kill9(1);
    e.kill9(2);
    e.wait_mode(3, &["read-only"], Duration::from_secs(30));
    assert_eq!(isro(&e, 3), "ro");

    let ro = client(&e.host(3), true).await.expect("a read-only session");
    assert!(ro.session().read_only, "ConnectResponse readOnly");
    assert_eq!(ro.get_data("/kept", false).await.expect("read").0, b"v1");
    assert!(
        ro.get_children("/", false)
            .await
            .expect("read")
            .contains(&"kept".to_string())
    );
    let refused = ro
        .create("/new", b"", Acl::open_unsafe(), CreateMode::Persistent)
        .await;
    assert!(
        matches!(refused, Err(ClientError::Keeper(KeeperError::NotReadOnly))),
        "{refused:?}"
    );
    let refused = ro.set_data("/kept", b"v2", None).await;
    assert!(
        matches!(refused, Err(ClientError::Keeper(KeeperError::NotReadOnly))),
        "{refused:?}"
    );
    // a client that did not ask canBeReadOnly is not served
    assert!(client(&e.host(3), false).await.is_err());

    e.start(1);
    e.start(2);
    let m = e.wait_mode(3, &["leader", "follower"], Duration::from_secs(60));
    assert!(m == "leader" || m == "follower");
    assert_eq!(isro(&e, 3), "rw");
    let rw = client(&e.host(3), false).await.expect("read-write again");
    rw.set_data("/kept", b"v2", None).await.expect("written");
    assert_eq!(rw.get_data("/kept", false).await.expect("read").0, b"v2");
}
