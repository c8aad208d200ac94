//! The client against a real Apache ZooKeeper 3.8 server: every call, pipelining, watches,
//! auth, reconnect with session re-attach and watch re-registration, expiry.

mod common;

use std::time::Duration;

use common::{Proxy, real_zk, skip, unique};
use ensemble_client::{Client, ClientError, ConnectOptions, SessionState};
use ensemble_proto::proto::{
    Acl, AddWatchMode, CreateMode, EventType, Id, KeeperError, KeeperState, MultiOp, OpResult,
    ReadOp, ReadResult, Request, Response, WatchedEvent, WatcherType, perms,
};
use tokio::sync::mpsc::UnboundedReceiver;

const T: Duration = Duration::from_secs(10);

macro_rules! zk_or_skip {
    ($name:literal) => {
        match real_zk() {
            Some(zk) => zk,
            None => {
                skip($name);
                return;
            }
        }
    };
}

/// The next event that is not a session event, within 10 s.
async fn next_watch(ev: &mut UnboundedReceiver<WatchedEvent>) -> WatchedEvent {
    loop {
        let e = tokio::time::timeout(T, ev.recv())
            .await
            .expect("an event in time")
            .expect("open");
        if e.kind != EventType::None {
            return e;
        }
    }
}

async fn next_session_event(ev: &mut UnboundedReceiver<WatchedEvent>) -> KeeperState {
    loop {
        let e = tokio::time::timeout(T, ev.recv())
            .await
            .expect("an event in time")
            .expect("open");
        if e.kind == EventType::None {
            return e.state;
        }
    }
}

fn ev(kind: EventType, path: &str) -> WatchedEvent {
    WatchedEvent {
        kind,
        state: KeeperState::SyncConnected,
        path: path.to_string(),
    }
}

#[tokio::test]
async fn crud_and_errors() {
    let zk = zk_or_skip!("crud_and_errors");
    let c = Client::connect(&zk.addr, T).await.expect("connect");
    assert!(c.session_id() != 0);
    assert!(c.negotiated_timeout() >= Duration::from_secs(1));
    let root = unique("crud");
    let open = Acl::open_unsafe();

    assert_eq!(
        c.create(&root, b"hello", open.clone(), CreateMode::Persistent)
            .await,
        Ok(root.clone())
    );
    assert_eq!(
        c.create(&root, b"", open.clone(), CreateMode::Persistent)
            .await,
        Err(ClientError::Keeper(KeeperError::NodeExists))
    );
    let (data, stat) = c.get_data(&root, false).await.expect("get");
    assert_eq!(data, b"hello");
    assert_eq!(
        (stat.version, stat.data_length, stat.num_children),
        (0, 5, 0)
    );
    assert_eq!(stat.czxid, stat.mzxid);
    let stat2 = c.set_data(&root, b"world", Some(0)).await.expect("set");
    assert_eq!(stat2.version, 1);
    assert_eq!(
        c.set_data(&root, b"x", Some(0)).await,
        Err(ClientError::Keeper(KeeperError::BadVersion))
    );
    assert_eq!(c.exists(&format!("{root}/none"), false).await, Ok(None));
    assert_eq!(
        c.exists(&root, false)
            .await
            .expect("exists")
            .map(|s| s.version),
        Some(1)
    );

    let seq = c
        .create(
            &format!("{root}/s-"),
            b"",
            open.clone(),
            CreateMode::PersistentSequential,
        )
        .await
        .expect("sequential");
    assert_eq!(seq, format!("{root}/s-0000000000"));
    let (path, stat) = c
        .create2(
            &format!("{root}/e"),
            b"eph",
            open.clone(),
            CreateMode::Ephemeral,
            None,
        )
        .await
        .expect("create2");
    assert_eq!(path, format!("{root}/e"));
    assert_eq!(stat.ephemeral_owner, c.session_id());
    assert_eq!(
        c.create(
            &format!("{root}/e/x"),
            b"",
            open.clone(),
            CreateMode::Persistent
        )
        .await,
        Err(ClientError::Keeper(KeeperError::NoChildrenForEphemerals))
    );
    let (path, _) = c
        .create2(
            &format!("{root}/ttl"),
            b"",
            open.clone(),
            CreateMode::PersistentWithTtl,
            Some(60_000),
        )
        .await
        .expect("createTTL");
    assert_eq!(path, format!("{root}/ttl"));
    c.create2(
        &format!("{root}/box"),
        b"",
        open.clone(),
        CreateMode::Container,
        None,
    )
    .await
    .expect("createContainer");

    let mut kids = c.get_children(&root, false).await.expect("children");
    kids.sort();
    assert_eq!(kids, vec!["box", "e", "s-0000000000", "ttl"]);
    let (kids2, pstat) = c.get_children2(&root, false).await.expect("children2");
    assert_eq!(kids2.len(), 4);
    assert_eq!(pstat.num_children, 4);
    assert_eq!(c.get_all_children_number(&root).await, Ok(4));
    assert_eq!(c.get_ephemerals(&root).await, Ok(vec![format!("{root}/e")]));
    assert_eq!(c.sync(&root).await, Ok(root.clone()));

    let (acl, _) = c.get_acl(&root).await.expect("getACL");
    assert_eq!(acl, open);
    let st = c
        .set_acl(&root, open.clone(), Some(0))
        .await
        .expect("setACL");
    assert_eq!(st.aversion, 1);

    assert_eq!(
        c.delete(&root, None).await,
        Err(ClientError::Keeper(KeeperError::NotEmpty))
    );
    assert_eq!(
        c.delete(&format!("{root}/nope"), None).await,
        Err(ClientError::Keeper(KeeperError::NoNode))
    );
    assert_eq!(
        c.delete(&seq, Some(7)).await,
        Err(ClientError::Keeper(KeeperError::BadVersion))
    );
    assert!(matches!(
        c.get_data("bad", false).await,
        Err(ClientError::BadPath(_))
    ));

    let who = c.who_am_i().await.expect("whoami");
    assert_eq!(who.len(), 1);
    assert_eq!(who[0].auth_scheme, "ip");
    c.close().await.expect("close");
    assert_eq!(c.state(), SessionState::Closed);
    assert_eq!(c.exists("/", false).await, Err(ClientError::Closed));

    // the ephemeral went with the session
    let c2 = Client::connect(&zk.addr, T).await.expect("connect");
    assert_eq!(c2.exists(&format!("{root}/e"), false).await, Ok(None));
    c2.close().await.expect("close");
}

#[tokio::test]
async fn pipelined_requests_answer_in_order() {
    let zk = zk_or_skip!("pipelined_requests_answer_in_order");
    let c = Client::connect(&zk.addr, T).await.expect("connect");
    let root = unique("pipe");
    c.create(&root, b"", Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("root");
    let n = 500;
    let futs = (0..n).map(|i| {
        let c = c.clone();
        let p = format!("{root}/n{i:04}");
        async move {
            c.create(
                &p,
                format!("{i}").as_bytes(),
                Acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .await
        }
    });
    let created = futures::future::join_all(futs).await;
    for (i, r) in created.into_iter().enumerate() {
        assert_eq!(r, Ok(format!("{root}/n{i:04}")));
    }
    // mixed reads and writes in flight together, each answer matching its request
    let futs = (0..n).map(|i| {
        let c = c.clone();
        let p = format!("{root}/n{i:04}");
        async move {
            if i % 2 == 0 {
                c.get_data(&p, false).await.map(|(d, _)| d)
            } else {
                c.set_data(&p, b"x", None)
                    .await
                    .map(|s| s.version.to_string().into_bytes())
            }
        }
    });
    for (i, r) in futures::future::join_all(futs)
        .await
        .into_iter()
        .enumerate()
    {
        let want = if i % 2 == 0 {
            format!("{i}").into_bytes()
        } else {
            b"1".to_vec()
        };
        assert_eq!(r, Ok(want), "op {i}");
    }
    assert_eq!(c.get_all_children_number(&root).await, Ok(n));
    c.close().await.expect("close");
}

#[tokio::test]
async fn watches_fire_once_and_persistent_ones_stay() {
    let zk = zk_or_skip!("watches_fire_once_and_persistent_ones_stay");
    let c = Client::connect(&zk.addr, T).await.expect("connect");
    let mut events = c.take_events().expect("events");
    assert!(c.take_events().is_none());
    assert_eq!(
        next_session_event(&mut events).await,
        KeeperState::SyncConnected
    );
    let w = Client::connect(&zk.addr, T).await.expect("writer");
    let root = unique("watch");
    let open = Acl::open_unsafe();

    // exists on a missing node, then created
    assert_eq!(c.exists(&root, true).await, Ok(None));
    w.create(&root, b"a", open.clone(), CreateMode::Persistent)
        .await
        .expect("create");
    assert_eq!(
        next_watch(&mut events).await,
        ev(EventType::NodeCreated, &root)
    );

    // data watch fires once
    c.get_data(&root, true).await.expect("get");
    w.set_data(&root, b"b", None).await.expect("set");
    assert_eq!(
        next_watch(&mut events).await,
        ev(EventType::NodeDataChanged, &root)
    );
    w.set_data(&root, b"c", None).await.expect("set again");

    // child watch
    c.get_children(&root, true).await.expect("ls");
    w.create(
        &format!("{root}/k"),
        b"",
        open.clone(),
        CreateMode::Persistent,
    )
    .await
    .expect("child");
    assert_eq!(
        next_watch(&mut events).await,
        ev(EventType::NodeChildrenChanged, &root)
    );

    // persistent recursive: every change below, and it stays
    c.add_watch(&root, AddWatchMode::PersistentRecursive)
        .await
        .expect("addWatch");
    c.check_watches(&root, WatcherType::Any)
        .await
        .expect("checkWatches");
    w.set_data(&format!("{root}/k"), b"1", None)
        .await
        .expect("set k");
    assert_eq!(
        next_watch(&mut events).await,
        ev(EventType::NodeDataChanged, &format!("{root}/k"))
    );
    w.set_data(&format!("{root}/k"), b"2", None)
        .await
        .expect("set k");
    assert_eq!(
        next_watch(&mut events).await,
        ev(EventType::NodeDataChanged, &format!("{root}/k"))
    );
    c.remove_watches(&root, WatcherType::Any, false)
        .await
        .expect("removeWatches");
    assert_eq!(
        next_watch(&mut events).await,
        ev(EventType::PersistentWatchRemoved, &root)
    );
    assert_eq!(
        c.remove_watches(&root, WatcherType::Any, false).await,
        Err(ClientError::Keeper(KeeperError::NoWatcher))
    );

    // nothing else arrived: the one-shot data watch did not fire for "c"
    w.set_data(&root, b"d", None).await.expect("set");
    c.sync(&root).await.expect("sync");
    assert!(events.try_recv().is_err(), "no stray events");
    c.close().await.expect("close");
    w.close().await.expect("close");
    assert_eq!(next_session_event(&mut events).await, KeeperState::Closed);
}

#[tokio::test]
async fn multi_commits_or_rolls_back() {
    let zk = zk_or_skip!("multi_commits_or_rolls_back");
    let c = Client::connect(&zk.addr, T).await.expect("connect");
    let root = unique("multi");
    let open = Acl::open_unsafe();
    c.create(&root, b"", open.clone(), CreateMode::Persistent)
        .await
        .expect("root");
    let ok = c
        .multi(vec![
            MultiOp::Check {
                path: root.clone(),
                version: 0,
            },
            MultiOp::Create {
                op: ensemble_proto::proto::CreateOp::Create,
                path: format!("{root}/a"),
                data: b"1".to_vec(),
                acl: open.clone(),
                mode: CreateMode::Persistent,
                ttl: 0,
            },
            MultiOp::SetData {
                path: format!("{root}/a"),
                data: b"2".to_vec(),
                version: 0,
            },
        ])
        .await
        .expect("multi");
    assert!(matches!(
        &ok[..],
        [
            OpResult::Check,
            OpResult::Create { .. },
            OpResult::SetData(_)
        ]
    ));
    let failed = c
        .multi(vec![
            MultiOp::Delete {
                path: format!("{root}/a"),
                version: -1,
            },
            MultiOp::Check {
                path: root.clone(),
                version: 42,
            },
        ])
        .await;
    match failed {
        Err(ClientError::MultiFailed {
            index,
            error,
            results,
        }) => {
            assert_eq!((index, error), (1, KeeperError::BadVersion));
            assert_eq!(results, vec![OpResult::Error(0), OpResult::Error(-103)]);
        }
        other => panic!("expected a rollback, got {other:?}"),
    }
    assert_eq!(
        c.get_data(&format!("{root}/a"), false)
            .await
            .map(|(d, _)| d),
        Ok(b"2".to_vec())
    );
    let reads = c
        .multi_read(vec![
            ReadOp::GetData {
                path: format!("{root}/a"),
            },
            ReadOp::GetChildren { path: root.clone() },
            ReadOp::GetData {
                path: format!("{root}/zz"),
            },
        ])
        .await
        .expect("multiRead");
    assert!(matches!(&reads[0], ReadResult::GetData { data, .. } if data == b"2"));
    assert_eq!(reads[1], ReadResult::GetChildren(vec!["a".to_string()]));
    assert_eq!(reads[2], ReadResult::Error(KeeperError::NoNode));
    // the raw interface shows the wire answer
    let raw = c
        .request(Request::Multi(vec![]))
        .await
        .expect("empty multi");
    assert_eq!(raw, Ok(Response::Multi(vec![])));
    c.close().await.expect("close");
}

#[tokio::test]
async fn digest_auth_and_acls() {
    let zk = zk_or_skip!("digest_auth_and_acls");
    let c = Client::connect(&zk.addr, T).await.expect("connect");
    c.add_auth("digest", b"alice:secret").await.expect("auth");
    let who = c.who_am_i().await.expect("whoami");
    assert!(
        who.iter()
            .any(|i| i.auth_scheme == "digest" && i.user == "alice"),
        "{who:?}"
    );
    let root = unique("acl");
    let mine = vec![Acl {
        perms: perms::ALL,
        id: Id::new("auth", ""),
    }];
    c.create(&root, b"secret", mine, CreateMode::Persistent)
        .await
        .expect("create");
    let (acl, _) = c.get_acl(&root).await.expect("getACL");
    assert_eq!(acl[0].id.scheme, "digest");
    assert!(acl[0].id.id.starts_with("alice:"));

    let other = Client::connect(&zk.addr, T).await.expect("connect");
    assert_eq!(
        other.get_data(&root, false).await,
        Err(ClientError::Keeper(KeeperError::NoAuth))
    );
    other
        .add_auth("digest", b"alice:secret")
        .await
        .expect("auth");
    assert_eq!(
        other.get_data(&root, false).await.map(|(d, _)| d),
        Ok(b"secret".to_vec())
    );
    c.delete(&root, None).await.expect("delete");
    c.close().await.expect("close");
    other.close().await.expect("close");
}

#[tokio::test]
async fn reconnect_reattaches_the_session_and_rearms_watches() {
    let zk = zk_or_skip!("reconnect_reattaches_the_session_and_rearms_watches");
    let proxy = Proxy::start(&zk.addr);
    let c = Client::connect(&proxy.addr, Duration::from_secs(6))
        .await
        .expect("connect");
    let mut events = c.take_events().expect("events");
    assert_eq!(
        next_session_event(&mut events).await,
        KeeperState::SyncConnected
    );
    c.add_auth("digest", b"bob:pw").await.expect("auth");
    let w = Client::connect(&zk.addr, T).await.expect("writer");
    let root = unique("reattach");
    let open = Acl::open_unsafe();
    c.create(&root, b"0", open.clone(), CreateMode::Persistent)
        .await
        .expect("create");
    c.create(
        &format!("{root}/eph"),
        b"",
        open.clone(),
        CreateMode::Ephemeral,
    )
    .await
    .expect("eph");
    c.get_data(&root, true).await.expect("watch data");
    c.exists(&format!("{root}/later"), true)
        .await
        .expect("watch missing");
    c.add_watch(&format!("{root}/p"), AddWatchMode::Persistent)
        .await
        .expect("persistent");
    let session = c.session_id();

    proxy.block(true);
    proxy.cut();
    assert_eq!(
        next_session_event(&mut events).await,
        KeeperState::Disconnected
    );
    assert_ne!(c.state(), SessionState::Connected);
    // changes while this client is away
    w.set_data(&root, b"1", None).await.expect("set");
    w.create(
        &format!("{root}/later"),
        b"",
        open.clone(),
        CreateMode::Persistent,
    )
    .await
    .expect("c");
    proxy.block(false);

    assert_eq!(
        next_session_event(&mut events).await,
        KeeperState::SyncConnected
    );
    assert_eq!(c.session_id(), session, "same session after reconnect");
    // setWatches with the last zxid seen makes the server fire what was missed
    let mut fired = vec![next_watch(&mut events).await, next_watch(&mut events).await];
    fired.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(
        fired,
        vec![
            ev(EventType::NodeDataChanged, &root),
            ev(EventType::NodeCreated, &format!("{root}/later"))
        ]
    );
    // the persistent watch and the credentials came back too
    w.create(
        &format!("{root}/p"),
        b"",
        open.clone(),
        CreateMode::Persistent,
    )
    .await
    .expect("p");
    assert_eq!(
        next_watch(&mut events).await,
        ev(EventType::NodeCreated, &format!("{root}/p"))
    );
    let who = c.who_am_i().await.expect("whoami");
    assert!(who.iter().any(|i| i.user == "bob"), "{who:?}");
    assert!(
        w.exists(&format!("{root}/eph"), false)
            .await
            .expect("exists")
            .is_some()
    );

    // another client object can take the session over with id and password (the first one
    // is kept away, or the two would keep taking it from each other)
    proxy.block(true);
    proxy.cut();
    let info = c.session();
    let mut opts = ConnectOptions::new(&zk.addr, Duration::from_secs(6));
    opts.session = Some((info.session_id, info.passwd.clone()));
    let again = Client::connect_with(opts).await.expect("re-attach");
    assert_eq!(again.session_id(), session);
    assert_eq!(
        again.get_ephemerals("/").await,
        Ok(vec![format!("{root}/eph")])
    );
    again.close().await.expect("close");
    w.close().await.expect("close");
}

#[tokio::test]
async fn expiry_is_surfaced() {
    let zk = zk_or_skip!("expiry_is_surfaced");
    let proxy = Proxy::start(&zk.addr);
    let c = Client::connect(&proxy.addr, Duration::from_secs(2))
        .await
        .expect("connect");
    let mut events = c.take_events().expect("events");
    assert_eq!(
        next_session_event(&mut events).await,
        KeeperState::SyncConnected
    );
    let timeout = c.negotiated_timeout();
    proxy.block(true);
    proxy.cut();
    assert_eq!(
        next_session_event(&mut events).await,
        KeeperState::Disconnected
    );
    // away longer than the session timeout: the server expires it
    tokio::time::sleep(timeout * 2 + Duration::from_secs(1)).await;
    proxy.block(false);
    assert_eq!(next_session_event(&mut events).await, KeeperState::Expired);
    assert_eq!(c.state(), SessionState::Expired);
    assert_eq!(c.exists("/", false).await, Err(ClientError::SessionExpired));
}

#[tokio::test]
async fn unreachable_servers_fail_the_connect() {
    // needs no server: nothing listens on a just-closed port
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("a")
        .port();
    let r = Client::connect(&format!("127.0.0.1:{port}"), Duration::from_millis(1500)).await;
    assert!(matches!(r, Err(ClientError::NoServer(_))), "{r:?}");
    assert!(matches!(
        Client::connect("", T).await,
        Err(ClientError::BadConnectString(_))
    ));
}

#[tokio::test]
async fn chroot_is_applied_and_stripped() {
    let zk = zk_or_skip!("chroot_is_applied_and_stripped");
    let root = unique("chroot");
    let c = Client::connect(&zk.addr, T).await.expect("connect");
    c.create(&root, b"", Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("root");
    let r = Client::connect(&format!("{}{root}", zk.addr), T)
        .await
        .expect("chrooted");
    let mut events = r.take_events().expect("events");
    assert_eq!(
        r.create("/a", b"x", Acl::open_unsafe(), CreateMode::Persistent)
            .await,
        Ok("/a".into())
    );
    assert_eq!(
        c.get_data(&format!("{root}/a"), false)
            .await
            .map(|(d, _)| d),
        Ok(b"x".to_vec())
    );
    assert_eq!(r.get_children("/", true).await, Ok(vec!["a".to_string()]));
    c.create(
        &format!("{root}/b"),
        b"",
        Acl::open_unsafe(),
        CreateMode::Persistent,
    )
    .await
    .expect("b");
    assert_eq!(
        next_watch(&mut events).await,
        ev(EventType::NodeChildrenChanged, "/")
    );
    // the paths inside multi and multiRead are put under the root too
    r.multi(vec![
        MultiOp::Check {
            path: "/a".into(),
            version: 0,
        },
        MultiOp::SetData {
            path: "/a".into(),
            data: b"y".to_vec(),
            version: 0,
        },
    ])
    .await
    .expect("multi under the root");
    assert_eq!(
        c.get_data(&format!("{root}/a"), false)
            .await
            .map(|(d, _)| d),
        Ok(b"y".to_vec())
    );
    let read = r
        .multi_read(vec![
            ReadOp::GetData { path: "/a".into() },
            ReadOp::GetChildren { path: "/".into() },
        ])
        .await
        .expect("multiRead under the root");
    assert!(
        matches!(&read[0], ReadResult::GetData { data, .. } if data == b"y"),
        "{read:?}"
    );
    let ReadResult::GetChildren(mut kids) = read[1].clone() else {
        panic!("{read:?}")
    };
    kids.sort();
    assert_eq!(kids, ["a", "b"]);
    r.close().await.expect("close");
    c.close().await.expect("close");
}
