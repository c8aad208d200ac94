//! Liveness: while the faults run, the longest leaderless window (time without a leader
//! clients can be served by) and when a quorum of voters was down; after they heal, within a
//! bound, a leader, every server up, synced and converged, every client in session and no
//! request outstanding (`liveness.*`).

use crate::check::{Claim, Violation, violation};
use crate::cluster::Node;
use crate::world::{Who, World};
use ensemble_core::peer::ServerState;
use ensemble_core::tree::EphemeralType;
use ensemble_core::txn::ServerId;
use ensemble_core::zxid::Zxid;

/// Availability while the faults run.
pub struct Availability {
    /// Since when no leader clients can be served by exists (none at the start).
    pub(crate) no_leader_since: Option<u64>,
    /// Whether one ever existed (the first election is not a leaderless window).
    pub(crate) had_leader: bool,
    /// When fewer than a quorum of voters were up: [start, end).
    pub(crate) quorum_down: Vec<(u64, u64)>,
    /// When the reference last committed a txn.
    pub(crate) last_commit_at: u64,
    /// How long the end waited for a txn committed after the drain (`World::end`).
    pub(crate) settled_ms: u64,
    /// When a leader clients can be served by last came back after a leaderless window.
    pub(crate) leader_back_at: u64,
}

/// How long the clients are drained before the end.
pub(crate) const DRAIN_MS: u64 = 3_000;
/// How long, at most, the end waits for txns the servers committed on their own after the
/// drain to reach every server, and in what steps.
const SETTLE_MS: u64 = 2_000;
const SETTLE_STEP_MS: u64 = 100;

impl Availability {
    pub fn new() -> Availability {
        Availability {
            no_leader_since: Some(0),
            had_leader: false,
            quorum_down: Vec::new(),
            last_commit_at: 0,
            settled_ms: 0,
            leader_back_at: 0,
        }
    }
}

impl Default for Availability {
    fn default() -> Availability {
        Availability::new()
    }
}

impl World {
    /// Track when fewer than a quorum of voters are up (`unavailable-without-quorum`).
    pub(crate) fn update_quorum(&mut self) {
        let voters = self.reference.voters();
        let up = self
            .nodes
            .values()
            .filter(|n| voters.contains(&n.id) && n.up())
            .count() as u64;
        let down = up * 2 <= voters.len() as u64;
        match self.liveness.quorum_down.last_mut() {
            Some((_, end)) if *end == u64::MAX => {
                if !down {
                    *end = self.sched.now;
                }
            }
            _ => {
                if down {
                    self.liveness.quorum_down.push((self.sched.now, u64::MAX));
                }
            }
        }
    }

    /// The leader clients can be served by: established, running (not paused, its quorum side
    /// not stalled) and followed by a quorum of voters (itself included) that are synced with
    /// it and running. A deposed or stalled leader that still believes it leads does not count.
    pub(crate) fn effective_leader(&self) -> Option<ServerId> {
        let now = self.sched.now;
        let running = |n: &Node| n.up() && n.paused_until.is_none() && !n.quorum_stalled(now);
        // the voters of the configuration in force
        let voters = self.reference.voters();
        let quorum = voters.len() as u64 / 2 + 1;
        self.nodes
            .values()
            .filter(|n| running(n) && n.established.is_some())
            .find(|l| {
                let followers = self
                    .nodes
                    .values()
                    .filter(|n| {
                        voters.contains(&n.id)
                            && n.id != l.id
                            && running(n)
                            && n.serving
                            && n.state == ServerState::Following
                            && n.following == Some(l.id)
                    })
                    .count() as u64;
                followers + u64::from(voters.contains(&l.id)) >= quorum
            })
            .map(|n| n.id)
    }

    /// The longest leaderless window: time without an [`World::effective_leader`].
    pub(crate) fn update_availability(&mut self) {
        let any = self.effective_leader().is_some();
        match (any, self.liveness.no_leader_since) {
            (true, Some(since)) => {
                if self.liveness.had_leader {
                    let gap = self.sched.now - since;
                    self.liveness.leader_back_at = self.sched.now;
                    self.stats.max_unavailable_ms = self.stats.max_unavailable_ms.max(gap);
                    self.log(
                        Who::Sim,
                        "",
                        format_args!("leader available again after {gap}ms"),
                    );
                }
                self.liveness.had_leader = true;
                self.liveness.no_leader_since = None;
            }
            (false, None) => self.liveness.no_leader_since = Some(self.sched.now),
            _ => {}
        }
    }

    /// The end of the run (true), or a short wait for it. The drain stops the clients, not the
    /// servers, so the world may still be moving when the run ends (`still_moving` says
    /// what). While it is, the end waits, in steps, at most `SETTLE_MS` in all, with no new
    /// requests; then the run is judged as it stands, so a server that never catches up
    /// still fails `liveness.not-converged`, a client never back `liveness.no-session`.
    pub(crate) fn end(&mut self) -> bool {
        if self.violation.is_none() && self.liveness.settled_ms < SETTLE_MS {
            let moving = self.still_moving();
            if !moving.is_empty() {
                self.liveness.settled_ms += SETTLE_STEP_MS;
                let what = moving.join("; ");
                self.log(
                    Who::Sim,
                    "",
                    format_args!("END waits {SETTLE_STEP_MS}ms: {what}"),
                );
                self.schedule(self.sched.now + SETTLE_STEP_MS, crate::scheduler::Ev::End);
                return false;
            }
        }
        self.finish();
        true
    }

    /// What is still in flight at the end that began after the drain:
    /// * a txn committed after the drain that a server has not applied yet: the leader's
    ///   reaper (TTL and empty container nodes) and session expiry propose on their own up
    ///   to the last millisecond, and a txn committed 7 ms before the end has not reached the
    ///   followers yet (seeds 1594, 3857, 6532, 6732 and 7108 of the merged build's 10,000: a
    ///   deleteContainer 7 to 60 ms before it; FINDINGS.md no. 22). With `--liveness core`
    ///   only the healed core counts (seed 7391: a reaper's deleteContainer 25 ms before the
    ///   end, the core follower's COMMIT in flight);
    /// * clients reconnecting to a leader that came back after the drain (a zxid roll-over's
    ///   new epoch, seed 409: 366 ms before the end), whose connection it closed;
    /// * clients that learned after the drain that their session had ended, making a new one
    ///   (seed 1424 of session 19's merged build: told expired 1,233 ms before the end, three
    ///   of its eight servers down for good with damaged disks, the next two tries at one of
    ///   them). Not with `--liveness core`, whose clients outside the core may stay away.
    fn still_moving(&self) -> Vec<String> {
        let drained_at = self.end_at.saturating_sub(DRAIN_MS);
        let mut moving = Vec::new();
        if self.liveness.last_commit_at >= drained_at
            && let Some(leader) = self.leader()
        {
            let lz = self.nodes[&leader].applied;
            let core = self.core.as_deref();
            let behind: Vec<ServerId> = self
                .nodes
                .values()
                .filter(|n| core.is_none_or(|c| c.contains(&n.id)))
                .filter(|n| n.up() && n.applied < lz && !self.disks.refused.contains_key(&n.id))
                .map(|n| n.id)
                .collect();
            if !behind.is_empty() {
                ensemble_core::probe!("sim.end-settles");
                let last = self.liveness.last_commit_at;
                moving.push(format!(
                    "a txn committed at t={last}ms, after the drain, has not reached {behind:?}"
                ));
            }
        }
        if self.liveness.leader_back_at >= drained_at {
            let reconnecting: Vec<usize> = self
                .clients
                .iter()
                .filter(|c| !c.dead && !c.is_connected() && c.paused_until.is_none())
                .map(|c| c.idx)
                .collect();
            if !reconnecting.is_empty() {
                ensemble_core::probe!("sim.end-awaits-session");
                let back = self.liveness.leader_back_at;
                moving.push(format!(
                    "the leader came back at t={back}ms, after the drain; clients \
                     {reconnecting:?} are reconnecting"
                ));
            }
        }
        if self.core.is_none() {
            let renewing: Vec<usize> = self
                .clients
                .iter()
                .filter(|c| !c.dead && !c.is_connected() && c.paused_until.is_none())
                .filter(|c| c.session_ended_at >= drained_at)
                .map(|c| c.idx)
                .collect();
            if !renewing.is_empty() {
                ensemble_core::probe!("sim.end-awaits-new-session");
                moving.push(format!(
                    "clients {renewing:?} learned after the drain that their session had ended"
                ));
            }
        }
        moving
    }

    /// The end of the run: liveness, then the end-of-run checks and the scenario's claims.
    pub(crate) fn finish(&mut self) {
        let now = self.sched.now;
        self.log(
            Who::Sim,
            "",
            format_args!("END: liveness and end-of-run checks"),
        );
        // a safety claim, judged whatever liveness says: each server's last snapshot
        if let Err(v) = self.check_persisted_round_trips() {
            self.fail(v);
        }
        // and every leader's per-learner counters, compared only now and then as it ran
        self.check_learner_traffic_at_end();
        if let Some(core) = self.core.clone() {
            // part of the cluster left faulty: the core and its clients must make progress
            if self.finish_core(&core) {
                self.end_of_run_claims();
            }
            return;
        }
        let bound = self.params.liveness_bound_ms;
        let healed = self.healed_at.unwrap_or(0);
        // a leader, and every server in the ensemble with it, converged
        let Some(leader) = self.leader() else {
            self.fail(violation(
                Claim::LivenessNoLeader,
                now,
                format!(
                    "no established leader {}ms after the faults healed",
                    now - healed
                ),
            ));
            return;
        };
        let lz = self.nodes[&leader].applied;
        // a server that refused its damaged disk is down for good (`faults/storage.rs`)
        for n in self
            .nodes
            .values()
            .filter(|n| !self.disks.refused.contains_key(&n.id))
        {
            if !n.up() {
                self.fail(violation(
                    Claim::LivenessDown,
                    now,
                    format!("n{} is down at the end", n.id),
                ));
                return;
            }
            // a server a reconfig left outside the configuration need not find the leader (as
            // ZooKeeper's removed servers, it waits to be added back)
            let member = self.reference.membership.servers.contains_key(&n.id);
            if n.state == ServerState::Looking && member {
                self.fail(violation(
                    Claim::LivenessNotConverged,
                    now,
                    format!("n{} still LOOKING {}ms after healing", n.id, now - healed),
                ));
                return;
            }
        }
        let lagging: Vec<(ServerId, Zxid)> = self
            .nodes
            .values()
            .filter(|n| n.applied != lz && !self.disks.refused.contains_key(&n.id))
            .map(|n| (n.id, n.applied))
            .collect();
        if !lagging.is_empty() {
            self.fail(violation(
                Claim::LivenessNotConverged,
                now,
                format!("leader n{leader} applied through {lz} but {lagging:?} differ at the end"),
            ));
            return;
        }
        // every request ends; every live client has a session
        for c in &self.clients {
            if let Some(t) = c.oldest_pending()
                && now - t > bound
            {
                self.fail(violation(
                    Claim::LivenessStuckRequest,
                    now,
                    format!("client {} has a request outstanding since t={t}ms", c.idx),
                ));
                return;
            }
            if !c.dead && !c.is_connected() && c.paused_until.is_none() {
                self.fail(violation(
                    Claim::LivenessNoSession,
                    now,
                    format!("client {} has no connected session at the end", c.idx),
                ));
                return;
            }
        }
        self.end_of_run_claims();
    }

    /// `tree.consistent`: every running server's derived structures match a recount.
    fn tree_consistency_check(&self) -> Result<(), Violation> {
        for n in self.nodes.values() {
            let Some(s) = n.server.as_ref() else { continue };
            let why = s
                .tree()
                .check_consistency()
                .and_then(|()| s.watches().check_counts());
            if let Err(why) = why {
                return Err(violation(
                    Claim::TreeConsistent,
                    self.sched.now,
                    format!("n{}: {why}", n.id),
                ));
            }
        }
        Ok(())
    }

    /// `liveness.reaper`: the leader, established and healed for two container check
    /// intervals and more, has deleted every node its reaper should have deleted by then: a
    /// childless container that had a child, a childless TTL node its TTL expired on (by the
    /// leader's own clock, as its reaper reads it), each unchanged since before that window.
    fn reaper_check(&self) -> Result<(), Violation> {
        let now = self.sched.now;
        let Some(leader) = self.leader() else {
            return Ok(());
        };
        let n = &self.nodes[&leader];
        let (Some(s), Some(epoch)) = (n.server.as_ref(), n.established) else {
            return Ok(());
        };
        let Some(since) = self
            .zab
            .establishments
            .iter()
            .rev()
            .find(|(_, e, id)| *e == epoch && *id == leader)
            .map(|(t, _, _)| *t)
        else {
            return Ok(());
        };
        let interval = s.config().container_check_interval_ms;
        let window = 2 * interval + 2_000;
        let Some(cutoff) = now.checked_sub(window) else {
            return Ok(());
        };
        if since.max(self.healed_at.unwrap_or(0)) > cutoff || n.paused_until.is_some() {
            return Ok(());
        }
        ensemble_core::probe!("sim.reaper.judged");
        let tree = s.tree();
        let local = n.local_now(now) as i64;
        // ZooKeeper's ContainerManager rules, restated here rather than asking the tree's own
        // `reapable` (the code under test)
        let due = |kind: EphemeralType, stat: &ensemble_proto::proto::Stat| {
            stat.num_children == 0
                && match kind {
                    EphemeralType::Container => stat.cversion > 0,
                    EphemeralType::Ttl(ttl) => local - window as i64 - stat.mtime > ttl,
                    _ => false,
                }
        };
        for path in tree.paths() {
            let Some(kind) = tree.ephemeral_type_of(path) else {
                continue;
            };
            let Some((_, stat)) = tree.get_data(path) else {
                continue;
            };
            if !due(kind, &stat) {
                continue;
            }
            let last = Zxid(stat.mzxid.max(stat.pzxid).max(0) as u64);
            if self.reference.commit_time(last).is_none_or(|t| t > cutoff) {
                continue;
            }
            return Err(violation(
                Claim::LivenessReaper,
                now,
                format!(
                    "{path} ({kind:?}, last changed at {last}) should have been reaped: leader n{leader} established since t={since}ms, its reaper looks every {interval}ms"
                ),
            ));
        }
        Ok(())
    }

    /// The end-of-run checks, the scenario's claims and its expected finding.
    fn end_of_run_claims(&mut self) {
        let now = self.sched.now;
        if let Err(v) = self.end_checks() {
            self.fail(v);
        }
        if let Err(v) = self.tree_consistency_check() {
            self.fail(v);
        }
        if let Err(v) = self.reaper_check() {
            self.fail(v);
        }
        if let Err(v) = self.expired_refusal_check() {
            self.fail(v);
        }
        if let Err(v) = self.scenario_claims() {
            self.fail(v);
        }
        if let Some(exp) = self.params.expect_violation.clone()
            && self.expected_seen.is_none()
            && self.violation.is_none()
        {
            self.fail(violation(
                Claim::ScenarioExpectedFinding,
                now,
                format!("the scenario expects `{exp}` to be violated, and it was not"),
            ));
        }
    }
}
