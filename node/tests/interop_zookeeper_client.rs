//! Interop with the Rust `zookeeper-client` crate (crates.io, written outside this project),
//! against an ensemble that is already running: `scripts/interop.sh` starts a 3-voter +
//! 1-observer cluster (Apache ZooKeeper or Ensemble) and sets `ENSEMBLE_INTEROP_HOSTS` to its
//! client addresses, e.g. `127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183,127.0.0.1:2184`.
//! Without that variable every test here prints a note and passes without doing anything.

use std::time::Duration;

use zookeeper_client as zk;

static OPEN: &zk::CreateOptions<'static> =
    &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
static EPHEMERAL: &zk::CreateOptions<'static> =
    &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
static SEQUENTIAL: &zk::CreateOptions<'static> =
    &zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());

fn hosts() -> Option<Vec<String>> {
    match std::env::var("ENSEMBLE_INTEROP_HOSTS") {
        Ok(h) if !h.trim().is_empty() => Some(h.split(',').map(|s| s.trim().to_string()).collect()),
        _ => {
            eprintln!(
                "note: ENSEMBLE_INTEROP_HOSTS is not set; skipping (scripts/interop.sh runs these tests \
                 against a live cluster)"
            );
            None
        }
    }
}

async fn connect(host: &str) -> zk::Client {
    tokio::time::timeout(
        Duration::from_secs(30),
        zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(host),
    )
    .await
    .expect("connect timed out")
    .unwrap_or_else(|e| panic!("connect to {host}: {e}"))
}

/// A unique root for one test, created through `client`.
async fn root(client: &zk::Client, name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let path = format!("/rust-{name}-{}-{nanos}", std::process::id());
    client.create(&path, b"", OPEN).await.unwrap();
    path
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: timed out"))
}

async fn remove_tree(client: &zk::Client, path: &str) {
    let mut stack = vec![path.to_string()];
    let mut order = Vec::new();
    while let Some(p) = stack.pop() {
        if let Ok(kids) = client.list_children(&p).await {
            for k in kids {
                stack.push(format!("{p}/{k}"));
            }
        }
        order.push(p);
    }
    for p in order.iter().rev() {
        let _ = client.delete(p, None).await;
    }
}

#[tokio::test]
async fn crud_and_stat_on_every_server() {
    let Some(hosts) = hosts() else { return };
    for host in &hosts {
        let c = connect(host).await;
        let r = root(&c, "crud").await;
        let p = format!("{r}/node");
        let (stat, _) = c.create(&p, b"v0", OPEN).await.unwrap();
        assert_eq!(stat.version, 0);
        assert_eq!(stat.czxid, stat.mzxid);
        let (data, stat2) = c.get_data(&p).await.unwrap();
        assert_eq!(data, b"v0");
        assert_eq!(stat, stat2);
        let stat3 = c.set_data(&p, b"value-1", Some(0)).await.unwrap();
        assert_eq!(stat3.version, 1);
        assert_eq!(stat3.data_length, 7);
        assert_eq!(
            c.set_data(&p, b"x", Some(0)).await.unwrap_err(),
            zk::Error::BadVersion
        );
        assert_eq!(
            c.create(&p, b"", OPEN).await.unwrap_err(),
            zk::Error::NodeExists
        );
        let (kids, pstat) = c.get_children(&r).await.unwrap();
        assert_eq!(kids, vec!["node".to_string()]);
        assert_eq!(pstat.num_children, 1);
        assert_eq!(c.delete(&r, None).await.unwrap_err(), zk::Error::NotEmpty);
        c.delete(&p, Some(1)).await.unwrap();
        assert!(c.check_stat(&p).await.unwrap().is_none());
        assert_eq!(c.get_data(&p).await.unwrap_err(), zk::Error::NoNode);
        c.delete(&r, None).await.unwrap();
    }
}

#[tokio::test]
async fn sequential_ephemeral_and_session_reattach() {
    let Some(hosts) = hosts() else { return };
    let a = connect(&hosts[0]).await;
    let r = root(&a, "seq").await;
    for i in 0..3 {
        let (_, seq) = a.create(&format!("{r}/s-"), b"", SEQUENTIAL).await.unwrap();
        assert_eq!(seq.to_string(), format!("{i:010}"));
    }
    let e = format!("{r}/eph");
    a.create(&e, b"", EPHEMERAL).await.unwrap();
    assert_eq!(
        a.check_stat(&e).await.unwrap().unwrap().ephemeral_owner,
        a.session_id().0
    );
    assert_eq!(
        a.create(&format!("{e}/kid"), b"", OPEN).await.unwrap_err(),
        zk::Error::NoChildrenForEphemerals
    );
    // the same session, re-attached on another server by id and password
    let other = hosts.last().unwrap();
    let b = within(
        "re-attach",
        zk::Client::connector()
            .with_session(a.session().clone())
            .connect(other),
    )
    .await
    .unwrap();
    assert_eq!(b.session_id(), a.session_id());
    b.sync(&e).await.unwrap();
    assert_eq!(
        b.check_stat(&e).await.unwrap().unwrap().ephemeral_owner,
        a.session_id().0
    );
    drop(a);
    drop(b); // closes the session: the ephemeral goes
    let c = connect(&hosts[1 % hosts.len()]).await;
    let mut gone = false;
    for _ in 0..100 {
        c.sync(&r).await.unwrap();
        if c.check_stat(&e).await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the ephemeral outlived its closed session");
    remove_tree(&c, &r).await;
}

#[tokio::test]
async fn oneshot_watches() {
    let Some(hosts) = hosts() else { return };
    let w = connect(hosts.last().unwrap()).await;
    let m = connect(&hosts[0]).await;
    let r = root(&m, "watch").await;
    let p = format!("{r}/n");
    w.sync(&r).await.unwrap();
    let (_, exists) = w.check_and_watch_stat(&p).await.unwrap();
    m.create(&p, b"0", OPEN).await.unwrap();
    let ev = within("exists watch", exists.changed()).await;
    assert_eq!(ev.event_type, zk::EventType::NodeCreated);
    assert_eq!(ev.path, p);
    w.sync(&p).await.unwrap();
    let (_, _, data) = w.get_and_watch_data(&p).await.unwrap();
    let (_, _, kids) = w.get_and_watch_children(&p).await.unwrap();
    m.set_data(&p, b"1", None).await.unwrap();
    let ev = within("data watch", data.changed()).await;
    assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);
    m.create(&format!("{p}/k"), b"", OPEN).await.unwrap();
    let ev = within("child watch", kids.changed()).await;
    assert_eq!(ev.event_type, zk::EventType::NodeChildrenChanged);
    assert_eq!(ev.path, p);
    remove_tree(&m, &r).await;
}

#[tokio::test]
async fn persistent_and_recursive_watches() {
    let Some(hosts) = hosts() else { return };
    let w = connect(&hosts[1 % hosts.len()]).await;
    let w2 = connect(&hosts[2 % hosts.len()]).await;
    let m = connect(&hosts[0]).await;
    let r = root(&m, "pwatch").await;
    let p = format!("{r}/p");
    let mut pers = w.watch(&p, zk::AddWatchMode::Persistent).await.unwrap();
    let mut rec = w2
        .watch(&p, zk::AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    m.create(&p, b"", OPEN).await.unwrap();
    m.set_data(&p, b"x", None).await.unwrap();
    m.create(&format!("{p}/a"), b"", OPEN).await.unwrap();
    m.create(&format!("{p}/a/b"), b"", OPEN).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let ev = within("persistent", pers.changed()).await;
        got.push((ev.event_type, ev.path));
    }
    assert_eq!(
        got,
        vec![
            (zk::EventType::NodeCreated, p.clone()),
            (zk::EventType::NodeDataChanged, p.clone()),
            (zk::EventType::NodeChildrenChanged, p.clone()),
        ]
    );
    let mut got = Vec::new();
    for _ in 0..4 {
        let ev = within("recursive", rec.changed()).await;
        got.push((ev.event_type, ev.path));
    }
    assert_eq!(
        got,
        vec![
            (zk::EventType::NodeCreated, p.clone()),
            (zk::EventType::NodeDataChanged, p.clone()),
            (zk::EventType::NodeCreated, format!("{p}/a")),
            (zk::EventType::NodeCreated, format!("{p}/a/b")),
        ]
    );
    // dropping a persistent watcher removes it
    drop(pers);
    drop(rec);
    remove_tree(&m, &r).await;
}

#[tokio::test]
async fn multi_rollback_and_multi_read() {
    let Some(hosts) = hosts() else { return };
    let c = connect(&hosts[2 % hosts.len()]).await;
    let r = root(&c, "multi").await;
    let a = format!("{r}/a");
    let mut w = c.new_multi_writer();
    w.add_create(&a, b"a0", OPEN).unwrap();
    w.add_set_data(&a, b"a1", Some(0)).unwrap();
    w.add_check_version(&a, 1).unwrap();
    let res = w.commit().await.unwrap();
    assert_eq!(res.len(), 3);
    // rollback: the create before the failing op is undone
    let b = format!("{r}/b");
    w.add_create(&b, b"", OPEN).unwrap();
    w.add_check_version(&a, 7).unwrap();
    w.add_set_data(&a, b"never", None).unwrap();
    assert_eq!(
        w.commit().await.unwrap_err(),
        zk::MultiWriteError::OperationFailed {
            index: 1,
            source: zk::Error::BadVersion
        }
    );
    assert!(c.check_stat(&b).await.unwrap().is_none());
    assert_eq!(c.get_data(&a).await.unwrap().0, b"a1");
    let mut rd = c.new_multi_reader();
    rd.add_get_data(&a).unwrap();
    rd.add_get_children(&r).unwrap();
    rd.add_get_data(&b).unwrap();
    let res = rd.commit().await.unwrap();
    assert_eq!(res.len(), 3);
    match &res[0] {
        zk::MultiReadResult::Data { data, .. } => assert_eq!(data, b"a1"),
        other => panic!("want data, got {other:?}"),
    }
    match &res[1] {
        zk::MultiReadResult::Children { children } => assert_eq!(children, &vec!["a".to_string()]),
        other => panic!("want children, got {other:?}"),
    }
    match &res[2] {
        zk::MultiReadResult::Error { err } => assert_eq!(err, &zk::Error::NoNode),
        other => panic!("want an error, got {other:?}"),
    }
    remove_tree(&c, &r).await;
}

#[tokio::test]
async fn digest_acl_and_whoami() {
    let Some(hosts) = hosts() else { return };
    let owner = connect(&hosts[0]).await;
    owner.auth("digest", b"rustuser:rustpw").await.unwrap();
    let r = root(&owner, "acl").await;
    let p = format!("{r}/secret");
    let creator = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
    owner.create(&p, b"s", &creator).await.unwrap();
    let users = owner.list_auth_users().await.unwrap();
    assert!(
        users
            .iter()
            .any(|u| u.scheme() == "digest" && u.user() == "rustuser"),
        "{users:?}"
    );
    let anon = connect(hosts.last().unwrap()).await;
    anon.sync(&p).await.unwrap();
    assert_eq!(anon.get_data(&p).await.unwrap_err(), zk::Error::NoAuth);
    anon.auth("digest", b"rustuser:rustpw").await.unwrap();
    assert_eq!(anon.get_data(&p).await.unwrap().0, b"s");
    remove_tree(&owner, &r).await;
}

#[tokio::test]
async fn sync_then_read_on_every_server() {
    let Some(hosts) = hosts() else { return };
    let w = connect(&hosts[0]).await;
    let r = root(&w, "sync").await;
    for host in &hosts {
        let c = connect(host).await;
        for k in 0..5 {
            let v = format!("{host}-{k}");
            w.set_data(&r, v.as_bytes(), None).await.unwrap();
            c.sync(&r).await.unwrap();
            assert_eq!(c.get_data(&r).await.unwrap().0, v.as_bytes(), "on {host}");
        }
    }
    w.delete(&r, None).await.unwrap();
}

#[tokio::test]
async fn ephemerals_and_descendants() {
    let Some(hosts) = hosts() else { return };
    let c = connect(&hosts[1 % hosts.len()]).await;
    let r = root(&c, "eph").await;
    c.create(&format!("{r}/e"), b"", EPHEMERAL).await.unwrap();
    c.create(&format!("{r}/p"), b"", OPEN).await.unwrap();
    c.create(&format!("{r}/p/q"), b"", OPEN).await.unwrap();
    assert_eq!(c.list_ephemerals(&r).await.unwrap(), vec![format!("{r}/e")]);
    assert_eq!(c.count_descendants_number(&r).await.unwrap(), 3);
    remove_tree(&c, &r).await;
}

#[tokio::test]
async fn lock_recipe_mutual_exclusion() {
    let Some(hosts) = hosts() else { return };
    let setup = connect(&hosts[0]).await;
    let r = root(&setup, "lock").await;
    let counter = format!("{r}/counter");
    setup.create(&counter, b"0", OPEN).await.unwrap();
    let mut tasks = Vec::new();
    for host in hosts.clone() {
        let r = r.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let c = connect(&host).await;
            for _ in 0..5 {
                let prefix = zk::LockPrefix::new_curator(&r, "latch-").unwrap();
                let lock = within(
                    "lock",
                    c.lock(prefix, b"", zk::LockOptions::new(zk::Acls::anyone_all())),
                )
                .await
                .unwrap();
                c.sync(&counter).await.unwrap();
                let (v, st) = c.get_data(&counter).await.unwrap();
                let n: u32 = String::from_utf8(v).unwrap().parse().unwrap();
                // under the lock, nobody else writes: the versioned write must succeed
                lock.set_data(&counter, (n + 1).to_string().as_bytes(), Some(st.version))
                    .await
                    .unwrap();
                drop(lock);
            }
        }));
    }
    for t in tasks {
        within("lock worker", t).await.unwrap();
    }
    setup.sync(&counter).await.unwrap();
    let (v, _) = setup.get_data(&counter).await.unwrap();
    assert_eq!(String::from_utf8(v).unwrap(), (5 * hosts.len()).to_string());
    tokio::time::sleep(Duration::from_millis(200)).await;
    remove_tree(&setup, &r).await;
}
