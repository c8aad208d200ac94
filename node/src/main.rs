//! `ensemble`: a ZooKeeper-compatible server (start/stop/status/run) and its CLI.

use anyhow::Context;
use clap::{Parser, Subcommand};
use ensemble_node::config;
use ensemble_node::daemon::{self, PidLock, ReadyPipe};
use ensemble_node::runtime;
use ensemble_node::tools;
use std::path::{Path, PathBuf};

/// mimalloc: per-request buffers and txns are small, short-lived allocations made on one thread
/// and often freed on another, which glibc's malloc handles at a high cost (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` and `mi_option_purge_delay` in the mimalloc 3 of
/// libmimalloc-sys 0.1.49 (`mi_option_e`; the crate names no constants for them).
#[cfg(target_os = "linux")]
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
#[cfg(target_os = "linux")]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Before any allocation: mimalloc would commit its arenas eagerly, which on this kind of
/// system makes RSS grow by whole reserved regions (idle 16 MiB a node instead of 6); and it
/// returns freed memory only after a delay, at the freeing thread's next allocation, so a
/// thread that frees a big buffer and sleeps (the snapshot writer) kept it: 105 MiB a node
/// with 200k znodes instead of 68. Purging at once cost no CPU per op in A/B runs.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00050")]
static MIMALLOC_OPTIONS: extern "C" fn() = {
    extern "C" fn set() {
        // SAFETY: mi_option_set only stores the value; mimalloc reads it when it reserves.
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
    set
};

#[derive(Parser)]
#[command(
    name = "ensemble",
    version,
    about = "A ZooKeeper-compatible coordination service"
)]
struct Args {
    /// The config directory, as `zkServer.sh --config DIR`: overrides $ZOOCFGDIR.
    #[arg(long = "config", value_name = "DIR")]
    config_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// The config argument every server command takes.
#[derive(clap::Args)]
struct ConfigArg {
    /// zoo.cfg; a bare file name is looked up in $ZOOCFGDIR (default ./conf) unless it is in
    /// the current directory; none means $ZOOCFGDIR/$ZOOCFG (default conf/zoo.cfg).
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a server in the background (like `zkServer.sh start`).
    Start(ConfigArg),
    /// Stop the server started with this config.
    Stop(ConfigArg),
    /// Stop, then start (like `zkServer.sh restart`).
    Restart(ConfigArg),
    /// Ask the server for its mode (leader, follower, observer, standalone).
    Status(ConfigArg),
    /// Run a server in the foreground (`start-foreground` is the same command).
    #[command(alias = "start-foreground")]
    Run(ConfigArg),
    /// Print a txn log file, one line per txn (zkTxnLogToolkit's information).
    DumpLog {
        file: PathBuf,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Print a snapshot file (or a backup), one line per znode with its stat, then the
    /// sessions (zkSnapShotToolkit's information).
    DumpSnapshot {
        file: PathBuf,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Check every txn log record and snapshot of a server's data; exit 1 naming the file and
    /// offset of any corruption. Takes the server's config, or a dataDir / version-2 directory.
    Verify {
        /// zoo.cfg, or a directory; none means the default config, as for `start`.
        target: Option<PathBuf>,
    },
    /// Write the state the server's files hold to one snapshot file (a backup; compressed if
    /// FILE ends in .gz, .snappy or .zst). Changes nothing, so the server may be running.
    Snapshot {
        #[command(flatten)]
        config: ConfigArg,
        /// The backup file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Install a backup (a snapshot file) into every server of a stopped ensemble (each
    /// member's zoo.cfg, or a standalone server's); the current files are moved aside, not
    /// deleted. Refused, with nothing changed, if a member is missing or running.
    Restore {
        /// zoo.cfg of every server of the ensemble.
        #[arg(required = true, num_args = 1..)]
        configs: Vec<PathBuf>,
        /// The backup, as `ensemble snapshot` wrote it (or any snapshot file).
        file: PathBuf,
    },
    /// Fill a new server's empty dataDir from Apache ZooKeeper's files (its dataDir, and its
    /// dataLogDir if separate): every znode with its stat and ACL, sessions, epochs, zxid.
    Import {
        /// ZooKeeper's dataDir (or its version-2 directory).
        #[arg(long = "zk-data-dir", value_name = "DIR")]
        zk_data_dir: PathBuf,
        /// ZooKeeper's dataLogDir, if not its dataDir.
        #[arg(long = "zk-log-dir", value_name = "DIR")]
        zk_log_dir: Option<PathBuf>,
        /// zoo.cfg of the server to fill.
        config: PathBuf,
    },
    /// Write the server's state as Apache ZooKeeper's dataDir (a snapshot and the epochs),
    /// from which ZooKeeper starts at the same zxid.
    Export {
        /// zoo.cfg of the server to export.
        config: PathBuf,
        /// The ZooKeeper dataDir to write (its version-2 must be missing or empty).
        #[arg(long = "zk-data-dir", value_name = "DIR")]
        zk_data_dir: PathBuf,
    },
    /// Follow a live Apache ZooKeeper 3.8 ensemble as the observer CONFIG lists
    /// (`server.N=host:q:e:observer` in ZooKeeper's zoo.cfg too): learn its leader, sync, apply
    /// every txn checked against ZooKeeper's digests, for SECONDS; serves clients on its
    /// clientPort (writes forwarded to the leader); writes nothing but the --dump file (the
    /// replica as JSON lines) and, with --cut-over, the dataDir.
    ZkObserve {
        /// zoo.cfg of this observer, listing the ZooKeeper servers.
        config: PathBuf,
        /// How long to follow.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Rewrite this file with the replica after each sync and batch of txns.
        #[arg(long, value_name = "FILE")]
        dump: Option<PathBuf>,
        /// Once every ZooKeeper voter has been stopped, write the replica (sessions and
        /// ephemerals too) into this server's empty dataDir as Ensemble's state, and exit:
        /// `ensemble start` then continues from the same zxid (README: the cut-over).
        #[arg(long)]
        cut_over: bool,
        /// With --cut-over: write here the config `ensemble start` takes next: this config's
        /// settings, its ZooKeeper voters dropped, and every observer of the ZooKeeper
        /// configuration in force (the Ensemble servers) a participant.
        #[arg(long, value_name = "FILE", requires = "cut_over")]
        ensemble_config: Option<PathBuf>,
        /// With --cut-over (repeatable): a stopped ZooKeeper server's dataDir (or dataLogDir);
        /// the txns the newest of them logged beyond the replica (committed by ZooKeeper's
        /// leader but never sent to its observers) are added, each digest-checked, as
        /// ZooKeeper's own recovery would keep them (README: the cut-over runbook).
        #[arg(long = "zk-data-dir", value_name = "DIR", requires = "cut_over")]
        zk_data_dir: Vec<PathBuf>,
        /// Removed: the clients are served by the node's core (refused with a message).
        #[arg(long, hide = true)]
        serve_replica: bool,
    },
    /// zkCli.sh's commands: `ensemble cli -server HOST:PORT [COMMAND ARGS...]`.
    #[command(disable_help_flag = true)]
    Cli {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// How the dump tools print.
#[derive(clap::Args)]
struct FormatArgs {
    /// One JSON object a line instead of text.
    #[arg(long)]
    json: bool,
    /// With the data of each znode (txn), in hex.
    #[arg(long, short = 'd')]
    data: bool,
}

impl FormatArgs {
    fn format(&self) -> ensemble_node::storage::dump::DumpFormat {
        ensemble_node::storage::dump::DumpFormat {
            json: self.json,
            data: self.data,
        }
    }
}

/// `verify`'s target: a directory as given, else a config (resolved as for `start`).
fn verify_target(config_dir: Option<&Path>, target: Option<PathBuf>) -> i32 {
    if let Some(dir) = target.as_ref().filter(|t| t.is_dir()) {
        let v2 = tools::dirs_of(dir);
        return tools::verify(&v2, &v2);
    }
    let Some(config) = config_or_default(config_dir, target) else {
        return 1;
    };
    match load_for_control(&config) {
        Ok(cfg) => tools::verify(&cfg.snap_dir(), &cfg.log_dir()),
        Err(c) => c,
    }
}

/// Run a tool on the config's data directories.
/// `ensemble restore CONFIG... FILE`: every config loaded first (one that cannot be read
/// stops it before anything is touched).
fn restore(config_dir: Option<&Path>, configs: Vec<PathBuf>, file: &Path) -> i32 {
    let mut cfgs = Vec::new();
    for c in configs {
        let Some(path) = config_or_default(config_dir, Some(c)) else {
            return 1;
        };
        match load_for_control(&path) {
            Ok(cfg) => cfgs.push(cfg),
            Err(code) => return code,
        }
    }
    tools::restore(&cfgs, file).unwrap_or_else(|e| {
        eprintln!("ensemble: {}", daemon::describe(&e));
        1
    })
}

fn with_files(
    config_dir: Option<&Path>,
    config: Option<PathBuf>,
    tool: impl FnOnce(&config::NodeConfig) -> anyhow::Result<i32>,
) -> i32 {
    let Some(config) = config_or_default(config_dir, config) else {
        return 1;
    };
    match load_for_control(&config) {
        Ok(cfg) => tool(&cfg).unwrap_or_else(|e| {
            eprintln!("ensemble: {}", daemon::describe(&e));
            1
        }),
        Err(c) => c,
    }
}

/// The config file, resolved as zkEnv.sh and zkServer.sh do: `--config DIR`, else `$ZOOCFGDIR`
/// (here `conf` in the current directory when unset), holds `$ZOOCFG` (default `zoo.cfg`); an argument that is a
/// bare file name is looked up there, one with a directory in it is used as given. One
/// difference: a bare name that exists in the current directory is taken from there.
fn resolve_config(config_dir: Option<&Path>, arg: Option<PathBuf>) -> PathBuf {
    let dir = config_dir
        .map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os("ZOOCFGDIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("conf"));
    match arg {
        None => dir.join(
            std::env::var_os("ZOOCFG")
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| "zoo.cfg".into()),
        ),
        Some(p) if p.components().count() == 1 && !p.exists() => dir.join(p),
        Some(p) => p,
    }
}

/// [`resolve_config`], saying where it looked when no config was given and none is there.
fn config_or_default(config_dir: Option<&Path>, arg: Option<PathBuf>) -> Option<PathBuf> {
    let given = arg.is_some();
    let config = resolve_config(config_dir, arg);
    if !given && !config.exists() {
        eprintln!(
            "ensemble: no config given and {} does not exist (the default is \
             $ZOOCFGDIR/$ZOOCFG, here ./conf/zoo.cfg unless --config DIR or those are set)",
            config.display()
        );
        return None;
    }
    Some(config)
}

fn load(path: &Path) -> Result<config::NodeConfig, i32> {
    config::load(path).map_err(|e| {
        eprintln!("ensemble: {e}");
        1
    })
}

/// [`load`], with the ignored settings said on the terminal: `start` detaches, and its log
/// (which has them too) is a file.
fn load_warning(path: &Path) -> Result<config::NodeConfig, i32> {
    let cfg = load(path)?;
    for w in &cfg.warnings {
        eprintln!("ensemble: warning: {w}");
    }
    Ok(cfg)
}

/// Stop and status find a running server even if its file now has settings that would refuse
/// to start.
fn load_for_control(path: &Path) -> Result<config::NodeConfig, i32> {
    config::load_for_control(path).map_err(|e| {
        eprintln!("ensemble: {e}");
        1
    })
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Under `start`, stderr is dataDir/zookeeper.out.
    let ansi = std::env::var_os(daemon::READY_FD_ENV).is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The server itself (foreground, or the child of `start`).
/// An Ensemble server never joins a ZooKeeper ensemble half-way: a peer that answers
/// ZooKeeper's election protocol stops the start, saying what works today.
fn refuse_zookeeper_peers(cfg: &config::NodeConfig) -> anyhow::Result<()> {
    let found = ensemble_node::zookeeper::observer::zookeeper_peers(cfg);
    if found.is_empty() {
        return Ok(());
    }
    let who = found
        .iter()
        .map(|(sid, n)| {
            format!(
                "server.{sid} (line {}) is an Apache ZooKeeper server ({:?}, leader server.{})",
                cfg.servers.get(sid).map_or(0, |s| s.line),
                n.state,
                n.leader
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    anyhow::bail!(
        "{}: {who}. An Ensemble server cannot serve inside a ZooKeeper ensemble yet: today \
         `ensemble zk-observe CONFIG` follows it as an observer (sync and every txn, checked \
         against ZooKeeper's digests) and serves clients on its clientPort (writes forwarded \
         to ZooKeeper's leader), and `ensemble import` moves a stopped ZooKeeper's data \
         (README: migrating from ZooKeeper)",
        cfg.path.display()
    )
}

fn run_server(path: &Path) -> i32 {
    let mut pipe = ReadyPipe::from_env();
    init_logging();
    let result = (|| -> anyhow::Result<()> {
        let cfg = config::load(path)?;
        for w in &cfg.warnings {
            tracing::warn!("{w}");
        }
        if let Some(krb5) = &cfg.auth.krb5_conf {
            // -Djava.security.krb5.conf is where ZooKeeper's operators name the Kerberos
            // configuration; the GSS-API library reads KRB5_CONFIG.
            // SAFETY: no other thread runs yet (the runtime starts in runtime::run).
            unsafe { std::env::set_var("KRB5_CONFIG", krb5) };
        }
        tracing::info!(
            "config {}: server {} of {}",
            path.display(),
            cfg.core.my_id,
            cfg.core.members.len()
        );
        daemon::check_dirs(&cfg)?;
        refuse_zookeeper_peers(&cfg)?;
        let _lock = PidLock::acquire(&cfg.pid_file())
            .with_context(|| daemon::setting(&cfg, "dataDir", &cfg.data_dir))?;
        let listeners = runtime::bind(&cfg)?;
        // Storage errors name a file; say which setting (and line) its directory came from.
        let data_dir = daemon::setting(&cfg, "dataDir", &cfg.data_dir);
        let log_dir = daemon::setting(&cfg, "dataLogDir", &cfg.data_log_dir);
        let log_path = cfg.log_dir();
        let snap_path = cfg.snap_dir();
        let separate_log = cfg.data_log_dir != cfg.data_dir;
        // A storage error, or a fatal one the txn log or snapshot thread reported later.
        let settings_of = move |e: &runtime::RuntimeError| {
            let text = e.to_string();
            let in_log = text.contains(&*log_path.to_string_lossy());
            let in_snap = text.contains(&*snap_path.to_string_lossy());
            let storage = matches!(e, runtime::RuntimeError::Storage(_));
            Some(match (separate_log, in_log, in_snap) {
                _ if !(storage || in_log || in_snap) => return None,
                (false, _, _) | (true, false, true) => data_dir.clone(),
                (true, true, false) => log_dir.clone(),
                _ => format!("{data_dir}; {log_dir}"),
            })
        };
        let started = std::cell::Cell::new(false);
        runtime::run(cfg, listeners, || {
            started.set(true);
            pipe.ready()
        })
        .map_err(|e| {
            let what = if started.get() {
                "server stopped"
            } else {
                "server failed to start"
            };
            let what = match settings_of(&e) {
                Some(settings) => format!("{what} ({settings})"),
                None => what.to_string(),
            };
            anyhow::Error::new(e).context(what)
        })?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            0
        }
        Err(e) => {
            let msg = daemon::describe(&e);
            // Said once: to the log (zookeeper.out) and the waiting `start` when daemonised,
            // else on stderr, where the log also goes.
            if pipe.is_connected() {
                tracing::error!("{msg}");
                pipe.failed(&msg);
            } else {
                eprintln!("ensemble: {msg}");
            }
            1
        }
    }
}

fn main() {
    // The simulator's planted bugs live in its own workspace (sim/), out of this binary's
    // builds; only an explicit `--features ensemble-core/plants` could bring them here. A
    // planted server must never run.
    if ensemble_core::plant::COMPILED {
        eprintln!(
            "ensemble: this binary was built with the simulator's planted bugs (ensemble-core \
             feature `plants`) and will not run; build it without: cargo build --release -p ensemble-node"
        );
        std::process::exit(2);
    }
    let args = Args::parse();
    let dir = args.config_dir.as_deref();
    type Action = fn(&Path, &config::NodeConfig) -> anyhow::Result<i32>;
    type Loader = fn(&Path) -> Result<config::NodeConfig, i32>;
    let with_config = |config: Option<PathBuf>, loader: Loader, action: Action| {
        let Some(config) = config_or_default(dir, config) else {
            return 1;
        };
        match loader(&config) {
            Ok(cfg) => action(&config, &cfg).unwrap_or_else(|e| {
                eprintln!("ensemble: {}", daemon::describe(&e));
                1
            }),
            Err(c) => c,
        }
    };
    let code = match args.cmd {
        Cmd::Run(a) => match config_or_default(dir, a.config) {
            Some(config) => run_server(&config),
            None => 1,
        },
        Cmd::Start(a) => with_config(a.config, load_warning, daemon::start),
        // stop and status find a running server even if its file now has settings that
        // would refuse to start
        Cmd::Stop(a) => with_config(a.config, load_for_control, daemon::stop),
        Cmd::Restart(a) => with_config(a.config, load_warning, daemon::restart),
        Cmd::Status(a) => with_config(a.config, load_for_control, daemon::status),
        Cmd::DumpLog { file, format } => tools::dump_log(&file, format.format()),
        Cmd::DumpSnapshot { file, format } => tools::dump_snapshot(&file, format.format()),
        Cmd::Verify { target } => verify_target(dir, target),
        // Neither refuses over a setting this build does not implement: they only read and
        // write the files.
        Cmd::Snapshot { config, out } => {
            with_files(dir, config.config, |cfg| tools::snapshot(cfg, &out))
        }
        Cmd::Restore { configs, file } => restore(dir, configs, &file),
        Cmd::Import {
            zk_data_dir,
            zk_log_dir,
            config,
        } => with_files(dir, Some(config), |cfg| {
            tools::import(cfg, &zk_data_dir, zk_log_dir.as_deref())
        }),
        Cmd::Export {
            config,
            zk_data_dir,
        } => with_files(dir, Some(config), |cfg| tools::export(cfg, &zk_data_dir)),
        Cmd::ZkObserve {
            serve_replica: true,
            ..
        } => {
            // the observer's own client port (serve.rs) is gone: one serving path remains
            eprintln!(
                "ensemble: zk-observe --serve-replica was removed: the observer serves its \
                 clients through the node's core (drop the flag; README: following a live \
                 ZooKeeper ensemble)"
            );
            2
        }
        Cmd::ZkObserve {
            config,
            seconds,
            dump,
            cut_over,
            ensemble_config,
            zk_data_dir,
            serve_replica: _,
        } => with_files(dir, Some(config), |cfg| {
            tools::zk_observe(
                cfg,
                seconds,
                dump.as_deref(),
                tools::CutOver {
                    enabled: cut_over,
                    ensemble_config: ensemble_config.as_deref(),
                    zk_data_dirs: &zk_data_dir,
                },
            )
        }),
        Cmd::Cli { args } => ensemble_client::cli::run(args),
    };
    std::process::exit(code);
}
