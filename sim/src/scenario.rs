//! Scenario files (`scenarios/*.toml`): a fixed topology, timing, workload and fault schedule,
//! and the claims the scenario demonstrates. A malformed file is refused with an error that
//! names the field.

use crate::params::{ClientTarget, DiskFault, FaultAction, FaultStep, Params, Role, Target};
use ensemble_core::plant::Plant;
use ensemble_testkit::disk_faults::FileKind;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub duration_ms: Option<u64>,
    pub fault_phase_ms: Option<u64>,
    pub liveness_bound_ms: Option<u64>,
    /// `full` (the default) or `core`: what the heal at `fault_phase_ms` heals.
    pub liveness: Option<String>,
    pub topology: Topology,
    #[serde(default)]
    pub timing: Timing,
    #[serde(default)]
    pub workload: Workload,
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
    #[serde(default)]
    pub random_faults: RandomFaults,
    #[serde(default)]
    pub claims: Claims,
    /// A planted bug the scenario runs with (what `shrink` writes for a plant's failure).
    pub plant: Option<String>,
    /// A reproduction's `[finding]` table (scenarios/findings/), read by `findings::load`.
    pub finding: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub voters: u64,
    #[serde(default)]
    pub observers: u64,
    /// Servers outside the first configuration, started with it plus themselves
    /// (`Params::joiners`): ids after the members.
    #[serde(default)]
    pub joiners: u64,
    /// `off`, `on` or `mixed` (odd server ids): `zookeeper.enforceQuota`.
    pub enforce_quota: Option<String>,
    /// `readonlymode.enabled` (clients ask canBeReadOnly).
    #[serde(default)]
    pub read_only_mode: bool,
    /// `reconfigEnabled` (on unless set false: every reconfig is then refused).
    #[serde(default)]
    pub reconfig_enabled: Option<bool>,
    /// `off`, `on` (no upgrading) or `upgrading`: `localSessionsEnabled` and
    /// `localSessionsUpgradingEnabled`.
    pub local_sessions: Option<String>,
    /// Start from a tree imported from ZooKeeper with this many live sessions (their clients
    /// the first ones, re-attaching with ZooKeeper's passwords).
    #[serde(default)]
    pub imported_sessions: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    pub tick_ms: Option<u64>,
    pub init_limit: Option<u32>,
    pub sync_limit: Option<u32>,
    pub net_delay_ms: Option<[u64; 2]>,
    pub fsync_ms: Option<[u64; 2]>,
    pub session_timeout_ms: Option<[u64; 2]>,
    pub tcp_timeout_ms: Option<u64>,
    pub spike_prob: Option<f64>,
    pub spike_ms: Option<u64>,
    pub snap_count: Option<u64>,
    pub committed_log_size: Option<usize>,
    pub drift_ppm: Option<u64>,
    pub tick_jitter_pct: Option<u64>,
    pub unsynced_survive: Option<f64>,
    pub torn_tail: Option<f64>,
    pub sync_crash: Option<f64>,
    pub discovery_crash: Option<f64>,
    pub initial_zxid_counter: Option<u32>,
    pub reaper_every_tick: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    #[serde(default)]
    pub clients: Vec<ClientGroup>,
    /// The `reconfig` client's plan: `["add 4", "remove leader", "replace 2 by 6",
    /// "members 1,2,3:observer"]`, made in order.
    #[serde(default)]
    pub reconfig: Vec<String>,
    pub think_ms: Option<[u64; 2]>,
    pub keys: Option<u32>,
    pub max_outstanding: Option<usize>,
    pub async_clients: Option<Vec<usize>>,
    pub async_pipeline: Option<usize>,
    /// `Params::odd_requests`; absent: off (a file written before it keeps its run).
    pub odd_requests: Option<bool>,
    pub mix: Option<MixFile>,
}

/// The random role's operation weights (see `params::Mix`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixFile {
    pub create: Option<u32>,
    pub set: Option<u32>,
    pub get: Option<u32>,
    pub delete: Option<u32>,
    pub multi: Option<u32>,
    pub sync_read: Option<u32>,
    pub children: Option<u32>,
    pub ephemeral: Option<u32>,
    pub sequential: Option<u32>,
    pub watch: Option<f64>,
    pub versioned: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientGroup {
    pub role: String,
    #[serde(default = "one")]
    pub count: usize,
}

fn one() -> usize {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub at_ms: u64,
    pub action: String,
    pub target: Option<String>,
    pub client: Option<String>,
    pub ms: Option<u64>,
    pub every_ms: Option<u64>,
    /// Steps of a lane are chained (see `FaultStep::lane`).
    pub lane: Option<usize>,
    pub from: Option<u64>,
    pub to: Option<u64>,
    /// partition: the two sides (a server on both is a bridge), one-way cuts [from, to].
    pub side_a: Option<Vec<u64>>,
    pub side_b: Option<Vec<u64>>,
    pub cut: Option<Vec<[u64; 2]>>,
    pub desc: Option<String>,
    /// swizzle: clogs [from, to, ms].
    pub clogs: Option<Vec<[u64; 3]>>,
    /// reset-link: "quorum" or "election".
    pub channel: Option<String>,
    pub conn: Option<u64>,
    pub extra_ms: Option<u64>,
    /// storage faults: the kind of file ("log", "snapshot", "epoch") and the draw that picks
    /// the byte, record or sector.
    pub file: Option<String>,
    pub draw: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomFaults {
    pub partition_every_ms: Option<u64>,
    pub partition_ms: Option<u64>,
    pub clog_every_ms: Option<u64>,
    pub clog_ms: Option<u64>,
    pub reset_every_ms: Option<u64>,
    pub client_reset_every_ms: Option<u64>,
    pub crash_every_ms: Option<u64>,
    pub down_ms: Option<u64>,
    pub pause_every_ms: Option<u64>,
    pub pause_ms: Option<u64>,
    pub client_crash_every_ms: Option<u64>,
    pub swizzle_every_ms: Option<u64>,
    pub stall_every_ms: Option<u64>,
    pub stall_ms: Option<u64>,
    pub spike_every_ms: Option<u64>,
    pub spike_len_ms: Option<u64>,
    pub client_pause_every_ms: Option<u64>,
    pub client_pause_ms: Option<u64>,
    pub client_close_every_ms: Option<u64>,
    pub corrupt_every_ms: Option<u64>,
    pub misdirect_every_ms: Option<u64>,
    pub latent_read_every_ms: Option<u64>,
    pub lost_fsync_every_ms: Option<u64>,
    pub disk_loss_every_ms: Option<u64>,
    pub disk_loss_down_ms: Option<u64>,
    pub write_error_every_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    #[serde(default)]
    pub check: Vec<String>,
    pub expect_violation: Option<String>,
}

/// Scenario-level claims beyond those every run checks.
pub const SCENARIO_CLAIMS: &[&str] = &[
    "majority-commits-during-partition",
    "unavailable-without-quorum",
    "observer-loss-keeps-quorum",
    "leader-change",
    "all-synced",
    "zxid-rollover",
];

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file {path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("scenario file {path}: {msg}")]
    Parse { path: String, msg: String },
    #[error("scenario file {path}: field `{field}`: {msg}")]
    Field {
        path: String,
        field: String,
        msg: String,
    },
}

fn target(s: &str) -> Option<Target> {
    Some(match s {
        "leader" => Target::Leader,
        "follower" => Target::Follower,
        "observer" => Target::Observer,
        "crashed" => Target::Crashed,
        "all" => Target::All,
        "minority-with-leader" => Target::MinorityWithLeader,
        "minority-without-leader" => Target::MinorityWithoutLeader,
        "majority-without-leader" => Target::MajorityWithoutLeader,
        other => Target::Id(
            other
                .strip_prefix("server.")
                .unwrap_or(other)
                .parse()
                .ok()?,
        ),
    })
}

fn client_target(s: &str) -> Option<ClientTarget> {
    Some(match s {
        "lock-holder" => ClientTarget::LockHolder,
        "master" => ClientTarget::Master,
        other => match other.strip_prefix("client.") {
            Some(n) => ClientTarget::Index(n.parse().ok()?),
            None => ClientTarget::Role(Role::from_name(other)?.name().to_string()),
        },
    })
}

/// The server targets a topology has, for error messages.
fn valid_targets(voters: u64, observers: u64) -> String {
    let members = voters + observers;
    let mut v = vec!["leader", "crashed", "all"];
    if voters >= 2 {
        v.extend(["follower", "majority-without-leader"]);
    }
    if voters >= 3 {
        v.extend(["minority-with-leader", "minority-without-leader"]);
    }
    if observers > 0 {
        v.push("observer");
    }
    format!("{}, server.1 to server.{members}", v.join(", "))
}

/// The client targets a workload has, for error messages.
fn valid_clients(clients: &[Role]) -> String {
    let mut v: Vec<String> = Vec::new();
    if clients.iter().any(|r| matches!(r, Role::Lock { .. })) {
        v.push("lock-holder".into());
    }
    if clients.contains(&Role::Election) {
        v.push("master".into());
    }
    for r in clients {
        if !v.iter().any(|x| x == r.name()) {
            v.push(r.name().to_string());
        }
    }
    match clients.len() {
        0 => v.push("no client.N (no clients)".into()),
        n => v.push(format!("client.0 to client.{}", n - 1)),
    }
    v.join(", ")
}

pub fn load(path: &Path) -> Result<Params, ScenarioError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|err| ScenarioError::Io {
        path: p.clone(),
        err,
    })?;
    parse(&text, &p)
}

pub fn parse(text: &str, p: &str) -> Result<Params, ScenarioError> {
    let f: ScenarioFile = toml::from_str(text).map_err(|e| ScenarioError::Parse {
        path: p.to_string(),
        msg: e.to_string().trim().to_string(),
    })?;
    let field = |field: &str, msg: String| ScenarioError::Field {
        path: p.to_string(),
        field: field.to_string(),
        msg,
    };
    let mut params = Params::base();
    params.name = f.name.clone();
    if !(1..=9).contains(&f.topology.voters) {
        return Err(field(
            "topology.voters",
            format!("{} voters: expected 1 to 9", f.topology.voters),
        ));
    }
    if f.topology.observers > 4 {
        return Err(field(
            "topology.observers",
            format!("{} observers: expected 0 to 4", f.topology.observers),
        ));
    }
    params.voters = f.topology.voters;
    params.observers = f.topology.observers;
    if f.topology.joiners > 2 {
        return Err(field(
            "topology.joiners",
            format!("{} joiners: expected 0 to 2", f.topology.joiners),
        ));
    }
    params.joiners = f.topology.joiners;
    params.read_only_mode = f.topology.read_only_mode;
    params.reconfig_disabled = f.topology.reconfig_enabled == Some(false);
    params.imported_sessions = f.topology.imported_sessions;
    if let Some(m) = &f.topology.local_sessions {
        (params.local_sessions, params.local_sessions_upgrading) = match m.as_str() {
            "off" => (false, false),
            "on" => (true, false),
            "upgrading" => (true, true),
            _ => {
                return Err(field(
                    "topology.local_sessions",
                    format!("{m:?}: expected \"off\", \"on\" or \"upgrading\""),
                ));
            }
        };
    }
    if let Some(e) = &f.topology.enforce_quota {
        params.enforce_quota = crate::params::EnforceQuota::from_name(e).ok_or_else(|| {
            field(
                "topology.enforce_quota",
                format!("{e:?}: expected \"off\", \"on\" or \"mixed\""),
            )
        })?;
    }
    let t = &f.timing;
    if let Some(v) = t.tick_ms {
        if !(10..=2000).contains(&v) {
            return Err(field("timing.tick_ms", format!("{v}: expected 10 to 2000")));
        }
        params.tick_ms = v;
    }
    params.init_limit = t.init_limit.unwrap_or(params.init_limit).max(1);
    params.sync_limit = t.sync_limit.unwrap_or(params.sync_limit).max(1);
    let range =
        |name: &str, r: Option<[u64; 2]>, dflt: (u64, u64)| -> Result<(u64, u64), ScenarioError> {
            match r {
                None => Ok(dflt),
                Some([a, b]) if a <= b => Ok((a, b)),
                Some([a, b]) => Err(field(
                    name,
                    format!("[{a}, {b}]: the low end is above the high end"),
                )),
            }
        };
    params.net_delay = range("timing.net_delay_ms", t.net_delay_ms, params.net_delay)?;
    params.fsync_ms = range("timing.fsync_ms", t.fsync_ms, params.fsync_ms)?;
    params.session_timeout_ms = range(
        "timing.session_timeout_ms",
        t.session_timeout_ms,
        (4 * params.tick_ms, 10 * params.tick_ms),
    )?;
    params.tcp_timeout_ms = t.tcp_timeout_ms.unwrap_or(params.tcp_timeout_ms);
    if let Some(sp) = t.spike_prob {
        if !(0.0..=1.0).contains(&sp) {
            return Err(field(
                "timing.spike_prob",
                format!("{sp}: expected a probability 0..1"),
            ));
        }
        params.spike_prob = sp;
    }
    params.spike_ms = t.spike_ms.unwrap_or(200);
    params.snap_count = t.snap_count.unwrap_or(params.snap_count);
    params.committed_log_size = t.committed_log_size.unwrap_or(params.committed_log_size);
    params.drift_ppm = t.drift_ppm.unwrap_or(params.drift_ppm);
    params.tick_jitter_pct = t.tick_jitter_pct.unwrap_or(params.tick_jitter_pct);
    if params.tick_jitter_pct > 100 {
        return Err(field(
            "timing.tick_jitter_pct",
            format!("{}: expected 0 to 100", params.tick_jitter_pct),
        ));
    }
    let prob = |name: &str, v: Option<f64>, dflt: f64| -> Result<f64, ScenarioError> {
        match v {
            None => Ok(dflt),
            Some(x) if (0.0..=1.0).contains(&x) => Ok(x),
            Some(x) => Err(field(name, format!("{x}: expected a probability 0..1"))),
        }
    };
    params.unsynced_survive = prob(
        "timing.unsynced_survive",
        t.unsynced_survive,
        params.unsynced_survive,
    )?;
    params.torn_tail = prob("timing.torn_tail", t.torn_tail, params.torn_tail)?;
    params.sync_crash = prob("timing.sync_crash", t.sync_crash, params.sync_crash)?;
    params.discovery_crash = prob(
        "timing.discovery_crash",
        t.discovery_crash,
        params.discovery_crash,
    )?;
    params.initial_zxid_counter = t
        .initial_zxid_counter
        .unwrap_or(params.initial_zxid_counter);
    params.reaper_every_tick = t.reaper_every_tick.unwrap_or(params.reaper_every_tick);
    params.duration_ms = f.duration_ms.unwrap_or(60_000);
    params.fault_phase_ms = f.fault_phase_ms.unwrap_or(params.duration_ms * 2 / 3);
    if params.fault_phase_ms > params.duration_ms {
        return Err(field(
            "fault_phase_ms",
            format!(
                "{} is after duration_ms {}",
                params.fault_phase_ms, params.duration_ms
            ),
        ));
    }
    params.liveness_bound_ms = f.liveness_bound_ms.unwrap_or(20_000);
    if let Some(l) = &f.liveness {
        params.liveness = crate::params::Liveness::from_name(l)
            .ok_or_else(|| field("liveness", format!("unknown `{l}` (expected full or core)")))?;
    }
    let w = &f.workload;
    if !w.clients.is_empty() {
        params.clients.clear();
        for (i, g) in w.clients.iter().enumerate() {
            let role = Role::from_name(&g.role).ok_or_else(|| {
                field(
                    &format!("workload.clients[{i}].role"),
                    format!("unknown role `{}` (expected random, reader, lock, lock-fenced, election, member, monitor, config-writer, config-reader, naming, acl)", g.role),
                )
            })?;
            for _ in 0..g.count {
                params.clients.push(role.clone());
            }
        }
    }
    for (i, s) in w.reconfig.iter().enumerate() {
        let step = crate::params::ReconfigStep::parse(s)
            .map_err(|e| field(&format!("workload.reconfig[{i}]"), e))?;
        if let Some(bad) = step.ids().into_iter().find(|id| *id > params.servers()) {
            return Err(field(
                &format!("workload.reconfig[{i}]"),
                format!(
                    "server.{bad}: the run has servers 1 to {}",
                    params.servers()
                ),
            ));
        }
        params.reconfig_plan.push(step);
    }
    if !params.reconfig_plan.is_empty() && !params.clients.contains(&Role::Reconfig) {
        return Err(field(
            "workload.reconfig",
            "a plan needs a `reconfig` client in workload.clients".into(),
        ));
    }
    params.think_ms = range("workload.think_ms", w.think_ms, params.think_ms)?;
    params.keys = w.keys.unwrap_or(params.keys).max(1);
    params.max_outstanding = w.max_outstanding.unwrap_or(params.max_outstanding).max(1);
    params.async_pipeline = w.async_pipeline.unwrap_or(params.async_pipeline).max(1);
    params.odd_requests = w.odd_requests.unwrap_or(false);
    if let Some(a) = &w.async_clients {
        if let Some(i) = a.iter().find(|i| **i >= params.clients.len()) {
            return Err(field(
                "workload.async_clients",
                format!("client {i}: there are {} clients", params.clients.len()),
            ));
        }
        params.async_clients = a.clone();
    }
    if let Some(m) = &w.mix {
        let x = &mut params.mix;
        x.create = m.create.unwrap_or(x.create);
        x.set = m.set.unwrap_or(x.set);
        x.get = m.get.unwrap_or(x.get);
        x.delete = m.delete.unwrap_or(x.delete);
        x.multi = m.multi.unwrap_or(x.multi);
        x.sync_read = m.sync_read.unwrap_or(x.sync_read);
        x.children = m.children.unwrap_or(x.children);
        x.ephemeral = m.ephemeral.unwrap_or(x.ephemeral);
        x.sequential = m.sequential.unwrap_or(x.sequential);
        x.watch = prob("workload.mix.watch", m.watch, x.watch)?;
        x.versioned = prob("workload.mix.versioned", m.versioned, x.versioned)?;
    }
    let members = params.servers();
    let clients = params.clients.len();
    for (i, ft) in f.faults.iter().enumerate() {
        let name = |k: &str| format!("fault[{i}].{k}");
        let need_target = || -> Result<Target, ScenarioError> {
            let s = ft.target.as_deref().ok_or_else(|| field(&name("target"), "missing (leader, follower, observer, crashed, all, minority-with-leader, minority-without-leader, majority-without-leader, or a server id)".into()))?;
            let valid = valid_targets(params.voters, params.observers);
            let t = target(s).ok_or_else(|| {
                field(
                    &name("target"),
                    format!("unknown target `{s}` (valid targets: {valid})"),
                )
            })?;
            // a target this topology does not have would be silently skipped when the step
            // fires, and the run would pass without the fault it was written for
            match t {
                Target::Id(id) if !(1..=members).contains(&id) => Err(field(
                    &name("target"),
                    format!("`{s}`: no such server in this topology (valid targets: {valid})"),
                )),
                Target::Observer if params.observers == 0 => Err(field(
                    &name("target"),
                    format!("`{s}`: the topology has no observers (valid targets: {valid})"),
                )),
                // with too few voters these name nobody, ever
                Target::Follower | Target::MajorityWithoutLeader if params.voters < 2 => {
                    Err(field(
                        &name("target"),
                        format!("`{s}`: one voter has no followers (valid targets: {valid})"),
                    ))
                }
                Target::MinorityWithLeader | Target::MinorityWithoutLeader if params.voters < 3 => {
                    Err(field(
                        &name("target"),
                        format!(
                            "`{s}`: {} voters have no minority to cut off (valid targets: {valid})",
                            params.voters
                        ),
                    ))
                }
                t => Ok(t),
            }
        };
        let need_ms = || {
            ft.ms
                .ok_or_else(|| field(&name("ms"), "missing (how long, in ms)".into()))
        };
        let need_client = || -> Result<ClientTarget, ScenarioError> {
            let s = ft.client.as_deref().ok_or_else(|| {
                field(
                    &name("client"),
                    "missing (lock-holder, master, client.N or a role name)".into(),
                )
            })?;
            let valid = valid_clients(&params.clients);
            let t = client_target(s).ok_or_else(|| {
                field(
                    &name("client"),
                    format!("unknown client `{s}` (valid clients: {valid})"),
                )
            })?;
            let has = |f: &dyn Fn(&Role) -> bool| params.clients.iter().any(f);
            let exists = match &t {
                ClientTarget::Index(i) => *i < clients,
                ClientTarget::Role(r) => has(&|x| x.name() == r),
                ClientTarget::LockHolder => has(&|x| matches!(x, Role::Lock { .. })),
                ClientTarget::Master => has(&|x| *x == Role::Election),
            };
            if !exists {
                return Err(field(
                    &name("client"),
                    format!("`{s}`: no such client in this workload (valid clients: {valid})"),
                ));
            }
            Ok(t)
        };
        let server = |k: &str, v: Option<u64>| -> Result<u64, ScenarioError> {
            match v {
                None => Err(field(&name(k), "missing (a server id)".into())),
                Some(id) if (1..=members).contains(&id) => Ok(id),
                Some(id) => Err(field(
                    &name(k),
                    format!("server {id}: the servers are 1 to {members}"),
                )),
            }
        };
        let servers = |k: &str, v: &Option<Vec<u64>>| -> Result<Vec<u64>, ScenarioError> {
            let v = v.clone().unwrap_or_default();
            for id in &v {
                server(k, Some(*id))?;
            }
            Ok(v)
        };
        let client_index = || -> Result<usize, ScenarioError> {
            match need_client()? {
                ClientTarget::Index(i) if i < clients => Ok(i),
                ClientTarget::Index(i) => Err(field(
                    &name("client"),
                    format!("client.{i}: there are {clients} clients"),
                )),
                _ => Err(field(&name("client"), "expected client.N".into())),
            }
        };
        let action = match ft.action.as_str() {
            "none" => FaultAction::Nothing,
            "crash" if ft.ms.is_some() => match need_target()? {
                Target::Id(id) => FaultAction::CrashFor {
                    id: server("target", Some(id))?,
                    ms: need_ms()?,
                },
                _ => {
                    return Err(field(
                        &name("target"),
                        "a crash with `ms` (restart after) takes a server id".into(),
                    ));
                }
            },
            "crash" => FaultAction::Crash(need_target()?),
            "disk-loss" | "disk-rollback" => match need_target()? {
                Target::Id(id) => FaultAction::DiskLoss {
                    id: server("target", Some(id))?,
                    older: ft.action == "disk-rollback",
                    ms: need_ms()?,
                },
                _ => {
                    return Err(field(
                        &name("target"),
                        "a disk loss takes a server id".into(),
                    ));
                }
            },
            "stall" => FaultAction::Stall {
                target: need_target()?,
                ms: need_ms()?,
            },
            "partition" => {
                let a = servers("side_a", &ft.side_a)?;
                let b = servers("side_b", &ft.side_b)?;
                let mut sides: Vec<(u64, u8)> = Vec::new();
                for id in 1..=members {
                    let m = (if a.contains(&id) { 0b10 } else { 0 })
                        | (if b.contains(&id) { 0b01 } else { 0 });
                    if m != 0 {
                        sides.push((id, m));
                    }
                }
                let mut oneway = Vec::new();
                for [x, y] in ft.cut.clone().unwrap_or_default() {
                    oneway.push((server("cut", Some(x))?, server("cut", Some(y))?));
                }
                FaultAction::Partition {
                    sides,
                    oneway,
                    ms: need_ms()?,
                    desc: ft.desc.clone().unwrap_or_else(|| "scheduled".into()),
                }
            }
            "clog" => FaultAction::Clog {
                from: server("from", ft.from)?,
                to: server("to", ft.to)?,
                ms: need_ms()?,
            },
            "swizzle" => {
                let mut clogs = Vec::new();
                for [a, b, ms] in ft.clogs.clone().unwrap_or_default() {
                    clogs.push((server("clogs", Some(a))?, server("clogs", Some(b))?, ms));
                }
                FaultAction::Swizzle { clogs }
            }
            "reset-link" => FaultAction::ResetLink {
                a: server("from", ft.from)?,
                b: server("to", ft.to)?,
                election: match ft.channel.as_deref() {
                    Some("election") => true,
                    Some("quorum") | None => false,
                    Some(other) => {
                        return Err(field(
                            &name("channel"),
                            format!("unknown channel `{other}` (expected quorum or election)"),
                        ));
                    }
                },
            },
            "reset-conn" => FaultAction::ResetConn {
                conn: ft
                    .conn
                    .ok_or_else(|| field(&name("conn"), "missing (a connection id)".into()))?,
            },
            "slow" => match need_target()? {
                Target::Id(id) => FaultAction::Slow {
                    id: server("target", Some(id))?,
                    extra: ft.extra_ms.ok_or_else(|| {
                        field(&name("extra_ms"), "missing (added latency, ms)".into())
                    })?,
                    ms: need_ms()?,
                },
                _ => return Err(field(&name("target"), "expected a server id".into())),
            },
            "crash-client" if ft.ms.is_some() => FaultAction::CrashClientFor {
                client: client_index()?,
                ms: need_ms()?,
            },
            "close-session" => FaultAction::CloseSession {
                client: client_index()?,
            },
            "restart" => FaultAction::Restart(need_target()?),
            "isolate" => FaultAction::Isolate(need_target()?),
            "one-way" => FaultAction::OneWay(need_target()?),
            "pause" => FaultAction::Pause {
                target: need_target()?,
                ms: need_ms()?,
            },
            "reset" => FaultAction::Reset(need_target()?),
            "flap" => FaultAction::Flap {
                ms: need_ms()?,
                every: ft.every_ms.unwrap_or(500),
            },
            "heal" => FaultAction::Heal,
            "pause-client" => FaultAction::PauseClient {
                target: need_client()?,
                ms: need_ms()?,
            },
            "crash-client" => FaultAction::CrashClient(need_client()?),
            kind if DiskFault::from_name(kind).is_some() => {
                let fault = DiskFault::from_name(kind).expect("just matched");
                let id = match need_target()? {
                    Target::Id(id) => server("target", Some(id))?,
                    _ => {
                        return Err(field(
                            &name("target"),
                            format!("a storage fault needs a server id (`{kind}` hits one disk)"),
                        ));
                    }
                };
                let file = match ft.file.as_deref() {
                    None => FileKind::Log,
                    Some(f) => FileKind::from_name(f).ok_or_else(|| {
                        field(
                            &name("file"),
                            format!("unknown file kind `{f}` (expected log, snapshot or epoch)"),
                        )
                    })?,
                };
                FaultAction::Disk {
                    fault,
                    id,
                    file,
                    draw: ft.draw.unwrap_or(0),
                }
            }
            other => {
                return Err(field(
                    &name("action"),
                    format!(
                        "unknown action `{other}` (expected crash, restart, isolate, one-way, pause, stall, reset, flap, heal, pause-client, crash-client, partition, clog, swizzle, reset-link, reset-conn, slow, close-session, none; storage faults: corrupt, misdirect, latent-read, lost-fsync, write-error)"
                    ),
                ));
            }
        };
        if ft.at_ms > params.duration_ms {
            return Err(field(
                &name("at_ms"),
                format!("{} is after duration_ms {}", ft.at_ms, params.duration_ms),
            ));
        }
        params.schedule.push(FaultStep {
            at_ms: ft.at_ms,
            lane: ft.lane,
            action,
        });
    }
    let r = &f.random_faults;
    let rr = &mut params.random;
    rr.partition_every = r.partition_every_ms.unwrap_or(0);
    rr.partition_len = r.partition_ms.unwrap_or(2_000);
    rr.clog_every = r.clog_every_ms.unwrap_or(0);
    rr.clog_len = r.clog_ms.unwrap_or(500);
    rr.reset_every = r.reset_every_ms.unwrap_or(0);
    rr.client_reset_every = r.client_reset_every_ms.unwrap_or(0);
    rr.crash_every = r.crash_every_ms.unwrap_or(0);
    rr.down_len = r.down_ms.unwrap_or(2_000);
    rr.pause_every = r.pause_every_ms.unwrap_or(0);
    rr.pause_len = r.pause_ms.unwrap_or(1_000);
    rr.client_crash_every = r.client_crash_every_ms.unwrap_or(0);
    rr.swizzle_every = r.swizzle_every_ms.unwrap_or(0);
    rr.stall_every = r.stall_every_ms.unwrap_or(0);
    rr.stall_len = r.stall_ms.unwrap_or(1_000);
    rr.spike_every = r.spike_every_ms.unwrap_or(0);
    rr.spike_len = r.spike_len_ms.unwrap_or(1_000);
    rr.client_pause_every = r.client_pause_every_ms.unwrap_or(0);
    rr.client_pause_len = r.client_pause_ms.unwrap_or(1_000);
    rr.client_close_every = r.client_close_every_ms.unwrap_or(0);
    rr.corrupt_every = r.corrupt_every_ms.unwrap_or(0);
    rr.misdirect_every = r.misdirect_every_ms.unwrap_or(0);
    rr.latent_read_every = r.latent_read_every_ms.unwrap_or(0);
    rr.lost_fsync_every = r.lost_fsync_every_ms.unwrap_or(0);
    rr.disk_loss_every = r.disk_loss_every_ms.unwrap_or(0);
    rr.disk_loss_down = r.disk_loss_down_ms.unwrap_or(1_000);
    rr.write_error_every = r.write_error_every_ms.unwrap_or(0);
    if let Some(name) = &f.plant {
        params.plant = Some(Plant::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = Plant::ALL.iter().map(|p| p.name()).collect();
            field(
                "plant",
                format!("unknown plant `{name}` (known: {})", names.join(", ")),
            )
        })?);
    }
    for (i, c) in f.claims.check.iter().enumerate() {
        if !SCENARIO_CLAIMS.contains(&c.as_str()) {
            return Err(field(
                &format!("claims.check[{i}]"),
                format!(
                    "unknown claim `{c}` (expected one of {})",
                    SCENARIO_CLAIMS.join(", ")
                ),
            ));
        }
    }
    params.claims = f.claims.check.clone();
    params.expect_violation = f.claims.expect_violation.clone();
    Ok(params)
}

// ---- writing: every parameter, so the file runs exactly what it was written from -----------

fn target_name(t: &Target) -> String {
    match t {
        Target::Leader => "leader".into(),
        Target::Follower => "follower".into(),
        Target::Observer => "observer".into(),
        Target::Crashed => "crashed".into(),
        Target::All => "all".into(),
        Target::MinorityWithLeader => "minority-with-leader".into(),
        Target::MinorityWithoutLeader => "minority-without-leader".into(),
        Target::MajorityWithoutLeader => "majority-without-leader".into(),
        Target::Id(id) => format!("server.{id}"),
    }
}

fn client_name(t: &ClientTarget) -> String {
    match t {
        ClientTarget::LockHolder => "lock-holder".into(),
        ClientTarget::Master => "master".into(),
        ClientTarget::Index(i) => format!("client.{i}"),
        ClientTarget::Role(r) => r.clone(),
    }
}

/// A TOML string (basic, escaped).
fn q(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A float TOML reads back bit for bit (Rust prints the shortest exact form).
fn fl(x: f64) -> String {
    let s = format!("{x:?}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

fn fault_lines(step: &FaultStep) -> String {
    use std::fmt::Write;
    let mut o = String::from("\n[[fault]]\n");
    let _ = writeln!(o, "at_ms = {}", step.at_ms);
    if let Some(l) = step.lane {
        let _ = writeln!(o, "lane = {l}");
    }
    let ids = |v: &[u64]| {
        let s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        format!("[{}]", s.join(", "))
    };
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(o, "{k} = {v}");
    };
    match &step.action {
        FaultAction::Nothing => kv("action", q("none")),
        FaultAction::Crash(t) => {
            kv("action", q("crash"));
            kv("target", q(&target_name(t)));
        }
        FaultAction::DiskLoss { id, older, ms } => {
            kv(
                "action",
                q(if *older { "disk-rollback" } else { "disk-loss" }),
            );
            kv("target", q(&format!("server.{id}")));
            kv("ms", ms.to_string());
        }
        FaultAction::CrashFor { id, ms } => {
            kv("action", q("crash"));
            kv("target", q(&format!("server.{id}")));
            kv("ms", ms.to_string());
        }
        FaultAction::Restart(t) => {
            kv("action", q("restart"));
            kv("target", q(&target_name(t)));
        }
        FaultAction::Isolate(t) => {
            kv("action", q("isolate"));
            kv("target", q(&target_name(t)));
        }
        FaultAction::OneWay(t) => {
            kv("action", q("one-way"));
            kv("target", q(&target_name(t)));
        }
        FaultAction::Pause { target, ms } => {
            kv("action", q("pause"));
            kv("target", q(&target_name(target)));
            kv("ms", ms.to_string());
        }
        FaultAction::Stall { target, ms } => {
            kv("action", q("stall"));
            kv("target", q(&target_name(target)));
            kv("ms", ms.to_string());
        }
        FaultAction::Reset(t) => {
            kv("action", q("reset"));
            kv("target", q(&target_name(t)));
        }
        FaultAction::Flap { ms, every } => {
            kv("action", q("flap"));
            kv("ms", ms.to_string());
            kv("every_ms", every.to_string());
        }
        FaultAction::Heal => kv("action", q("heal")),
        FaultAction::PauseClient { target, ms } => {
            kv("action", q("pause-client"));
            kv("client", q(&client_name(target)));
            kv("ms", ms.to_string());
        }
        FaultAction::CrashClient(t) => {
            kv("action", q("crash-client"));
            kv("client", q(&client_name(t)));
        }
        FaultAction::CrashClientFor { client, ms } => {
            kv("action", q("crash-client"));
            kv("client", q(&format!("client.{client}")));
            kv("ms", ms.to_string());
        }
        FaultAction::CloseSession { client } => {
            kv("action", q("close-session"));
            kv("client", q(&format!("client.{client}")));
        }
        FaultAction::Disk {
            fault,
            id,
            file,
            draw,
        } => {
            kv("action", q(fault.name()));
            kv("target", q(&format!("server.{id}")));
            kv("file", q(file.name()));
            kv("draw", draw.to_string());
        }
        FaultAction::Partition {
            sides,
            oneway,
            ms,
            desc,
        } => {
            kv("action", q("partition"));
            let a: Vec<u64> = sides
                .iter()
                .filter(|(_, m)| m & 0b10 != 0)
                .map(|(id, _)| *id)
                .collect();
            let b: Vec<u64> = sides
                .iter()
                .filter(|(_, m)| m & 0b01 != 0)
                .map(|(id, _)| *id)
                .collect();
            if !a.is_empty() || !b.is_empty() {
                kv("side_a", ids(&a));
                kv("side_b", ids(&b));
            }
            if !oneway.is_empty() {
                let cuts: Vec<String> = oneway.iter().map(|(x, y)| format!("[{x}, {y}]")).collect();
                kv("cut", format!("[{}]", cuts.join(", ")));
            }
            kv("ms", ms.to_string());
            kv("desc", q(desc));
        }
        FaultAction::Clog { from, to, ms } => {
            kv("action", q("clog"));
            kv("from", from.to_string());
            kv("to", to.to_string());
            kv("ms", ms.to_string());
        }
        FaultAction::Swizzle { clogs } => {
            kv("action", q("swizzle"));
            let c: Vec<String> = clogs
                .iter()
                .map(|(a, b, ms)| format!("[{a}, {b}, {ms}]"))
                .collect();
            kv("clogs", format!("[{}]", c.join(", ")));
        }
        FaultAction::ResetLink { a, b, election } => {
            kv("action", q("reset-link"));
            kv("from", a.to_string());
            kv("to", b.to_string());
            kv("channel", q(if *election { "election" } else { "quorum" }));
        }
        FaultAction::ResetConn { conn } => {
            kv("action", q("reset-conn"));
            kv("conn", conn.to_string());
        }
        FaultAction::Slow { id, extra, ms } => {
            kv("action", q("slow"));
            kv("target", q(&format!("server.{id}")));
            kv("extra_ms", extra.to_string());
            kv("ms", ms.to_string());
        }
    }
    o
}

/// The scenario file for `p`, with every parameter written out, so that loading it gives `p`
/// back (what `shrink` writes). `comment` heads the file, one `#` line per line.
pub fn to_toml(p: &Params, comment: &str) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    for l in comment.lines() {
        let _ = writeln!(o, "# {l}");
    }
    let _ = writeln!(o, "name = {}", q(&p.name));
    if let Some(pl) = p.plant {
        let _ = writeln!(o, "plant = {}", q(pl.name()));
    }
    let _ = writeln!(o, "duration_ms = {}", p.duration_ms);
    let _ = writeln!(o, "fault_phase_ms = {}", p.fault_phase_ms);
    let _ = writeln!(o, "liveness_bound_ms = {}", p.liveness_bound_ms);
    if p.liveness != crate::params::Liveness::Full {
        let _ = writeln!(o, "liveness = \"{}\"", p.liveness.name());
    }
    let _ = writeln!(
        o,
        "\n[topology]\nvoters = {}\nobservers = {}",
        p.voters, p.observers
    );
    if p.joiners > 0 {
        let _ = writeln!(o, "joiners = {}", p.joiners);
    }
    if p.enforce_quota != crate::params::EnforceQuota::Off {
        let _ = writeln!(o, "enforce_quota = {}", q(p.enforce_quota.name()));
    }
    if p.reconfig_disabled {
        let _ = writeln!(o, "reconfig_enabled = false");
    }
    if p.read_only_mode {
        let _ = writeln!(o, "read_only_mode = true");
    }
    if p.imported_sessions > 0 {
        let _ = writeln!(o, "imported_sessions = {}", p.imported_sessions);
    }
    if p.local_sessions {
        let mode = if p.local_sessions_upgrading {
            "upgrading"
        } else {
            "on"
        };
        let _ = writeln!(o, "local_sessions = {}", q(mode));
    }
    let _ = writeln!(o, "\n[timing]");
    let _ = writeln!(o, "tick_ms = {}", p.tick_ms);
    let _ = writeln!(o, "init_limit = {}", p.init_limit);
    let _ = writeln!(o, "sync_limit = {}", p.sync_limit);
    let _ = writeln!(o, "net_delay_ms = [{}, {}]", p.net_delay.0, p.net_delay.1);
    let _ = writeln!(o, "fsync_ms = [{}, {}]", p.fsync_ms.0, p.fsync_ms.1);
    let _ = writeln!(
        o,
        "session_timeout_ms = [{}, {}]",
        p.session_timeout_ms.0, p.session_timeout_ms.1
    );
    let _ = writeln!(o, "tcp_timeout_ms = {}", p.tcp_timeout_ms);
    let _ = writeln!(o, "spike_prob = {}", fl(p.spike_prob));
    let _ = writeln!(o, "spike_ms = {}", p.spike_ms);
    let _ = writeln!(o, "snap_count = {}", p.snap_count);
    let _ = writeln!(o, "committed_log_size = {}", p.committed_log_size);
    let _ = writeln!(o, "drift_ppm = {}", p.drift_ppm);
    let _ = writeln!(o, "tick_jitter_pct = {}", p.tick_jitter_pct);
    let _ = writeln!(o, "unsynced_survive = {}", fl(p.unsynced_survive));
    let _ = writeln!(o, "torn_tail = {}", fl(p.torn_tail));
    let _ = writeln!(o, "sync_crash = {}", fl(p.sync_crash));
    if p.discovery_crash != 0.0 {
        let _ = writeln!(o, "discovery_crash = {}", fl(p.discovery_crash));
    }
    if p.initial_zxid_counter != 0 {
        let _ = writeln!(o, "initial_zxid_counter = {}", p.initial_zxid_counter);
    }
    if p.reaper_every_tick {
        let _ = writeln!(o, "reaper_every_tick = true");
    }
    let _ = writeln!(o, "\n[workload]");
    let mut groups: Vec<String> = Vec::new();
    let mut i = 0;
    while i < p.clients.len() {
        let mut j = i;
        while j < p.clients.len() && p.clients[j] == p.clients[i] {
            j += 1;
        }
        groups.push(format!(
            "{{ role = {}, count = {} }}",
            q(p.clients[i].name()),
            j - i
        ));
        i = j;
    }
    let _ = writeln!(o, "clients = [{}]", groups.join(", "));
    let _ = writeln!(o, "think_ms = [{}, {}]", p.think_ms.0, p.think_ms.1);
    let _ = writeln!(o, "keys = {}", p.keys);
    let _ = writeln!(o, "max_outstanding = {}", p.max_outstanding);
    let a: Vec<String> = p.async_clients.iter().map(|x| x.to_string()).collect();
    let _ = writeln!(o, "async_clients = [{}]", a.join(", "));
    let _ = writeln!(o, "async_pipeline = {}", p.async_pipeline);
    let _ = writeln!(o, "odd_requests = {}", p.odd_requests);
    let m = &p.mix;
    let _ = writeln!(
        o,
        "mix = {{ create = {}, set = {}, get = {}, delete = {}, multi = {}, sync_read = {}, children = {}, ephemeral = {}, sequential = {}, watch = {}, versioned = {} }}",
        m.create,
        m.set,
        m.get,
        m.delete,
        m.multi,
        m.sync_read,
        m.children,
        m.ephemeral,
        m.sequential,
        fl(m.watch),
        fl(m.versioned)
    );
    let r = &p.random;
    let _ = writeln!(o, "\n[random_faults]");
    for (k, v) in [
        ("partition_every_ms", r.partition_every),
        ("partition_ms", r.partition_len),
        ("clog_every_ms", r.clog_every),
        ("clog_ms", r.clog_len),
        ("swizzle_every_ms", r.swizzle_every),
        ("reset_every_ms", r.reset_every),
        ("client_reset_every_ms", r.client_reset_every),
        ("crash_every_ms", r.crash_every),
        ("down_ms", r.down_len),
        ("pause_every_ms", r.pause_every),
        ("pause_ms", r.pause_len),
        ("stall_every_ms", r.stall_every),
        ("stall_ms", r.stall_len),
        ("spike_every_ms", r.spike_every),
        ("spike_len_ms", r.spike_len),
        ("client_pause_every_ms", r.client_pause_every),
        ("client_pause_ms", r.client_pause_len),
        ("client_crash_every_ms", r.client_crash_every),
        ("client_close_every_ms", r.client_close_every),
        ("corrupt_every_ms", r.corrupt_every),
        ("misdirect_every_ms", r.misdirect_every),
        ("latent_read_every_ms", r.latent_read_every),
        ("lost_fsync_every_ms", r.lost_fsync_every),
        ("disk_loss_every_ms", r.disk_loss_every),
        ("disk_loss_down_ms", r.disk_loss_down),
        ("write_error_every_ms", r.write_error_every),
    ] {
        let _ = writeln!(o, "{k} = {v}");
    }
    let _ = writeln!(o, "\n[claims]");
    let c: Vec<String> = p.claims.iter().map(|c| q(c)).collect();
    let _ = writeln!(o, "check = [{}]", c.join(", "));
    if let Some(e) = &p.expect_violation {
        let _ = writeln!(o, "expect_violation = {}", q(e));
    }
    for s in &p.schedule {
        o.push_str(&fault_lines(s));
    }
    o
}
