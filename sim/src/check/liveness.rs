use crate::check::{Claim, violation};
use crate::world::{Who, World};
use ensemble_core::peer::ServerState;
use ensemble_core::txn::ServerId;
use ensemble_core::zxid::Zxid;

impl World {
    pub(crate) fn finish(&mut self) {
        let now = self.sched.now;
        self.log(
            Who::Sim,
            "",
            format_args!("END: liveness and end-of-run checks"),
        );
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
        for n in self.nodes.values() {
            if !n.up() {
                self.fail(violation(
                    Claim::LivenessDown,
                    now,
                    format!("n{} is down at the end", n.id),
                ));
                return;
            }
            if n.state == ServerState::Looking {
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
            .filter(|n| n.applied != lz)
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
        if let Err(v) = self.end_checks() {
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
