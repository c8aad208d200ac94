//! Memory and recovery at scale: a fresh ensemble loaded with N znodes, its resident memory, and
//! the time a killed-and-restarted follower takes to serve again with that tree.

use crate::cluster::{Cluster, Launch, Sentinel, System};
use crate::{Args, load, mib, procfs};
use anyhow::{Context, Result, bail};
use ensemble_client::{Client, ClientError, ConnectOptions};
use ensemble_proto::proto::{Acl, CreateMode, KeeperError};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROOT: &str = "/scale";
const PER_BUCKET: usize = 1000;

fn node_path(i: usize) -> String {
    format!("{ROOT}/b{:04}/n{:03}", i / PER_BUCKET, i % PER_BUCKET)
}

#[derive(Clone, Debug)]
pub struct ScaleResult {
    pub znodes: usize,
    pub load_secs: f64,
    /// Summed VmRSS of the three servers with the tree loaded.
    pub rss: u64,
    /// Bytes under the three data directories.
    pub disk: u64,
    /// Per restart: (seconds until `srvr` shows a Mode, seconds until a getData succeeds).
    pub restarts: Vec<(f64, f64)>,
    /// VmRSS of the restarted follower once it serves again.
    pub restarted_rss: u64,
}

impl ScaleResult {
    /// The median time to serve again (srvr Mode and a successful getData), seconds.
    pub fn recovery_secs(&self) -> f64 {
        let mut v: Vec<f64> = self.restarts.iter().map(|r| r.1).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }
    pub fn mode_secs(&self) -> f64 {
        let mut v: Vec<f64> = self.restarts.iter().map(|r| r.0).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

async fn create_ok(c: &Client, path: &str, data: &[u8]) -> Result<()> {
    match c
        .create(path, data, Acl::open_unsafe(), CreateMode::Persistent)
        .await
    {
        Ok(_) | Err(ClientError::Keeper(KeeperError::NodeExists)) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("create {path}: {e}")),
    }
}

async fn load_tree(clients: &[Client], n: usize, args: &Args) -> Result<()> {
    create_ok(&clients[0], ROOT, b"").await?;
    let buckets = n.div_ceil(PER_BUCKET);
    let mut parents = FuturesUnordered::new();
    for b in 0..buckets {
        let c = clients[b % clients.len()].clone();
        parents.push(async move { create_ok(&c, &format!("{ROOT}/b{b:04}"), b"").await });
    }
    while let Some(r) = parents.next().await {
        r?;
    }
    let value = Arc::new(vec![b'z'; args.value_size]);
    let t0 = Instant::now();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let sessions = clients.len();
    for (s, c) in clients.iter().enumerate() {
        let (c, value, done) = (c.clone(), value.clone(), done.clone());
        let inflight = args.inflight;
        tasks.push(tokio::spawn(async move {
            let mut next = s;
            let mut pending = FuturesUnordered::new();
            loop {
                while next < n && pending.len() < inflight {
                    let (c, v, path) = (c.clone(), value.clone(), node_path(next));
                    pending.push(async move { create_ok(&c, &path, &v).await });
                    next += sessions;
                }
                match pending.next().await {
                    Some(r) => {
                        r?;
                        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    None => return anyhow::Ok(()),
                }
            }
        }));
    }
    let all = futures::future::try_join_all(tasks);
    tokio::pin!(all);
    let limit = Duration::from_secs(args.scale_timeout);
    loop {
        tokio::select! {
            r = &mut all => {
                for t in r.context("a loader task panicked")? { t?; }
                return Ok(());
            }
            _ = tokio::time::sleep(Duration::from_secs(15)) => {
                let d = done.load(std::sync::atomic::Ordering::Relaxed);
                println!("   ... {d} of {n} znodes ({:.0}/s), load average {}",
                    d as f64 / t0.elapsed().as_secs_f64(), procfs::loadavg());
                if t0.elapsed() > limit {
                    bail!("loading {n} znodes took longer than --scale-timeout {limit:?}");
                }
            }
        }
    }
}

/// Kill a follower (SIGKILL), restart it, time until it serves: `srvr` answers with a Mode and
/// a fresh session on it reads a znode.
async fn restart_once(cluster: &mut Cluster, probe: &str) -> Result<(f64, f64, usize)> {
    let f =
        tokio::task::block_in_place(|| cluster.a_follower()).context("no follower to restart")?;
    tokio::task::block_in_place(|| cluster.kill_node(f, libc::SIGKILL, Duration::from_secs(30)))?;
    let limit = Duration::from_secs(600);
    let t0 = Instant::now();
    tokio::task::block_in_place(|| cluster.start_node(f))?;
    let mode_at = loop {
        if tokio::task::block_in_place(|| cluster.mode(f)).is_some() {
            break t0.elapsed();
        }
        if t0.elapsed() > limit {
            bail!("the restarted node gave no Mode in {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let addr = cluster.addr(f);
    let serve_at = loop {
        let mut opts = ConnectOptions::new(&addr, Duration::from_secs(30));
        opts.connect_timeout = Some(Duration::from_secs(5));
        if let Ok(c) = Client::connect_with(opts).await {
            let ok = c.get_data(probe, false).await.is_ok();
            let at = t0.elapsed();
            let _ = tokio::time::timeout(Duration::from_secs(5), c.close()).await;
            if ok {
                break at;
            }
        }
        if t0.elapsed() > limit {
            bail!("the restarted node served no getData in {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    Ok((mode_at.as_secs_f64(), serve_at.as_secs_f64(), f))
}

pub async fn run(
    args: &Args,
    system: System,
    root: &Path,
    base: u16,
    launch: &Launch,
    sentinel: Arc<Sentinel>,
) -> Result<ScaleResult> {
    let n = args.scale;
    crate::warn_if_loaded();
    println!(
        "\n== {}: memory and recovery with {n} znodes of {} bytes; load average {}",
        system.name(),
        args.value_size,
        procfs::loadavg()
    );
    let mut cluster = tokio::task::block_in_place(|| {
        Cluster::start(
            system,
            root,
            base,
            launch,
            sentinel,
            Duration::from_secs(args.startup_timeout),
        )
    })?;
    let addrs: Vec<String> = (0..3).map(|i| cluster.addr(i)).collect();
    let clients = load::connect_sessions(&addrs, args.sessions, None).await?;
    let t0 = Instant::now();
    load_tree(&clients, n, args).await?;
    let load_secs = t0.elapsed().as_secs_f64();
    println!(
        "   loaded {n} znodes in {load_secs:.1} s ({:.0}/s)",
        n as f64 / load_secs
    );
    for c in &clients {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.close()).await;
    }
    drop(clients);
    // let the servers settle (session closes, any snapshot in progress) before reading memory
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_per_node: Vec<u64> = cluster
        .pids()
        .iter()
        .map(|p| procfs::rss(*p).unwrap_or(0))
        .collect();
    let rss: u64 = rss_per_node.iter().sum();
    let disk = cluster
        .nodes
        .iter()
        .map(|nd| dir_size(&nd.dir.join("data")))
        .sum();
    println!(
        "   RSS {:.0} MiB ({} per node), data on disk {:.0} MiB",
        mib(rss),
        rss_per_node
            .iter()
            .map(|r| format!("{:.0}", mib(*r)))
            .collect::<Vec<_>>()
            .join(" / "),
        mib(disk)
    );
    let probe = node_path(n.saturating_sub(1));
    let mut restarts = Vec::new();
    let mut restarted_rss = 0;
    for k in 0..args.recovery_runs.max(1) {
        let (mode, serve, f) = restart_once(&mut cluster, &probe).await?;
        restarted_rss = cluster.nodes[f].pid.and_then(procfs::rss).unwrap_or(0);
        println!(
            "   restart {}: follower {} answered srvr with a Mode after {mode:.2} s, \
             served getData after {serve:.2} s (RSS then {:.0} MiB)",
            k + 1,
            cluster.nodes[f].id,
            mib(restarted_rss)
        );
        restarts.push((mode, serve));
        tokio::task::block_in_place(|| cluster.wait_serving(Duration::from_secs(120)))?;
    }
    tokio::task::block_in_place(|| drop(cluster));
    Ok(ScaleResult {
        znodes: n,
        load_secs,
        rss,
        disk,
        restarts,
        restarted_rss,
    })
}
