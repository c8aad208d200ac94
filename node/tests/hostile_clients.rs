//! Hostile clients against a live node (the `ensemble` binary, standalone, on loopback ports
//! 19400–19499): a slow client that never reads, half-open connections, more connections than
//! maxClientCnxns from one address, frame lengths of 2 GiB, a path of 1,000 components, 100,000
//! children under one node, a flood of watches, and plain garbage. In every test a well-behaved
//! "canary" client keeps writing and reading while the abuse goes on, and at the end every write
//! the server acknowledged is read back (after a restart where the test says so).
//!
//! The abuse run against an ensemble is `abuse_run.rs`; what both share is in `hostile/`.

mod hostile;
use hostile::*;

use ensemble_client::ClientError;
use ensemble_proto::jute;
use ensemble_proto::proto::{Acl, ConnectRequest, CreateMode, EventType, Request, WatchedEvent};
use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_that_never_reads_is_cut_off() {
    let mut n = Node::start("slow", 19401, "");
    let c = client(&n).await;
    // 512 KiB of data: each getData answer is half a MiB the slow client will never read
    c.create(
        "/big",
        &vec![7u8; 512 * 1024],
        Acl::open_unsafe(),
        CreateMode::Persistent,
    )
    .await
    .expect("create /big");
    let canary = Canary::start(&n, "/canary").await;
    let mut slow = raw_session(&n, Ipv4Addr::LOCALHOST).expect("slow session");
    slow.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let get = request_frame(
        1,
        &Request::GetData {
            path: "/big".into(),
            watch: false,
        },
    );
    // ask for ~500 MiB of answers without reading any; the writes may block once both
    // socket buffers are full, which is fine: the server must cut us off, not buffer it all
    let mut sent = 0;
    for _ in 0..1000 {
        if slow.write_all(&get).is_err() {
            break;
        }
        sent += 1;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = n.rss_kib();
    assert!(
        rss < 400 * 1024,
        "the server holds {rss} KiB for a client that does not read"
    );
    assert!(
        closed_by_server(&mut slow, Duration::from_secs(30)),
        "the server kept a client that never reads ({sent} requests sent)"
    );
    assert!(n.alive(), "the server died");
    let (d, _) = c
        .get_data("/big", false)
        .await
        .expect("others still served");
    assert_eq!(d.len(), 512 * 1024);
    let k = canary.finish(&n).await.len();
    eprintln!("slow client: {sent} requests sent unread; canary acked {k} writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_do_not_block_others() {
    let mut n = Node::start("halfopen", 19402, "maxClientCnxns=0\n");
    let canary = Canary::start(&n, "/canary").await;
    let mut held = Vec::new();
    for i in 0..300 {
        let mut s = TcpStream::connect(("127.0.0.1", n.port)).expect("connect");
        match i % 3 {
            // connected, says nothing
            0 => {}
            // a frame length and part of a handshake, then silence
            1 => {
                s.write_all(&[0, 0, 0, 45, 0, 0, 0]).expect("write");
            }
            // a full handshake, then half a request
            _ => {
                let mut out = Vec::new();
                jute::encode_connect(
                    &ConnectRequest {
                        protocol_version: 0,
                        last_zxid_seen: 0,
                        timeout_ms: 30_000,
                        session_id: 0,
                        passwd: vec![0; 16],
                        read_only: None,
                    },
                    &mut out,
                );
                out.extend_from_slice(&[0, 0, 0, 100, 0, 0, 0, 1]);
                s.write_all(&out).expect("write");
            }
        }
        held.push(s);
    }
    // and some that shut their write side down mid-frame (FIN) but keep reading
    for _ in 0..50 {
        let mut s = TcpStream::connect(("127.0.0.1", n.port)).expect("connect");
        s.write_all(&[0, 0, 0, 45, 0]).expect("write");
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        held.push(s);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c = client(&n).await;
    c.create("/after", b"x", Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("a new client is served while 350 connections hang");
    drop(held);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(n.alive());
    let k = canary.finish(&n).await.len();
    verify(&n, &["/after".to_string()]).await;
    eprintln!("half-open: canary acked {k} writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_connections_than_max_client_cnxns_from_one_address() {
    let mut n = Node::start("maxcnxns", 19403, "maxClientCnxns=10\n");
    let canary = Canary::start(&n, "/canary").await;
    let abuser = Ipv4Addr::new(127, 0, 0, 2);
    let mut ok = Vec::new();
    for _ in 0..10 {
        ok.push(raw_session(&n, abuser).expect("within the limit"));
    }
    // the 11th..30th from the same address are refused (closed without an answer)
    let mut refused = 0;
    for _ in 0..20 {
        match raw_session(&n, abuser) {
            Err(_) => refused += 1,
            Ok(mut s) => {
                assert!(
                    closed_by_server(&mut s, Duration::from_secs(5)),
                    "connection over maxClientCnxns kept open"
                );
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 20);
    // the ten admitted ones still work
    for (i, s) in ok.iter_mut().enumerate() {
        s.write_all(&request_frame(
            i as i32 + 1,
            &Request::Exists {
                path: "/".into(),
                watch: false,
            },
        ))
        .expect("write");
        let f = read_frame(s).expect("admitted connection answered");
        let (xid, _, err, _) = jute::decode_reply_header(&f).expect("reply");
        assert_eq!((xid, err), (i as i32 + 1, 0));
    }
    // other addresses are not affected, and closing frees the slots
    drop(ok);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = raw_session(&n, abuser);
    assert!(s.is_ok(), "slots freed after closing: {:?}", s.err());
    assert!(n.alive());
    let k = canary.finish(&n).await.len();
    eprintln!("maxClientCnxns: canary acked {k} writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_lengths_of_2_gib_close_only_that_connection() {
    let mut n = Node::start("2gib", 19404, "");
    let canary = Canary::start(&n, "/canary").await;
    let rss0 = n.rss_kib();
    for len in [
        0x8000_0000u32,
        0x7fff_ffff,
        0xffff_ffff,
        0x0010_0000,
        0x4000_0000,
    ] {
        // as the first frame (before a handshake) ...
        let mut s = TcpStream::connect(("127.0.0.1", n.port)).expect("connect");
        s.write_all(&len.to_be_bytes()).expect("write");
        let _ = s.write_all(&[0xab; 1024]);
        assert!(
            closed_by_server(&mut s, Duration::from_secs(10)),
            "length {len:#x} before the handshake did not close the connection"
        );
        // ... and after one
        let mut s = raw_session(&n, Ipv4Addr::LOCALHOST).expect("session");
        s.write_all(&len.to_be_bytes()).expect("write");
        let _ = s.write_all(&[0xab; 1024]);
        assert!(
            closed_by_server(&mut s, Duration::from_secs(10)),
            "length {len:#x} after the handshake did not close the connection"
        );
    }
    // garbage of every other kind: random bytes, a handshake then random bytes
    let mut x = 0x1234_5678_9abc_def0u64;
    for _ in 0..50 {
        let mut s = TcpStream::connect(("127.0.0.1", n.port)).expect("connect");
        let mut junk = vec![0u8; 300];
        for b in junk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let _ = s.write_all(&junk);
        let _ = s.shutdown(std::net::Shutdown::Write);
        assert!(closed_by_server(&mut s, Duration::from_secs(10)));
    }
    let rss1 = n.rss_kib();
    assert!(
        rss1 < rss0 + 200 * 1024,
        "memory grew from {rss0} to {rss1} KiB on length fields alone"
    );
    assert!(n.alive());
    let k = canary.finish(&n).await.len();
    eprintln!("2 GiB frames: canary acked {k} writes; rss {rss0} -> {rss1} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_path_of_1000_components_survives_a_restart() {
    let mut n = Node::start("deep", 19405, "snapCount=200\n");
    let canary = Canary::start(&n, "/canary").await;
    let c = client(&n).await;
    let mut path = String::new();
    let mut made = Vec::new();
    for i in 0..1000 {
        path.push_str(&format!("/{}", i % 10));
        c.create(&path, b"", Acl::open_unsafe(), CreateMode::Persistent)
            .await
            .unwrap_or_else(|e| panic!("create at depth {}: {e:?}", i + 1));
        made.push(path.clone());
    }
    assert_eq!(path.matches('/').count(), 1000);
    c.set_data(&path, b"bottom", None).await.expect("set");
    // one level further under a missing parent, and a deeper absent path
    let missing = format!("{path}/x/y");
    assert!(matches!(
        c.create(&missing, b"", Acl::open_unsafe(), CreateMode::Persistent)
            .await,
        Err(ClientError::Keeper(_))
    ));
    assert!(c.exists(&missing, false).await.expect("exists").is_none());
    let acked = canary.finish(&n).await;
    c.close().await.ok();
    n.restart();
    let c = client(&n).await;
    let (d, _) = c
        .get_data(&path, false)
        .await
        .expect("deepest after restart");
    assert_eq!(d, b"bottom");
    assert_eq!(
        c.get_all_children_number("/0").await.expect("count"),
        999,
        "every level is still there"
    );
    verify(&n, &made[..10]).await;
    verify(&n, &acked).await;
    eprintln!("deep path: canary acked {} writes", acked.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_children_under_one_node() {
    let mut n = Node::start("wide", 19406, "snapCount=20000\n");
    let canary = Canary::start(&n, "/canary").await;
    let c = client(&n).await;
    c.create("/wide", b"", Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("create /wide");
    // ENSEMBLE_HOSTILE_CHILDREN overrides the count (for a quick local run)
    let n_children: usize = std::env::var("ENSEMBLE_HOSTILE_CHILDREN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let t0 = Instant::now();
    for chunk in (0..n_children).collect::<Vec<_>>().chunks(250) {
        let futs = chunk.iter().map(|i| {
            let c = c.clone();
            async move {
                c.create(
                    &format!("/wide/n{i:05}"),
                    b"",
                    Acl::open_unsafe(),
                    CreateMode::Persistent,
                )
                .await
            }
        });
        for r in futures::future::join_all(futs).await {
            r.expect("create child");
        }
    }
    eprintln!("{n_children} creates in {:?}", t0.elapsed());
    let kids = c.get_children("/wide", false).await.expect("list");
    assert_eq!(kids.len(), n_children);
    let canary_acked = canary.finish(&n).await;
    c.close().await.ok();
    n.restart();
    let c = client(&n).await;
    assert_eq!(
        c.get_all_children_number("/wide").await.expect("count"),
        n_children as i32
    );
    let kids = c
        .get_children("/wide", false)
        .await
        .expect("list after restart");
    assert_eq!(kids.len(), n_children);
    verify(&n, &canary_acked).await;
    eprintln!("wide: canary acked {} writes", canary_acked.len());
}

/// The next watch event about a znode (session state changes come on the same channel).
async fn next_node_event(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<WatchedEvent>,
) -> WatchedEvent {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an event in time")
            .expect("event channel open");
        if ev.kind != EventType::None {
            return ev;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_watches() {
    let n = Node::start("watches", 19407, "");
    let canary = Canary::start(&n, "/canary").await;
    let flooder = client(&n).await;
    let mut events = flooder.take_events().expect("events");
    flooder
        .create("/hot", b"0", Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("create");
    const N: usize = 50_000;
    // the same data watch 50,000 times (one watch: one event), and exists-watches on 50,000
    // distinct paths that do not exist
    for chunk in (0..N).collect::<Vec<_>>().chunks(5000) {
        let futs = chunk.iter().map(|i| {
            let c = flooder.clone();
            async move {
                c.get_data("/hot", true).await.expect("watch /hot");
                c.exists(&format!("/absent/p{i}"), true)
                    .await
                    .expect("exists watch");
            }
        });
        futures::future::join_all(futs).await;
    }
    let wchc = ensemble_node::daemon::ask("127.0.0.1", n.port, "wchs").expect("wchs");
    eprintln!("wchs: {}", wchc.trim());
    // another session changes /hot: the flooder gets the event
    let other = client(&n).await;
    other.set_data("/hot", b"1", None).await.expect("set");
    let ev = next_node_event(&mut events).await;
    assert_eq!(
        (ev.kind, ev.path.as_str()),
        (EventType::NodeDataChanged, "/hot")
    );
    // creating a few of the watched paths fires their watches
    other
        .create("/absent", b"", Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("create");
    for i in 0..10 {
        other
            .create(
                &format!("/absent/p{i}"),
                b"",
                Acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .await
            .expect("create");
    }
    let mut fired = 0;
    while fired < 10 {
        let ev = next_node_event(&mut events).await;
        assert!(
            ev.kind == EventType::NodeCreated && ev.path.starts_with("/absent/p"),
            "{ev:?}"
        );
        fired += 1;
    }
    // the flooding session goes away: its watches with it; the server keeps serving
    flooder.close().await.ok();
    other
        .set_data("/hot", b"2", None)
        .await
        .expect("served after");
    let k = canary.finish(&n).await.len();
    eprintln!("watch flood: canary acked {k} writes");
}
