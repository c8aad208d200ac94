use crate::check::{Claim, Violation, violation};
use crate::lines::{CommitLine, txn_kind};
use crate::world::{Who, World};
use ensemble_core::peer::ServerState;
use ensemble_core::txn::{ServerId, Txn};
use ensemble_core::zxid::Zxid;
use std::sync::Arc;

impl World {
    /// The claims that hold after every step of server `id`.
    pub(crate) fn after_step(&mut self, id: ServerId) {
        let now = self.sched.now;
        let (established, applied, digest, state, serving) = {
            let n = &self.nodes[&id];
            let Some(s) = n.server.as_ref() else { return };
            let applied = s.tree().last_zxid();
            let digest = if applied != n.applied {
                Some(s.tree().digest())
            } else {
                None
            };
            (
                s.established_epoch(),
                applied,
                digest,
                s.state(),
                s.is_serving(),
            )
        };
        let n = self.nodes.get_mut(&id).expect("node");
        let moved = n.state != state || n.serving != serving;
        n.state = state;
        n.serving = serving;
        if moved {
            // whom it follows changes only with its state (a learner goes LOOKING between
            // leaders), so the status is asked only then
            n.following = match state {
                ServerState::Following | ServerState::Observing => {
                    n.server.as_ref().and_then(|s| s.status().leader)
                }
                _ => None,
            };
            self.update_availability();
        }
        // one established leader per epoch
        let prev_est = self.nodes[&id].established;
        if established != prev_est {
            self.nodes.get_mut(&id).expect("node").established = established;
            if let Some(e) = established {
                match self.epoch_leaders.get(&e) {
                    Some(other) if *other != id => {
                        let other = *other;
                        self.fail(violation(
                            Claim::ZabOneLeaderPerEpoch,
                            now,
                            format!("n{id} and n{other} both established as leader of epoch {e}"),
                        ));
                        return;
                    }
                    _ => {
                        self.epoch_leaders.insert(e, id);
                    }
                }
                self.stats.leader_changes += 1;
                self.establishments.push((now, e, id));
                self.log(
                    Who::N(id),
                    "LEADING",
                    format_args!("  established leader of epoch {e}"),
                );
                if let Err(v) = self.check_leader_history(id, e) {
                    self.fail(v);
                    return;
                }
            }
            self.update_availability();
        }
        let prev = self.nodes[&id].applied;
        if applied != prev {
            if applied < prev {
                self.fail(violation(
                    Claim::ZabAppliedRegressed,
                    now,
                    format!(
                        "n{id} applied state went back from {prev} to {applied} without a restart"
                    ),
                ));
                return;
            }
            self.nodes.get_mut(&id).expect("node").applied = applied;
            if applied > self.reference.last
                && let Err(v) = self.extend_reference(id, applied)
            {
                self.fail(v);
                return;
            }
            if let Err(v) = self.check_delivered(id, prev, applied) {
                self.fail(v);
                return;
            }
        }
        if let Some(d) = digest {
            match self.reference.digest_at(applied) {
                None => self.fail(violation(Claim::ZabAgreement, now, format!("n{id} applied through {applied}, a zxid the committed history does not have (history is at {})", self.reference.last))),
                Some(r) if r != d => self.fail(violation(Claim::ZabAgreement, now, format!("n{id} state at {applied} differs from the committed history's state at {applied} (digest {d:x} vs {r:x})"))),
                _ => {}
            }
        }
    }

    /// `zab.total-order` on the txns server `id` delivered in this step: those of its history
    /// in (`prev`, `applied`] (after the snapshot it loaded, if it loaded one), which must be
    /// the committed sequence over that range.
    pub(crate) fn check_delivered(
        &mut self,
        id: ServerId,
        prev: Zxid,
        applied: Zxid,
    ) -> Result<(), Violation> {
        let n = self.nodes.get_mut(&id).expect("node");
        let from = n.snapshot_loaded.take().map_or(prev, |s| s.max(prev));
        let Some(s) = n.server.as_ref() else {
            return Ok(());
        };
        let mut delivered: Vec<crate::check::Delivered> = s
            .history()
            .rev()
            .skip_while(|t| t.zxid > applied)
            .take_while(|t| t.zxid > from)
            .map(|t| (t.zxid, t.session, t.cxid))
            .collect();
        delivered.reverse();
        // a history trimmed past `from` cannot show a gap at its start: compare from its first
        let after = match s.history().next() {
            Some(first) if first.zxid > from => Zxid(first.zxid.0 - 1),
            _ => from,
        };
        crate::check::check_delivery(
            id,
            after,
            &delivered,
            &self.reference.txns,
            self.reference.opaque_through,
            self.sched.now,
        )
    }

    /// Everything committed before epoch `e` (and every acknowledged write) must be in the
    /// history of the server that establishes epoch `e`.
    pub(crate) fn check_leader_history(&self, id: ServerId, e: u32) -> Result<(), Violation> {
        let disk = &self.nodes[&id].disk;
        let bound = Zxid::new(e, 0);
        let has = |z: Zxid| -> bool {
            if disk.snapshot.as_ref().is_some_and(|s| s.0 >= z) {
                return true;
            }
            match (disk.find(z), self.proposals.get(&z)) {
                (Some(entry), Some((p, _))) => Arc::ptr_eq(&entry.txn, p) || entry.txn == *p,
                (Some(_), None) => true,
                _ => false,
            }
        };
        for z in &self.shared.acked {
            if *z < bound && !has(*z) {
                return Err(violation(
                    Claim::ZabAckedWriteLost,
                    self.sched.now,
                    format!(
                        "n{id} established epoch {e} without the acknowledged write {z} (its log ends at {})",
                        disk.last_logged()
                    ),
                ));
            }
        }
        if let Some(z) = self.reference.last_below(bound)
            && z > self.reference.opaque_through
            && !has(z)
        {
            return Err(violation(
                Claim::ZabLeaderHistory,
                self.sched.now,
                format!(
                    "n{id} established epoch {e} without committed txn {z} (its log ends at {})",
                    disk.last_logged()
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn extend_reference(&mut self, id: ServerId, to: Zxid) -> Result<(), Violation> {
        let now = self.sched.now;
        let from = self.reference.last;
        let (txns, snap) = {
            let d = &self.nodes[&id].disk;
            let txns: Vec<Arc<Txn>> = d.range(from, to).iter().map(|e| e.txn.clone()).collect();
            (txns, d.snapshot.clone())
        };
        let contiguous = txns.last().map(|t| t.zxid) == Some(to);
        if !contiguous {
            if let Some((sz, data)) = snap.filter(|s| s.0 == to) {
                self.reference.reset_to_snapshot(sz, &data).map_err(|e| {
                    violation(
                        Claim::CoreSnapshot,
                        now,
                        format!("n{id}'s snapshot at {sz} does not load: {e}"),
                    )
                })?;
                return Ok(());
            }
            return Err(violation(
                Claim::ZabAppliedUnlogged,
                now,
                format!(
                    "n{id} applied through {to} but its log does not hold the txns after {from}"
                ),
            ));
        }
        let quorum_needed = self.params.voters / 2 + 1;
        for t in txns {
            // a txn is committed only once a quorum of voters has it durably
            let holders: Vec<ServerId> = self
                .nodes
                .values()
                .filter(|n| !n.observer && n.disk.holds_durably(t.zxid))
                .map(|n| n.id)
                .collect();
            if (holders.len() as u64) < quorum_needed {
                return Err(violation(
                    Claim::ZabCommitWithoutQuorum,
                    now,
                    format!(
                        "txn {} ({}) committed while durable only on {:?} of {} voters",
                        t.zxid,
                        txn_kind(&t),
                        holders,
                        self.params.voters
                    ),
                ));
            }
            // CAP: during a partition, a txn proposed after it began commits only with a
            // quorum on the committing server's side
            if let Some(since) = self.net.partition_since {
                let proposed = self.proposals.get(&t.zxid).map(|p| p.1).unwrap_or(0);
                if proposed >= since {
                    self.partition_commits += 1;
                    let side: Vec<ServerId> = holders
                        .iter()
                        .copied()
                        .filter(|h| *h == id || !self.net.partitioned_from(*h, id))
                        .collect();
                    if (side.len() as u64) < quorum_needed {
                        return Err(violation(
                            Claim::CapMinorityCommit,
                            now,
                            format!(
                                "during partition {}, n{id} committed {} with only {:?} on its side",
                                self.net.partition_desc, t.zxid, side
                            ),
                        ));
                    }
                }
            }
            self.emit(Who::Ref, "", &CommitLine(&t));
            self.reference.apply(&t, now)?;
            self.sessions.on_commit(&t, now)?;
        }
        Ok(())
    }
}
