//! Kerberos (GSSAPI) on real servers (`ensemble start`) against a real MIT KDC on loopback that
//! the test starts itself (interop/harness/kdc.sh: realm KAZOOTEST.ORG, a free port, its own
//! directory): quorum GSSAPI as ZooKeeper configures it (`QuorumServer` / `QuorumLearner`
//! sections with Krb5LoginModule, `quorum.auth.kerberos.servicePrincipal=zkquorum/_HOST`,
//! `-Djava.security.krb5.conf`), surviving a leader kill; a learner whose principal names a host
//! outside the quorum is refused (as `SaslQuorumServerCallbackHandler` refuses it) while the
//! others serve; a server whose keytab is missing, or lacks its principal, refuses to start
//! naming them. (Client GSSAPI runs under kazoo's and zkCli.sh's
//! clients: interop/tests/test_sasl.py and the kazoo suite.)

use ensemble_client::Client;
use ensemble_proto::proto::{Acl, CreateMode};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ensemble");
const PRINCIPAL: &str = "zkquorum/127.0.0.1@KAZOOTEST.ORG";

fn kdc_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/harness/kdc.sh")
}

/// A KDC of this test, stopped on drop (by the pid read at start: its directory may be gone).
struct Kdc {
    pid: i32,
}

impl Kdc {
    fn start(dir: &Path) -> Kdc {
        let o = Command::new("bash")
            .arg(kdc_script())
            .arg("start")
            .arg(dir)
            .arg("zkquorum/127.0.0.1=zkquorum.keytab")
            .arg("zkquorum/10.0.0.9=foreign.keytab")
            .output()
            .expect("bash runs kdc.sh");
        assert!(
            o.status.success(),
            "the KDC did not start (scripts/install-test-deps.sh installs krb5-kdc): {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let pid = std::fs::read_to_string(dir.join("kdc.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .expect("kdc.sh wrote the KDC's pid");
        Kdc { pid }
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) of the KDC this test started.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
    }
}

fn krb5_section(name: &str, keytab: &Path, principal: &str) -> String {
    format!(
        "{name} {{\n  com.sun.security.auth.module.Krb5LoginModule required\n  useKeyTab=true\n  \
         keyTab=\"{}\"\n  storeKey=true\n  useTicketCache=false\n  principal=\"{principal}\";\n}};\n",
        keytab.display()
    )
}

/// Three voters with quorum GSSAPI, each in its own conf directory; `foreign_learner` logs in
/// as zkquorum/10.0.0.9, a host that is none of the quorum's.
struct Ensemble {
    dir: PathBuf,
    client: [u16; 3],
    _kdc: Kdc,
}

impl Ensemble {
    fn new(tag: &str, foreign_learner: Option<usize>) -> Ensemble {
        let dir = std::env::temp_dir().join(format!("ens-krb-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let kdc_dir = dir.join("kdc");
        let kdc = Kdc::start(&kdc_dir);
        let keytab = kdc_dir.join("zkquorum.keytab");
        let foreign = kdc_dir.join("foreign.keytab");
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
        for (i, client_port) in ports.iter().take(3).enumerate() {
            let conf = dir.join(format!("s{}", i + 1));
            let data = conf.join("data");
            std::fs::create_dir_all(&data).expect("dir");
            std::fs::write(data.join("myid"), format!("{}\n", i + 1)).expect("myid");
            let learner = if foreign_learner == Some(i + 1) {
                krb5_section("QuorumLearner", &foreign, "zkquorum/10.0.0.9@KAZOOTEST.ORG")
            } else {
                krb5_section("QuorumLearner", &keytab, PRINCIPAL)
            };
            let jaas = krb5_section("QuorumServer", &keytab, PRINCIPAL) + &learner;
            std::fs::write(conf.join("jaas.conf"), jaas).expect("jaas");
            std::fs::write(
                conf.join("java.env"),
                format!(
                    "SERVER_JVMFLAGS=\"-Djava.security.auth.login.config={} \
                     -Djava.security.krb5.conf={}\"\n",
                    conf.join("jaas.conf").display(),
                    kdc_dir.join("krb5.conf").display()
                ),
            )
            .expect("java.env");
            let cfg = format!(
                "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
                 clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\npreAllocSize=1024\n\
                 admin.enableServer=false\n\
                 quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
                 ensemble.trustEmptyDataDirs=true\n\
                 quorum.auth.serverRequireSasl=true\n\
                 quorum.auth.kerberos.servicePrincipal=zkquorum/_HOST\n{servers}",
                data.display(),
                client_port
            );
            std::fs::write(conf.join("zoo.cfg"), cfg).expect("zoo.cfg");
        }
        Ensemble {
            dir,
            client: [ports[0], ports[1], ports[2]],
            _kdc: kdc,
        }
    }

    fn ens(&self, what: &str, i: usize) -> Output {
        ens(what, &self.dir.join(format!("s{i}/zoo.cfg")))
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

fn ens(what: &str, cfg: &Path) -> Output {
    Command::new(BIN)
        .arg(what)
        .arg(cfg)
        .env_remove("JVMFLAGS")
        .env_remove("SERVER_JVMFLAGS")
        .env_remove("ZOOCFGDIR")
        .env_remove("KRB5_CONFIG")
        .env_remove("KRB5CCNAME")
        .output()
        .expect("runs")
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
async fn three_voters_with_quorum_kerberos_survive_a_leader_kill() {
    let e = Ensemble::new("kill", None);
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
    let logs: String = (1..=3).map(|i| e.log(i)).collect();
    assert!(
        logs.contains(&format!("authenticated learner {PRINCIPAL} (GSSAPI)")),
        "no learner authenticated with Kerberos:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_of_a_host_outside_the_quorum_is_refused_and_the_others_serve() {
    let e = Ensemble::new("foreign", Some(3));
    for i in 1..=3 {
        e.start(i);
    }
    e.wait_ready(&[1, 2]);
    create(&e.hosts(&[1, 2]), "/ok").await;
    // server 3 authenticates, but as a principal of another host: never authorized
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        let m = e.mode(3);
        assert!(
            !matches!(m.as_deref(), Some("leader" | "follower")),
            "server 3 joined as another host's principal: {m:?}"
        );
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
        refused.contains("host 10.0.0.9 is not one of the quorum's"),
        "{refused}"
    );
}

#[test]
fn a_missing_keytab_or_a_keytab_without_the_principal_refuses_to_start() {
    let dir = std::env::temp_dir().join(format!("ens-krb-start-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let kdc_dir = dir.join("kdc");
    let _kdc = Kdc::start(&kdc_dir);
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    std::fs::create_dir_all(dir.join("data")).expect("dir");
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n\
             authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n",
            dir.join("data").display()
        ),
    )
    .expect("zoo.cfg");
    std::fs::write(
        dir.join("java.env"),
        format!(
            "SERVER_JVMFLAGS=\"-Djava.security.auth.login.config={} -Djava.security.krb5.conf={}\"\n",
            dir.join("jaas.conf").display(),
            kdc_dir.join("krb5.conf").display()
        ),
    )
    .expect("java.env");
    let cases = [
        // no such file: named
        (
            dir.join("nowhere.keytab"),
            "zookeeper/127.0.0.1@KAZOOTEST.ORG",
            "nowhere.keytab",
        ),
        // the client's keytab holds no key of the server's principal: the principal named
        (
            kdc_dir.join("client.keytab"),
            "zookeeper/127.0.0.1@KAZOOTEST.ORG",
            "principal \"zookeeper/127.0.0.1@KAZOOTEST.ORG\"",
        ),
    ];
    for (keytab, principal, named) in cases {
        std::fs::write(
            dir.join("jaas.conf"),
            krb5_section("Server", &keytab, principal),
        )
        .expect("jaas");
        let o = ens("start", &cfg);
        let out = String::from_utf8_lossy(&o.stdout).to_string()
            + &String::from_utf8_lossy(&o.stderr)
            + &std::fs::read_to_string(dir.join("data/zookeeper.out")).unwrap_or_default();
        assert!(!o.status.success() && !out.contains("STARTED"), "{out}");
        assert!(
            out.contains(named),
            "the refusal does not name {named}: {out}"
        );
        assert!(out.contains("section 'Server'"), "{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
