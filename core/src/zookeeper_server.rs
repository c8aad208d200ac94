//! The state every role shares (ZooKeeper's ZooKeeperServer with its ZKDatabase): the
//! configuration and clock, the persisted epochs, the data tree and watches, the ZAB log, the
//! client pipeline, the snapshot scheduler and the election's bookkeeping. A role handler
//! (`Leading`, `Learning`) borrows it next to its own role's state; what ends a role
//! (`stop_serving`) is here, since it touches only this.

use crate::client_pipeline::ClientPipeline;
use crate::config::Config;
use crate::effect::{Action, Ready};
use crate::election::Election;
use crate::peer::{PeerMsg, ServerState, Vote};
use crate::plant::{self, Plant};
use crate::quorum::QuorumVerifier;
use crate::read_only_server::ReadOnlyMode;
use crate::server::{Epochs, Millis};
use crate::session_tracker::SessionTracker;
use crate::snapshot_scheduler::SnapshotScheduler;
use crate::tree::DataTree;
use crate::txn::ServerId;
use crate::watch::WatchManager;
use crate::zab_log::ZabLog;
use crate::zxid::Zxid;
use std::collections::BTreeMap;

pub(crate) struct ZooKeeperServer {
    pub(crate) cfg: Config,
    pub(crate) now: Millis,
    pub(crate) epochs: Epochs,
    pub(crate) tree: DataTree,
    pub(crate) watches: WatchManager,
    /// Recent committed txns (for DIFF), every logged one not yet applied, the durable point.
    pub(crate) log: ZabLog,
    /// The state announced (`Action::StateChanged`); it follows the role, and LOOKING is
    /// announced by the handler that ends its role, before the dispatcher drops it.
    pub(crate) state: ServerState,
    pub(crate) election: Election,
    /// Every quorum question goes here: the configuration in force (and the pending one).
    pub(crate) quorum: QuorumVerifier,
    /// The membership this server started with (its config), in force until a committed
    /// reconfig replaces it.
    pub(crate) initial: crate::membership::Membership,
    /// The configuration in force (the last committed reconfig's, else `initial`).
    pub(crate) membership: crate::membership::Membership,
    /// How many times `membership` was (re)loaded: a checker compares the configuration in
    /// force again only when this moves.
    pub(crate) membership_loads: u64,
    /// The last reconfig logged and not yet applied, with its zxid.
    pub(crate) pending: Option<(Zxid, crate::membership::Membership)>,
    /// A committed configuration newer than our history's: learned from a peer while LOOKING
    /// (ZooKeeper's processReconfig from a notification), or our dynamic file's at start
    /// (`adopt_dynamic_file`). In force until what we apply catches up with it.
    pub(crate) learned: Option<crate::membership::Membership>,
    /// A reconfig was activated and the role has not reacted yet.
    pub(crate) reconfigured: bool,
    /// Client connections, their queues and what they wait for.
    pub(crate) clients: ClientPipeline,
    /// FOLLOWERINFOs that arrived while we were still LOOKING.
    pub(crate) early_learners: BTreeMap<ServerId, PeerMsg>,
    /// A learner's leader handed over to this server (a HANDOVER): the dispatcher takes the
    /// new role at once, without an election.
    pub(crate) handover_to: Option<ServerId>,
    pub(crate) snapshots: SnapshotScheduler,
    /// Sessions only this server knows (local sessions, a read-only server's sessions).
    pub(crate) local_sessions: SessionTracker,
    pub(crate) read_only: ReadOnlyMode,
}

impl ZooKeeperServer {
    pub(crate) fn last_logged(&self) -> Zxid {
        self.log.last_logged()
    }

    /// Does our durable state vouch for what we acknowledged? Only once a sync completed (or
    /// we led) on this disk: currentEpoch is written after the synced history is durable, so
    /// a currentEpoch above 0 means the log and snapshot hold at least the history of that
    /// epoch's start. An empty data dir (new, or lost) has none, and an operator who puts back
    /// an older copy removes `currentEpoch` (the node's README): such a server votes and
    /// follows, but no quorum counts it as a witness of its history until it has synced.
    pub(crate) fn intact(&self) -> bool {
        self.epochs.current_epoch > 0
    }

    pub(crate) fn my_vote(&self) -> Vote {
        Vote {
            leader: self.cfg.my_id,
            zxid: self.last_logged(),
            peer_epoch: self.epochs.current_epoch,
        }
    }

    pub(crate) fn plant(&self, p: Plant) -> bool {
        plant::active(self.cfg.plant, p)
    }

    /// Announce `state` (the dispatcher has set the role it follows).
    pub(crate) fn set_state(&mut self, state: ServerState, out: &mut Ready) {
        if self.state != state {
            self.state = state;
            if state == ServerState::Looking {
                self.read_only.looking_since = self.now;
            }
            out.push(Action::StateChanged {
                state,
                epoch: self.epochs.current_epoch,
            });
        }
    }

    /// The shared half of leaving a role (the role's handler disconnected its peers first):
    /// clients are disconnected, as ZooKeeper does when a server stops serving, LOOKING is
    /// announced and a new election round starts. The dispatcher then drops the role.
    pub(crate) fn stop_serving(&mut self, out: &mut Ready) {
        assert_ne!(self.state, ServerState::Looking, "stopped twice");
        if self.plant(Plant::Zk2845RetainedDbBehindLog) {
            // the retained in-memory database holds what was applied; the log holds more
            let applied = self.tree.last_zxid();
            self.log.drop_after(applied);
            self.log.forget_durable_after(applied);
            self.refresh_pending();
        }
        self.close_all_clients(out);
        self.set_state(ServerState::Looking, out);
        let vote = self.my_vote();
        let round = self.election.logical_clock;
        let intact = self.intact();
        self.election
            .start(&self.cfg, &self.quorum, vote, intact, self.now);
        assert!(
            self.election.logical_clock > round,
            "a new election in an old round"
        );
        assert!(self.clients.conns.is_empty());
        assert_eq!(self.state, ServerState::Looking);
    }

    /// Our notification, with the version of our configuration in force.
    pub(crate) fn notification(&self) -> crate::peer::Notification {
        self.election
            .notification(self.state, self.membership.version, self.intact())
    }

    pub(crate) fn broadcast_notification(&mut self, out: &mut Ready) {
        let n = self.notification();
        let me = self.cfg.my_id;
        let to: Vec<ServerId> = self.quorum.voters().filter(|id| *id != me).collect();
        for peer in to {
            out.push(Action::Send {
                to: peer,
                msg: PeerMsg::Notification(n),
            });
        }
    }
}
