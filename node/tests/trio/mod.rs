//! Three voters on loopback, each a real daemon (`ensemble start`) in a conf directory of its own
//! (`s<i>/zoo.cfg`, `s<i>/data`), as an operator runs them: shared by the tests that need whole
//! processes (quorum SASL and Kerberos, read-only mode). Ports are drawn free, all at once.

#![allow(dead_code)]

use ensemble_client::Client;
use ensemble_proto::proto::{Acl, CreateMode};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ensemble");

pub struct Trio {
    pub dir: PathBuf,
    /// client ports of servers 1..=3
    pub client: [u16; 3],
    /// the environment `ensemble` runs with (the rest of the caller's -D flags are removed)
    env: Vec<(&'static str, String)>,
    /// dropped with the trio (e.g. a KDC the servers use)
    _guard: Option<Box<dyn std::any::Any>>,
}

impl Trio {
    /// `extra(i, conf_dir)`: zoo.cfg lines of server `i` beyond the common ones (it may write
    /// files of its own into `conf_dir`, e.g. a JAAS file and `java.env`).
    pub fn new(tag: &str, mut extra: impl FnMut(usize, &Path) -> String) -> Trio {
        let dir = std::env::temp_dir().join(format!("ens-trio-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // hold them all while drawing, so that no two are the same
        let held: Vec<TcpListener> = (0..9)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
            .collect();
        let ports: Vec<u16> = held
            .iter()
            .map(|l| l.local_addr().expect("addr").port())
            .collect();
        drop(held);
        let servers: String = (0..3)
            .map(|s| {
                format!(
                    "server.{}=127.0.0.1:{}:{}\n",
                    s + 1,
                    ports[3 + s],
                    ports[6 + s]
                )
            })
            .collect();
        for i in 1..=3 {
            let conf = dir.join(format!("s{i}"));
            let data = conf.join("data");
            std::fs::create_dir_all(&data).expect("dir");
            std::fs::write(data.join("myid"), format!("{i}\n")).expect("myid");
            let cfg = format!(
                "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
                 clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\npreAllocSize=1024\n\
                 admin.enableServer=false\n{}{servers}",
                data.display(),
                ports[i - 1],
                extra(i, &conf),
            );
            std::fs::write(conf.join("zoo.cfg"), cfg).expect("zoo.cfg");
        }
        Trio {
            dir,
            client: [ports[0], ports[1], ports[2]],
            env: Vec::new(),
            _guard: None,
        }
    }

    /// `ensemble` runs with this variable set.
    pub fn with_env(mut self, key: &'static str, value: &str) -> Trio {
        self.env.push((key, value.to_string()));
        self
    }

    /// Keep `guard` alive as long as the servers.
    pub fn holding(mut self, guard: impl std::any::Any) -> Trio {
        self._guard = Some(Box::new(guard));
        self
    }

    pub fn config(&self, i: usize) -> PathBuf {
        self.dir.join(format!("s{i}/zoo.cfg"))
    }

    pub fn ens(&self, what: &str, i: usize) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg(what).arg(self.config(i));
        for k in [
            "JVMFLAGS",
            "SERVER_JVMFLAGS",
            "ZOOCFGDIR",
            "KRB5_CONFIG",
            "KRB5CCNAME",
        ] {
            cmd.env_remove(k);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().expect("runs")
    }

    pub fn start(&self, i: usize) {
        let o = self.ens("start", i);
        assert!(
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("STARTED"),
            "start {i}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    pub fn mode(&self, i: usize) -> Option<String> {
        let o = self.ens("status", i);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_string)
    }

    /// Wait until server `i` reports one of `modes`.
    pub fn wait_mode(&self, i: usize, modes: &[&str], limit: Duration) -> String {
        let t0 = Instant::now();
        loop {
            if let Some(m) = self.mode(i).filter(|m| modes.contains(&m.as_str())) {
                return m;
            }
            assert!(
                t0.elapsed() < limit,
                "server {i} not {modes:?} after {limit:?}: {:?}\n{}",
                self.mode(i),
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self, i: usize) -> Option<i32> {
        let p = self.dir.join(format!("s{i}/data/zookeeper_server.pid"));
        ensemble_node::daemon::running_pid(&p)?.parse().ok()
    }

    /// SIGKILL server `i` and wait until it is gone.
    pub fn kill9(&self, i: usize) {
        if let Some(pid) = self.pid(i) {
            // SAFETY: plain kill(2) of a process this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let t0 = Instant::now();
        while self.pid(i).is_some() {
            assert!(t0.elapsed() < Duration::from_secs(10), "{i} survived kill");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("s{i}/data/zookeeper.out")))
            .unwrap_or_default()
    }

    /// Wait until exactly one of `alive` leads and the others follow; returns the leader.
    pub fn wait_ready(&self, alive: &[usize]) -> usize {
        let t0 = Instant::now();
        loop {
            let modes: Vec<Option<String>> = alive.iter().map(|i| self.mode(*i)).collect();
            let leaders: Vec<usize> = alive
                .iter()
                .zip(&modes)
                .filter(|(_, m)| m.as_deref() == Some("leader"))
                .map(|(i, _)| *i)
                .collect();
            if leaders.len() == 1
                && modes
                    .iter()
                    .all(|m| matches!(m.as_deref(), Some("leader" | "follower")))
            {
                return leaders[0];
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no settled ensemble: {modes:?}\n{}",
                (1..=3)
                    .map(|i| self.log(i))
                    .collect::<Vec<_>>()
                    .join("\n----\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn host(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.client[i - 1])
    }

    pub fn hosts(&self, ids: &[usize]) -> String {
        ids.iter()
            .map(|i| self.host(*i))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for Trio {
    fn drop(&mut self) {
        for i in 1..=3 {
            if let Some(pid) = self.pid(i) {
                // SAFETY: plain kill(2) of a process this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A persistent, open znode at `path` through any of `hosts`.
pub async fn create(hosts: &str, path: &str) {
    let c = Client::connect(hosts, Duration::from_secs(10))
        .await
        .expect("connect");
    c.create(path, b"v", Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("create");
}
