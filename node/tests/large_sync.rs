//! Large-state sync on a real ensemble: a learner with an empty data dir joins three voters
//! whose tree is ~300 MiB, and gets it by SNAP in frames of `syncPartSize` (4 MiB here),
//! since the leader's history (recovered from its snapshot) does not reach back to zxid 0.
//! The leader streams the SNAP from its newest snapshot file, then the txns after it.
//! The learner then serves the whole tree.
//!
//! Ports: base 19600 (client base+i, quorum base+10+i, election base+20+i), below Linux's
//! ephemeral range.

use ensemble_client::{Client, ClientError};
use ensemble_proto::proto::{Acl, CreateMode, KeeperError};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ensemble");
const BASE: u16 = 19600;
/// Znodes of `NODE_BYTES` each: ~300 MiB in all (jute.maxbuffer is 1 MiB). The benchmark
/// runs the same test larger: `ENSEMBLE_LARGE_SYNC_NODES=4300` is ~4 GiB (BENCHMARKS.md).
const NODES: usize = 300;
const NODE_BYTES: usize = 1_000_000;

fn nodes() -> usize {
    std::env::var("ENSEMBLE_LARGE_SYNC_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(NODES)
}

struct Ensemble {
    dir: PathBuf,
}

impl Ensemble {
    /// Three servers on ports from `base`, for a tree of `nodes` znodes, with `extra` lines
    /// in each zoo.cfg.
    fn new(base: u16, nodes: usize, extra: &str) -> Ensemble {
        let dir =
            std::env::temp_dir().join(format!("ens-large-sync-{}-{base}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for i in 1..=3u16 {
            let data = dir.join(format!("data_{i}"));
            std::fs::create_dir_all(&data).unwrap();
            std::fs::write(data.join("myid"), format!("{i}\n")).unwrap();
            // initLimit leaves the SNAP's transfer and load 20 s; snapCount makes the leader's
            // history start at a snapshot after a restart. A quarter of the znodes, not a
            // fixed count: each snapshot holds the whole tree so far, so the disk a voter
            // needs grows with the square of the snapshots taken (a fixed 50 filled 23 GB of
            // disk at 2,000 znodes), and with about four it stays under four trees.
            // trustEmptyDataDirs: two new servers form the ensemble while the third waits
            // empty (the default waits for every voter: node/README.md, "Disk loss").
            let mut cfg = format!(
                "tickTime=500\ninitLimit=40\nsyncLimit={}\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
                 4lw.commands.whitelist=*\npreAllocSize=1024\nsnapCount={}\n\
                 syncPartSize=4194304\nensemble.trustEmptyDataDirs=true\n{extra}",
                // 5 s; 20 s for the benchmark's larger trees, whose periodic snapshots keep
                // the disk of this shared 2-core machine busy for long (a 2 GB run at load 16
                // lost its quorum mid-write with 5 s)
                if nodes > NODES { 40 } else { 10 },
                data.display(),
                base + i,
                (nodes / 4).max(50),
            );
            for s in 1..=3u16 {
                cfg += &format!("server.{s}=localhost:{}:{}\n", base + 10 + s, base + 20 + s);
            }
            std::fs::write(dir.join(format!("zoo{i}.cfg")), cfg).unwrap();
        }
        Ensemble { dir }
    }

    fn ens(&self, what: &str, i: u16) -> Output {
        Command::new(BIN)
            .arg(what)
            .arg(self.dir.join(format!("zoo{i}.cfg")))
            .output()
            .unwrap()
    }

    fn start(&self, i: u16) {
        let o = self.ens("start", i);
        assert!(o.status.success(), "start {i}: {o:?}");
    }

    fn stop(&self, i: u16) {
        let o = self.ens("stop", i);
        assert!(o.status.success(), "stop {i}: {o:?}");
    }

    fn mode(&self, i: u16) -> Option<String> {
        let o = self.ens("status", i);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(str::to_string)
    }

    /// Wait until each of `ids` is leader or follower, with one leader.
    fn wait_ready(&self, ids: &[u16], limit: Duration) {
        let t0 = Instant::now();
        loop {
            let modes: Vec<Option<String>> = ids.iter().map(|i| self.mode(*i)).collect();
            let leaders = modes
                .iter()
                .filter(|m| m.as_deref() == Some("leader"))
                .count();
            if leaders == 1 && modes.iter().all(Option::is_some) {
                return;
            }
            assert!(t0.elapsed() < limit, "not ready after {limit:?}: {modes:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self, i: u16) -> String {
        std::fs::read_to_string(self.dir.join(format!("data_{i}/zookeeper.out")))
            .unwrap_or_default()
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for i in 1..=3 {
            let _ = self.ens("stop", i);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn payload(i: usize) -> Vec<u8> {
    let mut v = vec![(i % 251) as u8; NODE_BYTES];
    v[..8].copy_from_slice(&(i as u64).to_be_bytes());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_syncs_300_mib_by_snap_in_frames() {
    sync_by_snap(BASE, nodes(), "", "").await;
}

/// The leader's snapshot files are zstd-compressed: the SNAP streams from one all the same
/// (decompressed as it goes, its checksum checked before the last bytes), and the learner
/// writes its own compressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_snapshot_file_streams_as_the_snap() {
    sync_by_snap(BASE + 50, 40, "snapshot.compression.method=zstd\n", ".zst").await;
}

/// Servers 1 and 2 write `nodes` znodes and restart; server 3 joins empty and must get the
/// tree by a SNAP streamed from the leader's snapshot file; its own snapshot file ends in
/// `ext` afterwards.
async fn sync_by_snap(base: u16, nodes: usize, extra: &str, ext: &str) {
    let e = Ensemble::new(base, nodes, extra);
    e.start(1);
    e.start(2);
    e.wait_ready(&[1, 2], Duration::from_secs(30));
    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", base + 1, base + 2);
    let c = Arc::new(
        Client::connect(&hosts, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    c.create("/big", b"", Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    // A few writes in flight at a time: the test is about the sync, not the write path.
    let mut tasks = Vec::new();
    for lane in 0..4 {
        let c = Arc::clone(&c);
        tasks.push(tokio::spawn(async move {
            for i in (lane..nodes).step_by(4) {
                // A connection lost under the load of a big tree's snapshots (the client
                // gives up on a server silent for 2/3 of the session timeout) is retried:
                // the create may have run, and then it exists.
                let mut tries = 0;
                loop {
                    let r = c
                        .create(
                            &format!("/big/n{i:03}"),
                            &payload(i),
                            Acl::open_unsafe(),
                            CreateMode::Persistent,
                        )
                        .await;
                    match r {
                        Ok(_) => break,
                        Err(ClientError::Keeper(KeeperError::NodeExists)) if tries > 0 => break,
                        Err(ClientError::ConnectionLoss) if tries < 10 => {
                            tries += 1;
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        Err(e) => panic!("create /big/n{i:03}: {e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(c);
    // Restarted, the voters' history starts at their newest snapshot: zxid 0 (the empty
    // learner's) is out of DIFF's reach.
    e.stop(1);
    e.stop(2);
    e.start(1);
    e.start(2);
    e.wait_ready(&[1, 2], Duration::from_secs(60));
    let t0 = Instant::now();
    e.start(3);
    e.wait_ready(&[1, 2, 3], Duration::from_secs(120 + nodes as u64 / 10));
    eprintln!(
        "server 3 synced {} MB by SNAP in {:?}",
        nodes * NODE_BYTES / 1_000_000,
        t0.elapsed()
    );
    let log = e.log(3);
    let line = log
        .lines()
        .find(|l| l.contains("snapshot from the leader at"))
        .unwrap_or_else(|| panic!("server 3 took no SNAP:\n{log}"));
    let bytes: u64 = line
        .rsplit('(')
        .next()
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no size in {line}"));
    // The leader streams its newest snapshot file (taken at a quarter, half, ... of the
    // writes, or at the restart) and the txns after it: the SNAP holds at least a quarter of
    // the tree, and the rest comes as txns.
    assert!(
        bytes > (nodes * NODE_BYTES / 4) as u64,
        "the SNAP holds the tree: {line}"
    );
    let streamed: Vec<String> = (1..=2u16)
        .flat_map(|i| {
            e.log(i)
                .lines()
                .filter(|l| l.contains("streaming the SNAP at"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        !streamed.is_empty(),
        "no leader streamed the SNAP from its snapshot file"
    );
    assert!(
        streamed.iter().all(|l| l.contains(&format!("{ext} ("))),
        "the SNAP's file is not a `{ext}` one: {streamed:?}"
    );
    if !ext.is_empty() {
        let mine = std::fs::read_dir(e.dir.join("data_3/version-2"))
            .unwrap()
            .filter_map(|f| f.ok()?.file_name().into_string().ok())
            .any(|n| n.starts_with("snapshot.") && n.ends_with(ext));
        assert!(mine, "server 3 wrote no `{ext}` snapshot of the SNAP");
    }
    // Server 3 serves the whole tree.
    let c3 = Client::connect(&format!("127.0.0.1:{}", base + 3), Duration::from_secs(10))
        .await
        .unwrap();
    let children = c3.get_children("/big", false).await.unwrap();
    assert_eq!(children.len(), nodes);
    for i in [0, nodes / 2, nodes - 1] {
        let (data, _) = c3.get_data(&format!("/big/n{i:03}"), false).await.unwrap();
        assert!(data == payload(i), "/big/n{i:03} differs on server 3");
    }
}
