//! Three voters on loopback, each a real daemon (`ensemble start`) in a conf directory of its own
//! (`s<i>/zoo.cfg`, `s<i>/data`), as an operator runs them: shared by the tests that need whole
//! processes (quorum SASL and Kerberos, read-only mode). Ports are drawn free, all at once.
//!
//! The daemon helpers below (`ens`, `start`, `stop`, `mode`, `pid`, `kill9`, `log`,
//! `wait_one_leader`) work on any server's config file and dataDir, so that tests with a layout
//! of their own (the four-server cluster, disk loss) drive their daemons the same way.

#![allow(dead_code)]

use ensemble_client::Client;
use ensemble_proto::proto::{Acl, CreateMode};
use std::fmt::{Debug, Display};
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

    /// Server `i`'s dataDir (its pid file and `zookeeper.out` are there).
    pub fn data(&self, i: usize) -> PathBuf {
        self.dir.join(format!("s{i}/data"))
    }

    pub fn ens(&self, what: &str, i: usize) -> Output {
        ens(&self.config(i), what, &self.env)
    }

    pub fn start(&self, i: usize) {
        start(&self.config(i), i, &self.env);
    }

    pub fn mode(&self, i: usize) -> Option<String> {
        mode_in(&self.ens("status", i))
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
        pid(&self.data(i))
    }

    /// SIGKILL server `i` and wait until it is gone.
    pub fn kill9(&self, i: usize) {
        kill9(&self.data(i), i);
    }

    pub fn log(&self, i: usize) -> String {
        log(&self.data(i))
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
        let data: Vec<PathBuf> = (1..=3).map(|i| self.data(i)).collect();
        kill_all_and_clean(&data, &self.dir);
    }
}

/// Servers 1..=n on fixed ports (client base+i, quorum base+10+i, election base+20+i), server n
/// an observer when asked, in one directory as `zoo<i>.cfg`, `data_<i>` and `logs_<i>` (a
/// dataLogDir of its own): for the tests that name ports and look into the state directories.
pub struct Numbered {
    pub dir: PathBuf,
    pub base: u16,
    n: u16,
}

impl Numbered {
    /// `extra`: zoo.cfg lines every server gets beyond the common ones.
    pub fn new(tag: &str, base: u16, n: u16, observer: bool, tick_ms: u32, extra: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ens-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let observes = |s: u16| observer && s == n;
        for i in 1..=n {
            let data = dir.join(format!("data_{i}"));
            std::fs::create_dir_all(&data).expect("dir");
            std::fs::write(data.join("myid"), format!("{i}\n")).expect("myid");
            let mut cfg = format!(
                "tickTime={tick_ms}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
                 dataLogDir={}\n4lw.commands.whitelist=*\npreAllocSize=1024\n{extra}",
                data.display(),
                base + i,
                dir.join(format!("logs_{i}")).display()
            );
            for s in 1..=n {
                let kind = if observes(s) { ":observer" } else { "" };
                cfg += &format!(
                    "server.{s}=localhost:{}:{}{kind}\n",
                    base + 10 + s,
                    base + 20 + s
                );
            }
            if observes(i) {
                cfg += "peerType=observer\n";
            }
            std::fs::write(dir.join(format!("zoo{i}.cfg")), cfg).expect("zoo.cfg");
        }
        Numbered { dir, base, n }
    }

    pub fn cfg(&self, i: u16) -> PathBuf {
        self.dir.join(format!("zoo{i}.cfg"))
    }

    pub fn data(&self, i: u16) -> PathBuf {
        self.dir.join(format!("data_{i}"))
    }

    pub fn ens(&self, what: &str, i: u16) -> Output {
        ens(&self.cfg(i), what, &[])
    }

    pub fn start(&self, i: u16) {
        start(&self.cfg(i), i, &[]);
    }

    pub fn stop(&self, i: u16) {
        stop(&self.cfg(i), i, &[]);
    }

    /// The mode `ensemble status` reports; its exit code must say the same.
    pub fn mode(&self, i: u16) -> Option<String> {
        let o = self.ens("status", i);
        let m = mode_in(&o);
        assert_eq!(
            o.status.success(),
            m.is_some(),
            "status exit code and output disagree: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        m
    }

    pub fn pid(&self, i: u16) -> Option<i32> {
        pid(&self.data(i))
    }

    /// SIGKILL server `i`, which must be running, and wait until it is gone.
    pub fn kill9(&self, i: u16) {
        assert!(self.pid(i).is_some(), "server {i} not running");
        kill9(&self.data(i), i);
    }

    pub fn log(&self, i: u16) -> String {
        log(&self.data(i))
    }

    pub fn hosts(&self, ids: &[u16]) -> String {
        ids.iter()
            .map(|i| format!("127.0.0.1:{}", self.base + i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Wait until each of `alive` has a mode and exactly one of them leads; the leader and
    /// the modes.
    pub fn wait_one_leader(&self, alive: &[u16], limit: Duration) -> (u16, Vec<(u16, String)>) {
        wait_one_leader(alive, |i| self.mode(i), limit)
    }
}

impl Drop for Numbered {
    fn drop(&mut self) {
        let data: Vec<PathBuf> = (1..=self.n).map(|i| self.data(i)).collect();
        kill_all_and_clean(&data, &self.dir);
    }
}

/// `ensemble <what> <config>` with `env` set and the caller's JVM, config-dir and Kerberos
/// variables removed, so that the test's environment does not leak into the server.
pub fn ens(config: &Path, what: &str, env: &[(&'static str, String)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg(what).arg(config);
    for k in [
        "JVMFLAGS",
        "SERVER_JVMFLAGS",
        "ZOOCFGDIR",
        "KRB5_CONFIG",
        "KRB5CCNAME",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("runs")
}

/// `ensemble start`, which must say STARTED; `who` names the server in the failure.
pub fn start(config: &Path, who: impl Display, env: &[(&'static str, String)]) {
    let o = ens(config, "start", env);
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("STARTED"),
        "start {who}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `ensemble stop`, which must succeed.
pub fn stop(config: &Path, who: impl Display, env: &[(&'static str, String)]) {
    let o = ens(config, "stop", env);
    assert!(
        o.status.success(),
        "stop {who}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The mode an `ensemble status` printed (`Mode: leader` ...), if any.
pub fn mode_in(status: &Output) -> Option<String> {
    String::from_utf8_lossy(&status.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(str::to_string)
}

/// The pid of the daemon whose dataDir is `data`, while it runs.
pub fn pid(data: &Path) -> Option<i32> {
    let p = data.join("zookeeper_server.pid");
    ensemble_node::daemon::running_pid(&p)?.parse().ok()
}

/// SIGKILL the daemon of dataDir `data` (if it runs) and wait until it is gone.
pub fn kill9(data: &Path, who: impl Display) {
    if let Some(pid) = pid(data) {
        // SAFETY: plain kill(2) of a process this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let t0 = Instant::now();
    while pid(data).is_some() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "server {who} survived kill -9"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the daemon of dataDir `data` wrote to its terminal (`zookeeper.out`).
pub fn log(data: &Path) -> String {
    std::fs::read_to_string(data.join("zookeeper.out")).unwrap_or_default()
}

/// For a test's Drop: SIGKILL every daemon still running, and remove `dir` unless the test
/// failed (its logs are kept for whoever debugs it).
pub fn kill_all_and_clean(data: &[PathBuf], dir: &Path) {
    for d in data {
        if let Some(pid) = pid(d) {
            // SAFETY: plain kill(2) of a process this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    if !std::thread::panicking() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Poll `mode` of each of `alive` until every one reports a mode and exactly one leads;
/// returns the leader and the modes seen.
pub fn wait_one_leader<I: Copy + PartialEq + Debug>(
    alive: &[I],
    mode: impl Fn(I) -> Option<String>,
    limit: Duration,
) -> (I, Vec<(I, String)>) {
    let t0 = Instant::now();
    loop {
        let modes: Vec<(I, Option<String>)> = alive.iter().map(|i| (*i, mode(*i))).collect();
        let leaders: Vec<I> = modes
            .iter()
            .filter(|(_, m)| m.as_deref() == Some("leader"))
            .map(|(i, _)| *i)
            .collect();
        if modes.iter().all(|(_, m)| m.is_some()) && leaders.len() == 1 {
            let modes = modes
                .into_iter()
                .map(|(i, m)| (i, m.unwrap_or_default()))
                .collect();
            return (leaders[0], modes);
        }
        assert!(
            t0.elapsed() < limit,
            "no settled ensemble after {limit:?}: {modes:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
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
