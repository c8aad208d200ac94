//! The `reconfig` role: an operator (the super user) changing the ensemble online with
//! ZooKeeperAdmin's reconfig, as a runbook does: read `/zookeeper/config`, then one change from
//! that version (`fromConfig`): remove a voter (the leader, as often as any), add a server
//! outside the configuration back as a voter or an observer, replace a voter by an outsider in
//! one step, turn an observer into a voter or back, or give a whole new member list. The
//! servers outside the configuration exist in the world (removed ones, or never members) and
//! follow the leader as non-voting learners, so that they can be added.

use crate::client::Ctx;
use crate::params::ReconfigStep;
use ensemble_core::LearnerType;
use ensemble_core::membership::Membership;
use ensemble_proto::proto::{KeeperError, ReadOp, ReadResult, Reply, Request, Response};
use std::collections::BTreeMap;

#[derive(Default)]
pub struct ReconfigRole {
    /// The configuration last read, to change from.
    view: Option<Membership>,
    pub(crate) in_flight: bool,
    next_at: u64,
    /// The next change of the scenario's plan (`Params::reconfig_plan`) to make.
    step: usize,
    /// The members and roles that change asks for: seen in the configuration after a lost
    /// reply (a leader that removed itself closes its clients), the change is done.
    expect: Option<BTreeMap<u64, LearnerType>>,
    /// Changes asked for so far (every fourth goes out malformed, see [`malformed`]).
    changes: u64,
    /// The change in flight is malformed: ZooKeeper refuses it BadArguments.
    malformed: bool,
    /// The change in flight is one of the role's own well-formed changes (not a plan's, not
    /// malformed): built to leave at least `MIN_VOTERS` voters, so never BadArguments.
    well_formed: bool,
    /// Reads of the configuration so far: some go through multiRead or exists (`read`).
    reads: u64,
    /// The view was read as null data (the `admin` client's write, before any reconfig): the
    /// node gives no version to change from, so the change goes with fromConfig -1 (any), as
    /// an operator's would.
    unversioned: bool,
}

/// The fewest voters a change leaves: a quorum survives one crash.
const MIN_VOTERS: usize = 3;

/// With a core heal, no change is asked for this long before the heal, or after it.
const QUIET_BEFORE_CORE_HEAL_MS: u64 = 3_000;

fn spec(id: u64, role: LearnerType) -> String {
    let role = match role {
        LearnerType::Participant => "participant",
        LearnerType::Observer => "observer",
    };
    format!("server.{id}=s{id}:2888:3888:{role};s{id}:2181")
}

/// No change now: a core heal is near or past (see `next`), or the plan is done.
fn quiet(cx: &Ctx, step: usize) -> bool {
    let plan = &cx.params.reconfig_plan;
    (!plan.is_empty() && step >= plan.len())
        || (cx.params.liveness == crate::params::Liveness::Core
            && cx.now + QUIET_BEFORE_CORE_HEAL_MS >= cx.params.fault_phase_ms)
}

/// A change ZooKeeper refuses on its arguments, the `n`th kind (the role's counter picks
/// it, no draw), from version `from`: a server line with too few or too many parts or a port
/// that is not a number (`QuorumServer`'s ConfigException), a joiner without a client
/// address (PrepRequestProcessor: "each server should have 3 ports specified"), a member list
/// with a bad line (`parseDynamicConfig`): each BadArguments.
fn malformed(n: u64, view: &Membership, outsider: u64) -> Request {
    let id = outsider;
    let (mut joining, mut new_members) = (String::new(), String::new());
    match n % 5 {
        0 => joining = format!("server.{id}=s{id}:2888;s{id}:2181"),
        1 => joining = format!("server.{id}=s{id}:2888:3888:participant:x;s{id}:2181"),
        2 => joining = format!("server.{id}=s{id}:2888:x3888:participant;s{id}:2181"),
        3 => joining = format!("server.{id}=s{id}:2888:3888:participant"),
        _ => {
            let mut list: Vec<String> = view
                .servers
                .iter()
                .map(|(id, s)| spec(*id, s.role))
                .collect();
            list.push(format!("server.{id}=s{id}:2888"));
            new_members = list.join(",");
        }
    }
    Request::Reconfig {
        joining,
        leaving: String::new(),
        new_members,
        from_config: view.version as i64,
    }
}

/// The request for one change of a plan, from the configuration `view`.
fn planned(step: &ReconfigStep, view: &Membership, leader: Option<u64>) -> Option<Request> {
    let role = |observer: bool| {
        if observer {
            LearnerType::Observer
        } else {
            LearnerType::Participant
        }
    };
    let (mut joining, mut leaving, mut new_members) = (String::new(), String::new(), String::new());
    match step {
        ReconfigStep::Add { id, observer } => joining = spec(*id, role(*observer)),
        ReconfigStep::Remove { id } => leaving = id.or(leader)?.to_string(),
        ReconfigStep::Replace { gone, id } => {
            leaving = gone.or(leader)?.to_string();
            joining = spec(*id, LearnerType::Participant);
        }
        ReconfigStep::Members(m) => {
            let list: Vec<String> = m.iter().map(|(id, o)| spec(*id, role(*o))).collect();
            new_members = list.join(",");
        }
    }
    Some(Request::Reconfig {
        joining,
        leaving,
        new_members,
        from_config: view.version as i64,
    })
}

impl ReconfigRole {
    /// A read of `/zookeeper/config`, by the role's counter (no draw): mostly getData; every
    /// fourth a multiRead of it and `/zookeeper`'s children, which gives the view as well; and,
    /// when only reading (`quiet`: no view is kept), every third an exists. Each arm of the
    /// server's patch of the node (the configuration in force) is then judged
    /// (`client.read-value`).
    fn read(&mut self, quiet: bool) -> Request {
        self.reads += 1;
        let path = ensemble_core::path::CONFIG.to_string();
        if self.reads % 4 == 2 {
            Request::MultiRead(vec![
                ReadOp::GetData { path },
                ReadOp::GetChildren {
                    path: "/zookeeper".into(),
                },
            ])
        } else if quiet && self.reads.is_multiple_of(3) {
            Request::Exists { path, watch: false }
        } else {
            Request::GetData { path, watch: false }
        }
    }

    pub(crate) fn wake_hint(&self, now: u64) -> Option<u64> {
        (self.next_at > now).then(|| self.next_at - now)
    }

    pub(crate) fn next(&mut self, cx: &mut Ctx) -> Option<Request> {
        if self.in_flight || cx.now < self.next_at {
            return None;
        }
        if quiet(cx, self.step) {
            // A change proposed and left uncommitted makes every server that logged it ask a
            // quorum of its voters too (ZooKeeper's lastSeenQuorumVerifier), so a core heal
            // (a quorum healed, the rest faulty for good) can progress only if it holds a
            // quorum of every configuration logged: the core is drawn so at the heal, and no
            // change starts after it (or just before, to be still in flight then): the
            // operator only reads the configuration.
            self.view = None;
        }
        self.in_flight = true;
        let Some(view) = self.view.take() else {
            return Some(self.read(quiet(cx, self.step)));
        };
        let mut req = self.change(view, cx);
        if self.unversioned
            && let Some(Request::Reconfig { from_config, .. }) = &mut req
        {
            ensemble_core::probe!("sim.reconfig.from-null-config");
            *from_config = -1;
        }
        req
    }

    /// The change to make from the configuration `view` (or a read, no leader being known for
    /// a planned change that names it).
    fn change(&mut self, view: Membership, cx: &mut Ctx) -> Option<Request> {
        if let Some(step) = cx.params.reconfig_plan.get(self.step) {
            // a scenario's plan: this change (no leader yet: read again, ask later)
            let req = planned(step, &view, cx.leader);
            if let Some(Request::Reconfig {
                joining,
                leaving,
                new_members,
                ..
            }) = &req
            {
                self.expect = view
                    .reconfigure(joining, leaving, new_members)
                    .ok()
                    .map(|m| m.roles());
            }
            return req.or_else(|| {
                Some(Request::GetData {
                    path: ensemble_core::path::CONFIG.into(),
                    watch: false,
                })
            });
        }
        let all: Vec<u64> = (1..=cx.params.servers()).collect();
        let voters: Vec<u64> = view.voters().collect();
        let observers: Vec<u64> = view
            .servers
            .iter()
            .filter(|(_, s)| s.role == LearnerType::Observer)
            .map(|(id, _)| *id)
            .collect();
        let outside: Vec<u64> = all
            .iter()
            .copied()
            .filter(|id| !view.servers.contains_key(id))
            .collect();
        let rng = &mut *cx.rng;
        let role = if rng.chance(0.7) {
            LearnerType::Participant
        } else {
            LearnerType::Observer
        };
        let (mut joining, mut leaving, mut new_members) =
            (String::new(), String::new(), String::new());
        match rng.below(5) {
            // grow: an outsider comes (back)
            0 if !outside.is_empty() => {
                let id = *rng.pick(&outside).expect("not empty");
                joining = spec(id, role);
            }
            // shrink: a voter goes (the leader as often as any)
            1 if voters.len() > MIN_VOTERS => {
                leaving = rng.pick(&voters).expect("not empty").to_string();
            }
            // replace a voter (maybe a crashed one) by an outsider, in one change
            2 if !outside.is_empty() => {
                let gone = *rng.pick(&voters).expect("voters");
                let id = *rng.pick(&outside).expect("not empty");
                leaving = gone.to_string();
                joining = spec(id, LearnerType::Participant);
            }
            // an observer becomes a voter, or a voter an observer
            3 if !observers.is_empty() || voters.len() > MIN_VOTERS => {
                if !observers.is_empty() && (voters.len() <= MIN_VOTERS || rng.chance(0.5)) {
                    let id = *rng.pick(&observers).expect("not empty");
                    joining = spec(id, LearnerType::Participant);
                } else {
                    let id = *rng.pick(&voters).expect("voters");
                    joining = spec(id, LearnerType::Observer);
                }
            }
            // a whole new member list: each server in or out, voter or observer
            _ => {
                let mut roles = BTreeMap::new();
                for id in &all {
                    if rng.chance(0.75) {
                        let r = if rng.chance(0.8) {
                            LearnerType::Participant
                        } else {
                            LearnerType::Observer
                        };
                        roles.insert(*id, r);
                    }
                }
                let list: Vec<String> = roles.iter().map(|(id, r)| spec(*id, *r)).collect();
                new_members = list.join(",");
                if roles
                    .values()
                    .filter(|r| **r == LearnerType::Participant)
                    .count()
                    < MIN_VOTERS
                {
                    // too small to survive a crash: keep the configuration as it is instead
                    let keep: Vec<String> = view
                        .servers
                        .iter()
                        .map(|(id, s)| spec(*id, s.role))
                        .collect();
                    new_members = keep.join(",");
                }
            }
        }
        self.changes += 1;
        // the mark is the change in flight's: one lost unanswered (a reset, a crash) must
        // not mark the next (seed 9833)
        self.malformed = false;
        self.well_formed = false;
        if cx.params.odd_requests && self.changes % 4 == 3 {
            self.malformed = true;
            return Some(malformed(self.changes / 4, &view, cx.params.servers() + 1));
        }
        self.well_formed = true;
        Some(Request::Reconfig {
            joining,
            leaving,
            new_members,
            from_config: view.version as i64,
        })
    }

    /// `client.write-result`: a malformed change is never made. Refused BadArguments, or
    /// by a check ZooKeeper makes before it reads the servers (a change in progress, a stale
    /// version), or unanswered.
    fn judge_malformed(req: &Request, reply: &Reply, cx: &mut Ctx) {
        use ensemble_proto::proto::KeeperError as E;
        let ok = matches!(
            reply,
            Err(E::BadArguments
                | E::ReconfigInProgress
                | E::BadVersion
                | E::ConnectionLoss
                | E::SessionExpired
                | E::SessionMoved
                | E::NotReadOnly)
        );
        if matches!(reply, Err(E::BadArguments)) {
            ensemble_core::probe!("sim.reconfig.malformed-refused");
        }
        if !ok && cx.shared.recipe_violation.is_none() {
            cx.shared.recipe_violation = Some(crate::check::violation(
                crate::check::Claim::ClientWriteResult,
                cx.now,
                format!(
                    "a malformed reconfig {req:?} was answered {reply:?}, where ZooKeeper refuses it BadArguments"
                ),
            ));
        }
    }

    /// `client.write-result` with `reconfigEnabled=false`: every reconfig, well-formed or
    /// not, is refused RECONFIGDISABLED, ZooKeeper 3.8's first check of one
    /// (PrepRequestProcessor, before the session, the ACL and the servers), or unanswered.
    fn judge_disabled(req: &Request, reply: &Reply, cx: &mut Ctx) {
        use ensemble_proto::proto::KeeperError as E;
        let ok = matches!(
            reply,
            Err(E::ReconfigDisabled
                | E::ConnectionLoss
                | E::SessionExpired
                | E::SessionMoved
                | E::NotReadOnly)
        );
        if matches!(reply, Err(E::ReconfigDisabled)) {
            ensemble_core::probe!("sim.reconfig.disabled-refused");
        }
        if !ok && cx.shared.recipe_violation.is_none() {
            cx.shared.recipe_violation = Some(crate::check::violation(
                crate::check::Claim::ClientWriteResult,
                cx.now,
                format!(
                    "reconfig {req:?} was answered {reply:?} with reconfigEnabled=false, where ZooKeeper refuses it ReconfigDisabled"
                ),
            ));
        }
    }

    /// `reconfig.well-formed-refused`, judged by the role's own construction rather than by
    /// the core's parser (which check/reconfig_arguments.rs shares with the server): every
    /// line of the change is `spec`'s, and the result keeps at least `MIN_VOTERS` voters of
    /// the configuration it names. From a version (not -1, which ZooKeeper reads against
    /// whatever is in force), BadArguments is wrong.
    fn judge_well_formed(req: &Request, reply: &Reply, cx: &mut Ctx) {
        let Request::Reconfig { from_config, .. } = req else {
            return;
        };
        if *from_config < 0 || !matches!(reply, Err(KeeperError::BadArguments)) {
            return;
        }
        if cx.shared.recipe_violation.is_none() {
            cx.shared.recipe_violation = Some(crate::check::violation(
                crate::check::Claim::ReconfigWellFormedRefused,
                cx.now,
                format!(
                    "the reconfig role's well-formed change {req:?} (at least {MIN_VOTERS} voters left) was refused BadArguments"
                ),
            ));
        }
    }

    pub(crate) fn on_result(&mut self, req: &Request, reply: &Reply, cx: &mut Ctx) {
        self.in_flight = false;
        if std::mem::take(&mut self.well_formed) && matches!(req, Request::Reconfig { .. }) {
            Self::judge_well_formed(req, reply, cx);
        }
        if cx.params.reconfig_disabled && matches!(req, Request::Reconfig { .. }) {
            self.malformed = false;
            Self::judge_disabled(req, reply, cx);
        } else if self.malformed && matches!(req, Request::Reconfig { .. }) {
            self.malformed = false;
            Self::judge_malformed(req, reply, cx);
        }
        let empty = Vec::new();
        // null data reads as empty here (`unversioned` keeps it apart)
        let read = match (req, reply) {
            (Request::GetData { .. }, Ok(Response::GetData { data, .. })) => Some((data, false)),
            (Request::GetData { .. }, Ok(Response::GetDataNull { .. })) => Some((&empty, true)),
            (Request::MultiRead(_), Ok(Response::MultiRead(results))) => {
                results.iter().find_map(|r| match r {
                    ReadResult::GetData { data, .. } => Some((data, false)),
                    ReadResult::GetDataNull { .. } => Some((&empty, true)),
                    _ => None,
                })
            }
            _ => None,
        };
        if let Some((data, null)) = read {
            self.unversioned = null;
            // before the first reconfig the node holds nothing: the run's initial membership
            // (null data too: the admin's conditional null write before any reconfig)
            let reconfigured = cx.reference.configs.keys().any(|v| v & 0xffff_ffff != 0);
            self.view = if data.is_empty() && !reconfigured {
                cx.reference.configs.get(&0).cloned()
            } else {
                std::str::from_utf8(data)
                    .ok()
                    .and_then(|t| Membership::parse(t).ok())
                    // text that is no configuration may still parse as one without members
                    .filter(|m| m.voters().next().is_some())
                    .or_else(|| {
                        // the super user wrote over the last reconfig's text: the operator
                        // takes the configuration in force from elsewhere (4lw `conf`),
                        // the newest committed
                        ensemble_core::probe!("sim.reconfig.config-unreadable");
                        cx.reference.configs.values().next_back().cloned()
                    })
            };
            let expected = self.expect.take();
            let done = matches!((&expected, &self.view), (Some(e), Some(v)) if *e == v.roles());
            if done && self.step < cx.params.reconfig_plan.len() {
                // the change committed though its reply was lost
                self.step += 1;
                cx.shared.reconfig_plan_done += 1;
            }
            if self.view.is_some() && !quiet(cx, self.step) {
                return;
            }
        }
        if let Request::Reconfig { .. } = req {
            // an error leaves `expect` for the next read to judge (a lost reply is an error)
            if reply.is_ok() && self.expect.take().is_some() {
                self.step += 1;
                cx.shared.reconfig_plan_done += 1;
            }
        }
        // an operator waits between changes (a few seconds); one that only reads the config
        // reads it at a client's pace (a core heal wants every client answered)
        let (lo, hi) = cx.params.think_ms;
        self.next_at = if quiet(cx, self.step) {
            cx.now + cx.rng.range(lo, hi)
        } else {
            let wait = cx.rng.range(lo * 10, hi * 20);
            let heal = cx.params.fault_phase_ms;
            if cx.params.liveness == crate::params::Liveness::Core && cx.now + wait > heal {
                // the wait for a change that can no longer be asked for (no change around a
                // core heal) ends with the fault phase: from then on the operator reads at a
                // client's pace, and the heal's claim wants every client answered (swarm
                // seeds 2052, 7461, 7790, 7981: a wait of 30 s drawn before the quiet left
                // the reconfig client silent past the liveness bound)
                heal.max(cx.now) + lo + wait % (hi - lo).max(1)
            } else {
                cx.now + wait
            }
        };
    }
}
