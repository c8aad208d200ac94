//! `ensemble-sim`: run, sweep and replay seeds of Ensemble's deterministic simulator.

use clap::{Args, Parser, Subcommand};
use ensemble_core::plant::Plant;
use ensemble_sim::params::{Liveness, Params};
use ensemble_sim::replay::{first_difference, trace_events};
use ensemble_sim::runner::{RunResult, TraceMode, run_seed, run_seed_with};
use ensemble_sim::world::install_panic_hook;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod allocator;

/// mimalloc (as the node), called as the sweep's allocations need (allocator.rs).
#[global_allocator]
static ALLOCATOR: allocator::SimAlloc = allocator::SimAlloc;

#[derive(Parser)]
#[command(
    name = "ensemble-sim",
    version,
    about = "Ensemble's deterministic simulator: seeded faults, every safety claim checked, any seed replayed"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Common {
    /// A scenario file (scenarios/*.toml); without it, the seed draws a swarm run.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// A planted bug to run with (see `ensemble-sim plants`).
    #[arg(long)]
    plant: Option<String>,
    /// What the heal at the end of the fault phase heals, whatever the seed or file drew:
    /// `full` (everything) or `core` (a random quorum core; the rest stay crashed,
    /// partitioned, one-way deaf or stalled).
    #[arg(long)]
    liveness: Option<String>,
}

/// `--liveness`, if given.
fn liveness_of(common: &Common) -> Result<Option<Liveness>, String> {
    match &common.liveness {
        None => Ok(None),
        Some(s) => Liveness::from_name(s)
            .map(Some)
            .ok_or_else(|| format!("--liveness: unknown `{s}` (expected full or core)")),
    }
}

/// What `replay` shows: filters over the trace, and the explorer page.
#[derive(Args, Clone, Default)]
struct View {
    /// Only lines about these servers (`3`, `n3`, `1,3`; repeatable): theirs, and lines
    /// naming them (messages to them, faults hitting them).
    #[arg(long, value_delimiter = ',')]
    node: Vec<String>,
    /// Only lines about these clients (`2`, `c2`, `0,4`; repeatable): theirs, and servers'
    /// lines on their connections.
    #[arg(long, value_delimiter = ',')]
    client: Vec<String>,
    /// Only lines at or after this simulated ms.
    #[arg(long)]
    from: Option<u64>,
    /// Only lines at or before this simulated ms.
    #[arg(long)]
    to: Option<u64>,
    /// Number the lines (the explorer's `line N` is this number).
    #[arg(long)]
    numbers: bool,
    /// Write the run explorer: one self-contained HTML page (lanes, faults, messages, client
    /// operations, the violation and what led to it).
    #[arg(long)]
    html: Option<PathBuf>,
}

impl View {
    fn filter(&self) -> Result<ensemble_sim::replay::Filter, String> {
        let num = |flag: &str, prefix: char, s: &String| -> Result<u64, String> {
            let t = s.trim();
            t.strip_prefix(prefix)
                .unwrap_or(t)
                .parse::<u64>()
                .map_err(|_| {
                    format!("--{flag}: `{s}` is not a {flag} number (e.g. 3 or {prefix}3)")
                })
        };
        let mut f = ensemble_sim::replay::Filter {
            from: self.from,
            to: self.to,
            ..Default::default()
        };
        for n in &self.node {
            f.nodes.insert(num("node", 'n', n)?);
        }
        for c in &self.client {
            f.clients.insert(num("client", 'c', c)? as usize);
        }
        if let (Some(a), Some(b)) = (self.from, self.to)
            && a > b
        {
            return Err(format!("--from {a} is after --to {b}"));
        }
        Ok(f)
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one seed; exit 0 if every claim holds, 1 on a violation.
    Run {
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Run a range of seeds in parallel; one `seed=N FAIL <claim>` line per failing seed.
    Sweep {
        /// A..B (B excluded), e.g. 0..1000
        #[arg(long)]
        seeds: String,
        /// Worker threads (each runs whole seeds).
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Stop at the first failing seed.
        #[arg(long)]
        first: bool,
        /// Write the coverage probes' counts to this JSON file:
        /// {"probes": {name: {"hits", "seeds", "first_seed"}}}.
        #[arg(long)]
        coverage: Option<PathBuf>,
        /// Fail the sweep (exit 1) naming each probe not marked rare that no seed reached.
        #[arg(long)]
        require_coverage: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Read a coverage file (`sweep --coverage`): the probes never reached, those not marked
    /// rare first; with --require, exit 1 if any of those is there.
    Coverage {
        file: PathBuf,
        #[arg(long)]
        require: bool,
    },
    /// Run one seed printing its full trace, then the failure in context (the last lines of
    /// the servers and clients the violation names).
    Replay {
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        view: View,
        /// An earlier replay's output (another build, say): instead of the trace, name the
        /// first event where the two runs differ (exit 1), or say they are the same (exit 0).
        #[arg(long)]
        against: Option<PathBuf>,
    },
    /// Shrink a failing seed: search for a smaller run breaking the same claim (fewer servers,
    /// clients, fault kinds and faults, a shorter fault phase, a plainer workload) and write it
    /// as a scenario file that `run --seed M --scenario FILE` replays.
    Shrink {
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        common: Common,
        /// Where to write the scenario file (default: shrunk-<seed>.toml here).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Most runs to spend.
        #[arg(long, default_value_t = 1500)]
        budget: u64,
        /// Seeds tried for each change to the world.
        #[arg(long, default_value_t = 6)]
        tries: u64,
    },
    /// Run the reproductions of sim/FINDINGS.md (a directory of them, e.g. scenarios/findings,
    /// or one file): REPRODUCED, FIXED, STALE (naming the first event where the run left the
    /// recorded one) or REGRESSED for each; exit 1 on STALE or REGRESSED.
    Check {
        /// A reproduction file or a directory of them.
        path: PathBuf,
        /// Write each bug run's trace as this build records it (`NAME.trace`), for those that
        /// reproduce.
        #[arg(long)]
        record: bool,
    },
    /// The core observing a foreign leader (issue 17's `zk-observe`, the `foreign.*` claims):
    /// run seeds A..B of its driver, one `seed=N FAIL <violation>` line per failing seed;
    /// exit 1 on any.
    Foreign {
        /// A..B (B excluded), e.g. 0..300
        #[arg(long)]
        seeds: String,
        /// A planted bug to run with (`plants`).
        #[arg(long)]
        plant: Option<String>,
        /// Stop at the first failing seed.
        #[arg(long)]
        first: bool,
        /// Print every request, resolved txn, reply and event.
        #[arg(long)]
        echo: bool,
    },
    /// List the planted bugs, one a line: its name, then the claims meant to catch it.
    Plants,
    /// Measure speed: simulated-to-real time and seeds per second.
    Bench {
        #[arg(long, default_value_t = 20)]
        seeds: u64,
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    },
}

/// Bad input: say what is wrong, exit 2.
fn bad(msg: String) -> ExitCode {
    eprintln!("ensemble-sim: {msg}");
    ExitCode::from(2)
}

fn load(common: &Common) -> Result<(Option<Params>, Option<Plant>), String> {
    liveness_of(common)?;
    let plant = match &common.plant {
        None => None,
        Some(name) => Some(Plant::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = Plant::ALL.iter().map(|p| p.name()).collect();
            format!(
                "--plant: unknown plant `{name}` (known: {})",
                names.join(", ")
            )
        })?),
    };
    let scenario = match &common.scenario {
        None => None,
        Some(path) => Some(ensemble_sim::scenario::load(path).map_err(|e| e.to_string())?),
    };
    if let (Some(p), Some(s)) = (plant, scenario.as_ref().and_then(|s| s.plant))
        && p != s
    {
        return Err(format!(
            "--plant: `{}` differs from the scenario file's plant `{}`",
            p.name(),
            s.name()
        ));
    }
    Ok((scenario, plant))
}

fn replay_cmd(seed: u64, common: &Common) -> String {
    let mut s = format!("ensemble-sim replay --seed {seed}");
    if let Some(p) = &common.scenario {
        s += &format!(" --scenario {}", p.display());
    }
    if let Some(p) = &common.plant {
        s += &format!(" --plant {p}");
    }
    if let Some(l) = &common.liveness {
        s += &format!(" --liveness {l}");
    }
    s
}

/// Below this much CPU a ratio says little (the thread CPU clock is exact, but a run this short
/// is mostly start-up). One swarm seed takes 40-100 ms: its ratio is shown.
const MIN_TIMED_CPU: Duration = Duration::from_millis(10);

/// "2898x" when `cpu` is long enough to divide by, else a note saying why there is none.
fn speed(sim_ms: u64, cpu: Duration, what: &str) -> String {
    if cpu < MIN_TIMED_CPU {
        return "too short to time its speed".into();
    }
    format!("{:.0}x{what}", sim_ms as f64 / 1000.0 / cpu.as_secs_f64())
}

fn print_stats(r: &RunResult) {
    let s = &r.stats;
    println!(
        "simulated {:.1}s in {:.2}s CPU ({}), {} events, {} txns committed, {} writes ok, {} reads ok, {} unknown outcomes, {} errors",
        s.sim_ms as f64 / 1000.0,
        r.cpu.as_secs_f64(),
        speed(s.sim_ms, r.cpu, ""),
        s.events,
        s.committed,
        s.ok_writes,
        s.ok_reads,
        s.unknown,
        s.errors
    );
    println!(
        "faults: {} crashes, {} partitions/clogs, {} pauses, {} resets; {} leaders established, {} sessions expired; longest leaderless window {}ms, longest gap between acknowledged writes {}ms",
        s.crashes,
        s.partitions,
        s.pauses,
        s.resets,
        s.leader_changes,
        s.expired_sessions,
        s.max_unavailable_ms,
        s.max_write_gap_ms
    );
    println!(
        "linearizability search: {} per-key segments, {} longer than {} ops, {} of them checked read by read",
        s.wgl.segments,
        s.wgl.long,
        ensemble_sim::check::wgl::MAX_OPS,
        s.wgl.by_reads
    );
}

/// Output piped into `head` and the like ends quietly when the reader goes, as a Unix tool's
/// does (Rust ignores SIGPIPE, so every `println!` would panic instead).
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of a signal; no handler, no shared state.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    allocator::SimAlloc::configure();
    default_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    install_panic_hook();
    match cli.cmd {
        Cmd::Plants => {
            // the name, then the claims meant to catch it (the usual one first)
            for p in Plant::ALL {
                let by = match p {
                    Plant::ZxidRolloverUnguarded => " (scenario zxid-rollover.toml)",
                    Plant::ResolvedSetDataUnwatched
                    | Plant::ForeignConfigNotReloaded
                    | Plant::ResolvedMultiPartial
                    | Plant::ResolvedMultiCreateStatless => " (ensemble-sim foreign)",
                    _ => "",
                };
                println!("{:<38} {}{by}", p.name(), p.claims().join(", "));
            }
            ExitCode::SUCCESS
        }
        Cmd::Check { path, record } => check_cmd(&path, record),
        Cmd::Foreign {
            seeds,
            plant,
            first,
            echo,
        } => {
            let Some((a, b)) = seeds
                .split_once("..")
                .and_then(|(a, b)| {
                    Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?))
                })
                .filter(|(a, b)| a < b)
            else {
                return bad(format!(
                    "--seeds: `{seeds}` is not a range A..B with A below B"
                ));
            };
            let plant = match plant.as_deref().map(|n| Plant::from_name(n).ok_or(n)) {
                None => None,
                Some(Ok(p)) => Some(p),
                Some(Err(n)) => {
                    return bad(format!("--plant: no planted bug `{n}` (see `plants`)"));
                }
            };
            let (mut failed, mut txns, mut reads, mut events) = (0u64, 0u64, 0u64, 0u64);
            for seed in a..b {
                let r = ensemble_sim::foreign::run_seed_echo(seed, plant, echo);
                txns += r.txns;
                reads += r.reads;
                events += r.events;
                if let Some(v) = &r.violation {
                    failed += 1;
                    println!("seed={seed} FAIL {v}");
                    if first {
                        break;
                    }
                }
            }
            println!(
                "foreign: {} seeds, {failed} failed; {txns} txns resolved, {reads} reads, {events} watch events checked",
                b - a
            );
            if failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Cmd::Run { seed, common } => {
            let (scenario, plant) = match load(&common) {
                Ok(x) => x,
                Err(e) => return bad(e),
            };
            let liv = liveness_of(&common).ok().flatten();
            let r = run_seed_with(seed, scenario.as_ref(), plant, TraceMode::Hash, liv);
            println!("seed={seed} {}", r.summary);
            print_stats(&r);
            if let Some(e) = &r.expected {
                println!("expected finding (the scenario demonstrates it): {e}");
            }
            let code = match &r.violation {
                None => {
                    println!("PASS");
                    ExitCode::SUCCESS
                }
                Some(v) => {
                    println!("FAIL {v}");
                    println!("replay: {}", replay_cmd(seed, &common));
                    ExitCode::from(1)
                }
            };
            println!("trace={:016x}", r.hash);
            code
        }
        Cmd::Replay {
            seed,
            common,
            against: Some(old),
            ..
        } => against_cmd(seed, &common, &old),
        Cmd::Replay {
            seed,
            common,
            view,
            against: None,
        } => {
            let (scenario, plant) = match load(&common) {
                Ok(x) => x,
                Err(e) => return bad(e),
            };
            let filter = match view.filter() {
                Ok(f) => f,
                Err(e) => return bad(e),
            };
            let liv = match liveness_of(&common) {
                Ok(l) => l,
                Err(e) => return bad(e),
            };
            replay(seed, scenario, plant, liv, &view, &filter)
        }
        Cmd::Coverage { file, require } => {
            let cov = match ensemble_sim::coverage::Coverage::load(&file) {
                Ok(c) => c,
                Err(e) => return bad(e),
            };
            let reached = cov.probes.values().filter(|c| c.hits > 0).count();
            println!("{reached} of {} probes reached", cov.probes.len());
            for (name, c) in cov.probes.iter().filter(|(_, c)| c.hits == 0) {
                let rare = ensemble_core::probe::PROBES
                    .iter()
                    .find(|d| d.name == name)
                    .map(|d| if d.rare { " (rare)" } else { "" })
                    .unwrap_or(" (not declared in this build)");
                println!("never reached: {name}{rare} ({} seeds)", c.seeds);
            }
            let missing = cov.missing();
            if require && !missing.is_empty() {
                for d in &missing {
                    println!("coverage: probe `{}` never reached: {}", d.name, d.what);
                }
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Cmd::Sweep {
            seeds,
            jobs,
            first,
            coverage,
            require_coverage,
            common,
        } => {
            let Some((a, b)) = seeds.split_once("..") else {
                return bad(format!("--seeds: `{seeds}` is not a range A..B"));
            };
            let (Ok(a), Ok(b)) = (a.trim().parse::<u64>(), b.trim().parse::<u64>()) else {
                return bad(format!(
                    "--seeds: `{seeds}` is not a range of two numbers A..B"
                ));
            };
            if a >= b {
                return bad(format!("--seeds: `{seeds}` is empty (A must be below B)"));
            }
            if jobs == 0 || jobs > 256 {
                return bad(format!("--jobs: {jobs} is not between 1 and 256"));
            }
            let (scenario, plant) = match load(&common) {
                Ok(x) => x,
                Err(e) => return bad(e),
            };
            if (coverage.is_some() || require_coverage) && !ensemble_core::probe::COMPILED {
                return bad(
                    "--coverage: this build has no probes (the core's `probes` feature is off)"
                        .into(),
                );
            }
            let opts = SweepOpts {
                first,
                coverage,
                require_coverage,
            };
            sweep(a, b, jobs, &opts, scenario, plant, &common)
        }
        Cmd::Shrink {
            seed,
            common,
            out,
            budget,
            tries,
        } => {
            if budget == 0 || tries == 0 {
                return bad("--budget and --tries must be at least 1".into());
            }
            let (scenario, plant) = match load(&common) {
                Ok(x) => x,
                Err(e) => return bad(e),
            };
            shrink_cmd(seed, scenario, plant, out, budget, tries)
        }
        Cmd::Bench { seeds, jobs } => {
            if seeds == 0 || jobs == 0 {
                return bad("--seeds and --jobs must be at least 1".into());
            }
            // more threads than seeds would only idle (and share the cores the seeds run on)
            let jobs = jobs.min(seeds as usize);
            let start = Instant::now();
            let sim_ms = Arc::new(AtomicU64::new(0));
            let cpu_ns = Arc::new(AtomicU64::new(0));
            let next = Arc::new(AtomicU64::new(0));
            std::thread::scope(|s| {
                for _ in 0..jobs {
                    let (sim_ms, cpu_ns, next) = (sim_ms.clone(), cpu_ns.clone(), next.clone());
                    s.spawn(move || {
                        loop {
                            let seed = next.fetch_add(1, Ordering::SeqCst);
                            if seed >= seeds {
                                break;
                            }
                            let r = run_seed(seed, None, None, TraceMode::Hash);
                            sim_ms.fetch_add(r.stats.sim_ms, Ordering::SeqCst);
                            cpu_ns.fetch_add(r.cpu.as_nanos() as u64, Ordering::SeqCst);
                        }
                    });
                }
            });
            let wall = start.elapsed().as_secs_f64();
            let sim = sim_ms.load(Ordering::SeqCst) as f64 / 1000.0;
            let cpu = Duration::from_nanos(cpu_ns.load(Ordering::SeqCst));
            println!(
                "bench: {seeds} swarm seeds, {jobs} jobs: {:.1}s simulated in {:.2}s wall",
                sim, wall
            );
            println!(
                "simulated/real per core: {}",
                speed(sim_ms.load(Ordering::SeqCst), cpu, "")
            );
            let cpu_per_seed = cpu_ns.load(Ordering::SeqCst) as f64 / 1e9 / seeds as f64;
            // wall-clock rates depend on what else the machine runs; the CPU-based one does not
            println!(
                "seeds/s: {:.2} by the wall clock, {:.2} per core by CPU time",
                seeds as f64 / wall,
                1.0 / cpu_per_seed.max(1e-9)
            );
            println!(
                "CPU per seed: {cpu_per_seed:.3}s; 10,000 seeds on 2 free cores: ~{:.1} min",
                10_000.0 * cpu_per_seed / 2.0 / 60.0
            );
            ExitCode::SUCCESS
        }
    }
}

/// `replay`: the run recorded, then printed through the filters; the failure's context is the
/// last lines of the servers and clients the violation names; `--html` writes the explorer.
fn replay(
    seed: u64,
    scenario: Option<Params>,
    plant: Option<Plant>,
    liveness: Option<Liveness>,
    view: &View,
    filter: &ensemble_sim::replay::Filter,
) -> ExitCode {
    use ensemble_sim::replay::{Involved, context};
    let (mut p, _) = ensemble_sim::runner::params_for(seed, scenario.as_ref());
    if let Some(l) = liveness {
        p.liveness = l;
    }
    let header = format!(
        "seed={seed} {}",
        ensemble_sim::runner::describe(&p, plant.or(p.plant))
    );
    println!("# {header}");
    println!(
        "# columns: {}simulated ms, node (nN server, cN client), role, event; indented lines are the effects of the event above",
        if view.numbers || !filter.is_empty() {
            "line, "
        } else {
            ""
        }
    );
    if !filter.is_empty() {
        println!("# filtered: {}", describe_filter(filter));
    }
    let r = run_seed_with(seed, scenario.as_ref(), plant, TraceMode::Record, liveness);
    let numbered = view.numbers || !filter.is_empty();
    let show = |rec: &ensemble_sim::trace::Rec| {
        if numbered {
            println!("{:>7} {}", rec.n, rec.line());
        } else {
            println!("{}", rec.line());
        }
    };
    for rec in filter.apply(&r.records) {
        show(rec);
    }
    println!("# ----");
    print_stats(&r);
    if let Some(e) = &r.expected {
        println!("expected finding (the scenario demonstrates it): {e}");
    }
    if let Some(path) = &view.html {
        let page = ensemble_sim::explorer::page(&ensemble_sim::explorer::Run {
            seed,
            header: &header,
            records: &r.records,
            violation: r.violation.as_ref().or(r.expected.as_ref()),
            voters: p.voters,
            observers: p.observers,
            fault_end: p.fault_phase_ms,
            end: r.stopped_at,
        });
        if let Err(e) = std::fs::write(path, &page) {
            return bad(format!("--html: cannot write {}: {e}", path.display()));
        }
        println!(
            "explorer: {} ({} KB)",
            path.display(),
            page.len().div_ceil(1024)
        );
    }
    let code = match &r.violation {
        None => {
            println!("PASS");
            ExitCode::SUCCESS
        }
        Some(v) => {
            println!("FAIL {}: {}", v.claim, v.detail);
            let inv = Involved::of(v);
            let ctx = context(&r.records, &inv, 40);
            let whom = describe_filter(&inv.filter());
            println!(
                "the failure in context (last {} trace lines{}):",
                ctx.len(),
                if whom.is_empty() {
                    String::new()
                } else {
                    format!(" of {whom}")
                }
            );
            for rec in ctx {
                println!("  {:>7} {}", rec.n, rec.line());
            }
            println!("FAIL {v}");
            ExitCode::from(1)
        }
    };
    println!("trace={:016x}", r.hash);
    code
}

fn describe_filter(f: &ensemble_sim::replay::Filter) -> String {
    let mut parts: Vec<String> = Vec::new();
    parts.extend(f.nodes.iter().map(|n| format!("n{n}")));
    parts.extend(f.clients.iter().map(|c| format!("c{c}")));
    if let Some(a) = f.from {
        parts.push(format!("from {a} ms"));
    }
    if let Some(b) = f.to {
        parts.push(format!("to {b} ms"));
    }
    parts.join(", ")
}

/// `replay --against OLD`: this build's replay of the seed, compared event by event with an
/// earlier replay's output; the first event that differs is named with both versions.
fn against_cmd(seed: u64, common: &Common, old: &std::path::Path) -> ExitCode {
    if let Err(e) = load(common) {
        return bad(e);
    }
    let old_text = match std::fs::read_to_string(old) {
        Ok(t) => t,
        Err(e) => return bad(format!("--against: cannot read {}: {e}", old.display())),
    };
    let old_events = trace_events(&old_text);
    let timed = |l: &str| {
        l.split_whitespace()
            .next()
            .is_some_and(|t| t.parse::<u64>().is_ok())
    };
    if !old_events.first().is_some_and(|l| timed(l)) {
        return bad(format!(
            "--against: {} holds no trace lines (expected the output of `ensemble-sim replay`)",
            old.display()
        ));
    }
    // this build's replay, as a child process with the same flags: its output is the trace
    let mut args: Vec<String> = vec!["replay".into(), "--seed".into(), seed.to_string()];
    for (flag, v) in [
        (
            "--scenario",
            common.scenario.as_ref().map(|p| p.display().to_string()),
        ),
        ("--plant", common.plant.clone()),
        ("--liveness", common.liveness.clone()),
    ] {
        if let Some(v) = v {
            args.push(flag.into());
            args.push(v);
        }
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return bad(format!("--against: cannot find this program: {e}")),
    };
    let out = match std::process::Command::new(exe).args(&args).output() {
        Ok(o) => o,
        Err(e) => return bad(format!("--against: cannot run the replay: {e}")),
    };
    let new_text = String::from_utf8_lossy(&out.stdout);
    let new_events = trace_events(&new_text);
    use ensemble_sim::replay::Difference;
    match first_difference(&old_events, &new_events) {
        Some(Difference::At {
            at,
            old,
            new,
            common,
        }) => {
            println!("first difference at trace line {}:", at + 1);
            println!("  old: {old}");
            println!("  new: {new}");
            if let Some(c) = common {
                println!("  last event in common: {c}");
            }
            ExitCode::from(1)
        }
        Some(Difference::Longer {
            n,
            old_goes_on,
            next,
        }) => {
            let which = if old_goes_on { "old" } else { "new" };
            println!("the runs agree for {n} events, then the {which} one goes on: {next}");
            ExitCode::from(1)
        }
        None => {
            println!("the same {} events", new_events.len());
            ExitCode::SUCCESS
        }
    }
}

/// `check`: each reproduction's verdict, one a line, with what its bug run did.
fn check_cmd(path: &std::path::Path, record: bool) -> ExitCode {
    use ensemble_sim::findings::{Against, Verdict, check, load_all};
    let repros = match load_all(path) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let mut failed = 0;
    for r in &repros {
        let o = match check(r) {
            Ok(o) => o,
            Err(e) => return bad(e),
        };
        let f = &r.finding;
        let with = match r.params.plant {
            Some(p) => format!("with plant {}", p.name()),
            None => "on this core (open finding)".into(),
        };
        let did = match &o.bug_run {
            Some(v) => format!("{} at {} ms", v.claim, v.at_ms),
            None => "pass".into(),
        };
        println!(
            "{:<10} {} (FINDINGS {}: {}), seed {}",
            o.verdict.word(),
            r.name(),
            f.number,
            f.title,
            f.seed
        );
        println!("           {with}: {did} (expected {})", f.claim);
        match &o.verdict {
            Verdict::Reproduced if r.params.plant.is_some() => {
                println!("           without the plant: pass")
            }
            Verdict::Regressed(v) => println!("           without the plant: FAIL {v}"),
            Verdict::Fixed => println!(
                "           the core no longer shows it: re-create the bug as a plant and mark the file fixed"
            ),
            _ => {}
        }
        match (&o.verdict, &o.against) {
            (Verdict::Stale(_), Against::Unrecorded) => println!(
                "           no {} to name where it diverged",
                r.trace_path().display()
            ),
            (_, a) => println!("           {a}"),
        }
        if o.verdict.fails() {
            failed += 1;
        }
        if record {
            if matches!(o.verdict, Verdict::Reproduced) {
                let mut text = format!("# {}\n", o.header);
                for l in &o.lines {
                    text.push_str(l);
                    text.push('\n');
                }
                if let Err(e) = std::fs::write(r.trace_path(), text) {
                    return bad(format!(
                        "--record: cannot write {}: {e}",
                        r.trace_path().display()
                    ));
                }
                println!("           recorded {}", r.trace_path().display());
            } else {
                println!("           not recorded (it does not reproduce)");
            }
        }
    }
    println!(
        "check: {} reproductions, {} STALE or REGRESSED",
        repros.len(),
        failed
    );
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn shrink_cmd(
    seed: u64,
    scenario: Option<Params>,
    plant: Option<Plant>,
    out: Option<PathBuf>,
    budget: u64,
    tries: u64,
) -> ExitCode {
    use ensemble_sim::shrink::{Options, shrink};
    let opts = Options { budget, tries };
    let start = Instant::now();
    let mut say = |s: &str| println!("{s}");
    let r = match shrink(seed, scenario.as_ref(), plant, &opts, &mut say) {
        Ok(r) => r,
        Err(e) => {
            println!("{e}");
            return ExitCode::from(1);
        }
    };
    let out = out.unwrap_or_else(|| PathBuf::from(format!("shrunk-{seed}.toml")));
    let replay = format!(
        "ensemble-sim run --seed {} --scenario {}",
        r.seed,
        out.display()
    );
    let mut params = r.params.clone();
    params.name = format!("shrunk-{seed}");
    let header = format!(
        "Shrunk by `ensemble-sim shrink --seed {seed}{}`: {}\n{}\nbefore: {}\nafter:  {}\nreplay: {replay}",
        plant
            .map(|p| format!(" --plant {}", p.name()))
            .unwrap_or_default(),
        r.claim,
        r.detail,
        r.before,
        r.after
    );
    let text = ensemble_sim::scenario::to_toml(&params, &header);
    if let Err(e) = std::fs::write(&out, text) {
        return bad(format!("--out: cannot write {}: {e}", out.display()));
    }
    // what was written must replay the failure by itself
    let check = ensemble_sim::scenario::load(&out)
        .map(|p| run_seed(r.seed, Some(&p), None, TraceMode::Hash));
    match check {
        Ok(c) if c.hash == r.hash => {}
        Ok(_) | Err(_) => {
            println!(
                "{} does not replay the shrunk run (a bug in shrink)",
                out.display()
            );
            return ExitCode::from(1);
        }
    }
    println!("claim:  {}", r.claim);
    println!("before: {}", r.before);
    println!("after:  {}", r.after);
    println!(
        "{} runs in {:.1}s; written to {}",
        r.runs,
        start.elapsed().as_secs_f64(),
        out.display()
    );
    println!("replay: {replay}");
    ExitCode::SUCCESS
}

/// How often a sweep whose stderr is not a terminal prints a progress line.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

struct SweepOpts {
    first: bool,
    coverage: Option<PathBuf>,
    require_coverage: bool,
}

fn sweep(
    a: u64,
    b: u64,
    jobs: usize,
    opts: &SweepOpts,
    scenario: Option<Params>,
    plant: Option<Plant>,
    common: &Common,
) -> ExitCode {
    let total = b - a;
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds  {msg}  [{elapsed_precise} eta {eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = AtomicU64::new(a);
    let stop = AtomicBool::new(false);
    let results: Mutex<BTreeMap<u64, RunResult>> = Mutex::new(BTreeMap::new());
    let printed = Mutex::new(a);
    let failures = AtomicU64::new(0);
    let start = Instant::now();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        // indicatif draws nothing when stderr is not a terminal (CI logs, nohup): a plain line
        // every few seconds there instead, so a long sweep shows it is alive and how far it got.
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            s.spawn(|| {
                let mut last = Instant::now();
                while !done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                    if last.elapsed() >= PROGRESS_EVERY && !done.load(Ordering::SeqCst) {
                        last = Instant::now();
                        let n = pb.position();
                        let el = start.elapsed().as_secs_f64();
                        let eta = if n > 0 {
                            format!("{:.0}s", el / n as f64 * (total - n.min(total)) as f64)
                        } else {
                            "?".into()
                        };
                        eprintln!(
                            "sweep: {n}/{total} seeds, {} failed, {el:.0}s elapsed, eta {eta}",
                            failures.load(Ordering::SeqCst)
                        );
                    }
                }
            });
        }
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(|| {
                    loop {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let seed = next.fetch_add(1, Ordering::SeqCst);
                        if seed >= b {
                            break;
                        }
                        let r = run_seed_with(
                            seed,
                            scenario.as_ref(),
                            plant,
                            TraceMode::Hash,
                            liveness_of(common).ok().flatten(),
                        );
                        if !r.passed() {
                            failures.fetch_add(1, Ordering::SeqCst);
                            if opts.first {
                                stop.store(true, Ordering::SeqCst);
                            }
                        }
                        pb.inc(1);
                        pb.set_message(format!("{} failed", failures.load(Ordering::SeqCst)));
                        let mut res = results.lock().unwrap_or_else(|e| e.into_inner());
                        res.insert(seed, r);
                        // print failures in seed order, whatever order the workers finish in
                        let mut p = printed.lock().unwrap_or_else(|e| e.into_inner());
                        while let Some(r) = res.get(&*p) {
                            if let Some(v) = &r.violation {
                                let line = format!(
                                    "seed={} FAIL {}: {}\n  replay: {}",
                                    r.seed,
                                    v.claim,
                                    v.detail,
                                    replay_cmd(r.seed, common)
                                );
                                pb.suspend(|| println!("{line}"));
                            }
                            *p += 1;
                        }
                    }
                })
            })
            .collect();
        // the progress thread ends with the workers; a worker's panic still ends the sweep
        let mut panicked = None;
        for w in workers {
            if let Err(e) = w.join() {
                panicked.get_or_insert(e);
            }
        }
        done.store(true, Ordering::SeqCst);
        if let Some(e) = panicked {
            std::panic::resume_unwind(e);
        }
    });
    pb.finish_and_clear();
    let res = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let ran = res.len() as u64;
    // with --first, seeds after the first failure may have run out of order: report the rest
    let p = *printed.lock().unwrap_or_else(|e| e.into_inner());
    for r in res.range(p..).map(|(_, r)| r) {
        if let Some(v) = &r.violation {
            println!(
                "seed={} FAIL {}: {}\n  replay: {}",
                r.seed,
                v.claim,
                v.detail,
                replay_cmd(r.seed, common)
            );
        }
    }
    let failed: Vec<u64> = res
        .values()
        .filter(|r| !r.passed())
        .map(|r| r.seed)
        .collect();
    let expected = res.values().filter(|r| r.expected.is_some()).count();
    let sim: u64 = res.values().map(|r| r.stats.sim_ms).sum();
    let cpu: Duration = res.values().map(|r| r.cpu).sum();
    let wall = start.elapsed();
    println!(
        "{ran} seeds ({}..{}), {} passed, {} failed{}; {:.0}s simulated in {:.1}s wall ({}, {:.1} seeds/s)",
        a,
        b,
        ran - failed.len() as u64,
        failed.len(),
        if expected > 0 {
            format!(", {expected} showed the expected finding")
        } else {
            String::new()
        },
        sim as f64 / 1000.0,
        wall.as_secs_f64(),
        speed(sim, cpu, " per core"),
        ran as f64 / wall.as_secs_f64().max(1e-9)
    );
    let mut coverage_ok = true;
    if opts.coverage.is_some() || opts.require_coverage {
        let mut cov = ensemble_sim::coverage::Coverage::new();
        for r in res.values() {
            cov.add(r.seed, &r.probes);
        }
        let reached = cov.probes.values().filter(|c| c.hits > 0).count();
        println!("coverage: {reached} of {} probes reached", cov.probes.len());
        if let Some(path) = &opts.coverage
            && let Err(e) = std::fs::write(path, cov.to_json())
        {
            eprintln!(
                "ensemble-sim: --coverage: cannot write {}: {e}",
                path.display()
            );
            return ExitCode::from(2);
        }
        if opts.require_coverage {
            for d in cov.missing() {
                coverage_ok = false;
                println!("coverage: probe `{}` never reached: {}", d.name, d.what);
            }
        }
    }
    if failed.is_empty() && coverage_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
