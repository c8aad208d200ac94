//! The claims a scenario file names under `[claims] check` (see `scenario::SCENARIO_CLAIMS`):
//! the majority commits during a partition, no write without a quorum, an observer's loss
//! keeps the quorum, every server synced at the end, the zxid counter's rollover, a leader
//! change.

use crate::check::{Claim, Violation, violation};
use crate::lines::short_req;
use crate::world::World;
use ensemble_core::txn::ServerId;
use ensemble_core::zxid::Zxid;

impl World {
    pub(crate) fn scenario_claims(&self) -> Result<(), Violation> {
        let now = self.sched.now;
        let plan = self.params.reconfig_plan.len();
        if self.shared.reconfig_plan_done < plan {
            return Err(violation(
                Claim::ScenarioSetup,
                now,
                format!(
                    "{} of the {plan} changes of the reconfiguration plan committed",
                    self.shared.reconfig_plan_done
                ),
            ));
        }
        for c in &self.params.claims {
            match c.as_str() {
                "majority-commits-during-partition" if self.cap.commits == 0 => {
                    return Err(violation(Claim::CapMajorityUnavailable, now, "no txn proposed during the partition was committed: the majority side did not make progress".into()));
                }
                "unavailable-without-quorum" => {
                    if self.liveness.quorum_down.is_empty() {
                        return Err(violation(
                            Claim::ScenarioSetup,
                            now,
                            "a quorum of voters was never down".into(),
                        ));
                    }
                    for o in &self.shared.ops {
                        let (Some(done), Some((_, Ok(_)))) = (o.done, &o.result) else {
                            continue;
                        };
                        if !o.request.is_write() {
                            continue;
                        }
                        if let Some((s, e)) = self
                            .liveness
                            .quorum_down
                            .iter()
                            .find(|(s, e)| *s <= o.invoked && done < *e)
                        {
                            return Err(violation(
                                Claim::CapAvailableWithoutQuorum,
                                now,
                                format!(
                                    "client {} write {} was acknowledged at t={done}ms while a majority of voters was down (t={s}..{}ms)",
                                    o.client,
                                    short_req(&o.request),
                                    if *e == u64::MAX {
                                        "end".to_string()
                                    } else {
                                        e.to_string()
                                    }
                                ),
                            ));
                        }
                    }
                }
                "observer-loss-keeps-quorum" => {
                    let during: Vec<&(u64, u32, ServerId)> = self
                        .zab
                        .establishments
                        .iter()
                        .skip(1)
                        .filter(|(t, _, _)| *t < self.fault_end)
                        .collect();
                    if let Some((t, e, id)) = during.first() {
                        return Err(violation(
                            Claim::CapObserverCostQuorum,
                            now,
                            format!(
                                "a new leader (n{id}, epoch {e}) had to be established at t={t}ms while only observers were faulted"
                            ),
                        ));
                    }
                }
                // every live server is synced with the leader at the end of the liveness
                // phase: none is left out, the ensemble silently running a server short
                "all-synced" => {
                    let Some(l) = self.leader() else { continue };
                    let Some(st) = self.nodes[&l].server.as_ref().map(|s| s.status()) else {
                        continue;
                    };
                    let synced = st.synced_followers + st.synced_observers;
                    let others = self.nodes.values().filter(|n| n.id != l && n.up()).count();
                    if synced < others {
                        let states: Vec<String> = self
                            .nodes
                            .values()
                            .map(|n| format!("n{} {:?}", n.id, n.state))
                            .collect();
                        return Err(violation(
                            Claim::LivenessAllSynced,
                            now,
                            format!(
                                "leader n{l} has {synced} of {others} live servers synced at the end ({})",
                                states.join(", ")
                            ),
                        ));
                    }
                }
                // the leader forced a new epoch at the end of the counter, never past it
                "zxid-rollover" => {
                    let last = |e: u32| {
                        self.zab
                            .proposals
                            .range(Zxid::new(e, 0)..=Zxid::new(e, u32::MAX))
                            .next_back()
                            .map(|(z, _)| z.counter())
                    };
                    let epochs: Vec<u32> = self.zab.epoch_leaders.keys().copied().collect();
                    let ended = epochs
                        .iter()
                        .filter(|e| last(**e) == Some(u32::MAX - 2))
                        .count();
                    if let Some(z) = self
                        .zab
                        .proposals
                        .keys()
                        .find(|z| z.counter() >= u32::MAX - 1)
                    {
                        return Err(violation(
                            Claim::ScenarioZxidRollover,
                            now,
                            format!("txn {z} proposed at the end of the counter"),
                        ));
                    }
                    if ended == 0 {
                        return Err(violation(
                            Claim::ScenarioSetup,
                            now,
                            "no epoch reached the end of the zxid counter".into(),
                        ));
                    }
                }
                "leader-change" if self.zab.epoch_leaders.len() < 2 => {
                    return Err(violation(
                        Claim::ScenarioNoLeaderChange,
                        now,
                        "the scenario expected a leader change and none happened".into(),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}
