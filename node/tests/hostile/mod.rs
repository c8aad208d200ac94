//! What the hostile-client tests share: a standalone node run in the foreground, a canary
//! client, and raw sockets that speak (or mangle) the client wire protocol.

#![allow(dead_code, unused_imports)]

use ensemble_client::{Client, ClientError};
use ensemble_proto::jute;
use ensemble_proto::proto::{Acl, ConnectRequest, CreateMode, EventType, Request, WatchedEvent};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ensemble");

/// One standalone node run in the foreground; killed (and reaped) when dropped.
pub struct Node {
    pub dir: PathBuf,
    pub port: u16,
    pub extra: String,
    pub child: Option<Child>,
}

impl Node {
    pub fn start(tag: &str, port: u16, extra: &str) -> Node {
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

    pub fn spawn(&mut self) {
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

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn hosts(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn rss_kib(&self) -> u64 {
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

pub async fn client(n: &Node) -> Client {
    Client::connect(&n.hosts(), Duration::from_secs(10))
        .await
        .expect("connect")
}

/// A well-behaved client that writes and reads in a loop while the abuse runs; every write the
/// server acknowledges is remembered, every operation must finish in time.
pub struct Canary {
    pub stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Canary {
    pub async fn start(n: &Node, root: &str) -> Canary {
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

    /// Stop, and check every acknowledged write is there (through a fresh session); returns
    /// them, for tests that check again after a restart.
    pub async fn finish(self, n: &Node) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        let acked = self.task.await.expect("canary task");
        assert!(!acked.is_empty(), "the canary was never served");
        verify(n, &acked).await;
        acked
    }
}

pub async fn verify(n: &Node, paths: &[String]) {
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
pub fn raw_session(n: &Node, src: Ipv4Addr) -> std::io::Result<TcpStream> {
    let mut s = connect_from(src, n.port)?;
    handshake_with(&mut s, 30_000)?;
    Ok(s)
}

pub fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
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
pub fn connect_from(src: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
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
pub fn closed_by_server(s: &mut TcpStream, limit: Duration) -> bool {
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

pub fn request_frame(xid: i32, r: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    jute::encode_request(xid, r, &mut out);
    out
}

/// A handshake on a raw connection (errors are the abuser's problem, not the test's).
pub fn handshake(s: &mut TcpStream) -> std::io::Result<()> {
    handshake_with(s, 4_000)
}

/// A handshake asking for a session timeout of `timeout_ms`.
pub fn handshake_with(s: &mut TcpStream, timeout_ms: i32) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut out = Vec::new();
    jute::encode_connect(
        &ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: Some(false),
        },
        &mut out,
    );
    s.write_all(&out)?;
    let frame = read_frame(s)?;
    jute::decode_connect_response(&frame)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(())
}

/// Send `reqs` pipelined on a session and read as many answers (watch events in between are
/// skipped). Returns how many answers came back without an error code.
pub fn pipeline(s: &mut TcpStream, reqs: &[Request], first_xid: i32) -> std::io::Result<usize> {
    let mut out = Vec::new();
    for (k, r) in reqs.iter().enumerate() {
        jute::encode_request(first_xid + k as i32, r, &mut out);
    }
    s.write_all(&out)?;
    let mut ok = 0;
    let mut answered = 0;
    while answered < reqs.len() {
        let f = read_frame(s)?;
        let (xid, _, err, _) = jute::decode_reply_header(&f)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if xid == jute::NOTIFICATION_XID {
            continue;
        }
        answered += 1;
        if err == 0 {
            ok += 1;
        }
    }
    Ok(ok)
}
