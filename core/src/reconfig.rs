//! Dynamic reconfiguration (ZooKeeper 3.5+): the configuration in force and the one pending,
//! and the leader's preparation of a reconfig request.
//!
//! The configuration in force is the one the last *committed* reconfig made, which the tree
//! keeps apart from `/zookeeper/config`'s data (so a snapshot, a SNAP sync and a restart all
//! carry it, and a client's write of the node does not change it), else the one this server
//! started with. A reconfig logged and not yet applied is pending (ZooKeeper's
//! lastSeenQuorumVerifier): from then until it commits, every quorum question (ACKs, NEWLEADER,
//! epochs, elections) needs a quorum of both configurations. It is activated where it is
//! applied, on commit (ZooKeeper's COMMITANDACTIVATE / INFORMANDACTIVATE); a leader it removes
//! commits nothing after it and hands over to a new voter that ACKed it (HANDOVER, ZooKeeper's
//! designated leader: `Leading::hand_over`), whom its learners lead or follow without an
//! election; a learner whose role it changes rejoins in its new role.

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
    /// The membership this server starts with when no committed reconfig says otherwise
    /// (`configured_members`), at version 0 or a first configuration's version.
    pub(crate) fn initial_membership(cfg: &crate::config::Config) -> Membership {
        Membership {
            version: if is_first_config_version(cfg.config_version) {
                cfg.config_version
            } else {
                0
            },
            ..configured_members(cfg)
        }
    }

    /// Start with the configuration of our dynamic file when a reconfig made it (its version
    /// a reconfig's zxid, taken from the file's name as ZooKeeper's QuorumPeerConfig takes
    /// it). A server writes that file only when it activates a configuration, which happens
    /// on commit, so it is a committed configuration; it is in force from the start even when
    /// our tree is older (the reconfig logged and not applied yet, or, on a leader that
    /// activated it on its followers' ACKs, not durable here at all), as ZooKeeper's
    /// QuorumVerifier is the file's. Kept as `learned` until what we apply catches up; a
    /// tree that has applied it (or something newer) has it already.
    pub(crate) fn adopt_dynamic_file(&mut self) {
        let version = self.cfg.config_version;
        if version == 0 || is_first_config_version(version) {
            return;
        }
        if self.plant(Plant::RestartConfigVersionDropped) {
            // the file's members in force at version 0 (`initial`), as if no reconfig made them
            return;
        }
        let applied = self
            .tree
            .committed_membership()
            .map_or(0, |m| m.version)
            .max(self.tree.last_zxid().0);
        if version <= applied {
            return;
        }
        self.learned = Some(Membership {
            version,
            ..configured_members(&self.cfg)
        });
        crate::probe!("reconfig.dynamic-file-ahead-of-tree");
    }

    /// ZOOKEEPER-1783: with `reconfigEnabled`, the first configuration (version 0) takes the
    /// zxid of the epoch whose leader is established as its version (`version=100000000`), so
    /// that it wins over the partial first configuration of a server yet to join. The leader
    /// does this once a quorum ACKed NEWLEADER (never at NEWLEADER: the epoch may not be
    /// established), a learner at UPTODATE from the leader's (`adopt_first_config`).
    pub(crate) fn version_first_config(&mut self, epoch: u32) {
        if !self.cfg.reconfig_enabled
            || self.membership.version != 0
            || self.pending.is_some()
            || self.learned.is_some()
        {
            return;
        }
        let m = Membership {
            version: Zxid::new(epoch, 0).0,
            ..self.initial.clone()
        };
        self.adopt_first_config(&m);
    }

    /// What UPTODATE carries: our first configuration once an epoch versioned it.
    pub(crate) fn first_config(&self) -> Option<Membership> {
        (self.initial.version != 0).then(|| self.initial.clone())
    }

    /// Take the first configuration `m` an established leader versioned if it is newer than
    /// ours (ZooKeeper's setQuorumVerifier ignores an older one); the configuration in force
    /// follows when it is the first one.
    pub(crate) fn adopt_first_config(&mut self, m: &Membership) {
        if !self.cfg.reconfig_enabled || m.version <= self.initial.version {
            return;
        }
        assert!(
            is_first_config_version(m.version),
            "a first configuration's version is an epoch's zxid"
        );
        self.initial = m.clone();
        self.load_membership();
        crate::probe!("reconfig.first-config-versioned");
        tracing::info!(server = self.cfg.my_id, version = %format!("{:x}", m.version), "first configuration versioned");
    }

    /// Take the configuration in force from the tree (or the initial one), unless one learned
    /// from a peer is newer, and the pending one from the log.
    pub(crate) fn load_membership(&mut self) {
        let committed = if self.plant(Plant::ConfigFromNode) {
            self.tree.config_in_node()
        } else {
            self.tree.committed_membership()
        }
        .unwrap_or_else(|| self.initial.clone());
        self.membership_loads += 1;
        self.membership = match self.learned.take() {
            Some(l) if l.version > committed.version => {
                self.learned = Some(l.clone());
                l
            }
            // what we applied caught up with it
            _ => committed,
        };
        self.cfg.members = self.membership.roles();
        // the one place either is written, so the members are checked to be the
        // configuration's here; `check_invariants` (after every event) compares their sizes
        assert!(
            self.membership.has_roles(&self.cfg.members),
            "the members are not the configuration in force's"
        );
        self.refresh_pending();
    }

    /// Adopt a configuration a peer has in force, newer than ours (we are LOOKING): it was
    /// committed (only committed configurations are in force anywhere), so its voters decide
    /// the election, and a reconfig of ours logged before it is no longer pending.
    pub(crate) fn learn_membership(&mut self, m: Membership) {
        assert!(
            m.version > self.membership.version,
            "learned a configuration no newer than ours"
        );
        assert_eq!(self.state, crate::peer::ServerState::Looking);
        if is_first_config_version(m.version) {
            // a first configuration an established leader versioned (no txn made it): it
            // replaces ours, as ZooKeeper's processReconfig takes any newer configuration
            // (ZOOKEEPER-1783: a joiner's partial first configuration gives way)
            self.initial = m;
            self.load_membership();
            crate::probe!("reconfig.first-config-learned");
            return;
        }
        self.learned = Some(m);
        self.load_membership();
        assert!(self.learned.is_some());
    }

    /// The last reconfig logged after what is applied (and after the configuration in force)
    /// is pending; the quorum follows.
    pub(crate) fn refresh_pending(&mut self) {
        let after = self.tree.last_zxid().max(Zxid(self.membership.version));
        self.pending = self
            .log
            .iter()
            .rev()
            .take_while(|t| t.zxid > after)
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
        assert!(
            self.membership.version == zxid.0
                || (self.learned.is_some() && self.membership.version > zxid.0),
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
        assert_eq!(
            self.membership.servers.len(),
            self.cfg.members.len(),
            "the members are not the configuration in force's"
        );
        match &self.learned {
            None => assert!(
                self.membership.version <= self.tree.last_zxid().0
                    || (self.membership == self.initial
                        && is_first_config_version(self.membership.version)),
                "a configuration in force from a txn not applied"
            ),
            Some(l) => assert!(
                *l == self.membership && l.version > self.tree.last_zxid().0,
                "a learned configuration kept past what is applied"
            ),
        }
        if let Some((z, m)) = &self.pending {
            assert!(
                *z > self.tree.last_zxid() && z.0 > self.membership.version,
                "a pending reconfig already applied or superseded"
            );
            assert_eq!(m.version, z.0);
        }
    }
}

/// The members this server was configured with: the node's text of them
/// (`Config::config_node`) when it names the same members, else one made up from the member
/// list (the simulator's servers).
fn configured_members(cfg: &crate::config::Config) -> Membership {
    std::str::from_utf8(&cfg.config_node)
        .ok()
        .and_then(|t| Membership::parse(t).ok())
        .filter(|m| m.has_roles(&cfg.members))
        .unwrap_or_else(|| Membership::synthetic(&cfg.members))
}

/// A first configuration's version: an epoch's zxid (counter 0, which no txn has), or 0.
pub(crate) fn is_first_config_version(version: u64) -> bool {
    version & 0xffff_ffff == 0
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
    let in_force = if zk.plant(Plant::ReconfigFromStaleVersion) {
        zk.initial.version
    } else {
        zk.membership.version
    };
    if *from_config != -1 && *from_config as u64 != in_force {
        return Err(KeeperError::BadVersion);
    }
    let next = zk.membership.reconfigure(joining, leaving, new_members)?;
    if zk.cfg.standalone_enabled && next.voters().count() < 2 {
        tracing::info!("reconfig refused: the new configuration must include at least 2 followers");
        return Err(KeeperError::BadArguments);
    }
    let joiners_only = zk.plant(Plant::ReconfigCountsJoinersOnly);
    if joiners_only && crate::plant::joining_voters(joining, new_members) < 2 {
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
        crate::probe!("reconfig.new-config-no-quorum");
        return Err(KeeperError::NewConfigNoQuorum);
    }
    // A voter the change brings in that is synced already (it followed as a non-voter, its
    // ACKs counted nowhere): it can ACK this very proposal for the new quorum.
    if next
        .voters()
        .any(|id| !zk.membership.servers.contains_key(&id) && leader.learners.is_active(id))
    {
        crate::probe!("reconfig.joiner-synced-before-add");
    }
    // Only who may write /zookeeper/config (read-only to all by default: the super user).
    // WRITE, not ADMIN: ZooKeeper 3.8.0's PrepRequestProcessor checks Perms.WRITE on the
    // config node's ACL (the Debian jar's bytecode: `iconst_2` into checkACL), although the
    // issue and ZOOKEEPER-2014's title speak of an admin.
    let acl = zk.tree.get_acl(crate::path::CONFIG).unwrap_or(&[]);
    if !acl::check(acl, perms::WRITE, auth) {
        return Err(KeeperError::NoAuth);
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, LearnerType};
    use crate::effect::{Action, Ready};
    use crate::membership::Membership;
    use crate::peer::{Notification, PeerMsg, ServerState, Vote};
    use crate::server::{Event, Recovered, Server};
    use crate::zxid::Zxid;
    use std::collections::BTreeMap;

    fn voters(ids: &[u64]) -> BTreeMap<u64, LearnerType> {
        ids.iter()
            .map(|id| (*id, LearnerType::Participant))
            .collect()
    }

    fn sends(server: &mut Server, now: u64, event: Event) -> Vec<(u64, PeerMsg)> {
        let mut ready = Ready::new();
        server.handle_ready(now, event, &mut ready);
        let mut sent = Vec::new();
        for b in ready.batches() {
            for a in b.then() {
                if let Action::Send { to, msg } = a {
                    sent.push((*to, msg.clone()));
                }
            }
        }
        sent
    }

    fn looking(config_version: u64) -> Notification {
        Notification {
            vote: Vote {
                leader: 2,
                zxid: Zxid::ZERO,
                peer_epoch: 0,
            },
            state: ServerState::Looking,
            election_epoch: 1,
            config_version,
            intact: true,
        }
    }

    /// A server that missed reconfigs (crashed, cut off) finds the voters of the
    /// configuration in force: a peer sends it its configuration, which it adopts while
    /// LOOKING, and its election then asks those voters.
    #[test]
    fn a_looking_server_adopts_a_newer_configuration_and_asks_its_voters() {
        let mut s = Server::new(Config::new(1, voters(&[1, 2, 3])), Recovered::default(), 0)
            .expect("server");
        let newer = Membership {
            version: 0x1_0000_0007,
            ..Membership::synthetic(&voters(&[1, 4, 5]))
        };
        // a notification naming a newer version: we answer so that the sender sends it
        let out = sends(
            &mut s,
            1,
            Event::Peer {
                from: 4,
                msg: PeerMsg::Notification(looking(newer.version)),
            },
        );
        assert!(
            out.iter().any(|(to, m)| *to == 4
                && matches!(m, PeerMsg::Notification(n) if n.config_version == 0))
        );
        let out = sends(
            &mut s,
            2,
            Event::Peer {
                from: 4,
                msg: PeerMsg::Config(newer.clone()),
            },
        );
        assert_eq!(s.membership(), &newer);
        assert_eq!(s.state(), ServerState::Looking);
        let mut to: Vec<u64> = out.iter().map(|(to, _)| *to).collect();
        to.sort_unstable();
        assert_eq!(to, vec![4, 5], "the new voters are asked, the old ones not");
        // an older or equal one is ignored; one we have is sent to a peer that lags
        let before = s.membership().clone();
        sends(
            &mut s,
            3,
            Event::Peer {
                from: 2,
                msg: PeerMsg::Config(Membership::synthetic(&voters(&[1, 2]))),
            },
        );
        assert_eq!(s.membership(), &before);
        let out = sends(
            &mut s,
            4,
            Event::Peer {
                from: 2,
                msg: PeerMsg::Notification(looking(0)),
            },
        );
        assert!(
            out.iter()
                .any(|(to, m)| *to == 2 && matches!(m, PeerMsg::Config(c) if *c == newer))
        );
    }

    /// ZooKeeper keeps its configuration in the dynamic file, and the super user may setData
    /// `/zookeeper/config` like any node: a server restarted from a snapshot taken after such
    /// a write runs under the last committed reconfig's configuration, whatever was written
    /// (null data, other text, another well-formed configuration). A snapshot taken before
    /// the write (the node shows the configuration) carries it too.
    #[test]
    fn a_restart_takes_the_committed_configuration_not_the_nodes_data() {
        use crate::server::{Epochs, RecoveredSnapshot};
        use crate::tree::DataTree;
        use crate::txn::{Origin, Txn, TxnOp};
        use ensemble_proto::proto::{Id, Request};
        use std::sync::Arc;

        let cfg = Config::new(1, voters(&[1, 2, 3]));
        let reconfig_zxid = Zxid::new(1, 2);
        let made = Membership {
            version: 0,
            ..Membership::synthetic(&voters(&[1, 2, 3, 4]))
        };
        let committed = Membership {
            version: reconfig_zxid.0,
            ..made.clone()
        };
        let other = Membership {
            version: Zxid::new(1, 9).0,
            ..Membership::synthetic(&voters(&[7, 8, 9]))
        };
        let writes: [(Option<Vec<u8>>, &str); 3] = [
            (None, "null data"),
            (Some(b"not a configuration".to_vec()), "other text"),
            (Some(other.to_text().into_bytes()), "another configuration"),
        ];
        let txn = |counter: u32, op: TxnOp| Txn {
            zxid: Zxid::new(1, counter),
            time: i64::from(counter),
            session: 0,
            cxid: 0,
            origin: Origin::NONE,
            op,
        };
        for (data, what) in writes {
            let mut tree = DataTree::new(cfg.tree_options());
            tree.apply(&txn(
                1,
                TxnOp::Write {
                    request: Request::Create {
                        op: ensemble_proto::proto::CreateOp::Create,
                        path: "/a".into(),
                        data: vec![],
                        acl: ensemble_proto::proto::Acl::open_unsafe(),
                        mode: ensemble_proto::proto::CreateMode::Persistent,
                        ttl: 0,
                    },
                    auth: vec![],
                },
            ));
            tree.apply(&txn(
                2,
                TxnOp::Reconfig {
                    outcome: Ok(made.clone()),
                },
            ));
            assert_eq!(tree.committed_membership(), Some(committed.clone()));
            let shown =
                DataTree::from_snapshot(&tree.to_snapshot(), cfg.tree_options()).expect("loads");
            assert_eq!(shown.committed_membership(), Some(committed.clone()));
            let set = Request::SetData {
                path: crate::path::CONFIG.into(),
                data: data.clone().unwrap_or_default(),
                version: -1,
            };
            let request = match data {
                Some(_) => set,
                None => Request::NullData {
                    request: Box::new(set),
                    ops: vec![0],
                },
            };
            tree.apply(&txn(
                3,
                TxnOp::Write {
                    request,
                    auth: vec![Id::new(crate::acl::SUPER, "")],
                },
            ));
            assert_eq!(
                tree.committed_membership(),
                Some(committed.clone()),
                "{what}: the write changed the committed configuration"
            );
            let bytes = tree.to_snapshot();
            // the snapshot written a slice at a time carries it alike
            tree.begin_snapshot(64);
            let streamed: Vec<u8> = tree
                .finish_snapshot()
                .iter()
                .flat_map(|p| p.data.iter().copied())
                .collect();
            assert_eq!(streamed, bytes, "{what}: the streamed snapshot differs");
            let recovered = Recovered {
                epochs: Epochs {
                    accepted_epoch: 1,
                    accepted_from: 1,
                    current_epoch: 1,
                },
                snapshot: Some((Zxid::new(1, 3), RecoveredSnapshot::Bytes(Arc::new(bytes)))),
                log: vec![],
            };
            let s = Server::new(cfg.clone(), recovered, 10).expect("server");
            assert_eq!(
                s.membership(),
                &committed,
                "{what}: a restart took the node's data"
            );
        }
    }
}
