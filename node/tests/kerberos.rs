//! Kerberos (GSSAPI) on real servers (`ensemble start`) against a real MIT KDC on loopback that
//! the test starts itself (interop/harness/kdc.sh: realm KAZOOTEST.ORG, a free port, its own
//! directory): quorum GSSAPI as ZooKeeper configures it (`QuorumServer` / `QuorumLearner`
//! sections with Krb5LoginModule, `quorum.auth.kerberos.servicePrincipal=zkquorum/_HOST`,
//! `-Djava.security.krb5.conf`), surviving a leader kill; a learner whose principal names a host
//! outside the quorum is refused (as `SaslQuorumServerCallbackHandler` refuses it) while the
//! others serve; a server whose keytab is missing, or lacks its principal, refuses to start
//! naming them. (Client GSSAPI runs under kazoo's and zkCli.sh's
//! clients: interop/tests/test_sasl.py and the kazoo suite.)

mod trio;

use ensemble_client::Client;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use trio::{BIN, Trio, create};
const PRINCIPAL: &str = "zkquorum/127.0.0.1@KAZOOTEST.ORG";

fn kdc_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/harness/kdc.sh")
}

/// A KDC of this test, stopped on drop (by the pid read at start: its directory may be gone).
struct Kdc {
    pid: i32,
    dir: PathBuf,
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
        Kdc {
            pid,
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        // SAFETY: plain kill(2) of the KDC this test started.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
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
fn ensemble(tag: &str, foreign_learner: Option<usize>) -> Trio {
    let kdc_dir = std::env::temp_dir().join(format!("ens-krb-{tag}-kdc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&kdc_dir);
    let kdc = Kdc::start(&kdc_dir);
    let keytab = kdc_dir.join("zkquorum.keytab");
    let foreign = kdc_dir.join("foreign.keytab");
    Trio::new(&format!("krb-{tag}"), |i, conf| {
        let learner = if foreign_learner == Some(i) {
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
        "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
         quorum.auth.serverRequireSasl=true\nensemble.trustEmptyDataDirs=true\n\
         quorum.auth.kerberos.servicePrincipal=zkquorum/_HOST\n"
            .to_string()
    })
    .holding(kdc)
}

/// `ensemble WHAT CFG` with none of the caller's -D flags or Kerberos settings.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_with_quorum_kerberos_survive_a_leader_kill() {
    let e = ensemble("kill", None);
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
    let e = ensemble("foreign", Some(3));
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
