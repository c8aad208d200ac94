//! Observing a foreign leader (issue 17: an Ensemble server inside a live Apache ZooKeeper
//! ensemble, `ensemble zk-observe`). ZooKeeper's quorum protocol is the runtime's to speak (it
//! registers, syncs and reads the INFORMs on the quorum port); what this server serves is the
//! core's own: the runtime hands it the tree it synced to and then each txn ZooKeeper's leader
//! resolved ([`Foreign`]), and the core applies them to its `DataTree`
//! ([`crate::txn::ResolvedTxn`]), fires the watches, and answers its clients from the same
//! client pipeline, sessions, ACL checks and `/zookeeper` nodes as any learner.
//!
//! The role is a learner's (OBSERVING) that skips ZAB's handshake: [`Foreign::Synced`] puts
//! it straight into serving with the synced tree. What it asks of the leader leaves as the
//! learner's own messages, which the runtime translates: a client's write, createSession or
//! closeSession as `PeerMsg::Request` (ZooKeeper's REQUEST), a sync as `PeerMsg::SyncRequest`
//! (a sync REQUEST of [`crate::Server::sync_session`]'s session), a re-attach as
//! `PeerMsg::Revalidate` (REVALIDATE), the sessions clients touched as `PeerMsg::PingReply`
//! (the PING answer). The answers come back as [`Foreign`] events: a forwarded write is
//! answered when its txn arrives (matched by session and cxid, as ZooKeeper's leader echoes
//! them in the txn header), a sync by the leader's SYNC, a re-attach by REVALIDATE's answer.

use crate::client_pipeline::ConnPhase;
use crate::effect::{Action, Ready, Write};
use crate::learner::{Learner, LearnerPhase, Learning};
use crate::peer::{PeerMsg, ServerState};
use crate::role::{Next, Role, RoleMut};
use crate::server::Server;
use crate::tree::{DataTree, TreeOptions};
use crate::txn::{Origin, ServerId, Txn};
use ensemble_proto::proto::SessionId;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// What the runtime following a foreign leader tells the core.
#[derive(Clone, Debug)]
pub enum Foreign {
    /// Synced with `leader` in `epoch` (its LEADERINFO's): the tree it synced to, as an
    /// Ensemble snapshot (`DataTree::to_snapshot`'s bytes, at the tree's last zxid). Serving
    /// starts; a role held before ends first (its clients are closed, as ZooKeeper's observer
    /// stops serving between leaders).
    Synced {
        leader: ServerId,
        epoch: u32,
        snapshot: Arc<Vec<u8>>,
    },
    /// One txn the leader resolved (`TxnOp::Resolved`), INFORMed, in zxid order. One at or
    /// below what is held is ignored (a SNAP taken after it).
    Txn(Txn),
    /// The leader's SYNC: the oldest sync sent is answered.
    SyncDone,
    /// The leader's answer to a REVALIDATE of `session`.
    Revalidated { session: SessionId, valid: bool },
    /// The leader's PING: the core answers with the sessions its clients touched.
    Ping,
    /// The leader is gone (its connection broke, it went silent): stop serving until the
    /// next `Synced`.
    Lost { why: String },
}

/// What a foreign leader's learner waits for.
#[derive(Debug, Default)]
pub struct ForeignLink {
    /// Forwarded writes by (session, cxid), as the leader's txn header echoes them: the
    /// request number whose connection waits.
    forwarded: BTreeMap<(SessionId, i32), u64>,
    /// Syncs sent, oldest first: the leader answers them in order.
    syncs: VecDeque<u64>,
    /// REVALIDATEs sent, each the sync id its connection waits under.
    revalidating: BTreeMap<SessionId, VecDeque<u64>>,
}

impl ForeignLink {
    /// A write (or session txn) forwarded as `rid`.
    pub(crate) fn forwarded(&mut self, session: SessionId, cxid: i32, rid: u64) {
        self.forwarded.insert((session, cxid), rid);
    }
    pub(crate) fn sync_sent(&mut self, id: u64) {
        self.syncs.push_back(id);
    }
    pub(crate) fn revalidation_sent(&mut self, session: SessionId, sync_id: u64) {
        self.revalidating
            .entry(session)
            .or_default()
            .push_back(sync_id);
    }
}

impl Server {
    pub(crate) fn on_foreign(&mut self, f: Foreign, out: &mut Ready) {
        assert!(
            self.zk.cfg.foreign_leader,
            "a foreign leader's event on a server of its own ensemble"
        );
        match f {
            Foreign::Synced {
                leader,
                epoch,
                snapshot,
            } => self.foreign_synced(leader, epoch, snapshot, out),
            Foreign::Txn(txn) => self.foreign_txn(txn, out),
            Foreign::SyncDone => {
                let Role::Learning(l) = &mut self.role else {
                    return;
                };
                let Some(id) = l.foreign.as_mut().and_then(|f| f.syncs.pop_front()) else {
                    return;
                };
                crate::probe!("foreign.sync-answered");
                let at = self.zk.tree.last_zxid();
                self.zk
                    .sync_confirmed(&mut RoleMut::Learning(l), id, at, out);
            }
            Foreign::Revalidated { session, valid } => {
                let Role::Learning(l) = &mut self.role else {
                    return;
                };
                let Some(id) = l
                    .foreign
                    .as_mut()
                    .and_then(|f| f.revalidating.get_mut(&session))
                    .and_then(|q| q.pop_front())
                else {
                    return;
                };
                if let Some(f) = l.foreign.as_mut() {
                    f.revalidating.retain(|_, q| !q.is_empty());
                }
                if valid {
                    // answered after every txn before it: the tree holds what the leader knew
                    let at = self.zk.tree.last_zxid();
                    self.zk
                        .sync_confirmed(&mut RoleMut::Learning(l), id, at, out);
                } else {
                    crate::probe!("foreign.revalidate-refused");
                    self.zk.revalidation_refused(id, out);
                }
            }
            Foreign::Ping => {
                let Role::Learning(l) = &mut self.role else {
                    return;
                };
                let touched: Vec<SessionId> = std::mem::take(&mut l.touched).into_iter().collect();
                out.push(Action::Send {
                    to: l.leader,
                    msg: PeerMsg::PingReply { round: 0, touched },
                });
            }
            Foreign::Lost { why } => {
                if let Role::Learning(l) = &mut self.role {
                    crate::probe!("foreign.leader-lost");
                    let next = Learning::new(l, &mut self.zk).shutdown(&why, out);
                    self.settle(next);
                }
            }
        }
    }

    /// Serve the tree the runtime synced to, as an observer of `leader` in `epoch`.
    fn foreign_synced(
        &mut self,
        leader: ServerId,
        epoch: u32,
        snapshot: Arc<Vec<u8>>,
        out: &mut Ready,
    ) {
        if let Role::Learning(l) = &mut self.role {
            let next = Learning::new(l, &mut self.zk).shutdown("synced again", out);
            self.settle(next);
        }
        assert!(matches!(self.role, Role::Looking));
        let opts = TreeOptions {
            extended_types: self.zk.cfg.extended_types,
            auth_providers: self.zk.cfg.auth_providers,
            plant: self.zk.cfg.plant,
        };
        let tree = match DataTree::from_snapshot(&snapshot, opts) {
            Ok(t) => t,
            Err(e) => {
                // the runtime built it: a defect there, never served
                tracing::error!(server = self.zk.cfg.my_id, %e, "the synced tree is unreadable");
                return;
            }
        };
        if leader == self.zk.cfg.my_id || epoch == 0 {
            tracing::error!(leader, epoch, "a foreign sync from no leader");
            return;
        }
        crate::probe!("foreign.synced");
        let zxid = tree.last_zxid();
        self.zk.tree = tree;
        self.zk.log.reset_to_snapshot(zxid);
        self.zk.load_membership();
        self.zk.epochs.accepted_epoch = self.zk.epochs.accepted_epoch.max(epoch);
        self.zk.epochs.accepted_from = leader;
        self.zk.epochs.current_epoch = self.zk.epochs.accepted_epoch;
        out.push(Write::Snapshot {
            zxid,
            parts: 0,
            data: snapshot,
            reset_log: true,
        });
        out.push(Write::PersistEpochs(self.zk.epochs));
        let mut learner = Box::new(Learner::new(&self.zk, leader));
        learner.phase = LearnerPhase::Serving;
        learner.epoch = self.zk.epochs.current_epoch;
        learner.committed = zxid;
        learner.foreign = Some(ForeignLink::default());
        self.zk.set_state(ServerState::Observing, out);
        self.role = Role::Learning(learner);
        self.settle(Next::Stay);
    }

    /// Apply one resolved txn, answering the forwarded request it resolves.
    fn foreign_txn(&mut self, mut txn: Txn, out: &mut Ready) {
        let Role::Learning(l) = &mut self.role else {
            tracing::debug!(zxid = %txn.zxid, "a foreign txn while not synced: ignored");
            return;
        };
        if txn.zxid <= self.zk.last_logged() {
            return; // the synced tree holds it
        }
        let me = self.zk.cfg.my_id;
        if let Some(link) = l.foreign.as_mut()
            && let Some(rid) = link.forwarded.remove(&(txn.session, txn.cxid))
        {
            crate::probe!("foreign.forwarded-answered");
            txn.origin = Origin { server: me, rid };
        }
        let zxid = txn.zxid;
        self.zk.append(vec![Arc::new(txn)], out);
        l.committed = l.committed.max(zxid);
        let mut learning = Learning::new(l, &mut self.zk);
        learning.commit_to(zxid, out);
        // ZooKeeper's reconfig is a setData of /zookeeper/config: the configuration it
        // activates is the one in force here too (4lw `conf`, the members), as at the sync
        let applied = self.zk.tree.committed_membership().map(|m| m.version);
        if applied.is_some_and(|v| v != self.zk.membership.version)
            && !self.zk.plant(crate::plant::Plant::ForeignConfigNotReloaded)
        {
            crate::probe!("foreign.config-reloaded");
            self.zk.load_membership();
        }
        let next = Next::of(&self.zk);
        self.settle(next);
        assert!(
            !matches!(self.role, Role::Learning(_)) || self.zk.tree.last_zxid() == zxid,
            "a foreign txn logged, not applied"
        );
    }

    /// The session a sync (by its id) is asked for: a foreign leader takes a sync only as a
    /// request of a live session.
    pub fn sync_session(&self, id: u64) -> Option<SessionId> {
        let conn = self.zk.clients.sync_owner.get(&id)?;
        self.zk.clients.conns.get(conn).map(|c| c.session)
    }

    /// The session timeout the connection re-attaching `session` negotiated: what ZooKeeper's
    /// learner sends with its REVALIDATE (`Learner.validateSession`), and the leader touches
    /// the session with it; the tree's timeout may be unknown (a session created after the
    /// sync's snapshot but not yet applied here) or the client may ask for another.
    pub fn revalidating_timeout(&self, session: SessionId) -> Option<i32> {
        self.zk
            .clients
            .conns
            .values()
            .find(|c| c.session == session && matches!(c.phase, ConnPhase::Revalidating { .. }))
            .map(|c| c.timeout_ms)
    }

    /// Whether this server follows a foreign leader now (synced, serving).
    pub fn foreign_leader(&self) -> Option<ServerId> {
        match &self.role {
            Role::Learning(l) if l.foreign.is_some() => Some(l.leader),
            _ => None,
        }
    }
}

impl crate::zookeeper_server::ZooKeeperServer {
    /// The leader refused a re-attach: the connection waiting under sync `id` is told its
    /// session expired.
    fn revalidation_refused(&mut self, id: u64, out: &mut Ready) {
        let Some(conn) = self.clients.sync_owner.remove(&id) else {
            return;
        };
        let Some(c) = self.clients.conns.get(&conn) else {
            return;
        };
        if c.phase != (ConnPhase::Revalidating { sync_id: id }) {
            return;
        }
        let read_only = c.read_only;
        out.push(Action::ConnectReply {
            conn,
            response: crate::cnxn::expired_response(read_only),
        });
        out.push(Action::Close { conn });
        self.drop_conn(conn);
    }
}
