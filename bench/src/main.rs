//! `ensemble-bench`: a 3-node Ensemble and a 3-node Apache ZooKeeper 3.8, one after the other on
//! this machine, driven by the same pipelined async Rust client with the same settings, and a
//! side-by-side table with the ratios against issue 5's targets. See BENCHMARKS.md.

mod cluster;
mod load;
mod procfs;
mod report;
mod scale;
mod sessions;

use anyhow::{Context, Result, bail};
use clap::Parser;
use cluster::{Cluster, Launch, Sentinel, System};
use load::{LoadSpec, Workload};
use report::{Measured, Report};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "ensemble-bench",
    version,
    about = "Ensemble vs Apache ZooKeeper 3.8: same machine, same client, one run"
)]
pub struct Args {
    /// Measured seconds per workload.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured seconds of load before each workload's measurement.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Seconds of warm-up load over all workloads after each ensemble starts, before any
    /// measurement (the JVM's JIT needs it; Ensemble gets the same).
    #[arg(long, default_value_t = 30.0)]
    jvm_warmup: f64,
    /// Client sessions, spread round-robin over the three servers.
    #[arg(long, default_value_t = 12)]
    sessions: usize,
    /// Requests in flight per session.
    #[arg(long, default_value_t = 50)]
    inflight: usize,
    /// Bytes per value (setData and create).
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Znodes the reads and writes pick from at random.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Workloads to run, comma-separated: write,read,mixed,create.
    #[arg(long, default_value = "write,read,mixed,create")]
    workloads: String,
    /// Rounds: each round runs every system once, in turn (E, Z, E, Z, ...), so a change in
    /// the machine's load hits both; the table shows each metric's median over the rounds.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Systems to run, comma-separated: ensemble,zookeeper.
    #[arg(long, default_value = "ensemble,zookeeper")]
    systems: String,
    /// Znodes (of --value-size bytes) for the memory-and-recovery test; 0 skips it.
    #[arg(long, default_value_t = 1_000_000)]
    scale: usize,
    /// Restarts measured in the recovery test (the median is reported).
    #[arg(long, default_value_t = 3)]
    recovery_runs: usize,
    /// Give up on loading the --scale tree after this many seconds.
    #[arg(long, default_value_t = 1800)]
    scale_timeout: u64,
    /// Ports: Ensemble uses BASE+1..3 (clients), BASE+101..103 (quorum), BASE+201..203
    /// (election); ZooKeeper the same from BASE+10.
    #[arg(long, default_value_t = 37200)]
    port_base: u16,
    /// Working directory for configs, data and logs (default: a fresh one under $TMPDIR).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the working directory (data and server logs) afterwards.
    #[arg(long)]
    keep: bool,
    /// The Ensemble server binary (default: `ensemble` beside this binary, i.e. target/release).
    #[arg(long)]
    ensemble_bin: Option<PathBuf>,
    /// ZooKeeper's Java classpath (default: the Debian package's jars in /usr/share/java).
    #[arg(long)]
    zk_classpath: Option<String>,
    /// -Xmx of each ZooKeeper JVM in MiB (zkEnv.sh's default ZK_SERVER_HEAP).
    #[arg(long, default_value_t = 1000)]
    zk_heap_mb: u32,
    /// Run each Ensemble node under this command (e.g. 'valgrind --tool=callgrind
    /// --callgrind-out-file=/tmp/cg.%p'), as `CMD... ensemble run CONFIG`; for profiling only.
    #[arg(long)]
    ensemble_wrap: Option<String>,
    /// Run all servers as children in this program's session (Ensemble as `ensemble run`)
    /// rather than each in its own session (`ensemble start`; ZooKeeper after setsid).
    #[arg(long)]
    same_session: bool,
    /// Sample the servers with `perf record -e cpu-clock -g` during each measured workload,
    /// writing DIR/<system>-<workload>.perf.data.
    #[arg(long)]
    perf: Option<PathBuf>,
    /// Client runtime worker threads (the client shares the machine with the servers).
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Issue 16's scale run instead of everything else: this many concurrent sessions (connect
    /// rate, RSS and ping CPU, a reconnect storm after a leader kill, expiry afterwards, watches
    /// fired). See BENCHMARKS.md, "Sessions at scale". 0: not this mode.
    #[arg(long, default_value_t = 0)]
    session_scale: usize,
    /// In the --session-scale run: znodes every session watches (sessions × this registrations).
    #[arg(long, default_value_t = 10)]
    watch_paths: usize,
    /// In the --session-scale run: session timeout (ms) the clients ask for.
    #[arg(long, default_value_t = 15000)]
    session_timeout_ms: u64,
    /// In the --session-scale run: seconds of idle pinging measured.
    #[arg(long, default_value_t = 60)]
    ping_secs: u64,
    /// In the --session-scale run: silent sessions checked for expiry (and as many pinging ones).
    #[arg(long, default_value_t = 500)]
    expiry_sample: usize,
    /// Serve and drive the load over TLS (secureClientPort, NettyServerCnxnFactory for
    /// ZooKeeper), with the stores in this directory as `scripts/bench.sh tls` makes them
    /// (interop/harness/tls.sh: keystore.jks, truststore.jks, ca_cert.pem, client_*.pem).
    #[arg(long)]
    tls: Option<PathBuf>,
    /// Run ZooKeeper on NettyServerCnxnFactory over plaintext too (its default is NIO; TLS
    /// needs netty), so that a plaintext run and a --tls run differ in TLS only.
    #[arg(long)]
    zk_netty: bool,
    /// Seconds a cluster may take to start and elect a leader.
    #[arg(long, default_value_t = 120)]
    startup_timeout: u64,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn parse_list<T>(s: &str, f: impl Fn(&str) -> Option<T>, what: &str) -> Result<Vec<T>> {
    s.split(',')
        .map(|x| x.trim())
        .filter(|x| !x.is_empty())
        .map(|x| f(x).with_context(|| format!("unknown {what} '{x}'")))
        .collect()
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(async {
        tokio::select! {
            r = run(args) => match r {
                Ok(()) => 0,
                Err(e) => { eprintln!("ensemble-bench: error: {e:#}"); 1 }
            },
            _ = interrupted() => { eprintln!("ensemble-bench: interrupted; stopping the servers"); 130 }
        }
    });
    // the future above has been dropped here, and with it every cluster (servers stopped)
    rt.shutdown_timeout(Duration::from_secs(5));
    std::process::exit(code);
}

async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}

/// A working directory removed on drop unless asked to keep it.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let root = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ensemble-bench-{}", std::process::id()))
    });
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let root = std::fs::canonicalize(&root)?;
    let mut workdir = WorkDir {
        path: root.clone(),
        keep: args.keep,
    };
    let r = bench(args, root.clone()).await;
    if r.is_err() && (root.join("ensemble").exists() || root.join("zookeeper").exists()) {
        // keep the servers' logs for the error message's pointers
        workdir.keep = true;
    }
    r
}

async fn bench(args: Args, root: PathBuf) -> Result<()> {
    let workloads = parse_list(&args.workloads, Workload::parse, "workload")?;
    let systems = parse_list(
        &args.systems,
        |s| match s {
            "ensemble" => Some(System::Ensemble),
            "zookeeper" | "zk" => Some(System::ZooKeeper),
            _ => None,
        },
        "system",
    )?;
    if args.sessions == 0 || args.inflight == 0 || args.keys == 0 {
        bail!("--sessions, --inflight and --keys must be positive");
    }
    let mut launch = Launch::discover(
        args.ensemble_bin.clone(),
        args.zk_classpath.clone(),
        args.zk_heap_mb,
        systems.contains(&System::Ensemble),
        systems.contains(&System::ZooKeeper),
    )?;
    launch.same_session = args.same_session;
    launch.tls = args.tls.clone();
    launch.zk_netty = args.zk_netty;
    let tls = args.tls.as_ref().map(|d| {
        let mut t = ensemble_client::TlsOptions::new(d.join("ca_cert.pem"));
        t.cert_file = Some(d.join("client_cert.pem"));
        t.key_file = Some(d.join("client_key.pem"));
        t
    });
    if let Some(w) = &args.ensemble_wrap {
        launch.ensemble_wrap = w.split_whitespace().map(String::from).collect();
    }
    if let Some(d) = &args.perf {
        std::fs::create_dir_all(d)?;
    }
    let sentinel = Sentinel::start(&root)?;
    if args.session_scale > 0 {
        return session_scale(&args, &systems, &root, &launch, sentinel).await;
    }

    let mut rep = Report::new(&args, &workloads);
    println!("ensemble-bench: {}", rep.settings_line());
    println!("machine: {}", procfs::machine());
    if cfg!(debug_assertions) {
        println!("WARNING: ensemble-bench is a debug build; measure with --release");
    }
    println!(
        "load average at start: {} (the run shares 2 cores; a high load means noisy numbers)",
        procfs::loadavg()
    );

    let rounds = args.rounds.max(1);
    for (round, &system) in (0..rounds).flat_map(|r| systems.iter().map(move |s| (r, s))) {
        let base = port_base(args.port_base, system);
        let t0 = Instant::now();
        warn_if_loaded();
        println!(
            "\n== {}{}: starting 3 nodes (ports {}-{}), load average {}",
            system.name(),
            if rounds > 1 {
                format!(" (round {} of {rounds})", round + 1)
            } else {
                String::new()
            },
            base + 1,
            base + 3,
            procfs::loadavg()
        );
        let cluster = tokio::task::block_in_place(|| {
            Cluster::start(
                system,
                &root,
                base,
                &launch,
                sentinel.clone(),
                Duration::from_secs(args.startup_timeout),
            )
        })?;
        println!(
            "   quorum formed in {:.1} s; RSS at idle {:.0} MiB",
            t0.elapsed().as_secs_f64(),
            mib(procfs::rss_sum(&cluster.pids()))
        );
        rep.idle_rss(system, procfs::rss_sum(&cluster.pids()));
        let addrs: Vec<String> = (0..3).map(|i| cluster.client_addr(i)).collect();
        let clients = load::connect_sessions(&addrs, args.sessions, tls.as_ref()).await?;
        load::prepare(&clients[0], args.keys, args.value_size).await?;
        // every session's server has the keys before the first read
        for c in &clients {
            c.sync(load::ROOT).await.context("sync")?;
        }

        if args.jvm_warmup > 0.0 {
            let each = args.jvm_warmup / workloads.len().max(1) as f64;
            println!(
                "   warming up: {:.0} s over all workloads (unmeasured)",
                args.jvm_warmup
            );
            for &w in &workloads {
                let spec = spec(&args, w, secs(each), Duration::ZERO);
                load::run(&clients, &spec, || {}, || {}).await?;
            }
        }

        for &w in &workloads {
            let spec = spec(&args, w, secs(args.warmup), secs(args.duration));
            let pids = cluster.pids();
            let (mut cpu0, mut cpu1) = (procfs::Usage::default(), procfs::Usage::default());
            let (mut self0, mut self1) = (Duration::ZERO, Duration::ZERO);
            let me = std::process::id() as i32;
            let mut perf = None;
            let res = load::run(
                &clients,
                &spec,
                || {
                    cpu0 = procfs::Usage::of(&pids);
                    self0 = procfs::cpu_time(me).unwrap_or_default();
                    if let Some(dir) = &args.perf {
                        perf = start_perf(dir, system, w, &pids, args.duration);
                    }
                },
                || {
                    cpu1 = procfs::Usage::of(&pids);
                    self1 = procfs::cpu_time(me).unwrap_or_default();
                },
            )
            .await?;
            if let Some(mut p) = perf {
                // perf stops by itself after the measured window; wait for it to write
                let _ = tokio::task::block_in_place(|| p.wait());
            }
            if res.ops == 0 {
                bail!(
                    "{} {}: no request succeeded ({} errors, first: {})",
                    system.name(),
                    w.name(),
                    res.errors,
                    res.first_error.as_deref().unwrap_or("-")
                );
            }
            let m = Measured {
                ops_per_sec: res.ops_per_sec(),
                p50_ms: res.quantile_ms(0.50),
                p99_ms: res.quantile_ms(0.99),
                p999_ms: res.quantile_ms(0.999),
                cpu_us_per_op: (cpu1.cpu() - cpu0.cpu()).as_secs_f64() * 1e6 / res.ops as f64,
                sys_share: (cpu1.sys - cpu0.sys).as_secs_f64()
                    / (cpu1.cpu() - cpu0.cpu()).as_secs_f64().max(1e-9),
                ctx_per_op: (cpu1.ctx - cpu0.ctx) as f64 / res.ops as f64,
                client_cpu_us_per_op: (self1 - self0).as_secs_f64() * 1e6 / res.ops as f64,
                rss: procfs::rss_sum(&pids),
                errors: res.errors,
                load: procfs::loadavg(),
            };
            println!(
                "   {:<18} {:>9.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms  p999 {:>7.2} ms  \
                 server CPU {:>6.1} us/op ({:.0}% kernel, {:.1} ctx sw/op)  RSS {:>6.0} MiB  \
                 errors {}  load {}",
                w.name(),
                m.ops_per_sec,
                m.p50_ms,
                m.p99_ms,
                m.p999_ms,
                m.cpu_us_per_op,
                m.sys_share * 100.0,
                m.ctx_per_op,
                mib(m.rss),
                m.errors,
                m.load
            );
            if let Some(e) = &res.first_error {
                println!("      first error: {e}");
            }
            rep.record(system, w, m);
        }
        for c in &clients {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.close()).await;
        }
        drop(clients);
        tokio::task::block_in_place(|| drop(cluster));
    }

    if args.scale > 0 {
        for &system in &systems {
            let base = port_base(args.port_base, system);
            let r = scale::run(&args, system, &root, base, &launch, sentinel.clone()).await?;
            rep.scale(system, r);
        }
    }

    println!("\n{}", rep.render());
    Ok(())
}

/// `--session-scale`: each system in turn, then the table of ratios.
async fn session_scale(
    args: &Args,
    systems: &[System],
    root: &std::path::Path,
    launch: &Launch,
    sentinel: std::sync::Arc<Sentinel>,
) -> Result<()> {
    let nofile = sessions::raise_nofile();
    println!("machine: {}", procfs::machine());
    println!("open-file limit raised to {nofile} (the servers inherit it)");
    let spec = sessions::Spec {
        sessions: args.session_scale,
        timeout: Duration::from_millis(args.session_timeout_ms),
        ping_window: Duration::from_secs(args.ping_secs),
        watch_paths: args.watch_paths,
        expiry_sample: args.expiry_sample,
    };
    let mut results = Vec::new();
    for &system in systems {
        let base = port_base(args.port_base, system);
        println!(
            "\n== {}: 3 nodes (ports {}-{}), {} sessions, load average {}",
            system.name(),
            base + 1,
            base + 3,
            spec.sessions,
            procfs::loadavg()
        );
        let mut cluster = tokio::task::block_in_place(|| {
            Cluster::start(
                system,
                root,
                base,
                launch,
                sentinel.clone(),
                Duration::from_secs(args.startup_timeout),
            )
        })?;
        let leader = tokio::task::block_in_place(|| {
            cluster.wait_serving(Duration::from_secs(args.startup_timeout))
        })?;
        let fig = sessions::run(&mut cluster, leader, &spec).await?;
        tokio::task::block_in_place(|| cluster.stop());
        results.push((system, fig));
    }
    sessions::table(&results);
    Ok(())
}

fn port_base(base: u16, system: System) -> u16 {
    match system {
        System::Ensemble => base,
        System::ZooKeeper => base + 10,
    }
}

fn spec(args: &Args, w: Workload, warmup: Duration, duration: Duration) -> LoadSpec {
    LoadSpec {
        workload: w,
        inflight: args.inflight,
        value_size: args.value_size,
        keys: args.keys,
        warmup,
        duration,
    }
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

/// Other work on the machine's 2 cores skews both systems' numbers: say so.
pub fn warn_if_loaded() {
    let l = procfs::load1();
    if l > 1.5 {
        println!(
            "WARNING: 1-minute load average {l:.1} before this phase: other processes share the \
             cores, so these numbers are noisy (re-run when `uptime` shows a low load)"
        );
    }
}

/// `perf record` of the servers for one measured window (cpu-clock: this VM has no hardware
/// counters), or None with a note when perf is missing.
fn start_perf(
    dir: &std::path::Path,
    system: System,
    w: Workload,
    pids: &[i32],
    duration: f64,
) -> Option<std::process::Child> {
    let name = format!(
        "{}-{}.perf.data",
        system.name().to_lowercase(),
        w.name().split_whitespace().next().unwrap_or("load")
    );
    let pid_list = pids
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let r = std::process::Command::new("perf")
        .args(["record", "-e", "cpu-clock", "-F", "499", "-g", "-o"])
        .arg(dir.join(name))
        .args(["-p", &pid_list, "--", "sleep"])
        .arg(format!("{duration}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match r {
        Ok(c) => Some(c),
        Err(e) => {
            println!("   (perf not started: {e})");
            None
        }
    }
}
