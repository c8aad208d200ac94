//! Quorum SASL on a real three-voter ensemble (`ensemble start`), configured as ZooKeeper's:
//! `quorum.auth.enableSasl`, `learnerRequireSasl`, `serverRequireSasl` in zoo.cfg, the JAAS
//! file's `QuorumServer` and `QuorumLearner` sections through `conf/java.env`. The ensemble
//! survives a leader kill; a server whose learner password is wrong is refused by the others,
//! who go on serving.

use ensemble_client::Client;
use ensemble_proto::proto::{Acl, CreateMode};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ensemble");

fn jaas(learner_password: &str) -> String {
    format!(
        "QuorumServer {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
         user_test=\"quorum-pw\";\n}};\n\
         QuorumLearner {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
         username=\"test\"\n  password=\"{learner_password}\";\n}};\n"
    )
}

/// Three voters, each in its own conf directory (its own JAAS file). Ports drawn free.
struct Ensemble {
    dir: PathBuf,
    client: [u16; 3],
}

impl Ensemble {
    fn new(tag: &str, passwords: [&str; 3]) -> Ensemble {
        let dir = std::env::temp_dir().join(format!("ens-qsasl-{tag}-{}", std::process::id()));
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
        let mut servers = String::new();
        for s in 0..3 {
            servers += &format!(
                "server.{}=127.0.0.1:{}:{}\n",
                s + 1,
                ports[3 + s],
                ports[6 + s]
            );
        }
        for i in 0..3 {
            let conf = dir.join(format!("s{}", i + 1));
            let data = conf.join("data");
            std::fs::create_dir_all(&data).expect("dir");
            std::fs::write(data.join("myid"), format!("{}\n", i + 1)).expect("myid");
            std::fs::write(conf.join("jaas.conf"), jaas(passwords[i])).expect("jaas");
            std::fs::write(
                conf.join("java.env"),
                format!(
                    "SERVER_JVMFLAGS=\"-Djava.security.auth.login.config={}\"\n",
                    conf.join("jaas.conf").display()
                ),
            )
            .expect("java.env");
            // trustEmptyDataDirs: the wrong-password test forms a new ensemble of two (the
            // third never authenticates), which the default refuses (a new ensemble waits
            // for every voter: node/README.md, "Disk loss")
            let cfg = format!(
                "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
                 clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\npreAllocSize=1024\n\
                 quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
                 quorum.auth.serverRequireSasl=true\n\
                 ensemble.trustEmptyDataDirs=true\n{servers}",
                data.display(),
                ports[i]
            );
            std::fs::write(conf.join("zoo.cfg"), cfg).expect("zoo.cfg");
        }
        Ensemble {
            dir,
            client: [ports[0], ports[1], ports[2]],
        }
    }

    fn ens(&self, what: &str, i: usize) -> Output {
        Command::new(BIN)
            .arg(what)
            .arg(self.dir.join(format!("s{i}/zoo.cfg")))
            .env_remove("JVMFLAGS")
            .env_remove("SERVER_JVMFLAGS")
            .env_remove("ZOOCFGDIR")
            .output()
            .expect("runs")
    }

    fn start(&self, i: usize) {
        let o = self.ens("start", i);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("STARTED"),
            "start {i}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn mode(&self, i: usize) -> Option<String> {
        let o = self.ens("status", i);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_string)
    }

    fn pid(&self, i: usize) -> Option<i32> {
        let p = self.dir.join(format!("s{i}/data/zookeeper_server.pid"));
        ensemble_node::daemon::running_pid(&p)?.parse().ok()
    }

    fn kill9(&self, i: usize) {
        if let Some(pid) = self.pid(i) {
            // SAFETY: plain kill(2) of a process this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let t0 = Instant::now();
        while self.pid(i).is_some() && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("s{i}/data/zookeeper.out")))
            .unwrap_or_default()
    }

    /// Wait until exactly one of `alive` leads and the others follow; returns the leader.
    fn wait_ready(&self, alive: &[usize]) -> usize {
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

    fn hosts(&self, ids: &[usize]) -> String {
        ids.iter()
            .map(|i| format!("127.0.0.1:{}", self.client[i - 1]))
            .collect::<Vec<_>>()
            .join(",")
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

async fn create(hosts: &str, path: &str) {
    let c = Client::connect(hosts, Duration::from_secs(10))
        .await
        .expect("connect");
    c.create(path, b"v", Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("create");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_with_quorum_sasl_survive_a_leader_kill() {
    let e = Ensemble::new("kill", ["quorum-pw"; 3]);
    for i in 1..=3 {
        e.start(i);
    }
    let leader = e.wait_ready(&[1, 2, 3]);
    create(&e.hosts(&[1, 2, 3]), "/before").await;
    e.kill9(leader);
    let rest: Vec<usize> = (1..=3).filter(|i| *i != leader).collect();
    let next = e.wait_ready(&rest);
    assert_ne!(next, leader);
    create(&e.hosts(&rest), "/after").await;
    let c = Client::connect(&e.hosts(&rest), Duration::from_secs(10))
        .await
        .expect("connect");
    assert!(c.exists("/before", false).await.expect("exists").is_some());
    for i in 1..=3 {
        assert!(!e.log(i).contains("quorum-pw"), "a password in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_with_a_wrong_password_is_refused_and_the_others_serve() {
    let e = Ensemble::new("wrong", ["quorum-pw", "quorum-pw", "not-the-pw"]);
    for i in 1..=3 {
        e.start(i);
    }
    e.wait_ready(&[1, 2]);
    create(&e.hosts(&[1, 2]), "/ok").await;
    // server 3 cannot authenticate anywhere: it never serves
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        assert_eq!(e.mode(3), None, "server 3 joined with a wrong password");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        e.log(3).contains("quorum SASL"),
        "server 3 does not say why: {}",
        e.log(3)
    );
    let refused = e.log(1) + &e.log(2);
    assert!(refused.contains("refusing server 3"), "{refused}");
    assert!(
        !(refused + &e.log(3)).contains("not-the-pw"),
        "a password in the log"
    );
}
