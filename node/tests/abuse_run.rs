//! The abuse run (`abuse_run_against_a_three_node_ensemble`, ports 19500–19523): every hostile
//! client of `hostile_clients.rs` at once, plus garbage on the quorum and election ports, against a
//! 3-voter ensemble, while good clients keep writing; its long form is `fuzz/abuse.sh` (see
//! fuzz/README.md).

mod hostile;
use hostile::*;

use ensemble_client::Client;
use ensemble_proto::proto::{Acl, CreateMode, Request};
use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Three voters run in the foreground on loopback (client ports base+1..3, quorum base+11..13,
/// election base+21..23); killed when dropped.
struct Trio {
    dir: PathBuf,
    base: u16,
    children: Vec<Option<Child>>,
}

impl Trio {
    fn start(tag: &str, base: u16) -> Trio {
        let dir = std::env::temp_dir().join(format!("ens-abuse-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for i in 1..=3u16 {
            let data = dir.join(format!("data_{i}"));
            std::fs::create_dir_all(&data).expect("data dir");
            std::fs::write(data.join("myid"), format!("{i}\n")).expect("myid");
            let mut cfg = format!(
                "tickTime=200\ninitLimit=20\nsyncLimit=10\ndataDir={}\nclientPort={}\n\
                 clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\npreAllocSize=1024\n\
                 forceSync=no\nsnapCount=20000\n",
                data.display(),
                base + i,
            );
            for s in 1..=3u16 {
                cfg += &format!("server.{s}=127.0.0.1:{}:{}\n", base + 10 + s, base + 20 + s);
            }
            std::fs::write(dir.join(format!("zoo{i}.cfg")), cfg).expect("zoo.cfg");
        }
        let mut t = Trio {
            dir,
            base,
            children: vec![None, None, None],
        };
        for i in 1..=3 {
            t.spawn(i);
        }
        t.wait_ready();
        t
    }

    fn spawn(&mut self, i: u16) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node{i}.log")))
            .expect("log");
        let child = Command::new(BIN)
            .arg("run")
            .arg(self.dir.join(format!("zoo{i}.cfg")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ensemble");
        self.children[usize::from(i - 1)] = Some(child);
    }

    fn client_port(&self, i: u16) -> u16 {
        self.base + i
    }

    fn mode(&self, i: u16) -> Option<String> {
        let s = ensemble_node::daemon::ask("127.0.0.1", self.client_port(i), "srvr").ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_string)
    }

    /// Until every server reports a mode and exactly one leads.
    fn wait_ready(&self) {
        let t0 = Instant::now();
        loop {
            let modes: Vec<Option<String>> = (1..=3).map(|i| self.mode(i)).collect();
            let leaders = modes
                .iter()
                .filter(|m| m.as_deref() == Some("leader"))
                .count();
            if leaders == 1
                && modes
                    .iter()
                    .all(|m| matches!(m.as_deref(), Some("leader" | "follower")))
            {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no settled ensemble: {modes:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alive(&mut self) -> Vec<bool> {
        self.children
            .iter_mut()
            .map(|c| c.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None))))
            .collect()
    }

    fn rss_kib(&self) -> Vec<u64> {
        self.children
            .iter()
            .map(|c| {
                let Some(c) = c else { return 0 };
                std::fs::read_to_string(format!("/proc/{}/status", c.id()))
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0)
            })
            .collect()
    }

    fn restart_all(&mut self) {
        for c in self.children.iter_mut() {
            if let Some(mut c) = c.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for i in 1..=3 {
            self.spawn(i);
        }
        self.wait_ready();
    }

    /// The tail of every server's log, for a failure message.
    fn logs(&self) -> String {
        (1..=3)
            .map(|i| {
                let l = std::fs::read_to_string(self.dir.join(format!("node{i}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = l.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- node{i}.log (tail)\n{}\n", tail.join("\n"))
            })
            .collect()
    }
}

impl Drop for Trio {
    fn drop(&mut self) {
        for c in self.children.iter_mut() {
            if let Some(mut c) = c.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // Keep the logs of a failed run for whoever debugs it.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// xorshift64: the abusers' bytes, reproducible from their seeds.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// What the abusers did, by kind (counters shared by their threads).
#[derive(Default)]
struct AbuseCounts {
    kinds: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl AbuseCounts {
    fn add(&self, kind: &'static str, n: u64) {
        if let Ok(mut k) = self.kinds.lock() {
            *k.entry(kind).or_default() += n;
        }
    }

    /// One outcome of two: `yes` when `cond` held, else `no`.
    fn either(&self, cond: bool, yes: &'static str, no: &'static str) {
        self.add(if cond { yes } else { no }, 1);
    }
}

/// One abuser thread: `kind` over and over until `stop`, from local address `src`.
#[allow(clippy::too_many_lines)]
fn abuse(
    kind: &'static str,
    src: Ipv4Addr,
    base: u16,
    seed: u64,
    children: usize,
    stop: Arc<AtomicBool>,
    counts: Arc<AbuseCounts>,
) {
    let mut rng = Rng(seed | 1);
    let port = |rng: &mut Rng| base + 1 + rng.below(3) as u16;
    let mut held: std::collections::VecDeque<TcpStream> = std::collections::VecDeque::new();
    let mut depth_done = false;
    let mut wide_done = 0usize;
    while !stop.load(Ordering::Relaxed) {
        match kind {
            // random bytes, then FIN: the server must close, answer nothing
            "garbage" => {
                if let Ok(mut s) = connect_from(src, port(&mut rng)) {
                    let n = 1 + rng.below(4096) as usize;
                    let _ = s.write_all(&rng.bytes(n));
                    let _ = s.shutdown(std::net::Shutdown::Write);
                    let closed = closed_by_server(&mut s, Duration::from_secs(10));
                    counts.either(closed, "garbage", "garbage-kept-open");
                }
            }
            // a handshake, then a request that does not decode: unknown opcodes, bodies cut
            // short, trailing bytes, a negative length inside
            "bad-requests" => {
                if let Ok(mut s) = connect_from(src, port(&mut rng))
                    && handshake(&mut s).is_ok()
                {
                    let mut body = Vec::new();
                    body.extend_from_slice(&7i32.to_be_bytes());
                    let op = [999i32, 4, 1, 14, 22, 101, -11, 0][rng.below(8) as usize];
                    body.extend_from_slice(&op.to_be_bytes());
                    let n = rng.below(64) as usize;
                    body.extend_from_slice(&rng.bytes(n));
                    if rng.below(2) == 0 {
                        body.extend_from_slice(&(-5i32).to_be_bytes());
                    }
                    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
                    frame.extend_from_slice(&body);
                    let _ = s.write_all(&frame);
                    // either an error answer or a close; the session must not take others down
                    let _ = closed_by_server(&mut s, Duration::from_secs(2));
                    counts.add("bad-requests", 1);
                }
            }
            // frame lengths of 2 GiB and thereabouts, before and after a handshake
            "huge-lengths" => {
                let len = [
                    0x8000_0000u32,
                    0x7fff_ffff,
                    0xffff_ffff,
                    0x4000_0000,
                    0x0010_0000,
                ][rng.below(5) as usize];
                if let Ok(mut s) = connect_from(src, port(&mut rng)) {
                    if rng.below(2) == 0 {
                        let _ = handshake(&mut s);
                    }
                    let _ = s.write_all(&len.to_be_bytes());
                    let _ = s.write_all(&rng.bytes(1024));
                    let closed = closed_by_server(&mut s, Duration::from_secs(10));
                    counts.either(closed, "huge-lengths", "huge-kept-open");
                }
            }
            // connections that say nothing or stop mid-frame and stay open
            "half-open" => {
                if let Ok(mut s) = connect_from(src, port(&mut rng)) {
                    match rng.below(3) {
                        0 => {}
                        1 => {
                            let _ = s.write_all(&[0, 0, 0, 45, 0, 0]);
                        }
                        _ => {
                            if handshake(&mut s).is_ok() {
                                let _ = s.write_all(&[0, 0, 0, 90, 0, 0, 0, 1]);
                            }
                        }
                    }
                    held.push_back(s);
                    counts.add("half-open", 1);
                }
                // at most 40 held from this address (under maxClientCnxns), oldest go first
                while held.len() > 40 {
                    held.pop_front();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // ask for half a MiB many times over and never read
            "slow-reader" => {
                if let Ok(mut s) = connect_from(src, port(&mut rng))
                    && handshake(&mut s).is_ok()
                {
                    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                    let get = request_frame(
                        1,
                        &Request::GetData {
                            path: "/abuse-big".into(),
                            watch: false,
                        },
                    );
                    for _ in 0..400 {
                        if stop.load(Ordering::Relaxed) || s.write_all(&get).is_err() {
                            break;
                        }
                    }
                    let closed = closed_by_server(&mut s, Duration::from_secs(20));
                    counts.either(closed, "slow-reader-cut", "slow-reader-kept");
                }
            }
            // thousands of watches from one session: the hot node's data, absent paths
            "watch-flood" => {
                if let Ok(mut s) = connect_from(src, port(&mut rng))
                    && handshake(&mut s).is_ok()
                {
                    let mut reqs = Vec::new();
                    for k in 0..2000 {
                        reqs.push(Request::GetData {
                            path: "/hot".into(),
                            watch: true,
                        });
                        reqs.push(Request::Exists {
                            path: format!("/absent/w{}-{k}", rng.below(1 << 20)),
                            watch: true,
                        });
                    }
                    if let Ok(n) = pipeline(&mut s, &reqs, 1) {
                        counts.add("watches-set", n as u64);
                    }
                    // keep the session a while so the good clients' changes fire its watches
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
            // a chain of 1,000 components, then reads at the bottom and below it
            "deep-path" => {
                if let Ok(mut s) = connect_from(src, port(&mut rng))
                    && handshake(&mut s).is_ok()
                {
                    let mut path = String::from("/deep");
                    let mut reqs = Vec::new();
                    for i in 0..1000 {
                        path.push_str(&format!("/{}", i % 10));
                        if !depth_done {
                            reqs.push(Request::Create {
                                op: ensemble_proto::proto::CreateOp::Create,
                                path: path.clone(),
                                data: vec![],
                                acl: Acl::open_unsafe(),
                                mode: CreateMode::Persistent,
                                ttl: 0,
                            });
                        }
                    }
                    for _ in 0..20 {
                        reqs.push(Request::GetData {
                            path: path.clone(),
                            watch: true,
                        });
                        reqs.push(Request::Exists {
                            path: format!("{path}/x/y/z"),
                            watch: true,
                        });
                        reqs.push(Request::GetChildren2 {
                            path: path.clone(),
                            watch: true,
                        });
                    }
                    if let Ok(n) = pipeline(&mut s, &reqs, 1) {
                        depth_done = true;
                        counts.add("deep-path-ops", n as u64);
                    }
                }
            }
            // children under one node up to `children`, then listing it (a reply near the
            // 1 MiB frame limit)
            "wide" => {
                if let Ok(mut s) = connect_from(src, port(&mut rng))
                    && handshake(&mut s).is_ok()
                {
                    while wide_done < children && !stop.load(Ordering::Relaxed) {
                        let reqs: Vec<Request> = (wide_done..(wide_done + 500).min(children))
                            .map(|i| Request::Create {
                                op: ensemble_proto::proto::CreateOp::Create,
                                path: format!("/wide/n{i:05}"),
                                data: vec![],
                                acl: Acl::open_unsafe(),
                                mode: CreateMode::Persistent,
                                ttl: 0,
                            })
                            .collect();
                        let Ok(n) = pipeline(&mut s, &reqs, 1) else {
                            break;
                        };
                        counts.add("wide-children", n as u64);
                        wide_done += reqs.len();
                    }
                    let list = [Request::GetChildren {
                        path: "/wide".into(),
                        watch: true,
                    }];
                    if pipeline(&mut s, &list, 1).is_ok() {
                        counts.add("wide-listings", 1);
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            // more connections from one address than maxClientCnxns (60)
            "max-cnxns" => {
                let mut open = Vec::new();
                for _ in 0..80 {
                    if let Ok(s) = connect_from(src, base + 1) {
                        open.push(s);
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
                let refused = open
                    .iter_mut()
                    .filter_map(|s| closed_by_server(s, Duration::from_millis(50)).then_some(()))
                    .count();
                counts.add("max-cnxns-rounds", 1);
                if refused > 0 {
                    counts.add("over-max-cnxns-refused", refused as u64);
                }
                drop(open);
                std::thread::sleep(Duration::from_millis(500));
            }
            // the quorum and election ports: random bytes, bad hellos, unknown server ids,
            // a server's own id, then frames that are garbage or claim 1 GiB
            "peer-ports" => {
                let i = 1 + rng.below(3) as u16;
                let p = if rng.below(2) == 0 {
                    base + 10 + i
                } else {
                    base + 20 + i
                };
                if let Ok(mut s) = connect_from(src, p) {
                    let mut b = Vec::new();
                    match rng.below(5) {
                        0 => {
                            let n = 1 + rng.below(2048) as usize;
                            b.extend_from_slice(&rng.bytes(n));
                        }
                        1 => {
                            b.extend_from_slice(b"ENSP\0\x01");
                            b.push(rng.below(3) as u8);
                            b.push(0);
                            b.extend_from_slice(&(9 + rng.below(100)).to_be_bytes());
                        }
                        2 => {
                            // claims to be the server it talks to
                            b.extend_from_slice(b"ENSP\0\x01");
                            b.push(u8::from(p < base + 20));
                            b.push(0);
                            b.extend_from_slice(&u64::from(i).to_be_bytes());
                            b.extend_from_slice(&rng.bytes(64));
                        }
                        3 => {
                            // claims to be another member, then sends garbage frames
                            b.extend_from_slice(b"ENSP\0\x01");
                            b.push(u8::from(p < base + 20));
                            b.push(0);
                            b.extend_from_slice(&u64::from(i % 3 + 1).to_be_bytes());
                            b.extend_from_slice(&64u32.to_be_bytes());
                            b.extend_from_slice(&rng.bytes(64));
                        }
                        _ => {
                            b.extend_from_slice(b"ENSP\0\x07\x00\x00");
                            b.extend_from_slice(&[0xff; 8]);
                            b.extend_from_slice(&0x4000_0000u32.to_be_bytes());
                        }
                    }
                    let _ = s.write_all(&b);
                    let _ = s.shutdown(std::net::Shutdown::Write);
                    let _ = closed_by_server(&mut s, Duration::from_secs(5));
                    counts.add("peer-port-garbage", 1);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            other => panic!("unknown abuse {other}"),
        }
    }
}

/// What one good client saw.
#[derive(Default)]
struct GoodStats {
    acked: Vec<(String, Vec<u8>)>,
    write_lat: Vec<Duration>,
    read_lat: Vec<Duration>,
    failures: Vec<String>,
    /// The longest time between two successful operations.
    longest_gap: Duration,
}

/// A well-behaved client on server `i` only: create, read back, now and then sync and read a
/// node another good client wrote, and change /hot (firing the flooders' watches).
async fn good_client(hosts: String, k: usize, stop: Arc<AtomicBool>) -> GoodStats {
    let mut st = GoodStats::default();
    let c = Client::connect(&hosts, Duration::from_secs(10))
        .await
        .expect("good client connects");
    let limit = Duration::from_secs(10);
    let mut last_ok = Instant::now();
    let mut i = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let p = format!("/good/c{k}/w{i:06}");
        let data = format!("{k}:{i}").into_bytes();
        let t0 = Instant::now();
        let r = tokio::time::timeout(
            limit,
            c.create(&p, &data, Acl::open_unsafe(), CreateMode::Persistent),
        )
        .await;
        let mut ok = false;
        match r {
            Ok(Ok(_)) => {
                st.write_lat.push(t0.elapsed());
                st.acked.push((p.clone(), data.clone()));
                ok = true;
            }
            other => st.failures.push(format!("create {p}: {other:?}")),
        }
        if ok {
            let t0 = Instant::now();
            match tokio::time::timeout(limit, c.get_data(&p, false)).await {
                Ok(Ok((d, _))) if d == data => st.read_lat.push(t0.elapsed()),
                other => st.failures.push(format!("read {p}: {other:?}")),
            }
        }
        if i % 10 == 5 {
            let t0 = Instant::now();
            match tokio::time::timeout(limit, c.set_data("/hot", &data, None)).await {
                Ok(Ok(_)) => st.write_lat.push(t0.elapsed()),
                other => st.failures.push(format!("setData /hot: {other:?}")),
            }
        }
        if ok {
            st.longest_gap = st.longest_gap.max(last_ok.elapsed());
            last_ok = Instant::now();
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    st.longest_gap = st.longest_gap.max(last_ok.elapsed());
    let _ = c.close().await;
    st
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Every kind of abuse at once against a 3-voter ensemble while three good clients (one per
/// server) write and read; then every acknowledged write is read back from every server, and
/// again after a restart of the whole ensemble. `ENSEMBLE_ABUSE_SECS` sets the length (10 s by
/// default, for CI) and `ENSEMBLE_ABUSE_CHILDREN` the size of the wide node (5,000); the full
/// run is `fuzz/abuse.sh` (see fuzz/README.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_run_against_a_three_node_ensemble() {
    let env = |k: &str, d: u64| -> u64 {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let secs = env("ENSEMBLE_ABUSE_SECS", 10);
    let children = env("ENSEMBLE_ABUSE_CHILDREN", 5_000) as usize;
    let mut trio = Trio::start("run", 19500);
    let base = trio.base;
    let hosts = |i: u16| format!("127.0.0.1:{}", base + i);
    let setup = Client::connect(&hosts(1), Duration::from_secs(10))
        .await
        .expect("setup client");
    for p in [
        "/good", "/good/c1", "/good/c2", "/good/c3", "/absent", "/wide", "/deep",
    ] {
        setup
            .create(p, b"", Acl::open_unsafe(), CreateMode::Persistent)
            .await
            .expect("setup");
    }
    setup
        .create("/hot", b"0", Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("setup");
    setup
        .create(
            "/abuse-big",
            &vec![7u8; 512 * 1024],
            Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .expect("setup");
    setup.close().await.ok();
    let rss0 = trio.rss_kib();

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(AbuseCounts::default());
    let kinds = [
        "garbage",
        "bad-requests",
        "huge-lengths",
        "half-open",
        "half-open",
        "slow-reader",
        "watch-flood",
        "deep-path",
        "wide",
        "max-cnxns",
        "peer-ports",
    ];
    let mut abusers = Vec::new();
    for (n, kind) in kinds.iter().enumerate() {
        // each abuser from its own address, so per-address limits hit it, not the good clients
        let src = Ipv4Addr::new(127, 0, 1, 2 + n as u8);
        let (stop, counts) = (stop.clone(), counts.clone());
        let kind = *kind;
        abusers.push(std::thread::spawn(move || {
            abuse(kind, src, base, 0x5eed + n as u64, children, stop, counts)
        }));
    }
    let good_stop = Arc::new(AtomicBool::new(false));
    let good: Vec<_> = (1..=3u16)
        .map(|i| tokio::spawn(good_client(hosts(i), usize::from(i), good_stop.clone())))
        .collect();

    tokio::time::sleep(Duration::from_secs(secs)).await;
    let rss_end = trio.rss_kib();
    stop.store(true, Ordering::Relaxed);
    good_stop.store(true, Ordering::Relaxed);
    let mut stats = Vec::new();
    for g in good {
        stats.push(g.await.expect("good client task"));
    }
    for a in abusers {
        a.join().expect("abuser thread");
    }
    let alive = trio.alive();

    // Report before judging, so a failed run still shows its figures.
    let mut all_w: Vec<Duration> = stats.iter().flat_map(|s| s.write_lat.clone()).collect();
    let mut all_r: Vec<Duration> = stats.iter().flat_map(|s| s.read_lat.clone()).collect();
    let acked: Vec<(String, Vec<u8>)> = stats.iter().flat_map(|s| s.acked.clone()).collect();
    let failures: Vec<&String> = stats.iter().flat_map(|s| s.failures.iter()).collect();
    eprintln!("abuse run: {secs} s, wide node of {children} children");
    if let Ok(k) = counts.kinds.lock() {
        for (kind, n) in k.iter() {
            eprintln!("  abuse {kind}: {n}");
        }
    }
    for (k, s) in stats.iter().enumerate() {
        eprintln!(
            "  good client {} (server {}): {} writes acked, {} reads, {} failures, longest gap \
             between successes {:?}",
            k + 1,
            k + 1,
            s.acked.len(),
            s.read_lat.len(),
            s.failures.len(),
            s.longest_gap
        );
    }
    eprintln!(
        "  write latency p50 {:?} p99 {:?} max {:?} ({} writes)",
        percentile(&mut all_w, 0.5),
        percentile(&mut all_w, 0.99),
        percentile(&mut all_w, 1.0),
        all_w.len()
    );
    eprintln!(
        "  read latency p50 {:?} p99 {:?} max {:?} ({} reads)",
        percentile(&mut all_r, 0.5),
        percentile(&mut all_r, 0.99),
        percentile(&mut all_r, 1.0),
        all_r.len()
    );
    eprintln!("  rss KiB before {rss0:?}, at the end of the abuse {rss_end:?}");
    for f in failures.iter().take(10) {
        eprintln!("  failure: {f}");
    }

    assert_eq!(alive, vec![true; 3], "a server died\n{}", trio.logs());
    for (k, s) in stats.iter().enumerate() {
        assert!(
            !s.acked.is_empty(),
            "good client {} was never served",
            k + 1
        );
    }
    assert!(
        failures.is_empty(),
        "good clients were refused or timed out: {failures:#?}"
    );
    let abused = counts.kinds.lock().map(|k| k.clone()).unwrap_or_default();
    if abused.contains_key("max-cnxns-rounds") {
        assert!(
            abused.contains_key("over-max-cnxns-refused"),
            "connections over maxClientCnxns were all admitted"
        );
    }
    // every abuser got its abuse in (a run where one silently did nothing proves nothing)
    for kind in [
        "garbage",
        "bad-requests",
        "huge-lengths",
        "half-open",
        "slow-reader-cut",
        "watches-set",
        "deep-path-ops",
        "wide-children",
        "wide-listings",
        "peer-port-garbage",
    ] {
        assert!(abused.contains_key(kind), "no {kind} abuse happened");
    }
    for kind in ["garbage-kept-open", "huge-kept-open", "slow-reader-kept"] {
        assert!(!abused.contains_key(kind), "{kind}: {:?}", abused.get(kind));
    }
    // Every acknowledged write, on every server (sync first: a follower may lag), then again
    // after all three restart from disk.
    trio.wait_ready();
    let wide_acked = abused.get("wide-children").copied().unwrap_or(0);
    let deep_bottom: String = std::iter::once("/deep".to_string())
        .chain((0..1000).map(|i| format!("/{}", i % 10)))
        .collect();
    let check = |round: &'static str| {
        let acked = acked.clone();
        let deep_bottom = deep_bottom.clone();
        async move {
            for i in 1..=3u16 {
                let c = Client::connect(&hosts(i), Duration::from_secs(10))
                    .await
                    .expect("verify client");
                c.sync("/").await.expect("sync");
                let mut lost = Vec::new();
                for (p, d) in &acked {
                    match c.get_data(p, false).await {
                        Ok((got, _)) if &got == d => {}
                        other => lost.push(format!("{p}: {other:?}")),
                    }
                }
                assert!(
                    lost.is_empty(),
                    "{round}: server {i} lost acknowledged writes: {lost:?}"
                );
                // the abusers' big structures are whole too
                let wide = c.get_all_children_number("/wide").await.expect("count");
                assert_eq!(wide as u64, wide_acked, "{round}: server {i}: /wide");
                assert!(
                    c.exists(&deep_bottom, false)
                        .await
                        .expect("exists")
                        .is_some(),
                    "{round}: server {i}: the 1,000-deep path"
                );
                c.close().await.ok();
            }
        }
    };
    check("after the abuse").await;
    trio.restart_all();
    check("after a restart").await;
    eprintln!(
        "abuse run: all {} acknowledged writes on all 3 servers, before and after a restart",
        acked.len()
    );
}
