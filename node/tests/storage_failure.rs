//! A real full disk (issue 11, item 5): server 3's dataLogDir is a 2 MiB tmpfs. Writes fill it;
//! server 3 must stop with a non-zero exit and a message naming the log file and the error,
//! every write a client saw acknowledged must be on the servers that carry on, and those two
//! keep serving.
//!
//! Run twice: server 3 leading (started first, it wins the election with 1) and following
//! (started last, after 1 and 2 elected 2).
//!
//! Mounting needs root; without it the test says why and passes, except under CI=true (CI
//! runs as root), where it fails. Ports: 23401..23423 and 23441..23463 (this worktree's range).

use ensemble_client::{Client, ClientError};
use ensemble_proto::proto::{Acl, CreateMode, KeeperError};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ensemble");
struct Rig {
    base: u16,
    dir: PathBuf,
    mount: PathBuf,
    mounted: bool,
    /// Server 3, run in the foreground so that its exit status can be read.
    three: Option<Child>,
}

impl Rig {
    fn cfg(&self, i: u16) -> PathBuf {
        self.dir.join(format!("zoo{i}.cfg"))
    }

    fn pid(&self, i: u16) -> Option<i32> {
        let p = self.dir.join(format!("data_{i}/zookeeper_server.pid"));
        ensemble_node::daemon::running_pid(&p)?.parse().ok()
    }

    fn mode(&self, i: u16) -> Option<String> {
        let s = ensemble_node::daemon::ask("127.0.0.1", self.base + i, "srvr").ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_string)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(c) = self.three.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for i in 1..=2 {
            if let Some(pid) = self.pid(i) {
                // SAFETY: plain kill(2) of a process this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if self.mounted {
            let _ = Command::new("umount").arg(&self.mount).status();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Mount a 2 MiB tmpfs at `at`; `Err` says why not.
fn mount_tmpfs(at: &Path) -> Result<(), String> {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(at)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn setup(tag: &str, base: u16) -> Option<Rig> {
    let dir = std::env::temp_dir().join(format!("ens-fulldisk-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mount = dir.join("small");
    std::fs::create_dir_all(&mount).expect("dir");
    let mut rig = Rig {
        base,
        dir: dir.clone(),
        mount: mount.clone(),
        mounted: false,
        three: None,
    };
    if let Err(why) = mount_tmpfs(&mount) {
        let msg = format!("cannot mount a tmpfs at {}: {why}", mount.display());
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg} (CI=true: CI runs as root, so this is a failure)");
        }
        eprintln!("SKIPPED full-disk test: {msg}");
        return None;
    }
    rig.mounted = true;
    for i in 1..=3u16 {
        let data = dir.join(format!("data_{i}"));
        std::fs::create_dir_all(&data).expect("data");
        std::fs::write(data.join("myid"), format!("{i}\n")).expect("myid");
        let logs = if i == 3 {
            mount.clone()
        } else {
            dir.join(format!("logs_{i}"))
        };
        // trustEmptyDataDirs: the follower case forms a new ensemble of 1 and 2 before 3
        // starts (the default waits for every voter: node/README.md, "Disk loss")
        let mut cfg = format!(
            "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
             clientPortAddress=127.0.0.1\ndataLogDir={}\npreAllocSize=64\n4lw.commands.whitelist=*\n\
             ensemble.trustEmptyDataDirs=true\n",
            data.display(),
            rig.base + i,
            logs.display()
        );
        for s in 1..=3u16 {
            cfg += &format!(
                "server.{s}=127.0.0.1:{}:{}\n",
                rig.base + 10 + s,
                rig.base + 20 + s
            );
        }
        std::fs::write(rig.cfg(i), cfg).expect("cfg");
    }
    Some(rig)
}

async fn write(c: &Client, key: &str, data: &[u8]) -> Result<(), String> {
    match tokio::time::timeout(
        Duration::from_secs(5),
        c.create(key, data, Acl::open_unsafe(), CreateMode::Persistent),
    )
    .await
    {
        Ok(Ok(_)) | Ok(Err(ClientError::Keeper(KeeperError::NodeExists))) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_txn_log_disk_stops_the_leader_and_loses_nothing_acknowledged() {
    full_disk("leader", 23400, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_txn_log_disk_stops_a_follower_and_loses_nothing_acknowledged() {
    full_disk("follower", 23440, false).await;
}

fn start_daemon(rig: &Rig, i: u16) {
    let o = Command::new(BIN)
        .arg("start")
        .arg(rig.cfg(i))
        .output()
        .expect("start");
    assert!(
        o.status.success(),
        "start {i}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < Duration::from_secs(30), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn full_disk(tag: &str, base: u16, three_leads: bool) {
    let Some(mut rig) = setup(tag, base) else {
        return;
    };
    if !three_leads {
        start_daemon(&rig, 1);
        start_daemon(&rig, 2);
        wait_for("1 and 2 elect", || rig.mode(2).is_some()).await;
    }
    let log3 = std::fs::File::create(rig.dir.join("server3.log")).expect("log");
    rig.three = Some(
        Command::new(BIN)
            .arg("run")
            .arg(rig.cfg(3))
            .stdout(Stdio::null())
            .stderr(log3)
            .spawn()
            .expect("run 3"),
    );
    if three_leads {
        wait_for("server 3 listens", || {
            ensemble_node::daemon::ask("127.0.0.1", base + 3, "ruok").is_ok()
        })
        .await;
        start_daemon(&rig, 1);
        start_daemon(&rig, 2);
    }
    wait_for("no ensemble", || (1..=3).all(|i| rig.mode(i).is_some())).await;
    let want = if three_leads { "leader" } else { "follower" };
    assert_eq!(rig.mode(3).as_deref(), Some(want));

    let hosts = (1..=3)
        .map(|i| format!("127.0.0.1:{}", rig.base + i))
        .collect::<Vec<_>>()
        .join(",");
    let c = Client::connect(&hosts, Duration::from_secs(10))
        .await
        .expect("connect");
    // 8 KiB a txn: a 2 MiB log disk is full after a few hundred.
    let data = vec![0x5a; 8 * 1024];
    let mut acked = Vec::new();
    let mut exit = None;
    let mut after_exit = 0;
    for n in 0..2000 {
        let key = format!("/k{n}");
        if write(&c, &key, &data).await.is_ok() {
            acked.push(key);
        }
        if exit.is_none()
            && let Some(status) = rig.three.as_mut().and_then(|c| c.try_wait().ok().flatten())
        {
            exit = Some(status);
        }
        if exit.is_some() {
            after_exit += 1;
            if after_exit == 20 {
                break;
            }
        }
    }
    let log = std::fs::read_to_string(rig.dir.join("server3.log")).unwrap_or_default();
    let status = exit.unwrap_or_else(|| panic!("server 3 never stopped; its log:\n{log}"));
    assert!(!status.success(), "server 3 exited with {status}");
    let last = log.lines().last().unwrap_or_default();
    let log_dir = rig.mount.join("version-2");
    assert!(
        last.starts_with("ensemble: ")
            && last.contains(&format!("{}/log.", log_dir.display()))
            && last.contains("No space left on device"),
        "server 3's last words should name the log file and the error:\n{last}"
    );
    assert!(acked.len() > 50, "only {} writes acknowledged", acked.len());
    eprintln!(
        "{tag}: server 3 stopped ({status}) with {} writes acknowledged: {last}",
        acked.len()
    );

    // The others carry on: one of them leads, writes go through, every acknowledged write is
    // on both.
    let t0 = Instant::now();
    loop {
        let modes: Vec<Option<String>> = (1..=2).map(|i| rig.mode(i)).collect();
        if modes.iter().flatten().any(|m| m == "leader") && modes.iter().all(Option::is_some) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "1 and 2 did not settle: {modes:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 1..=2u16 {
        let c = Client::connect(
            &format!("127.0.0.1:{}", rig.base + i),
            Duration::from_secs(10),
        )
        .await
        .expect("connect");
        write(&c, &format!("/after{i}"), b"x")
            .await
            .expect("a write after server 3 stopped");
        c.sync("/").await.expect("sync");
        for key in &acked {
            let got = c.get_data(key, false).await;
            assert!(
                got.as_ref().is_ok_and(|(d, _)| d.len() == data.len()),
                "server {i}: acknowledged {key} is missing: {got:?}"
            );
        }
    }
}
