//! The leader's side of ZAB: discovery (LEADERINFO for a new epoch, chosen above every
//! acceptedEpoch of a quorum), synchronisation (DIFF / TRUNC / SNAP, then NEWLEADER; established
//! once a quorum ACKs it), broadcast (PROPOSAL / ACK / COMMIT in zxid order, INFORM to
//! observers), heartbeats, quorum-confirmed `sync`, session expiry and the container reaper.
//!
//! `Leader` is a leadership's state (its phase, `LeaderPhase`, is where it is in ZAB);
//! `Leading` is its handler, which borrows that state and the shared `ZooKeeperServer` for one
//! event, so that only a leader can run leader code.

use crate::effect::{Action, Ready, Write};
use crate::learner_handler::{Handler, HandlerPhase, LearnerHandlers, Traffic};
use crate::peer::{PeerMsg, ServerState, SnapBytes, SyncMode};
use crate::plant::Plant;
use crate::role::{Next, RoleMut};
use crate::server::{Epochs, Millis, Status};
use crate::session_tracker::SessionTracker;
use crate::sync_stream;
use crate::txn::{Origin, ServerId, Txn, TxnOp};
use crate::zookeeper_server::ZooKeeperServer;
use crate::zxid::Zxid;
use ensemble_proto::proto::SessionId;
use std::collections::BTreeSet;

pub(crate) use crate::session_tracker::Refusal;
use std::sync::Arc;

/// A leadership's way through ZAB, in order (ZooKeeper's Leader.lead: getEpochToPropose,
/// waitForEpochAck, waitForNewLeaderAck, then broadcast). It only ever moves forward; a
/// leadership that cannot go on ends (LOOKING) instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum LeaderPhase {
    /// Discovery: gathering FOLLOWERINFOs until a quorum's acceptedEpochs decide our epoch.
    Discovery,
    /// Discovery: our epoch is decided, persisted as acceptedEpoch and sent (LEADERINFO);
    /// waiting for a quorum of ACKEPOCHs that promise it.
    EpochDecided,
    /// Synchronisation: a quorum promised the epoch; learners get DIFF/TRUNC/SNAP and
    /// NEWLEADER; we write currentEpoch once our own history is durable.
    Synchronization,
    /// Synchronisation: currentEpoch written (our own NEWLEADER ACK); waiting for a quorum.
    NewLeaderAcked,
    /// Broadcast: a quorum ACKed NEWLEADER; we are established and propose.
    Broadcast,
    /// A committed reconfig removed us as a voter and we named a successor (ZooKeeper's
    /// `allowedToCommit = false`): we commit, propose and serve nothing more, and end once our
    /// learners have left for the successor (or syncLimit passed).
    HandedOver,
}

/// A `sync` waiting for a quorum to answer a ping round.
#[derive(Clone, Debug)]
pub(crate) struct SyncWaiter {
    pub from: ServerId,
    pub id: u64,
    pub zxid: Zxid,
    pub round: u64,
}

pub(crate) struct Leader {
    /// (currentEpoch, last logged zxid) when we started leading: what a follower's ACKEPOCH
    /// is checked against until we are established (nothing is proposed before that).
    pub initial: (u32, Zxid),
    pub epoch: u32,
    /// Where this leadership is in ZAB: discovery, synchronisation or broadcast.
    pub phase: LeaderPhase,
    pub started: Millis,
    pub learners: LearnerHandlers,
    pub ping_round: u64,
    pub last_ping: Millis,
    pub sync_waiters: Vec<SyncWaiter>,
    /// The sessions, their expiry and owners.
    pub sessions: SessionTracker,
    pub last_reap: Millis,
    /// Containers whose deleteContainer is proposed, not yet applied.
    pub reaping: BTreeSet<String>,
    /// When we handed over (`LeaderPhase::HandedOver`).
    pub handed_over_at: Millis,
}

impl Leader {
    /// A quorum ACKed NEWLEADER: we may propose and serve.
    pub(crate) fn established(&self) -> bool {
        self.phase == LeaderPhase::Broadcast
    }

    /// Move to the next phase (and only the next: the phases are one sequence).
    fn advance(&mut self, to: LeaderPhase) {
        use LeaderPhase::*;
        let next = match self.phase {
            Discovery => EpochDecided,
            EpochDecided => Synchronization,
            Synchronization => NewLeaderAcked,
            NewLeaderAcked => Broadcast,
            Broadcast | HandedOver => HandedOver,
        };
        assert!(
            self.phase != HandedOver && to == next,
            "leader phase {:?} -> {:?}",
            self.phase,
            to
        );
        assert!(
            self.epoch > 0,
            "a leader phase past discovery without an epoch"
        );
        self.phase = to;
    }

    pub(crate) fn learner_ids(&self) -> Vec<ServerId> {
        self.learners.keys().copied().collect()
    }

    pub(crate) fn remove_learner(&mut self, peer: ServerId) {
        self.learners.remove(&peer);
    }

    pub(crate) fn fill_status(&self, cfg: &crate::config::Config, st: &mut Status) {
        self.learners.fill_status(cfg, st);
    }

    /// The phase and the handlers agree: nothing is synced before a quorum promised the
    /// epoch, currentEpoch is ours once we ACKed NEWLEADER ourselves, sessions are tracked
    /// only once established.
    pub(crate) fn check_invariants(&self, me: ServerId, epochs: &Epochs) {
        if self.phase >= LeaderPhase::EpochDecided {
            assert!(self.epoch > 0);
            assert_eq!(
                epochs.accepted_epoch, self.epoch,
                "leading an epoch not accepted"
            );
            assert_eq!(epochs.accepted_from, me);
        } else {
            assert_eq!(self.epoch, 0, "an epoch before discovery decided it");
        }
        if self.phase >= LeaderPhase::NewLeaderAcked {
            assert_eq!(
                epochs.current_epoch, self.epoch,
                "NEWLEADER ACKed without currentEpoch"
            );
        }
        // No handler for ourselves: asserted where a handler is added.
        for h in self.learners.values() {
            assert!(
                h.phase < HandlerPhase::Synced || self.phase >= LeaderPhase::Synchronization,
                "a learner synced before a quorum promised the epoch"
            );
            assert!(!h.epoch_counted || h.phase >= HandlerPhase::EpochAcked);
            assert!(
                h.pong_round <= self.ping_round,
                "a pong for a ping never sent"
            );
        }
        for w in &self.sync_waiters {
            assert!(
                w.round <= self.ping_round,
                "a sync waits for a ping never sent"
            );
            assert_ne!(w.id, 0);
        }
        assert!(
            self.established() || (self.sessions.is_empty() && self.sync_waiters.is_empty()),
            "sessions or syncs before the leader is established"
        );
        self.sessions.check_invariants();
    }
}

impl Leader {
    /// A leadership starting discovery now, with what we have (ZooKeeper's Leader.lead).
    pub(crate) fn new(zk: &ZooKeeperServer) -> Leader {
        assert!(zk.quorum.can_lead(zk.cfg.my_id), "an observer never leads");
        Leader {
            initial: (zk.epochs.current_epoch, zk.last_logged()),
            epoch: 0,
            phase: LeaderPhase::Discovery,
            started: zk.now,
            learners: LearnerHandlers::default(),
            ping_round: 0,
            last_ping: zk.now,
            sync_waiters: Vec::new(),
            sessions: SessionTracker::default(),
            last_reap: zk.now,
            reaping: BTreeSet::new(),
            handed_over_at: 0,
        }
    }

    /// A committed txn was applied: the session tracker and the reaper follow it.
    pub(crate) fn txn_applied(&mut self, now: Millis, txn: &Txn) {
        match &txn.op {
            TxnOp::CreateSession { timeout_ms } => {
                self.sessions.track(txn.session, *timeout_ms, now)
            }
            TxnOp::CloseSession => self.sessions.untrack(txn.session),
            TxnOp::DeleteContainer { path } => {
                self.reaping.remove(path);
            }
            TxnOp::Write { .. }
            | TxnOp::EnforcedWrite { .. }
            | TxnOp::Reconfig { .. }
            | TxnOp::Resolved(_) => {}
        }
    }
}

/// The leader's handler: what a leader does with an event, borrowing exactly the leadership
/// and the shared state. Being here is being the leader. Its entry points hand back a
/// [`Next`]: a leadership that cannot go on ends (`shutdown`) and the dispatcher drops it.
///
/// Where each phase lives: discovery in `receive` (FOLLOWERINFO, ACKEPOCH) and
/// `maybe_decide_epoch`; synchronisation in `maybe_start_sync`, `send_sync`, `persisted` and
/// `check_established`; broadcast in `propose`, `try_commit`, `commit_and_announce`, the
/// `sync` rounds and `tick` (pings, session expiry, the container reaper).
pub(crate) struct Leading<'a> {
    leader: &'a mut Leader,
    zk: &'a mut ZooKeeperServer,
}

impl<'a> Leading<'a> {
    pub(crate) fn new(leader: &'a mut Leader, zk: &'a mut ZooKeeperServer) -> Leading<'a> {
        assert_eq!(
            zk.state,
            ServerState::Leading,
            "a leader's handler while not leading"
        );
        Leading { leader, zk }
    }

    /// Has this leadership ended (LOOKING announced) while we were in it?
    fn ended(&self) -> bool {
        self.zk.state != ServerState::Leading
    }

    fn next(&self) -> Next {
        Next::of(self.zk)
    }

    /// End this leadership (ZooKeeper's Leader.shutdown): learners are disconnected, then the
    /// shared state stops serving and starts an election.
    fn shutdown(&mut self, why: &str, out: &mut Ready) {
        tracing::info!(server = self.zk.cfg.my_id, why, "going LOOKING");
        for peer in self.leader.learner_ids() {
            out.push(Action::DisconnectPeer { peer });
        }
        self.zk.stop_serving(out);
        assert!(self.ended());
    }

    /// Discovery starts: with a quorum of one, the epoch is decided at once.
    pub(crate) fn start(&mut self, out: &mut Ready) -> Next {
        assert_eq!(self.leader.phase, LeaderPhase::Discovery);
        assert!(self.leader.learners.is_empty(), "learners before discovery");
        self.maybe_decide_epoch(out);
        self.next()
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

    pub(crate) fn after_learner_change(&mut self, out: &mut Ready) -> Next {
        self.on_after_learner_change(out);
        self.next()
    }

    fn commit_to(&mut self, to: Zxid, out: &mut Ready) {
        self.zk
            .commit_to(&mut RoleMut::Leading(&mut *self.leader), to, out);
    }

    fn sync_confirmed(&mut self, id: u64, zxid: Zxid, out: &mut Ready) {
        self.zk
            .sync_confirmed(&mut RoleMut::Leading(&mut *self.leader), id, zxid, out);
    }

    fn on_receive(&mut self, from: ServerId, msg: PeerMsg, out: &mut Ready) {
        let now = self.zk.now;
        let miscount = self.zk.plant(Plant::LearnerTrafficMiscount);
        if let Some(h) = self.leader.learners.get_mut(&from) {
            h.last_heard = now;
            h.traffic.received(&msg);
            if miscount && !matches!(msg, PeerMsg::Request { .. }) {
                h.traffic.requests += 1;
            }
        }
        if self.leader.phase == LeaderPhase::HandedOver {
            // Our learners are leaving for the successor: nothing they send matters now, and
            // breaking a connection would lose the HANDOVER still on it.
            crate::probe!("reconfig.handover-ignored");
            return;
        }
        match msg {
            PeerMsg::LearnerInfo {
                accepted_epoch,
                last_zxid,
                observer,
                intact,
            } => {
                // Whatever role it declares: only the configuration decides whose ACKs count
                // (a learner away across a reconfig declares its old role, and rejoins in the
                // new one once its sync has brought it).
                let l = &*self.leader;
                if l.phase >= LeaderPhase::EpochDecided && accepted_epoch > l.epoch {
                    // It promised a later epoch to a would-be leader that failed and will refuse
                    // ours for good (ZooKeeper's learner does too, and stays out until the
                    // leader changes). Only an election, whose epoch passes that promise, brings
                    // it back (an ensemble-fuzz livelock).
                    crate::probe!("leader.later-accepted-epoch");
                    return self.shutdown("a learner accepted a later epoch than ours", out);
                }
                let mut h = Handler {
                    observer,
                    phase: HandlerPhase::Info,
                    accepted_epoch,
                    intact,
                    epoch_counted: false,
                    last_zxid,
                    acked: Zxid::ZERO,
                    synced_through: Zxid::ZERO,
                    last_heard: now,
                    pong_round: 0,
                    established: now,
                    traffic: Traffic::default(),
                };
                h.traffic.received(&PeerMsg::LearnerInfo {
                    accepted_epoch,
                    last_zxid,
                    observer,
                    intact,
                });
                assert_ne!(from, self.zk.cfg.my_id, "a handler for ourselves");
                let l = &mut *self.leader;
                let old = l.learners.insert(from, h);
                debug_assert!(old.is_none_or(|o| o.phase >= HandlerPhase::Info));
                if l.phase >= LeaderPhase::EpochDecided {
                    let epoch = l.epoch;
                    out.push(Action::Send {
                        to: from,
                        msg: PeerMsg::LeaderInfo { new_epoch: epoch },
                    });
                } else {
                    self.maybe_decide_epoch(out);
                }
            }
            PeerMsg::AckEpoch {
                epoch,
                current_epoch,
                last_zxid,
                counted,
            } => {
                let l = &*self.leader;
                // An answer to another LEADERINFO than ours is no promise of our epoch.
                if l.phase < LeaderPhase::EpochDecided
                    || epoch != l.epoch
                    || l.learners.get(&from).map(|h| h.phase) != Some(HandlerPhase::Info)
                {
                    return;
                }
                // ZooKeeper's check: a follower ahead of us means this election went wrong (it
                // may hold a committed txn we lack). Against our state before the new epoch.
                // An uncounted ACKEPOCH is not checked (ZooKeeper's waitForEpochAck skips -1):
                // its currentEpoch may be our very epoch, from a would-be leader's NEWLEADER.
                let trusts_vote = self.zk.plant(Plant::VoteIgnoresEpoch);
                if counted
                    && !l.established()
                    && (current_epoch, last_zxid) > l.initial
                    && !trusts_vote
                {
                    crate::probe!("leader.follower-ahead");
                    return self.shutdown("a follower is ahead of the leader", out);
                }
                let l = &mut *self.leader;
                let Some(h) = l.learners.get_mut(&from) else {
                    unreachable!("ACKEPOCH of {from} checked against its handler above")
                };
                h.phase = HandlerPhase::EpochAcked;
                h.epoch_counted = counted;
                h.last_zxid = last_zxid;
                if l.phase >= LeaderPhase::Synchronization {
                    self.send_sync(from, out);
                } else {
                    self.maybe_start_sync(out);
                }
            }
            PeerMsg::AckNewLeader { zxid } => {
                let (epoch, established) = (self.leader.epoch, self.leader.established());
                let Some(h) = self.leader.learners.get_mut(&from) else {
                    return;
                };
                if h.phase != HandlerPhase::Synced || zxid != Zxid::new(epoch, 0) {
                    return;
                }
                h.phase = HandlerPhase::Active;
                h.acked = h.acked.max(h.synced_through);
                if established {
                    let committed = self.zk.tree.last_zxid();
                    out.push(Action::Send {
                        to: from,
                        msg: PeerMsg::UpToDate {
                            committed,
                            first_config: self.zk.first_config(),
                        },
                    });
                    self.try_commit(out);
                } else {
                    self.check_established(out);
                }
            }
            PeerMsg::Ack { zxid } => {
                let Some(h) = self.leader.learners.get_mut(&from) else {
                    return;
                };
                if h.observer || h.phase != HandlerPhase::Active {
                    return;
                }
                h.acked = h.acked.max(zxid);
                self.try_commit(out);
            }
            PeerMsg::PingReply { round, touched } => {
                let Some(h) = self.leader.learners.get_mut(&from) else {
                    return;
                };
                h.pong_round = h.pong_round.max(round);
                for s in touched {
                    self.leader.sessions.touch(s, now);
                }
                self.check_syncs(out);
            }
            PeerMsg::Request {
                rid,
                session,
                cxid,
                op,
                local,
            } => {
                let l = &*self.leader;
                if !l.established()
                    || l.learners.get(&from).map(|h| h.phase) != Some(HandlerPhase::Active)
                {
                    return;
                }
                let skip = self.zk.plant(Plant::WriteAfterClose);
                let local = local && self.zk.cfg.local_sessions;
                let sessions = &mut self.leader.sessions;
                let mut checked = sessions.prep_check(session, from, &op, skip, local);
                if self.zk.plant(Plant::ExpiredLiveSession) {
                    checked = sessions.planted_expiry(checked, session, cxid, &op);
                }
                match checked {
                    Ok(()) => self.propose(session, cxid, Origin { server: from, rid }, *op, out),
                    Err(Refusal::Moved) => out.push(Action::Send {
                        to: from,
                        msg: PeerMsg::SessionMoved { rid },
                    }),
                    Err(Refusal::Expired) => out.push(Action::Send {
                        to: from,
                        msg: PeerMsg::SessionExpired { rid },
                    }),
                }
            }
            PeerMsg::SyncRequest { id } if self.leader.learners.is_active(from) => {
                self.sync_request(from, id, out);
            }
            PeerMsg::Revalidate { session } if self.leader.learners.is_active(from) => {
                self.leader.sessions.set_owner(session, from);
            }
            _ => {}
        }
    }

    /// Discovery: once a quorum has told us its acceptedEpoch, pick one above them all.
    fn maybe_decide_epoch(&mut self, out: &mut Ready) {
        let me = self.zk.cfg.my_id;
        let l = &*self.leader;
        if l.phase >= LeaderPhase::EpochDecided {
            return;
        }
        // Only servers whose acceptedEpoch is every epoch they promised may be the quorum
        // the new epoch is chosen above: a wiped disk forgot its promises (and a quorum of it
        // could choose an epoch another leader already established). Every voter at once
        // vouches too: the highest of all is above every promise a quorum made.
        let infos: Vec<(ServerId, bool)> = l
            .learners
            .iter()
            .map(|(id, h)| (*id, h.intact))
            .chain([(me, self.zk.intact())])
            .collect();
        let counted =
            if self.zk.plant(Plant::WipedVotesAsFresh) || self.zk.cfg.trust_empty_data_dirs {
                self.zk
                    .quorum
                    .contains_quorum(infos.iter().map(|(id, _)| *id))
            } else {
                self.zk
                    .quorum
                    .contains_vouching_quorum(infos.iter().copied())
            };
        if !counted {
            return;
        }
        out.push(Action::QuorumCounted {
            purpose: "epoch",
            members: infos,
        });
        let max_accepted = l
            .learners
            .values()
            .map(|h| h.accepted_epoch)
            .chain([self.zk.epochs.accepted_epoch])
            .max()
            .unwrap_or(0);
        let epoch = max_accepted.checked_add(1).expect("epoch space exhausted");
        // ZAB: a new epoch is above every epoch a quorum has accepted, ours included.
        assert!(epoch > self.zk.epochs.accepted_epoch && epoch > self.zk.epochs.current_epoch);
        self.zk.epochs = Epochs {
            accepted_epoch: epoch,
            accepted_from: me,
            ..self.zk.epochs
        };
        if !self.zk.plant(Plant::LeaderEpochUnpersisted) {
            out.push(Write::PersistEpochs(self.zk.epochs));
        }
        self.zk.election.update_peer_epoch(epoch);
        let l = &mut *self.leader;
        l.epoch = epoch;
        l.advance(LeaderPhase::EpochDecided);
        for peer in l.learner_ids() {
            out.push(Action::Send {
                to: peer,
                msg: PeerMsg::LeaderInfo { new_epoch: epoch },
            });
        }
        self.maybe_start_sync(out);
    }

    /// Once a quorum ACKed the epoch: write currentEpoch and sync everyone who ACKed.
    fn maybe_start_sync(&mut self, out: &mut Ready) {
        let me = self.zk.cfg.my_id;
        let l = &*self.leader;
        if l.phase != LeaderPhase::EpochDecided {
            return;
        }
        let promised = l
            .learners
            .iter()
            .filter(|(_, h)| h.phase >= HandlerPhase::EpochAcked && h.epoch_counted)
            .map(|(id, _)| *id)
            .chain([me]);
        let promised: Vec<ServerId> = promised.collect();
        if !self.zk.quorum.contains_quorum(promised.iter().copied()) {
            return;
        }
        // each member counted holds the promise durably (ours written before LEADERINFO
        // went out): for the simulator's `zab.epoch-promised`
        out.push(Action::QuorumCounted {
            purpose: crate::effect::EPOCH_PROMISED,
            members: promised.into_iter().map(|id| (id, true)).collect(),
        });
        // Everyone who answered is synced, those whose answer did not count too.
        let acked: Vec<ServerId> = l
            .learners
            .iter()
            .filter(|(_, h)| h.phase == HandlerPhase::EpochAcked)
            .map(|(id, _)| *id)
            .collect();
        self.leader.advance(LeaderPhase::Synchronization);
        if self.zk.plant(Plant::FirstConfigVersionAtNewLeader) {
            // the version taken before any quorum agreed on this epoch
            let epoch = self.leader.epoch;
            self.zk.version_first_config(epoch);
        }
        for peer in acked {
            self.send_sync(peer, out);
        }
        self.on_persisted(out);
    }

    /// Bring one learner to our history: DIFF, TRUNC+DIFF or SNAP, then NEWLEADER.
    fn send_sync(&mut self, peer: ServerId, out: &mut Ready) {
        let Some(h) = self.leader.learners.get(&peer).cloned() else {
            return;
        };
        assert!(
            self.leader.phase >= LeaderPhase::Synchronization,
            "sync before the epoch"
        );
        assert_eq!(h.phase, HandlerPhase::EpochAcked, "a learner synced twice");
        let applied = self.zk.tree.last_zxid();
        let part = self.zk.cfg.sync_part_bytes;
        let mut newleader_sent = false;
        // Observers too get the whole history: a new leader may not yet have applied what an
        // observer already applied, and its uncommitted tail commits with NEWLEADER's quorum.
        // What of it commits later reaches them as COMMIT; txns after it, as INFORM.
        let upto = self.zk.last_logged();
        let p = h.last_zxid;
        let after = |from: Zxid| -> Vec<Arc<Txn>> { self.zk.log.range(from, upto) };
        // A SNAP goes from our newest snapshot file when our log holds everything after it:
        // the runtime streams the file, and the tree is not serialised again here (which held
        // the core thread and ~2 copies of the tree in memory for a large one). The plant that
        // cuts the in-memory stream keeps that path.
        let from_file = self.zk.snapshots.on_disk.filter(|s| {
            *s <= applied
                && *s >= self.zk.log.window_base()
                && self.zk.log.contains(*s)
                && !self.zk.plant(Plant::SnapNewLeaderMidStream)
        });
        let (mode, txns) = if p >= self.zk.log.window_base() && self.zk.log.contains(p) && p <= upto
        {
            crate::probe!("sync.diff");
            (SyncMode::Diff, after(p))
        } else if let Some(to) = self.zk.log.trunc_point(p, upto) {
            crate::probe!("sync.trunc");
            if self.zk.plant(Plant::DiffInsteadOfTrunc) {
                (SyncMode::Diff, after(to))
            } else {
                (SyncMode::Trunc { to }, after(to))
            }
        } else if let Some(file) = from_file {
            crate::probe!("sync.snap");
            crate::probe!("sync.snap-from-file");
            let txns = if self.zk.plant(Plant::SnapFileWithoutLogTail) {
                after(applied)
            } else {
                after(file)
            };
            (
                SyncMode::Snap {
                    zxid: file,
                    snapshot: SnapBytes::from(Arc::new(Vec::new())),
                },
                txns,
            )
        } else {
            // One buffer: the parts are ranges of it, encoded straight into their frames.
            let snapshot = Arc::new(self.zk.tree.to_snapshot());
            let (parts, last) = sync_stream::snap_parts(applied, &snapshot, part);
            crate::probe!("sync.snap");
            if !parts.is_empty() {
                crate::probe!("sync.snap-multipart");
            }
            let early = !parts.is_empty() && self.zk.plant(Plant::SnapNewLeaderMidStream);
            for (i, msg) in parts.into_iter().enumerate() {
                out.push(Action::Send { to: peer, msg });
                if early && i == 0 {
                    newleader_sent = true;
                    out.push(Action::Send {
                        to: peer,
                        msg: PeerMsg::NewLeader {
                            zxid: Zxid::new(self.leader.epoch, 0),
                        },
                    });
                }
            }
            (
                SyncMode::Snap {
                    zxid: applied,
                    snapshot: last,
                },
                after(applied),
            )
        };
        let epoch = self.leader.epoch;
        // What the learner gets extends the point it is cut back to, in order, up to ours.
        debug_assert!(txns.windows(2).all(|w| w[0].zxid < w[1].zxid));
        assert!(
            txns.last().is_none_or(|t| t.zxid == upto),
            "a sync short of our history"
        );
        // The history in frames of bounded size: the first group with the mode, the rest after.
        let mut groups = sync_stream::txn_groups(txns, part).into_iter();
        let first = groups.next().unwrap_or_default();
        match (mode, from_file) {
            (SyncMode::Snap { zxid, .. }, Some(file)) if zxid == file => {
                out.push(Action::SendSnapshot {
                    to: peer,
                    zxid,
                    part,
                    txns: first,
                    committed: applied,
                });
            }
            (mode, _) => out.push(Action::Send {
                to: peer,
                msg: PeerMsg::Sync {
                    mode,
                    txns: first,
                    committed: applied,
                },
            }),
        }
        for txns in groups {
            out.push(Action::Send {
                to: peer,
                msg: PeerMsg::SyncTxns { txns },
            });
        }
        if !newleader_sent {
            out.push(Action::Send {
                to: peer,
                msg: PeerMsg::NewLeader {
                    zxid: Zxid::new(epoch, 0),
                },
            });
        }
        if let Some(h) = self.leader.learners.get_mut(&peer) {
            h.phase = HandlerPhase::Synced;
            h.synced_through = upto;
        }
    }

    fn on_persisted(&mut self, out: &mut Ready) {
        let l = &*self.leader;
        if l.phase == LeaderPhase::Synchronization && self.zk.log.all_durable() {
            // As a learner does on NEWLEADER: currentEpoch only once our history is durable. A
            // currentEpoch on disk over a log that lost its unsynced tail in a crash wins the
            // next election without txns a quorum committed (an ensemble-fuzz TRUNC below
            // what a follower had applied).
            assert!(
                l.epoch > self.zk.epochs.current_epoch,
                "currentEpoch going back"
            );
            self.zk.epochs.current_epoch = l.epoch;
            out.push(Write::PersistEpochs(self.zk.epochs));
            self.leader.advance(LeaderPhase::NewLeaderAcked);
            self.check_established(out);
        }
        if self.leader.established() {
            self.try_commit(out);
        }
    }

    /// A quorum (us included) ACKed NEWLEADER: our whole history is committed.
    fn check_established(&mut self, out: &mut Ready) {
        let me = self.zk.cfg.my_id;
        let l = &*self.leader;
        if l.phase != LeaderPhase::NewLeaderAcked {
            return;
        }
        if !self
            .zk
            .quorum
            .contains_quorum(l.learners.active().chain([me]))
        {
            return;
        }
        let epoch = l.epoch;
        assert_eq!(self.zk.epochs.current_epoch, epoch);
        self.leader.advance(LeaderPhase::Broadcast);
        tracing::info!(server = me, epoch, zxid = %self.zk.last_logged(), "leader established");
        out.push(Action::StateChanged {
            state: ServerState::Leading,
            epoch,
        });
        let everything = self.zk.last_logged();
        self.commit_to(everything, out);
        // Established: the whole history we led with is committed and applied.
        assert_eq!(self.zk.tree.last_zxid(), everything);
        self.zk.version_first_config(epoch);
        let first_config = self.zk.first_config();
        let reconfigured = self.zk.take_reconfigured();
        let now = self.zk.now;
        let sessions: Vec<(SessionId, i32)> = self
            .zk
            .tree
            .sessions()
            .iter()
            .map(|(s, t)| (*s, *t))
            .collect();
        let l = &mut *self.leader;
        for (s, t) in sessions {
            l.sessions.track(s, t, now);
        }
        let active: Vec<ServerId> = l
            .learners
            .iter()
            .filter(|(_, h)| h.phase == HandlerPhase::Active)
            .map(|(id, _)| *id)
            .collect();
        for peer in active {
            out.push(Action::Send {
                to: peer,
                msg: PeerMsg::UpToDate {
                    committed: everything,
                    first_config: first_config.clone(),
                },
            });
        }
        if reconfigured {
            self.after_reconfig(out);
        }
    }

    /// A reconfig was activated and announced: a leader it made a non-voter hands over to a
    /// successor; otherwise what was waiting for the old and new quorums may commit under
    /// the new one.
    fn after_reconfig(&mut self, out: &mut Ready) {
        if !self.zk.cfg.is_voter(self.zk.cfg.my_id) {
            return self.hand_over(out);
        }
        self.try_commit(out);
    }

    /// ZooKeeper's getDesignatedLeader: among the voters of the configuration now in force
    /// that ACKed everything we committed (`r`: the reconfig, or our whole history when we
    /// commit it as we are established), the one that ACKed the most (the fewest proposals
    /// dropped), the lowest id among equals.
    fn designated_leader(&self, r: Zxid) -> Option<ServerId> {
        let me = self.zk.cfg.my_id;
        let mut candidates: Vec<(Zxid, ServerId)> = self
            .leader
            .learners
            .iter()
            .filter(|(id, h)| {
                **id != me
                    && !h.observer
                    && h.phase == HandlerPhase::Active
                    && self.zk.quorum.can_lead(**id)
            })
            .map(|(id, h)| (h.acked, *id))
            .collect();
        if self.zk.plant(Plant::HandOverToUnacked) {
            // whoever ACKed least, ACKed the reconfig or not (a voter not connected first)
            let unconnected = self
                .zk
                .cfg
                .voters()
                .find(|id| *id != me && !self.leader.learners.contains_key(id));
            if unconnected.is_some() {
                return unconnected;
            }
            return candidates.iter().min().map(|(_, id)| *id);
        }
        if self.zk.plant(Plant::HandOverCommitsPastReconfig) {
            // chosen for the reconfig alone (any that ACKed it, as ZooKeeper's set iterator
            // gives one), as if nothing were committed past it
            let reconfig = Zxid(self.zk.membership.version);
            candidates.retain(|(acked, _)| *acked >= reconfig);
            return candidates.iter().min().map(|(_, id)| *id);
        }
        if self.zk.plant(Plant::HandOverPastReconfigOnly) {
            // only a voter that ACKed past the reconfig: none when it was the last proposal
            candidates.retain(|(acked, _)| *acked > r);
        } else {
            candidates.retain(|(acked, _)| *acked >= r);
        }
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        candidates.first().map(|(_, id)| *id)
    }

    /// The reconfig committed through `tree.last_zxid()` removed us as a voter: name a
    /// successor in a HANDOVER after its COMMIT (ZooKeeper's COMMITANDACTIVATE with the
    /// designated leader), so that it leads a new epoch at once and the others follow it
    /// without an election. We commit nothing more (`HandedOver`): the successor may lack
    /// anything proposed after the reconfig. No candidate (none connected ACKed it): the
    /// ensemble elects, as before.
    fn hand_over(&mut self, out: &mut Ready) {
        let r = self.zk.tree.last_zxid();
        let Some(designated) = self.designated_leader(r) else {
            crate::probe!("reconfig.handover-no-candidate");
            return self.shutdown("a reconfig removed the leader, no successor: electing", out);
        };
        assert!(designated != self.zk.cfg.my_id, "handing over to ourselves");
        crate::probe!("reconfig.handover");
        tracing::info!(
            server = self.zk.cfg.my_id,
            designated,
            zxid = %r,
            "a reconfig removed the leader: handing over"
        );
        let l = &mut *self.leader;
        l.advance(LeaderPhase::HandedOver);
        l.handed_over_at = self.zk.now;
        // Nothing leaves us now: the sessions are the successor's, a sync is not answered.
        l.sessions = SessionTracker::default();
        l.sync_waiters.clear();
        let told: BTreeSet<ServerId> = l
            .learners
            .forwarding()
            .chain(l.learners.observers())
            .collect();
        for peer in l.learner_ids() {
            if told.contains(&peer) {
                out.push(Action::Send {
                    to: peer,
                    msg: PeerMsg::HandOver {
                        zxid: r,
                        designated,
                    },
                });
            } else {
                // still syncing: it has nothing to follow the successor with
                l.learners.remove(&peer);
                out.push(Action::DisconnectPeer { peer });
            }
        }
        self.zk.close_all_clients(out);
        self.end_handed_over(out);
    }

    /// A leadership handed over ends once no learner is left on it.
    fn end_handed_over(&mut self, out: &mut Ready) {
        if self.leader.learners.is_empty() {
            self.shutdown("handed over, every learner gone", out);
        }
    }

    /// Propose a txn (we are an established leader).
    pub(crate) fn propose(
        &mut self,
        session: SessionId,
        cxid: i32,
        origin: Origin,
        op: TxnOp,
        out: &mut Ready,
    ) {
        let l = &*self.leader;
        assert!(
            l.established(),
            "proposing before the leader is established"
        );
        let last = self.zk.last_logged();
        if self.zk.plant(Plant::ZxidRolloverUnguarded) && last.epoch() >= l.epoch {
            // ZooKeeper's zxid is a long: an unguarded increment carries into the epoch bits
            let zxid = Zxid(last.0 + 1);
            return self.propose_at(zxid, session, cxid, origin, op, out);
        }
        let zxid = if last.epoch() == l.epoch {
            last.next()
        } else {
            Zxid::new(l.epoch, self.zk.cfg.initial_zxid_counter.saturating_add(1))
        };
        if zxid.counter() >= u32::MAX - 1 {
            // As ZooKeeper: a new epoch before the counter wraps.
            crate::probe!("leader.zxid-exhausted");
            return self.shutdown("zxid counter exhausted", out);
        }
        self.propose_at(zxid, session, cxid, origin, op, out);
    }

    fn propose_at(
        &mut self,
        zxid: Zxid,
        session: SessionId,
        cxid: i32,
        origin: Origin,
        op: TxnOp,
        out: &mut Ready,
    ) {
        // The leader decides whether hard quotas hold for this write (PrepRequestProcessor's
        // checkQuota), so every replica applies it alike; and prepares a reconfig.
        let op = match op {
            TxnOp::Write {
                request: request @ ensemble_proto::proto::Request::Reconfig { .. },
                auth,
            } => crate::reconfig::prep(self.zk, self.leader, &request, &auth),
            op => op.under_quota(self.zk.cfg.enforce_quota),
        };
        let txn = Arc::new(Txn {
            zxid,
            time: self.zk.now as i64,
            session,
            cxid,
            origin,
            op,
        });
        self.zk.append(vec![txn.clone()], out);
        assert_eq!(self.zk.last_logged(), zxid);
        let followers: Vec<ServerId> = self.leader.learners.forwarding().collect();
        for peer in followers {
            out.push(Action::Send {
                to: peer,
                msg: PeerMsg::Proposal(txn.clone()),
            });
        }
        if self.zk.plant(Plant::CommitBeforeQuorum) {
            self.commit_and_announce(zxid, out);
        }
    }

    /// Commit the highest zxid a quorum has made durable.
    fn try_commit(&mut self, out: &mut Ready) {
        let l = &*self.leader;
        if !l.established() || self.ended() {
            return;
        }
        let acks = l
            .learners
            .iter()
            .filter(|(_, h)| !h.observer && h.phase == HandlerPhase::Active)
            .map(|(id, h)| (*id, h.acked))
            .chain([(self.zk.cfg.my_id, self.zk.log.durable())]);
        let agreed = if self.zk.plant(Plant::JoinerAckCounted) {
            self.zk.quorum.agreed_counting_non_voters(acks)
        } else {
            self.zk.quorum.agreed(acks)
        };
        let Some(agreed) = agreed else {
            return;
        };
        let mut z = agreed.min(self.zk.last_logged());
        if let Some((r, next)) = &self.zk.pending
            && *r < z
            && !next.voters().any(|id| id == self.zk.cfg.my_id)
            && !self.zk.plant(Plant::HandOverCommitsPastReconfig)
        {
            // ZooKeeper's allowedToCommit: a reconfig that removes us is the last we commit
            // (our successor is chosen for ACKing it, not what follows)
            crate::probe!("reconfig.handover-commit-stops");
            z = *r;
        }
        if z > self.zk.tree.last_zxid() {
            self.commit_and_announce(z, out);
        }
    }

    fn commit_and_announce(&mut self, z: Zxid, out: &mut Ready) {
        let from = self.zk.tree.last_zxid();
        assert!(
            z > from && z <= self.zk.last_logged(),
            "commit {z} outside ({from}, logged]"
        );
        let to_all = self.zk.plant(Plant::InformToFollowers);
        // Only observers take the txns themselves (INFORM); without any, nothing to gather.
        let informs: Vec<Arc<Txn>> = if to_all || self.leader.learners.observers().next().is_some()
        {
            self.zk.log.range(from, z)
        } else {
            Vec::new()
        };
        self.commit_to(z, out);
        assert!(
            self.zk.tree.last_zxid() >= z,
            "committed {z} but not applied"
        );
        let reconfigured = self.zk.take_reconfigured();
        let l = &*self.leader;
        let followers: Vec<ServerId> = l.learners.forwarding().collect();
        let observers: Vec<(ServerId, Zxid)> = if to_all {
            l.learners.synced().collect::<Vec<_>>()
        } else {
            l.learners.observers().collect()
        }
        .into_iter()
        .map(|id| (id, l.learners[&id].synced_through))
        .collect();
        for peer in followers {
            out.push(Action::Send {
                to: peer,
                msg: PeerMsg::Commit { zxid: z },
            });
        }
        for (peer, synced) in observers {
            // What its sync carried needs only the commit point; the rest, the txns.
            if informs.first().is_some_and(|t| t.zxid <= synced) {
                out.push(Action::Send {
                    to: peer,
                    msg: PeerMsg::Commit {
                        zxid: z.min(synced),
                    },
                });
            }
            for t in informs.iter().filter(|t| t.zxid > synced) {
                crate::probe!("leader.inform");
                out.push(Action::Send {
                    to: peer,
                    msg: PeerMsg::Inform(t.clone()),
                });
            }
        }
        self.check_syncs(out);
        if reconfigured {
            self.after_reconfig(out);
        }
    }

    /// A `sync`: answer once a quorum has answered a ping round sent after it arrived.
    pub(crate) fn sync_request(&mut self, from: ServerId, id: u64, out: &mut Ready) {
        let zxid = self.zk.last_logged();
        if self.zk.plant(Plant::SyncWithoutQuorum) {
            // As ZooKeeper answers it (ZOOKEEPER-1675): a learner's sync once the proposals
            // outstanding now commit, a sync of the leader's own client at once, at what is
            // applied (its CommitProcessor treats that sync as a read).
            let at = if from == self.zk.cfg.my_id {
                self.zk.tree.last_zxid()
            } else {
                zxid
            };
            self.answer_sync(from, id, at, out);
            return;
        }
        let l = &mut *self.leader;
        assert!(l.established(), "a sync before the leader is established");
        l.ping_round += 1;
        let round = l.ping_round;
        l.sync_waiters.push(SyncWaiter {
            from,
            id,
            zxid,
            round,
        });
        let followers: Vec<ServerId> = l.learners.forwarding().collect();
        for peer in followers {
            out.push(Action::Send {
                to: peer,
                msg: PeerMsg::Ping { round },
            });
        }
        self.check_syncs(out);
    }

    fn check_syncs(&mut self, out: &mut Ready) {
        let me = self.zk.cfg.my_id;
        let l = &*self.leader;
        if l.sync_waiters.is_empty() {
            return;
        }
        let mut ready = Vec::new();
        let mut waiting = Vec::new();
        for w in l.sync_waiters.iter().cloned() {
            let confirmed = l
                .learners
                .iter()
                .filter(|(_, h)| h.phase == HandlerPhase::Active && h.pong_round >= w.round)
                .map(|(id, _)| *id)
                .chain([me]);
            if self.zk.quorum.contains_quorum(confirmed) {
                ready.push(w)
            } else {
                waiting.push(w)
            }
        }
        self.leader.sync_waiters = waiting;
        for w in ready {
            self.answer_sync(w.from, w.id, w.zxid, out);
        }
    }

    fn answer_sync(&mut self, from: ServerId, id: u64, zxid: Zxid, out: &mut Ready) {
        assert!(zxid <= self.zk.last_logged(), "a sync point beyond our log");
        if from == self.zk.cfg.my_id {
            self.sync_confirmed(id, zxid, out);
        } else {
            out.push(Action::Send {
                to: from,
                msg: PeerMsg::SyncReply { id, zxid },
            });
        }
    }

    fn on_after_learner_change(&mut self, out: &mut Ready) {
        if self.leader.phase == LeaderPhase::HandedOver {
            return self.end_handed_over(out);
        }
        if self.leader.established() {
            self.try_commit(out);
            self.check_syncs(out);
        }
    }

    fn on_tick(&mut self, out: &mut Ready) {
        let now = self.zk.now;
        let me = self.zk.cfg.my_id;
        let tick = self.zk.cfg.tick_time_ms;
        let init = tick * self.zk.cfg.init_limit as Millis;
        let sync = tick * self.zk.cfg.sync_limit as Millis;
        let l = &*self.leader;
        if l.phase == LeaderPhase::HandedOver {
            if now.saturating_sub(l.handed_over_at) > sync {
                crate::probe!("reconfig.handover-sync-limit");
                self.shutdown("handed over, learners still here past syncLimit", out);
            }
            return;
        }
        if !l.established() {
            if now.saturating_sub(l.started) > init {
                crate::probe!("leader.init-limit");
                return self.shutdown("no quorum established within initLimit", out);
            }
            return;
        }
        // Learners silent past their limit are dropped, as ZooKeeper's LearnerHandler does.
        let stale = l.learners.silent(now, sync, init);
        for peer in stale {
            crate::probe!("leader.learner-silent");
            self.leader.learners.remove(&peer);
            out.push(Action::DisconnectPeer { peer });
        }
        let l = &*self.leader;
        if !self
            .zk
            .quorum
            .contains_quorum(l.learners.active().chain([me]))
        {
            crate::probe!("leader.sync-limit");
            return self.shutdown("lost the quorum for syncLimit", out);
        }
        if now.saturating_sub(l.last_ping) >= tick / 2 {
            let l = &mut *self.leader;
            l.last_ping = now;
            l.ping_round += 1;
            let round = l.ping_round;
            let to: Vec<ServerId> = l.learners.synced().collect();
            for peer in to {
                out.push(Action::Send {
                    to: peer,
                    msg: PeerMsg::Ping { round },
                });
            }
        }
        // Session expiry: a replicated closeSession, once.
        let expired = self.leader.sessions.expired(now);
        for s in expired {
            crate::probe!("leader.session-expired");
            self.leader.sessions.start_closing(s);
            tracing::debug!(session = s, "session expired");
            self.propose(s, 0, Origin::NONE, TxnOp::CloseSession, out);
            if self.ended() {
                return;
            }
        }
        if now.saturating_sub(self.leader.last_reap) >= self.zk.cfg.container_check_interval_ms {
            self.leader.last_reap = now;
            for path in self.zk.tree.reapable(now as i64) {
                if self.leader.reaping.insert(path.clone()) {
                    crate::probe!("leader.container-reaped");
                    self.propose(0, 0, Origin::NONE, TxnOp::DeleteContainer { path }, out);
                    if self.ended() {
                        return;
                    }
                }
            }
        }
    }
}
