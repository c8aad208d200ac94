//! What `ensemble` says when something is wrong: each error names its cause (the path, the
//! setting and the config line it came from), once; `status` says what a server is doing; the
//! zkServer.sh habits (`restart`, `start-foreground`, `$ZOOCFGDIR`/`$ZOOCFG`) work.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ensemble");

/// A scratch directory, removed when the test ends.
struct Tmp(PathBuf);

impl std::ops::Deref for Tmp {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmpdir(tag: &str) -> Tmp {
    let d = std::env::temp_dir().join(format!("ensemble-errors-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    Tmp(d)
}

/// A port nobody listens on (bound and released).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `ensemble run` of a standalone config written by `standalone` (`name`, `body`), again on a
/// new port while the one drawn was taken meanwhile: another test's connection may have been
/// given it as its ephemeral port, and these tests are about what comes after the bind.
fn run_standalone(dir: &Path, name: &str, body: &str) -> Output {
    let mut last = String::new();
    for _ in 0..40 {
        let cfg = standalone(dir, name, body);
        let o = ens(&["run", cfg.to_str().expect("utf-8 path")], dir, &[]);
        last = String::from_utf8_lossy(&o.stderr).into_owned();
        if !last.contains("Address already in use") {
            return o;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    panic!("no free client port in 40 tries, the last said: {last}");
}

fn ens(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(cwd)
        .env_remove("ZOOCFGDIR")
        .env_remove("ZOOCFG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run ensemble")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn standalone(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    let text = format!("tickTime=2000\nclientPort={}\n{body}", free_port());
    std::fs::write(&p, text).expect("write cfg");
    p
}

/// The os error of a failed directory appears once, not repeated by the error chain.
fn once(err: &str, what: &str) {
    assert_eq!(
        err.matches(what).count(),
        1,
        "'{what}' not exactly once in: {err}"
    );
}

#[test]
fn data_dir_that_is_a_file_names_setting_and_line() {
    let d = tmpdir("file");
    std::fs::write(d.join("afile"), "x").unwrap();
    let cfg = standalone(
        &d,
        "z.cfg",
        &format!("dataDir={}\n", d.join("afile").display()),
    );
    for cmd in ["run", "start-foreground", "start"] {
        let o = ens(&[cmd, cfg.to_str().unwrap()], &d, &[]);
        let (out, err) = text(&o);
        assert!(!o.status.success(), "{cmd}: {out}{err}");
        assert!(err.contains("z.cfg:3: dataDir="), "{cmd}: {err}");
        assert!(err.contains("is a file, not a directory"), "{cmd}: {err}");
        assert!(!err.contains("server stopped"), "{cmd}: {err}");
        once(&err, "is a file");
        if cmd == "start" {
            assert!(out.contains("FAILED TO START"), "{out}");
        }
    }
}

#[test]
fn data_log_dir_that_cannot_be_created_names_setting_and_line() {
    let d = tmpdir("log");
    std::fs::write(d.join("afile"), "x").unwrap();
    let cfg = standalone(
        &d,
        "z.cfg",
        &format!(
            "dataDir={}\ndataLogDir={}\n",
            d.join("data").display(),
            d.join("afile/log").display()
        ),
    );
    let o = ens(&["run", cfg.to_str().unwrap()], &d, &[]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("z.cfg:4: dataLogDir="), "{err}");
    assert!(
        err.contains("cannot create") && err.contains("afile/log"),
        "{err}"
    );
    assert!(err.contains("a file is in the way"), "{err}");
    assert!(!err.contains("server stopped"), "{err}");
    once(&err, "Not a directory");
}

#[test]
fn missing_data_dir_in_cluster_mode_is_not_called_a_missing_myid() {
    let d = tmpdir("nodir");
    let cfg = d.join("zoo1.cfg");
    let (a, b, c, e) = (free_port(), free_port(), free_port(), free_port());
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={a}\n\
             server.1=127.0.0.1:{b}:{c}\nserver.2=127.0.0.1:{e}:{}\n",
            d.join("nowhere").display(),
            free_port()
        ),
    )
    .unwrap();
    let o = ens(&["start", cfg.to_str().unwrap()], &d, &[]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("zoo1.cfg:4: dataDir="), "{err}");
    assert!(err.contains("the directory does not exist"), "{err}");
    assert!(!err.contains("is missing"), "{err}");
}

#[test]
fn status_without_a_running_server_ignores_whoever_holds_the_port() {
    let d = tmpdir("status");
    // something else answers on the client port
    let hog = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hog.local_addr().unwrap().port();
    let cfg = d.join("z.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\n",
            d.join("data").display()
        ),
    )
    .unwrap();
    let o = ens(&["status", cfg.to_str().unwrap()], &d, &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("It is not running"), "{err}");
    assert!(err.contains("zookeeper_server.pid"), "{err}");
    assert!(!out.contains("Mode:"), "{out}");
    drop(hog);
}

#[test]
fn config_resolution_follows_zoocfgdir_and_zoocfg() {
    let d = tmpdir("resolve");
    let conf = d.join("etc");
    std::fs::create_dir_all(&conf).unwrap();
    let body = format!("dataDir={}\n", d.join("data").display());
    standalone(&conf, "zoo.cfg", &body);
    standalone(&conf, "other.cfg", &body);
    let dir = conf.to_str().unwrap();

    // no argument, no conf/zoo.cfg: say which file was looked for and why
    let o = ens(&["status"], &d, &[]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("conf/zoo.cfg does not exist"), "{err}");
    assert!(err.contains("$ZOOCFGDIR"), "{err}");

    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], PathBuf);
    let cases: [Case; 4] = [
        (&["status"], &[("ZOOCFGDIR", dir)], conf.join("zoo.cfg")),
        (
            &["status"],
            &[("ZOOCFGDIR", dir), ("ZOOCFG", "other.cfg")],
            conf.join("other.cfg"),
        ),
        (
            &["status", "other.cfg"],
            &[("ZOOCFGDIR", dir)],
            conf.join("other.cfg"),
        ),
        // zkServer.sh --config DIR wins over $ZOOCFGDIR
        (
            &["--config", dir, "status"],
            &[("ZOOCFGDIR", "/nonexistent")],
            conf.join("zoo.cfg"),
        ),
    ];
    for (args, env, want) in cases {
        let o = ens(args, &d, env);
        let (out, err) = text(&o);
        assert!(
            out.starts_with(&format!("Using config: {}\n", want.display())),
            "{args:?} {env:?}: {out}{err}"
        );
    }
}

/// A voter alone is electing: `status` says so (not "probably not running"); `restart`
/// stops and starts it again on the same ports.
#[test]
fn status_of_a_lone_voter_says_electing_and_restart_works() {
    let d = tmpdir("electing");
    let data = d.join("data_1");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("myid"), "1\n").unwrap();
    // ports of this test's own range (23600+), one voter of three up
    let cfg = d.join("zoo1.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort=23601\n\
             server.1=127.0.0.1:23611:23621\nserver.2=127.0.0.1:23612:23622\n\
             server.3=127.0.0.1:23613:23623\n",
            data.display()
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let o = ens(&["start", c], &d, &[]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = ens(&["status", c], &d, &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("is running and electing a leader"), "{err}");
    assert!(err.contains("2 of the 3 voters"), "{err}");
    assert!(!err.contains("probably not running"), "{err}");

    let pid = |data: &Path| std::fs::read_to_string(data.join("zookeeper_server.pid")).ok();
    let before = pid(&data);
    let o = ens(&["restart", c], &d, &[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("STOPPED") && out.contains("STARTED"), "{out}");
    assert_ne!(pid(&data), before, "restart kept the old process");

    let o = ens(&["stop", c], &d, &[]);
    assert!(o.status.success(), "{:?}", text(&o));
    let t0 = Instant::now();
    while pid(&data).is_some() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn cli_help_prints_usage_without_connecting() {
    let o = Command::new(BIN)
        .args(["cli", "--help"])
        .output()
        .expect("run");
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.starts_with("usage: ensemble cli"), "{out}");
    assert!(out.contains("\tls [-s] [-w] [-R] path"), "{out}");
    assert!(!out.contains("Connecting to"), "{out}");
}

#[test]
fn srvr_reports_a_build_date() {
    let v = ensemble_node::fourlw::version_string();
    let date = v.split(", built on ").nth(1).expect("built on");
    // YYYY-MM-DD HH:MM UTC, as ZooKeeper 3.8 prints it
    let b = date.as_bytes();
    assert_eq!(b.len(), 20, "{date}");
    for (i, c) in b.iter().enumerate() {
        match i {
            4 | 7 => assert_eq!(*c, b'-', "{date}"),
            10 => assert_eq!(*c, b' ', "{date}"),
            13 => assert_eq!(*c, b':', "{date}"),
            16 => assert_eq!(&date[16..], " UTC"),
            17..=19 => {}
            _ => assert!(c.is_ascii_digit(), "{date}"),
        }
    }
    let year: u32 = date[..4].parse().unwrap();
    if std::env::var_os("SOURCE_DATE_EPOCH").is_none() {
        assert!(year >= 2025, "a build date from the clock: {date}");
    }
}

/// The example configs of `conf/` (the README's quick start) are valid and are the seed's
/// cluster: three voters and an observer, client ports 2181-2184.
#[test]
fn example_configs_in_conf_are_the_seed_cluster() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf");
    let d = tmpdir("conf");
    for i in 0..=4u64 {
        let name = if i == 0 {
            "zoo.cfg".to_string()
        } else {
            format!("zoo{i}.cfg")
        };
        let text = std::fs::read_to_string(conf.join(&name)).expect("conf/ example");
        // the files' own dataDir is under /tmp/ensemble; parse them against a private one
        let data = d.join(format!("data_{i}"));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("myid"), format!("{i}\n")).unwrap();
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("dataDir=") {
                    format!("dataDir={}\n", data.display())
                } else if l.starts_with("dataLogDir=") {
                    format!("dataLogDir={}\n", data.join("logs").display())
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let cfg = ensemble_node::config::parse(&conf.join(&name), &text)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(cfg.warnings.is_empty(), "{name}: {:?}", cfg.warnings);
        if i == 0 {
            assert!(cfg.standalone, "{name}");
            assert_eq!(cfg.client_port, 2181);
            continue;
        }
        assert_eq!(cfg.client_port, 2180 + i as u16, "{name}");
        assert_eq!(cfg.core.my_id, i, "{name}");
        assert_eq!(cfg.servers.len(), 4, "{name}");
        let observers = cfg
            .servers
            .values()
            .filter(|s| s.kind == ensemble_core::LearnerType::Observer)
            .count();
        assert_eq!(observers, 1, "{name}");
    }
}

/// A file in the way of recovery names itself and the setting (and line) of its directory:
/// the txn log under dataLogDir, the epochs under dataDir.
#[test]
fn recovery_errors_name_the_setting_of_their_directory() {
    let d = tmpdir("recover");
    let (data, log) = (d.join("data"), d.join("log"));
    // On loopback, where `free_port` found the port free: after the other suites, thousands of
    // loopback connections in TIME-WAIT can keep the wildcard address from binding it.
    let body = format!(
        "dataDir={}\ndataLogDir={}\nclientPortAddress=127.0.0.1\n",
        data.display(),
        log.display()
    );
    std::fs::create_dir_all(log.join("version-2")).unwrap();
    std::fs::write(log.join("version-2/log.100000001"), b"not a txn log at all").unwrap();
    let o = run_standalone(&d, "z.cfg", &body);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("server failed to start ("), "{err}");
    assert!(err.contains("z.cfg:4: dataLogDir="), "{err}");
    assert!(err.contains("log.100000001"), "{err}");
    assert!(!err.contains("dataDir="), "{err}");

    std::fs::remove_file(log.join("version-2/log.100000001")).unwrap();
    std::fs::create_dir_all(data.join("version-2")).unwrap();
    std::fs::write(data.join("version-2/currentEpoch"), b"garbage").unwrap();
    let o = run_standalone(&d, "z.cfg", &body);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("server failed to start ("), "{err}");
    assert!(err.contains("z.cfg:3: dataDir="), "{err}");
    assert!(err.contains("currentEpoch"), "{err}");
}

/// A running server whose whitelist leaves out `srvr`: `status` says why it cannot tell the
/// mode instead of calling the server not running. (Port 23641, this test's own.)
#[test]
fn status_when_srvr_is_not_whitelisted_says_so() {
    let d = tmpdir("whitelist");
    let cfg = d.join("z.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort=23641\n4lw.commands.whitelist=ruok\n",
            d.join("data").display()
        ),
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let o = ens(&["start", c], &d, &[]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = ens(&["status", c], &d, &[]);
    let (out, err) = text(&o);
    let _ = ens(&["stop", c], &d, &[]);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains("srvr is not in its 4lw.commands.whitelist"),
        "{err}"
    );
    assert!(!err.contains("not running"), "{err}");
}
