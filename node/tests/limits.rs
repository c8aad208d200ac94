//! Client connection limits on a real server: `maxCnxns` refuses a connection past the
//! server's total, `maxClientCnxns` one past an IP's, and the connection throttle
//! (`-Dzookeeper.connection_throttle_tokens`) closes a ConnectRequest once its bucket is
//! empty; the connections already in keep working. `globalOutstandingLimit` stops reading;
//! the request throttler (`-Dzookeeper.request_throttle_max_requests`) holds requests while
//! the maximum are in process, and drops the waiting ones of a connection that closed.

use ensemble_client::{Client, ConnectOptions};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ensemble");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Node {
    dir: PathBuf,
    port: u16,
    child: Child,
}

impl Node {
    fn start(tag: &str, extra: &str, jvmflags: &str) -> Node {
        let dir = std::env::temp_dir().join(format!("ens-limits-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let port = free_port();
        let cfg = format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             preAllocSize=1024\nforceSync=no\n{extra}",
            dir.join("data").display()
        );
        let path = dir.join("zoo.cfg");
        std::fs::write(&path, cfg).expect("zoo.cfg");
        let log = std::fs::File::create(dir.join("node.log")).expect("log");
        let child = Command::new(BIN)
            .arg("run")
            .arg(&path)
            .env_remove("JVMFLAGS")
            .env_remove("ZOOCFGDIR")
            .env("SERVER_JVMFLAGS", jvmflags)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ensemble");
        let node = Node { dir, port, child };
        node.wait_up();
        node
    }

    fn wait_up(&self) {
        let t0 = Instant::now();
        // a 4lw connection is a connection too: it comes and goes before the test's own
        while !ensemble_node::daemon::ask("127.0.0.1", self.port, "srvr")
            .is_ok_and(|s| s.contains("Mode: standalone"))
        {
            assert!(t0.elapsed() < Duration::from_secs(30), "{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// A session, or the reason there is none within two seconds.
    async fn connect(&self) -> Result<Client, String> {
        let mut o =
            ConnectOptions::new(&format!("127.0.0.1:{}", self.port), Duration::from_secs(10));
        o.connect_timeout = Some(Duration::from_secs(2));
        Client::connect_with(o).await.map_err(|e| e.to_string())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_cnxns_refuses_past_the_total() {
    let node = Node::start("max", "maxCnxns=2\nmaxClientCnxns=0\n", "");
    let a = node.connect().await.expect("first");
    let b = node.connect().await.expect("second");
    assert!(
        node.connect().await.is_err(),
        "a third connection past maxCnxns=2"
    );
    assert!(
        node.log().contains("Too many connections max allowed is 2"),
        "{}",
        node.log()
    );
    a.create(
        "/x",
        b"",
        ensemble_proto::proto::Acl::open_unsafe(),
        ensemble_proto::proto::CreateMode::Persistent,
    )
    .await
    .expect("the ones in still work");
    b.close().await.expect("close");
    tokio::time::sleep(Duration::from_millis(300)).await;
    node.connect().await.expect("room again once one left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_client_cnxns_refuses_past_an_ip() {
    let node = Node::start("perip", "maxClientCnxns=1\n", "");
    let _a = node.connect().await.expect("first");
    assert!(node.connect().await.is_err(), "a second from 127.0.0.1");
    assert!(
        node.log()
            .contains("Too many connections from /127.0.0.1 - max is 1"),
        "{}",
        node.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_throttle_closes_past_its_tokens() {
    let node = Node::start(
        "throttle",
        "",
        "-Dzookeeper.connection_throttle_tokens=2 -Dzookeeper.connection_throttle_fill_time=3600000",
    );
    let a = node.connect().await.expect("first token");
    let _b = node.connect().await.expect("second token");
    assert!(node.connect().await.is_err(), "no token left");
    assert!(
        node.log().contains("connection throttled"),
        "{}",
        node.log()
    );
    a.get_data("/zookeeper", false)
        .await
        .expect("the ones in still work");
}

/// One frame of a raw client connection: its 4-byte length, then the body.
fn read_frame(s: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("frame length");
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("frame body");
    body
}

/// A raw client connection with its session set up (the ConnectResponse read).
fn raw_session(port: u16) -> std::net::TcpStream {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly.
    let mut c = Vec::new();
    c.extend(0i32.to_be_bytes());
    c.extend(0i64.to_be_bytes());
    c.extend(10_000i32.to_be_bytes());
    c.extend(0i64.to_be_bytes());
    c.extend(16i32.to_be_bytes());
    c.extend([0u8; 16]);
    c.push(0);
    let mut f = (c.len() as i32).to_be_bytes().to_vec();
    f.extend(c);
    s.write_all(&f).expect("send connect");
    read_frame(&mut s);
    s
}

/// `n` create requests (xids 1..=n) of `{prefix}{xid}`, open ACL, persistent, framed.
fn pipelined_creates(prefix: &str, n: i32) -> Vec<u8> {
    let mut batch = Vec::new();
    for xid in 1..=n {
        let path = format!("{prefix}{xid}");
        let mut r = Vec::new();
        r.extend(xid.to_be_bytes());
        r.extend(1i32.to_be_bytes()); // create
        r.extend((path.len() as i32).to_be_bytes());
        r.extend(path.as_bytes());
        r.extend(0i32.to_be_bytes()); // no data
        r.extend(1i32.to_be_bytes()); // one ACL: world:anyone, all
        r.extend(31i32.to_be_bytes());
        for part in ["world", "anyone"] {
            r.extend((part.len() as i32).to_be_bytes());
            r.extend(part.as_bytes());
        }
        r.extend(0i32.to_be_bytes()); // persistent
        batch.extend((r.len() as i32).to_be_bytes());
        batch.extend(r);
    }
    batch
}

/// `zk_KEY` of `mntr`, as a number.
fn mntr(port: u16, key: &str) -> i64 {
    let text = ensemble_node::daemon::ask("127.0.0.1", port, "mntr").expect("mntr");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("zk_{key}\t")))
        .unwrap_or_else(|| panic!("no zk_{key} in mntr:\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}

/// A sample of the `/metrics` text: `series` is the name with its labels, as exposed.
fn scrape(port: u16, series: &str) -> f64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics endpoint");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("response");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}

#[test]
fn global_outstanding_limit_stops_reading_and_answers_everything_in_order() {
    use std::io::Write;
    let node = Node::start("outstanding", "globalOutstandingLimit=1\n", "");
    let mut s = raw_session(node.port);
    // 300 exists("/") pipelined in one write: far past a limit of 1 once read.
    const N: i32 = 300;
    let mut batch = Vec::new();
    for xid in 1..=N {
        let mut r = Vec::new();
        r.extend(xid.to_be_bytes());
        r.extend(3i32.to_be_bytes());
        r.extend(1i32.to_be_bytes());
        r.push(b'/');
        r.push(0);
        batch.extend((r.len() as i32).to_be_bytes());
        batch.extend(r);
    }
    for round in 0..2 {
        s.write_all(&batch).expect("send batch");
        for xid in 1..=N {
            let r = read_frame(&mut s);
            let got = i32::from_be_bytes([r[0], r[1], r[2], r[3]]);
            let err = i32::from_be_bytes([r[12], r[13], r[14], r[15]]);
            assert_eq!(
                (got, err),
                (xid, 0),
                "round {round}: answers in order, all ok"
            );
        }
    }
    // The connection stopped reading while over the limit, and the count drained: the second
    // round (and this 4lw) was read at all.
    assert!(node.log().contains("Throttling recv"), "{}", node.log());
    let stat = ensemble_node::daemon::ask("127.0.0.1", node.port, "stat").expect("stat");
    assert!(stat.contains("Outstanding: 0"), "{stat}");
}

/// 100 creates pipelined in one write on a server with `max_requests` (0: the throttler off):
/// all answered in order, ok; what each request found in process, from `/metrics`: (the
/// requests that joined at most `max - 1` others, all of them).
fn pipelined_writes_with_max_requests(tag: &str, max_requests: u32) -> (f64, f64) {
    use std::io::Write;
    let metrics = free_port();
    let provider = format!(
        "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
         metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={metrics}\n"
    );
    let flags = format!("-Dzookeeper.request_throttle_max_requests={max_requests}");
    let node = Node::start(tag, &provider, &flags);
    let mut s = raw_session(node.port);
    const N: i32 = 100;
    s.write_all(&pipelined_creates("/t", N)).expect("send");
    for xid in 1..=N {
        let r = read_frame(&mut s);
        let got = i32::from_be_bytes([r[0], r[1], r[2], r[3]]);
        let err = i32::from_be_bytes([r[12], r[13], r[14], r[15]]);
        assert_eq!((got, err), (xid, 0), "answers in order, all ok");
    }
    let under = max_requests.saturating_sub(1).max(1);
    let joined_few = scrape(
        metrics,
        &format!("ensemble_requests_in_process_bucket{{le=\"{under}\"}}"),
    );
    let all = scrape(metrics, "ensemble_requests_in_process_count");
    assert!(all >= f64::from(N), "every request observed: {all}");
    assert!(
        mntr(node.port, "cnt_request_throttle_queue_time_ms") >= i64::from(N),
        "each request's time in the throttler's queue is measured"
    );
    if max_requests > 0 {
        assert!(
            mntr(node.port, "request_throttle_wait_count") > 0,
            "a write stays in process until it commits: the throttler stalled"
        );
    }
    (joined_few, all)
}

#[test]
fn the_request_throttler_keeps_requests_in_process_under_its_maximum() {
    let (few, all) = pipelined_writes_with_max_requests("reqthrottle", 2);
    assert_eq!(few, all, "no request joined more than 1 in process");
    // The control: without the throttler the same writes are in process together, so the
    // figure above is one that could have failed.
    let (few, all) = pipelined_writes_with_max_requests("reqthrottle-off", 0);
    assert!(
        few < all,
        "{few} of {all} joined at most 1 without the throttler"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_throttler_drops_a_closed_connections_waiting_requests() {
    use std::io::Write;
    let node = Node::start(
        "reqstale",
        "",
        "-Dzookeeper.request_throttle_max_requests=1 -Dzookeeper.request_throttle_drop_stale=true",
    );
    const N: i32 = 50;
    {
        let mut s = raw_session(node.port);
        s.write_all(&pipelined_creates("/s", N)).expect("send");
        // closed at once: the writes behind the first wait for room, and go stale
    }
    let client = node.connect().await.expect("session");
    let t0 = Instant::now();
    loop {
        let created = client
            .get_children("/", false)
            .await
            .expect("children")
            .iter()
            .filter(|c| c.starts_with('s'))
            .count() as i64;
        let dropped = mntr(node.port, "stale_requests_dropped");
        if created + dropped == i64::from(N) {
            assert!(dropped >= 1, "created {created}, dropped {dropped}");
            assert!(created >= 1, "the first had room");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "created {created} + dropped {dropped} != {N}\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
