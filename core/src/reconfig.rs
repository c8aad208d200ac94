//! Dynamic reconfiguration (ZooKeeper 3.5+): the configuration in force and the one pending,
//! and the leader's preparation of a reconfig request.
//!
//! The configuration in force is the one the last *committed* reconfig wrote in
//! `/zookeeper/config` (so a snapshot, a SNAP sync and a restart all carry it), else the one
//! this server started with. A reconfig logged and not yet applied is pending (ZooKeeper's
//! lastSeenQuorumVerifier): from then until it commits, every quorum question (ACKs, NEWLEADER,
//! epochs, elections) needs a quorum of both configurations. It is activated where it is
//! applied, on commit (ZooKeeper's COMMITANDACTIVATE / INFORMANDACTIVATE); a leader it removes
//! stops leading once it has announced the commit, so that an election under the new
//! configuration follows; a learner whose role it changes rejoins in its new role.

use crate::acl;
use crate::leader::Leader;
use crate::membership::Membership;
use crate::plant::Plant;
use crate::quorum::QuorumVerifier;
use crate::txn::TxnOp;
use crate::zookeeper_server::ZooKeeperServer;
use crate::zxid::Zxid;
use ensemble_proto::proto::{Id, KeeperError, Request, perms};

impl ZooKeeperServer {
    /// The membership this server starts with when no committed reconfig says otherwise:
    /// the node's text of it (`Config::config_node`) when it names the same members, else one
    /// made up from the member list (the simulator's servers).
    pub(crate) fn initial_membership(cfg: &crate::config::Config) -> Membership {
        std::str::from_utf8(&cfg.config_node)
            .ok()
            .and_then(|t| Membership::parse(t).ok())
            .filter(|m| m.has_roles(&cfg.members))
            .unwrap_or_else(|| Membership::synthetic(&cfg.members))
    }

    /// Take the configuration in force from the tree (or the initial one), and the pending
    /// one from the log.
    pub(crate) fn load_membership(&mut self) {
        self.membership = self
            .tree
            .committed_membership()
            .unwrap_or_else(|| self.initial.clone());
        self.membership_loads += 1;
        self.cfg.members = self.membership.roles();
        self.refresh_pending();
    }

    /// The last reconfig logged after what is applied is pending; the quorum follows.
    pub(crate) fn refresh_pending(&mut self) {
        let applied = self.tree.last_zxid();
        self.pending = self
            .log
            .iter()
            .rev()
            .take_while(|t| t.zxid > applied)
            .find_map(|t| {
                t.op.new_membership().map(|m| {
                    let m = Membership {
                        version: t.zxid.0,
                        ..m.clone()
                    };
                    (t.zxid, m)
                })
            });
        self.quorum = QuorumVerifier::of(&self.membership, self.pending.as_ref().map(|(_, m)| m));
        if self.plant(Plant::ReconfigNewQuorumOnly) {
            // the old configuration forgotten as soon as the change is seen
            self.quorum = self.quorum.next_only();
        }
    }

    /// A reconfig was applied: its configuration is now in force.
    pub(crate) fn activate_membership(&mut self, zxid: Zxid) {
        self.load_membership();
        assert_eq!(
            self.membership.version, zxid.0,
            "activated a configuration other than the one committed"
        );
        assert!(
            self.pending.as_ref().is_none_or(|(z, _)| *z > zxid),
            "a committed reconfig still pending"
        );
        self.reconfigured = true;
        tracing::info!(server = self.cfg.my_id, version = %format!("{:x}", zxid.0), "configuration activated");
    }

    /// Has a reconfig been activated since the last call?
    pub(crate) fn take_reconfigured(&mut self) -> bool {
        std::mem::take(&mut self.reconfigured)
    }

    /// The configuration invariants: the members are the configuration in force's, which no
    /// pending one follows below what is applied.
    pub(crate) fn check_membership(&self) {
        assert!(
            self.membership.has_roles(&self.cfg.members),
            "the members are not the configuration in force's"
        );
        assert!(
            self.membership.version <= self.tree.last_zxid().0,
            "a configuration in force from a txn not applied"
        );
        if let Some((z, m)) = &self.pending {
            assert!(
                *z > self.tree.last_zxid(),
                "a pending reconfig already applied"
            );
            assert_eq!(m.version, z.0);
        }
    }
}

/// The leader's preparation of a reconfig request (ZooKeeper's PrepRequestProcessor): the txn
/// carries the new configuration, or the error the client is answered with.
pub(crate) fn prep(zk: &ZooKeeperServer, leader: &Leader, request: &Request, auth: &[Id]) -> TxnOp {
    TxnOp::Reconfig {
        outcome: prep_outcome(zk, leader, request, auth).map_err(KeeperError::code),
    }
}

fn prep_outcome(
    zk: &ZooKeeperServer,
    leader: &Leader,
    request: &Request,
    auth: &[Id],
) -> Result<Membership, KeeperError> {
    let Request::Reconfig {
        joining,
        leaving,
        new_members,
        from_config,
    } = request
    else {
        unreachable!("prep of a reconfig that is not one")
    };
    if !zk.cfg.reconfig_enabled {
        return Err(KeeperError::ReconfigDisabled);
    }
    if zk.cfg.standalone_enabled && zk.cfg.is_standalone() {
        // ZooKeeper's standalone server has no reconfig
        return Err(KeeperError::Unimplemented);
    }
    if zk.pending.is_some() {
        return Err(KeeperError::ReconfigInProgress);
    }
    if *from_config != -1 && *from_config as u64 != zk.membership.version {
        return Err(KeeperError::BadVersion);
    }
    let next = zk.membership.reconfigure(joining, leaving, new_members)?;
    if zk.cfg.standalone_enabled && next.voters().count() < 2 {
        tracing::info!("reconfig refused: the new configuration must include at least 2 followers");
        return Err(KeeperError::BadArguments);
    }
    // isQuorumSynced: the leader and the followers synced with it hold a quorum of the new
    // configuration (a joiner must be connected and caught up before it counts).
    let synced = leader
        .learners
        .iter()
        .filter(|(_, h)| !h.observer && h.phase == crate::learner_handler::HandlerPhase::Active)
        .map(|(id, _)| *id)
        .chain([zk.cfg.my_id]);
    if !QuorumVerifier::of(&next, None).contains_quorum(synced) {
        return Err(KeeperError::NewConfigNoQuorum);
    }
    // Only who may write /zookeeper/config (read-only to all by default: the super user).
    let acl = zk.tree.get_acl(crate::path::CONFIG).unwrap_or(&[]);
    if !acl::check(acl, perms::WRITE, auth) {
        return Err(KeeperError::NoAuth);
    }
    Ok(next)
}
