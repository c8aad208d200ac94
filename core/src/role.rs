//! What a server is doing in the protocol (ZooKeeper's QuorumPeer state), and the narrow door
//! through which the client pipeline reaches the role: a write to submit, a sync to start,
//! session activity, a re-attach, a txn applied. Each door is one `match` here, so the
//! pipeline never needs the whole `Server` and a role handler never needs a lookup.
//!
//! Where each ZAB phase lives: election (LOOKING) in `election.rs`, driven by `server.rs`;
//! the leader's discovery, synchronisation and broadcast in `leader.rs` (`Leading`, phases in
//! `LeaderPhase`); the learner's in `learner.rs` (`Learning`, phases in `LearnerPhase`).

use crate::effect::{Action, Ready};
use crate::leader::{Leader, Leading, Refusal};
use crate::learner::Learner;
use crate::peer::{PeerMsg, ServerState};
use crate::server::Millis;
use crate::txn::{Origin, ServerId, Txn, TxnOp};
use crate::zookeeper_server::ZooKeeperServer;
use ensemble_proto::proto::SessionId;

/// What a server is doing in the protocol right now.
pub(crate) enum Role {
    Looking,
    Leading(Box<Leader>),
    /// Following or observing.
    Learning(Box<Learner>),
}

impl Role {
    /// The role, borrowed apart from the shared state, for the client pipeline.
    pub(crate) fn as_mut(&mut self) -> RoleMut<'_> {
        match self {
            Role::Looking => RoleMut::Looking,
            Role::Leading(l) => RoleMut::Leading(l),
            Role::Learning(l) => RoleMut::Learning(l),
        }
    }
}

/// What a role handler hands back to the dispatcher: whether the role goes on. A handler
/// that ends its role (ZooKeeper's Leader.shutdown / Learner's exit) has already announced
/// LOOKING and started the election; the dispatcher then drops the role's state.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Stay,
    Looking,
}

impl Next {
    /// The role's fate as the shared state announces it.
    pub(crate) fn of(zk: &ZooKeeperServer) -> Next {
        if zk.state == ServerState::Looking {
            Next::Looking
        } else {
            Next::Stay
        }
    }
}

/// The role borrowed apart from the shared state (see [`Role::as_mut`]).
pub(crate) enum RoleMut<'a> {
    Looking,
    Leading(&'a mut Leader),
    Learning(&'a mut Learner),
}

impl RoleMut<'_> {
    /// Send a write to the leader, or propose it if we lead (its session checked first, as
    /// ZooKeeper's PrepRequestProcessor does).
    pub(crate) fn submit(
        &mut self,
        zk: &mut ZooKeeperServer,
        session: SessionId,
        cxid: i32,
        rid: u64,
        op: TxnOp,
        out: &mut Ready,
    ) {
        // Only a serving server has clients, so only it submits their writes.
        assert!(self.is_serving(), "a write submitted while not serving");
        assert!(zk.clients.rid_owner.contains_key(&rid));
        let me = zk.cfg.my_id;
        let local = zk.local_sessions.is_tracked(session);
        match self {
            RoleMut::Leading(l) => {
                let skip = zk.plant(crate::plant::Plant::WriteAfterClose);
                let mut checked = l.sessions.prep_check(session, me, &op, skip, local);
                if zk.plant(crate::plant::Plant::ExpiredLiveSession) {
                    checked = l.sessions.planted_expiry(checked, session, cxid, &op);
                }
                match checked {
                    Ok(()) => {
                        let origin = Origin { server: me, rid };
                        Leading::new(l, zk).propose(session, cxid, origin, op, out);
                    }
                    Err(Refusal::Moved) => zk.session_moved(rid, out),
                    Err(Refusal::Expired) => zk.session_expired(self, rid, out),
                }
            }
            RoleMut::Learning(l) => {
                if let Some(f) = l.foreign.as_mut() {
                    f.forwarded(session, cxid, rid);
                }
                out.push(Action::Send {
                    to: l.leader,
                    msg: PeerMsg::Request {
                        rid,
                        session,
                        cxid,
                        op: Box::new(op),
                        local,
                    },
                })
            }
            RoleMut::Looking => unreachable!("a LOOKING server has no clients"),
        }
    }

    /// Ask the leader for a quorum-confirmed sync point. A leader whose quorum is only itself
    /// (a lone voter) answers within this call, so what waits must already be recorded.
    pub(crate) fn start_sync(&mut self, zk: &mut ZooKeeperServer, id: u64, out: &mut Ready) {
        assert!(self.is_serving(), "a sync started while not serving");
        assert!(
            zk.clients.sync_owner.contains_key(&id),
            "sync {id} started unowned"
        );
        match self {
            RoleMut::Leading(l) => {
                let me = zk.cfg.my_id;
                Leading::new(l, zk).sync_request(me, id, out);
            }
            RoleMut::Learning(l) => {
                if let Some(f) = l.foreign.as_mut() {
                    f.sync_sent(id);
                }
                out.push(Action::Send {
                    to: l.leader,
                    msg: PeerMsg::SyncRequest { id },
                })
            }
            RoleMut::Looking => unreachable!("a LOOKING server has no clients"),
        }
    }

    /// Is this server answering clients (an established leader, an up-to-date learner)?
    pub(crate) fn is_serving(&self) -> bool {
        match self {
            RoleMut::Leading(l) => l.established(),
            RoleMut::Learning(l) => l.serving(),
            RoleMut::Looking => false,
        }
    }

    /// A foreign leader's learner waits for REVALIDATE's answer itself (a foreign leader
    /// answers it after every txn before it): true if it took `sync_id` to wait under.
    pub(crate) fn await_revalidation(&mut self, session: SessionId, sync_id: u64) -> bool {
        match self {
            RoleMut::Learning(l) => match l.foreign.as_mut() {
                Some(f) => {
                    f.revalidation_sent(session, sync_id);
                    true
                }
                None => false,
            },
            _ => false,
        }
    }

    /// The leader a learner re-attaches its clients' sessions with (REVALIDATE); none if we lead.
    pub(crate) fn revalidates_with(&self) -> Option<ServerId> {
        match self {
            RoleMut::Learning(l) => Some(l.leader),
            _ => None,
        }
    }

    /// Session activity: the leader resets the expiry; a learner reports it with its pings.
    pub(crate) fn touch(&mut self, now: Millis, session: SessionId) {
        match self {
            RoleMut::Leading(l) => l.sessions.touch(session, now),
            RoleMut::Learning(l) => {
                l.touched.insert(session);
            }
            RoleMut::Looking => {}
        }
    }

    /// A session re-attached here: the leader makes us its owner (a learner has sent
    /// REVALIDATE already).
    pub(crate) fn reattached(&mut self, me: ServerId, session: SessionId) {
        if let RoleMut::Leading(l) = self {
            l.sessions.set_owner(session, me);
        }
    }

    /// Do we lead and hold `session` closing (closeSession proposed, not yet applied)? A
    /// learner learns of it only once applied, through its sync point.
    pub(crate) fn is_closing(&self, session: SessionId) -> bool {
        matches!(self, RoleMut::Leading(l) if l.sessions.is_closing(session))
    }

    /// A committed txn was applied: the leader's session tracker follows it.
    pub(crate) fn txn_applied(&mut self, now: Millis, txn: &Txn) {
        if let RoleMut::Leading(l) = self {
            l.txn_applied(now, txn);
        }
    }
}
