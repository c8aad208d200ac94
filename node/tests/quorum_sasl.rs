//! Quorum SASL on a real three-voter ensemble (`ensemble start`), configured as ZooKeeper's:
//! `quorum.auth.enableSasl`, `learnerRequireSasl`, `serverRequireSasl` in zoo.cfg, the JAAS
//! file's `QuorumServer` and `QuorumLearner` sections through `conf/java.env`. The ensemble
//! survives a leader kill; a server whose learner password is wrong is refused by the others,
//! who go on serving.

mod trio;

use ensemble_client::Client;
use std::time::{Duration, Instant};
use trio::{Trio, create};

fn jaas(learner_password: &str) -> String {
    format!(
        "QuorumServer {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
         user_test=\"quorum-pw\";\n}};\n\
         QuorumLearner {{\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  \
         username=\"test\"\n  password=\"{learner_password}\";\n}};\n"
    )
}

/// Three voters with quorum SASL, each with its own JAAS file (`learner password`).
/// trustEmptyDataDirs: the wrong-password test forms a new ensemble of two (the third never
/// authenticates), which the default refuses (node/README.md, "Disk loss").
fn ensemble(tag: &str, passwords: [&str; 3]) -> Trio {
    Trio::new(&format!("qsasl-{tag}"), |i, conf| {
        std::fs::write(conf.join("jaas.conf"), jaas(passwords[i - 1])).expect("jaas");
        std::fs::write(
            conf.join("java.env"),
            format!(
                "SERVER_JVMFLAGS=\"-Djava.security.auth.login.config={}\"\n",
                conf.join("jaas.conf").display()
            ),
        )
        .expect("java.env");
        "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n\
         quorum.auth.serverRequireSasl=true\nensemble.trustEmptyDataDirs=true\n"
            .to_string()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_with_quorum_sasl_survive_a_leader_kill() {
    let e = ensemble("kill", ["quorum-pw"; 3]);
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
    let e = ensemble("wrong", ["quorum-pw", "quorum-pw", "not-the-pw"]);
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
