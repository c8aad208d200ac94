//! The learner's side of ZAB (ZooKeeper's Follower and Observer): FOLLOWERINFO/OBSERVERINFO,
//! accepting the new epoch (durably, and from one leader only), taking the sync, ACKing
//! NEWLEADER only once what it received is durable and currentEpoch is written, then serving
//! from UPTODATE on: logging and ACKing proposals once durable, applying commits, answering
//! pings. Silence from the leader past the limit sends it back to LOOKING.
//!
//! `Learner` is the learner's state (its phase, `LearnerPhase`, is where it is in ZAB);
//! `Learning` is its handler, which borrows that state and the shared `ZooKeeperServer` for
//! one event.

use crate::effect::{Action, Ready, Write};
use crate::peer::{PeerMsg, ServerState, SyncMode};
use crate::plant::Plant;
use crate::role::{Next, RoleMut};
use crate::server::Millis;
use crate::sync_stream::SnapReceiver;
use crate::tree::TreeOptions;
use crate::txn::{ServerId, Txn};
use crate::zookeeper_server::ZooKeeperServer;
use crate::zxid::Zxid;
use ensemble_proto::proto::SessionId;
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

/// Plant zk-3642: a leader's snapshot held in memory, its parts then its last bytes.
pub(crate) struct HeldSnapshot {
    zxid: Zxid,
    parts: Vec<Arc<Vec<u8>>>,
    last: Arc<Vec<u8>>,
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
    /// Plant zk-3642: the leader's snapshot (its parts, then its last bytes), in memory only
    /// until NEWLEADER.
    pub snap_pending: Option<HeldSnapshot>,
    /// The leader's SNAP being received in parts: its tree being built and its file being
    /// written, neither installed until it is whole.
    pub snap_rx: Option<SnapReceiver>,
    /// Following a foreign leader (`Config::foreign_leader`): what waits for its answers.
    pub foreign: Option<crate::foreign::ForeignLink>,
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
        assert!(
            self.snap_rx.is_none() || self.phase == LearnerPhase::EpochAcked,
            "a SNAP's parts held past the SNAP"
        );
    }
}

impl Learner {
    /// A learner of `leader`, starting discovery now.
    pub(crate) fn new(zk: &ZooKeeperServer, leader: ServerId) -> Learner {
        // A leader outside what we know as the configuration in force is possible for a
        // server that was away across a reconfig: the sync brings the configuration.
        assert!(leader != zk.cfg.my_id, "following ourselves");
        Learner {
            leader,
            observer: zk.cfg.is_observer(),
            phase: LearnerPhase::Discovery,
            epoch: 0,
            last_heard: zk.now,
            committed: Zxid::ZERO,
            newleader_through: Zxid::ZERO,
            last_acked: Zxid::ZERO,
            touched: BTreeSet::new(),
            unlogged: Vec::new(),
            snap_pending: None,
            snap_rx: None,
            foreign: None,
        }
    }
}

/// The learner's handler (ZooKeeper's Follower and Observer): what a learner does with an
/// event, borrowing exactly its learner state and the shared state. Its entry points hand
/// back a [`Next`]: a learner that loses its leader ends (`shutdown`) and the dispatcher
/// drops it.
///
/// Where each phase lives (`LearnerPhase`): discovery in `start` and `receive` (LEADERINFO);
/// synchronisation in `receive` (DIFF/TRUNC/SNAP, NEWLEADER) and `persisted` (the NEWLEADER
/// ACK once durable); broadcast in `receive` (UPTODATE, PROPOSAL, COMMIT, INFORM, PING) and
/// `persisted` (ACKs).
pub(crate) struct Learning<'a> {
    learner: &'a mut Learner,
    zk: &'a mut ZooKeeperServer,
}

impl<'a> Learning<'a> {
    pub(crate) fn new(learner: &'a mut Learner, zk: &'a mut ZooKeeperServer) -> Learning<'a> {
        let state = if learner.observer {
            ServerState::Observing
        } else {
            ServerState::Following
        };
        // LOOKING only before `start` announces the role.
        assert!(
            zk.state == state
                || (zk.state == ServerState::Looking && learner.phase == LearnerPhase::Discovery),
            "a learner's handler in state {:?}",
            zk.state
        );
        Learning { learner, zk }
    }

    fn next(&self) -> Next {
        Next::of(self.zk)
    }

    /// Announce the role and send FOLLOWERINFO/OBSERVERINFO (the dispatcher set the role).
    pub(crate) fn start(&mut self, out: &mut Ready) -> Next {
        assert_eq!(self.learner.phase, LearnerPhase::Discovery);
        let observer = self.learner.observer;
        self.zk.set_state(
            if observer {
                ServerState::Observing
            } else {
                ServerState::Following
            },
            out,
        );
        let msg = PeerMsg::LearnerInfo {
            accepted_epoch: self.zk.epochs.accepted_epoch,
            last_zxid: self.zk.last_logged(),
            observer,
            intact: self.zk.intact(),
        };
        out.push(Action::Send {
            to: self.learner.leader,
            msg,
        });
        self.next()
    }

    /// Leave the leader: ZooKeeper's Learner shutdown, then the shared state stops serving.
    pub(crate) fn shutdown(&mut self, why: &str, out: &mut Ready) -> Next {
        self.end(why, out);
        self.next()
    }

    fn end(&mut self, why: &str, out: &mut Ready) {
        tracing::info!(server = self.zk.cfg.my_id, why, "going LOOKING");
        if self.zk.plant(Plant::Zk4712SyncThreadSurvives) {
            // the in-memory state is fast-forwarded from the log as it is now, while
            // the sync thread goes on writing what it still had queued
            let logged = self.zk.log.durable().max(self.zk.tree.last_zxid());
            self.zk.log.drop_after(logged);
            self.zk.refresh_pending();
        }
        out.push(Action::DisconnectPeer {
            peer: self.learner.leader,
        });
        self.zk.stop_serving(out);
    }

    pub(crate) fn receive(&mut self, from: ServerId, msg: PeerMsg, out: &mut Ready) -> Next {
        self.on_receive(from, msg, out);
        self.next()
    }

    pub(crate) fn persisted(&mut self, out: &mut Ready) -> Next {
        self.on_persisted(out);
        self.next()
    }

    pub(crate) fn tick(&mut self, out: &mut Ready) -> Next {
        self.on_tick(out);
        self.next()
    }

    pub(crate) fn commit_to(&mut self, to: Zxid, out: &mut Ready) {
        self.zk
            .commit_to(&mut RoleMut::Learning(&mut *self.learner), to, out);
        self.zk.take_reconfigured();
        if self.learner.serving()
            && self.zk.state != ServerState::Looking
            && self.learner.observer != self.zk.cfg.is_observer()
        {
            // A reconfig (INFORMANDACTIVATE / COMMITANDACTIVATE, or one the sync brought)
            // gave us another role: rejoin in it. A voter removed altogether stays on as a
            // non-voting follower, which a later reconfig can add back.
            self.end("a reconfig changed our role", out);
        }
    }

    /// Our leader committed the reconfig `zxid` that removed it and named `designated` (a
    /// voter of the new configuration that ACKed it) to lead: leave it and go straight to
    /// the successor, leading if it is us (ZooKeeper's processReconfig with a designated
    /// leader, then updateServerState with reconfigFlag set). A learner that has not applied
    /// the reconfig (still syncing) or that cannot take the part elects instead.
    fn handed_over(&mut self, zxid: Zxid, designated: ServerId, out: &mut Ready) {
        let me = self.zk.cfg.my_id;
        let ready = self.learner.serving()
            && self.zk.tree.last_zxid() >= zxid
            && designated != self.learner.leader
            && (designated != me || self.zk.quorum.can_lead(me));
        let zk = &self.zk;
        let ready = ready && (zk.quorum.can_lead(me) || !zk.plant(Plant::HandOverNonVoterElects));
        if !ready {
            crate::probe!("reconfig.handover-elects");
            return self.end("the leader handed over before we could follow", out);
        }
        crate::probe!("reconfig.handover-followed");
        self.zk.handover_to = Some(designated);
        self.end("the leader handed over", out);
    }

    fn on_receive(&mut self, from: ServerId, msg: PeerMsg, out: &mut Ready) {
        if from != self.learner.leader {
            return; // only our leader speaks to us on the quorum channel
        }
        self.learner.last_heard = self.zk.now;
        let phase = self.learner.phase;
        match msg {
            PeerMsg::LeaderInfo { new_epoch } if phase == LearnerPhase::Discovery => {
                let e = self.zk.epochs;
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
                    crate::probe!("learner.epoch-below-accepted");
                    return self.end("leader proposed an epoch below the one we accepted", out);
                };
                if counted && new_epoch > e.accepted_epoch {
                    self.zk.epochs.accepted_epoch = new_epoch;
                    self.zk.epochs.accepted_from = from;
                    self.zk.election.update_peer_epoch(new_epoch);
                    out.push(Write::PersistEpochs(self.zk.epochs));
                }
                let ack = PeerMsg::AckEpoch {
                    epoch: new_epoch,
                    current_epoch: self.zk.epochs.current_epoch,
                    last_zxid: self.zk.last_logged(),
                    counted,
                };
                if !counted {
                    crate::probe!("learner.ackepoch-uncounted");
                }
                out.push(Action::Send { to: from, msg: ack });
                assert!(self.zk.epochs.accepted_epoch >= new_epoch);
                let l = &mut *self.learner;
                l.epoch = new_epoch;
                l.phase = LearnerPhase::EpochAcked;
            }
            PeerMsg::SnapPart {
                zxid,
                offset,
                total,
                data,
            } if phase == LearnerPhase::EpochAcked => {
                let opts = self.tree_options();
                let first = self.learner.snap_rx.is_none();
                let rx = &mut self.learner.snap_rx;
                match SnapReceiver::part(rx, opts, zxid, offset, total, data.as_slice()) {
                    Ok(index) => {
                        if first {
                            // Our own snapshot being written is of the tree this SNAP replaces,
                            // and its parts would interleave with these on disk.
                            self.zk.tree.abandon_snapshot();
                        }
                        let data = data.into_arc();
                        if self.zk.plant(Plant::Zk3642SnapNotPersisted) {
                            rx.as_mut().expect("taken").held.push(data);
                        } else {
                            out.push(Write::SnapshotPart { zxid, index, data });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(server = self.zk.cfg.my_id, ?e, %zxid, offset, total, "SNAP part refused");
                        crate::probe!("learner.snap-refused");
                        self.end("the leader's SNAP parts do not add up", out);
                    }
                }
            }
            PeerMsg::Sync {
                mode,
                txns,
                committed,
            } if phase == LearnerPhase::EpochAcked => {
                match mode {
                    SyncMode::Diff => {}
                    SyncMode::Trunc { to } => {
                        crate::probe!("learner.trunc");
                        self.zk.truncate(to, out)
                    }
                    SyncMode::Snap { zxid, snapshot } => {
                        let rx = self.learner.snap_rx.take();
                        let opts = self.tree_options();
                        let taken = match SnapReceiver::finish(rx, opts, zxid, snapshot) {
                            Ok(t) => t,
                            Err(e) => {
                                tracing::warn!(server = self.zk.cfg.my_id, ?e, %zxid, "SNAP refused");
                                crate::probe!("learner.snap-refused");
                                return self.end("the leader's SNAP is not a whole snapshot", out);
                            }
                        };
                        crate::probe!("learner.snap-loaded");
                        if taken.parts > 0 {
                            crate::probe!("learner.snap-streamed");
                        }
                        self.zk.tree = taken.tree;
                        self.zk.log.reset_to_snapshot(zxid);
                        // the configuration in force is the snapshot's
                        self.zk.load_membership();
                        assert_eq!(self.zk.last_logged(), zxid);
                        if self.zk.plant(Plant::Zk3642SnapNotPersisted) {
                            self.learner.snap_pending = Some(HeldSnapshot {
                                zxid,
                                parts: taken.held,
                                last: taken.last,
                            });
                        } else {
                            assert!(taken.held.is_empty(), "SNAP parts held back");
                            // The parts went to disk as they came; this ends them, atomically.
                            let parts = if self.zk.plant(Plant::SnapWrittenWithoutParts) {
                                0
                            } else {
                                taken.parts
                            };
                            out.push(Write::Snapshot {
                                zxid,
                                parts,
                                data: taken.last,
                                reset_log: true,
                            });
                        }
                    }
                }
                // With the DIFF-instead-of-TRUNC plant our log can hold txns the leader lacks;
                // keep only what extends it, as a buggy learner would.
                let last = self.zk.last_logged();
                let txns: Vec<_> = txns.into_iter().filter(|t| t.zxid > last).collect();
                self.sync_append(txns, out);
                assert!(self.zk.tree.last_zxid() <= self.zk.last_logged());
                let l = &mut *self.learner;
                l.committed = l.committed.max(committed);
                l.phase = LearnerPhase::Syncing;
            }
            PeerMsg::SyncTxns { txns } if phase == LearnerPhase::Syncing => {
                let last = self.zk.last_logged();
                let txns: Vec<_> = txns.into_iter().filter(|t| t.zxid > last).collect();
                if !txns.is_empty() {
                    self.sync_append(txns, out);
                }
            }
            // A LEADERINFO or NEWLEADER of another epoch than the one we are syncing to is the
            // leader's answer to an older handshake of ours, carried over a reconnect (sim seed
            // 10127): start again from an election rather than mix two handshakes.
            PeerMsg::LeaderInfo { new_epoch } if new_epoch != self.learner.epoch => {
                crate::probe!("learner.leaderinfo-mid-handshake");
                self.end("LEADERINFO of another epoch mid-handshake", out);
            }
            PeerMsg::NewLeader { .. }
                if phase == LearnerPhase::EpochAcked
                    && self.learner.snap_rx.is_some()
                    && self.zk.plant(Plant::SnapNewLeaderMidStream) =>
            {
                // the SNAP's parts so far dropped, as if the sync were done
                self.learner.snap_rx = None;
                self.learner.phase = LearnerPhase::Syncing;
                self.on_receive(from, msg, out);
            }
            PeerMsg::NewLeader { zxid }
                if phase == LearnerPhase::Syncing && zxid.epoch() != self.learner.epoch =>
            {
                self.end("NEWLEADER of another epoch", out);
            }
            PeerMsg::NewLeader { .. } if phase == LearnerPhase::Syncing => {
                if let Some(HeldSnapshot {
                    zxid,
                    parts: held,
                    last: data,
                }) = self.learner.snap_pending.take()
                {
                    let parts = held.len() as u32;
                    for (index, data) in held.into_iter().enumerate() {
                        out.push(Write::SnapshotPart {
                            zxid,
                            index: index as u32,
                            data,
                        });
                    }
                    out.push(Write::Snapshot {
                        zxid,
                        parts,
                        data,
                        reset_log: true,
                    });
                    let txns = std::mem::take(&mut self.learner.unlogged);
                    if !txns.is_empty() {
                        out.push(Write::Append { txns });
                    }
                }
                let through = if self.zk.plant(Plant::Zk3911AckNewLeaderBeforeLogged)
                    || self.zk.plant(Plant::Zk4646AckNewLeaderBeforeFsync)
                {
                    self.zk.log.durable()
                } else if self.zk.plant(Plant::Zk4785AckNewLeaderBeforeTail) {
                    self.learner.committed.min(self.zk.last_logged())
                } else {
                    self.zk.last_logged()
                };
                if self.zk.plant(Plant::Zk4643EpochBeforeHistory) {
                    self.zk.epochs.current_epoch = self.learner.epoch;
                    out.push(Write::PersistEpochs(self.zk.epochs));
                }
                let l = &mut *self.learner;
                l.newleader_through = through;
                l.phase = LearnerPhase::NewLeaderPending;
                self.on_persisted(out);
            }
            PeerMsg::UpToDate {
                committed,
                first_config,
            } if phase == LearnerPhase::AwaitUpToDate => {
                let unlogged = std::mem::take(&mut self.learner.unlogged);
                if !unlogged.is_empty() {
                    out.push(Write::Append { txns: unlogged });
                }
                let l = &mut *self.learner;
                l.committed = l.committed.max(committed);
                l.phase = LearnerPhase::Serving;
                // ZooKeeper's updateElectionVote at UPTODATE (ZOOKEEPER-1732), whether or not
                // our ACKEPOCH counted: a server that had accepted this epoch from another
                // would-be leader kept announcing the older epoch, and a LOOKING server (seed
                // 316 of the swarm) never saw a quorum agree on the leader's epoch.
                let epoch = l.epoch;
                if !self.zk.plant(Plant::VoteEpochStale) {
                    self.zk.election.update_peer_epoch(epoch);
                }
                let c = l.committed;
                tracing::info!(server = self.zk.cfg.my_id, leader = from, zxid = %c, "up to date, serving");
                self.commit_to(c, out);
                // Serving: what the leader committed and we logged is applied.
                assert!(self.zk.tree.last_zxid() >= c.min(self.zk.last_logged()));
                if let Some(m) = &first_config {
                    self.zk.adopt_first_config(m);
                }
            }
            PeerMsg::Proposal(txn)
                if phase >= LearnerPhase::NewLeaderPending && !self.learner.observer =>
            {
                let zxid = txn.zxid;
                if phase < LearnerPhase::Serving {
                    self.sync_append(vec![txn], out);
                } else {
                    self.zk.append(vec![txn], out);
                }
                assert_eq!(self.zk.last_logged(), zxid);
                if self.zk.plant(Plant::AckBeforeDurable) && phase >= LearnerPhase::AwaitUpToDate {
                    self.learner.last_acked = zxid;
                    out.push(Action::Send {
                        to: from,
                        msg: PeerMsg::Ack { zxid },
                    });
                }
            }
            PeerMsg::Commit { zxid } if phase >= LearnerPhase::NewLeaderPending => {
                let l = &mut *self.learner;
                l.committed = l.committed.max(zxid);
                if phase == LearnerPhase::Serving {
                    self.commit_to(zxid, out);
                }
            }
            PeerMsg::Inform(txn)
                if phase >= LearnerPhase::NewLeaderPending && self.learner.observer =>
            {
                assert!(
                    txn.zxid > self.zk.last_logged(),
                    "INFORM {} not after {}",
                    txn.zxid,
                    self.zk.last_logged()
                );
                let zxid = txn.zxid;
                crate::probe!("learner.inform-applied");
                self.zk.append(vec![txn], out);
                let l = &mut *self.learner;
                l.committed = l.committed.max(zxid);
                if phase == LearnerPhase::Serving {
                    self.commit_to(zxid, out);
                }
            }
            PeerMsg::Ping { round } if phase >= LearnerPhase::EpochAcked => {
                let touched: Vec<SessionId> = std::mem::take(&mut self.learner.touched)
                    .into_iter()
                    .collect();
                out.push(Action::Send {
                    to: from,
                    msg: PeerMsg::PingReply { round, touched },
                });
            }
            PeerMsg::SyncReply { id, zxid } if phase == LearnerPhase::Serving => {
                self.zk
                    .sync_confirmed(&mut RoleMut::Learning(&mut *self.learner), id, zxid, out);
            }
            PeerMsg::HandOver { zxid, designated } => self.handed_over(zxid, designated, out),
            PeerMsg::SessionMoved { rid } => self.zk.session_moved(rid, out),
            PeerMsg::SessionExpired { rid } => {
                self.zk
                    .session_expired(&mut RoleMut::Learning(&mut *self.learner), rid, out)
            }
            other => {
                tracing::debug!(
                    server = self.zk.cfg.my_id,
                    msg = other.name(),
                    ?phase,
                    "ignored from leader"
                );
            }
        }
    }

    fn tree_options(&self) -> TreeOptions {
        self.zk.cfg.tree_options()
    }

    /// Log what the sync brings (and proposals before UPTODATE).
    fn sync_append(&mut self, txns: Vec<Arc<Txn>>, out: &mut Ready) {
        if self.zk.plant(Plant::Zk3911AckNewLeaderBeforeLogged)
            || self.learner.snap_pending.is_some()
        {
            // into memory now, into the log at UPTODATE (3911) or after the snapshot (3642)
            self.zk.log_in_memory(&txns);
            self.learner.unlogged.extend(txns);
        } else {
            self.zk.append(txns, out);
        }
    }

    fn on_persisted(&mut self, out: &mut Ready) {
        let l = &mut *self.learner;
        if l.phase == LearnerPhase::NewLeaderPending && self.zk.log.durable() >= l.newleader_through
        {
            // What we were sent is durable: now currentEpoch, then the ACK.
            let epoch = l.epoch;
            let leader = l.leader;
            assert!(
                epoch >= self.zk.epochs.current_epoch,
                "currentEpoch going back"
            );
            assert!(l.newleader_through <= self.zk.last_logged());
            self.zk.epochs.current_epoch = epoch;
            out.push(Write::PersistEpochs(self.zk.epochs));
            out.push(Action::Send {
                to: leader,
                msg: PeerMsg::AckNewLeader {
                    zxid: Zxid::new(epoch, 0),
                },
            });
            self.learner.phase = LearnerPhase::AwaitUpToDate;
        }
        let l = &mut *self.learner;
        if l.phase >= LearnerPhase::AwaitUpToDate
            && !l.observer
            && self.zk.log.durable() > l.last_acked
        {
            let (leader, zxid) = (l.leader, self.zk.log.durable());
            assert!(
                zxid <= self.zk.last_logged(),
                "ACK of {zxid} beyond what we logged"
            );
            self.learner.last_acked = zxid;
            out.push(Action::Send {
                to: leader,
                msg: PeerMsg::Ack { zxid },
            });
        }
    }

    fn on_tick(&mut self, out: &mut Ready) {
        let l = &mut *self.learner;
        if l.foreign.is_some() {
            return; // the runtime watches a foreign leader's silence (`Foreign::Lost`)
        }
        let limit = if l.serving() {
            self.zk.cfg.sync_limit
        } else {
            self.zk.cfg.init_limit
        };
        let trusts_conn = l.serving() && self.zk.plant(Plant::FollowerIgnoresSyncLimit);
        if self.zk.now.saturating_sub(l.last_heard) > self.zk.cfg.tick_time_ms * limit as Millis
            && !trusts_conn
        {
            crate::probe!("learner.leader-silent");
            self.end("the leader went silent", out);
        }
    }
}
