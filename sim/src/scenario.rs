//! Scenario files (`scenarios/*.toml`): a fixed topology, timing, workload and fault schedule,
//! and the claims the scenario demonstrates. A malformed file is refused with an error that
//! names the field.

use crate::params::{ClientTarget, FaultAction, FaultStep, Params, Role, Target};
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    pub voters: u64,
    #[serde(default)]
    pub observers: u64,
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    #[serde(default)]
    pub clients: Vec<ClientGroup>,
    pub think_ms: Option<[u64; 2]>,
    pub keys: Option<u32>,
    pub max_outstanding: Option<usize>,
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
    let w = &f.workload;
    if !w.clients.is_empty() {
        params.clients.clear();
        for (i, g) in w.clients.iter().enumerate() {
            let role = Role::from_name(&g.role).ok_or_else(|| {
                field(
                    &format!("workload.clients[{i}].role"),
                    format!("unknown role `{}` (expected random, reader, lock, lock-fenced, election, member, monitor, config-writer, config-reader, naming)", g.role),
                )
            })?;
            for _ in 0..g.count {
                params.clients.push(role.clone());
            }
        }
    }
    params.think_ms = range("workload.think_ms", w.think_ms, params.think_ms)?;
    params.keys = w.keys.unwrap_or(params.keys).max(1);
    params.max_outstanding = w.max_outstanding.unwrap_or(params.max_outstanding).max(1);
    for (i, ft) in f.faults.iter().enumerate() {
        let name = |k: &str| format!("fault[{i}].{k}");
        let need_target = || -> Result<Target, ScenarioError> {
            let s = ft.target.as_deref().ok_or_else(|| field(&name("target"), "missing (leader, follower, observer, crashed, all, minority-with-leader, minority-without-leader, majority-without-leader, or a server id)".into()))?;
            target(s).ok_or_else(|| field(&name("target"), format!("unknown target `{s}`")))
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
            client_target(s).ok_or_else(|| field(&name("client"), format!("unknown client `{s}`")))
        };
        let action = match ft.action.as_str() {
            "crash" => FaultAction::Crash(need_target()?),
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
            other => {
                return Err(field(
                    &name("action"),
                    format!(
                        "unknown action `{other}` (expected crash, restart, isolate, one-way, pause, reset, flap, heal, pause-client, crash-client)"
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
