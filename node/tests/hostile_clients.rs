//! Hostile clients against a live node (the `ensemble` binary, standalone, on loopback ports
//! 41000–41099): a slow client that never reads, half-open connections, more connections than
//! maxClientCnxns from one address, frame lengths of 2 GiB, a path of 1,000 components, 100,000
//! children under one node, a flood of watches, and plain garbage. In every test a well-behaved
//! "canary" client keeps writing and reading while the abuse goes on, and at the end every write
//! the server acknowledged is read back (after a restart where the test says so).

use ensemble_core::jute;
use ensemble_core::proto::{Acl, ConnectRequest, CreateMode, EventType, Request, WatchedEvent};
use ensemble_node::client::{Client, ClientError};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ensemble");

/// One standalone node run in the foreground; killed (and reaped) when dropped.
struct Node {
    dir: PathBuf,
    port: u16,
    extra: String,
    child: Option<Child>,
}

impl Node {
    fn start(tag: &str, port: u16, extra: &str) -> Node {
        let dir = std::env::temp_dir().join(format!("ens-hostile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut n = Node {
            dir,
            port,
            extra: extra.to_string(),
            child: None,
        };
        n.spawn();
        n
    }

    fn spawn(&mut self) {
        let cfg = format!(
            "tickTime=500\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
             4lw.commands.whitelist=*\npreAllocSize=1024\nforceSync=no\n{}",
            self.dir.join("data").display(),
            self.port,
            self.extra
        );
        let path = self.dir.join("zoo.cfg");
        std::fs::write(&path, cfg).expect("zoo.cfg");
        let log = std::fs::File::create(self.dir.join("node.log")).expect("log");
        let child = Command::new(BIN)
            .arg("run")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ensemble");
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            if let Ok(s) = ensemble_node::daemon::ask("127.0.0.1", self.port, "ruok")
                && s == "imok"
            {
                // ruok answers once the port is up; wait until it serves, too
                if ensemble_node::daemon::ask("127.0.0.1", self.port, "srvr")
                    .is_ok_and(|s| s.contains("Mode: standalone"))
                {
                    return;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "node did not start: {}",
                std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn hosts(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn rss_kib(&self) -> u64 {
        let Some(c) = &self.child else { return 0 };
        let s = std::fs::read_to_string(format!("/proc/{}/status", c.id())).unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn client(n: &Node) -> Client {
    Client::connect(&n.hosts(), Duration::from_secs(10))
        .await
        .expect("connect")
}

/// A well-behaved client that writes and reads in a loop while the abuse runs; every write the
/// server acknowledges is remembered, every operation must finish in time.
struct Canary {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Canary {
    async fn start(n: &Node, root: &str) -> Canary {
        let c = client(n).await;
        c.create(root, b"", Acl::open_unsafe(), CreateMode::Persistent)
            .await
            .expect("canary root");
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let root = root.to_string();
        let task = tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0u32;
            while !s.load(Ordering::Relaxed) {
                let p = format!("{root}/w{i}");
                let r = tokio::time::timeout(
                    Duration::from_secs(10),
                    c.create(
                        &p,
                        &i.to_be_bytes(),
                        Acl::open_unsafe(),
                        CreateMode::Persistent,
                    ),
                )
                .await;
                match r {
                    Ok(Ok(_)) => acked.push(p.clone()),
                    other => panic!("canary write {p} not served: {other:?}"),
                }
                let r = tokio::time::timeout(Duration::from_secs(10), c.get_data(&p, false)).await;
                assert!(
                    matches!(r, Ok(Ok((ref d, _))) if d == &i.to_be_bytes()),
                    "canary read {p}: {r:?}"
                );
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = c.close().await;
            acked
        });
        Canary { stop, task }
    }

    /// Stop, and check every acknowledged write is there (through a fresh session).
    async fn finish(self, n: &Node) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let acked = self.task.await.expect("canary task");
        assert!(!acked.is_empty(), "the canary was never served");
        verify(n, &acked).await;
        acked.len()
    }
}

async fn verify(n: &Node, paths: &[String]) {
    let c = client(n).await;
    for p in paths {
        assert!(
            c.exists(p, false).await.expect("exists").is_some(),
            "acknowledged write {p} lost"
        );
    }
    c.close().await.ok();
}

/// A raw connection with a completed handshake (from `src`, so per-address limits can be
/// exercised from an address other than the canary's).
fn raw_session(n: &Node, src: Ipv4Addr) -> std::io::Result<TcpStream> {
    let mut s = connect_from(src, n.port)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut out = Vec::new();
    jute::encode_connect(
        &ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 30_000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: Some(false),
        },
        &mut out,
    );
    s.write_all(&out)?;
    let frame = read_frame(&mut s)?;
    jute::decode_connect_response(&frame)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(s)
}

fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let n = jute::frame_len(len)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut buf = vec![0; n];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

/// A TCP connection to 127.0.0.1:port from a chosen local address (std cannot bind before
/// connecting, so this goes through libc).
fn connect_from(src: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    if src == Ipv4Addr::LOCALHOST {
        return TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    }
    // SAFETY: plain socket/bind/connect on a descriptor we own; it is handed to TcpStream,
    // which closes it, and closed here on every error path.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let sa = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(ip).to_be(),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let local = sa(src, 0);
        let remote = sa(Ipv4Addr::LOCALHOST, port);
        if libc::bind(fd, (&raw const local).cast(), len) != 0
            || libc::connect(fd, (&raw const remote).cast(), len) != 0
        {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(TcpStream::from_raw_fd(fd))
    }
}

/// Has the server closed this connection? (EOF or reset within `limit`, reading and dropping
/// whatever was queued before it.)
fn closed_by_server(s: &mut TcpStream, limit: Duration) -> bool {
    let t0 = Instant::now();
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = vec![0u8; 1 << 16];
    while t0.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

fn request_frame(xid: i32, r: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    jute::encode_request(xid, r, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_that_never_reads_is_cut_off() {
    let mut n = Node::start("slow", 41001, "");
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
    let k = canary.finish(&n).await;
    eprintln!("slow client: {sent} requests sent unread; canary acked {k} writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_do_not_block_others() {
    let mut n = Node::start("halfopen", 41002, "maxClientCnxns=0\n");
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
    let k = canary.finish(&n).await;
    verify(&n, &["/after".to_string()]).await;
    eprintln!("half-open: canary acked {k} writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_connections_than_max_client_cnxns_from_one_address() {
    let mut n = Node::start("maxcnxns", 41003, "maxClientCnxns=10\n");
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
    let k = canary.finish(&n).await;
    eprintln!("maxClientCnxns: canary acked {k} writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_lengths_of_2_gib_close_only_that_connection() {
    let mut n = Node::start("2gib", 41004, "");
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
    let k = canary.finish(&n).await;
    eprintln!("2 GiB frames: canary acked {k} writes; rss {rss0} -> {rss1} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_path_of_1000_components_survives_a_restart() {
    let mut n = Node::start("deep", 41005, "snapCount=200\n");
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
    eprintln!("deep path: canary acked {acked} writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_children_under_one_node() {
    let mut n = Node::start("wide", 41006, "snapCount=20000\n");
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
    eprintln!("wide: canary acked {canary_acked} writes");
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
    let n = Node::start("watches", 41007, "");
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
    let k = canary.finish(&n).await;
    eprintln!("watch flood: canary acked {k} writes");
}
