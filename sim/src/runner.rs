//! One seed, start to finish: draw the parameters (or take the scenario's), build the world,
//! run it, and report.

use crate::check::Violation;
use crate::params::Params;
use crate::rng::SimRng;
use crate::trace::Trace;
use crate::world::{Stats, World};
use ensemble_core::plant::Plant;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMode {
    /// Hash only (run, sweep).
    Hash,
    /// Print every line as it happens (replay).
    Echo,
    /// Keep every line as a record, printed nothing (filtered replay, the explorer).
    Record,
}

pub struct RunResult {
    pub seed: u64,
    /// CPU time this seed took on its thread (wall time where the OS does not say).
    pub cpu: Duration,
    pub violation: Option<Violation>,
    pub expected: Option<Violation>,
    pub hash: u64,
    pub stats: Stats,
    pub summary: String,
    pub wall: Duration,
    pub lines: u64,
    pub context: Vec<String>,
    /// The faults the run drew from its rates, as a schedule that replays them.
    pub drawn: Vec<crate::params::FaultStep>,
    /// When the run stopped (the violation's time, or the end).
    pub stopped_at: u64,
    /// Hits of each coverage probe (`ensemble_core::probe::PROBES` order) in this run.
    pub probes: Vec<u64>,
    /// Every trace line, with [`TraceMode::Record`] (else empty).
    pub records: Vec<crate::trace::Rec>,
}

impl RunResult {
    pub fn passed(&self) -> bool {
        self.violation.is_none()
    }
}

/// The parameters a seed runs with: the scenario's if given, else the seed's swarm draw.
pub fn params_for(seed: u64, scenario: Option<&Params>) -> (Params, SimRng) {
    let p = match scenario {
        Some(p) => p.clone(),
        None => Params::swarm(&mut SimRng::for_params(seed)),
    };
    (p, SimRng::new(seed))
}

/// This build's name: a hash of the core's, test kit's, protocol's and simulator's sources
/// (`sim/build.rs`), printed in every run header.
pub const BUILD: &str = env!("ENSEMBLE_SIM_BUILD");

pub fn describe(p: &Params, plant: Option<Plant>) -> String {
    let faults = p.random.names();
    let roles: Vec<&str> = p.clients.iter().map(|r| r.name()).collect();
    let mut roles_c: Vec<String> = Vec::new();
    let mut i = 0;
    while i < roles.len() {
        let mut j = i;
        while j < roles.len() && roles[j] == roles[i] {
            j += 1;
        }
        roles_c.push(format!("{}x{}", j - i, roles[i]));
        i = j;
    }
    format!(
        "{} voters={} observers={} tick={}ms initLimit={} syncLimit={} clients=[{}] net={}..{}ms fsync={}..{}ms faults=[{}]{}{}{}{}{}{}{} plant={} build={}",
        p.name,
        p.voters,
        p.observers,
        p.tick_ms,
        p.init_limit,
        p.sync_limit,
        roles_c.join(","),
        p.net_delay.0,
        p.net_delay.1,
        p.fsync_ms.0,
        p.fsync_ms.1,
        faults.join(","),
        if p.schedule.is_empty() {
            String::new()
        } else {
            format!(" scheduled={}", p.schedule.len())
        },
        match p.liveness {
            crate::params::Liveness::Full => "",
            crate::params::Liveness::Core => " liveness=core",
        },
        if p.initial_zxid_counter == 0 {
            String::new()
        } else {
            format!(" zxid-counter-from=0x{:x}", p.initial_zxid_counter)
        },
        if p.imported_sessions == 0 {
            String::new()
        } else {
            format!(" imported-sessions={}", p.imported_sessions)
        },
        if p.reconfig_disabled {
            " reconfig-disabled"
        } else {
            ""
        },
        if p.joiners == 0 {
            String::new()
        } else {
            format!(" joiners={}", p.joiners)
        },
        if p.reaper_every_tick {
            " reaper-every-tick"
        } else {
            ""
        },
        plant.map(|p| p.name()).unwrap_or("none"),
        BUILD,
    )
}

/// This thread's CPU time so far, for speed figures that do not depend on how busy the machine
/// is. The thread CPU clock (CLOCK_THREAD_CPUTIME_ID) counts to the nanosecond, the running
/// slice included; /proc/thread-self/schedstat, used before, lags by up to a scheduler tick
/// (4 ms at HZ=250), too much for a seed of a few tens of ms.
#[cfg(unix)]
pub fn thread_cpu() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer to a local.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(not(unix))]
pub fn thread_cpu() -> Option<Duration> {
    None
}

pub fn run_seed(
    seed: u64,
    scenario: Option<&Params>,
    plant: Option<Plant>,
    mode: TraceMode,
) -> RunResult {
    run_seed_with(seed, scenario, plant, mode, None)
}

/// [`run_seed`], with the heal's mode forced (`--liveness`) instead of the seed's or file's.
pub fn run_seed_with(
    seed: u64,
    scenario: Option<&Params>,
    plant: Option<Plant>,
    mode: TraceMode,
    liveness: Option<crate::params::Liveness>,
) -> RunResult {
    let start = Instant::now();
    let cpu0 = thread_cpu();
    let (mut params, mut rng) = params_for(seed, scenario);
    if let Some(l) = liveness {
        params.liveness = l;
    }
    let plant = plant.or(params.plant);
    let summary = describe(&params, plant);
    // this thread's probe counters: whatever an earlier run left is not this seed's
    let _ = ensemble_core::probe::take();
    let trace = match mode {
        TraceMode::Record => Trace::recording(),
        _ => Trace::new(mode == TraceMode::Echo),
    };
    let mut world = World::new(params, plant, &mut rng, trace);
    world.run();
    let probes = ensemble_core::probe::take();
    let context: Vec<String> = world.trace.tail().cloned().collect();
    let wall = start.elapsed();
    let cpu = match (cpu0, thread_cpu()) {
        (Some(a), Some(b)) if b >= a => b - a,
        _ => wall,
    };
    RunResult {
        seed,
        cpu,
        violation: world.violation.clone(),
        expected: world.expected_seen.clone(),
        hash: world.trace.hash(),
        stats: world.stats.clone(),
        summary,
        wall,
        lines: world.trace.len(),
        context,
        drawn: std::mem::take(&mut world.drawn),
        stopped_at: world.stats.sim_ms,
        probes,
        records: world.trace.take_records(),
    }
}
