//! A real ensemble for the AdminServer and metrics tests: `ensemble run` children on free
//! loopback ports (client, quorum, election, admin, metrics), killed when dropped; and a plain
//! HTTP/1.1 GET/POST over std TCP.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ensemble");

/// `n` ports free on loopback right now (held together so they differ).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

pub struct Node {
    pub id: u16,
    pub client: u16,
    pub admin: u16,
    pub metrics: u16,
    child: Option<Child>,
}

pub struct Cluster {
    pub dir: PathBuf,
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// `n` voters (a standalone server when `n` is 1); `extra(i)` is appended to server i's
    /// zoo.cfg.
    pub fn start(tag: &str, n: u16, extra: impl Fn(u16) -> String) -> Cluster {
        Cluster::start_with_observers(tag, n, &[], extra)
    }

    /// As [`Cluster::start`], the servers in `observers` being observers (`:observer` on
    /// their server line, `peerType=observer` in their zoo.cfg).
    pub fn start_with_observers(
        tag: &str,
        n: u16,
        observers: &[u16],
        extra: impl Fn(u16) -> String,
    ) -> Cluster {
        let dir = std::env::temp_dir().join(format!("ens-ops-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ports = free_ports(5 * n as usize);
        let p = |i: u16, k: usize| ports[(i as usize - 1) * 5 + k];
        let mut servers = String::new();
        if n > 1 {
            for s in 1..=n {
                let role = if observers.contains(&s) {
                    ":observer"
                } else {
                    ""
                };
                servers += &format!("server.{s}=127.0.0.1:{}:{}{role}\n", p(s, 1), p(s, 2));
            }
        }
        let mut nodes = Vec::new();
        for i in 1..=n {
            let data = dir.join(format!("data_{i}"));
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("myid"), format!("{i}\n")).unwrap();
            let peer_type = if observers.contains(&i) {
                "peerType=observer\n"
            } else {
                ""
            };
            let cfg = format!(
                "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
                 4lw.commands.whitelist=*\npreAllocSize=1024\nadmin.serverAddress=127.0.0.1\n\
                 admin.serverPort={}\n{peer_type}{servers}{}",
                data.display(),
                p(i, 0),
                p(i, 3),
                extra(i).replace("METRICS_PORT", &p(i, 4).to_string())
            );
            let path = dir.join(format!("zoo{i}.cfg"));
            std::fs::write(&path, cfg).unwrap();
            let log = std::fs::File::create(dir.join(format!("server{i}.log"))).unwrap();
            let child = Command::new(BIN)
                .arg("run")
                .arg(&path)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("ensemble run");
            nodes.push(Node {
                id: i,
                client: p(i, 0),
                admin: p(i, 3),
                metrics: p(i, 4),
                child: Some(child),
            });
        }
        Cluster { dir, nodes }
    }

    pub fn log(&self, i: u16) -> String {
        std::fs::read_to_string(self.dir.join(format!("server{i}.log"))).unwrap_or_default()
    }

    /// Wait until every server answers `leader` without an error and one of them leads; its id.
    pub fn wait_serving(&self, limit: Duration) -> u16 {
        let t0 = Instant::now();
        loop {
            let mut leaders = Vec::new();
            let mut all = true;
            for n in &self.nodes {
                match get_json(n.admin, "/commands/leader") {
                    Some(j) if j["error"].is_null() => {
                        if j["is_leader"] == serde_json::Value::Bool(true) {
                            leaders.push(n.id);
                        }
                    }
                    Some(j) if self.nodes.len() == 1 && j["command"] == "leader" => {
                        // standalone: `leader` is an error there; `ruok` says serving.
                        all &= get_json(n.admin, "/commands/ruok")
                            .is_some_and(|r| r["error"].is_null());
                        leaders.push(n.id);
                    }
                    _ => all = false,
                }
            }
            if all && leaders.len() == 1 {
                return leaders[0];
            }
            if t0.elapsed() > limit {
                let logs: Vec<String> =
                    (1..=self.nodes.len() as u16).map(|i| self.log(i)).collect();
                panic!(
                    "no serving ensemble after {limit:?}; logs:\n{}",
                    logs.join("\n---\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kill every server (the files stay).
    pub fn stop_all(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    /// Start every server again on its files.
    pub fn start_all(&mut self) {
        for n in &mut self.nodes {
            assert!(n.child.is_none(), "server {} is running", n.id);
            let log = std::fs::OpenOptions::new()
                .append(true)
                .open(self.dir.join(format!("server{}.log", n.id)))
                .unwrap();
            n.child = Some(
                Command::new(BIN)
                    .arg("run")
                    .arg(self.dir.join(format!("zoo{}.cfg", n.id)))
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("ensemble run"),
            );
        }
    }

    pub fn node(&self, id: u16) -> &Node {
        &self.nodes[id as usize - 1]
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One HTTP exchange: (status, headers, body). `None` when nothing listens.
pub fn http(port: u16, method: &str, target: &str, body: &[u8]) -> Option<(u16, String, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let end = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..end]).to_string();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head, out[end + 4..].to_vec()))
}

pub fn get_json(port: u16, target: &str) -> Option<serde_json::Value> {
    let (status, _, body) = http(port, "GET", target, b"")?;
    assert_eq!(status, 200, "{target}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).ok()
}
