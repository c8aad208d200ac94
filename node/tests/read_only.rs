//! Read-only mode on a real ensemble: three voters started by the `ensemble` binary with
//! `-Dreadonlymode.enabled=true` in SERVER_JVMFLAGS (and local sessions in zoo.cfg); two are
//! killed, and the survivor serves a client that asked canBeReadOnly its committed state,
//! answers writes NotReadOnly, refuses a client that did not ask, and says `ro` to `isro` and
//! `Mode: read-only` to `srvr`. When the others come back it rejoins the quorum, read-write.
//!
//! Ports: picked free at run time (client, quorum and election ports of each server).

use ensemble_client::{Client, ClientError, ConnectOptions};
use ensemble_proto::proto::{Acl, CreateMode, KeeperError};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ensemble");
const JVMFLAGS: &str = "-Xmx1g -Dreadonlymode.enabled=true";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Ensemble {
    dir: PathBuf,
    /// (client, quorum, election) port of servers 1..=3.
    ports: Vec<(u16, u16, u16)>,
}

impl Ensemble {
    fn new() -> Ensemble {
        let dir = std::env::temp_dir().join(format!("ens-readonly-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        for i in 1..=3usize {
            let data = dir.join(format!("data_{i}"));
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("myid"), format!("{i}\n")).unwrap();
            let mut cfg = format!(
                "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
                 clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\npreAllocSize=1024\n\
                 forceSync=no\nadmin.enableServer=false\nlocalSessionsEnabled=true\n\
                 localSessionsUpgradingEnabled=true\n",
                data.display(),
                ports[i - 1].0,
            );
            for (s, (_, q, e)) in ports.iter().enumerate() {
                cfg += &format!("server.{}=127.0.0.1:{q}:{e}\n", s + 1);
            }
            std::fs::write(dir.join(format!("zoo{i}.cfg")), cfg).unwrap();
        }
        Ensemble { dir, ports }
    }

    fn ens(&self, cmd: &str, i: usize) -> Output {
        Command::new(BIN)
            .arg(cmd)
            .arg(self.dir.join(format!("zoo{i}.cfg")))
            .env("SERVER_JVMFLAGS", JVMFLAGS)
            .output()
            .unwrap()
    }

    fn start(&self, i: usize) {
        let o = self.ens("start", i);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains("STARTED"),
            "start {i}: {out} {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn pid(&self, i: usize) -> Option<i32> {
        let p = self.dir.join(format!("data_{i}/zookeeper_server.pid"));
        ensemble_node::daemon::running_pid(&p)?.parse().ok()
    }

    fn kill9(&self, i: usize) {
        let pid = self.pid(i).expect("running");
        // SAFETY: plain kill(2) of a process this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let t0 = Instant::now();
        while self.pid(i).is_some() {
            assert!(t0.elapsed() < Duration::from_secs(10), "{i} survived kill");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn four(&self, i: usize, word: &str) -> String {
        ensemble_node::daemon::ask("127.0.0.1", self.ports[i - 1].0, word).unwrap_or_default()
    }

    fn mode(&self, i: usize) -> Option<String> {
        self.four(i, "srvr")
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_string)
    }

    /// Wait until server `i` reports one of `modes`.
    fn wait_mode(&self, i: usize, modes: &[&str], limit: Duration) -> String {
        let t0 = Instant::now();
        loop {
            if let Some(m) = self.mode(i).filter(|m| modes.contains(&m.as_str())) {
                return m;
            }
            assert!(
                t0.elapsed() < limit,
                "server {i} not {modes:?} after {limit:?}: {:?}",
                self.mode(i)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn host(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i - 1].0)
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("data_{i}/zookeeper.out")))
            .unwrap_or_default()
    }
}

impl Drop for Ensemble {
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

async fn client(host: &str, read_only: bool) -> Result<Client, ClientError> {
    let mut opts = ConnectOptions::new(host, Duration::from_secs(10));
    opts.read_only = read_only;
    opts.connect_timeout = Some(Duration::from_secs(5));
    Client::connect_with(opts).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survivor_serves_reads_read_only_and_rejoins_read_write() {
    let e = Ensemble::new();
    for i in 1..=3 {
        e.start(i);
    }
    for i in 1..=3 {
        e.wait_mode(i, &["leader", "follower"], Duration::from_secs(60));
    }
    for i in 1..=3 {
        assert!(
            !e.log(i).contains("readonlymode"),
            "the flag is taken, not reported: {}",
            e.log(i)
        );
    }
    let all = (1..=3).map(|i| e.host(i)).collect::<Vec<_>>().join(",");
    let w = client(&all, false).await.expect("a session");
    w.create("/kept", b"v1", Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("written");
    // a local session upgrades for its ephemeral
    w.create("/eph", b"", Acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .expect("an ephemeral of an upgraded local session");
    w.sync("/").await.expect("synced");
    drop(w);
    // server 3 has everything once a sync through it comes back
    let s3 = client(&e.host(3), false).await.expect("a session on 3");
    s3.sync("/").await.expect("synced");
    assert_eq!(s3.get_data("/kept", false).await.expect("read").0, b"v1");
    drop(s3);

    e.kill9(1);
    e.kill9(2);
    e.wait_mode(3, &["read-only"], Duration::from_secs(30));
    assert_eq!(e.four(3, "isro"), "ro");

    let ro = client(&e.host(3), true).await.expect("a read-only session");
    assert!(ro.session().read_only, "ConnectResponse readOnly");
    assert_eq!(ro.get_data("/kept", false).await.expect("read").0, b"v1");
    assert!(
        ro.get_children("/", false)
            .await
            .expect("read")
            .contains(&"kept".to_string())
    );
    let refused = ro
        .create("/new", b"", Acl::open_unsafe(), CreateMode::Persistent)
        .await;
    assert!(
        matches!(refused, Err(ClientError::Keeper(KeeperError::NotReadOnly))),
        "{refused:?}"
    );
    let refused = ro.set_data("/kept", b"v2", None).await;
    assert!(
        matches!(refused, Err(ClientError::Keeper(KeeperError::NotReadOnly))),
        "{refused:?}"
    );
    // a client that did not ask canBeReadOnly is not served
    assert!(client(&e.host(3), false).await.is_err());

    e.start(1);
    e.start(2);
    let m = e.wait_mode(3, &["leader", "follower"], Duration::from_secs(60));
    assert!(m == "leader" || m == "follower");
    assert_eq!(e.four(3, "isro"), "rw");
    let rw = client(&e.host(3), false).await.expect("read-write again");
    rw.set_data("/kept", b"v2", None).await.expect("written");
    assert_eq!(rw.get_data("/kept", false).await.expect("read").0, b"v2");
}
