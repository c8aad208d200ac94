//! The learner's side of ZAB (ZooKeeper's Follower and Observer): FOLLOWERINFO/OBSERVERINFO,
//! accepting the new epoch (durably, and from one leader only), taking the sync, ACKing
//! NEWLEADER only once what it received is durable and currentEpoch is written, then serving
//! from UPTODATE on: logging and ACKing proposals once durable, applying commits, answering
//! pings. Silence from the leader past the limit sends it back to LOOKING.

use crate::peer::{PeerMsg, ServerState, SyncMode};
use crate::plant::Plant;
use crate::proto::SessionId;
use crate::server::{Effect, Millis, Role, Server};
use crate::tree::{DataTree, TreeOptions};
use crate::txn::{ServerId, Txn};
use crate::zxid::Zxid;
use std::collections::BTreeSet;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum LearnerPhase {
    /// LEARNERINFO sent, waiting for LEADERINFO.
    Discovery,
    /// ACKEPOCH sent, waiting for the sync.
    EpochAcked,
    /// DIFF/TRUNC/SNAP taken, waiting for NEWLEADER.
    Syncing,
    /// NEWLEADER received; ACK once everything through `newleader_through` is durable.
    NewLeaderPending,
    /// NEWLEADER ACKed, waiting for UPTODATE.
    AwaitUpToDate,
    Serving,
}

pub(crate) struct Learner {
    pub leader: ServerId,
    pub observer: bool,
    pub phase: LearnerPhase,
    pub epoch: u32,
    pub last_heard: Millis,
    /// The highest zxid the leader has told us is committed.
    pub committed: Zxid,
    pub newleader_through: Zxid,
    pub last_acked: Zxid,
    /// Sessions with client activity since the last ping.
    pub touched: BTreeSet<SessionId>,
    /// Plant zk-3911: txns taken into memory whose log write waits for UPTODATE.
    pub unlogged: Vec<Arc<Txn>>,
    /// Plant zk-3642: the leader's snapshot, in memory only until NEWLEADER.
    pub snap_pending: Option<(Zxid, Arc<Vec<u8>>)>,
}

impl Learner {
    pub(crate) fn serving(&self) -> bool {
        self.phase == LearnerPhase::Serving
    }

    /// The phase agrees with the epochs: an epoch is known once ACKed, it is our accepted one,
    /// and it is currentEpoch once we ACKed NEWLEADER.
    pub(crate) fn check_invariants(&self, epochs: &crate::server::Epochs) {
        if self.phase >= LearnerPhase::EpochAcked {
            assert!(self.epoch > 0, "an epoch ACKed without an epoch");
            assert!(
                epochs.accepted_epoch >= self.epoch,
                "learning epoch {} above the accepted {}",
                self.epoch,
                epochs.accepted_epoch
            );
        } else {
            assert_eq!(self.epoch, 0);
        }
        if self.phase >= LearnerPhase::AwaitUpToDate {
            assert_eq!(
                epochs.current_epoch, self.epoch,
                "NEWLEADER ACKed without currentEpoch"
            );
        }
        assert!(
            self.snap_pending.is_none() || self.phase == LearnerPhase::Syncing,
            "the leader's snapshot held past NEWLEADER"
        );
    }
}

impl Server {
    fn learner(&self) -> &Learner {
        match &self.role {
            Role::Learning(l) => l,
            _ => unreachable!("not a learner"),
        }
    }

    fn learner_mut(&mut self) -> &mut Learner {
        match &mut self.role {
            Role::Learning(l) => l,
            _ => unreachable!("not a learner"),
        }
    }

    pub(crate) fn become_learner(&mut self, leader: ServerId, out: &mut Vec<Effect>) {
        assert!(
            matches!(self.role, Role::Looking),
            "learning from another role"
        );
        assert!(
            leader != self.cfg.my_id && self.cfg.is_voter(leader),
            "following a non-voter"
        );
        let observer = self.cfg.is_observer();
        self.role = Role::Learning(Box::new(Learner {
            leader,
            observer,
            phase: LearnerPhase::Discovery,
            epoch: 0,
            last_heard: self.now,
            committed: Zxid::ZERO,
            newleader_through: Zxid::ZERO,
            last_acked: Zxid::ZERO,
            touched: BTreeSet::new(),
            unlogged: Vec::new(),
            snap_pending: None,
        }));
        self.set_state(
            if observer {
                ServerState::Observing
            } else {
                ServerState::Following
            },
            out,
        );
        let msg = PeerMsg::LearnerInfo {
            accepted_epoch: self.epochs.accepted_epoch,
            last_zxid: self.last_logged(),
            observer,
        };
        out.push(Effect::Send { to: leader, msg });
    }

    pub(crate) fn learner_receive(&mut self, from: ServerId, msg: PeerMsg, out: &mut Vec<Effect>) {
        if from != self.learner().leader {
            return; // only our leader speaks to us on the quorum channel
        }
        self.learner_mut().last_heard = self.now;
        let phase = self.learner().phase;
        match msg {
            PeerMsg::LeaderInfo { new_epoch } if phase == LearnerPhase::Discovery => {
                let e = self.epochs;
                // Never promise one epoch to two leaders: that is what keeps epochs unique (a
                // server counts towards one leader's epoch quorum at most, so at most one leader
                // of an epoch ever syncs anyone). The epoch we already accepted from another
                // would-be leader is answered as ZooKeeper's Learner.registerWithLeader does,
                // with an ACKEPOCH that does not count (currentEpoch -1 there): the leader syncs
                // us once its quorum is there. Refusing it instead (and going LOOKING) kept a
                // server that had ACKed that would-be leader's NEWLEADER out for the whole epoch.
                let counted = if new_epoch > e.accepted_epoch {
                    true
                } else if new_epoch == e.accepted_epoch {
                    e.accepted_from == from
                } else {
                    self.go_looking("leader proposed an epoch below the one we accepted", out);
                    return;
                };
                if counted && new_epoch > e.accepted_epoch {
                    self.epochs.accepted_epoch = new_epoch;
                    self.epochs.accepted_from = from;
                    self.election.update_peer_epoch(new_epoch);
                    out.push(Effect::PersistEpochs(self.epochs));
                }
                let ack = PeerMsg::AckEpoch {
                    epoch: new_epoch,
                    current_epoch: self.epochs.current_epoch,
                    last_zxid: self.last_logged(),
                    counted,
                };
                out.push(Effect::Send { to: from, msg: ack });
                assert!(self.epochs.accepted_epoch >= new_epoch);
                let l = self.learner_mut();
                l.epoch = new_epoch;
                l.phase = LearnerPhase::EpochAcked;
            }
            PeerMsg::Sync {
                mode,
                txns,
                committed,
            } if phase == LearnerPhase::EpochAcked => {
                match mode {
                    SyncMode::Diff => {}
                    SyncMode::Trunc { to } => self.truncate(to, out),
                    SyncMode::Snap { zxid, snapshot } => {
                        let opts = TreeOptions {
                            extended_types: self.cfg.extended_types,
                            plant: self.cfg.plant,
                        };
                        match DataTree::from_snapshot(&snapshot, opts) {
                            Ok(tree) if tree.last_zxid() == zxid => {
                                self.tree = tree;
                                self.log.reset_to_snapshot(zxid);
                                assert_eq!(self.last_logged(), zxid);
                                if self.plant(Plant::Zk3642SnapNotPersisted) {
                                    self.learner_mut().snap_pending = Some((zxid, snapshot));
                                } else {
                                    out.push(Effect::Snapshot {
                                        zxid,
                                        parts: 0,
                                        data: snapshot,
                                        reset_log: true,
                                    });
                                }
                            }
                            _ => {
                                self.go_looking("the leader's snapshot is unreadable", out);
                                return;
                            }
                        }
                    }
                }
                // With the DIFF-instead-of-TRUNC plant our log can hold txns the leader lacks;
                // keep only what extends it, as a buggy learner would.
                let last = self.last_logged();
                let txns: Vec<_> = txns.into_iter().filter(|t| t.zxid > last).collect();
                self.sync_append(txns, out);
                assert!(self.tree.last_zxid() <= self.last_logged());
                let l = self.learner_mut();
                l.committed = l.committed.max(committed);
                l.phase = LearnerPhase::Syncing;
            }
            // A LEADERINFO or NEWLEADER of another epoch than the one we are syncing to is the
            // leader's answer to an older handshake of ours, carried over a reconnect (sim seed
            // 10127): start again from an election rather than mix two handshakes.
            PeerMsg::LeaderInfo { new_epoch } if new_epoch != self.learner().epoch => {
                self.go_looking("LEADERINFO of another epoch mid-handshake", out);
            }
            PeerMsg::NewLeader { zxid }
                if phase == LearnerPhase::Syncing && zxid.epoch() != self.learner().epoch =>
            {
                self.go_looking("NEWLEADER of another epoch", out);
            }
            PeerMsg::NewLeader { .. } if phase == LearnerPhase::Syncing => {
                if let Some((zxid, data)) = self.learner_mut().snap_pending.take() {
                    out.push(Effect::Snapshot {
                        zxid,
                        parts: 0,
                        data,
                        reset_log: true,
                    });
                    let txns = std::mem::take(&mut self.learner_mut().unlogged);
                    if !txns.is_empty() {
                        out.push(Effect::Append { txns });
                    }
                }
                let through = if self.plant(Plant::Zk3911AckNewLeaderBeforeLogged)
                    || self.plant(Plant::Zk4646AckNewLeaderBeforeFsync)
                {
                    self.log.durable()
                } else if self.plant(Plant::Zk4785AckNewLeaderBeforeTail) {
                    self.learner().committed.min(self.last_logged())
                } else {
                    self.last_logged()
                };
                if self.plant(Plant::Zk4643EpochBeforeHistory) {
                    self.epochs.current_epoch = self.learner().epoch;
                    out.push(Effect::PersistEpochs(self.epochs));
                }
                let l = self.learner_mut();
                l.newleader_through = through;
                l.phase = LearnerPhase::NewLeaderPending;
                self.learner_persisted(out);
            }
            PeerMsg::UpToDate { committed } if phase == LearnerPhase::AwaitUpToDate => {
                let unlogged = std::mem::take(&mut self.learner_mut().unlogged);
                if !unlogged.is_empty() {
                    out.push(Effect::Append { txns: unlogged });
                }
                let l = self.learner_mut();
                l.committed = l.committed.max(committed);
                l.phase = LearnerPhase::Serving;
                let c = l.committed;
                tracing::info!(server = self.cfg.my_id, leader = from, zxid = %c, "up to date, serving");
                self.commit_to(c, out);
                // Serving: what the leader committed and we logged is applied.
                assert!(self.tree.last_zxid() >= c.min(self.last_logged()));
            }
            PeerMsg::Proposal(txn)
                if phase >= LearnerPhase::NewLeaderPending && !self.learner().observer =>
            {
                let zxid = txn.zxid;
                if phase < LearnerPhase::Serving {
                    self.sync_append(vec![txn], out);
                } else {
                    self.append(vec![txn], out);
                }
                assert_eq!(self.last_logged(), zxid);
                if self.plant(Plant::AckBeforeDurable) && phase >= LearnerPhase::AwaitUpToDate {
                    self.learner_mut().last_acked = zxid;
                    out.push(Effect::Send {
                        to: from,
                        msg: PeerMsg::Ack { zxid },
                    });
                }
            }
            PeerMsg::Commit { zxid } if phase >= LearnerPhase::NewLeaderPending => {
                let l = self.learner_mut();
                l.committed = l.committed.max(zxid);
                if phase == LearnerPhase::Serving {
                    self.commit_to(zxid, out);
                }
            }
            PeerMsg::Inform(txn)
                if phase >= LearnerPhase::NewLeaderPending && self.learner().observer =>
            {
                assert!(
                    txn.zxid > self.last_logged(),
                    "INFORM {} not after {}",
                    txn.zxid,
                    self.last_logged()
                );
                let zxid = txn.zxid;
                self.append(vec![txn], out);
                let l = self.learner_mut();
                l.committed = l.committed.max(zxid);
                if phase == LearnerPhase::Serving {
                    self.commit_to(zxid, out);
                }
            }
            PeerMsg::Ping { round } if phase >= LearnerPhase::EpochAcked => {
                let touched: Vec<SessionId> = std::mem::take(&mut self.learner_mut().touched)
                    .into_iter()
                    .collect();
                out.push(Effect::Send {
                    to: from,
                    msg: PeerMsg::PingReply { round, touched },
                });
            }
            PeerMsg::SyncReply { id, zxid } if phase == LearnerPhase::Serving => {
                self.sync_confirmed(id, zxid, out);
            }
            PeerMsg::SessionMoved { rid } => self.session_moved(rid, out),
            PeerMsg::SessionExpired { rid } => self.session_expired(rid, out),
            other => {
                tracing::debug!(
                    server = self.cfg.my_id,
                    msg = other.name(),
                    ?phase,
                    "ignored from leader"
                );
            }
        }
    }

    /// Log what the sync brings (and proposals before UPTODATE).
    fn sync_append(&mut self, txns: Vec<Arc<Txn>>, out: &mut Vec<Effect>) {
        if self.plant(Plant::Zk3911AckNewLeaderBeforeLogged)
            || self.learner().snap_pending.is_some()
        {
            // into memory now, into the log at UPTODATE (3911) or after the snapshot (3642)
            let mut held = Vec::new();
            self.append(txns, &mut held);
            for e in held {
                if let Effect::Append { txns } = e {
                    self.learner_mut().unlogged.extend(txns);
                }
            }
        } else {
            self.append(txns, out);
        }
    }

    pub(crate) fn learner_persisted(&mut self, out: &mut Vec<Effect>) {
        let l = self.learner();
        if l.phase == LearnerPhase::NewLeaderPending && self.log.durable() >= l.newleader_through {
            // What we were sent is durable: now currentEpoch, then the ACK.
            let epoch = l.epoch;
            let leader = l.leader;
            assert!(
                epoch >= self.epochs.current_epoch,
                "currentEpoch going back"
            );
            assert!(l.newleader_through <= self.last_logged());
            self.epochs.current_epoch = epoch;
            out.push(Effect::PersistEpochs(self.epochs));
            out.push(Effect::Send {
                to: leader,
                msg: PeerMsg::AckNewLeader {
                    zxid: Zxid::new(epoch, 0),
                },
            });
            self.learner_mut().phase = LearnerPhase::AwaitUpToDate;
        }
        let l = self.learner();
        if l.phase >= LearnerPhase::AwaitUpToDate
            && !l.observer
            && self.log.durable() > l.last_acked
        {
            let (leader, zxid) = (l.leader, self.log.durable());
            assert!(
                zxid <= self.last_logged(),
                "ACK of {zxid} beyond what we logged"
            );
            self.learner_mut().last_acked = zxid;
            out.push(Effect::Send {
                to: leader,
                msg: PeerMsg::Ack { zxid },
            });
        }
    }

    pub(crate) fn learner_tick(&mut self, out: &mut Vec<Effect>) {
        let l = self.learner();
        let limit = if l.serving() {
            self.cfg.sync_limit
        } else {
            self.cfg.init_limit
        };
        if self.now.saturating_sub(l.last_heard) > self.cfg.tick_time_ms * limit as Millis {
            self.go_looking("the leader went silent", out);
        }
    }
}
