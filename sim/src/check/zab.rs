//! ZAB safety, checked after every step of every server: one established leader per epoch,
//! a zxid names one txn, agreement (digests at equal zxids), commit only once a quorum holds
//! a txn durably, a new leader's history holds every acknowledged write and committed txn of
//! earlier epochs, applied state never goes back, and delivery in one total order.

use super::TxnInfo;
use crate::check::{Claim, Violation, violation};
use crate::lines::{CommitLine, txn_kind};
use crate::world::{Who, World};
use ensemble_core::membership::Membership;
use ensemble_core::peer::ServerState;
use ensemble_core::txn::{ServerId, Txn};
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::SessionId;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the ZAB checks remember across steps.
#[derive(Default)]
pub struct ZabRecord {
    /// Every proposed txn (shared with the disks that log it), with when it was first logged.
    pub(crate) proposals: BTreeMap<Zxid, (Arc<Txn>, u64)>,
    /// The server that established each epoch.
    pub(crate) epoch_leaders: BTreeMap<u32, ServerId>,
    /// Every establishment: (when, epoch, server).
    pub(crate) establishments: Vec<(u64, u32, ServerId)>,
    /// When an established leader last stopped being one (deposed, crashed, restarted).
    pub(crate) deposed_at: u64,
    /// By server, the zxid through which its ACKs were found covering durable txns only
    /// (`zab.ack-not-durable` looks at each txn once).
    pub(crate) ack_checked: BTreeMap<ServerId, Zxid>,
}

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
            if serving && state == ServerState::Following {
                self.vote_current_at_uptodate(id);
                if self.violation.is_some() {
                    return;
                }
            }
        }
        if let Err(v) = self.check_handed_over(id, state, applied) {
            self.fail(v);
            return;
        }
        // one established leader per epoch
        let prev_est = self.nodes[&id].established;
        if established != prev_est {
            self.nodes.get_mut(&id).expect("node").established = established;
            if prev_est.is_some() {
                self.zab.deposed_at = now;
            }
            if let Some(e) = established {
                match self.zab.epoch_leaders.get(&e) {
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
                        self.zab.epoch_leaders.insert(e, id);
                    }
                }
                self.stats.leader_changes += 1;
                self.zab.establishments.push((now, e, id));
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
        let read_only = self.nodes[&id]
            .server
            .as_ref()
            .is_some_and(|s| s.is_read_only());
        if read_only && applied != prev {
            self.fail(violation(
                Claim::ReadOnlyCommittedPrefix,
                now,
                format!("n{id} applied from {prev} to {applied} while read-only, with no quorum to commit"),
            ));
            return;
        }
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
            if state == ServerState::Leading
                && let Err(v) = self.check_commit_within_removal(id, applied)
            {
                self.fail(v);
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
        // `session.ephemerals-reported` judges a report once its zxid is committed: until
        // the reference reaches the first report's zxid no verdict can change
        let (last, opaque) = (self.reference.last, self.reference.opaque_through);
        if self.sessions.reports_due(last)
            && let Err(v) =
                self.sessions
                    .check_reports(last, opaque, &self.reference.closed_ephemerals, now)
        {
            self.fail(v);
            return;
        }
        // the configuration it has in force is one a committed reconfig made (or the first);
        // it changes only when the server (re)loads it, and a pass stays one (the committed
        // configurations only grow), so it is compared again only after a load
        let n = &self.nodes[&id];
        let loaded = n.server.as_ref().map(|s| (n.inc, s.membership_loads()));
        // `reconfig.config-apart`: what a (re)load took is no older than the last reconfig
        // committed at or before the tree's zxid (a reconfig's zxid has a non-zero counter;
        // the first configuration's versions are an epoch's zxid or 0)
        let apart = n.server.as_ref().filter(|_| loaded != n.config_checked).and_then(|s| {
            let at = s.tree().last_zxid();
            let (version, last) = self
                .reference
                .configs
                .range(..=at.0)
                .rev()
                .find(|(v, _)| *v & 0xffff_ffff != 0)?;
            let m = s.membership();
            (m.version < *version).then(|| {
                format!(
                    "n{id} (tree at {at}) has in force configuration version {:x} (voters {:?}), older than the reconfig {:x} (voters {:?}) its tree applied",
                    m.version,
                    m.voters().collect::<Vec<_>>(),
                    version,
                    last.voters().collect::<Vec<_>>()
                )
            })
        });
        if let Some(why) = apart {
            self.fail(violation(Claim::ReconfigConfigApart, now, why));
            return;
        }
        let config = n.server.as_ref().filter(|_| loaded != n.config_checked).and_then(|s| {
            let m = s.membership();
            match self.reference.configs.get(&m.version) {
                Some(r) if r == m => None,
                // the first configuration versioned by an established leader (ZOOKEEPER-1783:
                // `version=100000000`): the zxid of an epoch a leader has established by now,
                // the members of a configuration the cluster had
                _ if m.version != 0
                    && m.version & 0xffff_ffff == 0
                    && self.zab.epoch_leaders.contains_key(&((m.version >> 32) as u32))
                    && self.reference.configs.values().any(|c| c.servers == m.servers) =>
                {
                    None
                }
                // a joiner's own first configuration (the first one plus itself), until it
                // learns the one in force: it counts nowhere but in its own election
                _ if m.version == 0
                    && Membership::parse(&String::from_utf8_lossy(&n.config.config_node))
                        .is_ok_and(|own| own.servers == m.servers) =>
                {
                    None
                }
                // history that came in a snapshot may hide a configuration we never saw
                None if m.version <= self.reference.opaque_through.0 => None,
                _ => Some(format!(
                    "n{id} has in force configuration version {:x} (voters {:?}), which no committed reconfig made",
                    m.version,
                    m.voters().collect::<Vec<_>>()
                )),
            }
        });
        if let Some(why) = config {
            self.fail(violation(Claim::ReconfigConfigCommitted, now, why));
            return;
        }
        self.nodes.get_mut(&id).expect("node").config_checked = loaded;
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
            match (disk.find(z), self.zab.proposals.get(&z)) {
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
        for t in txns {
            // a txn is committed only once a quorum of the voters in force has it durably
            let voters = self.reference.voters();
            let quorum_needed = voters.len() as u64 / 2 + 1;
            let holders: Vec<ServerId> = self
                .nodes
                .values()
                .filter(|n| voters.contains(&n.id) && n.disk.holds_durably(t.zxid))
                .map(|n| n.id)
                .collect();
            // a reconfig needs a quorum of the configuration it brings too
            if let Some(next) = t.op.new_membership() {
                let next: Vec<ServerId> = next.voters().collect();
                let have = next
                    .iter()
                    .filter(|id| {
                        self.nodes
                            .get(id)
                            .is_some_and(|n| n.disk.holds_durably(t.zxid))
                    })
                    .count();
                let old_ok = holders.len() as u64 >= quorum_needed;
                if have * 2 <= next.len() || !old_ok {
                    return Err(violation(
                        Claim::ReconfigCommitQuorums,
                        now,
                        format!(
                            "reconfig {} committed while durable on {:?} of the old voters {:?} and {have} of the new voters {:?}",
                            t.zxid, holders, voters, next
                        ),
                    ));
                }
            }
            if (holders.len() as u64) < quorum_needed {
                return Err(violation(
                    Claim::ZabCommitWithoutQuorum,
                    now,
                    format!(
                        "txn {} ({}) committed while durable only on {:?} of the voters {:?}",
                        t.zxid,
                        txn_kind(&t),
                        holders,
                        voters
                    ),
                ));
            }
            self.check_partition_commit(id, &t, &holders, quorum_needed)?;
            self.emit(Who::Ref, "", &CommitLine(&t));
            self.liveness.last_commit_at = now;
            self.reference.apply(&t, now)?;
            self.sessions.on_commit(&t, now)?;
        }
        Ok(())
    }

    /// `zab.ack-not-durable` on an ACK of `zxid` that server `id` sends: the leader counts it
    /// for every proposal through `zxid` it sent, so each txn of the server's history through
    /// `zxid` must be durable on its disk (logged and fsynced, or inside a snapshot). Each txn
    /// is looked at once: the history is walked from `zxid` down to the last ACK checked.
    pub(crate) fn check_ack_durable(&mut self, id: ServerId, zxid: Zxid) -> Result<(), Violation> {
        let from = self.zab.ack_checked.get(&id).copied().unwrap_or(Zxid::ZERO);
        if zxid <= from {
            return Ok(());
        }
        let n = &self.nodes[&id];
        let Some(s) = n.server.as_ref() else {
            return Ok(());
        };
        let missing = s
            .history()
            .rev()
            .skip_while(|t| t.zxid > zxid)
            .take_while(|t| t.zxid > from)
            .find(|t| !n.disk.holds_durably(t.zxid))
            .map(|t| t.zxid);
        if let Some(m) = missing {
            return Err(violation(
                Claim::ZabAckNotDurable,
                self.sched.now,
                format!(
                    "n{id} ACKed {zxid} while txn {m} of its history is not durable on its disk{}",
                    if n.disk.holds(m) {
                        " (logged, not fsynced)"
                    } else {
                        " (not logged)"
                    }
                ),
            ));
        }
        self.zab.ack_checked.insert(id, zxid);
        Ok(())
    }

    /// `zab.epoch-promised`: server `id` promises `epoch` to the would-be leader `to` (a
    /// counted ACKEPOCH, `Some`), or counts itself towards the quorum that promised the epoch
    /// it leads (`None`); either way its disk must already hold that acceptedEpoch, from that
    /// leader. Each learner is judged as it sends its promise, not when it is counted: a disk
    /// lost after the promise is another claim's (`zab.lost-state-counted`).
    pub(crate) fn check_epoch_promised(
        &self,
        id: ServerId,
        promise: Option<(ServerId, u32)>,
    ) -> Result<(), Violation> {
        let n = &self.nodes[&id];
        let Some((to, epoch)) = promise.or_else(|| {
            let s = n.server.as_ref()?;
            Some((id, s.leading_epoch()?))
        }) else {
            return Ok(());
        };
        let e = n.disk.epochs;
        if e.accepted_epoch == epoch && e.accepted_from == to {
            return Ok(());
        }
        Err(violation(
            Claim::ZabEpochPromised,
            self.sched.now,
            format!(
                "n{id} {} epoch {epoch} of n{to} while its disk holds acceptedEpoch {} (from n{})",
                if to == id {
                    "counted itself for"
                } else {
                    "promised"
                },
                e.accepted_epoch,
                e.accepted_from
            ),
        ))
    }

    /// `zab.zxid-unique` and `zab.log-order` on an append by server `id`, before it reaches
    /// the disk: each zxid names the txn first proposed with it (recorded here, with when),
    /// and the append continues the log in zxid order.
    pub(crate) fn check_append(
        &mut self,
        id: ServerId,
        txns: &[Arc<Txn>],
    ) -> Result<(), Violation> {
        let now = self.sched.now;
        for t in txns {
            match self.zab.proposals.get(&t.zxid) {
                // the same allocation is the same txn; else compare
                Some((p, _)) if !Arc::ptr_eq(p, t) && **p != **t => {
                    return Err(violation(
                        Claim::ZabZxidUnique,
                        now,
                        format!(
                            "n{id} logged txn {} as {}, but {} was proposed as {}",
                            t.zxid,
                            txn_kind(t),
                            t.zxid,
                            txn_kind(p)
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    // ZooKeeper ends an epoch before its counter's last two values (the
                    // leader's roll-over guard): a txn there was proposed past the guard. Every
                    // run checks it; swarm seeds that start epochs near the end reach it.
                    if t.zxid.counter() >= u32::MAX - 1 {
                        return Err(violation(
                            Claim::ScenarioZxidRollover,
                            now,
                            format!("n{id} logged txn {} at the end of the zxid counter", t.zxid),
                        ));
                    }
                    self.zab.proposals.insert(t.zxid, (Arc::clone(t), now));
                }
            }
        }
        let n = &self.nodes[&id];
        if let Some(last) = n.disk.log.last()
            && let Some(first) = txns.first()
            && first.zxid <= last.txn.zxid
        {
            return Err(violation(
                Claim::ZabLogOrder,
                now,
                format!("n{id} appended {} after {}", first.zxid, last.txn.zxid),
            ));
        }
        Ok(())
    }
}

/// One txn as a server delivered it: its zxid and the request it carries.
pub type Delivered = (Zxid, SessionId, i32);

/// `zab.total-order`, on what a server actually delivered: `delivered` (in delivery order) are
/// the txns it applied after `after`. They must come in strictly increasing zxid order and be
/// exactly the committed sequence over that range, none skipped, none added, each the committed
/// txn of its zxid: every server then delivers a prefix of one total order. History at or below
/// `opaque_through` came in a snapshot and is not compared.
pub fn check_delivery(
    id: u64,
    after: Zxid,
    delivered: &[Delivered],
    committed: &BTreeMap<Zxid, TxnInfo>,
    opaque_through: Zxid,
    now: u64,
) -> Result<(), Violation> {
    let fail = |detail: String| Err(violation(Claim::ZabTotalOrder, now, detail));
    for w in delivered.windows(2) {
        if w[1].0 <= w[0].0 {
            return fail(format!("n{id} delivered {} after {}", w[1].0, w[0].0));
        }
    }
    let Some(last) = delivered.last().map(|d| d.0) else {
        return Ok(());
    };
    let from = after.max(opaque_through);
    let mut want = committed.range(from..=last).filter(|(z, _)| **z > from);
    let mut got = delivered.iter().filter(|d| d.0 > from);
    loop {
        match (got.next(), want.next()) {
            (None, None) => return Ok(()),
            (Some(g), Some((w, info))) => {
                if g.0 != *w {
                    return if g.0 > *w {
                        fail(format!(
                            "n{id} delivered {} without the committed txn {w} before it",
                            g.0
                        ))
                    } else {
                        fail(format!(
                            "n{id} delivered {}, which is not in the committed order (next committed is {w})",
                            g.0
                        ))
                    };
                }
                if (g.1, g.2) != (info.session, info.cxid) {
                    return fail(format!(
                        "n{id} delivered at {w} request cxid {} of session 0x{:x}, but the committed txn at {w} is cxid {} of session 0x{:x}",
                        g.2, g.1, info.cxid, info.session
                    ));
                }
            }
            (Some(g), None) => {
                return fail(format!(
                    "n{id} delivered {}, which is not in the committed order",
                    g.0
                ));
            }
            (None, Some((w, _))) => {
                return fail(format!(
                    "n{id} delivered through {last} without the committed txn {w}"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Claim;

    fn committed(zs: &[u64]) -> BTreeMap<Zxid, TxnInfo> {
        zs.iter()
            .map(|z| {
                (
                    Zxid(*z),
                    TxnInfo {
                        session: 1,
                        cxid: *z as i32,
                        client_write: true,
                        reply: None,
                    },
                )
            })
            .collect()
    }

    fn d(zs: &[u64]) -> Vec<Delivered> {
        zs.iter().map(|z| (Zxid(*z), 1, *z as i32)).collect()
    }

    fn claim(r: Result<(), Violation>) -> Option<Claim> {
        r.err().map(|v| v.claim)
    }

    #[test]
    fn delivery_in_the_committed_order_passes() {
        let c = committed(&[1, 2, 3, 5, 8]);
        assert_eq!(
            claim(check_delivery(1, Zxid(0), &d(&[1, 2, 3]), &c, Zxid(0), 0)),
            None
        );
        assert_eq!(
            claim(check_delivery(1, Zxid(3), &d(&[5, 8]), &c, Zxid(0), 0)),
            None
        );
        // a snapshot covered the start
        assert_eq!(
            claim(check_delivery(1, Zxid(0), &d(&[5]), &c, Zxid(3), 0)),
            None
        );
    }

    #[test]
    fn a_bad_delivery_is_a_total_order_violation() {
        let c = committed(&[1, 2, 3, 5, 8]);
        let bad: [&[u64]; 5] = [
            &[1, 3],    // skipped 2
            &[2, 1],    // out of order
            &[1, 2, 4], // 4 was never committed
            &[1, 1],    // twice
            &[9],       // past everything committed
        ];
        for b in bad {
            assert_eq!(
                claim(check_delivery(1, Zxid(0), &d(b), &c, Zxid(0), 0)),
                Some(Claim::ZabTotalOrder),
                "{b:?}"
            );
        }
        // the right zxid carrying another request
        let mut other = d(&[1, 2]);
        other[1].2 = 77;
        assert!(check_delivery(1, Zxid(0), &other, &c, Zxid(0), 0).is_err());
    }
}
