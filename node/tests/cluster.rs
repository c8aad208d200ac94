//! A real ensemble on loopback, started with the `ensemble` binary from seed-shaped configs
//! (three voters and an observer), driven by the project's client: CRUD on every server,
//! kill -9 of the leader, a minority that cannot write, a full restart with nothing
//! acknowledged lost, garbage on the client and peer ports, and the start/stop/status edges.

//!
//! Ports: bases 19100, 19200, 19300 (client base+1.., quorum base+11.., election base+21..),
//! below Linux's ephemeral range (32768-60999), so a busy machine's outgoing connections never
//! hold them.

mod trio;

use ensemble_client::{Client, ClientError};
use ensemble_proto::proto::{Acl, CreateMode, KeeperError};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};
use trio::Numbered;

/// Servers 1..=3 vote, 4 observes; `extra` zoo.cfg lines for each.
fn cluster(tag: &str, base: u16, extra: &str) -> Numbered {
    Numbered::new(&format!("cluster-{tag}"), base, 4, true, 500, extra)
}

impl Numbered {
    /// Wait until each of `alive` reports a mode and exactly one voter leads; returns it.
    fn wait_ready(&self, alive: &[u16], limit: Duration) -> u16 {
        let (leader, modes) = self.wait_one_leader(alive, limit);
        for (i, m) in &modes {
            let want = if *i == 4 {
                "observer"
            } else if *i == leader {
                "leader"
            } else {
                "follower"
            };
            assert_eq!(m, want, "server {i}");
        }
        leader
    }

    fn four(&self, i: u16, word: &str) -> String {
        ensemble_node::daemon::ask("127.0.0.1", self.base + i, word).unwrap()
    }
}

fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

async fn connect(hosts: &str) -> Client {
    Client::connect(hosts, Duration::from_secs(10))
        .await
        .unwrap()
}

/// Write `key` and report whether the server acknowledged it.
async fn write(c: &Client, key: &str, data: &[u8]) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(5),
            c.create(key, data, open(), CreateMode::Persistent)
        )
        .await,
        Ok(Ok(_)) | Ok(Err(ClientError::Keeper(KeeperError::NodeExists)))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensemble_failover_and_full_restart() {
    // A small snapCount: restarts recover from snapshots plus the log after them.
    let c = cluster("failover", 19100, "snapCount=20\n");
    for i in 1..=4 {
        c.start(i);
    }
    let leader = c.wait_ready(&[1, 2, 3, 4], Duration::from_secs(30));
    eprintln!("leader: {leader}");

    // CRUD on every server, observer included; reads after sync see every write.
    let mut acked: Vec<(String, Vec<u8>)> = Vec::new();
    let root = connect(&c.hosts(&[1])).await;
    root.create("/t", b"", open(), CreateMode::Persistent)
        .await
        .unwrap();
    for i in 1..=4u16 {
        let cl = connect(&c.hosts(&[i])).await;
        let path = format!("/t/from{i}");
        cl.create(
            &path,
            format!("v{i}").as_bytes(),
            open(),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
        acked.push((path.clone(), format!("v{i}").into_bytes()));
        let (_, stat) = cl.get_data(&path, false).await.unwrap();
        cl.set_data(&path, b"changed", Some(stat.version))
            .await
            .unwrap();
        acked.last_mut().unwrap().1 = b"changed".to_vec();
        let seq = cl
            .create("/t/seq-", b"", open(), CreateMode::EphemeralSequential)
            .await
            .unwrap();
        assert!(seq.starts_with("/t/seq-"), "{seq}");
        cl.close().await.unwrap();
    }
    for i in 1..=4u16 {
        let cl = connect(&c.hosts(&[i])).await;
        cl.sync("/t").await.unwrap();
        let mut kids = cl.get_children("/t", false).await.unwrap();
        kids.sort();
        assert_eq!(
            kids,
            vec!["from1", "from2", "from3", "from4"],
            "server {i}: ephemerals of closed sessions are gone"
        );
        let (d, _) = cl.get_data("/t/from3", false).await.unwrap();
        assert_eq!(d, b"changed");
        cl.close().await.unwrap();
    }
    assert!(c.four(leader, "mntr").contains("zk_server_state\tleader"));
    assert!(c.four(4, "srvr").contains("Mode: observer"));

    // kill -9 of the leader while a client keeps writing through a follower.
    let others: Vec<u16> = [1u16, 2, 3].into_iter().filter(|i| *i != leader).collect();
    let cl = connect(&c.hosts(&others)).await;
    for n in 0..20 {
        let k = format!("/t/before{n}");
        if write(&cl, &k, &[n as u8]).await {
            acked.push((k, vec![n as u8]));
        }
    }
    let t0 = Instant::now();
    c.kill9(leader);
    let mut alive: Vec<u16> = others.clone();
    alive.push(4);
    let new_leader = c.wait_ready(&alive, Duration::from_secs(30));
    eprintln!(
        "re-election after kill -9 of leader {leader}: {:?}, new leader {new_leader}",
        t0.elapsed()
    );
    assert_ne!(new_leader, leader);
    for n in 0..20 {
        let k = format!("/t/after{n}");
        if write(&cl, &k, &[n as u8]).await {
            acked.push((k, vec![n as u8]));
        }
    }
    assert!(
        acked.iter().any(|(k, _)| k.starts_with("/t/after")),
        "clients carry on after failover"
    );

    // A minority cannot write: with two voters down, the last one refuses (or never answers).
    let second = others.iter().copied().find(|i| *i != new_leader).unwrap();
    let lone = new_leader;
    c.kill9(second);
    let t1 = Instant::now();
    while c.mode(lone).is_some() && t1.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(c.mode(lone), None, "a lone voter must stop serving");
    let minority = Client::connect(&c.hosts(&[lone, 4]), Duration::from_secs(2)).await;
    if let Ok(m) = minority {
        assert!(
            !write(&m, "/t/minority", b"x").await,
            "a minority committed a write"
        );
    }

    // Heal, then kill -9 everything and restart: nothing acknowledged is lost.
    c.start(leader);
    c.start(second);
    c.wait_ready(&[1, 2, 3, 4], Duration::from_secs(30));
    let cl = connect(&c.hosts(&[1, 2, 3])).await;
    for n in 0..30 {
        let k = format!("/t/healed{n}");
        if write(&cl, &k, &[n as u8]).await {
            acked.push((k, vec![n as u8]));
        }
    }
    drop(cl);
    for i in 1..=4 {
        c.kill9(i);
    }
    for i in 1..=4 {
        c.start(i);
    }
    c.wait_ready(&[1, 2, 3, 4], Duration::from_secs(30));
    let mut lost = Vec::new();
    for i in 1..=4u16 {
        let cl = connect(&c.hosts(&[i])).await;
        cl.sync("/t").await.unwrap();
        for (k, v) in &acked {
            match cl.get_data(k, false).await {
                Ok((d, _)) if &d == v => {}
                other => lost.push(format!("server {i}: {k}: {other:?}")),
            }
        }
        assert!(matches!(cl.exists("/t/minority", false).await, Ok(None)));
    }
    eprintln!(
        "{} acknowledged writes checked on 4 servers, {} lost",
        acked.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost acknowledged writes: {lost:?}");
    for i in 1..=4 {
        let o = c.ens("stop", i);
        assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("STOPPED"));
    }
    assert!(c.mode(1).is_none());
}

fn raw(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_every_port() {
    let c = cluster("garbage", 19200, "maxClientCnxns=8\n");
    for i in 1..=4 {
        c.start(i);
    }
    c.wait_ready(&[1, 2, 3, 4], Duration::from_secs(30));
    let port = |i: u16| c.base + i;

    // Client port: random bytes, a huge length, a connect frame that does not decode.
    let mut junk = vec![0u8; 4096];
    let mut x = 0x12345678u32;
    for b in junk.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    assert!(
        raw(port(1), &junk).is_empty(),
        "garbage gets no answer, just a close"
    );
    assert!(raw(port(1), &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3]).is_empty());
    assert!(raw(port(1), &[0, 0, 0, 3, 1, 2, 3]).is_empty());
    assert!(raw(port(2), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").is_empty());
    // A just-under-limit length with no body, then a close: no harm either.
    assert!(raw(port(2), &[0, 0x0f, 0xff, 0xff]).is_empty());

    // Peer ports: garbage before and after a valid-looking hello.
    for p in [c.base + 11, c.base + 12, c.base + 21, c.base + 22] {
        raw(p, &junk);
        raw(p, b"ENSP\0\x01\x01\0\0\0\0\0\0\0\0\x09"); // unknown server id 9
    }
    let mut hello = b"ENSP\0\x01\x01\0".to_vec();
    hello.extend_from_slice(&3u64.to_be_bytes());
    hello.extend_from_slice(&junk); // claims to be server 3, then sends junk frames
    raw(c.base + 11, &hello);

    // Everyone still serves and agrees.
    c.wait_ready(&[1, 2, 3, 4], Duration::from_secs(30));
    let cl = connect(&c.hosts(&[1])).await;
    cl.create("/still-here", b"ok", open(), CreateMode::Persistent)
        .await
        .unwrap();
    for i in 1..=4u16 {
        let cl = connect(&c.hosts(&[i])).await;
        cl.sync("/").await.unwrap();
        assert_eq!(cl.get_data("/still-here", false).await.unwrap().0, b"ok");
    }
    for i in 1..=3 {
        assert!(
            c.log(i).contains("dropping") || i != 1,
            "server 1 logs the dropped peers"
        );
    }

    // maxClientCnxns per address: the ninth connection from one IP is closed at once.
    let held: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(("127.0.0.1", port(3))).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(raw(port(3), b"").is_empty());
    assert!(
        c.log(3)
            .contains("Too many connections from /127.0.0.1 - max is 8")
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.four(3, "ruok"), "imok");

    // A client that never reads its replies is closed; the server carries on.
    let big = vec![7u8; 900 * 1024];
    cl.create("/big", &big, open(), CreateMode::Persistent)
        .await
        .unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", port(2))).unwrap();
    let mut frame = Vec::new();
    ensemble_proto::jute::encode_connect(
        &ensemble_proto::proto::ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 30000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: Some(false),
        },
        &mut frame,
    );
    for xid in 1..=200 {
        let get = ensemble_proto::proto::Request::GetData {
            path: "/big".into(),
            watch: false,
        };
        ensemble_proto::jute::encode_request(xid, &get, &mut frame);
    }
    s.write_all(&frame).unwrap();
    let t0 = Instant::now();
    while !c.log(2).contains("it is not reading") {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "a non-reading client was never closed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(s);
    let cl2 = connect(&c.hosts(&[2])).await;
    assert_eq!(cl2.get_data("/still-here", false).await.unwrap().0, b"ok");

    // Four-letter words.
    assert_eq!(c.four(1, "ruok"), "imok");
    assert_eq!(c.four(1, "isro"), "rw");
    assert!(c.four(2, "srvr").contains("Zxid: 0x"));
    assert!(
        c.four(2, "conf")
            .contains("membership: \nserver.1=localhost")
    );
    assert!(c.four(3, "wchs").contains("Total watches:"));
    assert!(c.four(3, "dirs").starts_with("datadir_size: "));
    assert!(
        c.four(3, "envi")
            .starts_with("Environment:\nzookeeper.version=3.8")
    );
    assert!(c.four(3, "cons").contains("/127.0.0.1:"));
}

#[test]
fn start_stop_status_edges() {
    let c = cluster("edges", 19300, "");
    // Nothing running.
    assert!(!c.ens("status", 1).status.success());
    let o = c.ens("stop", 1);
    assert!(!o.status.success());

    // The client port is taken.
    let hog = std::net::TcpListener::bind(("0.0.0.0", c.base + 1)).unwrap();
    let o = c.ens("start", 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "started on a taken port");
    assert!(
        err.contains("client port") && err.contains("in use"),
        "{err}"
    );
    drop(hog);

    // No myid.
    std::fs::remove_file(c.dir.join("data_2/myid")).unwrap();
    let o = c.ens("start", 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("myid") && err.contains("zoo2.cfg:4"), "{err}");

    // A bad value names the line.
    let bad = c.dir.join("bad.cfg");
    std::fs::write(&bad, "tickTime=2000\ndataDir=/tmp/x\nclientPort=abc\n").unwrap();
    let o = trio::ens(&bad, "start", &[]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.cfg:3"));

    // Already running.
    c.start(1);
    let o = c.ens("start", 1);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("already running"));
    // Alone, server 1 is not serving: status says so with a non-zero exit.
    assert_eq!(c.mode(1), None);
    let o = c.ens("stop", 1);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("STOPPED"));
    assert!(c.pid(1).is_none());
    assert!(!Path::new(&c.dir.join("data_1/zookeeper_server.pid")).exists());
}
