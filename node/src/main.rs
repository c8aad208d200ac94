//! `ensemble`: a ZooKeeper-compatible server (start/stop/status/run) and its CLI.

use anyhow::Context;
use clap::{Parser, Subcommand};
use ensemble_node::config;
use ensemble_node::daemon::{self, PidLock, ReadyPipe};
use ensemble_node::runtime;
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
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a server in the background (like `zkServer.sh start`).
    Start { config: PathBuf },
    /// Stop the server started with this config.
    Stop { config: PathBuf },
    /// Ask the server for its mode (leader, follower, observer, standalone).
    Status { config: PathBuf },
    /// Run a server in the foreground.
    Run { config: PathBuf },
    /// zkCli.sh's commands: `ensemble cli -server HOST:PORT [COMMAND ARGS...]`.
    #[command(disable_help_flag = true)]
    Cli {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn load(path: &Path) -> Result<config::NodeConfig, i32> {
    config::load(path).map_err(|e| {
        eprintln!("ensemble: {e}");
        1
    })
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
fn run_server(path: &Path) -> i32 {
    let mut pipe = ReadyPipe::from_env();
    init_logging();
    let result = (|| -> anyhow::Result<()> {
        let cfg = config::load(path)?;
        for w in &cfg.warnings {
            tracing::warn!("{w}");
        }
        tracing::info!(
            "config {}: server {} of {}",
            path.display(),
            cfg.core.my_id,
            cfg.core.members.len()
        );
        let _lock = PidLock::acquire(&cfg.pid_file())?;
        let listeners = runtime::bind(&cfg)?;
        runtime::run(cfg, listeners, || pipe.ready()).context("server stopped")?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            0
        }
        Err(e) => {
            let msg = format!("{e:#}");
            tracing::error!("{msg}");
            pipe.failed(&msg);
            eprintln!("ensemble: {msg}");
            1
        }
    }
}

fn main() {
    // Cargo unifies features per build: `cargo test --workspace` compiles the core with the
    // simulator's planted bugs for this binary too. A planted server must never run.
    if ensemble_core::plant::COMPILED {
        eprintln!(
            "ensemble: this binary was built with the simulator's planted bugs (ensemble-core \
             feature `plants`) and will not run; build it alone: cargo build --release -p ensemble-node"
        );
        std::process::exit(2);
    }
    let args = Args::parse();
    let code = match args.cmd {
        Cmd::Run { config } => run_server(&config),
        Cmd::Start { config } => match load(&config) {
            Ok(cfg) => {
                // On the terminal before detaching; the server's log has them too.
                for w in &cfg.warnings {
                    eprintln!("ensemble: warning: {w}");
                }
                daemon::start(&config, &cfg).unwrap_or_else(|e| {
                    eprintln!("ensemble: {e:#}");
                    1
                })
            }
            Err(c) => c,
        },
        Cmd::Stop { config } => match load_for_control(&config) {
            Ok(cfg) => daemon::stop(&config, &cfg).unwrap_or_else(|e| {
                eprintln!("ensemble: {e:#}");
                1
            }),
            Err(c) => c,
        },
        Cmd::Status { config } => match load_for_control(&config) {
            Ok(cfg) => daemon::status(&config, &cfg).unwrap_or_else(|e| {
                eprintln!("ensemble: {e:#}");
                1
            }),
            Err(c) => c,
        },
        Cmd::Cli { args } => ensemble_node::cli::run(args),
    };
    std::process::exit(code);
}
