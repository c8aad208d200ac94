//! zoo.cfg parsing: the seed's files, every key, and errors that name the line.

use ensemble_core::LearnerType;
use ensemble_node::config::{self, ConfigError, Whitelist};
use std::path::{Path, PathBuf};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ens-cfg-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn seed(data: &Path, client: u16) -> String {
    format!(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client}\ndataLogDir={}/logs\n\
         server.1=localhost:2887:3887\nserver.2=localhost:2888:3888\nserver.3=localhost:2889:3889\n",
        data.display(),
        data.display()
    )
}

#[test]
fn seed_zoo1_cfg() {
    let d = tmpdir("seed");
    std::fs::write(d.join("myid"), "1\n").unwrap();
    let p = write(&d, "zoo1.cfg", &seed(&d, 2181));
    let c = config::load(&p).unwrap();
    assert_eq!(c.core.my_id, 1);
    assert!(!c.standalone);
    assert_eq!(c.core.members.len(), 3);
    assert!(
        c.core
            .members
            .values()
            .all(|t| *t == LearnerType::Participant)
    );
    assert_eq!(c.core.tick_time_ms, 2000);
    assert_eq!(c.core.init_limit, 10);
    assert_eq!(c.core.sync_limit, 5);
    assert_eq!(c.core.min_session_timeout_ms, 4000);
    assert_eq!(c.core.max_session_timeout_ms, 40000);
    assert_eq!(c.client_port, 2181);
    assert_eq!(c.data_log_dir, d.join("logs"));
    assert_eq!(c.max_client_cnxns, 60);
    assert_eq!(c.servers[&2].quorum_port, 2888);
    assert_eq!(c.servers[&2].election_port, 3888);
    assert_eq!(c.servers[&3].host, "localhost");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // ZooKeeper 3.4's default whitelist: everything but wchp/wchc.
    assert!(c.whitelist.allows("ruok") && c.whitelist.allows("srvr") && c.whitelist.allows("mntr"));
    assert!(!c.whitelist.allows("wchp") && !c.whitelist.allows("wchc"));
}

#[test]
fn seed_observer() {
    let d = tmpdir("obs");
    std::fs::write(d.join("myid"), "4").unwrap();
    let text = seed(&d, 2184) + "peerType=observer\nserver.4=localhost:2890:3890:observer\n";
    let c = config::load(&write(&d, "zoo4.cfg", &text)).unwrap();
    assert_eq!(c.core.my_id, 4);
    assert!(c.core.is_observer());
    assert_eq!(c.core.voters().count(), 3);
    assert_eq!(c.servers[&4].kind, LearnerType::Observer);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn standalone_without_server_lines() {
    let d = tmpdir("alone");
    let text = format!("tickTime=2000\ndataDir={}\nclientPort=2181\n", d.display());
    let c = config::load(&write(&d, "zoo.cfg", &text)).unwrap();
    assert!(c.standalone);
    assert!(c.core.is_standalone());
    assert_eq!(c.data_log_dir, d);
}

#[test]
fn every_key() {
    let d = tmpdir("keys");
    std::fs::write(d.join("myid"), "2").unwrap();
    let text = format!(
        "# comment\n! also a comment\n\ntickTime = 500\ninitLimit: 7\nsyncLimit 3\ndataDir={d}\n\
         dataLogDir={d}/txlog\nclientPort=31000\nclientPortAddress=127.0.0.1\nmaxClientCnxns=5\n\
         minSessionTimeout=1500\nmaxSessionTimeout=9000\nautopurge.snapRetainCount=4\n\
         autopurge.purgeInterval=2\nsnapCount=1000\n4lw.commands.whitelist=ruok, srvr,mntr\n\
         jute.maxbuffer=4096\npreAllocSize=128\nforceSync=no\nelectionAlg=3\n\
         server.1=127.0.0.1:31001:31002:participant\nserver.2=127.0.0.1:31003:31004;31000\n\
         server.3=[::1]:31005:31006:observer;127.0.0.1:31007\n",
        d = d.display()
    );
    let c = config::load(&write(&d, "zoo.cfg", &text)).unwrap();
    assert_eq!(c.core.tick_time_ms, 500);
    assert_eq!(c.core.init_limit, 7);
    assert_eq!(c.core.sync_limit, 3);
    assert_eq!(c.data_log_dir, d.join("txlog"));
    assert_eq!(c.client_port, 31000);
    assert_eq!(c.client_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(c.max_client_cnxns, 5);
    assert_eq!(c.core.min_session_timeout_ms, 1500);
    assert_eq!(c.core.max_session_timeout_ms, 9000);
    assert_eq!(c.snap_retain_count, 4);
    assert_eq!(c.purge_interval_hours, 2);
    assert_eq!(c.core.snap_count, 1000);
    assert!(c.whitelist.allows("mntr") && !c.whitelist.allows("stat"));
    assert_eq!(c.max_buffer, 4096);
    assert_eq!(c.prealloc_size, 128 * 1024);
    assert!(!c.force_sync);
    assert_eq!(c.servers[&3].host, "::1");
    assert_eq!(c.servers[&3].kind, LearnerType::Observer);
    assert_eq!(
        c.servers[&3].client,
        Some((Some("127.0.0.1".into()), 31007))
    );
    assert_eq!(c.servers[&2].client, Some((None, 31000)));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn client_port_from_server_line_and_star_whitelist() {
    let d = tmpdir("dyn");
    std::fs::write(d.join("myid"), "1").unwrap();
    let text = format!(
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={}\n4lw.commands.whitelist=*\n\
         server.1=localhost:31011:31012;0.0.0.0:31010\nserver.2=localhost:31013:31014;31015\n",
        d.display()
    );
    let c = config::load(&write(&d, "zoo.cfg", &text)).unwrap();
    assert_eq!(c.client_port, 31010);
    assert_eq!(c.client_address.as_deref(), Some("0.0.0.0"));
    assert_eq!(c.whitelist, Whitelist::All);
    assert_eq!(c.client_connect_host(), "127.0.0.1");
}

#[test]
fn defaults_and_snap_retain_floor() {
    let d = tmpdir("floor");
    let text = format!(
        "tickTime=3000\ndataDir={}\nclientPort=2181\nautopurge.snapRetainCount=1\n",
        d.display()
    );
    let c = config::load(&write(&d, "zoo.cfg", &text)).unwrap();
    assert_eq!(c.snap_retain_count, 3);
    assert_eq!(c.core.min_session_timeout_ms, 6000);
    assert_eq!(c.core.max_session_timeout_ms, 60000);
    assert_eq!(c.core.snap_count, 100_000);
    assert_eq!(c.purge_interval_hours, 0);
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains(":4:"), "{}", c.warnings[0]);
}

#[test]
fn unknown_key_is_a_warning_naming_the_line() {
    let d = tmpdir("unknown");
    let text = format!(
        "tickTime=2000\ndataDir={}\nclientPort=2181\nfrobnicate=yes\n",
        d.display()
    );
    let c = config::load(&write(&d, "zoo.cfg", &text)).unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0].contains("zoo.cfg:4") && c.warnings[0].contains("frobnicate"),
        "{}",
        c.warnings[0]
    );
}

fn err_of(tag: &str, text: &str, myid: Option<&str>) -> String {
    let d = tmpdir(tag);
    if let Some(m) = myid {
        std::fs::write(d.join("myid"), m).unwrap();
    }
    let text = text.replace("DATA", &d.display().to_string());
    match config::load(&write(&d, "zoo.cfg", &text)) {
        Ok(_) => panic!("{tag}: expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn invalid_values_name_the_line() {
    let e = err_of(
        "badtick",
        "dataDir=DATA\ntickTime=fast\nclientPort=2181\n",
        None,
    );
    assert!(e.contains("zoo.cfg:2:") && e.contains("tickTime"), "{e}");
    let e = err_of(
        "badport",
        "tickTime=2000\ndataDir=DATA\nclientPort=99999\n",
        None,
    );
    assert!(e.contains("zoo.cfg:3:"), "{e}");
    let e = err_of(
        "badserver",
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=DATA\nclientPort=2181\nserver.1=localhost:2887\n",
        Some("1"),
    );
    assert!(e.contains("zoo.cfg:6:") && e.contains("server.1"), "{e}");
    let e = err_of(
        "badtype",
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=DATA\nclientPort=2181\nserver.1=h:1:2:voter\n",
        Some("1"),
    );
    assert!(e.contains("zoo.cfg:6:") && e.contains("voter"), "{e}");
    let e = err_of(
        "dup",
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=DATA\nclientPort=2181\nserver.1=h:1:2\nserver.1=h:3:4\n",
        Some("1"),
    );
    assert!(e.contains("zoo.cfg:7:") && e.contains("line 6"), "{e}");
    let e = err_of(
        "sessions",
        "tickTime=2000\ndataDir=DATA\nclientPort=2181\nminSessionTimeout=9000\nmaxSessionTimeout=100\n",
        None,
    );
    assert!(e.contains("zoo.cfg:4:"), "{e}");
    let e = err_of(
        "bool",
        "tickTime=2000\ndataDir=DATA\nclientPort=2181\nforceSync=maybe\n",
        None,
    );
    assert!(e.contains("zoo.cfg:4:"), "{e}");
    let e = err_of(
        "peertype",
        "tickTime=2000\ndataDir=DATA\nclientPort=2181\npeerType=spectator\n",
        None,
    );
    assert!(e.contains("zoo.cfg:4:"), "{e}");
    // found by the zoo_cfg fuzz target: 20 x tickTime overflowed
    let e = err_of(
        "hugetick",
        "dataDir=DATA\ntickTime=193397707900\nclientPort=2181\n",
        None,
    );
    assert!(e.contains("zoo.cfg:2:") && e.contains("tickTime"), "{e}");
    let e = err_of(
        "bigtick",
        "dataDir=DATA\ntickTime=200000000\nclientPort=2181\n",
        None,
    );
    assert!(e.contains("zoo.cfg:2:") && e.contains("too large"), "{e}");
}

#[test]
fn missing_things() {
    let e = err_of(
        "nomyid",
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=DATA\nclientPort=2181\nserver.1=h:1:2\nserver.2=h:3:4\n",
        None,
    );
    assert!(
        e.contains("zoo.cfg:4:") && e.contains("myid") && e.contains("missing"),
        "{e}"
    );
    let e = err_of(
        "badmyid",
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=DATA\nclientPort=2181\nserver.1=h:1:2\n",
        Some("one"),
    );
    assert!(
        e.contains("zoo.cfg:4:") && e.contains("not a server id"),
        "{e}"
    );
    let e = err_of(
        "strangemyid",
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=DATA\nclientPort=2181\nserver.1=h:1:2\n",
        Some("7"),
    );
    assert!(e.contains("server.7"), "{e}");
    let e = err_of("notick", "dataDir=DATA\nclientPort=2181\n", None);
    assert!(e.contains("tickTime is not set"), "{e}");
    let e = err_of("nodata", "tickTime=2000\nclientPort=2181\n", None);
    assert!(e.contains("dataDir is not set"), "{e}");
    let e = err_of("noport", "tickTime=2000\ndataDir=DATA\n", None);
    assert!(e.contains("clientPort is not set"), "{e}");
    match config::load(Path::new("/nonexistent/zoo.cfg")) {
        Err(ConfigError::Io { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn peer_type_mismatch_is_a_warning() {
    let d = tmpdir("mismatch");
    std::fs::write(d.join("myid"), "1").unwrap();
    let text = seed(&d, 2181) + "peerType=observer\n";
    let c = config::load(&write(&d, "zoo.cfg", &text)).unwrap();
    assert!(!c.core.is_observer());
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains(":10:"), "{}", c.warnings[0]);
}

// ---- settings this build does not implement, and the JVM's -D flags (issue 11, item 4) ----

/// `load` with exactly this environment (nothing from the test process's own).
fn load_env(path: &Path, env: &[(&str, &str)]) -> Result<config::NodeConfig, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    config::load_with_env(path, &move |k| {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
}

fn standalone(d: &Path, extra: &str) -> String {
    format!(
        "tickTime=2000\ndataDir={}\nclientPort=2181\n{extra}",
        d.display()
    )
}

#[test]
fn security_and_membership_settings_refuse_naming_file_line_and_why() {
    let d = tmpdir("refuse");
    let text = standalone(
        &d,
        "ssl.crl=true\n\
         skipACL=yes\n\
         authProvider.1=com.example.NoSuchProvider\n",
    );
    let p = write(&d, "zoo1.cfg", &text);
    let Err(ConfigError::Refused(lines)) = load_env(&p, &[]) else {
        panic!("expected a refusal");
    };
    let at = |n: usize| format!("{}:{n}: ", p.display());
    let keys = ["ssl.crl", "skipACL", "authProvider.1"];
    assert_eq!(lines.len(), keys.len(), "{lines:#?}");
    for (i, (line, key)) in lines.iter().zip(keys).enumerate() {
        assert!(line.starts_with(&format!("{}{key}: ", at(i + 4))), "{line}");
        assert!(line.contains("refusing to start"), "{line}");
    }
    assert!(lines[0].contains("revocation checking"), "{}", lines[0]);
}

#[test]
fn values_that_disable_a_feature_pass_silently() {
    let d = tmpdir("disabled");
    let text = standalone(
        &d,
        "sslQuorum=false\nreconfigEnabled=false\naudit.enable=false\nadmin.enableServer=false\n\
         quorum.auth.enableSasl=false\nskipACL=no\nportUnification=false\nelectionAlg=3\n\
         standaloneEnabled=false\nlocalSessionsEnabled=false\n\
         authProvider.1=org.apache.zookeeper.server.auth.DigestAuthenticationProvider\n",
    );
    let c = load_env(&write(&d, "zoo.cfg", &text), &[]).unwrap();
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
}

#[test]
fn local_sessions_are_read_from_zoo_cfg() {
    let d = tmpdir("local-sessions");
    let text = standalone(
        &d,
        "localSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true\n",
    );
    let c = load_env(&write(&d, "zoo.cfg", &text), &[]).unwrap();
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
    assert!(c.core.local_sessions && c.core.local_sessions_upgrading);
    let text = standalone(&d, "localSessionsEnabled=perhaps\n");
    let err = load_env(&write(&d, "zoo.cfg", &text), &[]).unwrap_err();
    assert!(
        err.to_string().contains("localSessionsEnabled=perhaps"),
        "{err}"
    );
}

#[test]
fn other_ignored_settings_are_reported_with_did_you_mean() {
    let d = tmpdir("ignored");
    let text = format!(
        "tickTime=2000\ntickTme=3000\ndataDir={}\nclientPort=2181\nadmin.httpVersion=11\n\
         metricsProvider.numWorkerThreads=2\n\
         frobnicate=yes\nmaxClientCnxn=10\n\
         zookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n",
        d.display()
    );
    let p = write(&d, "zoo.cfg", &text);
    let c = load_env(&p, &[]).unwrap();
    let w = c.warnings.join("\n");
    assert_eq!(c.warnings.len(), 6, "{w}");
    let has = |n: usize, what: &str| {
        c.warnings
            .iter()
            .any(|l| l.starts_with(&format!("{}:{n}: ", p.display())) && l.contains(what))
    };
    assert!(has(2, "did you mean tickTime?"), "{w}");
    assert!(has(5, "AdminServer"), "{w}");
    assert!(has(6, "Prometheus endpoint"), "{w}");
    assert!(has(7, "unknown key 'frobnicate' ignored") && !w.contains("frobnicate' ignored ("));
    assert!(has(8, "did you mean maxClientCnxns?"), "{w}");
    assert!(
        has(
            9,
            "write DigestAuthenticationProvider.superDigest without zookeeper."
        ),
        "{w}"
    );
    assert_eq!(c.core.super_digest, None);
}

/// The seed-shaped configs the interop harness writes, for both targets: none may refuse or
/// warn.
#[test]
fn interop_harness_configs_start_quietly() {
    let d = tmpdir("interop");
    std::fs::write(d.join("myid"), "1").unwrap();
    for extra in [
        "admin.serverAddress=127.0.0.1\nadmin.serverPort=24887\n\
         metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
         metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort=25887\n",
        "admin.enableServer=false\n",
    ] {
        let text = format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={d}\nclientPort=22181\n\
             dataLogDir={d}/log\n4lw.commands.whitelist=*\nextendedTypesEnabled=true\n{extra}\
             server.1=localhost:22887:23887\nserver.2=localhost:22888:23888\n\
             server.3=localhost:22889:23889\nserver.4=localhost:22890:23890:observer\n",
            d = d.display()
        );
        let c = load_env(&write(&d, "zoo1.cfg", &text), &[]).unwrap();
        assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
    }
}

#[test]
fn super_digest_from_zoo_cfg_or_flags_with_zoo_cfg_winning() {
    let d = tmpdir("super");
    let sup = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";
    let other = "admin:ikIaKsbtGweaHnb/jKn7OHqbunM=";
    let p = write(
        &d,
        "zoo.cfg",
        &standalone(
            &d,
            &format!("DigestAuthenticationProvider.superDigest={sup}\n"),
        ),
    );
    let c = load_env(&p, &[]).unwrap();
    assert_eq!(c.core.super_digest.as_deref(), Some(sup));
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);

    // From SERVER_JVMFLAGS, as zkServer.sh passes it.
    let flag = format!("-Xmx1g -Dzookeeper.DigestAuthenticationProvider.superDigest={sup}");
    let p = write(&d, "zoo.cfg", &standalone(&d, ""));
    let c = load_env(&p, &[("SERVER_JVMFLAGS", &flag)]).unwrap();
    assert_eq!(c.core.super_digest.as_deref(), Some(sup));
    assert_eq!(c.warnings.len(), 1, "{:#?}", c.warnings);
    assert!(c.warnings[0].contains("-Xmx1g"), "{}", c.warnings[0]);

    // zoo.cfg sets the system property after the JVM started: it wins over the flag.
    let p = write(
        &d,
        "zoo.cfg",
        &standalone(
            &d,
            &format!("DigestAuthenticationProvider.superDigest={other}\n"),
        ),
    );
    let c = load_env(&p, &[("JVMFLAGS", &flag)]).unwrap();
    assert_eq!(c.core.super_digest.as_deref(), Some(other));
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("JVMFLAGS in the environment")),
        "{:#?}",
        c.warnings
    );

    // A malformed digest would make nobody super: an error naming the flag.
    let e = load_env(
        &write(&d, "zoo.cfg", &standalone(&d, "")),
        &[(
            "SERVER_JVMFLAGS",
            "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:secret",
        )],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("SERVER_JVMFLAGS in the environment: -Dzookeeper.DigestAuthenticationProvider.superDigest=super:secret:"),
        "{e}"
    );
}

#[test]
fn java_env_flags_are_read_and_refused_ones_name_the_file_line() {
    let d = tmpdir("javaenv");
    std::fs::write(
        d.join("java.env"),
        "export JAVA_HOME=/usr/lib/jvm/default\n\
         SERVER_JVMFLAGS=\"-Djute.maxbuffer=8192 -Dzookeeper.extendedTypesEnabled=false\"\n\
         JVMFLAGS=\"$JVMFLAGS -Dzookeeper.snapCount=777 -Dzookeeper.enforceQuota=true -Dzookeeper.commitLogCount=9\"\n",
    )
    .unwrap();
    let p = write(&d, "zoo.cfg", &standalone(&d, ""));
    let c = load_env(&p, &[("JVMFLAGS", "-Dzookeeper.forceSync=no")]).unwrap();
    assert_eq!(c.max_buffer, 8192);
    assert!(!c.core.extended_types);
    assert_eq!(c.core.snap_count, 777);
    assert!(!c.force_sync);
    assert!(c.core.enforce_quota);
    assert_eq!(c.core.committed_log_size, 500, "ZooKeeper's floor");
    assert_eq!(c.warnings.len(), 1, "{:#?}", c.warnings);
    let java_env = d.join("java.env");
    assert!(
        c.warnings[0].starts_with(&format!(
            "{}:3 (JVMFLAGS): -Dzookeeper.commitLogCount=9: commitLogCount=9 is less than the recommended 500; using 500",
            java_env.display()
        )),
        "{}",
        c.warnings[0]
    );

    std::fs::write(
        d.join("java.env"),
        "SERVER_JVMFLAGS=\"-Dreadonlymode.enabled=true -Dzookeeper.ssl.ocsp=true\"\n",
    )
    .unwrap();
    let Err(ConfigError::Refused(lines)) = load_env(&p, &[]) else {
        panic!("expected a refusal");
    };
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let origin = format!("{}:1 (SERVER_JVMFLAGS)", java_env.display());
    assert!(lines[0].starts_with(&origin), "{}", lines[0]);
    assert!(lines[0].contains("revocation checking"), "{}", lines[0]);
    // Read-only mode is implemented: taken from the flag, silently.
    std::fs::write(
        d.join("java.env"),
        "SERVER_JVMFLAGS=-Dreadonlymode.enabled=true\n",
    )
    .unwrap();
    let c = load_env(&p, &[]).unwrap();
    assert!(c.core.read_only_mode);
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
    std::fs::write(
        d.join("java.env"),
        "SERVER_JVMFLAGS=-Dreadonlymode.enabled=false\n",
    )
    .unwrap();
    let c = load_env(&p, &[]).unwrap();
    assert!(!c.core.read_only_mode);
    assert!(c.warnings.is_empty());
    // A property for a key ZooKeeper reads from zoo.cfg only is reported, not applied.
    std::fs::write(
        d.join("java.env"),
        "SERVER_JVMFLAGS=-Dzookeeper.tickTime=10\n",
    )
    .unwrap();
    let c = load_env(&p, &[]).unwrap();
    assert_eq!(c.core.tick_time_ms, 2000);
    assert!(
        c.warnings[0].contains("from zoo.cfg only"),
        "{:#?}",
        c.warnings
    );
}

/// `ensemble stop`/`status` must find a server whose file was edited after it started.
#[test]
fn stop_and_status_read_a_file_that_would_refuse_to_start() {
    let d = tmpdir("control");
    let p = write(&d, "zoo.cfg", &standalone(&d, "ssl.crl=true\n"));
    assert!(matches!(load_env(&p, &[]), Err(ConfigError::Refused(_))));
    let c = config::load_for_control(&p).unwrap();
    assert_eq!(c.client_port, 2181);
    assert!(
        c.warnings.iter().any(|w| w.contains("ssl.crl")),
        "{:#?}",
        c.warnings
    );
}

#[test]
fn admin_and_metrics_settings() {
    let d = tmpdir("admin");
    let c = load_env(&write(&d, "zoo.cfg", &standalone(&d, "")), &[]).unwrap();
    assert_eq!(c.admin, ensemble_node::admin::AdminConfig::default());
    assert_eq!(c.admin.port, 8080);
    assert_eq!(c.metrics, None);
    let text = standalone(
        &d,
        "admin.serverPort=9090\nadmin.serverAddress=127.0.0.1\nadmin.commandURL=/cmds\n\
         admin.idleTimeout=5000\n\
         metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
         metricsProvider.httpPort=7001\nmetricsProvider.httpHost=127.0.0.1\n",
    );
    let c = load_env(&write(&d, "zoo.cfg", &text), &[]).unwrap();
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);
    assert_eq!(
        (
            c.admin.port,
            c.admin.address.as_str(),
            c.admin.command_url.as_str()
        ),
        (9090, "127.0.0.1", "/cmds")
    );
    assert_eq!(c.admin.idle_timeout_ms, 5000);
    let m = c.metrics.expect("prometheus on");
    assert_eq!((m.host.as_str(), m.port), ("127.0.0.1", 7001));
    // -Dzookeeper.admin.* flags, as ZooKeeper reads them; zoo.cfg wins.
    let c = load_env(
        &write(&d, "zoo.cfg", &standalone(&d, "admin.serverPort=9091\n")),
        &[(
            "SERVER_JVMFLAGS",
            "-Dzookeeper.admin.enableServer=false -Dzookeeper.admin.serverPort=1",
        )],
    )
    .unwrap();
    assert!(!c.admin.enabled);
    assert_eq!(c.admin.port, 9091);
    // exportJvmInfo is reported; an unknown provider class does not start.
    let text = standalone(&d, "metricsProvider.exportJvmInfo=true\n");
    let c = load_env(&write(&d, "zoo.cfg", &text), &[]).unwrap();
    assert!(
        c.warnings.iter().any(|w| w.contains("no JVM")),
        "{:#?}",
        c.warnings
    );
    let text = standalone(&d, "metricsProvider.className=com.example.Nope\n");
    let e = load_env(&write(&d, "zoo.cfg", &text), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("com.example.Nope") && e.contains(":4:"), "{e}");
    let text = standalone(&d, "admin.forceHttps=true\n");
    let e = load_env(&write(&d, "zoo.cfg", &text), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("HTTPS"), "{e}");
}

/// `syncPartSize` sets the sync's frame size; a value outside its bounds is refused with its
/// line; absent, the core's default.
#[test]
fn sync_part_size() {
    let d = tmpdir("syncpart");
    let c = config::load(&write(
        &d,
        "zoo.cfg",
        &standalone(&d, "syncPartSize=1048576\n"),
    ))
    .unwrap();
    assert_eq!(c.core.sync_part_bytes, 1 << 20);
    let c = config::load(&write(&d, "zoo.cfg", &standalone(&d, ""))).unwrap();
    assert_eq!(c.core.sync_part_bytes, 4 << 20);
    let e = config::load(&write(&d, "zoo.cfg", &standalone(&d, "syncPartSize=10\n")))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("syncPartSize must be between") && e.contains(":4"),
        "{e}"
    );
}

/// ZooKeeper 3.5+'s membership settings: reconfigEnabled and standaloneEnabled read,
/// dynamicConfigFile's server lines and version taken, its errors naming its file and line.
#[test]
fn dynamic_config_file_and_reconfig_settings() {
    let d = tmpdir("dynamic");
    std::fs::write(d.join("myid"), "2").unwrap();
    let dynamic = write(
        &d,
        "zoo.cfg.dynamic.100000003",
        "server.1=127.0.0.1:2887:3887:participant;127.0.0.1:2181\n\
         server.2=127.0.0.1:2888:3888:participant;0.0.0.0:2182\n\
         server.3=127.0.0.1:2889:3889:observer;2183\n",
    );
    let base = format!(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nreconfigEnabled=true\n\
         standaloneEnabled=false\n",
        d.display()
    );
    let text = format!("{base}dynamicConfigFile={}\n", dynamic.display());
    let c = load_env(&write(&d, "zoo.cfg", &text), &[]).unwrap();
    assert!(c.core.reconfig_enabled && !c.core.standalone_enabled);
    assert_eq!(c.dynamic_file.as_deref(), Some(dynamic.as_path()));
    assert_eq!(c.config_version, 0x1_0000_0003, "from the file's name");
    assert_eq!(c.core.members.len(), 3);
    assert_eq!(c.core.members[&3], LearnerType::Observer);
    assert_eq!(
        c.client_port, 2182,
        "this server's client port from its line"
    );
    assert_eq!(
        String::from_utf8(c.core.config_node.clone()).unwrap(),
        "server.1=127.0.0.1:2887:3887:participant;127.0.0.1:2181\n\
         server.2=127.0.0.1:2888:3888:participant;0.0.0.0:2182\n\
         server.3=127.0.0.1:2889:3889:observer;0.0.0.0:2183\nversion=100000003"
    );
    assert_eq!(
        c.core.config_version, 0x1_0000_0003,
        "a reconfig's version is the core's too (in force until its tree applies it)"
    );
    assert!(c.warnings.is_empty(), "{:#?}", c.warnings);

    // the first configuration as the first leader versioned it (an epoch's zxid, no txn):
    // the core starts with that version, as ZooKeeper 3.8 reads zoo.cfg.dynamic.100000000
    let first = write(
        &d,
        "zoo.cfg.dynamic.100000000",
        &std::fs::read_to_string(&dynamic).unwrap(),
    );
    let text = format!("{base}dynamicConfigFile={}\n", first.display());
    let c = load_env(&write(&d, "zoo.cfg", &text), &[]).unwrap();
    assert_eq!(c.core.config_version, 0x1_0000_0000);
    assert!(
        String::from_utf8(c.core.config_node.clone())
            .unwrap()
            .ends_with("\nversion=100000000")
    );

    // a version line wins over the name
    let v = write(
        &d,
        "other.dynamic",
        "server.2=127.0.0.1:2888:3888;2182\nversion=1f\n",
    );
    let text = format!("{base}dynamicConfigFile={}\n", v.display());
    let c = load_env(&write(&d, "zoo.cfg", &text), &[]).unwrap();
    assert_eq!(c.config_version, 0x1f);

    // a bad line of the dynamic file: that file and its line
    let bad = write(
        &d,
        "bad.dynamic",
        "server.1=127.0.0.1:2887:3887;2181\n\nserver.2=127.0.0.1:2888\n",
    );
    let text = format!("{base}dynamicConfigFile={}\n", bad.display());
    match load_env(&write(&d, "zoo.cfg", &text), &[]) {
        Err(ConfigError::Line { path, line, .. }) => {
            assert_eq!(path, bad);
            assert_eq!(line, 3);
        }
        other => panic!("expected the dynamic file's line 3, got {other:?}"),
    }
    let unknown = write(
        &d,
        "unknown.dynamic",
        "server.2=127.0.0.1:2888:3888;2182\ntickTime=1\n",
    );
    let text = format!("{base}dynamicConfigFile={}\n", unknown.display());
    let e = load_env(&write(&d, "zoo.cfg", &text), &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("{}:2: tickTime", unknown.display())),
        "{e}"
    );

    // server lines beside dynamicConfigFile: refused, as ZooKeeper refuses them
    let text = format!(
        "{base}server.2=127.0.0.1:2888:3888\ndynamicConfigFile={}\n",
        dynamic.display()
    );
    let p = write(&d, "zoo.cfg", &text);
    let e = load_env(&p, &[]).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}:7: server.2 must be in a separate dynamic config file",
            p.display()
        )),
        "{e}"
    );
    // a missing dynamic file names it
    let text = format!("{base}dynamicConfigFile={}/nope\n", d.display());
    let e = load_env(&write(&d, "zoo.cfg", &text), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope: cannot read"), "{e}");
}
